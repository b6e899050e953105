//! WebTransport at `/wt` (`--quic`), driven by web-transport-quinn's client over real QUIC on
//! loopback: the feed in order on one stream, `since` and `missed`, talk-back, heartbeats, the
//! Origin check and the stream limit.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use serde_json::Value;
use web_transport_quinn::{
    proto::ConnectRequest, quinn, ClientError, ConnectError, RecvStream, Session,
};

use crate::common::*;

/// A TLS server with the QUIC listener, and where its certificate is.
pub(crate) fn quic_server(dir: &tempfile::TempDir, extra: &[&str]) -> TestServer {
    let cert = dir.path().join("cert.pem").display().to_string();
    let mut args = vec!["--tls-self-signed", "--tls-write-cert", &cert, "--quic"];
    args.extend_from_slice(extra);
    TestServer::start(&args)
}

/// A QUIC client endpoint that trusts `srv`'s certificate, with ALPN `h3`.
pub(crate) fn client(srv: &TestServer) -> (quinn::Endpoint, quinn::ClientConfig) {
    use rustls::pki_types::{pem::PemObject as _, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(srv.cert.as_ref().unwrap()).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let endpoint = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    (endpoint, quinn::ClientConfig::new(Arc::new(crypto)))
}

/// Opens a session at `path_and_query` with `headers`: the connection (kept, to read its close
/// reason) and the session or why it failed.
async fn open(
    srv: &TestServer,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> (quinn::Connection, Result<Session, ClientError>) {
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
    let url = url::Url::parse(&format!(
        "https://localhost:{}{path_and_query}",
        srv.addr.port()
    ))
    .unwrap();
    let mut request = ConnectRequest::new(url);
    for (name, value) in headers {
        request = request.with_header(
            web_transport_quinn::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            web_transport_quinn::http::HeaderValue::from_str(value).unwrap(),
        );
    }
    let session = tokio::time::timeout(LIMIT, Session::connect(conn.clone(), request))
        .await
        .expect("CONNECT answered in time");
    (conn, session)
}

/// A session that must open, and its feed stream.
async fn subscribe(srv: &TestServer, path_and_query: &str) -> (Session, Lines) {
    let (_, session) = open(srv, path_and_query, &[]).await;
    let session = session.expect("session opens");
    let feed = tokio::time::timeout(LIMIT, session.accept_uni())
        .await
        .expect("feed stream in time")
        .expect("feed stream");
    (
        session,
        Lines {
            feed,
            buf: Vec::new(),
        },
    )
}

/// The feed stream, line by line.
struct Lines {
    feed: RecvStream,
    buf: Vec<u8>,
}

impl Lines {
    /// The next line (without its `\n`).
    async fn next(&mut self) -> String {
        loop {
            if let Some(at) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=at).collect();
                return String::from_utf8(line[..at].to_vec()).unwrap();
            }
            let chunk = tokio::time::timeout(LIMIT, self.feed.read_chunk(64 * 1024, true))
                .await
                .expect("a line in time")
                .expect("the feed stream is readable")
                .expect("the feed stream goes on");
            self.buf.extend_from_slice(&chunk.bytes);
        }
    }

    /// The next line that is not a heartbeat, as JSON.
    async fn json(&mut self) -> Value {
        loop {
            let line = self.next().await;
            if !line.is_empty() {
                return serde_json::from_str(&line).unwrap();
            }
        }
    }
}

/// The status a CONNECT was refused with.
fn refused_with(session: Result<Session, ClientError>) -> u16 {
    match session {
        Err(ClientError::HttpError(ConnectError::ErrorStatus(status))) => status.as_u16(),
        Err(ClientError::HttpError(ConnectError::ProtoError(
            web_transport_quinn::proto::ConnectError::WrongStatus(Some(status)),
        ))) => status.as_u16(),
        other => panic!("expected a refusal, got {:?}", other.map(|_| "a session")),
    }
}

/// Sends `message` on a stream of its own and returns the server's reply.
async fn talk(session: &Session, message: &str) -> Value {
    let (mut send, mut recv) = session.open_bi().await.unwrap();
    send.write_all(message.as_bytes()).await.unwrap();
    send.finish().unwrap();
    let reply = tokio::time::timeout(LIMIT, recv.read_to_end(64 * 1024))
        .await
        .expect("reply in time")
        .expect("reply");
    serde_json::from_slice(&reply).unwrap()
}

async fn publish(session: &Session, n: u64) -> u64 {
    let reply = talk(
        session,
        &format!(r#"{{"op":"publish","data":{{"n":{n}}}}}"#),
    )
    .await;
    assert_eq!(reply["op"], "published", "{reply}");
    reply["seq"].as_u64().unwrap()
}

#[tokio::test]
async fn events_arrive_in_order_and_a_resume_with_since_gets_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(&dir, &[]);
    let (session, mut lines) = subscribe(&srv, "/wt?since=0&client=wt-a").await;
    for n in 1..=3 {
        assert_eq!(publish(&session, n).await, n);
    }
    for n in 1..=3 {
        let e = lines.json().await;
        assert_eq!(e["seq"], n, "{e}");
        assert_eq!(e["data"]["n"], n, "{e}");
        assert!(e["ts"].as_u64().unwrap() > 0, "{e}");
    }
    // Inputs are acknowledged as on a WebSocket.
    assert_eq!(
        talk(&session, r#"{"op":"input","n":7}"#).await,
        serde_json::json!({"op":"ack","n":7})
    );
    session.close(0, b"done");

    let (_again, mut lines) = subscribe(&srv, "/wt?since=1").await;
    assert_eq!(lines.json().await["seq"], 2);
    assert_eq!(lines.json().await["seq"], 3);
}

#[tokio::test]
async fn a_cursor_out_of_retention_is_told_what_it_missed() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(&dir, &["--retain", "4", "--max-lag", "3"]);
    // Its own feed stream is kept open (dropped, it would stop the session).
    let (publisher, _own) = subscribe(&srv, "/wt").await;
    for n in 1..=10 {
        publish(&publisher, n).await;
    }
    let (_late, mut lines) = subscribe(&srv, "/wt?since=0").await;
    let missed = lines.json().await;
    assert_eq!(missed["op"], "missed", "{missed}");
    assert_eq!(missed["missed"], 6, "{missed}");
    assert_eq!(missed["next"], 6, "{missed}");
    for seq in 7..=10 {
        assert_eq!(lines.json().await["seq"], seq);
    }
}

#[tokio::test]
async fn a_quiet_session_gets_heartbeats() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(&dir, &["--heartbeat", "100ms"]);
    let (_session, mut lines) = subscribe(&srv, "/wt").await;
    assert_eq!(lines.next().await, "", "an empty line is the heartbeat");
    assert_eq!(lines.next().await, "");
}

#[tokio::test]
async fn a_foreign_origin_is_refused_with_403_and_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(&dir, &[]);
    let (conn, session) = open(&srv, "/wt", &[("origin", "https://evil.example")]).await;
    assert_eq!(refused_with(session), 403);
    let closed = tokio::time::timeout(LIMIT, conn.closed()).await.unwrap();
    let quinn::ConnectionError::ApplicationClosed(close) = closed else {
        panic!("expected the server to close with a reason, got {closed:?}");
    };
    let reason = String::from_utf8_lossy(&close.reason);
    assert!(reason.contains("evil.example"), "{reason}");

    // Wrong path: 404, with the path named.
    let (conn, session) = open(&srv, "/nope", &[]).await;
    assert_eq!(refused_with(session), 404);
    let closed = tokio::time::timeout(LIMIT, conn.closed()).await.unwrap();
    assert!(closed.to_string().contains("/nope"), "{closed}");
}

#[tokio::test]
async fn a_client_opening_streams_without_end_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(
        &dir,
        &["--quic-max-bidi-streams", "4", "--request-timeout", "1s"],
    );
    let (session, _lines) = subscribe(&srv, "/wt").await;
    // Streams opened and never finished: QUIC's stream credit lets 3 open beside the CONNECT
    // stream, and no more however long the client tries.
    let mut held = Vec::new();
    for _ in 0..20 {
        match tokio::time::timeout(Duration::from_millis(300), session.open_bi()).await {
            Ok(Ok((mut send, recv))) => {
                let _ = send.write_all(b"{\"op\":").await;
                held.push((send, recv));
            }
            _ => break,
        }
    }
    assert_eq!(held.len(), 3, "streams beyond --quic-max-bidi-streams");
    // And an unfinished message ends the session with a reason within --request-timeout.
    let why = tokio::time::timeout(LIMIT, session.closed()).await.unwrap();
    assert!(
        why.to_string().contains("--request-timeout"),
        "closed with: {why}"
    );
}

#[tokio::test]
async fn connections_count_in_max_connections() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(&dir, &["--max-connections", "1"]);
    let (_first, _lines) = subscribe(&srv, "/wt").await;
    let (conn, session) = {
        let (endpoint, config) = client(&srv);
        let conn = endpoint
            .connect_with(config, srv.addr, "localhost")
            .unwrap()
            .await
            .unwrap();
        let url = url::Url::parse(&format!("https://localhost:{}/wt", srv.addr.port())).unwrap();
        let session = tokio::time::timeout(LIMIT, Session::connect(conn.clone(), url)).await;
        (conn, session)
    };
    assert!(
        !matches!(session, Ok(Ok(_))),
        "a second connection past --max-connections"
    );
    let closed = tokio::time::timeout(LIMIT, conn.closed()).await.unwrap();
    assert!(closed.to_string().contains("--max-connections"), "{closed}");
}

/// A session in a variant (`mode=streams` or `datagrams`) and its control stream: the one
/// bidirectional stream the server opens.
async fn subscribe_mode(srv: &TestServer, path_and_query: &str) -> (Session, Lines) {
    let (_, session) = open(srv, path_and_query, &[]).await;
    let session = session.expect("session opens");
    let (_, feed) = tokio::time::timeout(LIMIT, session.accept_bi())
        .await
        .expect("control stream in time")
        .expect("control stream");
    (
        session,
        Lines {
            feed,
            buf: Vec::new(),
        },
    )
}

#[tokio::test]
async fn streams_mode_sends_each_event_on_a_stream_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(&dir, &[]);
    let (session, _control) = subscribe_mode(&srv, "/wt?since=0&mode=streams").await;
    for n in 1..=5 {
        assert_eq!(publish(&session, n).await, n);
    }
    let mut seqs = Vec::new();
    let mut bytes = 0;
    for _ in 1..=5 {
        let mut event = tokio::time::timeout(LIMIT, session.accept_uni())
            .await
            .expect("an event stream in time")
            .expect("an event stream");
        let body = tokio::time::timeout(LIMIT, event.read_to_end(64 * 1024))
            .await
            .expect("the event in time")
            .expect("one event, then the stream's end");
        bytes += body.len() as u64;
        let e: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(e["data"]["n"], e["seq"], "{e}");
        seqs.push(e["seq"].as_u64().unwrap());
    }
    // Streams may be accepted in any order; the client sorts by seq.
    seqs.sort_unstable();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    let stats = stats_when(&srv, "five events delivered as wt-streams", |s| {
        s["transports"]["wt-streams"]["events_delivered"] == 5
    })
    .await;
    let row = &stats["transports"]["wt-streams"];
    assert_eq!(row["requests"], 1, "{row}");
    assert!(row["bytes_written"].as_u64().unwrap() >= bytes, "{row}");
    assert_eq!(stats["transports"]["wt"]["events_delivered"], 0);
}

#[tokio::test]
async fn datagrams_mode_sends_datagrams_and_resends_a_lost_one_on_a_stream() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(&dir, &["--wt-head-interval", "50ms"]);
    let (session, mut control) = subscribe_mode(&srv, "/wt?since=0&mode=datagrams").await;
    for n in 1..=4 {
        assert_eq!(publish(&session, n).await, n);
    }
    let mut seqs = Vec::new();
    while seqs.len() < 4 {
        let datagram = tokio::time::timeout(LIMIT, session.read_datagram())
            .await
            .expect("a datagram in time")
            .expect("a datagram");
        let e: Value = serde_json::from_slice(&datagram).unwrap();
        seqs.push(e["seq"].as_u64().unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, [1, 2, 3, 4]);
    // The last ones' loss would show in no gap: the head line says what was sent.
    assert_eq!(
        control.json().await,
        serde_json::json!({"op":"head","seq":4})
    );
    // Say seq 2 and 3 were lost (this client drops them on purpose): asked for again with the
    // cursor before them, they come as lines on the asking stream, which then ends.
    let (mut send, mut recv) = session.open_bi().await.unwrap();
    send.write_all(br#"{"op":"resend","since":1,"until":3}"#)
        .await
        .unwrap();
    send.finish().unwrap();
    let reply = tokio::time::timeout(LIMIT, recv.read_to_end(64 * 1024))
        .await
        .expect("resend in time")
        .expect("resend");
    let lines: Vec<Value> = String::from_utf8(reply)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let resent: Vec<_> = lines.iter().map(|e| e["seq"].clone()).collect();
    assert_eq!(resent, [2, 3], "{lines:?}");
}

#[tokio::test]
async fn datagrams_mode_sends_events_too_large_for_a_datagram_on_the_control_stream() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(&dir, &["--wt-datagram-max-bytes", "10"]);
    let (session, mut control) = subscribe_mode(&srv, "/wt?since=0&mode=datagrams").await;
    for n in 1..=3 {
        publish(&session, n).await;
    }
    for n in 1..=3 {
        assert_eq!(control.json().await["seq"], n);
    }
}

#[tokio::test]
async fn an_unknown_mode_is_refused_with_400_and_the_modes_named() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(&dir, &[]);
    let (conn, session) = open(&srv, "/wt?mode=carrier-pigeon", &[]).await;
    assert_eq!(refused_with(session), 400);
    let closed = tokio::time::timeout(LIMIT, conn.closed()).await.unwrap();
    let why = closed.to_string();
    assert!(
        why.contains("`stream`, `streams` or `datagrams`") && why.contains("carrier-pigeon"),
        "{why}"
    );
}

#[tokio::test]
async fn a_client_that_never_reads_its_event_streams_is_closed_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(
        &dir,
        &["--wt-max-event-streams", "8", "--send-timeout", "500ms"],
    );
    // It takes its control stream and nothing else.
    let (stalled, _control) = subscribe_mode(&srv, "/wt?mode=streams").await;
    for n in 1..=300 {
        publish_over_tcp(&srv, n).await;
    }
    let why = tokio::time::timeout(LIMIT, stalled.closed()).await.unwrap();
    let why = why.to_string();
    assert!(
        why.contains("client too slow") && why.contains("event streams unread"),
        "closed with: {why}"
    );
    // What the server handed to it stopped at its stream credit (quinn's default, 100 streams):
    // the other 200 events were never held for it.
    let stats = stats_when(&srv, "stats", |_| true).await;
    let delivered = stats["transports"]["wt-streams"]["events_delivered"]
        .as_u64()
        .unwrap();
    assert!(
        delivered <= 100,
        "{delivered} events handed to a client that reads none"
    );
}

async fn publish_over_tcp(srv: &TestServer, n: u64) -> u64 {
    crate::common::publish(srv, serde_json::json!({ "n": n })).await
}

/// Each variant's sessions are `open` under their own transport in `/stats` (and their
/// client's), not under `wt`, where a connection is counted until its CONNECT names the
/// variant; and none are once they closed.
#[tokio::test]
async fn each_variant_counts_its_open_sessions_under_its_own_transport() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(&dir, &[]);
    let (stream, _a) = subscribe(&srv, "/wt").await;
    let (streams, _b) = subscribe_mode(&srv, "/wt?mode=streams").await;
    let (datagrams, _c) = subscribe_mode(&srv, "/wt?mode=datagrams&client=wt-open").await;
    let (more_datagrams, _d) = subscribe_mode(&srv, "/wt?mode=datagrams").await;
    let open = |s: &Value, t: &str| s["transports"][t]["open"].as_i64().unwrap();
    // Each session is moved under its variant before its CONNECT is answered.
    let stats = stats_when(&srv, "stats", |_| true).await;
    assert_eq!(
        [
            open(&stats, "wt"),
            open(&stats, "wt-streams"),
            open(&stats, "wt-datagrams")
        ],
        [1, 1, 2],
        "open sessions of wt, wt-streams, wt-datagrams: {}",
        stats["transports"]
    );
    assert_eq!(stats["connections"]["open_streams"], 4);
    let client = get_quic_json(&srv, "/stats/client/wt-open").await;
    assert_eq!(client["transports"]["wt-datagrams"]["open"], 1, "{client}");
    assert_eq!(client["transports"]["wt"]["open"], 0, "{client}");

    for session in [stream, streams, datagrams, more_datagrams] {
        session.close(0, b"done");
    }
    stats_when(&srv, "every session closed and counted so", |s| {
        ["wt", "wt-streams", "wt-datagrams"]
            .iter()
            .all(|t| open(s, t) == 0)
            && s["connections"]["open_streams"] == 0
    })
    .await;
}

/// `--max-transport-connections` holds from a connection's first packet, before its CONNECT
/// names the variant: the three variants share it.
#[tokio::test]
async fn the_variants_share_max_transport_connections() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(&dir, &["--max-transport-connections", "2"]);
    let (_streams, _a) = subscribe_mode(&srv, "/wt?mode=streams").await;
    let (_datagrams, _b) = subscribe_mode(&srv, "/wt?mode=datagrams").await;
    let (conn, session) = open(&srv, "/wt?mode=streams", &[]).await;
    assert!(session.is_err(), "a third session past the limit");
    let closed = tokio::time::timeout(LIMIT, conn.closed()).await.unwrap();
    assert!(
        closed.to_string().contains("--max-transport-connections"),
        "{closed}"
    );
}

/// A resend (`wt-datagrams` asking for events again) is counted as `resends`, not as a message
/// received; its reply's events and bytes are counted as delivered, as the client reads them.
#[tokio::test]
async fn a_resend_is_counted_apart_from_messages() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(&dir, &[]);
    let (session, _control) = subscribe_mode(&srv, "/wt?since=0&mode=datagrams").await;
    for n in 1..=3 {
        publish_over_tcp(&srv, n).await;
    }
    let before = stats_when(&srv, "three events sent as datagrams", |s| {
        s["transports"]["wt-datagrams"]["events_delivered"] == 3
    })
    .await;
    let (mut send, mut recv) = session.open_bi().await.unwrap();
    let ask = br#"{"op":"resend","since":0,"until":3}"#;
    send.write_all(ask).await.unwrap();
    send.finish().unwrap();
    let reply = tokio::time::timeout(LIMIT, recv.read_to_end(64 * 1024))
        .await
        .expect("resend in time")
        .expect("resend");
    assert_eq!(String::from_utf8_lossy(&reply).lines().count(), 3);
    let after = stats_when(&srv, "the resend's events counted", |s| {
        s["transports"]["wt-datagrams"]["events_delivered"] == 6
    })
    .await;
    let (b, a) = (
        &before["transports"]["wt-datagrams"],
        &after["transports"]["wt-datagrams"],
    );
    assert_eq!(a["resends"], 1, "{a}");
    assert_eq!(a["messages_received"], 0, "a resend is not a message: {a}");
    let written = a["bytes_written"].as_u64().unwrap() - b["bytes_written"].as_u64().unwrap();
    assert!(
        written >= reply.len() as u64,
        "{written} bytes written for a reply of {}",
        reply.len()
    );
    // A message is still one.
    assert_eq!(
        talk(&session, r#"{"op":"input","n":1}"#).await,
        serde_json::json!({"op":"ack","n":1})
    );
    stats_when(&srv, "the input counted as a message", |s| {
        s["transports"]["wt-datagrams"]["messages_received"] == 1
            && s["transports"]["wt-datagrams"]["resends"] == 1
    })
    .await;
}

/// `GET path` from `srv` (over its TLS), as JSON.
async fn get_quic_json(srv: &TestServer, path: &str) -> Value {
    use http_body_util::Full;
    let req = hyper::Request::get(srv.url(path))
        .body(Full::default())
        .unwrap();
    request_to(srv, req).await.json()
}

/// The SHA-256 (base64, as `/quic` gives it) of the certificate `conn`'s server presented.
fn served_hash(conn: &quinn::Connection) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let chain = conn
        .peer_identity()
        .expect("the server's certificate")
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .expect("a rustls chain");
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(chain[0].as_ref()))
}

/// The hashes `/quic` lists, newest first.
fn listed(quic: &Value) -> Vec<String> {
    quic["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha256"].as_str().unwrap().to_owned())
        .collect()
}

/// A certificate valid for seconds is renewed before it expires: `/quic` names the new one
/// first and the old one beside it until it expires, a new connection gets the new one, and a
/// session opened on the old one goes on past the old one's end.
#[tokio::test]
async fn the_quic_certificate_is_renewed_and_open_sessions_survive() {
    let dir = tempfile::tempdir().unwrap();
    let srv = quic_server(
        &dir,
        &[
            "--quic-cert-validity",
            "20s",
            "--quic-cert-renew-before",
            "8s",
        ],
    );
    let (conn, session) = open(&srv, "/wt?since=0", &[]).await;
    let session = session.expect("session opens");
    let mut lines = Lines {
        feed: tokio::time::timeout(LIMIT, session.accept_uni())
            .await
            .unwrap()
            .unwrap(),
        buf: Vec::new(),
    };
    let first = served_hash(&conn);
    let quic = get_quic_json(&srv, "/quic").await;
    assert_eq!(quic["certificate"]["sha256"], first.as_str(), "{quic}");
    assert_eq!(listed(&quic), vec![first.clone()], "{quic}");

    // Renewed about 10 s in: the new one first, the old one still listed (it has 8 s left).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let renewed = loop {
        let quic = get_quic_json(&srv, "/quic").await;
        if quic["certificate"]["sha256"] != first.as_str() {
            break quic;
        }
        assert!(std::time::Instant::now() < deadline, "not renewed: {quic}");
        tokio::time::sleep(feedlab_testkit::POLL).await;
    };
    let hashes = listed(&renewed);
    assert_eq!(hashes.len(), 2, "{renewed}");
    assert_eq!(
        hashes[0],
        renewed["certificate"]["sha256"].as_str().unwrap()
    );
    assert_eq!(hashes[1], first, "the old one is listed until it expires");
    assert_eq!(renewed["why"], Value::Null, "{renewed}");

    // A new connection gets the new certificate.
    let (again, fresh) = open(&srv, "/wt", &[]).await;
    fresh.expect("a session on the new certificate");
    let served = served_hash(&again);
    assert_ne!(served, first);
    assert!(
        listed(&get_quic_json(&srv, "/quic").await).contains(&served),
        "the one served is listed"
    );

    // Once the first has expired it is no longer listed, and the session opened on it goes on.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let quic = get_quic_json(&srv, "/quic").await;
        if !listed(&quic).contains(&first) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never expired: {quic}"
        );
        tokio::time::sleep(feedlab_testkit::POLL).await;
    }
    let seq = publish(&session, 1).await;
    loop {
        let e = lines.json().await;
        if e["seq"] == seq {
            break;
        }
    }
}
