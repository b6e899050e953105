//! The ranking rule: a difference is a winner only when it matters and when the repeats can
//! tell it from noise.
//!
//! Two tests, both needed. A practical threshold (default 10%): a transport that costs less
//! than that much more than another ties with it, however repeatable the difference. And a rank
//! test with a stated false-positive rate (an exact two-sided Mann–Whitney U test at 5%): with
//! three repeats a side the smallest p it can give is 0.1, so no three-repeat difference can
//! ever pass; four a side reach 0.029 when every repeat of one is below every repeat of the
//! other. "Ranges do not overlap" over three runs, the old rule, calls a difference real about
//! one time in ten when there is none.
//!
//! Criteria are applied in order: each splits the transports the previous ones left tied, and
//! the answer records which criterion decided each place and by how much.

use serde::Serialize;

use crate::measured::median;

/// The rule's two thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rule {
    /// Relative difference below which two costs tie (0.10: 10%).
    pub threshold: f64,
    /// The rank test's false-positive rate.
    pub alpha: f64,
}

impl Default for Rule {
    fn default() -> Self {
        Self {
            threshold: 0.10,
            alpha: 0.05,
        }
    }
}

impl Rule {
    pub fn check(&self) -> Result<(), String> {
        if !(self.threshold.is_finite() && self.threshold >= 0.0) {
            return Err(format!(
                "--threshold must be a fraction ≥ 0 (got {})",
                self.threshold
            ));
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(format!(
                "the test's level must be in (0, 1) (got {})",
                self.alpha
            ));
        }
        Ok(())
    }

    /// The fewest repeats a side that can pass the rank test at all.
    pub fn repeats_needed(&self) -> usize {
        (2..=50)
            .find(|&n| exact_min_p(n, n) <= self.alpha)
            .unwrap_or(50)
    }
}

/// How one cost compares two transports (lower is better).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Comparison {
    /// `a` costs less, by `margin` (how much more `b` costs, as a fraction of `a`).
    Better { margin: f64, p: Option<f64> },
    /// `a` costs more.
    Worse { margin: f64, p: Option<f64> },
    /// Within the practical threshold.
    TieThreshold { margin: f64 },
    /// Beyond the threshold, but the repeats cannot tell it from noise.
    TieNoise { margin: f64, p: f64 },
}

impl Comparison {
    pub fn is_tie(&self) -> bool {
        matches!(self, Self::TieThreshold { .. } | Self::TieNoise { .. })
    }

    pub fn margin(&self) -> f64 {
        match *self {
            Self::Better { margin, .. }
            | Self::Worse { margin, .. }
            | Self::TieThreshold { margin }
            | Self::TieNoise { margin, .. } => margin,
        }
    }
}

/// Compares two costs over their repeats. Values that are exact (every repeat equal on both
/// sides, as bytes a protocol fixes) need no test: the threshold alone decides.
pub fn compare(a: &[f64], b: &[f64], rule: Rule) -> Comparison {
    let (ma, mb) = (median(a), median(b));
    let (lo, hi) = if ma <= mb { (ma, mb) } else { (mb, ma) };
    let margin = if lo > 0.0 {
        (hi - lo) / lo
    } else if hi > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    if margin <= rule.threshold {
        return Comparison::TieThreshold { margin };
    }
    let exact = |v: &[f64]| v.windows(2).all(|w| w[0] == w[1]);
    let p = if exact(a) && exact(b) {
        None
    } else {
        let p = mann_whitney_p(a, b);
        if p > rule.alpha {
            return Comparison::TieNoise { margin, p };
        }
        Some(p)
    };
    if ma < mb {
        Comparison::Better { margin, p }
    } else {
        Comparison::Worse { margin, p }
    }
}

/// Exact two-sided p-value of the Mann–Whitney U test (ties between values get midranks and
/// the exact permutation distribution of the rank sum is enumerated, which is exact for the
/// few repeats a benchmark has).
pub fn mann_whitney_p(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let mut all: Vec<(f64, usize)> = a
        .iter()
        .map(|&v| (v, 0))
        .chain(b.iter().map(|&v| (v, 1)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    // Midranks, doubled so they stay integers.
    let n = all.len();
    let mut ranks2 = vec![0u64; n];
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let r2 = (i + 1 + j + 1) as u64; // 2 × the mean of ranks i+1..=j+1
        for r in &mut ranks2[i..=j] {
            *r = r2;
        }
        i = j + 1;
    }
    let observed: u64 = all
        .iter()
        .zip(&ranks2)
        .filter(|((_, side), _)| *side == 0)
        .map(|(_, r)| *r)
        .sum();
    // Distribution of the sum of n1 of the n (doubled) ranks, by dynamic programming over
    // subsets: ways[k][s] = subsets of size k with sum s.
    let total: u64 = ranks2.iter().sum();
    let mut ways = vec![vec![0f64; total as usize + 1]; n1 + 1];
    ways[0][0] = 1.0;
    for &r in &ranks2 {
        for k in (1..=n1).rev() {
            for s in (r as usize..=total as usize).rev() {
                ways[k][s] += ways[k - 1][s - r as usize];
            }
        }
    }
    let count: f64 = ways[n1].iter().sum();
    let mean2 = n1 as f64 * (n + 1) as f64; // 2 × n1 (n+1) / 2
    let d = (observed as f64 - mean2).abs();
    let extreme: f64 = ways[n1]
        .iter()
        .enumerate()
        .filter(|(s, _)| (*s as f64 - mean2).abs() >= d - 1e-9)
        .map(|(_, w)| w)
        .sum();
    (extreme / count).min(1.0)
}

/// The smallest two-sided p the test can give with `n1` and `n2` repeats (complete
/// separation, no ties): 2 / C(n1 + n2, n1).
pub fn exact_min_p(n1: usize, n2: usize) -> f64 {
    let mut c = 1.0;
    for i in 0..n1 {
        c = c * (n2 + n1 - i) as f64 / (i + 1) as f64;
    }
    (2.0 / c).min(1.0)
}

/// One criterion's values for each candidate (lower is better), by repeat.
pub struct Criterion<'a> {
    pub name: &'a str,
    pub values: Vec<Vec<f64>>,
}

/// A place in the ranking.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Place {
    /// Index into the candidates.
    pub candidate: usize,
    /// 1 is best; tied candidates share a rank.
    pub rank: u32,
    /// What separated this candidate from the one ranked just above it (none for the first,
    /// or for one tied with it).
    pub decided_by: Option<Decision>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub criterion: String,
    /// How much more the lower-ranked costs on it, as a fraction.
    pub margin: f64,
    pub p: Option<f64>,
}

impl Decision {
    /// The margin as people read it: "12%", or "infinitely" when the first costs nothing on
    /// the criterion. The one spelling the answer, `loadgen decide` and the README share.
    pub fn margin_percent(&self) -> String {
        if self.margin.is_infinite() {
            "infinitely".into()
        } else {
            format!("{:.0}%", self.margin * 100.0)
        }
    }
}

/// Ranks `n` candidates by `criteria` in order. Candidates no criterion separates share a rank.
/// Within a group tied so far, the next criterion splits it into tiers: sorted by median, a
/// candidate starts a new tier when it is separated (beyond the threshold and the test) from
/// the first of the current tier.
pub fn rank(n: usize, criteria: &[Criterion<'_>], rule: Rule) -> Vec<Place> {
    // Groups of tied candidates, best first, each with the decision that opened it.
    let mut groups: Vec<(Vec<usize>, Option<Decision>)> = vec![((0..n).collect(), None)];
    for c in criteria {
        let mut next = Vec::new();
        for (group, opened) in groups {
            let mut sorted = group.clone();
            sorted.sort_by(|&x, &y| median(&c.values[x]).total_cmp(&median(&c.values[y])));
            let mut tiers: Vec<(Vec<usize>, Option<Decision>)> = Vec::new();
            for i in sorted {
                let split = tiers.last().and_then(|(tier, _)| {
                    let lead = tier[0];
                    match compare(&c.values[lead], &c.values[i], rule) {
                        Comparison::Better { margin, p } => Some(Decision {
                            criterion: c.name.to_string(),
                            margin,
                            p,
                        }),
                        _ => None,
                    }
                });
                match (tiers.last_mut(), split) {
                    (Some((tier, _)), None) => tier.push(i),
                    (_, decision) => tiers.push((vec![i], decision)),
                }
            }
            // The group's first tier keeps what opened the group.
            if let Some(first) = tiers.first_mut() {
                first.1 = opened;
            }
            next.extend(tiers);
        }
        groups = next;
    }
    let mut places = Vec::new();
    let mut rank = 1;
    for (group, decided_by) in groups {
        for (k, &candidate) in group.iter().enumerate() {
            places.push(Place {
                candidate,
                rank,
                decided_by: if k == 0 { decided_by.clone() } else { None },
            });
        }
        rank += group.len() as u32;
    }
    places
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_repeats_can_never_pass_a_five_percent_test() {
        assert!((exact_min_p(3, 3) - 0.1).abs() < 1e-12);
        assert!((exact_min_p(4, 4) - 2.0 / 70.0).abs() < 1e-12);
        assert_eq!(Rule::default().repeats_needed(), 4);
    }

    #[test]
    fn exact_p_matches_the_tables() {
        // Complete separation, 4 v 4: 2/70.
        let p = mann_whitney_p(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0]);
        assert!((p - 2.0 / 70.0).abs() < 1e-12, "{p}");
        // Interleaved: no evidence.
        let p = mann_whitney_p(&[1.0, 3.0, 5.0, 7.0], &[2.0, 4.0, 6.0, 8.0]);
        assert!(p > 0.5, "{p}");
        // 5 v 5, one swap at the boundary: U = 1, two-sided p = 2 × 2/252.
        let p = mann_whitney_p(&[1.0, 2.0, 3.0, 4.0, 6.0], &[5.0, 7.0, 8.0, 9.0, 10.0]);
        assert!((p - 4.0 / 252.0).abs() < 1e-12, "{p}");
    }

    /// The old rule ranked bytes 2% apart because bytes have no spread.
    #[test]
    fn a_two_percent_byte_difference_is_a_tie() {
        let c = compare(&[296.0; 4], &[302.0; 4], Rule::default());
        assert!(matches!(c, Comparison::TieThreshold { .. }), "{c:?}");
    }

    /// The old rule ranked non-overlapping ranges over three runs.
    #[test]
    fn three_separated_runs_are_noise_at_five_percent() {
        let c = compare(&[35.0, 33.8, 35.0], &[38.8, 37.5, 41.3], Rule::default());
        // 11% apart but p = 0.1 with three a side.
        assert!(matches!(c, Comparison::TieNoise { .. }), "{c:?}");
    }

    #[test]
    fn a_large_repeatable_difference_wins() {
        let c = compare(
            &[10.0, 11.0, 10.5, 10.2],
            &[20.0, 21.0, 19.0, 20.5],
            Rule::default(),
        );
        match c {
            Comparison::Better { margin, p } => {
                assert!(margin > 0.9);
                assert!(p.unwrap() < 0.05);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn criteria_split_only_what_the_previous_left_tied() {
        // Three candidates: 0 and 1 tie on cost (3% apart), 2 costs twice as much;
        // latency then separates 1 (fast) from 0.
        let cost = Criterion {
            name: "bill",
            values: vec![vec![100.0; 4], vec![103.0; 4], vec![200.0; 4]],
        };
        let latency = Criterion {
            name: "p99 latency",
            values: vec![vec![50.0; 4], vec![20.0; 4], vec![1.0; 4]],
        };
        let places = rank(3, &[cost, latency], Rule::default());
        let order: Vec<(usize, u32)> = places.iter().map(|p| (p.candidate, p.rank)).collect();
        assert_eq!(order, vec![(1, 1), (0, 2), (2, 3)]);
        assert_eq!(
            places[1].decided_by.as_ref().unwrap().criterion,
            "p99 latency"
        );
        assert_eq!(places[2].decided_by.as_ref().unwrap().criterion, "bill");
    }

    #[test]
    fn nothing_separates_equal_candidates() {
        let c = Criterion {
            name: "bill",
            values: vec![vec![10.0, 11.0, 12.0, 10.5], vec![10.4, 11.2, 11.0, 10.1]],
        };
        let places = rank(2, &[c], Rule::default());
        assert!(places.iter().all(|p| p.rank == 1));
    }
}
