//! The latency of a sleeping radio: a packet that finds the modelled radio idle waits for its
//! promotion (uplink), or for the next paging occasion and then the promotion (downlink: the
//! network must page the phone before it can send), so the delay that letting the radio sleep
//! costs shows beside the energy it saves.
//!
//! The radio is idle when its profile's tail (CR + short DRX + long DRX on LTE) has run out since
//! its last packet in either direction. Each phone's paging occasions fall at its own offset in
//! the cycle (from its number), as a phone's paging frame does (3GPP TS 36.304 derives it from
//! the phone's identity). Hand-written: it is the measurement.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use feedlab_radio::profile::WakeTimers;

use crate::nat::Dir;

#[derive(Debug, Clone, Copy, Default)]
struct Radio {
    /// When the last packet crossed the radio.
    last: Option<Instant>,
    /// When the promotion under way (or the last one) ends.
    ready: Option<Instant>,
}

/// What the delays did, since the link came up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Packets that found the radio idle and woke it.
    pub wake_ups: u64,
    /// Packets that waited (woke it, or came during a promotion).
    pub delayed: u64,
    /// Their total wait, µs.
    pub delay_us: u64,
}

/// Every phone's modelled radio.
#[derive(Debug)]
pub struct Radios {
    promotion: Duration,
    tail: Duration,
    paging: Option<Duration>,
    epoch: Instant,
    phones: HashMap<u32, Radio>,
    pub counts: Counts,
}

impl Radios {
    pub fn new(t: WakeTimers, epoch: Instant) -> Self {
        Self {
            promotion: Duration::from_secs_f64(t.promotion_s),
            tail: Duration::from_secs_f64(t.tail_s),
            paging: t.paging_cycle_s.map(Duration::from_secs_f64),
            epoch,
            phones: HashMap::new(),
            counts: Counts::default(),
        }
    }

    /// When a packet that would cross phone `phone`'s radio at `at` going `dir` does cross it.
    pub fn pass(&mut self, phone: u32, dir: Dir, at: Instant) -> Instant {
        let r = self.phones.entry(phone).or_default();
        let promoting = r.ready.filter(|&ready| at < ready);
        let idle = r.last.is_none_or(|last| at > last + self.tail);
        let t = match (promoting, idle) {
            (Some(ready), _) => ready,
            (None, true) => {
                let page = match (dir, self.paging) {
                    (Dir::Down, Some(cycle)) => paging_wait(phone, at, self.epoch, cycle),
                    _ => Duration::ZERO,
                };
                let ready = at + page + self.promotion;
                r.ready = Some(ready);
                self.counts.wake_ups += 1;
                ready
            }
            (None, false) => at,
        };
        r.last = Some(r.last.map_or(t, |l| l.max(t)));
        if t > at {
            self.counts.delayed += 1;
            self.counts.delay_us += (t - at).as_micros() as u64;
        }
        t
    }
}

/// The wait from `at` to phone `phone`'s next paging occasion.
fn paging_wait(phone: u32, at: Instant, epoch: Instant, cycle: Duration) -> Duration {
    let c = cycle.as_nanos().max(1);
    // A fixed spread of the phones over the cycle (Fibonacci hashing of the phone's number).
    let offset = (u128::from(phone.wrapping_mul(0x9E37_79B9)) * c) >> 32;
    let now = at.saturating_duration_since(epoch).as_nanos() % c;
    let wait = (offset + c - now) % c;
    Duration::from_nanos(wait as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lte() -> Radios {
        Radios::new(feedlab_radio::profile::lte().wake_timers(), Instant::now())
    }

    #[test]
    fn an_idle_radio_adds_its_promotion_uplink() {
        let mut r = lte();
        let t0 = r.epoch + Duration::from_secs(5);
        assert_eq!(r.pass(1, Dir::Up, t0), t0 + Duration::from_millis(260));
        // While promoting, the next packet waits for the same end.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(r.pass(1, Dir::Up, t1), t0 + Duration::from_millis(260));
        // With the radio on (inside its 10.12 s tail), no delay.
        let t2 = t0 + Duration::from_secs(10);
        assert_eq!(r.pass(1, Dir::Down, t2), t2);
        // After the tail ran out, the next one wakes it again.
        let t3 = t2 + Duration::from_secs(11);
        assert_eq!(r.pass(1, Dir::Up, t3), t3 + Duration::from_millis(260));
        assert_eq!(r.counts.wake_ups, 2);
        assert_eq!(r.counts.delayed, 3);
        // Other phones have their own radio.
        let t4 = t0 + Duration::from_millis(1);
        assert_eq!(r.pass(2, Dir::Up, t4), t4 + Duration::from_millis(260));
    }

    #[test]
    fn a_downlink_packet_waits_for_paging_then_the_promotion() {
        let mut r = lte();
        let cycle = Duration::from_millis(1280);
        for phone in 0..50 {
            let at = r.epoch + Duration::from_millis(3_000 + 37 * u64::from(phone));
            let wait = r.pass(phone, Dir::Down, at) - at;
            assert!(
                wait >= Duration::from_millis(260) && wait < cycle + Duration::from_millis(260),
                "{phone}: {wait:?}"
            );
        }
        // The paging wait is the phone's own: the same phone at the same phase waits alike.
        let e = r.epoch;
        assert_eq!(
            paging_wait(7, e + Duration::from_millis(100), e, cycle),
            paging_wait(7, e + Duration::from_millis(1380), e, cycle)
        );
    }

    #[test]
    fn wifi_has_no_promotion_to_wait_for() {
        let mut r = Radios::new(feedlab_radio::profile::wifi().wake_timers(), Instant::now());
        let t = r.epoch + Duration::from_secs(100);
        assert_eq!(r.pass(0, Dir::Down, t), t);
    }
}
