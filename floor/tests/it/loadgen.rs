//! loadgen drives the floor exactly as it drives the server (`--server-bin`): all four
//! transports, HTTP/1.1 and HTTP/1.0 polling, every event delivered once, and loadgen's counts of
//! requests, deliveries and bytes equal to the floor's `/stats`.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_drives_the_floor_on_all_four_transports_and_agrees_with_its_stats() {
    let out = tempfile::tempdir().unwrap();
    let args = loadgen::Args::from_args([
        "--server-bin",
        env!("CARGO_BIN_EXE_floor"),
        "--clients",
        "6",
        "--duration",
        "1500ms",
        "--rate",
        "20",
        "--poll-interval",
        "300ms",
        "--drain",
        "700ms",
        "--http",
        "1.1,1.0",
        "--repeat",
        "1",
        "--seed",
        "3",
        "--out",
        out.path().to_str().unwrap(),
    ])
    .unwrap();
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(90),
        loadgen::execute(args, loadgen::run::Mode::Library),
    )
    .await
    .expect("run finishes in time")
    .expect("run succeeds");
    let report = &outcome.report;
    assert!(!report.loss, "{:?}", report.warnings);
    let phases: Vec<(String, String)> = report
        .phases
        .iter()
        .map(|r| (r.transport.clone(), r.http.clone()))
        .collect();
    for (t, http) in [
        ("short-poll", "1.1"),
        ("long-poll", "1.1"),
        ("sse", "1.1"),
        ("ws", "1.1"),
        ("short-poll", "1.0"),
        ("long-poll", "1.0"),
    ] {
        assert!(
            phases.contains(&(t.to_owned(), http.to_owned())),
            "{t} over HTTP/{http} in {phases:?}"
        );
    }
    for r in &report.phases {
        let what = format!("{} over HTTP/{}", r.transport, r.http);
        assert!(
            r.events_published >= 25,
            "{what}: published {}",
            r.events_published
        );
        assert_eq!(r.events_received, 6 * r.events_published, "{what}");
        assert_eq!((r.gaps, r.duplicates, r.out_of_order), (0, 0, 0), "{what}");
        assert!(r.errors.is_empty(), "{what}: {:?}", r.errors);
        let check = r.server_check.as_ref().expect("a /stats check");
        assert!(check.ok, "{what}: {check:?}");
        assert_eq!(check.requests.loadgen, check.requests.server, "{what}");
        assert_eq!(
            check.bytes.loadgen, check.bytes.server,
            "{what}: every byte"
        );
        assert_eq!(
            check.empty_responses.loadgen, check.empty_responses.server,
            "{what}"
        );
    }
}
