//! How a report opens: its answer (or one line saying why this run cannot rank), the record of
//! what made it, and which serving path served its phases. Shared by the Markdown and HTML
//! writers so the two open alike.

use crate::{Report, TransportResult};

/// The first line: a scenario run's answer, or why this run ranks nothing.
pub fn answer(report: &Report) -> String {
    match report.recommendations.first() {
        Some(rec) => rec.summary.clone(),
        None => "This run ranks nothing: it names no scenario (`--scenario NAME`), so there are no requirements to rank against. The tables compare the figures; the conclusion says which differences the runs can tell from noise.".into(),
    }
}

/// The record, as one line: commit (dirty or not), build profile, machine, date; or that the
/// run was made by older code.
pub fn record(report: &Report) -> String {
    match &report.record {
        Some(r) => format!(
            "Made from commit `{}`{}, {} build, on {} ({} cores), kernel {}, {}.",
            r.commit.chars().take(12).collect::<String>(),
            if r.dirty { " (tree dirty)" } else { "" },
            r.profile,
            r.cpu_model,
            r.cores,
            r.kernel,
            r.date
        ),
        None => format!(
            "Made by older code: no record of the commit or build (started {}).",
            report.started_at
        ),
    }
}

/// Which of the server's two serving paths served a phase: the fast path takes plain
/// HTTP/1.1; TLS and HTTP/2 are served by actix-web (and everything when the fast path is off).
pub fn serving_path(report: &Report, r: &TransportResult) -> &'static str {
    if report.server.kind != "spawned" {
        return "the server given by --url";
    }
    let off = report
        .settings
        .server_args
        .iter()
        .any(|a| a == "--fast-path=false" || a == "--fast-path false");
    // HTTP/1.x over TLS is on the fast path (rustls on the raw connection); a client that
    // picks h2 by ALPN, or h2c, is handed to actix-web's HTTP/2.
    if r.http == "2" || off {
        "actix-web"
    } else {
        "the fast path"
    }
}

/// One sentence: which path served which phases.
pub fn serving(report: &Report) -> String {
    let primary = report.primary_http();
    let mut by: Vec<(&'static str, Vec<String>)> = Vec::new();
    for p in &report.phases {
        let path = serving_path(report, p);
        let label = p.label(primary);
        match by.iter_mut().find(|(k, _)| *k == path) {
            Some((_, v)) => {
                if !v.contains(&label) {
                    v.push(label);
                }
            }
            None => by.push((path, vec![label])),
        }
    }
    match by.as_slice() {
        [] => String::new(),
        [(path, _)] => format!("Every phase was served by {path}."),
        _ => format!(
            "Served by {}.",
            by.iter()
                .map(|(path, v)| format!("{path}: {}", v.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// The conclusions worth reading: what was not computed stays out.
pub fn conclusions(report: &Report) -> Vec<&str> {
    report
        .conclusions
        .iter()
        .map(String::as_str)
        .filter(|c| !c.contains("not computed"))
        .collect()
}
