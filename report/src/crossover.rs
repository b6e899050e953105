//! Crossovers: where, along a sweep, one transport's cost overtakes another's. A ranking at one
//! workload says nothing about the next; the point where the order flips is what a reader can
//! carry to their own numbers. Found from the measured points (each the median over the runs of
//! its phase, [`crate::spread::over_runs`]) by linear interpolation between the two points that
//! bracket the change of sign — on a log scale of a swept rate, on a linear one of a swept RTT
//! (which starts at 0) — and stated with the points it came from. The runs' ranges travel with
//! the points: where they overlap at the points that bracket the crossing (or, with none found,
//! at any point), the medians' answer is within the spread and the sentence says so.
//!
//! Three crossovers: short polling's requests against long polling's along `--rates`; the RTT
//! at which long polling's p99 exceeds twice SSE's, along repeated `--network`
//! (the `rtt-sweep` scenario); and, from one phase's measured costs, the poll interval at which
//! short polling's CPU costs as much as a push connection's memory ([`crate::cost`]).

use crate::{spread::Range, units::num, Crossover, Report, TransportResult};

/// How the swept value is interpolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Rates and intervals: a factor matters, not a difference.
    Log,
    /// RTTs: a sweep starts at 0 (loopback), and delay adds.
    Linear,
}

impl Scale {
    pub fn name(self) -> &'static str {
        match self {
            Self::Log => "log",
            Self::Linear => "linear",
        }
    }

    fn map(self, x: f64) -> f64 {
        match self {
            Self::Log => x.ln(),
            Self::Linear => x,
        }
    }

    fn unmap(self, v: f64) -> f64 {
        match self {
            Self::Log => v.exp(),
            Self::Linear => v,
        }
    }

    fn usable(self, x: f64) -> bool {
        match self {
            Self::Log => x > 0.0,
            Self::Linear => x.is_finite(),
        }
    }
}

/// Where `a − b` changes sign along the common x values, interpolated on log x.
pub fn crossing(a: &[(f64, f64)], b: &[(f64, f64)]) -> Option<f64> {
    crossing_on(a, b, Scale::Log).map(|(x, _)| x)
}

/// The common x values of `a` and `b`, with both y values, in order.
fn paired<T: Copy>(a: &[(f64, T)], b: &[(f64, T)], scale: Scale) -> Vec<(f64, T, T)> {
    let mut pts: Vec<(f64, T, T)> = a
        .iter()
        .filter_map(|&(x, ya)| {
            b.iter()
                .find(|(xb, _)| (xb - x).abs() <= x.abs() * 1e-9)
                .map(|&(_, yb)| (x, ya, yb))
        })
        .filter(|(x, _, _)| scale.usable(*x))
        .collect();
    pts.sort_by(|p, q| p.0.total_cmp(&q.0));
    pts
}

/// Where `a − b` changes sign, interpolated on `scale`, with the measured x values that
/// bracket it (equal when it is a measured point).
fn crossing_on(a: &[(f64, f64)], b: &[(f64, f64)], scale: Scale) -> Option<(f64, (f64, f64))> {
    let pts: Vec<(f64, f64)> = paired(a, b, scale)
        .into_iter()
        .map(|(x, ya, yb)| (x, ya - yb))
        .collect();
    if let [(x, d)] = pts[..] {
        return (d == 0.0).then_some((x, (x, x)));
    }
    for w in pts.windows(2) {
        let ((x0, d0), (x1, d1)) = (w[0], w[1]);
        if d0 == 0.0 {
            return Some((x0, (x0, x0)));
        }
        if d0.signum() != d1.signum() && d1 != 0.0 {
            let t = d0 / (d0 - d1);
            let (m0, m1) = (scale.map(x0), scale.map(x1));
            return Some((scale.unmap(m0 + t * (m1 - m0)), (x0, x1)));
        }
        if d1 == 0.0 {
            return Some((x1, (x1, x1)));
        }
    }
    None
}

/// What the two series say, medians and ranges together.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Where the medians cross, interpolated.
    pub x: Option<f64>,
    /// The measured x values that bracket it.
    pub between: Option<(f64, f64)>,
    /// The measured x values where the two ranges overlap.
    pub overlaps: Vec<f64>,
    /// The ranges overlap at a bracketing point (or, with no crossing, anywhere).
    pub uncertain: bool,
}

/// The crossing of `a` and `b` by their medians, and whether their ranges allow it to be
/// stated beyond the spread.
pub fn analyse(a: &[(f64, Range)], b: &[(f64, Range)], scale: Scale) -> Found {
    let med =
        |s: &[(f64, Range)]| -> Vec<(f64, f64)> { s.iter().map(|&(x, r)| (x, r.median)).collect() };
    let hit = crossing_on(&med(a), &med(b), scale);
    let overlaps: Vec<f64> = paired(a, b, scale)
        .into_iter()
        .filter(|(_, ra, rb)| ra.overlaps(rb))
        .map(|(x, _, _)| x)
        .collect();
    let uncertain = match hit {
        Some((_, (x0, x1))) => overlaps.iter().any(|&x| x == x0 || x == x1),
        None => !overlaps.is_empty(),
    };
    Found {
        x: hit.map(|h| h.0),
        between: hit.map(|h| h.1),
        overlaps,
        uncertain,
    }
}

/// The phases a sweep reads: the largest client count, the last rate, the headline HTTP
/// version and TLS mode.
fn in_sweep(report: &Report, r: &TransportResult) -> bool {
    let clients = report.settings.clients.iter().copied().max().unwrap_or(0);
    let tls = report.phases.first().is_some_and(|p| p.tls);
    r.clients == clients && r.tls == tls && r.http == r.headline_http(report.primary_http())
}

/// The points of `transport` along the rate sweep, each its figure over the runs.
fn by_rate(
    report: &Report,
    transport: &str,
    f: fn(&TransportResult) -> Option<f64>,
) -> Vec<(f64, Range)> {
    let first_network = report.phases.first().map(network_name);
    let mut pts: Vec<(f64, Range)> = report
        .latest()
        .into_iter()
        .filter(|r| {
            r.transport == transport
                && in_sweep(report, r)
                && Some(network_name(r)) == first_network
        })
        .filter_map(|r| report.figure(r, f).map(|(g, _)| (r.rate, g)))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts
}

fn network_name(r: &TransportResult) -> Option<String> {
    r.network.as_ref().map(|n| n.name.clone())
}

/// The RTT a phase's network added, ms (loopback: 0).
fn rtt_ms(r: &TransportResult) -> Option<f64> {
    let n = r.network.as_ref()?;
    match n.spec {
        None => Some(0.0),
        Some(_) => n.rtt_ms,
    }
}

/// The points of `transport` along the networks of the run, by RTT, at the last rate: one per
/// RTT (the first network with it).
fn by_rtt(
    report: &Report,
    transport: &str,
    f: impl Fn(&TransportResult) -> Option<f64> + Copy,
) -> Vec<(f64, Range)> {
    let rate = report.settings.rates.last().copied().unwrap_or(0.0);
    let mut pts: Vec<(f64, Range)> = Vec::new();
    for r in report.latest() {
        if r.transport != transport || r.rate != rate || !in_sweep(report, r) {
            continue;
        }
        let Some(x) = rtt_ms(r) else { continue };
        if pts.iter().any(|p| p.0 == x) {
            continue;
        }
        if let Some((g, _)) = report.figure(r, f) {
            pts.push((x, g));
        }
    }
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts
}

/// The fewest runs any phase of the sweep had, for the sentence.
fn runs_note(report: &Report, transports: &[&str]) -> String {
    let runs = report
        .latest()
        .into_iter()
        .filter(|r| transports.contains(&r.transport.as_str()))
        .map(|r| report.runs_of(r).len())
        .min()
        .unwrap_or(0);
    if runs > 1 {
        format!("medians of {runs} runs")
    } else {
        "one run per point, so the spread is unknown".to_owned()
    }
}

fn medians(s: &[(f64, Range)]) -> Vec<(f64, f64)> {
    s.iter().map(|&(x, r)| (x, r.median)).collect()
}

fn list(xs: &[f64], unit: &str) -> String {
    xs.iter()
        .map(|x| format!("{} {unit}", num(*x)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Short polling's requests per event against long polling's, along `--rates`.
fn requests_by_rate(report: &Report) -> Option<Crossover> {
    if report.settings.rates.len() < 2 {
        return None;
    }
    let sp = by_rate(report, "short-poll", |r| r.requests_per_event);
    let lp = by_rate(report, "long-poll", |r| r.requests_per_event);
    if sp.len() < 2 || lp.len() < 2 {
        return None;
    }
    let interval = num(report.settings.poll_interval_s);
    let found = analyse(&sp, &lp, Scale::Log);
    let runs = runs_note(report, &["short-poll", "long-poll"]);
    let (lo, hi) = (
        sp.first().map_or(0.0, |p| p.0),
        sp.last().map_or(0.0, |p| p.0),
    );
    let mut sentence = match found.x {
        Some(x) => format!(
            "**Crossover, requests:** short polling every {interval} s makes fewer requests per delivered event than long polling from about {} events/s (interpolated between the measured rates, {runs}): below it most polls come back empty, above it each poll carries several events while long polling still answers about once per event.",
            num(x)
        ),
        None => {
            let fewer = sp.iter().zip(&lp).all(|(s, l)| s.1.median < l.1.median);
            format!(
                "**Crossover, requests:** between {} and {} events/s short polling every {interval} s made {} requests per event than long polling at every rate measured ({runs}): no crossover in this range.",
                num(lo),
                num(hi),
                if fewer { "fewer" } else { "more" }
            )
        }
    };
    if found.uncertain {
        sentence.push_str(&format!(
            " Uncertain: the runs' ranges overlap at {}.",
            list(&found.overlaps, "events/s")
        ));
    }
    Some(Crossover {
        name: "short_poll_requests_vs_long_poll".into(),
        x_label: "events/s".into(),
        y_label: "requests per delivered event".into(),
        x: found.x,
        series: vec![
            ("short-poll".into(), medians(&sp)),
            ("long-poll".into(), medians(&lp)),
        ],
        ranges: vec![("short-poll".into(), sp), ("long-poll".into(), lp)],
        x_scale: Scale::Log.name().into(),
        uncertain: found.uncertain,
        sentence,
    })
}

/// How many times SSE's p99 long polling's may reach before the RTT crossover is called.
pub const RTT_P99_FACTOR: f64 = 2.0;

/// Whether the run's networks differ in more than RTT (bandwidth, loss, jitter, queue): then
/// the sweep is not of RTT alone.
fn networks_differ_beyond_rtt(report: &Report) -> bool {
    let mut seen: Vec<feedlab_link::LinkSpec> = Vec::new();
    for r in &report.phases {
        let Some(n) = &r.network else { continue };
        let mut spec = match &n.spec {
            None => feedlab_link::LinkSpec::default(),
            Some(s) => match s.parse::<feedlab_link::Network>() {
                Ok(net) => net.spec().copied().unwrap_or_default(),
                Err(_) => continue,
            },
        };
        spec.rtt = std::time::Duration::ZERO;
        if !seen.contains(&spec) {
            seen.push(spec);
        }
    }
    seen.len() > 1
}

/// The RTT at which long polling's p99 exceeds twice SSE's, along the run's networks.
fn p99_by_rtt(report: &Report) -> Option<Crossover> {
    let p99_ms =
        |r: &TransportResult| (r.latency_us.count > 0).then_some(r.latency_us.p99 as f64 / 1000.0);
    let lp = by_rtt(report, "long-poll", p99_ms);
    let sse: Vec<(f64, Range)> = by_rtt(report, "sse", p99_ms)
        .into_iter()
        .map(|(x, g)| {
            (
                x,
                Range {
                    min: g.min * RTT_P99_FACTOR,
                    median: g.median * RTT_P99_FACTOR,
                    max: g.max * RTT_P99_FACTOR,
                },
            )
        })
        .collect();
    if lp.len() < 2 || sse.len() < 2 {
        return None;
    }
    let rate = report.settings.rates.last().copied().unwrap_or(0.0);
    let found = analyse(&lp, &sse, Scale::Linear);
    let runs = runs_note(report, &["long-poll", "sse"]);
    let factor = num(RTT_P99_FACTOR);
    let (lo, hi) = (
        lp.first().map_or(0.0, |p| p.0),
        lp.last().map_or(0.0, |p| p.0),
    );
    let mut sentence = match (found.x, found.between) {
        (Some(x), Some((x0, x1))) => format!(
            "**Crossover, RTT:** at {} events/s, long polling's p99 delivery latency exceeds {factor}× SSE's from about {} ms RTT (interpolated between {} and {} ms, {runs}).",
            num(rate),
            num(x),
            num(x0),
            num(x1)
        ),
        _ => {
            let above = lp.iter().zip(&sse).all(|(l, s)| l.1.median > s.1.median);
            format!(
                "**Crossover, RTT:** at {} events/s, long polling's p99 stayed {} {factor}× SSE's at every RTT from {} to {} ms ({runs}): not crossed within the sweep.",
                num(rate),
                if above { "above" } else { "within" },
                num(lo),
                num(hi)
            )
        }
    };
    if found.uncertain {
        sentence.push_str(&format!(
            " Uncertain: the runs' ranges of long polling's p99 and {factor}× SSE's overlap at {}.",
            list(&found.overlaps, "ms")
        ));
    }
    if rate > 0.0 {
        sentence.push_str(&format!(
            " Why: after each response a long poller has no request at the server until its next one has crossed the link, one RTT; an event published in that window waits up to one RTT more. With an event every {} ms, the window starts catching events once the RTT exceeds that gap, so the crossover moves with the feed's rate.",
            num(1000.0 / rate)
        ));
    }
    if networks_differ_beyond_rtt(report) {
        sentence.push_str(" The networks swept differ in more than RTT (bandwidth, loss, jitter or queue), so this is not RTT's effect alone.");
    }
    let lp_label = "long-poll p99".to_owned();
    let sse_label = format!("sse p99 × {factor}");
    Some(Crossover {
        name: "long_poll_p99_vs_sse_by_rtt".into(),
        x_label: "ms RTT".into(),
        y_label: "p99 delivery latency (ms)".into(),
        x: found.x,
        series: vec![
            (lp_label.clone(), medians(&lp)),
            (sse_label.clone(), medians(&sse)),
        ],
        ranges: vec![(lp_label, lp), (sse_label, sse)],
        x_scale: Scale::Linear.name().into(),
        uncertain: found.uncertain,
        sentence,
    })
}

/// Every crossover the run's sweeps and figures allow.
pub fn find(report: &Report) -> Vec<Crossover> {
    [
        requests_by_rate(report),
        p99_by_rtt(report),
        crate::cost::crossover(report),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(min: f64, median: f64, max: f64) -> Range {
        Range { min, median, max }
    }

    #[test]
    fn interpolates_the_change_of_sign_on_log_x() {
        // short polling every 1 s: 1/rate requests per event; long polling: 1.
        let sp: Vec<(f64, f64)> = [0.25, 0.5, 2.0, 4.0]
            .iter()
            .map(|&r| (r, 1.0 / r))
            .collect();
        let lp: Vec<(f64, f64)> = sp.iter().map(|&(r, _)| (r, 1.0)).collect();
        let x = crossing(&sp, &lp).unwrap();
        // Between the two measured rates that bracket it (the true crossing, 1, is not a
        // measured point; the interpolation is linear in y over log x).
        assert!(x > 0.5 && x < 2.0, "{x}");
        // Linear in log x: exact. y = ln x against 0 crosses at x = 1.
        let a = [(0.5, 0.5f64.ln()), (2.0, 2f64.ln())];
        let b = [(0.5, 0.0), (2.0, 0.0)];
        assert!((crossing(&a, &b).unwrap() - 1.0).abs() < 1e-9);
        // No change of sign: none.
        let hi: Vec<(f64, f64)> = sp.iter().map(|&(r, _)| (r, 10.0)).collect();
        assert_eq!(crossing(&sp, &hi), None);
        // Exactly equal at a measured point.
        assert_eq!(
            crossing(&[(1.0, 2.0), (2.0, 3.0)], &[(1.0, 2.0), (2.0, 1.0)]),
            Some(1.0)
        );
    }

    #[test]
    fn interpolates_linearly_from_zero_rtt() {
        // Long polling's p99 10, 30, 90 ms at 0, 50, 100 ms RTT against 2 × SSE's 20, 40, 60:
        // below at 50, above at 100; linear: −10 → +30 crosses a quarter of the way, 62.5 ms.
        let lp = [
            (0.0, r(9.0, 10.0, 11.0)),
            (50.0, r(29.0, 30.0, 31.0)),
            (100.0, r(85.0, 90.0, 95.0)),
        ];
        let sse = [
            (0.0, r(19.0, 20.0, 21.0)),
            (50.0, r(39.0, 40.0, 41.0)),
            (100.0, r(58.0, 60.0, 62.0)),
        ];
        let f = analyse(&lp, &sse, Scale::Linear);
        assert!((f.x.unwrap() - 62.5).abs() < 1e-9, "{f:?}");
        assert_eq!(f.between, Some((50.0, 100.0)));
        assert!(!f.uncertain, "{f:?}");
        // The 0 ms point is usable on a linear scale, not on a log one.
        assert_eq!(paired(&lp, &sse, Scale::Log).len(), 2);
        assert_eq!(paired(&lp, &sse, Scale::Linear).len(), 3);
    }

    #[test]
    fn overlapping_ranges_at_the_crossing_make_it_uncertain() {
        let lp = [(10.0, r(5.0, 10.0, 30.0)), (100.0, r(80.0, 90.0, 95.0))];
        let sse = [(10.0, r(15.0, 20.0, 25.0)), (100.0, r(50.0, 60.0, 70.0))];
        let f = analyse(&lp, &sse, Scale::Linear);
        assert!(f.x.is_some());
        assert!(f.uncertain && f.overlaps == [10.0], "{f:?}");
    }

    #[test]
    fn no_crossing_is_stated_and_is_uncertain_only_when_ranges_touch() {
        let lp = [(10.0, r(9.0, 10.0, 11.0)), (100.0, r(40.0, 41.0, 42.0))];
        let sse = [(10.0, r(19.0, 20.0, 21.0)), (100.0, r(50.0, 60.0, 70.0))];
        let f = analyse(&lp, &sse, Scale::Linear);
        assert_eq!((f.x, f.uncertain), (None, false), "{f:?}");
        let near = [(10.0, r(9.0, 10.0, 11.0)), (100.0, r(40.0, 41.0, 55.0))];
        let f = analyse(&near, &sse, Scale::Linear);
        assert_eq!((f.x, f.uncertain), (None, true), "{f:?}");
    }
}
