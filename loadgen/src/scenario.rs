//! Scenarios: named workloads that answer "which transport, for my application?" instead of
//! one workload shape. A scenario is a set of loadgen's own flags, each with the reason for its
//! value, and the requirements the transports are judged against (a p99 latency budget, then
//! the costs that matter for that application, in order). The built-in ones are TOML files in
//! `loadgen/scenarios/`, compiled in; a user's own is a file of the same shape.
//!
//! A flag given on the command line (or in its `LOADGEN_*` variable) wins over the scenario's
//! value, so `--scenario dashboard --duration 4s --clients 100` is a quick look at the same
//! shape. The scenario is applied by building the argument list it stands for and parsing it
//! with the same parser as the command line, so a scenario can say nothing a user could not.

use std::{collections::BTreeMap, ffi::OsString, path::Path};

use anyhow::{bail, Context as _};
use clap::{parser::ValueSource, CommandFactory as _};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use feedlab_report::model::scenario::{Cost, FlagUse, Requirements, ScenarioInfo, Why};

use crate::{cli::Cli, plan::Plan};

/// The built-in scenarios, in the order `all` runs them.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "notifications",
        include_str!("../scenarios/notifications.toml"),
    ),
    ("dashboard", include_str!("../scenarios/dashboard.toml")),
    ("ticker", include_str!("../scenarios/ticker.toml")),
    ("chat", include_str!("../scenarios/chat.toml")),
    ("mobile", include_str!("../scenarios/mobile.toml")),
    ("rtt-sweep", include_str!("../scenarios/rtt-sweep.toml")),
    ("game", include_str!("../scenarios/game.toml")),
    ("progress", include_str!("../scenarios/progress.toml")),
];

/// A scenario file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub summary: String,
    /// loadgen flags by long name (without `--`), each with its reason.
    pub flags: BTreeMap<String, Why<String>>,
    pub requirements: Requirements,
    /// The application this scenario stands for, as `loadgen decide` prices it from the cost
    /// model (a measured run is seconds long; the workload is the hours it stands for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<ScenarioWorkload>,
}

/// A scenario's workload for the cost model, each figure with its reason.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioWorkload {
    /// Concurrent clients.
    pub clients: Why<u64>,
    /// How long one client stays connected (humantime, e.g. `20m`).
    pub session: Why<String>,
    /// Events each client receives per hour.
    pub events_per_hour: Why<f64>,
    /// Messages each client sends per hour.
    #[serde(default = "no_messages")]
    pub messages_per_hour: Why<f64>,
}

fn no_messages() -> Why<f64> {
    Why {
        value: 0.0,
        why: "clients only listen".into(),
    }
}

impl Scenario {
    /// A scenario from TOML text.
    ///
    /// # Errors
    /// When the text is not a scenario, or names a flag loadgen does not have.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let s: Self = toml::from_str(text)?;
        let command = Cli::command();
        for name in s.flags.keys() {
            if name == "scenario" {
                bail!("a scenario cannot name another (--scenario in its flags)");
            }
            if !command.get_arguments().any(|a| a.get_long() == Some(name)) {
                bail!(
                    "scenario {:?} sets --{name}, which loadgen does not have",
                    s.name
                );
            }
        }
        let budget = s.requirements.p99_latency_ms.value;
        if budget.is_nan() || budget <= 0.0 {
            bail!("scenario {:?}: p99_latency_ms must be more than 0", s.name);
        }
        if s.requirements.priority.value.is_empty() {
            bail!("scenario {:?}: priority names no cost", s.name);
        }
        Ok(s)
    }

    /// The built-in scenario `name`, or the scenario file at that path.
    ///
    /// # Errors
    /// When there is no such scenario or the file is not one.
    pub fn load(name: &str) -> anyhow::Result<Self> {
        if let Some((_, text)) = BUILT_IN.iter().find(|(n, _)| *n == name) {
            return Self::parse(text).with_context(|| format!("built-in scenario {name}"));
        }
        let path = Path::new(name);
        if path.extension().is_some_and(|e| e == "toml") || path.exists() {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading scenario file {}", path.display()))?;
            return Self::parse(&text).with_context(|| format!("scenario file {}", path.display()));
        }
        bail!(
            "no scenario {name:?}: the built-in ones are {} (or `all`), or give a .toml file",
            names().join(", ")
        )
    }

    /// The plan this scenario stands for, with every flag of `user` (the command line, without
    /// the program name) or of a `LOADGEN_*` variable taking precedence.
    ///
    /// # Errors
    /// When the combined arguments do not parse or make no runnable plan.
    pub fn plan(&self, user: &[OsString]) -> anyhow::Result<Plan> {
        let given = given_by_user(user)?;
        let mut argv: Vec<OsString> = Vec::new();
        for (name, v) in &self.flags {
            if given.contains(name) {
                continue;
            }
            if v.value == "true" {
                argv.push(format!("--{name}").into());
            } else {
                argv.push(format!("--{name}={}", v.value).into());
            }
        }
        argv.extend(user.iter().cloned());
        Plan::from_argv(argv)
    }
}

/// The long names of the flags `user` (the command line without the program name) or a
/// `LOADGEN_*` variable sets: the ones a scenario must leave alone.
fn given_by_user(user: &[OsString]) -> Result<Vec<String>, clap::Error> {
    let command = Cli::command();
    let matches = command.clone().try_get_matches_from(
        std::iter::once(OsString::from("loadgen")).chain(user.iter().cloned()),
    )?;
    Ok(command
        .get_arguments()
        .filter(|a| {
            matches!(
                matches.value_source(a.get_id().as_str()),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        })
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect())
}

/// The names of the built-in scenarios.
pub fn names() -> Vec<&'static str> {
    BUILT_IN.iter().map(|(n, _)| *n).collect()
}

/// `--scenario` values, `all` expanded, each loaded.
///
/// # Errors
/// When one cannot be loaded.
pub fn resolve(asked: &[String]) -> anyhow::Result<Vec<Scenario>> {
    let mut out: Vec<Scenario> = Vec::new();
    for name in asked {
        let batch = if name == "all" {
            names()
                .into_iter()
                .map(Scenario::load)
                .collect::<anyhow::Result<Vec<_>>>()?
        } else {
            vec![Scenario::load(name)?]
        };
        for s in batch {
            if !out.iter().any(|o| o.name == s.name) {
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// What the report says about scenario `s`, run with the command line `user`.
pub fn info(s: &Scenario, user: &[OsString]) -> ScenarioInfo {
    let given = given_by_user(user).unwrap_or_default();
    let flags = s
        .flags
        .iter()
        .map(|(name, v)| {
            let overridden = given.contains(name);
            FlagUse {
                flag: name.clone(),
                value: v.value.clone(),
                why: v.why.clone(),
                overridden,
            }
        })
        .collect();
    ScenarioInfo {
        name: s.name.clone(),
        summary: s.summary.clone(),
        flags,
        requirements: s.requirements.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn every_built_in_scenario_parses_and_gives_each_value_a_reason() {
        for name in names() {
            let s = Scenario::load(name).unwrap();
            assert_eq!(s.name, name);
            assert!(s.flags.values().all(|v| !v.why.trim().is_empty()), "{name}");
            assert!(!s.requirements.priority.why.trim().is_empty(), "{name}");
            let plan = s.plan(&[]).unwrap();
            assert!(
                plan.phases.iter().all(|p| p.repeats >= 3),
                "{name}: scenarios repeat at least 3 times"
            );
        }
    }

    #[test]
    fn the_command_line_wins_over_the_scenario() {
        let s = Scenario::load("dashboard").unwrap();
        let plan = s
            .plan(&os(&[
                "--scenario",
                "dashboard",
                "--duration",
                "4s",
                "--clients",
                "100",
            ]))
            .unwrap();
        assert_eq!(plan.duration, std::time::Duration::from_secs(4));
        assert!(plan.phases.iter().all(|p| p.clients == 100));
        assert!(
            plan.phases.iter().all(|p| p.rate == 1.0),
            "the scenario's rate stays"
        );
        let info = info(&s, &os(&["--clients", "100"]));
        let clients = info.flags.iter().find(|f| f.flag == "clients").unwrap();
        assert!(clients.overridden);
        assert!(
            !info
                .flags
                .iter()
                .find(|f| f.flag == "rate")
                .unwrap()
                .overridden
        );
    }

    #[test]
    fn bad_scenarios_are_refused_with_the_reason() {
        let e = Scenario::load("nope").unwrap_err().to_string();
        assert!(e.contains("dashboard") && e.contains("all"), "{e}");
        let text = r#"
            name = "x"
            summary = "y"
            [flags]
            warp-speed = { value = "9", why = "z" }
            [requirements]
            p99_latency_ms = { value = 10, why = "z" }
            priority = { value = ["bytes_per_event"], why = "z" }
        "#;
        let e = Scenario::parse(text).unwrap_err().to_string();
        assert!(e.contains("--warp-speed"), "{e}");
        let e = Scenario::parse(
            &text
                .replace("warp-speed", "clients")
                .replace("bytes_per_event", "vibes"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("vibes") || e.contains("unknown variant"), "{e}");
        assert_eq!(
            resolve(&["all".into(), "ticker".into()]).unwrap().len(),
            names().len()
        );
    }
}
