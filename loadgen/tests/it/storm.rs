//! The reconnect storm at a small scale, as `scripts/storm/bench.py` runs it at 10,000: clients
//! that come back as browsers do (`--reconnect browser`), two instances on one Redis, one killed
//! or both restarted in turn, and the storm timeline (`--storm-timeline`). Every client must be
//! back, nothing lost, nothing twice, and the timeline must show the move.

use std::time::{Duration, Instant};

use feedlab_testkit::{require, Redis};
use loadgen::{run::Mode, Args, Outcome};

const CLIENTS: u64 = 200;

/// Runs loadgen (as a library) with `extra` on top of a two-instance storm of [`CLIENTS`]
/// browser-like clients per transport; returns the outcome and the timeline's phases.
async fn storm(
    redis: &Redis,
    extra: &[&str],
) -> (Outcome, Vec<serde_json::Value>, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let timeline = out.path().join("timeline.jsonl");
    let url = redis.url();
    let clients = CLIENTS.to_string();
    let mut args = vec![
        "--server-bin",
        env!("CARGO_BIN_EXE_loadgen"),
        "--spawn",
        "2",
        "--redis",
        &url,
        "--clients",
        &clients,
        "--rate",
        "10",
        "--http",
        "1.1",
        "--repeat",
        "1",
        "--seed",
        "5",
        "--drain",
        "1s",
        "--reconnect",
        "browser",
        "--storm-timeline",
        timeline.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        // Short hints, so the storm fits a test.
        "--server-arg=--sse-retry-min=300ms",
        "--server-arg=--sse-retry-max=1500ms",
    ];
    args.extend_from_slice(extra);
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(90),
        loadgen::execute(Args::from_args(args).unwrap(), Mode::Library),
    )
    .await
    .expect("run finishes in time")
    .expect("run succeeds");
    eprintln!(
        "storm {extra:?} took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let phases = std::fs::read_to_string(&timeline)
        .expect("the timeline was written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    (outcome, phases, out)
}

/// Sums `key` over the phase's counts on `instance` (any instance when `None`) from `from_ms`.
fn sum(phase: &serde_json::Value, key: &str, instance: Option<u64>, from_ms: u64) -> u64 {
    phase["counts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| instance.is_none_or(|i| c["instance"].as_u64() == Some(i)))
        .filter(|c| c["t_ms"].as_u64().unwrap() + 100 > from_ms)
        .map(|c| c[key].as_u64().unwrap())
        .sum()
}

/// When `what` happened to an instance, by the phase's marks.
fn mark(phase: &serde_json::Value, what: &str) -> Vec<(u64, u64)> {
    phase["marks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["what"] == what)
        .map(|m| (m["instance"].as_u64().unwrap(), m["t_ms"].as_u64().unwrap()))
        .collect()
}

/// Nothing lost or twice, every reconnect timed, and at the end every client connected: the
/// timeline's subscriptions minus its lost connections are the clients.
fn assert_whole(outcome: &Outcome, phases: &[serde_json::Value], transports: &[&str]) {
    assert_eq!(
        phases.len(),
        transports.len(),
        "one timeline line per phase"
    );
    for (phase, name) in phases.iter().zip(transports) {
        let r = &outcome.report.transports[*name];
        let what = format!("{name} ({})", phase["label"]);
        assert!(r.events_published >= 40, "{what}: {}", r.events_published);
        assert_eq!(
            (r.lost, r.duplicates, r.gaps),
            (0, 0, 0),
            "{what}: errors {:?}, reconnects {:?}, chaos {:?}",
            r.errors,
            r.reconnect_us,
            r.chaos
        );
        assert!(r.disconnects >= CLIENTS / 2, "{what}: {}", r.disconnects);
        let reconnect = r.reconnect_us.expect("reconnects timed");
        assert!(reconnect.count >= CLIENTS / 2, "{what}: {reconnect:?}");
        let up = sum(phase, "up", None, 0);
        let down = sum(phase, "down", None, 0);
        assert_eq!(up - down, CLIENTS, "{what}: every client back by the end");
        let cpu = phase["cpu"].as_array().unwrap();
        assert!(
            cpu.iter().any(|c| c["instance"] == 0) && cpu.iter().any(|c| c["instance"] == 1),
            "{what}: both instances' CPU sampled"
        );
    }
    assert!(
        !outcome.report.loss,
        "the storm's errors are not loss: {:?}",
        outcome.report.warnings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_two_instances_moves_every_client_to_the_other_with_nothing_lost() {
    let redis = require!(Redis::start());
    let (outcome, phases, _out) = storm(
        &redis,
        &[
            "--transports",
            "sse,ws",
            "--duration",
            "6s",
            "--chaos",
            "kill-one",
            "--chaos-at",
            "1s",
            // Far below the storm: refusals, and clients that come back after them.
            "--server-arg=--max-new-connections-per-sec=30",
        ],
    )
    .await;
    assert_whole(&outcome, &phases, &["sse", "ws"]);
    for (n, (phase, name)) in phases.iter().zip(["sse", "ws"]).enumerate() {
        let kills = mark(phase, "sigkill");
        assert_eq!(kills.len(), 1, "{kills:?}");
        let (victim, at) = kills[0];
        assert_eq!(victim, n as u64, "the instances take turns");
        let survivor = 1 - victim;
        // Half the clients were on the victim; each had to knock on the survivor.
        let knocks = sum(phase, "attempts", Some(survivor), at);
        assert!(knocks >= CLIENTS / 2, "phase {n}: {knocks} attempts");
        let refused = sum(phase, "refused", Some(survivor), at);
        assert!(
            refused > 0,
            "phase {n}: 30 new connections a second refuse some"
        );
        let reported = outcome.report.transports[name]
            .errors
            .get("http_503")
            .copied()
            .unwrap_or(0);
        assert!(
            reported >= refused,
            "{name}: the report counts the {refused} 503s the timeline shows: {reported}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_stops_and_starts_each_instance_with_nothing_lost() {
    let redis = require!(Redis::start());
    let (outcome, phases, _out) = storm(
        &redis,
        &[
            "--transports",
            "sse",
            "--duration",
            "8s",
            "--chaos",
            "rolling-restart",
            "--chaos-at",
            "1s",
            "--chaos-outage",
            "500ms",
            "--server-arg=--shutdown-drain=600ms",
        ],
    )
    .await;
    assert_whole(&outcome, &phases, &["sse"]);
    let phase = &phases[0];
    let sigterms = mark(phase, "sigterm");
    let listening = mark(phase, "listening");
    assert_eq!(
        sigterms.iter().map(|m| m.0).collect::<Vec<_>>(),
        [0, 1],
        "each instance in turn"
    );
    assert_eq!(listening.len(), 2, "{listening:?}");
    assert!(
        sigterms[1].1 >= listening[0].1 + 500,
        "the next waits --chaos-outage after the first is back: {sigterms:?} {listening:?}"
    );
    // Each drain spread its instance's clients over the window: they did not all lose their
    // streams in one 100 ms bucket. (Both drains: loadgen's memory sampler once waited on the
    // lock a stopping instance holds until it exits, which stalled the clients on its runtime
    // thread, so they saw their streams end all at once when the server exited.)
    let exited = mark(phase, "exited");
    for (k, &(instance, from)) in sigterms.iter().enumerate() {
        let until = exited[k].1;
        let drained: Vec<u64> = phase["counts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["instance"] == instance && c["down"].as_u64().unwrap() > 0)
            .filter(|c| c["t_ms"].as_u64().unwrap() + 100 > from)
            .filter(|c| c["t_ms"].as_u64().unwrap() <= until + 200)
            .map(|c| c["down"].as_u64().unwrap())
            .collect();
        let total: u64 = drained.iter().sum();
        assert!(
            drained.len() >= 3 && drained.iter().all(|&n| 2 * n <= total),
            "instance {instance}'s drain: spread over several 100 ms buckets, none with half: {drained:?}"
        );
    }
    let chaos = outcome.report.transports["sse"].chaos.as_ref().unwrap();
    assert_eq!(chaos.kind, "rolling-restart");
    assert!(chaos.restart_error.is_none(), "{chaos:?}");
    assert!(chaos.back_after_s.is_some(), "{chaos:?}");
}
