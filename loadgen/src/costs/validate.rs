//! `loadgen costs --validate`: the model's composition against reality.
//!
//! For each workload, a direct run of whole sessions per transport and condition on a server of
//! its own: every client connects (at a random moment of a short ramp), holds its session for
//! the workload's length receiving the feed (and, talking back, sending its messages), and
//! closes; the server's CPU from before the first connect to after the last close, and every
//! byte the clients' sockets carried, divided by the client-hours the sessions lasted. Nothing
//! is extrapolated: the run is the workload. Each is repeated (`--validate-repeats`, default 3)
//! and its median compared with [`feedlab_cost::compose::compose`] of the model for the same
//! workload: within 15% on CPU and on bytes, or, where the direct runs' own spread (max − min
//! over the median) is wider than 15%, within that spread.
//!
//! The workloads (full; `--quick` shrinks them to seconds):
//! - `quiet`: 300 clients in 10-minute sessions, one event every 3 minutes, heartbeats carry
//!   the connection; its transports run at once on separate servers (CPU is per process) and
//!   its repeats one after another, ~11 minutes each. Not all repeats at once: with three
//!   times as many servers sharing the servers' core as in the model's windows, a beat cost
//!   about 20 µs more in the direct runs than in the windows (the quiet workload missed by
//!   21–48% on CPU), so the direct runs share the core as the windows do. 300 rather than 100
//!   clients because a quiet client costs so little that at 100 the server's own idle CPU
//!   (subtracted) is as large as the clients' whole bill.
//! - `busy` and `talk-back`: 100 clients each.
//! - `busy`: 2-minute sessions, 10 events a second.
//! - `talk-back`: 2-minute sessions, 1 event a second from the backend and every client sending
//!   one message every 10 s into the same feed (a chat room: every client receives every
//!   message, so the events each client receives are the backend's plus all clients').
//!
//! Every workload runs its transports and conditions at once (one server each) and its repeats
//! one after another (`--quick`'s quiet workload runs its repeats at once too).

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use feedlab_cost::{
    compose::compose,
    measured::median,
    model::{Condition, CostModel},
    workload::Workload,
};
use feedlab_wire::Transport;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{
    client::{self, Setup, Talk, Tally},
    server::{self, Server},
    CostsArgs, Plan,
};
use crate::{
    client::publisher,
    heads::{self, Heads},
};

/// How long a direct run's server is measured idle, before the run and again after it: a
/// tenth of the session, at least 1 s and at most the model's 60 s idle window.
pub fn idle_window(session_s: f64) -> Duration {
    Duration::from_secs_f64((session_s / 10.0).clamp(1.0, 60.0))
}

/// The agreement asked for.
pub const TOLERANCE: f64 = 0.15;

/// One validation workload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    pub name: String,
    pub clients: u32,
    pub session_s: f64,
    /// Backend events per second.
    pub rate: f64,
    /// Messages each client sends per second.
    pub send_rate: f64,
    /// Whether its repeats run at once.
    pub parallel_repeats: bool,
}

impl Spec {
    pub fn all(quick: bool) -> Vec<Spec> {
        if quick {
            return vec![
                Spec {
                    name: "quiet".into(),
                    clients: 8,
                    session_s: 5.0,
                    rate: 0.4,
                    send_rate: 0.0,
                    parallel_repeats: true,
                },
                Spec {
                    name: "busy".into(),
                    clients: 8,
                    session_s: 3.0,
                    rate: 5.0,
                    send_rate: 0.0,
                    parallel_repeats: false,
                },
                Spec {
                    name: "talk-back".into(),
                    clients: 8,
                    session_s: 3.0,
                    rate: 1.0,
                    send_rate: 0.5,
                    parallel_repeats: false,
                },
            ];
        }
        vec![
            Spec {
                name: "quiet".into(),
                clients: 300,
                session_s: 600.0,
                rate: 1.0 / 180.0,
                send_rate: 0.0,
                parallel_repeats: false,
            },
            Spec {
                name: "busy".into(),
                clients: 100,
                session_s: 120.0,
                rate: 10.0,
                send_rate: 0.0,
                parallel_repeats: false,
            },
            Spec {
                name: "talk-back".into(),
                clients: 100,
                session_s: 120.0,
                rate: 1.0,
                send_rate: 0.1,
                parallel_repeats: false,
            },
        ]
    }

    /// The workload as `decide` takes it: events each client receives (the backend's and,
    /// talking back, every client's messages), messages each sends.
    pub fn workload(&self, condition: Condition, payload: &str) -> Workload {
        Workload {
            clients: self.clients as u64,
            session_s: self.session_s,
            events_per_hour: (self.rate + self.clients as f64 * self.send_rate) * 3600.0,
            messages_per_hour: self.send_rate * 3600.0,
            payload: payload.to_owned(),
            network: "loopback".into(),
            condition,
            latency_budget_ms: None,
        }
    }
}

/// One direct run's totals, per client-hour.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Direct {
    /// Server CPU, s, less the server's own idle CPU over the run (as the model's figures are).
    pub cpu_s: f64,
    /// That idle CPU, s (a per-server cost: it shrinks per client-hour as clients grow).
    pub idle_cpu_s: f64,
    pub bytes_up: f64,
    pub bytes_down: f64,
    pub events: f64,
    pub beats: f64,
    pub errors: u64,
    /// The last client error, when there were any.
    pub last_error: Option<String>,
    /// Message connections the clients had to open again (the server had closed them).
    pub reopened: u64,
}

/// One transport and condition of one workload: prediction against the direct runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    pub workload: String,
    pub transport: String,
    pub condition: Condition,
    pub predicted: Direct,
    pub extrapolated: Vec<String>,
    pub runs: Vec<Direct>,
    pub cpu: Figure,
    pub bytes: Figure,
}

/// One figure compared.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Figure {
    pub predicted: f64,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// (predicted − median) ÷ median.
    pub error: f64,
    /// (max − min) ÷ median of the direct runs.
    pub spread: f64,
    /// max(15%, spread).
    pub tolerance: f64,
    pub ok: bool,
}

impl Figure {
    fn of(predicted: f64, runs: &[f64]) -> Self {
        let med = median(runs);
        let min = runs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = runs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let error = (predicted - med) / med;
        let spread = (max - min) / med;
        let tolerance = TOLERANCE.max(spread);
        Self {
            predicted,
            median: med,
            min,
            max,
            error,
            spread,
            tolerance,
            ok: error.abs() <= tolerance,
        }
    }
}

/// The validation's file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Validation {
    /// Where and how the direct runs were made (none in a file made before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<feedlab_report::Record>,
    pub model_record: feedlab_cost::model::Record,
    /// When the predictions were computed again from the same direct runs (`--recompose`):
    /// the date and the commit that did it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recomposed: Option<String>,
    pub date: String,
    pub command: String,
    pub duration_s: f64,
    pub repeats: u32,
    pub workloads: Vec<Spec>,
    /// Where the servers and loadgen ran (as the model's `settings.pinning`); absent when they
    /// shared every core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinning: Option<String>,
    /// loadgen's own CPU over the direct runs, as a share of the cores it ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loadgen_cpu_share: Option<f64>,
    pub comparisons: Vec<Comparison>,
}

/// Runs the validation against the model in `--out`; returns the model.
///
/// # Errors
/// When the model is missing or a run fails.
pub async fn run(args: &CostsArgs) -> anyhow::Result<CostModel> {
    let plan = Plan::build(args).map_err(anyhow::Error::msg)?;
    let model = super::load(&plan.out.join("model.json"))?;
    crate::sys::raise_nofile_limit();
    let started = std::time::Instant::now();
    let date = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let record = crate::sys::record(&date);
    let repeats = args.validate_repeats.unwrap_or(3);
    anyhow::ensure!(
        args.validate_scale.is_finite() && args.validate_scale > 0.0,
        "--validate-scale must be positive"
    );
    let specs: Vec<Spec> = Spec::all(plan.quick)
        .into_iter()
        .map(|mut s| {
            s.session_s *= args.validate_scale;
            if s.name == "quiet" {
                s.rate /= args.validate_scale;
            }
            s
        })
        .filter(|s| args.workloads.iter().any(|w| w == "all" || *w == s.name))
        .collect();
    anyhow::ensure!(
        !specs.is_empty(),
        "--workloads: none of quiet, busy, talk-back"
    );
    let logs = plan.out.join("logs");
    std::fs::create_dir_all(&logs)?;
    let pinning = plan
        .server
        .pinning
        .as_ref()
        .map(super::pinning::Pinning::describe);
    if pinning != model.settings.pinning {
        eprintln!(
            "validation: warning: the model was measured with {}, these runs with {}: their CPU \
             figures are not made alike",
            model
                .settings
                .pinning
                .as_deref()
                .unwrap_or("servers and loadgen on every core"),
            pinning
                .as_deref()
                .unwrap_or("servers and loadgen on every core"),
        );
    }
    let busy = super::pinning::LoadgenBusy::start(plan.server.pinning.as_ref())
        .context("keeping loadgen on its CPUs")?;
    // The model's own settings, so the direct runs beat as the model's windows did.
    let mut settings = plan.server.clone();
    settings.heartbeat = Duration::from_secs_f64(model.settings.heartbeat_s);
    settings.long_poll_timeout = Duration::from_secs_f64(model.settings.long_poll_timeout_s);
    let poll_interval = Duration::from_secs_f64(model.settings.poll_interval_s);
    let browser_heads = Arc::new(Heads::browser(&plan.heads));
    let cookie = heads::cookie(plan.cookie_bytes);
    let pairs: Vec<(Condition, Transport)> = plan
        .pairs()
        .into_iter()
        .filter(|(c, t)| model.find(t.name(), *c).is_some())
        .collect();
    anyhow::ensure!(
        !pairs.is_empty(),
        "the model has none of the transports and conditions asked for"
    );
    let ctx = Ctx {
        settings,
        poll_interval,
        browser_heads,
        cookie,
        payload: plan.payload,
        logs,
    };
    let mut comparisons = Vec::new();
    for spec in &specs {
        eprintln!(
            "validation: {} ({} clients, {:.0} s sessions, {} events/s, {} messages/s each), {} runs each",
            spec.name, spec.clients, spec.session_s, spec.rate, spec.send_rate, repeats
        );
        // runs[pair][repeat]
        let mut runs: Vec<Vec<Direct>> = vec![Vec::new(); pairs.len()];
        let batches: Vec<Vec<(usize, u32)>> = if spec.parallel_repeats {
            vec![(0..repeats)
                .flat_map(|r| (0..pairs.len()).map(move |p| (p, r)))
                .collect()]
        } else {
            (0..repeats)
                .map(|r| (0..pairs.len()).map(|p| (p, r)).collect())
                .collect()
        };
        for batch in batches {
            let results = futures_util::future::join_all(batch.iter().map(|&(p, r)| {
                let (c, t) = pairs[p];
                direct(&ctx, spec, c, t, r)
            }))
            .await;
            for (&(p, _), res) in batch.iter().zip(results) {
                runs[p].push(res?);
            }
        }
        for (p, (c, t)) in pairs.iter().enumerate() {
            let costs = model.find(t.name(), *c).expect("filtered above");
            comparisons.push(compare(costs, spec, *c, *t, plan.payload, runs[p].clone()));
        }
    }
    let v = Validation {
        record: Some(record),
        model_record: model.record.clone(),
        recomposed: None,
        date,
        command: std::iter::once("loadgen".to_owned())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
        duration_s: started.elapsed().as_secs_f64(),
        repeats,
        workloads: specs,
        pinning,
        loadgen_cpu_share: Some(busy.share()),
        comparisons,
    };
    write(&plan.out, &v, started)?;
    Ok(model)
}

/// The model's prediction for one transport and condition of `spec`, against its direct runs.
fn compare(
    costs: &feedlab_cost::model::TransportCosts,
    spec: &Spec,
    c: Condition,
    t: Transport,
    payload: feedlab_wire::payload::PayloadKind,
    runs: Vec<Direct>,
) -> Comparison {
    let w = spec.workload(c, payload.as_str());
    let composed = compose(costs, &w, None);
    let h = &composed.per_client_hour;
    let predicted = Direct {
        cpu_s: h.cpu_s,
        bytes_up: h.bytes_up,
        bytes_down: h.bytes_down,
        events: w.events_per_hour,
        beats: h.beats,
        idle_cpu_s: 0.0,
        errors: 0,
        last_error: None,
        reopened: 0,
    };
    let cpu: Vec<f64> = runs.iter().map(|d| d.cpu_s).collect();
    let bytes: Vec<f64> = runs.iter().map(|d| d.bytes_up + d.bytes_down).collect();
    Comparison {
        workload: spec.name.clone(),
        transport: t.name().to_owned(),
        condition: c,
        cpu: Figure::of(predicted.cpu_s, &cpu),
        bytes: Figure::of(predicted.bytes_up + predicted.bytes_down, &bytes),
        predicted,
        extrapolated: composed.extrapolated,
        runs,
    }
}

/// Writes validation.json and validation.md into `out` and prints the table.
fn write(out: &std::path::Path, v: &Validation, started: std::time::Instant) -> anyhow::Result<()> {
    let json = out.join("validation.json");
    std::fs::write(&json, serde_json::to_string_pretty(v)? + "\n")
        .with_context(|| format!("writing {}", json.display()))?;
    let md = out.join("validation.md");
    let text = markdown(v);
    std::fs::write(&md, &text).with_context(|| format!("writing {}", md.display()))?;
    print!("{text}");
    println!(
        "{} ({:.0} s)",
        md.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `--validate --recompose`: the committed validation's direct runs, predicted again by this
/// loadgen's composition from the model in `--out`. The direct runs do not depend on the model
/// or its composition, so a change to the composition is checked against them without running
/// them again; the file says when and by which commit it was recomposed.
///
/// # Errors
/// When the model or the validation is missing, or a comparison names a transport, condition
/// or workload the files do not have.
pub fn recompose(args: &CostsArgs) -> anyhow::Result<CostModel> {
    let plan = Plan::build(args).map_err(anyhow::Error::msg)?;
    let started = std::time::Instant::now();
    let model = super::load(&plan.out.join("model.json"))?;
    let path = plan.out.join("validation.json");
    let mut v: Validation = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("parsing {}", path.display()))?;
    anyhow::ensure!(
        v.model_record.commit == model.record.commit && v.model_record.date == model.record.date,
        "{} checked another model (made {} at {}) than {} (made {} at {}): run --validate",
        path.display(),
        v.model_record.date,
        v.model_record.commit,
        plan.out.join("model.json").display(),
        model.record.date,
        model.record.commit
    );
    let mut comparisons = Vec::new();
    for old in &v.comparisons {
        let spec = v
            .workloads
            .iter()
            .find(|w| w.name == old.workload)
            .with_context(|| format!("no workload {:?} in {}", old.workload, path.display()))?;
        let t: Transport = old.transport.parse().map_err(anyhow::Error::msg)?;
        let costs = model
            .find(t.name(), old.condition)
            .with_context(|| format!("the model has no {} ({})", t.name(), old.condition.name()))?;
        comparisons.push(compare(
            costs,
            spec,
            old.condition,
            t,
            plan.payload,
            old.runs.clone(),
        ));
    }
    v.comparisons = comparisons;
    let provenance =
        crate::sys::record(&chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    v.recomposed = Some(format!(
        "{} by commit {}{}",
        provenance.date,
        provenance.commit.get(..12).unwrap_or(&provenance.commit),
        if provenance.dirty { " (dirty)" } else { "" }
    ));
    write(&plan.out, &v, started)?;
    Ok(model)
}

/// What every direct run shares.
struct Ctx {
    settings: server::ServerSettings,
    poll_interval: Duration,
    browser_heads: Arc<Heads>,
    cookie: Option<String>,
    payload: feedlab_wire::payload::PayloadKind,
    logs: std::path::PathBuf,
}

/// One direct run: a server of its own, the workload's whole sessions, totals per client-hour.
async fn direct(
    ctx: &Ctx,
    spec: &Spec,
    c: Condition,
    t: Transport,
    r: u32,
) -> anyhow::Result<Direct> {
    let tag = format!("v-{}-r{r}-{}-{}", spec.name, c.name(), t.name());
    let server = Server::start(t, c, &ctx.settings, &ctx.logs, &tag).await?;
    let (heads, cookie) = if c != Condition::PlainH1 {
        (ctx.browser_heads.clone(), ctx.cookie.clone())
    } else {
        (Arc::new(Heads::minimal()), None)
    };
    let mut setup = Setup::new(
        t,
        c,
        server.target.clone(),
        heads,
        cookie,
        ctx.poll_interval,
    );
    // A session polls when it starts; the sessions' own start times spread the polls.
    setup.spread = false;
    let setup = Arc::new(setup);
    // The server's own timers, as in the model's windows: measured alone, before the run and
    // again after it (a tenth of the session each, up to a minute, as long as the model's
    // idle window), then subtracted. A 5 s idle window scaled to a 10-minute run was as large
    // an error as a quiet workload's clients' whole CPU.
    let idle_window = idle_window(spec.session_s);
    let i0 = server.cpu_ns();
    let t0 = std::time::Instant::now();
    tokio::time::sleep(idle_window).await;
    let idle_before = (
        server.cpu_ns().saturating_sub(i0),
        t0.elapsed().as_secs_f64(),
    );
    let tally = Arc::new(Tally::default());
    let session = Duration::from_secs_f64(spec.session_s);
    // Sessions start over a ramp (as users arrive), each lasting exactly the session.
    let ramp = Duration::from_secs_f64((spec.session_s / 20.0).clamp(0.5, 5.0));
    let payload = crate::payload::Payload::new(ctx.payload, 100, u64::from(r));
    let cpu0 = server.cpu_ns();
    let run_start = std::time::Instant::now();
    let publishing = {
        let target = server.target.clone();
        let payload = payload.clone();
        let rate = spec.rate;
        tokio::spawn(async move {
            publisher::run(
                vec![target],
                rate,
                ramp + session,
                payload,
                publisher::Stamp::Sent,
                CancellationToken::new(),
                None,
            )
            .await
        })
    };
    let mut sessions = Vec::new();
    for i in 0..spec.clients {
        let (setup, tally) = (setup.clone(), tally.clone());
        let start = ramp.mul_f64(f64::from(i) / f64::from(spec.clients));
        let talk = (spec.send_rate > 0.0).then(|| {
            Arc::new(Talk {
                rate: spec.send_rate,
                from: u64::from(i) + 1,
                nonce: rand::random(),
                payload: payload.clone(),
            })
        });
        sessions.push(tokio::spawn(async move {
            tokio::time::sleep(start).await;
            let stop = CancellationToken::new();
            let held = tokio::spawn(client::hold(setup, tally, stop.clone(), talk));
            tokio::time::sleep(session).await;
            stop.cancel();
            let _ = held.await;
        }));
    }
    for s in sessions {
        let _ = s.await;
    }
    let _ = publishing.await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seconds = run_start.elapsed().as_secs_f64();
    let cpu_run = server.cpu_ns().saturating_sub(cpu0) as f64;
    let i1 = server.cpu_ns();
    let t1 = std::time::Instant::now();
    tokio::time::sleep(idle_window).await;
    let idle_after = (
        server.cpu_ns().saturating_sub(i1),
        t1.elapsed().as_secs_f64(),
    );
    let idle_ns_per_s =
        (idle_before.0 + idle_after.0) as f64 / (idle_before.1 + idle_after.1).max(1e-9);
    let cpu_ns = (cpu_run - idle_ns_per_s * seconds).max(0.0);
    server::stop_all(vec![server]).await;
    let snap = tally.snap();
    let client_hours = f64::from(spec.clients) * spec.session_s / 3600.0;
    Ok(Direct {
        cpu_s: cpu_ns / 1e9 / client_hours,
        idle_cpu_s: idle_ns_per_s * seconds / 1e9 / client_hours,
        bytes_up: snap.written as f64 / client_hours,
        bytes_down: snap.read as f64 / client_hours,
        events: snap.events as f64 / client_hours,
        beats: snap.beats as f64 / client_hours,
        errors: snap.errors,
        last_error: tally.last_error(),
        reopened: tally.reopened.load(std::sync::atomic::Ordering::Relaxed),
    })
}

fn markdown(v: &Validation) -> String {
    let mut s = String::from("# The cost model against direct whole-session runs\n\n");
    s += &format!(
        "Model: commit {} ({}), {} build, {} ({} cores), made {}. Validation: {}, {} direct runs per \
         workload and transport, {:.0} s; `{}`.\n\n",
        &v.model_record.commit.get(..12).unwrap_or(&v.model_record.commit),
        if v.model_record.dirty { "dirty" } else { "clean" },
        v.model_record.profile,
        v.model_record.cpu_model,
        v.model_record.cores,
        v.model_record.date,
        v.date,
        v.repeats,
        v.duration_s,
        v.command
    );
    if let Some(p) = &v.pinning {
        s += &format!(
            "CPUs: {p}; loadgen used {:.0}% of its cores over the direct runs.\n\n",
            v.loadgen_cpu_share.unwrap_or(0.0) * 100.0
        );
    }
    if let Some(r) = &v.recomposed {
        s += &format!(
            "Predictions recomposed from the same direct runs at {r} (`loadgen costs --validate \
             --recompose`), after a change to the composition.\n\n"
        );
    }
    s += "Per client-hour. Predicted: `compose()` of the model's medians for the workload. Direct: \
          the median [min–max] of whole sessions run for real (connect, hold, deliver, close). \
          Error: (predicted − direct median) ÷ direct median; a figure passes within 15%, or within \
          the direct runs' own spread where that is wider (marked †).\n\n";
    for w in &v.workloads {
        s += &format!(
            "## {}: {} clients, {:.0} s sessions, {} events/s, {} messages/s per client\n\n",
            w.name, w.clients, w.session_s, w.rate, w.send_rate
        );
        s += "| transport | condition | CPU s predicted | CPU s direct | error | bytes predicted | bytes direct | error | events/h direct | beats/h predicted / direct |\n|---|---|---|---|---|---|---|---|---|---|\n";
        for c in v.comparisons.iter().filter(|c| c.workload == w.name) {
            let mark = |f: &Figure| {
                let flag = if f.ok { "" } else { " **MISS**" };
                let wide = if f.spread > TOLERANCE { " †" } else { "" };
                format!("{:+.1}%{wide}{flag}", f.error * 100.0)
            };
            let events = median(&c.runs.iter().map(|d| d.events).collect::<Vec<_>>());
            let beats = median(&c.runs.iter().map(|d| d.beats).collect::<Vec<_>>());
            s += &format!(
                "| {} | {} | {:.4} | {:.4} [{:.4}–{:.4}] | {} | {:.0} | {:.0} [{:.0}–{:.0}] | {} | {:.0} | {:.0} / {:.0} |\n",
                c.transport,
                c.condition.name(),
                c.cpu.predicted,
                c.cpu.median,
                c.cpu.min,
                c.cpu.max,
                mark(&c.cpu),
                c.bytes.predicted,
                c.bytes.median,
                c.bytes.min,
                c.bytes.max,
                mark(&c.bytes),
                events,
                c.predicted.beats,
                beats,
            );
        }
        let notes: Vec<String> = v
            .comparisons
            .iter()
            .filter(|c| c.workload == w.name)
            .flat_map(|c| {
                c.extrapolated
                    .iter()
                    .map(move |n| format!("{} ({}): {n}", c.transport, c.condition.name()))
            })
            .collect();
        if !notes.is_empty() {
            s += "\nThe model extrapolated: ";
            s += &notes.join("; ");
            s += ".\n";
        }
        s += "\n";
    }
    let misses = v
        .comparisons
        .iter()
        .filter(|c| !c.cpu.ok || !c.bytes.ok)
        .count();
    s += &format!("{misses} of {} comparisons miss.\n", v.comparisons.len());
    s
}
