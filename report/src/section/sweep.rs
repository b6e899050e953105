//! A sweep (several rates, client counts or networks): each cost against the swept value, the
//! crossovers with their charts, and the crossovers' sentences.

use plotters::prelude::*;

use crate::{
    svg::{color, err, Chart, Metric, SIZE},
    Report, TransportResult,
};

/// Each crossover's sentence, as [`crate::crossover`] wrote it.
pub fn sentences(report: &Report) -> Vec<String> {
    report
        .crossovers
        .iter()
        .map(|c| c.sentence.clone())
        .collect()
}

/// The sweep's charts, then one per crossover.
pub fn charts(report: &Report) -> anyhow::Result<Vec<Chart>> {
    let mut charts = sweeps(report)?;
    for c in &report.crossovers {
        charts.push(crossover_chart(c)?);
    }
    Ok(charts)
}

/// With a sweep: each cost against the rate (at the largest client count) and against the
/// client count (at the largest rate).
fn sweeps(report: &Report) -> anyhow::Result<Vec<Chart>> {
    let primary = report.primary_http().to_owned();
    let metrics: [(&str, &str, Metric); 4] = [
        ("latency_p50", "median latency (ms)", |r| {
            (r.latency_us.count > 0).then(|| r.latency_us.p50 as f64 / 1000.0)
        }),
        ("bytes_per_event", "bytes per delivered event", |r| {
            r.bytes_per_event
        }),
        ("requests_per_event", "requests per delivered event", |r| {
            r.requests_per_event
        }),
        (
            "server_cpu_per_1000_events",
            "server CPU per 1000 events (ms)",
            |r| r.server_cpu_us_per_event,
        ),
    ];
    let mut charts = Vec::new();
    let rates = &report.settings.rates;
    let clients = &report.settings.clients;
    let max_rate = rates.iter().copied().fold(0f64, f64::max);
    let max_clients = clients.iter().copied().max().unwrap_or(0);
    for (key, desc, f) in metrics {
        if rates.len() > 1 {
            let pts = |r: &TransportResult| (r.clients == max_clients).then_some(r.rate);
            if let Some(c) = line_chart(
                report,
                &primary,
                &format!("sweep_{key}_vs_rate.svg"),
                &format!("{desc} against publish rate ({max_clients} clients)"),
                "events/s",
                desc,
                pts,
                f,
            )? {
                charts.push(c);
            }
        }
        if clients.len() > 1 {
            let pts = |r: &TransportResult| (r.rate == max_rate).then_some(r.clients as f64);
            if let Some(c) = line_chart(
                report,
                &primary,
                &format!("sweep_{key}_vs_clients.svg"),
                &format!(
                    "{desc} against clients per transport ({} events/s)",
                    crate::units::num(max_rate)
                ),
                "clients",
                desc,
                pts,
                f,
            )? {
                charts.push(c);
            }
        }
    }
    Ok(charts)
}

#[allow(clippy::too_many_arguments)]
fn line_chart(
    report: &Report,
    primary: &str,
    file: &str,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    x_of: impl Fn(&TransportResult) -> Option<f64>,
    y_of: Metric,
) -> anyhow::Result<Option<Chart>> {
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in report.latest() {
        let (Some(x), Some(y)) = (x_of(r), y_of(r)) else {
            continue;
        };
        let label = r.label(primary);
        match series.iter_mut().find(|s| s.0 == label) {
            Some(s) => s.1.push((x, y)),
            None => series.push((label, vec![(x, y)])),
        }
    }
    for s in &mut series {
        s.1.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    if series.iter().all(|s| s.1.len() < 2) {
        return Ok(None);
    }
    let xs = series.iter().flat_map(|s| s.1.iter().map(|p| p.0));
    let (x_lo, x_hi) = xs.fold((f64::MAX, 0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let y_hi = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .fold(0f64, f64::max)
        .max(1e-9);
    let x_lo = (x_lo / 1.3).max(1e-3);
    let x_hi = x_hi * 1.3;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d((x_lo..x_hi).log_scale(), 0f64..y_hi * 1.15)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(format!("{x_desc} (log scale)"))
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        for (label, points) in series {
            let c = color(&label);
            chart
                .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            chart
                .draw_series(points.into_iter().map(|p| Circle::new(p, 4, c.filled())))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(Some(Chart {
        file: file.into(),
        title: title.into(),
        svg,
    }))
}

/// A crossover: both series with their measured points (each point's range over the runs as
/// an error bar), and the interpolated crossing marked; the swept value on the crossover's
/// scale (log, or linear for an RTT sweep that starts at 0).
fn crossover_chart(c: &crate::Crossover) -> anyhow::Result<Chart> {
    let file = format!("crossover_{}.svg", c.name);
    let title = match c.x {
        Some(x) => format!(
            "{}: crossover at {} {}{}",
            c.y_label,
            crate::units::num(x),
            c.x_label,
            if c.uncertain { " (uncertain)" } else { "" }
        ),
        None => format!("{}: no crossover in the measured range", c.y_label),
    };
    // Each series with its ranges (a report written before ranges were kept: points alone).
    let series: Vec<(String, Vec<(f64, crate::spread::Range)>)> = if c.ranges.is_empty() {
        c.series
            .iter()
            .map(|(l, pts)| {
                let pts = pts
                    .iter()
                    .map(|&(x, y)| (x, crate::spread::Range::point(y)))
                    .collect();
                (l.clone(), pts)
            })
            .collect()
    } else {
        c.ranges.clone()
    };
    let pts = series.iter().flat_map(|s| s.1.iter());
    let (x_lo, x_hi, y_hi) = pts.fold((f64::MAX, f64::MIN, 0f64), |(lo, hi, y), p| {
        (lo.min(p.0), hi.max(p.0), y.max(p.1.max))
    });
    let y_hi = y_hi.max(1e-9) * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        if c.x_scale == "linear" {
            let pad = ((x_hi - x_lo) * 0.08).max(1.0);
            let range = (x_lo - pad).max(0.0)..(x_hi + pad);
            draw_crossover(&root, c, &series, &title, "", range, y_hi)?;
        } else {
            let range = ((x_lo / 1.3).max(1e-3)..(x_hi * 1.3).max(1e-2)).log_scale();
            draw_crossover(&root, c, &series, &title, " (log scale)", range, y_hi)?;
        }
        root.present().map_err(err)?;
    }
    Ok(Chart { file, title, svg })
}

fn draw_crossover<X>(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    c: &crate::Crossover,
    series: &[(String, Vec<(f64, crate::spread::Range)>)],
    title: &str,
    scale_note: &str,
    x_range: X,
    y_hi: f64,
) -> anyhow::Result<()>
where
    X: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    X::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range, 0f64..y_hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(format!("{}{scale_note}", c.x_label))
        .y_desc(&c.y_label)
        .draw()
        .map_err(err)?;
    for (label, points) in series {
        // A series named after a transport ("sse p99 × 2") takes its colour.
        let col = color(label.split(' ').next().unwrap_or(label));
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|&(x, r)| (x, r.median)),
                col.stroke_width(2),
            ))
            .map_err(err)?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2)));
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(x, r)| Circle::new((x, r.median), 4, col.filled())),
            )
            .map_err(err)?;
        chart
            .draw_series(points.iter().filter(|(_, r)| r.max > r.min).map(|&(x, r)| {
                ErrorBar::new_vertical(x, r.min, r.median, r.max, col.stroke_width(1), 8)
            }))
            .map_err(err)?;
    }
    if let Some(x) = c.x {
        chart
            .draw_series(DashedLineSeries::new(
                [(x, 0.0), (x, y_hi)],
                6,
                4,
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{} {}", crate::units::num(x), c.x_label),
                (x, y_hi * 0.95),
                ("sans-serif", 13),
            )))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}
