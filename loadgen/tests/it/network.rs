//! The emulated link (`--network`) proves itself: the RTT the kernel measures across it is the
//! one set, a bulk transfer runs at the bandwidth set, loss shows up as retransmissions in that
//! proportion, and nothing is left behind — after a run, after a failed one, after a panic.
//!
//! These create network namespaces and TUN devices, so they need root; they run one at a time
//! (timing) and skip, saying why (a skip the test command counts), where the machine cannot host
//! a link.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use feedlab_link::{netns, Link, LinkSpec, Network, SERVER_ADDR};
use loadgen::{run::Mode, Args};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(crate) async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// Whether this machine can host a link (root, `/dev/net/tun`, iproute2); the reason to skip
/// when not, which the test command counts.
pub(crate) fn can_link() -> Result<(), String> {
    netns::preflight().map_err(|e| format!("{e:#}"))
}

pub(crate) fn spec(s: &str) -> LinkSpec {
    *s.parse::<Network>().unwrap().spec().unwrap()
}

fn mine() -> Vec<String> {
    let prefix = format!("{}{}-", netns::PREFIX, std::process::id());
    netns::existing()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// A TCP server in the server namespace that answers each byte with one byte (ping), or sends
/// `bulk` bytes to whoever connects.
async fn serve(link: &Link, bulk: usize) -> SocketAddr {
    let listener = link
        .server
        .tcp_listener(SocketAddr::new(SERVER_ADDR.into(), 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                s.set_nodelay(true).unwrap();
                if bulk > 0 {
                    let chunk = vec![7u8; 64 * 1024];
                    let mut left = bulk;
                    while left > 0 {
                        let n = left.min(chunk.len());
                        if s.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                        left -= n;
                    }
                    let _ = s.shutdown().await;
                    // Until the client has it all: closing early would reset the connection.
                    let _ = s.read(&mut [0u8; 1]).await;
                } else {
                    let mut b = [0u8; 1];
                    while s.read_exact(&mut b).await.is_ok() {
                        if s.write_all(&b).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

async fn connect(link: &Link, addr: SocketAddr) -> tokio::net::TcpStream {
    let s = link
        .client
        .tcp_socket()
        .await
        .unwrap()
        .connect(addr)
        .await
        .unwrap();
    s.set_nodelay(true).unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rtt_across_the_link_is_the_one_set() {
    let _g = serial().await;
    feedlab_testkit::require!(can_link());
    let link = Link::up(spec("rtt=100ms"), 1).unwrap();
    let addr = serve(&link, 0).await;
    let t = Instant::now();
    let mut s = connect(&link, addr).await;
    let connect_ms = t.elapsed().as_secs_f64() * 1e3;
    let mut rtts = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        s.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        rtts.push(t.elapsed().as_secs_f64() * 1e3);
    }
    rtts.sort_by(f64::total_cmp);
    let app = rtts[rtts.len() / 2];
    let app_min = rtts[0];
    let kernel = tokio::task::spawn_blocking({
        let ns = link.client_namespace().to_owned();
        move || feedlab_link::tcp::rtt(&ns).unwrap().expect("one socket")
    })
    .await
    .unwrap();
    eprintln!(
        "connect {connect_ms:.1} ms, ping p50 {app:.1} ms (min {app_min:.1}), kernel {kernel:?}"
    );
    // Nothing crosses faster than the RTT set. Above it, a single sample (the connect, the
    // median) also carries the forwarder's scheduling on a busy machine, so the bound from
    // above is on the least of the 20 pings and the kernel's min_rtt: those say the link
    // itself adds the RTT set and no more, whatever else runs beside the test.
    let within = |v: f64| (95.0..=105.0).contains(&v);
    assert!(connect_ms >= 95.0, "TCP connect took {connect_ms:.1} ms");
    assert!(
        app >= 95.0 && within(app_min),
        "ping p50 {app:.1} ms, min {app_min:.1} ms"
    );
    assert!(kernel.srtt_ms_p50 >= 95.0, "kernel srtt {kernel:?}");
    assert!(
        kernel.min_rtt_ms_p50.is_some_and(within),
        "kernel min_rtt {kernel:?}"
    );
    let snap = link.snapshot();
    assert_eq!(snap.down.dropped_by_loss + snap.up.dropped_by_loss, 0);
    assert!(snap.up.packets_carried >= 21, "{snap:?}");
    drop(s);
    let names = [
        link.server_namespace().to_owned(),
        link.client_namespace().to_owned(),
    ];
    drop(link);
    let left = netns::existing();
    assert!(names.iter().all(|n| !left.contains(n)), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_transfer_runs_at_the_bandwidth_set() {
    let _g = serial().await;
    feedlab_testkit::require!(can_link());
    // 8 Mbit/s down: 1 MB/s of IP packets. 2.5 MB take ~2.6 s.
    let link = Link::up(spec("rtt=20ms,down=8mbit,up=8mbit,queue=100"), 2).unwrap();
    let bytes = 2_500_000;
    let addr = serve(&link, bytes).await;
    let mut s = connect(&link, addr).await;
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0usize;
    let mut first = None;
    let before = link.snapshot();
    while got < bytes {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed after {got} bytes");
        first.get_or_insert_with(Instant::now);
        got += n;
    }
    let secs = first.unwrap().elapsed().as_secs_f64();
    let after = link.snapshot();
    let wire = after.down.since(&before.down);
    // Payload rate against the setting, and the link's own byte count (IP packets).
    let goodput = got as f64 * 8.0 / secs;
    let wire_rate = wire.bytes_carried as f64 * 8.0 / secs;
    eprintln!(
        "goodput {:.2} Mbit/s, on the wire {:.2} Mbit/s, {wire:?}",
        goodput / 1e6,
        wire_rate / 1e6
    );
    assert!(
        (7.2e6..=8.8e6).contains(&wire_rate),
        "wire rate {wire_rate:.0}"
    );
    assert!((7.2e6..=8.8e6).contains(&goodput), "goodput {goodput:.0}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_shows_up_as_retransmissions_in_proportion() {
    let _g = serial().await;
    feedlab_testkit::require!(can_link());
    let loss = 0.05;
    let link = Link::up(spec("rtt=10ms,loss=5%"), 3).unwrap();
    let addr = serve(&link, 3_000_000).await;
    let before = link.snapshot();
    let mut s = connect(&link, addr).await;
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0usize;
    while got < 3_000_000 {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed after {got} bytes");
        got += n;
    }
    let after = link.snapshot();
    let down = after.down.since(&before.down);
    let server = after.server.unwrap().since(&before.server.unwrap());
    let dropped =
        down.dropped_by_loss as f64 / (down.packets_carried + down.dropped_by_loss) as f64;
    let retrans = server.retrans_segs as f64 / server.out_segs as f64;
    eprintln!("dropped {dropped:.4}, retransmitted {retrans:.4}: {down:?} {server:?}");
    // ~2,200 packets: the binomial's standard deviation is 0.5 points; 3 of them either side.
    assert!((0.035..=0.065).contains(&dropped), "link dropped {dropped}");
    // Every lost data segment is sent again (some twice, some spuriously): same order.
    assert!(
        (loss * 0.6..=loss * 2.0).contains(&retrans),
        "server retransmitted {retrans}"
    );
}

fn run_args(network: &str, out: &std::path::Path, server_bin: &str, extra: &[&str]) -> Args {
    let mut a = vec![
        "--network",
        network,
        "--clients",
        "3",
        "--duration",
        "2s",
        "--rate",
        "10",
        "--poll-interval",
        "300ms",
        "--drain",
        "1500ms",
        "--http",
        "1.1",
        "--repeat",
        "1",
        "--seed",
        "5",
        "--server-bin",
        server_bin,
        "--out",
        out.to_str().unwrap(),
    ];
    a.extend_from_slice(extra);
    Args::from_args(a).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_runs_across_the_link_and_the_report_says_so() {
    let _g = serial().await;
    feedlab_testkit::require!(can_link());
    let out = tempfile::tempdir().unwrap();
    let args = run_args(
        "rtt=200ms",
        out.path(),
        env!("CARGO_BIN_EXE_loadgen"),
        &["--network", "none"],
    );
    let outcome = tokio::time::timeout(
        Duration::from_secs(120),
        loadgen::execute(args, Mode::Library),
    )
    .await
    .expect("in time")
    .expect("run succeeds");
    let report = &outcome.report;
    assert!(!report.loss, "{:?}", report.warnings);
    assert_eq!(report.phases.len(), 8, "4 transports × 2 networks");
    assert_eq!(report.settings.networks, ["rtt=200ms", "none"]);
    for r in &report.phases {
        let n = r.network.as_ref().expect("network recorded");
        let what = format!("{} on {}", r.transport, n.name);
        assert_eq!(r.events_received, r.events_expected, "{what}");
        if n.name == "none" {
            assert!(n.spec.is_none() && n.down.is_none(), "{what}");
            continue;
        }
        // Push: one way (100 ms) at least, and not much more without loss.
        if r.transport == "sse" || r.transport == "ws" {
            assert!(
                (100_000..130_000).contains(&r.latency_us.p50),
                "{what}: p50 {}",
                r.latency_us.p50
            );
            assert_eq!(n.hol_stalls, Some(0), "{what}");
        }
        let rtt = n.tcp_rtt.expect("TCP RTT measured");
        assert!(
            (190.0..=230.0).contains(&rtt.srtt_ms_p50),
            "{what}: {rtt:?}"
        );
        let down = n.down.expect("link counted");
        assert!(
            down.packets_carried > 0 && down.dropped_by_loss == 0,
            "{what}"
        );
        assert!(n.packets_per_event.unwrap() > 0.0, "{what}");
    }
    // Short polling pays the interval and a round trip: slower than push on the same link.
    let on = |t: &str, net: &str| {
        report
            .phases
            .iter()
            .find(|r| r.transport == t && r.network.as_ref().unwrap().name == net)
            .unwrap()
    };
    assert!(on("short-poll", "rtt=200ms").latency_us.p50 > on("sse", "rtt=200ms").latency_us.p50);
    assert!(on("sse", "rtt=200ms").latency_us.p50 > on("sse", "none").latency_us.p50 + 90_000);
    // The report with its network sections still fits the (strict) schema.
    let schema: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/report.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(outcome.out_dir.join("report.json")).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "schema: {}", errors.join("\n"));
    let md = std::fs::read_to_string(outcome.out_dir.join("report.md")).unwrap();
    assert!(
        md.contains("## Network: rtt=200ms") && md.contains("## The link, per phase"),
        "{md}"
    );
    assert!(mine().is_empty(), "left behind: {:?}", mine());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_left_after_a_failed_run_or_a_panic() {
    let _g = serial().await;
    feedlab_testkit::require!(can_link());
    // A server that cannot start: the run fails after the link is up.
    let out = tempfile::tempdir().unwrap();
    let args = run_args("lte", out.path(), "/bin/false", &[]);
    let err = loadgen::execute(args, Mode::Library).await.unwrap_err();
    assert!(format!("{err:#}").contains("server"), "{err:#}");
    assert!(mine().is_empty(), "left behind: {:?}", mine());
    // A panic while the link is up unwinds through its guard.
    let r = std::panic::catch_unwind(|| {
        let link = Link::up(spec("rtt=10ms"), 4).unwrap();
        assert_eq!(mine().len(), 2);
        let _keep = &link;
        panic!("injected");
    });
    assert!(r.is_err());
    assert!(mine().is_empty(), "left behind: {:?}", mine());
}

/// feedlab namespaces of process `pid`.
fn of(pid: u32) -> Vec<String> {
    let prefix = format!("{}{pid}-", netns::PREFIX);
    netns::existing()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

#[test]
fn a_stopped_run_removes_its_link_even_when_told_twice() {
    let _g = SERIAL.blocking_lock();
    feedlab_testkit::require!(can_link());
    // Once: the run finishes the phase, writes its report, removes the link. Twice: it exits
    // at once (130), removing the link on the way out.
    for signals in [1, 2] {
        let out = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args([
                "--network",
                "rtt=50ms",
                "--transports",
                "sse",
                "--clients",
                "2",
                "--duration",
                "60s",
                "--http",
                "1.1",
                "--quiet",
                "--server-bin",
                env!("CARGO_BIN_EXE_loadgen"),
                "--out",
            ])
            .arg(out.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let up_by = Instant::now() + Duration::from_secs(30);
        while of(pid).len() < 2 {
            assert!(Instant::now() < up_by, "the link never came up");
            std::thread::sleep(Duration::from_millis(100));
        }
        // Into publishing, with the server behind the link.
        std::thread::sleep(Duration::from_secs(3));
        for _ in 0..signals {
            loadgen::sys::terminate(pid).unwrap();
            std::thread::sleep(Duration::from_millis(300));
        }
        let status = child.wait().unwrap();
        assert!(
            of(pid).is_empty(),
            "{signals} signal(s): left {:?}",
            of(pid)
        );
        if signals == 1 {
            assert!(out.path().join("report.json").is_file(), "{status}");
        } else {
            assert_eq!(status.code(), Some(130));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_and_a_chaos_run_work_across_the_link() {
    let _g = serial().await;
    feedlab_testkit::require!(can_link());
    for extra in [
        &["--proxy", "nginx", "--transports", "sse,long-poll"][..],
        &[
            "--chaos",
            "kill-restart",
            "--chaos-outage",
            "500ms",
            "--transports",
            "sse",
        ][..],
    ] {
        let out = tempfile::tempdir().unwrap();
        let args = run_args("rtt=40ms", out.path(), env!("CARGO_BIN_EXE_loadgen"), extra);
        let outcome = tokio::time::timeout(
            Duration::from_secs(120),
            loadgen::execute(args, Mode::Library),
        )
        .await
        .expect("in time")
        .unwrap_or_else(|e| panic!("{extra:?}: {e:#}"));
        for r in &outcome.report.phases {
            let what = format!("{extra:?} {}", r.transport);
            assert_eq!((r.lost, r.duplicates), (0, 0), "{what}");
            if extra[0] == "--proxy" {
                assert_eq!(r.events_received, r.events_expected, "{what}");
                // Through nginx and the link: at least the one-way delay.
                assert!(r.latency_us.p50 >= 20_000, "{what}: {}", r.latency_us.p50);
            } else {
                assert!(r.chaos.is_some(), "{what}");
            }
        }
        assert!(mine().is_empty(), "left behind: {:?}", mine());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rtt_sweep_gives_the_rtt_crossover_and_its_chart() {
    let _g = serial().await;
    feedlab_testkit::require!(can_link());
    let out = tempfile::tempdir().unwrap();
    let args = run_args(
        "rtt=0ms",
        out.path(),
        env!("CARGO_BIN_EXE_loadgen"),
        &["--network", "rtt=40ms", "--transports", "long-poll,sse"],
    );
    let outcome = tokio::time::timeout(
        Duration::from_secs(120),
        loadgen::execute(args, Mode::Library),
    )
    .await
    .expect("in time")
    .expect("run succeeds");
    let report = &outcome.report;
    assert!(!report.loss, "{:?}", report.warnings);
    let c = report
        .crossovers
        .iter()
        .find(|c| c.name == "long_poll_p99_vs_sse_by_rtt")
        .unwrap_or_else(|| panic!("no RTT crossover in {:#?}", report.crossovers));
    assert_eq!(c.x_scale, "linear");
    // One point per RTT swept, for each series, each the p99 the phase measured.
    for (label, pts) in &c.series {
        let xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
        assert_eq!(xs, [0.0, 40.0], "{label}");
    }
    let lp_40 = report
        .phases
        .iter()
        .find(|r| r.transport == "long-poll" && r.network.as_ref().unwrap().name == "rtt=40ms")
        .unwrap();
    assert_eq!(c.series[0].1[1].1, lp_40.latency_us.p99 as f64 / 1000.0);
    assert!(
        c.sentence.starts_with("**Crossover, RTT:**"),
        "{}",
        c.sentence
    );
    assert!(
        report.conclusions.contains(&c.sentence),
        "{:#?}",
        report.conclusions
    );
    let chart = outcome
        .out_dir
        .join("crossover_long_poll_p99_vs_sse_by_rtt.svg");
    let svg = std::fs::read_to_string(&chart).expect("chart written");
    assert!(svg.contains("<svg") && svg.contains("ms RTT"), "{svg}");
    assert!(outcome.files.contains(&chart));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(outcome.out_dir.join("report.json")).unwrap())
            .unwrap();
    assert!(json["crossovers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "long_poll_p99_vs_sse_by_rtt"));
    assert!(mine().is_empty(), "left behind: {:?}", mine());
}

/// Repeated SSE phases back to back across a slow link: the server's counts of each phase
/// equal loadgen's exactly. A stream whose client has closed (its FIN still crossing the link)
/// must neither take the next phase's first events nor count them as delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_phases_across_a_slow_link_agree_with_the_server_exactly() {
    let _g = serial().await;
    feedlab_testkit::require!(can_link());
    let out = tempfile::tempdir().unwrap();
    let mut args = run_args(
        "rtt=150ms",
        out.path(),
        env!("CARGO_BIN_EXE_loadgen"),
        &["--transports", "sse"],
    );
    args.rate = 20.0;
    args.repeat = 3;
    args.clients = vec![10];
    let outcome = tokio::time::timeout(
        Duration::from_secs(120),
        loadgen::execute(args, Mode::Library),
    )
    .await
    .expect("in time")
    .expect("run succeeds");
    let phases = &outcome.report.phases;
    assert_eq!(phases.len(), 3);
    for r in phases {
        let check = r.server_check.as_ref().expect("checked against /stats");
        assert_eq!(
            (check.events_delivered.loadgen, check.requests.loadgen),
            (check.events_delivered.server, check.requests.server),
            "repeat {}: {check:?}",
            r.repeat
        );
        assert_eq!(
            check.bytes.loadgen, check.bytes.server,
            "repeat {}",
            r.repeat
        );
    }
}
