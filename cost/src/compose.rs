//! Composes measured costs into what one client costs per hour of a workload:
//!
//! per client-hour = session ÷ session length + beats per hour × beat
//!                 + events per hour × delivery + messages per hour × message up
//!
//! Beats follow each transport's policy: a short poll every interval whatever the feed does; a
//! heartbeat or a long poll's renewal only on a connection quiet for the interval. With events
//! evenly spaced `g` apart (the way loadgen's publisher paces them, and so the way the
//! validation runs see them), a quiet gap holds a beat at every whole interval before the next
//! event: `ceil(g / interval) - 1`.
//!
//! A delivery's cost depends on the rate (writes batch) and the fan-out (one event written to
//! many sockets): it is interpolated in log-rate and log-clients between the measured points,
//! and a workload outside them takes the nearest edge and says it extrapolates.

use serde::Serialize;

use crate::{
    model::{BeatKind, DeliveryPoint, TransportCosts},
    workload::Workload,
};

/// One client's costs over one hour of the workload.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct PerClientHour {
    pub cpu_s: f64,
    pub bytes_up: f64,
    pub bytes_down: f64,
    pub packets: f64,
    pub requests: f64,
    /// New TCP connections opened.
    pub new_connections: f64,
    /// Connections held open on average.
    pub connections_held: f64,
    /// Server memory held, bytes (for as long as the client is connected).
    pub memory_bytes: f64,
    /// Beats (heartbeats, renewals, polls) per hour: a phone's radio wakes for each.
    pub beats: f64,
}

/// A composition and what it had to assume.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Composed {
    pub per_client_hour: PerClientHour,
    /// Each place the workload left the measured range, as a sentence.
    pub extrapolated: Vec<String>,
}

/// Beats per hour of one held connection under `events_per_hour` evenly spaced events.
pub fn beats_per_hour(kind: BeatKind, interval_s: f64, events_per_hour: f64) -> f64 {
    match kind {
        BeatKind::Poll => 3600.0 / interval_s,
        BeatKind::Heartbeat | BeatKind::Renewal => {
            if events_per_hour <= 0.0 {
                3600.0 / interval_s
            } else {
                // Beats at k × interval after each event, for every k with k × interval < gap.
                let gap = 3600.0 / events_per_hour;
                events_per_hour * ((gap / interval_s).ceil() - 1.0).max(0.0)
            }
        }
    }
}

/// The composition of repeat `repeat` of every figure (`None`: the medians).
pub fn compose(c: &TransportCosts, w: &Workload, repeat: Option<usize>) -> Composed {
    let mut extrapolated = Vec::new();
    let sessions = 3600.0 / w.session_s;
    let beats = beats_per_hour(c.beat.kind, c.beat.interval_s, w.events_per_hour);
    let rate = w.events_per_hour / 3600.0;

    let mut h = PerClientHour {
        beats,
        new_connections: sessions * c.session.connections,
        connections_held: 1.0,
        memory_bytes: c.memory_bytes.at(repeat),
        ..Default::default()
    };
    let mut add = |cpu_us: f64, up: f64, down: f64, packets: f64, requests: f64, times: f64| {
        h.cpu_s += cpu_us * times / 1e6;
        h.bytes_up += up * times;
        h.bytes_down += down * times;
        h.packets += packets * times;
        h.requests += requests * times;
    };
    let s = &c.session;
    add(
        s.cpu_us.at(repeat),
        s.bytes_up.at(repeat),
        s.bytes_down.at(repeat),
        s.packets.at(repeat),
        1.0,
        sessions,
    );
    let b = &c.beat;
    add(
        b.cpu_us.at(repeat),
        b.bytes_up.at(repeat),
        b.bytes_down.at(repeat),
        b.packets.at(repeat),
        b.requests,
        beats,
    );
    if w.events_per_hour > 0.0 {
        let d = delivery(&c.delivery, rate, w.clients, repeat, &mut extrapolated);
        add(
            d.cpu_us,
            d.bytes_up,
            d.bytes_down,
            d.packets,
            d.requests,
            w.events_per_hour,
        );
        if w.payload != c.payload {
            extrapolated.push(format!(
                "deliveries were measured with {} payloads, not {}",
                c.payload, w.payload
            ));
        }
    }
    if w.messages_per_hour > 0.0 {
        match &c.message_up {
            Some(m) => add(
                m.cpu_us.at(repeat),
                m.bytes_up.at(repeat),
                m.bytes_down.at(repeat),
                m.packets.at(repeat),
                m.requests,
                w.messages_per_hour,
            ),
            None => extrapolated.push(format!(
                "{}: messages up were not measured, and are not counted",
                c.transport
            )),
        }
    }
    if w.network != c.network {
        extrapolated.push(format!(
            "measured on {}, not {}: CPU and bytes carry over, latency does not",
            c.network, w.network
        ));
    }
    Composed {
        per_client_hour: h,
        extrapolated,
    }
}

/// One delivery's figures at a rate and fan-out, interpolated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delivery {
    pub cpu_us: f64,
    pub bytes_up: f64,
    pub bytes_down: f64,
    pub packets: f64,
    pub requests: f64,
    pub p99_us: f64,
}

pub(crate) fn delivery(
    points: &[DeliveryPoint],
    rate: f64,
    clients: u64,
    repeat: Option<usize>,
    notes: &mut Vec<String>,
) -> Delivery {
    let mut rates: Vec<f64> = points.iter().map(|p| p.rate_per_s).collect();
    rates.sort_by(f64::total_cmp);
    rates.dedup();
    let mut fans: Vec<f64> = points.iter().map(|p| p.clients as f64).collect();
    fans.sort_by(f64::total_cmp);
    fans.dedup();
    let (r0, r1, tr) = bracket(&rates, rate, "event rate", "events/s", notes);
    let (c0, c1, tc) = bracket(&fans, clients as f64, "client count", "clients", notes);
    let at = |r: f64, c: f64| -> Delivery {
        // The nearest measured point to a grid corner (a full grid has it exactly).
        let p = points
            .iter()
            .min_by(|a, b| {
                let d = |p: &DeliveryPoint| {
                    (p.rate_per_s.ln() - r.ln()).abs() + ((p.clients as f64).ln() - c.ln()).abs()
                };
                d(a).total_cmp(&d(b))
            })
            .expect("a model is checked to have a delivery point");
        Delivery {
            cpu_us: p.cpu_us.at(repeat),
            bytes_up: p.bytes_up.at(repeat),
            bytes_down: p.bytes_down.at(repeat),
            packets: p.packets.at(repeat),
            requests: p.requests.at(repeat),
            p99_us: p.p99_us.at(repeat),
        }
    };
    let mix = |a: Delivery, b: Delivery, t: f64| Delivery {
        cpu_us: a.cpu_us + (b.cpu_us - a.cpu_us) * t,
        bytes_up: a.bytes_up + (b.bytes_up - a.bytes_up) * t,
        bytes_down: a.bytes_down + (b.bytes_down - a.bytes_down) * t,
        packets: a.packets + (b.packets - a.packets) * t,
        requests: a.requests + (b.requests - a.requests) * t,
        p99_us: a.p99_us + (b.p99_us - a.p99_us) * t,
    };
    let low = mix(at(r0, c0), at(r1, c0), tr);
    let high = mix(at(r0, c1), at(r1, c1), tr);
    mix(low, high, tc)
}

/// The measured values either side of `x` and where `x` lies between them in log scale
/// (0 at the lower, 1 at the upper); outside the range, the nearest edge and a note.
fn bracket(
    values: &[f64],
    x: f64,
    what: &str,
    unit: &str,
    notes: &mut Vec<String>,
) -> (f64, f64, f64) {
    let (first, last) = (values[0], values[values.len() - 1]);
    if x < first || x > last {
        let edge = if x < first { first } else { last };
        notes.push(format!(
            "{what} {} {unit} is outside the measured {}–{} {unit}: taken at {}",
            short(x),
            short(first),
            short(last),
            short(edge)
        ));
        return (edge, edge, 0.0);
    }
    for w in values.windows(2) {
        if x >= w[0] && x <= w[1] {
            let t = if w[1] > w[0] && x > 0.0 && w[0] > 0.0 {
                (x.ln() - w[0].ln()) / (w[1].ln() - w[0].ln())
            } else {
                0.0
            };
            return (w[0], w[1], t);
        }
    }
    (first, first, 0.0)
}

fn short(v: f64) -> String {
    if v >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        measured::Measured,
        model::{Beat, Condition, Session},
    };

    fn m(v: f64) -> Measured {
        Measured::exact(v, 1)
    }

    fn point(rate: f64, clients: u64, cpu: f64) -> DeliveryPoint {
        DeliveryPoint {
            rate_per_s: rate,
            clients,
            cpu_us: m(cpu),
            bytes_down: m(100.0),
            bytes_up: m(0.0),
            packets: m(1.0),
            requests: m(0.0),
            p99_us: m(5_000.0),
        }
    }

    pub(crate) fn sse() -> TransportCosts {
        TransportCosts {
            transport: "sse".into(),
            condition: Condition::PlainH1,
            served_by: "fast path".into(),
            network: "loopback".into(),
            payload: "chat".into(),
            payload_bytes: 80.0,
            repeats: 1,
            session: Session {
                cpu_us: m(200.0),
                bytes_up: m(300.0),
                bytes_down: m(400.0),
                packets: m(10.0),
                connections: 1.0,
                round_trips: 2.0,
            },
            beat: Beat {
                kind: BeatKind::Heartbeat,
                interval_s: 15.0,
                cpu_us: m(10.0),
                bytes_up: m(0.0),
                bytes_down: m(20.0),
                packets: m(2.0),
                requests: 0.0,
            },
            memory_bytes: m(2048.0),
            delivery: vec![
                point(1.0, 100, 20.0),
                point(10.0, 100, 10.0),
                point(1.0, 1000, 16.0),
                point(10.0, 1000, 8.0),
            ],
            message_up: None,
        }
    }

    fn workload(events: f64) -> Workload {
        Workload {
            clients: 100,
            session_s: 600.0,
            events_per_hour: events,
            messages_per_hour: 0.0,
            payload: "chat".into(),
            network: "loopback".into(),
            condition: Condition::PlainH1,
            latency_budget_ms: None,
        }
    }

    #[test]
    fn beats_follow_each_policy() {
        // Quiet feed: every interval.
        assert_eq!(beats_per_hour(BeatKind::Heartbeat, 15.0, 0.0), 240.0);
        // One event every 50 s: beats at 15, 30 and 45 s after each.
        assert_eq!(beats_per_hour(BeatKind::Heartbeat, 15.0, 72.0), 216.0);
        // One event a minute: three quiet 15 s intervals in each 60 s gap.
        assert_eq!(beats_per_hour(BeatKind::Heartbeat, 15.0, 60.0), 180.0);
        // Busier than the interval: never quiet long enough.
        assert_eq!(beats_per_hour(BeatKind::Heartbeat, 15.0, 3600.0), 0.0);
        // A short poll polls whatever the feed does.
        assert_eq!(beats_per_hour(BeatKind::Poll, 5.0, 3600.0), 720.0);
    }

    #[test]
    fn a_quiet_session_is_its_set_up_and_its_beats() {
        let c = compose(&sse(), &workload(0.0), None);
        let h = c.per_client_hour;
        // 6 sessions of 200 µs and 240 beats of 10 µs.
        assert!((h.cpu_s - (6.0 * 200.0 + 240.0 * 10.0) / 1e6).abs() < 1e-12);
        assert_eq!(h.bytes_down, 6.0 * 400.0 + 240.0 * 20.0);
        assert_eq!(h.new_connections, 6.0);
        assert!(c.extrapolated.is_empty());
    }

    #[test]
    fn deliveries_interpolate_in_log_rate_and_clients() {
        // 3.16 events/s is halfway between 1 and 10 in log scale: (20 + 10) / 2 at 100 clients.
        let w = Workload {
            events_per_hour: 3600.0 * 10f64.sqrt(),
            ..workload(0.0)
        };
        let c = compose(&sse(), &w, None);
        let deliveries = w.events_per_hour;
        let expected = (6.0 * 200.0 + 15.0 * deliveries) / 1e6;
        assert!((c.per_client_hour.cpu_s - expected).abs() < 1e-9, "{c:?}");
        assert!(c.extrapolated.is_empty());
    }

    #[test]
    fn outside_the_measured_range_is_said() {
        let w = Workload {
            clients: 50_000,
            ..workload(30.0)
        };
        let c = compose(&sse(), &w, None);
        assert!(
            c.extrapolated
                .iter()
                .any(|n| n.contains("client count 50000")),
            "{:?}",
            c.extrapolated
        );
        assert!(c.extrapolated.iter().any(|n| n.contains("event rate")));
    }
}
