//! One model of a run, [`Report`], and its renderings: `report.json` (the model itself, with a
//! JSON Schema), `report.md` (tables and a conclusion written from the numbers), SVG charts and a
//! self-contained `report.html`. Every rendering reads the model only, so they cannot disagree.
//!
//! The crate needs neither tokio nor hyper: loadgen fills the model, this crate analyses and
//! renders it, and `loadgen summarize`/`render` are thin wrappers over [`summarize`] and
//! [`render`].
//!
//! - [`model`]: the types of `report.json` ([`Report`], [`TransportResult`], …).
//! - [`units`]: how numbers are written (µs, bytes, thousands).
//! - analysis: [`spread`], [`cost`], [`crossover`], [`recommend`], [`verdict`] (the
//!   conclusions, worded by [`words`]).
//! - renderings: [`json`], [`schema`], [`section`] (one module per report section: its table,
//!   its sentences and its charts), [`tables`] (the table type and the recommendation's tables),
//!   [`markdown`], [`svg`] (how a chart is drawn), [`html`].
//!
//! Units are in the field names (`_us`, `_s`, `_bytes`); a missing measurement is `null`, never a
//! zero that could be mistaken for a result.

pub mod cost;
pub mod crossover;
pub mod decision;
pub mod html;
pub mod json;
pub mod markdown;
pub mod model;
pub mod opening;
pub mod recommend;
pub mod results_index;
pub mod schema;
pub mod section;
pub mod spread;
pub mod svg;
pub mod tables;
pub mod units;
pub mod verdict;
pub mod words;

use std::path::Path;

pub use model::*;

/// The headline table of the report at `path`, as Markdown (what `loadgen summarize` prints).
///
/// # Errors
/// When the file cannot be read or is not a report.
pub fn summarize(path: &Path) -> anyhow::Result<String> {
    Ok(markdown::grid(&section::summary::table(&read(path)?)))
}

/// The report in the `report.json` at `path`.
pub(crate) fn read(path: &Path) -> anyhow::Result<Report> {
    let text =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    serde_json::from_slice(&text)
        .map_err(|e| anyhow::anyhow!("{} is not a loadgen report: {e}", path.display()))
}

/// Reads `dir/report.json`, writes its conclusions (and a scenario run's recommendation) again
/// from its numbers, and rewrites every file of the report ([`write_all`]): a committed run
/// gets the current wording and ranking without being measured again. A directory with a
/// `decision.json` and no `report.json` (a `--scenario` run) has every scenario re-rendered and
/// its `decision.md` and `decision.json` written again ([`decision::render`]).
///
/// # Errors
/// When the report cannot be read or written.
pub fn render(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    if !dir.join("report.json").exists() && dir.join("decision.json").exists() {
        return decision::render(dir);
    }
    let mut report = read(&dir.join("report.json"))?;
    if let Some(info) = report.scenario.clone() {
        report.recommendations = vec![recommend::recommend(&report, &info)];
    }
    report.conclusions = verdict::conclusions(&report, report.settings.poll_interval_s);
    write_all(&report, dir)
}

/// Writes `report.json`, `report.md`, the SVG charts and `report.html` into `dir`.
///
/// # Errors
/// When a file cannot be written.
pub fn write_all(report: &Report, dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let json_path = dir.join("report.json");
    json::write(report, &json_path)?;
    written.push(json_path);
    let charts = section::charts(report)?;
    for chart in &charts {
        let path = dir.join(&chart.file);
        std::fs::write(&path, &chart.svg)?;
        written.push(path);
    }
    let md_path = dir.join("report.md");
    let mut md = Vec::new();
    markdown::Markdown::new(&mut md, report, &charts).write()?;
    std::fs::write(&md_path, md)?;
    written.push(md_path);
    let html_path = dir.join("report.html");
    std::fs::write(&html_path, html::render(report, &charts))?;
    written.push(html_path);
    Ok(written)
}
