//! `/stats` agrees with what a client sees on its socket, byte for byte.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

async fn transport_stats(srv: &TestServer, transport: &str) -> Value {
    get(&srv.url("/stats")).await.json()["transports"][transport].clone()
}

/// Sends `request` on a fresh TCP connection and reads until the server closes it.
async fn raw_exchange(srv: &TestServer, request: &str) -> Vec<u8> {
    let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(LIMIT, tcp.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

#[tokio::test]
async fn bytes_written_match_the_socket_exactly() {
    let srv = TestServer::start(&[]);
    publish_n(&srv, 3).await;
    let cases = [
        (
            "short-poll",
            "GET /poll?since=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ),
        ("short-poll", "GET /poll?since=3 HTTP/1.0\r\n\r\n"),
        (
            "long-poll",
            "GET /long-poll?since=3&timeout_ms=50 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ),
        ("long-poll", "GET /long-poll?since=1 HTTP/1.0\r\n\r\n"),
        (
            "short-poll",
            "GET /poll?since=zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ),
    ];
    for (transport, request) in cases {
        let before = transport_stats(&srv, transport).await;
        let got = raw_exchange(&srv, request).await;
        let after = transport_stats(&srv, transport).await;
        let counted =
            after["bytes_written"].as_u64().unwrap() - before["bytes_written"].as_u64().unwrap();
        if request.contains("zz") {
            // Refused before a transport was chosen: not counted as transport traffic.
            assert_eq!(counted, 0);
            continue;
        }
        assert_eq!(
            counted,
            got.len() as u64,
            "{request:?}\n{}",
            String::from_utf8_lossy(&got)
        );
        assert_eq!(
            after["requests"].as_u64().unwrap() - before["requests"].as_u64().unwrap(),
            1
        );
    }
}

#[tokio::test]
async fn sse_bytes_written_match_the_socket_exactly() {
    let srv = TestServer::start(&["--heartbeat", "150ms", "--shutdown-grace", "1s"]);
    publish_n(&srv, 2).await;
    let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(b"GET /sse?since=0 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    stats_when(&srv, "the SSE stream is open", |s| {
        s["transports"]["sse"]["open"] == 1
    })
    .await;
    publish_n(&srv, 2).await;
    let delivered = stats_when(&srv, "all 4 events delivered", |s| {
        s["transports"]["sse"]["events_delivered"] == 4
    })
    .await;
    // And a heartbeat after them (every 150 ms): the bytes counted grow with nothing published.
    let after_events = delivered["transports"]["sse"]["bytes_written"].clone();
    stats_when(&srv, "a heartbeat written", |s| {
        s["transports"]["sse"]["bytes_written"] != after_events
    })
    .await;
    // Heartbeats keep coming: compare the socket with the count only when no write came while
    // the socket was being drained (the count the same before and after), else look again.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = std::time::Instant::now() + LIMIT;
    let counted = loop {
        let counted = transport_stats(&srv, "sse").await["bytes_written"].clone();
        // Loopback delivers a write to the peer's receive queue within the send call, so 50 ms
        // without bytes means everything counted so far has been read.
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(50), tcp.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        if transport_stats(&srv, "sse").await["bytes_written"] == counted {
            break counted.as_u64().unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a quiet moment between heartbeats"
        );
    };
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("id: 4\n"), "{text}");
    assert!(text.contains("\n: heartbeat\n"), "{text}");
    assert_eq!(
        got.len() as u64,
        counted,
        "socket against the count\n{text}"
    );
}

#[tokio::test]
async fn stats_count_requests_deliveries_and_empty_responses() {
    let srv = TestServer::start(&[]);
    publish_n(&srv, 4).await;
    get(&srv.url("/poll?since=0&client=me")).await;
    get(&srv.url("/poll?since=4&client=me")).await;
    let stats = get(&srv.url("/stats")).await.json();
    let poll = &stats["transports"]["short-poll"];
    assert_eq!(poll["requests"], 2);
    assert_eq!(poll["events_delivered"], 4);
    assert_eq!(poll["empty_responses"], 1);
    assert_eq!(stats["feed"]["head"], 4);
    assert!(stats["process"]["rss_bytes"].as_u64().unwrap() > 1_000_000);
    let mine = get(&srv.url("/stats/client/me")).await.json();
    assert_eq!(mine["transports"]["short-poll"]["requests"], 2);
    assert_eq!(get(&srv.url("/stats/client/stranger")).await.status, 404);
    let metrics = String::from_utf8(get(&srv.url("/metrics")).await.body.to_vec()).unwrap();
    assert!(
        metrics.contains("feedlab_requests_total{transport=\"short-poll\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("feedlab_feed_head_seq 4"));
}

#[tokio::test]
async fn websocket_handshake_is_recorded_for_the_client() {
    let srv = TestServer::start(&[]);
    let (_ws, res) = tokio_tungstenite::connect_async(srv.ws_url("/ws?client=page"))
        .await
        .unwrap();
    let accept = res.headers()["sec-websocket-accept"]
        .to_str()
        .unwrap()
        .to_owned();
    let mine = get(&srv.url("/stats/client/page")).await.json();
    assert_eq!(mine["ws_handshake"]["accept"], accept.as_str());
    assert_eq!(mine["ws_handshake"]["key"].as_str().unwrap().len(), 24);
    assert_eq!(mine["transports"]["ws"]["open"], 1);
}

#[tokio::test]
async fn results_index_lists_reports_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["older", "newer"] {
        std::fs::create_dir(dir.path().join(name)).unwrap();
        std::fs::write(dir.path().join(name).join("report.html"), "<html></html>").unwrap();
    }
    // Their ages set, not waited for: "newer" a minute after "older".
    let t0 = std::time::SystemTime::now() - Duration::from_secs(120);
    for (name, at) in [("older", t0), ("newer", t0 + Duration::from_secs(60))] {
        let report = std::fs::File::options()
            .write(true)
            .open(dir.path().join(name).join("report.html"))
            .unwrap();
        report.set_modified(at).unwrap();
    }
    std::fs::write(dir.path().join("older").join("report.json"), "{}").unwrap();
    let results = dir.path().display().to_string();
    let srv = TestServer::start(&["--results-dir", &results]);
    let index = get(&srv.url("/results/index.json")).await;
    assert_eq!(index.status, 200);
    let index = index.json();
    assert_eq!(index[0]["name"], "newer");
    assert_eq!(index[0]["html"], "/results/newer/report.html");
    // The machine-readable report is listed only where there is one.
    assert_eq!(index[0]["json"], Value::Null);
    assert_eq!(index[1]["json"], "/results/older/report.json");
    assert_eq!(index[1]["decision"], Value::Null);
    assert_eq!(
        get(&srv.url("/results/older/report.html")).await.status,
        200
    );
    // A scenario run's directory holds its decision (and a report per scenario below).
    std::fs::create_dir(dir.path().join("scenarios")).unwrap();
    std::fs::write(dir.path().join("scenarios").join("decision.json"), "{}").unwrap();
    let index = get(&srv.url("/results/index.json")).await.json();
    let scenarios = index
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "scenarios")
        .expect("the scenario run is listed");
    assert_eq!(scenarios["decision"], "/results/scenarios/decision.json");
    assert_eq!(scenarios["html"], Value::Null);
    assert_eq!(scenarios["md"], Value::Null);
}

/// `/results/` serves the files of reports and nothing outside `--results-dir`, whatever the
/// encoding of the way out: every attempt gets a 4xx and never the secret next to the directory.
#[tokio::test]
async fn results_files_are_served_and_traversal_is_refused_in_every_encoding() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let root = tempfile::tempdir().unwrap();
    let results = root.path().join("results");
    std::fs::create_dir_all(results.join("r")).unwrap();
    std::fs::write(results.join("r/report.md"), "# report ü").unwrap();
    std::fs::write(results.join(".hidden"), "SECRET-HIDDEN").unwrap();
    std::fs::write(root.path().join("secret.txt"), "SECRET-OUTSIDE").unwrap();
    let dir = results.display().to_string();
    let srv = TestServer::start(&["--results-dir", &dir]);

    let ok = get(&srv.url("/results/r/report.md")).await;
    assert_eq!(ok.status, 200);
    assert_eq!(&ok.body[..], "# report ü".as_bytes());
    let missing = get(&srv.url("/results/r/nothing.html")).await;
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"]
        .as_str()
        .unwrap()
        .contains("/results/r/nothing.html"));

    // Sent as raw bytes, so no client normalises the path first.
    let attempts = [
        "/results/../secret.txt",
        "/results/r/../../secret.txt",
        "/results/%2e%2e/secret.txt",
        "/results/%2E%2E/secret.txt",
        "/results/.%2e/secret.txt",
        "/results/..%2fsecret.txt",
        "/results/r/..%2f..%2fsecret.txt",
        "/results/%2e%2e%2fsecret.txt",
        "/results/%252e%252e/secret.txt",
        "/results/..%5csecret.txt",
        "/results/..\\secret.txt",
        "/results/%c0%ae%c0%ae/secret.txt",
        "/results/..;/secret.txt",
        "/results//etc/passwd",
        "/results/%2fetc%2fpasswd",
        "/results/.hidden",
        "/results/%2ehidden",
        "/results/r",
        "/results/",
    ];
    for path in attempts {
        let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            srv.addr
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(LIMIT, s.read_to_end(&mut out))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&out);
        let status = text.split(' ').nth(1).unwrap_or("");
        assert!(
            status == "404" || status == "400",
            "{path}: {}",
            text.lines().next().unwrap_or("")
        );
        assert!(
            !text.contains("SECRET") && !text.contains("root:"),
            "{path}: {text}"
        );
    }
}

async fn publishes(srv: &TestServer) -> Value {
    get(&srv.url("/stats")).await.json()["publishes"].clone()
}

/// What a client talking back sends is counted by its way up: `POST /publish` per HTTP version,
/// head and body byte for byte, and WebSocket `publish` messages by their (masked) frames.
#[tokio::test]
async fn publishes_are_counted_by_way_up_byte_for_byte() {
    use futures_util::{SinkExt as _, StreamExt as _};
    let srv = TestServer::start(&[]);
    let body = r#"{"hello":"back"}"#;
    for (way, request) in [
        (
            "http/1.1",
            format!(
                "POST /publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nIdempotency-Key: k1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        ),
        (
            "http/1.0",
            format!(
                "POST /publish HTTP/1.0\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        ),
    ] {
        let before = publishes(&srv).await;
        let got = raw_exchange(&srv, &request).await;
        assert!(String::from_utf8_lossy(&got).contains("\"seq\""));
        let after = publishes(&srv).await;
        let delta = |k: &str| after[way][k].as_u64().unwrap() - before[way][k].as_u64().unwrap();
        assert_eq!((delta("requests"), delta("messages")), (1, 1), "{way}");
        assert_eq!(delta("bytes_read"), request.len() as u64, "{way}");
    }
    // A refused publish is not one.
    let before = publishes(&srv).await;
    let refused = raw_exchange(
        &srv,
        "POST /publish HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 3\r\n\r\n{no",
    )
    .await;
    assert!(String::from_utf8_lossy(&refused).starts_with("HTTP/1.1 400"));
    assert_eq!(publishes(&srv).await, before);

    let (mut ws, _) = tokio_tungstenite::connect_async(srv.ws_url("/ws?since=0"))
        .await
        .unwrap();
    let msg = r#"{"op":"publish","id":"k2","data":{"hello":"again"}}"#;
    ws.send(tokio_tungstenite::tungstenite::Message::Text(msg.into()))
        .await
        .unwrap();
    loop {
        let frame = tokio::time::timeout(LIMIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if frame.to_text().unwrap_or("").contains("\"published\"") {
            break;
        }
    }
    let after = publishes(&srv).await;
    assert_eq!(after["ws"]["messages"], 1);
    assert_eq!(after["ws"]["requests"], 0);
    // 2 bytes of header and 4 of mask around a payload under 126 bytes.
    assert_eq!(after["ws"]["bytes_read"], (msg.len() + 6) as u64);
    assert_eq!(after["http/2"]["messages"], 0);
}

/// A quiet WebSocket: every ping (every 500 ms) finds Wi-Fi's radio asleep (its tail is 0.25 s)
/// and wakes it, the browser-like client's pongs count as its own traffic, and no event wakes
/// anything; an unknown profile is refused with the list.
#[tokio::test]
async fn radio_figures_show_pings_waking_a_quiet_connection() {
    use futures_util::StreamExt as _;
    let srv = TestServer::start(&["--heartbeat", "500ms"]);
    let (ws, _) = tokio_tungstenite::connect_async(srv.ws_url("/ws?client=phone"))
        .await
        .unwrap();
    // Reading is what answers pings (tungstenite queues the pong and flushes it on the next read).
    let reader = tokio::spawn(ws.for_each(|_| async {}));
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    let radio = get(&srv.url("/stats/client/phone/radio?profile=wifi"))
        .await
        .json();
    reader.abort();
    assert_eq!(radio["profile"]["name"], "wifi");
    assert_eq!(radio["profiles"].as_array().unwrap().len(), 5);
    let ws = &radio["transports"]["ws"];
    assert!(ws["woken_by"]["no_event"].as_u64().unwrap() >= 3, "{ws}");
    assert_eq!(ws["woken_by"]["event"], 0, "{ws}");
    // The upgrade request and at least three pongs.
    assert!(ws["sent"]["client"].as_u64().unwrap() >= 4, "{ws}");
    assert!(radio["transports"]["sse"].is_null());
    let bad = get(&srv.url("/stats/client/phone/radio?profile=4g")).await;
    assert_eq!(bad.status, 400);
    let why = String::from_utf8(bad.body.to_vec()).unwrap();
    assert!(why.contains("lte, lte-short, 3g, wifi, 5g-nsa"), "{why}");
    assert_eq!(
        get(&srv.url("/stats/client/stranger/radio")).await.status,
        404
    );
}
