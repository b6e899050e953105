//! `decision.md` and `decision.json` of a `--scenario` run: the answer per scenario, each with
//! what decided it, and a link to each scenario's full report. Written by loadgen after a run,
//! and again from the committed reports by `loadgen render <dir>` on a directory holding a
//! `decision.json` (every scenario's report re-ranked with the current rule, nothing measured).
//!
//! The game and the job log (`--scenario game`, `--scenario progress`) are not feed runs: their
//! directory holds `loadgen usecase`'s `results.json`, ranked per network when measured, and
//! they enter the decision with that ranking. A run of some scenarios into a directory that
//! already has a decision ([`update`]) keeps the others' entries, read from their directories:
//! the game can be measured again without the six feed scenarios.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use crate::{
    section::usecases::{self, Results},
    tables, Recommendation, Report,
};

/// Writes `decision.json` and `decision.md` into `base` for `reports` and `uses` (the game and
/// the job log), each with the name of its directory under `base`.
///
/// # Errors
/// When a file cannot be written.
pub fn write(
    base: &Path,
    reports: &[(&Report, String)],
    uses: &[(&Results, String)],
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(base)?;
    let recs: Vec<(&Recommendation, &str)> = reports
        .iter()
        .flat_map(|(r, dir)| r.recommendations.iter().map(move |x| (x, dir.as_str())))
        .collect();
    let json = serde_json::json!({
        "recommendations": recs.iter().map(|(r, _)| r).collect::<Vec<_>>(),
        "reports": recs.iter().map(|(r, dir)| serde_json::json!({
            "scenario": r.scenario,
            "report": format!("{dir}/report.json"),
        })).collect::<Vec<_>>(),
        "usecases": uses.iter().map(|(r, dir)| serde_json::json!({
            "scenario": dir,
            "results": format!("{dir}/results.json"),
            "ranked": r.ranked,
        })).collect::<Vec<_>>(),
    });
    let json_path = base.join("decision.json");
    std::fs::write(&json_path, serde_json::to_vec_pretty(&json)?)?;
    let md_path = base.join("decision.md");
    std::fs::write(&md_path, markdown(reports, uses))?;
    Ok(vec![md_path, json_path])
}

/// The scenario directories `base/decision.json` lists, in its order: feed reports, then the
/// game and the job log. Empty when there is no decision yet.
struct Index {
    reports: Vec<String>,
    uses: Vec<String>,
}

impl Index {
    fn read(base: &Path) -> anyhow::Result<Self> {
        let path = base.join("decision.json");
        if !path.exists() {
            return Ok(Self {
                reports: Vec::new(),
                uses: Vec::new(),
            });
        }
        let index: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        let dirs = |list: &str, file: &str| {
            let mut dirs: Vec<String> = Vec::new();
            for r in index[list].as_array().into_iter().flatten() {
                if let Some(dir) = r[file].as_str().and_then(|p| p.split('/').next()) {
                    if !dirs.iter().any(|d| d == dir) {
                        dirs.push(dir.to_owned());
                    }
                }
            }
            dirs
        };
        Ok(Self {
            reports: dirs("reports", "report"),
            uses: dirs("usecases", "results"),
        })
    }
}

/// Writes the decision of `base` with `reports` and `uses` just measured and every other
/// scenario `base/decision.json` already lists read from its directory (one measured again
/// takes its old place; a new one comes last).
///
/// # Errors
/// When a listed scenario's files cannot be read, or the decision cannot be written.
pub fn update(
    base: &Path,
    reports: &[(&Report, String)],
    uses: &[(&Results, String)],
) -> anyhow::Result<Vec<PathBuf>> {
    let index = Index::read(base)?;
    let mut read_reports = Vec::new();
    for dir in &index.reports {
        if !reports.iter().any(|(_, d)| d == dir) {
            read_reports.push((
                crate::read(&base.join(dir).join("report.json"))?,
                dir.clone(),
            ));
        }
    }
    let mut read_uses = Vec::new();
    for dir in &index.uses {
        if !uses.iter().any(|(_, d)| d == dir) {
            read_uses.push((usecases::read(&base.join(dir))?, dir.clone()));
        }
    }
    let all_reports = merged(&index.reports, reports, &read_reports);
    let all_uses = merged(&index.uses, uses, &read_uses);
    write(base, &all_reports, &all_uses)
}

/// `fresh` and `read` in the index's `order`, then the fresh ones it did not list.
fn merged<'a, T>(
    order: &[String],
    fresh: &[(&'a T, String)],
    read: &'a [(T, String)],
) -> Vec<(&'a T, String)> {
    let find = |dir: &String| {
        fresh
            .iter()
            .find(|(_, d)| d == dir)
            .map(|(x, d)| (*x, d.clone()))
            .or_else(|| {
                read.iter()
                    .find(|(_, d)| d == dir)
                    .map(|(x, d)| (x, d.clone()))
            })
    };
    let mut all: Vec<(&T, String)> = order.iter().filter_map(find).collect();
    for (x, dir) in fresh {
        if !order.contains(dir) {
            all.push((*x, dir.clone()));
        }
    }
    all
}

/// `decision.md`: one line per scenario first (its answer), then each scenario's ranking.
pub fn markdown(reports: &[(&Report, String)], uses: &[(&Results, String)]) -> String {
    let mut md = String::from("# feedlab: which transport, per scenario\n\n");
    let older: Vec<&str> = reports
        .iter()
        .filter(|(r, _)| r.record.is_none())
        .map(|(r, _)| r.scenario.as_ref().map_or("?", |s| s.name.as_str()))
        .collect();
    if !older.is_empty() {
        let _ = writeln!(
            md,
            "> **Made by older code.** {} ran before reports recorded the commit, build and machine (see [`results/README.md`](../README.md)); their rankings here are recomputed from their `report.json` with the current rule, their measurements are not.\n",
            older.join(", ")
        );
    }
    for (r, _) in reports {
        for rec in &r.recommendations {
            let _ = writeln!(md, "- {}", rec.summary);
        }
    }
    for (r, _) in uses {
        for rank in &r.ranked {
            let _ = writeln!(
                md,
                "- {} on {}: {}.",
                rank.workload,
                rank.network,
                usecases::order(rank)
            );
        }
    }
    md.push('\n');
    let _ = writeln!(
        md,
        "Each scenario ran as its own measured run (every phase repeated and interleaved). The rule: a difference under the threshold ({}) is a tie; a larger one must also pass an exact two-sided Mann–Whitney U test at 5% over the runs. The full report of each is linked.\n",
        reports
            .iter()
            .find_map(|(r, _)| r.recommendations.first().and_then(|x| x.threshold))
            .map_or("10%".into(), |t| format!("{}%", crate::units::num(t * 100.0)))
    );
    for (r, dir) in reports {
        let interrupted = if r.interrupted {
            " (interrupted: only the phases that ran)"
        } else {
            ""
        };
        for t in tables::recommendations(r) {
            let _ = writeln!(md, "## {}{interrupted}\n\n{}\n", t.title, t.note);
            let _ = writeln!(md, "| {} |", t.headers.join(" | "));
            let _ = writeln!(md, "|{}|", vec!["---"; t.headers.len()].join("|"));
            for row in &t.rows {
                let _ = writeln!(md, "| {} |", row.join(" | ").replace('\n', " "));
            }
            md.push('\n');
        }
        let _ = writeln!(md, "Full report: [{dir}/report.md]({dir}/report.md)\n");
        if r.loss {
            let _ = writeln!(
                md,
                "> **This scenario's run saw loss or errors**: see its report.\n"
            );
        }
    }
    for (r, dir) in uses {
        md.push_str(&usecase_section(r, dir));
    }
    md
}

/// The game's or the job log's rankings, one table per network: what put each transport below
/// the one above it, by how much, and the rank test's p.
fn usecase_section(r: &Results, dir: &str) -> String {
    let mut md = String::new();
    for rank in &r.ranked {
        let _ = writeln!(
            md,
            "## Recommendation: {} on {}\n\nMeasured by its own driver (`loadgen usecase {}`), runs per transport: {}; the criteria in order: {}.\n",
            rank.workload,
            rank.network,
            rank.workload,
            runs_of(r, &rank.workload, &rank.network),
            rank.criteria.join(", then ")
        );
        let _ = writeln!(md, "| rank | transport | decided by | margin | p |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        for p in &rank.places {
            let (by, margin, pv) = match &p.decided_by {
                Some(d) => (
                    d.criterion.clone(),
                    format!("{:.0}%", d.margin * 100.0),
                    d.p.map_or("–".into(), |p| format!("{p:.3}")),
                ),
                None => (
                    "– (first, or tied with the one above)".into(),
                    "–".into(),
                    "–".into(),
                ),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {by} | {margin} | {pv} |",
                p.rank, p.transport
            );
        }
        md.push('\n');
    }
    let _ = writeln!(md, "Full report: [{dir}/usecases.md]({dir}/usecases.md)\n");
    md
}

/// How many runs each transport had on `network` (the smallest count, when they differ).
fn runs_of(r: &Results, workload: &str, network: &str) -> usize {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    match workload {
        "game" => r
            .game
            .iter()
            .filter(|g| g.network == network)
            .for_each(|g| *counts.entry(&g.transport).or_default() += 1),
        _ => r
            .progress
            .iter()
            .filter(|g| g.network == network)
            .for_each(|g| *counts.entry(&g.transport).or_default() += 1),
    }
    counts.values().copied().min().unwrap_or(0)
}

/// Re-renders every scenario `base/decision.json` lists (each feed report re-ranked, each
/// `usecases.md` written again from its `results.json`), then the decision files.
///
/// # Errors
/// When a file cannot be read or written.
pub fn render(base: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let index = Index::read(base)?;
    let mut written = Vec::new();
    for dir in &index.reports {
        written.extend(crate::render(&base.join(dir))?);
    }
    for dir in &index.uses {
        written.push(usecases::write_markdown(&base.join(dir))?);
    }
    written.extend(update(base, &[], &[])?);
    Ok(written)
}
