//! A run: start (or find) the server, run the phases one by one, stop the server, write the
//! report.
//!
//! A phase, in order: read `/stats` (the cursor every client starts from, and the server's
//! counters before); connect every client; publish for `--duration`; let clients drain for a
//! moment so in-flight events arrive; stop them; read `/stats` again. The server's CPU and
//! memory are sampled over exactly that window, so the cost belongs to this phase only.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{atomic::Ordering::Relaxed, Arc},
    time::Duration,
};

use anyhow::Context as _;
use rand::{rngs::StdRng, Rng as _, SeedableRng as _};
use tokio::{sync::watch, task::JoinSet, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::{
    cli::{Args, HttpVersion},
    client::{self, ClientCtx, ClientOutput, Shared},
    net::{Target, TlsOptions, Wire},
    plan::{Phase, Plan},
    probe::{self, Stats},
    progress::Progress,
    publisher,
    report::{self, Compared, Histograms, Report, ServerCheck, TransportResult},
    server_proc::ServerProcess,
    stats::{encode_histogram, ClientTotals, LatencySink, Live, Quantiles},
    sys,
};

/// Longest wait for clients to stop after the drain before they are abandoned.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

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

/// One server the phases run against: the plain one, the TLS one, or the `--url`.
struct Endpoint {
    tls: bool,
    target: Arc<Target>,
    /// Its process, when loadgen started it.
    pid: Option<u32>,
}

struct Env<'a> {
    args: &'a Args,
    plan: &'a Plan,
    endpoints: Vec<Endpoint>,
    seed: u64,
    interrupt: CancellationToken,
    progress: &'a Progress,
    primary: HttpVersion,
}

impl Env<'_> {
    fn endpoint(&self, tls: bool) -> &Endpoint {
        // unwrap: execute starts an endpoint for every TLS mode of the plan.
        self.endpoints
            .iter()
            .find(|e| e.tls == tls)
            .expect("an endpoint for every TLS mode")
    }
}

/// Runs everything `args` asks for and writes the report.
///
/// # Errors
/// When the run cannot start (bad flags, a plan past the open-file limit, no server); a phase
/// that fails midway ends the run early but still produces a report (with a warning).
pub async fn execute(args: Args, mode: Mode) -> anyhow::Result<Outcome> {
    let started_at = chrono::Utc::now();
    let t0 = Instant::now();
    let plan = Plan::build(&args).map_err(anyhow::Error::msg)?;
    let (soft, _hard) = sys::raise_nofile_limit();
    plan.check_fds(soft).map_err(anyhow::Error::msg)?;
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(&started_at));
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let show = mode == Mode::Cli && !args.quiet;

    let tls_modes = args.tls_modes().map_err(anyhow::Error::msg)?;
    // (tls, url, process) per server.
    let mut servers: Vec<(bool, url::Url, Option<ServerProcess>)> = Vec::new();
    let mut endpoints = Vec::new();
    for &tls in &tls_modes {
        let (url, process, options) = match &args.url {
            Some(u) => (
                u.clone(),
                None,
                TlsOptions {
                    ca: args.ca.clone(),
                    insecure: args.insecure,
                },
            ),
            None => {
                let (extra, log, cert) = spawned_server_args(&args, tls, &out_dir);
                let p = ServerProcess::spawn(
                    args.server_bin.as_deref(),
                    &extra,
                    Some(&out_dir.join(log)),
                )
                .with_context(|| {
                    format!("starting the {} server", if tls { "TLS" } else { "plain" })
                })?;
                let options = TlsOptions {
                    ca: if args.insecure { None } else { cert },
                    insecure: args.insecure,
                };
                (p.url.clone(), Some(p), options)
            }
        };
        let target = Arc::new(Target::from_url(&url, &options).await?);
        if let Err(e) = probe::stats(&target).await {
            return Err(explain_connect_error(e, &url, &options));
        }
        endpoints.push(Endpoint {
            tls,
            target,
            pid: process.as_ref().map(|p| p.pid),
        });
        servers.push((tls, url, process));
    }
    let url = servers[0].1.clone();
    let first_target = endpoints[0].target.clone();

    let interrupt = CancellationToken::new();
    if mode == Mode::Cli {
        handle_ctrl_c(
            interrupt.clone(),
            endpoints.iter().filter_map(|e| e.pid).collect(),
        );
    }
    let progress = Progress::new(plan.phases.len(), show);
    let primary = args.http.first().copied().unwrap_or(HttpVersion::Http11);
    let env = Env {
        args: &args,
        plan: &plan,
        endpoints,
        seed,
        interrupt: interrupt.clone(),
        progress: &progress,
        primary,
    };
    let mut results: Vec<TransportResult> = Vec::new();
    let mut warnings = Vec::new();
    for phase in &plan.phases {
        if interrupt.is_cancelled() {
            break;
        }
        match run_phase(&env, phase).await {
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
        if servers
            .iter_mut()
            .any(|(_, _, p)| p.as_mut().is_some_and(|p| !p.running()))
        {
            warnings.push("A server exited during the run (see server.log).".into());
            break;
        }
        tokio::time::sleep(BETWEEN_PHASES).await;
    }
    progress.finish();
    let server_command = servers[0].2.as_ref().map(|s| s.command.clone());
    let tls_server = servers
        .iter()
        .skip(1)
        .find(|(tls, _, _)| *tls)
        .map(|(_, u, p)| (u.to_string(), p.as_ref().map(|p| p.command.clone())));
    for (_, _, process) in servers.iter_mut() {
        if let Some(mut s) = process.take() {
            tokio::task::spawn_blocking(move || s.stop()).await?;
        }
    }
    for log in ["server.log", "server-tls.log"] {
        // Keep a server's log only when it said something (it logs warnings and errors).
        let log = out_dir.join(log);
        if std::fs::metadata(&log).is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(log);
        }
    }
    if args.concurrent {
        warnings.push("The transports ran together (--concurrent): server CPU and memory are those of all of them at once.".into());
    }

    let finished_at = chrono::Utc::now();
    let report = assemble(
        &args,
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
            server: report::ServerInfo {
                kind: if server_command.is_some() {
                    "spawned"
                } else {
                    "url"
                }
                .into(),
                url: url.to_string(),
                command: server_command,
                local: first_target.is_local(),
                tls_url: tls_server.as_ref().map(|(u, _)| u.clone()),
                tls_command: tls_server.and_then(|(_, c)| c),
            },
            command: command_line(mode, &args),
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

/// The spawned server's arguments for a plain or TLS phase, its log file, and the certificate
/// it writes (to trust).
fn spawned_server_args(
    args: &Args,
    tls: bool,
    out_dir: &Path,
) -> (Vec<String>, &'static str, Option<PathBuf>) {
    let mut extra = args.server_args.clone();
    let given = |flag: &str| {
        args.server_args
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    if !tls {
        // HTTP/2 on a plain port is h2c with prior knowledge, which the server does only when
        // asked.
        if args.http.contains(&HttpVersion::Http2) && !given("--h2c") {
            extra.push("--h2c".into());
        }
        return (extra, "server.log", None);
    }
    let cert = out_dir.join("server-cert.pem");
    extra.extend([
        "--tls-self-signed".into(),
        "--tls-write-cert".into(),
        cert.display().to_string(),
    ]);
    (extra, "server-tls.log", Some(cert))
}

/// The first `/stats` failed: say what to do when it was the certificate.
fn explain_connect_error(e: anyhow::Error, url: &url::Url, tls: &TlsOptions) -> anyhow::Error {
    let cert = e.chain().any(crate::net::tls::is_certificate_error);
    if cert {
        let trusted = match &tls.ca {
            Some(ca) => format!("--ca {}", ca.display()),
            None => "the system's roots".into(),
        };
        return e.context(format!(
            "TLS certificate error: the server at {url} presented a certificate that {trusted} does not trust; \
             give --ca FILE with the server's certificate or its CA (or --insecure, for tests only)"
        ));
    }
    e.context(format!("reading {url}stats"))
}

/// `results/<timestamp>/` in the workspace when run by cargo (which sets `CARGO_MANIFEST_DIR`
/// for `cargo run`), else in the current directory.
fn default_out_dir(started: &chrono::DateTime<chrono::Utc>) -> PathBuf {
    let name = started.format("%Y%m%d-%H%M%S").to_string();
    let base = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .and_then(|d| {
            let root = d.parent()?.to_owned();
            root.join("Cargo.toml").is_file().then_some(root)
        })
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("results").join(name)
}

fn command_line(mode: Mode, args: &Args) -> String {
    match mode {
        Mode::Cli => std::env::args()
            .map(|a| {
                if a.is_empty()
                    || a.contains(|c: char| c.is_whitespace() || "'\"$`\\&|;<>()*?".contains(c))
                {
                    format!("'{}'", a.replace('\'', "'\\''"))
                } else {
                    a
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        Mode::Library => format!("loadgen (library call) {args:?}"),
    }
}

fn handle_ctrl_c(interrupt: CancellationToken, server_pids: Vec<u32>) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        eprintln!("\nloadgen: stopping — finishing this phase and writing the report (Ctrl-C again to exit at once)");
        interrupt.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            for &pid in &server_pids {
                let _ = sys::terminate(pid);
            }
            eprintln!("loadgen: exiting without a report");
            std::process::exit(130);
        }
    });
}

/// Server and loadgen usage at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    server_cpu_s: Option<f64>,
    server_rss: Option<u64>,
    server_peak: Option<u64>,
    loadgen: Option<sys::ProcUsage>,
}

fn usage(pid: Option<u32>, stats: Option<&Stats>) -> Usage {
    let (server_cpu_s, server_rss, server_peak) = match pid {
        Some(pid) => match sys::proc_usage(Some(pid)) {
            Some(u) => (Some(u.cpu_s), Some(u.rss_bytes), Some(u.rss_peak_bytes)),
            None => (None, None, None),
        },
        None => match stats {
            Some(s) if s.process.rss_bytes > 0 => {
                (Some(s.process.cpu_s), Some(s.process.rss_bytes), None)
            }
            _ => (None, None, None),
        },
    };
    Usage {
        server_cpu_s,
        server_rss,
        server_peak,
        loadgen: sys::proc_usage(None),
    }
}

/// Highest RSS of the server and of loadgen while a phase runs, sampled every 250 ms (every
/// second through `/stats` for a server that is not ours).
async fn sample_peaks(
    pid: Option<u32>,
    target: Arc<Target>,
    stop: CancellationToken,
) -> (Option<u64>, Option<u64>) {
    let (mut server, mut own) = (None::<u64>, None::<u64>);
    let mut tick = 0u64;
    loop {
        if let Some(u) = sys::proc_usage(None) {
            own = Some(own.unwrap_or(0).max(u.rss_bytes));
        }
        match pid {
            Some(pid) => {
                if let Some(u) = sys::proc_usage(Some(pid)) {
                    server = Some(server.unwrap_or(0).max(u.rss_bytes));
                }
            }
            None if tick % 4 == 0 => {
                if let Ok(s) = probe::stats(&target).await {
                    if s.process.rss_bytes > 0 {
                        server = Some(server.unwrap_or(0).max(s.process.rss_bytes));
                    }
                }
            }
            None => {}
        }
        tick += 1;
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
    (server, own)
}

struct Group {
    member: crate::plan::Member,
    shared: Arc<Shared>,
    set: JoinSet<ClientOutput>,
}

async fn run_phase(
    env: &Env<'_>,
    phase: &Phase,
) -> anyhow::Result<(Vec<TransportResult>, Vec<String>)> {
    let mut warnings = Vec::new();
    let args = env.args;
    let endpoint = env.endpoint(phase.tls);
    let target = &endpoint.target;
    let server_pid = endpoint.pid;
    let before = probe::stats(target)
        .await
        .context("GET /stats before the phase")?;
    let cursor = before.feed.head;
    let peak_reset = server_pid.is_some_and(sys::reset_peak_rss);
    let start = usage(server_pid, Some(&before));

    let stop = CancellationToken::new();
    let (deadline_tx, deadline_rx) = watch::channel(None);
    let mut rng =
        StdRng::seed_from_u64(env.seed ^ (phase.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let connect_gate = Arc::new(tokio::sync::Semaphore::new(client::CONNECTS_IN_FLIGHT));
    let mut groups = Vec::new();
    for &member in &phase.members {
        let shared = Arc::new(Shared {
            target: target.clone(),
            transport: member.transport,
            http: member.http,
            cursor,
            poll_interval: args.poll_interval,
            long_poll_timeout: args.long_poll_timeout,
            stop: stop.clone(),
            deadline: deadline_rx.clone(),
            sink: Arc::new(LatencySink::new()),
            live: Arc::new(Live::default()),
            source_ips: env.plan.source_ips,
            connect_gate: connect_gate.clone(),
        });
        groups.push(Group {
            member,
            shared,
            set: JoinSet::new(),
        });
    }
    // Interleave transports when several run together, so none connects first.
    for i in 0..phase.clients as usize {
        for g in &mut groups {
            let nanos = args.poll_interval.as_nanos() as u64;
            let first_delay = if nanos > 0 {
                Duration::from_nanos(rng.gen_range(0..nanos))
            } else {
                Duration::ZERO
            };
            g.set.spawn(client::run(ClientCtx {
                index: i,
                first_delay,
                shared: g.shared.clone(),
                wire: Arc::new(Wire::default()),
            }));
        }
    }
    let sampler_stop = CancellationToken::new();
    let sampler = tokio::spawn(sample_peaks(
        server_pid,
        target.clone(),
        sampler_stop.clone(),
    ));
    let lives: Vec<Arc<Live>> = groups.iter().map(|g| g.shared.live.clone()).collect();
    let bar = env.progress.phase(
        &phase.label(),
        env.plan.duration.as_secs(),
        phase.connections(),
        lives.clone(),
    );

    // Every client connected (or the ready timeout) before the first publish.
    let connect_start = Instant::now();
    let total = phase.connections();
    let ready_by = connect_start + args.ready_timeout;
    loop {
        let connected: u64 = lives.iter().map(|l| l.connected.load(Relaxed)).sum();
        if connected >= total || env.interrupt.is_cancelled() {
            break;
        }
        if Instant::now() >= ready_by {
            warnings.push(format!(
                "Phase {}: only {connected} of {total} clients had connected after {} s; publishing started anyway.",
                phase.index,
                args.ready_timeout.as_secs()
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let connect_s = connect_start.elapsed().as_secs_f64();

    let publish_start = Instant::now();
    deadline_tx.send_replace(Some(publish_start + env.plan.duration + env.plan.drain));
    let mut publishing = tokio::spawn(publisher::run(
        target.clone(),
        if env.interrupt.is_cancelled() {
            0.0
        } else {
            phase.rate
        },
        env.plan.duration,
        args.payload_bytes,
        env.interrupt.clone(),
    ));
    let published = loop {
        tokio::select! {
            r = &mut publishing => break r.context("publisher task")?,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                bar.set_position(publish_start.elapsed().as_secs());
            }
        }
    };
    let publish_s = publish_start.elapsed().as_secs_f64();
    let drain_end = Instant::now() + env.plan.drain;
    deadline_tx.send_replace(Some(drain_end));
    // Events from another source (a ticker on a remote server) count too: they are in the feed.
    let head = probe::stats(target)
        .await
        .map(|s| s.feed.head)
        .unwrap_or(cursor);
    let end_seq = published.last_seq.unwrap_or(cursor).max(head);
    tokio::time::sleep_until(drain_end).await;
    stop.cancel();

    let join_by = Instant::now() + JOIN_TIMEOUT;
    let mut outputs: Vec<Vec<ClientOutput>> = Vec::new();
    for g in &mut groups {
        let mut outs = Vec::with_capacity(phase.clients as usize);
        loop {
            match tokio::time::timeout_at(join_by, g.set.join_next()).await {
                Ok(Some(Ok(out))) => outs.push(out),
                Ok(Some(Err(e))) => warnings.push(format!(
                    "Phase {}: a {} client failed: {e}",
                    phase.index, g.member.transport
                )),
                Ok(None) => break,
                Err(_) => {
                    warnings.push(format!(
                        "Phase {}: {} {} clients did not stop within {} s and were abandoned.",
                        phase.index,
                        g.set.len(),
                        g.member.transport,
                        JOIN_TIMEOUT.as_secs()
                    ));
                    g.set.abort_all();
                    break;
                }
            }
        }
        outputs.push(outs);
    }
    drop(bar);
    sampler_stop.cancel();
    let (server_sampled_peak, loadgen_sampled_peak) = sampler.await.unwrap_or((None, None));
    let after = probe::stats(target)
        .await
        .context("GET /stats after the phase")?;
    let end = usage(server_pid, Some(&after));

    // Phase-wide costs.
    // CPU time comes in 10 ms ticks: round away the float noise of the subtraction.
    let ticks = |s: f64| (s.max(0.0) * 100.0).round() / 100.0;
    let server_cpu = match (start.server_cpu_s, end.server_cpu_s) {
        (Some(a), Some(b)) => Some(ticks(b - a)),
        _ => None,
    };
    let server_peak = [
        server_sampled_peak,
        end.server_rss,
        if peak_reset { end.server_peak } else { None },
    ]
    .into_iter()
    .flatten()
    .max();
    let loadgen_cpu = match (start.loadgen, end.loadgen) {
        (Some(a), Some(b)) => Some(ticks(b.cpu_s - a.cpu_s)),
        _ => None,
    };
    let loadgen_start_rss = start.loadgen.map(|u| u.rss_bytes);
    let loadgen_peak = [loadgen_sampled_peak, end.loadgen.map(|u| u.rss_bytes)]
        .into_iter()
        .flatten()
        .max();
    let connections = phase.connections().max(1) as f64;
    let per_connection = |start: Option<u64>, peak: Option<u64>| match (start, peak) {
        (Some(s), Some(p)) => Some(p.saturating_sub(s) as f64 / connections),
        _ => None,
    };
    let shared_cost = phase.members.len() > 1;
    let phase_events: u64 = outputs
        .iter()
        .flatten()
        .map(|o| o.recorder.seq.summary(end_seq).received)
        .sum();

    let mut results = Vec::new();
    for (g, outs) in groups.iter().zip(outputs) {
        let name = g.member.transport.name();
        let mut totals = ClientTotals::default();
        let (mut down, mut up, mut plain_down) = (0u64, 0u64, 0u64);
        for o in outs {
            down += o.wire.read();
            up += o.wire.written();
            plain_down += o.wire.plain_read();
            totals += &o.recorder.finish(end_seq);
        }
        let (latency, server_latency) = g.shared.sink.merged();
        let delta = after.transport(name).since(&before.transport(name));
        let requests = Compared::exact(totals.requests, delta.requests);
        let events = Compared::exact(totals.seq.received, delta.events_delivered);
        // The server counts the plaintext it writes: over TLS compare the bytes read inside
        // TLS. HTTP/2 heads are HPACK-compressed, which the server can only estimate (at their
        // HTTP/1.1 size), so there the bytes are shown but not checked.
        let bytes = Compared::within(
            if phase.tls { plain_down } else { down },
            delta.bytes_written,
            0.01,
        );
        let bytes_note = (g.member.http == HttpVersion::Http2).then(|| {
            "not checked: over HTTP/2 the server counts each response head at its HTTP/1.1 size (it cannot see HPACK's compression)".to_owned()
        });
        let check = ServerCheck {
            ok: requests.ok && events.ok && (bytes.ok || bytes_note.is_some()),
            requests,
            events_delivered: events,
            empty_responses: Compared::exact(totals.empty_responses, delta.empty_responses),
            bytes,
            bytes_inside_tls: phase.tls,
            bytes_note,
        };
        if !check.ok {
            warnings.push(format!(
                "Phase {} ({name}, HTTP/{}): loadgen and the server's /stats disagree: requests {} vs {}, events {} vs {}, bytes {} vs {} ({:+.3}%).",
                phase.index, g.member.http, check.requests.loadgen, check.requests.server,
                check.events_delivered.loadgen, check.events_delivered.server,
                check.bytes.loadgen, check.bytes.server, check.bytes.difference_ratio * 100.0
            ));
        }
        let received = totals.seq.received;
        let per_event = |v: f64| (received > 0).then(|| v / received as f64);
        let cpu_events = if shared_cost { phase_events } else { received };
        let others: Vec<String> = phase
            .members
            .iter()
            .filter(|m| **m != g.member)
            .map(|m| m.transport.name().to_owned())
            .collect();
        let latency_q = Quantiles::of(&latency);
        let _ = env.primary;
        results.push(TransportResult {
            transport: name.to_owned(),
            http: g.member.http.as_str().to_owned(),
            tls: phase.tls,
            bytes_plaintext_down: phase.tls.then_some(plain_down),
            phase: phase.index,
            concurrent_with: others,
            clients: phase.clients,
            rate: phase.rate,
            publish_s,
            connect_s,
            drain_s: env.plan.drain.as_secs_f64(),
            events_published: published.published,
            events_expected: totals.seq.expected,
            events_received: received,
            events_unique: totals.seq.unique,
            gaps: totals.seq.gaps,
            duplicates: totals.seq.duplicates,
            out_of_order: totals.seq.out_of_order,
            missed_reported: totals.seq.missed_reported,
            latency_us: latency_q,
            server_latency_us: target.is_local().then(|| Quantiles::of(&server_latency)),
            http_requests: totals.requests,
            empty_responses: totals.empty_responses,
            connections_opened: totals.connections,
            reconnects: totals.reconnects,
            bytes_down: down,
            bytes_up: up,
            bytes_per_event: per_event((down + up) as f64),
            requests_per_event: per_event(totals.requests as f64),
            data_bytes_per_event: published.data_bytes,
            overhead_ratio: (received > 0 && published.data_bytes > 0.0)
                .then(|| down as f64 / (received as f64 * published.data_bytes)),
            server_cpu_s: server_cpu,
            server_cpu_us_per_event: server_cpu.and_then(|c| {
                (cpu_events > 0).then(|| (c * 1e7 / cpu_events as f64).round() / 10.0)
            }),
            server_rss_start_bytes: start.server_rss,
            server_rss_peak_bytes: server_peak,
            server_rss_per_connection_bytes: per_connection(start.server_rss, server_peak),
            server_cost_shared: shared_cost,
            loadgen_cpu_s: loadgen_cpu,
            loadgen_rss_start_bytes: loadgen_start_rss,
            loadgen_rss_peak_bytes: loadgen_peak,
            loadgen_rss_per_connection_bytes: per_connection(loadgen_start_rss, loadgen_peak),
            errors: totals.errors.clone(),
            publisher: published.clone(),
            server_check: Some(check),
            histograms: Histograms {
                latency_us: encode_histogram(&latency),
                server_latency_us: target.is_local().then(|| encode_histogram(&server_latency)),
            },
        });
    }
    Ok((results, warnings))
}

struct Assembly {
    started_at: String,
    finished_at: String,
    duration_s: f64,
    interrupted: bool,
    seed: u64,
    nofile_limit: Option<u64>,
    server: report::ServerInfo,
    command: String,
}

fn assemble(
    args: &Args,
    plan: &Plan,
    phases: Vec<TransportResult>,
    mut warnings: Vec<String>,
    a: Assembly,
) -> Report {
    let primary = args.http.first().copied().unwrap_or(HttpVersion::Http11);
    let first_tls = plan.phases.first().is_some_and(|p| p.tls);
    // The headline: per transport, the last phase measured with the first HTTP version and the
    // first TLS mode (the plan puts the largest cell last).
    let mut transports = BTreeMap::new();
    for r in &phases {
        let Ok(t) = r.transport.parse::<server::Transport>() else {
            continue;
        };
        if r.tls == first_tls && r.http == crate::plan::version_for(t, primary).as_str() {
            transports.insert(r.transport.clone(), r.clone());
        }
    }
    for r in &phases {
        if r.errors.values().any(|&n| n > 0) {
            let list: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
            warnings.push(format!(
                "Phase {} ({}): client errors: {}.",
                r.phase,
                r.transport,
                list.join(", ")
            ));
        }
    }
    let loss = phases.iter().any(|r| r.has_loss() || r.has_errors());
    let mut report = Report {
        schema_version: report::SCHEMA_VERSION,
        command: a.command,
        started_at: a.started_at,
        finished_at: a.finished_at,
        duration_s: (a.duration_s * 10.0).round() / 10.0,
        interrupted: a.interrupted,
        loss,
        settings: report::Settings {
            url: args.url.as_ref().map(ToString::to_string),
            transports: args
                .transports()
                .iter()
                .map(|t| t.name().to_owned())
                .collect(),
            clients: args.clients.clone(),
            rates: args.rates(),
            duration_s: args.duration.as_secs_f64(),
            payload_bytes: args.payload_bytes,
            poll_interval_s: args.poll_interval.as_secs_f64(),
            http: args.http.iter().map(|h| h.as_str().to_owned()).collect(),
            concurrent: args.concurrent,
            seed: a.seed,
            drain_s: plan.drain.as_secs_f64(),
            long_poll_timeout_s: args.long_poll_timeout.as_secs_f64(),
            source_ips: plan.source_ips,
            nofile_limit: a.nofile_limit,
            server_args: args.server_args.clone(),
            tls: args.tls.as_str().to_owned(),
            ca: args.ca.as_ref().map(|p| p.display().to_string()),
            insecure: args.insecure,
        },
        machine: report::Machine {
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model: sys::cpu_model(),
            os: sys::os_name(),
            kernel: sys::kernel(),
            arch: std::env::consts::ARCH.to_owned(),
        },
        versions: report::Versions {
            loadgen: env!("CARGO_PKG_VERSION").to_owned(),
            server: if a.server.kind == "spawned" {
                env!("CARGO_PKG_VERSION").to_owned()
            } else {
                "unknown (not started by loadgen)".to_owned()
            },
            rustc: env!("LOADGEN_RUSTC_VERSION").to_owned(),
        },
        server: a.server,
        transports,
        phases,
        conclusions: Vec::new(),
        warnings,
    };
    report.conclusions = report::verdict::conclusions(&report, args.poll_interval.as_secs_f64());
    report
}

fn print_summary(report: &Report, out_dir: &Path) {
    use report::tables::{num, us};
    println!();
    if report.loss {
        println!("!!! LOSS OR ERRORS: this run did not deliver every event exactly once (see report.md) !!!\n");
    }
    println!(
        "{:<24} {:>8} {:>10} {:>10} {:>10} {:>12} {:>10} {:>14} {:>6} {:>5}",
        "transport",
        "clients",
        "events",
        "p50",
        "p99",
        "bytes/event",
        "req/event",
        "CPU/1000 ev",
        "gaps",
        "dups"
    );
    let primary = report.primary_http().to_owned();
    for r in report::tables::shown(report) {
        println!(
            "{:<24} {:>8} {:>10} {:>10} {:>10} {:>12} {:>10} {:>14} {:>6} {:>5}",
            r.label(&primary),
            r.clients,
            r.events_received,
            us(r.latency_us.p50),
            us(r.latency_us.p99),
            r.bytes_per_event
                .map_or("–".into(), |v| format!("{v:.0} B")),
            r.requests_per_event.map_or("–".into(), num),
            r.server_cpu_us_per_event
                .map_or("–".into(), |v| format!("{} ms", num(v))),
            r.gaps,
            r.duplicates,
        );
    }
    println!();
    for w in &report.warnings {
        println!("note: {w}");
    }
    println!("report: {}", out_dir.join("report.md").display());
}
