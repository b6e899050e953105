//! The conclusion, written from the numbers: who won on latency, bytes, requests and server CPU
//! and by how much, when short polling's interval is what its latency is made of, and what a
//! TCP connection per request (HTTP/1.0) costs over keep-alive. Pure: model in, sentences out.

use crate::{
    is_polling, section,
    spread::{self, Range, Spread, CPU_RESOLUTION_S},
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
        "Latency",
        "p50 delivery latency",
        &rows,
        |sp| sp.latency_p50_us,
        |r| (r.latency_us.count > 0).then_some(r.latency_us.p50 as f64),
        |v| us(v.round() as u64),
    ));
    out.extend(ranked(
        "Tail latency",
        "p99 delivery latency",
        &rows,
        |sp| sp.latency_p99_us,
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
        "Bytes",
        "bytes on the wire per delivered event",
        &rows,
        |sp| sp.bytes_per_event,
        |r| r.bytes_per_event,
        bytes,
    ));
    out.extend(requests(&rows));
    out.extend(server_cpu(&rows));

    out.extend(report.crossovers.iter().map(|c| c.sentence.clone()));
    out.extend(crate::cost::absent(report));
    out.extend(section::protocols::http10_costs(report));
    out.extend(section::protocols::http2_costs(report));
    out.extend(section::protocols::tls_costs(report));
    out
}

/// A figure of one row: its range over the runs (a point when it ran once) and how many runs.
fn figure(
    r: &TransportResult,
    of_spread: fn(&Spread) -> Option<Range>,
    of_run: fn(&TransportResult) -> Option<f64>,
) -> Option<(Range, u32)> {
    match &r.spread {
        Some(sp) => of_spread(sp).map(|range| (range, sp.runs)),
        None => of_run(r).map(|v| (Range::point(v), 1)),
    }
}

/// One figure across the rows, ranked only as far as the runs allow: `≈` joins rows whose
/// ranges overlap (no measurable difference), `<` separates tiers whose ranges do not; a
/// figure measured once, or one row alone, is stated and not ranked.
fn ranked(
    title: &str,
    what: &str,
    rows: &[&TransportResult],
    of_spread: fn(&Spread) -> Option<Range>,
    of_run: fn(&TransportResult) -> Option<f64>,
    fmt: fn(f64) -> String,
) -> Option<String> {
    let figs: Vec<(&TransportResult, Range, u32)> = rows
        .iter()
        .filter_map(|&r| figure(r, of_spread, of_run).map(|(g, n)| (r, g, n)))
        .collect();
    let shown = |r: &TransportResult, g: Range, n: u32| {
        format!("{} {}", r.transport, g.show(n as usize, fmt))
    };
    match figs.len() {
        0 => return None,
        1 => {
            let (r, g, n) = figs[0];
            return Some(format!(
                "**{title}:** {} ({what}; one transport, compared with nothing).",
                shown(r, g, n)
            ));
        }
        _ => {}
    }
    let Some(tiers) = spread::tiers(&figs) else {
        let list: Vec<String> = figs.iter().map(|&(r, g, n)| shown(r, g, n)).collect();
        return Some(format!(
            "**{title}** — {what}, one run each, so the spread is unknown and nothing is ranked (`--repeat 3` measures it): {}.",
            list.join(" · ")
        ));
    };
    let runs = figs.iter().map(|f| f.2).min().unwrap_or(1);
    let chain: Vec<String> = tiers
        .iter()
        .map(|tier| {
            tier.iter()
                .map(|&(r, g)| shown(r, g, runs))
                .collect::<Vec<_>>()
                .join(" ≈ ")
        })
        .collect();
    let mut s = format!(
        "**{title}** — {what}, median [min–max] of {runs} runs (`<` a difference beyond the spread, `≈` within it): {}.",
        chain.join(" < ")
    );
    if tiers.len() == 1 {
        s.push_str(" No measurable difference between them.");
    } else if let (Some(first), Some(second)) = (tiers.first(), tiers.get(1)) {
        let best: Vec<&str> = first.iter().map(|(r, _)| r.transport.as_str()).collect();
        let lead = first.iter().map(|(_, g)| g.median).fold(f64::MIN, f64::max);
        let next = second
            .iter()
            .map(|(_, g)| g.median)
            .fold(f64::MAX, f64::min);
        s.push_str(&format!(
            " Lowest: {}; the next is {} as high.",
            best.join(" and "),
            times(next, lead)
        ));
    }
    Some(s)
}

/// Requests per event mean one thing for polling (a request per answer) and another for a
/// stream (one request per connection, so per event it only shrinks with the phase's length):
/// polling is ranked, streams are described.
fn requests(rows: &[&TransportResult]) -> Vec<String> {
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
        "Requests",
        "HTTP requests per delivered event",
        &polling,
        |sp| sp.requests_per_event,
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
fn server_cpu(rows: &[&TransportResult]) -> Vec<String> {
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
        "Server CPU",
        "ms per 1000 deliveries",
        rows,
        |sp| sp.server_cpu_us_per_event,
        |r| r.server_cpu_us_per_event,
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

    fn spread(p50: [f64; 3], cpu: [f64; 3]) -> Spread {
        let r = |v: [f64; 3]| {
            Some(Range {
                min: v[0],
                median: v[1],
                max: v[2],
            })
        };
        Spread {
            runs: 3,
            latency_p50_us: r(p50),
            latency_p99_us: r(p50.map(|v| v * 2.0)),
            bytes_per_event: r([200.0, 201.0, 202.0]),
            requests_per_event: r([0.06, 0.065, 0.07]),
            server_cpu_us_per_event: r(cpu),
            server_cpu_min_s: Some(1.0),
        }
    }

    fn line<'a>(c: &'a [String], start: &str) -> &'a str {
        c.iter()
            .find(|s| s.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in {c:#?}"))
    }

    #[test]
    fn one_run_states_figures_and_ranks_nothing() {
        let mut r = reference();
        for t in r.transports.values_mut() {
            t.spread = None;
        }
        let c = conclusions(&r, 1.0);
        let lat = line(&c, "**Latency**");
        assert!(lat.contains("nothing is ranked"), "{lat}");
        assert!(!lat.contains(" < ") && !lat.contains("fastest"), "{lat}");
    }

    #[test]
    fn overlapping_runs_are_no_difference_and_separate_ones_are_ranked() {
        let mut r = reference();
        let set = |r: &mut Report, t: &str, p50: [f64; 3], cpu: [f64; 3]| {
            r.transports.get_mut(t).unwrap().spread = Some(spread(p50, cpu));
        };
        set(&mut r, "sse", [640.0, 655.0, 700.0], [12.0, 13.0, 14.0]);
        set(&mut r, "ws", [630.0, 652.0, 690.0], [13.0, 14.0, 15.0]);
        set(
            &mut r,
            "long-poll",
            [880.0, 900.0, 950.0],
            [22.0, 23.0, 25.0],
        );
        set(&mut r, "short-poll", [490e3, 501e3, 520e3], [6.0, 7.0, 8.0]);
        let c = conclusions(&r, 1.0);
        let lat = line(&c, "**Latency**");
        assert!(
            lat.contains("ws 652 µs [630 µs–690 µs] ≈ sse 655 µs [640 µs–700 µs] < long-poll"),
            "{lat}"
        );
        assert!(lat.contains("< short-poll 501 ms"), "{lat}");
        let cpu = line(&c, "**Server CPU**");
        // sse and ws overlap on CPU: one tier, not a winner.
        assert!(cpu.contains("sse 13 ms [12 ms–14 ms] ≈ ws 14 ms"), "{cpu}");
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
        // HTTP/1.0 is slower beyond the spread: the change is given. Bytes per event overlap
        // between the two (436 B in most runs of both): within the spread, no change claimed.
        assert!(s.contains("median latency") && s.contains("%)"), "{s}");
        assert!(s.contains("within the spread"), "{s}");
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
