//! `results/report.schema.json` is generated from the report types (schemars): the committed
//! file must be exactly what the types generate, every committed report must validate against
//! it, and it must keep refusing what the hand-written schema refused.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

fn results() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../results")
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&feedlab_report::schema::generate()).unwrap();
    jsonschema::validator_for(&schema).expect("schema compiles")
}

fn errors(v: &jsonschema::Validator, json: &Value) -> Vec<String> {
    v.iter_errors(json)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect()
}

fn reports(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            reports(&path, out);
        } else if path.file_name().is_some_and(|n| n == "report.json") {
            out.push(path);
        }
    }
}

#[test]
fn the_committed_schema_is_the_one_the_types_generate() {
    let path = results().join("report.schema.json");
    let generated = feedlab_report::schema::generate();
    if std::env::var_os("FEEDLAB_WRITE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == generated,
        "results/report.schema.json is not what the report types generate; rewrite it with \
         FEEDLAB_WRITE_SCHEMA=1 cargo test -p feedlab-report --test it schema"
    );
}

#[test]
fn every_committed_report_validates() {
    let v = validator();
    let mut found = Vec::new();
    reports(&results(), &mut found);
    assert!(found.len() >= 5, "{found:?}");
    for path in found {
        let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        // A script's own report.json (results/background-tabs/) is not loadgen's.
        if json.get("schema_version").is_none() {
            continue;
        }
        let errs = errors(&v, &json);
        assert!(errs.is_empty(), "{}: {}", path.display(), errs.join("\n"));
    }
}

#[test]
fn the_schema_refuses_what_a_report_cannot_hold() {
    let v = validator();
    let mut found = Vec::new();
    reports(&results().join("reference"), &mut found);
    let good: Value = serde_json::from_slice(&std::fs::read(&found[0]).unwrap()).unwrap();
    assert!(errors(&v, &good).is_empty());
    let bad: [(&str, Value); 10] = [
        ("/schema_version", json!(2)),
        ("/settings/transports", json!([])),
        ("/settings/transports/0", json!("carrier-pigeon")),
        ("/settings/clients/0", json!(0)),
        ("/settings/http/0", json!("4")),
        ("/settings/chaos", json!("meteor")),
        ("/duration_s", json!(-1.0)),
        ("/settings/surprise", json!(1)),
        ("/transports/carrier-pigeon", json!({})),
        ("/conclusions", json!("not a list")),
    ];
    for (pointer, value) in bad {
        let mut report = good.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let target = report.pointer_mut(parent).unwrap();
        match target {
            Value::Object(map) => {
                map.insert(key.to_owned(), value);
            }
            Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
            _ => unreachable!(),
        }
        assert!(!errors(&v, &report).is_empty(), "{pointer} accepted");
    }
    let mut report = good.clone();
    let transport = report["transports"]
        .as_object_mut()
        .unwrap()
        .values_mut()
        .next()
        .unwrap();
    for (key, value) in [
        ("transport", json!("smoke")),
        ("clients", json!(0)),
        ("rate", json!(-2.0)),
        ("gaps", json!(-1)),
    ] {
        let mut t = transport.clone();
        t[key] = value;
        let mut r = good.clone();
        let first = r["transports"]
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone();
        r["transports"][&first] = t;
        assert!(!errors(&v, &r).is_empty(), "transport {key} accepted");
    }
    transport["histograms"]["latency_us"] = json!("not base64!");
    assert!(!errors(&v, &report).is_empty(), "histogram accepted");
}
