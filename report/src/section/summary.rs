//! The summary: the headline in one table, as the book quotes it and `loadgen summarize` prints
//! it.

use crate::{
    tables::{shown, Table},
    units::{num, us},
    Report, TransportResult,
};

/// The headline in one table: each shown row's median [min–max] over its runs (or its one
/// value), as the book quotes it (`loadgen summarize`).
pub fn table(report: &Report) -> Table {
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
