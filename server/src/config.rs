//! Every knob of the server, each a flag and an environment variable with a documented default.
//!
//! Limits live here and nowhere else, so `server --help` is the complete list of what bounds the
//! server's memory and time, and the book's settings table (docs/src/reference/settings.md) is checked against it.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Parser, ValueEnum};
pub use feedlab_wire::payload::PayloadKind;

pub use crate::compress::HttpGzip;

/// Upper bound of `--rate` and of `POST /control {"rate"}`: the ticker is a demo source, and the
/// load generator publishes its own events.
pub const MAX_TICKER_RATE: f64 = 10_000.0;

/// Lower bound of a running ticker's rate (0 turns it off): one event per 100 s. Slower would
/// be an interval no timer can take (`{"rate":5e-20}` once killed the ticker).
pub const MIN_TICKER_RATE: f64 = 0.01;

/// Upper bound of `--payload-bytes` and of `POST /control {"payload_bytes"}`.
pub const MAX_TICKER_PAYLOAD: usize = 1 << 20;

/// Longest any duration setting may be: every deadline is "now" plus a setting, and must stay a
/// time the clock can represent.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Largest `--max-publish-bytes` and `--ws-max-message-bytes`: what one request or one
/// WebSocket connection may make the server hold.
pub const MAX_MESSAGE_BYTES: usize = 256 << 20;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "server",
    version,
    about = "feedlab server: one ordered live feed over short polling, long polling, SSE and WebSockets"
)]
pub struct Config {
    /// Address to listen on. Port 0 lets the OS choose (the chosen address is printed).
    #[arg(long, env = "FEEDLAB_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Events per second published by the built-in ticker; 0 turns it off.
    #[arg(long, env = "FEEDLAB_RATE", default_value_t = 2.0, value_parser = parse_rate)]
    pub rate: f64,

    /// Bytes of padding in each ticker event's `data`, to measure bigger payloads.
    #[arg(long, env = "FEEDLAB_PAYLOAD_BYTES", default_value_t = 0, value_parser = parse_payload)]
    pub payload_bytes: usize,

    /// What each ticker event carries besides its own fields (`source`, `tick`, `sent_us`):
    /// `padding` (`"pad":"xxx…"` of `--payload-bytes`), or content shaped like a real feed —
    /// `tick`, `chat`, `metrics` — the same generator as loadgen's `--payload`.
    #[arg(long, env = "FEEDLAB_PAYLOAD", value_enum, default_value_t = PayloadKind::Padding)]
    pub payload: PayloadKind,

    /// Seed of the ticker's `--payload` content: one seed, the same events (tick N carries
    /// payload N).
    #[arg(long, env = "FEEDLAB_SEED", default_value_t = 0)]
    pub seed: u64,

    /// gzip for SSE, polls and long-polls when the request's `Accept-Encoding` allows it:
    /// `shared` compresses each event once, on first need, into deflate pieces every response
    /// shares (memory and CPU per event, not per connection); `stream` runs one compressor per
    /// response (better ratio, its own memory and CPU for each); `off` never compresses.
    #[arg(long, env = "FEEDLAB_HTTP_GZIP", value_enum, default_value_t = HttpGzip::Shared)]
    pub http_gzip: HttpGzip,

    /// Smallest poll or long-poll body that is gzip'd (bytes before compression); smaller ones
    /// go as they are. gzip adds 18 bytes of header and trailer and a few per piece, so an empty
    /// poll (`{"events":[],…}`, about 35 bytes) would grow. SSE streams are always gzip'd.
    #[arg(long, env = "FEEDLAB_HTTP_GZIP_MIN_BYTES", default_value_t = 256, value_parser = count_in(0, MAX_MESSAGE_BYTES))]
    pub http_gzip_min_bytes: usize,

    /// Events kept for resume. A cursor older than this gets what remains plus a `missed` count.
    #[arg(long, env = "FEEDLAB_RETAIN", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub retain: u64,

    /// Keep the feed on disk here (an embedded redb file), so a restarted server still has every
    /// acknowledged event and seq continues. Without it the feed lives in memory only.
    #[arg(long, env = "FEEDLAB_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Serve one feed from several instances: publishes go into a Redis Stream (XADD, bounded by
    /// `--retain`), every instance tails it, and seq is the same on all of them; named feeds
    /// (`?feed=`) too, each with its own seq, `--feed-retain` window and end. E.g.
    /// `redis://127.0.0.1:6379`. Takes the place of `--data-dir`.
    #[arg(long, env = "FEEDLAB_REDIS", conflicts_with = "data_dir")]
    pub redis: Option<String>,

    /// Key prefix in Redis (`<prefix>:events`, `<prefix>:seq`): instances with the same prefix
    /// share a feed.
    #[arg(long, env = "FEEDLAB_REDIS_PREFIX", default_value = "feedlab")]
    pub redis_prefix: String,

    /// Most events in one poll or long-poll response; `next` continues from there.
    #[arg(long, env = "FEEDLAB_MAX_BATCH", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_batch: u64,

    /// Most bytes written to one streaming connection in one go when it is behind (an SSE chunk,
    /// a round of WebSocket frames), and the size of each connection's HTTP/1 write buffer: a
    /// client that stopped reading pins at most about twice this in the server's memory.
    #[arg(long, env = "FEEDLAB_MAX_WRITE_BYTES", default_value_t = 16 * 1024, value_parser = clap::value_parser!(u64).range(1..=64 * 1024 * 1024))]
    pub max_write_bytes: u64,

    /// How long a streaming connection may go with nothing sent before it gets a heartbeat (an
    /// SSE comment, a WebSocket ping); a busy connection gets none. Keep it below the idle
    /// timeout of every proxy in front of the server (nginx `proxy_read_timeout` and AWS ALB:
    /// 60 s).
    #[arg(long, env = "FEEDLAB_HEARTBEAT", default_value = "15s", value_parser = duration_in(Duration::from_millis(1), Duration::from_secs(3600)))]
    pub heartbeat: Duration,

    /// A WebSocket client that sends nothing (no pong, no other frame) for this long after the
    /// first ping it has not answered is closed with 1008. Counted from that ping, not from the
    /// client's last bytes, so a client that only listens to a busy feed is not cut.
    #[arg(long, env = "FEEDLAB_WS_CLIENT_TIMEOUT", default_value = "45s", value_parser = duration_in(Duration::from_millis(1), MAX_DURATION))]
    pub ws_client_timeout: Duration,

    /// How long a long-poll is held when the request gives no `timeout_ms`.
    #[arg(long, env = "FEEDLAB_LONG_POLL_TIMEOUT", default_value = "25s", value_parser = duration_in(Duration::from_millis(1), MAX_DURATION))]
    pub long_poll_timeout: Duration,

    /// Largest `timeout_ms` a long-poll may ask for; more is refused with 400.
    #[arg(long, env = "FEEDLAB_LONG_POLL_MAX", default_value = "120s", value_parser = duration_in(Duration::from_millis(1), MAX_DURATION))]
    pub long_poll_max: Duration,

    /// Origins (scheme://host[:port]) allowed to open WebSockets and read the HTTP transports
    /// cross-site, besides the server's own. Repeatable.
    #[arg(
        long = "allowed-origin",
        env = "FEEDLAB_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Shared secret required on every transport and on publishing, for clients that need more
    /// than the `Origin` check: `?token=…`, `Authorization: Bearer …`, or on a WebSocket a first
    /// message `{"op":"auth","token":…}`. Compared in constant time. Unset: no token needed.
    #[arg(long, env = "FEEDLAB_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,

    /// Largest `POST /publish` body; more is refused with 413.
    #[arg(long, env = "FEEDLAB_MAX_PUBLISH_BYTES", default_value_t = 64 * 1024, value_parser = count_in(0, MAX_MESSAGE_BYTES))]
    pub max_publish_bytes: usize,

    /// A `POST /publish` body must arrive in full within this time after its request head, or
    /// the request gets 408 and the connection is closed (a body trickled byte by byte would
    /// otherwise hold it open for ever).
    #[arg(long, env = "FEEDLAB_BODY_TIMEOUT", default_value = "10s", value_parser = duration_in(Duration::from_millis(1), MAX_DURATION))]
    pub body_timeout: Duration,

    /// How long a publish's `Idempotency-Key` (WebSocket: `id`) is remembered: a retry with the
    /// same key within this time gets the first answer and adds nothing. Kept with the event
    /// (`--data-dir`: survives restarts; `--redis`: shared by instances; else in memory only).
    #[arg(long, env = "FEEDLAB_IDEMPOTENCY_WINDOW", default_value = "10m", value_parser = duration_in(Duration::from_millis(1), MAX_DURATION))]
    pub idempotency_window: Duration,

    /// Most idempotency keys remembered (about 80 bytes each in memory; in Redis with
    /// `--redis`); past it the oldest is forgotten before its window ends.
    #[arg(long, env = "FEEDLAB_IDEMPOTENCY_MAX_KEYS", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub idempotency_max_keys: u64,

    /// Longest `Idempotency-Key` (or WebSocket `id`) accepted; longer is refused with 400
    /// (WebSocket: close 1008).
    #[arg(long, env = "FEEDLAB_IDEMPOTENCY_KEY_MAX_BYTES", default_value_t = 255, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub idempotency_key_max_bytes: u64,

    /// Largest WebSocket message (a frame, or a fragmented message reassembled); more closes the
    /// connection with 1009.
    #[arg(long, env = "FEEDLAB_WS_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024, value_parser = count_in(1, MAX_MESSAGE_BYTES))]
    pub ws_max_message_bytes: usize,

    /// Most named feeds (`?feed=NAME`, e.g. one per job) open at once; a new name past it is
    /// refused with 429 unless an idle one can go. With `--feed-retain` and
    /// `--max-publish-bytes`, what named feeds can make the server hold.
    #[arg(long, env = "FEEDLAB_MAX_FEEDS", default_value_t = 10_000, value_parser = count_in(1, 1_000_000))]
    pub max_feeds: usize,

    /// Events each named feed keeps for resume; an older cursor gets what remains and a
    /// `missed` count, as on the main feed (`--retain`).
    #[arg(long, env = "FEEDLAB_FEED_RETAIN", default_value_t = 1_000, value_parser = count_in(1, 1_000_000))]
    pub feed_retain: usize,

    /// A named feed that no connection waits on and that nobody published to or read for this
    /// long is dropped, with its events (an ended job's log included).
    #[arg(long, env = "FEEDLAB_FEED_IDLE", default_value = "5m", value_parser = duration_in(Duration::from_millis(1), MAX_DURATION))]
    pub feed_idle: Duration,

    /// Most inputs (`{"op":"input"}` or binary messages on a WebSocket, `POST /input`) one
    /// connection (one `client` for `POST /input`) may send per second, with a burst of as
    /// many; past it an input is dropped, not acknowledged, and counted (`/stats` `inputs`),
    /// and `POST /input` answers 429.
    #[arg(long, env = "FEEDLAB_MAX_INPUT_RATE", default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_input_rate: u32,

    /// Largest input: a bigger one closes the WebSocket with 1009 and is answered 413 on
    /// `POST /input`.
    #[arg(long, env = "FEEDLAB_MAX_INPUT_BYTES", default_value_t = 1024, value_parser = count_in(1, MAX_MESSAGE_BYTES))]
    pub max_input_bytes: usize,

    /// permessage-deflate (RFC 7692) for WebSocket clients that offer it (every browser does):
    /// `shared` compresses each event once, on its own, and sends every deflate client the same
    /// frame (no per-connection state); `context` keeps a compressor per connection (fewer
    /// bytes, a compression per delivery, `4 × 2^bits + 192 KiB` per connection); `off` never
    /// negotiates it. See the book's Compression chapter (docs/src/guide/compression.md).
    #[arg(long, env = "FEEDLAB_WS_DEFLATE", value_enum, default_value_t = WsDeflate::Shared)]
    pub ws_deflate: WsDeflate,

    /// LZ77 window of the server's compressors, in bits (9..=15; zlib cannot make RFC 7692's
    /// 8): a `context` connection's compressor holds `4 × 2^bits + 192 KiB`. A client asking for
    /// a smaller window (`server_max_window_bits`) gets that.
    #[arg(long, env = "FEEDLAB_WS_DEFLATE_WINDOW_BITS", default_value_t = 15, value_parser = clap::value_parser!(u8).range(9..=15))]
    pub ws_deflate_window_bits: u8,

    /// zlib compression level of WebSocket messages (1 fastest .. 9 smallest).
    #[arg(long, env = "FEEDLAB_WS_DEFLATE_LEVEL", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub ws_deflate_level: u32,

    /// WebSocket messages shorter than this are sent uncompressed (RSV1 clear) even when
    /// deflate was negotiated: below it, deflate's block overhead eats the saving.
    #[arg(long, env = "FEEDLAB_WS_DEFLATE_MIN_BYTES", default_value_t = 64, value_parser = count_in(0, MAX_MESSAGE_BYTES))]
    pub ws_deflate_min_bytes: usize,

    /// Most open streaming connections (SSE, WebSocket, held long-polls) at once; past it,
    /// HTTP gets 503 with `Retry-After` and WebSocket handshakes are refused the same way.
    #[arg(long, env = "FEEDLAB_MAX_CONNECTIONS", default_value_t = 50_000, value_parser = count_in(1, 10_000_000))]
    pub max_connections: usize,

    /// Most open streaming connections of one transport (SSE, WebSocket, held long-polls, or
    /// WebTransport sessions: its three variants share one count, since a QUIC connection is
    /// checked at its first packet, before its CONNECT names the variant).
    #[arg(
        long,
        env = "FEEDLAB_MAX_TRANSPORT_CONNECTIONS",
        default_value_t = 50_000,
        value_parser = count_in(1, 10_000_000)
    )]
    pub max_transport_connections: usize,

    /// Most open streaming connections from one client IP; 0 turns the check off (the default,
    /// since behind a reverse proxy every client shares the proxy's address).
    #[arg(long, env = "FEEDLAB_MAX_CONNECTIONS_PER_IP", default_value_t = 0, value_parser = count_in(0, 10_000_000))]
    pub max_connections_per_ip: usize,

    /// A streaming connection (SSE, WebSocket) further than this many events behind the head is
    /// disconnected with a reason (WS close 1013, SSE `event: overflow`) and resumes from its
    /// cursor. Must stay below `--retain`, so the resume loses nothing. Default: half of `--retain`.
    #[arg(long, env = "FEEDLAB_MAX_LAG", value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    pub max_lag: Option<u64>,

    /// Longest a write may wait on a client that stopped reading (WebSocket sends, and the
    /// kernel's TCP_USER_TIMEOUT on every connection); then the connection is dropped.
    #[arg(long, env = "FEEDLAB_SEND_TIMEOUT", default_value = "30s", value_parser = duration_in(Duration::from_millis(1), MAX_DURATION))]
    pub send_timeout: Duration,

    /// A new connection must deliver its complete request head within this time, or it gets 408
    /// and is closed: the slowloris defence. One deadline whichever path reads the head (the
    /// fast path waits for the whole head itself); on TLS the handshake gets the same time of
    /// its own.
    #[arg(long, env = "FEEDLAB_REQUEST_TIMEOUT", default_value = "5s", value_parser = duration_in(Duration::from_millis(1), MAX_DURATION))]
    pub request_timeout: Duration,

    /// After a connection's last response (or a WebSocket close handshake), how long the server
    /// waits for the client to close its side before dropping the connection. RFC 6455 wants the
    /// server to be the one that closes TCP, promptly. At least 600ms: actix measures this
    /// deadline on a clock it refreshes every 500 ms, and a shorter one can fall in the past and
    /// leave the connection open.
    #[arg(long, env = "FEEDLAB_CLOSE_TIMEOUT", default_value = "600ms", value_parser = duration_in(Duration::from_millis(600), MAX_DURATION))]
    pub close_timeout: Duration,

    /// Connections the kernel queues for accepting (`listen(2)` backlog). A burst of clients
    /// larger than this waits for a SYN retry (about a second) instead of connecting at once.
    #[arg(long, env = "FEEDLAB_BACKLOG", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65_535))]
    pub backlog: u32,

    /// An idle keep-alive connection (no request in flight) is closed after this time.
    #[arg(long, env = "FEEDLAB_KEEP_ALIVE", default_value = "30s", value_parser = duration_in(Duration::from_millis(1), MAX_DURATION))]
    pub keep_alive: Duration,

    /// Also accept HTTP/2 with prior knowledge (h2c) on the plain port. Off by default: actix's
    /// protocol detection waits for a connection's first bytes without a timeout, so with h2c on,
    /// a connection that never sends anything is held until the client leaves (slowloris).
    #[arg(long, env = "FEEDLAB_H2C")]
    pub h2c: bool,

    /// PEM certificate chain: serve `https://` and `wss://` (HTTP/2 by ALPN) on `--bind`.
    #[arg(
        long,
        env = "FEEDLAB_TLS_CERT",
        requires = "tls_key",
        conflicts_with = "tls_self_signed"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for `--tls-cert`.
    #[arg(long, env = "FEEDLAB_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve TLS with a certificate for localhost, 127.0.0.1 and ::1 generated at start (its
    /// SHA-256 fingerprint is printed). For demos and tests.
    #[arg(long, env = "FEEDLAB_TLS_SELF_SIGNED")]
    pub tls_self_signed: bool,

    /// Where to write the generated certificate (PEM), for clients' `--ca`.
    #[arg(long, env = "FEEDLAB_TLS_WRITE_CERT", requires = "tls_self_signed")]
    pub tls_write_cert: Option<PathBuf>,

    /// Clients (`client=ID`) whose per-client accounting is kept; the least recently seen is
    /// forgotten past this.
    #[arg(long, env = "FEEDLAB_MAX_TRACKED_CLIENTS", default_value_t = 1_024, value_parser = count_in(1, 100_000))]
    pub max_tracked_clients: usize,

    /// Write and read times kept per tracked client and transport, for the page's radio
    /// figures (`GET /stats/client/ID/radio`): a ring of the last N, 12 bytes each, grown as used.
    #[arg(long, env = "FEEDLAB_CLIENT_TIMINGS", default_value_t = 256, value_parser = count_in(2, 4_096))]
    pub client_timings: usize,

    /// Worker threads serving connections (default: one per CPU core).
    #[arg(long, env = "FEEDLAB_WORKERS", value_parser = count_in(1, 1_024))]
    pub workers: Option<usize>,

    /// Serve `GET /sse`, WebSocket upgrades on `/ws` or `/ws/echo`, `GET /poll` and
    /// `GET /long-poll` on plain-HTTP/1.1 connections on the socket itself: each event's shared
    /// bytes (or a poll's answer) go out in one write, with no per-connection buffers; a polling
    /// connection stays here from request to request until one is not the fast path's. `false`
    /// leaves every connection to actix-web (for comparison). Over TLS the same after rustls'
    /// handshake, but a client that picks HTTP/2 by ALPN is actix-web's; `--h2c` listeners
    /// always use actix-web.
    #[arg(long, env = "FEEDLAB_FAST_PATH", default_value_t = true, action = clap::ArgAction::Set)]
    pub fast_path: bool,

    /// Who may change the ticker through `POST /control`: `auto` allows it when the server
    /// listens on loopback only.
    #[arg(long, env = "FEEDLAB_FEED_CONTROL", value_enum, default_value_t = FeedControl::Auto)]
    pub feed_control: FeedControl,

    /// Serve the page from this directory instead of the copy built into the binary.
    #[arg(long, env = "FEEDLAB_WEB_DIR")]
    pub web_dir: Option<PathBuf>,

    /// Directory of load-generator reports, served under `/results/`.
    #[arg(long, env = "FEEDLAB_RESULTS_DIR", default_value = "results")]
    pub results_dir: PathBuf,

    /// Time given to open connections to finish after SIGINT/SIGTERM.
    #[arg(long, env = "FEEDLAB_SHUTDOWN_GRACE", default_value = "3s", value_parser = duration_in(Duration::ZERO, MAX_DURATION))]
    pub shutdown_grace: Duration,

    // The reconnect-storm defences: a deploy or a crash drops every connection at once, and
    // unless something spreads them out, every client comes back in the same second.
    /// Shortest `retry:` hint an SSE stream gets; each stream's is drawn uniformly between this
    /// and `--sse-retry-max`, so EventSource clients dropped together do not all come back
    /// together.
    #[arg(long, env = "FEEDLAB_SSE_RETRY_MIN", default_value = "1s", value_parser = duration_in(Duration::ZERO, MAX_DURATION))]
    pub sse_retry_min: Duration,

    /// Longest `retry:` hint an SSE stream gets (at least `--sse-retry-min`; equal: no jitter).
    #[arg(long, env = "FEEDLAB_SSE_RETRY_MAX", default_value = "5s", value_parser = duration_in(Duration::ZERO, MAX_DURATION))]
    pub sse_retry_max: Duration,

    /// New connections accepted per second (a token bucket holding one second's worth); past
    /// it every request on a new connection, upgrades included, gets 503 with a `Retry-After`
    /// from `--new-connections-retry-after-min`..`-max` and the connection is closed
    /// (`/healthz`, `/stats` and `/metrics` are still answered). Counts TCP connections, so a
    /// kept-alive poller is charged once. 0 turns it off (the default: the right rate depends on
    /// the machine and on how many instances share the clients).
    #[arg(long, env = "FEEDLAB_MAX_NEW_CONNECTIONS_PER_SEC", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub max_new_connections_per_sec: u32,

    /// Fewest whole seconds a `Retry-After` past `--max-new-connections-per-sec` says; each
    /// refusal's is drawn uniformly up to `--new-connections-retry-after-max`.
    #[arg(long, env = "FEEDLAB_NEW_CONNECTIONS_RETRY_AFTER_MIN", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub new_connections_retry_after_min: u64,

    /// Most whole seconds a `Retry-After` past `--max-new-connections-per-sec` says.
    #[arg(long, env = "FEEDLAB_NEW_CONNECTIONS_RETRY_AFTER_MAX", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub new_connections_retry_after_max: u64,

    /// On SIGINT/SIGTERM, streams (SSE, WebSocket, held long-polls) are ended one by one at
    /// times spread uniformly over this window instead of all at once, so their clients come
    /// back spread out. At most `--shutdown-grace`; default: half of it (the other half is left
    /// for close handshakes and requests in flight).
    #[arg(long, env = "FEEDLAB_SHUTDOWN_DRAIN", value_parser = duration_in(Duration::ZERO, MAX_DURATION))]
    pub shutdown_drain: Option<Duration>,

    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `server=debug`. actix-http's
    /// connection dispatcher stays silent unless the filter names `actix_http` (it would log
    /// every WebSocket closed through actix-web as an error).
    #[arg(long, env = "FEEDLAB_LOG", default_value = "info")]
    pub log: String,

    // The QUIC listener (`--quic*`): WebTransport beside the TCP listener.
    #[command(flatten)]
    pub quic: QuicConfig,
}

/// `--ws-deflate`: how WebSocket messages are compressed when a client offers permessage-deflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WsDeflate {
    /// Each event compressed once, on its own (`server_no_context_takeover`), shared by every
    /// deflate client.
    Shared,
    /// A compressor per connection, with context takeover.
    Context,
    /// permessage-deflate is never negotiated.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FeedControl {
    /// Allowed when the server is bound to a loopback address.
    Auto,
    On,
    Off,
}

impl Config {
    /// Whether `POST /control` may change the ticker.
    pub fn control_enabled(&self) -> bool {
        match self.feed_control {
            FeedControl::On => true,
            FeedControl::Off => false,
            FeedControl::Auto => self.bind.ip().is_loopback(),
        }
    }

    /// Settings a test or an embedding program starts from: the defaults with `args` applied.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Self::try_parse_from(
            std::iter::once("server".into()).chain(args.into_iter().map(Into::into)),
        )
    }

    /// `--max-lag`, or half of `--retain`.
    pub fn max_lag(&self) -> u64 {
        self.max_lag.unwrap_or(self.retain / 2)
    }

    /// `--shutdown-drain`, or half of `--shutdown-grace`.
    pub fn shutdown_drain(&self) -> Duration {
        self.shutdown_drain.unwrap_or(self.shutdown_grace / 2)
    }

    /// Whether `--bind` serves TLS.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() || self.tls_self_signed
    }

    /// Checks relations between settings that clap cannot express.
    pub fn validate(&self) -> Result<(), String> {
        self.quic.validate(self)?;
        if self.max_lag() >= self.retain {
            return Err(format!(
                "--max-lag ({}) must be below --retain ({}), or a disconnected client could not resume",
                self.max_lag(),
                self.retain
            ));
        }
        if self.long_poll_timeout > self.long_poll_max {
            return Err("--long-poll-timeout must not exceed --long-poll-max".into());
        }
        if self.sse_retry_min > self.sse_retry_max {
            return Err(format!(
                "--sse-retry-min ({}) must not exceed --sse-retry-max ({})",
                humantime::format_duration(self.sse_retry_min),
                humantime::format_duration(self.sse_retry_max)
            ));
        }
        if self.new_connections_retry_after_min > self.new_connections_retry_after_max {
            return Err(format!(
                "--new-connections-retry-after-min ({}) must not exceed --new-connections-retry-after-max ({})",
                self.new_connections_retry_after_min, self.new_connections_retry_after_max
            ));
        }
        if self.shutdown_drain() > self.shutdown_grace {
            return Err(format!(
                "--shutdown-drain ({}) must be between 0s and --shutdown-grace ({})",
                humantime::format_duration(self.shutdown_drain()),
                humantime::format_duration(self.shutdown_grace)
            ));
        }
        Ok(())
    }
}

/// The ticker's rate: 0 (off), or between [`MIN_TICKER_RATE`] and [`MAX_TICKER_RATE`]; the
/// reason names the range. `/control` checks with the same function.
pub fn check_rate(rate: f64) -> Result<f64, String> {
    if rate == 0.0 || (MIN_TICKER_RATE..=MAX_TICKER_RATE).contains(&rate) {
        Ok(rate.abs())
    } else {
        Err(format!(
            "rate must be 0 (off) or between {MIN_TICKER_RATE} and {MAX_TICKER_RATE} events per second, got {rate}"
        ))
    }
}

/// The ticker's padding: at most [`MAX_TICKER_PAYLOAD`] bytes. `/control` checks with it too.
pub fn check_payload(bytes: usize) -> Result<usize, String> {
    if bytes > MAX_TICKER_PAYLOAD {
        return Err(format!(
            "payload_bytes must be between 0 and {MAX_TICKER_PAYLOAD}, got {bytes}"
        ));
    }
    Ok(bytes)
}

fn parse_rate(s: &str) -> Result<f64, String> {
    check_rate(s.parse().map_err(|_| format!("{s:?} is not a number"))?)
}

fn parse_payload(s: &str) -> Result<usize, String> {
    check_payload(
        s.parse()
            .map_err(|_| format!("{s:?} is not a byte count"))?,
    )
}

/// A duration flag's parser: humantime syntax, between `min` and `max`.
pub(crate) fn duration_in(
    min: Duration,
    max: Duration,
) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    move |s| {
        let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
        if d < min || d > max {
            return Err(format!(
                "must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ));
        }
        Ok(d)
    }
}

/// A count flag's parser: an integer between `min` and `max`.
fn count_in(min: usize, max: usize) -> impl Fn(&str) -> Result<usize, String> + Clone {
    move |s| {
        let n: usize = s.parse().map_err(|_| format!("{s:?} is not a count"))?;
        if !(min..=max).contains(&n) {
            return Err(format!("must be between {min} and {max}"));
        }
        Ok(n)
    }
}

/// The QUIC listener's settings (`--quic*`), part of [`Config`]. Here rather than in [`crate::quic`],
/// so the settings need nothing of the listener; its methods are there.
#[derive(Debug, Clone, clap::Args)]
pub struct QuicConfig {
    /// Also serve QUIC on `--bind`'s port over UDP: WebTransport at `/wt`. Needs TLS
    /// (`--tls-cert` or `--tls-self-signed`); off by default, so runs over TCP are unchanged.
    #[arg(long = "quic", env = "FEEDLAB_QUIC")]
    pub enabled: bool,

    /// Serve HTTP/3 on the QUIC endpoint instead of WebTransport: `/poll`, `/long-poll` and
    /// `/sse` as over TCP, every other route (the page, `/stats`, ...) through the same app, and
    /// `Alt-Svc: h3=":PORT"` on actix-web's TCP responses. One or the
    /// other: the HTTP/3 crates cannot share a connection, and nothing tells them apart before
    /// one of them has read its streams (see the module docs).
    #[arg(long = "quic-http3", env = "FEEDLAB_QUIC_HTTP3", requires = "enabled")]
    pub http3: bool,

    /// Most bytes of an HTTP/3 request's header fields (its decoded field section); a larger
    /// request is refused by the HTTP/3 layer before any handler sees it.
    #[arg(long, env = "FEEDLAB_QUIC_MAX_HEADER_BYTES", default_value_t = 16 * 1024, value_parser = clap::value_parser!(u64).range(1_024..=(1 << 20)))]
    pub quic_max_header_bytes: u64,

    /// Most bidirectional streams a client may have open at once on one QUIC connection: the
    /// WebTransport CONNECT stream and its talk-back messages in flight. A client opening more
    /// waits for the server to finish one (QUIC stream credit), so it can never make the server
    /// hold more.
    #[arg(long, env = "FEEDLAB_QUIC_MAX_BIDI_STREAMS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(2..=1_024))]
    pub quic_max_bidi_streams: u32,

    /// Most unidirectional streams a client may have open at once on one QUIC connection:
    /// HTTP/3 needs three (control and the two QPACK streams); others are stopped on arrival,
    /// since a feed client sends nothing on them.
    #[arg(long, env = "FEEDLAB_QUIC_MAX_UNI_STREAMS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(3..=1_024))]
    pub quic_max_uni_streams: u32,

    /// Bytes a client may send on one stream before the server reads them (the per-stream
    /// flow-control window).
    #[arg(long, env = "FEEDLAB_QUIC_STREAM_WINDOW", default_value_t = 64 * 1024, value_parser = clap::value_parser!(u32).range(1_024..=(64 << 20)))]
    pub quic_stream_window: u32,

    /// Bytes a client may send on all streams of one connection before the server reads them
    /// (the connection's flow-control window).
    #[arg(long, env = "FEEDLAB_QUIC_CONNECTION_WINDOW", default_value_t = 256 * 1024, value_parser = clap::value_parser!(u32).range(1_024..=(256 << 20)))]
    pub quic_connection_window: u32,

    /// Bytes the server keeps written but not yet acknowledged on one connection: what a client
    /// that stopped reading pins before writes wait (and `--send-timeout` lets it go).
    #[arg(long, env = "FEEDLAB_QUIC_SEND_WINDOW", default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1_024..=(256 << 20)))]
    pub quic_send_window: u64,

    /// Bytes of QUIC datagrams kept per connection, received and not yet read, and queued to
    /// send. `/wt?mode=datagrams` sends an event as a datagram only while it fits in what is
    /// left of this queue; otherwise it is not sent, and the client recovers it by id over a
    /// stream. Received datagrams are dropped (a feed client sends none).
    #[arg(long, env = "FEEDLAB_QUIC_DATAGRAM_BUFFER", default_value_t = 64 * 1024, value_parser = clap::value_parser!(u32).range(0..=(16 << 20)))]
    pub quic_datagram_buffer: u32,

    /// Largest event `/wt?mode=datagrams` sends as a datagram, bytes of its envelope; larger
    /// ones, and any larger than the path allows (quinn's current datagram size), go on the
    /// session's control stream instead. 0 sends every event on the stream.
    #[arg(long, env = "FEEDLAB_WT_DATAGRAM_MAX_BYTES", default_value_t = 65_535, value_parser = clap::value_parser!(u32).range(0..=65_535))]
    pub wt_datagram_max_bytes: u32,

    /// How often `/wt?mode=datagrams` tells the client the head it has sent up to
    /// (`{"op":"head","seq":N}` on the control stream), while it sends datagrams: the last
    /// events' loss shows only so, as nothing comes after them. At most one such line per
    /// period, none on a quiet session.
    #[arg(long, env = "FEEDLAB_WT_HEAD_INTERVAL", default_value = "100ms", value_parser = duration_in(Duration::from_millis(10), Duration::from_secs(60)))]
    pub wt_head_interval: Duration,

    /// Most per-event streams `/wt?mode=streams` keeps open to one session (written, not yet
    /// acknowledged by the client). At the bound the next event waits for one to end; a wait
    /// past `--send-timeout` (also for the client's own stream credit) closes the session with
    /// 1013, as a slow consumer.
    #[arg(long, env = "FEEDLAB_WT_MAX_EVENT_STREAMS", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4_096))]
    pub wt_max_event_streams: u32,

    /// A QUIC connection that carries nothing (not even an acknowledgement) for this long is
    /// closed. Above `--heartbeat`, so a quiet feed's heartbeats keep its sessions open.
    #[arg(long, env = "FEEDLAB_QUIC_IDLE_TIMEOUT", default_value = "30s", value_parser = duration_in(Duration::from_millis(100), Duration::from_secs(600)))]
    pub quic_idle_timeout: Duration,

    /// Pin the largest UDP payload of QUIC packets to this many bytes (1200–65527), with
    /// path-MTU discovery off and an initial congestion window of ten such packets, as Linux
    /// TCP's. 0, the default: quinn's discovery, from 1200 bytes up. For measurements beside
    /// TCP on a link of known MTU (loadgen passes 1472 for its 1500-byte link).
    #[arg(long, env = "FEEDLAB_QUIC_MTU", default_value_t = 0, value_parser = quic_mtu)]
    pub quic_mtu: u16,

    /// Bytes of kernel receive buffer asked for the QUIC listener's UDP socket
    /// (`SO_RCVBUF`): what holds the datagrams that arrive while the server is busy. A burst
    /// of handshakes (each client's Initial padded to 1,200 bytes, twice with the Retry)
    /// overflowed the system's default (about 200 KiB) and the dropped ones failed to connect.
    /// Past `net.core.rmem_max` the server asks again with `SO_RCVBUFFORCE` (needs
    /// CAP_NET_ADMIN); the size granted is in the start-up log. 0 keeps the
    /// system's default; otherwise 64 KiB (65536) to 256 MiB (268435456).
    #[arg(long, env = "FEEDLAB_QUIC_RECV_BUFFER", default_value_t = 8 << 20, value_parser = socket_buffer)]
    pub quic_recv_buffer: u32,

    /// Bytes of kernel send buffer asked for the QUIC listener's UDP socket (`SO_SNDBUF`):
    /// what queues the datagrams of a burst (handshakes, an event fanned out to thousands)
    /// before the kernel sends them; a full one makes the server's sends wait. As
    /// `--quic-recv-buffer`: `net.core.wmem_max` or `SO_SNDBUFFORCE`, the size granted logged,
    /// 0 keeps the system's default, otherwise 64 KiB to 256 MiB.
    #[arg(long, env = "FEEDLAB_QUIC_SEND_BUFFER", default_value_t = 8 << 20, value_parser = socket_buffer)]
    pub quic_send_buffer: u32,

    /// How long each certificate QUIC serves is valid, from when it is made, when the server
    /// makes its own (`--tls-self-signed`): a second certificate beside the TCP one, on the same
    /// ECDSA P-256 key, so a page can open WebTransport to it by its hash
    /// (`serverCertificateHashes`, which browsers take only for a certificate valid for at most
    /// 14 days). It is renewed before it expires (`--quic-cert-renew-before`). From 10s (short
    /// ones are for testing the renewal) to 14d.
    #[arg(long, env = "FEEDLAB_QUIC_CERT_VALIDITY", default_value = "13d", value_parser = cert_validity)]
    pub quic_cert_validity: Duration,

    /// Renew the QUIC certificate the server made (`--quic-cert-validity`) once less than this
    /// is left of it: a new one on the same key is served to new connections from then on
    /// (sessions already open keep theirs), and `GET /quic` lists the new hash first and the
    /// old one until it expires. Default: a quarter of `--quic-cert-validity` (3d 6h of 13d).
    /// At most half of it, so a certificate serves at least as long as it is listed after.
    #[arg(long, env = "FEEDLAB_QUIC_CERT_RENEW_BEFORE", value_parser = duration_in(Duration::from_secs(1), MAX_QUIC_CERT_VALIDITY))]
    pub quic_cert_renew_before: Option<Duration>,
}

impl QuicConfig {
    /// `--quic-cert-renew-before`, or its default: a quarter of `--quic-cert-validity`.
    pub fn cert_renew_before(&self) -> Duration {
        self.quic_cert_renew_before
            .unwrap_or(self.quic_cert_validity / 4)
    }
}

/// Smallest `--quic-recv-buffer` and `--quic-send-buffer` other than 0: below it a socket
/// would hold fewer than fifty full-size datagrams.
pub const MIN_SOCKET_BUFFER: u32 = 64 << 10;

/// Largest `--quic-recv-buffer` and `--quic-send-buffer`: kernel memory the socket may pin
/// (Linux doubles what is asked, for its bookkeeping); 256 MiB holds about 200,000 full-size
/// handshake packets, far past any burst the listener meets.
pub const MAX_SOCKET_BUFFER: u32 = 256 << 20;

/// `--quic-recv-buffer` and `--quic-send-buffer`: 0, or bytes within
/// [`MIN_SOCKET_BUFFER`]..=[`MAX_SOCKET_BUFFER`], with the reason when outside.
fn socket_buffer(s: &str) -> Result<u32, String> {
    let n: u64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size in bytes (0, or 65536 to 268435456)"))?;
    if n == 0 {
        return Ok(0);
    }
    if n < u64::from(MIN_SOCKET_BUFFER) {
        return Err(format!(
            "{n} bytes is below 64 KiB (65536), fewer than fifty full-size datagrams; 0 keeps the system's default"
        ));
    }
    if n > u64::from(MAX_SOCKET_BUFFER) {
        return Err(format!(
            "{n} bytes is past 256 MiB (268435456): kernel memory pinned by one socket, and far \
             more than any burst of handshakes needs"
        ));
    }
    // In range, so it fits.
    Ok(n as u32)
}

fn quic_mtu(s: &str) -> Result<u16, String> {
    let n: u16 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a size in bytes (0, or 1200 to 65527)"))?;
    if n != 0 && !(1_200..=65_527).contains(&n) {
        return Err(format!(
            "{n} is outside 1200..=65527 (QUIC's least packet size to UDP's largest payload); 0 keeps discovery"
        ));
    }
    Ok(n)
}

/// The most a certificate accepted by its hash may be valid for (WebTransport's
/// `serverCertificateHashes`: "the total length of the validity period MUST NOT exceed two weeks").
pub const MAX_QUIC_CERT_VALIDITY: Duration = Duration::from_secs(14 * 24 * 3600);

/// `--quic-cert-validity`: 10 seconds to 14 days, with why the ceiling is there.
fn cert_validity(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d > MAX_QUIC_CERT_VALIDITY {
        return Err(format!(
            "{} is over 14 days: browsers accept a certificate by its hash (WebTransport's \
             serverCertificateHashes) only when it is valid for at most 14 days",
            humantime::format_duration(d)
        ));
    }
    if d < Duration::from_secs(10) {
        return Err("must be at least 10s".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ones() {
        let c = Config::from_args::<_, &str>([]).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.rate, 2.0);
        assert_eq!(c.retain, 10_000);
        assert_eq!(c.heartbeat, Duration::from_secs(15));
        assert_eq!(c.long_poll_timeout, Duration::from_secs(25));
        assert!(c.control_enabled());
        c.validate().unwrap();
    }

    #[test]
    fn control_is_off_by_default_on_a_public_address() {
        let c = Config::from_args(["--bind", "0.0.0.0:8080"]).unwrap();
        assert!(!c.control_enabled());
    }

    #[test]
    fn the_quic_socket_buffers_are_8_mib_unless_told_and_absurd_sizes_are_refused() {
        let c = Config::from_args(Vec::<String>::new()).unwrap();
        assert_eq!(
            (c.quic.quic_recv_buffer, c.quic.quic_send_buffer),
            (8 << 20, 8 << 20)
        );
        let c =
            Config::from_args(["--quic-recv-buffer", "0", "--quic-send-buffer", "65536"]).unwrap();
        assert_eq!(
            (c.quic.quic_recv_buffer, c.quic.quic_send_buffer),
            (0, 65_536)
        );
        for (flag, value, reason) in [
            ("--quic-recv-buffer", "100000000000", "past 256 MiB"),
            ("--quic-send-buffer", "300000000", "past 256 MiB"),
            ("--quic-recv-buffer", "1000", "below 64 KiB"),
            ("--quic-recv-buffer", "8MiB", "not a size in bytes"),
        ] {
            let e = Config::from_args([flag, value]).unwrap_err().to_string();
            assert!(e.contains(reason), "{flag} {value}: {e}");
        }
    }

    #[test]
    fn quic_cert_validity_is_at_most_two_weeks() {
        let c = Config::from_args::<_, &str>([]).unwrap();
        assert_eq!(
            c.quic.quic_cert_validity,
            Duration::from_secs(13 * 24 * 3600)
        );
        let c = Config::from_args(["--quic-cert-validity", "14d"]).unwrap();
        assert_eq!(c.quic.quic_cert_validity, MAX_QUIC_CERT_VALIDITY);
        let e = Config::from_args(["--quic-cert-validity", "15d"]).unwrap_err();
        assert!(e.to_string().contains("at most 14 days"), "{e}");
    }

    #[test]
    fn the_quic_cert_is_renewed_at_a_quarter_of_its_validity_unless_told() {
        let c = Config::from_args::<_, &str>([]).unwrap();
        assert_eq!(c.quic.cert_renew_before(), Duration::from_secs(78 * 3600));
        let c = Config::from_args([
            "--quic-cert-validity",
            "1d",
            "--quic-cert-renew-before",
            "2h",
        ])
        .unwrap();
        assert_eq!(c.quic.cert_renew_before(), Duration::from_secs(2 * 3600));
        let c = Config::from_args([
            "--tls-self-signed",
            "--quic",
            "--quic-cert-validity",
            "1d",
            "--quic-cert-renew-before",
            "13h",
        ])
        .unwrap();
        let e = c.validate().unwrap_err();
        assert!(e.contains("--quic-cert-renew-before"), "{e}");
    }

    #[test]
    fn rejects_inconsistent_timeouts() {
        assert!(Config::from_args(["--rate", "-1"]).is_err());
        let c =
            Config::from_args(["--long-poll-timeout", "30s", "--long-poll-max", "10s"]).unwrap();
        assert!(c.validate().is_err());
    }

    #[test]
    fn the_client_timeout_may_be_shorter_than_the_heartbeat() {
        // It counts from a ping, so it needs no room for the quiet interval before one.
        let c = Config::from_args(["--heartbeat", "30s", "--ws-client-timeout", "10s"]).unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn storm_defences_refuse_inverted_ranges_and_a_drain_past_the_grace() {
        let c = Config::from_args::<_, &str>([]).unwrap();
        assert_eq!(c.shutdown_drain(), c.shutdown_grace / 2);
        assert_eq!(c.max_new_connections_per_sec, 0);
        for bad in [
            &["--sse-retry-min", "6s"][..],
            &["--new-connections-retry-after-min", "11"],
            &["--shutdown-grace", "2s", "--shutdown-drain", "3s"],
        ] {
            let err = Config::from_args(bad).unwrap().validate().unwrap_err();
            assert!(err.contains("must"), "{bad:?}: {err}");
        }
        for bad in [
            ["--new-connections-retry-after-min", "0"],
            ["--new-connections-retry-after-max", "3601"],
            ["--max-new-connections-per-sec", "-1"],
            ["--shutdown-drain", "2days"],
        ] {
            assert!(Config::from_args(bad).is_err(), "{bad:?}");
        }
        Config::from_args(["--shutdown-grace", "0s"])
            .unwrap()
            .validate()
            .unwrap();
    }

    #[test]
    fn every_flag_value_accepted_is_one_the_server_can_run() {
        for bad in [
            ["--rate", "5e-20"],
            ["--rate", "NaN"],
            ["--rate", "inf"],
            ["--heartbeat", "0s"],
            ["--heartbeat", "1000000years"],
            ["--send-timeout", "400years"],
            ["--request-timeout", "2days"],
            ["--close-timeout", "100ms"],
            ["--body-timeout", "0s"],
            ["--ws-max-message-bytes", "0"],
            ["--ws-max-message-bytes", "18446744073709551615"],
            ["--max-publish-bytes", "300000000"],
            ["--workers", "0"],
            ["--workers", "100000"],
            ["--backlog", "0"],
            ["--max-tracked-clients", "0"],
        ] {
            let err = Config::from_args(bad).unwrap_err().to_string();
            assert!(
                err.contains("between") || err.contains("not a") || err.contains("not in"),
                "{bad:?}: {err}"
            );
        }
        for good in [["--rate", "0"], ["--rate", "0.01"], ["--rate", "10000"]] {
            Config::from_args(good).unwrap();
        }
    }
}
