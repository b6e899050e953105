//! Every phase: one row per transport per phase, for runs with more phases than headline rows
//! (sweeps, HTTP versions, repeats).

use crate::{
    tables::Table,
    units::{int, num, opt, us},
    Report,
};

pub fn table(report: &Report) -> Table {
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
