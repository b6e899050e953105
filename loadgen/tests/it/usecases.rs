//! `loadgen usecase`, bounded: the game and the job log on every transport, over HTTPS with
//! HTTP/2 as a browser meets the server, against a server it starts itself. What a user relies
//! on: every transport gets states and acknowledgements, every job's log resumes after its
//! reload with no line lost or repeated, ends, and is refused (204) afterwards, and both are
//! ranked.

use std::process::Command;

use serde_json::Value;

#[test]
fn both_use_cases_run_on_every_transport_and_are_ranked() {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    for (k, _) in std::env::vars() {
        if k.starts_with("LOADGEN_") {
            cmd.env_remove(k);
        }
    }
    let run = cmd
        .args([
            "usecase",
            "game",
            "progress",
            "--repeat",
            "1",
            "--clients",
            "3",
            "--duration",
            "2s",
            "--tick",
            "20",
            "--input-rate",
            "10",
            "--jobs",
            "3",
            "--burst-lines",
            "20",
            "--burst",
            "400ms",
            "--quiet",
            "500ms",
            "--poll-interval",
            "200ms",
            "--server-bin",
            env!("CARGO_BIN_EXE_loadgen"),
            "--out",
        ])
        .arg(out.path())
        .output()
        .expect("loadgen runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let r: Value = serde_json::from_slice(
        &std::fs::read(out.path().join("results.json")).expect("results.json"),
    )
    .unwrap();
    assert_eq!(r["tls"], true);
    let game = r["game"].as_array().unwrap();
    assert_eq!(game.len(), 4, "{r}");
    for g in game {
        let t = g["transport"].as_str().unwrap();
        assert!(g["states_published"].as_u64().unwrap() >= 30, "{t}: {g}");
        // Every player got nearly every state (the first may race the connect).
        let expected = g["states_published"].as_u64().unwrap() * 3;
        assert!(
            g["states_received"].as_u64().unwrap() * 10 >= expected * 9,
            "{t}: {g}"
        );
        assert!(g["input_ack_us"]["n"].as_u64().unwrap() >= 30, "{t}: {g}");
        assert!(g["state_age_us"]["p99"].as_u64().is_some(), "{t}");
        assert!(g["bytes_up_per_s"].as_f64().unwrap() > 0.0, "{t}");
    }
    // The binary WebSocket carries a state in fewer bytes than base64 in JSON does.
    let per_state = |t: &str| {
        game.iter().find(|g| g["transport"] == t).unwrap()["bytes_per_state"]
            .as_f64()
            .unwrap()
    };
    assert!(per_state("ws") < per_state("sse"), "{r}");
    let progress = r["progress"].as_array().unwrap();
    assert_eq!(progress.len(), 4);
    for p in progress {
        let t = p["transport"].as_str().unwrap();
        assert_eq!(p["lines_per_job"], 40);
        assert_eq!(
            (p["lost"].as_u64(), p["repeated"].as_u64()),
            (Some(0), Some(0)),
            "{t}: {p}"
        );
        assert_eq!(p["ended"], 3, "{t}: {p}");
        assert_eq!(p["refused_after_end"], 3, "{t}: {p}");
        assert_eq!(p["first_line_after_reload_us"]["n"], 3, "{t}: {p}");
    }
    let ranked = r["ranked"].as_array().unwrap();
    assert_eq!(ranked.len(), 2);
    for k in ranked {
        assert_eq!(k["places"].as_array().unwrap().len(), 4, "{k}");
    }
    let md = std::fs::read_to_string(out.path().join("usecases.md")).unwrap();
    assert!(md.contains("## game") && md.contains("## progress"), "{md}");
}
