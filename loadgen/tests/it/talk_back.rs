//! Talking back (`--send-rate`): every client publishes its own messages while receiving
//! everyone's, each transport its own way up. Nothing may be lost, every acknowledged message must
//! reach every client once and in order, each sender must see its own messages come back, and the
//! costs must show the way up: no request per message on a WebSocket, one per message otherwise,
//! a second connection over HTTP/1.1, none over HTTP/2, one per message over HTTP/1.0.

use std::path::Path;

use loadgen::{run::Mode, Args};
use server::testing::TestServer;

const CLIENTS: u64 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_talks_back_its_own_way_and_nothing_is_lost() {
    let srv = TestServer::start(&["--h2c"]);
    let out = tempfile::tempdir().unwrap();
    let args = Args::from_args([
        "--repeat",
        "1",
        "--url",
        &srv.url("/"),
        "--clients",
        &CLIENTS.to_string(),
        "--duration",
        "1500ms",
        // The server-side publisher stays on beside the clients: both kinds must arrive.
        "--rate",
        "4",
        "--send-rate",
        "4",
        "--poll-interval",
        "200ms",
        "--drain",
        "800ms",
        "--http",
        "1.1,2,1.0",
        "--seed",
        "3",
        "--out",
        out.path().to_str().unwrap(),
    ])
    .unwrap();
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(90),
        loadgen::execute(args, Mode::Library),
    )
    .await
    .expect("run finishes in time")
    .expect("run succeeds");
    let report = &outcome.report;
    assert!(outcome.clean(), "no loss: {:?}", report.conclusions);
    // The clients' own messages are in the feed, but loadgen sent them: no warning about
    // events "loadgen did not publish" (chat's report opened with twelve).
    assert!(
        !report
            .warnings
            .iter()
            .any(|w| w.contains("did not publish")),
        "{:?}",
        report.warnings
    );
    // 4 transports over 1.1, polling and SSE over 2, polling over 1.0.
    assert_eq!(report.phases.len(), 9);
    for r in &report.phases {
        let what = format!("{} HTTP/{}", r.transport, r.http);
        let u = r
            .talk_back
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: upstream"));
        // 4/s for 1.5 s: messages at 0, 250, … 1250 ms.
        assert_eq!(u.messages_sent, CLIENTS * 6, "{what}");
        assert_eq!(u.messages_acked, u.messages_sent, "{what}: {:?}", u.errors);
        assert_eq!((u.lost_own, u.unacknowledged), (0, 0), "{what}");
        assert!(u.errors.is_empty(), "{what}: {:?}", u.errors);
        // Every acknowledged message and every publisher event reached every client once.
        let in_feed = u.messages_acked + r.events_published;
        assert_eq!(r.events_expected, CLIENTS * in_feed, "{what}");
        assert_eq!(r.events_received, r.events_expected, "{what}");
        assert_eq!(
            (r.gaps, r.duplicates, r.out_of_order, r.lost),
            (0, 0, 0, 0),
            "{what}"
        );
        assert!(r.errors.is_empty(), "{what}: {:?}", r.errors);
        // Latency: every ack, every own receipt, every other client's receipt.
        assert_eq!(u.ack_us.count, u.messages_acked, "{what}");
        assert_eq!(u.own_receipt_us.count, u.messages_acked, "{what}");
        assert_eq!(
            u.others_receipt_us.count,
            u.messages_acked * (CLIENTS - 1),
            "{what}"
        );
        assert!(
            u.ack_us.p50 > 0 && u.others_receipt_us.max < 5_000_000,
            "{what}: {u:?}"
        );
        assert_eq!(
            r.latency_us.count,
            r.events_received - CLIENTS * u.messages_acked,
            "{what}: the publisher's latency is its events' only"
        );
        let (requests, connections) = match (r.transport.as_str(), r.http.as_str()) {
            ("ws", _) => (0.0, Some(1.0)),
            (_, "2") => (1.0, Some(1.0)),
            (_, "1.1") => (1.0, Some(2.0)),
            // A connection per POST and per poll.
            _ => (1.0, None),
        };
        assert_eq!(u.requests_per_message, Some(requests), "{what}");
        match connections {
            Some(c) => assert_eq!(u.connections_per_client, c, "{what}"),
            None => assert!(u.connections_per_client >= 6.0, "{what}: {u:?}"),
        }
        assert!(u.bytes_up_per_message.unwrap() > 100.0, "{what}: {u:?}");
        assert_eq!(
            u.bytes_up_sending_only_per_message.is_some(),
            r.transport != "ws" && r.http != "2",
            "{what}"
        );
        let check = r.server_check.as_ref().expect("checked against /stats");
        assert!(check.ok, "{what}: {check:?}");
        // The server counted the same publishes on the same way up (and the same bytes, where
        // the way has connections of its own).
        let up = u
            .server_check
            .as_ref()
            .expect("publishes checked against /stats");
        assert!(up.ok, "{what}: {up:?}");
        assert_eq!(
            up.messages.server,
            u.messages_acked
                + if up.way == "http/1.1" {
                    r.events_published
                } else {
                    0
                },
            "{what}: {up:?}"
        );
        if up.bytes_note.is_none() {
            assert!(up.bytes.ok && up.bytes.server > 0, "{what}: {up:?}");
        }
    }

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    let schema: serde_json::Value = serde_json::from_slice(
        &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/report.schema.json"))
            .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "schema: {}", errors.join("\n"));
    assert_eq!(json["phases"][0]["upstream"]["messages_sent"], CLIENTS * 6);

    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(md.contains("## Talking back"), "{md}");
    assert!(
        md.contains("Talking back, ws (ws-message")
            && md.contains("Talking back, sse (HTTP/2) (post-h2-stream"),
        "a conclusion per transport and way up: {md}"
    );
    srv.stop().unwrap();
}
