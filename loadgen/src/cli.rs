//! The flags. Every one is also an environment variable (`LOADGEN_*`), so a CI job or a
//! container can set a run up without a command line.
//!
//! Lists (`--clients 10,100,1000`, `--rates 1,10,100`, `--http 1.1,1.0`) make a matrix; the plan
//! ([`crate::plan`]) turns it into phases that run one after another.

use std::{path::PathBuf, str::FromStr, time::Duration};

use clap::{Parser, Subcommand};
use feedlab_wire::Transport;

/// Parsed here, defined in the network layer, which decides by it.
pub use crate::net::HttpVersion;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "loadgen",
    version,
    about = "feedlab load generator: drives short polling, long polling, SSE and WebSockets with \
             many clients and writes a report (report.json, report.md, report.html, SVG charts)",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub args: Args,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Prints a report's headline as a Markdown table (median [min–max] over the runs), the
    /// form the book quotes: `loadgen summarize results/reference/report.json`.
    Summarize {
        /// A report.json written by loadgen.
        report: PathBuf,
    },
    /// Writes a report again from its `report.json` (conclusions, a scenario's ranking,
    /// report.md, report.html and the charts), with this loadgen's wording and rule:
    /// `loadgen render results/reference`. On a `--scenario` run's directory (a decision.json,
    /// no report.json) every scenario is re-rendered and decision.md rebuilt, with no run:
    /// `loadgen render results/scenarios`.
    Render {
        /// A directory holding a report.json written by loadgen.
        dir: PathBuf,
    },
    /// Runs the feedlab server in this process (what loadgen spawns when no `server` executable
    /// sits next to it): `loadgen serve -- --bind 127.0.0.1:0 --rate 0`.
    #[command(hide = true)]
    Serve {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Brings up an emulated link with the feedlab server behind it and forwards a loopback port
    /// through the link's client end, so a browser on this machine sees the live page across the
    /// link: `loadgen link --network 3g -- --rate 2` prints the URL and runs until Ctrl-C. With
    /// --bench it measures instead how many packets per second the link carries.
    Link(LinkArgs),
    /// Measures what each transport costs where the cost occurs (session, beat, delivery,
    /// message up, memory) and writes the cost model (`results/model/model.json`); with
    /// --validate, checks the model against direct whole-session runs.
    Costs(crate::costs::CostsArgs),
    /// The seed's other use cases on every transport: a multiplayer game (inputs acknowledged,
    /// state at a fixed tick, binary WebSocket messages) and a job's progress log (a named feed
    /// per job, bursts, a reload, a terminal event), ranked by the project's rule:
    /// `loadgen usecase game progress --network 'none;lte;lte,loss=2%'`.
    Usecase(crate::usecase::UsecaseArgs),
    /// Sums the reports of the processes that ran one plan (`--shard K/N`) into one report:
    /// counts added, latency histograms merged, quantiles read from the merged histograms:
    /// `loadgen merge a/report.json b/report.json --out merged`. Refuses reports of different
    /// plans, and a slice given twice.
    Merge(crate::merge::MergeArgs),
    /// Which transport for a workload, from the committed cost model with no run:
    /// `loadgen decide --events-per-hour 30 --clients 50000 --session 20m --payload chat`.
    /// With no workload flags, every named scenario, one line each.
    Decide(crate::decide::DecideArgs),
    /// What a traffic pattern costs a phone's radio (the RRC model of AT&T ARO's profiles):
    /// `loadgen radio --profile lte --every 25s --bytes 300`.
    Radio(feedlab_radio::Args),
}

/// `loadgen link`.
#[derive(Debug, Clone, clap::Args)]
pub struct LinkArgs {
    /// The link (a profile or figures, as for the run's --network; `none` is refused).
    #[arg(long = "network", default_value = "3g")]
    pub network: feedlab_link::Network,

    /// Loopback port the page is served on (0: a free one; the URL is printed).
    #[arg(long, default_value_t = 0)]
    pub port: u16,

    /// Instead of serving: flood the link with small UDP packets for this long and print the
    /// packets per second it carried and the forwarder's CPU.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub bench: Option<Duration>,

    /// Server executable (default as for a run: `server` next to loadgen, else loadgen itself).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,

    /// Arguments for the server, after `--` (e.g. `-- --rate 2` for two events a second).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub server_args: Vec<String>,
}

/// The most `--repeat` accepts: enough for a spread, bounded so a typo cannot run for hours.
pub const MAX_REPEAT: u32 = 20;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Run a named workload (repeatable, or comma-separated): notifications, dashboard, ticker,
    /// `all`, or a scenario file (.toml). Each runs with its own flags, each with its reason;
    /// a flag given here wins over the scenario's. Reports go to <out>/<scenario>/, and
    /// <out>/decision.md opens with a recommendation per scenario.
    #[arg(
        help_heading = "Workload",
        long,
        env = "LOADGEN_SCENARIO",
        value_delimiter = ','
    )]
    pub scenario: Vec<String>,

    /// Concurrent clients per transport. A comma-separated list runs a sweep.
    #[arg(
        help_heading = "Workload",
        long,
        env = "LOADGEN_CLIENTS",
        value_delimiter = ',',
        default_value = "50"
    )]
    pub clients: Vec<u32>,

    /// How long loadgen publishes, per transport (humantime: `10s`, `2m`).
    #[arg(help_heading = "Workload", long, env = "LOADGEN_DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,

    /// Events per second loadgen publishes (`POST /publish`); 0 measures idle connections.
    #[arg(help_heading = "Workload", long, env = "LOADGEN_RATE", default_value_t = 20.0, value_parser = parse_rate)]
    pub rate: f64,

    /// A sweep over publish rates, e.g. `1,10,100` (replaces --rate).
    #[arg(help_heading = "Workload", long, env = "LOADGEN_RATES", value_delimiter = ',', value_parser = parse_rate)]
    pub rates: Vec<f64>,

    /// Messages per second each client publishes itself (0: clients only listen). Every client
    /// receives everyone's, as in a chat room: WebSocket clients send `{"op":"publish"}` on
    /// their socket, the others `POST /publish` (HTTP/1.1: a second keep-alive connection;
    /// HTTP/2: a stream on their own connection; HTTP/1.0: a connection per message). The
    /// report's `upstream` section says what each way up cost. `--rate` runs beside it.
    #[arg(help_heading = "Workload", long, env = "LOADGEN_SEND_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub send_rate: f64,

    /// What each event carries: `padding` (exactly --payload-bytes of `x`, the fan-out floor's
    /// payload), or JSON shaped like a real feed, varying from event to event and fixed by
    /// --seed: `tick` (a market tick, ~120 B), `chat` (a chat message, 60–200 B), `metrics` (a
    /// dashboard sample, ~230 B). --payload-bytes applies to padding only.
    #[arg(
        help_heading = "Workload",
        long,
        env = "LOADGEN_PAYLOAD",
        value_enum,
        default_value = "padding"
    )]
    pub payload: crate::payload::PayloadKind,

    /// Bytes of padding in each published event's `data`.
    #[arg(
        help_heading = "Workload",
        long,
        env = "LOADGEN_PAYLOAD_BYTES",
        default_value_t = 100
    )]
    pub payload_bytes: usize,

    /// Run every phase this many times, interleaved (all phases, then all again), so each figure
    /// has a spread: the report gives the median and the range, and a scenario ranks two
    /// transports only when they differ by more than --threshold and an exact two-sided rank
    /// test over the runs passes at 5%, which needs 4 runs or more (with 3 its smallest p is
    /// 0.1). With 1 nothing is ranked.
    #[arg(help_heading = "Workload", long, env = "LOADGEN_REPEAT", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=MAX_REPEAT as i64))]
    pub repeat: u32,

    /// Run the transports together on the same feed instead of one after another (server CPU
    /// and memory can then not be attributed to one transport).
    #[arg(help_heading = "Workload", long, env = "LOADGEN_CONCURRENT")]
    pub concurrent: bool,

    /// How long clients keep reading after the last publish (default: the larger of 1 s and
    /// twice --poll-interval when short polling runs, else 1 s).
    #[arg(help_heading = "Workload", long, env = "LOADGEN_DRAIN", value_parser = humantime::parse_duration)]
    pub drain: Option<Duration>,

    /// Seed of the random start offsets of the pollers (default: random, written in the report).
    #[arg(help_heading = "Workload", long, env = "LOADGEN_SEED")]
    pub seed: Option<u64>,

    /// Transports to drive: `all` (short-poll, long-poll, sse, ws), or a comma-separated list
    /// of them; WebTransport over QUIC (needs `--tls on`) only when named, e.g. `all,wt`: `wt`
    /// (the feed on one stream), `wt-streams` (a stream per event), `wt-datagrams` (an event
    /// per datagram, lost ones recovered over a stream), each its own row in the report.
    #[arg(
        help_heading = "Transports",
        long,
        env = "LOADGEN_TRANSPORTS",
        value_delimiter = ',',
        default_value = "all"
    )]
    pub transports: Vec<TransportArg>,

    /// HTTP versions for the HTTP transports: `1.1` keeps one connection per client alive,
    /// `1.0` opens a new TCP connection per request (polling only), `2` runs polling and SSE over
    /// HTTP/2 (one connection per client; ALPN `h2` over TLS, h2c with prior knowledge on plain
    /// http, for which the spawned server gets `--h2c`). The first is the headline; each further
    /// version adds a phase per transport it applies to. WebSockets always use 1.1.
    #[arg(
        help_heading = "Transports",
        long,
        env = "LOADGEN_HTTP",
        value_delimiter = ',',
        default_value = "1.1,1.0"
    )]
    pub http: Vec<HttpVersion>,

    /// Time between two short polls of one client (0: back to back, to find the ceiling).
    #[arg(help_heading = "Transports", long, env = "LOADGEN_POLL_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,

    /// `timeout_ms` of each long-poll request (the server's `--long-poll-max` bounds it).
    #[arg(help_heading = "Transports", long, env = "LOADGEN_LONG_POLL_TIMEOUT", default_value = "25s", value_parser = humantime::parse_duration)]
    pub long_poll_timeout: Duration,

    /// Compression, offered as a browser offers it: `off` (nothing offered: results compare
    /// with runs before this flag), `on` (WebSocket `permessage-deflate; client_max_window_bits`,
    /// HTTP `Accept-Encoding: gzip, deflate, br`, and whatever the server picks is decoded), or
    /// `both` (every phase without, then with, interleaved like --repeat; the report's
    /// "Compression" table compares them).
    #[arg(
        help_heading = "Transports",
        long,
        env = "LOADGEN_COMPRESSION",
        value_enum,
        default_value = "off"
    )]
    pub compression: crate::compression::CompressionMode,

    /// The request heads clients send: `minimal` (only what the protocol needs) or `browser`
    /// (Chromium's, from loadgen/fixtures/chromium-request-heads.json, with a cookie of
    /// --cookie-bytes), so polls and handshakes carry a browser's header bytes.
    #[arg(
        help_heading = "Transports",
        long,
        env = "LOADGEN_HEADS",
        value_enum,
        default_value = "minimal"
    )]
    pub heads: crate::heads::HeadsKind,

    /// Bytes of the `Cookie` every request carries with `--heads browser` (default: the HTTP
    /// Archive's 2024 median, see the fixture's README); 0 sends none.
    #[arg(help_heading = "Transports", long, default_value_t = crate::heads::DEFAULT_COOKIE_BYTES)]
    pub cookie_bytes: usize,

    /// TLS for the server loadgen starts: `off`, `on` (https/wss with a self-signed certificate
    /// loadgen trusts), or `both` (every phase plain, then again over TLS, on two servers, for
    /// the plain-vs-TLS comparison). With --url the URL's scheme decides. With --proxy, TLS is
    /// the proxy's front (HTTP/2 offered by ALPN, a self-signed certificate made for the run)
    /// and the servers behind it are plain.
    #[arg(
        help_heading = "Transports",
        long,
        env = "LOADGEN_TLS",
        value_enum,
        default_value = "off"
    )]
    pub tls: TlsMode,

    /// PEM file of the CA (or self-signed certificate) to trust for an `https://` --url, instead
    /// of the system's roots.
    #[arg(help_heading = "Transports", long, env = "LOADGEN_CA")]
    pub ca: Option<PathBuf>,

    /// Accept any server certificate (`https://` --url). For tests on a trusted machine only:
    /// anyone on the path could pretend to be the server.
    #[arg(
        help_heading = "Transports",
        long,
        env = "LOADGEN_INSECURE",
        conflicts_with = "ca"
    )]
    pub insecure: bool,

    /// The network between loadgen's clients and the server it starts: `none` (loopback), a
    /// profile (`3g`, `lte`…), figures (`rtt=150ms,loss=1%,down=1.6mbit,up=750kbit`), or a
    /// profile with changes (`3g,loss=2%`). Repeat the flag to run every phase on each network in
    /// turn. An emulated link needs root, /dev/net/tun and iproute2 (see --help).
    #[arg(
        help_heading = "Network",
        long = "network",
        env = "LOADGEN_NETWORK",
        value_delimiter = ';',
        default_value = "none",
        long_help = feedlab_link::spec::network_help()
    )]
    pub networks: Vec<feedlab_link::Network>,

    /// This long into publishing, every QUIC client (`wt`, `--http 3`) moves to a second
    /// address, as a phone that changed networks: its endpoints rebind onto sockets of
    /// 198.19.255.254 (in the link's client namespace; 127.0.0.254 on loopback) and its
    /// connections go on from there (QUIC's connection migration). TCP connections are bound to
    /// their address and have no such move; they keep the first one. The report's reconnects
    /// say which transports went on without connecting again.
    #[arg(help_heading = "Network", long, env = "LOADGEN_MIGRATE_AT", value_parser = humantime::parse_duration)]
    pub migrate_at: Option<Duration>,

    /// This long into publishing, the emulated link becomes a NAT that rebound every mapping:
    /// the server sees each client socket's packets come from another port (TCP's and UDP's
    /// alike). QUIC connections follow (they are named by connection IDs); TCP connections
    /// are cut: the server's kernel resets what comes from the new port, and a client that only
    /// listens (SSE, WebSocket, as a browser's) is not told and receives nothing more, while a
    /// poll fails and connects again. Needs `--network` other than `none`.
    #[arg(help_heading = "Network", long, env = "LOADGEN_NAT_REBIND_AT", value_parser = humantime::parse_duration)]
    pub nat_rebind_at: Option<Duration>,

    /// Spread client connections over this many source addresses 127.0.0.1, 127.0.0.2, … (only
    /// for a loopback target; 0: as many as the ephemeral port range needs).
    #[arg(
        help_heading = "Network",
        long,
        env = "LOADGEN_SOURCE_IPS",
        default_value_t = 0
    )]
    pub source_ips: u8,

    /// Server to drive, e.g. http://127.0.0.1:8080 or https://host:8443 (local or remote).
    /// Several (repeat the flag, or separate with commas) are instances of one feed: clients are
    /// spread over them round-robin and fail over to the next one when their connection drops,
    /// resuming from their last seq; so does the publisher. Without it, loadgen starts its own
    /// `server` (see --spawn) on a free loopback port and stops it at the end.
    #[arg(
        help_heading = "Servers and chaos",
        long = "url",
        env = "LOADGEN_URL",
        value_delimiter = ','
    )]
    pub urls: Vec<url::Url>,

    /// Server executable to spawn (default: `server` next to loadgen, else loadgen itself).
    #[arg(help_heading = "Servers and chaos", long, env = "LOADGEN_SERVER_BIN")]
    pub server_bin: Option<PathBuf>,

    /// Extra argument for the spawned server (repeatable), e.g. `--server-arg=--workers=2`.
    #[arg(
        help_heading = "Servers and chaos",
        long = "server-arg",
        env = "LOADGEN_SERVER_ARGS",
        value_delimiter = ' ',
        allow_hyphen_values = true
    )]
    pub server_args: Vec<String>,

    /// How many server instances loadgen starts (without --url). More than one share one feed
    /// through Redis (--redis, or a `redis-server` loadgen starts on a free port), and clients
    /// are spread over them as over several --url.
    #[arg(help_heading = "Servers and chaos", long, env = "LOADGEN_SPAWN", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub spawn: u32,

    /// Redis the spawned instances share their feed through (`redis://127.0.0.1:6379`); each run
    /// uses a key prefix of its own. Default with --spawn 2 or more: a `redis-server` loadgen
    /// starts on a free loopback port without persistence, and stops at the end.
    #[arg(help_heading = "Servers and chaos", long, env = "LOADGEN_REDIS")]
    pub redis: Option<String>,

    /// Connection attempts (TCP connect and handshake) this process has in flight at once, per
    /// phase; the rest wait their turn. More at once do not connect faster on a busy machine:
    /// the handshakes queue in the servers' workers, and those that wait past the server's
    /// `--request-timeout` (or loadgen's response timeout) fail and are tried again, so the
    /// machine does every handshake more than once. With N processes (`--shard`), the servers
    /// see N times this.
    #[arg(help_heading = "Servers and chaos", long, env = "LOADGEN_CONNECTS_IN_FLIGHT", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65_535))]
    pub connects_in_flight: u32,

    /// Longest wait for all clients to connect before publishing starts. With --start-at,
    /// exactly how long after each phase's start publishing starts, in every process alike.
    #[arg(help_heading = "Servers and chaos", long, env = "LOADGEN_READY_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub ready_timeout: Duration,

    /// Run slice K of N of every phase's clients (`--shard 2/6`), for a plan too large for one
    /// process: start N loadgen processes with the same flags and K = 1…N (on one machine or
    /// several), each against the same --url servers, then `loadgen merge` their reports.
    /// Slice 1 publishes. Needs --url and --start-at.
    #[arg(help_heading = "Several processes", long, env = "LOADGEN_SHARD")]
    pub shard: Option<crate::shard::Shard>,

    /// When the first phase starts, RFC 3339 (`2026-12-07T15:00:00Z`) or Unix seconds: every
    /// phase then starts at a time fixed by the plan, so processes started with the same value
    /// (clocks synchronised by NTP) run each phase together. Publishing starts --ready-timeout
    /// after a phase's start.
    #[arg(help_heading = "Several processes", long, env = "LOADGEN_START_AT")]
    pub start_at: Option<crate::shard::StartAt>,

    /// A proxy loadgen starts between its clients and the servers: `nginx` (the
    /// repository's deploy/nginx.conf, every instance an upstream), `haproxy`, `apache`, `caddy`,
    /// `varnish` (reverse proxies), `squid` (a forward proxy the clients are configured to use:
    /// absolute-form requests, CONNECT for WebSockets and TLS), or `none`. Publishing goes
    /// through it too; `/stats` is read from the servers directly. `--tls on` reaches nginx,
    /// haproxy, apache and caddy on their TLS front, as browsers do (`--http 2` for HTTP/2).
    #[arg(
        help_heading = "Servers and chaos",
        long,
        env = "LOADGEN_PROXY",
        default_value = "none"
    )]
    pub proxy: ProxyKind,

    /// nginx's `proxy_read_timeout` with --proxy nginx: how long a proxied connection may stay
    /// quiet before nginx cuts it (deploy/nginx.conf has 75s; a value below the server's
    /// --heartbeat shows how each transport breaks).
    #[arg(help_heading = "Servers and chaos", long, env = "LOADGEN_PROXY_READ_TIMEOUT", default_value = "75s", value_parser = humantime::parse_duration)]
    pub proxy_read_timeout: Duration,

    /// Which committed configuration the --proxy runs: `recommended` (deploy/<name>.conf, what
    /// feedlab recommends) or `default` (deploy/<name>.default.*, what the package or the
    /// documentation gives). `--proxy nginx` with `recommended` honours --proxy-read-timeout.
    #[arg(
        help_heading = "Servers and chaos",
        long,
        env = "LOADGEN_PROXY_CONFIG",
        default_value = "recommended"
    )]
    pub proxy_config: crate::intermediary::Flavor,

    /// The nginx executable for --proxy nginx (default: `nginx` on PATH, else /usr/sbin/nginx).
    #[arg(help_heading = "Servers and chaos", long, env = "LOADGEN_NGINX_BIN")]
    pub nginx_bin: Option<PathBuf>,

    /// Failure to inject into every phase (needs the servers loadgen starts): `kill-restart`
    /// kills the server with SIGKILL and restarts it on the same port and data directory after
    /// --chaos-outage (loadgen gives it a temporary `--data-dir` unless --server-arg names one);
    /// `kill-one` kills one of several instances (--spawn 2 or more) for good; its clients and
    /// the publisher fail over; `rolling-restart` restarts every instance in turn, as a deploy
    /// does: SIGTERM, wait for it to exit, start it again on the same port, and --chaos-outage
    /// after it listens, the next one. Lost (acknowledged, never delivered) and duplicated
    /// events must stay 0.
    #[arg(
        help_heading = "Servers and chaos",
        long,
        env = "LOADGEN_CHAOS",
        default_value = "none"
    )]
    pub chaos: crate::chaos::ChaosKind,

    /// When the kill happens, into each phase's publishing: a share (`40%`) of --duration or a
    /// time (`8s`).
    #[arg(
        help_heading = "Servers and chaos",
        long,
        env = "LOADGEN_CHAOS_AT",
        default_value = "40%"
    )]
    pub chaos_at: crate::chaos::ChaosAt,

    /// With `--chaos kill-restart`: how long the server stays down before it is restarted; with
    /// `rolling-restart`: the pause between one instance listening again and the next one's
    /// SIGTERM.
    #[arg(help_heading = "Servers and chaos", long, env = "LOADGEN_CHAOS_OUTAGE", default_value = "2s", value_parser = humantime::parse_duration)]
    pub chaos_outage: Duration,

    /// How clients come back after losing a connection: `fast` (loadgen's failover: at once to
    /// the next server, then 100–500 ms), `browser` (as feedlab's page in a browser: SSE waits
    /// the server's `retry:` hint as EventSource does, a refusal or a lost WebSocket or poll the
    /// page's back-off, 0.5–1 s doubling to 15 s; `Retry-After` is not readable there), or
    /// `app` (as `browser`, but a refusal's `Retry-After` is waited). With `browser` and `app`
    /// reconnects do not queue at loadgen's connection gate: the reconnect storm as servers
    /// meet it.
    #[arg(
        help_heading = "Servers and chaos",
        long,
        env = "LOADGEN_RECONNECT",
        default_value = "fast"
    )]
    pub reconnect: crate::storm::Reconnect,

    #[command(flatten, next_help_heading = "Servers and chaos")]
    pub target_args: TargetArgs,

    /// Report directory (default `results/<timestamp>/` in the workspace when run by cargo,
    /// else in the current directory).
    #[arg(help_heading = "Output", long, env = "LOADGEN_OUT")]
    pub out: Option<PathBuf>,

    /// Also append one JSON line per phase and transport to this file: latency per delivery
    /// and per publish (until the last subscriber had the event), for the capacity curves
    /// (scripts/capacity). Keeps 16 bytes per delivery during the phase.
    #[arg(help_heading = "Output", long, env = "LOADGEN_SLO_OUT")]
    pub slo_out: Option<PathBuf>,

    /// With --slo-out: leave out the events published in the first this long of each phase
    /// (the warm-up).
    #[arg(help_heading = "Output", long, env = "LOADGEN_SLO_WARMUP", default_value = "0s", value_parser = humantime::parse_duration)]
    pub slo_warmup: Duration,

    /// No progress bars and no summary table.
    #[arg(help_heading = "Output", long, env = "LOADGEN_QUIET")]
    pub quiet: bool,

    /// Append each phase's reconnect-storm timeline to this file, one JSON line per phase:
    /// connection attempts, subscriptions up, connections lost and 503 refusals per 100 ms and
    /// per instance, each spawned instance's CPU every 100 ms, and when --chaos signalled,
    /// stopped and restarted which instance (read by `scripts/storm/bench.py`).
    #[arg(help_heading = "Output", long, env = "LOADGEN_STORM_TIMELINE")]
    pub storm_timeline: Option<PathBuf>,

    /// What one vCPU costs per hour, USD: prices short polling's server CPU against a push
    /// connection's memory in the report's memory-against-CPU crossover. Default: AWS Fargate,
    /// Linux/x86, US East (N. Virginia).
    #[arg(help_heading = "Output", long, env = "LOADGEN_PRICE_VCPU_HOUR", default_value_t = feedlab_report::cost::FARGATE_VCPU_HOUR_USD, value_parser = parse_price)]
    pub price_vcpu_hour: f64,

    /// What one GiB of memory costs per hour, USD (the same crossover). Default: AWS Fargate,
    /// Linux/x86, US East (N. Virginia), per GB-hour.
    #[arg(help_heading = "Output", long, env = "LOADGEN_PRICE_GIB_HOUR", default_value_t = feedlab_report::cost::FARGATE_GIB_HOUR_USD, value_parser = parse_price)]
    pub price_gib_hour: f64,

    /// The ranking rule's practical threshold, a fraction: a scenario's transports whose costs
    /// differ by less than this tie, however repeatable the difference; larger differences
    /// must also pass an exact two-sided rank test at 5% (which needs --repeat 4 or more).
    #[arg(help_heading = "Output", long, default_value_t = 0.10, value_parser = parse_threshold)]
    pub threshold: f64,

    /// Run a use case's own driver instead of the feed phases (what the `game` and `progress`
    /// scenarios set): `loadgen usecase` with this run's transports, networks, TLS, repeats,
    /// clients (players, or jobs), duration and poll interval; its `usecases.md` and
    /// `results.json` go into the run's directory.
    #[arg(help_heading = "Output", long, env = "LOADGEN_USECASE", value_enum)]
    pub usecase: Option<crate::usecase::Workload>,
}

impl Args {
    /// The defaults, with `args` applied (as on the command line, without the program name).
    ///
    /// # Errors
    /// When an argument is invalid.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let cli = Cli::try_parse_from(
            std::iter::once("loadgen".into()).chain(args.into_iter().map(Into::into)),
        )?;
        Ok(cli.args)
    }

    /// The selected transports, in the standard order, without repeats.
    pub fn transports(&self) -> Vec<Transport> {
        let mut out = Vec::new();
        for t in Transport::EVERY {
            let chosen = self.transports.iter().any(|a| match a {
                // The four over TCP: WebTransport runs only when named (`all,wt`).
                TransportArg::All => Transport::ALL.contains(&t),
                TransportArg::One(x) => *x == t,
            });
            if chosen {
                out.push(t);
            }
        }
        out
    }

    /// The publish rates of the matrix.
    pub fn rates(&self) -> Vec<f64> {
        if self.rates.is_empty() {
            vec![self.rate]
        } else {
            self.rates.clone()
        }
    }
}

/// One item of `--transports`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportArg {
    All,
    One(Transport),
}

impl FromStr for TransportArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "all" => Ok(Self::All),
            // The short name used in the server's paths.
            "poll" => Ok(Self::One(Transport::ShortPoll)),
            other => other.parse().map(Self::One),
        }
    }
}

/// `--proxy`: what stands between loadgen's clients and the servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyKind {
    #[default]
    None,
    Nginx,
    /// Another intermediary of the matrix (`crate::intermediary`).
    Other(crate::intermediary::Software),
}

impl ProxyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Nginx => "nginx",
            Self::Other(s) => s.as_str(),
        }
    }
}

impl FromStr for ProxyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "none" | "off" | "" => Ok(Self::None),
            "nginx" => Ok(Self::Nginx),
            other => other.parse().map(Self::Other).map_err(|_| {
                format!(
                    "unknown --proxy {other:?} (expected none, nginx, haproxy, apache, caddy, varnish or squid)"
                )
            }),
        }
    }
}

/// `--tls`: whether the spawned server speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TlsMode {
    #[default]
    #[value(alias = "false", alias = "no")]
    Off,
    #[value(alias = "true", alias = "yes")]
    On,
    /// Plain, then TLS.
    #[value(alias = "compare")]
    Both,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::On => "on",
            Self::Both => "both",
        }
    }
}

impl Args {
    /// Whether each phase runs plain (`false`) or over TLS (`true`), in order.
    ///
    /// # Errors
    /// When `--tls` contradicts `--url`.
    pub fn tls_modes(&self) -> Result<Vec<bool>, String> {
        if let Some(bad) = self
            .urls
            .iter()
            .find(|u| u.scheme() != self.urls[0].scheme())
        {
            return Err(format!(
                "every --url must use the same scheme: {} and {bad} differ",
                self.urls[0]
            ));
        }
        let modes = match (self.urls.first(), self.tls) {
            (Some(u), TlsMode::Off) => Ok(vec![u.scheme() == "https"]),
            (Some(u), TlsMode::On) if u.scheme() == "https" => Ok(vec![true]),
            (Some(u), _) => Err(format!(
                "--tls {} needs the server loadgen starts (without --url); with --url {u} the scheme decides (https:// for TLS)",
                self.tls.as_str()
            )),
            (None, TlsMode::Off) => Ok(vec![false]),
            (None, TlsMode::On) => Ok(vec![true]),
            (None, TlsMode::Both) => Ok(vec![false, true]),
        }?;
        if modes.contains(&false) && self.transports().iter().any(|t| t.is_wt()) {
            return Err(
                "--transports wt runs over QUIC, which is always encrypted: give --tls on (or an https:// --url)"
                    .into(),
            );
        }
        let h3 = self.http.contains(&HttpVersion::Http3);
        if h3 && modes.contains(&false) {
            return Err(
                "--http 3 runs over QUIC, which is always encrypted: give --tls on (or an https:// --url)"
                    .into(),
            );
        }
        if h3 && self.transports().iter().any(|t| t.is_wt()) {
            return Err(
                "--http 3 and --transports wt cannot share a run: the server serves HTTP/3 or WebTransport over QUIC, not both (--quic-http3)"
                    .into(),
            );
        }
        Ok(modes)
    }
}

impl Args {
    /// How many servers the run drives: the --url list, or the instances loadgen starts.
    pub fn server_count(&self) -> usize {
        if self.urls.is_empty() {
            self.spawn as usize
        } else {
            self.urls.len()
        }
    }

    /// Refuses combinations of --url, --spawn, --redis, --chaos, --proxy and --tls that cannot
    /// run, saying why.
    ///
    /// # Errors
    /// A message naming the flags.
    pub fn check_topology(&self) -> Result<(), String> {
        self.target_args.check(self)?;
        let given = !self.urls.is_empty();
        if given && self.spawn > 1 {
            return Err(
                "--spawn starts servers, --url names running ones: give one or the other".into(),
            );
        }
        if given && self.redis.is_some() {
            return Err("--redis is for the instances loadgen starts (--spawn); the servers at --url have their own settings".into());
        }
        if self.chaos.is_on() && given {
            return Err(format!(
                "--chaos {} kills servers, so it needs the ones loadgen starts: drop --url (use --spawn N for several)",
                self.chaos
            ));
        }
        if self.chaos == crate::chaos::ChaosKind::KillOne && self.server_count() < 2 {
            return Err(
                "--chaos kill-one needs several instances to fail over to: add --spawn 2 (or more)"
                    .into(),
            );
        }
        if self.chaos.is_on() {
            self.chaos_at.offset(self.duration)?;
        }
        // With a proxy, TLS is its front's (HTTP/2 offered, as browsers reach a proxy) and the
        // servers behind it are plain.
        match self.proxy {
            ProxyKind::None
                if (self.spawn > 1 || self.chaos.is_on()) && self.tls != TlsMode::Off =>
            {
                return Err(
                    "--spawn and --chaos run plain http:// servers: drop --tls (a restarted server would present a new self-signed certificate), or put a proxy's TLS front before them (--proxy nginx|haproxy|apache|caddy --tls on)".into(),
                );
            }
            ProxyKind::Other(s) if self.tls != TlsMode::Off && !s.terminates_tls() => {
                return Err(crate::intermediary::no_tls_front(s));
            }
            ProxyKind::None => {}
            _ if self.tls != TlsMode::On && self.http.contains(&HttpVersion::Http2) => {
                return Err(
                    "--proxy with --http 2 needs --tls on: browsers speak HTTP/2 to a proxy only over its TLS front".into(),
                );
            }
            _ => {}
        }
        if self.proxy != ProxyKind::None && self.urls.iter().any(|u| u.scheme() == "https") {
            return Err("--proxy proxies to plain http:// servers only".into());
        }
        if self.proxy_read_timeout.is_zero() {
            return Err("--proxy-read-timeout must be more than zero".into());
        }
        if self
            .networks
            .iter()
            .any(|n| *n != feedlab_link::Network::Loopback)
        {
            if given {
                return Err(
                    "--network emulates the link to the server loadgen starts: drop --url".into(),
                );
            }
            if self.spawn > 1 || self.redis.is_some() {
                return Err("--network runs one server behind the link: drop --spawn and --redis (several instances on one Redis are not carried across the link yet)".into());
            }
        }
        let data_dir = self
            .server_args
            .iter()
            .any(|a| a == "--data-dir" || a.starts_with("--data-dir="));
        if data_dir && (self.spawn > 1 || self.redis.is_some()) {
            return Err("several instances share their feed through Redis, which excludes --data-dir in --server-arg".into());
        }
        Ok(())
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if !(0.0..=100_000.0).contains(&r) {
        return Err("rate must be between 0 and 100000 events/s".into());
    }
    Ok(r)
}

/// A price per hour, USD: more than 0 (a free resource would make every crossover 0 or
/// infinite) and at most [`feedlab_report::cost::MAX_PRICE_PER_HOUR`].
fn parse_threshold(s: &str) -> Result<f64, String> {
    let t: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    feedlab_report::recommend::Rule {
        threshold: t,
        ..Default::default()
    }
    .check()?;
    Ok(t)
}

fn parse_price(s: &str) -> Result<f64, String> {
    let p: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    let max = feedlab_report::cost::MAX_PRICE_PER_HOUR;
    if !(p > 0.0 && p <= max) {
        return Err(format!(
            "a price per hour must be more than 0 and at most {max} USD"
        ));
    }
    Ok(p)
}

/// The flags of the target adapters (flattened into loadgen's).
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// What serves --url: `feedlab` (the server or the floor) or `nchan` (nginx with the Nchan
    /// module: one channel per phase, published and subscribed at the --nchan-* locations;
    /// needs one --url and --http 1.1; no /stats, so loadgen's counts are not checked against
    /// the server's and its CPU is not read). Likewise `pushpin` (SSE and WebSocket; publishes
    /// to --publish-url), `socketio` (WebSocket and long polling) and `node` (the Node.js
    /// relay of scripts/peers/node: SSE and WebSocket).
    #[arg(long, env = "LOADGEN_TARGET", default_value = "feedlab")]
    pub target: crate::client::target::TargetKind,

    /// With --target nchan: the `nchan_publisher` location; `{channel}` becomes the phase's
    /// channel id.
    #[arg(long, env = "LOADGEN_NCHAN_PUBLISH", default_value = "/pub/{channel}")]
    pub nchan_publish: String,

    /// With --target nchan: the `nchan_subscriber` location for WebSocket, EventSource and
    /// long-poll (with `nchan_longpoll_multipart_response raw` a long poll may list several
    /// messages, one per line).
    #[arg(
        long,
        env = "LOADGEN_NCHAN_SUBSCRIBE",
        default_value = "/sub/{channel}"
    )]
    pub nchan_subscribe: String,

    /// With --target nchan: the `nchan_subscriber interval-poll` location, for short polling.
    #[arg(long, env = "LOADGEN_NCHAN_POLL", default_value = "/poll/{channel}")]
    pub nchan_poll: String,

    /// With a --target other than feedlab: where publishes go when the server takes them on
    /// another address than --url (Pushpin's publish API, `push_in_http_port`); default --url.
    #[arg(long, env = "LOADGEN_PUBLISH_URL")]
    pub publish_url: Option<url::Url>,
}

impl TargetArgs {
    /// Refuses what an adapter cannot do, saying why.
    ///
    /// # Errors
    /// A message naming the flags.
    pub fn check(&self, args: &Args) -> Result<(), String> {
        let Some(peer) = self.target.peer() else {
            if self.publish_url.is_some() {
                return Err("--publish-url is for a --target other than feedlab".into());
            }
            return Ok(());
        };
        let name = peer.name();
        if args.urls.len() != 1 {
            return Err(format!(
                "--target {name} drives one running server: give exactly one --url"
            ));
        }
        let plain = |u: &url::Url| u.scheme() == "http";
        let publish_plain = match &self.publish_url {
            Some(u) => plain(u),
            None => true,
        };
        if !plain(&args.urls[0]) || !publish_plain {
            return Err(format!("--target {name}: plain http:// only"));
        }
        if args.http != [HttpVersion::Http11] {
            return Err(format!("--target {name}: pass --http 1.1 (the adapter keeps one HTTP/1.1 connection per client; 1.0 and 2 are not adapted)"));
        }
        if args.chaos.is_on() || args.proxy != ProxyKind::None {
            return Err(format!(
                "--target {name}: no --chaos or --proxy (they need feedlab servers)"
            ));
        }
        if let Some(t) = args
            .transports()
            .into_iter()
            .find(|t| !peer.transports().contains(t))
        {
            let served: Vec<&str> = peer.transports().iter().map(|t| t.name()).collect();
            return Err(format!(
                "--target {name} does not serve {} (it serves {}): pick --transports",
                t.name(),
                served.join(", ")
            ));
        }
        if self.target != crate::client::target::TargetKind::Nchan {
            return Ok(());
        }
        for (flag, path) in [
            ("--nchan-publish", &self.nchan_publish),
            ("--nchan-subscribe", &self.nchan_subscribe),
            ("--nchan-poll", &self.nchan_poll),
        ] {
            if !path.starts_with('/') || !path.contains("{channel}") || path.contains('?') {
                return Err(format!(
                    "{flag} must be a path starting with / that contains {{channel}} and no query, got {path:?}"
                ));
            }
        }
        Ok(())
    }

    /// The adapter's locations, as `--nchan-*` give them.
    pub fn nchan_locations(&self) -> crate::client::target::nchan::Locations {
        crate::client::target::nchan::Locations {
            publish: self.nchan_publish.clone(),
            subscribe: self.nchan_subscribe.clone(),
            poll: self.nchan_poll.clone(),
        }
    }

    /// The adapter and its locations, for a target that is not feedlab's.
    pub fn peer_locations(
        &self,
    ) -> Option<(
        crate::client::target::TargetKind,
        crate::client::target::Locations,
    )> {
        let peer = self.target.peer()?;
        Some(match self.target {
            crate::client::target::TargetKind::Nchan => (self.target, self.nchan_locations()),
            _ => (self.target, peer.locations()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_floor_is_refused_with_the_way_to_run_the_floor() {
        let e = Args::from_args(["--target", "floor"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--server-bin target/release/floor"), "{e}");
        let a = Args::from_args(["--target", "server"]).unwrap();
        assert_eq!(
            a.target_args.target,
            crate::client::target::TargetKind::Feedlab
        );
        let nchan = Args::from_args(["--target", "nchan"]).unwrap();
        assert_eq!(
            nchan.target_args.nchan_locations().publish,
            "/pub/{channel}",
            "the adapter's locations are the --nchan-* flags"
        );
    }

    #[test]
    fn defaults_are_the_standard_comparison() {
        let a = Args::from_args::<_, &str>([]).unwrap();
        assert_eq!(a.transports(), Transport::ALL.to_vec());
        assert_eq!(a.clients, vec![50]);
        assert_eq!(a.duration, Duration::from_secs(10));
        assert_eq!(a.rates(), vec![20.0]);
        assert_eq!(a.payload_bytes, 100);
        assert_eq!(a.poll_interval, Duration::from_secs(1));
        assert_eq!(a.http, vec![HttpVersion::Http11, HttpVersion::Http10]);
        assert!(a.urls.is_empty() && !a.concurrent);
        assert_eq!(a.spawn, 1);
        assert_eq!(a.chaos, crate::chaos::ChaosKind::None);
        assert_eq!(a.proxy, ProxyKind::None);
    }

    #[test]
    fn lists_and_names_parse() {
        let a = Args::from_args([
            "--transports",
            "ws,short-poll",
            "--clients",
            "10,100",
            "--rates",
            "1,10",
            "--http",
            "1.0",
            "--duration",
            "1500ms",
        ])
        .unwrap();
        assert_eq!(a.transports(), vec![Transport::ShortPoll, Transport::Ws]);
        assert_eq!(a.clients, vec![10, 100]);
        assert_eq!(a.rates(), vec![1.0, 10.0]);
        assert_eq!(a.http, vec![HttpVersion::Http10]);
        assert_eq!(a.duration, Duration::from_millis(1500));
        assert!(Args::from_args(["--transports", "carrier-pigeon"]).is_err());
        assert!(Args::from_args(["--http", "4"]).is_err());
        let a = Args::from_args(["--http", "3"]).unwrap();
        assert_eq!(a.http, vec![HttpVersion::Http3]);
        let a = Args::from_args(["--http", "2,1.1", "--tls", "both"]).unwrap();
        assert_eq!(a.http, vec![HttpVersion::Http2, HttpVersion::Http11]);
        assert_eq!(a.tls_modes().unwrap(), vec![false, true]);
        let a = Args::from_args(["--url", "https://127.0.0.1:1/", "--insecure"]).unwrap();
        assert_eq!(a.tls_modes().unwrap(), vec![true]);
        let a = Args::from_args(["--url", "http://127.0.0.1:1/", "--tls", "both"]).unwrap();
        assert!(a.tls_modes().unwrap_err().contains("without --url"));
        assert!(Args::from_args(["--ca", "x.pem", "--insecure"]).is_err());
        assert!(Args::from_args(["--rate", "-1"]).is_err());
    }

    #[test]
    fn several_urls_and_topologies() {
        let a = Args::from_args([
            "--url",
            "http://127.0.0.1:1/,http://127.0.0.1:2/",
            "--url",
            "http://127.0.0.1:3/",
        ])
        .unwrap();
        assert_eq!(a.urls.len(), 3);
        assert_eq!(a.server_count(), 3);
        a.check_topology().unwrap();
        let a = Args::from_args(["--url", "http://127.0.0.1:1/,https://127.0.0.1:2/"]).unwrap();
        assert!(a.tls_modes().unwrap_err().contains("same scheme"));
        let refused = |args: &[&str], what: &str| {
            let e = Args::from_args(args).unwrap().check_topology().unwrap_err();
            assert!(e.contains(what), "{args:?}: {e}");
        };
        refused(
            &["--url", "http://127.0.0.1:1/", "--chaos", "kill-restart"],
            "drop --url",
        );
        refused(&["--chaos", "kill-one"], "--spawn 2");
        refused(
            &[
                "--chaos",
                "kill-restart",
                "--chaos-at",
                "20s",
                "--duration",
                "10s",
            ],
            "outside",
        );
        refused(&["--spawn", "2", "--tls", "on"], "drop --tls");
        refused(
            &["--spawn", "2", "--url", "http://127.0.0.1:1/"],
            "one or the other",
        );
        refused(
            &["--spawn", "2", "--server-arg=--data-dir=/tmp/x"],
            "excludes --data-dir",
        );
        let ok = Args::from_args([
            "--spawn",
            "3",
            "--chaos",
            "kill-one",
            "--chaos-at",
            "5s",
            "--proxy",
            "nginx",
        ])
        .unwrap();
        ok.check_topology().unwrap();
        assert_eq!(ok.proxy, ProxyKind::Nginx);
        refused(&["--proxy", "varnish", "--tls", "on"], "has no TLS");
        refused(&["--proxy", "squid", "--tls", "on"], "forward proxy");
        refused(&["--proxy", "caddy", "--http", "2"], "--tls on");
        for proxy in ["nginx", "haproxy", "apache", "caddy"] {
            let front = Args::from_args([
                "--proxy", proxy, "--tls", "on", "--http", "2", "--spawn", "2",
            ])
            .unwrap();
            front.check_topology().unwrap();
        }
        assert!(Args::from_args(["--spawn", "0"]).is_err());
        assert!(Args::from_args(["--chaos", "explode"]).is_err());
        assert!(Args::from_args(["--proxy", "traefik"]).is_err());
        assert!(Args::from_args(["--chaos-at", "150%"]).is_err());
    }

    #[test]
    fn serve_takes_the_server_arguments_verbatim() {
        let cli = Cli::try_parse_from(["loadgen", "serve", "--", "--bind", "127.0.0.1:0"]).unwrap();
        match cli.command {
            Some(Command::Serve { args }) => assert_eq!(args, ["--bind", "127.0.0.1:0"]),
            other => panic!("serve expected, got {other:?}"),
        }
    }

    #[test]
    fn networks_parse_and_refuse_what_the_link_cannot_carry() {
        let a = Args::from_args::<_, &str>([]).unwrap();
        assert_eq!(a.networks, vec![feedlab_link::Network::Loopback]);
        let a = Args::from_args(["--network", "none", "--network", "3g,loss=2%"]).unwrap();
        assert_eq!(a.networks.len(), 2);
        assert_eq!(a.networks[1].name(), "3g,loss=2%");
        a.check_topology().unwrap();
        assert!(Args::from_args(["--network", "5g"]).is_err());
        let refused = |args: &[&str], what: &str| {
            let e = Args::from_args(args).unwrap().check_topology().unwrap_err();
            assert!(e.contains(what), "{args:?}: {e}");
        };
        refused(
            &["--network", "lte", "--url", "http://127.0.0.1:1/"],
            "drop --url",
        );
        refused(&["--network", "lte", "--spawn", "2"], "--spawn");
        let cli = Cli::try_parse_from([
            "loadgen",
            "link",
            "--network",
            "rtt=300ms",
            "--",
            "--rate",
            "2",
        ])
        .unwrap();
        match cli.command {
            Some(Command::Link(l)) => {
                assert_eq!(l.network.name(), "rtt=300ms");
                assert_eq!(l.server_args, ["--rate", "2"]);
            }
            _ => panic!("link expected"),
        }
    }
}
