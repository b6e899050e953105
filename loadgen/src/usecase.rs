//! `loadgen usecase`: the seed's two other use cases, a multiplayer game and a job's progress
//! log, each run on every transport and ranked by the project's rule
//! ([`feedlab_cost::rank`]).
//!
//! They pull the answer in opposite directions, and neither fits the feed runs' shape (one feed
//! fanned out to every client), so they have a driver of their own here:
//!
//! - **game**: every client sends inputs at a fixed rate (`--input-rate`, 20–40 bytes) that the
//!   server acknowledges and does not fan out (`{"op":"input"}` or a binary message on a
//!   WebSocket, `POST /input` beside SSE and polls), and the game loop (loadgen's publisher)
//!   publishes the world's state at a fixed tick (`--tick`, 100–300 random bytes as
//!   `{"bin":"<base64>"}`) to every client. The WebSocket asks for `encoding=binary` and gets
//!   the state's bytes; SSE and polls carry the base64 JSON, and the report shows what that
//!   costs per state. Measured: input → acknowledgement and the state's age at receipt (server
//!   publish time → receipt, one clock: loopback or namespaces on this machine), p50/p99/p99.9
//!   over every client with the sample count, jitter (p99 of |interval − tick| between states at
//!   one client), stalls (gaps over 100 ms), bytes per second each way per client.
//! - **progress**: one named feed per job (`?feed=`), each followed by its own client. Lines come
//!   in bursts (`--burst-lines` over `--burst`, then `--quiet`), the client reloads in the middle
//!   of the first burst (drops its connection, comes back after `--reload-gap` from its cursor:
//!   SSE with `Last-Event-ID`, the others with `since`), and the job ends with a terminal event
//!   (`end=1`), after which one more reconnect must be answered 204. Measured: lines lost and
//!   repeated, whether the end was seen and the reconnect refused, the time from a reload to its
//!   first line, and the cost per job (bytes, requests, server CPU).
//!
//! Inputs and polls go out at fixed intended times and latencies count from those, so a slow
//! answer carries its wait (no coordinated omission). HTTP inputs go side by side as a
//! browser's fetches do ([`uplink`]), so one input does not wait for the answer to the last. The HTTP, TLS and WebSocket work is
//! hyper's, rustls' and tungstenite's over loadgen's counted connections ([`crate::net`]); what
//! is hand-written is the measurement: schedules, matching acknowledgements, cursors.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use base64::Engine as _;
use bytes::Bytes;
use eventsource_stream::Eventsource as _;
use feedlab_cost::rank::{self, Criterion, Rule};
use feedlab_wire::Transport;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::BodyExt as _;
use hyper::{header, Request, StatusCode};
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest as _, Message};
use tokio_util::sync::CancellationToken;

pub use feedlab_report::section::usecases::{
    Decided, Encoding, GameRun, ProgressRun, Ranked, RankedPlace, Results, Tail,
};

use crate::{
    clock,
    net::{self, ByteCounts, HttpVersion, Target, TlsOptions},
    server_proc::ServerProcess,
};

mod uplink;

/// A stall: no state for this long at one client.
pub const STALL: Duration = Duration::from_millis(100);

/// `loadgen usecase`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct UsecaseArgs {
    /// Which use cases: `game`, `progress` (both when none is named).
    #[arg(value_enum)]
    pub workloads: Vec<Workload>,
    /// Transports to run, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "short-poll,long-poll,sse,ws"
    )]
    pub transports: Vec<Transport>,
    /// Networks, `;`-separated as for the run's --network (`none;lte;lte,loss=2%`); an
    /// emulated link needs root.
    #[arg(long = "network", value_delimiter = ';', default_value = "none")]
    pub networks: Vec<feedlab_link::Network>,
    /// HTTPS with HTTP/2 for SSE and polls, as a browser meets a production server (WebSockets
    /// on their own HTTP/1.1 connection); `off`: plain HTTP/1.1 (the server's fast path).
    #[arg(long, default_value = "on", value_parser = on_off, action = clap::ArgAction::Set)]
    pub tls: bool,
    /// Runs of each cell, interleaved by transport (4 is the fewest with which the rank test
    /// can reach 5%).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub repeat: u32,
    /// game: players.
    #[arg(long, default_value_t = 20)]
    pub clients: usize,
    /// game: how long each run's loop and inputs go on.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// game: world states published per second.
    #[arg(long, default_value_t = 30.0)]
    pub tick: f64,
    /// game: inputs each client sends per second.
    #[arg(long, default_value_t = 30.0)]
    pub input_rate: f64,
    /// progress: jobs, each with its own feed and its own client.
    #[arg(long, default_value_t = 10)]
    pub jobs: usize,
    /// progress: lines per burst.
    #[arg(long, default_value_t = 200)]
    pub burst_lines: u32,
    /// progress: how long a burst lasts.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub burst: Duration,
    /// progress: quiet between bursts.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub quiet: Duration,
    /// progress: bursts per job.
    #[arg(long, default_value_t = 2)]
    pub bursts: u32,
    /// progress: how long a reload keeps the client away.
    #[arg(long, default_value = "300ms", value_parser = humantime::parse_duration)]
    pub reload_gap: Duration,
    /// short-poll's interval (game: one tick; progress: this).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,
    /// Where `results.json` and `usecases.md` go (default `results/usecases-<time>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The server executable (default: `server` next to loadgen).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
}

impl UsecaseArgs {
    /// Runs this plans (every network, repeat, transport and workload), and about how long they
    /// take: a game run is `--duration` and the second its players take to connect and stop; a
    /// job log's run is its bursts and quiets, the half second before its start and the second
    /// its end and its refused reconnect take. Links' set-up is not counted.
    pub fn estimate(&self) -> (usize, Duration) {
        let workloads = if self.workloads.is_empty() {
            vec![Workload::Game, Workload::Progress]
        } else {
            self.workloads.clone()
        };
        let cells = self.networks.len() * self.repeat as usize * self.transports.len();
        let per_cell: Duration = workloads
            .iter()
            .map(|w| match w {
                Workload::Game => self.duration + Duration::from_millis(1_800),
                Workload::Progress => {
                    (self.burst + self.quiet) * self.bursts + Duration::from_millis(1_500)
                }
            })
            .sum();
        (cells * workloads.len(), per_cell * cells as u32)
    }

    /// The defaults, for a caller that sets what it knows (the scenario driver).
    ///
    /// # Errors
    /// Never in practice: the defaults parse.
    pub fn defaults(workload: Workload) -> anyhow::Result<Self> {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            a: UsecaseArgs,
        }
        let mut a = <Defaults as clap::Parser>::try_parse_from(["usecase"])?.a;
        a.workloads = vec![workload];
        Ok(a)
    }
}

fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(format!("on or off, got {s:?}")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    Game,
    Progress,
}

fn histogram() -> hdrhistogram::Histogram<u64> {
    // 1 µs to an hour, 3 significant digits.
    hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")
}

/// Runs `loadgen usecase`.
///
/// # Errors
/// When a server or link cannot be started, or the results cannot be written.
pub async fn run(a: UsecaseArgs) -> anyhow::Result<Results> {
    let workloads = if a.workloads.is_empty() {
        vec![Workload::Game, Workload::Progress]
    } else {
        a.workloads.clone()
    };
    let started = Instant::now();
    let mut results = Results {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        started_at: chrono::Utc::now().to_rfc3339(),
        duration_s: 0.0,
        tls: a.tls,
        game: Vec::new(),
        progress: Vec::new(),
        ranked: Vec::new(),
        encoding: None,
        record: None,
    };
    for network in &a.networks {
        let env = Env::up(&a, network).await?;
        for workload in &workloads {
            for repeat in 0..a.repeat {
                for &t in &a.transports {
                    match workload {
                        Workload::Game => {
                            let r = game(&a, &env, t, repeat).await;
                            eprintln!(
                                "usecase game {} {} #{repeat}: state age p99 {:?} µs, ack p99 {:?} µs",
                                network.name(),
                                t.name(),
                                r.state_age_us.p99,
                                r.input_ack_us.p99
                            );
                            results.game.push(r);
                        }
                        Workload::Progress => {
                            let r = progress(&a, &env, t, repeat).await;
                            eprintln!(
                                "usecase progress {} {} #{repeat}: lost {} repeated {} ended {}/{}",
                                network.name(),
                                t.name(),
                                r.lost,
                                r.repeated,
                                r.ended,
                                r.jobs
                            );
                            results.progress.push(r);
                        }
                    }
                }
            }
            results
                .ranked
                .push(rank_runs(*workload, network.name(), &a, &results));
        }
        env.down();
    }
    if workloads.contains(&Workload::Game) {
        results.encoding = Some(encoding());
    }
    results.duration_s = started.elapsed().as_secs_f64();
    results.record = Some(crate::sys::record(&results.started_at));
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "results/usecases-{}",
            chrono::Utc::now().format("%Y%m%d-%H%M%S")
        ))
    });
    write(&out, &results)?;
    Ok(results)
}

/// The server (behind the link, when there is one) and how clients reach it.
struct Env {
    server: ServerProcess,
    target: Arc<Target>,
    /// The same server as `/stats` is read: off the link.
    stats: Arc<Target>,
    /// Held for its life: dropping it takes the link and its namespaces down.
    link: Option<Arc<feedlab_link::Link>>,
    /// `--network`'s name for it (`none`, `lte`, `lte,loss=2%`).
    network: String,
    http: HttpVersion,
    _dir: tempfile::TempDir,
}

impl Env {
    async fn up(a: &UsecaseArgs, network: &feedlab_link::Network) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let cert = dir.path().join("cert.pem");
        let mut extra: Vec<String> = [
            "--rate",
            "0",
            "--max-input-rate",
            "1000",
            "--max-feeds",
            "100000",
            "--long-poll-timeout",
            "20s",
            "--heartbeat",
            "15s",
        ]
        .map(str::to_owned)
        .to_vec();
        if a.tls {
            extra.extend([
                "--tls-self-signed".to_owned(),
                "--tls-write-cert".to_owned(),
                cert.display().to_string(),
            ]);
        }
        let bin = a.server_bin.clone();
        let log = dir.path().join("server.log");
        let (server, link) = match network.spec() {
            None => {
                let s = on_this_thread(move || {
                    ServerProcess::spawn(bin.as_deref(), &extra, Some(&log))
                })?;
                (s, None)
            }
            Some(spec) => {
                let spec = *spec;
                let link = Arc::new(
                    tokio::task::spawn_blocking(move || {
                        feedlab_link::Link::up(spec, rand::random())
                    })
                    .await??,
                );
                let ns = link.server_namespace().to_owned();
                let bind = format!("{}:0", feedlab_link::SERVER_ADDR);
                let s = on_this_thread(move || {
                    ServerProcess::spawn_in(bin.as_deref(), &extra, Some(&log), &ns, &bind)
                })
                .context("starting the server behind the link")?;
                (s, Some(link))
            }
        };
        let (url, tls) = if a.tls {
            crate::server_proc::trusting_its_certificate(&server.url, cert).await?
        } else {
            (server.url.clone(), TlsOptions::default())
        };
        let target = match &link {
            Some(_) if a.tls => {
                // The self-signed certificate names 127.0.0.1, not the link's address: verify
                // it under that name and connect to the link's address (as the feed runs do).
                let mut named = url.clone();
                let _ = named.set_host(Some("127.0.0.1"));
                let mut t = Target::from_url(&named, &tls).await?;
                t.addr = std::net::SocketAddr::new(feedlab_link::SERVER_ADDR.into(), t.addr.port());
                t
            }
            _ => Target::from_url(&url, &tls).await?,
        };
        // Clients across the link; `/stats` from the server's side, off it.
        let (target, stats) = match &link {
            Some(l) => (target.via(&l.client), target.via(&l.server)),
            None => (target.clone(), target),
        };
        Ok(Self {
            server,
            stats: Arc::new(stats),
            target: Arc::new(target),
            link,
            network: network.name().to_owned(),
            http: if a.tls {
                HttpVersion::Http2
            } else {
                HttpVersion::Http11
            },
            _dir: dir,
        })
    }

    fn down(mut self) {
        self.server.stop();
        drop(self.link.take());
    }

    async fn cpu(&self) -> Option<f64> {
        crate::probe::stats(&self.stats)
            .await
            .ok()
            .map(|s| s.process.cpu_s)
    }
}

/// Runs blocking `f` on this runtime thread, never on a pool thread: a server spawned as
/// `loadgen serve` dies with the thread that spawned it (its parent-death signal), and
/// `spawn_blocking`'s threads exit when idle.
fn on_this_thread<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// A counted HTTP connection: HTTP/2 over TLS, else HTTP/1.1.
async fn connect(
    target: &Target,
    wire: &Arc<ByteCounts>,
    http: HttpVersion,
) -> Result<(net::Sender, tokio::task::JoinHandle<()>), String> {
    let stream = net::connect(target, None, wire, net::alpn_for(http))
        .await
        .map_err(|e| net::io_error_kind(&e).to_owned())?;
    net::http(stream, http)
        .await
        .map_err(|e| net::hyper_error_kind(&e).to_owned())
}

/// A request's status and body, within `net::RESPONSE_TIMEOUT`.
async fn fetch(
    sender: &mut net::Sender,
    req: Request<net::Body>,
) -> Result<(StatusCode, Bytes), String> {
    let send = async {
        let res = sender
            .send_request(req)
            .await
            .map_err(|e| net::hyper_error_kind(&e).to_owned())?;
        let status = res.status();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| net::hyper_error_kind(&e).to_owned())?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(net::RESPONSE_TIMEOUT, send)
        .await
        .map_err(|_| "timeout".to_owned())?
}

fn post(target: &Target, http: HttpVersion, path: &str, body: String) -> Request<net::Body> {
    let b = match http {
        HttpVersion::Http2 => Request::post(target.uri(path)).version(hyper::Version::HTTP_2),
        _ => Request::post(target.path(path)).header(header::HOST, &target.host),
    };
    b.header(header::CONTENT_TYPE, "application/json")
        .body(net::full(body))
        .expect("a valid request")
}

fn get(target: &Target, http: HttpVersion, path: &str) -> Request<net::Body> {
    target
        .get(path, http)
        .body(net::empty())
        .expect("a valid request")
}

/// One event as the JSON transports carry it.
#[derive(Debug, serde::Deserialize)]
struct Ev {
    seq: u64,
    ts: u64,
    #[serde(default)]
    end: bool,
}

#[derive(Debug, serde::Deserialize)]
struct PollBody {
    events: Vec<Ev>,
    next: u64,
}

/// Errors by kind.
#[derive(Debug, Default)]
struct Errors(BTreeMap<String, u64>);

impl Errors {
    fn add(&mut self, kind: impl Into<String>) {
        *self.0.entry(kind.into()).or_insert(0) += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// game

/// What one game client saw.
#[derive(Default)]
struct Player {
    ack: Option<hdrhistogram::Histogram<u64>>,
    age: Option<hdrhistogram::Histogram<u64>>,
    jitter: Option<hdrhistogram::Histogram<u64>>,
    last_state_us: Option<u64>,
    stalls: u64,
    states: u64,
    sent: u64,
    acked: u64,
    errors: Errors,
    /// Intended send time of each input not yet acknowledged, by `n`.
    pending: BTreeMap<u32, u64>,
}

impl Player {
    fn new() -> Self {
        Self {
            ack: Some(histogram()),
            age: Some(histogram()),
            jitter: Some(histogram()),
            ..Self::default()
        }
    }

    fn state(&mut self, ts: u64, tick_us: u64) {
        let now = clock::now_us();
        self.states += 1;
        let _ = self
            .age
            .as_mut()
            .map(|h| h.record(now.saturating_sub(ts).max(1)));
        if let Some(last) = self.last_state_us {
            let interval = now.saturating_sub(last);
            let _ = self
                .jitter
                .as_mut()
                .map(|h| h.record(interval.abs_diff(tick_us).max(1)));
            if interval > STALL.as_micros() as u64 {
                self.stalls += 1;
            }
        }
        self.last_state_us = Some(now);
    }

    fn acked(&mut self, n: u32) {
        if let Some(intended) = self.pending.remove(&n) {
            self.acked += 1;
            let lat = clock::now_us().saturating_sub(intended).max(1);
            let _ = self.ack.as_mut().map(|h| h.record(lat));
        } else {
            self.errors.add("unexpected_ack");
        }
    }
}

/// Input `n`'s bytes: 20–40 of them.
fn input_bytes(rng: &mut rand::rngs::StdRng) -> Vec<u8> {
    let len = rng.gen_range(20..=40);
    (0..len).map(|_| rng.gen()).collect()
}

async fn game(a: &UsecaseArgs, env: &Env, t: Transport, repeat: u32) -> GameRun {
    let stop = CancellationToken::new();
    let tick = Duration::from_secs_f64(1.0 / a.tick);
    let wire = Arc::new(ByteCounts::default());
    let cpu_before = env.cpu().await;
    let mut tasks = Vec::new();
    for i in 0..a.clients {
        let (target, wire, stop) = (env.target.clone(), wire.clone(), stop.clone());
        let (http, input_rate) = (env.http, a.input_rate);
        let poll_every = tick;
        tasks.push(tokio::spawn(async move {
            let mut p = Player::new();
            let id = format!("player-{repeat}-{i}");
            play(
                &target, &wire, http, t, &id, input_rate, poll_every, tick, &stop, &mut p,
            )
            .await;
            p
        }));
    }
    // Let every client connect, then run the loop for --duration.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let published = publish_states(env, a.tick, a.duration, repeat).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    let mut players = Vec::new();
    for task in tasks {
        if let Ok(p) = task.await {
            players.push(p);
        }
    }
    let cpu_after = env.cpu().await;
    let (mut ack, mut age, mut jitter) = (histogram(), histogram(), histogram());
    let mut errors = Errors::default();
    let (mut stalls, mut sent, mut acked, mut states) = (0, 0, 0, 0);
    for p in &players {
        let _ = ack.add(p.ack.as_ref().expect("made"));
        let _ = age.add(p.age.as_ref().expect("made"));
        let _ = jitter.add(p.jitter.as_ref().expect("made"));
        stalls += p.stalls;
        sent += p.sent;
        acked += p.acked;
        states += p.states;
        for (k, v) in &p.errors.0 {
            *errors.0.entry(k.clone()).or_insert(0) += v;
        }
    }
    let secs = a.duration.as_secs_f64() + 0.8;
    let per = (a.clients as f64 * secs).max(1e-9);
    GameRun {
        network: env_network(env),
        transport: t.name().to_owned(),
        repeat,
        clients: a.clients,
        seconds: secs,
        input_ack_us: Tail::of(&ack),
        state_age_us: Tail::of(&age),
        jitter_p99_us: (!jitter.is_empty()).then(|| jitter.value_at_quantile(0.99)),
        stalls,
        inputs_sent: sent,
        inputs_acked: acked,
        states_published: published,
        states_received: states,
        bytes_down_per_s: wire.read() as f64 / per,
        bytes_up_per_s: wire.written() as f64 / per,
        bytes_per_state: (states > 0).then(|| wire.read() as f64 / states as f64),
        server_cpu_s: cpu_before.zip(cpu_after).map(|(b, a)| a - b),
        errors: errors.0,
    }
}

fn env_network(env: &Env) -> String {
    env.network.clone()
}

/// The game loop: `tick` states a second for `duration`, each 100–300 random bytes as
/// `{"bin":"<base64>"}`, at fixed times. Returns how many were published.
async fn publish_states(env: &Env, tick: f64, duration: Duration, seed: u32) -> u64 {
    let wire = Arc::new(ByteCounts::default());
    // The game loop lives beside the server: it publishes from the server's side of the link.
    let Ok((mut sender, task)) = connect(&env.stats, &wire, env.http).await else {
        return 0;
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(seed));
    let start = tokio::time::Instant::now();
    let every = Duration::from_secs_f64(1.0 / tick);
    let mut n = 0u64;
    let mut k = 0u32;
    while start.elapsed() < duration {
        tokio::time::sleep_until(start + every * k).await;
        k += 1;
        let len = rng.gen_range(100..=300);
        let state: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let body = format!(
            "{{\"bin\":\"{}\"}}",
            base64::engine::general_purpose::STANDARD.encode(&state)
        );
        if matches!(
            fetch(&mut sender, post(&env.stats, env.http, "/publish", body)).await,
            Ok((StatusCode::OK, _))
        ) {
            n += 1;
        }
    }
    drop(sender);
    task.abort();
    n
}

/// One player until `stop`: states in its transport's way, inputs up its way.
#[allow(clippy::too_many_arguments)]
async fn play(
    target: &Target,
    wire: &Arc<ByteCounts>,
    http: HttpVersion,
    t: Transport,
    id: &str,
    input_rate: f64,
    poll_every: Duration,
    tick: Duration,
    stop: &CancellationToken,
    p: &mut Player,
) {
    let tick_us = tick.as_micros() as u64;
    let mut rng = rand::rngs::StdRng::from_entropy();
    if t == Transport::Ws {
        return play_ws(target, wire, id, input_rate, tick_us, stop, p, &mut rng).await;
    }
    let Ok((sender, task)) = connect(target, wire, http).await else {
        p.errors.add("connect");
        return;
    };
    // The way up: further streams on the same HTTP/2 connection, or HTTP/1.1 connections of
    // their own, as a browser's fetches ([`uplink`]).
    let Ok(mut up) = uplink::Uplink::new(target, wire, http, &sender).await else {
        p.errors.add("connect_up");
        return;
    };
    let inputs = async {
        let mut up_seen = Player::new();
        let start = tokio::time::Instant::now();
        let every = Duration::from_secs_f64(1.0 / input_rate);
        let mut n = 0u32;
        loop {
            let due = start + every * n;
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep_until(due) => {
                    // Counted from the intended time: an input that waited for a free
                    // connection carries the wait.
                    let intended = clock::now_us().saturating_sub(due.elapsed().as_micros() as u64);
                    let bytes = input_bytes(&mut rng);
                    let body = format!(
                        "{{\"n\":{n},\"d\":\"{}\"}}",
                        base64::engine::general_purpose::STANDARD.encode(&bytes)
                    );
                    up.queue(n, post(target, http, &format!("/input?client={id}"), body));
                    up_seen.pending.insert(n, intended);
                    up_seen.sent += 1;
                    n += 1;
                }
                Some(done) = up.answered() => match done {
                    Ok((k, Ok((StatusCode::OK, _)))) => up_seen.acked(k),
                    Ok((_, Ok((s, _)))) => up_seen.errors.add(format!("input_http_{}", s.as_u16())),
                    Ok((_, Err(e))) => up_seen.errors.add(e),
                    Err(e) => up_seen.errors.add(format!("connect_up_{e}")),
                },
            }
        }
        up_seen
    };
    let states = follow(target, sender, http, t, id, poll_every, tick_us, stop, p);
    let (up_seen, ()) = tokio::join!(inputs, states);
    p.sent += up_seen.sent;
    p.acked += up_seen.acked;
    if let (Some(h), Some(up)) = (p.ack.as_mut(), up_seen.ack.as_ref()) {
        let _ = h.add(up);
    }
    for (k, v) in up_seen.errors.0 {
        *p.errors.0.entry(k).or_insert(0) += v;
    }
    drop(up);
    task.abort();
}

/// States by SSE, long poll or short poll.
#[allow(clippy::too_many_arguments)]
async fn follow(
    target: &Target,
    mut sender: net::Sender,
    http: HttpVersion,
    t: Transport,
    id: &str,
    poll_every: Duration,
    tick_us: u64,
    stop: &CancellationToken,
    p: &mut Player,
) {
    let mut cursor: Option<u64> = None;
    let start = tokio::time::Instant::now();
    let mut n = 0u32;
    loop {
        if stop.is_cancelled() {
            return;
        }
        match t {
            Transport::Sse => {
                let req = target
                    .get(&format!("/sse?client={id}"), http)
                    .header(header::ACCEPT, "text/event-stream")
                    .body(net::empty())
                    .expect("a valid request");
                let res = tokio::select! {
                    () = stop.cancelled() => return,
                    r = sender.send_request(req) => r,
                };
                let Ok(res) = res else {
                    p.errors.add("sse_connect");
                    return;
                };
                let mut events = res.into_body().into_data_stream().eventsource();
                loop {
                    let next = tokio::select! {
                        () = stop.cancelled() => return,
                        n = events.next() => n,
                    };
                    match next {
                        Some(Ok(ev)) => match serde_json::from_str::<Ev>(&ev.data) {
                            Ok(e) => p.state(e.ts, tick_us),
                            Err(_) => p.errors.add("bad_body"),
                        },
                        _ => {
                            p.errors.add("sse_ended");
                            return;
                        }
                    }
                }
            }
            Transport::LongPoll | Transport::ShortPoll => {
                let path = match (t, cursor) {
                    (Transport::LongPoll, Some(c)) => {
                        format!("/long-poll?client={id}&since={c}&timeout_ms=20000")
                    }
                    (Transport::LongPoll, None) => {
                        format!("/long-poll?client={id}&timeout_ms=20000")
                    }
                    (_, Some(c)) => format!("/poll?client={id}&since={c}"),
                    (_, None) => format!("/poll?client={id}"),
                };
                if t == Transport::ShortPoll {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep_until(start + poll_every * n) => {}
                    }
                    n += 1;
                }
                let answer = tokio::select! {
                    () = stop.cancelled() => return,
                    r = fetch(&mut sender, get(target, http, &path)) => r,
                };
                match answer {
                    Ok((StatusCode::OK, body)) => match serde_json::from_slice::<PollBody>(&body) {
                        Ok(b) => {
                            for e in &b.events {
                                p.state(e.ts, tick_us);
                            }
                            cursor = Some(b.next);
                        }
                        Err(_) => p.errors.add("bad_body"),
                    },
                    Ok((StatusCode::NO_CONTENT, _)) => {}
                    Ok((s, _)) => {
                        p.errors.add(format!("http_{}", s.as_u16()));
                        return;
                    }
                    Err(e) => {
                        p.errors.add(e);
                        return;
                    }
                }
            }
            Transport::Ws | Transport::Wt | Transport::WtStreams | Transport::WtDatagrams => return,
        }
    }
}

/// A WebSocket player: `encoding=binary`, states and acknowledgements as binary messages.
#[allow(clippy::too_many_arguments)]
async fn play_ws(
    target: &Target,
    wire: &Arc<ByteCounts>,
    id: &str,
    input_rate: f64,
    tick_us: u64,
    stop: &CancellationToken,
    p: &mut Player,
    rng: &mut rand::rngs::StdRng,
) {
    let Ok(stream) = net::connect_upgrade(target, None, wire, net::Alpn::Http1).await else {
        p.errors.add("connect");
        return;
    };
    let Ok(req) = target
        .ws_url(&format!("/ws?encoding=binary&client={id}"))
        .into_client_request()
    else {
        p.errors.add("bad_request");
        return;
    };
    let Ok((ws, _)) = tokio_tungstenite::client_async(req, stream).await else {
        p.errors.add("ws_handshake");
        return;
    };
    let (mut tx, mut rx) = ws.split();
    let start = tokio::time::Instant::now();
    let every = Duration::from_secs_f64(1.0 / input_rate);
    let mut n = 0u32;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep_until(start + every * n) => {
                let due = start + every * n;
                let intended = clock::now_us().saturating_sub(due.elapsed().as_micros() as u64);
                let mut msg = vec![0x10];
                msg.extend_from_slice(&n.to_be_bytes());
                msg.extend(input_bytes(rng));
                p.pending.insert(n, intended);
                p.sent += 1;
                n += 1;
                if tx.send(Message::Binary(msg)).await.is_err() {
                    p.errors.add("ws_send");
                    break;
                }
            }
            msg = rx.next() => match msg {
                Some(Ok(Message::Binary(b))) => match b.first() {
                    Some(0x01) if b.len() >= 18 => {
                        let ts = u64::from_be_bytes(b[9..17].try_into().expect("8 bytes"));
                        p.state(ts, tick_us);
                    }
                    Some(0x02) if b.len() >= 5 => {
                        p.acked(u32::from_be_bytes(b[1..5].try_into().expect("4 bytes")));
                    }
                    _ => p.errors.add("ws_unknown_message"),
                },
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    p.errors.add("ws_ended");
                    break;
                }
            },
        }
    }
    let _ = tx.send(Message::Close(None)).await;
}

/// What a state costs in each encoding, averaged over the sizes the loop publishes.
fn encoding() -> Encoding {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let n = 1000;
    let (mut raw, mut data, mut event, mut binary) = (0usize, 0usize, 0usize, 0usize);
    for i in 0..n {
        let len = rng.gen_range(100..=300);
        let b64 = base64::engine::general_purpose::STANDARD.encode(vec![0u8; len]);
        let d = format!("{{\"bin\":\"{b64}\"}}");
        let seq = 100_000 + i as u64;
        let e = feedlab_wire::envelope(seq, 1_765_000_000_000_000, &d);
        raw += len;
        data += d.len();
        event += e.len();
        // 0x01, seq, ts, flags, bytes; and the frame's 2- or 4-byte header.
        let msg = 18 + len;
        binary += msg + if msg > 125 { 4 } else { 2 };
    }
    let f = |x: usize| x as f64 / f64::from(n);
    Encoding {
        raw: f(raw),
        json_data: f(data),
        json_event: f(event),
        binary_message: f(binary),
    }
}

// ---------------------------------------------------------------------------------------------
// progress

/// What one job's client saw.
#[derive(Default)]
struct Follower {
    seen: Vec<u32>,
    last_seq: u64,
    ended: bool,
    refused_after_end: bool,
    first_after_reload: Option<u64>,
    requests: u64,
    errors: Errors,
}

impl Follower {
    fn line(&mut self, seq: u64, end: bool) {
        if seq == 0 {
            return;
        }
        if let Some(slot) = self.seen.get_mut((seq - 1) as usize) {
            *slot += 1;
        } else {
            self.seen.resize(seq as usize, 0);
            self.seen[(seq - 1) as usize] = 1;
        }
        self.last_seq = self.last_seq.max(seq);
        if end {
            self.ended = true;
        }
    }
}

async fn progress(a: &UsecaseArgs, env: &Env, t: Transport, repeat: u32) -> ProgressRun {
    let wire = Arc::new(ByteCounts::default());
    let nonce: u32 = rand::random();
    let lines = u64::from(a.burst_lines) * u64::from(a.bursts);
    let cpu_before = env.cpu().await;
    let mut followers = Vec::new();
    let mut publishers = Vec::new();
    let reload_at = a.burst / 2;
    let job_length = (a.burst + a.quiet) * a.bursts;
    let start = tokio::time::Instant::now() + Duration::from_millis(500);
    for j in 0..a.jobs {
        let feed = format!("job-{nonce:08x}-{j}");
        let (target, wire, http) = (env.target.clone(), wire.clone(), env.http);
        let (gap, every) = (a.reload_gap, a.poll_interval);
        let f2 = feed.clone();
        followers.push(tokio::spawn(async move {
            let mut f = Follower::default();
            follow_job(
                &target,
                &wire,
                http,
                t,
                &f2,
                start + reload_at,
                gap,
                every,
                job_length,
                &mut f,
            )
            .await;
            f
        }));
        // The job runs beside the server: its lines go in from the server's side of the link.
        let (target, http) = (env.stats.clone(), env.http);
        let (burst_lines, burst, quiet, bursts) = (a.burst_lines, a.burst, a.quiet, a.bursts);
        publishers.push(tokio::spawn(async move {
            publish_job(
                &target,
                http,
                &feed,
                start,
                burst_lines,
                burst,
                quiet,
                bursts,
            )
            .await
        }));
    }
    for p in publishers {
        let _ = p.await;
    }
    let mut first = histogram();
    let (mut lost, mut repeated, mut ended, mut refused, mut requests) = (0, 0, 0, 0, 0);
    let mut errors = Errors::default();
    for f in followers {
        // A follower that never sees its end is stopped by the timeout in `follow_job`.
        let Ok(f) = f.await else { continue };
        // Lines are seqs 1..=lines; the end event is seq lines + 1.
        for i in 0..lines as usize {
            match f.seen.get(i).copied().unwrap_or(0) {
                0 => lost += 1,
                1 => {}
                k => repeated += u64::from(k - 1),
            }
        }
        ended += u64::from(f.ended);
        refused += u64::from(f.refused_after_end);
        requests += f.requests;
        if let Some(us) = f.first_after_reload {
            let _ = first.record(us.max(1));
        }
        for (k, v) in f.errors.0 {
            *errors.0.entry(k).or_insert(0) += v;
        }
    }
    let cpu_after = env.cpu().await;
    let jobs = a.jobs.max(1) as f64;
    ProgressRun {
        network: env_network(env),
        transport: t.name().to_owned(),
        repeat,
        jobs: a.jobs,
        lines_per_job: lines,
        lost,
        repeated,
        ended,
        refused_after_end: refused,
        first_line_after_reload_us: Tail::of(&first),
        bytes_per_job: (wire.read() + wire.written()) as f64 / jobs,
        requests_per_job: requests as f64 / jobs,
        server_cpu_ms_per_job: cpu_before
            .zip(cpu_after)
            .map(|(b, a)| (a - b) * 1000.0 / jobs),
        errors: errors.0,
    }
}

/// One job's lines: `bursts` bursts of `burst_lines` evenly over `burst`, `quiet` between,
/// then the terminal event.
#[allow(clippy::too_many_arguments)]
async fn publish_job(
    target: &Target,
    http: HttpVersion,
    feed: &str,
    start: tokio::time::Instant,
    burst_lines: u32,
    burst: Duration,
    quiet: Duration,
    bursts: u32,
) {
    let wire = Arc::new(ByteCounts::default());
    let Ok((mut sender, task)) = connect(target, &wire, http).await else {
        return;
    };
    let every = burst / burst_lines.max(1);
    let mut i = 0u32;
    for b in 0..bursts {
        let at = start + (burst + quiet) * b;
        for k in 0..burst_lines {
            tokio::time::sleep_until(at + every * k).await;
            let body = format!(
                "{{\"i\":{i},\"line\":\"step {b}.{k}: compiling module {i} of the build, {} ok\"}}",
                i * 7
            );
            let _ = fetch(
                &mut sender,
                post(target, http, &format!("/publish?feed={feed}"), body),
            )
            .await;
            i += 1;
        }
    }
    tokio::time::sleep(every).await;
    let _ = fetch(
        &mut sender,
        post(
            target,
            http,
            &format!("/publish?feed={feed}&end=1"),
            "{\"done\":true}".into(),
        ),
    )
    .await;
    drop(sender);
    task.abort();
}

/// Follows one job: from its start, a reload at `reload_at` (away for `gap`), until its
/// terminal event; then one more reconnect, which must be refused (204).
#[allow(clippy::too_many_arguments)]
async fn follow_job(
    target: &Target,
    wire: &Arc<ByteCounts>,
    http: HttpVersion,
    t: Transport,
    feed: &str,
    reload_at: tokio::time::Instant,
    gap: Duration,
    poll_every: Duration,
    job_length: Duration,
    f: &mut Follower,
) {
    // Bounded: a follower that never sees the end gives up a minute after the job's length.
    let give_up = tokio::time::Instant::now() + job_length + Duration::from_secs(60);
    let mut reloaded = false;
    let mut reconnected_at: Option<u64> = None;
    while !f.ended && tokio::time::Instant::now() < give_up {
        let until = if reloaded { give_up } else { reload_at };
        let session = follow_once(
            target,
            wire,
            http,
            t,
            feed,
            until,
            poll_every,
            f,
            &mut reconnected_at,
        );
        session.await;
        if !f.ended && !reloaded && tokio::time::Instant::now() >= reload_at {
            // The reload: gone for `gap`, then back from the cursor.
            reloaded = true;
            tokio::time::sleep(gap).await;
            reconnected_at = Some(clock::now_us());
        } else if !f.ended {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    if f.ended {
        // A page opened again after the job: it must be told there is nothing more.
        f.refused_after_end = refused_after_end(target, wire, http, t, feed, f).await;
    }
}

/// One connection (or run of polls) until `until`, the end, or a failure.
#[allow(clippy::too_many_arguments)]
async fn follow_once(
    target: &Target,
    wire: &Arc<ByteCounts>,
    http: HttpVersion,
    t: Transport,
    feed: &str,
    until: tokio::time::Instant,
    poll_every: Duration,
    f: &mut Follower,
    reconnected_at: &mut Option<u64>,
) {
    let mut line = |f: &mut Follower, seq: u64, end: bool| {
        if let Some(at) = reconnected_at.take() {
            f.first_after_reload = Some(clock::now_us().saturating_sub(at));
        }
        f.line(seq, end);
    };
    let timeout = tokio::time::sleep_until(until);
    tokio::pin!(timeout);
    if t == Transport::Ws {
        let Ok(stream) = net::connect_upgrade(target, None, wire, net::Alpn::Http1).await else {
            f.errors.add("connect");
            return;
        };
        let Ok(req) = target
            .ws_url(&format!("/ws?feed={feed}&since={}", f.last_seq))
            .into_client_request()
        else {
            return;
        };
        f.requests += 1;
        let Ok((mut ws, _)) = tokio_tungstenite::client_async(req, stream).await else {
            f.errors.add("ws_handshake");
            return;
        };
        loop {
            tokio::select! {
                () = &mut timeout => return,
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(text))) => {
                        if let Ok(e) = serde_json::from_str::<Ev>(&text) {
                            line(f, e.seq, e.end);
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                },
            }
        }
    }
    let Ok((mut sender, task)) = connect(target, wire, http).await else {
        f.errors.add("connect");
        return;
    };
    let _task = AbortOnDrop(task);
    if t == Transport::Sse {
        let mut req = target
            .get(&format!("/sse?feed={feed}&since=0"), http)
            .header(header::ACCEPT, "text/event-stream");
        if f.last_seq > 0 {
            // As EventSource does when it comes back.
            req = req.header("last-event-id", f.last_seq.to_string());
        }
        f.requests += 1;
        let res = tokio::select! {
            () = &mut timeout => return,
            r = sender.send_request(req.body(net::empty()).expect("a valid request")) => r,
        };
        let Ok(res) = res else {
            f.errors.add("sse_connect");
            return;
        };
        if res.status() != StatusCode::OK {
            f.errors.add(format!("http_{}", res.status().as_u16()));
            return;
        }
        let mut events = res.into_body().into_data_stream().eventsource();
        loop {
            tokio::select! {
                () = &mut timeout => return,
                next = events.next() => match next {
                    Some(Ok(ev)) => {
                        if let Ok(e) = serde_json::from_str::<Ev>(&ev.data) {
                            line(f, e.seq, e.end);
                        }
                    }
                    _ => return,
                },
            }
        }
    }
    let start = tokio::time::Instant::now();
    let mut n = 0u32;
    while !f.ended {
        let path = if t == Transport::LongPoll {
            format!(
                "/long-poll?feed={feed}&since={}&timeout_ms=20000",
                f.last_seq
            )
        } else {
            tokio::select! {
                () = &mut timeout => return,
                () = tokio::time::sleep_until(start + poll_every * n) => {}
            }
            n += 1;
            format!("/poll?feed={feed}&since={}", f.last_seq)
        };
        f.requests += 1;
        let answer = tokio::select! {
            () = &mut timeout => return,
            r = fetch(&mut sender, get(target, http, &path)) => r,
        };
        match answer {
            Ok((StatusCode::OK, body)) => {
                if let Ok(b) = serde_json::from_slice::<PollBody>(&body) {
                    for e in &b.events {
                        line(f, e.seq, e.end);
                    }
                }
            }
            Ok((StatusCode::NO_CONTENT, _)) => {}
            Ok((s, _)) => {
                f.errors.add(format!("http_{}", s.as_u16()));
                return;
            }
            Err(e) => {
                f.errors.add(e);
                return;
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whether a reconnect after the terminal event is refused with 204.
async fn refused_after_end(
    target: &Target,
    wire: &Arc<ByteCounts>,
    http: HttpVersion,
    t: Transport,
    feed: &str,
    f: &mut Follower,
) -> bool {
    f.requests += 1;
    if t == Transport::Ws {
        // The handshake is answered 204 instead of 101.
        let Ok(stream) = net::connect_upgrade(target, None, wire, net::Alpn::Http1).await else {
            return false;
        };
        let Ok(req) = target
            .ws_url(&format!("/ws?feed={feed}&since={}", f.last_seq))
            .into_client_request()
        else {
            return false;
        };
        return matches!(
            tokio_tungstenite::client_async(req, stream).await,
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) if res.status() == StatusCode::NO_CONTENT
        );
    }
    let Ok((mut sender, task)) = connect(target, wire, http).await else {
        return false;
    };
    let _task = AbortOnDrop(task);
    let path = match t {
        Transport::Sse => format!("/sse?feed={feed}&since={}", f.last_seq),
        Transport::LongPoll => format!("/long-poll?feed={feed}&since={}", f.last_seq),
        _ => format!("/poll?feed={feed}&since={}", f.last_seq),
    };
    matches!(
        fetch(&mut sender, get(target, http, &path)).await,
        Ok((StatusCode::NO_CONTENT, _))
    )
}

// ---------------------------------------------------------------------------------------------
// ranking and output

/// Ranks one network's runs of `workload` by the project's rule.
fn rank_runs(workload: Workload, network: &str, a: &UsecaseArgs, r: &Results) -> Ranked {
    let names: Vec<String> = a.transports.iter().map(|t| t.name().to_owned()).collect();
    let per = |f: &dyn Fn(&str) -> Vec<f64>| names.iter().map(|t| f(t)).collect::<Vec<_>>();
    let (criteria, values): (Vec<&str>, Vec<Vec<Vec<f64>>>) = match workload {
        Workload::Game => {
            let runs = |t: &str| {
                r.game
                    .iter()
                    .filter(|g| g.transport == t && g.network == network)
                    .cloned()
                    .collect::<Vec<_>>()
            };
            (
                vec![
                    "state age p99",
                    "input → ack p99",
                    "stalls",
                    "bytes per client-second",
                ],
                vec![
                    per(&|t| {
                        runs(t)
                            .iter()
                            .map(|g| g.state_age_us.p99.unwrap_or(u64::MAX) as f64)
                            .collect()
                    }),
                    per(&|t| {
                        runs(t)
                            .iter()
                            .map(|g| g.input_ack_us.p99.unwrap_or(u64::MAX) as f64)
                            .collect()
                    }),
                    per(&|t| runs(t).iter().map(|g| g.stalls as f64).collect()),
                    per(&|t| {
                        runs(t)
                            .iter()
                            .map(|g| g.bytes_down_per_s + g.bytes_up_per_s)
                            .collect()
                    }),
                ],
            )
        }
        Workload::Progress => {
            let runs = |t: &str| {
                r.progress
                    .iter()
                    .filter(|g| g.transport == t && g.network == network)
                    .cloned()
                    .collect::<Vec<_>>()
            };
            (
                vec![
                    "resume errors (lines lost or repeated, ends missed)",
                    "first line after a reload p99",
                    "bytes per job",
                    "server CPU per job",
                ],
                vec![
                    per(&|t| {
                        runs(t)
                            .iter()
                            .map(|g| {
                                (g.lost + g.repeated + (g.jobs as u64 - g.ended.min(g.jobs as u64)))
                                    as f64
                            })
                            .collect()
                    }),
                    per(&|t| {
                        runs(t)
                            .iter()
                            .map(|g| g.first_line_after_reload_us.p99.unwrap_or(u64::MAX) as f64)
                            .collect()
                    }),
                    per(&|t| runs(t).iter().map(|g| g.bytes_per_job).collect()),
                    per(&|t| {
                        runs(t)
                            .iter()
                            .map(|g| g.server_cpu_ms_per_job.unwrap_or(0.0))
                            .collect()
                    }),
                ],
            )
        }
    };
    let crit: Vec<Criterion<'_>> = criteria
        .iter()
        .copied()
        .zip(values)
        .map(|(name, values)| Criterion { name, values })
        .collect();
    let places = rank::rank(names.len(), &crit, Rule::default());
    Ranked {
        workload: match workload {
            Workload::Game => "game",
            Workload::Progress => "progress",
        }
        .to_owned(),
        network: network.to_owned(),
        criteria: criteria.iter().map(|s| (*s).to_owned()).collect(),
        places: places
            .into_iter()
            .map(|p| RankedPlace {
                transport: names[p.candidate].clone(),
                rank: p.rank,
                decided_by: p.decided_by.map(|d| Decided {
                    criterion: d.criterion,
                    margin: d.margin,
                    p: d.p,
                }),
            })
            .collect(),
    }
}

fn write(out: &std::path::Path, r: &Results) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(r)?)?;
    feedlab_report::section::usecases::write_markdown(out)?;
    eprintln!("usecase: wrote {}", out.join("usecases.md").display());
    Ok(())
}
