//! loadgen through a real nginx (`deploy/nginx.conf`): all four transports, nothing lost, and
//! loadgen's counts still agree with the server's `/stats` behind the proxy.

use loadgen::{proxy::Nginx, run::Mode, Args};
use server::testing::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_four_transports_through_nginx_lose_nothing() {
    feedlab_testkit::require!(feedlab_testkit::binary("nginx", &["/usr/sbin/nginx"]));
    let srv = TestServer::start(&[]);
    // loadgen's own launcher of deploy/nginx.conf: it stops nginx with SIGTERM, so no worker
    // outlives the test.
    let nginx = Nginx::start(None, &[srv.addr], std::time::Duration::from_secs(75))
        .expect("nginx (the test command installs it)");
    let out = tempfile::tempdir().unwrap();
    let args = Args::from_args([
        "--repeat",
        "1",
        "--url",
        nginx.url().as_str(),
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
        "1.1",
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
        report.transports.keys().collect::<Vec<_>>(),
        ["long-poll", "short-poll", "sse", "ws"]
    );
    for r in &report.phases {
        let what = format!("{} through nginx", r.transport);
        assert!(
            r.events_published >= 25,
            "{what}: published {}",
            r.events_published
        );
        assert_eq!(r.events_received, r.events_expected, "{what}");
        assert_eq!((r.gaps, r.duplicates, r.out_of_order), (0, 0, 0), "{what}");
        let check = r.server_check.as_ref().expect("a /stats check");
        assert_eq!(
            check.events_delivered.loadgen, check.events_delivered.server,
            "{what}: deliveries agree with the server behind the proxy"
        );
    }
    assert!(outcome.clean(), "no loss, no client errors");
}
