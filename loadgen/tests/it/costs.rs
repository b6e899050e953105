//! `loadgen costs`: a `--quick` measurement end to end (two transports, plain HTTP/1.1, one
//! repeat, the spawned debug server), and the model's JSON Schema, generated from the types.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use feedlab_cost::{
    compose::compose,
    model::{Condition, CostModel},
    workload::Workload,
};
use serde_json::Value;

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/model")
}

#[test]
fn the_committed_model_schema_is_the_one_the_types_generate() {
    let path = model_dir().join("model.schema.json");
    let generated = loadgen::costs::schema();
    if std::env::var_os("FEEDLAB_WRITE_SCHEMA").is_some() {
        std::fs::create_dir_all(model_dir()).unwrap();
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "results/model/model.schema.json is not what the model types generate; rewrite it with \
         FEEDLAB_WRITE_SCHEMA=1 cargo test -p loadgen --test it costs"
    );
    // A committed model, when there is one, is of that shape and sound.
    let model = model_dir().join("model.json");
    if model.is_file() {
        let schema: Value = serde_json::from_str(&generated).unwrap();
        let v = jsonschema::validator_for(&schema).unwrap();
        let json: Value = serde_json::from_slice(&std::fs::read(&model).unwrap()).unwrap();
        let errs: Vec<String> = v.iter_errors(&json).map(|e| e.to_string()).collect();
        assert!(errs.is_empty(), "{}", errs.join("\n"));
        loadgen::costs::load(&model).unwrap();
    }
}

#[test]
fn a_quick_measurement_writes_a_sound_model() {
    let out = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "costs",
            "--quick",
            "--repeats",
            "1",
            "--conditions",
            "plain-h1",
            "--transports",
            "sse,long-poll",
            "--out",
        ])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    eprintln!(
        "loadgen costs --quick: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let model: CostModel = loadgen::costs::load(&out.path().join("model.json")).unwrap();
    let names: Vec<&str> = model.costs.iter().map(|c| c.transport.as_str()).collect();
    assert_eq!(names, ["long-poll", "sse"]);
    assert!(model.record.duration_s > 0.0 && !model.record.commit.is_empty());
    // On two cores or more the servers ran apart from loadgen, and the model says where.
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    if cpus >= 2 {
        let pinning = model.settings.pinning.as_deref().unwrap_or_default();
        assert!(
            pinning.starts_with("servers on CPU ") && pinning.contains("loadgen on CPU "),
            "{pinning:?}"
        );
    }
    let share = model.settings.loadgen_cpu_share.unwrap();
    assert!(
        share > 0.0 && share <= 1.05,
        "loadgen's share of its cores: {share}"
    );
    for c in &model.costs {
        assert_eq!(c.condition, Condition::PlainH1);
        assert_eq!(c.served_by, "fast path");
        for (what, m) in [
            ("session CPU", &c.session.cpu_us),
            ("session bytes up", &c.session.bytes_up),
            ("beat CPU", &c.beat.cpu_us),
            ("beat bytes down", &c.beat.bytes_down),
            ("memory", &c.memory_bytes),
        ] {
            assert!(m.median() > 0.0, "{} {what}: {m:?}", c.transport);
        }
        assert!(c.session.round_trips >= 2.0, "{c:?}");
        let counts: Vec<u64> = c.beat.at.iter().map(|p| p.connections).collect();
        assert_eq!(
            counts,
            [10, 400],
            "the beat at the fewest clients and at the most"
        );
        assert_eq!(c.delivery.len(), 4);
        assert!(c.delivery.iter().all(|d| d.bytes_down.median() > 0.0));
        let w = Workload {
            clients: 20,
            session_s: 60.0,
            events_per_hour: 3600.0,
            messages_per_hour: 60.0,
            payload: c.payload.clone(),
            network: "loopback".into(),
            condition: Condition::PlainH1,
            latency_budget_ms: None,
        };
        let h = compose(c, &w, None).per_client_hour;
        for v in [h.cpu_s, h.bytes_up, h.bytes_down, h.packets] {
            assert!(v.is_finite() && v > 0.0, "{h:?}");
        }
    }
    // Its check against direct whole-session runs, as the model was made (same CPUs): one
    // comparison per transport, each with its direct run's figures and the model's.
    let status = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "costs",
            "--quick",
            "--validate",
            "--validate-repeats",
            "1",
            "--workloads",
            "busy",
            "--conditions",
            "plain-h1",
            "--transports",
            "sse,long-poll",
            "--out",
        ])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("validation.json")).unwrap())
            .unwrap();
    assert_eq!(v["pinning"], serde_json::json!(model.settings.pinning));
    let comparisons = v["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len(), 2, "{v}");
    for c in comparisons {
        assert_eq!(c["workload"], "busy");
        let (predicted, direct) = (&c["cpu"]["predicted"], &c["cpu"]["median"]);
        assert!(
            predicted.as_f64().unwrap() > 0.0 && direct.as_f64().unwrap() > 0.0,
            "{c}"
        );
        assert!(c["runs"][0]["events"].as_f64().unwrap() > 0.0, "{c}");
    }
    let md = std::fs::read_to_string(out.path().join("validation.md")).unwrap();
    assert!(md.contains("| sse | plain-h1 |"), "{md}");
}

/// The QUIC condition: short polls and SSE over HTTP/3 (`server --quic --quic-http3`) and
/// WebTransport (`server --quic`), every figure measured (QUIC's bytes and datagrams counted by
/// the clients, since `ss` sees no UDP flows).
#[test]
fn a_quick_measurement_over_quic_gives_every_figure_for_http3_and_webtransport() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "costs",
            "--quick",
            "--repeats",
            "1",
            "--conditions",
            "browser-h3",
            "--transports",
            "short-poll,sse,wt",
            "--out",
        ])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let model: CostModel = loadgen::costs::load(&out.path().join("model.json")).unwrap();
    let names: Vec<&str> = model.costs.iter().map(|c| c.transport.as_str()).collect();
    assert_eq!(names, ["short-poll", "sse", "wt"]);
    for c in &model.costs {
        let t = c.transport.as_str();
        assert_eq!(c.condition, Condition::BrowserH3, "{t}");
        assert_eq!(c.served_by, "quic (quinn)", "{t}");
        assert_eq!(
            c.session.round_trips, 3.0,
            "{t}: Retry, handshake, request or CONNECT"
        );
        let m = c.message_up.as_ref().expect("messages up measured");
        let poll = c.delivery.iter().any(|d| d.poll_cpu_us.is_some());
        for (what, v) in c.figures() {
            let x = v.median();
            assert!(x.is_finite(), "{t} {what}: {v:?}");
            // May be zero or either side of it: a delivery's requests (none on a stream), the
            // bytes up it adds (acknowledgements at most), and a short poll's delivery CPU and
            // packets (what events added to polls that were made anyway; its polls with events
            // cost: `delivery CPU per poll`).
            let near_zero = what.starts_with("delivery requests")
                || what.starts_with("delivery bytes up")
                || (poll
                    && (what.starts_with("delivery CPU at")
                        || what.starts_with("delivery packets")));
            assert!(near_zero || x > 0.0, "{t} {what}: {v:?}");
        }
        assert_eq!(c.delivery.len(), 4, "{t}");
        assert_eq!(c.beat.at.len(), 2, "{t}");
        // A session is a QUIC handshake at least: the server's certificate comes down, and the
        // client's first packets are padded to 1,200 bytes.
        assert!(c.session.bytes_down.median() > 1000.0, "{t}: {c:?}");
        assert!(c.session.bytes_up.median() >= 1200.0, "{t}: {c:?}");
        // A message up carries its payload.
        assert!(m.bytes_up.median() >= c.payload_bytes, "{t}: {m:?}");
    }
    let sse = &model.costs[1];
    for d in &sse.delivery {
        assert!(
            d.bytes_down.median() >= sse.payload_bytes,
            "an SSE event over HTTP/3 carries its payload: {d:?}"
        );
    }
    // A short poll is a request up and an answer down, each at least a QUIC packet's header.
    let poll = &model.costs[0];
    assert!(poll.beat.bytes_up.median() > 20.0 && poll.beat.bytes_down.median() > 20.0);
    assert_eq!(poll.beat.requests, 1.0);
}

#[test]
fn the_quic_condition_refuses_websockets_with_the_reason() {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "costs",
            "--quick",
            "--conditions",
            "browser-h3",
            "--transports",
            "ws",
            "--out",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("WebSockets have no HTTP/3 form"), "{err}");
}

#[test]
fn the_whole_measurement_is_estimated_within_30_minutes() {
    let args = <loadgen::cli::Cli as clap::Parser>::try_parse_from(["loadgen", "costs"])
        .map(|c| match c.command {
            Some(loadgen::cli::Command::Costs(a)) => a,
            _ => panic!("costs expected"),
        })
        .unwrap();
    let plan = loadgen::costs::Plan::build(&args).unwrap();
    assert_eq!(
        plan.pairs().len(),
        12,
        "4 transports × 2 TCP conditions + polls, long polls, SSE and wt over QUIC"
    );
    let s = plan.estimate_s();
    assert!(
        s <= 1800.0,
        "the default measurement is estimated at {s:.0} s"
    );
}
