//! `--chaos`: a server SIGKILLed in the middle of a run, with all four transports reading and
//! the publisher publishing. Nothing acknowledged may be lost and nothing delivered twice; the
//! report must say how long reconnecting took. Each run is one concurrent phase of a few
//! seconds, on ports the servers pick themselves on 127.0.0.1.

use std::time::{Duration, Instant};

use feedlab_testkit::{require, Redis};
use loadgen::{run::Mode, Args, Outcome};

/// Runs loadgen (as a library) with `extra` on top of a short concurrent four-transport run
/// against servers it spawns from this test binary's `loadgen serve`.
async fn run(extra: &[&str]) -> (Outcome, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec![
        "--server-bin",
        env!("CARGO_BIN_EXE_loadgen"),
        "--concurrent",
        "--clients",
        "5",
        "--duration",
        "3s",
        "--rate",
        "20",
        "--poll-interval",
        "200ms",
        "--drain",
        "1s",
        "--http",
        "1.1",
        "--repeat",
        "1",
        "--seed",
        "11",
        "--out",
        out.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        loadgen::execute(Args::from_args(args).unwrap(), Mode::Library),
    )
    .await
    .expect("run finishes in time")
    .expect("run succeeds");
    eprintln!(
        "run {extra:?} took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let md = std::fs::read_to_string(outcome.out_dir.join("report.md")).unwrap();
    assert!(
        md.contains("## Resilience"),
        "report.md has the chaos section"
    );
    // The table a reader sees says what the report's numbers say: nothing lost, nothing
    // duplicated, on each of the four transports.
    let rows = resilience_rows(&md);
    assert_eq!(rows.len(), 4, "one row per transport\n{md}");
    for row in &rows {
        assert_eq!(
            (row["lost"].as_str(), row["duplicated"].as_str()),
            ("0", "0"),
            "{row:?}"
        );
        assert_eq!(row["verdict"], "ok", "{row:?}");
    }
    (outcome, out)
}

/// The rows of report.md's Resilience table, each as column name → cell.
fn resilience_rows(md: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let section = md
        .split("\n## ")
        .find(|s| s.starts_with("Resilience"))
        .unwrap_or_else(|| panic!("no Resilience section in\n{md}"));
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_owned())
            .collect()
    };
    let mut table = section.lines().filter(|l| l.trim_start().starts_with('|'));
    let header = cells(table.next().expect("a table header"));
    table
        .skip(1) // the |---| line
        .map(|l| header.iter().cloned().zip(cells(l)).collect())
        .collect()
}

/// Every transport came through the kill whole, and its reconnects were timed.
fn assert_survived(outcome: &Outcome, kind: &str) {
    let report = &outcome.report;
    assert_eq!(
        report.transports.keys().collect::<Vec<_>>(),
        ["long-poll", "short-poll", "sse", "ws"]
    );
    for r in report.transports.values() {
        let what = format!("{} under {kind}", r.transport);
        assert!(
            r.events_published >= 40,
            "{what}: published {}",
            r.events_published
        );
        assert_eq!((r.lost, r.duplicates), (0, 0), "{what}: lost / duplicated");
        assert_eq!((r.gaps, r.out_of_order), (0, 0), "{what}");
        eprintln!(
            "{what}: published {}, retried {}, replayed {}, maybe twice {}",
            r.publisher.published,
            r.publisher.retried,
            r.publisher.replayed,
            r.publisher.maybe_twice
        );
        // Every publish carried an idempotency key the server honoured: a retry of a publish
        // that had reached the dying server got its first seq back, not a second copy.
        assert_eq!(
            r.publisher.maybe_twice, 0,
            "{what}: a publish possibly in the feed twice: {:?}",
            r.publisher
        );
        assert!(r.disconnects > 0, "{what}: its clients saw the kill");
        let reconnect = r.reconnect_us.expect("reconnect time reported");
        assert!(
            reconnect.count > 0 && reconnect.p50 > 0,
            "{what}: {reconnect:?}"
        );
        let chaos = r.chaos.as_ref().expect("chaos result");
        assert_eq!(chaos.kind, kind);
        assert!(
            chaos.window_end_s >= chaos.window_start_s,
            "{what}: {chaos:?}"
        );
        assert!(chaos.latency_outside_us.count > 0, "{what}");
        assert!(chaos.restart_error.is_none(), "{what}: {chaos:?}");
    }
    assert!(
        !report.loss,
        "expected errors are not loss: {:?}",
        report.warnings
    );
    assert!(outcome.clean());
    let json = std::fs::read_to_string(outcome.out_dir.join("report.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let schema =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/report.schema.json");
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(schema).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "schema: {}", errors.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_restart_loses_and_duplicates_nothing_on_any_transport() {
    let (outcome, _out) = run(&[
        "--chaos",
        "kill-restart",
        "--chaos-at",
        "40%",
        "--chaos-outage",
        "500ms",
    ])
    .await;
    assert_survived(&outcome, "kill-restart");
    let sse = &outcome.report.transports["sse"];
    let chaos = sse.chaos.as_ref().unwrap();
    assert!(
        chaos.back_after_s.unwrap() >= 0.5,
        "restarted after the outage: {chaos:?}"
    );
    let command = outcome.report.server.command.as_ref().unwrap().join(" ");
    assert!(
        command.contains("--data-dir"),
        "a data directory was given: {command}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_one_of_two_instances_and_every_client_fails_over() {
    let redis = require!(Redis::start());
    let url = redis.url();
    let (outcome, _out) = run(&[
        "--spawn",
        "2",
        "--server-arg=--redis-prefix=chaos-kill-one",
        "--redis",
        &url,
        "--chaos",
        "kill-one",
        "--chaos-at",
        "1s",
    ])
    .await;
    assert_survived(&outcome, "kill-one");
    let server = &outcome.report.server;
    assert_eq!(server.instances.len(), 2, "{server:?}");
    assert_eq!(server.redis.as_deref(), Some(url.as_str()));
    for r in outcome.report.transports.values() {
        // Half the clients were on the killed instance; the publisher may have been too.
        assert!(r.disconnects >= 2, "{}: {}", r.transport, r.disconnects);
        assert!(
            r.chaos.as_ref().unwrap().back_after_s.is_none(),
            "kill-one restarts nothing mid-phase"
        );
    }
    // The feed itself, read back from Redis: every event is a different publish (`pub` n),
    // however many retries the kill caused.
    let mut pubs: Vec<u64> = redis
        .cli(&["XRANGE", "chaos-kill-one:events", "-", "+"])
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("pub").and_then(serde_json::Value::as_u64))
        .collect();
    let events = pubs.len();
    pubs.sort_unstable();
    pubs.dedup();
    let published: u64 = outcome
        .report
        .transports
        .values()
        .map(|r| r.publisher.published)
        .max()
        .unwrap();
    assert!(
        events as u64 >= published,
        "{events} events for {published} acknowledged publishes"
    );
    assert_eq!(pubs.len(), events, "a publish entered the feed twice");
}
