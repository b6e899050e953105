//! Latency at a target, for the capacity curves (`scripts/capacity/`): with `--slo-out FILE`,
//! each phase appends one JSON line per transport with its latency per delivery and per
//! publish, leaving out the events published in the first `--slo-warmup` of publishing.
//!
//! Per publish is the time until the *last* subscriber had the event: what a fan-out server
//! makes its slowest client wait, which a per-delivery percentile hides when most clients are
//! served early. It comes from the (publish time, latency) pair every delivery keeps with
//! `--slo-out` (16 bytes each): the publish time names the publish (each event has its own
//! send time), so the largest latency among a publish's deliveries is its fan-out time.

use std::collections::HashMap;

use serde::Serialize;

use crate::stats::{new_histogram, Quantiles};

/// One line of `--slo-out`.
#[derive(Debug, Serialize)]
pub struct SloLine {
    pub phase: usize,
    pub repeat: u32,
    pub transport: String,
    pub clients: u32,
    pub rate: f64,
    pub warmup_s: f64,
    /// Deliveries and publishes after the warm-up.
    pub deliveries: u64,
    pub publishes: u64,
    /// Publish → receipt, µs, per delivery.
    pub delivery_us: Quantiles,
    /// Publish → receipt by its last subscriber, µs, per publish.
    pub publish_us: Quantiles,
}

/// Latency per delivery and per publish (the last subscriber's) of the `samples` (publish
/// time µs, latency µs) published at `from_us` or later.
pub fn summarize(samples: &[(u64, u64)], from_us: u64) -> (Quantiles, Quantiles, u64) {
    let mut delivery = new_histogram();
    let mut last: HashMap<u64, u64> = HashMap::new();
    for &(sent, latency) in samples.iter().filter(|(sent, _)| *sent >= from_us) {
        delivery.saturating_record(latency.max(1));
        let l = last.entry(sent).or_insert(0);
        *l = (*l).max(latency);
    }
    let mut publish = new_histogram();
    for &l in last.values() {
        publish.saturating_record(l.max(1));
    }
    (
        Quantiles::of(&delivery),
        Quantiles::of(&publish),
        last.len() as u64,
    )
}

/// Appends `line` to `path` (one JSON object per line).
pub fn append(path: &std::path::Path, line: &SloLine) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let text = serde_json::to_string(line).map_err(std::io::Error::other)?;
    writeln!(f, "{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_waits_for_its_last_subscriber_and_the_warmup_is_left_out() {
        // Two publishes after the warm-up (at 100 and 200), three subscribers each; one before.
        let samples = [
            (50, 9_000),
            (100, 1_000),
            (100, 2_000),
            (100, 30_000),
            (200, 1_000),
            (200, 1_000),
            (200, 4_000),
        ];
        let (delivery, publish, publishes) = summarize(&samples, 100);
        assert_eq!((delivery.count, publishes), (6, 2));
        assert_eq!(delivery.p50, 1_000);
        assert_eq!(publish.count, 2);
        assert!(publish.min >= 3_990 && publish.min <= 4_010, "{publish:?}");
        assert!(publish.max >= 29_900, "{publish:?}");
    }
}
