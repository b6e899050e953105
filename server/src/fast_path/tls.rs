//! The fast path over TLS: rustls on the raw connection (tokio-rustls), then the same
//! [`serve`](super::serve) as a plain connection.
//!
//! Through actix-web a server that terminates TLS itself held 21 KiB per idle SSE stream and
//! 24 KiB per idle WebSocket (its HTTP/1 dispatcher's 8 KiB read and write buffers, actix-tls'
//! stream, the response body's channel), against 2-3 KiB on the plain fast path. Here a TLS
//! connection is the socket and rustls' connection state, nothing else: the same peek,
//! checks, answers and streams as on TCP, written to rustls and flushed. The TLS records are
//! rustls': each write becomes as few records as its bytes need (one per 16 KiB).
//!
//! The handshake is rustls' (within `--request-timeout`, as actix-web's acceptor is given).
//! ALPN offers `h2` and `http/1.1`, as actix-web did: a client that picks `h2` is served by
//! actix-http's HTTP/2 dispatcher, on the same connection (the fast path speaks HTTP/1.1
//! only); one that picks `http/1.1`, or none, comes here, and from the first request the
//! fast path does not take it is actix-http's HTTP/1 dispatcher's, as on TCP, with what was
//! decrypted and not consumed handed over first ([`TlsConn`]'s reads give it back).

use std::{
    io::{self, IoSlice},
    net::{IpAddr, SocketAddr},
    pin::Pin,
    rc::Rc,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use actix_http::{error::DispatchError, Protocol};
use actix_service::{Service, ServiceFactory};
use tokio::{
    io::{AsyncBufRead, AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::{server::TlsStream, TlsAcceptor};

use super::{conn::Conn, head::MAX_HEAD_BYTES, then, LocalBoxFuture};
use crate::state::AppState;

/// A TLS connection as the fast path and actix-http see it.
///
/// `pending` holds plaintext that rustls decrypted and nobody consumed yet: the request head a
/// peek is judging, and whatever came after it. It is empty (no allocation) between requests
/// and on an idle stream. Reads return it first, so actix-http, a WebSocket session or a
/// publish's body read gets every byte the client sent, in order.
pub struct TlsConn {
    tls: TlsStream<TcpStream>,
    pending: Vec<u8>,
}

impl TlsConn {
    fn new(tls: TlsStream<TcpStream>) -> Self {
        Self {
            tls,
            pending: Vec::new(),
        }
    }

    /// Whether the client picked HTTP/2 by ALPN.
    fn h2(&self) -> bool {
        self.tls.get_ref().1.alpn_protocol() == Some(b"h2")
    }

    /// Takes what rustls has decrypted (reading the socket for more) into `pending`, up to
    /// [`MAX_HEAD_BYTES`]: the most a peek needs to see. `Ready(Err)` only when nothing is
    /// pending; `Ready(Ok(()))` when the client closed its side or `pending` is full.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let room = MAX_HEAD_BYTES.saturating_sub(self.pending.len());
            if room == 0 {
                return Poll::Ready(Ok(()));
            }
            match Pin::new(&mut self.tls).poll_fill_buf(cx) {
                Poll::Ready(Ok([])) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(data)) => {
                    let n = data.len().min(room);
                    self.pending.extend_from_slice(&data[..n]);
                    Pin::new(&mut self.tls).consume(n);
                }
                Poll::Ready(Err(e)) if self.pending.is_empty() => return Poll::Ready(Err(e)),
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Drops the first `n` pending bytes; the buffer itself once it is empty.
    fn take(&mut self, n: usize) {
        if n >= self.pending.len() {
            self.pending = Vec::new();
        } else {
            self.pending.drain(..n);
        }
    }
}

impl Conn for TlsConn {
    fn peer_ip(&self) -> Option<IpAddr> {
        self.tls.get_ref().0.peer_addr().ok().map(|a| a.ip())
    }

    fn poll_peek(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<usize>> {
        match self.poll_fill(cx) {
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending if self.pending.is_empty() => return Poll::Pending,
            // What is pending (nothing: the client's EOF), and more wakes `cx`.
            Poll::Pending | Poll::Ready(Ok(())) => {}
        }
        let n = self.pending.len().min(buf.remaining());
        buf.put_slice(&self.pending[..n]);
        Poll::Ready(Ok(n))
    }

    async fn consume_head(&mut self, len: usize, _alone: bool) -> io::Result<()> {
        // A peek saw all `len` bytes: they are pending.
        if self.pending.len() < len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.take(len);
        Ok(())
    }

    fn as_tcp(&mut self) -> Option<&mut TcpStream> {
        None
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pending.is_empty() {
            return Pin::new(&mut this.tls).poll_read(cx, buf);
        }
        let n = this.pending.len().min(buf.remaining());
        buf.put_slice(&this.pending[..n]);
        this.take(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tls).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tls).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tls.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tls).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tls).poll_shutdown(cx)
    }
}

/// What actix-http's HTTP service takes (the service as built before `.tcp()`): the
/// connection, its protocol, the peer's address.
type Http = (TlsConn, Protocol, Option<SocketAddr>);

/// The [`super::FrontDoor`] of a TLS listener: the handshake, then HTTP/2 to actix-http, HTTP/1.1
/// to the fast path (which hands actix-http what it does not take), and connections past
/// `--max-new-connections-per-sec` to `over_rate` (actix-http, refusing every request).
pub struct TlsFrontDoor<F> {
    pub http: F,
    pub over_rate: F,
    pub state: Arc<AppState>,
    pub tls: Arc<rustls::ServerConfig>,
}

/// `config` as the TLS fast path serves it: ALPN offers `h2` first, then `http/1.1` (what
/// actix-http's own rustls acceptor offers).
pub fn server_config(mut config: rustls::ServerConfig) -> Arc<rustls::ServerConfig> {
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

impl<F> ServiceFactory<TcpStream> for TlsFrontDoor<F>
where
    F: ServiceFactory<Http, Config = (), Response = (), Error = DispatchError, InitError = ()>,
    F::Service: 'static,
    F::Future: 'static,
    <F::Service as Service<Http>>::Future: 'static,
{
    type Response = ();
    type Error = DispatchError;
    type Config = ();
    type Service = TlsFrontDoorService<F::Service>;
    type InitError = ();
    type Future = LocalBoxFuture<Result<Self::Service, ()>>;

    fn new_service(&self, _: ()) -> Self::Future {
        let http = self.http.new_service(());
        let over_rate = self.over_rate.new_service(());
        let (state, acceptor) = (self.state.clone(), TlsAcceptor::from(self.tls.clone()));
        Box::pin(async move {
            super::wire::advertise(&state);
            Ok(TlsFrontDoorService {
                http: Rc::new(http.await?),
                over_rate: Rc::new(over_rate.await?),
                state,
                acceptor,
            })
        })
    }
}

pub struct TlsFrontDoorService<S> {
    http: Rc<S>,
    over_rate: Rc<S>,
    state: Arc<AppState>,
    acceptor: TlsAcceptor,
}

impl<S> Service<TcpStream> for TlsFrontDoorService<S>
where
    S: Service<Http, Response = (), Error = DispatchError> + 'static,
    S::Future: 'static,
{
    type Response = ();
    type Error = DispatchError;
    type Future = LocalBoxFuture<Result<(), DispatchError>>;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self.http.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.over_rate.poll_ready(cx),
            other => other,
        }
    }

    fn call(&self, io: TcpStream) -> Self::Future {
        let state = self.state.clone();
        state
            .accounting
            .connections_accepted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::connection::configure_tcp(&io, state.config.send_timeout);
        let admitted = state.new_connections.admit();
        let http = if admitted {
            self.http.clone()
        } else {
            self.over_rate.clone()
        };
        let peer = io.peer_addr().ok();
        let acceptor = self.acceptor.clone();
        Box::pin(async move {
            // Made here and boxed, and gone once done: rustls' handshake state is no part of
            // what the connection keeps (made outside this block, the handshake's future would
            // be part of it for the connection's life: 1.4 KiB per idle stream, by massif).
            // Nothing here borrows the connection (a future that did would keep room for it
            // beside the stream's own copy).
            let limit = state.config.request_timeout;
            let Some((conn, h2)) = Box::pin(handshake(acceptor, io, limit)).await else {
                return Ok(());
            };
            let to_actix = move |conn: TlsConn| -> LocalBoxFuture<Result<(), DispatchError>> {
                let protocol = if conn.h2() {
                    Protocol::Http2
                } else {
                    Protocol::Http1
                };
                Box::pin(http.call((conn, protocol, peer)))
            };
            if h2 || !admitted {
                if h2 && admitted {
                    state
                        .accounting
                        .connections_to_actix
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                return to_actix(conn).await;
            }
            let next = Box::pin(super::serve(conn, &state)).await;
            then(next, &state, to_actix).await
        })
    }
}

/// rustls' handshake within `limit`: the connection, and whether it speaks HTTP/2; `None` when
/// the handshake failed or did not finish in time (the connection is then closed, as
/// actix-web's acceptor closes it).
async fn handshake(
    acceptor: TlsAcceptor,
    io: TcpStream,
    limit: Duration,
) -> Option<(TlsConn, bool)> {
    match tokio::time::timeout(limit, acceptor.accept(io)).await {
        Ok(Ok(tls)) => {
            let conn = TlsConn::new(tls);
            let h2 = conn.h2();
            Some((conn, h2))
        }
        Ok(Err(e)) => {
            tracing::debug!("TLS handshake failed: {e}");
            None
        }
        Err(_) => None,
    }
}
