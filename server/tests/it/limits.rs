//! Every limit holds: connection caps answer 503 with `Retry-After`, slowloris connections are
//! dropped, and a client that falls behind is let go with a reason and resumes losing nothing.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{protocol::frame::coding::CloseCode, Error as WsError, Message},
};

use crate::common::*;

#[tokio::test]
async fn past_the_connection_limit_http_gets_503_and_websockets_are_refused() {
    let srv = TestServer::start(&["--max-connections", "2"]);
    let (s1, _, _e1) = sse(&srv.url("/sse"), &[]).await;
    let (_ws, _) = connect_async(srv.ws_url("/ws")).await.unwrap();
    assert_eq!(s1, 200);
    let refused = get(&srv.url("/long-poll?timeout_ms=1000")).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.headers["retry-after"], "1");
    assert!(refused.json()["error"]
        .as_str()
        .unwrap()
        .contains("--max-connections"));
    match connect_async(srv.ws_url("/ws")).await {
        Err(WsError::Http(res)) => assert_eq!(res.status(), 503),
        other => panic!("expected a refused handshake, got {other:?}"),
    }
    // Short polls hold no connection and still work.
    assert_eq!(get(&srv.url("/poll")).await.status, 200);
    let stats = get(&srv.url("/stats")).await.json();
    assert_eq!(stats["connections"]["refused"], 2);
}

#[tokio::test]
async fn per_ip_limit_counts_each_source_address() {
    let srv = TestServer::start(&["--max-connections-per-ip", "1"]);
    let open_from = |ip: &'static str| {
        let addr = srv.addr;
        async move {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.bind(format!("{ip}:0").parse().unwrap()).unwrap();
            let mut tcp = sock.connect(addr).await.unwrap();
            tcp.write_all(b"GET /sse HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut buf = [0u8; 12];
            tcp.read_exact(&mut buf).await.unwrap();
            (tcp, String::from_utf8_lossy(&buf).into_owned())
        }
    };
    let (_a, first) = open_from("127.0.0.1").await;
    let (_b, second) = open_from("127.0.0.1").await;
    let (_c, other_ip) = open_from("127.0.0.2").await;
    assert_eq!(first, "HTTP/1.1 200");
    assert_eq!(second, "HTTP/1.1 503");
    assert_eq!(other_ip, "HTTP/1.1 200");
}

#[tokio::test]
async fn slowloris_connections_are_dropped() {
    // actix measures the deadline on a clock it refreshes every 500 ms: use a whole second.
    let srv = TestServer::start(&["--request-timeout", "1s"]);
    for sent in [&b""[..], b"GET /poll HTTP/1.1\r\nHost: x\r\nX-Slow:"] {
        let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
        tcp.write_all(sent).await.unwrap();
        let started = Instant::now();
        let mut out = Vec::new();
        tokio::time::timeout(LIMIT, tcp.read_to_end(&mut out))
            .await
            .expect("dropped in time")
            .ok();
        let waited = started.elapsed();
        assert!(waited < Duration::from_secs(3), "{waited:?}");
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{text}"
        );
    }
    assert_eq!(get(&srv.url("/healthz")).await.status, 200);
}

/// Publishes `n` events of `size` bytes each as fast as the server takes them.
/// The client's receive buffer in the falling-behind tests: fixed, so the kernel's autotuning
/// (up to `net.ipv4.tcp_rmem`'s maximum, 32 MiB on some machines: the whole flood) does not
/// decide whether the client falls behind.
const CLIENT_RCVBUF: u32 = 64 * 1024;
/// What the falling-behind tests publish while their client does not read.
const FLOOD: (usize, usize) = (2_000, 16 * 1024);

/// A connection to `srv` whose receive buffer is [`CLIENT_RCVBUF`]. The server's send buffer
/// has no setting; it autotunes up to `net.ipv4.tcp_wmem`'s maximum, which must stay well
/// below the flood for the client to fall behind: checked here, so a machine where it does not
/// says so instead of timing out.
async fn small_window(srv: &TestServer) -> tokio::net::TcpStream {
    let wmem = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem").unwrap();
    let wmem_max: usize = wmem.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(
        wmem_max + CLIENT_RCVBUF as usize * 2 < FLOOD.0 * FLOOD.1 / 2,
        "net.ipv4.tcp_wmem max {wmem_max} would hold most of the flood"
    );
    feedlab_testkit::connect_with_buffers(srv.addr, Some(CLIENT_RCVBUF), None).await
}

async fn flood(srv: &TestServer, n: usize, size: usize) {
    let pad = "x".repeat(size);
    for i in 0..n {
        publish(srv, json!({ "i": i, "pad": pad })).await;
    }
}

#[tokio::test]
async fn a_websocket_that_falls_behind_is_closed_with_1013_and_resumes_losing_nothing() {
    let srv = TestServer::start(&["--max-lag", "50", "--retain", "5000"]);
    let tcp = small_window(&srv).await;
    let (mut ws, _) = tokio_tungstenite::client_async(srv.ws_url("/ws?since=0"), tcp)
        .await
        .unwrap();
    // Not reading while 2,000 events of 16 KiB go out: socket buffers fill, the lag grows.
    flood(&srv, FLOOD.0, FLOOD.1).await;
    let mut last = 0;
    let close = loop {
        match tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Text(t))) => {
                let seq = serde_json::from_str::<Value>(&t).unwrap()["seq"]
                    .as_u64()
                    .unwrap();
                assert_eq!(seq, last + 1, "in order, no gap");
                last = seq;
            }
            Some(Ok(Message::Close(frame))) => break frame.expect("a close reason"),
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Again);
    assert!(
        close.reason.contains(&format!("since={last}")),
        "{}",
        close.reason
    );
    assert!(last < 2_000, "disconnected before the end");
    // Resume from the cursor: the rest arrives, nothing lost.
    let (mut ws, _) = connect_async(srv.ws_url(&format!("/ws?since={last}")))
        .await
        .unwrap();
    while last < 2_000 {
        let msg = tokio::time::timeout(LIMIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let seq = serde_json::from_str::<Value>(&t).unwrap()["seq"]
                .as_u64()
                .unwrap();
            assert_eq!(seq, last + 1);
            last = seq;
        }
    }
}

#[tokio::test]
async fn an_sse_stream_that_falls_behind_ends_with_overflow_and_resumes_losing_nothing() {
    let srv = TestServer::start(&["--max-lag", "50", "--retain", "5000"]);
    let (_, _, mut events) = sse_on(small_window(&srv).await, "/sse?since=0", &[]).await;
    flood(&srv, FLOOD.0, FLOOD.1).await;
    let mut last = 0u64;
    let mut overflow = None;
    while let Ok(Some(e)) = tokio::time::timeout(LIMIT, events.next()).await {
        match e.event.as_str() {
            "message" => {
                let seq: u64 = e.id.parse().unwrap();
                assert_eq!(seq, last + 1, "in order, no gap");
                last = seq;
            }
            "overflow" => overflow = Some(serde_json::from_str::<Value>(&e.data).unwrap()),
            other => panic!("unexpected {other}"),
        }
    }
    let overflow = overflow.expect("the stream ends with an overflow record");
    assert_eq!(overflow["next"], last);
    assert!(last < 2_000);
    let (_, _, mut events) = sse(&srv.url("/sse"), &[("Last-Event-ID", &last.to_string())]).await;
    let rest = next_sse_events(&mut events, (2_000 - last) as usize).await;
    assert_eq!(seqs(&rest), ((last + 1)..=2_000).collect::<Vec<_>>());
}
