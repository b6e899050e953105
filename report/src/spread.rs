//! Repeats and what they allow a conclusion to say. A figure measured once on a shared machine
//! carries no notice of its own noise: two transports 3 µs apart, or one 10 ms `/proc` tick
//! apart on CPU, trade places from run to run. `--repeat N` runs every phase N times,
//! interleaved; this module gives each figure its median and range over the runs, and orders
//! transports into tiers by the ranking rule the verdict uses (the practical threshold, then a
//! rank test over the runs): a figure measured once is never ranked.

use feedlab_cost::rank::{self, Comparison, Rule};

pub use crate::model::range::{over_runs, Range, Spread};
use crate::TransportResult;

/// Below this much server CPU in a phase, the 10 ms tick of `/proc` makes per-event CPU too
/// coarse to rank transports (five ticks).
pub const CPU_RESOLUTION_S: f64 = 0.05;

/// Fills `spread` on every phase that ran more than once, from all of its runs.
pub fn fill(phases: &mut [TransportResult]) {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, r) in phases.iter().enumerate() {
        match groups.iter_mut().find(|g| phases[g[0]].same_cell(r)) {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    for idx in &groups {
        if idx.len() < 2 {
            continue;
        }
        let rows: Vec<&TransportResult> = idx.iter().map(|&i| &phases[i]).collect();
        let collect =
            |f: &dyn Fn(&TransportResult) -> Option<f64>| over_runs(&rows, f).map(|(g, _)| g);
        let spread = Spread {
            runs: rows.len() as u32,
            latency_p50_us: collect(&|r| {
                (r.latency_us.count > 0).then_some(r.latency_us.p50 as f64)
            }),
            latency_p99_us: collect(&|r| {
                (r.latency_us.count > 0).then_some(r.latency_us.p99 as f64)
            }),
            bytes_per_event: collect(&|r| r.bytes_per_event),
            requests_per_event: collect(&|r| r.requests_per_event),
            server_cpu_us_per_event: collect(&|r| {
                r.server_cpu_us_per_event.filter(|_| !r.server_cost_shared)
            }),
            server_cpu_min_s: rows
                .iter()
                .filter_map(|r| r.server_cpu_s)
                .min_by(f64::total_cmp),
        };
        for &i in idx {
            phases[i].spread = Some(spread.clone());
        }
    }
}

/// Rows in tiers, best first, by the project's ranking rule ([`feedlab_cost::rank`]): sorted
/// by median, a row opens a new tier when it costs more than the first of the current tier by
/// more than the practical threshold *and* a two-sided rank test over the runs tells the two
/// apart at the rule's level; otherwise it ties. `None` when the figure cannot be ranked:
/// fewer than two rows, or a row measured once. Each row carries every run's value.
pub fn tiers<'a, T>(rows: &[(&'a T, Vec<f64>)], rule: Rule) -> Option<Vec<Tier<'a, T>>> {
    if rows.len() < 2 || rows.iter().any(|(_, runs)| runs.len() < 2) {
        return None;
    }
    let median = |v: &[f64]| Range::of(v).map_or(f64::INFINITY, |g| g.median);
    let mut sorted: Vec<&(&'a T, Vec<f64>)> = rows.iter().collect();
    sorted.sort_by(|a, b| median(&a.1).total_cmp(&median(&b.1)));
    let mut out: Vec<Tier<'a, T>> = Vec::new();
    for (t, runs) in sorted {
        let opens = match out.last() {
            None => None,
            Some(tier) => match rank::compare(&tier.first_runs, runs, rule) {
                Comparison::Better { margin, p } => Some(Some((margin, p))),
                _ => None,
            },
        };
        match (out.last_mut(), opens) {
            (Some(tier), None) => tier.rows.push(*t),
            (_, by) => out.push(Tier {
                rows: vec![*t],
                first_runs: runs.clone(),
                by: by.flatten(),
            }),
        }
    }
    Some(out)
}

/// Rows the rule cannot tell apart, and what set them below the tier before.
#[derive(Debug, Clone)]
pub struct Tier<'a, T> {
    pub rows: Vec<&'a T>,
    /// The runs of the tier's first (lowest) row, which the next row is compared with.
    pub first_runs: Vec<f64>,
    /// How much more this tier's first row costs than the tier above's, and the rank test's
    /// p (none when every run measured the same); none for the first tier.
    pub by: Option<(f64, Option<f64>)>,
}
