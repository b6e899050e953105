//! SVG charts with plotters: the latency distribution per transport and the three costs per
//! delivered event (bytes, requests, server CPU); with a sweep, each against rate and clients.
//! Every series is labelled with its transport name, which the legend and bar labels show.

use plotters::prelude::*;

use crate::model::histogram::decode_histogram;
use crate::{spread::Range, tables, Report, TransportResult};

pub struct Chart {
    /// File name inside the report directory.
    pub file: String,
    pub title: String,
    pub svg: String,
}

const SIZE: (u32, u32) = (820, 460);

/// Width of the CDF's legend column, px.
const LEGEND_WIDTH: u32 = 200;

/// A number read from a result, when it was measured.
type Metric = fn(&TransportResult) -> Option<f64>;

/// One hue per transport; its variants (HTTP/1.0, HTTP/2, TLS) are shades of the same hue, so a
/// reader finds a transport's family at a glance and tells its members apart by shade.
fn color(label: &str) -> RGBColor {
    let base = [
        ("short-poll", RGBColor(0x1f, 0x77, 0xb4)),
        ("long-poll", RGBColor(0xff, 0x7f, 0x0e)),
        ("sse", RGBColor(0x2c, 0xa0, 0x2c)),
        ("ws", RGBColor(0xd6, 0x27, 0x28)),
    ]
    .iter()
    .find(|(name, _)| label == *name || label.starts_with(&format!("{name} ")))
    .map_or(RGBColor(0x7f, 0x7f, 0x7f), |&(_, c)| c);
    let mix = |c: RGBColor, toward: u8, share: f64| {
        let m = |v: u8| (f64::from(v) * (1.0 - share) + f64::from(toward) * share).round() as u8;
        RGBColor(m(c.0), m(c.1), m(c.2))
    };
    let mut c = base;
    if label.contains("HTTP/1.0") {
        c = mix(c, 0xff, 0.5);
    }
    if label.contains("HTTP/2") {
        c = mix(c, 0x00, 0.45);
    }
    if label.contains("TLS") {
        c = mix(c, 0x00, 0.25);
    }
    c
}

/// Whether a series is a variant (another HTTP version, TLS) rather than a headline transport:
/// drawn thinner and dashed, below the headline curves, so it never hides one.
fn is_variant(label: &str) -> bool {
    label.contains('(')
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e}")
}

/// Every chart the report has data for.
///
/// # Errors
/// When plotters fails to draw (it writes to a string, so practically never).
pub fn render_all(report: &Report) -> anyhow::Result<Vec<Chart>> {
    let rows = tables::shown(report);
    let primary = report.primary_http().to_owned();
    let mut charts = Vec::new();
    if let Some(c) = decision_chart(report)? {
        charts.push(c);
    }
    // The CDF of each cell's run with the median p99 (a CDF cannot be a median of runs).
    let median_runs: Vec<&TransportResult> = rows.iter().map(|r| report.median_run(r)).collect();
    if median_runs.iter().any(|r| r.latency_us.count > 0) {
        charts.push(latency_cdf(&median_runs, &primary)?);
    }
    let bars: [(&str, &str, &str, Metric); 3] = [
        (
            "bytes_per_event.svg",
            "Bytes on the wire per delivered event",
            "bytes",
            |r| r.bytes_per_event,
        ),
        (
            "requests_per_event.svg",
            "HTTP requests per delivered event",
            "requests",
            |r| r.requests_per_event,
        ),
        (
            "server_cpu_per_1000_events.svg",
            "Server CPU per 1000 delivered events",
            "ms",
            |r| r.server_cpu_us_per_event,
        ),
    ];
    for (file, title, unit, f) in bars {
        let values: Vec<(String, Range, u32)> = rows
            .iter()
            .filter_map(|r| report.figure(r, f).map(|(g, n)| (r.label(&primary), g, n)))
            .collect();
        if !values.is_empty() {
            charts.push(bar_chart(file, title, unit, &values)?);
        }
    }
    charts.extend(sweep_charts(report)?);
    for c in &report.crossovers {
        charts.push(crossover_chart(c)?);
    }
    Ok(charts)
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

/// The chart of what decided a scenario's answer: the deciding criterion per transport, median
/// bars with the runs' range as error bars.
fn decision_chart(report: &Report) -> anyhow::Result<Option<Chart>> {
    let Some((cost, values)) = crate::recommend::deciding(report) else {
        return Ok(None);
    };
    let unit = match cost {
        crate::Cost::LatencyP50 | crate::Cost::LatencyP99 => "ms",
        crate::Cost::BytesPerEvent
        | crate::Cost::BytesPerClientHour
        | crate::Cost::MemoryPerConnection => "bytes",
        crate::Cost::ServerCpuPerEvent | crate::Cost::ServerCpuPerClientHour => "ms",
        crate::Cost::RequestsPerClientHour => "requests",
        crate::Cost::RadioEnergyPerHour => "J",
    };
    let scale = match cost {
        crate::Cost::LatencyP50 | crate::Cost::LatencyP99 => 0.001,
        _ => 1.0,
    };
    let values: Vec<(String, Range, u32)> = values
        .into_iter()
        .map(|(t, g, n)| {
            (
                t,
                Range {
                    min: g.min * scale,
                    median: g.median * scale,
                    max: g.max * scale,
                },
                n,
            )
        })
        .collect();
    let title = format!("What decided it: {}", cost.label());
    bar_chart("decision.svg", &title, unit, &values).map(Some)
}

fn bar_chart(
    file: &str,
    title: &str,
    unit: &str,
    values: &[(String, Range, u32)],
) -> anyhow::Result<Chart> {
    let max = values
        .iter()
        .map(|v| v.1.max)
        .fold(0f64, f64::max)
        .max(1e-9);
    let n = values.len();
    let runs = values.iter().map(|v| v.2).max().unwrap_or(1);
    let title = if runs > 1 {
        format!("{title} (median of {runs} runs, bars: min–max)")
    } else {
        format!("{title} (one run)")
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let labels: Vec<String> = values.iter().map(|v| v.0.clone()).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(&title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..max * 1.18)
            .map_err(err)?;
        let fmt = |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.max(1))
            .x_label_formatter(&fmt)
            .y_desc(unit)
            .draw()
            .map_err(err)?;
        for (i, (label, g, _)) in values.iter().enumerate() {
            let x = i as f64;
            let c = color(label);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x - 0.33, 0.0), (x + 0.33, g.median)],
                    c.filled(),
                )))
                .map_err(err)?
                .label(label.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
            if g.max > g.min {
                let bar = [
                    vec![(x, g.min), (x, g.max)],
                    vec![(x - 0.08, g.min), (x + 0.08, g.min)],
                    vec![(x - 0.08, g.max), (x + 0.08, g.max)],
                ];
                chart
                    .draw_series(
                        bar.into_iter()
                            .map(|pts| PathElement::new(pts, BLACK.stroke_width(2))),
                    )
                    .map_err(err)?;
            }
            chart
                .draw_series(std::iter::once(Text::new(
                    crate::units::num(g.median),
                    (x + 0.1, g.max.max(g.median) + max * 0.06),
                    ("sans-serif", 14),
                )))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(Chart {
        file: file.into(),
        title,
        svg,
    })
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

/// With a sweep: each cost against the rate (at the largest client count) and against the
/// client count (at the largest rate).
fn sweep_charts(report: &Report) -> anyhow::Result<Vec<Chart>> {
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
