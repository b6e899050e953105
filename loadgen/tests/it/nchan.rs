//! loadgen against a real Nchan (Debian's libnginx-mod-nchan, started here from
//! `deploy/nchan.conf`): the `--target nchan` adapter delivers every event exactly once on all
//! four transports, and measures latency from the seq and send time inside each body.

use std::time::Duration;

use feedlab_testkit::{require, Nginx};
use loadgen::{run::Mode, Args};

/// Where Debian installs the module (./test.sh installs the package).
const MODULE: &str = "/usr/lib/nginx/modules/ngx_nchan_module.so";

/// nginx with Nchan from `deploy/nchan.conf` on a free loopback port, in a temporary prefix
/// (the kit's nginx fixture: SIGTERM when dropped); the reason to skip when either is missing.
fn nchan() -> Result<Nginx, String> {
    let module = feedlab_testkit::file(MODULE, "libnginx-mod-nchan")?;
    Nginx::start(|port, dir| {
        include_str!("../../../deploy/nchan.conf")
            .replace("__MODULE__", &module.display().to_string())
            .replace("__PORT__", &port.to_string())
            .replace("__DIR__", &dir.display().to_string())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_four_transports_deliver_every_event_from_nchan() {
    let nchan = require!(nchan());
    let out = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/", nchan.port);
    let args = Args::from_args([
        "--url",
        &url,
        "--target",
        "nchan",
        "--clients",
        "4",
        "--duration",
        "1500ms",
        // Several events per second and per poll interval: interval polls must catch up.
        "--rate",
        "20",
        "--poll-interval",
        "300ms",
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
    ])
    .unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
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
        let what = format!("{} from Nchan", r.transport);
        assert!(
            r.events_published >= 25,
            "{what}: published {}",
            r.events_published
        );
        assert_eq!(r.events_expected, 4 * r.events_published, "{what}");
        assert_eq!(r.events_received, r.events_expected, "{what}");
        assert_eq!((r.gaps, r.duplicates, r.out_of_order), (0, 0, 0), "{what}");
        assert!(r.errors.is_empty(), "{what}: {:?}", r.errors);
        assert!(
            r.latency_us.count > 0,
            "{what}: latency measured from the bodies"
        );
        assert!(
            r.server_check.is_none(),
            "{what}: Nchan has no /stats to check"
        );
    }
    assert!(!report.loss, "{:?}", report.warnings);
    assert!(
        report.warnings.iter().any(|w| w.contains("Target Nchan")),
        "{:?}",
        report.warnings
    );
    // Short polls that fell behind asked again at once: about one request per event, not one
    // per interval.
    let short = &report.transports["short-poll"];
    assert!(
        short.http_requests >= short.events_received,
        "requests {} for {} events",
        short.http_requests,
        short.events_received
    );
}

#[test]
fn the_adapter_refuses_what_it_cannot_drive() {
    let refused = |extra: &[&str], what: &str| {
        let mut a = vec!["--target", "nchan"];
        a.extend_from_slice(extra);
        let e = Args::from_args(a).unwrap().check_topology().unwrap_err();
        assert!(e.contains(what), "{extra:?}: {e}");
    };
    refused(&["--http", "1.1"], "exactly one --url");
    refused(&["--url", "http://127.0.0.1:1/"], "--http 1.1");
    refused(
        &[
            "--url",
            "http://127.0.0.1:1/",
            "--http",
            "1.1",
            "--nchan-poll",
            "/poll",
        ],
        "{channel}",
    );
    Args::from_args([
        "--target",
        "nchan",
        "--url",
        "http://127.0.0.1:1/",
        "--http",
        "1.1",
    ])
    .unwrap()
    .check_topology()
    .unwrap();
}
