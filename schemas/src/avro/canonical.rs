//! The Avro specification's [Parsing Canonical Form] and its CRC-64-AVRO fingerprint, the one
//! single-object headers carry.
//!
//! Computed here from the schema's JSON rather than with apache-avro's `canonical_form()`: that
//! one (0.22) keeps a logical-typed primitive as `{"type":"long"}` instead of reducing it to
//! `"long"`, so every schema with a `timestamp-millis` field got a fingerprint that fastavro,
//! the Java implementation and every other reader compute differently. The digest itself is the
//! crate's (`apache_avro::rabin::Rabin`), which matches the specification's vectors.
//!
//! [Parsing Canonical Form]: https://avro.apache.org/docs/1.12.0/specification/#parsing-canonical-form-for-schemas

use std::collections::HashSet;

use apache_avro::rabin::Rabin;
use apache_avro::Schema;
use serde_json::{Map, Value};

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// The Parsing Canonical Form of `schema` (the specification's transformations: PRIMITIVES,
/// FULLNAMES, STRIP, ORDER, STRINGS, INTEGERS, WHITESPACE), as fastavro and Java's
/// `SchemaNormalization` write it. A named type appears in full once, then by its full name.
pub fn parsing_canonical_form(schema: &Schema) -> String {
    // A parsed schema always serialises; its JSON keeps names, namespaces and nesting.
    let json = serde_json::to_value(schema).unwrap_or(Value::Null);
    let mut out = String::with_capacity(1024);
    let mut defined = HashSet::new();
    write_canonical(&mut out, &json, None, &mut defined);
    out
}

/// The CRC-64-AVRO (Rabin) fingerprint of the schema's Parsing Canonical Form, as the 8 bytes a
/// single-object header carries (little-endian).
pub fn rabin_fingerprint(schema: &Schema) -> [u8; 8] {
    fingerprint_of_canonical_form(&parsing_canonical_form(schema))
}

/// The CRC-64-AVRO fingerprint of an already canonical schema text.
pub fn fingerprint_of_canonical_form(canonical: &str) -> [u8; 8] {
    use digest::Digest as _;
    let mut digest = Rabin::new();
    digest.update(canonical.as_bytes());
    let mut fingerprint = [0; 8];
    fingerprint.copy_from_slice(&digest.finalize()[..8]);
    fingerprint
}

/// The fingerprint apache-avro 0.22 computes (`Schema::fingerprint::<Rabin>()`), which
/// zoomstream wrote into single-object headers before it computed the specification's: readers
/// accept it for records of that time.
pub fn legacy_fingerprint(schema: &Schema) -> [u8; 8] {
    let mut fingerprint = [0; 8];
    fingerprint.copy_from_slice(&schema.fingerprint::<Rabin>().bytes[..8]);
    fingerprint
}

fn write_canonical(
    out: &mut String,
    schema: &Value,
    namespace: Option<&str>,
    defined: &mut HashSet<String>,
) {
    match schema {
        Value::String(name) => write_name_reference(out, name, namespace),
        Value::Array(branches) => {
            out.push('[');
            for (i, branch) in branches.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, branch, namespace, defined);
            }
            out.push(']');
        }
        Value::Object(object) => write_complex(out, object, namespace, defined),
        // Not a schema; the parser never produces one.
        other => out.push_str(&other.to_string()),
    }
}

fn write_name_reference(out: &mut String, name: &str, namespace: Option<&str>) {
    if PRIMITIVES.contains(&name) {
        push_json_string(out, name);
    } else {
        push_json_string(out, &full_name(name, namespace));
    }
}

fn write_complex(
    out: &mut String,
    object: &Map<String, Value>,
    namespace: Option<&str>,
    defined: &mut HashSet<String>,
) {
    let kind = object.get("type");
    let Some(Value::String(kind)) = kind else {
        // `{"type": {...}}` wraps a schema: canonical form is the wrapped one.
        if let Some(inner) = kind {
            write_canonical(out, inner, namespace, defined);
        }
        return;
    };
    match kind.as_str() {
        "record" | "error" | "enum" | "fixed" => {
            let name = object.get("name").and_then(Value::as_str).unwrap_or("");
            let own_namespace = object
                .get("namespace")
                .and_then(Value::as_str)
                .or(namespace);
            let full = full_name(name, own_namespace);
            // Names inside a named type default to its namespace (that of its full name).
            let inner_namespace = full.rsplit_once('.').map(|(ns, _)| ns.to_owned());
            if !defined.insert(full.clone()) {
                push_json_string(out, &full);
                return;
            }
            out.push_str("{\"name\":");
            push_json_string(out, &full);
            out.push_str(",\"type\":");
            match kind.as_str() {
                "enum" => {
                    out.push_str("\"enum\",\"symbols\":");
                    let symbols = object.get("symbols").cloned().unwrap_or_default();
                    out.push_str(&symbols.to_string());
                }
                "fixed" => {
                    out.push_str("\"fixed\",\"size\":");
                    let size = object.get("size").and_then(Value::as_u64).unwrap_or(0);
                    out.push_str(&size.to_string());
                }
                _ => {
                    out.push_str("\"record\",\"fields\":[");
                    let fields = object.get("fields").and_then(Value::as_array);
                    for (i, field) in fields.into_iter().flatten().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str("{\"name\":");
                        let field_name = field.get("name").and_then(Value::as_str).unwrap_or("");
                        push_json_string(out, field_name);
                        out.push_str(",\"type\":");
                        let field_type = field.get("type").unwrap_or(&Value::Null);
                        write_canonical(out, field_type, inner_namespace.as_deref(), defined);
                        out.push('}');
                    }
                    out.push(']');
                }
            }
            out.push('}');
        }
        "array" => {
            out.push_str("{\"type\":\"array\",\"items\":");
            let items = object.get("items").unwrap_or(&Value::Null);
            write_canonical(out, items, namespace, defined);
            out.push('}');
        }
        "map" => {
            out.push_str("{\"type\":\"map\",\"values\":");
            let values = object.get("values").unwrap_or(&Value::Null);
            write_canonical(out, values, namespace, defined);
            out.push('}');
        }
        // A primitive, with or without a logical type or other attributes: its name alone.
        primitive if PRIMITIVES.contains(&primitive) => push_json_string(out, primitive),
        // `{"type": "SomeNamedType"}`: a reference.
        reference => write_name_reference(out, reference, namespace),
    }
}

/// A name made full with the enclosing namespace, unless it has dots already.
fn full_name(name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() && !name.contains('.') => format!("{ns}.{name}"),
        _ => name.to_owned(),
    }
}

fn push_json_string(out: &mut String, text: &str) {
    // serde_json escapes only what JSON requires and keeps other characters as UTF-8 (STRINGS).
    out.push_str(&Value::String(text.to_owned()).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str) -> String {
        parsing_canonical_form(&Schema::parse_str(text).unwrap())
    }

    #[test]
    fn logical_types_reduce_to_their_primitive() {
        assert_eq!(
            canonical(r#"{"type": "long", "logicalType": "timestamp-millis"}"#),
            r#""long""#
        );
        assert_eq!(
            canonical(
                r#"{"type": "record", "name": "R", "namespace": "n", "doc": "x", "fields": [
                    {"name": "at", "doc": "d", "default": 0,
                     "type": {"type": "long", "logicalType": "timestamp-millis"}},
                    {"name": "u", "type": ["null", {"type": "string", "logicalType": "uuid"}]}]}"#
            ),
            r#"{"name":"n.R","type":"record","fields":[{"name":"at","type":"long"},{"name":"u","type":["null","string"]}]}"#
        );
    }

    #[test]
    fn named_types_take_full_names_and_appear_once() {
        assert_eq!(
            canonical(
                r#"{"type": "record", "name": "Outer", "namespace": "a.b", "fields": [
                    {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["X", "Y"]}},
                    {"name": "e2", "type": "E"},
                    {"name": "f", "type": {"type": "fixed", "name": "c.F", "size": 16}},
                    {"name": "m", "type": {"type": "map", "values": {"type": "array", "items": "int"}}}]}"#
            ),
            r#"{"name":"a.b.Outer","type":"record","fields":[{"name":"e","type":{"name":"a.b.E","type":"enum","symbols":["X","Y"]}},{"name":"e2","type":"a.b.E"},{"name":"f","type":{"name":"c.F","type":"fixed","size":16}},{"name":"m","type":{"type":"map","values":{"type":"array","items":"int"}}}]}"#
        );
    }

    #[test]
    fn fingerprints_match_the_specification_vectors() {
        // The Avro specification's CRC-64-AVRO vectors for "null" and "int".
        for (text, fingerprint) in [
            ("\"null\"", 7_195_948_357_588_979_594_u64),
            ("\"int\"", 8_247_732_601_305_521_295),
        ] {
            let schema = Schema::parse_str(text).unwrap();
            assert_eq!(rabin_fingerprint(&schema), fingerprint.to_le_bytes());
        }
    }
}
