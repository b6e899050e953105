//! A scenario run (`--scenario`): the table of its flags with their reasons and the chart of what
//! decided its answer. (The recommendation's own tables stay in [`crate::tables`], where
//! [`crate::decision`] reads them.)

use crate::{
    spread::Range,
    svg::{bar_chart, Chart},
    tables::Table,
    Report,
};

/// The scenario's flags, each with its reason.
pub fn table(report: &Report) -> Option<Table> {
    let s = report.scenario.as_ref()?;
    let mut t = Table::new(
        &format!("Scenario: {}", s.name),
        &s.summary,
        &["flag", "value", "why"],
    );
    for f in &s.flags {
        t.rows.push(vec![
            format!("`--{}`", f.flag),
            if f.overridden {
                format!("{} (overridden on the command line)", f.value)
            } else {
                f.value.clone()
            },
            f.why.clone(),
        ]);
    }
    Some(t)
}

/// The chart of what decided a scenario's answer: the deciding criterion per transport, median
/// bars with the runs' range as error bars.
pub fn chart(report: &Report) -> anyhow::Result<Option<Chart>> {
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
