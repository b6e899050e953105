//! What the model reads: a phone's packets with their times, and a synthetic pattern of them.
//!
//! A radio wakes for any packet in either direction and stays up on timers that count from the
//! last one, so the time, the direction and the size of each packet is all the model needs; a
//! loadgen trace reduces to this per client. The [`Pattern`] exists so that anyone can put a
//! question from the papers ("a 300-byte message every 25 s") to the model without a trace.
//!
//! A pattern's figures are those of a typical hour of a pattern that has been running for a while
//! ([`Start::Steady`]): the simulation starts well before the hour it reports, so the hour
//! neither begins with a radio that happened to be asleep nor ends with a tail cut short. A trace
//! starts cold (the phone idle at time 0), and [`Start::Cold`] reproduces that.

use std::time::Duration;

use serde::Serialize;

use crate::Error;

/// Which way a packet goes, seen from the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

/// One packet record: when it crossed the link (since the start of the trace), which way, and
/// its size on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Packet {
    pub at: Duration,
    pub dir: Direction,
    pub bytes: u32,
}

impl Packet {
    pub fn down(at: Duration, bytes: u32) -> Self {
        Packet {
            at,
            dir: Direction::Down,
            bytes,
        }
    }

    pub fn up(at: Duration, bytes: u32) -> Self {
        Packet {
            at,
            dir: Direction::Up,
            bytes,
        }
    }
}

/// The stretch of a trace whose cost is reported. Packets before it still set the radio's state
/// at its start; states after it are not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub start: Duration,
    pub end: Duration,
}

impl Window {
    pub fn new(start: Duration, end: Duration) -> Result<Self, Error> {
        if end <= start {
            return Err(Error::BadWindow { start, end });
        }
        Ok(Window { start, end })
    }

    pub fn len(&self) -> Duration {
        self.end - self.start
    }

    pub fn contains(&self, at: Duration) -> bool {
        at >= self.start && at < self.end
    }
}

/// Whether a pattern's reported hour starts from a radio in its steady rhythm or from idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// The pattern has run for a while before the reported window: a typical hour.
    Steady,
    /// The phone is idle at the window's start and the first event comes one interval in.
    Cold,
}

/// The shortest interval a pattern takes: below a millisecond a "pattern" is a stream, and the
/// model treats each record as instantaneous.
pub const MIN_EVERY: Duration = Duration::from_millis(1);
/// The largest message a pattern takes. A pattern's record is instantaneous (the model does not
/// know the link's rate), which is fair for a message and not for a download: past this, use a
/// packet trace.
pub const MAX_BYTES: u32 = 1 << 20;
/// The longest horizon a pattern takes.
pub const MAX_HOURS: f64 = 168.0;
/// The most events a pattern may generate (simulation and warm-up together).
pub const MAX_EVENTS: u64 = 10_000_000;
/// How long a steady pattern runs before its reported window: longer than any profile's tail.
const LEAD: Duration = Duration::from_secs(120);

/// A downlink event every `every`, each optionally answered by an uplink reply `reply_after`
/// later, over `horizon`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pattern {
    #[serde(rename = "every_s", serialize_with = "seconds")]
    pub every: Duration,
    pub down_bytes: u32,
    pub up_bytes: Option<u32>,
    #[serde(rename = "reply_after_s", serialize_with = "seconds")]
    pub reply_after: Duration,
    #[serde(rename = "horizon_s", serialize_with = "seconds")]
    pub horizon: Duration,
    pub start: Start,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Pattern {
    /// A checked pattern: nonsense gets an error that says what would be accepted.
    pub fn new(
        every: Duration,
        down_bytes: u64,
        up_bytes: Option<u64>,
        reply_after: Duration,
        hours: f64,
        start: Start,
    ) -> Result<Self, Error> {
        let bad = |msg: String| Err(Error::BadPattern(msg));
        if every < MIN_EVERY {
            return bad(format!(
                "--every {} is shorter than a millisecond; give an interval of 1ms or more (e.g. 2s, 25s, 1m)",
                humantime::format_duration(every)
            ));
        }
        if !hours.is_finite() || hours <= 0.0 || hours > MAX_HOURS {
            return bad(format!(
                "--hours {hours} is out of range; give more than 0 and at most {MAX_HOURS}"
            ));
        }
        let horizon = Duration::from_secs_f64(hours * 3600.0);
        if every > horizon {
            return bad(format!(
                "--every {} is longer than the horizon ({hours} h), so the hour would hold no full interval; raise --hours",
                humantime::format_duration(every)
            ));
        }
        let size = |flag: &str, b: u64| -> Result<u32, Error> {
            if b == 0 || b > u64::from(MAX_BYTES) {
                return Err(Error::BadPattern(format!(
                    "{flag} {b} is out of range; give 1 to {MAX_BYTES} bytes (one message; for bulk transfers use a packet trace)"
                )));
            }
            Ok(b as u32)
        };
        let down_bytes = size("--bytes", down_bytes)?;
        let up_bytes = up_bytes.map(|b| size("--up-bytes", b)).transpose()?;
        if up_bytes.is_some() && reply_after >= every {
            return bad(format!(
                "--reply-after {} is not shorter than --every {}; a reply comes before the next event",
                humantime::format_duration(reply_after),
                humantime::format_duration(every)
            ));
        }
        let p = Pattern {
            every,
            down_bytes,
            up_bytes,
            reply_after,
            horizon,
            start,
        };
        let events = p.last_index() - p.first_index() + 1;
        if events > u128::from(MAX_EVENTS) {
            return bad(format!(
                "--every {} over {hours} h makes {events} events; at most {MAX_EVENTS}: shorten --hours or lengthen --every",
                humantime::format_duration(every)
            ));
        }
        Ok(p)
    }

    fn every_ns(&self) -> u128 {
        self.every.as_nanos()
    }

    /// Index of the first interval of the reported window.
    fn lead_index(&self) -> u128 {
        match self.start {
            Start::Steady => LEAD.as_nanos().div_ceil(self.every_ns()),
            Start::Cold => 0,
        }
    }

    fn first_index(&self) -> u128 {
        match self.start {
            Start::Steady => 0,
            Start::Cold => 1,
        }
    }

    /// Index of the last event generated: for a steady pattern one past the window's end, so the
    /// promotion that a next event would start inside the window is counted, as it would be.
    fn last_index(&self) -> u128 {
        let end = self.window_ns().1;
        let k = end.div_ceil(self.every_ns());
        match self.start {
            Start::Steady => k,
            Start::Cold => k.saturating_sub(1).max(1),
        }
    }

    fn window_ns(&self) -> (u128, u128) {
        let start = self.lead_index() * self.every_ns();
        (start, start + self.horizon.as_nanos())
    }

    /// The window whose cost is the pattern's answer.
    pub fn window(&self) -> Window {
        let (s, e) = self.window_ns();
        Window {
            start: from_ns(s),
            end: from_ns(e),
        }
    }

    /// Events (downlink messages) inside the window: the denominator of "energy per event".
    pub fn events_in_window(&self) -> u64 {
        let (s, e) = self.window_ns();
        (self.first_index()..=self.last_index())
            .filter(|k| {
                let t = k * self.every_ns();
                t >= s && t < e
            })
            .count() as u64
    }

    /// The packets, in time order, generated as they are read.
    pub fn packets(&self) -> impl Iterator<Item = Packet> + '_ {
        (self.first_index()..=self.last_index()).flat_map(move |k| {
            let t = from_ns(k * self.every_ns());
            let down = Packet::down(t, self.down_bytes);
            let up = self.up_bytes.map(|b| Packet::up(t + self.reply_after, b));
            std::iter::once(down).chain(up)
        })
    }

    /// One line for a report.
    pub fn describe(&self) -> String {
        let reply = match self.up_bytes {
            Some(b) => format!(
                ", each answered by {b} B up {} later",
                humantime::format_duration(self.reply_after)
            ),
            None => ", no uplink reply".to_string(),
        };
        let start = match self.start {
            Start::Steady => "steady state",
            Start::Cold => "from idle",
        };
        format!(
            "{} B down every {}{reply}, over {} ({start})",
            self.down_bytes,
            humantime::format_duration(self.every),
            humantime::format_duration(self.horizon)
        )
    }
}

fn from_ns(ns: u128) -> Duration {
    Duration::new((ns / 1_000_000_000) as u64, (ns % 1_000_000_000) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(every: u64, start: Start) -> Pattern {
        Pattern::new(
            Duration::from_secs(every),
            300,
            None,
            Duration::from_millis(50),
            1.0,
            start,
        )
        .unwrap()
    }

    /// An hour of one event every 25 s holds 3600 / 25 = 144 events, in either start.
    #[test]
    fn an_hour_of_25s_is_144_events_steady_and_143_cold() {
        let p = pat(25, Start::Steady);
        assert_eq!(p.events_in_window(), 144);
        assert_eq!(p.window().len(), Duration::from_secs(3600));
        // Cold: events at 25 s, 50 s, ... 3575 s: the one at 0 is not there.
        assert_eq!(pat(25, Start::Cold).events_in_window(), 143);
    }

    #[test]
    fn packets_are_sorted_and_replies_follow_events() {
        let p = Pattern::new(
            Duration::from_secs(10),
            300,
            Some(40),
            Duration::from_millis(50),
            1.0,
            Start::Steady,
        )
        .unwrap();
        let v: Vec<Packet> = p.packets().collect();
        assert!(v.windows(2).all(|w| w[0].at <= w[1].at));
        assert_eq!(v[1].at - v[0].at, Duration::from_millis(50));
        assert_eq!(v[1].dir, Direction::Up);
    }

    /// Nonsense patterns are refused with what would be accepted.
    #[test]
    fn nonsense_patterns_are_refused() {
        let e = |every: Duration, bytes: u64, up: Option<u64>, hours: f64| {
            Pattern::new(
                every,
                bytes,
                up,
                Duration::from_millis(50),
                hours,
                Start::Steady,
            )
            .unwrap_err()
            .to_string()
        };
        let s = Duration::from_secs(15);
        assert!(e(Duration::ZERO, 300, None, 1.0).contains("1ms or more"));
        assert!(
            e(Duration::from_micros(999), 300, None, 1.0).contains("shorter than a millisecond")
        );
        assert!(e(s, 0, None, 1.0).contains("1 to 1048576 bytes"));
        assert!(e(s, 10_000_000_000, None, 1.0).contains("1 to 1048576 bytes"));
        assert!(e(s, 300, Some(0), 1.0).contains("--up-bytes 0"));
        assert!(e(s, 300, None, 0.0).contains("--hours 0"));
        assert!(e(s, 300, None, -1.0).contains("--hours -1"));
        assert!(e(s, 300, None, f64::NAN).contains("--hours NaN"));
        assert!(e(Duration::from_secs(7200), 300, None, 1.0).contains("longer than the horizon"));
        assert!(e(Duration::from_millis(1), 300, None, 168.0).contains("at most 10000000"));
        let r = Pattern::new(s, 300, Some(40), s, 1.0, Start::Steady)
            .unwrap_err()
            .to_string();
        assert!(r.contains("--reply-after"), "{r}");
    }
}
