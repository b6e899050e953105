//! The slow-consumer measurement (a benchmark, not a test: it takes a minute and what it measures
//! is latency on a machine other programs share). 1,000 clients that never read, against a feed
//! at full speed: the server's memory stays bounded and a normal client on the same server keeps
//! its latency. `cargo bench -p server --bench slow_consumers` (release build); the behaviour
//! alone is checked in seconds by `server/tests/slow_consumers.rs`.
//!
//! The server runs as its own process (the `server` binary), so its RSS is its own. Each phase
//! lasts `FEEDLAB_SLOW_TEST_SECS` seconds (default 30). The loaded phase is measured once the
//! stuck connections are open and their socket buffers full (the steady state the issue is
//! about); the seconds of 1,000 handshakes and first writes before that are connection set-up.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// Its own binary, so no test shares the machine while it measures latency.
#[path = "../tests/it/common/mod.rs"]
#[allow(dead_code)]
mod common;

use common::{server_process, ServerProcess};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::{connect_async, tungstenite::Message};

/// RSS the server may gain per connection that stopped reading: actix's HTTP/1 write buffer
/// (`--max-write-bytes`, 16 KiB) plus one batch of as much on top, a read buffer, the task.
const RSS_BUDGET_PER_STUCK: u64 = 80 * 1024;
const STUCK: usize = 1_000;
const RATE: &str = "500";
const PAYLOAD: &str = "1024";

/// Resident set size of process `pid`, from `/proc/<pid>/status`.
fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    Some(kb * 1024)
}

fn start_server() -> ServerProcess {
    server_process(0, &["--rate", RATE, "--payload-bytes", PAYLOAD])
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// Latency is judged per window of this length: the p99 of each window, and the median of those.
/// One burst of noise from another process on a shared machine then spoils one window, not the
/// verdict; a server slowed by the stuck clients is slow in every window.
const WINDOW: Duration = Duration::from_secs(5);

/// A WebSocket client that reads everything for `secs`: the median over 5 s windows of the p99 of
/// (receipt − server `ts`), and how many events arrived (checking seqs arrive without a gap).
async fn normal_client(addr: std::net::SocketAddr, secs: u64) -> (u64, usize) {
    let (mut ws, _) = connect_async(format!("ws://{addr}/ws")).await.unwrap();
    let started = Instant::now();
    let mut windows: Vec<Vec<u64>> = Vec::new();
    let mut last = None;
    let end = Instant::now() + Duration::from_secs(secs);
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(end.into(), ws.next()).await {
        if let Message::Text(t) = msg {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            let seq = v["seq"].as_u64().unwrap();
            if let Some(prev) = last {
                assert_eq!(seq, prev + 1, "the normal client misses nothing");
            }
            last = Some(seq);
            let window = (started.elapsed().as_secs_f64() / WINDOW.as_secs_f64()) as usize;
            if windows.len() <= window {
                windows.resize(window + 1, Vec::new());
            }
            windows[window].push(now_us().saturating_sub(v["ts"].as_u64().unwrap()));
        }
    }
    let received = windows.iter().map(Vec::len).sum();
    let mut p99s: Vec<u64> = windows
        .into_iter()
        .filter(|w| w.len() >= 100)
        .map(|mut w| {
            w.sort_unstable();
            w[w.len() * 99 / 100]
        })
        .collect();
    assert!(!p99s.is_empty(), "at least one full window of events");
    p99s.sort_unstable();
    (p99s[p99s.len() / 2], received)
}

/// Opens a connection that sends its request and never reads a byte.
async fn stuck(addr: std::net::SocketAddr, i: usize) -> tokio::net::TcpStream {
    // A small receive window, like a client whose application stopped reading: the kernel stops
    // accepting data after a few KiB instead of loopback's multi-megabyte autotuned buffers.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4 * 1024).unwrap();
    let mut tcp = sock.connect(addr).await.unwrap();
    let req = if i % 2 == 0 {
        format!("GET /sse HTTP/1.1\r\nHost: {addr}\r\n\r\n")
    } else {
        format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
    };
    tcp.write_all(req.as_bytes()).await.unwrap();
    tcp
}

/// The highest RSS of a process, sampled every 200 ms until stopped.
struct PeakRss {
    sampling: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
}

impl PeakRss {
    fn start(pid: u32) -> Self {
        let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let task = tokio::spawn({
            let sampling = sampling.clone();
            async move {
                let mut peak = 0;
                while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                    peak = rss_of(pid).unwrap_or(0).max(peak);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                peak.max(rss_of(pid).unwrap_or(0))
            }
        });
        Self { sampling, task }
    }

    async fn stop(self) -> u64 {
        self.sampling
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// Waits until the server reports `n` open streaming connections.
async fn wait_until_open(addr: std::net::SocketAddr, n: usize) {
    let url = format!("http://{addr}/stats");
    for _ in 0..200 {
        let stats = common::get(&url).await.json();
        if stats["connections"]["open_streams"].as_u64().unwrap_or(0) >= n as u64 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server never reported {n} open connections");
}

fn main() {
    // `cargo bench` passes `--bench`; nothing here takes arguments.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(stuck_clients_cost_bounded_memory_and_do_not_slow_a_normal_client());
}

async fn stuck_clients_cost_bounded_memory_and_do_not_slow_a_normal_client() {
    let secs: u64 = std::env::var("FEEDLAB_SLOW_TEST_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);

    // Baseline: the normal client alone. Its peak RSS includes the feed's retained events, which
    // fill the same way in both phases, so the difference is what the stuck clients cost.
    let baseline = start_server();
    let sampler = PeakRss::start(baseline.child.id());
    let (p99_alone, n_alone) = normal_client(baseline.addr, secs).await;
    let baseline_rss = sampler.stop().await;
    drop(baseline);

    // Same feed, plus 1,000 connections that never read.
    let server = start_server();
    let sampler = PeakRss::start(server.child.id());
    let mut held = Vec::with_capacity(STUCK);
    for i in 0..STUCK {
        held.push(stuck(server.addr, i).await);
    }
    wait_until_open(server.addr, STUCK).await;
    // The steady state the issue is about: the stuck connections' buffers full, their writers
    // blocked. A measurement's settling time, by design.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (p99_loaded, n_loaded) = normal_client(server.addr, secs).await;
    let peak_rss = sampler.stop().await;
    drop(held);

    let growth = peak_rss.saturating_sub(baseline_rss);
    eprintln!(
        "slow consumers (median of 5 s windows' p99): alone {p99_alone} µs ({n_alone} events), with {STUCK} stuck {p99_loaded} µs \
         ({n_loaded} events); server RSS peak without them {} KiB, with them {} KiB: {} KiB per stuck connection",
        baseline_rss / 1024,
        peak_rss / 1024,
        growth / 1024 / STUCK as u64
    );
    assert!(
        n_loaded as f64 >= n_alone as f64 * 0.9,
        "the normal client kept up: {n_loaded} vs {n_alone}"
    );
    assert!(
        growth <= RSS_BUDGET_PER_STUCK * STUCK as u64,
        "RSS grew {} KiB for {STUCK} stuck connections (budget {} KiB each)",
        growth / 1024,
        RSS_BUDGET_PER_STUCK / 1024
    );
    // Loopback p99 is a few hundred µs; 1 ms of slack keeps scheduler noise on a shared 2-core
    // machine from deciding the test.
    assert!(
        p99_loaded <= 2 * p99_alone + 1_000,
        "p99 with stuck clients {p99_loaded} µs vs {p99_alone} µs alone"
    );
}
