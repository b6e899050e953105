//! One clock for the publisher and every client, so publish-to-receipt latency needs no clock
//! synchronisation, even against a remote server.
//!
//! It is the monotonic clock anchored once to the wall clock: differences never go backwards
//! (an NTP step during a run cannot make a latency negative), and absolute values stay close
//! enough to the server's wall clock to compare with its `ts` when the server is local.

use std::{
    sync::OnceLock,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

struct Anchor {
    epoch_us: u64,
    at: Instant,
}

static ANCHOR: OnceLock<Anchor> = OnceLock::new();

fn anchor() -> &'static Anchor {
    ANCHOR.get_or_init(|| Anchor {
        epoch_us: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64),
        at: Instant::now(),
    })
}

/// Microseconds since the Unix epoch, on loadgen's one clock.
pub fn now_us() -> u64 {
    let a = anchor();
    a.epoch_us + a.at.elapsed().as_micros() as u64
}

/// Fixed intended times: the `n`th action is due at `start + n × interval`, whatever happened to
/// the previous one, so a slow response delays nothing after it (no coordinated omission).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub start: tokio::time::Instant,
    pub interval: Duration,
}

impl Pace {
    /// `rate` actions per second from `start`.
    pub fn per_second(start: tokio::time::Instant, rate: f64) -> Self {
        let interval = if rate > 0.0 {
            Duration::from_secs_f64(1.0 / rate)
        } else {
            Duration::MAX
        };
        Self { start, interval }
    }

    pub fn intended(&self, n: u64) -> tokio::time::Instant {
        let offset = self
            .interval
            .checked_mul(u32::try_from(n).unwrap_or(u32::MAX))
            .unwrap_or(Duration::from_secs(u32::MAX as u64));
        self.start + offset
    }

    /// How many actions fall within `window` from the start.
    pub fn count_within(&self, window: Duration) -> u64 {
        if self.interval == Duration::MAX || self.interval.is_zero() {
            return 0;
        }
        let n = window.as_nanos().div_ceil(self.interval.as_nanos());
        n as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_wall_clock_and_monotonic() {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        let a = now_us();
        let b = now_us();
        assert!(b >= a);
        assert!(a.abs_diff(wall) < 5_000_000);
    }

    #[tokio::test(start_paused = true)]
    async fn pace_keeps_intended_times_after_a_stall() {
        let start = tokio::time::Instant::now();
        let pace = Pace::per_second(start, 20.0);
        assert_eq!(pace.intended(0), start);
        assert_eq!(pace.intended(20), start + Duration::from_secs(1));
        // A stall of 1 s does not shift later actions.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(pace.intended(21) - start, Duration::from_millis(1050));
        assert_eq!(pace.count_within(Duration::from_secs(2)), 40);
        assert_eq!(
            pace.count_within(Duration::from_millis(2010)),
            41,
            "an action due at 2 s is inside a 2.01 s window"
        );
        assert_eq!(
            Pace::per_second(start, 0.0).count_within(Duration::from_secs(5)),
            0
        );
    }
}
