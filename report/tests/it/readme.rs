//! The book quotes the committed reference run: its headline table
//! (`docs/src/results/reference.md`) must be exactly what `loadgen summarize`
//! ([`feedlab_report::summarize`]) makes of `results/reference/report.json`, so a rerun that
//! changes the numbers cannot leave the book behind.

#[test]
fn book_headline_table_is_the_committed_reference() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let page = std::fs::read_to_string(format!("{root}/docs/src/results/reference.md")).unwrap();
    let table = feedlab_report::summarize(std::path::Path::new(&format!(
        "{root}/results/reference/report.json"
    )))
    .unwrap();
    assert!(
        page.contains(&table),
        "docs/src/results/reference.md's table differs from `loadgen summarize results/reference/report.json`:\n{table}"
    );
}
