//! loadgen against the production peers of `scripts/peers/` (Pushpin, Socket.IO, the Node.js
//! relay over `node:http` and `ws`), each started here on free ports and
//! stopped by PID: every transport its adapter serves delivers every event exactly once, with
//! latency measured from the seq and send time inside each body. `./test.sh` installs them
//! (`apt-get install pushpin`, `npm ci` in `scripts/peers/node`).

use std::{
    io::BufRead as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use feedlab_testkit::require;
use loadgen::{run::Mode, Args};

/// A peer's process: its first line is feedlab's "listening on" line; SIGTERM when dropped
/// (Pushpin's launcher then stops the processes it started; SIGKILL would orphan them).
struct Peer {
    child: Child,
    url: String,
}

impl Peer {
    fn start(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?} starts: {e}"));
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let Some((_, addr)) = feedlab_testkit::parse_listening_line(&first) else {
            feedlab_testkit::stop(&mut child, Duration::from_secs(10));
            panic!("{command:?}: no listening line (got {first:?})");
        };
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            url: format!("http://{addr}/"),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        feedlab_testkit::stop(&mut self.child, Duration::from_secs(15));
    }
}

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/peers")
}

/// `node` and the peers' locked packages; the reason to skip otherwise.
fn node_package(package: &str) -> Result<PathBuf, String> {
    let node = feedlab_testkit::binary("node", &["/usr/bin/node"])?;
    let dir = peers_dir().join("node");
    if !dir.join("node_modules").join(package).is_dir() {
        return Err(format!(
            "{package} is not installed: (cd scripts/peers/node && npm ci) (test.sh does)"
        ));
    }
    Ok(node)
}

fn node_peer(script: &str, package: &str) -> Result<Peer, String> {
    let node = node_package(package)?;
    let mut c = Command::new(node);
    c.arg(peers_dir().join("node").join(script))
        .args(["--port", "0"]);
    Ok(Peer::start(c))
}

/// loadgen's report of a short run against `url`: 4 clients, 20 events/s for 1.5 s.
async fn drive(url: &str, target: &str, transports: &str, extra: &[&str]) -> loadgen::Outcome {
    let out = tempfile::tempdir().unwrap();
    let mut a = vec![
        "--url",
        url,
        "--target",
        target,
        "--transports",
        transports,
        "--clients",
        "4",
        "--duration",
        "1500ms",
        "--rate",
        "20",
        "--drain",
        "700ms",
        "--http",
        "1.1",
        "--repeat",
        "1",
        "--seed",
        "7",
        "--out",
        out.path().to_str().unwrap(),
    ];
    a.extend_from_slice(extra);
    let args = Args::from_args(a).unwrap();
    tokio::time::timeout(
        Duration::from_secs(60),
        loadgen::execute(args, Mode::Library),
    )
    .await
    .expect("run finishes in time")
    .expect("run succeeds")
}

fn every_event_once(outcome: &loadgen::Outcome, peer: &str, transports: &[&str]) {
    let report = &outcome.report;
    assert_eq!(
        report
            .transports
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        transports,
        "{peer}"
    );
    for r in &report.phases {
        let what = format!("{} from {peer}", r.transport);
        assert!(
            r.events_published >= 25,
            "{what}: published {}",
            r.events_published
        );
        assert_eq!(r.events_expected, 4 * r.events_published, "{what}");
        assert_eq!(r.events_received, r.events_expected, "{what}");
        assert_eq!((r.gaps, r.duplicates, r.out_of_order), (0, 0, 0), "{what}");
        assert!(r.errors.is_empty(), "{what}: {:?}", r.errors);
        assert!(r.latency_us.count > 0, "{what}: latency from the bodies");
    }
    assert!(!report.loss, "{peer}: {:?}", report.warnings);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains(&format!("--target {peer}"))),
        "{:?}",
        report.warnings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_http_and_ws_deliver_every_event() {
    let peer = require!(node_peer("http.js", "ws"));
    let outcome = drive(&peer.url, "node", "sse,ws", &[]).await;
    every_event_once(&outcome, "node", &["sse", "ws"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_delivers_every_event_over_websocket_and_long_polling() {
    let peer = require!(node_peer("socketio.js", "socket.io"));
    let outcome = drive(&peer.url, "socketio", "ws,long-poll", &[]).await;
    every_event_once(&outcome, "socketio", &["long-poll", "ws"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushpin_delivers_every_event_over_sse_and_websocket() {
    let _installed = require!(feedlab_testkit::binary("pushpin", &["/usr/bin/pushpin"]));
    let publish = feedlab_testkit::free_port();
    let mut c = Command::new("python3");
    c.arg(peers_dir().join("pushpin.py"))
        .args(["--publish-port", &publish.to_string()]);
    let peer = Peer::start(c);
    let publish_url = format!("http://127.0.0.1:{publish}/");
    let outcome = drive(
        &peer.url,
        "pushpin",
        "sse,ws",
        &["--publish-url", &publish_url],
    )
    .await;
    every_event_once(&outcome, "pushpin", &["sse", "ws"]);
}

#[test]
fn each_adapter_refuses_the_transports_it_does_not_serve() {
    for (target, refused) in [
        ("pushpin", "short-poll"),
        ("node", "long-poll"),
        ("socketio", "sse"),
    ] {
        let e = Args::from_args([
            "--target",
            target,
            "--url",
            "http://127.0.0.1:1/",
            "--http",
            "1.1",
            "--transports",
            refused,
        ])
        .unwrap()
        .check_topology()
        .unwrap_err();
        assert!(e.contains("does not serve"), "{target}: {e}");
    }
    let e = Args::from_args(["--publish-url", "http://127.0.0.1:1/"])
        .unwrap()
        .check_topology()
        .unwrap_err();
    assert!(e.contains("--publish-url"), "{e}");
}
