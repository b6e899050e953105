//! HTTP/3 on the QUIC endpoint (`--quic --quic-http3`): `GET /poll`, `/long-poll` and `/sse`,
//! served by the h3 crate over h3-quinn, through the same steps as actix-web's handlers and the
//! fast path ([`transport::poll`], [`transport::long_poll`], [`transport::sse::Stream`]): the
//! same cursor, the same bytes, the same limits, the same accounting. Only the framing is
//! HTTP/3's: a poll's answer is one HEADERS and one DATA frame, an SSE chunk one DATA frame.
//!
//! Each request is a bidirectional stream, so a connection holds at most
//! `--quic-max-bidi-streams` requests at once; a long poll or a stream counts in the connection
//! limits as it does over HTTP/2 (one per request, through [`AppState::open`]). Bytes are counted
//! as HTTP/3 sends them, before QUIC: a body piece as its DATA frame (type, length and payload);
//! a head as its fields' text (`name: value` and a line end each, the status as `:status`),
//! which QPACK's static table makes smaller on the wire.
//!
//! The QUIC connection itself counts once in `--max-connections` and `--max-connections-per-ip`
//! from its first packet, as a WebTransport one does (a client could otherwise hold connections
//! without end by sending no request), under no transport; its held long polls and streams count
//! as well, one each, as over HTTP/2. Past a limit it is closed after its handshake, the limit as
//! the reason.
//!
//! Every other request (the page, `/stats`, `/publish`, ...) goes to the actix-web app through
//! [`bridge`](super::bridge), so a browser that moved the origin to HTTP/3 still gets the page.
//!
//! Not yet: a held long poll whose client left is noticed only when its hold ends (at most
//! `--long-poll-max`), not at once as on TCP (the h3 crate does not show a request stream's
//! reset while its response is pending).
//!
//! [`transport::poll`]: crate::transport::poll
//! [`transport::long_poll`]: crate::transport::long_poll
//! [`transport::sse::Stream`]: crate::transport::sse::Stream

use std::{net::SocketAddr, sync::Arc};

use actix_web::{body::MessageBody as _, ResponseError as _};
use bytes::Bytes;
use h3::server::RequestStream;
use web_transport_quinn::http::{self, Method, StatusCode};

use super::{
    bridge::{Asked, Bridge},
    request::QuicRequest,
};
use crate::{
    accounting::{Framing, Meter},
    compress,
    error::ApiError,
    incoming::Incoming as _,
    state::AppState,
    transport::{long_poll, poll, sse, start_cursor, PollAnswer, Transport},
};

type Stream = RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

/// What a request is answered with.
enum Reply {
    /// A poll's answer, counted on its meter once written.
    Answer(PollAnswer, Meter),
    /// An SSE response: its first chunk and the stream of the rest.
    Events(Bytes, Box<sse::Stream>),
    /// A refusal, counted on the request's meter when it got that far.
    Refuse(ApiError, Option<Meter>),
}

/// One QUIC connection speaking HTTP/3, from its first packet to its end: its requests each on
/// a task of their own, until the client or the server ends the connection.
pub async fn connection(
    incoming: quinn::Incoming,
    open: Result<crate::accounting::OpenGuard, String>,
    state: Arc<AppState>,
    bridge: Bridge,
) {
    let config = &state.config;
    let Ok(connecting) = incoming.accept() else {
        return;
    };
    let Ok(Ok(conn)) = tokio::time::timeout(config.request_timeout, connecting).await else {
        return;
    };
    let _open = match open {
        Ok(guard) => guard,
        Err(limit) => {
            let why = ApiError::TooManyConnections(limit).to_string();
            conn.close(
                quinn::VarInt::from_u32(super::connect::H3_REQUEST_REJECTED),
                why.as_bytes(),
            );
            return;
        }
    };
    let peer = conn.remote_address();
    let mut builder = h3::server::builder();
    builder.max_field_section_size(config.quic.quic_max_header_bytes);
    let built = builder.build(h3_quinn::Connection::new(conn));
    let Ok(Ok(mut h3)) = tokio::time::timeout(config.request_timeout, built).await else {
        return;
    };
    let mut requests = tokio::task::JoinSet::new();
    loop {
        let resolver = match h3.accept().await {
            Ok(Some(resolver)) => resolver,
            Ok(None) | Err(_) => break,
        };
        let state = state.clone();
        let bridge = bridge.clone();
        requests.spawn(async move {
            let resolved =
                tokio::time::timeout(state.config.request_timeout, resolver.resolve_request());
            if let Ok(Ok((req, stream))) = resolved.await {
                serve(req, stream, peer, state, &bridge).await;
            }
        });
        while requests.try_join_next().is_some() {}
    }
    // Requests still held end with the feed (shutdown) or their hold; the client left if the
    // connection did.
    while requests.join_next().await.is_some() {}
}

/// Answers one request.
async fn serve(
    req: http::Request<()>,
    mut stream: Stream,
    peer: SocketAddr,
    state: Arc<AppState>,
    bridge: &Bridge,
) {
    let uri = req.uri();
    let authority = uri.authority().map(|a| a.as_str().to_owned());
    let incoming = QuicRequest::new(
        authority.unwrap_or_default(),
        uri.query().unwrap_or_default(),
        req.headers(),
        peer.ip(),
    );
    // Foreign pages get no CORS header, so the browser keeps the answer from them (as over TCP).
    let cors = state.origins.check(&incoming).ok().flatten();
    let reply = match (req.method(), uri.path()) {
        (&Method::GET, "/poll") => short_poll(&incoming, &state),
        (&Method::GET, "/long-poll") => long_poll(&incoming, &state).await,
        (&Method::GET, "/sse") => events(&incoming, &state),
        (_, "/poll" | "/long-poll" | "/sse") => Reply::Refuse(
            ApiError::BadRequest(format!("{} takes GET, not {}", uri.path(), req.method())),
            None,
        ),
        (_, path @ ("/ws" | "/ws/echo")) => Reply::Refuse(
            ApiError::NotFound(format!(
                "{path} is over TCP only: WebSockets over HTTP/3 (RFC 9220) are not served"
            )),
            None,
        ),
        _ => return bridged(req, stream, peer, &state, bridge).await,
    };
    let reply = match reply {
        Reply::Events(prelude, events) => {
            return stream_events(stream, prelude, *events, cors.as_deref(), &state).await;
        }
        other => other,
    };
    let limit = state.config.send_timeout;
    let _ = tokio::time::timeout(limit, async {
        match reply {
            Reply::Answer(answer, meter) => {
                let written = write(
                    &mut stream,
                    status(answer.status),
                    answer.headers.iter().map(|&(n, v)| (n, v.to_owned())),
                    cors.as_deref(),
                    Some(&meter),
                )
                .await;
                if written.is_ok() && !answer.body.is_empty() {
                    let data = Framing::Http3.chunk_len(answer.body.len());
                    meter.delivered_as(
                        0,
                        data,
                        data - answer.body.len() as u64 + answer.uncompressed,
                    );
                    let _ = stream.send_data(answer.body).await;
                }
                let _ = stream.finish().await;
            }
            Reply::Refuse(error, meter) => {
                refuse(&mut stream, &error, cors.as_deref(), meter).await
            }
            Reply::Events(..) => {}
        }
    })
    .await;
}

/// Any other request, answered by the actix-web app ([`bridge`](super::bridge)), its body read
/// first (at most `--max-publish-bytes`, within `--body-timeout`).
async fn bridged(
    req: http::Request<()>,
    mut stream: Stream,
    peer: SocketAddr,
    state: &AppState,
    bridge: &Bridge,
) {
    let config = &state.config;
    let limit = config.max_publish_bytes;
    let read = tokio::time::timeout(config.body_timeout, async {
        let mut body = bytes::BytesMut::new();
        while let Some(mut chunk) = stream.recv_data().await.ok()? {
            use bytes::Buf as _;
            let size = body.len() + chunk.remaining();
            if size > limit {
                return Some(Err(size));
            }
            while chunk.has_remaining() {
                let piece = chunk.chunk();
                body.extend_from_slice(piece);
                let n = piece.len();
                chunk.advance(n);
            }
        }
        Some(Ok(body.freeze()))
    })
    .await;
    let body = match read {
        Ok(Some(Ok(body))) => body,
        Ok(Some(Err(size))) => {
            let error = ApiError::BodyTooLarge { size, limit };
            let _ =
                tokio::time::timeout(config.send_timeout, refuse(&mut stream, &error, None, None))
                    .await;
            return;
        }
        // The client left, or did not finish its body within --body-timeout.
        _ => return,
    };
    let (parts, ()) = req.into_parts();
    let answer = bridge
        .ask(Asked {
            method: parts.method,
            path_and_query: parts
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
            authority: parts.uri.authority().map(|a| a.as_str().to_owned()),
            headers: parts.headers,
            body,
            peer,
        })
        .await;
    let _ = tokio::time::timeout(config.send_timeout, async {
        let mut res = http::Response::builder().status(answer.status);
        for (name, value) in answer.headers {
            res = res.header(name, value);
        }
        let Ok(res) = res.body(()) else {
            return;
        };
        if stream.send_response(res).await.is_err() {
            return;
        }
        if !answer.body.is_empty() && stream.send_data(answer.body).await.is_err() {
            return;
        }
        let _ = stream.finish().await;
    })
    .await;
}

/// A short poll, through the handler's steps.
fn short_poll(req: &QuicRequest, state: &AppState) -> Reply {
    let q = match poll::check(req, state) {
        Ok(q) => q,
        Err(e) => return Reply::Refuse(e, None),
    };
    let meter = state
        .accounting
        .meter(Transport::ShortPoll, q.client.as_deref());
    meter.request_over(req.version());
    match poll::answer(state, &q, PollAnswer::coding(req, state)) {
        Ok((answer, events)) => {
            poll::count(&meter, events);
            Reply::Answer(answer, meter)
        }
        Err(e) => Reply::Refuse(e, Some(meter)),
    }
}

/// A long poll, held until it has an answer, through the handler's steps.
async fn long_poll(req: &QuicRequest, state: &AppState) -> Reply {
    let (q, hold) = match long_poll::check(req, state) {
        Ok(checked) => checked,
        Err(e) => return Reply::Refuse(e, None),
    };
    let meter = state
        .accounting
        .meter(Transport::LongPoll, q.client.as_deref());
    meter.request_over(req.version());
    let held = async {
        let feed = q.feed(state)?;
        let cursor = start_cursor(&feed, q.since)?;
        let _open = state.open(&meter, req)?;
        let coding = PollAnswer::coding(req, state);
        long_poll::wait(state, &feed, &meter, cursor, hold, coding).await
    };
    match held.await {
        Ok(answer) => Reply::Answer(answer, meter),
        Err(e) => Reply::Refuse(e, Some(meter)),
    }
}

/// An SSE response's start, through the handler's steps and its [`sse::Stream`].
fn events(req: &QuicRequest, state: &Arc<AppState>) -> Reply {
    let checked = crate::transport::FeedQuery::from_request(req).and_then(|q| {
        q.authorize(req, state)?;
        Ok((q, sse::last_event_id(req)?))
    });
    let (q, last_event_id) = match checked {
        Ok(checked) => checked,
        Err(e) => return Reply::Refuse(e, None),
    };
    let meter = state.accounting.meter(Transport::Sse, q.client.as_deref());
    meter.request_over(req.version());
    let started = (|| {
        let feed = q.feed(state)?;
        let cursor = start_cursor(&feed, last_event_id.or(q.since))?;
        let open = state.open(&meter, req)?;
        Ok::<_, ApiError>((feed, cursor, open))
    })();
    let (feed, cursor, open) = match started {
        Ok(started) => started,
        Err(e) => return Reply::Refuse(e, Some(meter)),
    };
    let gzip = compress::negotiate(state.config.http_gzip, req.headers());
    let (prelude, stream) = sse::Stream::start(
        state.clone(),
        feed,
        meter,
        open,
        cursor,
        Framing::of(req),
        false,
        gzip,
    );
    Reply::Events(prelude, Box::new(stream))
}

/// Writes the SSE head and every chunk the stream hands out, each within `--send-timeout`,
/// until the stream ends (shutdown, `--max-lag`, a named feed's end) or the client leaves.
async fn stream_events(
    mut stream: Stream,
    prelude: Bytes,
    mut events: sse::Stream,
    cors: Option<&str>,
    state: &AppState,
) {
    let limit = state.config.send_timeout;
    let mut headers = vec![
        ("content-type", "text/event-stream".to_owned()),
        ("cache-control", "no-cache".to_owned()),
        ("x-accel-buffering", "no".to_owned()),
    ];
    if events.gzip() {
        headers.push(("content-encoding", "gzip".to_owned()));
        headers.push(("vary", "Accept-Encoding".to_owned()));
    }
    let meter = events.meter().clone();
    let head = write(&mut stream, StatusCode::OK, headers, cors, Some(&meter));
    if !matches!(tokio::time::timeout(limit, head).await, Ok(Ok(()))) {
        return;
    }
    let mut next = Some(prelude);
    while let Some(bytes) = next {
        match tokio::time::timeout(limit, stream.send_data(bytes)).await {
            Ok(Ok(())) => {}
            // The client left (its stream stopped) or stopped reading for --send-timeout.
            _ => return,
        }
        next = events.next_chunk().await.map(sse::Chunk::into_body);
    }
    let _ = tokio::time::timeout(limit, stream.finish()).await;
}

/// Answers `error` as actix-web would (its status, headers and body), counted on `meter`.
async fn refuse(stream: &mut Stream, error: &ApiError, cors: Option<&str>, meter: Option<Meter>) {
    let (status, headers, body) = error_parts(error);
    let headers = headers.iter().map(|(n, v)| (n.as_str(), v.clone()));
    if write(stream, status, headers, cors, meter.as_ref())
        .await
        .is_ok()
        && !body.is_empty()
    {
        if let Some(meter) = &meter {
            meter.bytes(Framing::Http3.chunk_len(body.len()));
        }
        let _ = stream.send_data(body).await;
    }
    let _ = stream.finish().await;
}

/// `error` as actix-web answers it: status, headers and body.
fn error_parts(error: &ApiError) -> (StatusCode, Vec<(String, String)>, Bytes) {
    let res = error.error_response();
    let headers = res
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let status = status(res.status());
    let body = res.into_body().try_into_bytes().unwrap_or_default();
    (status, headers, body)
}

/// Sends a response head with `headers` (and CORS for an allowed origin), counted on `meter`.
async fn write<'a>(
    stream: &mut Stream,
    status: StatusCode,
    headers: impl IntoIterator<Item = (&'a str, String)>,
    cors: Option<&str>,
    meter: Option<&Meter>,
) -> Result<(), h3::error::StreamError> {
    let mut res = http::Response::builder().status(status);
    let mut len = ":status: 200\r\n".len();
    let cors = cors.map(|origin| {
        [
            ("access-control-allow-origin", origin.to_owned()),
            ("vary", "Origin".to_owned()),
        ]
    });
    for (name, value) in headers.into_iter().chain(cors.into_iter().flatten()) {
        len += name.len() + value.len() + 4;
        res = res.header(name, value);
    }
    let Ok(res) = res.body(()) else {
        return Ok(());
    };
    if let Some(meter) = meter {
        meter.bytes(len as u64);
    }
    stream.send_response(res).await
}

/// actix-web's status (`http` 0.2) as the h3 crate's (`http` 1).
fn status(status: actix_web::http::StatusCode) -> StatusCode {
    StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
