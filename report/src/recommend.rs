//! A recommendation per scenario, computed from the numbers: the transports that meet the
//! scenario's latency budget without loss come first, then they are ordered by the scenario's
//! costs, most important first. A cost separates two transports only when their ranges over the
//! runs do not overlap ([`crate::spread::tiers`]); transports no cost separates share a rank.
//! Every reason is written from the figures, so a different run can recommend differently.

use crate::{
    spread::{self, Range, CPU_RESOLUTION_S},
    units::{bytes, num, us},
    Cost, Ranked, Recommendation, Report, ScenarioInfo, TransportResult,
};

/// One figure of a transport over its runs.
fn value(cost: Cost, r: &TransportResult) -> Option<f64> {
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
    match cost {
        Cost::LatencyP50 => (latency.count > 0).then_some(latency.p50 as f64),
        Cost::LatencyP99 => (latency.count > 0).then_some(latency.p99 as f64),
        Cost::BytesPerEvent => r.bytes_per_event,
        Cost::ServerCpuPerEvent => r.server_cpu_us_per_event.filter(|_| !r.server_cost_shared),
        Cost::ServerCpuPerClientHour => r
            .server_cpu_s
            .filter(|_| !r.server_cost_shared)
            .and_then(|s| per_client_hour(s * 1000.0)),
        Cost::BytesPerClientHour => per_client_hour(all_bytes),
        // After each client's first request: a stream's one subscription is paid once per
        // session, not once per phase, so extrapolating it to an hour would measure the phase.
        Cost::RequestsPerClientHour => {
            per_client_hour((all_requests - f64::from(r.clients)).max(0.0))
        }
        Cost::MemoryPerConnection => r.server_rss_per_connection_bytes,
    }
}

fn format(cost: Cost, v: f64) -> String {
    match cost {
        Cost::LatencyP50 | Cost::LatencyP99 => us(v.round() as u64),
        Cost::BytesPerEvent | Cost::BytesPerClientHour | Cost::MemoryPerConnection => bytes(v),
        Cost::ServerCpuPerEvent | Cost::ServerCpuPerClientHour => format!("{} ms", num(v)),
        Cost::RequestsPerClientHour => num(v),
    }
}

/// A transport's figures over its runs.
struct Row<'a> {
    transport: &'a str,
    runs: Vec<&'a TransportResult>,
    lossy: bool,
}

impl Row<'_> {
    /// Server CPU that some run measured within a few ticks of `/proc`'s clock: not a figure
    /// to rank on.
    fn coarse(&self, cost: Cost) -> bool {
        matches!(cost, Cost::ServerCpuPerEvent | Cost::ServerCpuPerClientHour)
            && self
                .runs
                .iter()
                .any(|r| r.server_cpu_s.is_some_and(|s| s < CPU_RESOLUTION_S))
    }

    fn range(&self, cost: Cost) -> Option<(Range, u32)> {
        if self.coarse(cost) {
            return None;
        }
        spread::over_runs(&self.runs, |r| value(cost, r))
    }

    fn shown(&self, cost: Cost) -> String {
        match self.range(cost) {
            Some((g, n)) => format!(
                "{} {}",
                cost.label(),
                g.show(n as usize, |v| format(cost, v))
            ),
            None if self.coarse(cost) => format!(
                "{} below the resolution of /proc (under {} ms in a run), not ranked",
                cost.label(),
                num(CPU_RESOLUTION_S * 1000.0)
            ),
            None => format!("{} not measured", cost.label()),
        }
    }
}

/// Splits `idx` into groups, best first, by the first cost that separates them beyond the
/// spread, then the next within each group. Each group carries the cost that set it apart from
/// the group after it.
fn partition(rows: &[Row<'_>], idx: Vec<usize>, costs: &[Cost]) -> Vec<(Vec<usize>, Option<Cost>)> {
    let Some((&cost, rest)) = costs.split_first() else {
        return vec![(idx, None)];
    };
    if idx.len() < 2 {
        return vec![(idx, None)];
    }
    let figs: Option<Vec<(&usize, Range, u32)>> = idx
        .iter()
        .map(|i| rows[*i].range(cost).map(|(g, n)| (i, g, n)))
        .collect();
    let tiers = figs.and_then(|f| spread::tiers(&f));
    match tiers {
        Some(tiers) if tiers.len() > 1 => {
            let last = tiers.len() - 1;
            let mut out = Vec::new();
            for (k, tier) in tiers.into_iter().enumerate() {
                let mut sub = partition(rows, tier.iter().map(|(i, _)| **i).collect(), rest);
                if k < last {
                    if let Some(g) = sub.last_mut() {
                        g.1 = Some(cost);
                    }
                }
                out.extend(sub);
            }
            out
        }
        _ => partition(rows, idx, rest),
    }
}

pub fn recommend(report: &Report, info: &ScenarioInfo) -> Recommendation {
    let req = &info.requirements;
    let budget_us = req.p99_latency_ms.value * 1000.0;
    let rows: Vec<Row<'_>> = report
        .headline()
        .into_iter()
        .map(|r| {
            let runs = report.runs_of(r);
            let lossy = runs.iter().any(|x| x.has_loss());
            Row {
                transport: &r.transport,
                runs,
                lossy,
            }
        })
        .collect();
    let meets = |row: &Row<'_>| {
        !row.lossy
            && row
                .range(Cost::LatencyP99)
                .is_some_and(|(g, _)| g.median <= budget_us)
    };
    let (ok, not_ok): (Vec<usize>, Vec<usize>) = (0..rows.len()).partition(|&i| meets(&rows[i]));
    let priority = &req.priority.value;
    let mut groups = partition(&rows, ok, priority);
    let failing = partition(&rows, not_ok, &[Cost::LatencyP99]);
    let first_failing = groups.len();
    groups.extend(failing);

    let mut ranking = Vec::new();
    for (g, (members, split)) in groups.iter().enumerate() {
        let next = groups.get(g + 1);
        for &i in members {
            let row = &rows[i];
            let passes = g < first_failing;
            let p99 = row.shown(Cost::LatencyP99);
            let mut reason = if row.lossy {
                format!("lost or garbled events in a run; {p99}")
            } else if passes {
                format!(
                    "within the {} p99 budget ({p99})",
                    us(budget_us.round() as u64)
                )
            } else {
                format!(
                    "over the {} p99 budget ({p99})",
                    us(budget_us.round() as u64)
                )
            };
            if passes {
                let costs: Vec<String> = priority.iter().map(|&c| row.shown(c)).collect();
                reason.push_str(&format!("; {}", costs.join(", ")));
            }
            let peers: Vec<&str> = members
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| rows[j].transport)
                .collect();
            if !peers.is_empty() && passes {
                reason.push_str(&format!(
                    "; no measurable difference from {} on any of these",
                    peers.join(" and ")
                ));
            }
            if let (Some(cost), Some((after, _))) = (split, next) {
                let theirs: Vec<String> = after
                    .iter()
                    .map(|&j| {
                        let v = rows[j]
                            .range(*cost)
                            .map_or("–".into(), |(r, _)| format(*cost, r.median));
                        format!("{} {v}", rows[j].transport)
                    })
                    .collect();
                reason.push_str(&format!(
                    "; ahead of the next on {} beyond the spread ({} vs {})",
                    cost.label(),
                    row.range(*cost)
                        .map_or("–".into(), |(r, _)| format(*cost, r.median)),
                    theirs.join(", ")
                ));
            }
            ranking.push(Ranked {
                transport: row.transport.to_owned(),
                rank: g as u32 + 1,
                meets_requirements: passes,
                reason: reason + ".",
            });
        }
    }

    let requirements = format!(
        "p99 delivery latency within {} ({}), nothing lost; then {} ({})",
        us(budget_us.round() as u64),
        req.p99_latency_ms.why,
        priority
            .iter()
            .map(|c| c.label())
            .collect::<Vec<_>>()
            .join(", then "),
        req.priority.why
    );
    let best: Vec<&str> = ranking
        .iter()
        .filter(|r| r.rank == 1 && r.meets_requirements)
        .map(|r| r.transport.as_str())
        .collect();
    let runs = rows.iter().map(|r| r.runs.len()).min().unwrap_or(0);
    let summary = if best.is_empty() {
        format!(
            "{}: no transport met the requirements in this run ({}).",
            info.name, requirements
        )
    } else if runs < 2 {
        format!(
            "{}: {} met the requirements, but every phase ran once, so costs were not ranked (run with --repeat 3).",
            info.name,
            ranking
                .iter()
                .filter(|r| r.meets_requirements)
                .map(|r| r.transport.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else if best.len() == 1 {
        format!("{}: {} — {}", info.name, best[0], ranking[0].reason)
    } else {
        format!(
            "{}: {} — equally good on this scenario's costs (their ranges over {runs} runs overlap).",
            info.name,
            best.join(" or ")
        )
    };
    Recommendation {
        scenario: info.name.clone(),
        requirements,
        ranking,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Requirements, Why};

    /// The reference run's headline, each transport run three times with the figures moved by
    /// `spread` (a share of the value) around the original.
    fn runs(spread: f64) -> Report {
        let mut r: Report =
            serde_json::from_str(include_str!("../../results/reference/report.json")).unwrap();
        let heads: Vec<TransportResult> = r.transports.values().cloned().collect();
        r.phases.clear();
        for k in 0..3u32 {
            for h in &heads {
                let mut x = h.clone();
                let f = 1.0 + spread * (f64::from(k) - 1.0);
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

    #[test]
    fn over_budget_ranks_last_and_costs_order_the_rest() {
        let r = runs(0.01);
        // 100 ms: short polling (p99 near its 1 s interval) misses it.
        let rec = recommend(&r, &info(100.0, vec![Cost::BytesPerEvent]));
        let last = rec.ranking.last().unwrap();
        assert_eq!(last.transport, "short-poll");
        assert!(
            !last.meets_requirements && last.reason.contains("over the"),
            "{last:?}"
        );
        assert!(rec.ranking.iter().filter(|x| x.meets_requirements).count() == 3);
        // Bytes: WebSocket's frames are the smallest, long polling's heads the largest.
        assert_eq!(rec.ranking[0].transport, "ws", "{rec:#?}");
        assert_eq!(rec.ranking[0].rank, 1);
        assert!(rec.summary.starts_with("test: ws"), "{}", rec.summary);
        let lp = rec
            .ranking
            .iter()
            .find(|x| x.transport == "long-poll")
            .unwrap();
        assert_eq!(lp.rank, 3, "{rec:#?}");
    }

    #[test]
    fn overlapping_costs_share_a_rank() {
        // ±40% noise: every transport's byte range overlaps its neighbours'.
        let r = runs(0.4);
        let rec = recommend(&r, &info(100.0, vec![Cost::BytesPerEvent]));
        let passing: Vec<&Ranked> = rec
            .ranking
            .iter()
            .filter(|x| x.meets_requirements)
            .collect();
        assert!(passing.iter().all(|x| x.rank == 1), "{rec:#?}");
        assert!(rec.summary.contains("equally good"), "{}", rec.summary);
    }

    #[test]
    fn cpu_within_clock_ticks_is_not_ranked() {
        let mut r = runs(0.01);
        for p in &mut r.phases {
            p.server_cpu_s = Some(0.02);
        }
        let rec = recommend(&r, &info(100.0, vec![Cost::ServerCpuPerEvent]));
        assert!(rec
            .ranking
            .iter()
            .filter(|x| x.meets_requirements)
            .all(|x| x.rank == 1));
        assert!(
            rec.ranking[0].reason.contains("below the resolution"),
            "{rec:#?}"
        );
    }
}
