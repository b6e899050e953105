//! The JSON Schema of `report.json` (`results/report.schema.json`), generated from the report
//! types with schemars instead of kept by hand, so it cannot drift from what loadgen writes; a
//! test checks the committed file equals [`generate`]'s output (`FEEDLAB_WRITE_SCHEMA=1 cargo test -p feedlab-report --test it schema` writes it).
//!
//! It is the schema of what loadgen *writes* (schemars' serialize contract): every field is
//! present, `null` where a measurement is missing. Constraints the types alone cannot say (the
//! transport and HTTP version names, ranges of floats, formats) are attributes on the fields;
//! the few that need a whole schema are the functions in [`crate::model::schema`]. Fields added after the first
//! version (`#[serde(default)]`) are optional, so every committed report still validates.

use schemars::generate::SchemaSettings;

/// The schema, as `results/report.schema.json` holds it (pretty-printed, with a final newline).
pub fn generate() -> String {
    let schema = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<crate::Report>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
