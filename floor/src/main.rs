//! floor: the fan-out lower bound that feedlab's server is measured against.
//!
//! It serves the same feed (`{"seq":N,"ts":T_us,"data":…}`) over SSE, WebSockets, short and
//! long polling with nothing but tokio, `httparse` and a ring of pre-encoded events: each event
//! is encoded once as a WebSocket frame (whose payload is also the JSON a poll lists) and once
//! as a chunk-framed SSE record; a stream costs one `write` of those shared bytes per wake-up,
//! a poll one `write` of its whole answer. loadgen drives it exactly as it drives the real server,
//! so every cost the real server reports can be read as a ratio to this one.
//!
//! # Layout
//! - `main` (here): flags, runtime, listening line, signals.
//! - [`conn`]: accept and route; keep-alive for `POST /publish`, `/stats`, `/healthz` and polls.
//! - [`poll`]: `/poll` and `/long-poll`, one buffer and one `write` per answer.
//! - [`http`]: `httparse` glue and whole responses.
//! - [`feed`]: the ordered ring and the `watch` of its head; [`encode`] builds its bytes.
//! - [`fanout`]: the one streaming loop; [`sse`] and [`ws`] are what differs per transport.
//! - [`stats`]: counters and `/stats`, in the real server's shape.
//! - [`tls`]: `--tls-cert`/`--tls-key`, rustls on each connection.

mod conn;
mod encode;
mod fanout;
mod feed;
mod http;
mod poll;
mod sse;
mod stats;
mod tls;
mod ws;

use std::{io::Write as _, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};

/// How long open streams get to say goodbye (WS close 1001, SSE end of body) after
/// SIGINT/SIGTERM; well inside the 6 s loadgen waits before it kills a server.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The fan-out floor: a framework-free server of feedlab's feed over short polling, long
/// polling, SSE and WebSockets, the lower bound feedlab's server is compared with.
#[derive(Debug, Parser)]
#[command(name = "floor", version)]
struct Config {
    /// Listen address; port 0 picks a free port (printed on the first stdout line).
    #[arg(long, env = "FLOOR_BIND", default_value = "127.0.0.1:8090")]
    bind: SocketAddr,

    /// Tokio worker threads (default: one per core). 1 runs a current-thread runtime, which is
    /// what `server --workers 1` is compared with.
    #[arg(long, env = "FLOOR_WORKERS", value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,

    /// Events kept for resume (`since=N`, `Last-Event-ID`).
    #[arg(long, env = "FLOOR_RETAIN", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    retain: u64,

    /// Accepted so loadgen's `--server-bin` can start the floor with the flags it gives the
    /// real server: the floor has no ticker (loadgen publishes), so only 0 is valid.
    #[arg(long, env = "FLOOR_RATE", default_value_t = 0, value_parser = no_ticker)]
    rate: u32,

    /// Accepted for the same reason; the floor logs nothing but failures, to stderr.
    #[arg(long, env = "FLOOR_LOG", default_value = "warn")]
    log: String,

    /// PEM certificate chain: serve `https://` and `wss://` (HTTP/1.1 by ALPN), the lower
    /// bound of the real server's TLS.
    #[arg(long, env = "FLOOR_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,

    /// PEM private key for `--tls-cert`.
    #[arg(long, env = "FLOOR_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

fn no_ticker(s: &str) -> Result<u32, String> {
    if s.parse::<f64>().is_ok_and(|r| r == 0.0) {
        Ok(0)
    } else {
        Err("the floor has no ticker (loadgen publishes): only 0 is accepted".into())
    }
}

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let workers = config
        .workers
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let runtime = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    }
    .enable_all()
    .build()
    .context("starting the tokio runtime")?;
    runtime.block_on(serve(&config))?;
    // Streams still open after the grace are dropped with the runtime.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    // Before the address is printed: whoever reads it may signal at once.
    let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls::Acceptor::from_pem_files(cert, key)?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        let scheme = if tls.is_some() { "https" } else { "http" };
        // The first line is what tests and loadgen read to learn the port.
        writeln!(out, "feedlab listening on {scheme}://{addr}/")?;
        writeln!(
            out,
            "  floor: GET /poll?since=N, GET /long-poll?since=N&timeout_ms=T, GET /sse?since=N, GET /ws?since=N, POST /publish, GET /stats"
        )?;
        out.flush()?;
    }
    let shared = Arc::new(conn::Shared::new(
        usize::try_from(config.retain).unwrap_or(usize::MAX),
    ));
    tokio::select! {
        () = conn::accept(listener, shared.clone(), tls) => {}
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    shared.feed.stop();
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while shared.stats.open_streams() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}
