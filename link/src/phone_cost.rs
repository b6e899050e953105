//! A transport's phones over a phase, as the report keeps them: their packet records run
//! through the radio model (one RRC simulation per phone, [`feedlab_radio::simulate`]), and what
//! the NAT and the wake-up delay did meanwhile.

use std::time::Duration;

use feedlab_radio::{simulate, Figures, Regime, Window};

use crate::{
    emulator::{Link, Snapshot},
    notice::median_max_ms,
    phones, records,
    result::{DeadConnections, NatResult, Notice, PhonesResult, RadioResult, WakeResult},
};

/// Which phones, over which stretch.
#[derive(Debug, Clone, Copy)]
pub struct Phones {
    /// Phones `first .. first + count`.
    pub first: u32,
    pub count: u32,
    /// The costed window starts this long after `start` (after the clients connected: a
    /// session's connection is paid once, not once per phase).
    pub skip: Duration,
    /// Events the phones received, for energy per event.
    pub events: u64,
    /// What makes this transport's client notice a dead connection (see
    /// [`crate::result::DeadConnections::client_watchdog`]).
    pub watchdog: &'static str,
    /// When the clients were stopped (on [`Snapshot::at`]'s clock): an end that let go of a dead
    /// connection later did not notice it in the phase.
    pub clients_stopped: Duration,
}

/// # Errors
/// When the link's radio profile is unknown (it was checked when the SPEC was parsed).
pub fn phones_result(
    link: &Link,
    start: &Snapshot,
    end: &Snapshot,
    who: Phones,
) -> anyhow::Result<PhonesResult> {
    let spec = link.spec();
    let last = who.first.saturating_add(who.count);
    let mine: Vec<records::Record> = link
        .records(start.at, end.at)
        .into_iter()
        .filter(|r| (who.first..last).contains(&r.phone))
        .collect();
    let packets = mine.len() as u64;
    let radio = match spec.radio {
        None => None,
        Some(name) => {
            let profile =
                feedlab_radio::profile::by_name(name).map_err(|e| anyhow::anyhow!("{e}"))?;
            let from = (start.at + who.skip).min(end.at);
            let window = Window::new(from, end.at.max(from + Duration::from_millis(1)))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut per_phone = Vec::new();
            let by = records::by_phone(&mine);
            let share = who.events / u64::from(who.count.max(1));
            for n in who.first..last {
                let pk = by
                    .iter()
                    .find(|(p, _)| *p == n)
                    .map(|(_, v)| v.as_slice())
                    .unwrap_or(&[]);
                let u = simulate(&profile, pk.iter().copied(), window)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                per_phone.push((u, share));
            }
            let f = Figures::per_transport("phones", &profile, Regime::Foreground, &per_phone);
            Some(RadioResult {
                profile: profile.name.to_owned(),
                timers: profile.timers_brief(),
                regime: Regime::Foreground.name().to_owned(),
                energy_per_hour_j: f.energy_per_hour_j,
                energy_per_event_j: (who.events > 0).then(|| f.usage.energy_j / who.events as f64),
                radio_on_share: f.radio_on_share,
                wake_ups_per_hour: f.wake_ups_per_hour,
                tail_share: f.tail_share,
                isolated_wake_up_j: f.isolated_wake_up_j,
            })
        }
    };
    let nat = spec.nat.zip(end.nat).map(|(n, e)| {
        let s = start.nat.unwrap_or_default();
        NatResult {
            idle_timeout_s: n.idle.as_secs_f64(),
            mode: n.mode.name().to_owned(),
            expired: e.expired - s.expired,
            dropped: e.dropped - s.dropped,
            resets: e.resets - s.resets,
            dead: Some(dead(link, start, end, &who)),
        }
    });
    let wake = end.wake.map(|e| {
        let s = start.wake.unwrap_or_default();
        let delayed = e.delayed - s.delayed;
        WakeResult {
            wake_ups: e.wake_ups - s.wake_ups,
            delayed,
            mean_delay_ms: (delayed > 0)
                .then(|| (e.delay_us - s.delay_us) as f64 / delayed as f64 / 1e3),
        }
    });
    Ok(PhonesResult {
        phones: u64::from(who.count),
        packets,
        records_dropped: end.records_dropped - start.records_dropped,
        radio,
        nat,
        wake,
    })
}

/// This transport's phones' dead connections in the phase, and when each end noticed.
fn dead(link: &Link, start: &Snapshot, end: &Snapshot, who: &Phones) -> DeadConnections {
    let last = who.first.saturating_add(who.count);
    let mine: Vec<_> = link
        .deaths(start.at, end.at)
        .into_iter()
        .filter(|d| phones::of(d.client.ip).is_some_and(|p| (who.first..last).contains(&p)))
        .collect();
    let notice = |at: &dyn Fn(&crate::emulator::DeathTimes) -> Option<Duration>| {
        let took: Vec<Duration> = mine
            .iter()
            .filter_map(|d| {
                at(d)
                    .filter(|t| *t <= who.clients_stopped)
                    .map(|t| t.saturating_sub(d.died))
            })
            .collect();
        let noticed = took.len() as u64;
        let mm = median_max_ms(took);
        Notice {
            noticed,
            unnoticed: mine.len() as u64 - noticed,
            median_ms: mm.map(|m| m.0),
            max_ms: mm.map(|m| m.1),
        }
    };
    DeadConnections {
        connections: mine.len() as u64,
        server: notice(&|d| d.server_noticed),
        client: notice(&|d| d.client_noticed),
        client_watchdog: who.watchdog.to_owned(),
    }
}
