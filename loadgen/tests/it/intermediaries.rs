//! The intermediaries matrix's quick cells, one per intermediary with the configuration feedlab
//! recommends (`deploy/<name>.*`): all four transports through the real software at once, a
//! few seconds, nothing lost, nothing duplicated, the WebSocket upgrade passed, no connection
//! cut. And item 5 of issue #28: two instances on one Redis behind HAProxy and nginx, round
//! robin without stickiness, lose and duplicate nothing for long polling and WebSockets.
//!
//! The full matrix (defaults, idle cuts, heartbeats) takes minutes per idle cell and is
//! `scripts/intermediaries/matrix.py`; these cells are what CI can afford. A missing binary
//! fails the test with what to install (test.sh installs them all).

use std::time::Duration;

use loadgen::{intermediary::Software, run::Mode, Args, Outcome};

async fn run(proxy: &str, extra: &[&str]) -> (Outcome, tempfile::TempDir) {
    if let Ok(software) = proxy.parse::<Software>() {
        if let Err(e) = software.find() {
            panic!("{e}");
        }
    }
    let out = tempfile::tempdir().unwrap();
    let server_bin = env!("CARGO_BIN_EXE_loadgen");
    let out_path = out.path().to_str().unwrap();
    // Defaults a cell may override (`extra` wins: clap refuses a flag given twice).
    let defaults: [(&str, &str); 12] = [
        ("--server-bin", server_bin),
        ("--proxy", proxy),
        ("--clients", "3"),
        ("--duration", "1500ms"),
        ("--rate", "10"),
        ("--poll-interval", "200ms"),
        ("--drain", "700ms"),
        ("--http", "1.1"),
        ("--repeat", "1"),
        ("--seed", "28"),
        ("--out", out_path),
        ("--ready-timeout", "10s"),
    ];
    let mut args = vec!["--concurrent"];
    for (flag, value) in defaults {
        if !extra.contains(&flag) {
            args.extend([flag, value]);
        }
    }
    args.extend_from_slice(extra);
    let outcome = tokio::time::timeout(
        Duration::from_secs(90),
        loadgen::execute(Args::from_args(args).unwrap(), Mode::Library),
    )
    .await
    .expect("run finishes in time")
    .unwrap_or_else(|e| panic!("--proxy {proxy}: {e:#}"));
    (outcome, out)
}

fn assert_whole(proxy: &str, outcome: &Outcome, transports: &[&str]) {
    for t in transports {
        let r = &outcome.report.transports[*t];
        assert!(r.events_expected > 0, "{proxy} {t}: events were published");
        assert_eq!(
            (r.events_received, r.lost, r.duplicates, r.gaps),
            (r.events_expected, 0, 0, 0),
            "{proxy} {t}: every event once (errors {:?})",
            r.errors
        );
        assert_eq!(
            r.disconnects, 0,
            "{proxy} {t}: no connection cut (errors {:?})",
            r.errors
        );
    }
    assert!(
        !outcome.report.loss,
        "{proxy}: {:?}",
        outcome.report.warnings
    );
    assert_eq!(outcome.report.settings.proxy, proxy);
}

async fn cell(proxy: &str) {
    let (outcome, _dir) = run(proxy, &["--transports", "poll,long-poll,sse,ws"]).await;
    assert_whole(proxy, &outcome, &["short-poll", "long-poll", "sse", "ws"]);
    let what = outcome.report.server.proxy_software.clone().unwrap();
    assert!(what.contains("recommended"), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_recommended_passes_all_four_transports() {
    cell("haproxy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_recommended_passes_all_four_transports() {
    cell("apache").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_recommended_passes_all_four_transports() {
    cell("caddy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn varnish_recommended_passes_all_four_transports() {
    cell("varnish").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn squid_recommended_passes_all_four_transports_as_a_forward_proxy() {
    cell("squid").await;
}

/// Through the TLS front, as browsers reach a production proxy: polls, long polls and SSE as
/// streams of one HTTP/2 connection per client (ALPN h2), the WebSocket on its own HTTP/1.1
/// connection (what a browser does when the proxy does not advertise RFC 8441, and what loadgen
/// always does), the servers behind the proxy plain HTTP/1.1. Nothing lost, nothing cut, and
/// the report says what the front offered.
async fn h2_cell(proxy: &str) {
    let (outcome, _dir) = run(
        proxy,
        &[
            "--tls",
            "on",
            "--http",
            "2",
            "--transports",
            "poll,long-poll,sse,ws",
        ],
    )
    .await;
    assert_whole(proxy, &outcome, &["short-poll", "long-poll", "sse", "ws"]);
    let what = outcome.report.server.proxy_software.clone().unwrap();
    assert!(
        what.contains("recommended")
            && what.contains("HTTP/2 offered")
            && what.contains("RFC 8441"),
        "{what}"
    );
    for t in ["short-poll", "long-poll", "sse", "ws"] {
        let r = &outcome.report.transports[t];
        assert!(r.tls, "{proxy} {t}: over the TLS front");
        let http = if t == "ws" { "1.1" } else { "2" };
        assert_eq!(r.http, http, "{proxy} {t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_tls_front_serves_all_four_transports_over_http2() {
    h2_cell("nginx").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_tls_front_serves_all_four_transports_over_http2() {
    h2_cell("haproxy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_tls_front_serves_all_four_transports_over_http2() {
    h2_cell("apache").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_tls_front_serves_all_four_transports_over_http2() {
    h2_cell("caddy").await;
}

/// nginx's recommended cell is `nginx.rs` and `proxy_timeout.rs`; its packaged defaults speak
/// HTTP/1.0 to the server, so the WebSocket upgrade cannot pass, while the HTTP transports do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_defaults_break_websockets_only() {
    let (outcome, _dir) = run(
        "nginx",
        // No WebSocket ever connects: publish after 2 s instead of waiting for them.
        &[
            "--proxy-config",
            "default",
            "--transports",
            "long-poll,sse,ws",
            "--ready-timeout",
            "2s",
        ],
    )
    .await;
    for t in ["long-poll", "sse"] {
        let r = &outcome.report.transports[t];
        assert_eq!(
            (r.events_received, r.lost, r.duplicates),
            (r.events_expected, 0, 0),
            "{t}"
        );
    }
    let ws = &outcome.report.transports["ws"];
    assert_eq!(
        ws.events_received, 0,
        "no WebSocket through nginx's defaults"
    );
    assert!(!ws.errors.is_empty());
}

/// Issue #28 item 5: stickiness is not needed. Two instances on one Redis, a balancer in
/// round robin (each request, each WebSocket to the next instance), and a client that resumes
/// from its cursor on whichever instance it reaches loses and duplicates nothing. The only
/// failure allowed is the 409 of a long poll that reached the instance lagging behind Redis.
async fn round_robin_without_stickiness(proxy: &str) {
    let (outcome, _dir) = run(proxy, &["--spawn", "2", "--transports", "long-poll,ws"]).await;
    assert_eq!(outcome.report.server.instances.len(), 2);
    for t in ["long-poll", "ws"] {
        let r = &outcome.report.transports[t];
        assert!(r.events_expected > 0, "{proxy} {t}: events were published");
        assert_eq!(
            (r.events_received, r.lost, r.duplicates, r.gaps),
            (r.events_expected, 0, 0, 0),
            "{proxy} {t}: every event once (errors {:?})",
            r.errors
        );
        // The one failure round robin brings: a long poll that reaches an instance a few
        // milliseconds behind Redis carries a cursor ahead of that instance's head, which the
        // server refuses with 409 (the book, reference/feed.md); the client polls again and resumes.
        assert!(
            r.errors.keys().all(|k| k == "http_409"),
            "{proxy} {t}: no failure but the lagging instance's 409: {:?}",
            r.errors
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_round_robin_through_haproxy_need_no_stickiness() {
    round_robin_without_stickiness("haproxy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_round_robin_through_nginx_need_no_stickiness() {
    round_robin_without_stickiness("nginx").await;
}

/// The book's intermediaries table (`docs/src/guide/proxies.md`) is the committed matrix's
/// (`results/intermediaries/matrix.md`, written by `scripts/intermediaries/matrix.py`): a rerun
/// that changes a cell cannot leave the book behind.
#[test]
fn book_intermediaries_table_is_the_committed_matrix() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let readme = std::fs::read_to_string(format!("{root}/docs/src/guide/proxies.md")).unwrap();
    let matrix =
        std::fs::read_to_string(format!("{root}/results/intermediaries/matrix.md")).unwrap();
    let table = |text: &str| -> String {
        let start = text
            .find("<!-- matrix table -->")
            .expect("the table's start marker");
        let end = text
            .find("<!-- /matrix table -->")
            .expect("the table's end marker");
        text[start..end].to_owned()
    };
    assert_eq!(
        table(&readme),
        table(&matrix),
        "docs/src/guide/proxies.md's intermediaries table differs from results/intermediaries/matrix.md"
    );
}

/// Through a proxy, the report says what it did: how many connections ended and after how
/// long, and calls lifetimes bunched at one value an idle timeout (here nginx's
/// proxy_read_timeout of 1 s on a feed quieter than that).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_says_after_how_long_the_proxy_cut() {
    let (outcome, _dir) = run(
        "nginx",
        &[
            "--proxy-read-timeout",
            "1s",
            "--transports",
            "sse,ws",
            "--rate",
            "0.4",
            "--duration",
            "3500ms",
        ],
    )
    .await;
    for t in ["sse", "ws"] {
        let w = outcome
            .report
            .warnings
            .iter()
            .find(|w| w.contains(&format!("({t}) through nginx")))
            .unwrap_or_else(|| panic!("{t}: {:?}", outcome.report.warnings));
        assert!(
            w.contains("after 1.0 s") && w.contains("idle timeout"),
            "{w}"
        );
        let r = &outcome.report.transports[t];
        assert_eq!((r.lost, r.duplicates), (0, 0), "{t}: resumed whole");
    }
}
