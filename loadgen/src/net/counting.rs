//! Bytes counted on the socket itself, so the report's "bytes on the wire" include what the
//! client libraries add and hide: HTTP heads, chunked framing, WebSocket frame headers and masks.
//!
//! The counters are per client (`Arc<ByteCounts>` shared by that client's connections only), so the
//! atomics are never contended: each add is an uncontended `fetch_add` on the client's own
//! cache line.

use std::{
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes one client read and wrote, across all its connections.
#[derive(Debug, Default)]
pub struct ByteCounts {
    pub read: AtomicU64,
    pub written: AtomicU64,
    /// Inside TLS: the plaintext HTTP and WebSocket bytes (what the server counts).
    pub plain_read: AtomicU64,
    pub plain_written: AtomicU64,
    /// What decoding the payload took (`--compression`): counted beside the socket's bytes so
    /// the two come back together with the client.
    pub decoding: crate::compression::Decoding,
    /// What the client's QUIC connections measured, added as each ends.
    pub quic: QuicCounts,
}

/// quinn's `Connection::stats()` of a client's ended QUIC connections, summed.
#[derive(Debug, Default)]
pub struct QuicCounts {
    pub connections: AtomicU64,
    pub lost_packets: AtomicU64,
    pub congestion_events: AtomicU64,
    pub datagrams_sent: AtomicU64,
    pub datagrams_received: AtomicU64,
    /// Sum over connections of the smoothed RTT as each ended, µs.
    pub rtt_us: AtomicU64,
}

impl QuicCounts {
    /// Adds `other`'s figures to `into`.
    pub fn add_to(&self, into: &mut feedlab_link::QuicPathStats, rtt_us: &mut u64) {
        into.connections += self.connections.load(Relaxed);
        into.client_lost_packets += self.lost_packets.load(Relaxed);
        into.client_congestion_events += self.congestion_events.load(Relaxed);
        into.client_datagrams_sent += self.datagrams_sent.load(Relaxed);
        into.client_datagrams_received += self.datagrams_received.load(Relaxed);
        *rtt_us += self.rtt_us.load(Relaxed);
    }
}

impl ByteCounts {
    pub fn read(&self) -> u64 {
        self.read.load(Relaxed)
    }
    pub fn written(&self) -> u64 {
        self.written.load(Relaxed)
    }
    pub fn plain_read(&self) -> u64 {
        self.plain_read.load(Relaxed)
    }
}

/// Which counters of a [`ByteCounts`] a [`CountingStream`] adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    Socket,
    Plaintext,
}

/// An `AsyncRead + AsyncWrite` that adds every byte through it to a [`ByteCounts`].
#[derive(Debug)]
pub struct CountingStream<S> {
    inner: S,
    wire: Arc<ByteCounts>,
    layer: Layer,
}

impl<S> CountingStream<S> {
    /// Counts the bytes on the socket (`read`, `written`).
    pub fn new(inner: S, wire: Arc<ByteCounts>) -> Self {
        Self {
            inner,
            wire,
            layer: Layer::Socket,
        }
    }

    /// Counts the plaintext above TLS (`plain_read`, `plain_written`).
    pub fn plaintext(inner: S, wire: Arc<ByteCounts>) -> Self {
        Self {
            inner,
            wire,
            layer: Layer::Plaintext,
        }
    }

    fn add_read(&self, n: usize) {
        let c = match self.layer {
            Layer::Socket => &self.wire.read,
            Layer::Plaintext => &self.wire.plain_read,
        };
        c.fetch_add(n as u64, Relaxed);
    }

    fn add_written(&self, n: usize) {
        let c = match self.layer {
            Layer::Socket => &self.wire.written,
            Layer::Plaintext => &self.wire.plain_written,
        };
        c.fetch_add(n as u64, Relaxed);
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CountingStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.add_read(n);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountingStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.add_written(n);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            self.add_written(n);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn counts_both_directions_including_vectored_writes() {
        let (a, mut b) = tokio::io::duplex(64);
        let wire = Arc::new(ByteCounts::default());
        let mut s = CountingStream::new(a, wire.clone());
        s.write_all(b"hello").await.unwrap();
        let bufs = [io::IoSlice::new(b"ab"), io::IoSlice::new(b"cde")];
        let n = s.write_vectored(&bufs).await.unwrap();
        b.write_all(b"0123456789").await.unwrap();
        let mut got = [0u8; 10];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(wire.written(), 5 + n as u64);
        assert_eq!(wire.read(), 10);
        let mut echo = vec![0u8; 5 + n];
        b.read_exact(&mut echo).await.unwrap();
        assert!(echo.starts_with(b"hello"));
    }
}
