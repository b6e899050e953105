//! The JSON Schema of `report.json` (`results/report.schema.json`), generated from the report
//! types with schemars instead of kept by hand, so it cannot drift from what loadgen writes; a
//! test checks the committed file equals [`generate`]'s output (`loadgen schema` writes it).
//!
//! It is the schema of what loadgen *writes* (schemars' serialize contract): every field is
//! present, `null` where a measurement is missing. Constraints the types alone cannot say (the
//! transport and HTTP version names, ranges of floats, formats) are attributes on the fields;
//! the few that need a whole schema are the functions here. Fields added after the first
//! version (`#[serde(default)]`) are optional, so every committed report still validates.

use schemars::{generate::SchemaSettings, json_schema, Schema, SchemaGenerator};

/// The schema, as `results/report.schema.json` holds it (pretty-printed, with a final newline).
pub fn generate() -> String {
    let schema = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<super::Report>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// For the schema only (serde writes every field): marks a field added after schema_version 1
/// (it has `#[serde(default)]`) as optional, since reports written before it lack it.
pub fn added_later<T>(_: &T) -> bool {
    false
}

fn transport_names() -> Vec<&'static str> {
    feedlab_wire::Transport::ALL
        .iter()
        .map(|t| t.name())
        .collect()
}

/// HTTP versions as reports name them (`--http`).
const HTTP_VERSIONS: [&str; 3] = ["1.0", "1.1", "2"];

/// One transport name.
pub fn transport(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "enum": transport_names() })
}

/// Transport names, possibly none.
pub fn transports(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": { "type": "string", "enum": transport_names() }
    })
}

/// Transport names, at least one.
pub fn transport_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "minItems": 1,
        "items": { "type": "string", "enum": transport_names() }
    })
}

/// One HTTP version.
pub fn http(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "enum": HTTP_VERSIONS })
}

/// HTTP versions, at least one.
pub fn http_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "minItems": 1,
        "items": { "type": "string", "enum": HTTP_VERSIONS }
    })
}
