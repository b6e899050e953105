//! Repeats and what they allow a conclusion to say. A figure measured once on a shared machine
//! carries no notice of its own noise: two transports 3 µs apart, or one 10 ms `/proc` tick
//! apart on CPU, trade places from run to run. `--repeat N` runs every phase N times,
//! interleaved; this module gives each figure its median and range over the runs, and orders
//! transports into tiers: two rows are ranked only when their ranges do not overlap (the
//! difference exceeds the spread), and a figure measured once is never ranked.

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

/// Rows in tiers, best first: within a tier the ranges overlap (no measurable difference),
/// between tiers every range of the better tier lies below every range of the worse.
/// `None` when the figure cannot be ranked: fewer than two rows, or a row measured once.
pub fn tiers<'a, T>(rows: &[(&'a T, Range, u32)]) -> Option<Vec<Vec<(&'a T, Range)>>> {
    if rows.len() < 2 || rows.iter().any(|&(_, _, runs)| runs < 2) {
        return None;
    }
    let mut sorted: Vec<(&T, Range)> = rows.iter().map(|&(t, r, _)| (t, r)).collect();
    sorted.sort_by(|a, b| a.1.median.total_cmp(&b.1.median));
    let mut out: Vec<Vec<(&T, Range)>> = Vec::new();
    let mut tier_max = f64::MIN;
    for (t, r) in sorted {
        match out.last_mut() {
            Some(tier) if r.min <= tier_max => {
                tier.push((t, r));
                tier_max = tier_max.max(r.max);
            }
            _ => {
                tier_max = r.max;
                out.push(vec![(t, r)]);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(min: f64, median: f64, max: f64) -> Range {
        Range { min, median, max }
    }

    #[test]
    fn median_and_range() {
        assert_eq!(Range::of(&[3.0, 1.0, 2.0]), Some(r(1.0, 2.0, 3.0)));
        assert_eq!(Range::of(&[4.0, 1.0, 2.0, 3.0]), Some(r(1.0, 2.5, 4.0)));
        assert_eq!(Range::of(&[]), None);
    }

    #[test]
    fn overlapping_ranges_share_a_tier_and_separate_ones_are_ranked() {
        let rows = [
            (&"ws", r(640.0, 652.0, 700.0), 3),
            (&"sse", r(630.0, 655.0, 690.0), 3),
            (&"long-poll", r(880.0, 900.0, 950.0), 3),
        ];
        let t = tiers(&rows).unwrap();
        let names: Vec<Vec<&str>> = t
            .iter()
            .map(|tier| tier.iter().map(|(n, _)| **n).collect())
            .collect();
        assert_eq!(names, [vec!["ws", "sse"], vec!["long-poll"]]);
    }

    #[test]
    fn a_single_run_or_a_single_row_is_never_ranked() {
        assert!(tiers(&[(&"ws", r(1.0, 1.0, 1.0), 1), (&"sse", r(9.0, 9.0, 9.0), 1)]).is_none());
        assert!(tiers(&[(&"ws", r(1.0, 1.0, 1.0), 3)]).is_none());
    }

    #[test]
    fn a_chain_of_overlaps_is_one_tier() {
        // a overlaps b, b overlaps c, a does not overlap c: no cut can be defended between
        // them without also cutting an overlap, so they stay together.
        let rows = [
            (&"a", r(1.0, 2.0, 3.0), 3),
            (&"b", r(2.5, 3.5, 4.5), 3),
            (&"c", r(4.0, 5.0, 6.0), 3),
        ];
        assert_eq!(tiers(&rows).unwrap().len(), 1);
    }
}
