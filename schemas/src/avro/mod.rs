//! The wire encodings of source records, and what the Schema Registry is given for them (the
//! subject, the schema text; the client itself is in `zoomstream-processors`).
//!
//! Two framings of one Avro binary datum are supported:
//!
//! - [Single-object encoding] (Avro spec): `C3 01`, the 8-byte little-endian CRC-64-AVRO (Rabin)
//!   fingerprint of the schema's Parsing Canonical Form, then the datum. Needs no registry: a
//!   reader recognises the schema by its fingerprint.
//! - Confluent wire format: `00`, the 4-byte big-endian Schema Registry id, then the datum.
//!
//! [Single-object encoding]: https://avro.apache.org/docs/1.11.1/specification/#single-object-encoding

use std::sync::Arc;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value as AvroValue;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use serde_json::Value as JsonValue;

mod canonical;
mod history;

pub use canonical::{
    fingerprint_of_canonical_form, legacy_fingerprint, parsing_canonical_form, rabin_fingerprint,
};
pub use history::{history_folder, HistoryError, RegistrySchemas, SchemaVersions};

/// The two magic bytes of the single-object encoding.
pub const SINGLE_OBJECT_MAGIC: [u8; 2] = [0xC3, 0x01];
/// The magic byte of the Confluent wire format.
pub const CONFLUENT_MAGIC: u8 = 0x00;

/// How records are framed on a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Avro single-object encoding: no registry needed.
    SingleObject,
    /// Confluent wire format, with the id the Schema Registry gave the schema.
    Confluent { schema_id: u32 },
}

/// The framing found at the start of an encoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Single-object encoding, with the writer schema's Rabin fingerprint.
    SingleObject { fingerprint: [u8; 8] },
    /// Confluent wire format, with the writer schema's registry id.
    Confluent { schema_id: u32 },
}

/// Why a record could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum AvroError {
    #[error("cannot encode the record: {0}")]
    Encode(#[source] apache_avro::Error),
    #[error("cannot decode the record: {0}")]
    Decode(#[source] apache_avro::Error),
    #[error("record is empty")]
    Empty,
    #[error("record is {len} bytes, too short for its {framing} header")]
    Truncated { framing: &'static str, len: usize },
    #[error("unknown framing: first byte {0:#04x} is neither single-object (0xc3 0x01) nor Confluent (0x00)")]
    UnknownFraming(u8),
    #[error("single-object fingerprint {found} is not the schema's ({expected}): the record was written with another schema")]
    FingerprintMismatch { expected: String, found: String },
    #[error("{0} bytes left after the datum")]
    TrailingBytes(usize),
    #[error("single-object fingerprint {0} is none of the schema's versions (is its history/ folder complete?)")]
    UnknownFingerprint(String),
    #[error("the record is in Confluent framing (schema id {0}) and no schema registry is configured to look its writer schema up")]
    NoRegistry(u32),
    #[error("writer schema id {schema_id}: {reason}")]
    WriterSchema { schema_id: u32, reason: String },
}

/// Encodes records of one schema in one framing; cheap to clone and share (immutable).
#[derive(Debug, Clone)]
pub struct Encoder {
    writers: Arc<Writers>,
    encoding: Encoding,
    header: Vec<u8>,
}

/// A record's fields are written one after the other (Avro spec: a record's binary form is its
/// fields' forms in schema order), each by a writer built once per field. Building a
/// `GenericDatumWriter` resolves its schema's names and writing a whole record builds a map of
/// its fields: both per record, they were a third of the transform's instructions.
type FieldWriters<'s> = Option<Vec<GenericDatumWriter<'s>>>;

self_cell::self_cell!(
    /// The schema, and the field writers that borrow it (`None` unless the schema is a record
    /// of self-contained fields: then records go through one writer of the whole schema).
    struct Writers {
        owner: Schema,
        #[covariant]
        dependent: FieldWriters,
    }
);

impl std::fmt::Debug for Writers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writers")
            .field("schema", self.borrow_owner())
            .finish_non_exhaustive()
    }
}

fn field_writers(schema: &Schema) -> FieldWriters<'_> {
    let Schema::Record(record) = schema else {
        return None;
    };
    record
        .fields
        .iter()
        .map(|field| {
            is_self_contained(&field.schema)
                .then(|| GenericDatumWriter::builder(&field.schema).build().ok())
                .flatten()
        })
        .collect()
}

impl Encoder {
    /// Single-object encoding.
    pub fn single_object(schema: &Schema) -> Encoder {
        Encoder::new(schema, Encoding::SingleObject)
    }

    /// Confluent wire format, with the id the registry gave `schema`.
    pub fn confluent(schema: &Schema, schema_id: u32) -> Encoder {
        Encoder::new(schema, Encoding::Confluent { schema_id })
    }

    /// An encoder for `encoding`; the header is computed once here.
    pub fn new(schema: &Schema, encoding: Encoding) -> Encoder {
        let header = match encoding {
            Encoding::SingleObject => single_object_header(schema).to_vec(),
            Encoding::Confluent { schema_id } => {
                let mut header = vec![CONFLUENT_MAGIC];
                header.extend_from_slice(&schema_id.to_be_bytes());
                header
            }
        };
        Encoder {
            writers: Arc::new(Writers::new(schema.clone(), field_writers)),
            encoding,
            header,
        }
    }

    /// The writer schema.
    pub fn schema(&self) -> &Schema {
        self.writers.borrow_owner()
    }

    /// The framing.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The bytes every record starts with.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// The framed record; fails if `value` does not validate against the schema.
    pub fn encode(&self, value: &AvroValue) -> Result<Vec<u8>, AvroError> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&self.header);
        let schema = self.writers.borrow_owner();
        match (schema, value, self.writers.borrow_dependent()) {
            // Records with the schema's fields in its order (the mapping builds them so); any
            // other value goes through a writer of the whole schema.
            (Schema::Record(record), AvroValue::Record(fields), Some(writers))
                if fields.len() == writers.len()
                    && record
                        .fields
                        .iter()
                        .zip(fields)
                        .all(|(f, (n, _))| f.name == *n) =>
            {
                for ((_, field_value), writer) in fields.iter().zip(writers) {
                    // Validates the value against the field's schema, then writes it.
                    writer
                        .write_value_ref(&mut out, field_value)
                        .map_err(AvroError::Encode)?;
                }
            }
            _ => {
                GenericDatumWriter::builder(schema)
                    .build()
                    .and_then(|writer| writer.write_value_ref(&mut out, value))
                    .map_err(AvroError::Encode)?;
            }
        }
        Ok(out)
    }
}

/// Whether `schema` names no other type, so that it can be encoded on its own: a primitive, a
/// logical type over one, or a union of those.
fn is_self_contained(schema: &Schema) -> bool {
    match schema {
        Schema::Union(union) => union.variants().iter().all(is_self_contained),
        Schema::Null
        | Schema::Boolean
        | Schema::Int
        | Schema::Long
        | Schema::Float
        | Schema::Double
        | Schema::Bytes
        | Schema::String
        | Schema::Date
        | Schema::TimeMillis
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => true,
        _ => false,
    }
}

/// `C3 01` + the schema's Rabin fingerprint.
pub fn single_object_header(schema: &Schema) -> [u8; 10] {
    let mut header = [0; 10];
    header[..2].copy_from_slice(&SINGLE_OBJECT_MAGIC);
    header[2..].copy_from_slice(&rabin_fingerprint(schema));
    header
}

/// The framing of an encoded record and the datum after it.
pub fn read_framing(bytes: &[u8]) -> Result<(Framing, &[u8]), AvroError> {
    match bytes {
        [] => Err(AvroError::Empty),
        [0xC3, 0x01, rest @ ..] => {
            let (fingerprint, datum) =
                rest.split_first_chunk::<8>().ok_or(AvroError::Truncated {
                    framing: "single-object",
                    len: bytes.len(),
                })?;
            Ok((
                Framing::SingleObject {
                    fingerprint: *fingerprint,
                },
                datum,
            ))
        }
        [CONFLUENT_MAGIC, rest @ ..] => {
            let (id, datum) = rest.split_first_chunk::<4>().ok_or(AvroError::Truncated {
                framing: "Confluent",
                len: bytes.len(),
            })?;
            Ok((
                Framing::Confluent {
                    schema_id: u32::from_be_bytes(*id),
                },
                datum,
            ))
        }
        [first, ..] => Err(AvroError::UnknownFraming(*first)),
    }
}

/// Decodes a record in either framing, written with `schema`. A single-object record must carry
/// `schema`'s fingerprint; a Confluent record's id is not checked (look it up with
/// [`read_framing`] if the schema may vary).
pub fn decode(bytes: &[u8], schema: &Schema) -> Result<AvroValue, AvroError> {
    let (framing, mut datum) = read_framing(bytes)?;
    if let Framing::SingleObject { fingerprint } = framing {
        let expected = rabin_fingerprint(schema);
        if fingerprint != expected {
            return Err(AvroError::FingerprintMismatch {
                expected: hex::encode(expected),
                found: hex::encode(fingerprint),
            });
        }
    }
    let reader = GenericDatumReader::builder(schema)
        .build()
        .map_err(AvroError::Decode)?;
    let value = reader.read_value(&mut datum).map_err(AvroError::Decode)?;
    // Reading advanced `datum` past the value: anything left is not part of it.
    if !datum.is_empty() {
        return Err(AvroError::TrailingBytes(datum.len()));
    }
    Ok(value)
}

/// Decodes a record with the schema that wrote it — found by fingerprint among `versions`
/// (single-object) or by id in the registry (Confluent) — resolved into the current version, so
/// records written before a schema edit read as the current schema describes them.
pub fn decode_resolved(
    bytes: &[u8],
    versions: &SchemaVersions,
    registry: Option<&dyn RegistrySchemas>,
) -> Result<AvroValue, AvroError> {
    let (framing, mut datum) = read_framing(bytes)?;
    let writer = match framing {
        Framing::SingleObject { fingerprint } => versions
            .by_fingerprint(&fingerprint)
            .cloned()
            .ok_or_else(|| AvroError::UnknownFingerprint(hex::encode(fingerprint)))?,
        Framing::Confluent { schema_id } => registry
            .ok_or(AvroError::NoRegistry(schema_id))?
            .schema_by_id(schema_id)
            .map_err(|reason| AvroError::WriterSchema { schema_id, reason })?,
    };
    let current = versions.current();
    let reader = if Arc::ptr_eq(&writer, current) {
        GenericDatumReader::builder(&writer).build()
    } else {
        GenericDatumReader::builder(&writer)
            .reader_schema(current)
            .build()
    }
    .map_err(AvroError::Decode)?;
    let value = reader.read_value(&mut datum).map_err(AvroError::Decode)?;
    if !datum.is_empty() {
        return Err(AvroError::TrailingBytes(datum.len()));
    }
    Ok(value)
}

/// A JSON view of a decoded record, for CLIs and tests: unions unwrapped, timestamps and dates
/// as their numbers, bytes as arrays of numbers, non-finite floats as null.
pub fn to_json(value: &AvroValue) -> JsonValue {
    match value {
        AvroValue::Null => JsonValue::Null,
        AvroValue::Boolean(b) => JsonValue::Bool(*b),
        AvroValue::Int(i) | AvroValue::Date(i) | AvroValue::TimeMillis(i) => JsonValue::from(*i),
        AvroValue::Long(i)
        | AvroValue::TimeMicros(i)
        | AvroValue::TimestampMillis(i)
        | AvroValue::TimestampMicros(i)
        | AvroValue::TimestampNanos(i)
        | AvroValue::LocalTimestampMillis(i)
        | AvroValue::LocalTimestampMicros(i)
        | AvroValue::LocalTimestampNanos(i) => JsonValue::from(*i),
        AvroValue::Float(f) => {
            serde_json::Number::from_f64(f64::from(*f)).map_or(JsonValue::Null, JsonValue::Number)
        }
        AvroValue::Double(f) => {
            serde_json::Number::from_f64(*f).map_or(JsonValue::Null, JsonValue::Number)
        }
        AvroValue::Bytes(bytes) | AvroValue::Fixed(_, bytes) => JsonValue::from(bytes.clone()),
        AvroValue::String(s) | AvroValue::Enum(_, s) => JsonValue::String(s.clone()),
        AvroValue::Union(_, inner) => to_json(inner),
        AvroValue::Array(items) => JsonValue::Array(items.iter().map(to_json).collect()),
        AvroValue::Map(map) => {
            JsonValue::Object(map.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
        AvroValue::Record(fields) => JsonValue::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
        AvroValue::Uuid(uuid) => JsonValue::String(uuid.to_string()),
        // The crate's own conversion covers the rarer logical types.
        other => JsonValue::try_from(other.clone()).unwrap_or(JsonValue::Null),
    }
}

/// The subject of a topic's values under the registry's default TopicNameStrategy.
pub fn subject_for_topic(topic: &str) -> String {
    format!("{topic}-value")
}

/// The schema as registered: the full JSON (docs, defaults and logical types kept), not the
/// Parsing Canonical Form, which drops defaults and `timestamp-millis` and would make consumers
/// read plain longs and lose schema-evolution defaults.
pub fn registry_schema_text(schema: &Schema) -> String {
    // Serialising a parsed schema cannot fail; fall back to the canonical form all the same.
    serde_json::to_string(schema).unwrap_or_else(|_| schema.canonical_form())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::Shape;

    fn record_schema() -> Schema {
        Schema::parse_str(
            r#"{"type": "record", "name": "R", "namespace": "t", "doc": "d", "fields": [
                {"name": "s", "type": "string"},
                {"name": "n", "type": ["null", "long"], "default": null},
                {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}"#,
        )
        .unwrap()
    }

    fn record(n: Option<i64>) -> AvroValue {
        let n = match n {
            Some(n) => AvroValue::Union(1, Box::new(AvroValue::Long(n))),
            None => AvroValue::Union(0, Box::new(AvroValue::Null)),
        };
        AvroValue::Record(vec![
            ("s".into(), AvroValue::String("hi".into())),
            ("n".into(), n),
            ("at".into(), AvroValue::TimestampMillis(1_626_212_691_000)),
        ])
    }

    #[test]
    fn rabin_fingerprints_match_the_avro_spec_vectors() {
        // "null" and "int" are the Avro specification's test vectors; the record's was computed
        // with an independent CRC-64-AVRO implementation over its Parsing Canonical Form
        // {"name":"foo.Bar","type":"record","fields":[{"name":"a","type":"long"}]}.
        for (schema, fingerprint) in [
            ("\"null\"", 7_195_948_357_588_979_594_u64),
            ("\"int\"", 8_247_732_601_305_521_295),
            (
                r#"{"type":"record","name":"Bar","namespace":"foo","doc":"x","fields":[{"name":"a","type":"long","default":1}]}"#,
                16_034_274_439_892_062_150,
            ),
        ] {
            let schema = Schema::parse_str(schema).unwrap();
            assert_eq!(rabin_fingerprint(&schema), fingerprint.to_le_bytes());
        }
    }

    #[test]
    fn single_object_encoding_is_magic_fingerprint_datum() {
        let schema = Schema::parse_str("\"long\"").unwrap();
        let encoder = Encoder::single_object(&schema);
        let bytes = encoder.encode(&AvroValue::Long(1)).unwrap();
        let mut expected = vec![0xC3, 0x01];
        expected.extend_from_slice(&rabin_fingerprint(&schema));
        expected.push(0x02); // zig-zag 1
        assert_eq!(bytes, expected);
        assert_eq!(encoder.header(), &expected[..10]);
        assert_eq!(decode(&bytes, &schema).unwrap(), AvroValue::Long(1));

        let null = Schema::parse_str("\"null\"").unwrap();
        assert_eq!(
            single_object_header(&null),
            [0xC3, 0x01, 0x8a, 0x8f, 0x25, 0xcc, 0xe7, 0x24, 0xdd, 0x63]
        );
    }

    #[test]
    fn records_round_trip_in_both_framings() {
        let schema = record_schema();
        for encoder in [
            Encoder::single_object(&schema),
            Encoder::confluent(&schema, 42),
        ] {
            for value in [record(Some(-7)), record(None)] {
                let bytes = encoder.encode(&value).unwrap();
                assert_eq!(decode(&bytes, &schema).unwrap(), value);
            }
        }
        let bytes = Encoder::confluent(&schema, 42)
            .encode(&record(None))
            .unwrap();
        assert_eq!(&bytes[..5], &[0x00, 0, 0, 0, 42]);
        let (framing, datum) = read_framing(&bytes).unwrap();
        assert_eq!(framing, Framing::Confluent { schema_id: 42 });
        assert_eq!(datum, &bytes[5..]);
        assert_eq!(
            Encoder::confluent(&schema, 42).encoding(),
            Encoding::Confluent { schema_id: 42 }
        );
    }

    #[test]
    fn decoding_rejects_what_it_cannot_trust() {
        let schema = record_schema();
        let other = Schema::parse_str(Shape::Meeting.builtin_schema()).unwrap();
        let bytes = Encoder::single_object(&schema)
            .encode(&record(Some(1)))
            .unwrap();
        assert!(matches!(
            decode(&bytes, &other),
            Err(AvroError::FingerprintMismatch { .. })
        ));
        assert!(matches!(decode(&[], &schema), Err(AvroError::Empty)));
        assert!(matches!(
            decode(&[0x7b, 0x7d], &schema),
            Err(AvroError::UnknownFraming(0x7b))
        ));
        assert!(matches!(
            decode(&bytes[..6], &schema),
            Err(AvroError::Truncated { .. })
        ));
        assert!(matches!(
            decode(&[0, 0, 0], &schema),
            Err(AvroError::Truncated { .. })
        ));
        assert!(matches!(
            decode(&bytes[..bytes.len() - 1], &schema),
            Err(AvroError::Decode(_))
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            decode(&long, &schema),
            Err(AvroError::TrailingBytes(1))
        ));
    }

    #[test]
    fn values_outside_the_schema_are_not_encoded() {
        let schema = record_schema();
        let bad = AvroValue::Record(vec![("s".into(), AvroValue::Long(1))]);
        assert!(matches!(
            Encoder::single_object(&schema).encode(&bad),
            Err(AvroError::Encode(_))
        ));
        // Every field present and in order, one of the wrong type: the field writer refuses it.
        let AvroValue::Record(mut fields) = record(Some(3)) else {
            unreachable!()
        };
        fields[2].1 = AvroValue::String("yesterday".into());
        assert!(matches!(
            Encoder::single_object(&schema).encode(&AvroValue::Record(fields)),
            Err(AvroError::Encode(_))
        ));
    }

    #[test]
    fn field_by_field_encoding_is_the_whole_record_encoding() {
        let schema = record_schema();
        let whole = |value: &AvroValue| {
            let mut out = Vec::new();
            GenericDatumWriter::builder(&schema)
                .build()
                .unwrap()
                .write_value_ref(&mut out, value)
                .unwrap();
            out
        };
        let encoder = Encoder::single_object(&schema);
        for value in [record(Some(3)), record(None), record(Some(-1 << 40))] {
            let bytes = encoder.encode(&value).unwrap();
            assert_eq!(&bytes[..10], encoder.header());
            assert_eq!(bytes[10..], whole(&value)[..]);
        }
        // Fields in another order than the schema's go through the whole-record writer.
        let AvroValue::Record(mut fields) = record(Some(3)) else {
            unreachable!()
        };
        fields.reverse();
        let reordered = AvroValue::Record(fields);
        assert_eq!(
            encoder.encode(&reordered).unwrap()[10..],
            whole(&record(Some(3)))[..]
        );
    }

    #[test]
    fn json_view_unwraps_unions_and_keeps_millis() {
        assert_eq!(
            to_json(&record(Some(3))),
            serde_json::json!({"s": "hi", "n": 3, "at": 1_626_212_691_000_i64})
        );
        assert_eq!(to_json(&record(None))["n"], JsonValue::Null);
        assert_eq!(to_json(&AvroValue::Double(f64::NAN)), JsonValue::Null);
        assert_eq!(
            to_json(&AvroValue::Bytes(vec![1, 2])),
            serde_json::json!([1, 2])
        );
    }

    #[test]
    fn registry_schema_text_keeps_logical_types_and_defaults() {
        let schema = Schema::parse_str(Shape::RecordingFile.builtin_schema()).unwrap();
        let text = registry_schema_text(&schema);
        assert!(
            text.contains("timestamp-millis") && text.contains("\"default\":null"),
            "{text}"
        );
        let reparsed = Schema::parse_str(&text).unwrap();
        assert_eq!(reparsed.canonical_form(), schema.canonical_form());
        assert_eq!(
            subject_for_topic("zoom.recording-completed"),
            "zoom.recording-completed-value"
        );
    }
}
