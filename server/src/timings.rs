//! When a tracked client's connections wrote and read, and what that would cost a phone's radio:
//! `GET /stats/client/ID/radio?profile=NAME`, which the live page shows under each pane.
//!
//! A page cannot see most of what wakes a phone's radio: an SSE comment, a WebSocket ping and
//! the browser's pong, a poll's empty answer never reach its JavaScript as packets. The server
//! writes and reads them all, so it keeps their times here, and the figures come from
//! feedlab-radio's RRC model (the one loadgen's report uses) run over them; the page only shows
//! them. Each stamp says why it was sent (an event, a write with no event, something from the
//! client), so the answer can name what woke the radio: on a quiet feed that is the heartbeat.
//!
//! The server's times stand in for the phone's packets: a write reaches the phone one network
//! delay later, and TCP's acknowledgements ride with the data, so on a link with a fixed delay
//! the gaps, and so the wake-ups and radio-on time, are the same.
//!
//! Memory is bounded: each tracked client (`--max-tracked-clients`) keeps, per transport, a ring
//! of its last `--client-timings` stamps of 12 bytes, grown as used; stamps closer than
//! [`MERGE`] in the same direction are one (the radio cannot tell them apart).

use std::{
    collections::{BTreeMap, VecDeque},
    time::{Duration, Instant},
};

use feedlab_radio::{profile, rrc, Packet, Profile, Window};
use parking_lot::Mutex;
use serde::Serialize;

use feedlab_wire::Transport;

/// Stamps this close in the same direction are merged: a poll's answer is counted by its
/// handler and its head by the accounting wrapper, one packet apart.
pub const MERGE: Duration = Duration::from_millis(10);

/// Why the server wrote or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// A write with no event in it: an SSE heartbeat, a WebSocket ping, a poll's empty answer, a
    /// response head.
    NoEvent,
    /// A write that carried events (merging with a [`Cause::NoEvent`] keeps this).
    Event,
    /// Something the client sent: a request, a WebSocket message, a pong.
    Client,
}

impl Cause {
    fn up(self) -> bool {
        self == Cause::Client
    }
}

#[derive(Debug, Clone, Copy)]
struct Stamp {
    /// Milliseconds since the ring's epoch (saturating after 49 days).
    at_ms: u32,
    bytes: u32,
    cause: Cause,
}

/// One transport's ring of stamps for one client.
#[derive(Debug)]
pub struct Timings {
    epoch: Instant,
    cap: usize,
    ring: Mutex<VecDeque<Stamp>>,
}

impl Timings {
    pub fn new(cap: usize) -> Self {
        Self {
            epoch: Instant::now(),
            cap: cap.max(2),
            ring: Mutex::new(VecDeque::new()),
        }
    }

    /// Records `bytes` moved now for `cause`.
    pub fn stamp(&self, cause: Cause, bytes: u64) {
        self.stamp_at(Instant::now(), cause, bytes);
    }

    fn stamp_at(&self, now: Instant, cause: Cause, bytes: u64) {
        let at_ms = u32::try_from(now.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u32::MAX);
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        let mut ring = self.ring.lock();
        let merge_ms = MERGE.as_millis() as u32;
        if let Some(last) = ring
            .iter_mut()
            .rev()
            .take(2)
            .find(|s| s.cause.up() == cause.up())
        {
            if at_ms.saturating_sub(last.at_ms) <= merge_ms {
                last.bytes = last.bytes.saturating_add(bytes);
                last.cause = last.cause.max(cause);
                return;
            }
        }
        if ring.len() == self.cap {
            ring.pop_front();
        }
        ring.push_back(Stamp {
            at_ms,
            bytes,
            cause,
        });
    }

    /// What the stamps kept would cost on `profile`, from the oldest kept stamp to `now`;
    /// `None` before the first stamp.
    pub fn figures(&self, profile: &Profile, now: Instant) -> Option<Figures> {
        let mut stamps: Vec<Stamp> = self.ring.lock().iter().copied().collect();
        // Two threads may take their times in one order and the lock in the other.
        stamps.sort_by_key(|s| s.at_ms);
        let first = stamps.first()?.at_ms;
        let now_ms = now.saturating_duration_since(self.epoch).as_millis() as f64;
        let ms = |at: u32| Duration::from_millis(u64::from(at - first));
        let packets = stamps.iter().map(|s| {
            let at = ms(s.at_ms);
            if s.cause.up() {
                Packet::up(at, s.bytes)
            } else {
                Packet::down(at, s.bytes)
            }
        });
        // At least a second, so a connection that has just opened still has a window.
        let end = Duration::from_secs_f64(((now_ms - f64::from(first)) / 1e3).max(1.0));
        let window = Window::new(Duration::ZERO, end).ok()?;
        let usage = feedlab_radio::simulate(profile, packets.clone(), window).ok()?;
        let wakes = rrc::wakes(profile, packets, end.as_secs_f64()).ok()?;
        let mut woken_by = BTreeMap::new();
        for cause in [Cause::Event, Cause::NoEvent, Cause::Client] {
            woken_by.insert(cause, 0u64);
        }
        // Each wake is at a packet's time; the first stamp at that time is the one that woke it.
        let mut i = 0;
        for wake in wakes {
            while i < stamps.len() && ms(stamps[i].at_ms).as_secs_f64() < wake {
                i += 1;
            }
            if let Some(s) = stamps.get(i) {
                *woken_by.entry(s.cause).or_default() += 1;
            }
        }
        let mut sent = BTreeMap::new();
        for s in &stamps {
            *sent.entry(s.cause).or_insert(0u64) += 1;
        }
        Some(Figures {
            window_s: usage.duration_s,
            packets: stamps.len() as u64,
            sent,
            wake_ups: usage.promotions,
            wake_ups_per_hour: usage.promotions_per_hour(),
            woken_by,
            radio_on_share: usage.radio_on_share(),
            energy_per_hour_j: usage.energy_per_hour_j(),
            tail_share: usage.tail_share(),
        })
    }
}

/// What one transport's recent traffic would cost the phone's radio, as the page shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Figures {
    /// From the oldest stamp kept to now.
    pub window_s: f64,
    /// Stamps in the window (writes and reads, merged within [`MERGE`]).
    pub packets: u64,
    /// Stamps by why they were sent.
    pub sent: BTreeMap<Cause, u64>,
    pub wake_ups: u64,
    pub wake_ups_per_hour: f64,
    /// Wake-ups by why the packet that caused each was sent.
    pub woken_by: BTreeMap<Cause, u64>,
    pub radio_on_share: f64,
    pub energy_per_hour_j: f64,
    pub tail_share: f64,
}

/// The profile as the page names it: its name, title, timers and whether it is an estimate.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileView {
    pub name: &'static str,
    pub title: &'static str,
    pub timers: String,
    pub estimate: bool,
}

impl ProfileView {
    pub fn of(p: &Profile) -> Self {
        Self {
            name: p.name,
            title: p.title,
            timers: p.timers(),
            estimate: p.has_estimates(),
        }
    }
}

/// The answer to `GET /stats/client/ID/radio`: the chosen profile, every profile (for the
/// page's selector), and the figures of each transport the client has used.
pub fn report(
    timings: &[Timings; Transport::EVERY.len()],
    profile: &Profile,
    now: Instant,
) -> BTreeMap<&'static str, Option<Figures>> {
    Transport::EVERY
        .iter()
        .map(|t| (t.name(), timings[t.index()].figures(profile, now)))
        .collect()
}

/// Every profile, in the radio crate's order, for the page's selector.
pub fn profiles() -> Vec<ProfileView> {
    profile::all().iter().map(ProfileView::of).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: &Timings, s: f64) -> Instant {
        t.epoch + Duration::from_secs_f64(s)
    }

    /// A quiet SSE stream: a heartbeat every 15 s and one event. LTE's tail (10.12 s) ends
    /// between heartbeats, so every heartbeat wakes it; Wi-Fi's too. The event, 2 s after a
    /// heartbeat, finds LTE's radio still up and wakes nothing there.
    #[test]
    fn heartbeats_wake_the_radio_on_a_quiet_stream() {
        let t = Timings::new(64);
        t.stamp_at(at(&t, 0.0), Cause::Client, 300);
        t.stamp_at(at(&t, 0.001), Cause::NoEvent, 150);
        for i in 1..=8 {
            t.stamp_at(at(&t, 15.0 * f64::from(i)), Cause::NoEvent, 13);
            if i == 3 {
                t.stamp_at(at(&t, 47.0), Cause::Event, 200);
            }
        }
        let lte = t.figures(&profile::lte(), at(&t, 125.0)).unwrap();
        assert_eq!(lte.woken_by[&Cause::NoEvent], 8, "{lte:?}");
        assert_eq!(lte.woken_by[&Cause::Event], 0);
        assert_eq!(lte.woken_by[&Cause::Client], 1);
        assert_eq!(lte.wake_ups, 9);
        assert_eq!(lte.packets, 11);
        let wifi = t.figures(&profile::wifi(), at(&t, 125.0)).unwrap();
        assert_eq!(wifi.woken_by[&Cause::Event], 1);
        assert!(wifi.radio_on_share < lte.radio_on_share);
    }

    #[test]
    fn a_merged_write_keeps_its_event() {
        let t = Timings::new(8);
        t.stamp_at(at(&t, 1.0), Cause::Event, 0);
        t.stamp_at(at(&t, 1.005), Cause::NoEvent, 300);
        let f = t.figures(&profile::lte(), at(&t, 2.0)).unwrap();
        assert_eq!(f.sent.get(&Cause::Event), Some(&1));
        assert_eq!(f.sent.get(&Cause::NoEvent), None);
    }

    #[test]
    fn the_ring_keeps_the_last_stamps() {
        let t = Timings::new(4);
        for i in 0..10 {
            t.stamp_at(at(&t, f64::from(i)), Cause::NoEvent, 1);
        }
        let f = t.figures(&profile::lte(), at(&t, 10.0)).unwrap();
        assert_eq!(f.packets, 4);
        assert!((f.window_s - 4.0).abs() < 1e-9, "{f:?}");
        assert!(Timings::new(4)
            .figures(&profile::lte(), Instant::now())
            .is_none());
    }
}
