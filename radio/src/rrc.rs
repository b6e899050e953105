//! The RRC state machines: the measurement itself, and so written by hand here rather than taken
//! from a library. Given the packets, each machine says which state the radio is in at every
//! instant and at what power; everything this crate reports is the integral of that.
//!
//! The machines follow AT&T ARO's (`RrcStateRangeFactoryImpl` and `ProfileFactoryImpl` in
//! attdevsupport/VideoOptimizer, `ARO.Core/src/main/java/com/att/aro/core/`), so a figure here
//! can be checked against ARO's on the same packets. Where this code departs from ARO it says so
//! at the place:
//!
//! - LTE is ARO's: a packet that finds the radio idle is preceded by a promotion (ending at the
//!   packet, cut short if the previous tail ended less than a promotion earlier); packets closer
//!   than the inactivity timer are one continuous reception; after the last one the tail runs CR,
//!   short DRX, long DRX, and is cut by the next packet. IDLE costs its paging at the mean power of
//!   a paging cycle, so the figure does not depend on where the cycles happen to fall. ARO counts
//!   whole cycles from the start of each idle stretch and charges the last partial one at the
//!   paging power throughout (a slip, by the look of it), so its figure can be up to 0.74 J higher
//!   per idle stretch.
//! - 3G is ARO's machine without its RLC buffer and DCH-demotion queues: DCH after a promotion,
//!   FACH when the DCH timer runs out, IDLE when the FACH timer does; in FACH a packet at or under
//!   the RLC threshold for its direction is carried in FACH and a larger one promotes to DCH. The
//!   promotion follows LTE's convention (it ends at the packet) where ARO's 3G starts an uplink
//!   promotion at the packet. Both change timing by at most one promotion, not the energy of one.
//! - Wi-Fi is ARO's: active, a tail at the active power, standby.
//!
//! A "tail" here is connected time during which the radio moves no data and waits for a timer:
//! any gap between packets longer than [`BURST_GAP_S`] counts as tail up to the next packet or to
//! the demotion, for every technology alike, so tail shares compare across profiles. A wake-up
//! is a departure from IDLE (Wi-Fi: from standby); 3G's FACH → DCH promotions are promotions but
//! not wake-ups.

use serde::Serialize;

use crate::packets::{Direction, Packet};
use crate::profile::{LteParams, Machine, Profile, UmtsParams, WifiParams};
use crate::Error;

/// Gaps up to this long are one transfer, longer ones are tail. ARO's LTE `INACTIVITY_TIMER`
/// (0.1 s): the longest silence it still calls continuous reception.
pub const BURST_GAP_S: f64 = 0.1;

/// What a stretch of time is spent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Idle,
    Promotion,
    Transfer,
    Tail,
}

/// One stretch of one state at one power, in seconds since the start of the trace.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Span {
    pub kind: Kind,
    pub state: &'static str,
    pub from_s: f64,
    pub to_s: f64,
    pub power_w: f64,
}

/// Where a machine puts what it finds.
pub(crate) trait Sink {
    /// A stretch of a state; empty or reversed stretches are never passed.
    fn span(&mut self, span: Span);
    /// The radio left IDLE for a packet at `at_s`.
    fn wake(&mut self, at_s: f64);
    /// A packet at `at_s` whose bytes cost `joules` on top of the state's power (LTE's alphas).
    fn packet(&mut self, at_s: f64, joules: f64);
}

/// Run `profile`'s machine over `packets` (sorted by time) up to `end_s` or the last packet,
/// whichever is later.
pub(crate) fn drive(
    profile: &Profile,
    packets: impl IntoIterator<Item = Packet>,
    end_s: f64,
    sink: &mut impl Sink,
) -> Result<(), Error> {
    let mut state = Driver { sink, last: None };
    let mut prev: Option<(usize, Packet)> = None;
    for (i, p) in packets.into_iter().enumerate() {
        if let Some((j, q)) = prev {
            if p.at < q.at {
                return Err(Error::UnsortedPackets {
                    index: i,
                    at: p.at,
                    previous_index: j,
                    previous_at: q.at,
                });
            }
        }
        prev = Some((i, p));
        let t = p.at.as_secs_f64();
        match &profile.machine {
            Machine::Lte(m) => lte_packet(m, &mut state, t, p),
            Machine::Umts(m) => umts_packet(m, &mut state, t, p),
            Machine::Wifi(m) => wifi_packet(m, &mut state, t, p),
        }
    }
    let end = state.last.map_or(end_s, |l| end_s.max(l.at));
    match &profile.machine {
        Machine::Lte(m) => lte_finish(m, &mut state, end),
        Machine::Umts(m) => umts_finish(m, &mut state, end),
        Machine::Wifi(m) => wifi_finish(m, &mut state, end),
    }
    Ok(())
}

/// The machine's memory: the last packet and, for 3G, whether it was carried in DCH or FACH.
#[derive(Clone, Copy)]
struct Last {
    at: f64,
    fach: bool,
}

struct Driver<'a, S> {
    sink: &'a mut S,
    last: Option<Last>,
}

impl<S: Sink> Driver<'_, S> {
    fn span(&mut self, kind: Kind, state: &'static str, power_w: f64, from_s: f64, to_s: f64) {
        if to_s > from_s {
            self.sink.span(Span {
                kind,
                state,
                from_s,
                to_s,
                power_w,
            });
        }
    }

    /// IDLE from `from` until a promotion of `promo_s` that ends at `t` (cut at `from`).
    fn wake(&mut self, from: f64, t: f64, idle_w: f64, promo_s: f64, promo_w: f64) {
        let promo_start = (t - promo_s).max(from);
        self.span(Kind::Idle, "IDLE", idle_w, from, promo_start);
        self.span(Kind::Promotion, "promotion", promo_w, promo_start, t);
        self.sink.wake(t);
    }

    /// Timer-driven states one after another from `from`, each cut at `end`; returns where the
    /// last one stopped.
    fn tail(&mut self, from: f64, end: f64, states: &[(&'static str, f64, f64)]) -> f64 {
        let mut s = from;
        for &(name, dur, w) in states {
            let e = (s + dur).min(end);
            self.span(Kind::Tail, name, w, s, e);
            s = s.max(e);
        }
        s
    }
}

fn gap_kind(gap: f64) -> Kind {
    if gap <= BURST_GAP_S {
        Kind::Transfer
    } else {
        Kind::Tail
    }
}

// ---- LTE ---------------------------------------------------------------------------------

fn lte_tail_states(m: &LteParams) -> [(&'static str, f64, f64); 3] {
    [
        ("CR tail", m.inactivity_s.value, m.beta_w.value),
        ("short DRX", m.short_drx_s.value, m.short_drx_w()),
        ("long DRX", m.long_drx_s.value, m.long_drx_w()),
    ]
}

fn lte_bytes_j(m: &LteParams, p: Packet) -> f64 {
    // ARO: (alpha_up * Mbps_up + alpha_down * Mbps_down + beta) * sample period, summed over
    // throughput windows; the alpha terms sum to alpha (mW per Mbit/s = mJ per Mbit) times the
    // megabits moved, which is what is charged here, per packet.
    let alpha_mw = match p.dir {
        Direction::Up => m.alpha_up_mw_per_mbps.value,
        Direction::Down => m.alpha_down_mw_per_mbps.value,
    };
    alpha_mw / 1000.0 * (f64::from(p.bytes) * 8.0 / 1e6)
}

fn lte_packet<S: Sink>(m: &LteParams, d: &mut Driver<'_, S>, t: f64, p: Packet) {
    match d.last {
        None => d.wake(
            0.0,
            t,
            m.idle_mean_w(),
            m.promotion_s.value,
            m.promotion_w.value,
        ),
        Some(last) => {
            let gap = t - last.at;
            if gap <= m.inactivity_s.value {
                d.span(
                    Kind::Transfer,
                    "continuous reception",
                    m.beta_w.value,
                    last.at,
                    t,
                );
            } else {
                let end = d.tail(last.at, t, &lte_tail_states(m));
                if end < t {
                    d.wake(
                        end,
                        t,
                        m.idle_mean_w(),
                        m.promotion_s.value,
                        m.promotion_w.value,
                    );
                }
            }
        }
    }
    d.sink.packet(t, lte_bytes_j(m, p));
    d.last = Some(Last { at: t, fach: false });
}

fn lte_finish<S: Sink>(m: &LteParams, d: &mut Driver<'_, S>, end: f64) {
    let from = match d.last {
        None => 0.0,
        Some(last) => d.tail(last.at, end, &lte_tail_states(m)),
    };
    d.span(Kind::Idle, "IDLE", m.idle_mean_w(), from, end);
}

// ---- 3G ----------------------------------------------------------------------------------

fn umts_tail<S: Sink>(m: &UmtsParams, d: &mut Driver<'_, S>, last: Last, end: f64) -> f64 {
    if last.fach {
        d.tail(
            last.at,
            end,
            &[("FACH", m.fach_idle_timer_s.value, m.fach_w.value)],
        )
    } else {
        d.tail(
            last.at,
            end,
            &[
                ("DCH", m.dch_fach_timer_s.value, m.dch_w.value),
                ("FACH", m.fach_idle_timer_s.value, m.fach_w.value),
            ],
        )
    }
}

fn umts_packet<S: Sink>(m: &UmtsParams, d: &mut Driver<'_, S>, t: f64, p: Packet) {
    let wake = |d: &mut Driver<'_, S>, from: f64| {
        d.wake(
            from,
            t,
            m.idle_w.value,
            m.idle_dch_promo_s.value,
            m.idle_dch_promo_w.value,
        );
        Last { at: t, fach: false }
    };
    let threshold = match p.dir {
        Direction::Up => m.rlc_ul_threshold_bytes.value,
        Direction::Down => m.rlc_dl_threshold_bytes.value,
    };
    let small = f64::from(p.bytes) <= threshold;
    // In FACH from `from` with a packet at t: carried there if small, else FACH -> DCH.
    let in_fach = |d: &mut Driver<'_, S>, from: f64, kind: Kind| {
        if small {
            d.span(kind, "FACH", m.fach_w.value, from, t);
            Last { at: t, fach: true }
        } else {
            let promo_start = (t - m.fach_dch_promo_s.value).max(from);
            d.span(kind, "FACH", m.fach_w.value, from, promo_start);
            d.span(
                Kind::Promotion,
                "FACH->DCH promotion",
                m.fach_dch_promo_w.value,
                promo_start,
                t,
            );
            Last { at: t, fach: false }
        }
    };
    let next = match d.last {
        None => wake(d, 0.0),
        Some(last) => {
            let gap = t - last.at;
            let kind = gap_kind(gap);
            let dch = m.dch_fach_timer_s.value;
            let fach = m.fach_idle_timer_s.value;
            if !last.fach && gap <= dch {
                d.span(kind, "DCH", m.dch_w.value, last.at, t);
                Last { at: t, fach: false }
            } else if !last.fach && gap <= dch + fach {
                d.span(Kind::Tail, "DCH", m.dch_w.value, last.at, last.at + dch);
                in_fach(d, last.at + dch, Kind::Tail)
            } else if last.fach && gap <= fach {
                in_fach(d, last.at, kind)
            } else {
                let end = umts_tail(m, d, last, t);
                wake(d, end)
            }
        }
    };
    // ARO's 3G energy has no per-byte term: the state's power covers the transfer.
    d.sink.packet(t, 0.0);
    d.last = Some(next);
}

fn umts_finish<S: Sink>(m: &UmtsParams, d: &mut Driver<'_, S>, end: f64) {
    let from = match d.last {
        None => 0.0,
        Some(last) => umts_tail(m, d, last, end),
    };
    d.span(Kind::Idle, "IDLE", m.idle_w.value, from, end);
}

// ---- Wi-Fi -------------------------------------------------------------------------------

fn wifi_packet<S: Sink>(m: &WifiParams, d: &mut Driver<'_, S>, t: f64, _p: Packet) {
    let active = m.active_w.value;
    match d.last {
        None => {
            d.span(Kind::Idle, "standby", m.idle_w.value, 0.0, t);
            d.sink.wake(t);
        }
        Some(last) => {
            let gap = t - last.at;
            if gap <= m.tail_s.value {
                d.span(gap_kind(gap), "active", active, last.at, t);
            } else {
                let end = d.tail(last.at, t, &[("tail", m.tail_s.value, active)]);
                d.span(Kind::Idle, "standby", m.idle_w.value, end, t);
                d.sink.wake(t);
            }
        }
    }
    d.sink.packet(t, 0.0);
    d.last = Some(Last { at: t, fach: false });
}

fn wifi_finish<S: Sink>(m: &WifiParams, d: &mut Driver<'_, S>, end: f64) {
    let from = match d.last {
        None => 0.0,
        Some(last) => d.tail(last.at, end, &[("tail", m.tail_s.value, m.active_w.value)]),
    };
    d.span(Kind::Idle, "standby", m.idle_w.value, from, end);
}

/// What a run of the machine went through: every state, and when the radio left IDLE.
#[derive(Default)]
struct Collect {
    spans: Vec<Span>,
    wakes: Vec<f64>,
}

impl Sink for Collect {
    fn span(&mut self, span: Span) {
        self.spans.push(span);
    }
    fn wake(&mut self, at_s: f64) {
        self.wakes.push(at_s);
    }
    fn packet(&mut self, _at_s: f64, _joules: f64) {}
}

fn collect(
    profile: &Profile,
    packets: impl IntoIterator<Item = Packet>,
    end_s: f64,
) -> Result<Collect, Error> {
    let mut c = Collect::default();
    drive(profile, packets, end_s, &mut c)?;
    Ok(c)
}

/// Every state the machine goes through, for inspection and tests.
pub fn timeline(
    profile: &Profile,
    packets: impl IntoIterator<Item = Packet>,
    end_s: f64,
) -> Result<Vec<Span>, Error> {
    Ok(collect(profile, packets, end_s)?.spans)
}

/// When the radio left IDLE, each the time of the packet it woke for: so a caller that knows
/// why each packet was sent (the server's page figures) can say what woke the radio.
pub fn wakes(
    profile: &Profile,
    packets: impl IntoIterator<Item = Packet>,
    end_s: f64,
) -> Result<Vec<f64>, Error> {
    Ok(collect(profile, packets, end_s)?.wakes)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::profile;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Packets 30 s apart each wake LTE (tail 10.12 s) and Wi-Fi; packets 2 s apart wake LTE
    /// once but Wi-Fi (tail 0.24 s) every time.
    #[test]
    fn wakes_are_the_packets_that_found_the_radio_idle() {
        let every =
            |gap: f64, n: usize| (0..n).map(move |i| Packet::down(secs(1.0 + gap * i as f64), 100));
        let lte = profile::lte();
        assert_eq!(
            wakes(&lte, every(30.0, 3), 100.0).unwrap(),
            vec![1.0, 31.0, 61.0]
        );
        assert_eq!(wakes(&lte, every(2.0, 3), 100.0).unwrap(), vec![1.0]);
        assert_eq!(
            wakes(&profile::wifi(), every(2.0, 3), 100.0).unwrap(),
            vec![1.0, 3.0, 5.0]
        );
    }

    /// The states tile time: no gap, no overlap, from 0 to the end.
    #[test]
    fn spans_tile_the_timeline() {
        for p in profile::all() {
            let packets =
                [0.0, 0.05, 3.0, 5.0, 30.0, 30.3, 31.0, 50.0].map(|s| Packet::down(secs(s), 1000));
            let spans = timeline(&p, packets, 100.0).unwrap();
            let mut t = 0.0;
            for s in &spans {
                assert!(
                    (s.from_s - t).abs() < 1e-9,
                    "{}: gap or overlap at {t}: {s:?}",
                    p.name
                );
                t = s.to_s;
            }
            assert!((t - 100.0).abs() < 1e-9, "{}", p.name);
        }
    }

    /// One LTE packet at 5 s: IDLE to 4.74, promotion to 5, CR to 5.1, short DRX to 5.12, long
    /// DRX to 15.12, IDLE after.
    #[test]
    fn one_lte_packet_walks_aros_states() {
        let spans = timeline(&profile::lte(), [Packet::down(secs(5.0), 100)], 30.0).unwrap();
        let got: Vec<(&str, f64, f64)> =
            spans.iter().map(|s| (s.state, s.from_s, s.to_s)).collect();
        let want = [
            ("IDLE", 0.0, 4.74),
            ("promotion", 4.74, 5.0),
            ("CR tail", 5.0, 5.1),
            ("short DRX", 5.1, 5.12),
            ("long DRX", 5.12, 15.12),
            ("IDLE", 15.12, 30.0),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.0, w.0);
            assert!(
                (g.1 - w.1).abs() < 1e-9 && (g.2 - w.2).abs() < 1e-9,
                "{got:?}"
            );
        }
    }

    /// 3G: a small packet 6 s after a wake-up finds FACH (DCH timer 4 s) and is carried there; a
    /// large one 2 s later promotes FACH -> DCH.
    #[test]
    fn umts_small_packets_stay_in_fach_large_ones_promote() {
        let packets = [
            Packet::down(secs(10.0), 1000),
            Packet::down(secs(16.0), 100),
            Packet::down(secs(18.0), 1400),
        ];
        let spans = timeline(&profile::umts(), packets, 60.0).unwrap();
        let states: Vec<&str> = spans.iter().map(|s| s.state).collect();
        assert_eq!(
            states,
            [
                "IDLE",
                "promotion",
                "DCH",
                "FACH",
                "FACH",
                "FACH->DCH promotion",
                "DCH",
                "FACH",
                "IDLE"
            ],
            "{spans:?}"
        );
        let promo = spans
            .iter()
            .find(|s| s.state == "FACH->DCH promotion")
            .unwrap();
        assert!(
            (promo.from_s - 16.5).abs() < 1e-9,
            "FACH->DCH takes 1.5 s and ends at the packet: {promo:?}"
        );
    }
}
