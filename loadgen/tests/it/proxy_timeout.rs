//! `--proxy nginx` with a `proxy_read_timeout` shorter than the server's heartbeat: nginx cuts
//! quiet SSE streams and WebSockets, the clients reconnect (and lose nothing), and a heartbeat
//! below the timeout stops the cuts. A slow feed (one event every 2.5 s) leaves the connections
//! quiet for longer than the 1 s timeout.

use std::time::Duration;

use loadgen::{run::Mode, Args, Outcome};

async fn run(extra: &[&str]) -> (Outcome, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec![
        "--server-bin",
        env!("CARGO_BIN_EXE_loadgen"),
        "--proxy",
        "nginx",
        "--proxy-read-timeout",
        "1s",
        "--transports",
        "sse,ws",
        "--concurrent",
        "--clients",
        "4",
        "--duration",
        "3500ms",
        "--rate",
        "0.4",
        "--drain",
        "500ms",
        "--http",
        "1.1",
        "--repeat",
        "1",
        "--seed",
        "5",
        "--out",
        out.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        loadgen::execute(Args::from_args(args).unwrap(), Mode::Library),
    )
    .await
    .expect("run finishes in time")
    .expect("run succeeds");
    (outcome, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_timeout_below_the_heartbeat_cuts_streams_and_a_short_heartbeat_fixes_it() {
    feedlab_testkit::require!(feedlab_testkit::binary("nginx", &["/usr/sbin/nginx"]));
    let (cut, _cut_dir) = run(&[]).await;
    for t in ["sse", "ws"] {
        let r = &cut.report.transports[t];
        assert!(
            r.disconnects > 0 && r.reconnects > 0,
            "{t}: nginx cut the quiet connections: {} disconnects, {} reconnects",
            r.disconnects,
            r.reconnects
        );
        assert!(r.reconnect_us.is_some(), "{t}: reconnect time reported");
        assert_eq!(
            (r.lost, r.duplicates, r.gaps),
            (0, 0, 0),
            "{t}: resumed whole"
        );
    }
    assert!(!cut.report.loss, "{:?}", cut.report.warnings);
    let md = std::fs::read_to_string(cut.out_dir.join("report.md")).unwrap();
    assert!(
        md.contains("## Resilience") && md.contains("proxy_read_timeout"),
        "{md}"
    );
    assert_eq!(cut.report.settings.proxy, "nginx");
    assert!(cut.report.server.proxy_url.is_some());

    let (fixed, _fixed_dir) = run(&["--server-arg=--heartbeat=300ms"]).await;
    for t in ["sse", "ws"] {
        let r = &fixed.report.transports[t];
        assert_eq!(
            (r.disconnects, r.reconnects),
            (0, 0),
            "{t}: a 300 ms heartbeat keeps the connection open through a 1 s proxy timeout"
        );
        assert_eq!(r.events_received, r.events_expected, "{t}");
    }
}
