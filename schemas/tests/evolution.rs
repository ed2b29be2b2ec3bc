//! Schema evolution: records written with a released version decode after an edit, resolved into
//! the current schema; an edit the current schema cannot read is refused with the file named.

use std::sync::Arc;

use apache_avro::types::Value;
use apache_avro::Schema;
use zoomstream_schemas::avro::{self, AvroError, Encoder, RegistrySchemas, SchemaVersions};

const V1: &str = r#"{"type": "record", "name": "R", "namespace": "t", "fields": [
    {"name": "id", "type": "string"},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}"#;
const V2: &str = r#"{"type": "record", "name": "R", "namespace": "t", "fields": [
    {"name": "id", "type": "string"},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "topic", "type": ["null", "string"], "default": null}]}"#;
const V2_WITHOUT_DEFAULT: &str = r#"{"type": "record", "name": "R", "namespace": "t", "fields": [
    {"name": "id", "type": "string"},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "topic", "type": "string"}]}"#;

fn v1_record() -> Value {
    Value::Record(vec![
        ("id".into(), Value::String("e1".into())),
        ("at".into(), Value::TimestampMillis(1_700_000_000_000)),
    ])
}

/// A schema folder with `r.avsc` = `current` and `history/r/v1.avsc` = V1.
fn folder(current: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.avsc");
    std::fs::write(&path, current).unwrap();
    std::fs::create_dir_all(dir.path().join("history/r")).unwrap();
    std::fs::write(dir.path().join("history/r/v1.avsc"), V1).unwrap();
    (dir, path)
}

#[test]
fn single_object_records_of_an_older_version_decode_into_the_current_one() {
    let v1 = Schema::parse_str(V1).unwrap();
    let written = Encoder::single_object(&v1).encode(&v1_record()).unwrap();

    let (_dir, path) = folder(V2);
    let versions = SchemaVersions::load(&path, Schema::parse_str(V2).unwrap()).unwrap();
    let value = avro::decode_resolved(&written, &versions, None).unwrap();
    assert_eq!(
        avro::to_json(&value),
        serde_json::json!({"id": "e1", "at": 1_700_000_000_000_i64, "topic": null})
    );
    // The strict decoder, which knows only the current schema, refuses the old record.
    assert!(matches!(
        avro::decode(&written, versions.current()),
        Err(AvroError::FingerprintMismatch { .. })
    ));
    // A fingerprint of no version is named.
    let other = Schema::parse_str(r#""string""#).unwrap();
    let stranger = Encoder::single_object(&other)
        .encode(&Value::String("x".into()))
        .unwrap();
    assert!(matches!(
        avro::decode_resolved(&stranger, &versions, None),
        Err(AvroError::UnknownFingerprint(_))
    ));
}

#[test]
fn records_with_apache_avros_old_fingerprint_still_decode() {
    let v1 = Schema::parse_str(V1).unwrap();
    let mut written = Encoder::single_object(&v1).encode(&v1_record()).unwrap();
    written[2..10].copy_from_slice(&avro::legacy_fingerprint(&v1));
    let versions = SchemaVersions::current_only(v1);
    assert_eq!(
        avro::decode_resolved(&written, &versions, None).unwrap(),
        v1_record()
    );
}

struct OneSchema(Arc<Schema>);

impl RegistrySchemas for OneSchema {
    fn schema_by_id(&self, id: u32) -> Result<Arc<Schema>, String> {
        (id == 7)
            .then(|| Arc::clone(&self.0))
            .ok_or_else(|| format!("no schema {id}"))
    }
}

#[test]
fn confluent_records_decode_with_the_registrys_writer_schema() {
    let v1 = Schema::parse_str(V1).unwrap();
    let written = Encoder::confluent(&v1, 7).encode(&v1_record()).unwrap();
    let versions = SchemaVersions::current_only(Schema::parse_str(V2).unwrap());
    let registry = OneSchema(Arc::new(v1));
    let value = avro::decode_resolved(&written, &versions, Some(&registry)).unwrap();
    assert_eq!(avro::to_json(&value)["topic"], serde_json::Value::Null);
    assert!(matches!(
        avro::decode_resolved(&written, &versions, None),
        Err(AvroError::NoRegistry(7))
    ));
    let unknown = Encoder::confluent(&registry.0, 8)
        .encode(&v1_record())
        .unwrap();
    assert!(matches!(
        avro::decode_resolved(&unknown, &versions, Some(&registry)),
        Err(AvroError::WriterSchema { schema_id: 8, .. })
    ));
}

#[test]
fn an_edit_that_cannot_read_older_records_is_refused_naming_the_version() {
    let (_dir, path) = folder(V2_WITHOUT_DEFAULT);
    let problems =
        SchemaVersions::load(&path, Schema::parse_str(V2_WITHOUT_DEFAULT).unwrap()).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    let text = problems[0].to_string();
    assert!(
        text.contains("history/r/v1.avsc") && text.contains("BACKWARD"),
        "{text}"
    );
}
