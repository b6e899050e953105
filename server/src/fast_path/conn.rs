//! What the fast path asks of a connection, so that one implementation of each request serves a
//! plain TCP socket and TLS over one ([`super::tls::TlsConn`]) alike.
//!
//! The two differ in how a request head is looked at before anything is consumed: a TCP
//! socket is peeked at (`MSG_PEEK`), its bytes staying in the kernel; TLS bytes are readable
//! only once decrypted, so a TLS connection keeps what it decrypted, unconsumed, in a buffer of
//! its own until the request is read (or actix-web reads it). And in how a write completes: on
//! TCP a write that the socket took is done; over TLS it must also be flushed out of rustls
//! ([`super::wire::write_all`]). Everything else (reads, shutdown) is tokio's
//! `AsyncRead`/`AsyncWrite`.

use std::{
    future::Future,
    io,
    net::IpAddr,
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

/// A connection the fast path serves.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + 'static {
    /// The client's address, for the per-IP limits and `/stats`.
    fn peer_ip(&self) -> Option<IpAddr>;

    /// Copies into `buf` what the client has sent and nothing has consumed yet, consuming
    /// nothing; pending until there is something. `Ok(0)`: the client closed its side with
    /// nothing left unread.
    fn poll_peek(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>)
        -> Poll<io::Result<usize>>;

    /// Consumes the `len` bytes a peek saw (a request head); `alone`: the peek saw nothing
    /// after them.
    fn consume_head(&mut self, len: usize, alone: bool) -> impl Future<Output = io::Result<()>>;

    /// The TCP socket, when this is one: writes to it go straight to the kernel, with nothing
    /// to flush ([`super::wire::write_all`]).
    fn as_tcp(&mut self) -> Option<&mut TcpStream>;
}

impl Conn for TcpStream {
    fn peer_ip(&self) -> Option<IpAddr> {
        self.peer_addr().ok().map(|a| a.ip())
    }

    fn poll_peek(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<usize>> {
        TcpStream::poll_peek(self, cx, buf)
    }

    fn consume_head(&mut self, len: usize, alone: bool) -> impl Future<Output = io::Result<()>> {
        super::consume(self, len, alone)
    }

    fn as_tcp(&mut self) -> Option<&mut TcpStream> {
        Some(self)
    }
}
