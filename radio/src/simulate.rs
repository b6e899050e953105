//! From the machine's states to what they cost, over a window of the trace.
//!
//! The energy is the radio's, above the phone's base power, as ARO counts it: ARO's profiles put
//! IDLE between paging wake-ups at 0 W (`P_IDLE=0.0`, `POWER_IDLE=0`), so the screen, CPU and
//! the rest of the phone are not in any figure here. What IDLE does cost (LTE's paging, Wi-Fi's
//! standby) is in the total and reported on its own line, so a reader can take it out: it is
//! what the phone pays for being reachable at all, whatever the transport.

use std::ops::AddAssign;

use serde::Serialize;

use crate::packets::{Packet, Window};
use crate::profile::Profile;
use crate::rrc::{self, Kind, Sink, Span};
use crate::Error;

/// What a window of a trace cost the radio.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Length of the window.
    pub duration_s: f64,
    /// All of the radio's energy in the window: promotion + transfer + tail + idle.
    pub energy_j: f64,
    pub promotion_energy_j: f64,
    /// Continuous reception and the per-byte terms.
    pub transfer_energy_j: f64,
    /// Connected and waiting for a timer (see [`rrc`]).
    pub tail_energy_j: f64,
    /// IDLE: paging or standby.
    pub idle_energy_j: f64,
    /// Time out of IDLE: promotion, transfer and tail.
    pub radio_on_s: f64,
    /// Departures from IDLE whose packet falls in the window.
    pub promotions: u64,
    /// Packets in the window.
    pub packets: u64,
}

const HOUR_S: f64 = 3600.0;

impl Usage {
    pub fn energy_per_hour_j(&self) -> f64 {
        self.energy_j * HOUR_S / self.duration_s
    }

    /// Milliwatt-hours per hour, i.e. the mean power in mW; a phone battery holds 10-20 Wh.
    pub fn energy_per_hour_mwh(&self) -> f64 {
        self.energy_per_hour_j() / 3.6
    }

    /// Energy per delivered event, or `None` when none was delivered.
    pub fn energy_per_event_j(&self, events: u64) -> Option<f64> {
        (events > 0).then(|| self.energy_j / events as f64)
    }

    pub fn radio_on_share(&self) -> f64 {
        self.radio_on_s / self.duration_s
    }

    pub fn promotions_per_hour(&self) -> f64 {
        self.promotions as f64 * HOUR_S / self.duration_s
    }

    pub fn tail_share(&self) -> f64 {
        if self.energy_j > 0.0 {
            self.tail_energy_j / self.energy_j
        } else {
            0.0
        }
    }
}

/// Sums, e.g. the phones of one transport; divide by the count for a mean phone.
impl AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        self.duration_s += o.duration_s;
        self.energy_j += o.energy_j;
        self.promotion_energy_j += o.promotion_energy_j;
        self.transfer_energy_j += o.transfer_energy_j;
        self.tail_energy_j += o.tail_energy_j;
        self.idle_energy_j += o.idle_energy_j;
        self.radio_on_s += o.radio_on_s;
        self.promotions += o.promotions;
        self.packets += o.packets;
    }
}

struct Account {
    start: f64,
    end: f64,
    usage: Usage,
}

impl Account {
    fn inside(&self, at: f64) -> bool {
        at >= self.start && at < self.end
    }
}

impl Sink for Account {
    fn span(&mut self, s: Span) {
        let from = s.from_s.max(self.start);
        let to = s.to_s.min(self.end);
        if to <= from {
            return;
        }
        let e = s.power_w * (to - from);
        let u = &mut self.usage;
        u.energy_j += e;
        match s.kind {
            Kind::Idle => u.idle_energy_j += e,
            Kind::Promotion => u.promotion_energy_j += e,
            Kind::Transfer => u.transfer_energy_j += e,
            Kind::Tail => u.tail_energy_j += e,
        }
        if s.kind != Kind::Idle {
            u.radio_on_s += to - from;
        }
    }

    fn wake(&mut self, at_s: f64) {
        if self.inside(at_s) {
            self.usage.promotions += 1;
        }
    }

    fn packet(&mut self, at_s: f64, joules: f64) {
        if self.inside(at_s) {
            self.usage.packets += 1;
            self.usage.energy_j += joules;
            self.usage.transfer_energy_j += joules;
        }
    }
}

/// Run `profile`'s RRC machine over `packets` (sorted by time; unsorted is an error naming the
/// first packet out of order) and account for `window`. Packets before the window set the
/// radio's state at its start; the phone is idle before the first packet.
pub fn simulate(
    profile: &Profile,
    packets: impl IntoIterator<Item = Packet>,
    window: Window,
) -> Result<Usage, Error> {
    let mut acc = Account {
        start: window.start.as_secs_f64(),
        end: window.end.as_secs_f64(),
        usage: Usage {
            duration_s: window.len().as_secs_f64(),
            ..Usage::default()
        },
    };
    rrc::drive(profile, packets, acc.end, &mut acc)?;
    Ok(acc.usage)
}

#[cfg(test)]
mod tests {
    //! The figures a reader would check, each derived by hand from the profile's parameters in
    //! its doc comment. LTE's figures use these ARO `lte.conf` values:
    //!
    //! - promotion 0.26 s at 1.21 W: 0.3146 J
    //! - CR tail 0.1 s at beta 1.2 W: 0.12 J
    //! - short DRX 0.02 s, one 0.02 s cycle of 2 ms at 1.68 W + 18 ms at 1.06 W: 0.02244 J
    //! - long DRX 10 s, 250 cycles of 40 ms, each 2 ms at 1.68 W + 38 ms at 1.06 W = 0.04364 J:
    //!   10.91 J (mean 1.091 W)
    //! - IDLE: 43 ms at 0.594 W every 1.28 s, 0 W between: mean 0.0199547 W
    //! - radio on per isolated wake-up: 0.26 + 0.1 + 0.02 + 10 = 10.38 s
    //!
    //! so one isolated wake-up costs 0.3146 + 0.12 + 0.02244 + 10.91 = 11.36704 J absolute (the
    //! radio's energy above the phone's base, IDLE excluded), or 11.36704 - 10.38 x 0.0199547 =
    //! 11.15991 J above staying idle for those 10.38 s. The brief's "about 11.5 J" is within 1.2%
    //! of the first; the difference is ARO's tail, 10.12 s, against the 11.576 s that Huang et
    //! al. 2012 is cited for (not read at source), partly offset by the 1.2 W of CR and the DRX
    //! on-durations at 1.68 W.

    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::packets::{Pattern, Start};
    use crate::profile;

    const PROMO_J: f64 = 0.26 * 1.21;
    const CR_J: f64 = 0.1 * 1.2;
    const SHORT_J: f64 = 0.002 * 1.68 + 0.018 * 1.06;
    const LONG_J: f64 = 250.0 * (0.002 * 1.68 + 0.038 * 1.06);
    const LTE_WAKE_J: f64 = PROMO_J + CR_J + SHORT_J + LONG_J;
    const LTE_IDLE_W: f64 = 0.043 * 0.594 / 1.28;
    const LTE_ON_S: f64 = 10.38;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn window(a: f64, b: f64) -> Window {
        Window::new(secs(a), secs(b)).unwrap()
    }

    fn close(got: f64, want: f64, tol: f64, what: &str) {
        assert!(
            (got - want).abs() <= tol,
            "{what}: got {got}, want {want} +- {tol}"
        );
    }

    fn steady(name: &str, every_s: u64, up: Option<u64>) -> (Usage, u64) {
        let p = Pattern::new(
            Duration::from_secs(every_s),
            300,
            up,
            Duration::from_millis(50),
            1.0,
            Start::Steady,
        )
        .unwrap();
        let u = simulate(&profile::by_name(name).unwrap(), p.packets(), p.window()).unwrap();
        (u, p.events_in_window())
    }

    /// (a) One isolated LTE wake-up, a 1-byte packet at 10 s, counted from 0 to 40 s:
    /// promotion + tail = 0.3146 + 0.12 + 0.02244 + 10.91 = 11.36704 J (plus 8 bits x 51.97
    /// mJ/Mbit = 0.0000004 J), radio on 10.38 s, one wake-up; the other 29.62 s are IDLE at
    /// 0.0199547 W = 0.59106 J.
    #[test]
    fn one_isolated_lte_wake_up_is_promotion_plus_tail() {
        let u = simulate(
            &profile::lte(),
            [Packet::down(secs(10.0), 1)],
            window(0.0, 40.0),
        )
        .unwrap();
        close(LTE_WAKE_J, 11.36704, 1e-9, "hand sum");
        close(
            u.promotion_energy_j + u.tail_energy_j,
            11.36704,
            1e-9,
            "promotion + tail",
        );
        close(u.promotion_energy_j, 0.3146, 1e-9, "promotion");
        close(u.tail_energy_j, 11.05244, 1e-9, "tail");
        close(u.radio_on_s, LTE_ON_S, 1e-9, "radio on");
        close(u.idle_energy_j, 29.62 * LTE_IDLE_W, 1e-9, "idle");
        close(u.transfer_energy_j, 8.0 / 1e6 * 0.05197, 1e-12, "bytes");
        assert_eq!(u.promotions, 1);
        // Above staying idle: 11.36704 - 10.38 x 0.0199547 = 11.15991 J.
        close(
            u.promotion_energy_j + u.tail_energy_j - LTE_ON_S * LTE_IDLE_W,
            11.15991,
            1e-5,
            "above idle",
        );
    }

    /// (b) LTE, 300 B every 15 s, steady: each event is alone (10.38 s on < 15 s), so the radio
    /// is on 10.38 / 15 = 69.2% of the time, 240 wake-ups an hour, and the hour costs
    /// 240 x (11.36704 + 2400 bits x 51.97 mJ/Mbit) + 240 x 4.62 s x 0.0199547 W
    /// = 2728.09 + 0.03 + 22.13 = 2750.25 J.
    /// The brief's ">= 70%" needs a tail of 10.24 s or more after a 0.26 s promotion: ARO's is
    /// 10.12 s, so 69.2% is ARO's answer (Huang's 11.576 s tail would give 78.9%).
    #[test]
    fn lte_every_15s_keeps_the_radio_on_69_percent() {
        let (u, events) = steady("lte", 15, None);
        assert_eq!(events, 240);
        close(u.radio_on_share(), 10.38 / 15.0, 1e-9, "radio-on share");
        close(u.radio_on_share(), 0.692, 0.0005, "radio-on share, rounded");
        close(u.promotions_per_hour(), 240.0, 1e-9, "wake-ups per hour");
        let bytes_j = 2400.0 / 1e6 * 0.05197;
        close(
            u.energy_per_hour_j(),
            240.0 * (LTE_WAKE_J + bytes_j) + 240.0 * 4.62 * LTE_IDLE_W,
            1e-6,
            "J/h",
        );
        close(u.energy_per_hour_j(), 2750.25, 0.01, "J/h rounded");
    }

    /// (b) LTE every 60 s: 10.38 / 60 = 17.3% on (the brief's "about 20%", within 5 points), 60
    /// wake-ups, 60 x 11.36716 + 60 x 49.62 x 0.0199547 = 741.44 J an hour.
    #[test]
    fn lte_every_60s_keeps_the_radio_on_17_percent() {
        let (u, _) = steady("lte", 60, None);
        close(u.radio_on_share(), 10.38 / 60.0, 1e-9, "radio-on share");
        close(u.radio_on_share(), 0.20, 0.05, "about a fifth");
        close(u.promotions_per_hour(), 60.0, 1e-9, "wake-ups per hour");
        close(u.energy_per_hour_j(), 741.44, 0.01, "J/h");
    }

    /// LTE with a 5 s timer, every 15 s: on 0.26 + 5 = 5.26 s per event, 35.1%; one wake-up
    /// costs 0.3146 + 0.12 + 0.02244 + 122 x 0.04364 = 5.78112 J.
    #[test]
    fn lte_short_halves_the_on_time() {
        let (u, events) = steady("lte-short", 15, None);
        close(u.radio_on_share(), 5.26 / 15.0, 1e-9, "radio-on share");
        close(
            (u.promotion_energy_j + u.tail_energy_j) / events as f64,
            PROMO_J + CR_J + SHORT_J + 122.0 * (0.002 * 1.68 + 0.038 * 1.06),
            1e-9,
            "per wake-up",
        );
    }

    /// (c) 3G (ARO i997): an isolated wake-up is 2.0 s x 0.65 W + 4 s DCH x 1.30 W + 10 s FACH x
    /// 0.30 W = 1.3 + 5.2 + 3.0 = 9.5 J and 16 s on. Every 60 s: 16/60 = 26.7% on, 60 x 9.5 =
    /// 570 J/h (IDLE is 0 W). Every 15 s the 14 s tail leaves 1 s of IDLE, less than the 2 s
    /// promotion, so the promotion is cut to 1 s and the radio is on all the time, still waking
    /// 240 times: 240 x (0.65 + 5.2 + 3.0) = 2124 J/h.
    #[test]
    fn umts_figures() {
        let u = simulate(
            &profile::umts(),
            [Packet::down(secs(10.0), 300)],
            window(0.0, 60.0),
        )
        .unwrap();
        close(u.energy_j, 9.5, 1e-9, "isolated wake-up");
        close(u.radio_on_s, 16.0, 1e-9, "on time");
        let (u, _) = steady("3g", 60, None);
        close(u.radio_on_share(), 16.0 / 60.0, 1e-9, "60 s share");
        close(u.energy_per_hour_j(), 570.0, 1e-6, "60 s J/h");
        let (u, _) = steady("3g", 15, None);
        close(u.radio_on_share(), 1.0, 1e-9, "15 s share");
        close(u.promotions_per_hour(), 240.0, 1e-9, "15 s wake-ups");
        close(u.energy_per_hour_j(), 2124.0, 1e-6, "15 s J/h");
    }

    /// (c) Wi-Fi (ARO): no promotion, a 0.25 s tail at 0.403 W, standby 0.02 W. Every 15 s:
    /// on 0.25 / 15 = 1.67%; 240 x 0.25 x 0.403 + (3600 - 60) x 0.02 = 24.18 + 70.8 = 94.98 J/h,
    /// three quarters of it standby.
    #[test]
    fn wifi_figures() {
        let (u, _) = steady("wifi", 15, None);
        close(u.radio_on_share(), 0.25 / 15.0, 1e-9, "share");
        close(u.energy_per_hour_j(), 94.98, 1e-6, "J/h");
        close(u.idle_energy_j, 70.8, 1e-6, "standby");
        close(u.promotions_per_hour(), 240.0, 1e-9, "wake-ups");
    }

    /// (d) One event every 2 s from a cold start over an hour (events at 2, 4, ... 3598 s): the
    /// radio wakes once, at 2 s, and never idles again: IDLE only for the 1.74 s before the
    /// promotion and nothing after, since the last tail (from 3598 s) outlasts the hour. In
    /// steady state there is no wake-up at all. The same holds for every profile whose tail
    /// is longer than 2 s (Wi-Fi's 0.25 s is not: it wakes for every event).
    #[test]
    fn every_2s_the_radio_never_idles() {
        let p = Pattern::new(
            Duration::from_secs(2),
            300,
            Some(40),
            Duration::from_millis(50),
            1.0,
            Start::Cold,
        )
        .unwrap();
        for name in ["lte", "lte-short", "3g", "5g-nsa"] {
            let prof = profile::by_name(name).unwrap();
            let u = simulate(&prof, p.packets(), p.window()).unwrap();
            assert_eq!(u.promotions, 1, "{name}");
            let promo_s = if name == "3g" { 2.0 } else { 0.26 };
            close(u.radio_on_s, 3600.0 - (2.0 - promo_s), 1e-6, name);
            let (s, _) = steady(name, 2, Some(40));
            assert_eq!(s.promotions, 0, "{name} steady");
            close(s.radio_on_share(), 1.0, 1e-9, name);
        }
        let (w, _) = steady("wifi", 2, Some(40));
        close(
            w.promotions_per_hour(),
            1800.0,
            1e-9,
            "wifi wakes every time",
        );
    }

    /// (e) A lone uplink packet wakes the radio exactly as a lone downlink one does: the machine
    /// looks only at time and (for 3G's FACH) size.
    #[test]
    fn uplink_and_downlink_each_wake_the_radio() {
        for prof in profile::all() {
            let w = window(0.0, 60.0);
            let up = simulate(&prof, [Packet::up(secs(10.0), 40)], w).unwrap();
            let down = simulate(&prof, [Packet::down(secs(10.0), 40)], w).unwrap();
            assert_eq!(up.promotions, 1, "{}", prof.name);
            assert_eq!(down.promotions, 1, "{}", prof.name);
            close(up.radio_on_s, down.radio_on_s, 1e-12, prof.name);
            assert!(up.radio_on_s > 0.0);
        }
    }

    /// (f) Unsorted packets are an error naming both packets, not a wrong figure.
    #[test]
    fn unsorted_packets_are_refused() {
        let e = simulate(
            &profile::lte(),
            [Packet::down(secs(5.0), 1), Packet::up(secs(4.0), 1)],
            window(0.0, 10.0),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("packet 1") && e.contains("packet 0"), "{e}");
        assert!(Window::new(secs(3.0), secs(3.0)).is_err());
    }

    /// Packets before the window set the radio's state; a window that starts inside a tail
    /// sees the rest of the tail and no wake-up.
    #[test]
    fn a_window_starting_in_a_tail_sees_its_rest() {
        let u = simulate(
            &profile::lte(),
            [Packet::down(secs(10.0), 1)],
            window(15.0, 25.0),
        )
        .unwrap();
        assert_eq!(u.promotions, 0);
        // The tail runs from 10 s to 10 + 10.12 = 20.12 s, in long DRX from 10.12 s.
        close(u.radio_on_s, 20.12 - 15.0, 1e-9, "rest of the tail");
        close(
            u.tail_energy_j,
            (20.12 - 15.0) * 1.091,
            1e-9,
            "long DRX at 1.091 W",
        );
    }

    fn trace() -> impl Strategy<Value = Vec<Packet>> {
        prop::collection::vec((0u64..120_000, any::<bool>(), 1u32..1500), 1..12).prop_map(|v| {
            let mut v: Vec<Packet> = v
                .into_iter()
                .map(|(ms, up, bytes)| {
                    let at = Duration::from_millis(ms);
                    if up {
                        Packet::up(at, bytes)
                    } else {
                        Packet::down(at, bytes)
                    }
                })
                .collect();
            v.sort_by_key(|p| p.at);
            v
        })
    }

    proptest! {
        /// (g) Adding packets never lowers the energy, for Wi-Fi exactly and for LTE by at most
        /// one promotion's excess over long DRX per added packet: 0.26 s x (1.21 - 1.091) W =
        /// 0.031 J (x1.5 for 5G NSA's powers). That allowance is ARO's model, not slack: a packet
        /// that arrives in a tail spares a later packet its promotion, whose 1.21 W is more than
        /// the long DRX's 1.091 W that replaces it; the test below works such a case. Radio-on
        /// time, the union of each packet's [promotion start, tail end], never drops. 3G has no
        /// such property and is left out: a small packet that keeps the radio in FACH can spare a
        /// later one a whole DCH promotion and tail.
        #[test]
        fn adding_packets_never_lowers_energy_beyond_one_promotion_each(base in trace(), extra in trace()) {
            let w = window(0.0, 130.0);
            let mut more = base.clone();
            more.extend(extra.iter().copied());
            more.sort_by_key(|p| p.at);
            let lte = 0.26 * (1.21 - 1.091);
            for (name, allowance) in [("lte", lte), ("lte-short", lte), ("5g-nsa", 1.5 * lte), ("wifi", 0.0)] {
                let prof = profile::by_name(name).unwrap();
                let a = simulate(&prof, base.iter().copied(), w).unwrap();
                let b = simulate(&prof, more.iter().copied(), w).unwrap();
                let floor = a.energy_j - allowance * extra.len() as f64 - 1e-9;
                prop_assert!(b.energy_j >= floor, "{}: {} -> {}", name, a.energy_j, b.energy_j);
                prop_assert!(b.radio_on_s >= a.radio_on_s - 1e-9, "{}: on time dropped", name);
            }
        }
    }

    /// The case the allowance is for, worked by hand on ARO's LTE: packets at 0 and 10.30 s. The
    /// first tail ends at 10.12 s, so the second packet's promotion is cut to 10.12-10.30 s
    /// (0.18 s x 1.21 W = 0.2178 J). Add a packet at 0.2 s: its tail runs to 10.32 s, past the
    /// second packet, which now needs no promotion; over 0-10.30 s the energy goes from
    /// 0.12 + 0.02244 + 10.91 + 0.2178 = 11.27024 J to 0.12 + 0.02244 + 0.08 x 1.091
    /// + 0.12 + 0.02244 + 9.98 x 1.091 = 11.26034 J: 0.0099 J less for one packet more.
    #[test]
    fn a_packet_in_the_tail_can_spare_a_promotion() {
        let w = window(0.0, 30.0);
        let two = [Packet::down(secs(0.0), 1), Packet::down(secs(10.30), 1)];
        let three = [
            Packet::down(secs(0.0), 1),
            Packet::down(secs(0.2), 1),
            Packet::down(secs(10.30), 1),
        ];
        let a = simulate(&profile::lte(), two, w).unwrap();
        let b = simulate(&profile::lte(), three, w).unwrap();
        let bytes = 8.0 / 1e6 * 0.05197;
        close(
            a.energy_j - b.energy_j,
            11.27024 - 11.26034 - bytes,
            1e-6,
            "energy saved",
        );
    }
}
