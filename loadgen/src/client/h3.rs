//! Polls, long polls and SSE over HTTP/3 (`--http 3`): one HTTP/3 connection per client over
//! QUIC, each request a stream on it, as `--http 2` does over TCP.
//!
//! The h3 crate's client over h3-quinn, on the QUIC endpoints WebTransport's clients use
//! ([`wt::endpoint`]: a few UDP sockets per source address, not one per client). An answer is
//! recorded by the same code as over TCP ([`poll::record`], [`sse::record`]), so the integrity
//! checks are the same.
//!
//! Bytes: `plain_read` counts what the server counts it wrote: each body piece as its DATA frame
//! (type, length varint, payload) and each response head as its fields' text (what QPACK
//! decodes to, the same on both sides); `read`/`written` count the connection's UDP payload,
//! added when it ends, as for WebTransport.
//!
//! Across `--network` as WebTransport's clients (the endpoints' sockets in the link's client
//! namespace). Not yet: talk-back rides a TCP connection of its own (`post-second-connection`).

use std::sync::atomic::Ordering::Relaxed;

use bytes::{Buf as _, Bytes};
use eventsource_stream::Eventsource as _;
use feedlab_wire::Transport;
use futures_util::StreamExt as _;
use hyper::{header, Request, StatusCode};

use super::{
    failover::Failover,
    long_poll, poll,
    poll::Answer,
    sse::{self, Broken},
    wt::{self, count_udp},
    ClientCtx, RESPONSE_TIMEOUT,
};
use crate::{clock::Pace, compression, heads::Kind, net::Target, stats::Recorder};

type Requests = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;
type Response = h3::client::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

/// What one connection came to.
enum Ended {
    /// The phase is over.
    Stopped,
    /// The connection or a request failed: connect again (after the failover's backoff).
    Down,
}

pub async fn run(ctx: &ClientCtx, rec: &mut Recorder) {
    let s = &ctx.shared;
    let mut failover = Failover::new(ctx);
    let mut polls = Polls {
        cursor: s.cursor,
        pace: Pace {
            start: tokio::time::Instant::now() + ctx.first_delay,
            interval: s.poll_interval,
        },
        n: 0,
    };
    loop {
        let Some(permit) = failover.attempt(ctx, rec).await else {
            break;
        };
        let target = failover.target(ctx).clone();
        let connected = tokio::select! {
            biased;
            _ = s.stop.cancelled() => break,
            r = tokio::time::timeout(RESPONSE_TIMEOUT, connect(ctx, &target)) => r,
        };
        let (conn, requests) = match connected {
            Ok(Ok(c)) => c,
            Ok(Err(kind)) => {
                rec.error(kind);
                failover.down(ctx, rec);
                continue;
            }
            Err(_) => {
                rec.error("timeout");
                failover.down(ctx, rec);
                continue;
            }
        };
        drop(permit);
        rec.connections += 1;
        failover.ready(ctx);
        let ended = if s.transport == Transport::Sse {
            events(ctx, rec, &mut failover, &target, requests).await
        } else {
            polls.run(ctx, rec, &mut failover, &target, requests).await
        };
        conn.close(quinn::VarInt::from_u32(0x100), b"done");
        count_udp(&conn, &ctx.wire);
        match ended {
            Ended::Stopped => break,
            Ended::Down => failover.down(ctx, rec),
        }
    }
}

/// A QUIC connection to `target` and an HTTP/3 client on it (its driver on a task that ends
/// with the connection).
async fn connect(
    ctx: &ClientCtx,
    target: &Target,
) -> Result<(quinn::Connection, Requests), &'static str> {
    let config = wt::client_config(target)?;
    let endpoint = wt::endpoint(ctx, target, ctx.source_ip(target))
        .map_err(|e| crate::net::io_error_kind(&e))?;
    let server_name = target
        .tls
        .as_ref()
        .map_or_else(String::new, |t| t.server_name.to_str().into_owned());
    let conn = endpoint
        .connect_with(config, target.addr, &server_name)
        .map_err(|_| "h3_connect")?
        .await
        .map_err(|_| "h3_connect")?;
    let (mut driver, requests) = h3::client::new(h3_quinn::Connection::new(conn.clone()))
        .await
        .map_err(|_| "h3_settings")?;
    tokio::spawn(async move { std::future::poll_fn(|cx| driver.poll_close(cx)).await });
    Ok((conn, requests))
}

/// A GET for `path_and_query` on `target`, dressed as the TCP clients dress theirs.
fn get(target: &Target, path_and_query: &str, kind: Kind, compress: bool) -> Option<Request<()>> {
    let builder = Request::get(target.uri(path_and_query));
    // HTTP/3 names the host in `:authority`, as HTTP/2 does.
    target
        .dress
        .apply(builder, kind, true, compress)
        .body(())
        .ok()
}

/// Sends `req` (no body) and waits for its head, counted as the server counts it: its fields'
/// text, `name: value` and a line end each, the status as `:status`.
async fn send(
    ctx: &ClientCtx,
    requests: &mut Requests,
    req: Request<()>,
) -> Result<(StatusCode, Option<String>, Response), &'static str> {
    let mut stream = requests.send_request(req).await.map_err(|_| "h3_request")?;
    stream.finish().await.map_err(|_| "h3_request")?;
    let head = stream.recv_response().await.map_err(|_| "h3_response")?;
    let fields: usize = head
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    let status = ":status: 200\r\n".len();
    ctx.wire
        .plain_read
        .fetch_add((status + fields) as u64, Relaxed);
    let encoding = compression::content_encoding(head.headers()).map(str::to_owned);
    Ok((head.status(), encoding, stream))
}

/// The next piece of a body, counted; `Ok(None)` at its end.
async fn next_data(stream: &mut Response, ctx: &ClientCtx) -> Result<Option<Bytes>, ()> {
    match stream.recv_data().await {
        Ok(Some(mut data)) => {
            let bytes = data.copy_to_bytes(data.remaining());
            ctx.wire
                .plain_read
                .fetch_add(frame_len(bytes.len()), Relaxed);
            Ok(Some(bytes))
        }
        Ok(None) => Ok(None),
        Err(_) => Err(()),
    }
}

/// Bytes of an HTTP/3 DATA frame carrying `len` bytes: type, length varint, payload.
fn frame_len(len: usize) -> u64 {
    let varint = match len {
        0..=63 => 1,
        64..=16_383 => 2,
        16_384..=1_073_741_823 => 4,
        _ => 8,
    };
    (1 + varint + len) as u64
}

/// A short or long polling client's loop state, kept across connections.
struct Polls {
    cursor: u64,
    pace: Pace,
    n: u64,
}

impl Polls {
    /// Polls on one connection until the phase ends or the connection fails.
    async fn run(
        &mut self,
        ctx: &ClientCtx,
        rec: &mut Recorder,
        failover: &mut Failover,
        target: &Target,
        mut requests: Requests,
    ) -> Ended {
        let s = &ctx.shared;
        let long = s.transport == Transport::LongPoll;
        loop {
            let timeout_ms = if long {
                let deadline = *s.deadline.borrow();
                let now = tokio::time::Instant::now();
                match long_poll::timeout_ms(s.long_poll_timeout, deadline, now) {
                    Some(ms) if !s.stop.is_cancelled() => Some(ms),
                    _ => return Ended::Stopped,
                }
            } else {
                let due = self.pace.intended(self.n);
                self.n += 1;
                tokio::select! {
                    biased;
                    _ = s.stop.cancelled() => return Ended::Stopped,
                    _ = tokio::time::sleep_until(due) => {}
                }
                None
            };
            let cursor = self.cursor;
            let path = match timeout_ms {
                Some(ms) => format!("/long-poll?since={cursor}&timeout_ms={ms}"),
                None => format!("/poll?since={cursor}"),
            };
            let kind = if long { Kind::LongPoll } else { Kind::Poll };
            let Some(req) = get(target, &path, kind, s.compression) else {
                rec.error("bad_request");
                return Ended::Stopped;
            };
            let limit =
                RESPONSE_TIMEOUT + std::time::Duration::from_millis(timeout_ms.unwrap_or(0));
            let exchange = async {
                let (status, encoding, mut stream) = send(ctx, &mut requests, req).await?;
                let mut body = Vec::new();
                while let Some(piece) = next_data(&mut stream, ctx).await.map_err(|()| "h3_body")? {
                    body.extend_from_slice(&piece);
                }
                Ok::<_, &'static str>((status, encoding, Bytes::from(body)))
            };
            let (status, encoding, body) = match tokio::time::timeout(limit, exchange).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(kind)) => {
                    rec.error(kind);
                    return Ended::Down;
                }
                Err(_) => {
                    rec.error("timeout");
                    return Ended::Down;
                }
            };
            let answer = poll::record(
                ctx,
                rec,
                status,
                body,
                encoding.as_deref(),
                long,
                &mut self.cursor,
            );
            match answer {
                Answer::Up => failover.up(ctx),
                Answer::Bad => {}
                Answer::Refused(status) => {
                    failover.refused(ctx, status, None);
                    return Ended::Down;
                }
            }
        }
    }
}

/// One SSE response on the connection, read until the phase ends or it breaks (then resumed on
/// a new connection with `Last-Event-ID`, as EventSource would).
async fn events(
    ctx: &ClientCtx,
    rec: &mut Recorder,
    failover: &mut Failover,
    target: &Target,
    mut requests: Requests,
) -> Ended {
    let s = &ctx.shared;
    let cursor = rec.seq.resume_cursor();
    let Some(mut req) = get(target, &s.stream_path(cursor), Kind::Sse, s.compression) else {
        rec.error("bad_request");
        return Ended::Stopped;
    };
    if failover.resuming() {
        if let Ok(value) = header::HeaderValue::from_str(&cursor.to_string()) {
            req.headers_mut().insert("last-event-id", value);
        }
    }
    let sent = tokio::select! {
        biased;
        _ = s.stop.cancelled() => return Ended::Stopped,
        r = tokio::time::timeout(RESPONSE_TIMEOUT, send(ctx, &mut requests, req)) => r,
    };
    let (status, encoding, mut stream) = match sent {
        Ok(Ok(sent)) => sent,
        Ok(Err(kind)) => {
            rec.error(kind);
            return Ended::Down;
        }
        Err(_) => {
            rec.error("timeout");
            return Ended::Down;
        }
    };
    rec.request();
    if status != StatusCode::OK {
        rec.error(format!("http_{}", status.as_u16()));
        failover.refused(ctx, status.as_u16(), None);
        return Ended::Down;
    }
    failover.up(ctx);
    let mut decoder = match compression::BodyDecoder::for_encoding(encoding.as_deref()) {
        Ok(d) => d,
        Err(e) => {
            rec.error(e.kind());
            return Ended::Down;
        }
    };
    let decoding = &ctx.wire.decoding;
    decoding.answer(decoder.name());
    let body = futures_util::stream::unfold(&mut stream, |stream| async move {
        match next_data(stream, ctx).await {
            Ok(Some(piece)) => Some((Ok(piece), stream)),
            Ok(None) => None,
            Err(()) => Some((Err(Broken::Http), stream)),
        }
    })
    .map(|piece| piece.and_then(|p| decoder.feed(p, decoding).map_err(Broken::Decode)));
    let parsed = body.eventsource();
    tokio::pin!(parsed);
    loop {
        let next = tokio::select! {
            biased;
            _ = s.stop.cancelled() => return Ended::Stopped,
            next = parsed.next() => next,
        };
        match next {
            Some(Ok(ev)) => sse::record(rec, &ev),
            Some(Err(eventsource_stream::EventStreamError::Transport(Broken::Decode(e)))) => {
                rec.error(e.kind());
                return Ended::Down;
            }
            Some(Err(_)) => {
                rec.error("sse_stream");
                return Ended::Down;
            }
            // The server ended the stream (shutdown, overflow): resume on a new connection.
            None => return Ended::Down,
        }
    }
}
