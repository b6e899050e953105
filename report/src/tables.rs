//! The report's tables as data (title, header, rows of text), built once from the model and
//! rendered by both the Markdown and the HTML writer, so the two show the same numbers.

use crate::{
    units::{bytes, int, num, opt, us},
    Report, TransportResult,
};

#[derive(Debug, Clone)]
pub struct Table {
    pub title: String,
    /// One sentence under the title: what the numbers mean.
    pub note: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(title: &str, note: &str, headers: &[&str]) -> Self {
        Self {
            title: title.into(),
            note: note.into(),
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }
}

/// The recommendation of a scenario run: the transports ranked against its requirements.
pub fn recommendations(report: &Report) -> Vec<Table> {
    report
        .recommendations
        .iter()
        .flat_map(|r| {
            let unmeasured = if r.unmeasured.is_empty() {
                String::new()
            } else {
                format!(
                    " Not measured here, and may decide between them: {}.",
                    r.unmeasured.join("; ")
                )
            };
            let mut t = Table::new(
                &format!("Recommendation: {}", r.scenario),
                &format!("{}{unmeasured} Requirements: {}.", r.summary, r.requirements),
                &["rank", "transport", "meets the requirements", "why"],
            );
            for x in &r.ranking {
                t.rows.push(vec![
                    x.rank.to_string(),
                    x.transport.clone(),
                    if x.meets_requirements {
                        "yes".into()
                    } else {
                        "**no**".into()
                    },
                    x.reason.clone(),
                ]);
            }
            let mut out = vec![t];
            if !r.points.is_empty() {
                let mut p = Table::new(
                    &format!("Ranking at every point: {}", r.scenario),
                    &if r.flips.is_empty() {
                        "The sweep ranked point by point, with the same rule; the order is the same at every point.".to_owned()
                    } else {
                        format!("The sweep ranked point by point, with the same rule. {}", r.flips.join(" "))
                    },
                    &["point", "order (best first)", "what decided it"],
                );
                for pt in &r.points {
                    let mut order = String::new();
                    let mut last = None;
                    for x in &pt.ranking {
                        if let Some(l) = last {
                            order.push_str(if l == x.rank { " = " } else { " > " });
                        }
                        order.push_str(&x.transport);
                        last = Some(x.rank);
                    }
                    let decided: Vec<String> = pt
                        .ranking
                        .iter()
                        .filter_map(|x| {
                            x.decided_by.as_ref().map(|d| match (d.margin, d.p) {
                                (Some(m), Some(pv)) => format!(
                                    "{} below on {} (+{}%, p = {pv:.3})",
                                    x.transport,
                                    d.criterion,
                                    num(m * 100.0)
                                ),
                                (Some(m), None) => format!(
                                    "{} below on {} (+{}%, every run alike)",
                                    x.transport,
                                    d.criterion,
                                    num(m * 100.0)
                                ),
                                _ => format!("{} below on {}", x.transport, d.criterion),
                            })
                        })
                        .collect();
                    p.rows.push(vec![
                        pt.point.clone(),
                        order,
                        if decided.is_empty() {
                            "a tie on every criterion".into()
                        } else {
                            decided.join("; ")
                        },
                    ]);
                }
                out.push(p);
            }
            out
        })
        .collect()
}

/// The scenario's flags, each with its reason.
pub fn scenario(report: &Report) -> Option<Table> {
    let s = report.scenario.as_ref()?;
    let mut t = Table::new(
        &format!("Scenario: {}", s.name),
        &s.summary,
        &["flag", "value", "why"],
    );
    for f in &s.flags {
        t.rows.push(vec![
            format!("`--{}`", f.flag),
            if f.overridden {
                format!("{} (overridden on the command line)", f.value)
            } else {
                f.value.clone()
            },
            f.why.clone(),
        ]);
    }
    Some(t)
}

pub fn network_name(r: &TransportResult) -> Option<&str> {
    r.network.as_ref().map(|n| n.name.as_str())
}

/// The rows shown: the headline transports, then other HTTP versions and TLS of the same cell.
pub fn shown(report: &Report) -> Vec<&TransportResult> {
    let mut rows = report.headline();
    let Some(first) = rows.first().copied() else {
        return rows;
    };
    let primary = report.primary_http();
    for p in report.latest() {
        // Other networks have their own section.
        let same_cell = p.rate == first.rate
            && p.clients == first.clients
            && network_name(p) == network_name(first);
        let variant = p.http != p.headline_http(primary) || p.tls != first.tls;
        if same_cell && variant {
            rows.push(p);
        }
    }
    rows
}

pub fn integrity(report: &Report) -> Table {
    let mut t = Table::new(
        "Integrity",
        "Every client starts from the cursor taken before publishing, so each must receive every event published in its phase. With `--repeat`, the counts are summed over every run of the phase.",
        &["transport", "runs", "clients", "published", "expected", "received", "gaps", "duplicates", "out of order", "errors", "verdict"],
    );
    let primary = report.primary_http();
    for r in shown(report) {
        let runs = report.runs_of(r);
        let sum = |f: &dyn Fn(&TransportResult) -> u64| runs.iter().map(|x| f(x)).sum::<u64>();
        let errors = sum(&|x| x.errors.values().sum());
        let verdict = if runs.iter().any(|x| x.has_loss()) {
            "**LOSS**"
        } else if errors > 0 {
            "errors"
        } else {
            "ok"
        };
        t.rows.push(vec![
            r.label(primary),
            runs.len().to_string(),
            int(r.clients as u64),
            int(sum(&|x| x.events_published)),
            int(sum(&|x| x.events_expected)),
            int(sum(&|x| x.events_received)),
            int(sum(&|x| x.gaps)),
            int(sum(&|x| x.duplicates)),
            int(sum(&|x| x.out_of_order)),
            int(errors),
            verdict.into(),
        ]);
    }
    t
}

pub fn latency(report: &Report) -> Table {
    let rows: Vec<&TransportResult> = shown(report)
        .into_iter()
        .map(|r| report.median_run(r))
        .collect();
    let runs = rows
        .iter()
        .map(|r| report.runs_of(r).len())
        .max()
        .unwrap_or(1);
    let which = if runs > 1 {
        format!(" Each row is the run with the median p99 of its {runs} runs.")
    } else {
        " Each phase ran once.".to_owned()
    };
    let empty = !rows.is_empty() && rows.iter().all(|r| r.latency_us.count == 0);
    let why_empty = if empty && report.settings.send_rate > 0.0 {
        " No samples: loadgen published nothing (`--rate 0`), every message came from a client; the latency from a client's send to the others' receipt is under Talking back."
    } else if empty {
        " No samples: no event was delivered."
    } else {
        ""
    };
    let mut t = Table::new(
        "Latency, publish to receipt",
        &format!("loadgen's clock at the publish request (in the event's data) to its clock at receipt; HdrHistogram, µs resolution.{which}{why_empty}"),
        &["transport", "samples", "p50", "p90", "p99", "p99.9", "max", "mean", "server ts → receipt p50"],
    );
    let primary = report.primary_http();
    for r in rows {
        let l = &r.latency_us;
        if l.count == 0 {
            let mut row = vec![r.label(primary), "0".into()];
            row.extend(std::iter::repeat_n("–".to_owned(), 7));
            t.rows.push(row);
            continue;
        }
        t.rows.push(vec![
            r.label(primary),
            int(l.count),
            us(l.p50),
            us(l.p90),
            us(l.p99),
            us(l.p999),
            us(l.max),
            us(l.mean.round() as u64),
            r.server_latency_us
                .filter(|q| q.count > 0)
                .map_or_else(|| "–".into(), |q| us(q.p50)),
        ]);
    }
    t
}

pub fn wire(report: &Report) -> Table {
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

pub fn server(report: &Report) -> Table {
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

/// With `--repeat`: each shown row's figures over its runs, so a reader sees the noise the
/// conclusions were judged against.
pub fn repeats(report: &Report) -> Option<Table> {
    let rows: Vec<&TransportResult> = shown(report)
        .into_iter()
        .filter(|r| r.spread.is_some())
        .collect();
    if rows.is_empty() {
        return None;
    }
    let mut t = Table::new(
        "Spread over the runs",
        "Median [min–max] over every run of the phase (`--repeat`, runs interleaved). The conclusions rank two transports only when these ranges do not overlap.",
        &["transport", "runs", "p50", "p99", "bytes / event", "requests / event", "server CPU / 1000 events"],
    );
    let primary = report.primary_http();
    let range = |g: Option<crate::spread::Range>, runs: u32, f: &dyn Fn(f64) -> String| {
        g.map_or_else(|| "–".into(), |g| g.show(runs as usize, f))
    };
    let lat = |v: f64| us(v.round() as u64);
    let b = |v: f64| format!("{v:.0} B");
    let ms = |v: f64| format!("{} ms", num(v));
    for r in rows {
        let Some(sp) = &r.spread else { continue };
        t.rows.push(vec![
            r.label(primary),
            sp.runs.to_string(),
            range(sp.latency_p50_us, sp.runs, &lat),
            range(sp.latency_p99_us, sp.runs, &lat),
            range(sp.bytes_per_event, sp.runs, &b),
            range(sp.requests_per_event, sp.runs, &num),
            range(sp.server_cpu_us_per_event, sp.runs, &ms),
        ]);
    }
    Some(t)
}

/// The headline in one table: each shown row's median [min–max] over its runs (or its one
/// value), as the book quotes it (`loadgen summarize`).
pub fn summary(report: &Report) -> Table {
    let mut t = Table::new(
        "Summary",
        "Median [min–max] over the runs of each phase.",
        &[
            "transport",
            "p50 latency",
            "p99 latency",
            "bytes / event",
            "requests / event",
            "server CPU / 1000 events",
        ],
    );
    let primary = report.primary_http();
    let fmt = |r: &TransportResult,
               f: &dyn Fn(&TransportResult) -> Option<f64>,
               show: &dyn Fn(f64) -> String| {
        report
            .figure(r, f)
            .map_or_else(|| "not measured".into(), |(g, n)| g.show(n as usize, show))
    };
    let lat = |v: f64| us(v.round() as u64);
    let b = |v: f64| format!("{v:.0} B");
    let ms = |v: f64| format!("{} ms", num(v));
    for r in shown(report) {
        t.rows.push(vec![
            r.label(primary),
            fmt(
                r,
                &|x| (x.latency_us.count > 0).then_some(x.latency_us.p50 as f64),
                &lat,
            ),
            fmt(
                r,
                &|x| (x.latency_us.count > 0).then_some(x.latency_us.p99 as f64),
                &lat,
            ),
            fmt(r, &|x| x.bytes_per_event, &b),
            if crate::is_polling(&r.transport) {
                fmt(r, &|x| x.requests_per_event, &num)
            } else {
                "1 per connection".into()
            },
            fmt(r, &|x| x.server_cpu_us_per_event, &ms),
        ]);
    }
    t
}

pub fn checks(report: &Report) -> Table {
    let mut t = Table::new(
        "loadgen against the server's /stats",
        "Requests and deliveries must be equal, bytes within 1% (over TLS loadgen's plaintext inside TLS is compared, since the server counts what it writes before encryption).",
        &[
            "phase",
            "transport",
            "requests (loadgen / server)",
            "events (loadgen / server)",
            "bytes (loadgen / server)",
            "bytes diff",
            "ok",
        ],
    );
    let primary = report.primary_http();
    for r in &report.phases {
        let Some(c) = &r.server_check else { continue };
        t.rows.push(vec![
            r.phase.to_string(),
            r.label(primary),
            format!("{} / {}", int(c.requests.loadgen), int(c.requests.server)),
            format!(
                "{} / {}",
                int(c.events_delivered.loadgen),
                int(c.events_delivered.server)
            ),
            format!(
                "{} / {}{}",
                int(c.bytes.loadgen),
                int(c.bytes.server),
                if c.bytes_inside_tls {
                    " (plaintext inside TLS)"
                } else {
                    ""
                }
            ),
            match &c.bytes_note {
                Some(note) => format!("{:+.3}% ({note})", c.bytes.difference_ratio * 100.0),
                None => format!("{:+.3}%", c.bytes.difference_ratio * 100.0),
            },
            if c.ok { "yes".into() } else { "**NO**".into() },
        ]);
    }
    t
}

pub fn phases(report: &Report) -> Table {
    let mut t = Table::new(
        "Every phase",
        "One row per transport per phase (sweeps and HTTP versions included).",
        &[
            "phase",
            "transport",
            "http",
            "tls",
            "clients",
            "rate /s",
            "received",
            "gaps",
            "p50",
            "p99",
            "bytes / event",
            "requests / event",
            "server CPU / 1000 events",
        ],
    );
    for r in &report.phases {
        t.rows.push(vec![
            r.phase.to_string(),
            r.transport.clone(),
            r.http.clone(),
            if r.tls { "yes".into() } else { "no".into() },
            int(r.clients as u64),
            num(r.rate),
            int(r.events_received),
            int(r.gaps),
            us(r.latency_us.p50),
            us(r.latency_us.p99),
            opt(r.bytes_per_event, |v| format!("{v:.0} B")),
            opt(r.requests_per_event, num),
            opt(r.server_cpu_us_per_event, |v| format!("{} ms", num(v))),
        ]);
    }
    t
}
