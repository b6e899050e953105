//! Resilience (`--chaos`, reconnects): the table of what a killed server cost each transport,
//! and the sentences the conclusions say about it.

use crate::{
    tables::{shown, Table},
    units::*,
    words::*,
    Report,
};

/// Whether the run had anything to say about connections failing: chaos, a proxy, or a client
/// that lost its connection.
pub fn present(report: &Report) -> bool {
    report.settings.chaos != "none"
        || report.settings.proxy != "none"
        || report.phases.iter().any(|r| r.disconnects > 0)
}

fn quantile_pair(q: Option<&crate::Quantiles>) -> (String, String) {
    match q.filter(|q| q.count > 0) {
        Some(q) => (us(q.p50), us(q.p99)),
        None => ("–".into(), "–".into()),
    }
}

/// Connections lost and found again: per transport, how often, how long it took, whether any
/// event was lost or duplicated on the way, and (with chaos) the latency of events published
/// during the outage against the rest.
pub fn table(report: &Report) -> Option<Table> {
    if !present(report) {
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

/// What chaos or a proxy did: loss and duplicates first (they must be 0), then how long
/// reconnecting took and what the outage did to latency, per transport.
pub fn sentences(report: &Report) -> Vec<String> {
    if !present(report) {
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
                crate::units::int(r.disconnects)
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
