//! The README is part of the interface: its settings table must name every flag the server has,
//! with its environment variable.

use clap::CommandFactory;

#[test]
fn readme_documents_every_server_flag() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let command = server::Config::command();
    let mut checked = 0;
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        let row = format!("| `--{long}` |");
        assert!(
            readme.contains(&row),
            "README settings table lacks --{long}"
        );
        if let Some(env) = arg.get_env() {
            let env = env.to_string_lossy();
            assert!(
                readme.contains(&format!("`{env}`")),
                "README lacks {env} for --{long}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} flags found");
}
