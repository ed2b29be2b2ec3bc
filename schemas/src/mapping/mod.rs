//! How a raw webhook becomes the Avro records of a source.
//!
//! Records are built *from the source's schema*: every field of the schema is looked up in the
//! shape's field table ([`crate::shape`]: where its value comes from in the webhook) and
//! converted to the field's type. So an operator's edited schema (fields dropped, reordered,
//! made nullable, or added with a default) works without code changes; loading the sources file
//! rejects the schemas that could not work. Whether a field is required is the schema's say: a
//! missing value for a non-null field without a default is a [`MappingError::MissingField`].
//!
//! `webhook` reads a webhook's values, `rfc3339` its timestamps, `error` says why it cannot be
//! mapped; this file builds the records.

mod error;
mod rfc3339;
mod webhook;

use apache_avro::schema::{RecordField, Schema};
use apache_avro::types::Value as AvroValue;
use serde_json::Value;

pub use error::MappingError;
pub use webhook::RawEvent;

use crate::raw;
use crate::shape::{default_value, describe_schema, field_def, nullable_parts, Shape};
use crate::sources::Source;
use error::{missing, wrong_type};
use webhook::{as_string, Ctx, Datum};

/// One record for a source's topic.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    /// The Kafka key: the file id for recording files, else [`raw::partition_key`].
    pub key: Option<String>,
    /// The catalogue name the source matched.
    pub event: String,
    /// The record's deterministic id (derived per file for recording files).
    pub event_id: String,
    /// The record, valid against the source's schema.
    pub value: AvroValue,
}

/// The records `source` makes of `raw`, which classified as `matched_event` (the name
/// [`Source::matches`] returned).
///
/// Recording-file sources give one record per kept file (possibly none); every other shape gives
/// exactly one.
pub fn records(
    source: &Source,
    raw: &RawEvent,
    matched_event: &str,
) -> Result<Vec<SourceRecord>, MappingError> {
    let not_for = |reason: String| MappingError::NotForSource {
        source_name: source.name.clone(),
        reason,
    };
    if raw.app != source.app {
        return Err(not_for(format!(
            "it came for the {} app, the source is for {}",
            raw.app, source.app
        )));
    }
    if !source.takes(matched_event) {
        return Err(not_for(format!("it does not list {matched_event}")));
    }
    let ctx = Ctx::new(raw, matched_event)?;
    match source.shape {
        Shape::RecordingFile => recording_file_records(source, ctx),
        shape => {
            if shape != Shape::Envelope {
                ctx.object.ok_or_else(|| missing("payload.object"))?;
            }
            if shape == Shape::Participant {
                ctx.participant
                    .ok_or_else(|| missing("payload.object.participant"))?;
            }
            let value = build(source, &ctx)?;
            Ok(vec![SourceRecord {
                key: raw::partition_key(raw.envelope),
                event: matched_event.to_owned(),
                event_id: raw.event_id.to_owned(),
                value,
            }])
        }
    }
}

fn recording_file_records(
    source: &Source,
    mut ctx: Ctx,
) -> Result<Vec<SourceRecord>, MappingError> {
    let object = ctx.object.ok_or_else(|| missing("payload.object"))?;
    let files = match object.get("recording_files") {
        None | Some(Value::Null) => {
            let event = ctx.wire_event().unwrap_or_else(|| ctx.matched.to_owned());
            return Err(MappingError::NoRecordingFiles { event });
        }
        Some(Value::Array(files)) => files,
        Some(other) => {
            return Err(wrong_type(
                "payload.object.recording_files",
                "an array",
                other,
            ))
        }
    };
    let mut out = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let at = |key: &str| format!("payload.object.recording_files[{index}].{key}");
        let Some(file_map) = file.as_object() else {
            return Err(wrong_type(
                &format!("payload.object.recording_files[{index}]"),
                "an object",
                file,
            ));
        };
        // As Pipedream: only completed files, M4A and CHAT only when asked for.
        if as_string(file_map.get("status"), &at("status"))?.as_deref() != Some("completed") {
            continue;
        }
        let file_type =
            as_string(file_map.get("file_type"), &at("file_type"))?.ok_or_else(|| {
                MappingError::MissingField {
                    field: at("file_type"),
                }
            })?;
        if !source.options.keeps_file_type(&file_type) {
            continue;
        }
        let file_id = as_string(file_map.get("id"), &at("id"))?
            .filter(|id| !id.is_empty())
            .ok_or_else(|| MappingError::MissingField { field: at("id") })?;
        ctx.file = Some((index, file_map));
        ctx.event_id = raw::derived_event_id(ctx.raw.event_id, &file_id);
        let value = build(source, &ctx)?;
        out.push(SourceRecord {
            key: Some(file_id),
            event: ctx.matched.to_owned(),
            event_id: ctx.event_id.clone(),
            value,
        });
    }
    Ok(out)
}

/// Builds the record of `source`'s schema from `ctx`, field by field.
fn build(source: &Source, ctx: &Ctx) -> Result<AvroValue, MappingError> {
    let Schema::Record(record) = &source.schema else {
        return Err(MappingError::SchemaMismatch {
            field: "(root)".to_owned(),
            reason: "the schema is not a record".to_owned(),
        });
    };
    let plan = &source.field_plan;
    let planned = plan.len() == record.fields.len();
    let mut fields = Vec::with_capacity(record.fields.len());
    for (index, field) in record.fields.iter().enumerate() {
        let def = match plan.get(index) {
            // The plan is made from this schema at load; the name check keeps a schema edited
            // since then correct (it falls back to the search).
            Some(def) if planned && def.name == field.name => Some(def),
            _ => field_def(source.shape, &field.name),
        };
        let value = match def {
            Some(def) => {
                let datum = ctx.extract(def)?;
                field_value(datum, field, || ctx.path(def.src))?
            }
            None => default_value(field).ok_or_else(|| MappingError::SchemaMismatch {
                field: field.name.clone(),
                reason: format!(
                    "not a field of the {} shape and has no default",
                    source.shape
                ),
            })?,
        };
        fields.push((field.name.clone(), value));
    }
    // No `validate(&source.schema)` here: the encoder validates every record, field by field.
    Ok(AvroValue::Record(fields))
}

/// The Avro value of one field: `datum` converted to the field's type, null for an absent
/// datum in a nullable field, the default for an absent datum in a non-null field.
fn field_value(
    datum: Option<Datum>,
    field: &RecordField,
    path: impl Fn() -> String,
) -> Result<AvroValue, MappingError> {
    let mismatch = |reason: String| MappingError::SchemaMismatch {
        field: field.name.clone(),
        reason,
    };
    if let Schema::Union(union) = &field.schema {
        let (null_index, other_index, other) = nullable_parts(union.variants())
            .ok_or_else(|| mismatch("only [\"null\", T] unions are supported".to_owned()))?;
        return Ok(match datum {
            None => AvroValue::Union(null_index, Box::new(AvroValue::Null)),
            Some(datum) => AvroValue::Union(
                other_index,
                Box::new(convert(datum, other).map_err(mismatch)?),
            ),
        });
    }
    match datum {
        Some(datum) => convert(datum, &field.schema).map_err(mismatch),
        None => default_value(field).ok_or_else(|| MappingError::MissingField { field: path() }),
    }
}

fn convert(datum: Datum, schema: &Schema) -> Result<AvroValue, String> {
    match (datum, schema) {
        (Datum::Str(s), Schema::String) => Ok(AvroValue::String(s)),
        (Datum::Int(i), Schema::Int) => i32::try_from(i)
            .map(AvroValue::Int)
            .map_err(|_| format!("{i} does not fit an int")),
        (Datum::Int(i), Schema::Long) => Ok(AvroValue::Long(i)),
        (Datum::Ts(t), Schema::TimestampMillis) => Ok(AvroValue::TimestampMillis(t)),
        (Datum::Ts(t), Schema::Long) => Ok(AvroValue::Long(t)),
        (datum, schema) => Err(format!(
            "a {} cannot be stored as {}",
            datum.kind().describe(),
            describe_schema(schema)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_the_field_schema() {
        let schema = Schema::parse_str(
            r#"{"type": "record", "name": "R", "fields": [
                {"name": "a", "type": "string", "default": "dflt"},
                {"name": "b", "type": ["string", "null"]},
                {"name": "c", "type": "int"},
                {"name": "d", "type": "long"},
                {"name": "e", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}], "default": null}]}"#,
        )
        .unwrap();
        let Schema::Record(record) = &schema else {
            unreachable!()
        };
        let field = |i: usize| &record.fields[i];
        let path = || "p".to_owned();
        assert_eq!(
            field_value(None, field(0), path),
            Ok(AvroValue::String("dflt".into()))
        );
        assert_eq!(
            field_value(None, field(1), path),
            Ok(AvroValue::Union(1, Box::new(AvroValue::Null)))
        );
        assert_eq!(
            field_value(Some(Datum::Str("x".into())), field(1), path),
            Ok(AvroValue::Union(0, Box::new(AvroValue::String("x".into()))))
        );
        assert_eq!(
            field_value(None, field(2), path),
            Err(MappingError::MissingField { field: "p".into() })
        );
        assert_eq!(
            field_value(Some(Datum::Int(1 << 40)), field(2), path).map_err(|e| e.reason_code()),
            Err("schema_mismatch")
        );
        assert_eq!(
            field_value(Some(Datum::Int(1 << 40)), field(3), path),
            Ok(AvroValue::Long(1 << 40))
        );
        assert_eq!(
            field_value(Some(Datum::Ts(5)), field(4), path),
            Ok(AvroValue::Union(1, Box::new(AvroValue::TimestampMillis(5))))
        );
    }
}
