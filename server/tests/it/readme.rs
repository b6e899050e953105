//! The book is part of the interface: its settings table (`docs/src/reference/settings.md`) must
//! name every flag the server has, with its environment variable. (Its command-line page,
//! `docs/src/reference/server.md`, is rendered from the same definitions by loadgen's
//! `readme` test, which has the server as a dependency.)

use clap::CommandFactory;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

#[test]
fn settings_table_documents_every_server_flag() {
    let settings =
        std::fs::read_to_string(format!("{ROOT}/docs/src/reference/settings.md")).unwrap();
    let command = server::Config::command();
    let mut checked = 0;
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        let row = format!("| `--{long}` |");
        assert!(
            settings.contains(&row),
            "docs/src/reference/settings.md lacks --{long}"
        );
        if let Some(env) = arg.get_env() {
            let env = env.to_string_lossy();
            assert!(
                settings.contains(&format!("`{env}`")),
                "docs/src/reference/settings.md lacks {env} for --{long}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} flags found");
}
