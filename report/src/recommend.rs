//! A recommendation per scenario, computed from the numbers with feedlab's ranking rule
//! ([`feedlab_cost::rank`]): the transports that meet the scenario's requirements (p99 within
//! its budget, nothing lost) come first; then the scenario's costs, most important first, each
//! splitting only what the previous left tied. A cost separates two transports only when the
//! difference exceeds the practical threshold (`--threshold`, 10%) *and* an exact two-sided
//! Mann–Whitney U test over the repeats passes at 5% (values every repeat measured alike need
//! only the threshold). Three repeats a side can never pass that test (the smallest p is 0.1).
//!
//! No cost is dropped because a transport was too cheap to measure: a run whose server CPU is
//! under `/proc`'s resolution counts at that bound (an upper bound), so two transports both
//! under it tie, and one under it ranks above one measured clearly above it. A sweep is ranked
//! at every point, and the recommendation says where the order changes. Leaders that tie are
//! said to tie, with what no measurement covers ([`feedlab_cost::decide::UNMEASURED`]).

pub use feedlab_cost::rank::Rule;
use feedlab_cost::rank::{self, Comparison};

use crate::{
    spread::{Range, CPU_RESOLUTION_S},
    units::{bytes, num, us},
    Cost, DecidedBy, PointRanking, Ranked, Recommendation, Report, ScenarioInfo, TransportResult,
};

/// One figure of one run, with whether it is only an upper bound (server CPU under `/proc`'s
/// resolution: the run's CPU counted as the resolution itself).
fn value(cost: Cost, r: &TransportResult) -> Option<(f64, bool)> {
    let hours = (r.publish_s + r.drain_s) / 3600.0;
    let per_client_hour =
        |v: f64| (hours > 0.0 && r.clients > 0).then(|| v / (r.clients as f64 * hours));
    // When clients talk back (`--send-rate`), what a user waits for is another member's
    // message, and every socket (the stream's and the sending one) carries the cost.
    let talk = r.talk_back.as_ref().filter(|u| u.messages_sent > 0);
    let latency = match talk {
        Some(u) if u.others_receipt_us.count > 0 => &u.others_receipt_us,
        _ => &r.latency_us,
    };
    let (all_bytes, all_requests) = match talk {
        Some(u) => (
            (u.bytes_up_per_message.unwrap_or(0.0) + u.bytes_down_per_message.unwrap_or(0.0))
                * u.messages_sent as f64,
            u.requests_per_client * f64::from(r.clients),
        ),
        None => ((r.bytes_down + r.bytes_up) as f64, r.http_requests as f64),
    };
    // Server CPU under the resolution: the resolution itself, as an upper bound.
    let cpu_s = r.server_cpu_s.filter(|_| !r.server_cost_shared);
    let coarse = cpu_s.is_some_and(|s| s < CPU_RESOLUTION_S);
    let exact = |v: Option<f64>| v.map(|v| (v, false));
    match cost {
        Cost::LatencyP50 => exact((latency.count > 0).then_some(latency.p50 as f64)),
        Cost::LatencyP99 => exact((latency.count > 0).then_some(latency.p99 as f64)),
        Cost::BytesPerEvent => exact(r.bytes_per_event),
        Cost::ServerCpuPerEvent if coarse => (r.events_received > 0)
            .then(|| (CPU_RESOLUTION_S * 1e6 / r.events_received as f64, true)),
        Cost::ServerCpuPerEvent => exact(r.server_cpu_us_per_event.filter(|_| cpu_s.is_some())),
        Cost::ServerCpuPerClientHour => {
            let s = if coarse { CPU_RESOLUTION_S } else { cpu_s? };
            per_client_hour(s * 1000.0).map(|v| (v, coarse))
        }
        Cost::BytesPerClientHour => exact(per_client_hour(all_bytes)),
        // After each client's first request: a stream's one subscription is paid once per
        // session, not once per phase, so extrapolating it to an hour would measure the phase.
        Cost::RequestsPerClientHour => exact(per_client_hour(
            (all_requests - f64::from(r.clients)).max(0.0),
        )),
        Cost::MemoryPerConnection => exact(r.server_rss_per_connection_bytes),
        Cost::RadioEnergyPerHour => exact(
            r.network
                .as_ref()
                .and_then(|n| n.phones.as_ref())
                .and_then(|p| p.radio.as_ref())
                .map(|x| x.energy_per_hour_j),
        ),
    }
}

fn format(cost: Cost, v: f64) -> String {
    match cost {
        Cost::LatencyP50 | Cost::LatencyP99 => us(v.round() as u64),
        Cost::BytesPerEvent | Cost::BytesPerClientHour | Cost::MemoryPerConnection => bytes(v),
        Cost::ServerCpuPerEvent | Cost::ServerCpuPerClientHour => format!("{} ms", num(v)),
        Cost::RequestsPerClientHour => num(v),
        Cost::RadioEnergyPerHour => format!("{} J", num(v)),
    }
}

/// A criterion's values for one transport over its runs.
#[derive(Debug, Clone)]
struct Values {
    runs: Vec<f64>,
    /// Some run's value is only an upper bound (CPU under `/proc`'s resolution).
    bounded: bool,
}

impl Values {
    fn of(cost: Cost, runs: &[&TransportResult]) -> Option<Self> {
        let v: Option<Vec<(f64, bool)>> = runs.iter().map(|r| value(cost, r)).collect();
        let v = v.filter(|v| !v.is_empty())?;
        Some(Self {
            bounded: v.iter().any(|x| x.1),
            runs: v.into_iter().map(|x| x.0).collect(),
        })
    }

    fn median(&self) -> f64 {
        Range::of(&self.runs).map_or(f64::NAN, |g| g.median)
    }

    fn shown(&self, cost: Cost) -> String {
        let Some(g) = Range::of(&self.runs) else {
            return "–".into();
        };
        let figure = g.show(self.runs.len(), |v| format(cost, v));
        if self.bounded {
            format!("≤ {figure} (under the resolution of /proc)")
        } else {
            figure
        }
    }
}

/// Whether `a` is better than `b` by the rule: `Some((margin, p))` when it is. Two upper bounds
/// cannot be told apart; a measured value below another's upper bound says nothing (the bounded
/// one may be lower still); fewer than two runs a side is never ranked.
fn beats(a: Option<&Values>, b: Option<&Values>, rule: Rule) -> Option<(f64, Option<f64>)> {
    let (a, b) = (a?, b?);
    if b.bounded || a.runs.len() < 2 || b.runs.len() < 2 {
        return None;
    }
    match rank::compare(&a.runs, &b.runs, rule) {
        Comparison::Better { margin, p } => Some((margin, p)),
        _ => None,
    }
}

/// A transport at one point: its runs and its values on every criterion.
struct Row<'a> {
    transport: &'a str,
    runs: Vec<&'a TransportResult>,
    lossy: bool,
    p99: Option<Values>,
    costs: Vec<Option<Values>>,
}

impl Row<'_> {
    fn shown(&self, cost: Cost, v: Option<&Values>) -> String {
        match v {
            Some(v) => format!("{} {}", cost.label(), v.shown(cost)),
            None => format!("{} not measured", cost.label()),
        }
    }
}

/// Tiers of `group`, best first, by one criterion (mirrors [`rank::rank`], with bounds): sorted
/// by median, a member opens a new tier when it is beaten by the first of the current tier.
fn split(
    group: Vec<usize>,
    values: &dyn Fn(usize) -> Option<Values>,
    name: &str,
    rule: Rule,
) -> Vec<(Vec<usize>, Option<DecidedBy>)> {
    let mut sorted = group;
    sorted.sort_by(|&x, &y| {
        let m = |i: usize| values(i).map_or(f64::INFINITY, |v| v.median());
        m(x).total_cmp(&m(y))
    });
    let mut tiers: Vec<(Vec<usize>, Option<DecidedBy>)> = Vec::new();
    for i in sorted {
        let decision = tiers.last().and_then(|(tier, _)| {
            beats(values(tier[0]).as_ref(), values(i).as_ref(), rule).map(|(margin, p)| DecidedBy {
                criterion: name.to_owned(),
                margin: Some(margin),
                p,
            })
        });
        match (tiers.last_mut(), decision) {
            (Some((tier, _)), None) => tier.push(i),
            (_, d) => tiers.push((vec![i], d)),
        }
    }
    tiers
}

/// One point's ranking: every transport, best first, and whether the first place is shared.
struct Ranking {
    ranking: Vec<Ranked>,
    /// Indexes into the rows, in ranking order, with their rank.
    order: Vec<(usize, u32)>,
    /// Every transport met the requirements.
    all_pass: bool,
    /// The fewest runs any transport had.
    runs: usize,
}

fn rank_point(rows: &[Row<'_>], info: &ScenarioInfo, rule: Rule) -> Ranking {
    let budget_us = info.requirements.p99_latency_ms.value * 1000.0;
    let priority = &info.requirements.priority.value;
    let meets =
        |row: &Row<'_>| !row.lossy && row.p99.as_ref().is_some_and(|v| v.median() <= budget_us);
    let (ok, not_ok): (Vec<usize>, Vec<usize>) = (0..rows.len()).partition(|&i| meets(&rows[i]));
    let all_pass = not_ok.is_empty();
    // The passing transports, split by each cost in turn.
    let mut groups: Vec<(Vec<usize>, Option<DecidedBy>)> = vec![(ok, None)];
    for (k, &cost) in priority.iter().enumerate() {
        let mut next = Vec::new();
        for (group, opened) in groups {
            let mut tiers = split(group, &|i| rows[i].costs[k].clone(), cost.label(), rule);
            if let Some(first) = tiers.first_mut() {
                first.1 = opened;
            }
            next.extend(tiers);
        }
        groups = next;
    }
    groups.retain(|(g, _)| !g.is_empty());
    // The failing ones after them, by p99 latency.
    if !not_ok.is_empty() {
        let lossy_only = not_ok.iter().all(|&i| rows[i].lossy);
        let mut tiers = split(
            not_ok,
            &|i| rows[i].p99.clone(),
            Cost::LatencyP99.label(),
            rule,
        );
        if !groups.is_empty() {
            tiers[0].1 = Some(DecidedBy {
                criterion: if lossy_only {
                    "nothing lost".into()
                } else {
                    "the p99 budget".into()
                },
                margin: None,
                p: None,
            });
        }
        groups.extend(tiers);
    }

    let runs = rows.iter().map(|r| r.runs.len()).min().unwrap_or(0);
    let mut ranking = Vec::new();
    let mut order = Vec::new();
    let mut place = 1;
    let mut above: Option<usize> = None;
    for (members, opened) in &groups {
        for (k, &i) in members.iter().enumerate() {
            let row = &rows[i];
            let passes = meets(row);
            let p99 = row.shown(Cost::LatencyP99, row.p99.as_ref());
            let budget = us(budget_us.round() as u64);
            let mut reason = if row.lossy {
                format!("lost or garbled events in a run; {p99}")
            } else if passes {
                format!("within the {budget} p99 budget ({p99})")
            } else {
                format!("over the {budget} p99 budget ({p99})")
            };
            if passes && !priority.is_empty() {
                let costs: Vec<String> = priority
                    .iter()
                    .zip(&row.costs)
                    .map(|(&c, v)| row.shown(c, v.as_ref()))
                    .collect();
                reason.push_str(&format!("; {}", costs.join(", ")));
            }
            let peers: Vec<&str> = members
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| rows[j].transport)
                .collect();
            if !peers.is_empty() && passes {
                reason.push_str(&format!(
                    "; ties with {} on every criterion (no difference over {}% that the runs can tell from noise)",
                    and_list(&peers),
                    num(rule.threshold * 100.0)
                ));
            }
            let decided_by = if k == 0 { opened.clone() } else { None };
            if let (Some(d), Some(a)) = (&decided_by, above) {
                reason.push_str(&format!("; {}", below(rows, a, i, d, priority)));
            }
            ranking.push(Ranked {
                transport: row.transport.to_owned(),
                rank: place,
                meets_requirements: passes,
                reason: reason + ".",
                decided_by,
            });
            order.push((i, place));
        }
        above = members.first().copied();
        place += members.len() as u32;
    }
    Ranking {
        ranking,
        order,
        all_pass,
        runs,
    }
}

/// "below sse on bytes per event: 312 B vs 296 B (+5.4%)", for the transport `i` placed under
/// `a` by `d`.
fn below(rows: &[Row<'_>], a: usize, i: usize, d: &DecidedBy, priority: &[Cost]) -> String {
    let Some(margin) = d.margin else {
        return format!("below {} on {}", rows[a].transport, d.criterion);
    };
    let (theirs, mine) = match priority.iter().position(|c| c.label() == d.criterion) {
        Some(k) => (rows[a].costs[k].as_ref(), rows[i].costs[k].as_ref()),
        None => (rows[a].p99.as_ref(), rows[i].p99.as_ref()),
    };
    let cost = priority
        .iter()
        .copied()
        .find(|c| c.label() == d.criterion)
        .unwrap_or(Cost::LatencyP99);
    let v = |x: Option<&Values>| x.map_or("–".into(), |v| format(cost, v.median()));
    format!(
        "below {} on {}: {} vs {} ({}{})",
        rows[a].transport,
        d.criterion,
        v(mine),
        v(theirs),
        margin_words(margin),
        d.p.map_or(String::new(), |p| format!(", p = {}", p_words(p)))
    )
}

fn margin_words(m: f64) -> String {
    if m.is_infinite() {
        "more than nothing".into()
    } else if m >= 1.0 {
        format!("{}×", num(1.0 + m))
    } else {
        format!("+{}%", num(m * 100.0))
    }
}

fn p_words(p: f64) -> String {
    format!("{p:.3}")
}

/// A point of a sweep: the network, the client count and the rate of a phase.
fn point_of(r: &TransportResult) -> (Option<String>, u32, u64) {
    (
        r.network.as_ref().map(|n| n.name.clone()),
        r.clients,
        r.rate.to_bits(),
    )
}

fn point_label(key: &(Option<String>, u32, u64), sweeps: (bool, bool, bool)) -> String {
    let mut parts = Vec::new();
    if sweeps.0 {
        parts.push(key.0.clone().unwrap_or_else(|| "loopback".into()));
    }
    if sweeps.1 {
        parts.push(format!("{} clients", key.1));
    }
    if sweeps.2 {
        parts.push(format!("{} events/s", num(f64::from_bits(key.2))));
    }
    parts.join(", ")
}

/// "sse > long-poll", "sse = ws > long-poll": the order in a few characters (tied transports
/// in the standard order, so a tie reads the same at every point).
fn order_words(r: &Ranking, rows: &[Row<'_>]) -> String {
    let mut places: Vec<(u32, Vec<usize>)> = Vec::new();
    for &(i, place) in &r.order {
        match places.last_mut() {
            Some((p, members)) if *p == place => members.push(i),
            _ => places.push((place, vec![i])),
        }
    }
    places
        .into_iter()
        .map(|(_, mut members)| {
            members.sort_unstable();
            members
                .iter()
                .map(|&i| rows[i].transport)
                .collect::<Vec<_>>()
                .join(" = ")
        })
        .collect::<Vec<_>>()
        .join(" > ")
}

fn rows_at<'a>(
    report: &'a Report,
    key: &(Option<String>, u32, u64),
    priority: &[Cost],
) -> Vec<Row<'a>> {
    report
        .headline()
        .into_iter()
        .filter_map(|h| {
            let runs: Vec<&TransportResult> = report
                .phases
                .iter()
                .filter(|p| {
                    p.transport == h.transport
                        && p.http == h.http
                        && p.tls == h.tls
                        && p.compressed() == h.compressed()
                        && point_of(p) == *key
                })
                .collect();
            if runs.is_empty() {
                return None;
            }
            Some(Row {
                transport: &h.transport,
                lossy: runs.iter().any(|x| x.has_loss()),
                p99: Values::of(Cost::LatencyP99, &runs),
                costs: priority.iter().map(|&c| Values::of(c, &runs)).collect(),
                runs,
            })
        })
        .collect()
}

fn summary_of(
    name: &str,
    r: &Ranking,
    rows: &[Row<'_>],
    rule: Rule,
    requirements: &str,
) -> (String, bool) {
    let leaders: Vec<&Ranked> = r
        .ranking
        .iter()
        .filter(|x| x.rank == 1 && x.meets_requirements)
        .collect();
    let needed = rule.repeats_needed();
    let few = if r.runs >= 2 && r.runs < needed {
        format!(
            " With {} runs a side the rank test cannot reach {}% (its smallest p is {:.2}): only costs every run measured alike could rank; run with --repeat {needed}.",
            r.runs,
            num(rule.alpha * 100.0),
            rank::exact_min_p(r.runs, r.runs)
        )
    } else {
        String::new()
    };
    let decides = if r.all_pass && rows.len() > 1 {
        " Every transport met the requirements: they decide nothing here."
    } else {
        ""
    };
    if leaders.is_empty() {
        return (
            format!("{name}: no transport met the requirements ({requirements})."),
            false,
        );
    }
    if r.runs < 2 {
        let passing: Vec<&str> = r
            .ranking
            .iter()
            .filter(|x| x.meets_requirements)
            .map(|x| x.transport.as_str())
            .collect();
        return (
            format!(
                "{name}: cannot rank: every phase ran once ({} met the requirements); run with --repeat {needed}.",
                passing.join(", ")
            ),
            leaders.len() > 1,
        );
    }
    if leaders.len() == 1 {
        let first = leaders[0];
        let second = r.ranking.get(1);
        let why = match second.and_then(|s| s.decided_by.as_ref().map(|d| (s, d))) {
            Some((s, d)) if d.margin.is_some() => {
                let k = rows
                    .iter()
                    .position(|x| x.transport == first.transport)
                    .unwrap_or(0);
                let j = rows
                    .iter()
                    .position(|x| x.transport == s.transport)
                    .unwrap_or(0);
                let cost = cost_named(&d.criterion);
                let figure = |i: usize| {
                    Values::of(cost, &rows[i].runs)
                        .map_or("–".into(), |v| format(cost, v.median()))
                };
                format!(
                    "first on {}: {} vs {}'s {} ({}{})",
                    d.criterion,
                    figure(k),
                    s.transport,
                    figure(j),
                    margin_words(d.margin.unwrap_or(0.0)),
                    d.p.map_or(", every run alike".into(), |p| format!(
                        ", p = {}",
                        p_words(p)
                    ))
                )
            }
            Some((_, d)) => format!("the only one to meet {}", d.criterion),
            None => "the only transport measured".into(),
        };
        (
            format!("{name}: {} — {why}.{decides}{few}", first.transport),
            false,
        )
    } else {
        let names: Vec<&str> = leaders.iter().map(|x| x.transport.as_str()).collect();
        (
            format!(
                "{name}: {} tie — no measured criterion separates them by more than {}% with p ≤ {}.{decides}{few}",
                and_list(&names),
                num(rule.threshold * 100.0),
                rule.alpha
            ),
            true,
        )
    }
}

/// "a", "a and b", "a, b and c".
fn and_list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The cost a criterion's label names (the p99 latency for a requirement).
fn cost_named(label: &str) -> Cost {
    [
        Cost::LatencyP50,
        Cost::LatencyP99,
        Cost::BytesPerEvent,
        Cost::ServerCpuPerEvent,
        Cost::ServerCpuPerClientHour,
        Cost::BytesPerClientHour,
        Cost::RequestsPerClientHour,
        Cost::MemoryPerConnection,
        Cost::RadioEnergyPerHour,
    ]
    .into_iter()
    .find(|c| c.label() == label)
    .unwrap_or(Cost::LatencyP99)
}

/// A transport's figure over its runs: its name, median and range, and how many runs.
pub type Figure = (String, Range, u32);

/// What decided a scenario's answer, per transport at the headline point: the criterion that
/// put the second place below the first (or, for a tie, the first cost the scenario ranks on),
/// each transport's median and range over its runs, and how many runs.
pub fn deciding(report: &Report) -> Option<(Cost, Vec<Figure>)> {
    let info = report.scenario.as_ref()?;
    let rec = report.recommendations.first()?;
    let cost = rec
        .ranking
        .iter()
        .find_map(|x| x.decided_by.as_ref())
        .map(|d| cost_named(&d.criterion))
        .or_else(|| info.requirements.priority.value.first().copied())?;
    let key = point_of(report.headline().first()?);
    let rows = rows_at(report, &key, &[cost]);
    let values: Vec<(String, Range, u32)> = rows
        .iter()
        .filter_map(|r| {
            let v = r.costs[0].as_ref()?;
            Some((
                r.transport.to_owned(),
                Range::of(&v.runs)?,
                v.runs.len() as u32,
            ))
        })
        .collect();
    (!values.is_empty()).then_some((cost, values))
}

pub fn recommend(report: &Report, info: &ScenarioInfo) -> Recommendation {
    let rule = report.rule();
    let req = &info.requirements;
    let budget_us = req.p99_latency_ms.value * 1000.0;
    let priority = &req.priority.value;
    let requirements = format!(
        "p99 delivery latency within {} ({}), nothing lost; then {} ({}); a difference under {}% is a tie, a larger one must pass an exact two-sided rank test at {}%",
        us(budget_us.round() as u64),
        req.p99_latency_ms.why,
        priority
            .iter()
            .map(|c| c.label())
            .collect::<Vec<_>>()
            .join(", then "),
        req.priority.why,
        num(rule.threshold * 100.0),
        num(rule.alpha * 100.0),
    );
    // Every point the run measured (in order), and which dimensions it swept.
    let mut keys: Vec<(Option<String>, u32, u64)> = Vec::new();
    for h in report.headline() {
        for p in report.phases.iter().filter(|p| {
            p.transport == h.transport
                && p.http == h.http
                && p.tls == h.tls
                && p.compressed() == h.compressed()
        }) {
            let k = point_of(p);
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    let headline_key = report.headline().first().map(|h| point_of(h));
    let sweeps = (
        keys.iter().any(|k| k.0 != keys[0].0),
        keys.iter().any(|k| k.1 != keys[0].1),
        keys.iter().any(|k| k.2 != keys[0].2),
    );
    let rows = match &headline_key {
        Some(k) => rows_at(report, k, priority),
        None => Vec::new(),
    };
    let head = rank_point(&rows, info, rule);
    let (mut summary, tie) = summary_of(&info.name, &head, &rows, rule, &requirements);

    let mut points = Vec::new();
    let mut flips = Vec::new();
    if keys.len() > 1 {
        let mut previous: Option<(String, String)> = None;
        for k in &keys {
            let rows = rows_at(report, k, priority);
            let ranked = rank_point(&rows, info, rule);
            let label = point_label(k, sweeps);
            let order = order_words(&ranked, &rows);
            // What decided each place, so a change of reason reads as a change too.
            let mut why: Vec<&str> = Vec::new();
            for c in ranked
                .ranking
                .iter()
                .filter_map(|x| x.decided_by.as_ref().map(|d| d.criterion.as_str()))
            {
                if !why.contains(&c) {
                    why.push(c);
                }
            }
            let order = if why.is_empty() {
                order
            } else {
                format!("{order} (by {})", why.join(" and "))
            };
            let (s, _) = summary_of(&label, &ranked, &rows, rule, &requirements);
            if let Some((pl, po)) = &previous {
                if *po != order {
                    flips.push(format!("At {pl}: {po}; at {label}: {order}."));
                }
            }
            previous = Some((label.clone(), order));
            points.push(PointRanking {
                point: label,
                ranking: ranked.ranking,
                summary: s,
            });
        }
        let along = if flips.is_empty() {
            format!(
                " Ranked at all {} points of the sweep: the order is the same at every one ({}).",
                points.len(),
                previous.map(|p| p.1).unwrap_or_default()
            )
        } else {
            format!(
                " Ranked at all {} points of the sweep: {}",
                points.len(),
                flips.join(" ")
            )
        };
        summary.push_str(&along);
    }
    Recommendation {
        scenario: info.name.clone(),
        requirements,
        ranking: head.ranking,
        summary,
        threshold: Some(rule.threshold),
        tie,
        unmeasured: if tie {
            feedlab_cost::decide::UNMEASURED
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        } else {
            Vec::new()
        },
        points,
        flips,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Requirements, Why};

    /// The reference run's headline, each transport run `n` times with the figures moved by
    /// `spread` (a share of the value) around the original.
    fn runs(n: u32, spread: f64) -> Report {
        let mut r: Report =
            serde_json::from_str(include_str!("../../results/reference/report.json")).unwrap();
        let heads: Vec<TransportResult> = r.transports.values().cloned().collect();
        r.phases.clear();
        for k in 0..n {
            for h in &heads {
                let mut x = h.clone();
                let f = 1.0 + spread * (f64::from(k) - f64::from(n - 1) / 2.0);
                x.repeat = k;
                x.phase = r.phases.len();
                x.latency_us.p99 = (x.latency_us.p99 as f64 * f) as u64;
                x.bytes_per_event = x.bytes_per_event.map(|b| b * f);
                x.server_cpu_s = Some(1.0);
                x.server_cpu_us_per_event = x.server_cpu_us_per_event.map(|c| c * f);
                r.phases.push(x);
            }
        }
        r
    }

    fn info(budget_ms: f64, priority: Vec<Cost>) -> ScenarioInfo {
        ScenarioInfo {
            name: "test".into(),
            summary: "a test".into(),
            flags: Vec::new(),
            requirements: Requirements {
                p99_latency_ms: Why {
                    value: budget_ms,
                    why: "test".into(),
                },
                priority: Why {
                    value: priority,
                    why: "test".into(),
                },
            },
        }
    }

    fn set(r: &mut Report, transport: &str, f: impl Fn(&mut TransportResult, u32)) {
        for p in r.phases.iter_mut().filter(|p| p.transport == transport) {
            let k = p.repeat;
            f(p, k);
        }
    }

    fn place<'a>(rec: &'a Recommendation, t: &str) -> &'a Ranked {
        rec.ranking.iter().find(|x| x.transport == t).unwrap()
    }

    #[test]
    fn over_budget_ranks_last_and_says_what_put_it_there() {
        let r = runs(4, 0.01);
        // 100 ms: short polling (p99 near its 1 s interval) misses it.
        let rec = recommend(&r, &info(100.0, vec![Cost::BytesPerEvent]));
        let last = rec.ranking.last().unwrap();
        assert_eq!(last.transport, "short-poll");
        assert!(
            !last.meets_requirements && last.reason.contains("over the"),
            "{last:?}"
        );
        assert_eq!(
            last.decided_by.as_ref().unwrap().criterion,
            "the p99 budget"
        );
        assert_eq!(
            rec.ranking.iter().filter(|x| x.meets_requirements).count(),
            3
        );
        assert!(!rec.summary.contains("decide nothing"), "{}", rec.summary);
    }

    /// Bytes have no spread: the old rule ranked a 2% byte difference.
    #[test]
    fn a_two_percent_byte_margin_is_a_tie() {
        let mut r = runs(4, 0.0);
        set(&mut r, "ws", |p, _| p.bytes_per_event = Some(296.0));
        set(&mut r, "sse", |p, _| p.bytes_per_event = Some(302.0));
        set(&mut r, "long-poll", |p, _| p.bytes_per_event = Some(600.0));
        let rec = recommend(&r, &info(100.0, vec![Cost::BytesPerEvent]));
        assert_eq!(place(&rec, "ws").rank, place(&rec, "sse").rank, "{rec:#?}");
        assert!(rec.tie, "{rec:#?}");
        assert!(rec.summary.contains("ws and sse tie"), "{}", rec.summary);
        // Long polling's heads are twice the bytes, every run alike: the threshold alone ranks.
        let lp = place(&rec, "long-poll");
        assert_eq!(lp.rank, 3);
        let d = lp.decided_by.as_ref().unwrap();
        assert_eq!(d.criterion, "bytes per event");
        assert!(d.p.is_none() && d.margin.unwrap() > 0.9, "{d:?}");
    }

    /// Ranges that do not overlap over three runs: p = 0.1 at best, not a 5% result.
    #[test]
    fn three_separated_runs_are_not_a_win() {
        let mut r = runs(3, 0.0);
        let sse = [35.0, 33.8, 35.0];
        let ws = [38.8, 37.5, 41.3];
        set(&mut r, "sse", |p, k| {
            p.server_cpu_us_per_event = Some(sse[k as usize]);
        });
        set(&mut r, "ws", |p, k| {
            p.server_cpu_us_per_event = Some(ws[k as usize]);
        });
        set(&mut r, "long-poll", |p, _| {
            p.server_cpu_us_per_event = Some(36.0)
        });
        let rec = recommend(&r, &info(100.0, vec![Cost::ServerCpuPerEvent]));
        assert_eq!(place(&rec, "sse").rank, place(&rec, "ws").rank, "{rec:#?}");
        assert!(rec.summary.contains("--repeat 4"), "{}", rec.summary);
    }

    /// The same separation over four runs passes (p = 2/70 ≈ 0.029).
    #[test]
    fn four_separated_runs_beyond_the_threshold_win() {
        let mut r = runs(4, 0.0);
        set(&mut r, "sse", |p, k| {
            p.server_cpu_us_per_event = Some(33.0 + f64::from(k));
        });
        set(&mut r, "ws", |p, k| {
            p.server_cpu_us_per_event = Some(40.0 + f64::from(k));
        });
        set(&mut r, "long-poll", |p, k| {
            p.server_cpu_us_per_event = Some(60.0 + f64::from(k));
        });
        let rec = recommend(&r, &info(100.0, vec![Cost::ServerCpuPerEvent]));
        assert_eq!(rec.ranking[0].transport, "sse", "{rec:#?}");
        let ws = place(&rec, "ws");
        assert_eq!(ws.rank, 2);
        let d = ws.decided_by.as_ref().unwrap();
        assert!((d.p.unwrap() - 2.0 / 70.0).abs() < 1e-9, "{d:?}");
        assert!(
            rec.summary.contains("first on server CPU per 1000 events"),
            "{}",
            rec.summary
        );
        assert!(!rec.tie && rec.unmeasured.is_empty());
    }

    /// CPU under /proc's resolution counts at the bound: not dropped for everyone.
    #[test]
    fn cpu_under_the_resolution_is_an_upper_bound_not_a_dropped_criterion() {
        let mut r = runs(4, 0.0);
        for t in ["long-poll", "sse", "ws"] {
            set(&mut r, t, |p, _| p.server_cpu_s = Some(0.02));
        }
        // Short polling: ten times the bound, every run.
        set(&mut r, "short-poll", |p, k| {
            p.server_cpu_s = Some(0.5 + 0.01 * f64::from(k));
        });
        let rec = recommend(&r, &info(5000.0, vec![Cost::ServerCpuPerClientHour]));
        let sp = place(&rec, "short-poll");
        assert_eq!(sp.rank, 4, "{rec:#?}");
        assert_eq!(
            sp.decided_by.as_ref().unwrap().criterion,
            "server CPU per client-hour"
        );
        // The three under the resolution tie with one another.
        assert!(["long-poll", "sse", "ws"]
            .iter()
            .all(|t| place(&rec, t).rank == 1));
        assert!(
            place(&rec, "sse")
                .reason
                .contains("under the resolution of /proc"),
            "{rec:#?}"
        );
        // One measured 20% above the others' bound, every run: ranked below them.
        let mut r2 = r.clone();
        set(&mut r2, "short-poll", |p, _| p.server_cpu_s = Some(0.02));
        set(&mut r2, "ws", |p, k| {
            p.server_cpu_s = Some(0.06 + 0.001 * f64::from(k))
        });
        let rec = recommend(&r2, &info(5000.0, vec![Cost::ServerCpuPerClientHour]));
        assert_eq!(place(&rec, "ws").rank, 4, "{rec:#?}");
        // Within the threshold of the bound: a tie, whatever the runs say.
        let mut r3 = r.clone();
        set(&mut r3, "short-poll", |p, _| p.server_cpu_s = Some(0.02));
        set(&mut r3, "ws", |p, k| {
            p.server_cpu_s = Some(0.05 + 0.001 * f64::from(k))
        });
        let rec = recommend(&r3, &info(5000.0, vec![Cost::ServerCpuPerClientHour]));
        assert!(rec.ranking.iter().all(|x| x.rank == 1), "{rec:#?}");
    }

    #[test]
    fn a_tie_says_so_and_lists_what_is_not_measured() {
        let mut r = runs(4, 0.0);
        r.transports.retain(|t, _| t == "sse" || t == "ws");
        r.phases
            .retain(|p| p.transport == "sse" || p.transport == "ws");
        for t in ["sse", "ws"] {
            set(&mut r, t, |p, k| {
                p.bytes_per_event = Some(300.0 + f64::from(k));
                p.latency_us.p99 = 20_000 + u64::from(k) * 100;
            });
        }
        let rec = recommend(
            &r,
            &info(100.0, vec![Cost::BytesPerEvent, Cost::LatencyP99]),
        );
        assert!(rec.tie);
        assert!(rec.summary.contains("sse and ws tie"), "{}", rec.summary);
        assert!(rec.summary.contains("decide nothing"), "{}", rec.summary);
        assert_eq!(rec.unmeasured.len(), feedlab_cost::decide::UNMEASURED.len());
        assert!(rec.unmeasured[0].contains("Last-Event-ID"));
    }

    #[test]
    fn a_rate_sweep_is_ranked_at_every_point_and_says_where_the_order_flips() {
        let base = runs(4, 0.0);
        let mut r = base.clone();
        r.transports.retain(|t, _| t == "sse" || t == "long-poll");
        r.phases
            .retain(|p| p.transport == "sse" || p.transport == "long-poll");
        // A second rate, where long polling's p99 is three times SSE's.
        let mut more: Vec<TransportResult> = r.phases.clone();
        for p in &mut more {
            p.rate *= 10.0;
            if p.transport == "long-poll" {
                p.latency_us.p99 = 60_000 + u64::from(p.repeat) * 1000;
            } else {
                p.latency_us.p99 = 20_000 + u64::from(p.repeat) * 1000;
            }
        }
        for p in &mut r.phases {
            p.latency_us.p99 = 20_000 + u64::from(p.repeat) * 1000;
        }
        let first: Vec<TransportResult> = r.phases.clone();
        r.phases = first.into_iter().chain(more).collect();
        let rec = recommend(&r, &info(1000.0, vec![Cost::LatencyP99]));
        assert_eq!(rec.points.len(), 2, "{rec:#?}");
        assert!(rec.points[0].ranking.iter().all(|x| x.rank == 1));
        let second = &rec.points[1].ranking;
        assert_eq!(second[0].transport, "sse");
        assert_eq!(second[1].rank, 2);
        assert_eq!(rec.flips.len(), 1, "{rec:#?}");
        assert!(rec.flips[0].contains("sse > long-poll"), "{}", rec.flips[0]);
    }
}
