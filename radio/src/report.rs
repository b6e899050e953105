//! Figures as a reader quotes them: per phone or per transport, each with its regime and the
//! profile's timers beside it, since an energy figure without the timers that produced it cannot
//! be checked or compared.

use std::time::Duration;

use serde::Serialize;

use crate::packets::{Packet, Window};

use crate::profile::Profile;
use crate::regime::Regime;
use crate::simulate::{simulate, Usage};

/// One small packet (1 byte down) alone, its tail run out: promotion + transfer + tail energy.
/// The figure to hold against the papers' "one wake-up costs so many joules".
pub fn isolated_wake_up_j(profile: &Profile) -> f64 {
    let w = Window {
        start: Duration::ZERO,
        end: Duration::from_secs(120),
    };
    let u = simulate(profile, [Packet::down(Duration::from_secs(60), 1)], w)
        .expect("one packet in a valid window");
    u.energy_j - u.idle_energy_j
}

/// The derived figures of one [`Usage`], labelled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// What was measured: a phone, a transport, a pattern.
    pub subject: String,
    pub profile: &'static str,
    pub timers: String,
    /// What one wake-up costs alone: promotion + tail (+ the packet's bytes), above the base.
    pub isolated_wake_up_j: f64,
    pub regime: Regime,
    /// Delivered events in the window, the denominator of `energy_per_event_j`.
    pub events: u64,
    /// How many phones `usage` sums (1 for a phone, n for a transport's mean phone).
    pub phones: u64,
    pub energy_per_hour_j: f64,
    pub energy_per_hour_mwh: f64,
    pub energy_per_event_j: Option<f64>,
    pub radio_on_share: f64,
    pub wake_ups_per_hour: f64,
    pub tail_share: f64,
    pub usage: Usage,
}

impl Figures {
    /// Figures of one phone.
    pub fn new(
        subject: impl Into<String>,
        profile: &Profile,
        regime: Regime,
        usage: Usage,
        events: u64,
    ) -> Self {
        Figures {
            subject: subject.into(),
            profile: profile.name,
            timers: profile.timers_brief(),
            isolated_wake_up_j: isolated_wake_up_j(profile),
            regime,
            events,
            phones: 1,
            energy_per_hour_j: usage.energy_per_hour_j(),
            energy_per_hour_mwh: usage.energy_per_hour_mwh(),
            energy_per_event_j: usage.energy_per_event_j(events),
            radio_on_share: usage.radio_on_share(),
            wake_ups_per_hour: usage.promotions_per_hour(),
            tail_share: usage.tail_share(),
            usage,
        }
    }

    /// The mean phone of a transport: every figure is a mean over `phones` (usage, events).
    /// Per-hour figures and shares are time-weighted, energy per event is total over total.
    pub fn per_transport(
        transport: &str,
        profile: &Profile,
        regime: Regime,
        phones: &[(Usage, u64)],
    ) -> Self {
        let mut sum = Usage::default();
        let mut events = 0;
        for (u, e) in phones {
            sum += *u;
            events += e;
        }
        let mut f = Figures::new(
            format!("{transport}, mean of {} phones", phones.len()),
            profile,
            regime,
            sum,
            events,
        );
        f.phones = phones.len() as u64;
        f
    }

    /// The report's lines; every energy figure has the timers and the regime beside it.
    pub fn lines(&self) -> Vec<String> {
        let tag = format!("[{}; {}]", self.timers, self.regime.name());
        let u = &self.usage;
        let hour = |j: f64| j * 3600.0 / u.duration_s;
        let per_event = match self.energy_per_event_j {
            Some(j) => format!("{j:.3} J ({} events, idle included)", self.events),
            None => "- (no event delivered)".to_string(),
        };
        vec![
            format!(
                "energy per hour   {:.1} J = {:.1} mWh  {tag}",
                self.energy_per_hour_j, self.energy_per_hour_mwh
            ),
            format!("energy per event  {per_event}  {tag}"),
            format!(
                "one wake-up alone {:.3} J (promotion + tail, idle excluded)  {tag}",
                self.isolated_wake_up_j
            ),
            format!("radio on          {:.1}% of the time", self.radio_on_share * 100.0),
            format!("wake-ups          {:.1} per hour", self.wake_ups_per_hour),
            format!("tail share        {:.1}% of the energy  {tag}", self.tail_share * 100.0),
            format!(
                "per hour, by state: promotion {:.1} J, transfer {:.2} J, tail {:.1} J, idle {:.1} J  {tag}",
                hour(u.promotion_energy_j),
                hour(u.transfer_energy_j),
                hour(u.tail_energy_j),
                hour(u.idle_energy_j)
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile;

    /// One wake-up alone, per profile, from the parameters (the 8 bits of the 1-byte packet add
    /// 0.0000004 J on LTE and nothing elsewhere):
    /// - lte: 0.26 x 1.21 + 0.1 x 1.2 + 0.02244 + 10 x 1.091 = 11.36704 J
    /// - lte-short: the same with 4.88 s of long DRX: 0.3146 + 0.12 + 0.02244 + 4.88 x 1.091
    ///   = 5.78112 J
    /// - 5g-nsa: every connected power x1.5, so 1.5 x 11.36704 = 17.05056 J
    /// - 3g: 2 x 0.65 + 4 x 1.30 + 10 x 0.30 = 9.5 J
    /// - wifi: 0.25 x 0.403 = 0.10075 J
    #[test]
    fn isolated_wake_ups_by_profile() {
        for (name, want) in [
            ("lte", 11.36704),
            ("lte-short", 5.78112),
            ("5g-nsa", 17.05056),
            ("3g", 9.5),
            ("wifi", 0.10075),
        ] {
            let got = isolated_wake_up_j(&profile::by_name(name).unwrap());
            assert!((got - want).abs() < 1e-6, "{name}: {got} vs {want}");
        }
    }

    /// A transport's figures are its mean phone's: two phones of an hour each, 100 J and 300 J,
    /// 10 and 30 events, make 200 J an hour and 400 / 40 = 10 J an event.
    #[test]
    fn per_transport_is_the_mean_phone() {
        let u = |e: f64| Usage {
            duration_s: 3600.0,
            energy_j: e,
            ..Usage::default()
        };
        let f = Figures::per_transport(
            "sse",
            &profile::lte(),
            Regime::Background,
            &[(u(100.0), 10), (u(300.0), 30)],
        );
        assert!((f.energy_per_hour_j - 200.0).abs() < 1e-9);
        assert_eq!(f.energy_per_event_j, Some(10.0));
        assert_eq!(f.phones, 2);
        assert_eq!(f.regime, Regime::Background);
    }
}
