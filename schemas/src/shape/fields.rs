//! The field tables of the shapes: every field a shape can fill, what it holds and where its
//! value comes from in the webhook. Data only: [`super::Shape`] picks its table, the mapping
//! reads values by it.

use apache_avro::Schema;

/// What a field of a shape holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    Int,
    Long,
    Ts,
}

impl Kind {
    /// Whether a field of this kind can be stored in `schema` (a nullable field's other branch).
    pub(crate) fn fits(self, schema: &Schema) -> bool {
        matches!(
            (self, schema),
            (Kind::Str, Schema::String)
                | (Kind::Int, Schema::Int | Schema::Long)
                | (Kind::Long, Schema::Long)
                | (Kind::Ts, Schema::TimestampMillis | Schema::Long)
        )
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::Int => "an int",
            Kind::Long => "a long",
            Kind::Ts => "a timestamp",
        }
    }

    /// The schema type to write instead, for error messages.
    pub(crate) fn expected(self) -> &'static str {
        match self {
            Kind::Str => "\"string\"",
            Kind::Int => "\"int\" or \"long\"",
            Kind::Long => "\"long\"",
            Kind::Ts => "{\"type\": \"long\", \"logicalType\": \"timestamp-millis\"}",
        }
    }
}

/// Where a field's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Src {
    EventId,
    Event,
    WireEvent,
    App,
    EventTs,
    ReceivedAt,
    Payload(&'static str),
    Object(&'static str),
    Participant(&'static str),
    /// `payload.object.<outer>.<inner>` (a chat message's fields, a call's parties).
    Nested(&'static str, &'static str),
    File(&'static str),
    ObjectJson,
    /// `payload.object` on `recording.transcript_completed` only (Pipedream's transcript source
    /// emits the meeting with the file); the other recording events would repeat it per file.
    TranscriptObjectJson,
    /// The recording file being mapped, whole.
    FileJson,
    OldObjectJson,
    PayloadJson,
    BodyJson,
    DownloadToken,
    DownloadUrlWithToken,
}

/// One field a shape can fill.
#[derive(Debug)]
pub(crate) struct FieldDef {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) src: Src,
}

const fn f(name: &'static str, kind: Kind, src: Src) -> FieldDef {
    FieldDef { name, kind, src }
}

use Kind::{Int, Long, Str, Ts};

pub(super) static COMMON: &[FieldDef] = &[
    f("event_id", Str, Src::EventId),
    f("event", Str, Src::Event),
    f("wire_event", Str, Src::WireEvent),
    f("app", Str, Src::App),
    f("event_ts", Ts, Src::EventTs),
    f("account_id", Str, Src::Payload("account_id")),
    f("received_at", Ts, Src::ReceivedAt),
];

pub(super) static RECORDING_FILE: &[FieldDef] = &[
    f("meeting_id", Str, Src::Object("id")),
    f("meeting_uuid", Str, Src::Object("uuid")),
    f("topic", Str, Src::Object("topic")),
    f("host_id", Str, Src::Object("host_id")),
    f("host_email", Str, Src::Object("host_email")),
    f("start_time", Ts, Src::Object("start_time")),
    f("file_id", Str, Src::File("id")),
    f("file_type", Str, Src::File("file_type")),
    f("file_extension", Str, Src::File("file_extension")),
    f("file_size", Long, Src::File("file_size")),
    f("status", Str, Src::File("status")),
    f("recording_type", Str, Src::File("recording_type")),
    f("recording_start", Ts, Src::File("recording_start")),
    f("recording_end", Ts, Src::File("recording_end")),
    f("play_url", Str, Src::File("play_url")),
    f("download_url", Str, Src::File("download_url")),
    f("download_token", Str, Src::DownloadToken),
    f("download_url_with_token", Str, Src::DownloadUrlWithToken),
    f("file_json", Str, Src::FileJson),
    f("object_json", Str, Src::TranscriptObjectJson),
];

/// The fields meetings and webinars share (their ids are named per kind).
macro_rules! scheduled {
    ($id:literal, $uuid:literal) => {
        &[
            f($id, Str, Src::Object("id")),
            f($uuid, Str, Src::Object("uuid")),
            f("host_id", Str, Src::Object("host_id")),
            f("topic", Str, Src::Object("topic")),
            f("type", Int, Src::Object("type")),
            f("start_time", Ts, Src::Object("start_time")),
            f("end_time", Ts, Src::Object("end_time")),
            f("timezone", Str, Src::Object("timezone")),
            f("duration", Int, Src::Object("duration")),
            f("operator", Str, Src::Payload("operator")),
            f("operator_id", Str, Src::Payload("operator_id")),
            f("operation", Str, Src::Payload("operation")),
            f("object_json", Str, Src::ObjectJson),
            f("old_object_json", Str, Src::OldObjectJson),
        ]
    };
}

pub(super) static MEETING: &[FieldDef] = scheduled!("meeting_id", "meeting_uuid");
pub(super) static WEBINAR: &[FieldDef] = scheduled!("webinar_id", "webinar_uuid");

pub(super) static PARTICIPANT: &[FieldDef] = &[
    f("meeting_id", Str, Src::Object("id")),
    f("meeting_uuid", Str, Src::Object("uuid")),
    f("topic", Str, Src::Object("topic")),
    f("host_id", Str, Src::Object("host_id")),
    f("user_id", Str, Src::Participant("user_id")),
    f("user_name", Str, Src::Participant("user_name")),
    f("participant_id", Str, Src::Participant("id")),
    f(
        "participant_uuid",
        Str,
        Src::Participant("participant_uuid"),
    ),
    f(
        "participant_user_id",
        Str,
        Src::Participant("participant_user_id"),
    ),
    f("email", Str, Src::Participant("email")),
    f("registrant_id", Str, Src::Participant("registrant_id")),
    f("customer_key", Str, Src::Participant("customer_key")),
    f("phone_number", Str, Src::Participant("phone_number")),
    f("join_time", Ts, Src::Participant("join_time")),
    f("leave_time", Ts, Src::Participant("leave_time")),
    f("leave_reason", Str, Src::Participant("leave_reason")),
    f("object_json", Str, Src::ObjectJson),
];

pub(super) static USER: &[FieldDef] = &[
    f("user_id", Str, Src::Object("id")),
    f("email", Str, Src::Object("email")),
    f("first_name", Str, Src::Object("first_name")),
    f("last_name", Str, Src::Object("last_name")),
    f("display_name", Str, Src::Object("display_name")),
    f("type", Int, Src::Object("type")),
    f("status", Str, Src::Object("status")),
    f("date_time", Ts, Src::Object("date_time")),
    f("operator", Str, Src::Payload("operator")),
    f("operator_id", Str, Src::Payload("operator_id")),
    f("operation", Str, Src::Payload("operation")),
    f("object_json", Str, Src::ObjectJson),
    f("old_object_json", Str, Src::OldObjectJson),
];

pub(super) static ACCOUNT: &[FieldDef] = &[
    f("object_id", Str, Src::Object("id")),
    f("account_name", Str, Src::Object("account_name")),
    f("account_alias", Str, Src::Object("account_alias")),
    f("owner_id", Str, Src::Object("owner_id")),
    f("owner_email", Str, Src::Object("owner_email")),
    f("created_at", Ts, Src::Object("created_at")),
    f("operator", Str, Src::Payload("operator")),
    f("operator_id", Str, Src::Payload("operator_id")),
    f("operation", Str, Src::Payload("operation")),
    f("object_json", Str, Src::ObjectJson),
    f("old_object_json", Str, Src::OldObjectJson),
];

pub(super) static ENVELOPE: &[FieldDef] = &[
    f("object_id", Str, Src::Object("id")),
    f("payload_json", Str, Src::PayloadJson),
    f("body_json", Str, Src::BodyJson),
];

pub(super) static MEETING_SUMMARY: &[FieldDef] = &[
    f("meeting_id", Str, Src::Object("meeting_id")),
    f("meeting_uuid", Str, Src::Object("meeting_uuid")),
    f("meeting_host_id", Str, Src::Object("meeting_host_id")),
    f("meeting_host_email", Str, Src::Object("meeting_host_email")),
    f("meeting_topic", Str, Src::Object("meeting_topic")),
    f("meeting_start_time", Ts, Src::Object("meeting_start_time")),
    f("meeting_end_time", Ts, Src::Object("meeting_end_time")),
    f("summary_title", Str, Src::Object("summary_title")),
    f("summary_start_time", Ts, Src::Object("summary_start_time")),
    f("summary_end_time", Ts, Src::Object("summary_end_time")),
    f(
        "summary_created_time",
        Ts,
        Src::Object("summary_created_time"),
    ),
    f(
        "summary_last_modified_time",
        Ts,
        Src::Object("summary_last_modified_time"),
    ),
    f("operator", Str, Src::Payload("operator")),
    f("operator_id", Str, Src::Payload("operator_id")),
    f("object_json", Str, Src::ObjectJson),
];

/// A field of `payload.object.chat_message`.
const fn chat(name: &'static str, kind: Kind) -> FieldDef {
    f(name, kind, Src::Nested("chat_message", name))
}

pub(super) static CHAT_MESSAGE: &[FieldDef] = &[
    f("meeting_id", Str, Src::Object("id")),
    f("meeting_uuid", Str, Src::Object("uuid")),
    chat("message_id", Str),
    chat("date_time", Ts),
    chat("sender_name", Str),
    chat("sender_email", Str),
    chat("sender_type", Str),
    chat("sender_session_id", Str),
    chat("recipient_name", Str),
    chat("recipient_email", Str),
    chat("recipient_type", Str),
    chat("recipient_session_id", Str),
    chat("message_content", Str),
    f("operator", Str, Src::Payload("operator")),
    f("operator_id", Str, Src::Payload("operator_id")),
    f("object_json", Str, Src::ObjectJson),
];

pub(super) static PHONE_CALL: &[FieldDef] = &[
    f("call_id", Str, Src::Object("call_id")),
    f("caller_number", Str, Src::Nested("caller", "phone_number")),
    f("caller_name", Str, Src::Nested("caller", "user_name")),
    f(
        "caller_extension",
        Str,
        Src::Nested("caller", "extension_number"),
    ),
    f("caller_user_id", Str, Src::Nested("caller", "user_id")),
    f(
        "caller_connection_type",
        Str,
        Src::Nested("caller", "connection_type"),
    ),
    f("callee_number", Str, Src::Nested("callee", "phone_number")),
    f("callee_name", Str, Src::Nested("callee", "user_name")),
    f(
        "callee_extension",
        Str,
        Src::Nested("callee", "extension_number"),
    ),
    f("callee_user_id", Str, Src::Nested("callee", "user_id")),
    f(
        "callee_connection_type",
        Str,
        Src::Nested("callee", "connection_type"),
    ),
    f("ringing_start_time", Ts, Src::Object("ringing_start_time")),
    f(
        "connected_start_time",
        Ts,
        Src::Object("connected_start_time"),
    ),
    f("answer_start_time", Ts, Src::Object("answer_start_time")),
    f("call_end_time", Ts, Src::Object("call_end_time")),
    f("handup_result", Str, Src::Object("handup_result")),
    f("object_json", Str, Src::ObjectJson),
];
