//! The fast path (`--fast-path`, on by default) and actix-web serve `/sse` and `/ws` alike: the
//! same bytes after the head, the same refusals, and connections it does not take (a reused
//! keep-alive connection, HTTP/1.0) still work through actix-web.

use std::time::Duration;

use serde_json::json;
use server::testing::TestServer;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

use crate::common::{get, open_streams, publish, stats_when};

const LIMIT: Duration = Duration::from_secs(10);

/// Sends `request` on a new connection and reads until `until` appears (or the peer closes).
async fn exchange(srv: &TestServer, request: &[u8], until: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    read_until(&mut tcp, until).await
}

async fn read_until(tcp: &mut TcpStream, until: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(LIMIT, async {
        while !out.windows(until.len()).any(|w| w == until) {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("answer in time");
    out
}

/// The body after the head, which differs only in its `date` line.
pub(crate) fn body(response: &[u8]) -> &[u8] {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    &response[end + 4..]
}

/// The body of a chunked response (as far as it was read).
pub(crate) fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&body[..eol]).unwrap(), 16).unwrap();
        let data = &body[eol + 2..];
        if size == 0 || data.len() < size + 2 {
            break;
        }
        out.extend_from_slice(&data[..size]);
        assert_eq!(&data[size..size + 2], b"\r\n", "chunk ends with CRLF");
        body = &data[size + 2..];
    }
    out
}

/// `"ts":<digits>` with every digit replaced by 0.
pub(crate) fn zero_ts(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut i = 0;
    while let Some(at) = out[i..].windows(5).position(|w| w == b"\"ts\":") {
        i += at + 5;
        while i < out.len() && out[i].is_ascii_digit() {
            out[i] = b'0';
            i += 1;
        }
    }
    out
}

fn head(response: &[u8]) -> String {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    String::from_utf8_lossy(&response[..end]).to_ascii_lowercase()
}

async fn with_events(args: &[&str]) -> TestServer {
    // One `retry:` hint (1 s) for every stream, so that streams compare byte for byte.
    let mut all = vec!["--retain", "100", "--sse-retry-max", "1s"];
    all.extend_from_slice(args);
    let srv = TestServer::start(&all);
    for i in 0..3 {
        publish(&srv, json!({ "i": i, "text": "héllo" })).await;
    }
    srv
}

#[tokio::test]
async fn sse_and_ws_bytes_are_the_same_on_both_paths() {
    let sse = b"GET /sse?since=0 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let ws = b"GET /ws?since=0 HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let mut seen = Vec::new();
    for fast in ["true", "false"] {
        let srv = with_events(&["--fast-path", fast]).await;
        let sse_out = exchange(&srv, sse, "\"i\":2,\"text\":\"héllo\"}}\n\n\r\n".as_bytes()).await;
        let ws_out = exchange(&srv, ws, b"\"i\":2").await;
        assert!(head(&sse_out).contains("content-type: text/event-stream"));
        assert!(head(&sse_out).contains("transfer-encoding: chunked"));
        assert!(head(&ws_out).starts_with("http/1.1 101"));
        assert!(
            head(&ws_out).contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
            "RFC 6455's sample key gets its sample answer: {}",
            head(&ws_out)
        );
        seen.push((body(&sse_out).to_vec(), body(&ws_out).to_vec()));
        srv.stop().unwrap();
    }
    // Publish times differ between the two servers (same width); the fast path writes each
    // event as a chunk of its own where actix-web joins a backlog into one: the stream the
    // client reads is byte for byte the same.
    let sse = |b: &[u8]| String::from_utf8_lossy(&zero_ts(&dechunk(b))).into_owned();
    assert_eq!(sse(&seen[0].0), sse(&seen[1].0), "SSE stream");
    assert!(sse(&seen[0].0).contains("id: 3\ndata: {\"seq\":3,"));
    assert_eq!(zero_ts(&seen[0].1), zero_ts(&seen[1].1), "WebSocket frames");
}

#[tokio::test]
async fn refusals_read_the_same_on_both_paths() {
    for fast in ["true", "false"] {
        let srv = with_events(&[
            "--fast-path",
            fast,
            "--max-connections-per-ip",
            "1",
            "--allowed-origin",
            "http://page.example",
        ])
        .await;
        // A bad cursor and a foreign origin: actix-web's answers either way.
        let bad = exchange(
            &srv,
            b"GET /sse?since=x HTTP/1.1\r\nHost: localhost\r\n\r\n",
            b"}",
        )
        .await;
        assert!(
            head(&bad).starts_with("http/1.1 400"),
            "{fast}: {}",
            head(&bad)
        );
        assert!(String::from_utf8_lossy(body(&bad)).contains("`since` must be"));
        let foreign = exchange(
            &srv,
            b"GET /ws HTTP/1.1\r\nHost: localhost\r\nOrigin: http://evil.example\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            b"}",
        )
        .await;
        assert!(
            head(&foreign).starts_with("http/1.1 403"),
            "{fast}: {}",
            head(&foreign)
        );
        // A limit: the second stream from one address gets 503 with Retry-After and a reason.
        let mut first = TcpStream::connect(srv.addr).await.unwrap();
        first
            .write_all(b"GET /sse HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        read_until(&mut first, b"resuming after").await;
        let second = exchange(
            &srv,
            b"GET /sse HTTP/1.1\r\nHost: localhost\r\nOrigin: http://page.example\r\n\r\n",
            b"}",
        )
        .await;
        assert!(
            head(&second).contains("access-control-allow-origin: http://page.example"),
            "{fast}: an allowed page can read the refusal: {}",
            head(&second)
        );
        assert!(
            head(&second).starts_with("http/1.1 503"),
            "{fast}: {}",
            head(&second)
        );
        assert!(head(&second).contains("retry-after: 1"));
        assert!(String::from_utf8_lossy(body(&second)).contains("too many connections"));
        drop(first);
        srv.stop().unwrap();
    }
}

#[tokio::test]
async fn connections_the_fast_path_does_not_take_still_stream() {
    let srv = with_events(&[]).await;
    // A keep-alive connection that asked for something else first.
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut tcp, b"ok").await;
    tcp.write_all(b"GET /sse?since=0 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let out = read_until(&mut tcp, b"\"i\":2").await;
    assert!(String::from_utf8_lossy(&out).contains("id: 3\ndata:"));
    // HTTP/1.0, which cannot have chunked responses.
    let out = exchange(
        &srv,
        b"GET /sse?since=0 HTTP/1.0\r\nHost: localhost\r\n\r\n",
        b"\"i\":2",
    )
    .await;
    assert!(head(&out).contains(" 200 ok"), "{}", head(&out));
    assert!(String::from_utf8_lossy(&out).contains("id: 3\ndata:"));
    assert_eq!(get(&srv.url("/healthz")).await.status, 200);
}

#[tokio::test]
async fn an_sse_stream_ends_at_its_clients_fin_and_counts_nothing_after() {
    let srv = with_events(&[]).await;
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(b"GET /sse?since=3 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut tcp, b"resuming after seq 3").await;
    let sse = |stats: &serde_json::Value| stats["transports"]["sse"].clone();
    let open = sse(&get(&srv.url("/stats")).await.json());
    assert_eq!(open["open"], 1, "{open}");
    // The client closes its side: the server ends the stream at once (the client's side
    // reads the end), without waiting for a write to fail.
    tcp.shutdown().await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(LIMIT, tcp.read_to_end(&mut rest))
        .await
        .expect("the server closes after the client's FIN")
        .unwrap();
    let closed = sse(&get(&srv.url("/stats")).await.json());
    assert_eq!(closed["open"], 0, "{closed}");
    // An event published now is delivered to nobody: no bytes, no delivery counted.
    publish(&srv, json!({ "after": "fin" })).await;
    // Absence cannot be waited for: this pause is the window in which a wrong delivery would
    // show up in the counts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = sse(&get(&srv.url("/stats")).await.json());
    assert_eq!(
        after["events_delivered"], closed["events_delivered"],
        "{after}"
    );
    assert_eq!(after["bytes_written"], closed["bytes_written"], "{after}");
}

/// A masked client frame.
fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [7u8, 1, 9, 3];
    let mut f = vec![(u8::from(fin) << 7) | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[tokio::test]
async fn fast_path_websocket_joins_fragments_answers_pings_and_closes_cleanly() {
    let srv = with_events(&[]).await;
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    read_until(&mut tcp, b"\r\n\r\n").await;
    let mut frames = client_frame(false, 0x1, b"{\"op\":\"publish\",");
    frames.extend(client_frame(true, 0x9, b"hi"));
    frames.extend(client_frame(true, 0x0, b"\"data\":42}"));
    tcp.write_all(&frames).await.unwrap();
    // The pong, the answer, and the published event as a frame (the event is written after
    // the answer, so reading up to it has read everything).
    let out = read_until(&mut tcp, b"\"data\":42}").await;
    assert!(out.windows(4).any(|w| w == [0x8a, 2, b'h', b'i']), "pong");
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("{\"op\":\"published\",\"seq\":4}"), "{text}");
    // A close is answered with the same code, and the connection ends.
    tcp.write_all(&client_frame(true, 0x8, &1000u16.to_be_bytes()))
        .await
        .unwrap();
    let out = read_until(&mut tcp, b"\x88\x02\x03\xe8").await;
    assert!(
        out.ends_with(b"\x88\x02\x03\xe8"),
        "close 1000 answered: {out:?}"
    );
    let mut rest = Vec::new();
    let n = tokio::time::timeout(LIMIT, tcp.read_to_end(&mut rest))
        .await
        .expect("closed in time")
        .unwrap();
    assert_eq!(n, 0, "nothing after the close frame");
}

/// Reads one response (head, and a body of its `content-length`) from `pending` and the
/// socket; returns its head lines without `date`, sorted (actix-web's header order is a hash
/// map's), and its body. `None` when the server closed the connection before a response.
async fn next_response(
    tcp: &mut TcpStream,
    pending: &mut Vec<u8>,
) -> Option<(Vec<String>, Vec<u8>)> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse().unwrap());
            if pending.len() >= end + 4 + len {
                let body = pending[end + 4..end + 4 + len].to_vec();
                pending.drain(..end + 4 + len);
                let mut lines: Vec<String> = head
                    .lines()
                    .filter(|l| !l.starts_with("date: "))
                    .map(str::to_owned)
                    .collect();
                lines[1..].sort();
                return Some((lines, body));
            }
        }
        let n = tokio::time::timeout(LIMIT, tcp.read(&mut buf))
            .await
            .expect("response in time")
            .unwrap_or(0);
        if n == 0 {
            assert!(pending.is_empty(), "cut off: {pending:?}");
            return None;
        }
        pending.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn a_keep_alive_connection_polls_then_is_handed_to_actix_web_with_the_same_bytes() {
    let publish_body = r#"{"after":"polls"}"#;
    let requests = [
        "GET /poll?since=0&client=ka HTTP/1.1\r\nHost: localhost\r\n\r\n".to_owned(),
        "GET /poll?since=3 HTTP/1.1\r\nHost: localhost\r\nOrigin: http://page.example\r\n\r\n"
            .to_owned(),
        "GET /long-poll?since=3&timeout_ms=100 HTTP/1.1\r\nHost: localhost\r\n\r\n".to_owned(),
        "GET /long-poll?since=2 HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n"
            .to_owned(),
        // Not the fast path's: actix-web answers it, on the connection the fast path served.
        format!(
            "POST /publish HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{publish_body}",
            publish_body.len()
        ),
        "GET /poll?since=x HTTP/1.1\r\nHost: localhost\r\n\r\n".to_owned(),
        // Now actix-web's connection: a poll it serves reads the same.
        "GET /poll?since=3 HTTP/1.1\r\nHost: localhost\r\n\r\n".to_owned(),
    ];
    let mut seen = Vec::new();
    for fast in ["true", "false"] {
        let srv = with_events(&[
            "--fast-path",
            fast,
            "--allowed-origin",
            "http://page.example",
        ])
        .await;
        let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
        let mut pending = Vec::new();
        let mut responses = Vec::new();
        for request in &requests {
            tcp.write_all(request.as_bytes()).await.unwrap();
            let (head, body) = next_response(&mut tcp, &mut pending)
                .await
                .unwrap_or_else(|| panic!("{fast}: no answer to {request:?}"));
            responses.push((head, zero_ts(&body)));
        }
        // The client closes its side: the server closes the connection, with nothing more.
        tcp.shutdown().await.unwrap();
        assert!(next_response(&mut tcp, &mut pending).await.is_none());
        let stats = get(&srv.url("/stats/client/ka")).await;
        assert_eq!(
            stats.status, 200,
            "{fast}: the poll was counted for its client"
        );
        srv.stop().unwrap();
        seen.push(responses);
    }
    let (fast, actix) = (&seen[0], &seen[1]);
    let status = |i: usize| fast[i].0[0].clone();
    assert_eq!(status(0), "http/1.1 200 ok");
    assert!(String::from_utf8_lossy(&fast[0].1).contains("\"i\":2"));
    assert_eq!(fast[1].1, br#"{"events":[],"next":3,"missed":0}"#);
    assert!(fast[1]
        .0
        .contains(&"access-control-allow-origin: http://page.example".to_owned()));
    assert_eq!(status(2), "http/1.1 204 no content");
    assert!(String::from_utf8_lossy(&fast[3].1).contains("\"seq\":3"));
    assert!(String::from_utf8_lossy(&fast[4].1).contains("\"seq\":4"));
    assert_eq!(status(5), "http/1.1 400 bad request");
    assert!(String::from_utf8_lossy(&fast[6].1).contains("\"after\":\"polls\""));
    for (i, (f, a)) in fast.iter().zip(actix).enumerate() {
        assert_eq!(
            f,
            a,
            "answer {i} to {:?}: fast path {} / actix-web {}",
            requests[i],
            String::from_utf8_lossy(&f.1),
            String::from_utf8_lossy(&a.1)
        );
    }
}

#[tokio::test]
async fn a_held_long_poll_ends_when_its_client_leaves() {
    let srv = with_events(&["--max-connections", "1"]).await;
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(b"GET /long-poll?since=3 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    // Held: the one connection allowed is taken, so a second long poll is refused, with the
    // reason, on a connection that stays open.
    stats_when(&srv, "the first long poll is held", |s| {
        open_streams(s) == 1
    })
    .await;
    let mut other = TcpStream::connect(srv.addr).await.unwrap();
    let mut pending = Vec::new();
    other
        .write_all(b"GET /long-poll?since=3 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = next_response(&mut other, &mut pending).await.unwrap();
    assert_eq!(head[0], "http/1.1 503 service unavailable", "{head:?}");
    assert!(head.contains(&"retry-after: 1".to_owned()), "{head:?}");
    assert!(!head.contains(&"connection: close".to_owned()), "{head:?}");
    assert!(String::from_utf8_lossy(&body).contains("too many connections"));
    // The first client leaves: its hold ends, and its place is free at once.
    drop(tcp);
    stats_when(&srv, "the first long poll's hold has ended", |s| {
        open_streams(s) == 0
    })
    .await;
    other
        .write_all(b"GET /long-poll?since=2 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = next_response(&mut other, &mut pending).await.unwrap();
    assert_eq!(head[0], "http/1.1 200 ok", "{head:?}");
    assert!(String::from_utf8_lossy(&body).contains("\"seq\":3"));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_keep_alive() {
    let srv = with_events(&["--keep-alive", "300ms"]).await;
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    let mut pending = Vec::new();
    tcp.write_all(b"GET /poll HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = next_response(&mut tcp, &mut pending).await.unwrap();
    assert_eq!(head[0], "http/1.1 200 ok");
    let started = std::time::Instant::now();
    assert!(next_response(&mut tcp, &mut pending).await.is_none());
    let idle = started.elapsed();
    assert!(
        idle >= Duration::from_millis(250) && idle < Duration::from_secs(5),
        "closed after {idle:?}"
    );
}
