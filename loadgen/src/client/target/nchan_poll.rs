//! Long polling and interval polling against Nchan, on one kept HTTP/1.1 connection per client.
//!
//! Nchan's cursor is the answer's `Last-Modified` and `Etag`, sent back as `If-Modified-Since`
//! and `If-None-Match`. A long poll is held until a message comes (one message per answer, or
//! several one per line with `nchan_longpoll_multipart_response raw`); a `408` (its
//! `nchan_subscriber_timeout`) is an empty answer, and at the end of the phase a held poll is
//! abandoned, since Nchan takes no per-request hold time. An interval poll answers at once,
//! `304` when there is nothing new and otherwise the next single message, so a client asks
//! again at once after every `200` until it gets a `304`, then waits for its next intended
//! time (as loadgen's short polling of feedlab does): one request per message, plus one per
//! interval.

use bytes::Bytes;
use feedlab_wire::Transport;
use http_body_util::BodyExt as _;
use hyper::{header, StatusCode};

use super::nchan::{Channel, START_MODIFIED};
use crate::{
    client::{failover::Failover, ClientCtx},
    clock::{self, Pace},
    event::EventMsg,
    net::HttpVersion,
    net::{self, Sender},
    stats::Recorder,
};

/// Where a client is in the channel: the last answer's `Last-Modified` and `Etag`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    modified: String,
    etag: String,
}

impl Cursor {
    fn start() -> Self {
        Self {
            modified: START_MODIFIED.to_owned(),
            etag: "0".to_owned(),
        }
    }
}

/// One answer.
struct Answer {
    status: StatusCode,
    /// The cursor after it, when it named one.
    next: Option<Cursor>,
    body: Bytes,
}

pub async fn run(ctx: &ClientCtx, rec: &mut Recorder, channel: &Channel) {
    let s = &ctx.shared;
    let long = s.transport == Transport::LongPoll;
    let path = if long {
        &channel.subscribe
    } else {
        &channel.poll
    };
    let mut failover = Failover::new(ctx);
    let mut conn: Option<(Sender, net::Connection)> = None;
    let mut cursor = Cursor::start();
    let pace = Pace {
        start: tokio::time::Instant::now() + ctx.first_delay,
        interval: s.poll_interval,
    };
    let mut n = 0u64;
    // An interval poll that just got a message asks again at once.
    let mut behind = false;
    loop {
        if !long && !behind {
            let due = pace.intended(n);
            n += 1;
            tokio::select! {
                biased;
                _ = s.stop.cancelled() => break,
                _ = tokio::time::sleep_until(due) => {}
            }
        } else if s.stop.is_cancelled() {
            break;
        }
        if conn.is_none() {
            let Some(_permit) = failover.attempt(ctx, rec).await else {
                break;
            };
            let target = failover.target(ctx).clone();
            match net::connect(&target, ctx.source_ip(&target), &ctx.wire, net::Alpn::Http1).await {
                Ok(stream) => match net::http_inline(stream, HttpVersion::Http11).await {
                    Ok(c) => {
                        rec.connections += 1;
                        failover.ready(ctx);
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
        let target = failover.target(ctx).clone();
        let Ok(req) = target
            .get(path, HttpVersion::Http11)
            .header(header::IF_MODIFIED_SINCE, &cursor.modified)
            .header(header::IF_NONE_MATCH, &cursor.etag)
            .body(net::empty())
        else {
            rec.error("bad_request");
            break;
        };
        let outcome = {
            let Some((sender, connection)) = conn.as_mut() else {
                break;
            };
            // A long poll is held for as long as nothing comes: the phase's end abandons it.
            match super::answered(exchange(sender, req), connection, long, &s.stop).await {
                Some(a) => a,
                None => break,
            }
        };
        let answer = match outcome {
            Ok(a) => a,
            Err(kind) => {
                rec.error(kind);
                conn = None;
                failover.down(ctx, rec);
                continue;
            }
        };
        rec.request();
        match answer.status {
            StatusCode::OK => {
                failover.up(ctx);
                let now = clock::now_us();
                let mut events = 0;
                for line in answer.body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    match serde_json::from_slice::<EventMsg>(line) {
                        Ok(e) => {
                            events += 1;
                            rec.event(e.seq, e.ts, e.data, now);
                        }
                        Err(_) => rec.error("bad_body"),
                    }
                }
                match answer.next {
                    Some(next) if next != cursor => cursor = next,
                    // Without a new cursor the same message would come again for ever.
                    _ => {
                        rec.error("nchan_no_cursor");
                        conn = None;
                        failover.down(ctx, rec);
                        continue;
                    }
                }
                behind = !long && events > 0;
            }
            StatusCode::NOT_MODIFIED | StatusCode::REQUEST_TIMEOUT => {
                failover.up(ctx);
                rec.empty_responses += 1;
                behind = false;
            }
            other => {
                rec.error(format!("http_{}", other.as_u16()));
                conn = None;
                behind = false;
                failover.down(ctx, rec);
            }
        }
    }
    if let Some((sender, mut connection)) = conn.take() {
        drop(sender);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), connection.as_mut()).await;
    }
}

async fn exchange(
    sender: &mut Sender,
    req: hyper::Request<net::Body>,
) -> Result<Answer, &'static str> {
    sender
        .ready()
        .await
        .map_err(|e| net::hyper_error_kind(&e))?;
    let res = sender
        .send_request(req)
        .await
        .map_err(|e| net::hyper_error_kind(&e))?;
    let status = res.status();
    let text = |name| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let next = match (text(header::LAST_MODIFIED), text(header::ETAG)) {
        (Some(modified), Some(etag)) => Some(Cursor { modified, etag }),
        _ => None,
    };
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| net::hyper_error_kind(&e))?
        .to_bytes();
    Ok(Answer { status, next, body })
}
