//! `loadgen decide` as a user runs it: the binary, a model file, flags; what it prints and how it
//! exits. The model here is synthetic (its figures chosen so the answer is known); the committed
//! model's own answers are checked where it is made (`loadgen costs`).

use std::process::{Command, Output};

use feedlab_cost::{
    measured::Measured,
    model::{
        Beat, BeatKind, Condition, CostModel, DeliveryPoint, Record, Session, Settings,
        TransportCosts, FORMAT,
    },
};

fn m(v: f64) -> Measured {
    Measured::new(vec![v, v * 1.01, v * 0.99, v])
}

/// A transport whose hold costs `beat_bytes` per beat of kind `kind` every `interval` s.
fn costs(transport: &str, kind: BeatKind, interval: f64, beat_bytes: f64) -> TransportCosts {
    let d = |rate, clients| DeliveryPoint {
        rate_per_s: rate,
        clients,
        cpu_us: m(12.0),
        bytes_down: m(150.0),
        bytes_up: m(0.0),
        packets: m(1.0),
        requests: m(0.0),
        p99_us: m(if kind == BeatKind::Poll {
            interval * 1e6
        } else {
            3_000.0
        }),
        poll_cpu_us: None,
    };
    TransportCosts {
        transport: transport.into(),
        condition: Condition::Browser,
        served_by: "actix-web".into(),
        network: "loopback".into(),
        payload: "chat".into(),
        payload_bytes: 90.0,
        repeats: 4,
        session: Session {
            cpu_us: m(400.0),
            bytes_up: m(900.0),
            bytes_down: m(4_000.0),
            packets: m(14.0),
            connections: 1.0,
            round_trips: 3.0,
        },
        beat: Beat {
            kind,
            interval_s: interval,
            cpu_us: m(8.0),
            bytes_up: m(if kind == BeatKind::Heartbeat {
                0.0
            } else {
                600.0
            }),
            bytes_down: m(beat_bytes),
            packets: m(4.0),
            requests: if kind == BeatKind::Heartbeat {
                0.0
            } else {
                1.0
            },
            at: Vec::new(),
        },
        memory_bytes: m(3_000.0),
        delivery: vec![d(0.01, 100), d(10.0, 100), d(0.01, 10_000), d(10.0, 10_000)],
        message_up: None,
        server_idle_cpu_us_per_s: None,
    }
}

fn model_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let model = CostModel {
        format: FORMAT,
        record: Record {
            commit: "0123abc".into(),
            dirty: false,
            profile: "release".into(),
            cpu_model: "Test CPU".into(),
            cores: 2,
            kernel: "6.0".into(),
            date: "2026-12-07T00:00:00Z".into(),
            command: "loadgen costs".into(),
            duration_s: 1.0,
        },
        settings: Settings {
            heartbeat_s: 15.0,
            long_poll_timeout_s: 25.0,
            poll_interval_s: 5.0,
            idle_window_s: None,
            pinning: None,
            loadgen_cpu_share: None,
        },
        costs: vec![
            costs("short-poll", BeatKind::Poll, 5.0, 700.0),
            costs("long-poll", BeatKind::Renewal, 25.0, 500.0),
            costs("sse", BeatKind::Heartbeat, 15.0, 20.0),
            costs("ws", BeatKind::Heartbeat, 15.0, 8.0),
        ],
    };
    let path = dir.path().join("model.json");
    std::fs::write(&path, serde_json::to_string(&model).unwrap()).unwrap();
    path
}

fn decide(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("decide")
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_workload_is_ranked_from_the_model_with_its_bill_and_source() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_file(&dir);
    let o = decide(&[
        "--model",
        model.to_str().unwrap(),
        "--events-per-hour",
        "30",
        "--clients",
        "50000",
        "--session",
        "20m",
        "--payload",
        "chat",
        "--latency-budget-ms",
        "1000",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    // Short polls every 5 s are over a 1 s budget and cost a request each: last.
    let ranks: Vec<&str> = t
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert!(ranks.last().unwrap().contains("short-poll"), "{t}");
    assert!(ranks.last().unwrap().trim_end().ends_with("no"), "{t}");
    // SSE and WebSocket cost the same to within a few bytes an hour: a tie, said as one.
    assert!(t.contains("tie"), "{t}");
    assert!(t.contains("Last-Event-ID"), "{t}");
    assert!(t.contains("commit 0123abc"), "{t}");
    assert!(t.contains("load balancer"), "{t}");
}

#[test]
fn without_a_workload_every_named_scenario_gets_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_file(&dir);
    let o = decide(&["--model", model.to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.starts_with("No workload given"), "{t}");
    for name in [
        "notifications",
        "dashboard",
        "ticker",
        "chat",
        "mobile",
        "game",
        "progress",
    ] {
        assert!(
            t.lines().any(|l| l.starts_with(name)),
            "no line for {name}:\n{t}"
        );
    }
    // The sweep stands for no application.
    assert!(!t.lines().any(|l| l.starts_with("rtt-sweep")), "{t}");
}

#[test]
fn markdown_gives_one_row_per_named_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_file(&dir);
    let o = decide(&["--model", model.to_str().unwrap(), "--markdown"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let rows: Vec<&str> = t.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.len(), 1 + 7, "{t}");
    assert!(rows[1].starts_with("| notifications | tie: "), "{t}");
    assert!(
        rows[1].contains("50000 clients, 20m sessions, 30 events/h, browser"),
        "{t}"
    );
}

#[test]
fn json_gives_the_same_answer_as_data() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_file(&dir);
    let o = decide(&[
        "--model",
        model.to_str().unwrap(),
        "--scenario",
        "chat",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let answer = &v[0]["answer"];
    assert_eq!(v[0]["name"], "chat");
    assert_eq!(answer["standings"].as_array().unwrap().len(), 4);
    assert!(answer["verdict"].as_str().unwrap().len() > 5);
}

#[test]
fn nonsense_and_missing_models_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_file(&dir);
    let m = model.to_str().unwrap();
    for (args, reason) in [
        (
            vec!["--model", m, "--clients", "0"],
            "--clients must be at least 1",
        ),
        (
            vec!["--model", m, "--events-per-hour=-3"],
            "--events-per-hour must be",
        ),
        (vec!["--model", m, "--session", "0s"], "--session"),
        (
            vec!["--model", m, "--balancer", "elb"],
            "unknown load balancer",
        ),
        (
            vec!["--model", m, "--scenario", "rtt-sweep"],
            "no [workload] table",
        ),
        (vec!["--model", m, "--scenario", "nope"], "no scenario"),
        (vec!["--model", "/nonexistent/model.json"], "loadgen costs"),
    ] {
        let o = decide(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(reason), "{args:?}: {}", text(&o));
    }
}

#[test]
fn a_model_without_quic_says_so_and_refuses_to_rank_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_file(&dir);
    let model = model.to_str().unwrap();
    let o = decide(&["--model", model, "--events-per-hour", "30"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("HTTP/3 and WebTransport: the model has no browser-h3 measurement"),
        "{t}"
    );
    let o = decide(&[
        "--model",
        model,
        "--events-per-hour",
        "30",
        "--conditions",
        "browser-h3",
    ]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("no browser-h3 measurement"), "{t}");
}
