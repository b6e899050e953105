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
//! many sockets). In the rate it is interpolated linearly in 1/rate: a batch (a poll's answer,
//! a write carrying several events) has a cost of its own shared by the events in it, and the
//! events in a batch grow with the rate, so a delivery costs `per event + per batch ÷ rate`, a
//! straight line in 1/rate (log-rate interpolation put a short poll's cost at 10 events/s more
//! than twice what whole sessions measured). In the fan-out it is interpolated in log-clients.
//! A beat's cost is a straight line in 1/connections, for the same reason: the beats of many
//! connections share the server's wake-ups ([`beat_at`]).
//! A short poll is priced by its polls when the model has their cost with events
//! ([`poll_cpu_at`]): per client-hour its CPU is polls per hour × a poll's CPU at the feed's
//! rate, not idle polls plus deliveries, since a delivery's CPU found by subtracting the idle
//! polls from a window full of them was a small difference of two large, noisy figures (its
//! range spanned zero at 1 event/s). Its bytes and packets compose as the others' do.
//! A workload outside the measured points takes the nearest edge and says it extrapolates, but
//! one: a short poll below the lowest measured rate carries fewer events per answer, down to one
//! (an event per answer once events are rarer than polls), and its cost follows that same line
//! down to a rate of one event per poll interval, said as an extrapolation.

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
    let (beat_cpu, beat_packets) = beat_at(b, w.clients, repeat, &mut extrapolated);
    // A short poll on a feed with events: each poll at what a poll costs at this rate, and no
    // delivery CPU beside it (the polls carry the events).
    let poll_cpu = (b.kind == BeatKind::Poll && w.events_per_hour > 0.0)
        .then(|| poll_cpu_at(&c.delivery, beat_cpu, rate, w.clients, repeat))
        .flatten();
    add(
        poll_cpu.unwrap_or(beat_cpu),
        b.bytes_up.at(repeat),
        b.bytes_down.at(repeat),
        beat_packets,
        b.requests,
        beats,
    );
    if w.events_per_hour > 0.0 {
        let poll = (c.beat.kind == BeatKind::Poll).then_some(c.beat.interval_s);
        let d = delivery(
            &c.delivery,
            rate,
            w.clients,
            poll,
            repeat,
            &mut extrapolated,
        );
        add(
            if poll_cpu.is_some() { 0.0 } else { d.cpu_us },
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

/// A beat's CPU and packets for `clients` held connections: interpolated linearly in
/// 1/connections between the measured counts (the edge outside them, said), or the model's one
/// figure. A beat costs something of its own and a share of the wake-up it falls in, and the
/// beats one wake-up serves grow with the connections held, so a beat costs `per beat +
/// per wake-up ÷ connections`, a straight line in 1/connections, as a delivery is in 1/rate.
/// (Log-connections put 300 short pollers' polls at 240 µs each where whole sessions measured
/// 183 µs; the line in 1/connections gives 182 µs: `results/model/validation.md`.)
pub(crate) fn beat_at(
    b: &crate::model::Beat,
    clients: u64,
    repeat: Option<usize>,
    notes: &mut Vec<String>,
) -> (f64, f64) {
    if b.at.len() < 2 {
        return (b.cpu_us.at(repeat), b.packets.at(repeat));
    }
    let mut points: Vec<&crate::model::BeatPoint> = b.at.iter().collect();
    points.sort_by_key(|p| p.connections);
    let counts: Vec<f64> = points.iter().map(|p| p.connections as f64).collect();
    let mut own = Vec::new();
    let (c0, c1, t) = bracket(
        &counts,
        clients as f64,
        "connection count",
        "connections",
        &mut own,
    );
    notes.extend(own.into_iter().map(|n| format!("beats: {n}")));
    let find = |c: f64| {
        points
            .iter()
            .find(|p| p.connections as f64 == c)
            .expect("a measured count")
    };
    let (p0, p1) = (find(c0), find(c1));
    let x = clients as f64;
    let t = if c1 > c0 && x > 0.0 {
        (1.0 / x - 1.0 / c0) / (1.0 / c1 - 1.0 / c0)
    } else {
        t
    };
    let mix = |a: f64, b: f64| a + (b - a) * t;
    (
        mix(p0.cpu_us.at(repeat), p1.cpu_us.at(repeat)),
        mix(p0.packets.at(repeat), p1.packets.at(repeat)),
    )
}

/// A short poll's CPU per poll on a feed of `rate` events/s among `clients` pollers, when the
/// model has it ([`crate::model::DeliveryPoint::poll_cpu_us`]); `idle_poll` is an empty poll's
/// at that count ([`beat_at`]), the cost at rate 0.
///
/// A poll costs its answer plus each event it carries, and the events per poll grow with the
/// rate (rate × interval), so a poll's cost is a straight line in the rate: from the idle
/// poll's at 0 through the measured rates, the top edge above them (the delivery's own note
/// says so). In the fan-out it is interpolated in log-clients, as a delivery is.
pub(crate) fn poll_cpu_at(
    points: &[DeliveryPoint],
    idle_poll: f64,
    rate: f64,
    clients: u64,
    repeat: Option<usize>,
) -> Option<f64> {
    if points.is_empty() || points.iter().any(|p| p.poll_cpu_us.is_none()) {
        return None;
    }
    let mut rates: Vec<f64> = points.iter().map(|p| p.rate_per_s).collect();
    rates.sort_by(f64::total_cmp);
    rates.dedup();
    let mut fans: Vec<f64> = points.iter().map(|p| p.clients as f64).collect();
    fans.sort_by(f64::total_cmp);
    fans.dedup();
    // Notes on the range are the delivery's (the same points), not repeated here.
    let (c0, c1, tc) = bracket(&fans, clients as f64, "", "", &mut Vec::new());
    let at = |r: f64, c: f64| -> f64 {
        points
            .iter()
            .min_by(|a, b| {
                let d = |p: &DeliveryPoint| {
                    (p.rate_per_s - r).abs() / r.max(1e-9)
                        + ((p.clients as f64).ln() - c.ln()).abs()
                };
                d(a).total_cmp(&d(b))
            })
            .and_then(|p| p.poll_cpu_us.as_ref())
            .map_or(f64::NAN, |m| m.at(repeat))
    };
    let here = |r: f64| at(r, c0) + (at(r, c1) - at(r, c0)) * tc;
    let mut line: Vec<(f64, f64)> = vec![(0.0, idle_poll)];
    line.extend(rates.iter().map(|&r| (r, here(r))));
    let cpu = if rate >= line[line.len() - 1].0 {
        line[line.len() - 1].1
    } else {
        line.windows(2)
            .find(|w| rate >= w[0].0 && rate <= w[1].0)
            .map_or(idle_poll, |w| {
                let t = (rate - w[0].0) / (w[1].0 - w[0].0);
                w[0].1 + (w[1].1 - w[0].1) * t
            })
    };
    cpu.is_finite().then_some(cpu.max(0.0))
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
    poll_interval_s: Option<f64>,
    repeat: Option<usize>,
    notes: &mut Vec<String>,
) -> Delivery {
    let mut rates: Vec<f64> = points.iter().map(|p| p.rate_per_s).collect();
    rates.sort_by(f64::total_cmp);
    rates.dedup();
    let mut fans: Vec<f64> = points.iter().map(|p| p.clients as f64).collect();
    fans.sort_by(f64::total_cmp);
    fans.dedup();
    let (r0, r1, tr) = rate_bracket(&rates, rate, poll_interval_s, notes);
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
    let d = mix(low, high, tc);
    // A line extended past its points must not cross zero.
    Delivery {
        cpu_us: d.cpu_us.max(0.0),
        bytes_up: d.bytes_up.max(0.0),
        bytes_down: d.bytes_down.max(0.0),
        packets: d.packets.max(0.0),
        requests: d.requests.max(0.0),
        p99_us: d.p99_us.max(0.0),
    }
}

/// The measured rates either side of `rate` and where it lies between them, linearly in 1/rate
/// (0 at the lower, 1 at the upper). Above the range: the top edge. Below it: the bottom edge,
/// except for a short poll (`poll_interval_s`), whose line through the two lowest rates is
/// extended down to one event per poll (a negative position).
fn rate_bracket(
    rates: &[f64],
    rate: f64,
    poll_interval_s: Option<f64>,
    notes: &mut Vec<String>,
) -> (f64, f64, f64) {
    let (first, last) = (rates[0], rates[rates.len() - 1]);
    let inv = |r: f64| 1.0 / r;
    if rate < first && rates.len() >= 2 && rate > 0.0 {
        if let Some(interval) = poll_interval_s.filter(|i| *i > 0.0) {
            let eff = rate.max(1.0 / interval);
            if eff >= first {
                // Fewer events than polls at a rate the measured points already cover.
                notes.push(format!(
                    "event rate {} events/s is below one event per {interval:.0} s poll: each event is taken at {} events/s, one per answer",
                    short(rate),
                    short(eff)
                ));
                return rate_bracket(rates, eff, None, notes);
            }
            let (a, b) = (rates[0], rates[1]);
            let t = (inv(a) - inv(eff)) / (inv(a) - inv(b));
            notes.push(format!(
                "event rate {} events/s is below the measured {}–{} events/s: a short poll's answer then carries {:.2} events, and its cost per delivery is extended along the measured line (per event + per answer ÷ events per answer)",
                short(rate),
                short(first),
                short(last),
                (eff * interval).max(1.0)
            ));
            return (a, b, t);
        }
    }
    if rate < first || rate > last {
        return bracket(rates, rate, "event rate", "events/s", notes);
    }
    for w in rates.windows(2) {
        if rate >= w[0] && rate <= w[1] {
            let t = if w[1] > w[0] && w[0] > 0.0 {
                (inv(w[0]) - inv(rate)) / (inv(w[0]) - inv(w[1]))
            } else {
                0.0
            };
            return (w[0], w[1], t);
        }
    }
    (first, first, 0.0)
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
pub(crate) mod tests {
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
            poll_cpu_us: None,
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
                at: Vec::new(),
            },
            memory_bytes: m(2048.0),
            delivery: vec![
                point(1.0, 100, 20.0),
                point(10.0, 100, 10.0),
                point(1.0, 1000, 16.0),
                point(10.0, 1000, 8.0),
            ],
            message_up: None,
            server_idle_cpu_us_per_s: None,
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
    fn beats_interpolate_in_inverse_connections() {
        let mut c = sse();
        c.beat.at = vec![
            crate::model::BeatPoint {
                connections: 100,
                cpu_us: m(30.0),
                packets: m(2.0),
            },
            crate::model::BeatPoint {
                connections: 10_000,
                cpu_us: m(10.0),
                packets: m(2.0),
            },
        ];
        // 30 µs = a + b/100 and 10 µs = a + b/10,000: a = 9.80 µs, b = 2,020 µs, so at
        // 1,000 connections a beat costs 11.82 µs (log-connections would say 20); 240 beats an
        // hour.
        let w = Workload {
            clients: 1000,
            ..workload(0.0)
        };
        let h = compose(&c, &w, None).per_client_hour;
        let b: f64 = 20.0 / (1.0 / 100.0 - 1.0 / 10_000.0);
        let a = 10.0 - b / 10_000.0;
        let beat = a + b / 1000.0;
        assert!((beat - 11.818).abs() < 1e-3, "{beat}");
        assert!(
            (h.cpu_s - (6.0 * 200.0 + 240.0 * beat) / 1e6).abs() < 1e-12,
            "{h:?}"
        );
        let w = Workload {
            clients: 10,
            ..workload(0.0)
        };
        let composed = compose(&c, &w, None);
        assert!(composed.extrapolated[0].starts_with("beats: connection count 10"));
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
    fn short_polls_below_the_measured_rates_follow_the_batch_line() {
        let mut c = sse();
        c.beat.kind = BeatKind::Poll;
        c.beat.interval_s = 5.0;
        // At 100 clients: 20 µs at 1/s, 10 µs at 10/s: 20 = e + b, 10 = e + b/10, so b = 100/9
        // per answer and e = 80/9 per event. One event every 50 s: one per answer (rate 0.2).
        let mut notes = Vec::new();
        let d = delivery(&c.delivery, 0.02, 100, Some(5.0), None, &mut notes);
        let expected = 80.0 / 9.0 + (100.0 / 9.0) / 0.2;
        assert!((d.cpu_us - expected).abs() < 1e-9, "{d:?}");
        assert!(notes[0].contains("1.00 events"), "{notes:?}");
        // A stream below the range takes the edge.
        let mut notes = Vec::new();
        let d = delivery(&c.delivery, 0.02, 100, None, None, &mut notes);
        assert_eq!(d.cpu_us, 20.0);
        assert!(notes[0].contains("taken at 1"), "{notes:?}");
    }

    #[test]
    fn short_polls_are_priced_by_their_polls_at_the_feeds_rate() {
        let mut c = sse();
        c.beat.kind = BeatKind::Poll;
        c.beat.interval_s = 5.0;
        c.beat.cpu_us = m(30.0);
        // A poll costs 40 µs at 1 event/s and 140 µs at 10/s (100 clients), 20 and 120 among
        // 1,000; the idle poll 30 µs.
        for p in &mut c.delivery {
            let busy = if p.rate_per_s == 1.0 { 40.0 } else { 140.0 };
            let fewer = if p.clients == 1000 { 20.0 } else { 0.0 };
            p.poll_cpu_us = Some(m(busy - fewer));
        }
        // 5.5 events/s among 100: halfway along the line in the rate, 90 µs a poll, 720
        // polls an hour, and no delivery CPU beside them.
        let w = workload(5.5 * 3600.0);
        let h = compose(&c, &w, None).per_client_hour;
        assert!(
            (h.cpu_s - (6.0 * 200.0 + 720.0 * 90.0) / 1e6).abs() < 1e-9,
            "{h:?}"
        );
        // Half an event a second: halfway from the idle poll (30) to 1/s (40).
        let w = workload(0.5 * 3600.0);
        let h = compose(&c, &w, None).per_client_hour;
        assert!(
            (h.cpu_s - (6.0 * 200.0 + 720.0 * 35.0) / 1e6).abs() < 1e-9,
            "{h:?}"
        );
        // Bytes still count the deliveries.
        assert_eq!(h.bytes_down, 6.0 * 400.0 + 720.0 * 20.0 + 1800.0 * 100.0);
        // A quiet feed: idle polls only.
        let h = compose(&c, &workload(0.0), None).per_client_hour;
        assert!((h.cpu_s - (6.0 * 200.0 + 720.0 * 30.0) / 1e6).abs() < 1e-9);
        // A model without the figure (format 1) composes as before: idle polls + deliveries.
        c.delivery[0].poll_cpu_us = None;
        let h = compose(&c, &workload(3600.0), None).per_client_hour;
        assert!((h.cpu_s - (6.0 * 200.0 + 720.0 * 30.0 + 3600.0 * 20.0) / 1e6).abs() < 1e-9);
    }

    #[test]
    fn deliveries_interpolate_in_inverse_rate_and_log_clients() {
        // 1/r = 0.55 is halfway between 1/1 and 1/10: (20 + 10) / 2 at 100 clients.
        let w = Workload {
            events_per_hour: 3600.0 / 0.55,
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
