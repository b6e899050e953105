//! The `loadgen` executable as a user runs it: it starts its own server (here through the
//! `loadgen serve` fallback), writes a report that matches the JSON Schema, renders Markdown,
//! SVG and HTML from it, stays small per connection, stops cleanly on Ctrl-C, and refuses a
//! plan past the open-file limit.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use feedlab_report::Report;

fn loadgen() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    // Only what the test sets.
    for (k, _) in std::env::vars() {
        if k.starts_with("LOADGEN_") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("CARGO_MANIFEST_DIR");
    cmd
}

/// The committed report schema, as JSON.
pub(crate) fn schema() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/report.schema.json");
    serde_json::from_slice(&std::fs::read(&path).expect("results/report.schema.json"))
        .expect("schema is JSON")
}

fn read_report(dir: &Path) -> (serde_json::Value, Report) {
    let bytes = std::fs::read(dir.join("report.json")).expect("report.json written");
    (
        serde_json::from_slice(&bytes).unwrap(),
        serde_json::from_slice(&bytes).expect("report.json is a Report"),
    )
}

#[test]
fn spawned_run_writes_a_schema_valid_report_with_charts_and_html() {
    let out = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let run = loadgen()
        .args([
            "--transports",
            "sse,ws",
            "--clients",
            "1000",
            "--duration",
            "1s",
            "--repeat",
            "1",
            "--rate",
            "10",
            "--http",
            "1.1",
            "--server-bin",
            env!("CARGO_BIN_EXE_loadgen"),
            "--out",
        ])
        .arg(out.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        run.status.code(),
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(40));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("sse") && stdout.contains("report:"),
        "summary table: {stdout}"
    );

    let (json, report) = read_report(out.path());
    let validator = jsonschema::validator_for(&schema()).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "report.json violates the schema:\n{}",
        errors.join("\n")
    );
    // The schema is strict: an unknown field is refused.
    let mut extra = json.clone();
    extra["transports"]["sse"]["surprise"] = serde_json::json!(1);
    assert!(!validator.is_valid(&extra));

    assert_eq!(report.server.kind, "spawned");
    let command = report.server.command.as_ref().unwrap().join(" ");
    assert!(
        command.contains("loadgen serve -- --bind 127.0.0.1:0 --rate 0"),
        "{command}"
    );
    for t in ["sse", "ws"] {
        let r = &report.transports[t];
        assert_eq!(r.events_received, r.events_expected, "{t}");
        assert_eq!(r.gaps + r.duplicates + r.out_of_order, 0, "{t}");
        assert!(
            r.server_check.as_ref().unwrap().ok,
            "{t}: {:?}",
            r.server_check
        );
        assert!(
            r.server_cpu_s.is_some() && r.server_rss_peak_bytes.unwrap() > 0,
            "{t}"
        );
        let per_conn = r.loadgen_rss_per_connection_bytes.unwrap();
        assert!(
            per_conn < 64.0 * 1024.0,
            "{t}: loadgen used {per_conn:.0} B per open connection (budget 64 KiB)"
        );
    }

    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(md.contains("## Conclusion"));
    assert!(
        md.contains("**Latency**") && md.contains("**Bytes**") && md.contains("**Requests"),
        "{md}"
    );
    assert!(md.contains("Every client received every event exactly once"));
    assert!(md.contains("| sse |") && md.contains("| ws |"));
    assert!(md.contains("![Delivery latency"), "charts linked");

    for chart in [
        "latency_cdf.svg",
        "bytes_per_event.svg",
        "requests_per_event.svg",
        "server_cpu_per_1000_events.svg",
    ] {
        let text = std::fs::read_to_string(out.path().join(chart))
            .unwrap_or_else(|_| panic!("{chart} written"));
        let doc =
            roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{chart} is not XML: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let texts: Vec<&str> = doc
            .descendants()
            .filter_map(|n| n.text())
            .map(str::trim)
            .collect();
        for series in ["sse", "ws"] {
            assert!(
                texts.contains(&series),
                "{chart}: no {series} series label in {texts:?}"
            );
        }
        if chart == "latency_cdf.svg" {
            let lines = doc
                .descendants()
                .filter(|n| n.has_tag_name("polyline"))
                .count();
            assert!(lines >= 2, "{chart}: one line per transport, found {lines}");
        }
    }

    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("Conclusion"));
    assert!(!html.contains("<script"), "no script");
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "nothing fetched"
    );
    assert!(
        !html.contains("<?xml"),
        "SVGs are inlined without their XML declaration"
    );
}

#[test]
fn first_ctrl_c_still_writes_the_report_marked_interrupted() {
    let out = tempfile::tempdir().unwrap();
    let mut child = loadgen()
        .args([
            "--repeat",
            "1",
            "--transports",
            "ws,sse",
            "--clients",
            "3",
            "--duration",
            "30s",
            "--http",
            "1.1",
            "--server-bin",
            env!("CARGO_BIN_EXE_loadgen"),
            "--out",
        ])
        .arg(out.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let stopped = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(20),
            "loadgen did not stop after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.code().is_some(), "exited, not killed: {status:?}");
    let (_, report) = read_report(out.path());
    assert!(report.interrupted);
    assert_eq!(
        report.phases.len(),
        1,
        "the phase in progress is reported, the next skipped"
    );
    let first = &report.phases[0];
    assert_eq!(first.transport, "sse");
    assert!(
        first.events_published > 0 && first.events_published < 300,
        "{}",
        first.events_published
    );
    assert_eq!(
        first.gaps, 0,
        "what was published before the stop was delivered"
    );
    assert!(std::fs::read_to_string(out.path().join("report.md"))
        .unwrap()
        .contains("Interrupted"));
}

#[test]
fn refuses_a_plan_past_the_open_file_limit() {
    let (soft, _) = loadgen::sys::raise_nofile_limit();
    let Some(limit) = soft else { return }; // unlimited: nothing to refuse
    let clients = (limit / 2 + 1).to_string();
    let out = tempfile::tempdir().unwrap();
    let run = loadgen()
        .args([
            "--concurrent",
            "--transports",
            "sse,ws",
            "--clients",
            &clients,
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("RLIMIT_NOFILE") && stderr.contains(&limit.to_string()),
        "{stderr}"
    );
    assert!(!out.path().join("report.json").exists());
}

#[test]
fn a_scenario_run_opens_with_its_recommendation() {
    let out = tempfile::tempdir().unwrap();
    let run = loadgen()
        .args([
            "--scenario",
            "dashboard",
            "--duration",
            "1s",
            "--clients",
            "20",
            "--repeat",
            "2",
            "--poll-interval",
            "500ms",
            "--drain",
            "1s",
            "--server-bin",
            env!("CARGO_BIN_EXE_loadgen"),
            "--out",
        ])
        .arg(out.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        run.status.code(),
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("decision.md"), "{stdout}");
    let (json, report) = read_report(&out.path().join("dashboard"));
    let validator = jsonschema::validator_for(&schema()).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // The scenario's values, except the ones given on the command line.
    assert_eq!(report.settings.clients, [20]);
    assert_eq!(report.settings.rates, [1.0]);
    assert_eq!(report.settings.repeat, 2);
    assert_eq!(report.phases.len(), 8, "4 transports × 2 runs");
    let info = report.scenario.as_ref().unwrap();
    assert!(info
        .flags
        .iter()
        .any(|f| f.flag == "clients" && f.overridden));
    let rec = &report.recommendations[0];
    assert_eq!(rec.scenario, "dashboard");
    let mut names: Vec<&str> = rec.ranking.iter().map(|r| r.transport.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["long-poll", "short-poll", "sse", "ws"]);
    assert!(rec.ranking.iter().all(|r| !r.reason.is_empty()));
    let md = std::fs::read_to_string(out.path().join("dashboard/report.md")).unwrap();
    let first_table = md.find("## ").unwrap();
    // The report opens with its answer, the recommendation's own summary in bold, before its
    // first section.
    let opening = &md[..first_table];
    assert!(
        opening.contains(&format!("**{}**", rec.summary)),
        "the report opens with the recommendation ({:?}):\n{md}",
        rec.summary
    );
    let decision = std::fs::read_to_string(out.path().join("decision.md")).unwrap();
    assert!(
        decision.contains("## Recommendation: dashboard")
            && decision.contains("dashboard/report.md")
    );
    let dj: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("decision.json")).unwrap()).unwrap();
    assert_eq!(dj["recommendations"][0]["scenario"], "dashboard");
}

/// `loadgen render DIR` writes a committed report again from its report.json: the conclusions
/// are recomputed with this loadgen's wording (an edited one is replaced), every file is
/// rewritten, and the result still matches the schema; a directory without a report is refused.
#[test]
fn render_rewrites_a_report_from_its_json() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/reference/report.json");
    let dir = tempfile::tempdir().unwrap();
    let mut report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&committed).unwrap()).unwrap();
    report["conclusions"] = serde_json::json!(["a stale sentence"]);
    std::fs::write(
        dir.path().join("report.json"),
        serde_json::to_vec(&report).unwrap(),
    )
    .unwrap();
    let out = loadgen().arg("render").arg(dir.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (json, rendered) = read_report(dir.path());
    let validator = jsonschema::validator_for(&schema()).expect("schema compiles");
    assert!(validator.is_valid(&json), "schema-valid");
    assert!(!rendered.conclusions.is_empty());
    assert!(!rendered.conclusions.iter().any(|c| c == "a stale sentence"));
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(!md.contains("a stale sentence"));
    assert!(md.contains(&rendered.conclusions[0]));
    assert!(dir.path().join("report.html").is_file());

    let empty = tempfile::tempdir().unwrap();
    let out = loadgen().arg("render").arg(empty.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("report.json"));
}

/// `--heads browser` dresses every request as Chromium sends it: short polls and SSE's request
/// each carry the fixture's few hundred bytes of heads and the cookie (plain HTTP/1.1 here,
/// so the bytes are the heads' own), and the server still answers every one (no 4xx from the
/// `Origin` it now sees).
#[test]
fn browser_heads_put_a_browsers_bytes_on_every_request() {
    let up_per_request = |heads: &str| {
        let out = tempfile::tempdir().unwrap();
        let run = loadgen()
            .args([
                "--transports",
                "short-poll,sse,ws",
                "--clients",
                "5",
                "--duration",
                "1s",
                "--repeat",
                "1",
                "--rate",
                "5",
                "--poll-interval",
                "200ms",
                "--drain",
                "500ms",
                "--http",
                "1.1",
                "--heads",
                heads,
                "--cookie-bytes",
                "300",
                "--server-bin",
                env!("CARGO_BIN_EXE_loadgen"),
                "--out",
            ])
            .arg(out.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "--heads {heads}: exit {:?}\nstderr:\n{}",
            run.status.code(),
            String::from_utf8_lossy(&run.stderr)
        );
        let (_, report) = read_report(out.path());
        let per = |t: &str| {
            let r = &report.transports[t];
            assert_eq!(r.events_received, r.events_expected, "--heads {heads}, {t}");
            assert_eq!(r.gaps + r.duplicates, 0, "--heads {heads}, {t}");
            r.bytes_up as f64 / r.http_requests.max(1) as f64
        };
        (
            per("short-poll"),
            per("sse"),
            per("ws"),
            report.settings.heads,
        )
    };
    let (poll_min, sse_min, ws_min, named_min) = up_per_request("minimal");
    let (poll_b, sse_b, ws_b, named_b) = up_per_request("browser");
    assert_eq!(named_min, "minimal");
    assert_eq!(named_b, "browser (cookie 300 B)");
    // Chromium's heads without the cookie are 400-600 B; the cookie line adds 308.
    for (t, min, browser) in [("short-poll", poll_min, poll_b), ("sse", sse_min, sse_b)] {
        assert!(
            browser - min > 600.0,
            "{t}: {min:.0} B per request minimal, {browser:.0} B browser"
        );
    }
    assert!(
        ws_b > ws_min + 300.0,
        "ws handshake: {ws_min:.0} → {ws_b:.0} B"
    );
}
