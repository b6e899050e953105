//! How a WebSocket leaves actix-http: its HTTP/1 dispatcher hands every upgrade request, with
//! the connection, to this service (actix-http's `upgrade` hook), and the session then runs on
//! the connection itself, TCP or TLS, as on the fast path ([`IoWire`]). This is how WebSockets
//! reach the session on TLS, on h2c listeners (whose HTTP/1.1 connections take the same
//! dispatcher), with `--fast-path false`, and on fast-path connections left to actix-web.
//!
//! Why not the upgraded request's payload and a streaming response body, as before: actix-http
//! reads a client's burst into its connection's read buffer, 128 KiB and more at a time, and
//! keeps that buffer (up to 256 KiB; it never shrinks it) for the connection's life, out of the
//! session's reach: 20 connections each holding an unfinished message of 65,001 one-byte
//! fragments grew the server by 6.7-7.0 MiB that way, against 1.4 MiB on the fast path (debug
//! build). Here the dispatcher is gone once the handshake is answered, with its buffers, its
//! timers and the response body's channel; what the connection holds is the session's own.
//!
//! Nothing else changes: the request still goes through the whole actix-web app (routing, the
//! wrappers of [`crate::app`]: the refusal past `--max-new-connections-per-sec`, CORS, byte
//! accounting), and its handler still makes every check ([`super::admit`]). An admitted
//! handshake leaves its session in the request's [`Takeover`] and answers `101` with no body;
//! this service writes that answer with actix-http's own encoder (the same bytes its dispatcher
//! would write) and runs the session. Any other answer (a refusal, or whatever another route
//! says to a request that asked for an upgrade) is written the same way, with the request's
//! body, until the client's EOF, read from the connection as actix-http would have, and the
//! connection is then closed, as actix-http closes one whose upgrade body was left unread.

use std::{
    cell::RefCell,
    future::Future,
    mem::MaybeUninit,
    pin::Pin,
    rc::{Rc, Weak},
    sync::Arc,
    task::Poll,
};

use actix_codec::{Encoder as _, Framed, FramedParts};
use actix_http::{
    body::{BodySize, BoxBody, MessageBody},
    error::PayloadError,
    h1, ConnectionType, HttpMessage as _, Payload, Request, Response, StatusCode,
};
use actix_service::{fn_factory, fn_service, Service, ServiceFactory};
use bytes::{Bytes, BytesMut};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Instant,
};

use super::{
    io_wire::{write_all, IoWire},
    session::{self, Mode},
};
use crate::state::AppState;

/// In an upgrade request's extensions: where its handler leaves the session to run once the
/// handshake is answered.
#[derive(Clone, Default)]
pub(crate) struct Takeover(Rc<RefCell<Option<Mode>>>);

impl Takeover {
    /// The handshake is admitted: `mode` is run on the connection after the `101`.
    pub fn hand_over(&self, mode: Mode) {
        *self.0.borrow_mut() = Some(mode);
    }

    fn take(&self) -> Option<Mode> {
        self.0.borrow_mut().take()
    }
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Most bytes of an answer gathered before they are written.
const WRITE_BATCH: usize = 64 * 1024;

/// actix-http's upgrade service for connections of type `T`, answering with the app `app`
/// builds (a second instance of the one the dispatcher serves, made the same way, per worker).
pub(crate) fn factory<T, F, B>(
    app: impl Fn() -> F + 'static,
    state: Arc<AppState>,
) -> impl ServiceFactory<
    (Request, Framed<T, h1::Codec>),
    Config = (),
    Response = (),
    Error = actix_http::Error,
    InitError = (),
>
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
    F: ServiceFactory<Request, Config = (), Response = actix_web::dev::ServiceResponse<B>>,
    F::Error: Into<Response<BoxBody>>,
    F::Service: 'static,
    F::Future: 'static,
    F::InitError: std::fmt::Debug,
    B: MessageBody + 'static,
{
    fn_factory(move || {
        let app = app().new_service(());
        let state = state.clone();
        async move {
            let app = Rc::new(app.await.map_err(|err| {
                tracing::error!("building the app for upgraded connections: {err:?}");
            })?);
            Ok(fn_service(move |(req, framed)| {
                let (app, state) = (app.clone(), state.clone());
                // Boxed: actix-http keeps this future in its dispatcher's place, and every
                // connection's dispatcher would otherwise be as large as a session.
                let serving: LocalBoxFuture<Result<(), actix_http::Error>> = Box::pin(async move {
                    // Boxed too, and gone before the session starts: the app's answer (its
                    // call, the writes) is no part of what a WebSocket keeps for its life.
                    let admitted = Box::pin(answer(app, req, framed, &state)).await;
                    if let Some((io, mode, pending)) = admitted {
                        session::serve(IoWire(io), mode, state, pending).await;
                    }
                    Ok(())
                });
                serving
            }))
        }
    })
}

/// The connection while the app answers: the payload stream reads from it too.
struct Conn<T> {
    io: T,
    /// What actix-http had read after the request head.
    read_buf: BytesMut,
    /// The body met the client's EOF (or a read error): it is over, and was not left unread.
    ended: bool,
}

/// Answers one upgrade request with the app: the connection, the session and what the client
/// sent after its head, once a `101` is written; `None` when the answer was anything else (the
/// connection is then closed) or could not be written.
async fn answer<T, S, B>(
    app: Rc<S>,
    req: Request,
    framed: Framed<T, h1::Codec>,
    state: &AppState,
) -> Option<(T, Mode, BytesMut)>
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
    S: Service<Request, Response = actix_web::dev::ServiceResponse<B>>,
    S::Error: Into<Response<BoxBody>>,
    B: MessageBody + 'static,
{
    let FramedParts {
        io,
        mut codec,
        read_buf,
        mut write_buf,
        ..
    } = framed.into_parts();
    let conn = Rc::new(RefCell::new(Conn {
        io,
        read_buf,
        ended: false,
    }));
    // The request's body is what follows its head until the client's EOF, as actix-http reads
    // an upgrade request's; only a route other than the WebSocket handlers would read it.
    let (req, _) = req.replace_payload(Payload::Stream {
        payload: payload(Rc::downgrade(&conn)),
    });
    let takeover = Takeover::default();
    req.extensions_mut().insert(takeover.clone());
    let res: Response<BoxBody> = match app.call(req).await {
        Ok(res) => Response::from(res).map_into_boxed_body(),
        Err(err) => err.into(),
    };
    let Ok(conn) = Rc::try_unwrap(conn) else {
        unreachable!("the payload holds the connection weakly");
    };
    let Conn {
        mut io,
        read_buf,
        ended,
    } = conn.into_inner();
    let limit = state.config.send_timeout;
    let mode = takeover.take();
    if let (Some(mode), StatusCode::SWITCHING_PROTOCOLS) = (mode, res.status()) {
        let (head, _) = res.into_parts();
        if codec
            .encode(h1::Message::Item((head, BodySize::Stream)), &mut write_buf)
            .is_err()
        {
            return None;
        }
        drop(codec);
        let written = write_all(&mut io, &mut [std::io::IoSlice::new(&write_buf)], limit).await;
        // Neither buffer outlives the handshake: what the client sent after its head is the
        // session's first input, copied into a buffer the session releases once decoded.
        return written
            .is_ok()
            .then(|| (io, mode, BytesMut::from(&read_buf[..])));
    }
    // Any other answer, as actix-http's dispatcher writes one to an upgrade request: with
    // `Connection: close` when its body was left unread (as good as always), and then the
    // connection closes (the client has sent its EOF, or the body is unread).
    let (mut head, body) = res.into_parts();
    if !ended {
        head.head_mut().set_connection_type(ConnectionType::Close);
    }
    let size = body.size();
    if codec
        .encode(h1::Message::Item((head, size)), &mut write_buf)
        .is_err()
    {
        return None;
    }
    let mut body = std::pin::pin!(body);
    let mut more = !matches!(size, BodySize::None | BodySize::Sized(0));
    let mut write_out = async |buf: &mut BytesMut| {
        let sent = write_all(&mut io, &mut [std::io::IoSlice::new(buf)], limit).await;
        buf.clear();
        sent.is_ok()
    };
    // What the body has ready goes out with the head, in one write, as actix-http writes it.
    while more {
        let ready = if write_buf.len() < WRITE_BATCH {
            std::future::poll_fn(|cx| Poll::Ready(body.as_mut().poll_next(cx))).await
        } else {
            Poll::Pending
        };
        let next = match ready {
            Poll::Ready(next) => next,
            Poll::Pending => {
                if !write_out(&mut write_buf).await {
                    return None;
                }
                std::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await
            }
        };
        let encoded = match next {
            Some(Ok(chunk)) => codec.encode(h1::Message::Chunk(Some(chunk)), &mut write_buf),
            // A body that fails mid-way: the connection is dropped, as actix-http drops it.
            Some(Err(_)) => return None,
            None => {
                more = false;
                codec.encode(h1::Message::Chunk(None), &mut write_buf)
            }
        };
        if encoded.is_err() {
            return None;
        }
    }
    if !write_out(&mut write_buf).await {
        return None;
    }
    use super::session::Wire as _;
    IoWire(io)
        .close(Instant::now() + state.config.close_timeout)
        .await;
    None
}

/// An upgrade request's body: what actix-http read after its head, then the connection until
/// EOF, while the connection is still lent to the app. As actix-http's, it never completes: the
/// client's EOF ends it with `PayloadError::Incomplete`.
fn payload<T: AsyncRead + Unpin + 'static>(
    conn: Weak<RefCell<Conn<T>>>,
) -> actix_http::BoxedPayloadStream {
    Box::pin(futures_util::stream::poll_fn(move |cx| {
        let Some(conn) = conn.upgrade() else {
            return Poll::Ready(None);
        };
        let mut conn = conn.borrow_mut();
        if conn.ended {
            return Poll::Ready(None);
        }
        if !conn.read_buf.is_empty() {
            return Poll::Ready(Some(Ok(conn.read_buf.split().freeze())));
        }
        let mut chunk = [MaybeUninit::<u8>::uninit(); 4096];
        let mut read = ReadBuf::uninit(&mut chunk);
        match Pin::new(&mut conn.io).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) if read.filled().is_empty() => {
                conn.ended = true;
                Poll::Ready(Some(Err(PayloadError::Incomplete(None))))
            }
            Poll::Ready(Ok(())) => Poll::Ready(Some(Ok(Bytes::copy_from_slice(read.filled())))),
            Poll::Ready(Err(e)) => {
                conn.ended = true;
                Poll::Ready(Some(Err(PayloadError::Io(e))))
            }
            Poll::Pending => Poll::Pending,
        }
    }))
}
