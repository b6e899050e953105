//! Server-Sent Events: one long response per client, parsed with `eventsource-stream` over the
//! hyper body (never by hand). Over HTTP/2 the response is a stream on the client's own
//! connection (one connection per client, so the numbers compare with HTTP/1.1). A stream that ends (server restart, `event: overflow`) is resumed
//! with `Last-Event-ID`, the way a browser's EventSource would.

use eventsource_stream::{EventStreamError, Eventsource as _};
use futures_util::StreamExt as _;
use http_body_util::BodyExt as _;
use hyper::{header, StatusCode};

use std::sync::{
    atomic::{AtomicU64, Ordering::Relaxed},
    Arc,
};

use super::{close, failover::Failover, ClientCtx, H2Handoff, RESPONSE_TIMEOUT};
use crate::{
    clock, compression,
    event::{EventMsg, MissedNotice},
    heads::Kind,
    net::{self, HttpVersion, Sender},
    stats::Recorder,
    storm,
};

pub async fn run(ctx: &ClientCtx, rec: &mut Recorder, h2: Option<&H2Handoff>) {
    let s = &ctx.shared;
    let mut failover = Failover::new(ctx);
    'connection: loop {
        let Some(permit) = failover.attempt(ctx, rec).await else {
            break;
        };
        let target = failover.target(ctx).clone();
        let stream = match net::connect(
            &target,
            ctx.source_ip(&target),
            &ctx.wire,
            net::alpn_for(s.http),
        )
        .await
        {
            Ok(stream) => stream,
            Err(e) => {
                rec.error(net::io_error_kind(&e));
                failover.down(ctx, rec);
                continue;
            }
        };
        rec.connections += 1;
        let (mut sender, task): (Sender, _) = match net::http(stream, s.http).await {
            Ok(c) => c,
            Err(e) => {
                rec.error(net::hyper_error_kind(&e));
                failover.down(ctx, rec);
                continue;
            }
        };
        let cursor = rec.seq.resume_cursor();
        let mut req = target.dress.apply(
            target.get(&s.stream_path(cursor), s.http),
            Kind::Sse,
            s.http == HttpVersion::Http2,
            s.compression,
        );
        // A peer resumes by its own message id (in the URL `stream_path` gives), if at all.
        if failover.resuming() && s.channel.is_none() {
            req = req.header("last-event-id", cursor.to_string());
        }
        let Ok(req) = req.body(net::empty()) else {
            rec.error("bad_request");
            break;
        };
        let res = tokio::select! {
            biased;
            _ = s.stop.cancelled() => break,
            r = tokio::time::timeout(RESPONSE_TIMEOUT, sender.send_request(req)) => r,
        };
        let res = match res {
            Ok(Ok(res)) => res,
            Ok(Err(e)) => {
                rec.error(net::hyper_error_kind(&e));
                failover.down(ctx, rec);
                continue;
            }
            Err(_) => {
                rec.error("timeout");
                task.abort();
                failover.down(ctx, rec);
                continue;
            }
        };
        drop(permit);
        rec.request();
        if res.status() != StatusCode::OK {
            let status = res.status().as_u16();
            let after =
                storm::retry_after(res.headers().get(header::RETRY_AFTER).map(|v| v.as_bytes()));
            rec.error(format!("http_{status}"));
            let _ = res.into_body().collect().await;
            failover.refused(ctx, status, after);
            failover.down(ctx, rec);
            continue;
        }
        failover.up(ctx);
        if let Some(h2) = h2 {
            h2.send_replace(sender.h2_clone());
        }
        let decoding = &ctx.wire.decoding;
        let mut decoder = match compression::BodyDecoder::for_encoding(
            compression::content_encoding(res.headers()),
        ) {
            Ok(d) => d,
            Err(e) => {
                rec.error(e.kind());
                failover.down(ctx, rec);
                continue;
            }
        };
        decoding.answer(decoder.name());
        // The stream's `retry:` hint, in ms + 1 (0: none yet), for a client-like `--reconnect`.
        let hint = Arc::new(AtomicU64::new(0));
        let mut scan = s.reconnect.is_client_like().then(storm::RetryScan::default);
        let seen = hint.clone();
        // Decoded chunk by chunk as hyper hands them over, so each event is parsed (and timed)
        // as soon as its bytes are in.
        let body = res
            .into_body()
            .into_data_stream()
            .map(move |chunk| match chunk {
                Ok(chunk) => {
                    let decoded = decoder.feed(chunk, decoding).map_err(Broken::Decode)?;
                    if let Some(h) = scan.as_mut().and_then(|sc| sc.feed(&decoded)) {
                        seen.store(h.as_millis() as u64 + 1, Relaxed);
                    }
                    Ok(decoded)
                }
                Err(_) => Err(Broken::Http),
            });
        let mut events = body.eventsource();
        loop {
            let next = tokio::select! {
                biased;
                _ = s.stop.cancelled() => {
                    drop(events);
                    drop(sender);
                    close(task).await;
                    break 'connection;
                }
                next = events.next() => next,
            };
            match next {
                Some(Ok(ev)) => record(rec, &ev),
                Some(Err(EventStreamError::Transport(Broken::Decode(e)))) => {
                    rec.error(e.kind());
                    break;
                }
                Some(Err(_)) => {
                    rec.error("sse_stream");
                    break;
                }
                None => {
                    rec.error("sse_ended");
                    break;
                }
            }
        }
        drop(events);
        drop(sender);
        if let Some(h2) = h2 {
            h2.send_replace(None);
        }
        close(task).await;
        if let Some(ms) = hint.load(Relaxed).checked_sub(1) {
            failover.retry_hint(std::time::Duration::from_millis(ms));
        }
        failover.down(ctx, rec);
    }
    if let Some(h2) = h2 {
        h2.send_replace(None);
    }
}

/// Why an event stream broke off below the event parser.
#[derive(Debug)]
pub(crate) enum Broken {
    /// The connection failed (counted as `sse_stream`, as before decoding existed).
    Http,
    Decode(compression::DecodeError),
}

/// Records one SSE event (over any HTTP version): a feed event, a `missed` notice, the
/// `overflow` notice as an error; comments and others are nothing to record.
pub(crate) fn record(rec: &mut Recorder, ev: &eventsource_stream::Event) {
    let now = clock::now_us();
    match ev.event.as_str() {
        "message" => match serde_json::from_str::<EventMsg>(&ev.data) {
            Ok(e) => rec.event(e.seq, e.ts, e.data, now),
            Err(_) => rec.error("bad_body"),
        },
        "missed" => match serde_json::from_str::<MissedNotice>(&ev.data) {
            Ok(m) => rec.seq.missed(m.missed, m.next),
            Err(_) => rec.error("bad_body"),
        },
        "overflow" => rec.error("sse_overflow"),
        _ => {}
    }
}
