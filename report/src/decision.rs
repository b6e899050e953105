//! `decision.md` and `decision.json` of a `--scenario` run: the answer per scenario, each with
//! what decided it, and a link to each scenario's full report. Written by loadgen after a run,
//! and again from the committed reports by `loadgen render <dir>` on a directory holding a
//! `decision.json` (every scenario's report re-ranked with the current rule, nothing measured).

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use crate::{tables, Recommendation, Report};

/// Writes `decision.json` and `decision.md` into `base` for `reports`, each with the name of
/// its directory under `base`.
///
/// # Errors
/// When a file cannot be written.
pub fn write(base: &Path, reports: &[(&Report, String)]) -> anyhow::Result<Vec<PathBuf>> {
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
    });
    let json_path = base.join("decision.json");
    std::fs::write(&json_path, serde_json::to_vec_pretty(&json)?)?;
    let md_path = base.join("decision.md");
    std::fs::write(&md_path, markdown(reports))?;
    Ok(vec![md_path, json_path])
}

/// `decision.md`: one line per scenario first (its answer), then each scenario's ranking.
pub fn markdown(reports: &[(&Report, String)]) -> String {
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
    md
}

/// Re-renders every scenario report `base/decision.json` lists (each re-ranked), then the
/// decision files.
///
/// # Errors
/// When a file cannot be read or written.
pub fn render(base: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let text = std::fs::read(base.join("decision.json"))?;
    let index: serde_json::Value = serde_json::from_slice(&text)?;
    let mut dirs: Vec<String> = Vec::new();
    for r in index["reports"].as_array().into_iter().flatten() {
        if let Some(dir) = r["report"].as_str().and_then(|p| p.split('/').next()) {
            if !dirs.iter().any(|d| d == dir) {
                dirs.push(dir.to_owned());
            }
        }
    }
    let mut written = Vec::new();
    let mut reports = Vec::new();
    for dir in &dirs {
        written.extend(crate::render(&base.join(dir))?);
        reports.push((
            crate::read(&base.join(dir).join("report.json"))?,
            dir.clone(),
        ));
    }
    let refs: Vec<(&Report, String)> = reports.iter().map(|(r, d)| (r, d.clone())).collect();
    written.extend(write(base, &refs)?);
    Ok(written)
}
