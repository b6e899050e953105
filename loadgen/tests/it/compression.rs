//! `--compression` against compressing peers that are not feedlab's: nginx gzipping the real
//! server's `/poll`, `/long-poll` and `/sse`, and a Python `websockets` server (permessage-deflate
//! on by default, with its own window bits) relaying the real server's `/ws`. Every event must
//! arrive intact through the decoders, the bytes on the socket must be fewer than the bytes
//! decoded, and with compression off nothing may be offered or decoded.

use std::{
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use feedlab_testkit::{require, Nginx};
use loadgen::{run::Mode, Args};
use server::testing::TestServer;

/// Relays each WebSocket it accepts to the same path on the upstream (uncompressed there), with
/// the `websockets` library's default permessage-deflate towards the client.
const RELAY: &str = r#"
import asyncio, sys
from websockets.asyncio.server import serve
from websockets.asyncio.client import connect

UPSTREAM = sys.argv[1]

async def relay(ws):
    async with connect(f"ws://{UPSTREAM}{ws.request.path}", compression=None, max_size=None) as up:
        async def down():
            async for m in up:
                await ws.send(m)
        async def back():
            async for m in ws:
                await up.send(m)
        tasks = {asyncio.create_task(down()), asyncio.create_task(back())}
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()

async def main():
    async with serve(relay, "127.0.0.1", 0, max_size=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()

asyncio.run(main())
"#;

/// A child process stopped (SIGTERM, by its pid) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn relay(dir: &Path, upstream: SocketAddr) -> (Proc, u16) {
    let script = dir.join("relay.py");
    std::fs::write(&script, RELAY).unwrap();
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(upstream.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 with websockets (the test command installs it)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("relay port, got {line:?}"));
    (Proc(child), port)
}

/// nginx gzipping every proxied response it may (`gzip_proxied any`), SSE unbuffered so each
/// event is flushed through the compressor as it comes; `/ws` to the relay.
fn nginx(server: SocketAddr, relay: u16) -> Nginx {
    Nginx::start(|port, dir| {
        let d = dir.display();
        format!(
            r#"worker_processes 1;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_set_header Host $http_host;
        gzip on;
        gzip_proxied any;
        gzip_min_length 0;
        gzip_types application/json text/event-stream;
        location /ws {{
            proxy_pass http://127.0.0.1:{relay};
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }}
        location / {{
            proxy_pass http://{server};
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"#
        )
    })
    .expect("nginx (checked by the test)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_decodes_what_independent_compressing_peers_send() {
    require!(feedlab_testkit::binary("nginx", &["/usr/sbin/nginx"]));
    require!(feedlab_testkit::python_module("websockets"));
    let srv = TestServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (_relay, relay_port) = relay(dir.path(), srv.addr);
    let nginx = nginx(srv.addr, relay_port);
    let port = nginx.port;
    let out = tempfile::tempdir().unwrap();
    let args = Args::from_args([
        "--repeat",
        "1",
        "--url",
        &format!("http://127.0.0.1:{port}/"),
        "--compression",
        "both",
        "--payload",
        "metrics",
        "--clients",
        "3",
        "--duration",
        "1500ms",
        "--rate",
        "20",
        "--poll-interval",
        "500ms",
        "--drain",
        "1s",
        "--http",
        "1.1",
        "--seed",
        "7",
        "--out",
        out.path().to_str().unwrap(),
    ])
    .unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_secs(90),
        loadgen::execute(args, Mode::Library),
    )
    .await
    .expect("run finishes in time")
    .expect("run succeeds");
    let report = &outcome.report;
    assert_eq!(report.phases.len(), 8, "four transports, off then on");
    for r in &report.phases {
        let c = r.compression.as_ref().expect("compression figures");
        let what = format!(
            "{} compression {}",
            r.transport,
            if c.offered { "on" } else { "off" }
        );
        assert!(r.events_published >= 25, "{what}: {}", r.events_published);
        assert_eq!(r.events_received, r.events_expected, "{what}: every event");
        assert_eq!((r.gaps, r.duplicates, r.out_of_order), (0, 0, 0), "{what}");
        assert!(r.errors.is_empty(), "{what}: {:?}", r.errors);
        let answers: Vec<&str> = c.answers.keys().map(String::as_str).collect();
        if !c.offered {
            assert_eq!(answers, ["none"], "{what}: nothing offered, nothing agreed");
            assert_eq!(c.offer, None);
            assert!(c.ratio.unwrap() < 1.0, "{what}: heads and framing only");
            continue;
        }
        if r.transport == "ws" {
            assert_eq!(answers.len(), 1, "{what}: {answers:?}");
            assert!(
                answers[0].starts_with("permessage-deflate"),
                "{what}: {answers:?}"
            );
        } else {
            // A long-poll's 204 has no body to compress.
            assert!(answers.contains(&"gzip"), "{what}: {answers:?}");
        }
        assert!(c.decode_cpu_s > 0.0, "{what}: decoding costs something");
        if r.transport == "long-poll" {
            // One small event per answer at this rate: the head (now with Content-Encoding and
            // chunking) outweighs what gzip saves on ~300 bytes, which the report shows as is.
            assert!(c.ratio.unwrap() > 0.0, "{what}");
            continue;
        }
        assert!(
            r.bytes_down < c.bytes_decoded,
            "{what}: {} bytes on the socket for {} decoded",
            r.bytes_down,
            c.bytes_decoded
        );
        assert!(c.ratio.unwrap() > 1.0, "{what}: {:?}", c.ratio);
        // The same events, fewer bytes than without.
        let off = report
            .phases
            .iter()
            .find(|p| p.transport == r.transport && !p.compressed())
            .unwrap();
        assert!(
            r.bytes_per_event.unwrap() < off.bytes_per_event.unwrap(),
            "{what}: {:?} B/event against {:?} without",
            r.bytes_per_event,
            off.bytes_per_event
        );
    }
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(md.contains("## Compression"), "the comparison table");
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(html.contains("Compression"));
}

/// Offered to feedlab's own server, which compresses by default in its shared forms (each event
/// compressed once): SSE is gzip'd, the WebSocket agrees permessage-deflate, polls are gzip'd
/// where that makes them smaller; every event arrives intact and loadgen's counts (compressed
/// bytes on the socket) still equal the server's `/stats` to the byte, whose uncompressed size
/// is larger. With the server's compression off, every answer is `none` and nothing else changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offered_to_the_server_it_compresses_by_default_and_counts_agree() {
    let on = run_offered(&[]).await;
    for r in &on.phases {
        let what = &r.transport;
        let c = r.compression.as_ref().unwrap();
        assert!(c.offered, "{what}");
        let answers: Vec<&String> = c.answers.keys().collect();
        match what.as_str() {
            "sse" => assert_eq!(answers, ["gzip"], "{what}"),
            "ws" => assert!(
                answers.len() == 1 && answers[0].starts_with("permessage-deflate"),
                "{what}: {answers:?}"
            ),
            // A poll answer is gzip'd only when that makes it smaller (empty polls are not).
            _ => assert!(answers.iter().any(|a| *a == "gzip"), "{what}: {answers:?}"),
        }
        let uncompressed = c
            .server_payload_bytes_uncompressed
            .expect("the server's figure");
        let check = r.server_check.as_ref().expect("a /stats check");
        assert!(
            uncompressed > check.bytes.server,
            "{what}: {uncompressed} B uncompressed against {} B written",
            check.bytes.server
        );
        assert_full_and_exact(r);
    }
    let off = run_offered(&["--http-gzip=off", "--ws-deflate=off"]).await;
    for r in &off.phases {
        let what = &r.transport;
        let c = r.compression.as_ref().unwrap();
        assert!(c.offered, "{what}");
        assert_eq!(c.answers.keys().collect::<Vec<_>>(), ["none"], "{what}");
        let check = r.server_check.as_ref().expect("a /stats check");
        assert_eq!(
            c.server_payload_bytes_uncompressed,
            Some(check.bytes.server),
            "{what}: nothing compressed"
        );
        assert_full_and_exact(r);
    }
}

fn assert_full_and_exact(r: &feedlab_report::TransportResult) {
    let what = &r.transport;
    assert_eq!(r.events_received, r.events_expected, "{what}");
    assert!(r.errors.is_empty(), "{what}: {:?}", r.errors);
    let check = r.server_check.as_ref().expect("a /stats check");
    assert!(check.ok, "{what}: {check:?}");
    assert_eq!(
        check.bytes.loadgen, check.bytes.server,
        "{what}: to the byte"
    );
}

async fn run_offered(server_args: &[&str]) -> feedlab_report::Report {
    let srv = TestServer::start(server_args);
    let out = tempfile::tempdir().unwrap();
    let args = Args::from_args([
        "--repeat",
        "1",
        "--url",
        &format!("http://{}/", srv.addr),
        "--compression",
        "on",
        "--payload",
        "chat",
        "--clients",
        "3",
        "--duration",
        "1s",
        "--rate",
        "20",
        "--poll-interval",
        "200ms",
        "--drain",
        "600ms",
        "--http",
        "1.1",
        "--out",
        out.path().to_str().unwrap(),
    ])
    .unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        loadgen::execute(args, Mode::Library),
    )
    .await
    .expect("run finishes in time")
    .expect("run succeeds");
    let report = outcome.report;
    assert_eq!(report.settings.compression, "on");
    assert_eq!(report.phases.len(), 4);
    report
}
