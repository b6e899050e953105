//! `loadgen costs`: what each transport costs where the cost occurs, written as the cost model
//! (`results/model/model.json`, format [`feedlab_cost::model`]); `loadgen costs --validate`
//! checks the model's composition against direct whole-session runs
//! (`results/model/validation.md`, [`validate`]).
//!
//! # What runs
//! Every repeat starts one server per transport and condition (a process each, so CPU and memory
//! are that transport's alone) and runs, in the repeat's order (rotated each repeat, so no
//! transport always goes first or last):
//!
//! 0. an idle window, every server at once with nothing connected ([`windows::idle`],
//!    `--idle-window`, 15 s: a minute per server over four repeats);
//! 1. session windows, one TCP server at a time, the QUIC servers together
//!    ([`windows::sessions`], [`schedule`]);
//! 2. message-up windows, all servers at once (one light client each) ([`windows::message`]);
//! 3. delivery windows at each client count: the clients connected to every server, the lowest
//!    rate on all servers at once (their publishers staggered so no two feeds publish together),
//!    then each higher rate one server at a time, or a few at once where their deliveries per
//!    second together stay within the lowest rate's window's ([`windows::deliver`],
//!    [`schedule`]); after the first (the fewest) count, a beat window with those few held
//!    idle, all servers at once;
//! 4. the beat window: every server's clients topped up to `--beat-connections` (the RSS growth
//!    over those last ones is the memory per connection), then all held idle together for
//!    `--beat-window` ([`windows::beats`]). The beat's CPU is kept at both counts: a server
//!    with few connections wakes for each beat alone, one with thousands shares wake-ups, and
//!    the composition interpolates between them for a workload's client count.
//!
//! The windows of one repeat share the moment's machine, so every figure composes per repeat
//! (repeat *i* of each with repeat *i* of the others; [`feedlab_cost::measured`]). The servers
//! run on one core and loadgen on the others ([`pinning`]; `--no-pin` turns it off).
//!
//! Sharing those windows keeps twelve servers within the 30 minutes the measurement may take on
//! a 2-core machine: with every session and higher-rate window one server at a time,
//! [`Plan::estimate_s`] says 2,150 s for the default plan; shared, 1,786 s (the nine servers
//! before polls, long polls and SSE over HTTP/3 joined, with a 5 s idle window: 1,747 s
//! estimated, 1,542 s taken). What
//! is shared, and why it does not load the machine more than the lowest rate's window already
//! does, is in [`schedule`].
//!
//! # Conditions
//! `browser`: TLS (the server's self-signed certificate, trusted), HTTP/2 for polls and SSE
//! (WebSockets upgrade HTTP/1.1), compression offered as Chromium offers it, Chromium's request
//! heads ([`heads`]) with a cookie of `--cookie-bytes`; HTTP/2 served by actix-web, a WebSocket's
//! HTTP/1.1 over TLS by the fast path. `plain-h1`: plain
//! HTTP/1.1, no compression, minimal heads; served by the raw-socket fast path. `browser-h3`:
//! QUIC, with the browser condition's heads, cookie and compression: polls, long polls and SSE
//! over HTTP/3 from `server --quic --quic-http3` ([`h3`]), WebTransport from `server --quic`
//! ([`quic`]), so the model has QUIC's session, beat, delivery, message and memory per
//! connection beside TCP+TLS's. Each window client over QUIC is one browser tab with a QUIC
//! connection of its own (a browser shares one HTTP/3 connection among an origin's tabs; the
//! TCP window clients likewise hold a connection each).
//!
//! Short polling's delivery windows also give the CPU per poll with the events in it
//! ([`feedlab_cost::model::DeliveryPoint::poll_cpu_us`]), which is what the composition prices
//! a short poll's hour with.

pub mod client;
pub mod h3;
pub mod pinning;
pub mod quic;
pub mod schedule;
pub mod server;
pub mod validate;
pub mod windows;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use feedlab_cost::{
    measured::Measured,
    model::{
        Beat, BeatKind, BeatPoint, Condition, CostModel, DeliveryPoint, MessageUp, Record, Session,
        Settings, TransportCosts, FORMAT,
    },
};
use feedlab_wire::{payload::PayloadKind, Transport};

use crate::heads::{self, Heads};

use self::{
    client::Setup,
    server::{Server, ServerSettings},
    windows::{Delivered, Raw, Slot},
};

/// `loadgen costs`.
#[derive(Debug, Clone, clap::Args)]
pub struct CostsArgs {
    /// Seconds instead of minutes: small counts, short windows, 1 s beat intervals, 2 repeats
    /// (for tests; the figures mean little).
    #[arg(long)]
    pub quick: bool,

    /// Conditions to measure: `browser` (TLS, HTTP/2 for polls and SSE, compression, Chromium's
    /// heads and a cookie), `plain-h1` (plain HTTP/1.1, minimal heads), `browser-h3` (QUIC:
    /// polls, long polls and SSE over HTTP/3, and WebTransport, with the browser's heads).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "browser,plain-h1,browser-h3"
    )]
    pub conditions: Vec<Condition>,

    /// Transports: `all`, or a list of short-poll, long-poll, sse, ws, wt. Each condition
    /// measures those it carries: the TCP conditions the first four, `browser-h3` all but ws.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub transports: Vec<String>,

    /// Where model.json (and validation.md/.json, the servers' logs) go.
    #[arg(long, default_value = "results/model")]
    pub out: PathBuf,

    /// Interleaved repeats of every window (default 4, the fewest the ranking's rank test can
    /// separate at 5%; `--quick`: 2).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub repeats: Option<u32>,

    /// What each event carries (`chat`, `tick`, `metrics`, `padding`).
    #[arg(long, value_enum, default_value = "chat")]
    pub payload: PayloadKind,

    /// Bytes of the `Cookie` the browser condition sends with every request (the fixture's
    /// README gives the source of the default); 0 sends none.
    #[arg(long, default_value_t = heads::DEFAULT_COOKIE_BYTES)]
    pub cookie_bytes: usize,

    /// The browser request heads (default: loadgen/fixtures/chromium-request-heads.json).
    #[arg(long)]
    pub heads: Option<PathBuf>,

    /// The short-poll client's interval (default 5 s; `--quick`: 1 s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub poll_interval: Option<Duration>,

    /// The server's `--heartbeat` (default: the server's, 15 s; `--quick`: 1 s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub heartbeat: Option<Duration>,

    /// The server's `--long-poll-timeout` (default: the server's, 25 s; `--quick`: 1 s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub long_poll_timeout: Option<Duration>,

    /// Event rates of the delivery windows, events/s (default 1,20; `--quick`: 2,10).
    #[arg(long, value_delimiter = ',')]
    pub rates: Vec<f64>,

    /// Client counts of the delivery windows (default 100,1000; `--quick`: 10,40).
    #[arg(long, value_delimiter = ',')]
    pub clients: Vec<u32>,

    /// Connections held through the beat window, per transport and condition (default 2000;
    /// `--quick`: 400, enough that the beats' CPU stands well above the server's own idle CPU,
    /// which is subtracted, on a loaded machine).
    #[arg(long)]
    pub beat_connections: Option<u32>,

    /// How long the beat window lasts (default 60 s; `--quick`: 3 s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub beat_window: Option<Duration>,

    /// Server executable (default: `server` next to loadgen, else loadgen itself).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,

    /// Let the servers and loadgen share every core. By default (on two cores or more) the
    /// servers run on the first CPU, one worker each, and loadgen on the others, so a server's
    /// figures do not depend on what loadgen did beside it.
    #[arg(long)]
    pub no_pin: bool,

    /// Let the servers' CPU halt when they have nothing to run. By default, while they are
    /// pinned, a spinning thread at the lowest scheduling class (`SCHED_IDLE`) keeps that CPU
    /// out of its idle states, so that a server's wake-up costs what it costs on a server busy
    /// with its other clients, not the exit from a halt.
    #[arg(long)]
    pub no_keep_warm: bool,

    /// How long every server is measured idle with nothing connected, all at once, at the start
    /// of each repeat (default 15 s; `--quick`: 1 s); subtracted from each of its windows.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub idle_window: Option<Duration>,

    /// Extra argument for every spawned server (repeatable).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    pub server_args: Vec<String>,

    /// Instead of measuring: check the model in --out against direct whole-session runs and
    /// write validation.md and validation.json there.
    #[arg(long)]
    pub validate: bool,

    /// With --validate: predict the committed validation's direct runs again with this
    /// loadgen's composition (after a change to it), without running them again.
    #[arg(long, requires = "validate")]
    pub recompose: bool,

    /// Validation workloads: `all`, or a list of quiet, busy, talk-back.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub workloads: Vec<String>,

    /// Direct runs per validation workload (default 3; the median is compared).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub validate_repeats: Option<u32>,

    /// Scales the validation workloads' session lengths (and the quiet feed's gap between
    /// events), e.g. 0.25 for a trial in a quarter of the time; the committed validation uses 1.
    #[arg(long, default_value_t = 1.0)]
    pub validate_scale: f64,
}

/// Everything a measurement needs, defaults resolved.
#[derive(Debug, Clone)]
pub struct Plan {
    pub quick: bool,
    pub conditions: Vec<Condition>,
    pub transports: Vec<Transport>,
    pub out: PathBuf,
    pub repeats: u32,
    pub payload: PayloadKind,
    pub cookie_bytes: usize,
    pub heads: PathBuf,
    pub poll_interval: Duration,
    pub server: ServerSettings,
    pub rates: Vec<f64>,
    pub clients: Vec<u32>,
    pub beat_connections: u32,
    pub beat_window: Duration,
    pub session_rate: f64,
    pub session_window: Duration,
    pub message_rate: f64,
    pub message_window: Duration,
    /// Publishing time of the lowest rate's delivery window, and of the others.
    pub low_window: Duration,
    pub high_window: Duration,
    pub settle: Duration,
    pub idle_window: Duration,
}

/// The most connections loadgen holds at once (its open-file limit is 20,000, and it needs some
/// for everything else).
pub const MAX_HELD: u64 = 18_000;

impl Plan {
    /// # Errors
    /// Unknown transports, empty lists, a plan past the open-file limit.
    pub fn build(a: &CostsArgs) -> Result<Self, String> {
        let q = a.quick;
        let mut transports = Vec::new();
        for t in &a.transports {
            if t == "all" {
                transports.extend(Transport::ALL);
                transports.push(Transport::Wt);
            } else if t == "poll" {
                transports.push(Transport::ShortPoll);
            } else {
                transports.push(t.parse::<Transport>()?);
            }
        }
        transports.sort();
        transports.dedup();
        let mut conditions = a.conditions.clone();
        conditions.dedup();
        if transports.is_empty() || conditions.is_empty() {
            return Err("--transports and --conditions need at least one each".into());
        }
        if let Some(c) = conditions
            .iter()
            .find(|c| !transports.iter().any(|t| carries(**c, *t)))
        {
            return Err(format!(
                "the {} condition carries none of the transports asked for ({})",
                c.name(),
                if c.is_quic() {
                    "it measures short-poll, long-poll, sse and wt: WebSockets have no HTTP/3 form a browser uses, and wt-streams and wt-datagrams stay out of the model"
                } else {
                    "wt is measured under browser-h3, and wt-streams and wt-datagrams stay out of the model"
                }
            ));
        }
        let pick = |given: Option<Duration>, full: u64, quick: u64| {
            given.unwrap_or(Duration::from_secs(if q { quick } else { full }))
        };
        let mut rates = if a.rates.is_empty() {
            if q {
                vec![2.0, 10.0]
            } else {
                vec![1.0, 20.0]
            }
        } else {
            a.rates.clone()
        };
        rates.sort_by(f64::total_cmp);
        rates.dedup();
        if rates.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
            return Err("--rates must be positive".into());
        }
        let mut clients = if a.clients.is_empty() {
            if q {
                vec![10, 40]
            } else {
                vec![100, 1000]
            }
        } else {
            a.clients.clone()
        };
        clients.sort_unstable();
        clients.dedup();
        if clients.first() == Some(&0) {
            return Err("--clients must be at least 1".into());
        }
        let beat_connections = a.beat_connections.unwrap_or(if q { 400 } else { 2000 });
        let most = clients.last().copied().unwrap_or(0).max(beat_connections);
        // QUIC clients share a few UDP sockets: only TCP servers' connections take files.
        let tcp_servers = conditions
            .iter()
            .filter(|c| !c.is_quic())
            .map(|c| transports.iter().filter(|t| carries(*c, **t)).count())
            .sum::<usize>();
        let held = most as u64 * tcp_servers as u64;
        if held > MAX_HELD {
            return Err(format!(
                "{most} connections × {tcp_servers} servers over TCP = {held} held at once, past the {MAX_HELD} loadgen can hold under its open-file limit: lower --beat-connections or --clients"
            ));
        }
        Ok(Self {
            quick: q,
            conditions,
            transports,
            out: a.out.clone(),
            repeats: a.repeats.unwrap_or(if q { 2 } else { 4 }),
            payload: a.payload,
            cookie_bytes: a.cookie_bytes,
            heads: a.heads.clone().unwrap_or_else(heads::default_fixture),
            poll_interval: pick(a.poll_interval, 5, 1),
            server: ServerSettings {
                heartbeat: pick(a.heartbeat, 15, 1),
                long_poll_timeout: pick(a.long_poll_timeout, 25, 1),
                server_bin: a.server_bin.clone(),
                extra: a.server_args.clone(),
                pinning: if a.no_pin {
                    None
                } else {
                    pinning::Pinning::of_this_machine().map(|p| pinning::Pinning {
                        keep_warm: !a.no_keep_warm,
                        ..p
                    })
                },
            },
            rates,
            clients,
            beat_connections: beat_connections.max(1),
            beat_window: pick(a.beat_window, 60, 3),
            session_rate: if q { 20.0 } else { 40.0 },
            session_window: Duration::from_secs(if q { 1 } else { 6 }),
            message_rate: if q { 20.0 } else { 50.0 },
            message_window: Duration::from_secs(if q { 1 } else { 10 }),
            low_window: Duration::from_secs(if q { 1 } else { 8 }),
            high_window: Duration::from_secs(if q { 1 } else { 4 }),
            settle: Duration::from_millis(if q { 300 } else { 1500 }),
            idle_window: pick(a.idle_window, 15, 1),
        })
    }

    fn slots(&self) -> usize {
        self.pairs().len()
    }

    /// Every condition with each transport it carries, in that order.
    pub fn pairs(&self) -> Vec<(Condition, Transport)> {
        self.conditions
            .iter()
            .flat_map(|c| {
                self.transports
                    .iter()
                    .filter(|t| carries(*c, **t))
                    .map(move |t| (*c, *t))
            })
            .collect()
    }

    /// How long the measurement should take, s (windows, drains and connection set-up as
    /// estimated for this machine: about 300 connections a second under TLS), with the windows
    /// shared as [`schedule`] shares them. An over-estimate: the committed run of 9 servers
    /// took 1,542 s where this said 1,747 s.
    pub fn estimate_s(&self) -> f64 {
        let pairs = self.pairs();
        let n = pairs.len() as f64;
        // A delivery window ends when every client has every event: a short poll's next poll
        // away, a stream's at once.
        let drain = self.poll_interval.as_secs_f64() + 1.0;
        let drain_of = |t: Transport| {
            if t == Transport::ShortPoll {
                drain
            } else {
                1.0
            }
        };
        let sessions = schedule::session_groups(&pairs).len() as f64
            * (self.session_window.as_secs_f64() + 1.0);
        let messages = self.message_window.as_secs_f64() + 3.0;
        // The higher rates' windows at `clients`, each group as long as its slowest drain.
        let higher = |clients: u32| {
            self.rates[1..]
                .iter()
                .flat_map(|&rate| schedule::delivery_groups(self, &pairs, rate, clients))
                .map(|g| {
                    let drain = g.iter().map(|&k| drain_of(pairs[k].1)).fold(0.0, f64::max);
                    self.high_window.as_secs_f64() + drain + self.settle.as_secs_f64()
                })
                .sum::<f64>()
        };
        let connect = n * self.beat_connections as f64 / 300.0;
        let deliveries = self
            .clients
            .iter()
            .map(|&c| self.low_window.as_secs_f64() + drain + higher(c) + self.settle.as_secs_f64())
            .sum::<f64>();
        let beat = 2.0 * self.beat_window.as_secs_f64() + self.settle.as_secs_f64() * 2.0;
        let start = 2.0 + n * 0.3 + self.idle_window.as_secs_f64();
        self.repeats as f64 * (start + sessions + messages + deliveries + connect + beat)
    }
}

/// Whether `loadgen costs` measures transport `t` under condition `c`: polls, long polls and
/// SSE under every condition (over HTTP/3 under `browser-h3`, [`h3`]), WebSockets over TCP
/// only (no browser speaks them over HTTP/3), WebTransport over QUIC only ([`quic`]); its
/// variants `wt-streams` and `wt-datagrams` stay out of the model.
pub fn carries(c: Condition, t: Transport) -> bool {
    match t {
        Transport::ShortPoll | Transport::LongPoll | Transport::Sse => true,
        Transport::Ws => !c.is_quic(),
        Transport::Wt => c.is_quic(),
        Transport::WtStreams | Transport::WtDatagrams => false,
    }
}

/// One repeat's readings of one transport and condition.
#[derive(Debug, Clone, Default)]
struct Sample {
    /// The server alone, before anything connects, every server idle at once.
    idle: Raw,
    session: Raw,
    message: Raw,
    /// (rate, reading) at each client count.
    delivery: Vec<(f64, Delivered)>,
    /// The beats of the fewest clients (the first delivery count), and how many they were.
    beat_few: Option<(u64, Raw)>,
    beat: Raw,
    memory_bytes: f64,
    served_by: String,
}

/// Runs the measurement and writes `model.json`; returns the model.
///
/// # Errors
/// When a server cannot be started or a window fails.
pub async fn run(args: &CostsArgs) -> anyhow::Result<CostModel> {
    if args.validate && args.recompose {
        return validate::recompose(args);
    }
    if args.validate {
        return validate::run(args).await;
    }
    let plan = Plan::build(args).map_err(anyhow::Error::msg)?;
    let (soft, _) = crate::sys::raise_nofile_limit();
    let started = std::time::Instant::now();
    let date = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let provenance = crate::sys::record(&date);
    std::fs::create_dir_all(&plan.out)
        .with_context(|| format!("creating {}", plan.out.display()))?;
    let logs = plan.out.join("logs");
    std::fs::create_dir_all(&logs)?;
    eprintln!(
        "loadgen costs: {} transports and conditions × {} repeats, expected {:.0} s (open-file limit {})",
        plan.slots(),
        plan.repeats,
        plan.estimate_s(),
        soft.map_or("unlimited".into(), |s| s.to_string())
    );
    let busy = pinning::LoadgenBusy::start(plan.server.pinning.as_ref())
        .context("keeping loadgen on its CPUs")?;
    let browser_heads = Arc::new(Heads::browser(&plan.heads));
    let minimal = Arc::new(Heads::minimal());
    let cookie = heads::cookie(plan.cookie_bytes);
    let pairs = plan.pairs();
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); pairs.len()];
    for r in 0..plan.repeats as usize {
        // Rotated per repeat: no transport always first or last.
        let order: Vec<usize> = (0..pairs.len()).map(|i| (i + r) % pairs.len()).collect();
        let mut slots = Vec::new();
        for &i in &order {
            let (c, t) = pairs[i];
            let tag = format!("r{r}-{}-{}", c.name(), t.name());
            let server = Server::start(t, c, &plan.server, &logs, &tag).await?;
            let heads = if c != Condition::PlainH1 {
                browser_heads.clone()
            } else {
                minimal.clone()
            };
            let setup = Setup::new(
                t,
                c,
                server.target.clone(),
                heads,
                if c != Condition::PlainH1 {
                    cookie.clone()
                } else {
                    None
                },
                plan.poll_interval,
            );
            slots.push(Slot::new(server, setup));
        }
        let result = repeat(&plan, r, &mut slots).await;
        for s in &mut slots {
            s.close_all().await;
        }
        server::stop_all(slots.into_iter().map(|s| s.server).collect()).await;
        let got = result?;
        for (k, sample) in got.into_iter().enumerate() {
            samples[order[k]].push(sample);
        }
        eprintln!(
            "  repeat {}/{} done at {:.0} s",
            r + 1,
            plan.repeats,
            started.elapsed().as_secs_f64()
        );
    }
    let payload = crate::payload::Payload::new(plan.payload, 100, 0);
    let payload_bytes = (0..200)
        .map(|n| payload.fields(n).len() as f64)
        .sum::<f64>()
        / 200.0;
    let mut costs = Vec::new();
    for (i, (c, t)) in pairs.iter().enumerate() {
        costs.push(assemble(&plan, *c, *t, &samples[i], payload_bytes));
    }
    let model = CostModel {
        format: FORMAT,
        record: record(
            provenance,
            started.elapsed().as_secs_f64(),
            browser_heads.source.clone(),
        ),
        settings: Settings {
            heartbeat_s: plan.server.heartbeat.as_secs_f64(),
            long_poll_timeout_s: plan.server.long_poll_timeout.as_secs_f64(),
            poll_interval_s: plan.poll_interval.as_secs_f64(),
            // Per server kind, over every repeat (the idle CPU subtracted is their pooled mean).
            idle_window_s: Some(
                samples
                    .iter()
                    .flatten()
                    .map(|s| s.idle.seconds)
                    .sum::<f64>()
                    / samples.len().max(1) as f64,
            ),
            pinning: plan.server.pinning.as_ref().map(pinning::Pinning::describe),
            loadgen_cpu_share: Some(busy.share()),
        },
        costs,
    };
    model
        .check()
        .map_err(|e| anyhow::anyhow!("the measured model is unsound: {e}"))?;
    let path = plan.out.join("model.json");
    std::fs::write(&path, serde_json::to_string_pretty(&model)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    print!("{}", summary(&model));
    println!(
        "{} ({:.0} s)",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(model)
}

/// One repeat's windows over `slots` (in the repeat's order); a sample per slot, in that order.
async fn repeat(plan: &Plan, r: usize, slots: &mut [Slot]) -> anyhow::Result<Vec<Sample>> {
    let mut out: Vec<Sample> = slots
        .iter()
        .map(|s| Sample {
            served_by: s.setup.served_by().to_owned(),
            ..Sample::default()
        })
        .collect();
    let payload = || crate::payload::Payload::new(plan.payload, 100, r as u64);
    // 0. Every server idle, at once, nothing else running: its own timers' CPU per second,
    //    subtracted from each of its windows. Measured as the validation's direct runs measure
    //    theirs (alone, with nothing connected anywhere), so that the model and its check
    //    subtract the same thing. Taken instead through the other servers' session windows, it
    //    came out up to twice as large (300–970 µs/s against 225–570 alone): a server woken
    //    beside a busy one pays more for the same timers, and every window it was subtracted
    //    from came out too low.
    let idle =
        futures_util::future::join_all(slots.iter().map(|s| windows::idle(s, plan.idle_window)))
            .await;
    for (k, i) in idle.into_iter().enumerate() {
        out[k].idle = i;
    }
    // 1. Sessions, one TCP server at a time, the QUIC servers together ([`schedule`]).
    let pairs: Vec<(Condition, Transport)> = slots
        .iter()
        .map(|s| (s.setup.condition, s.setup.transport))
        .collect();
    for group in schedule::session_groups(&pairs) {
        let windows = futures_util::future::join_all(
            group
                .iter()
                .map(|&k| windows::sessions(&slots[k], plan.session_rate, plan.session_window)),
        )
        .await;
        for (&k, w) in group.iter().zip(windows) {
            out[k].session = w?;
        }
    }
    // 2. Messages up, all at once (one light client each).
    let msgs = futures_util::future::join_all(
        slots
            .iter()
            .map(|s| windows::message(s, plan.message_rate, plan.message_window, payload())),
    )
    .await;
    for (k, m) in msgs.into_iter().enumerate() {
        out[k].message = m;
    }
    // 3. Deliveries at each client count.
    let drain = plan.poll_interval + Duration::from_secs(if plan.quick { 1 } else { 2 });
    for (ci, &c) in plan.clients.iter().enumerate() {
        if ci == 1 && plan.clients[0] < plan.beat_connections {
            // The beats of the fewest clients, before the next count joins them: with few
            // connections each beat wakes the server on its own.
            let few = futures_util::future::join_all(
                slots.iter().map(|s| windows::beats(s, plan.beat_window)),
            )
            .await;
            for (k, b) in few.into_iter().enumerate() {
                out[k].beat_few = Some((u64::from(plan.clients[0]), b));
            }
        }
        for s in slots.iter_mut() {
            s.grow(c as usize).await?;
        }
        tokio::time::sleep(plan.settle).await;
        let low = plan.rates[0];
        let n = slots.len() as f64;
        let lows = futures_util::future::join_all(slots.iter().enumerate().map(|(k, s)| {
            let offset = Duration::from_secs_f64(k as f64 / n / low);
            windows::deliver(s, low, plan.low_window, drain, offset, payload())
        }))
        .await;
        for (k, d) in lows.into_iter().enumerate() {
            out[k].delivery.push((low, d?));
        }
        for &rate in &plan.rates[1..] {
            // One server at a time, or a few together where that stays light ([`schedule`]),
            // their publishers staggered.
            for group in schedule::delivery_groups(plan, &pairs, rate, c) {
                let n = group.len() as f64;
                let ds = futures_util::future::join_all(group.iter().enumerate().map(|(g, &k)| {
                    let offset = Duration::from_secs_f64(g as f64 / n / rate);
                    windows::deliver(&slots[k], rate, plan.high_window, drain, offset, payload())
                }))
                .await;
                for (&k, d) in group.iter().zip(ds) {
                    out[k].delivery.push((rate, d?));
                }
                tokio::time::sleep(plan.settle).await;
            }
        }
    }
    // 4. Beats: top up, memory from the RSS growth over the last ones, then idle together.
    let before = plan.clients.last().copied().unwrap_or(0) as usize;
    let n = plan.beat_connections as usize;
    let mut rss0 = Vec::new();
    for s in slots.iter() {
        rss0.push(s.server.rss());
    }
    for s in slots.iter_mut() {
        s.grow(n).await?;
    }
    tokio::time::sleep(plan.settle * 2).await;
    for (k, s) in slots.iter().enumerate() {
        let added = n.saturating_sub(before).max(1) as f64;
        out[k].memory_bytes = s.server.rss().saturating_sub(rss0[k]) as f64 / added;
    }
    let beats =
        futures_util::future::join_all(slots.iter().map(|s| windows::beats(s, plan.beat_window)))
            .await;
    for (k, b) in beats.into_iter().enumerate() {
        out[k].beat = b;
    }
    for (k, s) in slots.iter().enumerate() {
        let errors = s.tally.snap().errors;
        if errors > 0 {
            eprintln!(
                "  {}: {errors} client errors in repeat {} (last: {})",
                s.name(),
                r + 1,
                s.tally.last_error().unwrap_or_default()
            );
        }
        let _ = k;
    }
    Ok(out)
}

/// Per unit: `total ÷ count`, NaN for no count (the model check refuses it).
fn per(total: f64, count: f64) -> f64 {
    if count > 0.0 {
        total / count
    } else {
        f64::NAN
    }
}

/// The beat kind of each transport.
pub fn beat_kind(t: Transport) -> BeatKind {
    match t {
        Transport::ShortPoll => BeatKind::Poll,
        Transport::LongPoll => BeatKind::Renewal,
        Transport::Sse
        | Transport::Ws
        | Transport::Wt
        | Transport::WtStreams
        | Transport::WtDatagrams => BeatKind::Heartbeat,
    }
}

fn assemble(
    plan: &Plan,
    c: Condition,
    t: Transport,
    samples: &[Sample],
    payload_bytes: f64,
) -> TransportCosts {
    let m = |f: &dyn Fn(&Sample) -> f64| Measured::new(samples.iter().map(f).collect());
    // The server's own idle CPU over a window, ns, is not the window's. A constant of the
    // server, not of the repeat: pooled over the repeats' idle windows (a minute in all), so
    // one repeat's few wake-ups more or less do not move that repeat's every figure.
    let idle_ns_per_s = |s: &Sample| per(s.idle.cpu_ns as f64, s.idle.seconds);
    let pooled_idle_ns_per_s = per(
        samples.iter().map(|s| s.idle.cpu_ns as f64).sum(),
        samples.iter().map(|s| s.idle.seconds).sum(),
    );
    let cpu_us =
        |_: &Sample, w: &Raw| (w.cpu_ns as f64 - pooled_idle_ns_per_s * w.seconds).max(0.0) / 1e3;
    let kind = beat_kind(t);
    let interval = match kind {
        BeatKind::Poll => plan.poll_interval,
        BeatKind::Renewal => plan.server.long_poll_timeout,
        BeatKind::Heartbeat => plan.server.heartbeat,
    };
    // Per beat, per repeat.
    let beat_cpu = |s: &Sample| per(cpu_us(s, &s.beat), s.beat.snap.beats as f64);
    let beat_up = |s: &Sample| per(s.beat.snap.written as f64, s.beat.snap.beats as f64);
    let beat_down = |s: &Sample| per(s.beat.snap.read as f64, s.beat.snap.beats as f64);
    let beat_packets = |s: &Sample| per(s.beat.packets as f64, s.beat.snap.beats as f64);
    let beat_requests = if kind == BeatKind::Heartbeat {
        0.0
    } else {
        1.0
    };
    let ses = |s: &Sample| s.session.snap.sessions as f64;
    let round_trips = samples
        .iter()
        .map(|s| per(s.session.snap.round_trips as f64, ses(s)))
        .fold(0.0, f64::max);
    let mut delivery = Vec::new();
    for (ci, &clients) in plan.clients.iter().enumerate() {
        for (ri, &rate) in plan.rates.iter().enumerate() {
            let idx = ci * plan.rates.len() + ri;
            let d = |s: &Sample| s.delivery.get(idx).map(|(_, d)| *d).unwrap_or_default();
            // The window's figure minus its beats at the beat window's cost, per delivery. A
            // beat's CPU and packets are taken at this window's connection count (between the
            // two beat windows' counts, in log-connections): with 100 clients a short poll costs
            // nearly twice what it does among 2,000, and that excess is no delivery's.
            let net = |s: &Sample, total: f64, beat: f64| {
                let w = d(s);
                let beats = w.raw.snap.beats as f64;
                per(total - beats * beat, w.raw.snap.events as f64)
            };
            let at_count = |s: &Sample, most: f64, few: &dyn Fn(&Raw) -> f64| match s.beat_few {
                Some((n, raw)) if n < u64::from(plan.beat_connections) => {
                    let (lo, hi) = ((n as f64).ln(), f64::from(plan.beat_connections).ln());
                    let t = (((clients as f64).ln() - lo) / (hi - lo)).clamp(0.0, 1.0);
                    let f = few(&raw);
                    if f.is_finite() {
                        f + (most - f) * t
                    } else {
                        most
                    }
                }
                _ => most,
            };
            let beat_cpu_here =
                |s: &Sample| at_count(s, beat_cpu(s), &|r| per(cpu_us(s, r), r.snap.beats as f64));
            let beat_packets_here = |s: &Sample| {
                at_count(s, beat_packets(s), &|r| {
                    per(r.packets as f64, r.snap.beats as f64)
                })
            };
            delivery.push(DeliveryPoint {
                rate_per_s: rate,
                clients: clients as u64,
                cpu_us: m(&|s| net(s, cpu_us(s, &d(s).raw), beat_cpu_here(s))),
                bytes_down: m(&|s| net(s, d(s).raw.snap.read as f64, beat_down(s))),
                bytes_up: m(&|s| net(s, d(s).raw.snap.written as f64, beat_up(s))),
                packets: m(&|s| net(s, d(s).raw.packets as f64, beat_packets_here(s))),
                requests: m(&|s| net(s, d(s).raw.snap.requests as f64, beat_requests)),
                p99_us: m(&|s| d(s).p99_us),
                // A short poll's CPU per poll, events and all (what the composition prices a
                // short poll's hour with): nothing subtracted but the server's idle CPU.
                poll_cpu_us: (kind == BeatKind::Poll)
                    .then(|| m(&|s| per(cpu_us(s, &d(s).raw), d(s).raw.snap.beats as f64))),
            });
        }
    }
    let msg = |s: &Sample, total: f64, beat: f64| {
        per(
            total - s.message.snap.beats as f64 * beat,
            s.message.snap.messages as f64,
        )
    };
    TransportCosts {
        transport: t.name().to_owned(),
        condition: c,
        served_by: samples
            .first()
            .map(|s| s.served_by.clone())
            .unwrap_or_default(),
        network: "loopback".into(),
        payload: plan.payload.as_str().to_owned(),
        payload_bytes,
        repeats: samples.len() as u32,
        session: Session {
            cpu_us: m(&|s| per(cpu_us(s, &s.session), ses(s))),
            bytes_up: m(&|s| per(s.session.snap.written as f64, ses(s))),
            bytes_down: m(&|s| per(s.session.snap.read as f64, ses(s))),
            packets: m(&|s| per(s.session.packets as f64, ses(s))),
            connections: 1.0,
            round_trips,
        },
        beat: Beat {
            kind,
            interval_s: interval.as_secs_f64(),
            cpu_us: m(&beat_cpu),
            bytes_up: m(&beat_up),
            bytes_down: m(&beat_down),
            packets: m(&beat_packets),
            requests: beat_requests,
            at: beat_points(plan, samples, &cpu_us),
        },
        memory_bytes: m(&|s| s.memory_bytes),
        delivery,
        message_up: Some(MessageUp {
            cpu_us: m(&|s| msg(s, cpu_us(s, &s.message), beat_cpu(s))),
            bytes_up: m(&|s| msg(s, s.message.snap.written as f64, beat_up(s))),
            bytes_down: m(&|s| msg(s, s.message.snap.read as f64, beat_down(s))),
            packets: m(&|s| msg(s, s.message.packets as f64, beat_packets(s))),
            requests: if matches!(t, Transport::Ws | Transport::Wt) {
                0.0
            } else {
                1.0
            },
        }),
        server_idle_cpu_us_per_s: Some(m(&|s| idle_ns_per_s(s) / 1e3)),
    }
}

/// The beat's CPU and packets at the fewest clients' count (when measured) and at
/// `--beat-connections`.
fn beat_points(
    plan: &Plan,
    samples: &[Sample],
    cpu_us: &dyn Fn(&Sample, &Raw) -> f64,
) -> Vec<BeatPoint> {
    let Some(few) = samples.first().and_then(|s| s.beat_few.map(|(n, _)| n)) else {
        return Vec::new();
    };
    let point = |connections: u64, raw: &dyn Fn(&Sample) -> Raw| BeatPoint {
        connections,
        cpu_us: Measured::new(
            samples
                .iter()
                .map(|s| per(cpu_us(s, &raw(s)), raw(s).snap.beats as f64))
                .collect(),
        ),
        packets: Measured::new(
            samples
                .iter()
                .map(|s| per(raw(s).packets as f64, raw(s).snap.beats as f64))
                .collect(),
        ),
    };
    vec![
        point(few, &|s| s.beat_few.map(|(_, r)| r).unwrap_or_default()),
        point(u64::from(plan.beat_connections), &|s| s.beat),
    ]
}

/// Where and how the figures were made: `at_start` is the provenance taken before the run
/// wrote anything (its own output would otherwise make the tree look dirty).
fn record(at_start: feedlab_report::Record, duration_s: f64, heads: String) -> Record {
    let command = std::iter::once("loadgen".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    Record {
        commit: at_start.commit,
        dirty: at_start.dirty,
        profile: at_start.profile,
        cpu_model: at_start.cpu_model,
        cores: at_start.cores as u32,
        kernel: at_start.kernel,
        date: at_start.date,
        command: format!("{command} (browser heads: {heads})"),
        duration_s,
    }
}

/// The model's headline figures as a Markdown table (medians, [min–max]).
pub fn summary(model: &CostModel) -> String {
    let f = |m: &Measured| {
        if m.n() > 1 {
            format!("{:.1} [{:.1}–{:.1}]", m.median(), m.min(), m.max())
        } else {
            format!("{:.1}", m.median())
        }
    };
    let mut s = String::from(
        "| transport | condition | served by | session CPU µs | session bytes ↓/↑ | beat CPU µs | beat bytes ↓ | memory B | delivery CPU µs (each point) | message CPU µs |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for c in &model.costs {
        let points = c
            .delivery
            .iter()
            .map(|d| format!("{}/s×{}: {}", d.rate_per_s, d.clients, f(&d.cpu_us)))
            .collect::<Vec<_>>()
            .join("; ");
        s += &format!(
            "| {} | {} | {} | {} | {:.0}/{:.0} | {} | {:.0} | {:.0} | {} | {} |\n",
            c.transport,
            c.condition.name(),
            c.served_by,
            f(&c.session.cpu_us),
            c.session.bytes_down.median(),
            c.session.bytes_up.median(),
            f(&c.beat.cpu_us),
            c.beat.bytes_down.median(),
            c.memory_bytes.median(),
            points,
            c.message_up.as_ref().map_or("-".into(), |m| f(&m.cpu_us)),
        );
    }
    s
}

/// Reads a model written by `loadgen costs`.
///
/// # Errors
/// When it cannot be read or is unsound.
pub fn load(path: &Path) -> anyhow::Result<CostModel> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let model: CostModel =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    model
        .check()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(model)
}

/// The JSON Schema of `model.json` (`results/model/model.schema.json`), generated from the
/// model's types so it cannot drift from what `loadgen costs` writes (a test checks the
/// committed file).
pub fn schema() -> String {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<CostModel>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::costs::client::Snap;

    fn raw(cpu_ms: f64, seconds: f64, snap: Snap, packets: u64) -> Raw {
        Raw {
            cpu_ns: (cpu_ms * 1e6) as u64,
            snap,
            packets,
            seconds,
        }
    }

    #[test]
    fn windows_are_divided_net_of_idle_time_and_beats() {
        let args = <crate::cli::Cli as clap::Parser>::try_parse_from([
            "loadgen",
            "costs",
            "--rates",
            "1",
            "--clients",
            "10",
            "--repeats",
            "1",
        ])
        .map(|c| match c.command {
            Some(crate::cli::Command::Costs(a)) => a,
            _ => panic!("costs expected"),
        })
        .unwrap();
        let plan = Plan::build(&args).unwrap();
        let sample = Sample {
            // 1 ms of idle CPU a second.
            idle: raw(5.0, 5.0, Snap::default(), 0),
            // 10 sessions in 2 s: 22 ms, 2 of them idle.
            session: raw(
                22.0,
                2.0,
                Snap {
                    sessions: 10,
                    round_trips: 20,
                    read: 1000,
                    written: 500,
                    ..Snap::default()
                },
                90,
            ),
            // 100 beats in 10 s: 110 ms, 10 idle: 1 ms a beat.
            beat: raw(
                110.0,
                10.0,
                Snap {
                    beats: 100,
                    read: 2000,
                    ..Snap::default()
                },
                200,
            ),
            // 50 deliveries and 5 beats in 4 s: 4 ms idle, 5 ms of beats.
            delivery: vec![(
                1.0,
                Delivered {
                    raw: raw(
                        59.0,
                        4.0,
                        Snap {
                            events: 50,
                            beats: 5,
                            read: 5100,
                            ..Snap::default()
                        },
                        60,
                    ),
                    clients: 10,
                    published: 5,
                    p99_us: 900.0,
                },
            )],
            message: raw(
                12.0,
                2.0,
                Snap {
                    messages: 20,
                    written: 4000,
                    ..Snap::default()
                },
                40,
            ),
            memory_bytes: 3000.0,
            served_by: "fast path".into(),
            beat_few: None,
        };
        // With the beats of the few (10 connections: 10 beats, 40 ms, 10 of them idle) the
        // delivery window's 5 beats are taken at their 3 ms, not the 2,000 connections' 1 ms.
        let mut few = sample.clone();
        few.beat_few = Some((
            10,
            raw(
                40.0,
                10.0,
                Snap {
                    beats: 10,
                    ..Snap::default()
                },
                20,
            ),
        ));
        let c = assemble(&plan, Condition::PlainH1, Transport::Sse, &[few], 80.0);
        let d = &c.delivery[0];
        assert!((d.cpu_us.median() - 800.0).abs() < 1e-6, "{d:?}");
        assert_eq!(c.beat.at.len(), 2);
        assert!((c.beat.at[0].cpu_us.median() - 3000.0).abs() < 1e-6);
        // Short polling: the delivery window's CPU per poll, nothing but idle time subtracted:
        // 59 ms less 4 ms over 5 polls.
        let c = assemble(
            &plan,
            Condition::PlainH1,
            Transport::ShortPoll,
            std::slice::from_ref(&sample),
            80.0,
        );
        let per_poll = c.delivery[0].poll_cpu_us.as_ref().unwrap().median();
        assert!((per_poll - 11_000.0).abs() < 1e-6, "{per_poll}");
        let c = assemble(&plan, Condition::PlainH1, Transport::Sse, &[sample], 80.0);
        assert_eq!(c.delivery[0].poll_cpu_us, None);
        assert!((c.session.cpu_us.median() - 2000.0).abs() < 1e-6);
        assert_eq!(c.session.round_trips, 2.0);
        assert_eq!(c.session.packets.median(), 9.0);
        assert!((c.beat.cpu_us.median() - 1000.0).abs() < 1e-6);
        assert_eq!(c.beat.bytes_down.median(), 20.0);
        let d = &c.delivery[0];
        assert!((d.cpu_us.median() - 1000.0).abs() < 1e-6, "{d:?}");
        assert_eq!(d.bytes_down.median(), 100.0);
        assert_eq!(d.packets.median(), (60.0 - 5.0 * 2.0) / 50.0);
        let m = c.message_up.unwrap();
        assert!((m.cpu_us.median() - 500.0).abs() < 1e-6);
        assert_eq!(m.bytes_up.median(), 200.0);
        assert_eq!(c.server_idle_cpu_us_per_s.unwrap().median(), 1000.0);
    }
}
