//! A [`Wire`] over an upgraded actix-web request: the request's payload is the client's bytes,
//! a streaming response body carries ours. This is how WebSockets reach the session on TLS,
//! h2c listeners and `--fast-path false`.
//!
//! actix-http reads the payload only as fast as the session takes it (it pauses past 32 KiB
//! unread), and once our body has ended and the payload is dropped it closes the connection
//! within `--close-timeout` (its client-disconnect timeout).

use std::{convert::Infallible, io, time::Duration};

use actix_web::web;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt as _};
use tokio::{sync::mpsc, time::Instant};

use super::session::Wire;

/// Frames queued for actix-http's writer; a client that stopped reading fills this, then
/// `--send-timeout` runs out. The frames are shared bytes, not copies.
const QUEUED_FRAMES: usize = 16;

pub(crate) struct ActixWire {
    payload: web::Payload,
    out: Option<mpsc::Sender<Bytes>>,
}

/// The wire, and the response body that carries what is written to it.
pub(crate) fn wire(
    payload: web::Payload,
) -> (ActixWire, impl Stream<Item = Result<Bytes, Infallible>> + 'static) {
    let (tx, rx) = mpsc::channel(QUEUED_FRAMES);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|frame| (Ok(frame), rx))
    });
    (
        ActixWire {
            payload,
            out: Some(tx),
        },
        body,
    )
}

impl Wire for ActixWire {
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<bool> {
        match self.payload.next().await {
            Some(Ok(bytes)) => {
                buf.extend_from_slice(&bytes);
                Ok(true)
            }
            Some(Err(e)) => Err(io::Error::other(e.to_string())),
            None => Ok(false),
        }
    }

    async fn write(&mut self, frames: &[&Bytes], limit: Duration) -> io::Result<()> {
        let Some(out) = &self.out else {
            return Err(io::ErrorKind::BrokenPipe.into());
        };
        let send = async {
            for frame in frames {
                out.send((*frame).clone())
                    .await
                    .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
            }
            Ok(())
        };
        tokio::time::timeout(limit, send)
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    }

    fn finish(&mut self) {
        // The body ends: actix-http flushes it and starts its --close-timeout for the client.
        self.out = None;
    }

    async fn close(self, _deadline: Instant) {
        // Dropping the payload lets actix-http discard what still arrives until it closes the
        // connection (at --close-timeout after the body ended, at the latest).
    }
}
