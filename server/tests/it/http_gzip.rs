//! gzip on SSE, polls and long-polls (`--http-gzip`), as real decoders see it: curl
//! `--compressed`, Python's `zlib` fed the stream as it arrives, flate2's `GzDecoder`; and the
//! identity responses unchanged for clients that do not ask.

use std::{
    io::Read as _,
    process::{Command, Stdio},
};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

/// Publishes `n` events with a chat-like text that repeats itself enough for gzip to win even
/// on one event alone.
async fn publish_texts(srv: &TestServer, n: u64) {
    for i in 0..n {
        let text =
            format!("message {i}: the build is green again after we moved that test. ").repeat(4);
        publish(srv, json!({"i": i, "text": text})).await;
    }
}

/// Sends `request` on a fresh connection and reads until the server closes it.
async fn exchange(srv: &TestServer, request: &str) -> Vec<u8> {
    let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(LIMIT, tcp.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

/// Splits a raw HTTP/1.1 response into its head (without the `date` line, which changes every
/// second; header lines sorted, as actix-web's header map has no fixed order) and its body,
/// de-chunked when chunked.
fn split(raw: &[u8]) -> (String, Vec<u8>) {
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    let head = String::from_utf8_lossy(&raw[..at]);
    let mut lines: Vec<&str> = head
        .split_inclusive("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
        .collect();
    lines[1..].sort_unstable();
    let head: String = lines.concat();
    let mut body = raw[at..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16)
                .expect("a chunk size");
            if size == 0 || rest.len() < eol + 2 + size {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        body = out;
    }
    (head, body)
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .expect("a valid gzip member (CRC and length checked)");
    out
}

async fn stats(srv: &TestServer, transport: &str) -> Value {
    get(&srv.url("/stats")).await.json()["transports"][transport].clone()
}

fn delta(after: &Value, before: &Value, field: &str) -> u64 {
    after[field].as_u64().unwrap() - before[field].as_u64().unwrap()
}

/// `curl --compressed` reads a gzip'd stream to its end (the server's shutdown) and gets every
/// event and heartbeat intact, on the fast path, through actix-web and over HTTP/2 (h2c), in
/// both gzip modes.
#[tokio::test]
async fn curl_compressed_receives_every_event() {
    for (way, mode) in [
        (Way::Fast, "shared"),
        (Way::Actix, "shared"),
        (Way::H2c, "shared"),
        (Way::Fast, "stream"),
        (Way::Actix, "stream"),
    ] {
        let srv = way.start(&[
            "--http-gzip",
            mode,
            "--shutdown-grace",
            "1s",
            "--heartbeat",
            "200ms",
        ]);
        publish_texts(&srv, 5).await;
        let url = srv.url("/sse?since=0");
        let mut args = vec!["-si", "--compressed", "--max-time", "8", &url];
        if way == Way::H2c {
            args.push("--http2-prior-knowledge");
        }
        let curl = Command::new("curl")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("curl runs");
        stats_when(&srv, "curl's stream is open", |s| {
            s["transports"]["sse"]["open"] == 1
        })
        .await;
        publish_texts(&srv, 5).await;
        let delivered = stats_when(&srv, "all 10 events delivered", |s| {
            s["transports"]["sse"]["events_delivered"] == 10
        })
        .await;
        // A heartbeat after them: the bytes counted grow with nothing published.
        let after_events = delivered["transports"]["sse"]["bytes_written"].clone();
        stats_when(&srv, "a heartbeat written", |s| {
            s["transports"]["sse"]["bytes_written"] != after_events
        })
        .await;
        tokio::task::spawn_blocking(move || srv.stop())
            .await
            .unwrap()
            .unwrap();
        let out = tokio::task::spawn_blocking(move || curl.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{way:?} {mode}: curl {:?}: {}\n{text}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.to_ascii_lowercase().contains("content-encoding: gzip"),
            "{text}"
        );
        let data: Vec<Value> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).expect("event JSON intact"))
            .collect();
        assert_eq!(
            data.iter()
                .map(|v| v["seq"].as_u64().unwrap())
                .collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>(),
            "{way:?} {mode}\n{text}"
        );
        assert_eq!(data[7]["data"]["i"], 2);
        assert!(text.contains("\n: heartbeat\n"), "{way:?} {mode}\n{text}");
        if way == Way::H2c {
            assert!(text.starts_with("HTTP/2 200"), "{text}");
        }
    }
}

/// Python's `zlib`, fed the body as it arrives, decodes each event before the next is
/// published: no event waits in a compressor. Then the server ends the stream and the decoder
/// checks the trailer (CRC32 and length).
#[tokio::test]
async fn python_decodes_the_stream_event_by_event_and_checks_the_trailer() {
    const SCRIPT: &str = r#"
import http.client, json, sys, urllib.request, zlib
host, port = sys.argv[1], int(sys.argv[2])
conn = http.client.HTTPConnection(host, port, timeout=5)
conn.request("GET", "/sse?since=0", headers={"Accept-Encoding": "gzip, deflate, br"})
resp = conn.getresponse()
assert resp.getheader("Content-Encoding") == "gzip", resp.getheaders()
assert "Accept-Encoding" in resp.getheader("Vary"), resp.getheaders()
d = zlib.decompressobj(16 + zlib.MAX_WBITS)
text = ""
for i in range(1, 6):
    req = urllib.request.Request(f"http://{host}:{port}/publish", data=json.dumps({"n": i}).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()
    while f"id: {i}\n" not in text:
        chunk = resp.read1(65536)
        assert chunk, f"stream ended before event {i}"
        text += d.decompress(chunk).decode()
    print(f"event {i}", flush=True)
print("end it", flush=True)
while True:
    chunk = resp.read1(65536)
    if not chunk:
        break
    text += d.decompress(chunk).decode()
assert d.eof, "no gzip trailer"
assert d.unused_data == b"", d.unused_data
print("trailer ok", flush=True)
"#;
    for (way, mode) in [
        (Way::Fast, "shared"),
        (Way::Actix, "shared"),
        (Way::Fast, "stream"),
    ] {
        let srv = way.start(&["--shutdown-grace", "1s", "--http-gzip", mode]);
        let port = srv.addr.port().to_string();
        let mut py = Command::new("python3")
            .args(["-c", SCRIPT, "127.0.0.1", &port])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut stdout = py.stdout.take().unwrap();
        let mut seen = String::new();
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = [0u8; 256];
            while !seen.contains("end it") {
                let n = stdout.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            (seen, stdout)
        });
        let (seen, mut stdout) = tokio::time::timeout(LIMIT, read).await.unwrap().unwrap();
        assert!(seen.contains("event 5"), "{way:?} {mode}: {seen}");
        tokio::task::spawn_blocking(move || srv.stop())
            .await
            .unwrap()
            .unwrap();
        let rest = tokio::task::spawn_blocking(move || {
            let mut rest = String::new();
            let _ = stdout.read_to_string(&mut rest);
            let status = py.wait().unwrap();
            let mut err = String::new();
            let _ = py.stderr.take().unwrap().read_to_string(&mut err);
            (rest, status, err)
        });
        let (rest, status, err) = tokio::time::timeout(LIMIT, rest).await.unwrap().unwrap();
        assert!(status.success(), "{way:?} {mode}: {seen}{rest}\n{err}");
        assert!(rest.contains("trailer ok"), "{way:?} {mode}: {rest}\n{err}");
    }
}

/// Polls and long-polls come gzip'd when asked, in both modes, and decode to exactly the
/// identity body; a body below `--http-gzip-min-bytes` (an empty poll) stays identity.
#[tokio::test]
async fn polls_are_gzipped_when_asked() {
    for mode in ["shared", "stream"] {
        let srv = TestServer::start(&["--http-gzip", mode]);
        publish_texts(&srv, 6).await;
        for path in ["/poll?since=0", "/long-poll?since=0&timeout_ms=50"] {
            let plain = exchange(
                &srv,
                &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            )
            .await;
            let coded = exchange(
                &srv,
                &format!("GET {path} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: br;q=1, gzip;q=0.5\r\nConnection: close\r\n\r\n"),
            )
            .await;
            let (plain_head, plain_body) = split(&plain);
            let (head, body) = split(&coded);
            assert!(!plain_head.contains("content-encoding"), "{plain_head}");
            assert!(head.contains("content-encoding: gzip\r\n"), "{head}");
            assert!(head.contains("vary: Accept-Encoding\r\n"), "{head}");
            assert_eq!(gunzip(&body), plain_body, "{mode} {path}");
            assert!(body.len() < plain_body.len(), "{mode} {path}");
        }
        let empty = exchange(
            &srv,
            "GET /poll?since=6 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
        )
        .await;
        let (head, body) = split(&empty);
        assert!(!head.contains("content-encoding"), "{head}");
        assert_eq!(body, br#"{"events":[],"next":6,"missed":0}"#);
    }
}

/// Without `Accept-Encoding`, with gzip refused (`q=0`), with `identity` only, or with
/// `--http-gzip off`, every response is the identity one, byte for byte.
#[tokio::test]
async fn no_gzip_asked_means_identity_byte_for_byte() {
    let srv = TestServer::start(&[]);
    let off = TestServer::start(&["--http-gzip", "off"]);
    publish_texts(&srv, 3).await;
    for path in ["/poll?since=0", "/long-poll?since=1&timeout_ms=50"] {
        let base = split(
            &exchange(
                &srv,
                &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            )
            .await,
        );
        for ae in ["gzip;q=0", "identity", "gzip;q=0, br"] {
            let got = split(
                &exchange(
                    &srv,
                    &format!("GET {path} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: {ae}\r\nConnection: close\r\n\r\n"),
                )
                .await,
            );
            assert_eq!(got, base, "{path} with {ae}");
        }
        assert!(!base.0.to_ascii_lowercase().contains("vary"), "{}", base.0);
    }
    // The same bytes as a server that never compresses (whose events carry other timestamps:
    // compare heads, and bodies without their `ts`).
    let strip_ts = |body: &[u8]| {
        let mut v: Value = serde_json::from_slice(body).unwrap();
        for e in v["events"].as_array_mut().unwrap() {
            e["ts"] = json!(0);
        }
        v
    };
    publish_texts(&off, 3).await;
    let request = "GET /poll?since=0 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n";
    let a = split(&exchange(&off, request).await);
    let b = split(
        &exchange(
            &srv,
            "GET /poll?since=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await,
    );
    assert_eq!(a.0, b.0);
    assert_eq!(strip_ts(&a.1), strip_ts(&b.1));

    // SSE, on both paths: the stream read up to the third event, with and without `q=0`.
    for way in [Way::Fast, Way::Actix] {
        // One `retry:` hint (1 s) for both streams, so that they compare byte for byte.
        let srv = way.start(&["--sse-retry-max", "1s"]);
        publish_texts(&srv, 3).await;
        let mut streams = Vec::new();
        for ae in ["", "Accept-Encoding: gzip;q=0\r\n"] {
            let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
            tcp.write_all(format!("GET /sse?since=0 HTTP/1.1\r\nHost: x\r\n{ae}\r\n").as_bytes())
                .await
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&got).contains("id: 3\n") {
                let n = tokio::time::timeout(LIMIT, tcp.read(&mut buf))
                    .await
                    .unwrap()
                    .unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            streams.push(split(&got));
        }
        assert_eq!(streams[0], streams[1], "{way:?}");
        assert!(!streams[0].0.contains("content-encoding"));
    }
}

/// `/stats` counts exactly what went on the socket for gzip'd responses, and
/// `payload_bytes_uncompressed` what the bodies were before compression.
#[tokio::test]
async fn stats_count_gzipped_bytes_exactly() {
    let srv = TestServer::start(&["--shutdown-grace", "1s"]);
    publish_texts(&srv, 6).await;
    for (transport, path) in [
        ("short-poll", "/poll?since=0"),
        ("long-poll", "/long-poll?since=2&timeout_ms=50"),
    ] {
        let before = stats(&srv, transport).await;
        let raw = exchange(
            &srv,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"),
        )
        .await;
        let after = stats(&srv, transport).await;
        let (_, body) = split(&raw);
        let plain = gunzip(&body);
        assert_eq!(delta(&after, &before, "bytes_written"), raw.len() as u64);
        assert_eq!(
            delta(&after, &before, "payload_bytes_uncompressed"),
            raw.len() as u64 - body.len() as u64 + plain.len() as u64,
            "{transport}"
        );
    }

    // SSE: read until the server's shutdown ends the stream, then compare.
    let before = stats(&srv, "sse").await;
    let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(b"GET /sse?since=0 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
        .await
        .unwrap();
    stats_when(&srv, "the SSE stream is open", |s| {
        s["transports"]["sse"]["open"] == before["open"].as_u64().unwrap() + 1
    })
    .await;
    publish_texts(&srv, 2).await;
    let want = before["events_delivered"].as_u64().unwrap() + 8;
    stats_when(&srv, "all 8 events delivered", |s| {
        s["transports"]["sse"]["events_delivered"] == want
    })
    .await;
    let sse = stats(&srv, "sse").await;
    let addr = srv.addr;
    let stopping = tokio::task::spawn_blocking(move || srv.stop());
    let mut raw = Vec::new();
    tokio::time::timeout(LIMIT, tcp.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    stopping.await.unwrap().unwrap();
    let (head, body) = split(&raw);
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let plain = String::from_utf8(gunzip(&body)).unwrap();
    assert!(plain.contains("id: 8\n"), "{plain}");
    // What the server counted before its shutdown: everything but the trailer chunk and the
    // chunked body's end (the server cannot be asked once stopped).
    let counted = delta(&sse, &before, "bytes_written");
    let trailer_and_end = 3 + 10 + 2 + 5; // "a\r\n", the trailer, "\r\n", "0\r\n\r\n"
    assert_eq!(counted + trailer_and_end, raw.len() as u64, "{addr}");
    let uncompressed = delta(&sse, &before, "payload_bytes_uncompressed");
    assert_eq!(
        uncompressed - counted,
        plain.len() as u64 - (body.len() as u64 - 10),
        "counted at the size before compression"
    );
}

/// A gzip'd publish is refused with 415, a reason and the codings accepted; `identity` is fine.
#[tokio::test]
async fn a_compressed_publish_is_refused_with_415() {
    use http_body_util::Full;
    use hyper::Request;
    let srv = TestServer::start(&[]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, br#"{"a":1}"#).unwrap();
    let body = gz.finish().unwrap();
    for coding in ["gzip", "identity, br", "x-custom"] {
        let res = request(
            Request::post(srv.url("/publish"))
                .header("content-type", "application/json")
                .header("content-encoding", coding)
                .body(Full::new(body.clone().into()))
                .unwrap(),
        )
        .await;
        assert_eq!(res.status, 415, "{coding}");
        assert_eq!(res.headers["accept-encoding"], "identity");
        let why = res.json()["error"].as_str().unwrap().to_owned();
        assert!(why.contains("Content-Encoding"), "{why}");
    }
    let res = request(
        Request::post(srv.url("/publish"))
            .header("content-type", "application/json")
            .header("content-encoding", "identity")
            .body(Full::new(br#"{"a":1}"#.to_vec().into()))
            .unwrap(),
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(
        get(&srv.url("/poll?since=0")).await.json()["events"][0]["data"]["a"],
        1
    );
}

/// A gzip'd stream the server ends itself because the client fell behind (`--max-lag`) still
/// ends with a valid trailer, after the `overflow` record.
#[tokio::test]
async fn a_stream_ended_by_overflow_ends_with_a_valid_trailer() {
    // The overflow record waits in a full socket until the test reads, after its last publish:
    // `--send-timeout` (also the kernel's TCP_USER_TIMEOUT) must outlast the publishing, or on a
    // loaded machine the server lets the connection go with a reset before the record is read.
    let srv = TestServer::start(&[
        "--max-lag",
        "50",
        "--retain",
        "5000",
        "--send-timeout",
        "10min",
    ]);
    let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(b"GET /sse?since=0 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
        .await
        .unwrap();
    // Not reading while events that gzip cannot shrink much (hex digits of a pseudo-random
    // sequence) go out: socket buffers fill, the lag grows.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..2_000 {
        let pad: String = (0..16 * 1024)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                char::from_digit((x >> 60) as u32, 16).unwrap()
            })
            .collect();
        publish(&srv, json!({ "i": i, "pad": pad })).await;
    }
    let mut raw = Vec::new();
    tokio::time::timeout(LIMIT, tcp.read_to_end(&mut raw))
        .await
        .expect("the server ends the stream")
        .unwrap();
    let (head, body) = split(&raw);
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let text = String::from_utf8(gunzip(&body)).unwrap();
    let tail = &text[text.len().saturating_sub(300)..];
    assert!(text.contains("event: overflow\n"), "{tail}");
    assert!(
        tail.trim_end().ends_with('}'),
        "the overflow record is the last: {tail}"
    );
}
