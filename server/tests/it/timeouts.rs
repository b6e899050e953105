//! Timeouts that add up to what the book says (docs/src/reference/settings.md): one request-head deadline whichever path
//! reads the head (`--request-timeout`), and one for a `POST /publish` body (`--body-timeout`).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::{common::*, every_way};

every_way!(
    a_head_trickled_byte_by_byte_gets_408_at_the_request_timeout,
    a_publish_body_trickled_gets_408_at_the_body_timeout,
);

/// Writes `bytes` one at a time, `gap` apart, while reading; returns what the server answered
/// and when (from the first byte), once it closes or answers with a whole head.
async fn trickle(io: Io, bytes: &[u8], gap: Duration) -> (String, Duration) {
    let started = Instant::now();
    let (mut read, mut write) = tokio::io::split(io);
    let bytes = bytes.to_vec();
    let writer = tokio::spawn(async move {
        for b in bytes {
            if write.write_all(&[b]).await.is_err() {
                return;
            }
            // The trickle is the behaviour under test: one byte every `gap`.
            tokio::time::sleep(gap).await;
        }
        // Then nothing more, with the connection open (the writer is aborted once the server
        // has answered).
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(write);
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(Ok(n)) = tokio::time::timeout(LIMIT, read.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if got.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    writer.abort();
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

async fn a_head_trickled_byte_by_byte_gets_408_at_the_request_timeout(way: Way) {
    let srv = way.start(&["--request-timeout", "2s"]);
    for head in [
        &b"GET /sse HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n"[..],
        b"GET /poll HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\r\n",
    ] {
        let io = open(srv.addr, srv.cert.as_deref().filter(|_| srv.tls)).await;
        let (answer, after) = trickle(io, head, Duration::from_millis(250)).await;
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "{answer:?} after {after:?}"
        );
        assert!(
            after > Duration::from_millis(1500) && after < Duration::from_millis(3200),
            "408 after {after:?}; --request-timeout is 2s"
        );
    }
}

async fn a_publish_body_trickled_gets_408_at_the_body_timeout(way: Way) {
    let srv = way.start(&["--body-timeout", "1s"]);
    let io = open(srv.addr, srv.cert.as_deref().filter(|_| srv.tls)).await;
    let (mut read, mut write) = tokio::io::split(io);
    write
        .write_all(b"POST /publish HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for _ in 0..100 {
            if write.write_all(b" ").await.is_err() {
                return;
            }
            // The slow body is the behaviour under test.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(Ok(n)) = tokio::time::timeout(LIMIT, read.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if got.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let after = started.elapsed();
    writer.abort();
    let answer = String::from_utf8_lossy(&got);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "{answer:?} after {after:?}"
    );
    assert!(
        after < Duration::from_millis(2500),
        "408 after {after:?}; --body-timeout is 1s"
    );
    // Nothing was published.
    let stats = request_to(
        &srv,
        hyper::Request::get(srv.url("/stats"))
            .body(http_body_util::Full::default())
            .unwrap(),
    )
    .await
    .json();
    assert_eq!(stats["feed"]["published"], 0);
}
