//! One plan run by two loadgen processes (`--shard 1/2`, `--shard 2/2`, the same `--start-at`)
//! against one server, and `loadgen merge` of their reports: the merged report is the sum of
//! its parts (clients, deliveries, requests, bytes; the latency histogram's count), every event
//! reached every client of both processes, and the summed counts equal the server's own. Reports
//! of different plans, or one slice twice, are refused with the reason.

use std::{path::Path, process::Command};

use feedlab_report::{model::histogram::decode_histogram, Report};
use feedlab_testkit::ChildProcess;

const CLIENTS: u32 = 40;

fn loadgen() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
}

fn read(path: &Path) -> Report {
    feedlab_report::json::read(&path.join("report.json")).expect("a report")
}

/// `loadgen merge` of `parts` into `out`: its exit status and stderr.
fn merge(parts: &[&Path], out: &Path) -> (Option<i32>, String) {
    let o = loadgen()
        .arg("merge")
        .args(parts)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn two_processes_run_one_plan_and_their_reports_add_up() {
    let server = ChildProcess::spawn({
        let mut c = loadgen();
        c.args(["serve", "--", "--bind", "127.0.0.1:0", "--rate", "0"]);
        c
    });
    let dir = tempfile::tempdir().unwrap();
    // Far enough ahead for both processes to start and wait.
    let start_at = (chrono::Utc::now() + chrono::Duration::seconds(3)).to_rfc3339();
    let url = server.url("/");
    let clients = CLIENTS.to_string();
    let run = |shard: &str| {
        let out = dir.path().join(shard.replace('/', "-of-"));
        let child = loadgen()
            .args([
                "--url",
                &url,
                "--transports",
                "sse,ws",
                "--concurrent",
                "--http",
                "1.1",
                "--clients",
                &clients,
                "--rate",
                "10",
                "--duration",
                "2s",
                "--drain",
                "1s",
                "--ready-timeout",
                "3s",
                "--repeat",
                "1",
                "--quiet",
                "--shard",
                shard,
                "--start-at",
                &start_at,
                "--out",
            ])
            .arg(&out)
            .spawn()
            .unwrap();
        (child, out)
    };
    let (mut a, a_out) = run("1/2");
    let (mut b, b_out) = run("2/2");
    assert!(a.wait().unwrap().success(), "slice 1 ran clean");
    assert!(b.wait().unwrap().success(), "slice 2 ran clean");
    let merged_out = dir.path().join("merged");
    let (code, err) = merge(&[&a_out, &b_out], &merged_out);
    assert_eq!(code, Some(0), "{err}");
    let (ra, rb, m) = (read(&a_out), read(&b_out), read(&merged_out));

    let validator = jsonschema::validator_for(&crate::binary::schema()).expect("schema compiles");
    for dir in [&a_out, &b_out, &merged_out] {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap())
                .unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "{}: {}",
            dir.display(),
            errors.join("\n")
        );
    }
    assert_eq!(m.settings.shard.as_ref().unwrap().slices, [1, 2]);
    assert!(!m.loss, "{:?}", m.warnings);
    // Each slice says its checks wait for the merge; the merged report, which makes them, not.
    assert!(
        ra.warnings
            .iter()
            .any(|w| w.contains("slice 1/2 of the plan")),
        "{:?}",
        ra.warnings
    );
    assert!(
        !m.warnings
            .iter()
            .any(|w| w.contains("of the plan (--shard)")),
        "{:?}",
        m.warnings
    );
    assert_eq!(m.phases.len(), 2, "sse and ws, together in one phase");
    for ((pa, pb), pm) in ra.phases.iter().zip(&rb.phases).zip(&m.phases) {
        let name = &pm.transport;
        assert_eq!(
            pa.clients + pb.clients,
            CLIENTS,
            "{name}: the slices split the clients"
        );
        assert_eq!(pm.clients, CLIENTS, "{name}");
        // Only slice 1 published; slice 2 learnt the events from the feed.
        assert!(
            pa.events_published > 0 && pb.events_published == 0,
            "{name}"
        );
        assert_eq!(pm.events_published, pa.events_published, "{name}");
        for (what, f) in [
            (
                "received",
                (|r| r.events_received) as fn(&feedlab_report::TransportResult) -> u64,
            ),
            ("expected", |r| r.events_expected),
            ("requests", |r| r.http_requests),
            ("bytes down", |r| r.bytes_down),
            ("connections", |r| r.connections_opened),
        ] {
            assert_eq!(f(pm), f(pa) + f(pb), "{name}: merged {what} is the sum");
        }
        // Every event to every client, once.
        assert_eq!(
            pm.events_received,
            u64::from(CLIENTS) * pm.events_published,
            "{name}"
        );
        assert_eq!((pm.gaps, pm.duplicates, pm.lost), (0, 0, 0), "{name}");
        // The histograms were added, not averaged.
        let h = decode_histogram(&pm.histograms.latency_us).unwrap();
        assert_eq!(h.len(), pa.latency_us.count + pb.latency_us.count, "{name}");
        assert_eq!(pm.latency_us.count, h.len(), "{name}");
        assert_eq!(pm.latency_us.count, pm.events_received, "{name}");
        // The summed counts against the one server's /stats over the phase.
        let check = pm.server_check.as_ref().expect("the server was checked");
        assert!(check.ok, "{name}: {check:?}");
        assert_eq!(check.events_delivered.server, pm.events_received, "{name}");
    }

    // One slice twice.
    let (code, err) = merge(&[&a_out, &a_out], &dir.path().join("twice"));
    assert_eq!(code, Some(2));
    assert!(err.contains("slice 1/2 is given twice"), "{err}");
    // A report of another plan: the same run with other clients.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let mut changed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b_out.join("report.json")).unwrap()).unwrap();
    changed["settings"]["clients"] = serde_json::json!([CLIENTS + 1]);
    std::fs::write(other.join("report.json"), changed.to_string()).unwrap();
    let (code, err) = merge(&[&a_out, &other], &dir.path().join("refused"));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("ran different plans")
            && err.contains(&format!("clients: [{CLIENTS}] vs [{}]", CLIENTS + 1)),
        "{err}"
    );
    drop(server);
}
