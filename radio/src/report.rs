//! Figures as a reader quotes them: per phone or per transport, each with its regime and the
//! profile's timers beside it, since an energy figure without the timers that produced it cannot
//! be checked or compared.

use serde::Serialize;

use crate::profile::Profile;
use crate::regime::Regime;
use crate::simulate::Usage;

/// The derived figures of one [`Usage`], labelled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// What was measured: a phone, a transport, a pattern.
    pub subject: String,
    pub profile: &'static str,
    pub timers: String,
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
            timers: profile.timers(),
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
            Some(j) => format!("{j:.3} J over {} events", self.events),
            None => "- (no event delivered)".to_string(),
        };
        vec![
            format!(
                "energy per hour   {:.1} J = {:.1} mWh  {tag}",
                self.energy_per_hour_j, self.energy_per_hour_mwh
            ),
            format!("energy per event  {per_event}  {tag}"),
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
