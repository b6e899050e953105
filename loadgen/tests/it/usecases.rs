//! `loadgen usecase`, bounded: the game and the job log on every transport, over HTTPS with
//! HTTP/2 as a browser meets the server, against a server it starts itself. What a user relies
//! on: every transport gets states and acknowledgements, every job's log resumes after its
//! reload with no line lost or repeated, ends, and is refused (204) afterwards, and both are
//! ranked; and the game's HTTP inputs go side by side, as a browser sends them.

use std::process::Command;

use serde_json::Value;

/// `loadgen usecase ARGS` against a server it starts, without the caller's `LOADGEN_*`
/// settings, into a directory of its own: its `results.json` and that directory.
fn usecase(args: &[&str]) -> (Value, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    for (k, _) in std::env::vars() {
        if k.starts_with("LOADGEN_") {
            cmd.env_remove(k);
        }
    }
    let run = cmd
        .arg("usecase")
        .args(args)
        .args(["--server-bin", env!("CARGO_BIN_EXE_loadgen"), "--out"])
        .arg(out.path())
        .output()
        .expect("loadgen runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let r = serde_json::from_slice(
        &std::fs::read(out.path().join("results.json")).expect("results.json"),
    )
    .unwrap();
    (r, out)
}

#[test]
fn both_use_cases_run_on_every_transport_and_are_ranked() {
    let (r, out) = usecase(&[
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
    ]);
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

/// HTTP inputs go side by side, as a browser's fetches do: on a 200 ms round trip, 10 inputs a
/// second need two in flight at once. Sent one after another (5 a second at most) they would
/// queue, each waiting for the answers before it, and the median input → acknowledgement would
/// grow to most of a second within the run; side by side it stays near one round trip, on
/// HTTP/2 (streams on one connection) and on HTTP/1.1 (a few connections).
#[test]
fn http_inputs_do_not_queue_behind_one_another() {
    feedlab_testkit::require!(crate::network::can_link());
    const RTT_US: u64 = 200_000;
    for tls in ["on", "off"] {
        let (r, _out) = usecase(&[
            "game",
            "--transports",
            "sse",
            "--network",
            "rtt=200ms",
            "--tls",
            tls,
            "--repeat",
            "1",
            "--clients",
            "1",
            "--duration",
            "3s",
            "--tick",
            "10",
            "--input-rate",
            "10",
        ]);
        let g = &r["game"][0];
        let ack = &g["input_ack_us"];
        assert!(ack["n"].as_u64().unwrap() >= 25, "tls {tls}: {g}");
        // One round trip and the server's turn; a queue would be several.
        let p50 = ack["p50"].as_u64().unwrap();
        assert!(
            p50 < RTT_US * 3 / 2,
            "tls {tls}: input → ack p50 {p50} µs on a {RTT_US} µs round trip: {g}"
        );
    }
}
