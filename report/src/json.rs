//! `report.json`: the model as it is, pretty-printed. Its shape is pinned by
//! `results/report.schema.json`, generated from these types ([`crate::schema`]); tests check
//! reports against it.

use std::path::Path;

use crate::Report;

/// # Errors
/// When the file cannot be written.
pub fn write(report: &Report, path: &Path) -> anyhow::Result<()> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    serde_json::to_writer_pretty(file, report)?;
    Ok(())
}

/// # Errors
/// When the file cannot be read or is not a report.
pub fn read(path: &Path) -> anyhow::Result<Report> {
    Ok(serde_json::from_slice(&std::fs::read(path)?)?)
}
