//! Latency, publish to receipt: the table, the ranked sentences (median and tail, and when short
//! polling's interval is what its latency is made of) and the CDF chart.

use plotters::prelude::*;

use crate::{
    model::histogram::decode_histogram,
    svg::{color, err, is_variant, Chart, LEGEND_WIDTH, SIZE},
    tables::{shown, Table},
    units::{int, us},
    words::{ranked, secs},
    Report, TransportResult,
};

pub fn table(report: &Report) -> Table {
    let rows: Vec<&TransportResult> = shown(report)
        .into_iter()
        .map(|r| report.median_run(r))
        .collect();
    let runs = rows
        .iter()
        .map(|r| report.runs_of(r).len())
        .max()
        .unwrap_or(1);
    let which = if runs > 1 {
        format!(" Each row is the run with the median p99 of its {runs} runs.")
    } else {
        " Each phase ran once.".to_owned()
    };
    let empty = !rows.is_empty() && rows.iter().all(|r| r.latency_us.count == 0);
    let why_empty = if empty && report.settings.send_rate > 0.0 {
        " No samples: loadgen published nothing (`--rate 0`), every message came from a client; the latency from a client's send to the others' receipt is under Talking back."
    } else if empty {
        " No samples: no event was delivered."
    } else {
        ""
    };
    let mut t = Table::new(
        "Latency, publish to receipt",
        &format!("loadgen's clock at the publish request (in the event's data) to its clock at receipt; HdrHistogram, µs resolution.{which}{why_empty}"),
        &["transport", "samples", "p50", "p90", "p99", "p99.9", "max", "mean", "server ts → receipt p50"],
    );
    let primary = report.primary_http();
    for r in rows {
        let l = &r.latency_us;
        if l.count == 0 {
            let mut row = vec![r.label(primary), "0".into()];
            row.extend(std::iter::repeat_n("–".to_owned(), 7));
            t.rows.push(row);
            continue;
        }
        t.rows.push(vec![
            r.label(primary),
            int(l.count),
            us(l.p50),
            us(l.p90),
            us(l.p99),
            us(l.p999),
            us(l.max),
            us(l.mean.round() as u64),
            r.server_latency_us
                .filter(|q| q.count > 0)
                .map_or_else(|| "–".into(), |q| us(q.p50)),
        ]);
    }
    t
}

/// The median and the tail ranked, then whether short polling's interval is what its latency
/// is made of.
pub fn sentences(report: &Report, poll_interval_s: f64) -> Vec<String> {
    let mut out = Vec::new();
    let rows: Vec<&TransportResult> = report.headline();
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
    out
}

/// The CDF of each cell's run with the median p99 (a CDF cannot be a median of runs), when any
/// run has samples.
pub fn chart(report: &Report) -> anyhow::Result<Option<Chart>> {
    let primary = report.primary_http().to_owned();
    let median_runs: Vec<&TransportResult> =
        shown(report).iter().map(|r| report.median_run(r)).collect();
    if median_runs.iter().any(|r| r.latency_us.count > 0) {
        return latency_cdf(&median_runs, &primary).map(Some);
    }
    Ok(None)
}

fn latency_cdf(rows: &[&TransportResult], primary: &str) -> anyhow::Result<Chart> {
    let mut series = Vec::new();
    let (mut lo, mut hi) = (f64::MAX, 0f64);
    for r in rows {
        let Ok(h) = decode_histogram(&r.histograms.latency_us) else {
            continue;
        };
        if h.is_empty() {
            continue;
        }
        let total = h.len() as f64;
        let mut seen = 0u64;
        let mut points = Vec::new();
        for v in h.iter_recorded() {
            seen += v.count_since_last_iteration();
            let ms = v.value_iterated_to() as f64 / 1000.0;
            points.push((ms.max(0.001), seen as f64 / total * 100.0));
        }
        if let (Some(first), Some(last)) = (points.first(), points.last()) {
            lo = lo.min(first.0);
            hi = hi.max(last.0);
            points.insert(0, (first.0, 0.0));
        }
        series.push((r.label(primary), points));
    }
    if series.is_empty() {
        lo = 0.01;
        hi = 1.0;
    }
    let (lo, hi) = ((lo / 1.5).max(0.001), (hi * 1.5).max(lo * 10.0));
    // Variants first, headline transports last: on top, where nothing covers them.
    series.sort_by_key(|(label, _)| !is_variant(label));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        // The legend gets its own column beside the plot, so it cannot cover a curve.
        let (plot, legend) = root.split_horizontally(SIZE.0 - LEGEND_WIDTH);
        let mut chart = ChartBuilder::on(&plot)
            .caption(
                "Delivery latency, publish to receipt (CDF)",
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d((lo..hi).log_scale(), 0f64..100f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("latency (ms, log scale)")
            .y_desc("% of events delivered within")
            .draw()
            .map_err(err)?;
        for (label, points) in &series {
            let c = color(label);
            if is_variant(label) {
                chart
                    .draw_series(DashedLineSeries::new(
                        points.iter().copied(),
                        6,
                        4,
                        c.stroke_width(2),
                    ))
                    .map_err(err)?;
            } else {
                chart
                    .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(3)))
                    .map_err(err)?;
            }
        }
        // Legend in the standard order (headline transports first), one line per series.
        let mut order: Vec<&(String, Vec<(f64, f64)>)> = series.iter().collect();
        order.sort_by_key(|(label, _)| is_variant(label));
        for (i, (label, _)) in order.iter().enumerate() {
            let y = 60 + 24 * i as i32;
            let c = color(label);
            let style = c.stroke_width(if is_variant(label) { 2 } else { 3 });
            if is_variant(label) {
                for x in [8, 20] {
                    legend
                        .draw(&PathElement::new(vec![(x, y), (x + 8, y)], style))
                        .map_err(err)?;
                }
            } else {
                legend
                    .draw(&PathElement::new(vec![(8, y), (28, y)], style))
                    .map_err(err)?;
            }
            legend
                .draw(&Text::new(
                    label.clone(),
                    (34, y - 7),
                    ("sans-serif", 13).into_font().color(&BLACK),
                ))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(Chart {
        file: "latency_cdf.svg".into(),
        title: "Delivery latency, publish to receipt (CDF)".into(),
        svg,
    })
}
