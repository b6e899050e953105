//! The conclusion, written from the numbers: who won on latency, bytes, requests and server CPU
//! and by how much, when short polling's interval is what its latency is made of, and what a
//! TCP connection per request (HTTP/1.0) costs over keep-alive. Pure: model in, sentences out.

use super::{
    tables::{bytes, num, us},
    Report, TransportResult,
};

/// Below this much server CPU in a phase, the 10 ms tick of `/proc` makes per-event CPU too
/// coarse to rank transports.
const MIN_CPU_S: f64 = 0.05;

pub fn conclusions(report: &Report, poll_interval_s: f64) -> Vec<String> {
    let mut out = Vec::new();
    let rows: Vec<&TransportResult> = report.headline();
    let lossy: Vec<&str> = report
        .phases
        .iter()
        .filter(|r| r.has_loss())
        .map(|r| r.transport.as_str())
        .collect();
    if !lossy.is_empty() {
        let gaps: u64 = report.phases.iter().map(|r| r.gaps).sum();
        let dups: u64 = report.phases.iter().map(|r| r.duplicates).sum();
        let ooo: u64 = report.phases.iter().map(|r| r.out_of_order).sum();
        out.push(format!(
            "**LOSS: this run lost or garbled events** ({gaps} gaps, {dups} duplicates, {ooo} out of order, in {}). The numbers below describe a broken delivery.",
            dedup(&lossy).join(", ")
        ));
    } else if !report.phases.is_empty() {
        let expected: u64 = report.phases.iter().map(|r| r.events_expected).sum();
        out.push(format!(
            "Every client received every event exactly once and in order ({} deliveries checked).",
            super::tables::int(expected)
        ));
    }
    if report.interrupted {
        out.push("The run was interrupted (Ctrl-C): only the phases that ran are reported.".into());
    }
    out.extend(resilience(report));

    let with_latency: Vec<&TransportResult> = rows
        .iter()
        .copied()
        .filter(|r| r.latency_us.count > 0)
        .collect();
    if let (Some(best), Some(worst)) = (
        min_by(&with_latency, |r| r.latency_us.p50 as f64),
        max_by(&with_latency, |r| r.latency_us.p50 as f64),
    ) {
        let mut s = format!(
            "**Latency:** {} delivered fastest, median {} (p99 {})",
            best.transport,
            us(best.latency_us.p50),
            us(best.latency_us.p99)
        );
        if best.transport != worst.transport {
            s.push_str(&format!(
                "; {} was slowest at {} (p99 {}), {} the median",
                worst.transport,
                us(worst.latency_us.p50),
                us(worst.latency_us.p99),
                times(worst.latency_us.p50 as f64, best.latency_us.p50 as f64)
            ));
        }
        s.push('.');
        if let Some(tail) = min_by(&with_latency, |r| r.latency_us.p99 as f64) {
            if tail.transport != best.transport {
                s.push_str(&format!(
                    " The best tail was {}'s (p99 {}).",
                    tail.transport,
                    us(tail.latency_us.p99)
                ));
            }
        }
        out.push(s);
    }

    if let Some(sp) = rows.iter().find(|r| r.transport == "short-poll") {
        let half_us = poll_interval_s * 500_000.0;
        if sp.latency_us.count > 0 && poll_interval_s > 0.0 {
            let p50 = sp.latency_us.p50 as f64;
            if p50 > 0.5 * half_us {
                let others = rows
                    .iter()
                    .filter(|r| r.transport != "short-poll" && r.latency_us.count > 0)
                    .map(|r| r.latency_us.p50)
                    .max();
                let mut s = format!(
                    "**Short polling's latency is its poll interval:** an event waits for the next poll, so the median ({}) sits near half the {} interval ({}) and the maximum ({}) near the whole of it",
                    us(sp.latency_us.p50),
                    secs(poll_interval_s),
                    us(half_us as u64),
                    us(sp.latency_us.max)
                );
                if let Some(o) = others {
                    s.push_str(&format!(
                        "; the push transports' medians were all at most {}",
                        us(o)
                    ));
                }
                s.push_str(". Polling faster buys latency with requests.");
                out.push(s);
            } else {
                out.push(format!(
                    "Short polling's median ({}) is well below half its {} interval: at this rate most polls find an event waiting, so the server's work, not the interval, shapes its latency.",
                    us(sp.latency_us.p50),
                    secs(poll_interval_s)
                ));
            }
        }
    }

    let with_bytes: Vec<&TransportResult> = rows
        .iter()
        .copied()
        .filter(|r| r.bytes_per_event.is_some())
        .collect();
    if let (Some(best), Some(worst)) = (
        min_by(&with_bytes, |r| r.bytes_per_event.unwrap_or(f64::MAX)),
        max_by(&with_bytes, |r| r.bytes_per_event.unwrap_or(0.0)),
    ) {
        let b = best.bytes_per_event.unwrap_or(0.0);
        let w = worst.bytes_per_event.unwrap_or(0.0);
        out.push(format!(
            "**Bytes:** {} used the fewest, {} per delivered event ({} the {} payload); {} used the most, {}, {} as many.",
            best.transport,
            bytes(b),
            best.overhead_ratio.map_or_else(|| "–".into(), |o| format!("{o:.2}×")),
            bytes(best.data_bytes_per_event),
            worst.transport,
            bytes(w),
            times(w, b)
        ));
    }

    let with_requests: Vec<&TransportResult> = rows
        .iter()
        .copied()
        .filter(|r| r.requests_per_event.is_some())
        .collect();
    if let (Some(best), Some(worst)) = (
        min_by(&with_requests, |r| r.requests_per_event.unwrap_or(f64::MAX)),
        max_by(&with_requests, |r| r.requests_per_event.unwrap_or(0.0)),
    ) {
        let b = best.requests_per_event.unwrap_or(0.0);
        let w = worst.requests_per_event.unwrap_or(0.0);
        let mut s = format!(
            "**Requests:** {} made the fewest, {} per delivered event ({} in all); {} made {} per event ({} in all), {} as many.",
            best.transport,
            num(b),
            super::tables::int(best.http_requests),
            worst.transport,
            num(w),
            super::tables::int(worst.http_requests),
            times(w, b)
        );
        if let Some(sp) = rows.iter().find(|r| r.transport == "short-poll") {
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

    let with_cpu: Vec<&TransportResult> = rows
        .iter()
        .copied()
        .filter(|r| r.server_cpu_us_per_event.is_some() && !r.server_cost_shared)
        .collect();
    if let (Some(best), Some(worst)) = (
        min_by(&with_cpu, |r| r.server_cpu_us_per_event.unwrap_or(f64::MAX)),
        max_by(&with_cpu, |r| r.server_cpu_us_per_event.unwrap_or(0.0)),
    ) {
        let b = best.server_cpu_us_per_event.unwrap_or(0.0);
        let w = worst.server_cpu_us_per_event.unwrap_or(0.0);
        let coarse = with_cpu
            .iter()
            .any(|r| r.server_cpu_s.unwrap_or(0.0) < MIN_CPU_S);
        let mut s = format!(
            "**Server CPU:** {} cost the server least, {} ms per 1000 deliveries; {} cost {} ms, {} as much.",
            best.transport,
            num(b),
            worst.transport,
            num(w),
            times(w, b)
        );
        if coarse {
            s.push_str(" (Some phases used under 50 ms of server CPU, close to the 10 ms resolution of /proc: treat small differences as noise.)");
        }
        out.push(s);
    } else if rows.iter().any(|r| r.server_cost_shared) {
        out.push("**Server CPU:** the transports ran together (`--concurrent`), so the server's CPU cannot be split between them; run them one after another to compare it.".into());
    }

    out.extend(http10_costs(report));
    out.extend(http2_costs(report));
    out.extend(tls_costs(report));
    out
}

/// What chaos or a proxy did: loss and duplicates first (they must be 0), then how long
/// reconnecting took and what the outage did to latency, per transport.
fn resilience(report: &Report) -> Vec<String> {
    if !super::tables::has_resilience(report) {
        return Vec::new();
    }
    let s = &report.settings;
    let rows = report.headline();
    let mut out = Vec::new();
    let what = if s.chaos != "none" {
        format!("--chaos {}", s.chaos)
    } else if s.proxy != "none" {
        format!(
            "through {} (proxy_read_timeout {})",
            s.proxy,
            s.proxy_read_timeout_s
                .map_or("–".into(), |t| format!("{} s", num(t)))
        )
    } else {
        "connections that failed".to_owned()
    };
    let lost: u64 = report.phases.iter().map(|r| r.lost).sum();
    let dups: u64 = report.phases.iter().map(|r| r.duplicates).sum();
    if lost > 0 || dups > 0 {
        let bad: Vec<String> = report
            .phases
            .iter()
            .filter(|r| r.lost > 0 || r.duplicates > 0)
            .map(|r| {
                format!(
                    "{} ({} lost, {} duplicated)",
                    r.transport, r.lost, r.duplicates
                )
            })
            .collect();
        out.push(format!(
            "**LOST OR DUPLICATED EVENTS with {what}:** {}.",
            bad.join(", ")
        ));
    } else {
        out.push(format!(
            "**{}:** no transport lost an acknowledged event or received one twice (lost 0, duplicated 0).",
            capitalize(&what)
        ));
    }
    let trips: Vec<String> = rows
        .iter()
        .map(|r| match r.reconnect_us.filter(|q| q.count > 0) {
            Some(q) => format!(
                "{} {} / {} ({} disconnects)",
                r.transport,
                us(q.p50),
                us(q.p99),
                super::tables::int(r.disconnects)
            ),
            None => format!("{} never lost a connection", r.transport),
        })
        .collect();
    if !trips.is_empty() {
        out.push(format!(
            "**Reconnect time** (failure seen → next subscription or response, p50 / p99): {}.",
            trips.join("; ")
        ));
    }
    let outage: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let c = r.chaos.as_ref()?;
            (c.latency_outage_us.count > 0).then(|| {
                format!(
                    "{} {} / {} (outside the outage: {} / {})",
                    r.transport,
                    us(c.latency_outage_us.p50),
                    us(c.latency_outage_us.p99),
                    us(c.latency_outside_us.p50),
                    us(c.latency_outside_us.p99)
                )
            })
        })
        .collect();
    if !outage.is_empty() {
        out.push(format!(
            "**Latency of events in flight during the outage** (p50 / p99, from their scheduled publish time): {}.",
            outage.join("; ")
        ));
    }
    if let Some(e) = rows
        .iter()
        .find_map(|r| r.chaos.as_ref().and_then(|c| c.restart_error.clone()))
    {
        out.push(format!("**The killed server did not come back:** {e}."));
    }
    out
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// The last phase of `transport` over `http` with or without TLS that delivered something.
fn find<'a>(
    report: &'a Report,
    transport: &str,
    http: &str,
    tls: bool,
) -> Option<&'a TransportResult> {
    report.phases.iter().rev().find(|r| {
        r.transport == transport && r.http == http && r.tls == tls && r.events_received > 0
    })
}

/// HTTP/2 against HTTP/1.1 for the HTTP transports measured both ways.
fn http2_costs(report: &Report) -> Vec<String> {
    let tls = report.phases.first().is_some_and(|r| r.tls);
    let mut parts = Vec::new();
    for t in ["short-poll", "long-poll", "sse"] {
        let (Some(h1), Some(h2)) = (find(report, t, "1.1", tls), find(report, t, "2", tls)) else {
            continue;
        };
        let mut s = t.to_owned();
        if let (Some(b2), Some(b1)) = (h2.bytes_per_event, h1.bytes_per_event) {
            s.push_str(&format!(
                " {} against {} per event ({})",
                bytes(b2),
                bytes(b1),
                change(b2, b1)
            ));
        }
        if let (Some(c2), Some(c1)) = (h2.server_cpu_us_per_event, h1.server_cpu_us_per_event) {
            s.push_str(&format!(
                ", server CPU {} against {} ms per 1000 events",
                num(c2),
                num(c1)
            ));
        }
        s.push_str(&format!(
            ", median latency {} against {}",
            us(h2.latency_us.p50),
            us(h1.latency_us.p50)
        ));
        parts.push(s);
    }
    if parts.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "**HTTP/2 against HTTP/1.1{}:** {}.",
        if tls { " (over TLS)" } else { "" },
        parts.join("; ")
    )]
}

/// TLS against plain for every transport measured both ways (at the headline HTTP version).
fn tls_costs(report: &Report) -> Vec<String> {
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
        let (Some(bt), Some(bp)) = (tls.bytes_per_event, plain.bytes_per_event) else {
            continue;
        };
        added.push(bt - bp);
        let mut s = format!("{t} {:+.0} B per event ({})", bt - bp, change(bt, bp));
        if let (Some(ct), Some(cp)) = (tls.server_cpu_us_per_event, plain.server_cpu_us_per_event) {
            if cp > 0.0 {
                s.push_str(&format!(" and {}× the server CPU", num(ct / cp)));
            }
        }
        s.push_str(&format!(
            ", median latency {} against {}",
            us(tls.latency_us.p50),
            us(plain.latency_us.p50)
        ));
        parts.push(s);
    }
    if parts.is_empty() {
        return Vec::new();
    }
    let (lo, hi) = added
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    vec![format!(
        "**TLS against plain:** TLS adds {} to {} B per event on the wire (records, and handshakes amortised over the phase): {}.",
        num(lo.round()),
        num(hi.round()),
        parts.join("; ")
    )]
}

/// HTTP/1.0 (a connection per request) against keep-alive, for each polling transport measured
/// both ways in the same cell.
fn http10_costs(report: &Report) -> Vec<String> {
    let tls = report.phases.first().is_some_and(|r| r.tls);
    let mut out = Vec::new();
    for t in ["short-poll", "long-poll"] {
        let find = |http: &str| {
            report.phases.iter().rev().find(|r| {
                r.transport == t && r.http == http && r.tls == tls && r.events_received > 0
            })
        };
        let (Some(ka), Some(h10)) = (find("1.1"), find("1.0")) else {
            continue;
        };
        let mut s = format!(
            "**HTTP/1.0 against keep-alive ({t}):** a TCP connection per request opened {} connections where keep-alive opened {}",
            super::tables::int(h10.connections_opened),
            super::tables::int(ka.connections_opened)
        );
        if let (Some(b10), Some(b11)) = (h10.bytes_per_event, ka.bytes_per_event) {
            s.push_str(&format!(
                "; bytes per event {} against {} ({}; TCP handshakes are below the socket and not counted)",
                bytes(b10),
                bytes(b11),
                change(b10, b11)
            ));
        }
        if let (Some(c10), Some(c11)) = (h10.server_cpu_us_per_event, ka.server_cpu_us_per_event) {
            s.push_str(&format!(
                "; server CPU per 1000 events {} ms against {} ms ({})",
                num(c10),
                num(c11),
                change(c10, c11)
            ));
        }
        s.push_str(&format!(
            "; median latency {} against {}.",
            us(h10.latency_us.p50),
            us(ka.latency_us.p50)
        ));
        out.push(s);
    }
    if out.is_empty() && report.settings.http.len() == 1 && report.settings.http[0] == "1.1" {
        out.push("HTTP/1.0 was not measured; run with `--http 1.1,1.0` to see what a connection per request costs.".into());
    }
    out
}

fn min_by<'a>(
    rows: &[&'a TransportResult],
    f: impl Fn(&TransportResult) -> f64,
) -> Option<&'a TransportResult> {
    rows.iter().copied().min_by(|a, b| f(a).total_cmp(&f(b)))
}

fn max_by<'a>(
    rows: &[&'a TransportResult],
    f: impl Fn(&TransportResult) -> f64,
) -> Option<&'a TransportResult> {
    rows.iter().copied().max_by(|a, b| f(a).total_cmp(&f(b)))
}

/// `12×`, or `1.3×`.
fn times(a: f64, b: f64) -> String {
    if b <= 0.0 {
        return "far more than".into();
    }
    let r = a / b;
    if r >= 10.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.1}×")
    }
}

/// `+35%` / `−12%` of `a` over `b`.
fn change(a: f64, b: f64) -> String {
    if b <= 0.0 {
        return "n/a".into();
    }
    let pct = (a - b) / b * 100.0;
    if pct.abs() < 0.5 {
        "the same".into()
    } else if pct >= 0.0 {
        format!("+{pct:.0}%")
    } else {
        format!("−{:.0}%", -pct)
    }
}

fn secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{} s", num(s))
    } else {
        format!("{:.0} ms", s * 1000.0)
    }
}

fn dedup<'a>(v: &[&'a str]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for s in v {
        if !out.contains(s) {
            out.push(s);
        }
    }
    out
}
