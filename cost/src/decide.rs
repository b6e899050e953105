//! The answer for one workload, from the committed model with no run: the transports ranked by
//! the rule (requirements first, then the whole bill, then latency, then the wake-ups a phone
//! pays), the bill's lines, which step decided and by how much, ties said as ties, and what
//! would change the order.

use serde::Serialize;

use crate::{
    bill::{Bill, Line},
    compose::{self, compose, PerClientHour},
    measured::median,
    model::{Condition, CostModel, Record, TransportCosts},
    prices::Prices,
    rank::{self, Criterion, Decision, Rule},
    workload::Workload,
};

/// What a tie between the leaders leaves unmeasured: the answer lists these instead of picking
/// on a margin inside the threshold.
pub const UNMEASURED: &[&str] = &[
    "EventSource's built-in reconnect and Last-Event-ID (SSE)",
    "binary frames (WebSocket)",
    "HTTP/2 multiplexing of many streams on one connection (SSE, polls)",
    "request headers EventSource cannot set (SSE: auth goes in a cookie or the URL)",
    "the upgrade surviving every proxy on the path (WebSocket)",
];

#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub workload: Workload,
    pub rule: Rule,
    pub prices: Prices,
    /// Best first.
    pub standings: Vec<Standing>,
    /// One sentence: which step put the first above the second, or that they tie.
    pub verdict: String,
    /// Criteria not measured, listed when the first place is shared.
    pub unmeasured: Vec<String>,
    /// What would change the first place.
    pub flips: Vec<String>,
    /// Where the workload left the measured range.
    pub extrapolated: Vec<String>,
    /// Whether HTTP/3 or WebTransport (the `browser-h3` condition) is worth it for this
    /// workload, against the leader over TCP; or that the model cannot say (no QUIC
    /// measurement).
    pub quic: String,
    /// Where the model's figures come from.
    pub record: Record,
    /// Repeats each composed bill rests on.
    pub repeats: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Standing {
    pub transport: String,
    pub rank: u32,
    pub meets_budget: bool,
    /// Median p99 delivery latency at the workload's rate and fan-out, ms.
    pub p99_ms: f64,
    /// The bill from the medians, per million client-hours.
    pub bill: Bill,
    /// The bill's total over the repeats.
    pub total_min: f64,
    pub total_median: f64,
    pub total_max: f64,
    pub dominant: Line,
    pub per_client_hour: PerClientHour,
    pub decided_by: Option<Decision>,
    pub served_by: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecideError {
    #[error(transparent)]
    Workload(#[from] crate::workload::WorkloadError),
    #[error("{0}")]
    Refused(String),
}

/// The criteria after the requirements, in the order they apply.
const CRITERIA: [&str; 3] = [
    "bill per million client-hours",
    "p99 latency",
    "wake-ups per hour",
];

pub fn decide(
    model: &CostModel,
    w: &Workload,
    prices: &Prices,
    rule: Rule,
) -> Result<Answer, DecideError> {
    w.check()?;
    prices.check().map_err(DecideError::Refused)?;
    rule.check().map_err(DecideError::Refused)?;
    let candidates = model.transports(w.condition);
    if candidates.is_empty() {
        return Err(DecideError::Refused(if w.condition.is_quic() {
            format!("{NO_QUIC}: nothing to rank under browser-h3 (ask under browser, whose answer says the same)")
        } else {
            format!(
                "the model has no measurement under the {} condition",
                w.condition.name()
            )
        }));
    }
    let repeats = model.repeats(w.condition).max(1);
    let mut extrapolated = Vec::new();
    let figures: Vec<Figures> = candidates
        .iter()
        .map(|c| Figures::of(c, w, prices, repeats, &mut extrapolated))
        .collect();
    extrapolated.sort();
    extrapolated.dedup();

    let places = order(&figures, w, rule);
    let standings: Vec<Standing> = places
        .iter()
        .map(|(i, rank, decided_by)| {
            let f = &figures[*i];
            let c = candidates[*i];
            Standing {
                transport: c.transport.clone(),
                rank: *rank,
                meets_budget: f.meets(w),
                p99_ms: median(&f.p99_us) / 1000.0,
                dominant: f.bill.dominant(),
                bill: f.bill.clone(),
                total_min: f.totals.iter().copied().fold(f64::INFINITY, f64::min),
                total_median: median(&f.totals),
                total_max: f.totals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                per_client_hour: f.hour.clone(),
                decided_by: decided_by.clone(),
                served_by: c.served_by.clone(),
            }
        })
        .collect();
    let verdict = verdict(&standings, rule);
    let leaders = standings.iter().filter(|s| s.rank == 1).count();
    let unmeasured = if leaders > 1 {
        UNMEASURED.iter().map(|s| s.to_string()).collect()
    } else {
        Vec::new()
    };
    let flips = flips(model, w, prices, rule, &standings);
    let quic = quic(model, w, prices, rule, &standings);
    Ok(Answer {
        workload: w.clone(),
        rule,
        prices: prices.clone(),
        standings,
        verdict,
        unmeasured,
        flips,
        extrapolated,
        quic,
        record: model.record.clone(),
        repeats,
    })
}

/// What the answer says when the model has no QUIC condition.
pub const NO_QUIC: &str = "HTTP/3 and WebTransport: the model has no browser-h3 measurement, so it cannot say whether they are worth it for this workload (remake it with `loadgen costs`, whose default conditions include browser-h3)";

/// Whether QUIC is worth it: the same workload under `browser-h3`, its leader's bill against
/// this answer's leader's, at the rule's threshold. Only the bill: the model is measured on
/// loopback, where QUIC's case (no head-of-line blocking across streams, connection migration)
/// cannot show; the sentence says so.
fn quic(
    model: &CostModel,
    w: &Workload,
    prices: &Prices,
    rule: Rule,
    standings: &[Standing],
) -> String {
    if w.condition.is_quic() {
        return String::new();
    }
    let over_quic = Workload {
        condition: Condition::BrowserH3,
        ..w.clone()
    };
    if model.transports(Condition::BrowserH3).is_empty() {
        return format!("{NO_QUIC}.");
    }
    let Ok(a) = decide(model, &over_quic, prices, rule) else {
        return "HTTP/3 and WebTransport: the browser-h3 figures could not be composed for this workload.".into();
    };
    let (Some(q), Some(t)) = (a.standings.first(), standings.first()) else {
        return String::new();
    };
    let change = (q.total_median - t.total_median) / t.total_median.max(1e-12);
    let judged = if !q.meets_budget && t.meets_budget {
        "not worth it: it misses the latency budget".to_owned()
    } else if change <= -rule.threshold {
        format!("worth it on the bill, {:.0}% below", -change * 100.0)
    } else if change >= rule.threshold {
        format!("not worth it on the bill, {:.0}% above", change * 100.0)
    } else {
        format!(
            "a tie on the bill ({:+.0}%, inside the {:.0}% threshold)",
            change * 100.0,
            rule.threshold * 100.0
        )
    };
    format!(
        "Over QUIC (browser-h3): {} at ${:.2} per million client-hours against {} at ${:.2} over TCP ({}): {judged}; measured on loopback, where QUIC's case cannot show: under loss and across a network change it is measured apart (`scripts/quic/loss.py`, results/quic/)",
        q.transport,
        q.total_median,
        t.transport,
        t.total_median,
        w.condition.name()
    )
}

/// One transport's composed figures, per repeat.
struct Figures {
    totals: Vec<f64>,
    p99_us: Vec<f64>,
    beats: f64,
    bill: Bill,
    hour: PerClientHour,
}

impl Figures {
    fn of(
        c: &TransportCosts,
        w: &Workload,
        prices: &Prices,
        repeats: usize,
        notes: &mut Vec<String>,
    ) -> Self {
        let totals = (0..repeats)
            .map(|i| {
                let h = compose(c, w, Some(i)).per_client_hour;
                Bill::of(&h, w.clients, prices).total()
            })
            .collect();
        // Latency at the workload's rate, or at the lowest measured rate for a quiet feed
        // (an event that does come arrives alone).
        let rate = (w.events_per_hour / 3600.0).max(
            c.delivery
                .iter()
                .map(|d| d.rate_per_s)
                .fold(f64::INFINITY, f64::min),
        );
        let p99_us = (0..repeats)
            .map(|i| {
                let poll =
                    (c.beat.kind == crate::model::BeatKind::Poll).then_some(c.beat.interval_s);
                compose::delivery(&c.delivery, rate, w.clients, poll, Some(i), &mut Vec::new())
                    .p99_us
            })
            .collect();
        let composed = compose(c, w, None);
        notes.extend(composed.extrapolated);
        let hour = composed.per_client_hour;
        Self {
            totals,
            p99_us,
            beats: hour.beats,
            bill: Bill::of(&hour, w.clients, prices),
            hour,
        }
    }

    fn meets(&self, w: &Workload) -> bool {
        w.latency_budget_ms
            .is_none_or(|b| median(&self.p99_us) / 1000.0 <= b)
    }
}

/// (candidate, rank, what decided its place), best first: those within the budget, ranked by
/// the criteria, then those over it, ranked the same way among themselves.
fn order(f: &[Figures], w: &Workload, rule: Rule) -> Vec<(usize, u32, Option<Decision>)> {
    let (within, over): (Vec<usize>, Vec<usize>) = (0..f.len()).partition(|&i| f[i].meets(w));
    let mut out = Vec::new();
    let mut offset = 0;
    for (k, group) in [within, over].into_iter().enumerate() {
        if group.is_empty() {
            continue;
        }
        let criteria = [
            Criterion {
                name: CRITERIA[0],
                values: group.iter().map(|&i| f[i].totals.clone()).collect(),
            },
            Criterion {
                name: CRITERIA[1],
                values: group.iter().map(|&i| f[i].p99_us.clone()).collect(),
            },
            Criterion {
                name: CRITERIA[2],
                values: group.iter().map(|&i| vec![f[i].beats]).collect(),
            },
        ];
        for (n, p) in rank::rank(group.len(), &criteria, rule)
            .into_iter()
            .enumerate()
        {
            let decided = if k == 1 && n == 0 && offset > 0 {
                Some(Decision {
                    criterion: "the latency budget".into(),
                    margin: 0.0,
                    p: None,
                })
            } else {
                p.decided_by
            };
            out.push((group[p.candidate], p.rank + offset, decided));
        }
        offset += group.len() as u32;
    }
    out
}

fn verdict(s: &[Standing], rule: Rule) -> String {
    let Some(first) = s.first() else {
        return "nothing to rank".into();
    };
    let tied: Vec<&str> = s
        .iter()
        .filter(|x| x.rank == 1)
        .map(|x| x.transport.as_str())
        .collect();
    if tied.len() > 1 {
        return format!(
            "{} tie: no criterion separates them by more than {:.0}% with the repeats' noise ruled out",
            tied.join(", "),
            rule.threshold * 100.0
        );
    }
    let Some(second) = s.get(1) else {
        return format!("{} is the only transport measured", first.transport);
    };
    match &second.decided_by {
        Some(d) if d.criterion == "the latency budget" => format!(
            "{} first: {} is over the latency budget",
            first.transport, second.transport
        ),
        Some(d) => format!(
            "{} first: {} costs {} more on {}{}",
            first.transport,
            second.transport,
            d.margin_percent(),
            d.criterion,
            d.p.map(|p| format!(" (p = {p:.3})")).unwrap_or_default()
        ),
        None => format!("{} first", first.transport),
    }
}

/// The leaders (rank 1) for a workload, or none when it cannot be answered.
fn leaders(model: &CostModel, w: &Workload, prices: &Prices, rule: Rule) -> Option<Vec<String>> {
    let candidates = model.transports(w.condition);
    let repeats = model.repeats(w.condition).max(1);
    let f: Vec<Figures> = candidates
        .iter()
        .map(|c| Figures::of(c, w, prices, repeats, &mut Vec::new()))
        .collect();
    let mut top: Vec<String> = order(&f, w, rule)
        .into_iter()
        .filter(|(_, r, _)| *r == 1)
        .map(|(i, _, _)| candidates[i].transport.clone())
        .collect();
    top.sort();
    Some(top)
}

/// Where, moving one parameter of the workload at a time, the first place changes: searched by
/// doubling and halving from the workload's value, then bisection to the boundary.
fn flips(
    model: &CostModel,
    w: &Workload,
    prices: &Prices,
    rule: Rule,
    standings: &[Standing],
) -> Vec<String> {
    let mut now: Vec<String> = standings
        .iter()
        .filter(|s| s.rank == 1)
        .map(|s| s.transport.clone())
        .collect();
    now.sort();
    let first = now.join(" and ");
    let stay = if now.len() > 1 { "stay" } else { "stays" };
    type Set = fn(&mut Workload, f64);
    let params: [(&str, f64, f64, f64, Set); 3] = [
        ("sessions", w.session_s, 1.0, 7.0 * 86_400.0, |w, v| {
            w.session_s = v
        }),
        (
            "events per hour",
            w.events_per_hour.max(1.0),
            1.0,
            crate::workload::MAX_EVENTS_PER_HOUR,
            |w, v| w.events_per_hour = v,
        ),
        (
            "messages per hour",
            w.messages_per_hour.max(1.0),
            1.0,
            36_000.0,
            |w, v| w.messages_per_hour = v,
        ),
    ];
    let mut out = Vec::new();
    for (name, start, lo, hi, set) in params {
        let at = |v: f64| {
            let mut x = w.clone();
            set(&mut x, v);
            leaders(model, &x, prices, rule)
        };
        for dir in [-1.0f64, 1.0] {
            let mut inside = start;
            let mut probe = start;
            let mut found = None;
            for _ in 0..24 {
                probe = if dir < 0.0 { probe / 2.0 } else { probe * 2.0 };
                if probe < lo || probe > hi {
                    break;
                }
                match at(probe) {
                    Some(t) if t != now => {
                        found = Some(t);
                        break;
                    }
                    _ => inside = probe,
                }
            }
            let Some(mut other) = found else { continue };
            let (mut a, mut b) = (inside, probe);
            for _ in 0..30 {
                let mid = (a * b).sqrt();
                match at(mid) {
                    Some(t) if t != now => {
                        b = mid;
                        other = t;
                    }
                    _ => a = mid,
                }
            }
            let edge = if name == "sessions" {
                duration(b)
            } else {
                format!("{}", round(b))
            };
            let side = if dir < 0.0 { "below" } else { "above" };
            let less_more = match (name, dir < 0.0) {
                ("sessions", true) => format!("sessions are shorter than {edge}"),
                ("sessions", false) => format!("sessions are longer than {edge}"),
                (_, true) => format!("{name} fall {side} {edge}"),
                (_, false) => format!("{name} rise {side} {edge}"),
            };
            out.push(format!(
                "{first} {stay} first unless {less_more}: then {}",
                other.join(" and ")
            ));
        }
    }
    if out.is_empty() {
        out.push(format!(
            "{first} {stay} first for any session length, event rate and message rate in the measured range"
        ));
    }
    out
}

fn round(v: f64) -> f64 {
    if v >= 100.0 {
        v.round()
    } else {
        (v * 10.0).round() / 10.0
    }
}

fn duration(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

impl Answer {
    /// The answer as a person reads it: the verdict, the ranking with each bill's lines, what
    /// would flip it, what was extrapolated, and where the figures come from.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let w = &self.workload;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Workload: {} clients, {} sessions, {} events/h, {} messages/h per client, {} payloads, {} network, {} conditions{}",
            w.clients,
            duration(w.session_s),
            w.events_per_hour,
            w.messages_per_hour,
            w.payload,
            w.network,
            w.condition.name(),
            w.latency_budget_ms
                .map(|b| format!(", p99 budget {b} ms"))
                .unwrap_or_default()
        );
        let _ = writeln!(out, "Answer: {}.", self.verdict);
        let _ = writeln!(
            out,
            "\nrank  transport   $/1M client-hours (median [range])  largest line          p99      within budget"
        );
        for s in &self.standings {
            let _ = writeln!(
                out,
                "{:<5} {:<11} {:>10} [{}–{}]{:pad$} {:<21} {:>8}  {}",
                s.rank,
                s.transport,
                money(s.total_median),
                money(s.total_min),
                money(s.total_max),
                "",
                format!("{} {}", s.dominant.label(), money(s.bill.line(s.dominant))),
                format!("{:.1} ms", s.p99_ms),
                if s.meets_budget { "yes" } else { "no" },
                pad = 0
            );
        }
        let _ = writeln!(out, "\nBill lines, $ per million client-hours:");
        let _ = write!(out, "{:<12}", "");
        for l in Line::ALL {
            let _ = write!(out, " {:>14}", l.label());
        }
        let _ = writeln!(out);
        for s in &self.standings {
            let _ = write!(out, "{:<12}", s.transport);
            for l in Line::ALL {
                let _ = write!(out, " {:>14}", money(s.bill.line(l)));
            }
            let _ = writeln!(out, "   (balancer billed on {})", s.bill.balancer_dimension);
        }
        let _ = writeln!(
            out,
            "\nRule: differences under {:.0}% are ties; larger ones must pass an exact Mann–Whitney test at {:.0}% over {} repeats.",
            self.rule.threshold * 100.0,
            self.rule.alpha * 100.0,
            self.repeats
        );
        if !self.unmeasured.is_empty() {
            let _ = writeln!(out, "Not measured, and worth weighing between the tied:");
            for u in &self.unmeasured {
                let _ = writeln!(out, "  - {u}");
            }
        }
        for f in &self.flips {
            let _ = writeln!(out, "{f}.");
        }
        if !self.quic.is_empty() {
            let _ = writeln!(out, "{}", self.quic.trim_end_matches('.').to_owned() + ".");
        }
        if !self.extrapolated.is_empty() {
            let _ = writeln!(out, "Extrapolated:");
            for e in &self.extrapolated {
                let _ = writeln!(out, "  - {e}");
            }
        }
        let r = &self.record;
        let _ = writeln!(
            out,
            "Figures: results/model/model.json, made by `{}` at commit {}{} ({} build) on {} ({} cores, kernel {}), {}.",
            r.command,
            r.commit,
            if r.dirty { " with uncommitted changes" } else { "" },
            r.profile,
            r.cpu_model,
            r.cores,
            r.kernel,
            r.date
        );
        out
    }
}

fn money(v: f64) -> String {
    if v >= 100.0 {
        format!("${v:.0}")
    } else if v >= 1.0 {
        format!("${v:.2}")
    } else {
        format!("${v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        measured::Measured,
        model::{Beat, BeatKind, Condition, DeliveryPoint, Session, Settings, FORMAT},
    };

    fn m(v: &[f64]) -> Measured {
        Measured::new(v.to_vec())
    }

    fn costs(
        transport: &str,
        session_cpu: f64,
        beat: BeatKind,
        beat_bytes: f64,
        p99: f64,
    ) -> TransportCosts {
        let d = |rate, clients| DeliveryPoint {
            rate_per_s: rate,
            clients,
            cpu_us: m(&[10.0, 10.5, 9.5, 10.2]),
            bytes_down: m(&[120.0; 4]),
            bytes_up: m(&[0.0; 4]),
            packets: m(&[1.0; 4]),
            requests: m(&[0.0; 4]),
            p99_us: m(&[p99; 4]),
            poll_cpu_us: None,
        };
        TransportCosts {
            transport: transport.into(),
            condition: Condition::PlainH1,
            served_by: "fast path".into(),
            network: "loopback".into(),
            payload: "chat".into(),
            payload_bytes: 80.0,
            repeats: 4,
            session: Session {
                cpu_us: m(&[
                    session_cpu,
                    session_cpu * 1.02,
                    session_cpu * 0.98,
                    session_cpu,
                ]),
                bytes_up: m(&[400.0; 4]),
                bytes_down: m(&[300.0; 4]),
                packets: m(&[10.0; 4]),
                connections: 1.0,
                round_trips: 2.0,
            },
            beat: Beat {
                kind: beat,
                interval_s: 15.0,
                cpu_us: m(&[5.0; 4]),
                bytes_up: m(&[if beat == BeatKind::Poll {
                    beat_bytes
                } else {
                    0.0
                }; 4]),
                bytes_down: m(&[beat_bytes; 4]),
                packets: m(&[2.0; 4]),
                requests: if beat == BeatKind::Heartbeat {
                    0.0
                } else {
                    1.0
                },
                at: Vec::new(),
            },
            memory_bytes: m(&[2048.0; 4]),
            delivery: vec![d(0.1, 100), d(10.0, 100), d(0.1, 1000), d(10.0, 1000)],
            message_up: None,
            server_idle_cpu_us_per_s: None,
        }
    }

    fn model(costs: Vec<TransportCosts>) -> CostModel {
        CostModel {
            format: FORMAT,
            record: Record {
                commit: "test".into(),
                dirty: false,
                profile: "release".into(),
                cpu_model: "test".into(),
                cores: 2,
                kernel: "test".into(),
                date: "2026-12-07T00:00:00Z".into(),
                command: "test".into(),
                duration_s: 0.0,
            },
            settings: Settings {
                heartbeat_s: 15.0,
                long_poll_timeout_s: 25.0,
                poll_interval_s: 5.0,
                idle_window_s: None,
                pinning: None,
                loadgen_cpu_share: None,
            },
            costs,
        }
    }

    #[test]
    fn a_model_without_quic_says_it_cannot_judge_http3_or_webtransport() {
        let m = model(vec![
            costs("sse", 200.0, BeatKind::Heartbeat, 20.0, 5_000.0),
            costs("ws", 205.0, BeatKind::Heartbeat, 21.0, 4_800.0),
        ]);
        let a = decide(&m, &workload(), &Prices::default(), Rule::default()).unwrap();
        assert!(a.quic.starts_with(NO_QUIC), "{}", a.quic);
        assert!(a.text().contains("no browser-h3 measurement"));
        let w = Workload {
            condition: Condition::BrowserH3,
            ..workload()
        };
        match decide(&m, &w, &Prices::default(), Rule::default()) {
            Err(DecideError::Refused(why)) => assert!(why.contains("no browser-h3"), "{why}"),
            other => panic!("a refusal expected: {other:?}"),
        }
        // With WebTransport measured, the answer weighs it against the TCP leader.
        let mut wt = costs("wt", 200.0, BeatKind::Heartbeat, 20.0, 5_000.0);
        wt.condition = Condition::BrowserH3;
        let mut cheaper = m.clone();
        cheaper.costs.push(wt);
        let a = decide(&cheaper, &workload(), &Prices::default(), Rule::default()).unwrap();
        assert!(a.quic.contains("wt at $"), "{}", a.quic);
        assert!(a.quic.contains("a tie on the bill"), "{}", a.quic);
    }

    fn workload() -> Workload {
        Workload {
            clients: 1000,
            session_s: 1200.0,
            events_per_hour: 30.0,
            messages_per_hour: 0.0,
            payload: "chat".into(),
            network: "loopback".into(),
            condition: Condition::PlainH1,
            latency_budget_ms: Some(1000.0),
        }
    }

    #[test]
    fn near_equal_streams_tie_and_the_answer_says_what_is_unmeasured() {
        let m = model(vec![
            costs("sse", 200.0, BeatKind::Heartbeat, 20.0, 5_000.0),
            costs("ws", 205.0, BeatKind::Heartbeat, 21.0, 4_800.0),
        ]);
        let a = decide(&m, &workload(), &Prices::default(), Rule::default()).unwrap();
        assert!(a.standings.iter().all(|s| s.rank == 1), "{:?}", a.standings);
        assert!(a.verdict.contains("tie"), "{}", a.verdict);
        assert!(!a.unmeasured.is_empty());
    }

    #[test]
    fn a_transport_over_the_budget_ranks_after_those_within() {
        let m = model(vec![
            costs("short-poll", 50.0, BeatKind::Poll, 300.0, 5_000_000.0),
            costs("sse", 200.0, BeatKind::Heartbeat, 20.0, 5_000.0),
        ]);
        let a = decide(&m, &workload(), &Prices::default(), Rule::default()).unwrap();
        assert_eq!(a.standings[0].transport, "sse");
        assert!(!a.standings[1].meets_budget);
        assert!(
            a.verdict.contains("over the latency budget"),
            "{}",
            a.verdict
        );
    }

    #[test]
    fn polling_every_five_seconds_costs_more_than_a_quiet_stream() {
        let mut poll = costs("short-poll", 200.0, BeatKind::Poll, 400.0, 50_000.0);
        poll.beat.interval_s = 5.0;
        let m = model(vec![
            poll,
            costs("sse", 200.0, BeatKind::Heartbeat, 20.0, 5_000.0),
        ]);
        let a = decide(&m, &workload(), &Prices::default(), Rule::default()).unwrap();
        assert_eq!(a.standings[0].transport, "sse");
        assert_eq!(a.standings[1].rank, 2);
        assert!(a.verdict.contains("bill"), "{}", a.verdict);
    }

    #[test]
    fn short_sessions_flip_a_cheap_hold_with_a_dear_set_up() {
        // A transport cheap to hold but dear to open wins long sessions and loses short ones.
        let mut dear_open = costs("ws", 1_000_000.0, BeatKind::Heartbeat, 0.0, 5_000.0);
        dear_open.session.bytes_down = m(&[100_000.0; 4]);
        let mut cheap_open = costs("sse", 100.0, BeatKind::Heartbeat, 20.0, 5_000.0);
        cheap_open.beat.bytes_down = m(&[2_000.0; 4]);
        let mdl = model(vec![dear_open, cheap_open]);
        let w = Workload {
            session_s: 86_400.0,
            ..workload()
        };
        let a = decide(&mdl, &w, &Prices::default(), Rule::default()).unwrap();
        assert_eq!(a.standings[0].transport, "ws", "{:?}", a.verdict);
        assert!(
            a.flips
                .iter()
                .any(|f| f.contains("sessions are shorter than")),
            "{:?}",
            a.flips
        );
    }

    #[test]
    fn nonsense_is_refused() {
        let m = model(vec![costs(
            "sse",
            200.0,
            BeatKind::Heartbeat,
            20.0,
            5_000.0,
        )]);
        let w = Workload {
            clients: 0,
            ..workload()
        };
        assert!(decide(&m, &w, &Prices::default(), Rule::default()).is_err());
        let w = Workload {
            events_per_hour: -1.0,
            ..workload()
        };
        assert!(decide(&m, &w, &Prices::default(), Rule::default()).is_err());
    }

    #[test]
    fn the_text_opens_with_the_workload_and_the_answer_and_names_its_source() {
        let m = model(vec![
            costs("sse", 200.0, BeatKind::Heartbeat, 20.0, 5_000.0),
            costs("ws", 205.0, BeatKind::Heartbeat, 21.0, 4_800.0),
        ]);
        let t = decide(&m, &workload(), &Prices::default(), Rule::default())
            .unwrap()
            .text();
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("Workload: 1000 clients, 20 min sessions"),
            "{t}"
        );
        assert!(
            lines[1].starts_with("Answer: ") && lines[1].contains(" tie: "),
            "{t}"
        );
        assert!(t.contains("Figures: results/model/model.json"), "{t}");
        assert!(t.contains("Not measured"), "{t}");
    }
}
