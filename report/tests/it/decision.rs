//! The scenarios' decision with the game and the job log: a `--scenario game` run into a
//! directory with a committed decision adds the game's rows (the criterion that decided and the
//! margin) and keeps every scenario it did not measure; `loadgen render` keeps both.

use std::path::Path;

use feedlab_report::{
    decision,
    section::usecases::{Decided, Ranked, RankedPlace, Results},
};

fn game_results() -> Results {
    let place = |transport: &str, rank: u32, by: Option<(&str, f64)>| RankedPlace {
        transport: transport.to_owned(),
        rank,
        decided_by: by.map(|(criterion, margin)| Decided {
            criterion: criterion.to_owned(),
            margin,
            p: Some(0.029),
        }),
    };
    Results {
        command: "loadgen --scenario game".into(),
        started_at: "2026-12-07T15:00:00Z".into(),
        duration_s: 60.0,
        tls: true,
        game: Vec::new(),
        progress: Vec::new(),
        ranked: vec![Ranked {
            workload: "game".into(),
            network: "lte".into(),
            criteria: vec!["state age p99".into(), "input → ack p99".into()],
            places: vec![
                place("ws", 1, None),
                place("sse", 2, Some(("state age p99", 0.35))),
            ],
        }],
        encoding: None,
        record: None,
    }
}

#[test]
fn a_game_run_joins_the_committed_decision_without_the_others_measured_again() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/scenarios");
    let base = tempfile::tempdir().unwrap();
    // One committed feed scenario and its decision, as `--scenario all` left them.
    std::fs::create_dir(base.path().join("chat")).unwrap();
    std::fs::copy(
        committed.join("chat/report.json"),
        base.path().join("chat/report.json"),
    )
    .unwrap();
    let report: feedlab_report::Report =
        serde_json::from_slice(&std::fs::read(base.path().join("chat/report.json")).unwrap())
            .unwrap();
    decision::write(base.path(), &[(&report, "chat".into())], &[]).unwrap();

    // `--scenario game --out base`: its results, then the decision updated.
    let game = game_results();
    std::fs::create_dir(base.path().join("game")).unwrap();
    std::fs::write(
        base.path().join("game/results.json"),
        serde_json::to_vec(&game).unwrap(),
    )
    .unwrap();
    decision::update(base.path(), &[], &[(&game, "game".into())]).unwrap();
    let check = |md: &str| {
        assert!(md.contains("## Recommendation: chat"), "{md}");
        assert!(
            md.contains("- game on lte: 1. ws; 2. sse (by state age p99, 35% more)."),
            "{md}"
        );
        assert!(md.contains("## Recommendation: game on lte"), "{md}");
        assert!(
            md.contains("| 2 | sse | state age p99 | 35% | 0.029 |"),
            "{md}"
        );
        assert!(md.contains("[game/usecases.md](game/usecases.md)"), "{md}");
    };
    check(&std::fs::read_to_string(base.path().join("decision.md")).unwrap());

    // Regenerated from what is on disk (`loadgen render`): both stay, the game's page is made.
    decision::render(base.path()).unwrap();
    check(&std::fs::read_to_string(base.path().join("decision.md")).unwrap());
    assert!(base.path().join("game/usecases.md").is_file());
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(base.path().join("decision.json")).unwrap()).unwrap();
    assert_eq!(index["reports"][0]["scenario"], "chat");
    assert_eq!(index["usecases"][0]["results"], "game/results.json");
}
