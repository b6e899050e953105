//! The report by section: each module holds one section's table, its sentences and its charts,
//! so a section is read and changed in one place. The Markdown and HTML writers put the tables in
//! order, [`charts`] the charts, and the conclusions ([`crate::verdict`]) the sentences. Still
//! elsewhere: the recommendation's tables in [`crate::tables`] (read by [`crate::decision`]) and
//! the scenario-level opening in [`crate::opening`].

pub mod checks;
pub mod compression;
pub mod integrity;
pub mod latency;
pub mod network;
pub mod phases;
pub mod protocols;
pub mod radio;
pub mod repeats;
pub mod resilience;
pub mod scenario;
pub mod server;
pub mod summary;
pub mod sweep;
pub mod talk_back;
pub mod usecases;
pub mod wire;

use crate::{svg::Chart, Report};

/// Every chart the report has data for, in the report's order: what decided a scenario's
/// answer, latency, the costs per event, then the sweep's.
///
/// # Errors
/// When plotters fails to draw (it writes to a string, so practically never).
pub fn charts(report: &Report) -> anyhow::Result<Vec<Chart>> {
    let mut charts: Vec<Chart> = scenario::chart(report)?.into_iter().collect();
    charts.extend(latency::chart(report)?);
    charts.extend(wire::charts(report)?);
    charts.extend(server::chart(report)?);
    charts.extend(sweep::charts(report)?);
    Ok(charts)
}
