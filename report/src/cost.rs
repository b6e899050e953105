//! Memory against CPU, in money: a push connection (SSE, WebSocket) holds server memory for as
//! long as its client is there, and uses CPU for each event it carries; short polling holds
//! (almost) nothing between polls and pays CPU for every poll, event or none. The two meet in
//! one unit only with prices, so the model takes a price per vCPU-hour and per GiB-hour
//! (`--price-vcpu-hour`, `--price-gib-hour`, defaults from AWS Fargate's public price list)
//! and puts both in USD per client-hour, from one run's measured figures:
//!
//! - short polling every `I` s: `3600 / I` polls an hour × the server CPU one poll took
//!   (its phase's server CPU / its requests), plus its connection's memory when measured;
//! - a push connection: its memory (the server's RSS growth over the phase / connections, only
//!   from [`MIN_CONNECTIONS_FOR_RSS`] connections) held for the hour, plus the server CPU it used
//!   per client-hour at the run's event rate.
//!
//! Short polling's cost falls as `1 / I`; the push connection's does not depend on `I`; they
//! meet at one poll interval, `I* = CPU per poll × price / (push cost − polling's memory cost)`.
//! Clients cancel out: both costs are per client, so `I*` holds for any audience (the server's
//! fixed memory, outside the per-connection growth, is in neither). Ranges over the runs give
//! the interval's bounds; when the run's own poll interval lies inside them, the runs cannot
//! tell which was cheaper at the interval measured, and the sentence says the crossing is
//! uncertain.

pub use crate::model::prices::{
    default_gib_hour, default_vcpu_hour, FARGATE_GIB_HOUR_USD, FARGATE_VCPU_HOUR_USD,
    MAX_PRICE_PER_HOUR,
};
use crate::{
    spread::{Range, CPU_RESOLUTION_S},
    units::{bytes, num, us},
    Crossover, Report, TransportResult, MIN_CONNECTIONS_FOR_RSS,
};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The unit costs are shown in: USD per million client-hours (a client-hour costs millionths).
const PER: f64 = 1e6;

/// The prices the figures are put in money with, USD per hour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    pub vcpu_hour: f64,
    pub gib_hour: f64,
}

/// The measured figures the model needs, each over the runs of its phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    /// Server CPU per short poll, s.
    pub poll_cpu_s: Range,
    /// Server memory a short poller's connection holds, bytes (zero when not measured).
    pub poll_memory_bytes: Range,
    /// Server memory a push connection holds, bytes.
    pub push_memory_bytes: Range,
    /// Server CPU a push connection uses per client-hour at the run's event rate, s.
    pub push_cpu_s_per_client_hour: Range,
}

/// Where the costs meet.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakEven {
    /// The poll interval at which short polling costs what the push connection costs, s (by
    /// the medians); `None` when one is cheaper at every interval.
    pub interval_s: Option<f64>,
    /// The interval's bounds over the runs' ranges, s (the upper one infinite when the push
    /// connection may cost no more than polling's memory).
    pub bounds: Option<(f64, f64)>,
    /// The run's own poll interval lies within the bounds: the runs cannot tell which was
    /// cheaper there.
    pub uncertain: bool,
}

impl Figures {
    /// Short polling every `interval_s`, USD per client-hour, with the figures at `pick`
    /// (min, median or max of each range).
    fn poll_cost(&self, p: Prices, interval_s: f64, pick: fn(&Range) -> f64) -> f64 {
        pick(&self.poll_cpu_s) * p.vcpu_hour / interval_s
            + pick(&self.poll_memory_bytes) / GIB * p.gib_hour
    }

    /// Holding one push connection for an hour, USD.
    fn push_cost(&self, p: Prices, pick: fn(&Range) -> f64) -> f64 {
        pick(&self.push_memory_bytes) / GIB * p.gib_hour
            + pick(&self.push_cpu_s_per_client_hour) / 3600.0 * p.vcpu_hour
    }

    /// The poll interval where both cost the same, and how sure the runs make it.
    pub fn break_even(&self, p: Prices, run_interval_s: f64) -> BreakEven {
        // cpu × price / I + poll memory = push  ⇒  I = cpu × price / (push − poll memory).
        let at = |cpu: f64, push: f64, poll_mem: f64| {
            let margin = push - poll_mem / GIB * p.gib_hour;
            if cpu <= 0.0 {
                None
            } else if margin <= 0.0 {
                Some(f64::INFINITY)
            } else {
                Some(cpu * p.vcpu_hour / margin)
            }
        };
        let median = at(
            self.poll_cpu_s.median,
            self.push_cost(p, |r| r.median),
            self.poll_memory_bytes.median,
        )
        .filter(|x| x.is_finite());
        // Earliest: polls cheapest, push dearest; latest: the other way round.
        let lo = at(
            self.poll_cpu_s.min,
            self.push_cost(p, |r| r.max),
            self.poll_memory_bytes.min,
        );
        let hi = at(
            self.poll_cpu_s.max,
            self.push_cost(p, |r| r.min),
            self.poll_memory_bytes.max,
        );
        let bounds = match (lo, hi) {
            (Some(lo), Some(hi)) => Some((lo.min(hi), hi.max(lo))),
            (None, Some(hi)) => Some((0.0, hi)),
            _ => None,
        };
        let uncertain = match bounds {
            Some((lo, hi)) => (lo..=hi).contains(&run_interval_s) && lo < hi,
            None => false,
        };
        BreakEven {
            interval_s: median,
            bounds,
            uncertain,
        }
    }
}

/// A phase's figure over its runs, or why it is missing.
fn over_runs(
    report: &Report,
    r: &TransportResult,
    what: &str,
    f: impl Fn(&TransportResult) -> Option<f64>,
) -> Result<Range, String> {
    report
        .figure(r, f)
        .map(|(g, _)| g)
        .ok_or_else(|| format!("{} did not measure {what} in every run", r.transport))
}

/// Server CPU in a run, s, when it is fine enough to divide.
fn cpu_s(r: &TransportResult) -> Option<f64> {
    r.server_cpu_s
        .filter(|&s| !r.server_cost_shared && s >= CPU_RESOLUTION_S)
}

fn push_figures(report: &Report, r: &TransportResult) -> Result<(Range, Range), String> {
    let memory = over_runs(
        report,
        r,
        &format!(
            "server memory per connection (it needs at least {} connections)",
            int(MIN_CONNECTIONS_FOR_RSS)
        ),
        |x| x.server_rss_per_connection_bytes,
    )?;
    let cpu = over_runs(
        report,
        r,
        &format!("server CPU above {} ms", num(CPU_RESOLUTION_S * 1000.0)),
        |x| {
            let hours = (x.publish_s + x.drain_s) / 3600.0;
            (hours > 0.0).then_some(cpu_s(x)? / (f64::from(x.clients) * hours))
        },
    )?;
    Ok((memory, cpu))
}

fn int(v: f64) -> String {
    crate::units::int(v as u64)
}

/// The crossover, or why the run cannot give it; `None` when the run had no short polling or
/// no push transport, so there is nothing to compare.
pub fn assess(report: &Report) -> Option<Result<Crossover, String>> {
    let sp = report.transports.get("short-poll")?;
    let pushes: Vec<&TransportResult> = ["sse", "ws"]
        .iter()
        .filter_map(|t| report.transports.get(*t))
        .collect();
    if pushes.is_empty() {
        return None;
    }
    Some(build(report, sp, &pushes))
}

fn build(
    report: &Report,
    sp: &TransportResult,
    pushes: &[&TransportResult],
) -> Result<Crossover, String> {
    if sp.server_cost_shared {
        return Err("the transports ran together (`--concurrent`), so the server's CPU and memory cannot be split between them".into());
    }
    let prices = Prices {
        vcpu_hour: report.settings.price_vcpu_hour,
        gib_hour: report.settings.price_gib_hour,
    };
    let poll_cpu_s = over_runs(
        report,
        sp,
        &format!("server CPU above {} ms", num(CPU_RESOLUTION_S * 1000.0)),
        |x| (x.http_requests > 0).then_some(cpu_s(x)? / x.http_requests as f64),
    )?;
    let poll_memory = report.figure(sp, |x| x.server_rss_per_connection_bytes);
    let mut candidates = Vec::new();
    let mut missing = Vec::new();
    for &p in pushes {
        match push_figures(report, p) {
            Ok((memory, cpu)) => candidates.push((p, memory, cpu)),
            Err(e) => missing.push(e),
        }
    }
    let figures = |memory: Range, cpu: Range| Figures {
        poll_cpu_s,
        poll_memory_bytes: poll_memory.map_or(Range::point(0.0), |(g, _)| g),
        push_memory_bytes: memory,
        push_cpu_s_per_client_hour: cpu,
    };
    // The cheapest push connection is the one polling has to beat.
    let Some(&(push, memory, cpu)) = candidates.iter().min_by(|a, b| {
        let c = |x: &(&TransportResult, Range, Range)| {
            figures(x.1, x.2).push_cost(prices, |r| r.median)
        };
        c(a).total_cmp(&c(b))
    }) else {
        return Err(missing.join("; "));
    };
    let fig = figures(memory, cpu);
    let interval = report.settings.poll_interval_s;
    let found = fig.break_even(prices, interval);
    let rate = sp.rate;
    let push_cost = fig.push_cost(prices, |r| r.median) * PER;
    let poll_cost = fig.poll_cost(prices, interval, |r| r.median) * PER;
    let name = match push.transport.as_str() {
        "sse" => "an SSE",
        _ => "a WebSocket",
    };
    // Prices as given: they are what a reader compares with their own bill.
    let priced = format!(
        "priced at ${} per vCPU-hour and ${} per GiB-hour (`--price-vcpu-hour`, `--price-gib-hour`; the defaults are AWS Fargate's, Linux/x86, US East)",
        prices.vcpu_hour, prices.gib_hour
    );
    let measured = format!(
        "a short poll took {} of server CPU; {name} connection held {} and used {} s of server CPU per client-hour at {} events/s{} — so polling every {} s costs ${} per million client-hours, {name} connection ${}",
        us((fig.poll_cpu_s.median * 1e6).round() as u64),
        bytes(fig.push_memory_bytes.median),
        num(fig.push_cpu_s_per_client_hour.median),
        num(rate),
        if poll_memory.is_some() {
            format!(
                ", a short poller's connection {}",
                bytes(fig.poll_memory_bytes.median)
            )
        } else {
            " (a short poller's connection memory was not measured and counts as 0)".to_owned()
        },
        num(interval),
        num(poll_cost),
        num(push_cost)
    );
    let mut sentence = match found.interval_s {
        Some(x) => format!(
            "**Crossover, memory against CPU:** short polling costs as much per client-hour as holding {name} connection when it polls every {} s, {priced}: polling more often costs more in CPU than the connection costs in memory and CPU, polling less often costs less. Measured: {measured}. Clients cancel out: both costs are per client, so the interval is the same for any number of clients (the server's fixed memory is in neither).",
            num(x)
        ),
        None => format!(
            "**Crossover, memory against CPU:** no poll interval makes short polling cost the same as {name} connection, {priced}: not crossed. Measured: {measured}."
        ),
    };
    if let Some((lo, hi)) = found.bounds {
        let hi = if hi.is_finite() {
            format!("{} s", num(hi))
        } else {
            "any longer interval".to_owned()
        };
        sentence.push_str(&format!(
            " Over the runs' ranges the crossing lies between {} s and {hi}",
            num(lo)
        ));
        if found.uncertain {
            sentence.push_str(&format!(
                "; uncertain: the run's own interval, {} s, is inside that, so the runs cannot tell which was cheaper there.",
                num(interval)
            ));
        } else {
            sentence.push('.');
        }
    }
    let xs: Vec<f64> = {
        let centre = found.interval_s.unwrap_or(interval);
        let (lo, hi) = (centre.min(interval) / 8.0, centre.max(interval) * 8.0);
        let steps = 12;
        (0..=steps)
            .map(|k| lo * (hi / lo).powf(f64::from(k) / f64::from(steps)))
            .collect()
    };
    let cost_range = |f: &dyn Fn(fn(&Range) -> f64) -> f64| Range {
        min: f(|r| r.min) * PER,
        median: f(|r| r.median) * PER,
        max: f(|r| r.max) * PER,
    };
    let sp_pts: Vec<(f64, Range)> = xs
        .iter()
        .map(|&x| (x, cost_range(&|pick| fig.poll_cost(prices, x, pick))))
        .collect();
    let push_range = cost_range(&|pick| fig.push_cost(prices, pick));
    let push_pts: Vec<(f64, Range)> = xs.iter().map(|&x| (x, push_range)).collect();
    let sp_label = "short-poll".to_owned();
    let push_label = push.transport.clone();
    let med = |v: &[(f64, Range)]| v.iter().map(|(x, r)| (*x, r.median)).collect();
    Ok(Crossover {
        name: "short_poll_cpu_vs_push_memory".into(),
        x_label: "s poll interval".into(),
        y_label: "USD per million client-hours".into(),
        x: found.interval_s,
        series: vec![
            (sp_label.clone(), med(&sp_pts)),
            (push_label.clone(), med(&push_pts)),
        ],
        ranges: vec![(sp_label, sp_pts), (push_label, push_pts)],
        x_scale: "log".into(),
        uncertain: found.uncertain,
        sentence,
    })
}

/// The crossover, when the run's figures give it.
pub fn crossover(report: &Report) -> Option<Crossover> {
    assess(report)?.ok()
}

/// Why the run gives no memory-against-CPU crossover although it measured short polling and a
/// push transport, as a sentence.
pub fn absent(report: &Report) -> Option<String> {
    let why = assess(report)?.err()?;
    Some(format!(
        "**Crossover, memory against CPU:** not computed — {why}. It needs every run of short polling and of SSE or WebSockets with at least {} connections and {} ms of server CPU, one transport at a time (e.g. `--clients 1000`).",
        int(MIN_CONNECTIONS_FOR_RSS),
        num(CPU_RESOLUTION_S * 1000.0)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(min: f64, median: f64, max: f64) -> Range {
        Range { min, median, max }
    }

    const FARGATE: Prices = Prices {
        vcpu_hour: FARGATE_VCPU_HOUR_USD,
        gib_hour: FARGATE_GIB_HOUR_USD,
    };

    fn figures(poll_cpu_us: Range, push_kib: Range) -> Figures {
        Figures {
            poll_cpu_s: r(
                poll_cpu_us.min / 1e6,
                poll_cpu_us.median / 1e6,
                poll_cpu_us.max / 1e6,
            ),
            poll_memory_bytes: Range::point(0.0),
            push_memory_bytes: r(
                push_kib.min * 1024.0,
                push_kib.median * 1024.0,
                push_kib.max * 1024.0,
            ),
            push_cpu_s_per_client_hour: Range::point(0.0),
        }
    }

    #[test]
    fn the_interval_where_poll_cpu_equals_connection_memory() {
        // 50 µs a poll against 16 KiB held: I = 50e-6 × 0.04048 / (16 KiB in GiB × 0.004445).
        let f = figures(r(49.0, 50.0, 51.0), r(15.9, 16.0, 16.1));
        let b = f.break_even(FARGATE, 1.0);
        let expected =
            50e-6 * FARGATE_VCPU_HOUR_USD / (16.0 / 1024.0 / 1024.0 * FARGATE_GIB_HOUR_USD);
        let x = b.interval_s.unwrap();
        assert!((x - expected).abs() < 1e-6 * expected, "{x} vs {expected}");
        // There, both cost the same; polling twice as often costs twice as much.
        let same = f.poll_cost(FARGATE, x, |r| r.median);
        assert!((same - f.push_cost(FARGATE, |r| r.median)).abs() < 1e-15);
        assert!(f.poll_cost(FARGATE, x / 2.0, |r| r.median) > 1.9 * same);
        // Dearer memory moves it to shorter intervals: polling beats a costlier connection
        // more often.
        let dear = Prices {
            gib_hour: FARGATE.gib_hour * 10.0,
            ..FARGATE
        };
        assert!(f.break_even(dear, 1.0).interval_s.unwrap() < x / 9.0);
        // Narrow ranges far from the run's interval (1 s): certain.
        let (lo, hi) = b.bounds.unwrap();
        assert!(lo < x && x < hi && !b.uncertain, "{b:?}");
    }

    #[test]
    fn a_free_connection_or_a_free_poll_never_crosses() {
        let free_push = figures(r(49.0, 50.0, 51.0), Range::point(0.0));
        assert_eq!(free_push.break_even(FARGATE, 1.0).interval_s, None);
        let free_poll = figures(Range::point(0.0), r(15.0, 16.0, 17.0));
        let b = free_poll.break_even(FARGATE, 1.0);
        assert_eq!((b.interval_s, b.bounds), (None, None));
    }

    #[test]
    fn a_run_without_the_figures_says_why_and_with_them_gives_the_interval() {
        // The reference run: 50 clients, too few for memory per connection.
        let mut report: Report =
            serde_json::from_str(include_str!("../../results/reference/report.json")).unwrap();
        assert_eq!(crossover(&report), None);
        let why = absent(&report).unwrap();
        assert!(
            why.contains("memory per connection") && why.contains("1,000"),
            "{why}"
        );
        // The same run with memory measured on every phase: the crossover, from the figures.
        for p in &mut report.phases {
            p.server_rss_per_connection_bytes = Some(if p.transport == "short-poll" {
                0.0
            } else {
                16.0 * 1024.0
            });
        }
        for t in report.transports.values_mut() {
            t.server_rss_per_connection_bytes = Some(if t.transport == "short-poll" {
                0.0
            } else {
                16.0 * 1024.0
            });
        }
        let c = crossover(&report).expect("figures present");
        assert!(absent(&report).is_none());
        let x = c.x.unwrap();
        assert!(
            c.sentence.contains(&format!("every {} s", num(x))),
            "{}",
            c.sentence
        );
        // Dearer memory: polling pays off against a connection at a shorter interval.
        report.settings.price_gib_hour *= 100.0;
        let dear = crossover(&report).unwrap().x.unwrap();
        assert!(dear < x, "{dear} vs {x}");
    }

    #[test]
    fn wide_ranges_around_the_run_s_interval_are_uncertain() {
        let f = figures(r(10.0, 50.0, 200.0), r(4.0, 16.0, 64.0));
        let x = f.break_even(FARGATE, 1.0).interval_s.unwrap();
        let b = f.break_even(FARGATE, x);
        assert!(b.uncertain, "{b:?}");
        let (lo, hi) = b.bounds.unwrap();
        assert!(lo < x / 10.0 && hi > x * 10.0, "{b:?}");
        // The same ranges, judged at an interval far outside them: certain.
        assert!(!f.break_even(FARGATE, hi * 10.0).uncertain);
    }
}
