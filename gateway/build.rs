//! Derives the JSON Schemas of the API's proto messages from `proto/tracenet/v1/*.proto` (the
//! proto3 JSON mapping as pbjson reads and writes it: field names as in the .proto files, enums
//! by name or number, 64-bit integers as strings or numbers, message fields nullable, no unknown
//! fields), so the OpenAPI document describes exactly what the server accepts and never drifts
//! from the contracts. Written to `$OUT_DIR/proto_schemas.json`.

use prost_types::field_descriptor_proto::{Label, Type};
use serde_json::{Map, Value, json};

const FILES: [&str; 7] = [
    "tracenet/v1/records.proto",
    "tracenet/v1/envelope.proto",
    "tracenet/v1/peer.proto",
    "tracenet/v1/local.proto",
    "tracenet/v1/storage.proto",
    "tracenet/v1/policy.proto",
    "tracenet/v1/directory.proto",
];

/// `.tracenet.v1.Outer.Inner` → `Outer.Inner`.
fn short(type_name: &str) -> String {
    type_name
        .trim_start_matches('.')
        .trim_start_matches("tracenet.v1.")
        .to_owned()
}

fn scalar(t: Type, type_name: &str) -> Value {
    match t {
        Type::Double | Type::Float => json!({
            "type": ["number", "string"],
            "pattern": "^-?[0-9]{1,15}(\\.[0-9]{1,15})?$"
        }),
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => json!({
            "type": ["string", "integer"],
            "pattern": "^-?[0-9]{1,18}$",
            "minimum": -999_999_999_999_999_999_i64,
            "maximum": 999_999_999_999_999_999_i64
        }),
        Type::Uint64 | Type::Fixed64 => json!({
            "type": ["string", "integer"],
            "pattern": "^[0-9]{1,19}$",
            "minimum": 0,
            "maximum": 999_999_999_999_999_999_i64
        }),
        Type::Int32 | Type::Sint32 | Type::Sfixed32 => json!({
            "type": "integer", "minimum": i32::MIN, "maximum": i32::MAX
        }),
        Type::Uint32 | Type::Fixed32 => json!({
            "type": "integer", "minimum": 0, "maximum": u32::MAX
        }),
        Type::Bool => json!({"type": "boolean"}),
        Type::String => json!({"type": "string"}),
        Type::Bytes => json!({
            "type": "string", "contentEncoding": "base64",
            "pattern": "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
        }),
        Type::Enum => json!({"$ref": format!("#/components/schemas/{}", short(type_name))}),
        Type::Message | Type::Group => json!({
            "anyOf": [{"$ref": format!("#/components/schemas/{}", short(type_name))}, {"type": "null"}]
        }),
    }
}

fn message(
    prefix: &str,
    m: &prost_types::DescriptorProto,
    maps: &mut Vec<String>,
    out: &mut Map<String, Value>,
) {
    let name = format!("{prefix}{}", m.name());
    // Map entry messages become `additionalProperties` of their field.
    for nested in &m.nested_type {
        if nested.options.as_ref().is_some_and(|o| o.map_entry()) {
            maps.push(format!("{name}.{}", nested.name()));
        }
    }
    let mut props = Map::new();
    for f in &m.field {
        let t = f.r#type();
        let is_map = t == Type::Message && maps.contains(&short(f.type_name()));
        let schema = if is_map {
            let entry = m
                .nested_type
                .iter()
                .find(|n| short(f.type_name()).ends_with(&format!(".{}", n.name())));
            let value = entry
                .and_then(|e| e.field.iter().find(|v| v.number() == 2))
                .map_or(json!({}), |v| {
                    let s = scalar(v.r#type(), v.type_name());
                    // Map values are never null.
                    s.get("anyOf").and_then(|a| a.get(0)).cloned().unwrap_or(s)
                });
            json!({"type": "object", "additionalProperties": value})
        } else if f.label() == Label::Repeated {
            let mut item = scalar(t, f.type_name());
            if let Some(first) = item.get("anyOf").and_then(|a| a.get(0)).cloned() {
                item = first;
            }
            json!({"type": "array", "items": item})
        } else {
            scalar(t, f.type_name())
        };
        props.insert(f.name().to_owned(), schema);
    }
    out.insert(
        name.clone(),
        json!({
            "type": "object",
            "description": format!("tracenet.v1.{name} in the proto3 JSON mapping (fields at their default value are omitted)."),
            "properties": props,
            "additionalProperties": false
        }),
    );
    for nested in &m.nested_type {
        if !nested.options.as_ref().is_some_and(|o| o.map_entry()) {
            message(&format!("{name}."), nested, maps, out);
        }
    }
    for e in &m.enum_type {
        enumeration(&format!("{name}."), e, out);
    }
}

fn enumeration(prefix: &str, e: &prost_types::EnumDescriptorProto, out: &mut Map<String, Value>) {
    let names: Vec<&str> = e.value.iter().map(|v| v.name()).collect();
    let numbers: Vec<i32> = e.value.iter().map(|v| v.number()).collect();
    out.insert(
        format!("{prefix}{}", e.name()),
        json!({
            "description": format!("tracenet.v1.{prefix}{}: by name (as written in responses) or by number.", e.name()),
            "anyOf": [{"type": "string", "enum": names}, {"type": "integer", "enum": numbers}]
        }),
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new("../proto");
    for f in FILES {
        println!("cargo:rerun-if-changed=../proto/{f}");
    }
    let fds = protox::compile(FILES, [root])?;
    let mut out = Map::new();
    for file in &fds.file {
        if file.package() != "tracenet.v1" {
            continue;
        }
        let mut maps = Vec::new();
        // Collect map entries first so fields referring to them are recognised.
        for m in &file.message_type {
            collect_maps("", m, &mut maps);
        }
        for m in &file.message_type {
            message("", m, &mut maps, &mut out);
        }
        for e in &file.enum_type {
            enumeration("", e, &mut out);
        }
    }
    let dest = std::path::Path::new(&std::env::var("OUT_DIR")?).join("proto_schemas.json");
    std::fs::write(dest, serde_json::to_string(&Value::Object(out))?)?;
    Ok(())
}

fn collect_maps(prefix: &str, m: &prost_types::DescriptorProto, maps: &mut Vec<String>) {
    let name = format!("{prefix}{}", m.name());
    for nested in &m.nested_type {
        if nested.options.as_ref().is_some_and(|o| o.map_entry()) {
            maps.push(format!("{name}.{}", nested.name()));
        } else {
            collect_maps(&format!("{name}."), nested, maps);
        }
    }
}
