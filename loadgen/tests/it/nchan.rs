//! loadgen against a real Nchan (Debian's libnginx-mod-nchan, started here from
//! `deploy/nchan.conf`): the `--target nchan` adapter delivers every event exactly once on all
//! four transports, and measures latency from the seq and send time inside each body.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use loadgen::{run::Mode, Args};

/// Where Debian installs the module (./test.sh installs the package).
const MODULE: &str = "/usr/lib/nginx/modules/ngx_nchan_module.so";

/// nginx with Nchan on a free loopback port, in a temporary prefix; SIGTERM when dropped.
struct Nchan {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Nchan {
    fn start() -> Self {
        assert!(
            std::path::Path::new(MODULE).exists(),
            "{MODULE} missing: apt-get install libnginx-mod-nchan (./test.sh does)"
        );
        let port = loadgen::redis_proc::free_port().unwrap();
        let dir = std::env::temp_dir().join(format!("loadgen-nchan-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = include_str!("../../../deploy/nchan.conf")
            .replace("__MODULE__", MODULE)
            .replace("__PORT__", &port.to_string())
            .replace("__DIR__", &dir.display().to_string());
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let nginx = loadgen::redis_proc::find_binary("nginx", &["/usr/sbin/nginx"])
            .expect("nginx (./test.sh installs nginx-light)");
        let child = Command::new(nginx)
            .args([
                "-p",
                &dir.display().to_string(),
                "-c",
                "nginx.conf",
                "-e",
                "error.log",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nginx");
        let mut nchan = Self { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = matches!(nchan.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() > deadline {
                let log = std::fs::read_to_string(nchan.dir.join("error.log")).unwrap_or_default();
                panic!("nginx with Nchan did not start: {log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        nchan
    }
}

impl Drop for Nchan {
    fn drop(&mut self) {
        let _ = loadgen::sys::terminate(self.child.id());
        let child = &mut self.child;
        if !loadgen::sys::wait_until(Duration::from_secs(3), || {
            matches!(child.try_wait(), Ok(Some(_)))
        }) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_four_transports_deliver_every_event_from_nchan() {
    let nchan = Nchan::start();
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
