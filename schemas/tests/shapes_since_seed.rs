//! The shapes made for the families added since the seed (meeting summaries, chat messages,
//! phone calls), fed the documented payloads of tests/fixtures/zoom through the shipped sources.

use std::path::PathBuf;

use serde_json::Value;
use zoomstream_schemas::avro::{self, Encoder};
use zoomstream_schemas::catalogue::{classify, UserIdentity};
use zoomstream_schemas::mapping::{records, RawEvent};
use zoomstream_schemas::sources::{self, SourcesFile};
use zoomstream_schemas::{raw, App};

fn shipped() -> SourcesFile {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    sources::load(&dir.join("sources.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/zoom")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The one record `source` makes of `fixture` for `app`, as JSON, checked through both framings.
fn record_of(file: &SourcesFile, source: &str, app: App, name: &str) -> (Value, Value) {
    let source = file.get(source).unwrap();
    let envelope = fixture(name);
    let names = classify(app, &envelope, &UserIdentity::default());
    let matched = source.select(app, &names).expect("the source takes it");
    let event_id = raw::event_id(app, &envelope);
    let raw_event = RawEvent {
        app,
        envelope: &envelope,
        event_id: &event_id,
        received_at_ms: None,
    };
    let out = records(source, &raw_event, matched).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.len(), 1);
    for encoder in [
        Encoder::single_object(&source.schema),
        Encoder::confluent(&source.schema, 3),
    ] {
        let bytes = encoder.encode(&out[0].value).unwrap();
        assert_eq!(avro::decode(&bytes, &source.schema).unwrap(), out[0].value);
    }
    let object: Value = envelope["payload"]["object"].clone();
    let json = avro::to_json(&out[0].value);
    let kept: Value = serde_json::from_str(json["object_json"].as_str().unwrap()).unwrap();
    assert_eq!(kept, object, "the object is kept whole");
    (json, object)
}

#[test]
fn a_meeting_summary_record_has_the_meeting_and_the_summary() {
    let file = shipped();
    for (source, app) in [
        ("meeting-summaries", App::ZOOM),
        ("admin-meeting-summaries", App::ZOOM_ADMIN),
    ] {
        let (json, object) = record_of(&file, source, app, "meeting.summary_completed.json");
        assert_eq!(json["event"], "meeting.summary_completed");
        assert_eq!(json["meeting_id"], "1234567890", "numeric id as a string");
        assert_eq!(json["meeting_uuid"], object["meeting_uuid"]);
        assert_eq!(json["meeting_host_email"], "user@example.com");
        assert_eq!(json["summary_title"], "Quarterly planning");
        assert_eq!(json["meeting_start_time"], 1_626_212_691_000_i64);
        assert_eq!(json["summary_created_time"], 1_626_216_360_000_i64);
    }
}

#[test]
fn a_chat_message_record_has_sender_recipient_and_text() {
    let file = shipped();
    let (json, object) = record_of(
        &file,
        "chat-messages",
        App::ZOOM,
        "meeting.chat_message_sent.json",
    );
    let message = &object["chat_message"];
    assert_eq!(json["meeting_id"], "1234567890");
    assert_eq!(json["message_id"], message["message_id"]);
    assert_eq!(json["sender_name"], "Jill Chill");
    assert_eq!(json["recipient_type"], "everyone");
    assert_eq!(json["message_content"], "Agenda is in the doc");
    assert_eq!(json["date_time"], 1_626_213_000_000_i64);
}

#[test]
fn a_phone_call_record_has_both_parties() {
    let file = shipped();
    for (source, app) in [
        ("phone-calls", App::ZOOM),
        ("admin-phone-calls", App::ZOOM_ADMIN),
    ] {
        let (json, _) = record_of(&file, source, app, "phone.callee_ringing.json");
        assert_eq!(json["call_id"], "6998252113337041462");
        assert_eq!(json["caller_number"], "+12058945752");
        assert_eq!(
            json["callee_extension"], "1002",
            "a number kept as its text"
        );
        assert_eq!(json["callee_user_id"], "x1yCzABCDEfg23HiJKl4mN");
        assert_eq!(json["ringing_start_time"], 1_626_217_200_000_i64);
        assert_eq!(json["call_end_time"], Value::Null);
    }
    // Call logs list calls: the call shape does not take them, the envelope source does.
    let names = classify(
        App::ZOOM,
        &serde_json::json!({"event": "phone.callee_call_log_completed"}),
        &UserIdentity::default(),
    );
    assert!(file.get("phone-calls").unwrap().matches(&names).is_none());
    assert!(file.get("phone-events").unwrap().matches(&names).is_some());
}
