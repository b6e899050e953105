//! On a phone (`--network …,phones,radio=PROFILE`): what each transport cost the phone's radio
//! (the radio model over every phone's packet records), what the NAT's idle timeout and the
//! radio's wake-up delay did. Every energy figure has the profile's timers and the regime beside
//! it: a figure without the timers that made it cannot be checked, and the foreground and
//! background regimes can rank transports in opposite orders.

use crate::{
    tables::{network_name, Table},
    units::*,
    Report,
};

/// One row per phase with phones.
pub fn radio(report: &Report) -> Option<Table> {
    let mut t = Table::new(
        "The phone's radio, per phase",
        "Each client is a phone with its own link (`phones`); the radio model (feedlab-radio, ARO's RRC machines) runs over each phone's packets from when the clients had connected to the end of the phase, and the row is the mean phone. Energy is the radio's, above the phone's base power, idle paging included. The timers are the profile's; foreground: the page's timers run (loadgen's clients are never frozen). NAT: mappings expired / packets dropped / resets sent over the whole phase. Dead connections: this transport's connections whose NAT mapping lapsed, and how long the server and the client took to let go of each (median / max, from the mapping's end to the end's socket being gone or closing, read from each end's kernel every 50 ms; unnoticed: still held when the phase ended), with what makes the client notice. Wake-up: packets that waited for the modelled radio, and their mean wait.",
        &[
            "phase", "transport", "network", "profile timers", "regime", "phones",
            "energy per hour", "energy per event", "radio on", "wake-ups per hour",
            "tail share", "NAT", "dead connections", "server noticed", "client noticed",
            "client's watchdog", "wake-up waits",
        ],
    );
    let primary = report.primary_http();
    for r in &report.phases {
        let Some(p) = r.network.as_ref().and_then(|n| n.phones.as_ref()) else {
            continue;
        };
        let dash = || "–".to_owned();
        let (timers, regime, energy, per_event, on, wakes, tail) = match &p.radio {
            Some(x) => (
                x.timers.clone(),
                x.regime.clone(),
                format!(
                    "{} J ({} mWh) [{}]",
                    num(x.energy_per_hour_j),
                    num(x.energy_per_hour_j / 3.6),
                    x.timers
                ),
                x.energy_per_event_j
                    .map_or_else(dash, |j| format!("{} J [{}]", num(j), x.timers)),
                format!("{:.1}%", x.radio_on_share * 100.0),
                num(x.wake_ups_per_hour),
                format!("{:.1}%", x.tail_share * 100.0),
            ),
            None => (dash(), dash(), dash(), dash(), dash(), dash(), dash()),
        };
        let nat = p.nat.as_ref().map_or_else(dash, |n| {
            format!(
                "{} s {}: {} / {} / {}",
                num(n.idle_timeout_s),
                n.mode,
                int(n.expired),
                int(n.dropped),
                int(n.resets)
            )
        });
        let dead = p.nat.as_ref().and_then(|n| n.dead.as_ref());
        let noticed = |n: &feedlab_link::Notice| {
            let took = match (n.median_ms, n.max_ms) {
                (Some(m), Some(x)) => format!("{} / {} s", num(m / 1e3), num(x / 1e3)),
                _ => dash(),
            };
            if n.unnoticed > 0 {
                format!("{took} ({} unnoticed)", int(n.unnoticed))
            } else {
                took
            }
        };
        let (dead_n, server, client, watchdog) = dead.map_or_else(
            || (dash(), dash(), dash(), dash()),
            |d| {
                (
                    int(d.connections),
                    noticed(&d.server),
                    noticed(&d.client),
                    d.client_watchdog.clone(),
                )
            },
        );
        let wake = p.wake.as_ref().map_or_else(dash, |w| {
            format!(
                "{} ({} wake-ups), mean {}",
                int(w.delayed),
                int(w.wake_ups),
                w.mean_delay_ms
                    .map_or_else(dash, |m| format!("{} ms", num(m)))
            )
        });
        let phones = if p.records_dropped > 0 {
            format!(
                "{} ({} packet records not kept: figures low)",
                int(p.phones),
                int(p.records_dropped)
            )
        } else {
            int(p.phones)
        };
        t.rows.push(vec![
            r.phase.to_string(),
            r.label(primary),
            network_name(r).unwrap_or("none").to_owned(),
            timers,
            regime,
            phones,
            energy,
            per_event,
            on,
            wakes,
            tail,
            nat,
            dead_n,
            server,
            client,
            watchdog,
            wake,
        ]);
    }
    (!t.rows.is_empty()).then_some(t)
}
