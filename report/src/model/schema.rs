//! Schema attributes the types alone cannot say (transport and HTTP version names, fields added
//! after the first version), for the model's `#[schemars(...)]` attributes; the schema itself is
//! generated in [`crate::schema`].

use schemars::{json_schema, Schema, SchemaGenerator};

/// For the schema only (serde writes every field): marks a field added after schema_version 1
/// (it has `#[serde(default)]`) as optional, since reports written before it lack it.
pub fn added_later<T>(_: &T) -> bool {
    false
}

fn transport_names() -> Vec<&'static str> {
    // Every transport loadgen drives, WebTransport (`wt`) included.
    feedlab_wire::Transport::EVERY
        .iter()
        .map(|t| t.name())
        .collect()
}

/// HTTP versions as reports name them (`--http`).
const HTTP_VERSIONS: [&str; 4] = ["1.0", "1.1", "2", "3"];

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
