//! The fast path: streaming connections served on the socket itself, under actix-web's server.
//!
//! Measured on the same machine against `floor` (a framework-free server), actix-web costs each
//! idle streaming connection 16–18 KiB of memory, the floor about 1.2 KiB: actix-http's
//! HTTP/1 dispatcher gives every connection an 8 KiB read buffer and an 8 KiB write buffer for
//! its whole life, copies each body chunk into the write buffer, and actix-ws adds a task, a
//! channel and a frame encoder per WebSocket. A connection that only receives a feed needs none
//! of that once its request is read.
//!
//! So every plain HTTP/1.1 connection first passes the [`FrontDoor`]: it peeks at the request
//! head, and if the connection opens with `GET /sse` or a WebSocket upgrade on `/ws` (or the
//! `/ws/echo` conformance endpoint) that actix-web would accept the same way ([`head::parse`])
//! and that passes every check the actix-web handlers make, it is served here. A WebSocket
//! runs the same session as one actix-web upgraded ([`crate::transport::ws::session`]). The events' shared bytes (the
//! SSE record, the complete WebSocket frame) go out with one vectored write per batch, and the
//! connection holds a cursor, a few timers and nothing else. Everything else, including every
//! request these checks would refuse, goes to actix-web untouched (the peek consumed nothing),
//! so routing, errors and all other endpoints stay actix-web's.

pub mod head;
pub mod sse;
pub mod wire;
pub mod ws;

use std::{future::Future, pin::Pin, rc::Rc, sync::Arc};

use actix_http::error::DispatchError;
use actix_service::{Service, ServiceFactory};
use tokio::{io::AsyncReadExt as _, net::TcpStream};

use crate::{accounting::Meter, error::ApiError, state::AppState};
use head::{Kind, Peeked};

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// What the fast path does with a request it recognised.
pub enum Admission<T> {
    /// Serve it here.
    Serve(T),
    /// Refuse it here: a connection limit, counted on the meter like any response.
    Refuse(ApiError, Meter),
    /// Let actix-web answer (a bad or unauthorised request: its error reads the same either way).
    Actix,
}

impl<T> Admission<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Admission<U> {
        match self {
            Self::Serve(t) => Admission::Serve(f(t)),
            Self::Refuse(err, meter) => Admission::Refuse(err, meter),
            Self::Actix => Admission::Actix,
        }
    }
}

/// An admitted connection, by what serves it.
enum Route {
    Sse(sse::Ready),
    /// `/ws` or `/ws/echo`: the session to run, and the handshake's `Sec-WebSocket-Accept`.
    Ws((crate::transport::ws::session::Mode, String)),
}

/// Wraps actix-http's TCP service: each connection is peeked at, then served here or by `http`.
pub struct FrontDoor<F> {
    pub http: F,
    pub state: Arc<AppState>,
}

impl<F> ServiceFactory<TcpStream> for FrontDoor<F>
where
    F: ServiceFactory<TcpStream, Config = (), Response = (), Error = DispatchError, InitError = ()>,
    F::Service: 'static,
    F::Future: 'static,
    <F::Service as Service<TcpStream>>::Future: 'static,
{
    type Response = ();
    type Error = DispatchError;
    type Config = ();
    type Service = FrontDoorService<F::Service>;
    type InitError = ();
    type Future = LocalBoxFuture<Result<Self::Service, ()>>;

    fn new_service(&self, _: ()) -> Self::Future {
        let http = self.http.new_service(());
        let state = self.state.clone();
        Box::pin(async move {
            Ok(FrontDoorService {
                http: Rc::new(http.await?),
                state,
            })
        })
    }
}

pub struct FrontDoorService<S> {
    http: Rc<S>,
    state: Arc<AppState>,
}

impl<S> Service<TcpStream> for FrontDoorService<S>
where
    S: Service<TcpStream, Response = (), Error = DispatchError> + 'static,
    S::Future: 'static,
{
    type Response = ();
    type Error = DispatchError;
    type Future = LocalBoxFuture<Result<(), DispatchError>>;

    fn poll_ready(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.http.poll_ready(cx)
    }

    fn call(&self, io: TcpStream) -> Self::Future {
        let http = self.http.clone();
        let state = self.state.clone();
        Box::pin(async move {
            state
                .accounting
                .connections_accepted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            crate::connection::configure_tcp(&io, state.config.send_timeout);
            // Boxed, so that a fast-path connection's future is not as large as actix-http's.
            let to_actix =
                |io| -> LocalBoxFuture<Result<(), DispatchError>> { Box::pin(http.call(io)) };
            match head::peek(&io, state.config.request_timeout).await {
                Peeked::Gone => Ok(()),
                Peeked::TimedOut => {
                    wire::request_timeout(io, state.config.send_timeout).await;
                    Ok(())
                }
                Peeked::Actix => to_actix(io).await,
                Peeked::Fast(head) => {
                    // Decided, then the parsed head is dropped before anything is awaited: a
                    // connection handed to actix-web must not carry it for its lifetime.
                    let len = head.len;
                    let cors = state.origins.check(&head).ok().flatten();
                    let route = match head.kind {
                        Kind::Sse => sse::admit(&head, &state).map(Route::Sse),
                        Kind::Ws => ws::admit(&head, &state).map(Route::Ws),
                        Kind::Echo => ws::admit_echo(&head, &state).map(Route::Ws),
                    };
                    drop(head);
                    match route {
                        Admission::Actix => to_actix(io).await,
                        Admission::Refuse(err, meter) => {
                            refuse(io, len, &err, &meter, cors.as_deref(), &state).await
                        }
                        Admission::Serve(route) => {
                            if let Some(io) = consume(io, len).await {
                                match route {
                                    Route::Sse(ready) => sse::serve(io, ready, state).await,
                                    Route::Ws(ws) => {
                                        ws::serve(io, ws, state, Default::default()).await
                                    }
                                }
                            }
                            Ok(())
                        }
                    }
                }
            }
        })
    }
}

/// Reads the `len` bytes of the request head that the peek saw.
async fn consume(mut io: TcpStream, len: usize) -> Option<TcpStream> {
    let mut head = vec![0u8; len];
    io.read_exact(&mut head).await.ok()?;
    Some(io)
}

async fn refuse(
    io: TcpStream,
    len: usize,
    err: &ApiError,
    meter: &Meter,
    cors: Option<&str>,
    state: &AppState,
) -> Result<(), DispatchError> {
    // The request is read first: closing a socket with unread bytes would reset the
    // connection, and the client might never see the answer.
    if let Some(mut io) = consume(io, len).await {
        meter.bytes(wire::refuse(&mut io, err, cors, state.config.send_timeout).await);
    }
    Ok(())
}
