//! `results/README.md`: every committed result set with the record of how it was made (the
//! commit and whether the tree was dirty, the build profile, the machine, the date), so that a
//! set made by older code shows it at a glance. Generated, never edited:
//! `FEEDLAB_WRITE_RESULTS_INDEX=1 cargo test -p feedlab-report --test it results_index`
//! rewrites it, and the same test fails when the committed file is not what this makes.
//!
//! A set is a directory directly under `results/`. Its data files are the JSON files loadgen and
//! the scripts write (`report.json`, `results.json`, `run.json`, `index.json`, `decision.json`,
//! `model.json`, `validation.json`),
//! anywhere below it. A file's record is loadgen's `record` field, or a script's `commit` and
//! `machine` fields; a file without one is "made by older code: no record", dated by its
//! `started_at`, `generated_at` or `date`.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use serde_json::Value;

/// What this module writes under every set that lacks a record.
pub const OLDER: &str = "made by older code: no record";

/// The data files a set's record is read from.
const DATA: &[&str] = &[
    "report.json",
    "results.json",
    "run.json",
    "index.json",
    "decision.json",
    "model.json",
    "validation.json",
];

/// One data file of a set.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Relative to `results/`.
    pub path: String,
    /// The record as one line, or `None`.
    pub record: Option<String>,
    /// The date the file carries (its record's, or `started_at`/`generated_at`/`date`).
    pub date: Option<String>,
    pub command: Option<String>,
}

/// A result set: a directory under `results/` and its data files.
#[derive(Debug, Clone, PartialEq)]
pub struct Set {
    pub name: String,
    pub entries: Vec<Entry>,
}

impl Set {
    /// Every data file carries a record.
    pub fn current(&self) -> bool {
        !self.entries.is_empty() && self.entries.iter().all(|e| e.record.is_some())
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            files(&p, out);
        } else if p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| DATA.contains(&n))
        {
            out.push(p);
        }
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn record_line(v: &Value) -> Option<(String, Option<String>)> {
    if let Some(r) = v.get("record").filter(|r| r.is_object()) {
        let commit = text(r, "commit")?;
        let short: String = commit.chars().take(10).collect();
        let dirty = if r.get("dirty").and_then(Value::as_bool) == Some(true) {
            " (dirty)"
        } else {
            ""
        };
        let line = format!(
            "commit {short}{dirty}, {} build, {} ({} cores), kernel {}",
            text(r, "profile").unwrap_or_else(|| "unknown".into()),
            text(r, "cpu_model").unwrap_or_else(|| "unknown CPU".into()),
            r.get("cores").and_then(Value::as_u64).unwrap_or(0),
            text(r, "kernel").unwrap_or_else(|| "unknown".into()),
        );
        return Some((line, text(r, "date")));
    }
    // A script's report: `commit` and `machine` at the top.
    let commit = text(v, "commit")?;
    let m = v.get("machine")?;
    let short: String = commit.chars().take(10).collect();
    let line = format!(
        "commit {short}, {} ({} cores), kernel {}",
        text(m, "cpu_model")
            .or_else(|| text(m, "cpu"))
            .unwrap_or_else(|| "unknown CPU".into()),
        m.get("cores").and_then(Value::as_u64).unwrap_or(0),
        text(m, "kernel").unwrap_or_else(|| "unknown".into()),
    );
    Some((line, text(v, "date").or_else(|| text(v, "started_at"))))
}

/// Every set under `root` (`results/`), in name order.
pub fn sets(root: &Path) -> Vec<Set> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let mut found = Vec::new();
            files(&dir, &mut found);
            let entries = found
                .iter()
                .map(|p| {
                    let v: Value = std::fs::read(p)
                        .ok()
                        .and_then(|b| serde_json::from_slice(&b).ok())
                        .unwrap_or(Value::Null);
                    let (record, rdate) = match record_line(&v) {
                        Some((l, d)) => (Some(l), d),
                        None => (None, None),
                    };
                    Entry {
                        path: p
                            .strip_prefix(root)
                            .unwrap_or(p)
                            .to_string_lossy()
                            .into_owned(),
                        record,
                        date: rdate
                            .or_else(|| text(&v, "started_at"))
                            .or_else(|| text(&v, "generated_at"))
                            .or_else(|| text(&v, "date")),
                        command: text(&v, "command"),
                    }
                })
                .collect();
            Set {
                name: dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                entries,
            }
        })
        .collect()
}

fn day(d: &Option<String>) -> String {
    d.as_deref()
        .map_or("undated".into(), |d| d.chars().take(10).collect())
}

/// `results/README.md` for the sets under `root`.
pub fn render(root: &Path) -> String {
    let sets = sets(root);
    let mut out = String::from("# Committed results\n\n");
    out.push_str(
        "Generated from the result sets below (do not edit): \
         `FEEDLAB_WRITE_RESULTS_INDEX=1 cargo test -p feedlab-report --test it results_index` \
         rewrites it, and that test fails when it is stale. Each data file is listed with its \
         record: the commit it was made from (and whether the tree was dirty), the build \
         profile, the machine and the date. A file without one was made by older code. \
         `scripts/remake_results.sh --list` lists the commands that make every set again, with \
         their expected times.\n\n",
    );
    let current = sets.iter().filter(|s| s.current()).count();
    let _ = writeln!(
        out,
        "{current} of {} sets carry a record in every file.\n",
        sets.len()
    );
    out.push_str("| set | file | date | record |\n|---|---|---|---|\n");
    for s in &sets {
        if s.entries.is_empty() {
            let _ = writeln!(
                out,
                "| [{0}]({0}/) | (no data file) | undated | {OLDER} |",
                s.name
            );
            continue;
        }
        for (k, e) in s.entries.iter().enumerate() {
            let set = if k == 0 {
                format!("[{0}]({0}/)", s.name)
            } else {
                String::new()
            };
            let file = e
                .path
                .strip_prefix(&format!("{}/", s.name))
                .unwrap_or(&e.path);
            let _ = writeln!(
                out,
                "| {set} | [{file}]({}) | {} | {} |",
                e.path,
                day(&e.date),
                e.record.as_deref().unwrap_or(OLDER)
            );
        }
    }
    out
}
