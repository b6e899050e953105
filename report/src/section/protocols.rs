//! HTTP versions and TLS: the two comparison tables (each transport over HTTP/1.0, 1.1 and 2;
//! plain against TLS) and the sentences the conclusions say about them.

use crate::{
    tables::{shown, Table},
    units::*,
    words::*,
    Report, TransportResult,
};

/// `+12%`, `−3%`, or `±0%` below half a percent.
fn pct(v: f64, b: f64) -> String {
    if b <= 0.0 {
        return "–".into();
    }
    let p = (v / b - 1.0) * 100.0;
    if p.abs() < 0.5 {
        "±0%".into()
    } else {
        format!("{p:+.0}%")
    }
}

/// Columns of the two comparison tables.
const COMPARE: [&str; 8] = [
    "transport",
    "HTTP",
    "TLS",
    "bytes / event",
    "connections",
    "p50",
    "p99",
    "server CPU / 1000 events",
];

fn compare_row(r: &TransportResult, base: Option<&TransportResult>) -> Vec<String> {
    let vs = |v: Option<f64>, b: Option<f64>, f: &dyn Fn(f64, f64) -> String| match (v, b) {
        (Some(v), Some(b)) if base.is_some_and(|x| !std::ptr::eq(x, r)) => {
            format!(" ({})", f(v, b))
        }
        _ => String::new(),
    };
    let bpe = r.bytes_per_event;
    let cpu = r.server_cpu_us_per_event;
    vec![
        r.transport.clone(),
        r.http.clone(),
        if r.tls { "yes".into() } else { "no".into() },
        opt(bpe, |v| {
            format!(
                "{v:.0} B{}",
                vs(bpe, base.and_then(|b| b.bytes_per_event), &|v, b| format!(
                    "{:+.0} B, {}",
                    v - b,
                    pct(v, b)
                ))
            )
        }),
        int(r.connections_opened),
        us(r.latency_us.p50),
        us(r.latency_us.p99),
        opt(cpu, |v| {
            format!(
                "{} ms{}",
                num(v),
                vs(
                    cpu,
                    base.and_then(|b| b.server_cpu_us_per_event),
                    &|v, b| {
                        if b > 0.0 {
                            format!("{}×", num(v / b))
                        } else {
                            "–".into()
                        }
                    }
                )
            )
        }),
    ]
}

/// HTTP/1.0, 1.1 and 2 side by side for the HTTP transports (same cell, same TLS mode as the
/// headline); `None` when the run measured one version only. Changes are against HTTP/1.1.
pub fn http_versions(report: &Report) -> Option<Table> {
    let rows = shown(report);
    let mut t = Table::new(
        "HTTP/1.0, 1.1 and 2",
        "The same transport over each HTTP version (1.0: a TCP connection per request; 1.1: one keep-alive connection per client; 2: one HTTP/2 connection per client). In brackets: the change against HTTP/1.1.",
        &COMPARE,
    );
    for tls in [false, true] {
        for name in ["short-poll", "long-poll", "sse"] {
            let same: Vec<&TransportResult> = rows
                .iter()
                .copied()
                .filter(|r| r.transport == name && r.tls == tls)
                .collect();
            if same.len() < 2 {
                continue;
            }
            let base = same.iter().copied().find(|r| r.http == "1.1");
            let mut ordered = same.clone();
            ordered.sort_by(|a, b| a.http.cmp(&b.http));
            for r in ordered {
                t.rows.push(compare_row(r, base));
            }
        }
    }
    (!t.rows.is_empty()).then_some(t)
}

/// Plain against TLS for every transport and HTTP version measured both ways; `None` without
/// TLS phases. Changes are against plain.
pub fn plain_vs_tls(report: &Report) -> Option<Table> {
    let rows = shown(report);
    let mut t = Table::new(
        "Plain against TLS",
        "The same transport and HTTP version without and with TLS; TLS bytes are records on the socket (handshakes included). In brackets: the change against plain.",
        &COMPARE,
    );
    for name in ["short-poll", "long-poll", "sse", "ws"] {
        for http in ["1.0", "1.1", "2"] {
            let plain = rows
                .iter()
                .copied()
                .find(|r| r.transport == name && r.http == http && !r.tls);
            let tls = rows
                .iter()
                .copied()
                .find(|r| r.transport == name && r.http == http && r.tls);
            if let (Some(p), Some(s)) = (plain, tls) {
                t.rows.push(compare_row(p, Some(p)));
                t.rows.push(compare_row(s, Some(p)));
            }
        }
    }
    (!t.rows.is_empty()).then_some(t)
}

/// HTTP/2 against HTTP/1.1 for the HTTP transports measured both ways.
pub fn http2_costs(report: &Report) -> Vec<String> {
    let tls = report.phases.first().is_some_and(|r| r.tls);
    let mut parts = Vec::new();
    for t in ["short-poll", "long-poll", "sse"] {
        let (Some(h1), Some(h2)) = (find(report, t, "1.1", tls), find(report, t, "2", tls)) else {
            continue;
        };
        let mut bits = Vec::new();
        if let Some(s) = versus(report, h2, h1, |r| r.bytes_per_event, &bytes, &change) {
            bits.push(format!("{s} per event"));
        }
        if let Some(s) = versus(report, h2, h1, cpu, &cpu_ms, &change) {
            bits.push(format!("server CPU per 1000 events {s}"));
        }
        if let Some(s) = versus(report, h2, h1, p50, &lat, &change) {
            bits.push(format!("median latency {s}"));
        }
        parts.push(format!("{t} {}", bits.join(", ")));
    }
    if parts.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "**HTTP/2 against HTTP/1.1{}** (medians over the runs; a change is given only where the ranking rule separates them): {}.",
        if tls { " (over TLS)" } else { "" },
        parts.join("; ")
    )]
}

/// TLS against plain for every transport measured both ways (at the headline HTTP version).
pub fn tls_costs(report: &Report) -> Vec<String> {
    let primary = report.primary_http();
    let mut parts = Vec::new();
    let mut added = Vec::new();
    for t in ["short-poll", "long-poll", "sse", "ws"] {
        let http = match (t, primary) {
            ("ws", _) | ("sse", "1.0") => "1.1",
            (_, p) => p,
        };
        let (Some(plain), Some(tls)) = (find(report, t, http, false), find(report, t, http, true))
        else {
            continue;
        };
        let (Some((bt, _)), Some((bp, _))) = (
            report.figure(tls, |r| r.bytes_per_event),
            report.figure(plain, |r| r.bytes_per_event),
        ) else {
            continue;
        };
        added.push(bt.median - bp.median);
        let mut bits = vec![format!("{t} {:+.0} B per event", bt.median - bp.median)];
        if let Some(s) = versus(report, tls, plain, |r| r.bytes_per_event, &bytes, &change) {
            bits.push(s);
        }
        if let Some(s) = versus(report, tls, plain, cpu, &cpu_ms, &|a, b| {
            if b > 0.0 {
                format!("{}× the server CPU", num(a / b))
            } else {
                "n/a".into()
            }
        }) {
            bits.push(format!("server CPU per 1000 events {s}"));
        }
        if let Some(s) = versus(report, tls, plain, p50, &lat, &change) {
            bits.push(format!("median latency {s}"));
        }
        parts.push(bits.join(", "));
    }
    if parts.is_empty() {
        return Vec::new();
    }
    let (lo, hi) = added
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    vec![format!(
        "**TLS against plain:** by the medians over the runs, TLS adds {} to {} B per event on the wire (records, and handshakes amortised over the phase); a change is given only where the ranking rule separates them: {}.",
        num(lo.round()),
        num(hi.round()),
        parts.join("; ")
    )]
}

/// HTTP/1.0 (a connection per request) against keep-alive, for each polling transport measured
/// both ways in the same cell.
pub fn http10_costs(report: &Report) -> Vec<String> {
    let tls = report.phases.first().is_some_and(|r| r.tls);
    let mut out = Vec::new();
    for t in ["short-poll", "long-poll"] {
        let (Some(ka), Some(h10)) = (find(report, t, "1.1", tls), find(report, t, "1.0", tls))
        else {
            continue;
        };
        let conns = |r: &TransportResult| Some(r.connections_opened as f64);
        let count = |v: f64| crate::units::int(v.round() as u64);
        let mut s = format!("**HTTP/1.0 against keep-alive ({t})**, medians over the runs (a change only where the ranking rule separates them):");
        if let Some(c) = versus(report, h10, ka, conns, &count, &change) {
            s.push_str(&format!(" TCP connections opened {c}"));
        }
        if let Some(b) = versus(report, h10, ka, |r| r.bytes_per_event, &bytes, &change) {
            s.push_str(&format!(
                "; bytes per event {b} (TCP handshakes are below the socket and not counted)"
            ));
        }
        if let Some(c) = versus(report, h10, ka, cpu, &cpu_ms, &change) {
            s.push_str(&format!("; server CPU per 1000 events {c}"));
        }
        if let Some(l) = versus(report, h10, ka, p50, &lat, &change) {
            s.push_str(&format!("; median latency {l}"));
        }
        s.push('.');
        out.push(s);
    }
    if out.is_empty() && report.settings.http.len() == 1 && report.settings.http[0] == "1.1" {
        out.push("HTTP/1.0 was not measured; run with `--http 1.1,1.0` to see what a connection per request costs.".into());
    }
    out
}
