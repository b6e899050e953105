//! The publisher's retries are exactly-once: a publish the server stored but whose answer was
//! lost is retried with the same `Idempotency-Key`, the server replays the first seq, and the
//! feed holds each event once. The lost answer is made on purpose by a proxy that forwards the
//! first request and then cuts the connection before relaying the response.

use std::{sync::Arc, time::Duration};

use loadgen::{
    client::publisher::{self, Stamp},
    net::{tls::TlsOptions, Target},
};
use server::testing::TestServer;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};
use tokio_util::sync::CancellationToken;

/// Forwards to `upstream`; on the first connection, relays one request, waits until the
/// server's answer has begun to arrive (so the event is stored), then drops both sides.
async fn answer_losing_proxy(upstream: std::net::SocketAddr) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut client, _)) = listener.accept().await {
            let mut server = TcpStream::connect(upstream).await.unwrap();
            if std::mem::take(&mut first) {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    let n = client.read(&mut buf).await.unwrap();
                    server.write_all(&buf[..n]).await.unwrap();
                    let _ = server.read(&mut buf).await;
                    // Both dropped here: the client's request was served, its answer is lost.
                });
            } else {
                tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_lost_answer_is_replayed_not_published_twice() {
    let srv = TestServer::start(&[]);
    let upstream = srv.addr;
    let proxy = answer_losing_proxy(upstream).await;
    let url = url::Url::parse(&format!("http://{proxy}/")).unwrap();
    let target = Arc::new(
        Target::from_url(&url, &TlsOptions::default())
            .await
            .unwrap(),
    );
    let published = tokio::time::timeout(
        Duration::from_secs(30),
        publisher::run(
            vec![target],
            20.0,
            Duration::from_millis(500),
            loadgen::payload::Payload::new(loadgen::payload::PayloadKind::Padding, 8, 1),
            Stamp::Sent,
            CancellationToken::new(),
            None,
        ),
    )
    .await
    .expect("publishing ends");
    assert_eq!(published.published, 10, "{published:?}");
    assert!(
        published.retried >= 1,
        "the lost answer was retried: {published:?}"
    );
    assert_eq!(
        (published.replayed, published.maybe_twice),
        (1, 0),
        "the retry found the first publish: {published:?}"
    );
    let stats: serde_json::Value = reqwest_like_get(upstream, "/stats").await;
    assert_eq!(
        stats["feed"]["head"], 10,
        "ten publishes, ten events: none twice"
    );
    assert_eq!(published.acked, (1..=10).collect::<Vec<u64>>());
}

/// A plain HTTP/1.1 GET, parsed as JSON (the body of a `Connection: close` answer).
async fn reqwest_like_get(addr: std::net::SocketAddr, path: &str) -> serde_json::Value {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}
