//! The flags. Every one is also an environment variable (`LOADGEN_*`), so a CI job or a
//! container can set a run up without a command line.
//!
//! Lists (`--clients 10,100,1000`, `--rates 1,10,100`, `--http 1.1,1.0`) make a matrix; the plan
//! ([`crate::plan`]) turns it into phases that run one after another.

use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use server::Transport;

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
    /// Runs the feedlab server in this process (what loadgen spawns when no `server` executable
    /// sits next to it): `loadgen serve -- --bind 127.0.0.1:0 --rate 0`.
    #[command(hide = true)]
    Serve {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Server to drive, e.g. http://127.0.0.1:8080 or https://host:8443 (local or remote).
    /// Without it, loadgen starts its own `server` on a free loopback port and stops it at the
    /// end.
    #[arg(long, env = "LOADGEN_URL")]
    pub url: Option<url::Url>,

    /// PEM file of the CA (or self-signed certificate) to trust for an `https://` --url, instead
    /// of the system's roots.
    #[arg(long, env = "LOADGEN_CA")]
    pub ca: Option<PathBuf>,

    /// Accept any server certificate (`https://` --url). For tests on a trusted machine only:
    /// anyone on the path could pretend to be the server.
    #[arg(long, env = "LOADGEN_INSECURE", conflicts_with = "ca")]
    pub insecure: bool,

    /// TLS for the server loadgen starts: `off`, `on` (https/wss with a self-signed certificate
    /// loadgen trusts), or `both` (every phase plain, then again over TLS, on two servers, for
    /// the plain-vs-TLS comparison). With --url the URL's scheme decides.
    #[arg(long, env = "LOADGEN_TLS", default_value = "off")]
    pub tls: TlsMode,

    /// Transports to drive: `all`, or a comma-separated list of short-poll, long-poll, sse, ws.
    #[arg(
        long,
        env = "LOADGEN_TRANSPORTS",
        value_delimiter = ',',
        default_value = "all"
    )]
    pub transports: Vec<TransportArg>,

    /// Concurrent clients per transport. A comma-separated list runs a sweep.
    #[arg(
        long,
        env = "LOADGEN_CLIENTS",
        value_delimiter = ',',
        default_value = "50"
    )]
    pub clients: Vec<u32>,

    /// How long loadgen publishes, per transport (humantime: `10s`, `2m`).
    #[arg(long, env = "LOADGEN_DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,

    /// Events per second loadgen publishes (`POST /publish`); 0 measures idle connections.
    #[arg(long, env = "LOADGEN_RATE", default_value_t = 20.0, value_parser = parse_rate)]
    pub rate: f64,

    /// A sweep over publish rates, e.g. `1,10,100` (replaces --rate).
    #[arg(long, env = "LOADGEN_RATES", value_delimiter = ',', value_parser = parse_rate)]
    pub rates: Vec<f64>,

    /// Bytes of padding in each published event's `data`.
    #[arg(long, env = "LOADGEN_PAYLOAD_BYTES", default_value_t = 100)]
    pub payload_bytes: usize,

    /// Time between two short polls of one client (0: back to back, to find the ceiling).
    #[arg(long, env = "LOADGEN_POLL_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,

    /// HTTP versions for the HTTP transports: `1.1` keeps one connection per client alive,
    /// `1.0` opens a new TCP connection per request (polling only), `2` runs polling and SSE over
    /// HTTP/2 (one connection per client; ALPN `h2` over TLS, h2c with prior knowledge on plain
    /// http, for which the spawned server gets `--h2c`). The first is the headline; each further
    /// version adds a phase per transport it applies to. WebSockets always use 1.1.
    #[arg(
        long,
        env = "LOADGEN_HTTP",
        value_delimiter = ',',
        default_value = "1.1,1.0"
    )]
    pub http: Vec<HttpVersion>,

    /// Report directory (default `results/<timestamp>/` in the workspace when run by cargo,
    /// else in the current directory).
    #[arg(long, env = "LOADGEN_OUT")]
    pub out: Option<PathBuf>,

    /// Seed of the random start offsets of the pollers (default: random, written in the report).
    #[arg(long, env = "LOADGEN_SEED")]
    pub seed: Option<u64>,

    /// Run the transports together on the same feed instead of one after another (server CPU
    /// and memory can then not be attributed to one transport).
    #[arg(long, env = "LOADGEN_CONCURRENT")]
    pub concurrent: bool,

    /// `timeout_ms` of each long-poll request (the server's `--long-poll-max` bounds it).
    #[arg(long, env = "LOADGEN_LONG_POLL_TIMEOUT", default_value = "25s", value_parser = humantime::parse_duration)]
    pub long_poll_timeout: Duration,

    /// How long clients keep reading after the last publish (default: the larger of 1 s and
    /// twice --poll-interval when short polling runs, else 1 s).
    #[arg(long, env = "LOADGEN_DRAIN", value_parser = humantime::parse_duration)]
    pub drain: Option<Duration>,

    /// Spread client connections over this many source addresses 127.0.0.1, 127.0.0.2, … (only
    /// for a loopback target; 0: as many as the ephemeral port range needs).
    #[arg(long, env = "LOADGEN_SOURCE_IPS", default_value_t = 0)]
    pub source_ips: u8,

    /// Longest wait for all clients to connect before publishing starts.
    #[arg(long, env = "LOADGEN_READY_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub ready_timeout: Duration,

    /// Extra argument for the spawned server (repeatable), e.g. `--server-arg=--workers=2`.
    #[arg(
        long = "server-arg",
        env = "LOADGEN_SERVER_ARGS",
        value_delimiter = ' ',
        allow_hyphen_values = true
    )]
    pub server_args: Vec<String>,

    /// Server executable to spawn (default: `server` next to loadgen, else loadgen itself).
    #[arg(long, env = "LOADGEN_SERVER_BIN")]
    pub server_bin: Option<PathBuf>,

    /// No progress bars and no summary table.
    #[arg(long, env = "LOADGEN_QUIET")]
    pub quiet: bool,
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
        for t in Transport::ALL {
            let chosen = self.transports.iter().any(|a| match a {
                TransportArg::All => true,
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

/// `--http`: how the polling transports use TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum HttpVersion {
    /// A new TCP connection per request (`HTTP/1.0` without keep-alive).
    #[serde(rename = "1.0")]
    Http10,
    /// One keep-alive connection per client.
    #[serde(rename = "1.1")]
    Http11,
    /// One HTTP/2 connection per client, each request (or SSE stream) a stream on it.
    #[serde(rename = "2")]
    Http2,
}

impl HttpVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http10 => "1.0",
            Self::Http11 => "1.1",
            Self::Http2 => "2",
        }
    }
}

impl fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HttpVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().trim_start_matches("HTTP/") {
            "1.0" | "1" => Ok(Self::Http10),
            "1.1" => Ok(Self::Http11),
            "2" | "2.0" | "h2" | "h2c" => Ok(Self::Http2),
            other => Err(format!(
                "unknown HTTP version {other:?} (expected 1.0, 1.1 or 2)"
            )),
        }
    }
}

/// `--tls`: whether the spawned server speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    #[default]
    Off,
    On,
    /// Plain, then TLS.
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

impl FromStr for TlsMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "off" | "false" | "no" => Ok(Self::Off),
            "on" | "true" | "yes" => Ok(Self::On),
            "both" | "compare" => Ok(Self::Both),
            other => Err(format!(
                "unknown --tls {other:?} (expected off, on or both)"
            )),
        }
    }
}

impl Args {
    /// Whether each phase runs plain (`false`) or over TLS (`true`), in order.
    ///
    /// # Errors
    /// When `--tls` contradicts `--url`.
    pub fn tls_modes(&self) -> Result<Vec<bool>, String> {
        match (&self.url, self.tls) {
            (Some(u), TlsMode::Off) => Ok(vec![u.scheme() == "https"]),
            (Some(u), TlsMode::On) if u.scheme() == "https" => Ok(vec![true]),
            (Some(u), _) => Err(format!(
                "--tls {} needs the server loadgen starts (without --url); with --url {u} the scheme decides (https:// for TLS)",
                self.tls.as_str()
            )),
            (None, TlsMode::Off) => Ok(vec![false]),
            (None, TlsMode::On) => Ok(vec![true]),
            (None, TlsMode::Both) => Ok(vec![false, true]),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(a.url.is_none() && !a.concurrent);
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
        assert!(Args::from_args(["--http", "3"]).is_err());
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
    fn serve_takes_the_server_arguments_verbatim() {
        let cli = Cli::try_parse_from(["loadgen", "serve", "--", "--bind", "127.0.0.1:0"]).unwrap();
        match cli.command {
            Some(Command::Serve { args }) => assert_eq!(args, ["--bind", "127.0.0.1:0"]),
            None => panic!("serve expected"),
        }
    }
}
