//! A [`Wire`] over an upgraded actix-web request: the request's payload is the client's bytes,
//! a streaming response body carries ours. This is how WebSockets reach the session on TLS,
//! h2c listeners and `--fast-path false`.
//!
//! actix-http reads the payload only as fast as the session takes it (it pauses with 32 KiB
//! unread), but a burst the client sent comes as one chunk of what one poll read, 128 KiB and
//! more, in a buffer actix-http keeps for the connection's life (up to 256 KiB; it never shrinks
//! it, and we cannot reach it). The session is handed such a chunk 4 KiB at a time, as the fast
//! path reads its socket: copied whole into the session's read buffer, it was a second buffer of
//! its size on every burst (20 connections sent 455 KB of one-byte fragments each: 9.5 MiB more
//! resident, 6.9 MiB with this, 1.4 on the fast path; debug build).
//!
//! Hanging up is the one thing actix-http offers no call for: a body that ends normally makes
//! it linger for `--close-timeout`, reading and discarding whatever the client still sends (a
//! flood, at loopback speed, of hundreds of MiB). So the body ends with an error instead, once
//! our last frame has been handed over: actix-http then drops the connection at once.

use std::{io, time::Duration};

use actix_web::web;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt as _};
use tokio::{sync::mpsc, time::Instant};

use super::session::Wire;

/// Frames queued for actix-http's writer; a client that stopped reading fills this, then
/// `--send-timeout` runs out. The frames are shared bytes, not copies.
const QUEUED_FRAMES: usize = 16;

type Item = Result<Bytes, io::Error>;

pub(crate) struct ActixWire {
    payload: web::Payload,
    out: mpsc::Sender<Item>,
    /// What is left of the last chunk actix-http handed over, passed on [`READ_PIECE`] at a time.
    rest: Bytes,
}

/// Most bytes one read hands the session, as a read on the fast path's socket does.
const READ_PIECE: usize = 4096;

/// The wire, and the response body that carries what is written to it.
pub(crate) fn wire(payload: web::Payload) -> (ActixWire, impl Stream<Item = Item> + 'static) {
    let (out, rx) = mpsc::channel(QUEUED_FRAMES);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (
        ActixWire {
            payload,
            out,
            rest: Bytes::new(),
        },
        body,
    )
}

impl Wire for ActixWire {
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<bool> {
        if self.rest.is_empty() {
            match self.payload.next().await {
                Some(Ok(bytes)) => self.rest = bytes,
                Some(Err(e)) => return Err(io::Error::other(e.to_string())),
                None => return Ok(false),
            }
        }
        let piece = self.rest.split_to(self.rest.len().min(READ_PIECE));
        buf.extend_from_slice(&piece);
        Ok(true)
    }

    async fn write(&mut self, frames: &[&Bytes], limit: Duration) -> io::Result<()> {
        let send = async {
            for frame in frames {
                self.out
                    .send(Ok((*frame).clone()))
                    .await
                    .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
            }
            Ok(())
        };
        tokio::time::timeout(limit, send)
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    }

    async fn close(self, deadline: Instant) {
        let Self { payload, out, .. } = self;
        // Our last frames are handed over when the queue is empty; a moment later actix-http
        // has written them. Then the error that makes it drop the connection.
        let handed_over = async {
            while out.capacity() < out.max_capacity() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        if tokio::time::timeout_at(deadline, handed_over).await.is_ok() {
            let _ = out.try_send(Err(io::Error::other("WebSocket closed")));
        }
        // Otherwise the client is not reading even our close frame: the body just ends, and
        // actix-http lets the connection go at its --close-timeout.
        drop((out, payload));
    }
}
