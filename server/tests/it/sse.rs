use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio::time::Instant;

use crate::{common::*, every_way, ws::set_rate};

every_way!(a_heartbeat_comes_only_after_a_quiet_heartbeat_interval);

#[tokio::test]
async fn sse_streams_every_event_in_order_with_proxy_safe_headers() {
    let srv = TestServer::start(&[]);
    let (status, headers, mut events) = sse(&srv.url("/sse?since=0"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    publish_n(&srv, 20).await;
    let got = next_sse_events(&mut events, 20).await;
    assert_eq!(seqs(&got), (1..=20).collect::<Vec<_>>());
    assert_eq!(got[4]["data"], json!({"i": 4}));
}

#[tokio::test]
async fn sse_sends_a_retry_hint_first() {
    let srv = TestServer::start(&["--sse-retry-min", "1500ms", "--sse-retry-max", "1500ms"]);
    let text = curl_sse(&srv.url("/sse")).await;
    assert!(text.starts_with("retry: 1500\n"), "{text:?}");
}

/// What `curl -N` prints of the stream in one second.
async fn curl_sse(url: &str) -> String {
    let url = url.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-sN", "--max-time", "1", &url])
            .output()
            .expect("curl runs")
    })
    .await
    .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn last_event_id_wins_over_the_url_cursor() {
    let srv = TestServer::start(&[]);
    publish_n(&srv, 6).await;
    let (_, _, mut events) = sse(&srv.url("/sse?since=1"), &[("Last-Event-ID", "4")]).await;
    let got = next_sse_events(&mut events, 2).await;
    assert_eq!(seqs(&got), [5, 6]);
}

#[tokio::test]
async fn sse_announces_missed_events_before_the_rest() {
    let srv = TestServer::start(&["--retain", "2"]);
    publish_n(&srv, 5).await;
    let (_, _, mut events) = sse(&srv.url("/sse?since=0"), &[]).await;
    let missed = loop {
        let e = tokio::time::timeout(LIMIT, events.next())
            .await
            .unwrap()
            .unwrap();
        if e.event != "message" {
            break e;
        }
    };
    assert_eq!(missed.event, "missed");
    let notice: serde_json::Value = serde_json::from_str(&missed.data).unwrap();
    assert_eq!(notice, json!({"missed": 3, "next": 3}));
    assert_eq!(seqs(&next_sse_events(&mut events, 2).await), [4, 5]);
}

#[tokio::test]
async fn quiet_stream_gets_comment_heartbeats() {
    let srv = TestServer::start(&["--heartbeat", "200ms", "--ws-client-timeout", "1s"]);
    let text = curl_sse(&srv.url("/sse")).await;
    let beats = text.matches(": heartbeat\n\n").count();
    assert!(
        (2..=6).contains(&beats),
        "{beats} heartbeats in 1 s at 200 ms: {text:?}"
    );
}

#[tokio::test]
async fn curl_follows_the_stream() {
    let srv = TestServer::start(&[]);
    publish_n(&srv, 3).await;
    let text = curl_sse(&srv.url("/sse?since=0")).await;
    for seq in 1..=3 {
        assert!(
            text.contains(&format!("id: {seq}\ndata: {{\"seq\":{seq},")),
            "{text}"
        );
    }
}

/// What a raw `GET /sse` response carried until `until`: its bytes so far (head included), and
/// when each heartbeat comment and each event arrived.
#[derive(Default)]
struct Seen {
    bytes: Vec<u8>,
    heartbeats: Vec<Instant>,
    events: Vec<Instant>,
}

async fn watch(io: &mut Io, until: Instant, seen: &mut Seen) {
    use tokio::io::AsyncReadExt as _;
    let count =
        |bytes: &[u8], what: &[u8]| bytes.windows(what.len()).filter(|w| *w == what).count();
    loop {
        let mut chunk = [0u8; 4096];
        let Ok(read) = tokio::time::timeout_at(until, io.read(&mut chunk)).await else {
            return;
        };
        let n = read.expect("read");
        assert!(
            n > 0,
            "the stream ended: {}",
            String::from_utf8_lossy(&seen.bytes)
        );
        let now = Instant::now();
        let (beats, events) = (
            count(&seen.bytes, b": heartbeat\n\n"),
            count(&seen.bytes, b"\nid: "),
        );
        seen.bytes.extend_from_slice(&chunk[..n]);
        for _ in beats..count(&seen.bytes, b": heartbeat\n\n") {
            seen.heartbeats.push(now);
        }
        for _ in events..count(&seen.bytes, b"\nid: ") {
            seen.events.push(now);
        }
    }
}

/// The SSE half of the one heartbeat policy (the WebSocket half is in `ws`): a comment goes out
/// only when nothing else has for `--heartbeat`, on every way in, since the fast path and
/// actix-web share the stream.
async fn a_heartbeat_comes_only_after_a_quiet_heartbeat_interval(way: Way) {
    use tokio::io::AsyncWriteExt as _;
    let beat = Duration::from_millis(300);
    let srv = way.start(&["--heartbeat", "300ms"]);
    set_rate(&srv, 50).await;
    let mut io = open(srv.addr, srv.cert.as_deref().filter(|_| srv.tls)).await;
    io.write_all(format!("GET /sse HTTP/1.1\r\nHost: {}\r\n\r\n", srv.addr).as_bytes())
        .await
        .unwrap();
    let mut busy = Seen::default();
    watch(&mut io, Instant::now() + beat * 6, &mut busy).await;
    set_rate(&srv, 0).await;
    assert!(
        busy.bytes.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&busy.bytes)
    );
    assert!(
        busy.events.len() > 30,
        "the feed was busy: {} events",
        busy.events.len()
    );
    assert_eq!(
        busy.heartbeats.len(),
        0,
        "heartbeats during {:?} of events",
        beat * 6
    );
    let mut quiet = Seen {
        bytes: busy.bytes,
        ..Seen::default()
    };
    watch(&mut io, Instant::now() + beat * 3, &mut quiet).await;
    let quiet_from = quiet.events.last().or(busy.events.last()).copied().unwrap();
    let first = *quiet
        .heartbeats
        .first()
        .expect("a heartbeat once the feed went quiet");
    assert!(
        first - quiet_from < beat + Duration::from_secs(1),
        "first heartbeat {:?} after the last event; --heartbeat is {beat:?}",
        first - quiet_from
    );
}
