//! `--transports wt`: WebTransport over QUIC against the real server (`--quic`) on loopback:
//! every event once and in order, requests, deliveries and stream bytes equal to the server's
//! `/stats`, and `all` still meaning the four over TCP. And `--http 3`, the polls and SSE over
//! HTTP/3 on the same QUIC client endpoints, checked the same way.

use feedlab_wire::Transport;
use loadgen::{run::Mode, Args};
use server::testing::TestServer;

#[test]
fn wt_runs_only_when_named_and_only_over_tls() {
    let all = Args::from_args(["--transports", "all"]).unwrap();
    assert_eq!(all.transports(), Transport::ALL.to_vec());
    let named = Args::from_args(["--transports", "all,wt", "--tls", "on"]).unwrap();
    assert_eq!(named.transports(), Transport::EVERY[..5].to_vec());
    let variants = Args::from_args([
        "--transports",
        "wt-datagrams,all,wt-streams,wt",
        "--tls",
        "on",
    ])
    .unwrap();
    assert_eq!(variants.transports(), Transport::EVERY.to_vec());
    for wt in ["wt", "wt-streams", "wt-datagrams"] {
        let plain = Args::from_args(["--transports", wt]).unwrap();
        let why = plain.tls_modes().unwrap_err();
        assert!(why.contains("--tls on"), "{wt}: {why}");
    }
}

#[test]
fn http3_needs_tls_and_is_not_run_beside_wt() {
    let plain = Args::from_args(["--http", "3", "--transports", "sse"]).unwrap();
    let why = plain.tls_modes().unwrap_err();
    assert!(why.contains("--tls on"), "{why}");
    let both = Args::from_args(["--http", "h3", "--transports", "sse,wt", "--tls", "on"]).unwrap();
    let why = both.tls_modes().unwrap_err();
    assert!(why.contains("not both"), "{why}");
    let ok = Args::from_args(["--http", "HTTP/3", "--transports", "sse", "--tls", "on"]).unwrap();
    assert_eq!(ok.tls_modes().unwrap(), [true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wt_delivers_every_event_once_in_order_and_counts_what_the_server_counts() {
    let (outcome, _dir) = against_quic_server(
        &[],
        &[
            "--transports",
            "wt",
            // More clients than endpoints: several connections share each UDP socket.
            "--clients",
            "20",
            "--duration",
            "3s",
            "--rate",
            "50",
            "--drain",
            "500ms",
        ],
    )
    .await;
    let report = outcome.report;
    assert!(!report.loss, "warnings: {:?}", report.warnings);
    assert_eq!(report.phases.len(), 1);
    let r = &report.phases[0];
    assert_eq!(r.transport, "wt");
    assert!(r.events_published >= 100, "{}", r.events_published);
    assert_eq!(r.events_received, r.events_expected, "nothing lost");
    assert_eq!((r.gaps, r.duplicates, r.out_of_order), (0, 0, 0));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.connections_opened, 20, "one QUIC connection per client");
    let c = r.server_check.as_ref().expect("checked against /stats");
    assert_eq!(c.requests.loadgen, c.requests.server, "sessions");
    assert_eq!(c.events_delivered.loadgen, c.events_delivered.server);
    assert!(
        c.bytes.ok,
        "stream bytes against the server's: {:?}",
        c.bytes
    );
    assert!(c.ok, "{c:?}");
}

/// `--tls on --http 3`: polls, long polls and SSE over HTTP/3 against the QUIC endpoint of the
/// server loadgen starts (`--quic --quic-http3`): every event once and in order, and requests, deliveries and bytes
/// equal to the server's `/stats`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http3_delivers_every_event_once_in_order_and_counts_what_the_server_counts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // The server loadgen starts: `--tls on --http 3` gives it `--quic --quic-http3`.
    let outcome = execute(&[
        "--server-bin",
        env!("CARGO_BIN_EXE_loadgen"),
        "--tls",
        "on",
        "--http",
        "3",
        "--transports",
        "short-poll,long-poll,sse",
        "--clients",
        "10",
        "--duration",
        "2s",
        "--rate",
        "50",
        "--poll-interval",
        "200ms",
        // Room for the last event on a loaded machine: the QUIC handshakes (each after a Retry)
        // and a debug build beside other work can hold the last answer past a short drain.
        "--drain",
        "2s",
        "--repeat",
        "1",
        "--seed",
        "11",
        "--out",
        out.to_str().unwrap(),
    ])
    .await;
    let report = outcome.report;
    let what: Vec<String> = report
        .phases
        .iter()
        .map(|r| {
            format!(
                "{}: received {} of {}, lost {}, gaps {}, errors {:?}",
                r.transport, r.events_received, r.events_expected, r.lost, r.gaps, r.errors
            )
        })
        .collect();
    assert!(!report.loss, "{what:#?}\nwarnings: {:?}", report.warnings);
    assert_eq!(report.phases.len(), 3);
    for r in &report.phases {
        assert!(
            r.events_published >= 50,
            "{}: {}",
            r.transport,
            r.events_published
        );
        assert_eq!(
            r.events_received, r.events_expected,
            "{}: nothing lost",
            r.transport
        );
        assert_eq!(
            (r.gaps, r.duplicates, r.out_of_order),
            (0, 0, 0),
            "{}",
            r.transport
        );
        assert!(r.errors.is_empty(), "{}: {:?}", r.transport, r.errors);
        assert_eq!(
            r.connections_opened, 10,
            "{}: one QUIC connection per client",
            r.transport
        );
        let c = r.server_check.as_ref().expect("checked against /stats");
        assert_eq!(
            c.requests.loadgen, c.requests.server,
            "{}: requests",
            r.transport
        );
        assert_eq!(
            c.events_delivered.loadgen, c.events_delivered.server,
            "{}",
            r.transport
        );
        assert!(
            c.bytes.ok,
            "{}: bytes against the server's: {:?}",
            r.transport, c.bytes
        );
        assert!(c.ok, "{}: {c:?}", r.transport);
    }
}

/// Runs loadgen with `args`, within 90 s.
async fn execute(args: &[&str]) -> loadgen::run::Outcome {
    let args = Args::from_args(args.iter().copied()).unwrap();
    tokio::time::timeout(
        std::time::Duration::from_secs(90),
        loadgen::execute(args, Mode::Library),
    )
    .await
    .expect("run finishes in time")
    .unwrap()
}

/// One run of `args` (one repeat, seeded) against a `server --quic` (with `server_args`)
/// started here, trusted by its certificate; the outcome, and the directory it wrote into.
async fn against_quic_server(
    server_args: &[&str],
    args: &[&str],
) -> (loadgen::run::Outcome, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem").display().to_string();
    let mut serve = vec!["--tls-self-signed", "--tls-write-cert", &cert, "--quic"];
    serve.extend_from_slice(server_args);
    let srv = TestServer::start(&serve);
    let url = srv.url("/");
    let out = dir.path().join("out");
    let mut all = vec![
        "--url",
        &url,
        "--ca",
        &cert,
        "--repeat",
        "1",
        "--seed",
        "11",
        "--out",
        out.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let outcome = execute(&all).await;
    (outcome, dir)
}

/// One run of `transports` against a `server --quic` with `extra`, 10 clients for 2 s.
async fn run_variants(
    transports: &str,
    extra: &[&str],
) -> (loadgen::run::Outcome, tempfile::TempDir) {
    against_quic_server(
        extra,
        &[
            "--transports",
            transports,
            "--clients",
            "10",
            "--duration",
            "2s",
            "--rate",
            "50",
            "--drain",
            "1s",
        ],
    )
    .await
}

/// Each variant its own row: every event once and in order (the client sorts what arrives on
/// many streams or as datagrams), and sessions, deliveries and bytes equal to `/stats`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wt_streams_and_datagrams_deliver_every_event_in_order_and_count_what_the_server_counts() {
    let (outcome, _dir) = run_variants("wt-streams,wt-datagrams", &[]).await;
    let report = outcome.report;
    assert!(!report.loss, "warnings: {:?}", report.warnings);
    let rows: Vec<_> = report.phases.iter().map(|r| r.transport.as_str()).collect();
    assert_eq!(rows, ["wt-streams", "wt-datagrams"]);
    for r in &report.phases {
        let t = &r.transport;
        assert!(r.events_published >= 50, "{t}: {}", r.events_published);
        assert_eq!(r.events_received, r.events_expected, "{t}: nothing lost");
        assert_eq!((r.gaps, r.duplicates, r.out_of_order), (0, 0, 0), "{t}");
        assert!(r.errors.is_empty(), "{t}: {:?}", r.errors);
        let c = r.server_check.as_ref().expect("checked against /stats");
        assert_eq!(c.requests.loadgen, c.requests.server, "{t}: sessions");
        assert_eq!(c.events_delivered.loadgen, c.events_delivered.server, "{t}");
        assert!(c.bytes.ok, "{t}: bytes against the server's: {:?}", c.bytes);
        assert!(c.ok, "{t}: {c:?}");
    }
    assert_eq!(report.phases[0].datagrams, None, "wt-streams sends none");
    assert!(
        report.phases[1].datagrams.is_some(),
        "wt-datagrams counts its loss"
    );
}

/// Loss forced on the server's side: a datagram queue (`--quic-datagram-buffer`) smaller than
/// any event, so no event goes out as a datagram and every one must come back over a stream
/// when the head line shows it missing. Nothing is lost in the end, and the report says how
/// many were asked for and recovered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wt_datagrams_lost_are_recovered_over_a_stream_and_counted() {
    let (outcome, _dir) = run_variants("wt-datagrams", &["--quic-datagram-buffer", "64"]).await;
    let report = &outcome.report;
    assert!(!report.loss, "warnings: {:?}", report.warnings);
    let r = &report.phases[0];
    assert_eq!(
        r.events_received, r.events_expected,
        "every lost datagram recovered"
    );
    assert_eq!((r.gaps, r.duplicates, r.out_of_order), (0, 0, 0));
    let d = r.datagrams.expect("datagram counts");
    assert!(
        d.lost >= r.events_expected,
        "{d:?} for {} expected",
        r.events_expected
    );
    assert_eq!(d.recovered, d.lost, "{d:?}");
    let c = r.server_check.as_ref().expect("checked against /stats");
    assert!(c.ok, "{c:?}");
    let md = std::fs::read_to_string(outcome.out_dir.join("report.md")).unwrap();
    assert!(
        md.contains("wt-datagrams: ") && md.contains("events' datagrams lost and asked for again"),
        "the report says what was lost and recovered:\n{md}"
    );
}
