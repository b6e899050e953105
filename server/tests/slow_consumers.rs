//! 1,000 clients that never read, against a feed at full speed: the server's memory stays bounded
//! and a normal client on the same server misses nothing and is never let go for falling behind.
//!
//! The behaviour only, in a few seconds and without timing verdicts. The latency measurement (a
//! minute, normal client alone against loaded) is the benchmark `server/benches/slow_consumers.rs`.
//!
//! The server runs as its own process (the `server` binary), so its RSS is its own; this file is
//! its own test binary, so no other test's connections share the server or the descriptors.

use std::net::SocketAddr;

#[path = "it/common/mod.rs"]
#[allow(dead_code)]
mod common;

use common::{server_process, stats_within};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::{connect_async, tungstenite::Message};

/// RSS the server may gain per connection that stopped reading: actix's HTTP/1 write buffer
/// (`--max-write-bytes`, 16 KiB) plus one batch of as much on top, a read buffer, the task.
const RSS_BUDGET_PER_STUCK: u64 = 80 * 1024;
const STUCK: usize = 1_000;
/// Events the normal client must receive, in order and without a gap, with the stuck
/// connections open: three seconds of the feed.
const EVENTS: u64 = 1_500;
/// Bound on each wait: the debug server feeding 1,000 stuck connections at 500 events/s answers
/// `/stats` slowly on a loaded machine (over 10 s was seen beside a build), and this test asserts
/// memory and order, not speed.
const SLOW: std::time::Duration = std::time::Duration::from_secs(60);

/// Resident set size of process `pid`, from `/proc/<pid>/status`.
fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Opens a connection that sends its request and never reads a byte. Its receive buffer is set
/// small (4 KiB), like a client whose application stopped reading, so the kernel stops taking
/// data at once instead of after loopback's multi-megabyte autotuned buffers.
async fn stuck(addr: SocketAddr, i: usize) -> tokio::net::TcpStream {
    let mut tcp = feedlab_testkit::connect_with_buffers(addr, Some(4 * 1024), None).await;
    let req = if i % 2 == 0 {
        format!("GET /sse HTTP/1.1\r\nHost: {addr}\r\n\r\n")
    } else {
        feedlab_testkit::ws::upgrade_request("/ws", "")
    };
    tcp.write_all(req.as_bytes()).await.unwrap();
    tcp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_clients_cost_bounded_memory_and_a_normal_client_misses_nothing() {
    let server = server_process(0, &["--rate", "500", "--payload-bytes", "1024"]);
    let pid = server.child.id();
    let stats_url = server.url("/stats");
    // The server's own one-off costs (its first connections, the feed's first events) are not
    // what is measured: one client comes and goes first.
    let (warm, _) = connect_async(format!("ws://{}/ws", server.addr))
        .await
        .unwrap();
    drop(warm);
    stats_within(SLOW, &stats_url, "the warm-up client gone", |s| {
        common::open_streams(s) == 0
    })
    .await;
    let before = rss_of(pid);

    let mut held = Vec::with_capacity(STUCK);
    for i in 0..STUCK {
        held.push(stuck(server.addr, i).await);
    }
    stats_within(SLOW, &stats_url, "every stuck connection open", |s| {
        common::open_streams(s) >= STUCK as u64
    })
    .await;

    // The normal client: every event from where it joined, in order, none missed, and never
    // let go (a WebSocket close 1013) for falling behind.
    let (mut ws, _) = connect_async(format!("ws://{}/ws", server.addr))
        .await
        .unwrap();
    let mut peak = rss_of(pid);
    let mut first = None;
    let mut last: Option<u64> = None;
    while !matches!((first, last), (Some(f), Some(l)) if l - f + 1 >= EVENTS) {
        let msg = tokio::time::timeout(SLOW, ws.next())
            .await
            .expect("the normal client keeps receiving")
            .expect("its connection stays open")
            .expect("a well-formed message");
        match msg {
            Message::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                let seq = v["seq"].as_u64().unwrap();
                if let Some(prev) = last {
                    assert_eq!(seq, prev + 1, "the normal client misses nothing");
                }
                first.get_or_insert(seq);
                last = Some(seq);
                if seq % 100 == 0 {
                    peak = peak.max(rss_of(pid));
                }
            }
            Message::Close(c) => panic!("the normal client was let go: {c:?}"),
            _ => {}
        }
    }
    peak = peak.max(rss_of(pid));
    let open = common::open_streams(
        &common::request_within(
            SLOW,
            hyper::Request::get(&stats_url)
                .body(Default::default())
                .unwrap(),
        )
        .await
        .json(),
    );
    drop(held);

    let growth = peak.saturating_sub(before);
    eprintln!(
        "{STUCK} stuck connections: server RSS {} KiB before, peak {} KiB: {} KiB each; \
         {open} streams open at the end",
        before / 1024,
        peak / 1024,
        growth / 1024 / STUCK as u64
    );
    assert!(
        growth <= RSS_BUDGET_PER_STUCK * STUCK as u64,
        "RSS grew {} KiB for {STUCK} stuck connections (budget {} KiB each)",
        growth / 1024,
        RSS_BUDGET_PER_STUCK / 1024
    );
}
