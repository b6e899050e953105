//! The report's tables as data (title, header, rows of text), built once from the model and
//! rendered by both the Markdown and the HTML writer, so the two show the same numbers; the rows
//! a section shows ([`shown`]); and the recommendation's tables, which both a report and the
//! scenarios' decision ([`crate::decision`]) show. Each section's own table is in its module
//! under [`crate::section`].

use crate::{units::num, Report, TransportResult};

#[derive(Debug, Clone)]
pub struct Table {
    pub title: String,
    /// One sentence under the title: what the numbers mean.
    pub note: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(title: &str, note: &str, headers: &[&str]) -> Self {
        Self {
            title: title.into(),
            note: note.into(),
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }
}

/// The recommendation of a scenario run: the transports ranked against its requirements.
pub fn recommendations(report: &Report) -> Vec<Table> {
    report
        .recommendations
        .iter()
        .flat_map(|r| {
            let unmeasured = if r.unmeasured.is_empty() {
                String::new()
            } else {
                format!(
                    " Not measured here, and may decide between them: {}.",
                    r.unmeasured.join("; ")
                )
            };
            let mut t = Table::new(
                &format!("Recommendation: {}", r.scenario),
                &format!("{}{unmeasured} Requirements: {}.", r.summary, r.requirements),
                &["rank", "transport", "meets the requirements", "why"],
            );
            for x in &r.ranking {
                t.rows.push(vec![
                    x.rank.to_string(),
                    x.transport.clone(),
                    if x.meets_requirements {
                        "yes".into()
                    } else {
                        "**no**".into()
                    },
                    x.reason.clone(),
                ]);
            }
            let mut out = vec![t];
            if !r.points.is_empty() {
                let mut p = Table::new(
                    &format!("Ranking at every point: {}", r.scenario),
                    &if r.flips.is_empty() {
                        "The sweep ranked point by point, with the same rule; the order is the same at every point.".to_owned()
                    } else {
                        format!("The sweep ranked point by point, with the same rule. {}", r.flips.join(" "))
                    },
                    &["point", "order (best first)", "what decided it"],
                );
                for pt in &r.points {
                    let mut order = String::new();
                    let mut last = None;
                    for x in &pt.ranking {
                        if let Some(l) = last {
                            order.push_str(if l == x.rank { " = " } else { " > " });
                        }
                        order.push_str(&x.transport);
                        last = Some(x.rank);
                    }
                    let decided: Vec<String> = pt
                        .ranking
                        .iter()
                        .filter_map(|x| {
                            x.decided_by.as_ref().map(|d| match (d.margin, d.p) {
                                (Some(m), Some(pv)) => format!(
                                    "{} below on {} (+{}%, p = {pv:.3})",
                                    x.transport,
                                    d.criterion,
                                    num(m * 100.0)
                                ),
                                (Some(m), None) => format!(
                                    "{} below on {} (+{}%, every run alike)",
                                    x.transport,
                                    d.criterion,
                                    num(m * 100.0)
                                ),
                                _ => format!("{} below on {}", x.transport, d.criterion),
                            })
                        })
                        .collect();
                    p.rows.push(vec![
                        pt.point.clone(),
                        order,
                        if decided.is_empty() {
                            "a tie on every criterion".into()
                        } else {
                            decided.join("; ")
                        },
                    ]);
                }
                out.push(p);
            }
            out
        })
        .collect()
}

pub fn network_name(r: &TransportResult) -> Option<&str> {
    r.network.as_ref().map(|n| n.name.as_str())
}

/// The rows shown: the headline transports, then other HTTP versions and TLS of the same cell.
pub fn shown(report: &Report) -> Vec<&TransportResult> {
    let mut rows = report.headline();
    let Some(first) = rows.first().copied() else {
        return rows;
    };
    let primary = report.primary_http();
    for p in report.latest() {
        // Other networks have their own section.
        let same_cell = p.rate == first.rate
            && p.clients == first.clients
            && network_name(p) == network_name(first);
        let variant = p.http != p.headline_http(primary) || p.tls != first.tls;
        if same_cell && variant {
            rows.push(p);
        }
    }
    rows
}
