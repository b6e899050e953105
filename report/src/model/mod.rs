//! The report's model: every type `report.json` holds, and nothing that renders them. Analysis
//! (spread, cost, crossovers, recommendations, conclusions) reads and fills it; every rendering
//! reads it only, so the renderings cannot disagree.
//!
//! Units are in the field names (`_us`, `_s`, `_bytes`); a missing measurement is `null`, never a
//! zero that could be mistaken for a result.

pub mod compression;
pub mod crossover;
pub mod histogram;
pub mod prices;
pub mod published;
pub mod range;
pub mod recommendation;
pub mod scenario;
pub mod schema;
pub mod talk_back;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use self::schema as sch;
pub use self::{
    compression::CompressionResult,
    crossover::Crossover,
    histogram::{ErrorCounts, Quantiles},
    published::Published,
    range::{Range, Spread},
    recommendation::{DecidedBy, PointRanking, Ranked, Recommendation},
    scenario::{Cost, FlagUse, Requirements, ScenarioInfo, Why},
    talk_back::{TalkBack, TalkBackCheck},
};

/// Fewest connections from which memory per connection is reported: RSS moves by pages and
/// by allocator arenas of hundreds of KiB, so at 50 connections one arena reads as tens of KiB
/// per connection (or as 0 B), which is noise, not a cost.
pub const MIN_CONNECTIONS_FOR_RSS: f64 = 1000.0;

/// Bumped when a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything a reader needs to trust the numbers: what ran, where, and what was measured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(
    deny_unknown_fields,
    title = "feedlab loadgen report (report.json)",
    description = "One run of loadgen: settings, machine, and per-transport measurements. Every other report file (report.md, report.html, SVG charts) is rendered from this."
)]
pub struct Report {
    #[schemars(extend("const" = 1))]
    pub schema_version: u32,
    /// The exact loadgen command line.
    pub command: String,
    #[schemars(extend("format" = "date-time"))]
    pub started_at: String,
    #[schemars(extend("format" = "date-time"))]
    pub finished_at: String,
    #[schemars(range(min = 0))]
    pub duration_s: f64,
    /// Stopped early by Ctrl-C: the report holds what was measured until then.
    pub interrupted: bool,
    /// Any gap, duplicate, reordering or client error in any phase.
    pub loss: bool,
    pub settings: Settings,
    pub machine: Machine,
    pub versions: Versions,
    pub server: ServerInfo,
    /// The headline: one result per transport, from the largest cell of the matrix (the last
    /// rate and client count) with the first `--http` version.
    #[schemars(extend("propertyNames" = {"enum": ["short-poll", "long-poll", "sse", "ws", "wt", "wt-streams", "wt-datagrams"]}))]
    pub transports: BTreeMap<String, TransportResult>,
    /// Every phase measured, in order (the headline's included), for sweeps and HTTP versions.
    pub phases: Vec<TransportResult>,
    /// Sentences written from the numbers (the Markdown and HTML "Conclusion").
    pub conclusions: Vec<String>,
    /// The scenario this run was (`--scenario`), with each flag's reason and the requirements.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub scenario: Option<ScenarioInfo>,
    /// Where, along the run's sweeps, one transport's cost overtakes another's.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub crossovers: Vec<Crossover>,
    /// One per scenario: the transports ranked against its requirements.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub recommendations: Vec<Recommendation>,
    /// Things a reader must know before trusting a number (a failed /stats check, a client
    /// that could not connect, shared server cost in a concurrent run).
    pub warnings: Vec<String>,
    /// Provenance: the code, build and machine that made this run. Null in reports made before
    /// it was recorded.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub record: Option<Record>,
}

/// Which slices of a plan a report holds, and the plan's shared start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ShardInfo {
    /// How many slices the plan was cut into (`--shard K/N`: N).
    #[schemars(range(min = 1))]
    pub of: u32,
    /// The slices summed here, 1-based and sorted: one for a process's own report, several
    /// once `loadgen merge` added reports together (all of 1..=of: the whole plan).
    #[schemars(length(min = 1), inner(range(min = 1)))]
    pub slices: Vec<u32>,
    /// `--start-at`: when the first phase started in every process, RFC 3339.
    #[schemars(extend("format" = "date-time"))]
    pub start_at: String,
}

/// Provenance: a figure is current only beside the code and machine that made it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Record {
    /// `git rev-parse HEAD` of the source tree loadgen was built from (`unknown` outside one).
    pub commit: String,
    /// Whether that tree had uncommitted changes when the run started.
    pub dirty: bool,
    /// Cargo profile of the binaries (`release`, `debug`).
    #[schemars(extend("enum" = ["release", "debug"]))]
    pub profile: String,
    pub cpu_model: String,
    #[schemars(range(min = 1))]
    pub cores: usize,
    pub kernel: String,
    /// When the run started, RFC 3339, UTC.
    #[schemars(extend("format" = "date-time"))]
    pub date: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Settings {
    /// `--url`, or null when loadgen started its own server.
    pub url: Option<String>,
    #[schemars(schema_with = "sch::transport_list")]
    pub transports: Vec<String>,
    #[schemars(length(min = 1), inner(range(min = 1)))]
    pub clients: Vec<u32>,
    #[schemars(length(min = 1), inner(range(min = 0)))]
    pub rates: Vec<f64>,
    #[schemars(range(min = 0))]
    pub duration_s: f64,
    pub payload_bytes: usize,
    /// `--payload`: `padding`, `tick`, `chat` or `metrics`.
    #[serde(default = "padding")]
    #[schemars(skip_serializing_if = "sch::added_later")]
    #[schemars(extend("enum" = ["padding", "tick", "chat", "metrics"]))]
    pub payload: String,
    #[schemars(range(min = 0))]
    pub poll_interval_s: f64,
    #[schemars(schema_with = "sch::http_list")]
    pub http: Vec<String>,
    pub concurrent: bool,
    /// `--repeat`: how many times every phase ran.
    #[serde(default = "one")]
    #[schemars(skip_serializing_if = "sch::added_later")]
    #[schemars(range(min = 1, max = 20))]
    pub repeat: u32,
    pub seed: u64,
    #[schemars(range(min = 0))]
    pub drain_s: f64,
    #[schemars(range(min = 0))]
    pub long_poll_timeout_s: f64,
    pub source_ips: u8,
    /// loadgen's open-file limit (soft) during the run.
    pub nofile_limit: Option<u64>,
    pub server_args: Vec<String>,
    /// `--tls`: `off`, `on` or `both` (plain phases, then TLS phases).
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    #[schemars(extend("enum" = ["off", "on", "both"]))]
    pub tls: String,
    /// `--compression`: `off`, `on` or `both` (every phase without, then with).
    #[serde(default = "off")]
    #[schemars(skip_serializing_if = "sch::added_later")]
    #[schemars(extend("enum" = ["off", "on", "both"]))]
    pub compression: String,
    /// `--heads`: `minimal`, or `browser (cookie N B)` (Chromium's request heads).
    #[serde(default = "minimal")]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub heads: String,
    /// `--ca`, the PEM file trusted for an `https://` --url.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub ca: Option<String>,
    /// `--insecure`: the server's certificate was not checked.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub insecure: bool,
    /// Every `--url` (clients spread over them), empty when loadgen started its servers.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub urls: Vec<String>,
    /// `--spawn`: instances loadgen started (without --url).
    #[serde(default = "one")]
    #[schemars(skip_serializing_if = "sch::added_later")]
    #[schemars(range(min = 1))]
    pub spawn: u32,
    /// `--redis`, as given (the Redis loadgen started itself is in `server.redis`).
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub redis: Option<String>,
    /// `--chaos`: `none`, `kill-restart`, `kill-one` or `rolling-restart`.
    #[serde(default = "none")]
    #[schemars(skip_serializing_if = "sch::added_later")]
    #[schemars(extend("enum" = ["none", "kill-restart", "kill-one", "rolling-restart"]))]
    pub chaos: String,
    /// `--chaos-at` (`40%`, `8s`), null without chaos.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub chaos_at: Option<String>,
    /// `--chaos-outage` in s, for `kill-restart`.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    #[schemars(range(min = 0))]
    pub chaos_outage_s: Option<f64>,
    /// `--proxy`: `none` or `nginx`.
    #[serde(default = "none")]
    #[schemars(skip_serializing_if = "sch::added_later")]
    #[schemars(extend("enum" = ["none", "nginx", "haproxy", "apache", "caddy", "varnish", "squid"]))]
    pub proxy: String,
    /// `--proxy-read-timeout` in s, with a proxy.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    #[schemars(range(min = 0))]
    pub proxy_read_timeout_s: Option<f64>,
    /// `--network`, in order, when the run named networks (empty: loopback only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub networks: Vec<String>,
    /// `--shard`: this report is some slices of a plan that several loadgen processes ran
    /// together (null: the whole plan in one process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub shard: Option<ShardInfo>,
    /// `--send-rate`: messages per second each client published itself (0: clients only
    /// listened).
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    #[schemars(range(min = 0))]
    pub send_rate: f64,
    /// `--price-vcpu-hour`, USD: what the memory-against-CPU crossover prices CPU at.
    #[serde(default = "prices::default_vcpu_hour")]
    #[schemars(skip_serializing_if = "sch::added_later")]
    #[schemars(range(min = 0))]
    pub price_vcpu_hour: f64,
    /// `--price-gib-hour`, USD: what it prices memory at.
    #[serde(default = "prices::default_gib_hour")]
    #[schemars(skip_serializing_if = "sch::added_later")]
    #[schemars(range(min = 0))]
    pub price_gib_hour: f64,
    /// `--threshold`: the ranking rule's practical threshold, a fraction (0.10: costs less than
    /// 10% apart tie, whatever the spread).
    #[serde(default = "default_threshold")]
    #[schemars(skip_serializing_if = "sch::added_later")]
    #[schemars(range(min = 0))]
    pub threshold: f64,
}

/// The ranking rule's default practical threshold.
pub fn default_threshold() -> f64 {
    feedlab_cost::rank::Rule::default().threshold
}

fn one() -> u32 {
    1
}

fn padding() -> String {
    "padding".into()
}

fn none() -> String {
    "none".into()
}

fn off() -> String {
    "off".into()
}

fn minimal() -> String {
    "minimal".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Machine {
    #[schemars(range(min = 1))]
    pub cores: usize,
    pub cpu_model: String,
    pub os: String,
    pub kernel: String,
    pub arch: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Versions {
    pub loadgen: String,
    pub server: String,
    pub rustc: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ServerInfo {
    /// `spawned`: loadgen started it (CPU and memory from `/proc/<pid>`); `url`: it was given
    /// (CPU and memory from its `/stats`).
    #[schemars(extend("enum" = ["spawned", "url"]))]
    pub kind: String,
    pub url: String,
    pub command: Option<Vec<String>>,
    /// Whether the server's `ts` is on this machine's clock (server-stamped latency recorded).
    pub local: bool,
    /// With `--tls both`: the second server, which the TLS phases ran against.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub tls_url: Option<String>,
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub tls_command: Option<Vec<String>>,
    /// Every server of the (first) endpoint: the --urls, or the instances loadgen started.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub instances: Vec<String>,
    /// The proxy clients connected through (`--proxy`).
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub proxy_url: Option<String>,
    /// What the proxy was: software, configuration (committed file), version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub proxy_software: Option<String>,
    /// The Redis the instances shared their feed through.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub redis: Option<String>,
}

/// Datagrams lost and recovered (`wt-datagrams`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DatagramLoss {
    /// Events whose datagram a client missed and asked for again.
    pub lost: u64,
    /// Of those, the ones that came back over a stream (the rest arrived late as datagrams,
    /// or the session ended first).
    pub recovered: u64,
}

/// One transport in one phase.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TransportResult {
    /// The network the phase ran on, when the run named networks (`--network`): its SPEC and
    /// what the link and the kernel's TCP measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub network: Option<feedlab_link::NetworkResult>,
    #[schemars(schema_with = "sch::transport")]
    pub transport: String,
    /// HTTP version of the requests (`1.1` keep-alive, `1.0` connection per request, `2` one
    /// HTTP/2 connection per client; WebSockets are always `1.1`).
    #[schemars(schema_with = "sch::http")]
    pub http: String,
    /// Over TLS (`https://`, `wss://`): the byte counts are TLS records on the socket.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub tls: bool,
    /// Index into `phases` of the phase this ran in.
    pub phase: usize,
    /// Which run of its phase this is, 0-based (`--repeat`).
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub repeat: u32,
    /// Over every run of this phase: median and range of the figures conclusions rank on; null
    /// for a phase run once.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub spread: Option<Spread>,
    /// Transports that ran at the same time (a `--concurrent` run), this one excluded.
    #[schemars(schema_with = "sch::transports")]
    pub concurrent_with: Vec<String>,
    #[schemars(range(min = 1))]
    pub clients: u32,
    /// Publish rate asked for, events/s.
    #[schemars(range(min = 0))]
    pub rate: f64,
    /// How long the publisher ran, s.
    #[schemars(range(min = 0))]
    pub publish_s: f64,
    /// How long it took every client to connect before publishing, s.
    #[schemars(range(min = 0))]
    pub connect_s: f64,
    #[schemars(range(min = 0))]
    pub drain_s: f64,

    pub events_published: u64,
    /// Events every client should have received: clients × events in the phase's seq range.
    pub events_expected: u64,
    /// Events delivered to clients (duplicates included).
    pub events_received: u64,
    /// Distinct expected events received.
    pub events_unique: u64,
    pub gaps: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Events the server announced as missed (counted in `gaps` too).
    pub missed_reported: u64,
    /// Events acknowledged to the publisher that some client never received (summed over
    /// clients): the loss that counts when servers die. Must be 0.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub lost: u64,
    /// `wt-datagrams` only: events whose datagram did not arrive (a gap by `seq`, or a head the
    /// server announced), and those of them the clients got again over a stream (summed over
    /// clients); null for the other transports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub datagrams: Option<DatagramLoss>,

    /// Publish (loadgen clock, in `data.sent_us`) → receipt (same clock), µs.
    pub latency_us: Quantiles,
    /// Server's `ts` → receipt, µs; null when the server is not on this machine.
    pub server_latency_us: Option<Quantiles>,

    /// HTTP requests answered (SSE and WebSocket handshakes included).
    pub http_requests: u64,
    /// Polls that brought no event (short-poll 200 with none, long-poll 204).
    pub empty_responses: u64,
    pub connections_opened: u64,
    /// Connection attempts after a lost connection or a failed attempt.
    pub reconnects: u64,
    /// Working connections (polling: requests after a success) that failed or were cut.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub disconnects: u64,
    /// From the moment a client saw its connection fail to its next successful subscription
    /// (SSE or WebSocket handshake) or poll response, µs; null when no client lost one.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub reconnect_us: Option<Quantiles>,
    /// What `--chaos` did in this phase and how this transport came through it.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub chaos: Option<ChaosResult>,
    /// Bytes read from the sockets: HTTP heads, chunking and WebSocket framing included.
    pub bytes_down: u64,
    /// Bytes written to the sockets.
    pub bytes_up: u64,
    /// Over TLS: the plaintext read inside TLS (what the server counts); null without TLS.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub bytes_plaintext_down: Option<u64>,
    /// (bytes_down + bytes_up) / events_received.
    #[schemars(range(min = 0))]
    pub bytes_per_event: Option<f64>,
    /// http_requests / events_received.
    #[schemars(range(min = 0))]
    pub requests_per_event: Option<f64>,
    /// Size of an event's `data` as published (the payload every transport carries), bytes.
    #[schemars(range(min = 0))]
    pub data_bytes_per_event: f64,
    /// bytes_down / (events_received × data_bytes_per_event): 1.0 would be no overhead.
    #[schemars(range(min = 0))]
    pub overhead_ratio: Option<f64>,

    /// Server CPU time (user + system) during the phase, s.
    #[schemars(range(min = 0))]
    pub server_cpu_s: Option<f64>,
    /// server_cpu_s in µs per delivered event (= ms per 1000 deliveries).
    #[schemars(range(min = 0))]
    pub server_cpu_us_per_event: Option<f64>,
    pub server_rss_start_bytes: Option<u64>,
    pub server_rss_peak_bytes: Option<u64>,
    /// (peak − start) / connections; null under 1,000 connections, where it is noise.
    #[schemars(range(min = 0))]
    pub server_rss_per_connection_bytes: Option<f64>,
    /// The server's CPU and memory cover every transport of the phase (`--concurrent`).
    pub server_cost_shared: bool,

    /// loadgen's own CPU and memory in the phase (the client side's cost, and the check that
    /// loadgen was not the bottleneck).
    #[schemars(range(min = 0))]
    pub loadgen_cpu_s: Option<f64>,
    pub loadgen_rss_start_bytes: Option<u64>,
    pub loadgen_rss_peak_bytes: Option<u64>,
    #[schemars(range(min = 0))]
    pub loadgen_rss_per_connection_bytes: Option<f64>,

    /// Errors by kind: `connect_refused`, `timeout`, `http_503`, `ws_close_1001`, …
    #[schemars(extend("propertyNames" = {"pattern": "^[a-z0-9_]+$"}))]
    pub errors: BTreeMap<String, u64>,
    pub publisher: Published,
    /// What the clients' own messages cost (`--send-rate`); absent when clients only listen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip_serializing_if = "sch::added_later")]
    #[serde(rename = "upstream")]
    pub talk_back: Option<TalkBack>,
    /// `--compression`: what was offered and agreed, the bytes after decoding and what decoding
    /// cost; absent from reports made before the flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub compression: Option<CompressionResult>,
    /// loadgen's counts against the server's `/stats` deltas; null when unavailable.
    pub server_check: Option<ServerCheck>,
    pub histograms: Histograms,
}

/// A server killed during the phase, and the latency of events published while clients were
/// cut off against the rest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ChaosResult {
    /// `kill-restart`, `kill-one` or `rolling-restart`.
    #[schemars(extend("enum" = ["kill-restart", "kill-one", "rolling-restart"]))]
    pub kind: String,
    /// The server killed (SIGKILL), or `all N, in turn` (`rolling-restart`: SIGTERM, restart).
    pub instance: String,
    /// When, in s after publishing started.
    #[schemars(range(min = 0))]
    pub kill_at_s: f64,
    /// `kill-restart`: how long it was kept down (`--chaos-outage`), s.
    #[schemars(range(min = 0))]
    pub outage_s: Option<f64>,
    /// `kill-restart`: from the kill to the restarted server listening again, s
    /// (`rolling-restart`: from the first SIGTERM to the last instance listening again).
    #[schemars(range(min = 0))]
    pub back_after_s: Option<f64>,
    /// Why the restart failed, when it did.
    pub restart_error: Option<String>,
    /// The outage window as clients lived it, s after publishing started: from the kill to the
    /// last client that lost its connection getting a subscription back (or the restart).
    #[schemars(range(min = 0))]
    pub window_start_s: f64,
    #[schemars(range(min = 0))]
    pub window_end_s: f64,
    /// Latency of events in flight during the window (published before it ended, received
    /// after it began), from each event's scheduled publish time.
    pub latency_outage_us: Quantiles,
    /// Latency of the phase's other events.
    pub latency_outside_us: Quantiles,
}

/// loadgen's counts against the server's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ServerCheck {
    /// Must be equal.
    pub requests: Compared,
    /// Must be equal.
    pub events_delivered: Compared,
    /// For information: both count empty polls the same way.
    pub empty_responses: Compared,
    /// Must agree within 1% (unless `bytes_note` says why they cannot).
    pub bytes: Compared,
    /// loadgen's side of `bytes` is the plaintext inside TLS, not the bytes on the socket.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub bytes_inside_tls: bool,
    /// Why `bytes` is not part of `ok` (HTTP/2), or null when it is.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub bytes_note: Option<String>,
    pub ok: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Compared {
    pub loadgen: u64,
    pub server: u64,
    /// (loadgen − server) / server.
    pub difference_ratio: f64,
    pub ok: bool,
}

impl Compared {
    /// Equal counts.
    pub fn exact(loadgen: u64, server: u64) -> Self {
        Self::within(loadgen, server, 0.0)
    }

    /// Counts within `tolerance` (a ratio of the server's).
    pub fn within(loadgen: u64, server: u64, tolerance: f64) -> Self {
        let difference_ratio = if server == 0 {
            if loadgen == 0 {
                0.0
            } else {
                1.0
            }
        } else {
            (loadgen as f64 - server as f64) / server as f64
        };
        let ok = if tolerance == 0.0 {
            loadgen == server
        } else {
            difference_ratio.abs() <= tolerance
        };
        Self {
            loadgen,
            server,
            difference_ratio,
            ok,
        }
    }
}

// This doc comment is the committed schema's description: kept word for word.
/// The latency histograms, HdrHistogram V2 encoded, base64 (see [`crate::stats::encode_histogram`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Histograms {
    #[schemars(regex(pattern = r"^[A-Za-z0-9+/]*={0,2}$"))]
    pub latency_us: String,
    #[schemars(regex(pattern = r"^[A-Za-z0-9+/]*={0,2}$"))]
    pub server_latency_us: Option<String>,
}

impl TransportResult {
    /// The same transport, HTTP version, TLS, clients and rate: another run of one phase.
    pub fn same_cell(&self, other: &TransportResult) -> bool {
        self.transport == other.transport
            && self.network.as_ref().map(|n| &n.name) == other.network.as_ref().map(|n| &n.name)
            && self.http == other.http
            && self.tls == other.tls
            && self.clients == other.clients
            && self.rate == other.rate
            && self.compressed() == other.compressed()
    }

    /// Whether anything was lost, repeated, reordered or failed.
    pub fn has_loss(&self) -> bool {
        self.gaps > 0
            || self.duplicates > 0
            || self.out_of_order > 0
            || self.lost > 0
            || self
                .talk_back
                .as_ref()
                .is_some_and(|u| u.lost_own > 0 || u.unacknowledged > 0)
    }

    pub fn has_errors(&self) -> bool {
        self.errors.values().any(|&n| n > 0)
    }

    /// "sse", or "short-poll (HTTP/1.0)" for a non-headline HTTP version, "sse (HTTP/2, TLS)".
    pub fn label(&self, primary_http: &str) -> String {
        let mut notes = Vec::new();
        if self.http != self.headline_http(primary_http) {
            notes.push(format!("HTTP/{}", self.http));
        }
        if self.tls {
            notes.push("TLS".to_owned());
        }
        if notes.is_empty() {
            self.transport.clone()
        } else {
            format!("{} ({})", self.transport, notes.join(", "))
        }
    }

    /// The HTTP version this transport runs in the headline when `primary_http` comes first.
    pub fn headline_http<'a>(&self, primary_http: &'a str) -> &'a str {
        match (self.transport.as_str(), primary_http) {
            ("ws", _) | ("sse", "1.0") => "1.1",
            (_, p) => p,
        }
    }
}

/// Whether the transport uses one HTTP request per delivery batch.
pub fn is_polling(transport: &str) -> bool {
    transport == "short-poll" || transport == "long-poll"
}

impl Report {
    /// The rule this report ranks with: its `--threshold`, at 5%.
    pub fn rule(&self) -> feedlab_cost::rank::Rule {
        feedlab_cost::rank::Rule {
            threshold: self.settings.threshold,
            ..feedlab_cost::rank::Rule::default()
        }
    }

    /// The headline results in the standard transport order.
    pub fn headline(&self) -> Vec<&TransportResult> {
        feedlab_wire::Transport::ALL
            .iter()
            .filter_map(|t| self.transports.get(t.name()))
            .collect()
    }

    /// Every run of `r`'s phase (same transport, HTTP version, TLS, clients and rate).
    pub fn runs_of(&self, r: &TransportResult) -> Vec<&TransportResult> {
        self.phases.iter().filter(|p| p.same_cell(r)).collect()
    }

    /// The run of `r`'s cell whose p99 latency is the median of its runs (the lower middle one
    /// for an even count): what a chart or a table of one run shows.
    pub fn median_run<'a>(&'a self, r: &'a TransportResult) -> &'a TransportResult {
        let mut runs = self.runs_of(r);
        if runs.is_empty() {
            return r;
        }
        runs.sort_by_key(|x| x.latency_us.p99);
        runs[(runs.len() - 1) / 2]
    }

    /// A figure of `r`'s phase over every one of its runs ([`range::over_runs`]): median and
    /// range, and how many runs; `None` when some run did not measure it.
    pub fn figure(
        &self,
        r: &TransportResult,
        f: impl Fn(&TransportResult) -> Option<f64>,
    ) -> Option<(Range, u32)> {
        range::over_runs(&self.runs_of(r), f)
    }

    /// Every phase's last run (the ones that ran more than once carry their `spread`), in
    /// order: what tables and charts show. With `--compression both`, only the first setting's
    /// (uncompressed): the "Compression" table sets the two side by side.
    pub fn latest(&self) -> Vec<&TransportResult> {
        let compressed = self.phases.first().is_some_and(TransportResult::compressed);
        self.phases
            .iter()
            .enumerate()
            .filter(|(_, r)| r.compressed() == compressed)
            .filter(|(i, r)| !self.phases[i + 1..].iter().any(|later| later.same_cell(r)))
            .map(|(_, r)| r)
            .collect()
    }

    pub fn primary_http(&self) -> &str {
        self.settings.http.first().map_or("1.1", String::as_str)
    }
}
