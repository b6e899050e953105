//! Integrity: the table of what every client received against what was published, and the
//! conclusions' first sentence (loss, or every delivery checked), since nothing below it means
//! anything when events were lost.

use std::collections::BTreeMap;

use crate::{
    tables::{shown, Table},
    units::int,
    words::dedup,
    Report, TransportResult,
};

pub fn table(report: &Report) -> Table {
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

/// Loss first: when any phase lost, duplicated or reordered an event, every later sentence
/// describes a broken delivery, so the conclusions open by saying so.
pub fn sentences(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
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
            crate::units::int(expected)
        ));
    }
    // Datagrams are allowed to be lost: what counts is that the feed repaired them.
    let mut lost = BTreeMap::<&str, (u64, u64)>::new();
    for r in &report.phases {
        if let Some(d) = r.datagrams {
            let e = lost.entry(r.transport.as_str()).or_default();
            e.0 += d.lost;
            e.1 += d.recovered;
        }
    }
    for (transport, (lost, recovered)) in lost {
        out.push(format!(
            "{transport}: {} events' datagrams lost and asked for again, {} of them recovered over a stream.",
            crate::units::int(lost),
            crate::units::int(recovered)
        ));
    }
    out
}
