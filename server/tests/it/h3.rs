//! Polls, long polls and SSE over HTTP/3 (`--quic --quic-http3`), driven by the h3 crate's
//! client over real QUIC on loopback: the same events in the same order as over TCP, `since` and
//! `Last-Event-ID` resume, refusals with their reason, and `Alt-Svc` on the TCP responses.

use bytes::{Buf as _, Bytes};
use serde_json::Value;
use web_transport_quinn::http;

use crate::{
    common::*,
    wt::{client, quic_server},
};

type Requests = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;
type Response = h3::client::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

/// An HTTP/3 connection to `srv`, its driver on a task of its own.
async fn connect(srv: &TestServer) -> Requests {
    let (endpoint, config) = client(srv);
    let conn = tokio::time::timeout(
        LIMIT,
        endpoint
            .connect_with(config, srv.addr, "localhost")
            .unwrap(),
    )
    .await
    .expect("handshake in time")
    .expect("QUIC handshake");
    let (mut driver, requests) = h3::client::new(h3_quinn::Connection::new(conn))
        .await
        .expect("HTTP/3 SETTINGS");
    tokio::spawn(async move {
        let _endpoint = endpoint;
        std::future::poll_fn(|cx| driver.poll_close(cx)).await
    });
    requests
}

/// Sends `GET path_and_query` with `headers`; the response head and its stream.
async fn get(
    requests: &mut Requests,
    srv: &TestServer,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> (http::Response<()>, Response) {
    let mut req = http::Request::get(format!(
        "https://localhost:{}{path_and_query}",
        srv.addr.port()
    ));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let mut stream = requests
        .send_request(req.body(()).unwrap())
        .await
        .expect("request sent");
    stream.finish().await.expect("request finished");
    let head = tokio::time::timeout(LIMIT, stream.recv_response())
        .await
        .expect("response in time")
        .expect("response head");
    (head, stream)
}

/// The whole body of `stream`.
async fn body(stream: &mut Response) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(mut chunk) = tokio::time::timeout(LIMIT, stream.recv_data())
        .await
        .expect("body in time")
        .expect("body")
    {
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            out.extend_from_slice(piece);
            let n = piece.len();
            chunk.advance(n);
        }
    }
    out
}

fn seqs_of(batch: &Value) -> Vec<u64> {
    batch["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn polls_and_long_polls_over_http3_read_the_feed_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(&dir, &["--quic-http3"]);
    publish_n(&srv, 3).await;
    let mut h3 = connect(&srv).await;

    let (head, mut stream) = get(&mut h3, &srv, "/poll?since=0", &[]).await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "application/json");
    let batch: Value = serde_json::from_slice(&body(&mut stream).await).unwrap();
    assert_eq!(seqs_of(&batch), [1, 2, 3]);
    assert_eq!(batch["next"], 3);
    let (_, mut stream) = get(&mut h3, &srv, "/poll?since=2", &[]).await;
    let batch: Value = serde_json::from_slice(&body(&mut stream).await).unwrap();
    assert_eq!(seqs_of(&batch), [3]);

    // A long poll held until the next event, on the same connection.
    let held = {
        let mut h3 = h3.clone();
        let srv_addr = srv.addr;
        tokio::spawn(async move {
            let req = http::Request::get(format!(
                "https://localhost:{}/long-poll?since=3&timeout_ms=5000",
                srv_addr.port()
            ))
            .body(())
            .unwrap();
            let mut stream = h3.send_request(req).await.unwrap();
            stream.finish().await.unwrap();
            let head = stream.recv_response().await.unwrap();
            (head.status(), body(&mut stream).await)
        })
    };
    // Per transport: the QUIC connection itself counts in `open_streams` too.
    stats_when(&srv, "the long poll held", |s| {
        s["transports"]["long-poll"]["open"] == 1
    })
    .await;
    publish_n(&srv, 1).await;
    let (status, held) = tokio::time::timeout(LIMIT, held).await.unwrap().unwrap();
    assert_eq!(status, 200);
    let batch: Value = serde_json::from_slice(&held).unwrap();
    assert_eq!(seqs_of(&batch), [4]);

    // Nothing new within the hold: 204, as over TCP.
    let (head, _) = get(&mut h3, &srv, "/long-poll?since=4&timeout_ms=100", &[]).await;
    assert_eq!(head.status(), 204);

    // Bad input is refused with the same status and reason as over TCP.
    let (head, mut stream) = get(&mut h3, &srv, "/poll?since=abc", &[]).await;
    assert_eq!(head.status(), 400);
    let why = String::from_utf8(body(&mut stream).await).unwrap();
    assert!(why.contains("since"), "{why}");
    let (head, mut stream) = get(&mut h3, &srv, "/ws", &[]).await;
    assert_eq!(head.status(), 404);
    let why = String::from_utf8(body(&mut stream).await).unwrap();
    assert!(why.contains("over TCP only"), "{why}");

    // Counted as polls like any other (the refused `since=abc` was never metered, as over TCP).
    let stats = stats_when(&srv, "the polls counted", |s| {
        s["transports"]["short-poll"]["requests"] == 2
    })
    .await;
    assert_eq!(
        stats["transports"]["short-poll"]["events_delivered"], 4,
        "{stats}"
    );
    assert!(
        stats["transports"]["long-poll"]["events_delivered"].as_u64() >= Some(1),
        "{stats}"
    );
}

#[tokio::test]
async fn sse_over_http3_streams_in_order_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(&dir, &["--quic-http3", "--heartbeat", "200ms"]);
    publish_n(&srv, 2).await;
    let mut h3 = connect(&srv).await;
    let (head, mut stream) = get(&mut h3, &srv, "/sse?since=0", &[]).await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let mut published = false;
    let ids = loop {
        let mut chunk = tokio::time::timeout(LIMIT, stream.recv_data())
            .await
            .expect("events in time")
            .expect("the stream is readable")
            .expect("the stream goes on");
        text.push_str(&String::from_utf8_lossy(
            &chunk.copy_to_bytes(chunk.remaining()),
        ));
        let ids: Vec<u64> = text
            .lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .map(|id| id.parse().unwrap())
            .collect();
        if ids.len() >= 2 && !published {
            published = true;
            publish_n(&srv, 2).await;
        }
        if ids.len() >= 4 {
            break ids;
        }
    };
    assert_eq!(ids, [1, 2, 3, 4]);
    assert!(
        text.contains(": heartbeat") || text.starts_with("retry: "),
        "{text}"
    );

    // EventSource's resume: Last-Event-ID wins over the URL's cursor.
    let (_, mut resumed) = get(&mut h3, &srv, "/sse?since=0", &[("last-event-id", "3")]).await;
    let mut text = String::new();
    while !text.contains("id: 4") {
        let mut chunk = tokio::time::timeout(LIMIT, resumed.recv_data())
            .await
            .expect("events in time")
            .expect("readable")
            .expect("goes on");
        text.push_str(&String::from_utf8_lossy(
            &chunk.copy_to_bytes(chunk.remaining()),
        ));
    }
    assert!(!text.contains("id: 3\n"), "{text}");
}

#[tokio::test]
async fn tcp_responses_advertise_http3_only_when_it_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(&dir, &["--quic-http3"]);
    let res = request_to(
        &srv,
        hyper::Request::get(srv.url("/healthz"))
            .body(http_body_util::Full::default())
            .unwrap(),
    )
    .await;
    let advertised = format!("h3=\":{}\"; ma=86400", srv.addr.port());
    assert_eq!(res.headers["alt-svc"], advertised.as_str());
    // The fast path's answers too (a poll and a publish on a kept-alive HTTP/1.1 connection are
    // its), as actix-web's.
    let publish = publish_response(&srv).await;
    assert_eq!(publish.status, 200);
    assert_eq!(publish.headers["alt-svc"], advertised.as_str());
    let poll = request_to(
        &srv,
        hyper::Request::get(srv.url("/poll?since=0"))
            .body(http_body_util::Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(poll.status, 200);
    assert_eq!(poll.headers["alt-svc"], advertised.as_str());

    let dir = tempfile::tempdir().unwrap();
    let wt_only = quic_server(&dir, &[]);
    let res = request_to(
        &wt_only,
        hyper::Request::get(wt_only.url("/healthz"))
            .body(http_body_util::Full::default())
            .unwrap(),
    )
    .await;
    assert!(res.headers.get("alt-svc").is_none(), "{:?}", res.headers);
}

#[tokio::test]
async fn shutdown_ends_http3_streams_and_answers_held_long_polls() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(&dir, &["--quic-http3", "--shutdown-grace", "2s"]);
    let mut h3 = connect(&srv).await;
    let (_, mut events) = get(&mut h3, &srv, "/sse", &[]).await;
    let held = {
        let mut h3 = h3.clone();
        let port = srv.addr.port();
        tokio::spawn(async move {
            let req = http::Request::get(format!(
                "https://localhost:{port}/long-poll?timeout_ms=30000"
            ))
            .body(())
            .unwrap();
            let mut stream = h3.send_request(req).await.unwrap();
            stream.finish().await.unwrap();
            stream.recv_response().await.unwrap().status()
        })
    };
    // Two requests, and their QUIC connection, which counts in the connection limits too.
    stats_when(&srv, "the stream and the long poll are open", |s| {
        open_streams(s) >= 3
            && s["transports"]["sse"]["open"] == 1
            && s["transports"]["long-poll"]["open"] == 1
    })
    .await;
    let started = std::time::Instant::now();
    let stopped = tokio::task::spawn_blocking(move || srv.stop());
    // The SSE body ends (its end of stream, not a reset), with no event in it.
    let text = String::from_utf8(body(&mut events).await).unwrap();
    assert!(!text.contains("id: "), "{text}");
    let status = tokio::time::timeout(LIMIT, held).await.unwrap().unwrap();
    assert_eq!(status, 503);
    stopped.await.unwrap().expect("server exits cleanly");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn http3_answers_follow_the_origin_list_and_bound_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(&dir, &["--quic-http3", "--quic-max-header-bytes", "2048"]);
    let mut h3 = connect(&srv).await;
    let own = format!("https://localhost:{}", srv.addr.port());
    let (head, _) = get(&mut h3, &srv, "/poll", &[("origin", &own)]).await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["access-control-allow-origin"], own.as_str());
    // A foreign page gets the answer without CORS, so its browser keeps it from the page.
    let (head, _) = get(
        &mut h3,
        &srv,
        "/poll",
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(head.status(), 200);
    assert!(head.headers().get("access-control-allow-origin").is_none());
    // --quic-max-header-bytes goes out in the server's SETTINGS: a conforming client does not
    // send a larger head (this one says so), and the server's HTTP/3 layer refuses one that does
    // (431) before any handler sees it.
    let big = "x".repeat(4096);
    let req = http::Request::get(format!("https://localhost:{}/poll", srv.addr.port()))
        .header("x-big", big.as_str())
        .body(())
        .unwrap();
    let refused = async {
        let mut stream = h3.send_request(req).await?;
        stream.finish().await?;
        stream.recv_response().await.map(|head| head.status())
    };
    match tokio::time::timeout(LIMIT, refused)
        .await
        .expect("answered in time")
    {
        Ok(status) => assert_eq!(status, 431),
        Err(e) => assert!(e.to_string().contains("too big"), "{e}"),
    }
    let stats = stats_when(&srv, "the polls counted", |s| {
        s["transports"]["short-poll"]["requests"] == 2
    })
    .await;
    assert_eq!(stats["transports"]["short-poll"]["requests"], 2, "{stats}");
}

/// A `POST /publish` over TCP (TLS), its whole response.
async fn publish_response(srv: &TestServer) -> crate::common::Response {
    request_to(
        srv,
        hyper::Request::post(srv.url("/publish"))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(Bytes::from_static(b"{\"n\":1}")))
            .unwrap(),
    )
    .await
}

/// An HTTP/3 QUIC connection counts in the connection limits from its first packet, as a
/// WebTransport one: past `--max-connections` or `--max-connections-per-ip` the next is closed
/// after its handshake, the limit named, though the first sent no request.
#[tokio::test]
async fn quic_connections_count_in_the_connection_limits() {
    for (flag, named) in [
        ("--max-connections", "--max-connections"),
        ("--max-connections-per-ip", "--max-connections-per-ip"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let srv = quic_server(&dir, &["--quic-http3", flag, "1"]);
        let _first = connect(&srv).await;
        let (endpoint, config) = client(&srv);
        let second = tokio::time::timeout(
            LIMIT,
            endpoint
                .connect_with(config, srv.addr, "localhost")
                .unwrap(),
        )
        .await
        .expect("handshake in time")
        .expect("QUIC handshake");
        let closed = tokio::time::timeout(LIMIT, second.closed())
            .await
            .expect("closed in time");
        assert!(closed.to_string().contains(named), "{flag}: {closed}");
    }
}

/// A browser that moved the origin to HTTP/3 asks it for everything: the page, `/stats`,
/// `/quic` come from the same app as over TCP, and the polls are counted as HTTP/3.
#[tokio::test]
async fn every_other_route_is_answered_over_http3_by_the_same_app() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(&dir, &["--quic-http3"]);
    let mut h3 = connect(&srv).await;

    let (head, mut stream) = get(&mut h3, &srv, "/", &[]).await;
    assert_eq!(head.status(), 200);
    assert!(
        head.headers().get("alt-svc").is_none(),
        "no Alt-Svc over HTTP/3"
    );
    let page = String::from_utf8(body(&mut stream).await).unwrap();
    assert!(page.contains("<title>feedlab"), "{page:.200}");

    let (head, mut stream) = get(&mut h3, &srv, "/nothing-here", &[]).await;
    assert_eq!(head.status(), 404);
    let _ = body(&mut stream).await;

    let (head, _) = get(&mut h3, &srv, "/poll?since=0", &[]).await;
    assert_eq!(head.status(), 200);
    let (head, mut stream) = get(&mut h3, &srv, "/stats", &[]).await;
    assert_eq!(head.status(), 200);
    let stats: Value = serde_json::from_slice(&body(&mut stream).await).unwrap();
    let polls = &stats["transports"]["short-poll"];
    assert_eq!(polls["requests"], 1);
    assert_eq!(polls["requests_by_version"]["http/3"], 1, "{polls}");

    let (head, mut stream) = get(&mut h3, &srv, "/quic", &[]).await;
    assert_eq!(head.status(), 200);
    let quic: Value = serde_json::from_slice(&body(&mut stream).await).unwrap();
    assert_eq!(quic["serves"], "http3");
    assert_eq!(quic["port"], srv.addr.port());
    assert!(
        quic["why"].as_str().unwrap().contains("--quic-http3"),
        "{quic}"
    );
}
