//! `loadgen decide`: which transport for a workload, answered in a second from the committed cost
//! model (`results/model/model.json`, made by `loadgen costs`), with no run.
//!
//! A measured run answers for the few seconds it ran; a team asks about hours of sessions, its
//! own event rate and its own audience. The model holds what each cost is where it occurs, so
//! any workload composes from it, and the answer names the figures' source, what it had to
//! extrapolate, and what would change it. This module only turns flags and scenario files into
//! a [`Workload`]; the composition, the bill and the ranking rule are `feedlab-cost`'s, the same
//! rule the scenario reports use.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use feedlab_cost::{
    decide::{decide, Answer},
    model::{Condition, CostModel},
    prices::{Balancer, Prices},
    rank::Rule,
    workload::Workload,
};

use crate::scenario::{self, Scenario};

/// Where the committed model is, in the repository this loadgen was built from.
pub const MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../results/model/model.json");

/// `loadgen decide`.
#[derive(Debug, Clone, clap::Args)]
pub struct DecideArgs {
    /// Concurrent clients. Any workload flag answers that workload; with none, every named
    /// scenario is answered, one line each.
    #[arg(long, help_heading = "Workload")]
    pub clients: Option<u64>,
    /// How long one client stays connected (e.g. `20m`, `8h`).
    #[arg(long, value_parser = humantime::parse_duration, help_heading = "Workload")]
    pub session: Option<std::time::Duration>,
    /// Events each client receives per hour.
    #[arg(long, help_heading = "Workload")]
    pub events_per_hour: Option<f64>,
    /// Messages each client sends per hour.
    #[arg(long, help_heading = "Workload")]
    pub messages_per_hour: Option<f64>,
    /// The events' payload kind (`chat`, `tick`, `metrics`, `padding`).
    #[arg(long, help_heading = "Workload")]
    pub payload: Option<String>,
    /// The network the clients are on (`loopback`, or a profile the model measured).
    #[arg(long, help_heading = "Workload")]
    pub network: Option<String>,
    /// p99 delivery latency the application can bear, ms.
    #[arg(long, help_heading = "Workload")]
    pub latency_budget_ms: Option<f64>,
    /// One named scenario's workload (its `[workload]` table), instead of flags.
    #[arg(long, help_heading = "Workload")]
    pub scenario: Option<String>,

    /// The conditions the costs were measured under: `browser` (TLS, HTTP/2 for polls and SSE,
    /// compression, browser request heads) or `plain-h1`.
    #[arg(long, default_value = "browser", value_parser = parse_condition, help_heading = "Rule and prices")]
    pub conditions: Condition,
    /// Differences smaller than this fraction are ties.
    #[arg(long, default_value_t = 0.10, help_heading = "Rule and prices")]
    pub threshold: f64,
    /// The load balancer priced: `alb` (the default) or `nlb`.
    #[arg(long, default_value = "alb", help_heading = "Rule and prices")]
    pub balancer: String,
    /// $ per vCPU-hour (default: Fargate, Linux/x86, us-east-1).
    #[arg(long, help_heading = "Rule and prices")]
    pub price_vcpu_hour: Option<f64>,
    /// $ per GiB-hour of memory (default: Fargate, Linux/x86, us-east-1).
    #[arg(long, help_heading = "Rule and prices")]
    pub price_gib_hour: Option<f64>,
    /// $ per GB of egress to the internet (default: EC2 us-east-1, first 10 TB).
    #[arg(long, help_heading = "Rule and prices")]
    pub price_egress_gb: Option<f64>,
    /// $ per million requests, for a front that bills requests (default 0: the balancer's
    /// capacity units count them).
    #[arg(long, help_heading = "Rule and prices")]
    pub price_million_requests: Option<f64>,

    /// The cost model (default: the committed `results/model/model.json`).
    #[arg(long, help_heading = "Output")]
    pub model: Option<PathBuf>,
    /// The answer as JSON.
    #[arg(long, help_heading = "Output", conflicts_with = "markdown")]
    pub json: bool,
    /// The named scenarios' answers as the Markdown table the README opens with.
    #[arg(long, help_heading = "Output")]
    pub markdown: bool,
}

fn parse_condition(s: &str) -> Result<Condition, String> {
    s.parse()
}

/// The defaults of a workload given only in part: a tab open 20 minutes, a notification a
/// minute, a thousand clients, short chat-sized messages, on loopback.
const DEFAULT_CLIENTS: u64 = 1000;
const DEFAULT_SESSION_S: f64 = 1200.0;
const DEFAULT_EVENTS_PER_HOUR: f64 = 60.0;

impl DecideArgs {
    fn asks_a_workload(&self) -> bool {
        self.clients.is_some()
            || self.session.is_some()
            || self.events_per_hour.is_some()
            || self.messages_per_hour.is_some()
            || self.payload.is_some()
            || self.network.is_some()
            || self.latency_budget_ms.is_some()
    }

    fn prices(&self) -> anyhow::Result<Prices> {
        let mut p = Prices {
            balancer: Balancer::named(&self.balancer).map_err(anyhow::Error::msg)?,
            ..Prices::default()
        };
        if let Some(v) = self.price_vcpu_hour {
            p.vcpu_hour = v;
        }
        if let Some(v) = self.price_gib_hour {
            p.gib_hour = v;
        }
        if let Some(v) = self.price_egress_gb {
            p.egress_gb = v;
        }
        if let Some(v) = self.price_million_requests {
            p.million_requests = v;
        }
        p.check().map_err(anyhow::Error::msg)?;
        Ok(p)
    }

    fn flags_workload(&self) -> Workload {
        Workload {
            clients: self.clients.unwrap_or(DEFAULT_CLIENTS),
            session_s: self.session.map_or(DEFAULT_SESSION_S, |d| d.as_secs_f64()),
            events_per_hour: self.events_per_hour.unwrap_or(DEFAULT_EVENTS_PER_HOUR),
            messages_per_hour: self.messages_per_hour.unwrap_or(0.0),
            payload: self.payload.clone().unwrap_or_else(|| "chat".into()),
            network: self.network.clone().unwrap_or_else(|| "loopback".into()),
            condition: self.conditions,
            latency_budget_ms: self.latency_budget_ms,
        }
    }
}

/// The workload a scenario stands for, or `None` when it has no `[workload]` table (a sweep).
///
/// # Errors
/// When its session length does not parse.
pub fn scenario_workload(s: &Scenario, condition: Condition) -> anyhow::Result<Option<Workload>> {
    let Some(w) = &s.workload else {
        return Ok(None);
    };
    let session = humantime::parse_duration(&w.session.value)
        .with_context(|| format!("scenario {}: session {:?}", s.name, w.session.value))?;
    let flag = |name: &str| s.flags.get(name).map(|v| v.value.clone());
    Ok(Some(Workload {
        clients: w.clients.value,
        session_s: session.as_secs_f64(),
        events_per_hour: w.events_per_hour.value,
        messages_per_hour: w.messages_per_hour.value,
        payload: flag("payload").unwrap_or_else(|| "padding".into()),
        network: flag("network").unwrap_or_else(|| "loopback".into()),
        condition,
        latency_budget_ms: Some(s.requirements.p99_latency_ms.value),
    }))
}

/// Reads and checks a cost model.
///
/// # Errors
/// When it is missing (with the command that makes one), unreadable, or unsound.
pub fn load_model(path: &Path) -> anyhow::Result<CostModel> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no cost model at {}: make one with `loadgen costs`, or give --model",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let model: CostModel = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a cost model", path.display()))?;
    model
        .check()
        .with_context(|| format!("{} cannot be used", path.display()))?;
    Ok(model)
}

/// What `decide` prints: the answer for one workload, or one line per named scenario.
///
/// # Errors
/// A refusal (nonsense workload, missing model, unknown scenario or balancer), with its reason.
pub fn run(args: &DecideArgs) -> anyhow::Result<String> {
    let model = load_model(args.model.as_deref().unwrap_or(Path::new(MODEL)))?;
    let prices = args.prices()?;
    let rule = Rule {
        threshold: args.threshold,
        ..Rule::default()
    };
    rule.check().map_err(anyhow::Error::msg)?;
    if args.scenario.is_some() && args.asks_a_workload() {
        bail!("give either --scenario or workload flags, not both");
    }
    let one = |w: &Workload| -> anyhow::Result<Answer> { Ok(decide(&model, w, &prices, rule)?) };
    if let Some(name) = &args.scenario {
        let s = Scenario::load(name)?;
        let Some(w) = scenario_workload(&s, args.conditions)? else {
            bail!("scenario {name} has no [workload] table: it is a sweep, not an application");
        };
        let a = one(&w)?;
        return render(args, &[(name.clone(), a)], false);
    }
    if args.asks_a_workload() {
        let a = one(&args.flags_workload())?;
        return render(args, &[("your workload".into(), a)], false);
    }
    let mut answers = Vec::new();
    for name in scenario::names() {
        let s = Scenario::load(name)?;
        if let Some(w) = scenario_workload(&s, args.conditions)? {
            answers.push((name.to_string(), one(&w)?));
        }
    }
    render(args, &answers, true)
}

fn render(
    args: &DecideArgs,
    answers: &[(String, Answer)],
    summary: bool,
) -> anyhow::Result<String> {
    let json = args.json;
    if args.markdown {
        return Ok(markdown(answers));
    }
    if json {
        let v: Vec<serde_json::Value> = answers
            .iter()
            .map(|(name, a)| serde_json::json!({ "name": name, "answer": a }))
            .collect();
        return Ok(serde_json::to_string_pretty(&v)? + "\n");
    }
    if !summary {
        return Ok(answers.iter().map(|(_, a)| a.text()).collect());
    }
    let mut out = String::from(
        "No workload given: the named scenarios' workloads (their [workload] tables), one line each.\n\
         `loadgen decide --scenario NAME` gives one in full; workload flags give your own.\n\n",
    );
    for (name, a) in answers {
        let first = &a.standings[0];
        out += &format!(
            "{name:<14} {} (${:.2} per million client-hours; largest line: {})\n",
            a.verdict,
            first.total_median,
            first.dominant.label()
        );
    }
    if let Some((_, a)) = answers.first() {
        let r = &a.record;
        out += &format!(
            "\nFigures: {} ({} build of commit {}{}, {}, {} cores, {}).\n",
            a.workload.condition.name(),
            r.profile,
            r.commit,
            if r.dirty { ", uncommitted changes" } else { "" },
            r.cpu_model,
            r.cores,
            r.date
        );
    }
    Ok(out)
}

/// One row per answer: the pick (or the tie), the runner-up, the margin and what decided it,
/// and the workload it answers for.
fn markdown(answers: &[(String, Answer)]) -> String {
    let mut out = String::from(
        "| scenario | pick | runner-up | margin | decided by | workload |\n|---|---|---|---|---|---|\n",
    );
    for (name, a) in answers {
        let leaders: Vec<&str> = a
            .standings
            .iter()
            .filter(|s| s.rank == 1)
            .map(|s| s.transport.as_str())
            .collect();
        let next = a.standings.iter().find(|s| s.rank > 1);
        let (pick, runner_up, margin, decided) = if leaders.len() > 1 {
            (
                format!("tie: {}", leaders.join(", ")),
                next.map_or("–".to_string(), |s| s.transport.clone()),
                next.and_then(|s| s.decided_by.as_ref())
                    .map_or("–".to_string(), margin),
                next.and_then(|s| s.decided_by.as_ref())
                    .map_or("nothing separates them".to_string(), |d| {
                        format!("{} (for the runner-up)", d.criterion)
                    }),
            )
        } else {
            let d = next.and_then(|s| s.decided_by.as_ref());
            (
                leaders.first().copied().unwrap_or("–").to_string(),
                next.map_or("–".to_string(), |s| s.transport.clone()),
                d.map_or("–".to_string(), margin),
                d.map_or("–".to_string(), |d| d.criterion.clone()),
            )
        };
        let w = &a.workload;
        out += &format!(
            "| {name} | {pick} | {runner_up} | {margin} | {decided} | {} clients, {} sessions, {} events/h{}, {} |\n",
            w.clients,
            humantime::format_duration(std::time::Duration::from_secs_f64(w.session_s)),
            w.events_per_hour,
            if w.messages_per_hour > 0.0 {
                format!(", {} messages/h up", w.messages_per_hour)
            } else {
                String::new()
            },
            w.condition.name(),
        );
    }
    out
}

/// A decision's margin: how much more the lower-placed costs, or that it is over the budget.
fn margin(d: &feedlab_cost::rank::Decision) -> String {
    if d.criterion == "the latency budget" {
        "over budget".into()
    } else {
        d.margin_percent()
    }
}
