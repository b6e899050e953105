//! The README quotes the committed reference run: its headline table must be exactly what
//! `loadgen summarize` ([`feedlab_report::summarize`]) makes of
//! `results/reference/report.json`, so a rerun that changes the numbers cannot leave the README
//! behind.

#[test]
fn readme_headline_table_is_the_committed_reference() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let table = feedlab_report::summarize(std::path::Path::new(&format!(
        "{root}/results/reference/report.json"
    )))
    .unwrap();
    assert!(
        readme.contains(&table),
        "README's reference table differs from `loadgen summarize results/reference/report.json`:\n{table}"
    );
}
