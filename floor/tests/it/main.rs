//! The floor as loadgen sees it: the built binary on a free port, raw HTTP for publishing, SSE
//! and `/stats` (so exact bytes and chunk framing are checked), tungstenite for WebSockets.

mod loadgen;
mod poll;
mod support;
mod tls;

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use support::{Conn, Floor};
use tokio_tungstenite::tungstenite::{protocol::frame::coding::CloseCode, Message};

/// Every test finishes well inside this, or fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(5);

pub async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test timed out")
}

pub async fn publish(conn: &mut Conn, body: &str) -> u64 {
    let (status, _, res) = conn
        .request(&format!(
            "POST /publish HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&res));
    serde_json::from_slice::<Value>(&res).unwrap()["seq"]
        .as_u64()
        .unwrap()
}

pub async fn stats(conn: &mut Conn) -> Value {
    let (status, _, body) = conn.request("GET /stats HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(status, 200);
    serde_json::from_slice(&body).unwrap()
}

/// Opens `/sse` with extra request headers and checks the streaming head.
async fn open_sse(floor: &Floor, query: &str, headers: &str) -> Conn {
    let mut sse = Conn::open(floor.addr).await;
    open_sse_on(&mut sse, query, headers).await;
    sse
}

/// [`open_sse`] on a connection already open.
pub async fn open_sse_on(sse: &mut Conn, query: &str, headers: &str) {
    sse.send(&format!(
        "GET /sse{query} HTTP/1.1\r\nHost: t\r\n{headers}\r\n"
    ))
    .await;
    let (status, head) = sse.head().await;
    assert_eq!(status, 200, "{head}");
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("content-type: text/event-stream\r\n"),
        "{head}"
    );
    assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
    assert!(head.contains("cache-control: no-cache\r\n"), "{head}");
}

#[tokio::test]
async fn ws_and_sse_clients_get_each_event_in_order_as_the_exact_envelope() {
    let floor = Floor::start(&[]);
    within(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", floor.addr))
            .await
            .expect("WebSocket handshake (tungstenite checks Sec-WebSocket-Accept)");
        let mut sse = open_sse(&floor, "", "").await;
        let mut publisher = Conn::open(floor.addr).await;
        let before = now_us();
        // Published on one keep-alive connection, as loadgen does; bodies are re-serialised
        // compactly.
        let bodies = [r#"{"n":1}"#, "[1, 2,\n 3]", r#""three""#];
        let compact = [r#"{"n":1}"#, "[1,2,3]", r#""three""#];
        for (i, body) in bodies.iter().enumerate() {
            assert_eq!(publish(&mut publisher, body).await, i as u64 + 1);
        }
        let after = now_us();

        for (i, data) in compact.iter().enumerate() {
            let seq = i + 1;
            let Some(Ok(Message::Text(text))) = ws.next().await else {
                panic!("expected a text frame for seq {seq}");
            };
            let ts = serde_json::from_str::<Value>(&text).unwrap()["ts"]
                .as_u64()
                .unwrap();
            assert!((before..=after).contains(&ts), "ts {ts} is publish time");
            assert_eq!(text, format!(r#"{{"seq":{seq},"ts":{ts},"data":{data}}}"#));
            let record = String::from_utf8(sse.chunk().await).unwrap();
            assert_eq!(record, format!("id: {seq}\ndata: {text}\n\n"));
        }

        let s = stats(&mut publisher).await;
        assert_eq!(
            (s["feed"]["head"].as_u64(), s["feed"]["published"].as_u64()),
            (Some(3), Some(3))
        );
        for t in ["ws", "sse"] {
            let c = &s["transports"][t];
            assert_eq!(
                (
                    c["open"].as_i64(),
                    c["requests"].as_u64(),
                    c["events_delivered"].as_u64()
                ),
                (Some(1), Some(1), Some(3)),
                "{t}: {c}"
            );
        }
        assert_eq!(
            s["transports"]["sse"]["bytes_written"].as_u64(),
            Some(sse.bytes_read() as u64),
            "every byte the SSE client read, head and chunk framing included"
        );
        assert_eq!(s["transports"]["short-poll"]["requests"].as_u64(), Some(0));
        assert!(s["connections"]["accepted"].as_u64() >= Some(3));
        assert!(s["process"]["rss_bytes"].as_u64() > Some(0));

        // The client closes; the floor answers 1000 and hangs up.
        ws.send(Message::Close(None)).await.unwrap();
        match ws.next().await {
            Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Normal),
            other => panic!("expected the floor's close frame, got {other:?}"),
        }
        drop(ws);
        drop(sse);
        loop {
            let s = stats(&mut publisher).await;
            if s["connections"]["open_streams"].as_i64() == Some(0) {
                assert_eq!(s["transports"]["ws"]["messages_received"].as_u64(), Some(0));
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn ws_handshake_answers_with_the_rfc_accept_key() {
    let floor = Floor::start(&[]);
    within(async {
        let mut c = Conn::open(floor.addr).await;
        c.send(
            "GET /ws?since=0 HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await;
        let (status, head) = c.head().await;
        assert_eq!(status, 101);
        // RFC 6455 section 1.3's worked example.
        assert!(
            head.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{head}"
        );

        let mut plain = Conn::open(floor.addr).await;
        let (status, _, body) = plain.request("GET /ws HTTP/1.1\r\nHost: t\r\n\r\n").await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    })
    .await;
}

#[tokio::test]
async fn cursors_resume_and_an_expired_one_is_told_what_it_missed() {
    let floor = Floor::start(&["--retain", "2"]);
    within(async {
        let mut publisher = Conn::open(floor.addr).await;
        for _ in 0..4 {
            publish(&mut publisher, "{}").await;
        }
        // seqs 1 and 2 are gone: announced, then 3 and 4.
        let mut sse = open_sse(&floor, "?since=0", "").await;
        assert_eq!(
            sse.chunk().await,
            b"event: missed\ndata: {\"missed\":2,\"next\":2}\n\n"
        );
        assert!(sse.chunk().await.starts_with(b"id: 3\n"));
        assert!(sse.chunk().await.starts_with(b"id: 4\n"));

        // Last-Event-ID wins over since.
        let mut resumed = open_sse(&floor, "?since=0", "Last-Event-ID: 3\r\n").await;
        assert!(resumed.chunk().await.starts_with(b"id: 4\n"));

        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{}/ws?since=1", floor.addr))
                .await
                .unwrap();
        let Some(Ok(Message::Text(notice))) = ws.next().await else {
            panic!("expected the missed notice");
        };
        assert_eq!(notice, r#"{"op":"missed","missed":1,"next":2}"#);
        let Some(Ok(Message::Text(third))) = ws.next().await else {
            panic!("expected seq 3");
        };
        assert!(third.starts_with(r#"{"seq":3,"#), "{third}");

        let mut ahead = Conn::open(floor.addr).await;
        let (status, _, body) = ahead
            .request("GET /sse?since=9 HTTP/1.1\r\nHost: t\r\n\r\n")
            .await;
        assert_eq!(status, 409);
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["head"], 4);
        let mut bad = Conn::open(floor.addr).await;
        let (status, _, _) = bad
            .request("GET /sse?since=x HTTP/1.1\r\nHost: t\r\n\r\n")
            .await;
        assert_eq!(status, 400);
    })
    .await;
}

#[tokio::test]
async fn short_requests_keep_the_connection_and_refusals_say_why() {
    let floor = Floor::start(&[]);
    within(async {
        let mut c = Conn::open(floor.addr).await;
        let (status, _, body) = c.request("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await;
        assert_eq!((status, &body[..]), (200, &b"ok"[..]));
        let (status, _, body) = c
            .request("POST /long-poll HTTP/1.1\r\nHost: t\r\n\r\n")
            .await;
        assert_eq!(status, 405);
        assert!(serde_json::from_slice::<Value>(&body).unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("method not allowed"));
        let (status, _, _) = c.request("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n").await;
        assert_eq!(status, 404);
        let (status, _, _) = c
            .request("POST /publish HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n{nope")
            .await;
        assert_eq!(status, 400);
        // Still the same connection, still in sync.
        assert_eq!(publish(&mut c, "1").await, 1);
    })
    .await;
}

#[tokio::test]
async fn sigterm_ends_streams_with_a_goodbye_and_exits_cleanly() {
    let mut floor = Floor::start(&[]);
    within(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", floor.addr))
            .await
            .unwrap();
        let mut sse = open_sse(&floor, "", "").await;
        floor.terminate();
        match ws.next().await {
            Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Away),
            other => panic!("expected close 1001, got {other:?}"),
        }
        assert_eq!(sse.chunk().await, b"", "the last chunk ends the body");
    })
    .await;
    assert!(floor.wait().success());
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}
