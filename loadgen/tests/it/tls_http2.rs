//! `https://`/`wss://` and HTTP/2 against the real server: every transport over TLS with `--ca`,
//! HTTP/2 by ALPN and by h2c prior knowledge, `--insecure`, and a certificate that is not
//! trusted. Over TLS loadgen's socket bytes are TLS records, so `/stats` bytes are checked
//! against the plaintext loadgen read inside TLS; over HTTP/2 the server can only estimate its
//! HPACK-compressed heads, so bytes are reported there but not checked (the report says so).

use std::path::Path;

use feedlab_report::Report;
use loadgen::{run::Mode, Args};
use server::testing::TestServer;

fn tls_server(dir: &Path) -> (TestServer, String) {
    let cert = dir.join("cert.pem").display().to_string();
    let srv = TestServer::start(&["--tls-self-signed", "--tls-write-cert", &cert]);
    (srv, cert)
}

async fn run(url: &str, out: &Path, extra: &[&str]) -> anyhow::Result<Report> {
    let mut all = vec![
        "--url",
        url,
        "--clients",
        "3",
        "--duration",
        "800ms",
        "--rate",
        "20",
        "--poll-interval",
        "200ms",
        "--drain",
        "500ms",
        "--repeat",
        "1",
        "--seed",
        "11",
        "--out",
        out.to_str().unwrap(),
    ];
    all.extend_from_slice(extra);
    let args = Args::from_args(all).unwrap();
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        loadgen::execute(args, Mode::Library),
    )
    .await
    .expect("run finishes in time")?;
    Ok(outcome.report)
}

/// Nothing lost, no errors, requests and deliveries equal to the server's.
fn assert_delivered(report: &Report) {
    assert!(!report.loss, "warnings: {:?}", report.warnings);
    for r in &report.phases {
        let what = format!("{} HTTP/{} tls={}", r.transport, r.http, r.tls);
        assert!(r.events_published >= 10, "{what}: {}", r.events_published);
        assert_eq!(r.events_received, r.events_expected, "{what}");
        assert_eq!((r.gaps, r.duplicates, r.out_of_order), (0, 0, 0), "{what}");
        assert!(r.errors.is_empty(), "{what}: {:?}", r.errors);
        let c = r.server_check.as_ref().expect("checked against /stats");
        assert_eq!(c.requests.loadgen, c.requests.server, "{what}: requests");
        assert_eq!(
            c.events_delivered.loadgen, c.events_delivered.server,
            "{what}: events"
        );
        assert!(c.ok, "{what}: {c:?}");
        if r.transport != "short-poll" || r.http != "1.0" {
            assert_eq!(r.connections_opened, 3, "{what}: one connection per client");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_over_tls_with_ca_and_http2_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, cert) = tls_server(dir.path());
    let report = run(
        &srv.url("/"),
        &dir.path().join("out"),
        &["--ca", &cert, "--http", "1.1,2"],
    )
    .await
    .expect("run over TLS succeeds");
    assert_delivered(&report);
    let kinds: Vec<(&str, &str)> = report
        .phases
        .iter()
        .map(|r| (r.transport.as_str(), r.http.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("short-poll", "1.1"),
            ("long-poll", "1.1"),
            ("sse", "1.1"),
            ("ws", "1.1"),
            ("short-poll", "2"),
            ("long-poll", "2"),
            ("sse", "2")
        ]
    );
    for r in &report.phases {
        let what = format!("{} HTTP/{}", r.transport, r.http);
        assert!(r.tls, "{what}");
        let c = r.server_check.as_ref().unwrap();
        assert!(c.bytes_inside_tls, "{what}");
        let plain = r
            .bytes_plaintext_down
            .expect("plaintext counted inside TLS");
        assert!(
            r.bytes_down > plain,
            "{what}: TLS records ({}) outweigh their plaintext ({plain})",
            r.bytes_down
        );
        if r.http == "2" {
            assert!(
                c.bytes_note.is_some(),
                "{what}: HTTP/2 bytes are not checked"
            );
        } else {
            assert!(
                c.bytes_note.is_none() && c.bytes.ok,
                "{what}: plaintext bytes agree with the server: {c:?}"
            );
        }
    }
    // The TLS and HTTP/2 fields are in the schema.
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/report.schema.json");
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(schema_path).unwrap()).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/report.json")).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "report.json: {}", errors.join("\n"));
    let md = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(md.contains("## HTTP/1.0, 1.1 and 2"), "{md}");
    assert!(md.contains("HTTP/2 against HTTP/1.1 (over TLS)"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_over_h2c_for_polling_and_sse() {
    let srv = TestServer::start(&["--h2c"]);
    let dir = tempfile::tempdir().unwrap();
    let report = run(
        &srv.url("/"),
        dir.path(),
        &["--http", "2", "--transports", "short-poll,long-poll,sse"],
    )
    .await
    .expect("h2c run succeeds");
    assert_delivered(&report);
    assert_eq!(report.phases.len(), 3);
    assert!(report.phases.iter().all(|r| r.http == "2" && !r.tls));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_needs_no_ca_and_an_untrusted_certificate_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, _cert) = tls_server(dir.path());
    let other = tempfile::tempdir().unwrap();
    // Another self-signed certificate: valid PEM, but not the one this server presents.
    let (_other_srv, wrong_cert) = tls_server(other.path());

    let report = run(
        &srv.url("/"),
        &dir.path().join("insecure"),
        &["--insecure", "--transports", "ws", "--http", "1.1"],
    )
    .await
    .expect("--insecure accepts the self-signed certificate");
    assert_delivered(&report);
    assert!(report.settings.insecure);

    for extra in [vec!["--ca", wrong_cert.as_str()], vec![]] {
        let mut args = extra.clone();
        args.extend(["--transports", "sse", "--http", "1.1"]);
        let err = run(&srv.url("/"), &dir.path().join("refused"), &args)
            .await
            .expect_err("an untrusted certificate fails the run");
        let msg = format!("{err:#}");
        assert!(
            msg.contains("TLS certificate error") && msg.contains("--ca"),
            "{extra:?}: {msg}"
        );
        assert!(
            msg.contains("UnknownIssuer") || msg.contains("invalid peer certificate"),
            "{extra:?}: rustls's reason is kept: {msg}"
        );
    }
}
