//! A run: start (or find) the servers, run the phases one by one, stop the servers, write the
//! report. Split by job: [`fleet`] owns the servers (and Redis, the proxy), [`phase`] runs one
//! phase, [`inject`] carries out `--chaos` inside it, [`usage`] reads what the servers cost,
//! [`assemble`] turns the phases into the report.

pub mod assemble;
pub mod fleet;
pub mod inject;
pub mod path_change;
pub mod phase;
pub mod scenarios;
pub mod slo;
pub mod usage;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use feedlab_link::{Link, Network};
use feedlab_report::{self as report, Report, TransportResult};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{cli::ProxyKind, plan::Plan, progress::Progress, sys};

use self::{
    assemble::{assemble, command_line, default_out_dir, print_summary, Assembly},
    fleet::Fleet,
    phase::{run_phase, Env},
};

/// Pause between phases, so the previous phase's connections are gone from the server.
const BETWEEN_PHASES: Duration = Duration::from_millis(300);

/// How a run is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The `loadgen` binary: Ctrl-C handling, progress bars and the summary table.
    Cli,
    /// Called from code (tests): quiet, no signal handler.
    Library,
}

/// A finished run.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    pub out_dir: PathBuf,
    pub files: Vec<PathBuf>,
}

impl Outcome {
    /// No loss, no client errors, and (when it could be checked) agreement with the server.
    pub fn clean(&self) -> bool {
        !self.report.loss
    }
}

/// Runs `plan` and writes the report ([`crate::execute`] makes the plan from the flags).
///
/// # Errors
/// When the run cannot start (a plan past the open-file limit, no server); a phase that fails
/// midway ends the run early but still produces a report (with a warning).
pub async fn execute(plan: Plan, mode: Mode) -> anyhow::Result<Outcome> {
    let started_at = chrono::Utc::now();
    let t0 = Instant::now();
    let (soft, _hard) = sys::raise_nofile_limit();
    plan.check_fds(soft).map_err(anyhow::Error::msg)?;
    let out_dir = plan
        .output
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(&started_at));
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let seed = plan.seed.unwrap_or_else(rand::random);
    let show = mode == Mode::Cli && !plan.output.quiet;

    let tls_modes = plan.servers.tls_modes.clone();
    let networks = plan.network_list.clone();
    let labelled = networks.iter().any(|n| *n != Network::Loopback);

    let interrupt = CancellationToken::new();
    let server_pids = Arc::new(Mutex::new(Vec::new()));
    if mode == Mode::Cli {
        handle_ctrl_c(interrupt.clone(), server_pids.clone());
    }
    let progress = Progress::new(plan.phases.len() * networks.len(), show);
    let mut results: Vec<TransportResult> = Vec::new();
    let mut warnings = Vec::new();
    let mut server = None;
    let mut server_version = None;
    for (n, network) in networks.iter().enumerate() {
        if n > 0 && interrupt.is_cancelled() {
            break;
        }
        // The link first, then the servers inside it; dropped in the reverse order.
        let link = match network.spec() {
            None => None,
            Some(spec) => {
                let spec = *spec;
                let up = fleet::blocking(|| Link::up(spec, seed ^ n as u64))
                    .with_context(|| format!("bringing up --network {network}"));
                match up {
                    Ok(l) => Some(Arc::new(l)),
                    Err(e) if n == 0 => return Err(e),
                    Err(e) => {
                        warnings.push(format!("{e:#}; the run stopped there."));
                        break;
                    }
                }
            }
        };
        let fleet = match Fleet::start(&plan, &tls_modes, &out_dir, link.as_ref()).await {
            Ok(f) => f,
            Err(e) if n == 0 => return Err(e),
            Err(e) => {
                warnings.push(format!(
                    "Starting the servers on --network {network} failed and the run stopped there: {e:#}"
                ));
                break;
            }
        };
        *server_pids.lock().unwrap_or_else(|p| p.into_inner()) =
            fleet.endpoints.iter().flat_map(|e| e.pids()).collect();
        if server.is_none() {
            server = Some(server_info(&fleet));
            server_version = crate::probe::stats(&fleet.endpoints[0].instances[0].target)
                .await
                .ok()
                .and_then(|s| s.version);
        }
        let env = Env {
            plan: &plan,
            endpoints: fleet.endpoints.clone(),
            seed,
            interrupt: interrupt.clone(),
            progress: &progress,
            network: labelled.then_some(network),
            link: link.clone(),
        };
        for phase in &plan.phases {
            if interrupt.is_cancelled() {
                break;
            }
            // Phases are numbered across networks, so every result has its own index.
            let mut phase = phase.clone();
            phase.index += n * plan.phases.len();
            match run_phase(&env, &phase).await {
                Ok((r, w)) => {
                    results.extend(r);
                    warnings.extend(w);
                }
                Err(e) => {
                    warnings.push(format!(
                        "Phase {} ({}) failed and the run stopped there: {e:#}",
                        phase.index,
                        phase.label()
                    ));
                    break;
                }
            }
            progress.phase_done();
            // Chaos kills servers on purpose (and the next phase revives them).
            if plan.workload.chaos.is_none() && fleet.endpoints.iter().any(|e| !e.all_running()) {
                warnings.push("A server exited during the run (see server.log).".into());
                break;
            }
            tokio::time::sleep(BETWEEN_PHASES).await;
        }
        drop(env);
        fleet.stop().await;
        drop(link);
    }
    progress.finish();
    // unwrap: the first network's fleet started, or the run returned its error above.
    let server = server.expect("the first fleet started");
    for entry in std::fs::read_dir(&out_dir).into_iter().flatten().flatten() {
        // Keep a server's log only when it said something (it logs warnings and errors).
        let name = entry.file_name().to_string_lossy().into_owned();
        let empty = entry.metadata().is_ok_and(|m| m.len() == 0);
        if name.starts_with("server") && name.ends_with(".log") && empty {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let target = plan.workload.peer.as_ref().map(|(kind, _)| *kind);
    if target == Some(crate::client::target::TargetKind::Nchan) {
        warnings.push("Target Nchan (--target nchan, a channel per phase): Nchan has no /stats, so loadgen's counts are not checked against the server's and the server's CPU and memory are not read here (measure them from outside, as scripts/fanout/bench.py does); each event's `ts` is loadgen's send time.".into());
    } else if let Some(peer) = target.and_then(crate::client::target::TargetKind::peer) {
        let name = peer.name();
        warnings.push(format!("Target {name} (--target {name}, a channel per phase): it has no /stats, so loadgen's counts are not checked against the server's and the server's CPU and memory are not read here (measure them from outside, as scripts/fanout/bench.py does); each event's `ts` is loadgen's send time."));
    }
    if !plan.shard.is_whole() {
        warnings.push(plan.shard.note());
    }
    if plan.concurrent {
        warnings.push("The transports ran together (--concurrent): server CPU and memory are those of all of them at once.".into());
    }
    if let Some(chaos) = plan.workload.chaos {
        warnings.push(format!(
            "Chaos ({}): a server was killed in every phase, so its CPU, memory and /stats counters are not comparable and are not reported; client errors are the expected consequences of the kill, and loss is judged by events lost and duplicated.",
            chaos.kind
        ));
    } else if plan.servers.proxy != ProxyKind::None {
        warnings.push("Through a proxy: loadgen's requests and bytes are not the server's (the proxy rewrites heads and keeps its own connections), so they are not checked against /stats; client errors are what the proxy did to the connections.".into());
    }

    let finished_at = chrono::Utc::now();
    let report = assemble(
        &plan,
        results,
        warnings,
        Assembly {
            started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            finished_at: finished_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            duration_s: t0.elapsed().as_secs_f64(),
            interrupted: interrupt.is_cancelled(),
            seed,
            nofile_limit: soft,
            server,
            server_version,
            command: command_line(mode, &plan),
        },
    );
    let files = report::write_all(&report, &out_dir)?;
    if show {
        print_summary(&report, &out_dir);
    }
    Ok(Outcome {
        report,
        out_dir,
        files,
    })
}

/// Where the run's servers were, for the report.
fn server_info(fleet: &Fleet) -> report::ServerInfo {
    let first = &fleet.endpoints[0];
    let command = first.instances[0].command();
    let tls = fleet.endpoints.iter().skip(1).find(|e| e.tls);
    report::ServerInfo {
        kind: if command.is_some() { "spawned" } else { "url" }.into(),
        url: first.instances[0].url.to_string(),
        command,
        local: first.instances.iter().all(|i| i.target.is_local()),
        tls_url: tls.map(|e| e.instances[0].url.to_string()),
        tls_command: tls.and_then(|e| e.instances[0].command()),
        instances: first.instances.iter().map(|i| i.url.to_string()).collect(),
        proxy_url: first.proxy.as_ref().map(|p| p.url().to_string()),
        proxy_software: first
            .proxy
            .as_ref()
            .map(crate::intermediary::Proxy::describe),
        redis: fleet.redis_url.clone(),
    }
}

fn handle_ctrl_c(interrupt: CancellationToken, server_pids: Arc<Mutex<Vec<u32>>>) {
    tokio::spawn(async move {
        // SIGTERM (a timeout, a service manager) is asked to stop as Ctrl-C is.
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        let stop = async {
            tokio::select! {
                r = tokio::signal::ctrl_c() => r.is_ok(),
                r = term.recv() => r.is_some(),
            }
        };
        if !stop.await {
            return;
        }
        eprintln!("\nloadgen: stopping — finishing this phase and writing the report (Ctrl-C again to exit at once)");
        interrupt.cancel();
        let again = async {
            tokio::select! {
                r = tokio::signal::ctrl_c() => r.is_ok(),
                r = term.recv() => r.is_some(),
            }
        };
        if again.await {
            let pids = server_pids
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            for pid in pids {
                let _ = sys::terminate(pid);
            }
            // Exiting skips destructors: remove the link's namespaces here.
            feedlab_link::netns::remove_all();
            eprintln!("loadgen: exiting without a report");
            std::process::exit(130);
        }
    });
}
