//! The conclusion, written from the numbers: who won on latency, bytes, requests and server CPU
//! and by how much, when short polling's interval is what its latency is made of, and what a
//! TCP connection per request (HTTP/1.0) costs over keep-alive. Pure: model in, sentences out.

use crate::{
    is_polling, section,
    spread::{self, Range, CPU_RESOLUTION_S},
    units::{bytes, num, us},
    words::{dedup, secs, times},
    Report, TransportResult,
};

pub fn conclusions(report: &Report, poll_interval_s: f64) -> Vec<String> {
    let mut out = Vec::new();
    let rows: Vec<&TransportResult> = report.headline();
    let lossy: Vec<&str> = report
        .phases
        .iter()
        .filter(|r| r.has_loss())
        .map(|r| r.transport.as_str())
        .collect();
    if !lossy.is_empty() {
        let gaps: u64 = report.phases.iter().map(|r| r.gaps).sum();
        let dups: u64 = report.phases.iter().map(|r| r.duplicates).sum();
        let ooo: u64 = report.phases.iter().map(|r| r.out_of_order).sum();
        out.push(format!(
            "**LOSS: this run lost or garbled events** ({gaps} gaps, {dups} duplicates, {ooo} out of order, in {}). The numbers below describe a broken delivery.",
            dedup(&lossy).join(", ")
        ));
    } else if !report.phases.is_empty() {
        let expected: u64 = report.phases.iter().map(|r| r.events_expected).sum();
        out.push(format!(
            "Every client received every event exactly once and in order ({} deliveries checked).",
            crate::units::int(expected)
        ));
    }
    if report.interrupted {
        out.push("The run was interrupted (Ctrl-C): only the phases that ran are reported.".into());
    }
    out.extend(section::resilience::sentences(report));
    out.extend(section::talk_back::sentences(report));

    out.extend(ranked(
        report,
        "Latency",
        "p50 delivery latency",
        &rows,
        |r| (r.latency_us.count > 0).then_some(r.latency_us.p50 as f64),
        |v| us(v.round() as u64),
    ));
    out.extend(ranked(
        report,
        "Tail latency",
        "p99 delivery latency",
        &rows,
        |r| (r.latency_us.count > 0).then_some(r.latency_us.p99 as f64),
        |v| us(v.round() as u64),
    ));

    if let Some(sp) = rows.iter().find(|r| r.transport == "short-poll") {
        let half_us = poll_interval_s * 500_000.0;
        if sp.latency_us.count > 0 && poll_interval_s > 0.0 {
            let p50 = sp.latency_us.p50 as f64;
            if p50 > 0.5 * half_us {
                let others = rows
                    .iter()
                    .filter(|r| r.transport != "short-poll" && r.latency_us.count > 0)
                    .map(|r| r.latency_us.p50)
                    .max();
                let mut s = format!(
                    "**Short polling's latency is its poll interval:** an event waits for the next poll, so the median ({}) sits near half the {} interval ({}) and the maximum ({}) near the whole of it",
                    us(sp.latency_us.p50),
                    secs(poll_interval_s),
                    us(half_us as u64),
                    us(sp.latency_us.max)
                );
                if let Some(o) = others {
                    s.push_str(&format!(
                        "; the push transports' medians were all at most {}",
                        us(o)
                    ));
                }
                s.push_str(". Polling faster buys latency with requests.");
                out.push(s);
            } else {
                out.push(format!(
                    "Short polling's median ({}) is well below half its {} interval: at this rate most polls find an event waiting, so the server's work, not the interval, shapes its latency.",
                    us(sp.latency_us.p50),
                    secs(poll_interval_s)
                ));
            }
        }
    }

    out.extend(ranked(
        report,
        "Bytes",
        "bytes on the wire per delivered event",
        &rows,
        |r| r.bytes_per_event,
        bytes,
    ));
    out.extend(requests(report, &rows));
    out.extend(server_cpu(report, &rows));

    out.extend(report.crossovers.iter().map(|c| c.sentence.clone()));
    out.extend(crate::cost::absent(report));
    out.extend(section::protocols::http10_costs(report));
    out.extend(section::protocols::http2_costs(report));
    out.extend(section::protocols::tls_costs(report));
    out
}

/// One figure across the rows, ranked by the report's rule ([`spread::tiers`]): `≈` joins rows
/// it cannot tell apart (a difference under the practical threshold, or one the rank test over
/// the runs cannot tell from noise), `<` separates tiers; a figure measured once, or one row
/// alone, is stated and not ranked.
fn ranked(
    report: &Report,
    title: &str,
    what: &str,
    rows: &[&TransportResult],
    of_run: fn(&TransportResult) -> Option<f64>,
    fmt: fn(f64) -> String,
) -> Option<String> {
    let rule = report.rule();
    let figs: Vec<(&TransportResult, Vec<f64>)> = rows
        .iter()
        .filter_map(|&r| {
            let runs: Vec<f64> = match report.runs_of(r).as_slice() {
                [] => of_run(r).into_iter().collect(),
                runs => runs.iter().filter_map(|x| of_run(x)).collect(),
            };
            (!runs.is_empty()).then_some((r, runs))
        })
        .collect();
    let shown = |r: &TransportResult, runs: &[f64]| {
        let g = Range::of(runs).unwrap_or(Range::point(f64::NAN));
        format!("{} {}", r.transport, g.show(runs.len(), fmt))
    };
    let find = |r: &TransportResult| {
        figs.iter()
            .find(|(x, _)| std::ptr::eq(*x, r))
            .map_or(&[][..], |(_, v)| v.as_slice())
    };
    match figs.len() {
        0 => return None,
        1 => {
            let (r, runs) = &figs[0];
            return Some(format!(
                "**{title}:** {} ({what}; one transport, compared with nothing).",
                shown(r, runs)
            ));
        }
        _ => {}
    }
    let Some(tiers) = spread::tiers(&figs, rule) else {
        let list: Vec<String> = figs.iter().map(|(r, v)| shown(r, v)).collect();
        return Some(format!(
            "**{title}** — {what}, one run each, so the spread is unknown and nothing is ranked (`--repeat 4` measures it): {}.",
            list.join(" · ")
        ));
    };
    let runs = figs.iter().map(|f| f.1.len()).min().unwrap_or(1);
    let chain: Vec<String> = tiers
        .iter()
        .map(|tier| {
            tier.rows
                .iter()
                .map(|&r| shown(r, find(r)))
                .collect::<Vec<_>>()
                .join(" ≈ ")
        })
        .collect();
    let mut s = format!(
        "**{title}** — {what}, median [min–max] of {runs} runs (`<` more than {:.0}% apart and told from noise by a rank test at 5%, `≈` a tie): {}.",
        rule.threshold * 100.0,
        chain.join(" < ")
    );
    if tiers.len() == 1 {
        s.push_str(" They tie.");
        if runs < 4 {
            s.push_str(&format!(
                " With {runs} runs a side the rank test cannot reach 5% (`--repeat 4` can)."
            ));
        }
    } else if let (Some(first), Some(second)) = (tiers.first(), tiers.get(1)) {
        let best: Vec<&str> = first.rows.iter().map(|r| r.transport.as_str()).collect();
        let median = |v: &[f64]| Range::of(v).map_or(f64::NAN, |g| g.median);
        let lead = median(&first.first_runs);
        let next = median(&second.first_runs);
        s.push_str(&format!(
            " Lowest: {}; the next is {} as high",
            best.join(" and "),
            times(next, lead)
        ));
        if let Some((_, Some(p))) = second.by {
            s.push_str(&format!(" (p = {p:.3})"));
        }
        s.push('.');
    }
    Some(s)
}

/// Requests per event mean one thing for polling (a request per answer) and another for a
/// stream (one request per connection, so per event it only shrinks with the phase's length):
/// polling is ranked, streams are described.
fn requests(report: &Report, rows: &[&TransportResult]) -> Vec<String> {
    let polling: Vec<&TransportResult> = rows
        .iter()
        .copied()
        .filter(|r| is_polling(&r.transport))
        .collect();
    let streams: Vec<&str> = rows
        .iter()
        .filter(|r| !is_polling(&r.transport))
        .map(|r| r.transport.as_str())
        .collect();
    let mut out = Vec::new();
    if let Some(mut s) = ranked(
        report,
        "Requests",
        "HTTP requests per delivered event",
        &polling,
        |r| r.requests_per_event,
        num,
    ) {
        if let Some(sp) = polling.iter().find(|r| r.transport == "short-poll") {
            if sp.events_published > 0 && sp.empty_responses > 0 {
                let share = sp.empty_responses as f64 / sp.http_requests.max(1) as f64;
                s.push_str(&format!(
                    " {:.0}% of short polls came back empty.",
                    share * 100.0
                ));
            }
        }
        out.push(s);
    }
    if !streams.is_empty() {
        out.push(format!(
            "**Requests, streams:** {} make one request per connection however long it stays open, so their requests per event only shrink as a phase gets longer — a ratio against polling would measure the phase, not the transport.",
            streams.join(" and ")
        ));
    }
    out
}

/// Server CPU per delivery, ranked only where the phases used enough CPU for `/proc`'s 10 ms
/// tick, and with the note that streams and polls may run on different engines.
fn server_cpu(report: &Report, rows: &[&TransportResult]) -> Vec<String> {
    if rows.iter().any(|r| r.server_cost_shared) {
        return vec!["**Server CPU:** the transports ran together (`--concurrent`), so the server's CPU cannot be split between them; run them one after another to compare it.".into()];
    }
    let least = |r: &TransportResult| match &r.spread {
        Some(sp) => sp.server_cpu_min_s,
        None => r.server_cpu_s,
    };
    let coarse: Vec<&str> = rows
        .iter()
        .filter(|r| r.server_cpu_s.is_some() && least(r).unwrap_or(0.0) < CPU_RESOLUTION_S)
        .map(|r| r.transport.as_str())
        .collect();
    let mut out = Vec::new();
    if !coarse.is_empty() {
        let list: Vec<String> = rows
            .iter()
            .filter_map(|r| {
                r.server_cpu_us_per_event
                    .map(|v| format!("{} {} ms", r.transport, num(v)))
            })
            .collect();
        out.push(format!(
            "**Server CPU** per 1000 deliveries: {} — not ranked: {} used under {} ms of server CPU in a phase, within a few ticks of `/proc`'s 10 ms clock. Run longer or with more clients to compare it.",
            list.join(" · "),
            coarse.join(", "),
            num(CPU_RESOLUTION_S * 1000.0)
        ));
    } else if let Some(s) = ranked(
        report,
        "Server CPU",
        "ms per 1000 deliveries",
        rows,
        |r| r.server_cpu_us_per_event.filter(|_| !r.server_cost_shared),
        |v| format!("{} ms", num(v)),
    ) {
        out.push(s);
    }
    if !out.is_empty()
        && rows.iter().any(|r| is_polling(&r.transport))
        && rows.iter().any(|r| !is_polling(&r.transport))
    {
        out.push("Server CPU here is the whole server's, engine included (feedlab's server serves all four transports on its own fast path; `--fast-path=false` puts them on actix-web): what each transport costs on its own, against a framework-free floor, is in the README's *Cost of fan-out* (`scripts/fanout/bench.py`).".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real report (the committed reference run) to vary: its numbers do not matter here,
    /// only what the conclusions may say about them.
    fn reference() -> Report {
        serde_json::from_str(include_str!("../../results/reference/report.json")).unwrap()
    }

    /// The reference run with `n` runs of each headline cell, their p50 latencies given.
    fn with_runs(p50: &[(&str, &[f64])]) -> Report {
        let mut r = reference();
        let heads: Vec<TransportResult> = r.transports.values().cloned().collect();
        r.phases.clear();
        for h in &heads {
            let Some((_, values)) = p50.iter().find(|(t, _)| *t == h.transport) else {
                continue;
            };
            for (k, v) in values.iter().enumerate() {
                let mut x = h.clone();
                x.repeat = k as u32;
                x.phase = r.phases.len();
                x.latency_us.p50 = *v as u64;
                r.phases.push(x);
            }
        }
        r.transports.retain(|t, _| p50.iter().any(|(x, _)| x == t));
        r
    }

    fn line<'a>(c: &'a [String], start: &str) -> &'a str {
        c.iter()
            .find(|s| s.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in {c:#?}"))
    }

    #[test]
    fn one_run_states_figures_and_ranks_nothing() {
        let r = with_runs(&[("sse", &[640.0]), ("ws", &[900.0])]);
        let c = conclusions(&r, 1.0);
        let lat = line(&c, "**Latency**");
        assert!(lat.contains("nothing is ranked"), "{lat}");
        assert!(!lat.contains(" < ") && !lat.contains("Lowest"), "{lat}");
    }

    #[test]
    fn a_difference_under_the_threshold_ties_and_one_beyond_it_ranks_with_its_p() {
        // ws and sse 2% apart with every run separated: under the 10% threshold, a tie.
        // long polling 40% above, every run separated: ranked, p = 2/70.
        let r = with_runs(&[
            ("sse", &[650.0, 655.0, 660.0, 662.0]),
            ("ws", &[664.0, 668.0, 670.0, 675.0]),
            ("long-poll", &[900.0, 920.0, 930.0, 950.0]),
        ]);
        let c = conclusions(&r, 1.0);
        let lat = line(&c, "**Latency**");
        assert!(
            lat.contains("sse 658 µs [650 µs–662 µs] ≈ ws 669 µs"),
            "{lat}"
        );
        assert!(lat.contains("< long-poll 925 µs"), "{lat}");
        assert!(lat.contains("(p = 0.029)"), "{lat}");
    }

    #[test]
    fn three_runs_cannot_separate_anything_at_five_percent() {
        // Separated by 40% in every run, but three runs a side reach p = 0.1 at best.
        let r = with_runs(&[
            ("sse", &[650.0, 655.0, 660.0]),
            ("long-poll", &[900.0, 920.0, 930.0]),
        ]);
        let c = conclusions(&r, 1.0);
        let lat = line(&c, "**Latency**");
        assert!(!lat.contains(" < "), "{lat}");
        assert!(
            lat.contains("They tie") && lat.contains("--repeat 4"),
            "{lat}"
        );
    }

    #[test]
    fn cpu_within_a_few_clock_ticks_is_not_ranked() {
        let mut r = reference();
        for t in r.transports.values_mut() {
            t.spread = None;
        }
        r.transports.get_mut("short-poll").unwrap().server_cpu_s = Some(0.02);
        let c = conclusions(&r, 1.0);
        let cpu = line(&c, "**Server CPU**");
        assert!(
            cpu.contains("not ranked") && cpu.contains("short-poll"),
            "{cpu}"
        );
    }

    #[test]
    fn one_transport_is_compared_with_nothing() {
        let mut r = reference();
        r.transports.retain(|k, _| k == "ws");
        let c = conclusions(&r, 1.0);
        let lat = line(&c, "**Latency:**");
        assert!(lat.contains("compared with nothing"), "{lat}");
        assert!(
            !c.iter()
                .any(|s| s.contains("as many") || s.contains("1.0×")),
            "{c:#?}"
        );
    }

    #[test]
    fn comparisons_quote_the_median_of_the_runs_not_the_last_one() {
        let mut r = reference();
        // The last of long polling's three HTTP/1.0 runs is an outlier on latency and
        // connections; the sentence must quote the median of the three.
        let last = r
            .phases
            .iter_mut()
            .rev()
            .find(|p| p.transport == "long-poll" && p.http == "1.0")
            .unwrap();
        last.latency_us.p50 = 99_000;
        last.connections_opened = 7;
        let runs: Vec<u64> = r
            .phases
            .iter()
            .filter(|p| p.transport == "long-poll" && p.http == "1.0")
            .map(|p| p.latency_us.p50)
            .collect();
        assert_eq!(runs.len(), 3);
        let mut sorted = runs.clone();
        sorted.sort_unstable();
        let c = conclusions(&r, 1.0);
        let s = line(&c, "**HTTP/1.0 against keep-alive (long-poll)**");
        assert!(
            s.contains(&format!("median latency {} [", us(sorted[1]))),
            "{s}"
        );
        assert!(!s.contains("median latency 99.0 ms against"), "{s}");
        assert!(s.contains("TCP connections opened 10,050 ["), "{s}");
        // Three runs a side: no change can pass the rank test at 5%, so none is claimed.
        // Bytes per event are the same within the threshold (436 B in most runs of both).
        assert!(s.contains("a tie: within 10%"), "{s}");
        assert!(!s.contains("%, p = "), "{s}");
    }

    #[test]
    fn streams_requests_are_not_set_against_polling_as_a_ratio() {
        let c = conclusions(&reference(), 1.0);
        let streams = line(&c, "**Requests, streams:**");
        assert!(!streams.contains('×'), "{streams}");
        let polls = line(&c, "**Requests**");
        assert!(!polls.contains("sse") && !polls.contains("ws "), "{polls}");
    }
}
