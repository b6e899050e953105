//! The fast path: streaming connections and polls served on the socket itself, under
//! actix-web's server.
//!
//! Measured on the same machine against `floor` (a framework-free server), actix-web costs each
//! idle streaming connection 16–18 KiB of memory, the floor about 1.2 KiB: actix-http's
//! HTTP/1 dispatcher gives every connection an 8 KiB read buffer and an 8 KiB write buffer for
//! its whole life, copies each body chunk into the write buffer, and actix-ws adds a task, a
//! channel and a frame encoder per WebSocket. A connection that only receives a feed needs none
//! of that once its request is read. A poll is the other way round: one small request and one
//! small answer, many times over, and actix-web's per-request work (routing, extractors,
//! middleware, response heads) was nearly all of what the server spent on it. So is a publish,
//! which every event costs once whatever the transport: see [`publish`].
//!
//! So every plain HTTP/1.1 connection first passes the [`FrontDoor`]: it peeks at the request
//! head, and if it is `GET /sse`, a WebSocket upgrade on `/ws` (or the `/ws/echo` conformance
//! endpoint), `GET /poll`, `GET /long-poll` or a `POST /publish` with a plain
//! `Content-Length` that actix-web would accept the same way ([`head::parse`]) and that passes
//! every check the actix-web handlers make, it is served here.
//! A WebSocket runs the same session as one actix-web upgraded
//! ([`crate::transport::ws::session`]); a poll runs the handler's own steps and answers with
//! the same [`PollAnswer`](crate::transport::PollAnswer). The events' shared bytes (the SSE
//! record, the complete WebSocket frame) go out with one vectored write per batch, a poll's
//! head and body with one write, and the connection holds a cursor, a few timers and nothing
//! else.
//!
//! A poll's or a publish's connection stays open: after each answer the front door peeks at the next request
//! (waiting up to `--keep-alive` for it, then `--request-timeout` for its head), so a
//! connection may poll here for its whole life. Everything else, including every request the
//! checks would refuse, goes to actix-web untouched (the peek consumed nothing), at the
//! connection's first request or at any later one: routing, errors and all other endpoints stay
//! actix-web's, and from then on the connection is actix-web's. A request pipelined behind a
//! poll waits, unread, for its turn; one pipelined behind a stream is never answered on either
//! path.

pub mod conn;
pub mod head;
pub mod poll;
pub mod publish;
pub mod sse;
pub mod tls;
pub mod wire;
pub mod ws;

use std::{future::Future, pin::Pin, rc::Rc, sync::Arc};

use actix_http::error::DispatchError;
use actix_service::{Service, ServiceFactory};
use tokio::{io::AsyncWriteExt as _, net::TcpStream};

use crate::{accounting::Meter, error::ApiError, state::AppState, transport::Transport};
use conn::Conn;
use head::{Kind, Peeked, Wait};
use wire::After;

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
    /// A request whose feed (`?feed=`) cannot be had (`--max-feeds`): refused here,
    /// so the refusal is counted once, as actix-web counts it.
    pub(crate) fn no_feed(
        err: ApiError,
        transport: Transport,
        client: Option<&str>,
        head: &head::Head,
        state: &AppState,
    ) -> Self {
        use crate::incoming::Incoming as _;
        let meter = state.accounting.meter(transport, client);
        meter.request_over(head.version());
        Self::Refuse(err, meter)
    }

    fn map<U>(self, f: impl FnOnce(T) -> U) -> Admission<U> {
        match self {
            Self::Serve(t) => Admission::Serve(f(t)),
            Self::Refuse(err, meter) => Admission::Refuse(err, meter),
            Self::Actix => Admission::Actix,
        }
    }
}

/// An admitted request, by what serves it.
enum Route {
    /// Served once its head is read.
    Head(Then),
    /// A publish, which reads its head and body together.
    Publish(publish::Admitted),
}

/// What serves a request once its head is read.
enum Then {
    Poll(poll::Answered),
    LongPoll(poll::Held),
    Sse(sse::Ready),
    /// `/ws` or `/ws/echo`: the session to run, and the handshake's `Sec-WebSocket-Accept`.
    Ws((crate::transport::ws::session::Mode, String)),
}

/// Wraps actix-http's TCP service: each connection is peeked at, then served here or by `http`.
/// A connection accepted past `--max-new-connections-per-sec` goes to `over_rate` instead,
/// unpeeked: actix-http marked so that every request on it is refused
/// ([`crate::app::admission`]), the same answer the actix-web server gives.
pub struct FrontDoor<F> {
    pub http: F,
    pub over_rate: F,
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
        let over_rate = self.over_rate.new_service(());
        let state = self.state.clone();
        Box::pin(async move {
            wire::advertise(&state);
            Ok(FrontDoorService {
                http: Rc::new(http.await?),
                over_rate: Rc::new(over_rate.await?),
                state,
            })
        })
    }
}

pub struct FrontDoorService<S> {
    http: Rc<S>,
    over_rate: Rc<S>,
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
        match self.http.poll_ready(cx) {
            std::task::Poll::Ready(Ok(())) => self.over_rate.poll_ready(cx),
            other => other,
        }
    }

    fn call(&self, io: TcpStream) -> Self::Future {
        let http = self.http.clone();
        let state = self.state.clone();
        if !state.new_connections.admit() {
            let over_rate = self.over_rate.clone();
            return Box::pin(async move {
                state
                    .accounting
                    .connections_accepted
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                crate::connection::configure_tcp(&io, state.config.send_timeout);
                over_rate.call(io).await
            });
        }
        Box::pin(async move {
            state
                .accounting
                .connections_accepted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            crate::connection::configure_tcp(&io, state.config.send_timeout);
            // Boxed, so that a fast-path connection's future is not as large as actix-http's.
            let to_actix =
                |io| -> LocalBoxFuture<Result<(), DispatchError>> { Box::pin(http.call(io)) };
            // The requests' machinery (peeks, poll answers, refusals: a few KiB of future) is
            // boxed too, and freed before a stream starts: an idle stream, which may live for
            // hours, keeps only its own state.
            let next = Box::pin(serve(io, &state)).await;
            then(next, &state, to_actix).await
        })
    }
}

/// What serves a connection once [`serve`] is done with it: actix-web (`to_actix`, from the
/// first request the fast path did not take), or the stream it admitted. A boxed future, so
/// that the connection's own future holds a pointer, not a second copy of the connection.
pub(crate) fn then<C: Conn>(
    next: Next<C>,
    state: &Arc<AppState>,
    to_actix: impl FnOnce(C) -> LocalBoxFuture<Result<(), DispatchError>>,
) -> LocalBoxFuture<Result<(), DispatchError>> {
    use futures_util::FutureExt as _;
    match next {
        Next::Actix(io) => {
            state
                .accounting
                .connections_to_actix
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            to_actix(io)
        }
        Next::Sse(io, ready) => Box::pin(sse::serve(io, ready, state.clone()).map(Ok)),
        Next::Ws(io, ws) => Box::pin(ws::serve(io, ws, state.clone(), Default::default()).map(Ok)),
        Next::Done => Box::pin(std::future::ready(Ok(()))),
    }
}

/// What a connection does once [`serve`] has answered all it answers.
pub(crate) enum Next<C> {
    /// actix-web serves it, from the first request the fast path did not take (unread).
    Actix(C),
    /// An admitted SSE stream.
    Sse(C, sse::Ready),
    /// An admitted WebSocket: its session and the handshake's `Sec-WebSocket-Accept`.
    Ws(C, (crate::transport::ws::session::Mode, String)),
    /// Closed, or the client left.
    Done,
}

/// Serves the connection's requests here for as long as the fast path answers them (polls and
/// refusals); returns it with a stream to serve, or with the first request it does not take
/// unread, for actix-web.
pub(crate) async fn serve<C: Conn>(mut io: C, state: &Arc<AppState>) -> Next<C> {
    let config = &state.config;
    let peer = io.peer_ip();
    let mut wait = Wait::First {
        request_timeout: config.request_timeout,
    };
    // Made once per connection: registering with the stop signal afresh for every request
    // of a keep-alive connection costs a lock and an unlock each time.
    let stop = state.stop.cancelled();
    tokio::pin!(stop);
    loop {
        let peeked = tokio::select! {
            peeked = head::peek(&mut io, peer, wait) => peeked,
            // Between requests, a stopping server closes the connection (actix-web's
            // keep-alive connections close the same way).
            () = &mut stop, if matches!(wait, Wait::Next { .. }) => Peeked::Idle,
        };
        wait = Wait::Next {
            keep_alive: config.keep_alive,
            request_timeout: config.request_timeout,
        };
        let head = match peeked {
            Peeked::Gone => return Next::Done,
            Peeked::Idle => {
                let _ = io.shutdown().await;
                return Next::Done;
            }
            Peeked::TimedOut => {
                wire::request_timeout(io, config.send_timeout).await;
                return Next::Done;
            }
            Peeked::Actix => return Next::Actix(io),
            Peeked::Fast(head) => head,
        };
        // Decided, then the parsed head is dropped before anything is awaited: a connection
        // handed to actix-web, or waiting for its next request, must not carry it.
        let (len, alone) = (head.len, head.alone);
        let cors = state.origins.check(&head).ok().flatten();
        let route = match head.kind {
            Kind::Sse => sse::admit(&head, state).map(|r| Route::Head(Then::Sse(r))),
            Kind::Ws => ws::admit(&head, state).map(|r| Route::Head(Then::Ws(r))),
            Kind::Echo => ws::admit_echo(&head, state).map(|r| Route::Head(Then::Ws(r))),
            Kind::Poll => poll::admit(&head, state).map(|r| Route::Head(Then::Poll(r))),
            Kind::LongPoll => {
                poll::admit_long(&head, state).map(|r| Route::Head(Then::LongPoll(r)))
            }
            Kind::Publish => publish::admit(&head, state).map(Route::Publish),
        };
        drop(head);
        let after = match route {
            Admission::Actix => return Next::Actix(io),
            Admission::Refuse(err, meter) => {
                // A poll's connection stays open after a refusal, as on actix-web; a stream's
                // closes, as it always has here.
                let after = match meter.transport {
                    Transport::LongPoll | Transport::ShortPoll => After::KeepAlive,
                    _ => After::Close,
                };
                // The request is read first: closing a socket with unread bytes would reset
                // the connection, and the client might never see the answer.
                if io.consume_head(len, alone).await.is_err() {
                    return Next::Done;
                }
                let written =
                    wire::refuse(&mut io, &err, cors.as_deref(), config.send_timeout, after).await;
                meter.bytes(written.unwrap_or(0));
                written.and(Some(after))
            }
            // Boxed: a polling connection waits for its next request in this future, which
            // must not carry a publish's state (its body, the store's or Redis' wait).
            Admission::Serve(Route::Publish(admitted)) => {
                Box::pin(publish::serve(&mut io, admitted, cors.as_deref(), state)).await
            }
            Admission::Serve(Route::Head(then)) => {
                if io.consume_head(len, alone).await.is_err() {
                    return Next::Done;
                }
                match then {
                    Then::Poll(answered) => {
                        let ok = poll::answer(&mut io, answered, cors.as_deref(), state).await;
                        ok.then_some(After::KeepAlive)
                    }
                    Then::LongPoll(held) => {
                        // Boxed: only a held long poll carries its wait's state.
                        let held = Box::pin(poll::hold(&mut io, held, cors.as_deref(), state));
                        held.await.then_some(After::KeepAlive)
                    }
                    Then::Sse(ready) => return Next::Sse(io, ready),
                    Then::Ws(ws) => return Next::Ws(io, ws),
                }
            }
        };
        if after != Some(After::KeepAlive) {
            return Next::Done;
        }
    }
}

/// Reads the `len` bytes of the request head that the peek saw (they are in the socket's
/// buffer already) into a scrap buffer on the stack that exists only while reading, left
/// uninitialised: zeroing it would cost more than the copy.
///
/// When the peek saw nothing after the head (`alone`), the read that takes its last byte
/// leaves the socket empty, and tokio is told so (the closure's `WouldBlock` clears the
/// socket's readiness, as a short read does in tokio's own `read`): the next peek then waits
/// for the socket to become readable instead of first finding it empty with a system call of
/// its own, which was one of every three receive calls a keep-alive poll made. Bytes that
/// arrived after the peek are not lost to this: the connection's task runs on one of
/// actix-web's single-threaded workers, whose I/O driver has not polled the kernel since the
/// peek, so those bytes are still an event waiting for it, and readiness returns with it.
async fn consume(io: &TcpStream, mut len: usize, alone: bool) -> std::io::Result<()> {
    let socket = socket2::SockRef::from(io);
    while len > 0 {
        io.readable().await?;
        let mut scrap = [std::mem::MaybeUninit::<u8>::uninit(); 1024];
        let mut took = 0;
        let read = io.try_io(tokio::io::Interest::READABLE, || {
            took = socket.recv(&mut scrap[..len.min(1024)])?;
            if alone && took == len {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            Ok(took)
        });
        match read {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => len -= n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => len -= took,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
