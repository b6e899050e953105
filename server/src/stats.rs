//! `/stats` (JSON), `/stats/client/ID` and `/metrics` (Prometheus text): one set of counters,
//! three views; and `/stats/client/ID/radio`, a client's traffic as a phone's radio would pay it.
//!
//! The load generator reads `/stats` before and after a phase and checks its own socket counts
//! against the deltas, so these numbers are part of the measurement, not decoration.

use std::{collections::BTreeMap, fmt::Write as _, sync::atomic::Ordering::Relaxed};

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::{
    accounting::CountersSnapshot, error::ApiError, process, state::AppState, transport::Transport,
};

fn per_transport(
    counters: &[crate::accounting::Counters; Transport::EVERY.len()],
) -> BTreeMap<&'static str, CountersSnapshot> {
    Transport::EVERY
        .iter()
        .map(|t| (t.name(), counters[t.index()].snapshot()))
        .collect()
}

pub fn snapshot(state: &AppState) -> serde_json::Value {
    let a = &state.accounting;
    let mut stats = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": state.started.elapsed().as_secs_f64(),
        "feed": {
            "head": state.feed.head(),
            "oldest": state.feed.oldest(),
            "retained": state.feed.retained(),
            "retain": state.config.retain,
            "published": a.published.load(Relaxed),
            "ticker_restarts": a.ticker_restarts.load(Relaxed),
        },
        "transports": per_transport(&a.transports),
        "publishes": crate::accounting::PUBLISH_WAYS
            .iter()
            .zip(&a.publishes)
            .map(|(way, c)| (*way, c.snapshot()))
            .collect::<BTreeMap<_, _>>(),
        "echo": a.echo.snapshot(),
        "connections": {
            "accepted": a.connections_accepted.load(Relaxed),
            "to_actix_web": a.connections_to_actix.load(Relaxed),
            "open_streams": a.open_streams.load(Relaxed),
            "refused": a.refused_connections.load(Relaxed),
            "refused_new_per_sec": a.refused_new_connections.load(Relaxed),
            "max": state.config.max_connections,
        },
        "process": process::usage(),
        "ticker": state.ticker.settings(),
        "redis": state.redis.as_ref().map(|r| r.view()),
        "feeds": state.feeds.view(),
        "inputs": state.inputs.view(),
    });
    stats["feed"]["ended"] = json!(state.feed.ended());
    stats
}

/// `/stats`, and with `?feed=NAME` that named feed's head, window and end as `named_feed`
/// (`null` when there is no such feed: looking does not make one).
pub async fn stats(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let q = crate::transport::FeedQuery::from_request(&req)?;
    let mut body = snapshot(&state);
    if let Some(name) = &q.feed {
        body["named_feed"] = json!(state.feeds.view_of(name));
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

pub async fn client(
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = crate::transport::parse_client_id(&id)?;
    let record = state
        .accounting
        .known_client(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no client {id:?} seen yet")))?;
    let handshake = record.ws_handshake.lock().clone();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "client": id,
            "transports": per_transport(&record.transports),
            "publishes": crate::accounting::PUBLISH_WAYS
                .iter()
                .zip(&record.publishes)
                .map(|(way, c)| (*way, c.snapshot()))
                .collect::<BTreeMap<_, _>>(),
            "ws_handshake": handshake,
        })))
}

/// `/stats/client/ID/radio?profile=NAME` (default `lte`): what each of the client's transports
/// would cost a phone's radio on that profile, from the server's write and read times
/// ([`crate::timings`]); an unknown profile is a 400 naming the profiles.
pub async fn client_radio(
    id: web::Path<String>,
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = crate::transport::parse_client_id(&id)?;
    let name = web::Query::<BTreeMap<String, String>>::from_query(req.query_string())
        .map_err(|e| ApiError::BadRequest(format!("bad query: {e}")))?
        .get("profile")
        .cloned()
        .unwrap_or_else(|| "lte".into());
    let profile =
        feedlab_radio::profile::by_name(&name).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let record = state
        .accounting
        .known_client(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no client {id:?} seen yet")))?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "client": id,
            "profile": crate::timings::ProfileView::of(&profile),
            "profiles": crate::timings::profiles(),
            "merge_ms": crate::timings::MERGE.as_millis() as u64,
            "kept": state.config.client_timings,
            "transports": crate::timings::report(&record.timings, &profile, std::time::Instant::now()),
        })))
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let a = &state.accounting;
    let mut out = String::with_capacity(4096);
    let mut family = |name: &str, kind: &str, help: &str, f: &dyn Fn(&CountersSnapshot) -> f64| {
        let _ = writeln!(
            out,
            "# HELP feedlab_{name} {help}\n# TYPE feedlab_{name} {kind}"
        );
        for t in Transport::EVERY {
            let v = f(&a.transports[t.index()].snapshot());
            let _ = writeln!(out, "feedlab_{name}{{transport=\"{t}\"}} {v}");
        }
    };
    family(
        "open_connections",
        "gauge",
        "Open connections (held requests for long-poll).",
        &|c| c.open as f64,
    );
    family(
        "requests_total",
        "counter",
        "HTTP requests and WebSocket handshakes served.",
        &|c| c.requests as f64,
    );
    family(
        "events_delivered_total",
        "counter",
        "Events written to clients.",
        &|c| c.events_delivered as f64,
    );
    family(
        "empty_responses_total",
        "counter",
        "Poll responses that carried no event.",
        &|c| c.empty_responses as f64,
    );
    family(
        "bytes_written_total",
        "counter",
        "Bytes written, HTTP heads and WebSocket framing included.",
        &|c| c.bytes_written as f64,
    );
    family(
        "payload_bytes_uncompressed_total",
        "counter",
        "What bytes_written_total would be with nothing compressed (gzip'd bodies, permessage-deflate frames).",
        &|c| c.payload_bytes_uncompressed as f64,
    );
    family(
        "messages_received_total",
        "counter",
        "WebSocket messages received from clients.",
        &|c| c.messages_received as f64,
    );
    family(
        "resends_total",
        "counter",
        "WebTransport requests to send events again (wt-datagrams' resend), apart from messages.",
        &|c| c.resends as f64,
    );
    let p = process::usage();
    let scalars: [(&str, &str, &str, f64); 9] = [
        (
            "feed_head_seq",
            "gauge",
            "Seq of the newest event.",
            state.feed.head() as f64,
        ),
        (
            "published_total",
            "counter",
            "Events published.",
            a.published.load(Relaxed) as f64,
        ),
        (
            "connections_accepted_total",
            "counter",
            "TCP connections accepted.",
            a.connections_accepted.load(Relaxed) as f64,
        ),
        (
            "connections_refused_total",
            "counter",
            "Connections refused past --max-connections.",
            a.refused_connections.load(Relaxed) as f64,
        ),
        (
            "connections_refused_new_per_sec_total",
            "counter",
            "Requests refused on new connections past --max-new-connections-per-sec.",
            a.refused_new_connections.load(Relaxed) as f64,
        ),
        (
            "process_cpu_user_seconds_total",
            "counter",
            "User CPU time.",
            p.cpu_user_s,
        ),
        (
            "process_cpu_system_seconds_total",
            "counter",
            "System CPU time.",
            p.cpu_system_s,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident set size.",
            p.rss_bytes as f64,
        ),
        (
            "process_resident_memory_peak_bytes",
            "gauge",
            "Peak resident set size.",
            p.rss_peak_bytes as f64,
        ),
    ];
    for (name, kind, help, v) in scalars {
        let _ = writeln!(
            out,
            "# HELP feedlab_{name} {help}\n# TYPE feedlab_{name} {kind}\nfeedlab_{name} {v}"
        );
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(out)
}
