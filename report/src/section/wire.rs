//! Cost on the wire: the table of requests, connections and bytes, the sentences ranking bytes
//! and requests per event, and their two bar charts.

use crate::{
    is_polling,
    svg::{self, Chart},
    tables::{shown, Table},
    units::{bytes, int, num, opt},
    words::ranked,
    Report, TransportResult,
};

pub fn table(report: &Report) -> Table {
    let mut t = Table::new(
        "Cost on the wire",
        "Counted on loadgen's sockets: HTTP heads, chunked framing and WebSocket framing included. Per event = per delivered event.",
        &["transport", "requests", "empty", "connections", "bytes down", "bytes up", "bytes / event", "requests / event", "overhead × payload"],
    );
    let primary = report.primary_http();
    for r in shown(report) {
        t.rows.push(vec![
            r.label(primary),
            int(r.http_requests),
            int(r.empty_responses),
            int(r.connections_opened),
            bytes(r.bytes_down as f64),
            bytes(r.bytes_up as f64),
            opt(r.bytes_per_event, |v| format!("{v:.0} B")),
            opt(r.requests_per_event, num),
            opt(r.overhead_ratio, |v| format!("{v:.2}×")),
        ]);
    }
    t
}

/// Bytes per event ranked, then requests (ranked for polling, described for streams).
pub fn sentences(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    let rows: Vec<&TransportResult> = report.headline();
    out.extend(ranked(
        report,
        "Bytes",
        "bytes on the wire per delivered event",
        &rows,
        |r| r.bytes_per_event,
        bytes,
    ));
    out.extend(requests(report, &rows));
    out
}

/// Requests per event mean one thing for polling (a request per answer) and another for a
/// stream (one request per connection, so per event it only shrinks with the phase's length):
/// polling is ranked, streams are described.
fn requests(report: &Report, rows: &[&TransportResult]) -> Vec<String> {
    let polling: Vec<&TransportResult> = rows
        .iter()
        .copied()
        .filter(|r| is_polling(&r.transport))
        .collect();
    let streams: Vec<&str> = rows
        .iter()
        .filter(|r| !is_polling(&r.transport))
        .map(|r| r.transport.as_str())
        .collect();
    let mut out = Vec::new();
    if let Some(mut s) = ranked(
        report,
        "Requests",
        "HTTP requests per delivered event",
        &polling,
        |r| r.requests_per_event,
        num,
    ) {
        if let Some(sp) = polling.iter().find(|r| r.transport == "short-poll") {
            if sp.events_published > 0 && sp.empty_responses > 0 {
                let share = sp.empty_responses as f64 / sp.http_requests.max(1) as f64;
                s.push_str(&format!(
                    " {:.0}% of short polls came back empty.",
                    share * 100.0
                ));
            }
        }
        out.push(s);
    }
    if !streams.is_empty() {
        out.push(format!(
            "**Requests, streams:** {} make one request per connection however long it stays open, so their requests per event only shrink as a phase gets longer — a ratio against polling would measure the phase, not the transport.",
            streams.join(" and ")
        ));
    }
    out
}

/// Bytes and requests per delivered event, one bar per shown row.
pub fn charts(report: &Report) -> anyhow::Result<Vec<Chart>> {
    let bytes = svg::bars(
        report,
        "bytes_per_event.svg",
        "Bytes on the wire per delivered event",
        "bytes",
        |r| r.bytes_per_event,
    )?;
    let requests = svg::bars(
        report,
        "requests_per_event.svg",
        "HTTP requests per delivered event",
        "requests",
        |r| r.requests_per_event,
    )?;
    Ok(bytes.into_iter().chain(requests).collect())
}
