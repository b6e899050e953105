//! `--scenario`: runs each named workload as a run of its own (its report in
//! `<out>/<scenario>/`), then writes `<out>/decision.md` and `decision.json`, which open with a
//! recommendation per scenario and link each scenario's full report. Into a directory that has
//! a decision already, the scenarios not run this time keep their entries: `--scenario game`
//! adds the game to a committed `--scenario all` without measuring the rest again.

use std::{ffi::OsString, path::PathBuf};

use anyhow::Context as _;

use super::{assemble::default_out_dir, execute, Mode, Outcome};
use crate::{plan::Plan, scenario};

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
            let (runs, estimate) = estimate(&s.plan(&user)?)?;
            total += estimate;
            eprintln!(
                "loadgen: scenario {}: {runs} phases, about {:.0} s",
                s.name,
                estimate.as_secs_f64()
            );
        }
        eprintln!(
            "loadgen: {} scenario(s), about {:.1} min in all",
            scenarios.len(),
            total.as_secs_f64() / 60.0
        );
    }
    let base = crate::plan::out_dir(&user)?.unwrap_or_else(|| default_out_dir(&chrono::Utc::now()));
    let mut outcomes = Vec::new();
    let mut uses = Vec::new();
    for s in &scenarios {
        let mut plan = s
            .plan(&user)
            .with_context(|| format!("scenario {}", s.name))?;
        plan.output.out = Some(base.join(&s.name));
        plan.output.scenario = Some(scenario::info(s, &user));
        if mode == Mode::Cli && !plan.output.quiet {
            eprintln!("loadgen: scenario {}: {}", s.name, s.summary);
        }
        if let Some(usecase) = plan.usecase {
            // Its own driver and its own ranking (`loadgen usecase`); no report.json.
            let out = crate::usecase::run(usecase_args(&plan, usecase)?)
                .await
                .with_context(|| format!("scenario {}", s.name))?;
            if mode == Mode::Cli {
                println!(
                    "scenario {}: {}",
                    s.name,
                    base.join(&s.name).join("usecases.md").display()
                );
            }
            uses.push((out, s.name.clone()));
            continue;
        }
        let outcome = execute(plan, mode)
            .await
            .with_context(|| format!("scenario {}", s.name))?;
        let stop = outcome.report.interrupted;
        outcomes.push(outcome);
        if stop {
            break;
        }
    }
    let files = write_decision(&base, &outcomes, &uses)?;
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

/// How many phases (runs, for the game and the job log) a scenario's `plan` has, and about how
/// long they take.
///
/// # Errors
/// When its use case's flags do not parse.
pub fn estimate(plan: &Plan) -> anyhow::Result<(usize, std::time::Duration)> {
    Ok(match plan.usecase {
        Some(usecase) => usecase_args(plan, usecase)?.estimate(),
        None => (plan.phases.len(), plan.estimate()),
    })
}

/// What a scenario run with `--usecase` asks `loadgen usecase` for: `--clients` is players,
/// or jobs.
fn usecase_args(
    plan: &Plan,
    usecase: crate::plan::Usecase,
) -> anyhow::Result<crate::usecase::UsecaseArgs> {
    let mut a = crate::usecase::UsecaseArgs::defaults(usecase.workload)?;
    a.transports = plan.transports.clone();
    a.networks = plan.network_list.clone();
    a.tls = usecase.tls;
    a.repeat = usecase.repeat;
    a.clients = usecase.clients;
    a.jobs = usecase.clients;
    a.duration = plan.duration;
    a.poll_interval = plan.workload.poll_interval;
    a.out = plan.output.out.clone();
    a.server_bin = plan.servers.server_bin.clone();
    Ok(a)
}

/// `decision.json` (every recommendation, with where its report is) and `decision.md`, with
/// the scenarios this run measured and those the directory's decision already listed.
fn write_decision(
    base: &std::path::Path,
    outcomes: &[Outcome],
    uses: &[(crate::usecase::Results, String)],
) -> anyhow::Result<Vec<PathBuf>> {
    let reports: Vec<(&feedlab_report::Report, String)> = outcomes
        .iter()
        .map(|o| {
            let dir = o
                .out_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (&o.report, dir)
        })
        .collect();
    let uses: Vec<(&crate::usecase::Results, String)> =
        uses.iter().map(|(r, dir)| (r, dir.clone())).collect();
    feedlab_report::decision::update(base, &reports, &uses)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `--scenario all` may plan to take on a 2-core machine: a run someone starts and
    /// waits for, not an overnight job. Four runs a phase (the fewest with which the rank test
    /// can reach 5%): the six feed scenarios plan about 23 minutes, the game (three links ×
    /// four transports × four runs of 10 s, its p99.9 resting on about 24 samples a run) about
    /// 10 and the job log (four transports × four runs of one 22-second job) about 6; runs
    /// have taken up to a tenth longer than planned (connecting across emulated links,
    /// starting servers, writing reports), so a plan of 43 minutes keeps the run itself within
    /// about 47.
    const ALL_BUDGET: std::time::Duration = std::time::Duration::from_secs(43 * 60);

    #[test]
    fn every_scenario_together_fits_the_budget() {
        let total: std::time::Duration = crate::scenario::names()
            .into_iter()
            .map(|n| {
                let plan = crate::scenario::Scenario::load(n)
                    .unwrap()
                    .plan(&[])
                    .unwrap();
                estimate(&plan).unwrap().1
            })
            .sum();
        assert!(total <= ALL_BUDGET, "--scenario all plans {total:?}");
        // The RTT sweep runs each of its phases on every link it names.
        let plan = crate::scenario::Scenario::load("rtt-sweep")
            .unwrap()
            .plan(&[])
            .unwrap();
        assert!(plan.links >= 4 && plan.networks == plan.links, "{plan:?}");
    }
}
