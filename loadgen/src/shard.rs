//! One plan, several loadgen processes: `--shard K/N` runs the K-th of N slices of every
//! phase's clients, and `--start-at` starts each phase at an absolute time, so processes on one
//! machine or on several (clocks synchronised by NTP) run the same phases at the same moment
//! with no coordination service; `loadgen merge` ([`crate::merge`]) sums their reports.
//!
//! A process's clients keep the indices they have in the whole plan (client `i` of a phase is
//! in slice `i * N / clients`): the server each starts on and the loopback source address it
//! binds are those it would have in one process, so N processes on one machine spread over the
//! plan's source addresses as one process would, and no two bind the same port. Only the
//! first slice publishes; the others read the feed's head for what they must receive.

use std::{fmt, ops::Range, str::FromStr, time::Duration};

/// `--shard K/N`: slice `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// Most slices a plan is cut into: enough for one process per core of a large fleet.
pub const MAX_SHARDS: u32 = 1024;

impl Shard {
    /// The whole plan in one process.
    pub const WHOLE: Self = Self { index: 1, count: 1 };

    /// The indices, among a phase's `clients`, that this slice runs: contiguous, and the
    /// slices of 1..=N cover `0..clients` exactly once (sizes differ by at most one).
    pub fn clients(self, clients: u32) -> Range<u32> {
        let at = |k: u32| (u64::from(clients) * u64::from(k) / u64::from(self.count)) as u32;
        at(self.index - 1)..at(self.index)
    }

    /// The slice that publishes the phase's events (one publisher for the whole plan).
    pub fn publishes(self) -> bool {
        self.index == 1
    }

    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    /// What a slice's report says of its checks against the servers (a merge leaves it out:
    /// there the check is made).
    pub fn note(self) -> String {
        format!(
            "This process ran slice {self} of the plan (--shard): its counts are its own clients', the servers' /stats and CPU are every slice's, so the two are checked against each other only by `loadgen merge` of every slice's report."
        )
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("--shard {s:?}: expected K/N with 1 ≤ K ≤ N ≤ {MAX_SHARDS}, e.g. 2/6");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count || count > MAX_SHARDS {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

/// `--start-at`: when the first phase starts, as RFC 3339 (`2026-12-07T15:00:00Z`) or Unix
/// seconds (`1796655600`, fractions allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartAt(pub chrono::DateTime<chrono::Utc>);

/// How far ahead `--start-at` may be: a typo must not leave a process waiting for days.
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

impl FromStr for StartAt {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s.trim()) {
            return Ok(Self(t.with_timezone(&chrono::Utc)));
        }
        let secs: f64 = s.trim().parse().map_err(|_| {
            format!("--start-at {s:?}: expected RFC 3339 (2026-12-07T15:00:00Z) or Unix seconds")
        })?;
        if !secs.is_finite() || secs < 0.0 {
            return Err(format!("--start-at {s:?}: not a time"));
        }
        let micros = (secs * 1e6).round() as i64;
        chrono::DateTime::from_timestamp_micros(micros)
            .map(Self)
            .ok_or_else(|| format!("--start-at {s:?}: out of range"))
    }
}

impl fmt::Display for StartAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }
}

impl StartAt {
    /// `offset` after the start as a tokio instant (the wall clock read once, now): in the past
    /// when this process is late.
    pub fn instant(self, offset: Duration) -> tokio::time::Instant {
        let at = self.0 + chrono::Duration::from_std(offset).unwrap_or(chrono::Duration::zero());
        let ahead = at - chrono::Utc::now();
        let now = tokio::time::Instant::now();
        match ahead.to_std() {
            Ok(d) => now + d,
            // Already past: how late, subtracted where the clock allows.
            Err(_) => {
                let late = (-ahead).to_std().unwrap_or_default();
                now.checked_sub(late).unwrap_or(now)
            }
        }
    }

    /// Refuses a start more than [`MAX_WAIT`] ahead.
    ///
    /// # Errors
    /// With the time and the limit.
    pub fn check(self) -> Result<(), String> {
        let ahead = (self.0 - chrono::Utc::now()).to_std().unwrap_or_default();
        if ahead > MAX_WAIT {
            return Err(format!(
                "--start-at {self} is more than {} h ahead",
                MAX_WAIT.as_secs() / 3600
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_every_client_once() {
        for clients in [1u32, 2, 7, 100, 100_001] {
            for count in [1u32, 2, 3, 6, 7] {
                let mut next = 0;
                for index in 1..=count {
                    let r = Shard { index, count }.clients(clients);
                    assert_eq!(r.start, next, "{clients} clients, {index}/{count}");
                    assert!(r.len() as u32 <= clients / count + 1);
                    next = r.end;
                }
                assert_eq!(next, clients);
            }
        }
    }

    #[test]
    fn parses_shards_and_times() {
        assert_eq!("2/6".parse::<Shard>(), Ok(Shard { index: 2, count: 6 }));
        for bad in ["0/2", "3/2", "2", "a/b", "1/0", "1/2000"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let rfc: StartAt = "2026-12-07T15:00:00Z".parse().unwrap();
        let unix: StartAt = "1796655600".parse().unwrap();
        assert_eq!(rfc.0.timestamp(), 1_796_655_600);
        assert_eq!(rfc, unix);
        let frac: StartAt = "1796655600.25".parse().unwrap();
        assert_eq!(frac.0.timestamp_subsec_millis(), 250);
        assert!("tomorrow".parse::<StartAt>().is_err());
        assert!("-5".parse::<StartAt>().is_err());
    }
}
