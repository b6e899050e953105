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

use crate::common::{get, publish};

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
fn body(response: &[u8]) -> &[u8] {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    &response[end + 4..]
}

/// The body of a chunked response (as far as it was read).
fn dechunk(mut body: &[u8]) -> Vec<u8> {
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
fn zero_ts(bytes: &[u8]) -> Vec<u8> {
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
    let mut all = vec!["--retain", "100"];
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
async fn a_half_closed_sse_client_keeps_getting_events() {
    let srv = with_events(&[]).await;
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(b"GET /sse?since=3 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut tcp, b"resuming after seq 3").await;
    tcp.shutdown().await.unwrap(); // FIN: the client will send no more, but still reads
    tokio::time::sleep(Duration::from_millis(100)).await;
    publish(&srv, json!({ "after": "fin" })).await;
    let out = read_until(&mut tcp, b"\"after\":\"fin\"").await;
    assert!(String::from_utf8_lossy(&out).contains("id: 4\n"));
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
