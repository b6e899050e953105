//! Short and long polling share one loop: ask for `since=<cursor>`, read the batch, move the
//! cursor to `next`. Short polling waits for its next intended time (fixed schedule, so a slow
//! response does not thin out the polls after it); long polling asks again at once.
//!
//! With `--http 1.1` a client keeps one connection alive; with `--http 1.0` it opens a new one
//! for every request, which is what the report's connection-per-request comparison measures;
//! with `--http 2` its requests are streams on one HTTP/2 connection.

use bytes::Bytes;
use feedlab_wire::Transport;
use http_body_util::BodyExt as _;
use hyper::StatusCode;

use super::{failover::Failover, long_poll, ClientCtx, H2Handoff, RESPONSE_TIMEOUT};
use crate::{
    clock::{self, Pace},
    compression,
    event::PollBody,
    heads::Kind,
    net::HttpVersion,
    net::{self, Sender, Target},
    stats::Recorder,
};

/// What one request came to.
enum Outcome {
    /// Status, body as received, its `Content-Encoding`.
    Response(StatusCode, Bytes, Option<String>),
    /// The connection failed before a response (the request may not have been sent).
    Failed(&'static str),
}

pub async fn run(ctx: &ClientCtx, rec: &mut Recorder, h2: Option<&H2Handoff>) {
    let s = &ctx.shared;
    let long = s.transport == Transport::LongPoll;
    let keep_alive = s.http != HttpVersion::Http10;
    let mut failover = Failover::new(ctx);
    if !keep_alive {
        // Nothing to hold open: ready at once.
        failover.ready(ctx);
    }
    let mut conn: Option<(Sender, net::Connection)> = None;
    let mut cursor = s.cursor;
    let pace = Pace {
        start: tokio::time::Instant::now() + ctx.first_delay,
        interval: s.poll_interval,
    };
    let mut n = 0u64;
    loop {
        let timeout_ms = if long {
            let deadline = *s.deadline.borrow();
            match long_poll::timeout_ms(s.long_poll_timeout, deadline, tokio::time::Instant::now())
            {
                Some(ms) if !s.stop.is_cancelled() => Some(ms),
                _ => break,
            }
        } else {
            let due = pace.intended(n);
            n += 1;
            if due > tokio::time::Instant::now() {
                tokio::select! {
                    biased;
                    _ = s.stop.cancelled() => break,
                    _ = tokio::time::sleep_until(due) => {}
                }
            } else if s.stop.is_cancelled() {
                // Behind schedule (or `--poll-interval 0`): no timer, straight to the request.
                break;
            }
            None
        };

        if conn.is_none() {
            // A keep-alive client's every connection goes through the link (backoff, gate,
            // failover); a connection-per-request client's only after a failure.
            let _permit = if keep_alive || failover.failing() {
                match failover.attempt(ctx, rec).await {
                    Some(p) => Some(p),
                    None => break,
                }
            } else {
                None
            };
            let target = failover.target(ctx).clone();
            match net::connect(
                &target,
                ctx.source_ip(&target),
                &ctx.wire,
                net::alpn_for(s.http),
            )
            .await
            {
                Ok(stream) => match net::http_inline(stream, s.http).await {
                    Ok(c) => {
                        rec.connections += 1;
                        // Connected is ready (a long-poll's first answer may be an event away);
                        // a reconnect ends only with the next response, in `up`.
                        failover.ready(ctx);
                        if let Some(h2) = h2 {
                            h2.send_replace(c.0.h2_clone());
                        }
                        conn = Some(c);
                    }
                    Err(e) => rec.error(net::hyper_error_kind(&e)),
                },
                Err(e) => rec.error(net::io_error_kind(&e)),
            }
            if conn.is_none() {
                failover.down(ctx, rec);
                continue;
            }
        }
        // The failover moves only when a connection is dropped: this is where `conn` goes.
        let target = failover.target(ctx).clone();

        let path = match timeout_ms {
            Some(ms) => format!("/long-poll?since={cursor}&timeout_ms={ms}"),
            None => format!("/poll?since={cursor}"),
        };
        let limit = RESPONSE_TIMEOUT + std::time::Duration::from_millis(timeout_ms.unwrap_or(0));
        let outcome = {
            // unwrap: checked just above.
            let (sender, connection) = conn.as_mut().expect("connection");
            let request = exchange(sender, &target, s.http, &path, s.compression, long);
            tokio::pin!(request);
            tokio::time::timeout(limit, async {
                tokio::select! {
                    biased;
                    o = &mut request => o,
                    // The connection ended (HTTP/1.0 closes after the response): what was read
                    // is still delivered to the request.
                    _ = connection.as_mut() => request.await,
                }
            })
            .await
            .unwrap_or(Outcome::Failed("timeout"))
        };
        match outcome {
            Outcome::Response(status, body, encoding) => {
                match record(
                    ctx,
                    rec,
                    status,
                    body,
                    encoding.as_deref(),
                    long,
                    &mut cursor,
                ) {
                    Answer::Up => failover.up(ctx),
                    Answer::Bad => {}
                    Answer::Refused(status) => {
                        failover.refused(ctx, status, None);
                        failover.down(ctx, rec);
                        conn = None;
                        if let Some(h2) = h2 {
                            h2.send_replace(None);
                        }
                    }
                }
                if !keep_alive {
                    conn = None;
                }
            }
            Outcome::Failed(kind) => {
                rec.error(kind);
                conn = None;
                if let Some(h2) = h2 {
                    h2.send_replace(None);
                }
                failover.down(ctx, rec);
            }
        }
    }
    if let Some(h2) = h2 {
        h2.send_replace(None);
    }
    if let Some((sender, mut connection)) = conn.take() {
        // Let hyper close the idle connection properly, briefly.
        drop(sender);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), connection.as_mut()).await;
    }
}

/// What an answer to a poll came to.
pub(crate) enum Answer {
    /// A batch or a long poll's `204`: the server is there.
    Up,
    /// A body that could not be read (counted as an error).
    Bad,
    /// Any other status: a proxy's 502/504, a 503 from a server going down, a 409 from an
    /// instance that has not caught up yet (counted as an error): try the next server.
    Refused(u16),
}

/// Records a poll's answer (over any HTTP version): the request, its events (decoded before
/// the clock is read: a browser sees the events only then), a `missed` notice, an empty answer;
/// moves `cursor` to the batch's `next`.
pub(crate) fn record(
    ctx: &ClientCtx,
    rec: &mut Recorder,
    status: StatusCode,
    body: Bytes,
    encoding: Option<&str>,
    long: bool,
    cursor: &mut u64,
) -> Answer {
    rec.request();
    let decoded = compression::decode_body(encoding, body, &ctx.wire.decoding);
    let now = clock::now_us();
    match status {
        StatusCode::OK => match decoded.map(|body| serde_json::from_slice::<PollBody>(&body)) {
            Ok(Ok(batch)) => {
                if let Some(up_to) = batch.missed_up_to() {
                    rec.seq.missed(batch.missed, up_to);
                }
                if batch.events.is_empty() && !long {
                    rec.empty_responses += 1;
                }
                for e in &batch.events {
                    rec.event(e.seq, e.ts, e.data, now);
                }
                *cursor = (*cursor).max(batch.next);
                Answer::Up
            }
            Ok(Err(_)) => {
                rec.error("bad_body");
                Answer::Bad
            }
            Err(e) => {
                rec.error(e.kind());
                Answer::Bad
            }
        },
        StatusCode::NO_CONTENT if long => {
            rec.empty_responses += 1;
            Answer::Up
        }
        other => {
            rec.error(format!("http_{}", other.as_u16()));
            Answer::Refused(other.as_u16())
        }
    }
}

async fn exchange(
    sender: &mut Sender,
    target: &Target,
    http: HttpVersion,
    path: &str,
    compress: bool,
    long: bool,
) -> Outcome {
    let kind = if long { Kind::LongPoll } else { Kind::Poll };
    let req = target
        .dress
        .apply(
            target.get(path, http),
            kind,
            http == HttpVersion::Http2,
            compress,
        )
        .body(net::empty());
    let Ok(req) = req else {
        return Outcome::Failed("bad_request");
    };
    if let Err(e) = sender.ready().await {
        return Outcome::Failed(net::hyper_error_kind(&e));
    }
    let res = match sender.send_request(req).await {
        Ok(res) => res,
        Err(e) => return Outcome::Failed(net::hyper_error_kind(&e)),
    };
    let status = res.status();
    let encoding = compression::content_encoding(res.headers()).map(str::to_owned);
    match res.into_body().collect().await {
        Ok(body) => Outcome::Response(status, body.to_bytes(), encoding),
        Err(e) => Outcome::Failed(net::hyper_error_kind(&e)),
    }
}
