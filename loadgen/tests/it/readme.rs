//! The README and the book quote loadgen: the answer table the README opens with is what
//! `loadgen decide --markdown` makes of the committed cost model, and the book's command-line
//! reference is what loadgen's clap definitions render. Neither can drift from the code.

use std::path::Path;

use clap::CommandFactory as _;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const BEGIN: &str = "<!-- decide:begin -->";
const END: &str = "<!-- decide:end -->";

/// The README's answer table, between its markers, is `loadgen decide --markdown` of
/// `results/model/model.json`, made by the built binary. Without a committed model the README
/// has no answer to show: the test skips, counted and with its reason (`feedlab-testkit`), which
/// fails the run where every test must run (CI: `FEEDLAB_REQUIRE_ALL=1`).
#[test]
fn readme_answer_table_is_decide_of_the_committed_model() {
    let model = Path::new(ROOT).join("results/model/model.json");
    if !model.exists() {
        feedlab_testkit::skip!(
            "results/model/model.json is missing, and the README's answer table is made from it: \
             commit the cost model (`loadgen costs`), then put `loadgen decide --markdown`'s \
             table between the README's {BEGIN} and {END} markers"
        );
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["decide", "--markdown", "--model"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "loadgen decide --markdown failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let start = readme.find(BEGIN).expect("README's decide:begin marker") + BEGIN.len();
    let end = readme.find(END).expect("README's decide:end marker");
    assert_eq!(
        readme[start..end].trim(),
        table.trim(),
        "README's answer table differs from `loadgen decide --markdown` of results/model/model.json"
    );
}

const REGENERATE: &str = "FEEDLAB_WRITE_DOCS=1 cargo test -p loadgen --test it readme::";

/// docs/src/reference/loadgen.md is loadgen's `--help`, every subcommand included, as tables.
#[test]
fn book_reference_is_loadgens_command_line() {
    let page = super::clap_markdown::render(
        &loadgen::cli::Cli::command(),
        "loadgen's command line",
        "Every option is also an environment variable (`LOADGEN_*`, where the table names one). \
         `loadgen --help` and `loadgen SUBCOMMAND --help` say the same. A list (`--clients \
         10,100`) makes a matrix of phases. What a run measures and how to read it: \
         [Running the comparison](../guide/running.md).",
        REGENERATE,
    );
    super::clap_markdown::check_or_write(
        &Path::new(ROOT).join("docs/src/reference/loadgen.md"),
        &page,
        REGENERATE,
    );
}

/// docs/src/reference/server.md is the server's `--help` (the server is loadgen's dependency, so
/// its definitions render here with the same code).
#[test]
fn book_reference_is_the_servers_command_line() {
    let page = super::clap_markdown::render(
        &server::Config::command(),
        "The server's command line",
        "`server --help`, as tables. Why each default is what it is, and what each bounds: \
         [Server settings](settings.md).",
        REGENERATE,
    );
    super::clap_markdown::check_or_write(
        &Path::new(ROOT).join("docs/src/reference/server.md"),
        &page,
        REGENERATE,
    );
}
