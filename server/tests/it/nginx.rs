//! `deploy/nginx.conf` in front of the server, with a real nginx: all four transports work
//! through it, and a proxy idle timeout shorter than the heartbeat cuts quiet streams (the
//! failure proxies are known for) while a shorter heartbeat keeps them alive.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::{connect_async, tungstenite::Message};

use feedlab_testkit::{require, Nginx};

use crate::common::*;

#[tokio::test]
async fn all_four_transports_work_through_nginx() {
    let srv = TestServer::start(&[]);
    let nginx = require!(Nginx::deploy(srv.addr, None));

    let (status, headers, mut events) = sse(&nginx.url("/sse"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    let long_poll_url = nginx.url("/long-poll?since=0&timeout_ms=5000");
    let long_poll = tokio::spawn(async move { get(&long_poll_url).await });
    let (mut ws, _) = connect_async(format!("ws://127.0.0.1:{}/ws", nginx.port))
        .await
        .unwrap();
    stats_when(
        &srv,
        "SSE, the long poll and the WebSocket reached the server",
        |s| open_streams(s) == 3,
    )
    .await;

    let started = Instant::now();
    let res = post(&nginx.url("/publish"), json!({"via": "nginx"}).to_string()).await;
    assert_eq!(res.json()["seq"], 1);

    let from_sse = next_sse_events(&mut events, 1).await.remove(0);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "SSE is not buffered by the proxy"
    );
    let from_long_poll = long_poll.await.unwrap().json()["events"][0].clone();
    let from_ws: Value = loop {
        if let Message::Text(t) = ws.next().await.unwrap().unwrap() {
            break serde_json::from_str(&t).unwrap();
        }
    };
    let from_poll = get(&nginx.url("/poll?since=0")).await.json()["events"][0].clone();
    for e in [&from_sse, &from_long_poll, &from_ws, &from_poll] {
        assert_eq!(e["data"], json!({"via": "nginx"}));
    }
    // Full duplex through the proxy.
    ws.send(Message::Text(r#"{"op":"echo","n":1}"#.into()))
        .await
        .unwrap();
    let echo: Value = loop {
        if let Message::Text(t) = ws.next().await.unwrap().unwrap() {
            break serde_json::from_str(&t).unwrap();
        }
    };
    assert_eq!(echo, json!({"op": "echo", "n": 1}));
}

/// How long a quiet SSE stream and WebSocket survive through nginx with a 1 s read timeout.
async fn quiet_lifetimes(heartbeat: &str) -> (Duration, Duration) {
    let srv = TestServer::start(&["--heartbeat", heartbeat, "--ws-client-timeout", "30s"]);
    let nginx = Nginx::deploy(srv.addr, Some("1s")).expect("nginx (checked by the caller)");
    let started = Instant::now();
    // curl ends when the proxy cuts the stream (a truncated chunked body), or at 4 s.
    let sse_url = nginx.url("/sse");
    let sse_life = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let _ = Command::new("curl")
            .args(["-sN", "--max-time", "4", &sse_url])
            .stdout(Stdio::null())
            .status();
        t.elapsed()
    });
    let (mut ws, _) = connect_async(format!("ws://127.0.0.1:{}/ws", nginx.port))
        .await
        .unwrap();
    let ws_life = tokio::spawn(async move {
        // How long the connection lives is what is measured: 4 s at most.
        let limit = tokio::time::sleep(Duration::from_secs(4));
        tokio::pin!(limit);
        loop {
            tokio::select! {
                _ = &mut limit => break,
                m = ws.next() => if matches!(m, None | Some(Err(_)) | Some(Ok(Message::Close(_)))) { break },
            }
        }
        started.elapsed()
    });
    (sse_life.await.unwrap(), ws_life.await.unwrap())
}

#[tokio::test]
async fn a_proxy_timeout_below_the_heartbeat_cuts_quiet_streams_and_a_faster_heartbeat_fixes_it() {
    require!(feedlab_testkit::binary("nginx", &["/usr/sbin/nginx"]));
    let (sse_cut, ws_cut) = quiet_lifetimes("10s").await;
    assert!(
        sse_cut < Duration::from_secs(3),
        "SSE cut by the proxy after ~1 s: {sse_cut:?}"
    );
    assert!(
        ws_cut < Duration::from_secs(3),
        "WebSocket cut by the proxy after ~1 s: {ws_cut:?}"
    );
    let (sse_kept, ws_kept) = quiet_lifetimes("300ms").await;
    assert!(
        sse_kept >= Duration::from_millis(3900),
        "heartbeats keep SSE open: {sse_kept:?}"
    );
    assert!(
        ws_kept >= Duration::from_millis(3900),
        "pings keep the WebSocket open: {ws_kept:?}"
    );
}
