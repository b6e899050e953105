//! How the report's SVG charts are drawn with plotters: the size, one colour per transport (its
//! variants in shades of it) and the bar chart of a figure over the runs. Which charts a report
//! has, and their data, belong to its sections ([`crate::section::charts`]). Every series is
//! labelled with its transport name, which the legend and bar labels show.

use plotters::prelude::*;

use crate::{spread::Range, tables, Report, TransportResult};

pub struct Chart {
    /// File name inside the report directory.
    pub file: String,
    pub title: String,
    pub svg: String,
}

pub(crate) const SIZE: (u32, u32) = (820, 460);

/// Width of the CDF's legend column, px.
pub(crate) const LEGEND_WIDTH: u32 = 200;

/// A number read from a result, when it was measured.
pub(crate) type Metric = fn(&TransportResult) -> Option<f64>;

/// One hue per transport; its variants (HTTP/1.0, HTTP/2, TLS) are shades of the same hue, so a
/// reader finds a transport's family at a glance and tells its members apart by shade.
pub(crate) fn color(label: &str) -> RGBColor {
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
pub(crate) fn is_variant(label: &str) -> bool {
    label.contains('(')
}

pub(crate) fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e}")
}

/// One bar per shown row for the figure `f` (median over the runs, the runs' range as error
/// bars), when any row measured it.
pub(crate) fn bars(
    report: &Report,
    file: &str,
    title: &str,
    unit: &str,
    f: Metric,
) -> anyhow::Result<Option<Chart>> {
    let primary = report.primary_http();
    let values: Vec<(String, Range, u32)> = tables::shown(report)
        .iter()
        .filter_map(|r| report.figure(r, f).map(|(g, n)| (r.label(primary), g, n)))
        .collect();
    if values.is_empty() {
        return Ok(None);
    }
    bar_chart(file, title, unit, &values).map(Some)
}

pub(crate) fn bar_chart(
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
