//! QUIC across the emulated link: WebTransport and SSE over HTTP/3 through a lossy link deliver
//! every event and count what the server counts, the link counts their UDP packets and what it
//! dropped apart from TCP's, and QUIC's own losses reach the report; and a path change mid-phase
//! (`--migrate-at`, `--nat-rebind-at`) leaves QUIC's connections standing where TCP's are cut.
//!
//! Root and `/dev/net/tun` (a link), so they skip, saying why, elsewhere; one at a time with
//! the other link tests.

use std::time::Duration;

use loadgen::{run::Mode, Args};

use crate::network::{can_link, serial};

fn args(out: &std::path::Path, extra: &[&str]) -> Args {
    let mut a = vec![
        "--tls",
        "on",
        "--clients",
        "8",
        "--duration",
        "4s",
        "--rate",
        "20",
        "--repeat",
        "1",
        "--seed",
        "7",
        "--server-bin",
        env!("CARGO_BIN_EXE_loadgen"),
        "--out",
        out.to_str().unwrap(),
    ];
    a.extend_from_slice(extra);
    if !extra.contains(&"--drain") {
        a.extend_from_slice(&["--drain", "3s"]);
    }
    Args::from_args(a).unwrap()
}

async fn run(args: Args) -> loadgen::run::Outcome {
    tokio::time::timeout(
        Duration::from_secs(120),
        loadgen::execute(args, Mode::Library),
    )
    .await
    .expect("in time")
    .expect("run succeeds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_crosses_a_lossy_link_whole_and_the_link_counts_its_udp() {
    let _g = serial().await;
    feedlab_testkit::require!(can_link());
    for extra in [
        &["--transports", "wt"][..],
        &["--transports", "sse", "--http", "3"][..],
    ] {
        let out = tempfile::tempdir().unwrap();
        let mut flags = vec!["--network", "rtt=80ms,loss=3%"];
        flags.extend_from_slice(extra);
        let report = run(args(out.path(), &flags)).await.report;
        assert!(!report.loss, "{extra:?}: {:?}", report.warnings);
        assert_eq!(report.phases.len(), 1);
        let r = &report.phases[0];
        let what = format!("{} HTTP/{}", r.transport, r.http);
        assert!(r.events_published >= 60, "{what}: {}", r.events_published);
        assert_eq!(r.events_received, r.events_expected, "{what}: every event");
        assert_eq!((r.gaps, r.duplicates), (0, 0), "{what}");
        let c = r.server_check.as_ref().expect("checked against /stats");
        assert!(c.ok, "{what}: {c:?}");
        let n = r.network.as_ref().expect("network recorded");
        let (down, up) = (n.down.unwrap(), n.up.unwrap());
        assert!(
            down.udp_packets_carried > 0 && up.udp_packets_carried > 0,
            "{what}: UDP counted both ways: {down:?} {up:?}"
        );
        assert!(
            down.udp_packets_carried * 10 > down.packets_carried * 9,
            "{what}: the phase's packets are QUIC's: {down:?}"
        );
        assert!(
            down.udp_dropped + up.udp_dropped > 0,
            "{what}: 3% loss dropped some UDP: {down:?} {up:?}"
        );
        let q = n.quic.as_ref().expect("QUIC's own figures");
        assert!(q.connections >= 8, "{what}: {q:?}");
        assert!(q.rtt_ms_mean.unwrap() >= 70.0, "{what}: {q:?}");
        assert!(n.ip_bytes_per_event.unwrap() > 0.0, "{what}");
        assert!(n.client_udp.is_some() && n.server_udp.is_some(), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_connections_survive_a_move_and_a_nat_rebinding_that_cuts_tcp() {
    let _g = serial().await;
    feedlab_testkit::require!(can_link());
    let out = tempfile::tempdir().unwrap();
    let report = run(args(
        out.path(),
        &[
            "--network",
            "rtt=60ms",
            "--transports",
            "ws,wt",
            "--migrate-at",
            "1s",
            "--nat-rebind-at",
            "2500ms",
            // The NAT's rebinding is heard once the client next sends (at the latest its 10 s
            // keep-alive): a drain past that, so a late event is a stall, not a loss.
            "--drain",
            "12s",
        ],
    ))
    .await
    .report;
    assert!(
        report.warnings.iter().all(|w| !w.contains("--migrate-at")),
        "{:?}",
        report.warnings
    );
    let on = |t: &str| report.phases.iter().find(|r| r.transport == t).unwrap();
    let (wt, ws) = (on("wt"), on("ws"));
    assert_eq!(
        wt.events_received, wt.events_expected,
        "wt: every event, across both changes"
    );
    assert_eq!(
        wt.connections_opened, 8,
        "QUIC went on from the new address and port without connecting again"
    );
    // The NAT's new port: the server's kernel resets what arrives from it, and the client,
    // which only listens (as a browser's WebSocket, without a silence watchdog), never hears:
    // its connection is dead in silence and the events after the rebinding never arrive.
    assert!(
        ws.events_received < ws.events_expected,
        "ws: cut by the rebinding: {} of {}",
        ws.events_received,
        ws.events_expected
    );
}
