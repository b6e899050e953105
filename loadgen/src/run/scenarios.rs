//! `--scenario`: runs each named workload as a run of its own (its report in
//! `<out>/<scenario>/`), then writes `<out>/decision.md` and `decision.json`, which open with a
//! recommendation per scenario and link each scenario's full report.

use std::{ffi::OsString, fmt::Write as _, path::PathBuf};

use anyhow::Context as _;
use feedlab_report::{tables, Recommendation};

use super::{assemble::default_out_dir, execute, Mode, Outcome};
use crate::{cli::Args, scenario};

/// Every scenario's outcome, and the decision files.
pub struct Decision {
    pub outcomes: Vec<Outcome>,
    pub out_dir: PathBuf,
    pub files: Vec<PathBuf>,
}

/// Runs the scenarios `asked` names, with `user` (the command line without the program name)
/// overriding their flags.
///
/// # Errors
/// When a scenario cannot be loaded or its run cannot start.
pub async fn execute_scenarios(
    user: Vec<OsString>,
    asked: &[String],
    mode: Mode,
) -> anyhow::Result<Decision> {
    let scenarios = scenario::resolve(asked)?;
    if mode == Mode::Cli {
        let mut total = std::time::Duration::ZERO;
        for s in &scenarios {
            let plan = crate::plan::Plan::build(&s.args(&user)?).map_err(anyhow::Error::msg)?;
            total += plan.estimate();
            eprintln!(
                "loadgen: scenario {}: {} phases, about {:.0} s",
                s.name,
                plan.phases.len(),
                plan.estimate().as_secs_f64()
            );
        }
        eprintln!(
            "loadgen: {} scenario(s), about {:.1} min in all",
            scenarios.len(),
            total.as_secs_f64() / 60.0
        );
    }
    let base = Args::from_args(user.clone())?
        .out
        .unwrap_or_else(|| default_out_dir(&chrono::Utc::now()));
    let mut outcomes = Vec::new();
    for s in &scenarios {
        let mut args = s.args(&user)?;
        args.out = Some(base.join(&s.name));
        args.scenario_info = Some(scenario::info(s, &user));
        args.scenario.clear();
        if mode == Mode::Cli && !args.quiet {
            eprintln!("loadgen: scenario {}: {}", s.name, s.summary);
        }
        let outcome = execute(args, mode)
            .await
            .with_context(|| format!("scenario {}", s.name))?;
        let stop = outcome.report.interrupted;
        outcomes.push(outcome);
        if stop {
            break;
        }
    }
    let files = write_decision(&base, &outcomes)?;
    if mode == Mode::Cli {
        for f in &files {
            println!("decision: {}", f.display());
        }
    }
    Ok(Decision {
        outcomes,
        out_dir: base,
        files,
    })
}

/// `decision.json` (every recommendation, with where its report is) and `decision.md`.
fn write_decision(base: &std::path::Path, outcomes: &[Outcome]) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(base)?;
    let recs: Vec<(&Recommendation, String)> = outcomes
        .iter()
        .flat_map(|o| {
            let dir = o
                .out_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            o.report
                .recommendations
                .iter()
                .map(move |r| (r, dir.clone()))
        })
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

    let mut md = String::from("# feedlab: which transport, per scenario\n\n");
    md.push_str("Each scenario ran as its own measured run (every phase repeated and interleaved); a transport is ranked above another only where the difference exceeds the spread of the runs. The full report of each is linked.\n\n");
    for o in outcomes {
        let interrupted = if o.report.interrupted {
            " (interrupted: only the phases that ran)"
        } else {
            ""
        };
        let dir = o
            .out_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for t in tables::recommendations(&o.report) {
            let _ = writeln!(md, "## {}{interrupted}\n\n{}\n", t.title, t.note);
            let _ = writeln!(md, "| {} |", t.headers.join(" | "));
            let _ = writeln!(md, "|{}|", vec!["---"; t.headers.len()].join("|"));
            for row in &t.rows {
                let _ = writeln!(md, "| {} |", row.join(" | ").replace('\n', " "));
            }
            let _ = writeln!(md, "\nFull report: [{dir}/report.md]({dir}/report.md)\n");
        }
        if o.report.loss {
            let _ = writeln!(
                md,
                "> **This scenario's run saw loss or errors**: see its report.\n"
            );
        }
    }
    let md_path = base.join("decision.md");
    std::fs::write(&md_path, md)?;
    Ok(vec![md_path, json_path])
}
