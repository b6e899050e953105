//! TLS on the fast path: a client that picks HTTP/1.1 by ALPN (or none) is served on the raw
//! connection, one that picks `h2` by actix-web; the streams carry the same bytes as
//! actix-web's over TLS; and an idle TLS stream costs a fraction of what it costs through
//! actix-web.

use std::{path::PathBuf, process::Command};

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use feedlab_testkit::ws;

use crate::{
    common::*,
    fast_path::{body, dechunk, zero_ts},
};

async fn to_actix_web(srv: &TestServer) -> u64 {
    let stats = request_to(
        srv,
        hyper::Request::get(srv.url("/stats"))
            .body(http_body_util::Full::default())
            .unwrap(),
    )
    .await
    .json();
    stats["connections"]["to_actix_web"].as_u64().unwrap()
}

/// Sends `request` on a new TLS connection (HTTP/1.1 by ALPN) and reads until `until` appears.
async fn exchange(srv: &TestServer, request: &[u8], until: &[u8]) -> Vec<u8> {
    let mut io = open(srv.addr, srv.cert.as_deref()).await;
    io.write_all(request).await.unwrap();
    io.flush().await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(LIMIT, async {
        while !out.windows(until.len()).any(|w| w == until) {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("answer in time");
    out
}

#[tokio::test]
async fn alpn_h2_goes_to_actix_web_and_http_1_1_stays_on_the_fast_path() {
    let srv = Way::Tls.start(&[]);
    publish(&srv, json!("first")).await;
    // Every /stats request is actix-web's: it counts itself.
    let before = to_actix_web(&srv).await;

    let sse = exchange(
        &srv,
        b"GET /sse?since=0 HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"\"first\"}\n\n",
    )
    .await;
    assert!(String::from_utf8_lossy(&sse).starts_with("HTTP/1.1 200"));
    let poll = exchange(
        &srv,
        b"GET /poll?since=0 HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"\"missed\":0}",
    )
    .await;
    assert!(String::from_utf8_lossy(&poll).contains("\"first\""));
    let mut io = open(srv.addr, srv.cert.as_deref()).await;
    ws::upgrade(&mut io, "/ws?since=0", "").await;
    let (_, frame) = ws::read_frame(&mut io).await;
    assert!(String::from_utf8_lossy(&frame).contains("\"first\""));
    // By hand: hyper's connection-level client sends an absolute-form target, which the fast
    // path leaves to actix-web (`common::publish` goes there).
    let published = exchange(
        &srv,
        b"POST /publish HTTP/1.1\r\nHost: localhost\r\nContent-Length: 8\r\n\r\n\"second\"",
        b"}",
    )
    .await;
    assert!(String::from_utf8_lossy(&published).ends_with("{\"seq\":2}"));
    let (_, frame) = ws::read_frame(&mut io).await;
    assert!(String::from_utf8_lossy(&frame).contains("\"second\""));
    assert_eq!(
        to_actix_web(&srv).await,
        before + 1,
        "HTTP/1.1 streams, polls and publishes stay on the fast path"
    );

    // curl offers h2 and http/1.1; rustls picks h2 (the server's first choice).
    let cert = srv.cert.clone().unwrap();
    let out = tokio::task::spawn_blocking({
        let url = srv.url("/poll?since=0");
        move || {
            Command::new("curl")
                .args([
                    "-s",
                    "--max-time",
                    "5",
                    "-w",
                    "\n%{http_version}",
                    "--cacert",
                ])
                .arg(&cert)
                .arg(&url)
                .output()
                .expect("curl runs")
        }
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let (answer, version) = text.rsplit_once('\n').unwrap();
    assert_eq!(version, "2", "ALPN picks HTTP/2: {text}");
    assert!(answer.contains("\"second\""), "{answer}");
    assert_eq!(
        to_actix_web(&srv).await,
        before + 3,
        "the h2 connection (and this /stats) went to actix-web"
    );
}

#[tokio::test]
async fn sse_and_ws_bytes_over_tls_are_the_same_on_both_paths() {
    let sse = b"GET /sse?since=0 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let ws_request = ws::upgrade_request("/ws?since=0", "");
    let mut seen = Vec::new();
    for way in [Way::Tls, Way::TlsActix] {
        let srv = way.start(&["--retain", "100", "--sse-retry-max", "1s"]);
        for i in 0..3 {
            publish(&srv, json!({ "i": i, "text": "héllo" })).await;
        }
        let sse_out = exchange(&srv, sse, "\"i\":2,\"text\":\"héllo\"}}\n\n\r\n".as_bytes()).await;
        let ws_out = exchange(&srv, ws_request.as_bytes(), b"\"i\":2").await;
        let head = String::from_utf8_lossy(&sse_out).to_ascii_lowercase();
        assert!(
            head.contains("content-type: text/event-stream"),
            "{way:?}: {head}"
        );
        assert!(String::from_utf8_lossy(&ws_out).starts_with("HTTP/1.1 101"));
        seen.push((body(&sse_out).to_vec(), body(&ws_out).to_vec()));
    }
    let sse = |b: &[u8]| String::from_utf8_lossy(&zero_ts(&dechunk(b))).into_owned();
    assert_eq!(sse(&seen[0].0), sse(&seen[1].0), "SSE stream");
    assert!(sse(&seen[0].0).contains("id: 3\ndata: {\"seq\":3,"));
    assert_eq!(zero_ts(&seen[0].1), zero_ts(&seen[1].1), "WebSocket frames");
}

/// A `server` process over TLS, and its certificate.
fn tls_process(way: Way) -> (ServerProcess, PathBuf) {
    let args = way.args();
    let cert = PathBuf::from(&args[args.iter().position(|a| a == "--tls-write-cert").unwrap() + 1]);
    let process = server_process(0, &args.iter().map(String::as_str).collect::<Vec<_>>());
    feedlab_testkit::wait_until(LIMIT, "the certificate written", || cert.exists());
    (process, cert)
}

fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// RSS growth per connection while `n` idle TLS SSE streams and `n` idle TLS WebSockets are open.
async fn idle_growth(way: Way, n: usize) -> f64 {
    let (process, cert) = tls_process(way);
    let addr = process.addr;
    // The first connections' one-off costs (thread caches, the session cache) are not measured.
    for _ in 0..20 {
        let mut io = open(addr, Some(cert.as_path())).await;
        ws::upgrade(&mut io, "/ws", "").await;
    }
    let before = rss(process.child.id());
    let mut held = Vec::new();
    for _ in 0..n {
        let mut io = open(addr, Some(cert.as_path())).await;
        io.write_all(b"GET /sse HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        io.flush().await.unwrap();
        let mut head = [0u8; 12];
        io.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        held.push(io);
        let mut io = open(addr, Some(cert.as_path())).await;
        ws::upgrade(&mut io, "/ws", "").await;
        held.push(io);
    }
    let grown = rss(process.child.id()).saturating_sub(before);
    drop(held);
    grown as f64 / (2 * n) as f64
}

/// What the fast path is for: through actix-web an idle TLS stream held 21-24 KiB (issue 29,
/// release build); on the fast path it holds the socket and rustls' state.
#[tokio::test]
async fn an_idle_tls_stream_costs_a_fraction_of_what_it_costs_through_actix_web() {
    let fast = idle_growth(Way::Tls, 300).await;
    let actix = idle_growth(Way::TlsActix, 300).await;
    eprintln!("idle TLS connection: fast path {fast:.0} B, actix-web {actix:.0} B");
    assert!(
        fast < 0.75 * actix,
        "fast path {fast:.0} B per idle TLS connection, actix-web {actix:.0} B"
    );
}
