//! How a raw webhook becomes the Avro records of a source.
//!
//! Records are built *from the source's schema*: every field of the schema is looked up in the
//! shape's field table ([`crate::shape`]: where its value comes from in the webhook) and
//! converted to the field's type. So an operator's edited schema (fields dropped, reordered,
//! made nullable, or added with a default) works without code changes; loading the sources file
//! rejects the schemas that could not work. Whether a field is required is the schema's say: a missing value
//! for a non-null field without a default is a [`MappingError::MissingField`].

use apache_avro::schema::{RecordField, Schema};
use apache_avro::types::Value as AvroValue;
use serde_json::{Map, Value};

use crate::raw;
use crate::shape::{
    default_value, describe_schema, field_def, nullable_parts, FieldDef, Kind, Shape, Src,
};
use crate::sources::Source;
use crate::App;

/// One webhook as read from the raw topic.
#[derive(Debug, Clone, Copy)]
pub struct RawEvent<'a> {
    /// The app the webhook was delivered for (the raw record's header).
    pub app: App,
    /// The parsed webhook body.
    pub envelope: &'a Value,
    /// [`raw::event_id`] of the body (the raw record's header).
    pub event_id: &'a str,
    /// When ingest received it, in ms since the epoch (the raw record's header), when known.
    pub received_at_ms: Option<i64>,
}

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

/// Why a webhook could not become records: it goes to the dead-letter topic with
/// [`MappingError::reason_code`] and the Display text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("source {source_name:?} does not take this webhook: {reason}")]
    NotForSource { source_name: String, reason: String },
    #[error("{field} is missing")]
    MissingField { field: String },
    #[error("{field} is {found}, expected {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{field} is not an RFC 3339 timestamp: {value:?}")]
    BadTimestamp { field: String, value: String },
    #[error("payload.object.recording_files is missing from a {event} webhook")]
    NoRecordingFiles { event: String },
    #[error("{field} does not fit the schema: {reason}")]
    SchemaMismatch { field: String, reason: String },
}

impl MappingError {
    /// A short, bounded code for DLQ headers and metric labels.
    pub fn reason_code(&self) -> &'static str {
        match self {
            MappingError::NotForSource { .. } => "not_for_source",
            MappingError::MissingField { .. } => "missing_field",
            MappingError::WrongType { .. } => "wrong_type",
            MappingError::BadTimestamp { .. } => "bad_timestamp",
            MappingError::NoRecordingFiles { .. } => "no_recording_files",
            MappingError::SchemaMismatch { .. } => "schema_mismatch",
        }
    }

    /// Every code [`MappingError::reason_code`] can return (to pre-register metric labels).
    pub const REASON_CODES: [&'static str; 6] = [
        "not_for_source",
        "missing_field",
        "wrong_type",
        "bad_timestamp",
        "no_recording_files",
        "schema_mismatch",
    ];
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

/// The parts of one webhook the field table reads.
struct Ctx<'a> {
    raw: &'a RawEvent<'a>,
    matched: &'a str,
    body: &'a Map<String, Value>,
    payload: Option<&'a Map<String, Value>>,
    object: Option<&'a Map<String, Value>>,
    participant: Option<&'a Map<String, Value>>,
    /// The recording file being mapped, with its index (recording-file shape only).
    file: Option<(usize, &'a Map<String, Value>)>,
    /// The record's event id: the webhook's, or the file's derived one.
    event_id: String,
}

impl<'a> Ctx<'a> {
    fn new(raw: &'a RawEvent<'a>, matched: &'a str) -> Result<Self, MappingError> {
        let body = raw
            .envelope
            .as_object()
            .ok_or_else(|| wrong_type("the webhook body", "a JSON object", raw.envelope))?;
        let payload = optional_object(body.get("payload"), "payload")?;
        let object = optional_object(payload.and_then(|p| p.get("object")), "payload.object")?;
        let participant = optional_object(
            object.and_then(|o| o.get("participant")),
            "payload.object.participant",
        )?;
        Ok(Ctx {
            raw,
            matched,
            body,
            payload,
            object,
            participant,
            file: None,
            event_id: raw.event_id.to_owned(),
        })
    }

    fn wire_event(&self) -> Option<String> {
        self.body
            .get("event")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// The JSON path of a field's source, for error messages.
    fn path(&self, src: Src) -> String {
        match src {
            Src::EventId | Src::Event | Src::App | Src::ReceivedAt => "(zoomstream)".to_owned(),
            Src::WireEvent => "event".to_owned(),
            Src::EventTs => "event_ts".to_owned(),
            Src::Payload(key) => format!("payload.{key}"),
            Src::Object(key) => format!("payload.object.{key}"),
            Src::Participant(key) => format!("payload.object.participant.{key}"),
            Src::File(key) => match self.file {
                Some((index, _)) => format!("payload.object.recording_files[{index}].{key}"),
                None => format!("payload.object.recording_files[].{key}"),
            },
            Src::ObjectJson => "payload.object".to_owned(),
            Src::OldObjectJson => "payload.old_object".to_owned(),
            Src::PayloadJson => "payload".to_owned(),
            Src::BodyJson => "(body)".to_owned(),
            Src::DownloadToken => "download_token".to_owned(),
            Src::DownloadUrlWithToken => self.path(Src::File("download_url")),
        }
    }

    /// The value of a field, typed by its kind; `None` when the webhook lacks it.
    fn extract(&self, def: &FieldDef) -> Result<Option<Datum>, MappingError> {
        let get = |map: Option<&'a Map<String, Value>>, key: &str| map.and_then(|m| m.get(key));
        let json = match def.src {
            Src::EventId => return Ok(Some(Datum::Str(self.event_id.clone()))),
            Src::Event => return Ok(Some(Datum::Str(self.matched.to_owned()))),
            Src::App => return Ok(Some(Datum::Str(self.raw.app.as_str().to_owned()))),
            Src::ReceivedAt => return Ok(self.raw.received_at_ms.map(Datum::Ts)),
            Src::ObjectJson => return Ok(to_json_text(get(self.payload, "object"))),
            Src::OldObjectJson => return Ok(to_json_text(get(self.payload, "old_object"))),
            Src::PayloadJson => return Ok(to_json_text(self.body.get("payload"))),
            Src::BodyJson => return Ok(to_json_text(Some(self.raw.envelope))),
            Src::DownloadUrlWithToken => {
                let url = as_string(
                    get(self.file.map(|f| f.1), "download_url"),
                    &self.path(def.src),
                )?;
                let token = as_string(self.body.get("download_token"), "download_token")?;
                return Ok(match (url, token) {
                    (Some(url), Some(token)) if !url.is_empty() && !token.is_empty() => {
                        Some(Datum::Str(url_with_token(&url, &token)))
                    }
                    _ => None,
                });
            }
            Src::WireEvent => self.body.get("event"),
            Src::EventTs => self.body.get("event_ts"),
            Src::DownloadToken => self.body.get("download_token"),
            Src::Payload(key) => get(self.payload, key),
            Src::Object(key) => get(self.object, key),
            Src::Participant(key) => get(self.participant, key),
            Src::File(key) => get(self.file.map(|f| f.1), key),
        };
        let path = || self.path(def.src);
        // The field's path is only needed for an error: build it only then.
        let present = match json {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        };
        Ok(match (def.kind, present) {
            (_, None) => None,
            (Kind::Str, Some(Value::String(s))) => Some(Datum::Str(s.clone())),
            (Kind::Int | Kind::Long, Some(Value::Number(n))) if n.as_i64().is_some() => {
                n.as_i64().map(Datum::Int)
            }
            (Kind::Str, _) => as_string(json, &path())?.map(Datum::Str),
            (Kind::Int | Kind::Long, _) => as_integer(json, &path())?.map(Datum::Int),
            (Kind::Ts, _) => as_timestamp(json, &path())?.map(Datum::Ts),
        })
    }
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

/// A field's typed value, before conversion to the field's Avro type.
#[derive(Debug, Clone, PartialEq)]
enum Datum {
    Str(String),
    Int(i64),
    /// Milliseconds since the epoch.
    Ts(i64),
}

impl Datum {
    fn kind(&self) -> Kind {
        match self {
            Datum::Str(_) => Kind::Str,
            Datum::Int(_) => Kind::Long,
            Datum::Ts(_) => Kind::Ts,
        }
    }
}

fn missing(field: &str) -> MappingError {
    MappingError::MissingField {
        field: field.to_owned(),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(field: &str, expected: &'static str, found: &Value) -> MappingError {
    MappingError::WrongType {
        field: field.to_owned(),
        expected,
        found: json_type(found),
    }
}

/// An optional JSON object: absent and null are `None`, anything but an object is an error.
fn optional_object<'v>(
    value: Option<&'v Value>,
    path: &str,
) -> Result<Option<&'v Map<String, Value>>, MappingError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(wrong_type(path, "an object", other)),
    }
}

/// A string field. Numbers and booleans are taken as their JSON text: Zoom sends ids as numbers
/// in some events and strings in others, and a string field loses nothing by holding them.
fn as_string(value: Option<&Value>, path: &str) -> Result<Option<String>, MappingError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(wrong_type(path, "a string", other)),
    }
}

fn as_integer(value: Option<&Value>, path: &str) -> Result<Option<i64>, MappingError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| wrong_type(path, "an integer", &Value::Number(n.clone()))),
        Some(other) => Err(wrong_type(path, "an integer", other)),
    }
}

/// A timestamp: an RFC 3339 string (as Zoom's `start_time`), or a number of milliseconds (as
/// `event_ts`). An empty string is absent: Zoom sends `""` for times that do not apply.
fn as_timestamp(value: Option<&Value>, path: &str) -> Result<Option<i64>, MappingError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => {
            parse_rfc3339_millis(s)
                .map(Some)
                .ok_or_else(|| MappingError::BadTimestamp {
                    field: path.to_owned(),
                    value: s.clone(),
                })
        }
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
            wrong_type(
                path,
                "an integer or an RFC 3339 timestamp",
                &Value::Number(n.clone()),
            )
        }),
        Some(other) => Err(wrong_type(path, "an RFC 3339 timestamp", other)),
    }
}

fn to_json_text(value: Option<&Value>) -> Option<Datum> {
    match value {
        None | Some(Value::Null) => None,
        // serde_json::to_string writes into a Vec directly; Display goes through fmt::Formatter.
        Some(v) => serde_json::to_string(v).ok().map(Datum::Str),
    }
}

/// `url` with `access_token=<token>` added to its query, as Pipedream's
/// `download_url_with_token` (which always used `?`, wrong for a URL that has a query).
fn url_with_token(url: &str, token: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}access_token={}", percent_encode(token))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0F)]));
        }
    }
    out
}

/// Milliseconds since the Unix epoch of an RFC 3339 date-time
/// (`2021-07-13T21:44:51Z`, `2021-07-13T14:44:51.250-07:00`); `None` if it is not one.
pub(crate) fn parse_rfc3339_millis(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let expect = |at: usize, allowed: &[u8]| b.get(at).is_some_and(|c| allowed.contains(c));
    let year = digits(0, 4)?;
    let month = digits(5, 2)?;
    let day = digits(8, 2)?;
    let hour = digits(11, 2)?;
    let minute = digits(14, 2)?;
    let second = digits(17, 2)?;
    if !(expect(4, b"-")
        && expect(7, b"-")
        && expect(10, b"Tt ")
        && expect(13, b":")
        && expect(16, b":"))
    {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut at = 19;
    let mut millis = 0;
    if expect(at, b".") {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return None;
        }
        // Milliseconds: the first three digits, right-padded ("25" is 250 ms).
        millis = format!("{:0<3}", &text[start..at.min(start + 3)])
            .parse()
            .ok()?;
    }
    let offset_minutes = match b.get(at)? {
        b'Z' | b'z' if at + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if at + 6 == b.len() && expect(at + 3, b":") => {
            let (h, m) = (digits(at + 1, 2)?, digits(at + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc3339_timestamps_become_epoch_millis() {
        assert_eq!(parse_rfc3339_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_millis("2021-07-13T21:44:51Z"),
            Some(1_626_212_691_000)
        );
        assert_eq!(
            parse_rfc3339_millis("2021-07-13T14:44:51-07:00"),
            Some(1_626_212_691_000)
        );
        assert_eq!(
            parse_rfc3339_millis("2021-07-14T03:14:51+05:30"),
            Some(1_626_212_691_000)
        );
        assert_eq!(
            parse_rfc3339_millis("2021-07-13t21:44:51.25z"),
            Some(1_626_212_691_250)
        );
        assert_eq!(
            parse_rfc3339_millis("2021-07-13T21:44:51.123456Z"),
            Some(1_626_212_691_123)
        );
        assert_eq!(parse_rfc3339_millis("1969-12-31T23:59:59Z"), Some(-1_000));
        assert_eq!(
            parse_rfc3339_millis("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000)
        );
        for bad in [
            "",
            "2021-07-13",
            "2021-07-13T21:44:51",
            "2021-07-13T21:44:51ZZ",
            "2021-13-13T21:44:51Z",
            "2023-02-29T00:00:00Z",
            "2021-07-13T24:00:00Z",
            "2021-07-13T21:44:51.Z",
            "2021-07-13T21:44:51+0700",
            "2021/07/13T21:44:51Z",
            "２021-07-13T21:44:51Z",
        ] {
            assert_eq!(parse_rfc3339_millis(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn download_urls_get_the_token_in_their_query() {
        assert_eq!(
            url_with_token("https://x/d/1", "a.b-c_d"),
            "https://x/d/1?access_token=a.b-c_d"
        );
        assert_eq!(
            url_with_token("https://x/d/1?type=mp4", "t"),
            "https://x/d/1?type=mp4&access_token=t"
        );
        assert_eq!(percent_encode("a b/c+d"), "a%20b%2Fc%2Bd");
    }

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

    #[test]
    fn json_values_are_read_leniently_only_where_nothing_is_lost() {
        assert_eq!(as_string(Some(&json!(12)), "p"), Ok(Some("12".into())));
        assert_eq!(as_string(Some(&json!(null)), "p"), Ok(None));
        assert_eq!(
            as_string(Some(&json!({})), "p"),
            Err(MappingError::WrongType {
                field: "p".into(),
                expected: "a string",
                found: "an object"
            })
        );
        assert_eq!(as_integer(Some(&json!(60)), "p"), Ok(Some(60)));
        assert!(as_integer(Some(&json!("60")), "p").is_err());
        assert!(as_integer(Some(&json!(1.5)), "p").is_err());
        assert_eq!(as_timestamp(Some(&json!("")), "p"), Ok(None));
        assert_eq!(
            as_timestamp(Some(&json!(1626230691572_i64)), "p"),
            Ok(Some(1626230691572))
        );
        assert_eq!(
            as_timestamp(Some(&json!("yesterday")), "p"),
            Err(MappingError::BadTimestamp {
                field: "p".into(),
                value: "yesterday".into()
            })
        );
    }

    #[test]
    fn reason_codes_are_a_bounded_set() {
        let errors = [
            MappingError::NotForSource {
                source_name: "s".into(),
                reason: "r".into(),
            },
            missing("f"),
            wrong_type("f", "a string", &json!([])),
            MappingError::BadTimestamp {
                field: "f".into(),
                value: "v".into(),
            },
            MappingError::NoRecordingFiles {
                event: "recording.completed".into(),
            },
            MappingError::SchemaMismatch {
                field: "f".into(),
                reason: "r".into(),
            },
        ];
        let codes: Vec<_> = errors.iter().map(MappingError::reason_code).collect();
        assert_eq!(codes, MappingError::REASON_CODES);
        assert_eq!(errors[2].to_string(), "f is an array, expected a string");
    }
}
