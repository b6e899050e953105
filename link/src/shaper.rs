//! What one direction of the link does to a packet, as a pure function of arrival time and
//! size, so it can be tested without devices: random loss, then a bottleneck of the given
//! bandwidth with a drop-tail queue in front of it (a packet waits while the ones before it are
//! sent; one that finds the queue full is dropped), then the propagation delay, with jitter.
//!
//! Hand-written because it *is* the measurement's instrument: the model is the one Mahimahi and
//! dummynet use (a serialising bottleneck, fixed delay), and every figure the report gives
//! about the link comes from here.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

use rand::{rngs::StdRng, Rng as _, SeedableRng as _};

/// One direction's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DirParams {
    /// One-way propagation delay.
    pub delay: Duration,
    pub jitter: Duration,
    pub loss: f64,
    /// bit/s; `None`: no bottleneck (and no queue).
    pub rate_bps: Option<u64>,
    pub queue_packets: usize,
    pub reorder: bool,
}

/// Why a packet was not carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    Loss,
    Queue,
}

/// The fate of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Dropped(Drop),
    /// Hand it on at this time.
    Deliver(Instant),
}

/// The state of one direction.
#[derive(Debug)]
pub struct Shaper {
    p: DirParams,
    /// When the bottleneck finishes sending what it holds.
    free_at: Option<Instant>,
    /// Finish times of the packets in the queue (the one being sent included).
    queue: VecDeque<Instant>,
    /// Delivery time of the packet before, which the next may not overtake.
    last_due: Option<Instant>,
    rng: StdRng,
}

impl Shaper {
    pub fn new(p: DirParams, seed: u64) -> Self {
        Self {
            p,
            free_at: None,
            queue: VecDeque::new(),
            last_due: None,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Packets waiting for (or in) the bottleneck at `now`.
    pub fn queued(&mut self, now: Instant) -> usize {
        while self.queue.front().is_some_and(|&t| t <= now) {
            self.queue.pop_front();
        }
        self.queue.len()
    }

    /// Decides what happens to a packet of `len` bytes arriving at `now`.
    pub fn admit(&mut self, now: Instant, len: usize) -> Verdict {
        if self.p.loss > 0.0 && self.rng.gen_bool(self.p.loss) {
            return Verdict::Dropped(Drop::Loss);
        }
        let sent = match self.p.rate_bps {
            None => now,
            Some(bps) => {
                if self.queued(now) >= self.p.queue_packets {
                    return Verdict::Dropped(Drop::Queue);
                }
                let start = self.free_at.map_or(now, |f| f.max(now));
                let tx = Duration::from_secs_f64(len as f64 * 8.0 / bps as f64);
                let done = start + tx;
                self.free_at = Some(done);
                self.queue.push_back(done);
                done
            }
        };
        let mut due = sent + self.p.delay;
        if !self.p.jitter.is_zero() {
            let j = self.p.jitter.as_secs_f64();
            let offset = self.rng.gen_range(-j..=j);
            due = if offset >= 0.0 {
                due + Duration::from_secs_f64(offset)
            } else {
                due.checked_sub(Duration::from_secs_f64(-offset))
                    .unwrap_or(sent)
                    .max(sent)
            };
        }
        if !self.p.reorder {
            if let Some(last) = self.last_due {
                due = due.max(last);
            }
            self.last_due = Some(due);
        }
        Verdict::Deliver(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> DirParams {
        DirParams {
            delay: Duration::from_millis(50),
            jitter: Duration::ZERO,
            loss: 0.0,
            rate_bps: None,
            queue_packets: 50,
            reorder: false,
        }
    }

    #[test]
    fn delay_alone_shifts_every_packet() {
        let mut s = Shaper::new(params(), 1);
        let t = Instant::now();
        assert_eq!(
            s.admit(t, 1500),
            Verdict::Deliver(t + Duration::from_millis(50))
        );
    }

    #[test]
    fn the_bottleneck_serialises_and_the_full_queue_drops() {
        // 1.2 Mbit/s: a 1500-byte packet takes 10 ms.
        let p = DirParams {
            rate_bps: Some(1_200_000),
            queue_packets: 3,
            delay: Duration::ZERO,
            ..params()
        };
        let mut s = Shaper::new(p, 1);
        let t = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(s.admit(t, 1500), Verdict::Deliver(t + ms(10)));
        assert_eq!(s.admit(t, 1500), Verdict::Deliver(t + ms(20)));
        assert_eq!(s.admit(t, 1500), Verdict::Deliver(t + ms(30)));
        assert_eq!(s.admit(t, 1500), Verdict::Dropped(Drop::Queue));
        // Once the first is sent there is room again.
        assert_eq!(s.admit(t + ms(10), 1500), Verdict::Deliver(t + ms(40)));
        assert_eq!(s.queued(t + ms(40)), 0);
    }

    #[test]
    fn loss_drops_about_its_share() {
        let p = DirParams {
            loss: 0.02,
            ..params()
        };
        let mut s = Shaper::new(p, 42);
        let t = Instant::now();
        let lost = (0..100_000)
            .filter(|_| s.admit(t, 100) == Verdict::Dropped(Drop::Loss))
            .count();
        assert!((1_800..2_200).contains(&lost), "{lost}");
    }

    #[test]
    fn jitter_does_not_reorder_unless_asked() {
        let p = DirParams {
            jitter: Duration::from_millis(20),
            ..params()
        };
        let mut s = Shaper::new(p, 3);
        let t = Instant::now();
        let mut last = t;
        let mut spread = (Duration::MAX, Duration::ZERO);
        for i in 0..1000u64 {
            let now = t + Duration::from_micros(i * 100);
            let Verdict::Deliver(due) = s.admit(now, 100) else {
                panic!("no loss set")
            };
            assert!(due >= last);
            last = due;
            let d = due - now;
            spread = (spread.0.min(d), spread.1.max(d));
        }
        assert!(spread.1 > Duration::from_millis(60), "{spread:?}");
    }
}
