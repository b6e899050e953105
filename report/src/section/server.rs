//! Cost on the server: the table of server CPU and memory (loadgen's own beside it), the
//! sentences ranking server CPU per delivery where `/proc`'s clock can tell, and its bar chart.

use crate::{
    is_polling,
    spread::CPU_RESOLUTION_S,
    svg::{self, Chart},
    tables::{shown, Table},
    units::{bytes, num, opt},
    words::ranked,
    Report, TransportResult,
};

pub fn table(report: &Report) -> Table {
    let mut t = Table::new(
        "Cost on the server",
        "Server CPU (user + system, 10 ms resolution) and resident memory during each phase; loadgen's own cost beside it. Memory per connection is the growth of RSS over the phase divided by its connections, given only from 1,000 connections (below that one allocator arena outweighs the connections).",
        &["transport", "server CPU", "CPU / 1000 events", "server RSS peak", "RSS / connection", "loadgen CPU", "loadgen RSS / connection"],
    );
    let primary = report.primary_http();
    for r in shown(report) {
        let shared = if r.server_cost_shared {
            " (shared)"
        } else {
            ""
        };
        t.rows.push(vec![
            r.label(primary),
            opt(r.server_cpu_s, |v| format!("{v:.2} s{shared}")),
            opt(r.server_cpu_us_per_event, |v| format!("{} ms", num(v))),
            opt(r.server_rss_peak_bytes.map(|v| v as f64), bytes),
            opt(r.server_rss_per_connection_bytes, bytes),
            opt(r.loadgen_cpu_s, |v| format!("{v:.2} s")),
            opt(r.loadgen_rss_per_connection_bytes, bytes),
        ]);
    }
    t
}

/// Server CPU per delivery across the headline rows.
pub fn sentences(report: &Report) -> Vec<String> {
    server_cpu(report, &report.headline())
}

/// Server CPU per delivery, ranked only where the phases used enough CPU for `/proc`'s 10 ms
/// tick, and with the note that streams and polls may run on different engines.
fn server_cpu(report: &Report, rows: &[&TransportResult]) -> Vec<String> {
    if rows.iter().any(|r| r.server_cost_shared) {
        return vec!["**Server CPU:** the transports ran together (`--concurrent`), so the server's CPU cannot be split between them; run them one after another to compare it.".into()];
    }
    let least = |r: &TransportResult| match &r.spread {
        Some(sp) => sp.server_cpu_min_s,
        None => r.server_cpu_s,
    };
    let coarse: Vec<&str> = rows
        .iter()
        .filter(|r| r.server_cpu_s.is_some() && least(r).unwrap_or(0.0) < CPU_RESOLUTION_S)
        .map(|r| r.transport.as_str())
        .collect();
    let mut out = Vec::new();
    if !coarse.is_empty() {
        let list: Vec<String> = rows
            .iter()
            .filter_map(|r| {
                r.server_cpu_us_per_event
                    .map(|v| format!("{} {} ms", r.transport, num(v)))
            })
            .collect();
        out.push(format!(
            "**Server CPU** per 1000 deliveries: {} — not ranked: {} used under {} ms of server CPU in a phase, within a few ticks of `/proc`'s 10 ms clock. Run longer or with more clients to compare it.",
            list.join(" · "),
            coarse.join(", "),
            num(CPU_RESOLUTION_S * 1000.0)
        ));
    } else if let Some(s) = ranked(
        report,
        "Server CPU",
        "ms per 1000 deliveries",
        rows,
        |r| r.server_cpu_us_per_event.filter(|_| !r.server_cost_shared),
        |v| format!("{} ms", num(v)),
    ) {
        out.push(s);
    }
    if !out.is_empty()
        && rows.iter().any(|r| is_polling(&r.transport))
        && rows.iter().any(|r| !is_polling(&r.transport))
    {
        out.push("Server CPU here is the whole server's, engine included (feedlab's server serves all four transports on its own fast path; `--fast-path=false` puts them on actix-web): what each transport costs on its own, against a framework-free floor, is in the README's *Cost of fan-out* (`scripts/fanout/bench.py`).".into());
    }
    out
}

/// Server CPU per 1000 delivered events, one bar per shown row.
pub fn chart(report: &Report) -> anyhow::Result<Option<Chart>> {
    svg::bars(
        report,
        "server_cpu_per_1000_events.svg",
        "Server CPU per 1000 delivered events",
        "ms",
        |r| r.server_cpu_us_per_event,
    )
}
