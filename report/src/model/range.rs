//! A figure over the repeats of one phase: its median and range ([`Range`]), the figures
//! conclusions rank on ([`Spread`]), and the one rule for taking a figure over runs
//! ([`over_runs`]). How ranges order transports is [`crate::spread`]'s.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::TransportResult;

// Doc comments below are the committed schema's descriptions (results/report.schema.json):
// kept word for word, links to where the items lived before the report was its own crate
// included.
/// A figure over the repeats of one phase.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Range {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Range {
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Self {
            min: v[0],
            median,
            max: v[n - 1],
        })
    }

    pub fn point(v: f64) -> Self {
        Self {
            min: v,
            median: v,
            max: v,
        }
    }

    /// `median [min–max]` over `runs` runs, or the value alone for one run or when every run
    /// gave the same (as written): how every table and sentence of the report shows a figure.
    pub fn show(&self, runs: usize, f: impl Fn(f64) -> String) -> String {
        let (lo, hi) = (f(self.min), f(self.max));
        if runs > 1 && lo != hi {
            format!("{} [{lo}–{hi}]", f(self.median))
        } else {
            f(self.median)
        }
    }

    /// Whether two ranges share a value: then the runs cannot tell the two apart.
    pub fn overlaps(&self, other: &Self) -> bool {
        self.min <= other.max && other.min <= self.max
    }
}

/// The figures conclusions rank on, over every repeat of one phase (same transport, HTTP
/// version, TLS, clients and rate).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Spread {
    /// How many runs the ranges cover.
    #[schemars(range(min = 2))]
    pub runs: u32,
    pub latency_p50_us: Option<Range>,
    pub latency_p99_us: Option<Range>,
    pub bytes_per_event: Option<Range>,
    pub requests_per_event: Option<Range>,
    pub server_cpu_us_per_event: Option<Range>,
    /// The least server CPU any run used, s: below [`CPU_RESOLUTION_S`] per-event CPU is too
    /// coarse to rank.
    pub server_cpu_min_s: Option<f64>,
}

/// A figure over every run of one phase: its median and range, and how many runs it covers.
/// The rule, chosen once for every table, sentence, ranking and crossover: every run must have
/// measured it. A figure some run could not measure has no honest range, and a median of the
/// runs that happened to measure it would hide the one that failed.
pub fn over_runs(
    runs: &[&TransportResult],
    f: impl Fn(&TransportResult) -> Option<f64>,
) -> Option<(Range, u32)> {
    if runs.is_empty() {
        return None;
    }
    let v: Vec<f64> = runs.iter().filter_map(|r| f(r)).collect();
    if v.len() != runs.len() {
        return None;
    }
    Range::of(&v).map(|g| (g, runs.len() as u32))
}
