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
}
