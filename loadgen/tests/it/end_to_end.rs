//! All four transports against the real server: every event arrives once and in order, latency
//! is recorded for each, and loadgen's counts agree with the server's `/stats` (requests and
//! deliveries exactly, bytes within 1%), over keep-alive and over a connection per request.

use loadgen::{run::Mode, Args};
use server::testing::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_delivers_every_event_and_agrees_with_server_stats() {
    let srv = TestServer::start(&[]);
    let out = tempfile::tempdir().unwrap();
    let args = Args::from_args([
        "--repeat",
        "1",
        "--url",
        &srv.url("/"),
        "--clients",
        "4",
        "--duration",
        "1500ms",
        "--rate",
        "20",
        "--poll-interval",
        "200ms",
        "--drain",
        "600ms",
        "--http",
        "1.1,1.0",
        "--seed",
        "7",
        "--out",
        out.path().to_str().unwrap(),
    ])
    .unwrap();
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        loadgen::execute(args, Mode::Library),
    )
    .await
    .expect("run finishes in time")
    .expect("run succeeds");
    let report = &outcome.report;
    assert_eq!(
        report.phases.len(),
        6,
        "4 transports + 2 polling over HTTP/1.0"
    );
    assert_eq!(
        report.transports.keys().collect::<Vec<_>>(),
        ["long-poll", "short-poll", "sse", "ws"]
    );
    for r in &report.phases {
        let what = format!("{} HTTP/{}", r.transport, r.http);
        assert!(
            r.events_published >= 25,
            "{what}: published {}",
            r.events_published
        );
        assert_eq!(r.events_expected, 4 * r.events_published, "{what}");
        assert_eq!(r.events_received, r.events_expected, "{what}");
        assert_eq!(r.events_unique, r.events_expected, "{what}");
        assert_eq!((r.gaps, r.duplicates, r.out_of_order), (0, 0, 0), "{what}");
        assert!(r.errors.is_empty(), "{what}: {:?}", r.errors);
        assert_eq!(
            r.latency_us.count, r.events_received,
            "{what}: latency of every event"
        );
        assert!(
            r.latency_us.p50 > 0 && r.latency_us.max < 5_000_000,
            "{what}: {:?}",
            r.latency_us
        );
        let check = r.server_check.as_ref().expect("checked against /stats");
        assert_eq!(
            check.requests.loadgen, check.requests.server,
            "{what}: requests"
        );
        assert_eq!(
            check.events_delivered.loadgen, check.events_delivered.server,
            "{what}: events delivered"
        );
        assert!(
            check.bytes.difference_ratio.abs() <= 0.01,
            "{what}: bytes loadgen {} vs server {} ({:+.3}%)",
            check.bytes.loadgen,
            check.bytes.server,
            check.bytes.difference_ratio * 100.0
        );
        assert!(check.ok, "{what}: {check:?}");
        match (r.transport.as_str(), r.http.as_str()) {
            ("sse" | "ws", _) => {
                assert_eq!(r.http_requests, 4, "{what}: one handshake per client");
                assert_eq!(r.connections_opened, 4, "{what}");
            }
            (_, "1.1") => assert_eq!(r.connections_opened, 4, "{what}: keep-alive"),
            (_, "1.0") => assert_eq!(
                r.connections_opened, r.http_requests,
                "{what}: a connection per request"
            ),
            _ => unreachable!(),
        }
    }
    let sp = &report.transports["short-poll"];
    assert!(
        sp.empty_responses > 0,
        "some polls find nothing at 20/s every 200 ms"
    );
    assert!(outcome.clean(), "warnings: {:?}", report.warnings);
    assert!(out.path().join("report.md").is_file());
}
