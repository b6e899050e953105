//! Spread over the runs (`--repeat`): each shown row's figures as median [min–max], the noise the
//! conclusions were judged against.

use crate::{
    tables::{shown, Table},
    units::{num, us},
    Report, TransportResult,
};

/// With `--repeat`: each shown row's figures over its runs, so a reader sees the noise the
/// conclusions were judged against.
pub fn table(report: &Report) -> Option<Table> {
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
