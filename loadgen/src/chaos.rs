//! Failure on purpose: what `--chaos` kills, when, and how the latency of events published
//! around the kill is told apart from the rest.
//!
//! "No event lost" means little if nothing ever failed; a phase with chaos kills a server while
//! clients are reading and the publisher is publishing, and the report must then show how long
//! clients were cut off and whether the feed came through whole. The outage is measured as the
//! clients lived it, not as loadgen caused it: it runs from the kill to the last client that got
//! its subscription back, so a slow failover widens the window instead of hiding in the
//! "outside" numbers. Everything here is pure (no clock, no I/O), so it is tested beside the code.

use std::{fmt, str::FromStr, time::Duration};

use hdrhistogram::Histogram;

use crate::stats::new_histogram;

/// `--chaos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ChaosKind {
    /// No failure injected.
    #[default]
    #[value(alias = "off")]
    None,
    /// SIGKILL the server, restart it on the same port and data directory after the outage.
    #[value(alias = "restart")]
    KillRestart,
    /// SIGKILL one of several instances; it stays down for the rest of the phase.
    KillOne,
    /// SIGTERM every instance in turn and start it again, as a deploy does.
    RollingRestart,
}

impl ChaosKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::KillRestart => "kill-restart",
            Self::KillOne => "kill-one",
            Self::RollingRestart => "rolling-restart",
        }
    }

    pub fn is_on(self) -> bool {
        self != Self::None
    }
}

impl fmt::Display for ChaosKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `--chaos-at`: a share of the publishing time (`40%`) or a time into it (`8s`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChaosAt {
    Share(f64),
    After(Duration),
}

impl FromStr for ChaosAt {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("--chaos-at {s:?}: {p:?} is not a number"))?;
            if !(v > 0.0 && v < 100.0) {
                return Err(format!(
                    "--chaos-at {s:?}: the share must be above 0% and below 100%"
                ));
            }
            return Ok(Self::Share(v / 100.0));
        }
        humantime::parse_duration(s).map(Self::After).map_err(|e| {
            format!("--chaos-at {s:?}: expected a share like 40% or a time like 8s ({e})")
        })
    }
}

impl fmt::Display for ChaosAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Share(v) => write!(f, "{}%", feedlab_report::units::num(v * 100.0)),
            Self::After(d) => write!(f, "{}", humantime::format_duration(*d)),
        }
    }
}

impl ChaosAt {
    /// When the kill happens after publishing starts, for a phase that publishes `duration`.
    ///
    /// # Errors
    /// When that moment is not inside the publishing time.
    pub fn offset(self, duration: Duration) -> Result<Duration, String> {
        let at = match self {
            Self::Share(v) => duration.mul_f64(v),
            Self::After(d) => d,
        };
        if at.is_zero() || at >= duration {
            return Err(format!(
                "--chaos-at {self} falls outside the {} of publishing (--duration)",
                humantime::format_duration(duration)
            ));
        }
        Ok(at)
    }
}

/// One client's trip from losing its connection (`down_us`) to its next successful
/// subscription or response (`up_us`), on loadgen's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    pub down_us: u64,
    pub up_us: u64,
}

/// The outage as the clients saw it: from `kill_us` to the last re-subscription of a client
/// that lost its connection at or after the kill, and at least to `min_end_us` (when a
/// restarted server was back).
pub fn outage_window(kill_us: u64, min_end_us: u64, reconnects: &[Reconnect]) -> (u64, u64) {
    let end = reconnects
        .iter()
        .filter(|r| r.down_us >= kill_us)
        .map(|r| r.up_us)
        .fold(min_end_us.max(kill_us), u64::max);
    (kill_us, end)
}

/// Latency samples (`sent_us`, latency µs) split by whether the event was in flight during
/// `window` (inclusive): published before it ended and received after it began. An event
/// published just before the kill and delivered after the reconnect belongs to the outage as
/// much as one published during it. (inside, outside).
pub fn split_latency(
    samples: &[(u64, u64)],
    window: (u64, u64),
) -> (Histogram<u64>, Histogram<u64>) {
    let (mut inside, mut outside) = (new_histogram(), new_histogram());
    for &(sent, latency) in samples {
        let h = if sent <= window.1 && sent.saturating_add(latency) >= window.0 {
            &mut inside
        } else {
            &mut outside
        };
        h.saturating_record(latency.max(1));
    }
    (inside, outside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_parses_shares_and_times() {
        let d = Duration::from_secs(20);
        let at: ChaosAt = "40%".parse().unwrap();
        assert_eq!(at.offset(d).unwrap(), Duration::from_secs(8));
        let at: ChaosAt = "12.5 %".parse().unwrap();
        assert_eq!(at.offset(d).unwrap(), Duration::from_millis(2500));
        let at: ChaosAt = "8s".parse().unwrap();
        assert_eq!(at, ChaosAt::After(Duration::from_secs(8)));
        assert_eq!(at.to_string(), "8s");
        assert_eq!("40%".parse::<ChaosAt>().unwrap().to_string(), "40%");
        let late: ChaosAt = "30s".parse().unwrap();
        assert!(late.offset(d).unwrap_err().contains("outside"));
        for bad in ["0%", "100%", "-5%", "abc%", "soon", ""] {
            assert!(bad.parse::<ChaosAt>().is_err(), "{bad:?}");
        }
        assert!("0s"
            .parse::<ChaosAt>()
            .unwrap()
            .offset(d)
            .unwrap_err()
            .contains("outside"));
    }

    #[test]
    fn kinds_parse_and_refuse_the_unknown() {
        use clap::ValueEnum as _;
        for k in ChaosKind::value_variants() {
            assert_eq!(ChaosKind::from_str(k.as_str(), false).unwrap(), *k);
        }
        assert_eq!(
            ChaosKind::from_str("restart", false).unwrap(),
            ChaosKind::KillRestart
        );
        assert!(!ChaosKind::from_str("off", false).unwrap().is_on());
        let e = crate::cli::Args::from_args(["--chaos", "kill-all"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("kill-one"), "{e}");
    }

    #[test]
    fn outage_lasts_until_the_last_client_is_back() {
        let r = |down_us, up_us| Reconnect { down_us, up_us };
        // A reconnect before the kill (say, a proxy cut) does not stretch the window.
        let trips = [
            r(500, 9_000),
            r(1_000, 1_200),
            r(1_100, 3_500),
            r(1_300, 2_000),
        ];
        assert_eq!(outage_window(1_000, 1_000, &trips), (1_000, 3_500));
        // A restart that took longer than every client's return sets the end.
        assert_eq!(outage_window(1_000, 5_000, &trips), (1_000, 5_000));
        assert_eq!(outage_window(1_000, 0, &[]), (1_000, 1_000));
    }

    #[test]
    fn latency_is_classified_by_whether_the_event_was_in_flight_during_the_outage() {
        let samples = [
            (900, 10),    // delivered before the kill
            (900, 2_500), // published before the kill, delivered after the reconnect
            (1_000, 2_000),
            (2_000, 900),
            (3_000, 800),
            (3_001, 12), // published after everyone was back
        ];
        let (inside, outside) = split_latency(&samples, (1_000, 3_000));
        assert_eq!((inside.len(), outside.len()), (4, 2));
        assert_eq!(outside.max(), 12);
        assert!(inside.min() >= 800);
    }
}
