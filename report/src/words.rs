//! How the conclusions word one figure against another (`+35%`, `12×`, medians with their
//! ranges, "a tie") and how a figure is ranked across the transports ([`ranked`]): shared by
//! every section's sentences, so a comparison reads the same wherever it is made.

use feedlab_cost::rank::{self, Comparison};

use crate::{
    spread::{self, Range},
    units::{num, us},
    Report, TransportResult,
};

pub fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// The phase of `transport` over `http` with or without TLS in the headline's cell (same
/// clients, rate and network) that delivered something.
pub fn find<'a>(
    report: &'a Report,
    transport: &str,
    http: &str,
    tls: bool,
) -> Option<&'a TransportResult> {
    crate::tables::shown(report).into_iter().find(|r| {
        r.transport == transport && r.http == http && r.tls == tls && r.events_received > 0
    })
}

/// `a`'s figure against `b`'s, medians over their runs (ranges in brackets): the change is
/// given only when the ranking rule separates them (beyond the practical threshold, and a rank
/// test over the runs tells it from noise); otherwise it says which kind of tie, and with one
/// run the change is flagged as of unknown spread.
pub fn versus(
    report: &Report,
    a: &TransportResult,
    b: &TransportResult,
    f: impl Fn(&TransportResult) -> Option<f64> + Copy,
    fmt: &dyn Fn(f64) -> String,
    rel: &dyn Fn(f64, f64) -> String,
) -> Option<String> {
    let (ga, na) = report.figure(a, f)?;
    let (gb, nb) = report.figure(b, f)?;
    let runs =
        |r: &TransportResult| -> Vec<f64> { report.runs_of(r).into_iter().filter_map(f).collect() };
    let verdict = if na.min(nb) < 2 {
        format!("{}, one run: spread unknown", rel(ga.median, gb.median))
    } else {
        match rank::compare(&runs(a), &runs(b), report.rule()) {
            Comparison::TieThreshold { .. } => {
                format!("a tie: within {:.0}%", report.rule().threshold * 100.0)
            }
            Comparison::TieNoise { p, .. } => {
                format!("a tie: the runs cannot tell it from noise, p = {p:.2}")
            }
            Comparison::Better { p, .. } | Comparison::Worse { p, .. } => match p {
                Some(p) => format!("{}, p = {p:.3}", rel(ga.median, gb.median)),
                None => rel(ga.median, gb.median),
            },
        }
    };
    Some(format!(
        "{} against {} ({verdict})",
        ga.show(na as usize, fmt),
        gb.show(nb as usize, fmt)
    ))
}

pub fn p50(r: &TransportResult) -> Option<f64> {
    (r.latency_us.count > 0).then_some(r.latency_us.p50 as f64)
}

pub fn lat(v: f64) -> String {
    us(v.round() as u64)
}

pub fn cpu_ms(v: f64) -> String {
    format!("{} ms", num(v))
}

pub fn cpu(r: &TransportResult) -> Option<f64> {
    r.server_cpu_us_per_event.filter(|_| !r.server_cost_shared)
}

/// `12×`, or `1.3×`.
pub fn times(a: f64, b: f64) -> String {
    if b <= 0.0 {
        return "far more than".into();
    }
    let r = a / b;
    if r >= 10.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.1}×")
    }
}

/// `+35%` / `−12%` of `a` over `b`.
pub fn change(a: f64, b: f64) -> String {
    if b <= 0.0 {
        return "n/a".into();
    }
    let pct = (a - b) / b * 100.0;
    if pct.abs() < 0.5 {
        "the same".into()
    } else if pct >= 0.0 {
        format!("+{pct:.0}%")
    } else {
        format!("−{:.0}%", -pct)
    }
}

pub fn secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{} s", num(s))
    } else {
        format!("{:.0} ms", s * 1000.0)
    }
}

pub fn dedup<'a>(v: &[&'a str]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for s in v {
        if !out.contains(s) {
            out.push(s);
        }
    }
    out
}

/// One figure across the rows, ranked by the report's rule ([`spread::tiers`]): `≈` joins rows
/// it cannot tell apart (a difference under the practical threshold, or one the rank test over
/// the runs cannot tell from noise), `<` separates tiers; a figure measured once, or one row
/// alone, is stated and not ranked.
pub fn ranked(
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
