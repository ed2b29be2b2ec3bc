//! Zoom's documented payloads (tests/fixtures, copied from shared/fixtures/zoom) through the
//! shipped sources file: classification, source selection, records, and their encodings.

use std::path::{Path, PathBuf};

use apache_avro::types::Value as AvroValue;
use serde_json::{json, Value};
use zoomstream_schemas::avro::{self, Encoder};
use zoomstream_schemas::catalogue::{classify, UserIdentity};
use zoomstream_schemas::mapping::{records, MappingError, RawEvent, SourceRecord};
use zoomstream_schemas::sources::{self, Source, SourcesFile};
use zoomstream_schemas::{raw, App};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped() -> SourcesFile {
    sources::load(&crate_dir().join("sources.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn fixture(name: &str) -> Value {
    let path = crate_dir().join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A one-source file of our own, next to the shipped schemas.
fn custom(toml: &str) -> Source {
    let file = sources::parse(toml, &crate_dir()).unwrap_or_else(|e| panic!("{e}"));
    file.sources.into_iter().next().unwrap()
}

fn map(
    source: &Source,
    envelope: &Value,
    matched: &str,
) -> Result<Vec<SourceRecord>, MappingError> {
    let event_id = raw::event_id(source.app, envelope);
    let raw = RawEvent {
        app: source.app,
        envelope,
        event_id: &event_id,
        received_at_ms: Some(1_700_000_000_000),
    };
    records(source, &raw, matched)
}

/// The record as JSON (unions unwrapped), after checking it against the schema and through a
/// round trip of both encodings.
fn checked_json(source: &Source, record: &SourceRecord) -> Value {
    assert!(
        record.value.validate(&source.schema),
        "{} validates",
        source.name
    );
    for encoder in [
        Encoder::single_object(&source.schema),
        Encoder::confluent(&source.schema, 7),
    ] {
        let bytes = encoder.encode(&record.value).unwrap();
        assert_eq!(avro::decode(&bytes, &source.schema).unwrap(), record.value);
    }
    avro::to_json(&record.value)
}

fn recording_source(options: &str) -> Source {
    custom(&format!(
        "[[source]]\nname = \"r\"\napp = \"zoom\"\nevents = [\"recording.completed\"]\ntopic = \"t\"\n\
         schema = \"recording_file.avsc\"\n[source.options]\n{options}\n"
    ))
}

fn file_types(records: &[SourceRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            avro::to_json(&r.value)["file_type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn recording_completed_gives_one_record_per_kept_file() {
    let file = shipped();
    let source = file.get("recording-completed").unwrap();
    let envelope = fixture("recording.completed.json");
    let names = classify(App::ZOOM, &envelope, &UserIdentity::default());
    assert_eq!(names, ["recording.completed"]);
    let matched = source.select(App::ZOOM, &names).unwrap();
    let out = map(source, &envelope, matched).unwrap();
    assert_eq!(
        file_types(&out),
        ["MP4", "TRANSCRIPT"],
        "M4A and CHAT are off by default"
    );

    let parent = raw::event_id(App::ZOOM, &envelope);
    let token = envelope["download_token"].as_str().unwrap();
    let mp4 = &out[0];
    assert_eq!(
        mp4.key.as_deref(),
        Some("388ffb46-1541-460d-8447-4624451a1db7")
    );
    assert_eq!(mp4.event, "recording.completed");
    assert_eq!(
        mp4.event_id,
        raw::derived_event_id(&parent, "388ffb46-1541-460d-8447-4624451a1db7")
    );
    assert_ne!(out[0].event_id, out[1].event_id);
    let json = checked_json(source, mp4);
    assert_eq!(
        json,
        json!({
            "event_id": mp4.event_id,
            "event": "recording.completed",
            "wire_event": "recording.completed",
            "app": "zoom",
            "event_ts": 1626230691572_i64,
            "account_id": "AAAAAABBBB",
            "received_at": 1_700_000_000_000_i64,
            "meeting_id": "1234567890",
            "meeting_uuid": "4444AAAiAAAAAiAiAiiAii==",
            "topic": "My Personal Recording",
            "host_id": "x1yCzABCDEfg23HiJKl4mN",
            "host_email": "user@example.com",
            "start_time": 1_626_212_691_000_i64,
            "file_id": "388ffb46-1541-460d-8447-4624451a1db7",
            "file_type": "MP4",
            "file_extension": "MP4",
            "file_size": 282825,
            "status": "completed",
            "recording_type": "shared_screen_with_speaker_view",
            "recording_start": 1_616_537_697_000_i64,
            "recording_end": 1_616_541_341_000_i64,
            "play_url": "https://example.com/recording/play/Qg75t7xZBtEbAkjdlgbfdngCCCC",
            "download_url": "https://example.com/recording/download/Qg75t7xZBtEbAkjdlgbfdngCCCC",
            "download_token": token,
            "download_url_with_token": format!(
                "https://example.com/recording/download/Qg75t7xZBtEbAkjdlgbfdngCCCC?access_token={token}"
            ),
            "file_json": serde_json::to_string(&envelope["payload"]["object"]["recording_files"][1]).unwrap(),
            "object_json": null,
        })
    );
}

#[test]
fn recording_options_choose_the_file_types() {
    let envelope = fixture("recording.completed.json");
    let count = |options: &str| {
        let out = map(&recording_source(options), &envelope, "recording.completed").unwrap();
        file_types(&out)
    };
    assert_eq!(count("include_chat = true"), ["MP4", "CHAT", "TRANSCRIPT"]);
    assert_eq!(count("include_audio = true"), ["M4A", "MP4", "TRANSCRIPT"]);
    assert_eq!(
        count("include_audio = true\ninclude_chat = true"),
        ["M4A", "MP4", "CHAT", "TRANSCRIPT"]
    );
    assert_eq!(
        count("file_types = [\"chat\"]\ninclude_audio = true"),
        ["CHAT"]
    );

    // The shipped transcript source keeps transcripts only.
    let file = shipped();
    let transcripts = file.get("recording-transcript-completed").unwrap();
    let mut envelope = envelope.clone();
    envelope["event"] = json!("recording.transcript_completed");
    // Fields Zoom added since the shape was made are kept in file_json; the meeting rides along.
    envelope["payload"]["object"]["recording_files"][3]["file_name"] = json!("Audio Transcript");
    let out = map(transcripts, &envelope, "recording.transcript_completed").unwrap();
    assert_eq!(file_types(&out), ["TRANSCRIPT"]);
    let json = checked_json(transcripts, &out[0]);
    let file: Value = serde_json::from_str(json["file_json"].as_str().unwrap()).unwrap();
    assert_eq!(file["file_name"], "Audio Transcript");
    let object: Value = serde_json::from_str(json["object_json"].as_str().unwrap()).unwrap();
    assert_eq!(object, envelope["payload"]["object"]);
}

#[test]
fn recording_edge_cases() {
    let source = recording_source("");
    let base = fixture("recording.completed.json");

    // Only completed files.
    let mut envelope = base.clone();
    envelope["payload"]["object"]["recording_files"][1]["status"] = json!("processing");
    assert_eq!(
        file_types(&map(&source, &envelope, "recording.completed").unwrap()),
        ["TRANSCRIPT"]
    );

    // An empty list, or every file filtered out: nothing, and no error.
    let mut envelope = base.clone();
    envelope["payload"]["object"]["recording_files"] = json!([]);
    assert_eq!(map(&source, &envelope, "recording.completed").unwrap(), []);
    let mut envelope = base.clone();
    envelope["payload"]["object"]["recording_files"] =
        json!([base["payload"]["object"]["recording_files"][0]]);
    assert_eq!(map(&source, &envelope, "recording.completed").unwrap(), []);

    // No list at all: to the DLQ.
    let mut envelope = base.clone();
    envelope["payload"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("recording_files");
    let err = map(&source, &envelope, "recording.completed").unwrap_err();
    assert_eq!(
        err,
        MappingError::NoRecordingFiles {
            event: "recording.completed".into()
        }
    );
    assert_eq!(err.reason_code(), "no_recording_files");
    envelope["payload"]["object"]["recording_files"] = json!({"id": "x"});
    assert_eq!(
        map(&source, &envelope, "recording.completed")
            .unwrap_err()
            .reason_code(),
        "wrong_type"
    );

    // The token is the body's, never the payload's (Pipedream read the payload's in one app).
    let mut envelope = base.clone();
    let token = envelope
        .as_object_mut()
        .unwrap()
        .remove("download_token")
        .unwrap();
    envelope["payload"]["download_token"] = token;
    let out = map(&source, &envelope, "recording.completed").unwrap();
    let json = checked_json(&source, &out[0]);
    assert_eq!(json["download_token"], Value::Null);
    assert_eq!(json["download_url_with_token"], Value::Null);

    // A file without an id, or with a bad time, names the file.
    let mut envelope = base.clone();
    envelope["payload"]["object"]["recording_files"][1]
        .as_object_mut()
        .unwrap()
        .remove("id");
    assert_eq!(
        map(&source, &envelope, "recording.completed").unwrap_err(),
        MappingError::MissingField {
            field: "payload.object.recording_files[1].id".into()
        }
    );
    let mut envelope = base.clone();
    envelope["payload"]["object"]["recording_files"][3]["recording_end"] = json!("2021-03-23 late");
    assert_eq!(
        map(&source, &envelope, "recording.completed").unwrap_err(),
        MappingError::BadTimestamp {
            field: "payload.object.recording_files[3].recording_end".into(),
            value: "2021-03-23 late".into()
        }
    );
    let mut envelope = base.clone();
    envelope["payload"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("uuid");
    assert_eq!(
        map(&source, &envelope, "recording.completed").unwrap_err(),
        MappingError::MissingField {
            field: "payload.object.uuid".into()
        }
    );
    let mut envelope = base;
    envelope["payload"]["object"]["recording_files"][1]["file_size"] = json!("big");
    assert_eq!(
        map(&source, &envelope, "recording.completed")
            .unwrap_err()
            .reason_code(),
        "wrong_type"
    );
}

#[test]
fn meeting_ids_are_strings_whether_zoom_sent_a_number_or_a_string() {
    let file = shipped();
    let me = UserIdentity {
        user_id: Some("z8yCxjabcdEFGHfp8uQ".into()),
        email: None,
    };

    let created = fixture("meeting.created.json");
    assert!(created["payload"]["object"]["id"].is_number());
    let names = classify(App::ZOOM, &created, &me);
    assert_eq!(names, ["meeting.created.by_me"]);
    let source = file.get("meeting-created").unwrap();
    let matched = source.select(App::ZOOM, &names).unwrap();
    let out = map(source, &created, matched).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].key.as_deref(), Some("4444AAAiAAAAAiAiAiiAii=="));
    assert_eq!(out[0].event_id, raw::event_id(App::ZOOM, &created));
    let json = checked_json(source, &out[0]);
    assert_eq!(json["meeting_id"], "1234567890");
    assert_eq!(json["event"], "meeting.created.by_me");
    assert_eq!(json["wire_event"], "meeting.created");
    assert_eq!(json["type"], 2);
    assert_eq!(json["duration"], 60);
    assert_eq!(json["start_time"], 1_626_212_691_000_i64);
    assert_eq!(json["end_time"], Value::Null);
    assert_eq!(json["operator"], "admin@example.com");
    assert_eq!(json["operation"], "single");
    assert_eq!(json["old_object_json"], Value::Null);
    let object: Value = serde_json::from_str(json["object_json"].as_str().unwrap()).unwrap();
    assert_eq!(
        object, created["payload"]["object"],
        "nothing of the object is lost"
    );

    // Someone else's meeting that is not mine: the Zoom app's source does not take it.
    let stranger = UserIdentity {
        user_id: Some("nobody".into()),
        email: None,
    };
    assert_eq!(
        source.select(App::ZOOM, &classify(App::ZOOM, &created, &stranger)),
        None
    );
    // The Admin app's source takes every meeting.created.
    let admin = file.get("admin-meeting-created").unwrap();
    let names = classify(App::ZOOM_ADMIN, &created, &stranger);
    assert_eq!(
        admin.select(App::ZOOM_ADMIN, &names),
        Some("meeting.created")
    );

    let ended = fixture("meeting.ended.json");
    assert!(ended["payload"]["object"]["id"].is_string());
    let source = file.get("meeting-ended").unwrap();
    let out = map(source, &ended, "meeting.ended").unwrap();
    let json = checked_json(source, &out[0]);
    assert_eq!(json["meeting_id"], "1234567890");
    assert_eq!(json["end_time"], 1_626_217_251_000_i64);
    assert_eq!(json["received_at"], 1_700_000_000_000_i64);
}

#[test]
fn meeting_started_goes_to_both_apps_sources() {
    let file = shipped();
    let started = fixture("meeting.started.json");
    for (app, name) in [
        (App::ZOOM, "meeting-started"),
        (App::ZOOM_ADMIN, "admin-meeting-started"),
    ] {
        let names = classify(app, &started, &UserIdentity::default());
        let takers: Vec<&str> = file
            .sources
            .iter()
            .filter(|s| s.select(app, &names).is_some())
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(takers, [name]);
        let source = file.get(name).unwrap();
        let json = checked_json(
            source,
            &map(source, &started, "meeting.started").unwrap()[0],
        );
        assert_eq!(json["app"], app.as_str());
        assert_eq!(json["account_id"], "Wk9PTV9BQ0NPVU5UX0lE");
        assert_eq!(json["operator"], Value::Null);
    }
}

#[test]
fn participants_get_their_own_fields() {
    let file = shipped();
    let joined = fixture("meeting.participant_joined.json");
    let names = classify(App::ZOOM, &joined, &UserIdentity::default());
    let takers: Vec<&str> = file
        .sources
        .iter()
        .filter(|s| s.select(App::ZOOM, &names).is_some())
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(takers, ["meeting-participants", "custom-meeting-activity"]);

    let source = file.get("meeting-participants").unwrap();
    let out = map(source, &joined, "meeting.participant_joined").unwrap();
    let json = checked_json(source, &out[0]);
    assert_eq!(json["meeting_id"], "1234567890");
    assert_eq!(json["user_id"], "1234567890");
    assert_eq!(json["user_name"], "Jill Chill");
    assert_eq!(json["participant_id"], "iFxeBPYun6SAiWUzBcEkX");
    assert_eq!(json["participant_uuid"], "55555AAAiAAAAAiAiAiiAii");
    assert_eq!(json["email"], "jchill@example.com");
    assert_eq!(json["join_time"], 1_626_212_691_000_i64);
    assert_eq!(json["leave_time"], Value::Null);

    // meeting.participant_left (in the catalogue since the families were added).
    let mut left = joined.clone();
    left["event"] = json!("meeting.participant_left");
    left["payload"]["object"]["participant"]["leave_time"] = json!("2021-07-13T22:44:51Z");
    left["payload"]["object"]["participant"]["leave_reason"] = json!("left the meeting");
    let names = classify(App::ZOOM, &left, &UserIdentity::default());
    assert_eq!(names, ["meeting.participant_left"]);
    let matched = source.select(App::ZOOM, &names).unwrap();
    let json = checked_json(source, &map(source, &left, matched).unwrap()[0]);
    assert_eq!(json["leave_time"], 1_626_216_291_000_i64);
    assert_eq!(json["leave_reason"], "left the meeting");

    // Every participant event of a meeting is kept: ids differ, so nothing is deduplicated away
    // (Pipedream's custom source deduplicated on object.id and dropped all but the first).
    let mut second = joined.clone();
    second["payload"]["object"]["participant"]["user_id"] = json!("999");
    let first_id = &map(source, &joined, "meeting.participant_joined").unwrap()[0].event_id;
    let second_id = &map(source, &second, "meeting.participant_joined").unwrap()[0].event_id;
    assert_ne!(first_id, second_id);

    let mut no_participant = joined;
    no_participant["payload"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("participant");
    assert_eq!(
        map(source, &no_participant, "meeting.participant_joined").unwrap_err(),
        MappingError::MissingField {
            field: "payload.object.participant".into()
        }
    );
}

#[test]
fn envelope_sources_lose_nothing() {
    let file = shipped();
    let source = file.get("custom-meeting-activity").unwrap();
    let joined = fixture("meeting.participant_joined.json");
    let out = map(source, &joined, "meeting.participant_joined").unwrap();
    let json = checked_json(source, &out[0]);
    assert_eq!(out[0].key.as_deref(), Some("4444AAAiAAAAAiAiAiiAii=="));
    assert_eq!(json["object_id"], "1234567890");
    let body: Value = serde_json::from_str(json["body_json"].as_str().unwrap()).unwrap();
    assert_eq!(body, joined);
    let payload: Value = serde_json::from_str(json["payload_json"].as_str().unwrap()).unwrap();
    assert_eq!(payload, joined["payload"]);

    // A catch-all custom source keeps recording download tokens too.
    let all = custom("[[source]]\nname = \"all\"\napp = \"zoom\"\nevents = [\"*\"]\ntopic = \"t\"\nschema = \"envelope.avsc\"\n");
    let recording = fixture("recording.completed.json");
    let json = checked_json(
        &all,
        &map(&all, &recording, "recording.completed").unwrap()[0],
    );
    let body: Value = serde_json::from_str(json["body_json"].as_str().unwrap()).unwrap();
    assert_eq!(body["download_token"], recording["download_token"]);

    // The URL validation handshake is no source's business.
    let validation = fixture("endpoint.url_validation.json");
    let names = classify(App::ZOOM, &validation, &UserIdentity::default());
    assert_eq!(names, ["endpoint.url_validation"]);
    assert!(file
        .sources
        .iter()
        .all(|s| s.select(App::ZOOM, &names).is_none()));
}

#[test]
fn malformed_webhooks_are_named_precisely() {
    let file = shipped();
    let source = file.get("meeting-ended").unwrap();
    let base = fixture("meeting.ended.json");
    let err = |f: &dyn Fn(&mut Value)| {
        let mut envelope = base.clone();
        f(&mut envelope);
        map(source, &envelope, "meeting.ended").unwrap_err()
    };
    assert_eq!(
        err(&|e| {
            e.as_object_mut().unwrap().remove("event_ts");
        }),
        MappingError::MissingField {
            field: "event_ts".into()
        }
    );
    assert_eq!(
        err(&|e| {
            e["payload"]["object"].as_object_mut().unwrap().remove("id");
        }),
        MappingError::MissingField {
            field: "payload.object.id".into()
        }
    );
    assert_eq!(
        err(&|e| e["payload"]["object"]["end_time"] = json!("2021-07-13T25:00:51Z")),
        MappingError::BadTimestamp {
            field: "payload.object.end_time".into(),
            value: "2021-07-13T25:00:51Z".into()
        }
    );
    assert_eq!(
        err(&|e| e["payload"]["object"]["type"] = json!("3")),
        MappingError::WrongType {
            field: "payload.object.type".into(),
            expected: "an integer",
            found: "a string"
        }
    );
    assert_eq!(
        err(&|e| e["payload"]["object"] = json!("gone")),
        MappingError::WrongType {
            field: "payload.object".into(),
            expected: "an object",
            found: "a string"
        }
    );
    assert_eq!(
        err(&|e| {
            e["payload"].as_object_mut().unwrap().remove("object");
        }),
        MappingError::MissingField {
            field: "payload.object".into()
        }
    );
    assert_eq!(err(&|e| *e = json!([1, 2])).reason_code(), "wrong_type");
    assert_eq!(
        err(&|e| e["payload"]["object"]["type"] = json!(1_i64 << 40)).reason_code(),
        "schema_mismatch"
    );
}

#[test]
fn a_source_refuses_what_it_does_not_take() {
    let file = shipped();
    let source = file.get("meeting-ended").unwrap();
    let envelope = fixture("meeting.ended.json");
    let err = map(source, &envelope, "meeting.started").unwrap_err();
    assert_eq!(err.reason_code(), "not_for_source");
    let event_id = raw::event_id(App::ZOOM_ADMIN, &envelope);
    let raw = RawEvent {
        app: App::ZOOM_ADMIN,
        envelope: &envelope,
        event_id: &event_id,
        received_at_ms: None,
    };
    let err = records(source, &raw, "meeting.ended").unwrap_err();
    assert_eq!(
        err.to_string(),
        "source \"meeting-ended\" does not take this webhook: it came for the zoom-admin app, the source is for zoom"
    );
}

#[test]
fn an_edited_schema_is_filled_from_its_own_fields() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    std::fs::write(
        dir.join("slim.avsc"),
        r#"{"type": "record", "name": "Meeting", "namespace": "zoomstream", "fields": [
            {"name": "topic", "type": "string"},
            {"name": "meeting_id", "type": "string"},
            {"name": "region", "type": "string", "default": "eu"},
            {"name": "event_ts", "type": "long"},
            {"name": "end_time", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}], "default": null}]}"#,
    )
    .unwrap();
    let toml = "[[source]]\nname = \"slim\"\napp = \"zoom\"\nevents = [\"meeting.*\"]\ntopic = \"t\"\nschema = \"slim.avsc\"\n";
    let parsed = sources::parse(toml, Path::new(&dir));
    let source = parsed.unwrap().sources.remove(0);
    let ended = fixture("meeting.ended.json");
    let out = map(&source, &ended, "meeting.ended").unwrap();
    assert_eq!(
        out[0].value,
        AvroValue::Record(vec![
            ("topic".into(), AvroValue::String("My Meeting".into())),
            ("meeting_id".into(), AvroValue::String("1234567890".into())),
            ("region".into(), AvroValue::String("eu".into())),
            ("event_ts".into(), AvroValue::Long(1626230691572)),
            (
                "end_time".into(),
                AvroValue::Union(1, Box::new(AvroValue::TimestampMillis(1_626_217_251_000)))
            ),
        ])
    );
    // A required field the webhook lacks names the webhook's path.
    let started = fixture("meeting.started.json");
    let mut no_topic = started.clone();
    no_topic["payload"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("topic");
    assert_eq!(
        map(&source, &no_topic, "meeting.started").unwrap_err(),
        MappingError::MissingField {
            field: "payload.object.topic".into()
        }
    );
}
