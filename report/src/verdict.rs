//! The conclusion, written from the numbers: each section's sentences ([`crate::section`]) in the
//! order a reader needs them (loss first, then what the run survived, then latency, bytes,
//! requests and server CPU, then what HTTP versions and TLS cost). Pure: model in, sentences out.

use crate::{section, Report};

pub fn conclusions(report: &Report, poll_interval_s: f64) -> Vec<String> {
    let mut out = section::integrity::sentences(report);
    if report.interrupted {
        out.push("The run was interrupted (Ctrl-C): only the phases that ran are reported.".into());
    }
    out.extend(section::resilience::sentences(report));
    out.extend(section::talk_back::sentences(report));
    out.extend(section::latency::sentences(report, poll_interval_s));
    out.extend(section::wire::sentences(report));
    out.extend(section::server::sentences(report));
    out.extend(section::sweep::sentences(report));
    out.extend(crate::cost::absent(report));
    out.extend(section::protocols::http10_costs(report));
    out.extend(section::protocols::http2_costs(report));
    out.extend(section::protocols::tls_costs(report));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{units::us, TransportResult};

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
