//! Crossovers: where, along a sweep, one transport's cost overtakes another's. A ranking at one
//! workload says nothing about the next; the point where the order flips is what a reader can
//! carry to their own numbers. Found from the measured points (the median over the runs where
//! phases repeated) by linear interpolation between the two points that bracket the change of
//! sign, on a log scale of the swept quantity, and stated with the points it came from.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{tables::num, Report, TransportResult};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Crossover {
    /// `short_poll_requests_vs_long_poll`, …: also the chart's file name.
    pub name: String,
    /// What is swept (`events/s`).
    pub x_label: String,
    /// What is compared (`requests per delivered event`).
    pub y_label: String,
    /// The swept value where the order flips, interpolated; null when it does not flip inside
    /// the measured range.
    pub x: Option<f64>,
    /// The measured points of both series: (label, [(x, y)]).
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    /// The finding, as a sentence.
    pub sentence: String,
}

/// Where `a − b` changes sign along the common x values, interpolated on log x.
pub fn crossing(a: &[(f64, f64)], b: &[(f64, f64)]) -> Option<f64> {
    let mut pts: Vec<(f64, f64)> = a
        .iter()
        .filter_map(|&(x, ya)| {
            b.iter()
                .find(|(xb, _)| (xb - x).abs() <= x.abs() * 1e-9)
                .map(|&(_, yb)| (x, ya - yb))
        })
        .filter(|(x, _)| *x > 0.0)
        .collect();
    pts.sort_by(|p, q| p.0.total_cmp(&q.0));
    for w in pts.windows(2) {
        let ((x0, d0), (x1, d1)) = (w[0], w[1]);
        if d0 == 0.0 {
            return Some(x0);
        }
        if d0.signum() != d1.signum() && d1 != 0.0 {
            let t = d0 / (d0 - d1);
            return Some((x0.ln() + t * (x1.ln() - x0.ln())).exp());
        }
        if d1 == 0.0 {
            return Some(x1);
        }
    }
    None
}

/// The points of `transport` along the rate sweep, at the largest client count, on the
/// headline HTTP version and TLS mode.
fn by_rate(
    report: &Report,
    transport: &str,
    f: fn(&TransportResult) -> Option<f64>,
) -> Vec<(f64, f64)> {
    let primary = report.primary_http();
    let clients = report.settings.clients.iter().copied().max().unwrap_or(0);
    let tls = report.phases.first().is_some_and(|p| p.tls);
    let mut pts: Vec<(f64, f64)> = report
        .latest()
        .into_iter()
        .filter(|r| {
            r.transport == transport
                && r.clients == clients
                && r.tls == tls
                && r.http == r.headline_http(primary)
        })
        .filter_map(|r| {
            let y = match &r.spread {
                Some(_) => {
                    let v: Vec<f64> = report.runs_of(r).iter().filter_map(|x| f(x)).collect();
                    super::spread::Range::of(&v).map(|g| g.median)
                }
                None => f(r),
            };
            y.map(|y| (r.rate, y))
        })
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts
}

/// Every crossover the run's sweeps allow.
pub fn find(report: &Report) -> Vec<Crossover> {
    let mut out = Vec::new();
    if report.settings.rates.len() > 1 {
        let sp = by_rate(report, "short-poll", |r| r.requests_per_event);
        let lp = by_rate(report, "long-poll", |r| r.requests_per_event);
        if sp.len() > 1 && lp.len() > 1 {
            let interval = num(report.settings.poll_interval_s);
            let x = crossing(&sp, &lp);
            let (lo, hi) = (
                sp.first().map_or(0.0, |p| p.0),
                sp.last().map_or(0.0, |p| p.0),
            );
            let sentence = match x {
                Some(x) => format!(
                    "**Crossover, requests:** short polling every {interval} s makes fewer requests per delivered event than long polling from about {} events/s (interpolated between the measured rates): below it most polls come back empty, above it each poll carries several events while long polling still answers about once per event.",
                    num(x)
                ),
                None => {
                    let fewer = sp.iter().zip(&lp).all(|(s, l)| s.1 < l.1);
                    format!(
                        "**Crossover, requests:** between {} and {} events/s short polling every {interval} s made {} requests per event than long polling at every rate measured: no crossover in this range.",
                        num(lo),
                        num(hi),
                        if fewer { "fewer" } else { "more" }
                    )
                }
            };
            out.push(Crossover {
                name: "short_poll_requests_vs_long_poll".into(),
                x_label: "events/s".into(),
                y_label: "requests per delivered event".into(),
                x,
                series: vec![("short-poll".into(), sp), ("long-poll".into(), lp)],
                sentence,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
