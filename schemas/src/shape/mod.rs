//! The record shapes zoomstream produces: which schema record selects each, which events each
//! can carry, the fields each can fill (their tables are in `fields`), and whether an operator's
//! `.avsc` fits a shape (`check_schema`). The sources file checks sources against shapes; the
//! mapping builds records by them.

use std::fmt;

use apache_avro::schema::{RecordField, Schema};
use apache_avro::types::Value as AvroValue;

mod fields;

pub(crate) use fields::{FieldDef, Kind, Src};
use fields::{
    ACCOUNT, CHAT_MESSAGE, COMMON, ENVELOPE, MEETING, MEETING_SUMMARY, PARTICIPANT, PHONE_CALL,
    RECORDING_FILE, USER, WEBINAR,
};

/// The record shapes zoomstream can produce; a source's shape is decided by the full name of its
/// schema's record, and decides how a webhook becomes records (see [`crate::mapping`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// `zoomstream.RecordingFile`: one record per recording file.
    RecordingFile,
    /// `zoomstream.Meeting`: one record per meeting event.
    Meeting,
    /// `zoomstream.Participant`: one record per participant event of a meeting or webinar.
    Participant,
    /// `zoomstream.Webinar`: one record per webinar event.
    Webinar,
    /// `zoomstream.User`: one record per user event.
    User,
    /// `zoomstream.Account`: one record per account event.
    Account,
    /// `zoomstream.Envelope`: any webhook, kept whole (custom sources).
    Envelope,
    /// `zoomstream.MeetingSummary`: one record per AI Companion summary event.
    MeetingSummary,
    /// `zoomstream.ChatMessage`: one record per in-meeting or webinar chat message.
    ChatMessage,
    /// `zoomstream.PhoneCall`: one record per callee/caller event of a Zoom Phone call.
    PhoneCall,
}

/// The recording events whose payload lists `recording_files`.
const RECORDING_FILE_EVENTS: [&str; 2] = ["recording.completed", "recording.transcript_completed"];

impl Shape {
    /// Every shape.
    pub const ALL: [Shape; 10] = [
        Shape::RecordingFile,
        Shape::Meeting,
        Shape::Participant,
        Shape::Webinar,
        Shape::User,
        Shape::Account,
        Shape::Envelope,
        Shape::MeetingSummary,
        Shape::ChatMessage,
        Shape::PhoneCall,
    ];

    /// The full name of the schema record that selects this shape.
    pub fn record_name(self) -> &'static str {
        match self {
            Shape::RecordingFile => "zoomstream.RecordingFile",
            Shape::Meeting => "zoomstream.Meeting",
            Shape::Participant => "zoomstream.Participant",
            Shape::Webinar => "zoomstream.Webinar",
            Shape::User => "zoomstream.User",
            Shape::Account => "zoomstream.Account",
            Shape::Envelope => "zoomstream.Envelope",
            Shape::MeetingSummary => "zoomstream.MeetingSummary",
            Shape::ChatMessage => "zoomstream.ChatMessage",
            Shape::PhoneCall => "zoomstream.PhoneCall",
        }
    }

    /// The shape selected by a schema record's full name.
    pub fn from_record_name(full_name: &str) -> Option<Shape> {
        Shape::ALL
            .into_iter()
            .find(|s| s.record_name() == full_name)
    }

    /// The file name of the shipped schema of this shape (next to the shipped sources file).
    pub fn schema_file(self) -> &'static str {
        match self {
            Shape::RecordingFile => "recording_file.avsc",
            Shape::Meeting => "meeting.avsc",
            Shape::Participant => "participant.avsc",
            Shape::Webinar => "webinar.avsc",
            Shape::User => "user.avsc",
            Shape::Account => "account.avsc",
            Shape::Envelope => "envelope.avsc",
            Shape::MeetingSummary => "meeting_summary.avsc",
            Shape::ChatMessage => "chat_message.avsc",
            Shape::PhoneCall => "phone_call.avsc",
        }
    }

    /// The text of the shipped schema of this shape, compiled in (for tools and tests).
    pub fn builtin_schema(self) -> &'static str {
        match self {
            Shape::RecordingFile => include_str!("../../recording_file.avsc"),
            Shape::Meeting => include_str!("../../meeting.avsc"),
            Shape::Participant => include_str!("../../participant.avsc"),
            Shape::Webinar => include_str!("../../webinar.avsc"),
            Shape::User => include_str!("../../user.avsc"),
            Shape::Account => include_str!("../../account.avsc"),
            Shape::Envelope => include_str!("../../envelope.avsc"),
            Shape::MeetingSummary => include_str!("../../meeting_summary.avsc"),
            Shape::ChatMessage => include_str!("../../chat_message.avsc"),
            Shape::PhoneCall => include_str!("../../phone_call.avsc"),
        }
    }

    /// Whether records of this shape can be made from the wire event `wire_event`: the shape's
    /// required fields exist in that event's payload. Decided by name, so it also applies to
    /// `extra_events` the catalogue lacks (e.g. `meeting.participant_left`).
    pub fn can_carry(self, wire_event: &str) -> bool {
        let Some((resource, action)) = wire_event.split_once('.') else {
            return self == Shape::Envelope;
        };
        if self.sets_aside(wire_event) {
            return false;
        }
        match self {
            Shape::RecordingFile => RECORDING_FILE_EVENTS.contains(&wire_event),
            Shape::Meeting => resource == "meeting",
            Shape::Webinar => resource == "webinar",
            Shape::Participant => {
                matches!(resource, "meeting" | "webinar")
                    && (action.starts_with("participant_") || action.starts_with("sharing_"))
            }
            Shape::User => resource == "user",
            Shape::Account => resource == "account",
            Shape::Envelope => true,
            Shape::MeetingSummary => {
                resource == "meeting"
                    && (action.starts_with("summary_") || action == "aic_transcript_completed")
            }
            Shape::ChatMessage => {
                matches!(resource, "meeting" | "webinar") && action.starts_with("chat_message_")
            }
            Shape::PhoneCall => {
                resource == "phone"
                    && (action.starts_with("callee_") || action.starts_with("caller_"))
                    && !action.ends_with("call_log_completed")
            }
        }
    }

    /// Whether `wire_event` is of this shape's resource but has no object the shape can read
    /// (AI summaries, chat messages and RTMS events carry `meeting_id`/`meeting_uuid`, not the
    /// meeting object; call logs list calls): a wildcard such as `meeting.*` leaves it out rather
    /// than dead-lettering it.
    pub fn sets_aside(self, wire_event: &str) -> bool {
        const OTHER_OBJECTS: [&str; 4] = ["summary_", "aic_", "chat_message_", "rtms_"];
        let Some((resource, action)) = wire_event.split_once('.') else {
            return false;
        };
        match self {
            Shape::Meeting if resource == "meeting" => {
                OTHER_OBJECTS.iter().any(|p| action.starts_with(p))
            }
            Shape::Webinar if resource == "webinar" => {
                OTHER_OBJECTS.iter().any(|p| action.starts_with(p))
            }
            // Call logs list calls: `phone.callee_*` into the call shape leaves them out.
            Shape::PhoneCall => resource == "phone" && action.ends_with("call_log_completed"),
            _ => false,
        }
    }

    /// What the shape carries, in words, for error messages.
    pub(crate) fn carries(self) -> &'static str {
        match self {
            Shape::RecordingFile => "recording.completed and recording.transcript_completed",
            Shape::Meeting => "meeting.* events but summaries, chat messages and RTMS",
            Shape::Webinar => "webinar.* events but chat messages and RTMS",
            Shape::Participant => {
                "meeting.participant_*, meeting.sharing_*, webinar.participant_* and webinar.sharing_* events"
            }
            Shape::User => "user.* events",
            Shape::Account => "account.* events",
            Shape::Envelope => "any event",
            Shape::MeetingSummary => "meeting.summary_* and meeting.aic_transcript_completed",
            Shape::ChatMessage => "meeting.chat_message_* and webinar.chat_message_* events",
            Shape::PhoneCall => "phone.callee_* and phone.caller_* events but the call logs",
        }
    }

    /// The `[source.options]` keys this shape understands.
    pub(crate) fn option_names(self) -> &'static [&'static str] {
        match self {
            Shape::RecordingFile => &[
                "include_audio",
                "include_chat",
                "file_types",
                "meeting_ids",
                "webinar_ids",
                "hosted_by_me",
            ],
            Shape::Meeting => &["meeting_ids", "hosted_by_me"],
            Shape::Webinar => &["webinar_ids", "hosted_by_me"],
            Shape::Participant | Shape::Envelope => &["meeting_ids", "webinar_ids", "hosted_by_me"],
            Shape::MeetingSummary => &["meeting_ids", "hosted_by_me"],
            Shape::ChatMessage => &["meeting_ids", "webinar_ids"],
            Shape::User | Shape::Account | Shape::PhoneCall => &[],
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.record_name();
        f.write_str(name.strip_prefix("zoomstream.").unwrap_or(name))
    }
}

fn fields_of(shape: Shape) -> &'static [FieldDef] {
    match shape {
        Shape::RecordingFile => RECORDING_FILE,
        Shape::Meeting => MEETING,
        Shape::Webinar => WEBINAR,
        Shape::Participant => PARTICIPANT,
        Shape::User => USER,
        Shape::Account => ACCOUNT,
        Shape::Envelope => ENVELOPE,
        Shape::MeetingSummary => MEETING_SUMMARY,
        Shape::ChatMessage => CHAT_MESSAGE,
        Shape::PhoneCall => PHONE_CALL,
    }
}

/// The field `name` of `shape`, when the shape can fill it.
pub(crate) fn field_def(shape: Shape, name: &str) -> Option<&'static FieldDef> {
    COMMON
        .iter()
        .chain(fields_of(shape))
        .find(|def| def.name == name)
}

/// The names of the fields `shape` can fill, common fields first (for docs and tests).
pub fn shape_fields(shape: Shape) -> Vec<&'static str> {
    COMMON
        .iter()
        .chain(fields_of(shape))
        .map(|def| def.name)
        .collect()
}

/// Where each field of a source's schema comes from, in schema order (`None`: not a field of
/// the shape, so its default). Made once when the sources file is loaded, so that building a
/// record does not search the shape's field table by name for every field of every record.
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldPlan(Vec<Option<&'static FieldDef>>);

impl FieldPlan {
    pub(crate) fn new(shape: Shape, schema: &Schema) -> FieldPlan {
        match schema {
            Schema::Record(record) => FieldPlan(
                record
                    .fields
                    .iter()
                    .map(|field| field_def(shape, &field.name))
                    .collect(),
            ),
            _ => FieldPlan::default(),
        }
    }

    /// How many schema fields the plan was made for.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Where schema field `index` comes from; `None` when it is not a field of the shape (or
    /// past the plan's end).
    pub(crate) fn get(&self, index: usize) -> Option<&'static FieldDef> {
        self.0.get(index).copied().flatten()
    }
}

/// The problems that would make records of `shape` not fit `schema`, as (field, reason); empty
/// when the schema works. Used when the sources file is loaded.
pub(crate) fn check_schema(shape: Shape, schema: &Schema) -> Vec<(String, String)> {
    let Schema::Record(record) = schema else {
        return vec![(
            "(root)".to_owned(),
            "the schema must be a record".to_owned(),
        )];
    };
    let mut problems = Vec::new();
    for field in &record.fields {
        let Some(def) = field_def(shape, &field.name) else {
            if default_value(field).is_none() {
                let reason =
                    format!("is not a field of the {shape} shape and has no (valid) default");
                problems.push((field.name.clone(), reason));
            }
            continue;
        };
        let target = match &field.schema {
            Schema::Union(union) => match nullable_parts(union.variants()) {
                Some((_, _, other)) => other,
                None => {
                    problems.push((
                        field.name.clone(),
                        "is a union other than [\"null\", T]".to_owned(),
                    ));
                    continue;
                }
            },
            other => other,
        };
        if !def.kind.fits(target) {
            let reason = format!(
                "is {}, but the {shape} shape gives {} (use {})",
                describe_schema(target),
                def.kind.describe(),
                def.kind.expected()
            );
            problems.push((field.name.clone(), reason));
        }
    }
    problems
}

/// The indexes of `null` and of the other branch, and that branch, of a `["null", T]` union.
pub(crate) fn nullable_parts(variants: &[Schema]) -> Option<(u32, u32, &Schema)> {
    match variants {
        [Schema::Null, other] if !matches!(other, Schema::Null) => Some((0, 1, other)),
        [other, Schema::Null] if !matches!(other, Schema::Null) => Some((1, 0, other)),
        _ => None,
    }
}

/// The field's default as an Avro value of its type.
pub(crate) fn default_value(field: &RecordField) -> Option<AvroValue> {
    let json = field.default.clone()?;
    AvroValue::try_from(json).ok()?.resolve(&field.schema).ok()
}

/// A schema's type in words, for error messages.
pub(crate) fn describe_schema(schema: &Schema) -> String {
    match schema {
        Schema::TimestampMillis => "timestamp-millis".to_owned(),
        other => format!("{:?}", apache_avro::schema::SchemaKind::from(other)).to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_round_trip_their_record_names() {
        for shape in Shape::ALL {
            assert_eq!(Shape::from_record_name(shape.record_name()), Some(shape));
            let schema = Schema::parse_str(shape.builtin_schema()).unwrap();
            assert_eq!(
                schema.name().map(|n| n.fullname(None)).as_deref(),
                Some(shape.record_name())
            );
        }
        assert_eq!(Shape::RecordingFile.to_string(), "RecordingFile");
        assert!(Shape::Envelope.can_carry("anything"));
        assert!(!Shape::Meeting.can_carry("webinar.started"));
        assert!(Shape::Participant.can_carry("meeting.participant_left"));
    }

    #[test]
    fn the_shipped_schemas_have_exactly_their_shapes_fields() {
        for shape in Shape::ALL {
            let schema = Schema::parse_str(shape.builtin_schema()).unwrap();
            assert!(
                check_schema(shape, &schema).is_empty(),
                "{shape}: {:?}",
                check_schema(shape, &schema)
            );
            let Schema::Record(record) = &schema else {
                panic!("{shape} is not a record")
            };
            let names: Vec<&str> = record.fields.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(names, shape_fields(shape), "{shape}");
            for field in &record.fields {
                assert!(field.doc.is_some(), "{shape}.{} has a doc", field.name);
            }
        }
    }
}
