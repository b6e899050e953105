//! The report's tables as data (title, header, rows of text), built once from the model and
//! rendered by both the Markdown and the HTML writer, so the two show the same numbers.

use super::{Report, TransportResult};

#[derive(Debug, Clone)]
pub struct Table {
    pub title: String,
    /// One sentence under the title: what the numbers mean.
    pub note: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    fn new(title: &str, note: &str, headers: &[&str]) -> Self {
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
        .map(|r| {
            let mut t = Table::new(
                &format!("Recommendation: {}", r.scenario),
                &format!("{} Requirements: {}.", r.summary, r.requirements),
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
            t
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

/// Microseconds as `812 µs`, `4.2 ms` or `1.50 s`.
pub fn us(v: u64) -> String {
    let v = v as f64;
    if v < 1_000.0 {
        format!("{v:.0} µs")
    } else if v < 1_000_000.0 {
        let ms = v / 1_000.0;
        if ms < 10.0 {
            format!("{ms:.2} ms")
        } else if ms < 100.0 {
            format!("{ms:.1} ms")
        } else {
            format!("{ms:.0} ms")
        }
    } else {
        format!("{:.2} s", v / 1_000_000.0)
    }
}

/// Bytes as `512 B`, `12.3 KiB`, `4.5 MiB`.
pub fn bytes(v: f64) -> String {
    if v < 1024.0 {
        format!("{v:.0} B")
    } else if v < 1024.0 * 1024.0 {
        format!("{:.1} KiB", v / 1024.0)
    } else if v < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", v / (1024.0 * 1024.0))
    } else {
        format!("{:.2} GiB", v / (1024.0 * 1024.0 * 1024.0))
    }
}

/// A number with a sensible number of digits.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if (v.fract() == 0.0 && a < 1e15) || a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else if a >= 0.001 {
        format!("{v:.4}")
    } else {
        format!("{v:.2e}")
    }
}

/// A thousands-separated integer.
pub fn int(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "–".into(), f)
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

/// Whether the run had anything to say about connections failing: chaos, a proxy, or a client
/// that lost its connection.
pub fn has_resilience(report: &Report) -> bool {
    report.settings.chaos != "none"
        || report.settings.proxy != "none"
        || report.phases.iter().any(|r| r.disconnects > 0)
}

fn quantile_pair(q: Option<&crate::stats::Quantiles>) -> (String, String) {
    match q.filter(|q| q.count > 0) {
        Some(q) => (us(q.p50), us(q.p99)),
        None => ("–".into(), "–".into()),
    }
}

/// Connections lost and found again: per transport, how often, how long it took, whether any
/// event was lost or duplicated on the way, and (with chaos) the latency of events published
/// during the outage against the rest.
pub fn resilience(report: &Report) -> Option<Table> {
    if !has_resilience(report) {
        return None;
    }
    let s = &report.settings;
    let what = match (s.chaos.as_str(), s.proxy.as_str()) {
        ("none", "none") => "Connections that failed during the run.".to_owned(),
        ("none", proxy) => match (&report.server.proxy_software, s.proxy_read_timeout_s) {
            (Some(what), None) => format!(
                "Through {what}: connections the proxy cut, and how each transport recovered."
            ),
            (_, t) => format!(
                "Through {proxy} with proxy_read_timeout {}: connections the proxy cut, and how each transport recovered.",
                t.map_or("–".into(), |t| format!("{} s", num(t)))
            ),
        },
        (chaos, _) => format!(
            "--chaos {chaos} at {} of each phase's publishing{}: a server SIGKILLed while clients read and the publisher publishes.",
            s.chaos_at.as_deref().unwrap_or("–"),
            s.chaos_outage_s
                .map_or(String::new(), |o| format!(", restarted after {} s down", num(o)))
        ),
    };
    let mut t = Table::new(
        "Resilience",
        &format!(
            "{what} Reconnect time: from the failure a client saw to its next successful subscription (SSE/WebSocket handshake) or poll response. Lost: acknowledged to the publisher and never received; both lost and duplicated must be 0. Outage: events in flight during the outage window (from the kill until the last cut-off client was back): published before it ended, received after it began; with chaos, latency counts from each event's scheduled publish time, so events the publisher could not send meanwhile carry the wait."
        ),
        &[
            "transport",
            "disconnects",
            "reconnects",
            "reconnect p50",
            "reconnect p99",
            "lost",
            "duplicated",
            "outage window",
            "outage p50",
            "outage p99",
            "outside p50",
            "outside p99",
            "verdict",
        ],
    );
    let primary = report.primary_http();
    for r in shown(report) {
        let (rp50, rp99) = quantile_pair(r.reconnect_us.as_ref());
        let (window, op50, op99, xp50, xp99) = match &r.chaos {
            Some(c) => {
                let (op50, op99) = quantile_pair(Some(&c.latency_outage_us));
                let (xp50, xp99) = quantile_pair(Some(&c.latency_outside_us));
                (
                    format!("{:.2}–{:.2} s", c.window_start_s, c.window_end_s),
                    op50,
                    op99,
                    xp50,
                    xp99,
                )
            }
            None => {
                let (p50, p99) = quantile_pair(Some(&r.latency_us));
                ("–".into(), "–".into(), "–".into(), p50, p99)
            }
        };
        let verdict = if r.lost > 0 || r.duplicates > 0 {
            "**LOST OR DUPLICATED**"
        } else if r.has_loss() {
            "**GAPS**"
        } else if r.chaos.as_ref().is_some_and(|c| c.restart_error.is_some()) {
            "server did not come back"
        } else {
            "ok"
        };
        t.rows.push(vec![
            r.label(primary),
            int(r.disconnects),
            int(r.reconnects),
            rp50,
            rp99,
            int(r.lost),
            int(r.duplicates),
            window,
            op50,
            op99,
            xp50,
            xp99,
            verdict.into(),
        ]);
    }
    Some(t)
}

pub fn latency(report: &Report) -> Table {
    let mut t = Table::new(
        "Latency, publish to receipt",
        "loadgen's clock at the publish request (in the event's data) to its clock at receipt; HdrHistogram, µs resolution.",
        &["transport", "samples", "p50", "p90", "p99", "p99.9", "max", "mean", "server ts → receipt p50"],
    );
    let primary = report.primary_http();
    for r in shown(report) {
        let l = &r.latency_us;
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

/// With `--send-rate`: what the clients' own messages cost on each transport's way up, one row
/// per phase (its last run; report.json has every run).
pub fn upstream(report: &Report) -> Option<Table> {
    let mut t = Table::new(
        "Talking back",
        "Each client also published its own messages (`--send-rate`): WebSocket on its socket, the others `POST /publish` (HTTP/1.1 on a second connection, HTTP/2 as a stream on the same one, HTTP/1.0 a connection per message). Latencies from each message's intended send time; bytes counted on all of a client's sockets, per message sent.",
        &["transport", "way up", "sent", "acked", "resent", "lost own", "requests / msg", "connections / client", "bytes up / msg", "bytes down / msg", "ack p50", "own p50", "others p50", "others p99", "server CPU / msg in"],
    );
    let primary = report.primary_http();
    for r in report.latest() {
        let Some(u) = &r.upstream else { continue };
        t.rows.push(vec![
            r.label(primary),
            u.way.clone(),
            int(u.messages_sent),
            int(u.messages_acked),
            int(u.retried),
            int(u.lost_own),
            opt(u.requests_per_message, num),
            num(u.connections_per_client),
            opt(u.bytes_up_per_message, bytes),
            opt(u.bytes_down_per_message, bytes),
            us(u.ack_us.p50),
            us(u.own_receipt_us.p50),
            us(u.others_receipt_us.p50),
            us(u.others_receipt_us.p99),
            opt(u.server_cpu_us_per_message, |v| us(v.round() as u64)),
        ]);
    }
    (!t.rows.is_empty()).then_some(t)
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
    let range = |g: Option<super::spread::Range>, runs: u32, f: &dyn Fn(f64) -> String| {
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
/// value), as the README quotes it (`loadgen summarize`).
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
            if super::is_polling(&r.transport) {
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

fn network_name(r: &TransportResult) -> Option<&str> {
    r.network.as_ref().map(|n| n.name.as_str())
}

/// `+12 ms` / `−3 ms` of a median against loopback's: an absolute change, as loopback's is tiny.
fn change(v: f64, base: Option<f64>) -> String {
    match base {
        None => "–".into(),
        Some(b) if v >= b => format!("+{}", us((v - b).round() as u64)),
        Some(b) => format!("−{}", us((b - v).round() as u64)),
    }
}

/// One table per network (`--network`): one row per phase (its runs' medians, ranges in
/// brackets), and the change of the median against loopback (`none`) when the run measured it.
pub fn networks(report: &Report) -> Vec<Table> {
    let mut names: Vec<&str> = Vec::new();
    for r in &report.phases {
        if let Some(n) = network_name(r) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    let primary = report.primary_http();
    let lat = |v: f64| us(v.round() as u64);
    let p50 = |r: &TransportResult| (r.latency_us.count > 0).then_some(r.latency_us.p50 as f64);
    let p99 = |r: &TransportResult| (r.latency_us.count > 0).then_some(r.latency_us.p99 as f64);
    let mut out = Vec::new();
    for name in names {
        let rows: Vec<&TransportResult> = report
            .latest()
            .into_iter()
            .filter(|r| network_name(r) == Some(name))
            .collect();
        let spec = rows
            .iter()
            .find_map(|r| r.network.as_ref().and_then(|n| n.spec.clone()));
        let mut t = Table::new(
            &format!("Network: {name}"),
            &match &spec {
                Some(s) => format!("Across the emulated link `{s}`: one row per phase, median [min–max] over its runs. Head-of-line stalls: events later than one RTT (at least 10 ms) beyond what the transport needs on this link without loss (one-way delay, plus the poll interval for short polling). \"vs none\": the change of the median p50 and p99 against the same phase on loopback."),
                None => "Loopback (no link): one row per phase, median [min–max] over its runs.".to_owned(),
            },
            &[
                "transport", "runs", "p50", "p99", "max", "bytes/event", "packets/event",
                "requests/event", "reconnects", "HOL stalls", "p50 vs none", "p99 vs none",
            ],
        );
        for r in rows {
            let runs = report.runs_of(r).len();
            let base = report.latest().into_iter().find(|b| {
                network_name(b) == Some("none")
                    && b.transport == r.transport
                    && b.http == r.http
                    && b.tls == r.tls
                    && b.clients == r.clients
                    && b.rate == r.rate
            });
            let fig = |f: &dyn Fn(&TransportResult) -> Option<f64>,
                       show: &dyn Fn(f64) -> String| {
                report
                    .figure(r, f)
                    .map_or_else(|| "–".into(), |(g, n)| g.show(n as usize, show))
            };
            let vs = |f: &dyn Fn(&TransportResult) -> Option<f64>| {
                if name == "none" {
                    return "–".to_owned();
                }
                match report.figure(r, f) {
                    Some((g, _)) => change(
                        g.median,
                        base.and_then(|b| report.figure(b, f))
                            .map(|(b, _)| b.median),
                    ),
                    None => "–".into(),
                }
            };
            let net = |f: fn(&crate::link::NetworkResult) -> Option<f64>| {
                move |x: &TransportResult| x.network.as_ref().and_then(f)
            };
            t.rows.push(vec![
                r.label(primary),
                runs.to_string(),
                fig(&p50, &lat),
                fig(&p99, &lat),
                fig(
                    &|x| (x.latency_us.count > 0).then_some(x.latency_us.max as f64),
                    &lat,
                ),
                fig(&|x| x.bytes_per_event, &bytes),
                fig(&net(|n| n.packets_per_event), &num),
                fig(&|x| x.requests_per_event, &num),
                fig(&|x| Some(x.reconnects as f64), &num),
                fig(&net(|n| n.hol_stalls.map(|v| v as f64)), &num),
                vs(&p50),
                vs(&p99),
            ]);
        }
        out.push(t);
    }
    out
}

/// What the link did in each phase, and what the kernel's TCP measured across it: the proof
/// that the link is the one asked for.
pub fn link(report: &Report) -> Option<Table> {
    let mut t = Table::new(
        "The link, per phase",
        "TCP RTT: median over loadgen's sockets of the kernel's smoothed RTT (TCP_INFO), lowest seen in brackets, at the end of publishing. Retransmitted: segments retransmitted / sent, by loadgen's sockets and by the server's. Carried and dropped: packets down (server to client) / up. Forwarder CPU: the link's own cost, charged to neither server nor loadgen.",
        &[
            "phase", "transport", "network", "set RTT", "TCP RTT", "retransmitted (client)",
            "retransmitted (server)", "carried", "dropped by loss", "dropped by queue",
            "peak queue", "forwarder CPU",
        ],
    );
    let primary = report.primary_http();
    for r in &report.phases {
        let Some(n) = r.network.as_ref().filter(|n| n.spec.is_some()) else {
            continue;
        };
        let seg = |s: Option<crate::link::tcp::Segments>| {
            s.map_or("–".into(), |s| {
                format!(
                    "{} / {} ({})",
                    int(s.retrans_segs),
                    int(s.out_segs),
                    if s.out_segs > 0 {
                        format!("{:.2}%", s.retrans_segs as f64 * 100.0 / s.out_segs as f64)
                    } else {
                        "–".into()
                    }
                )
            })
        };
        let both = |f: fn(&crate::link::forward::DirCounts) -> u64| match (n.down, n.up) {
            (Some(d), Some(u)) => format!("{} / {}", int(f(&d)), int(f(&u))),
            _ => "–".into(),
        };
        t.rows.push(vec![
            r.phase.to_string(),
            r.label(primary),
            n.name.clone(),
            n.rtt_ms.map_or("–".into(), |v| format!("{} ms", num(v))),
            n.tcp_rtt.map_or("–".into(), |s| {
                format!(
                    "{} ms ({})",
                    num(s.srtt_ms_p50),
                    s.min_rtt_ms_p50
                        .map_or("–".into(), |m| format!("{} ms", num(m)))
                )
            }),
            seg(n.client_segments),
            seg(n.server_segments),
            both(|d| d.packets_carried),
            both(|d| d.dropped_by_loss),
            both(|d| d.dropped_by_queue),
            both(|d| d.peak_queue_packets),
            n.forwarder_cpu_s
                .map_or("–".into(), |c| format!("{} s", num(c))),
        ]);
    }
    (!t.rows.is_empty()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_naturally() {
        assert_eq!(us(812), "812 µs");
        assert_eq!(us(4_210), "4.21 ms");
        assert_eq!(us(502_000), "502 ms");
        assert_eq!(us(1_500_000), "1.50 s");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(12.5 * 1024.0), "12.5 KiB");
        assert_eq!(int(1_234_567), "1,234,567");
        assert_eq!(int(12), "12");
        assert_eq!(num(0.00021), "2.10e-4");
        assert_eq!(num(1.0234), "1.02");
    }
}
