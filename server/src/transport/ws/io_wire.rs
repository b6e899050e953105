//! A [`Wire`] that is the connection itself, for the sessions that own their socket: the fast
//! path's ([`crate::fast_path::ws`]) and those actix-http hands over after a handshake
//! ([`super::takeover`]). Here, beside the session it serves, so the takeover does not import
//! the fast path back.

use std::{
    io::{self, IoSlice},
    mem::MaybeUninit,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadBuf},
    time::Instant,
};

use super::session::Wire;

/// The pieces of one write; a few live on the stack, so a batch costs no allocation.
pub type Parts<'a> = smallvec::SmallVec<[IoSlice<'a>; 8]>;

/// Most bytes drained (read and dropped) while closing, before the socket is simply dropped.
const DRAIN_LIMIT: usize = 64 * 1024;

/// A [`Wire`] that is the connection itself: the fast path's TCP socket, or a connection
/// actix-http handed over after a WebSocket handshake (TCP, or TLS over it; see
/// [`crate::transport::ws::takeover`]). Reads go through a 4 KiB buffer on the stack, copied
/// into the session's; writes are vectored, tried first without a timer. Idle, it holds the
/// connection and nothing else.
pub(crate) struct IoWire<T>(pub T);

/// Most bytes one read takes from the connection.
const READ_CHUNK: usize = 4096;

/// `writev` takes at most `IOV_MAX` (1024 on Linux) pieces per call.
const MAX_IOV: usize = 512;

impl<T: AsyncRead + AsyncWrite + Unpin> Wire for IoWire<T> {
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<bool> {
        std::future::poll_fn(|cx| {
            // A stack buffer that exists only during a poll: it is no part of the idle
            // connection. Bytes read are handed over in the same poll, so a read dropped
            // before completing has read nothing.
            let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut read = ReadBuf::uninit(&mut chunk);
            match Pin::new(&mut self.0).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if read.filled().is_empty() => Poll::Ready(Ok(false)),
                Poll::Ready(Ok(())) => {
                    buf.extend_from_slice(read.filled());
                    Poll::Ready(Ok(true))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    async fn write(&mut self, frames: &[&Bytes], limit: Duration) -> io::Result<()> {
        let mut parts: Parts<'_> = frames.iter().map(|f| IoSlice::new(f)).collect();
        write_all(&mut self.0, &mut parts[..], limit).await
    }

    async fn close(mut self, deadline: Instant) {
        // FIN after what was written (over TLS, after its close_notify); then what the client
        // still sends is read and dropped (closing a socket with unread bytes resets it, which
        // can destroy our close frame before the client reads it), until its FIN, the deadline
        // or DRAIN_LIMIT bytes. All of it by the deadline: over TLS even the shutdown writes.
        let closing = async {
            let _ = self.0.shutdown().await;
            let mut drained = 0;
            while drained < DRAIN_LIMIT {
                let mut scrap = BytesMut::new();
                match self.read(&mut scrap).await {
                    Ok(true) => drained += scrap.len(),
                    Ok(false) | Err(_) => return,
                }
            }
        };
        let _ = tokio::time::timeout_at(deadline, closing).await;
    }
}

/// Writes every byte of `bufs` (and flushes: over TLS, to the socket) within `limit`; a client
/// that takes none of them in time has stopped reading (`ErrorKind::TimedOut`). As
/// [`crate::fast_path::wire::write_all`] does on a TCP socket, for any connection.
pub(crate) async fn write_all<T: AsyncWrite + Unpin>(
    io: &mut T,
    mut bufs: &mut [IoSlice<'_>],
    limit: Duration,
) -> io::Result<()> {
    let total: usize = bufs.iter().map(|b| b.len()).sum();
    // Nearly every write fits in the socket buffer at once: try that first, without a timer.
    let done = std::future::poll_fn(|cx| Poll::Ready(try_write(io, &mut bufs, cx))).await?;
    if done {
        return Ok(());
    }
    // Boxed: a full socket buffer is the rare case, and its timer would otherwise be part of
    // every session's future, and of its memory, for the session's whole life.
    Box::pin(async move {
        let rest = std::future::poll_fn(|cx| match try_write(io, &mut bufs, cx) {
            Ok(true) => Poll::Ready(Ok(())),
            Ok(false) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        });
        match tokio::time::timeout(limit, rest).await {
            Ok(result) => result,
            // `TimedOut` only when no byte of these buffers went out: after part of a frame,
            // nothing else may follow on this connection (not even a close frame).
            Err(_) if bufs.iter().map(|b| b.len()).sum::<usize>() == total => {
                Err(io::ErrorKind::TimedOut.into())
            }
            Err(_) => Err(io::Error::other(
                "write cut off by --send-timeout mid-message",
            )),
        }
    })
    .await
}

/// Writes what `io` takes of `bufs` now, and flushes; `Ok(true)` once all of it is written
/// and flushed, `Ok(false)` when `io` is full (and will wake `cx`).
fn try_write<T: AsyncWrite + Unpin>(
    io: &mut T,
    bufs: &mut &mut [IoSlice<'_>],
    cx: &mut Context<'_>,
) -> io::Result<bool> {
    while !bufs.is_empty() {
        let polled = if let [one] = &**bufs {
            Pin::new(&mut *io).poll_write(cx, one)
        } else {
            let end = bufs.len().min(MAX_IOV);
            Pin::new(&mut *io).poll_write_vectored(cx, &bufs[..end])
        };
        match polled {
            Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(n)) => IoSlice::advance_slices(bufs, n),
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => return Ok(false),
        }
    }
    match Pin::new(io).poll_flush(cx) {
        Poll::Ready(Ok(())) => Ok(true),
        Poll::Ready(Err(e)) => Err(e),
        Poll::Pending => Ok(false),
    }
}
