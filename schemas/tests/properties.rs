//! Property tests (the project's fuzzing): the catalogue's classification and the record
//! mapping, including the recording split, never panic on any JSON, and keep their promises on
//! Zoom-shaped input. `PROPTEST_CASES=N` sets the budget (see RELIABILITY.md).

use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use zoomstream_schemas::catalogue::{self, classify, UserIdentity};
use zoomstream_schemas::mapping::{records, RawEvent};
use zoomstream_schemas::sources::{self, Source};
use zoomstream_schemas::App;

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        "(2021-07-13T21:44:51Z|2021-03-23T22:14:57Z|not-a-time|)".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Names Zoom uses, so random objects hit the mapping's fields, plus random ones.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "id",
            "uuid",
            "host_id",
            "topic",
            "type",
            "start_time",
            "end_time",
            "duration",
            "timezone",
            "participant",
            "user_id",
            "user_name",
            "email",
            "join_time",
            "leave_time",
            "file_type",
            "status",
            "file_size",
            "recording_files",
            "download_url",
            "operator",
            "operator_id",
            "object",
            "old_object",
            "account_id",
            "first_name",
            "last_name",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,8}",
    ]
}

fn event_name() -> impl Strategy<Value = String> {
    let names: Vec<String> = catalogue::events()
        .iter()
        .map(|e| e.wire_event.to_owned())
        .collect();
    prop_oneof![prop::sample::select(names), "[a-z]{1,6}\\.[a-z_]{1,10}"]
}

fn envelope() -> impl Strategy<Value = Value> {
    (
        event_name(),
        any_json(),
        any_json(),
        any::<i64>(),
        prop::option::of(".{0,20}"),
    )
        .prop_map(|(event, object, payload_extra, ts, token)| {
            let mut payload = match payload_extra {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            payload.insert("object".into(), object);
            let mut body = json!({"event": event, "event_ts": ts, "payload": payload});
            if let Some(token) = token {
                body["download_token"] = Value::from(token);
            }
            body
        })
}

fn recording_file() -> impl Strategy<Value = Value> {
    (
        prop::option::of("[a-f0-9-]{1,12}"),
        prop::sample::select(vec![
            "MP4",
            "M4A",
            "CHAT",
            "TRANSCRIPT",
            "CC",
            "TIMELINE",
            "SUMMARY",
            "??",
        ]),
        prop::sample::select(vec!["completed", "processing", "failed", ""]),
        any_json(),
    )
        .prop_map(|(id, file_type, status, extra)| {
            let mut file = match extra {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            if let Some(id) = id {
                file.insert("id".into(), Value::from(id));
            }
            file.insert("file_type".into(), Value::from(file_type));
            file.insert("status".into(), Value::from(status));
            Value::Object(file)
        })
}

fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Loaded once: parsing 38 sources and their schemas per case would dominate the run.
fn shipped() -> &'static [Source] {
    static SHIPPED: std::sync::LazyLock<Vec<Source>> = std::sync::LazyLock::new(|| {
        sources::load(&schemas_dir().join("sources.toml"))
            .expect("the shipped sources load")
            .sources
    });
    &SHIPPED
}

proptest! {
    #[test]
    fn classify_never_panics_and_names_only_what_the_app_offers(envelope in prop_oneof![envelope(), any_json()], admin in any::<bool>()) {
        let app = if admin { App::ZOOM_ADMIN } else { App::ZOOM };
        let me = UserIdentity { user_id: Some("me".into()), email: Some("me@example.com".into()) };
        let names = classify(app, &envelope, &me);
        let wire = envelope.get("event").and_then(Value::as_str);
        for name in &names {
            match catalogue::lookup(name) {
                Some(def) => {
                    prop_assert!(def.offered_by(app), "{name} is not offered by {app}");
                    prop_assert_eq!(Some(def.wire_event), wire);
                }
                None => prop_assert_eq!(Some(name.as_str()), wire, "an unknown event keeps its wire name"),
            }
        }
    }

    #[test]
    fn by_me_follows_the_operator(operator in prop::option::of(prop_oneof![Just("me".to_owned()), "[a-z]{1,4}"]), event in prop::sample::select(vec!["meeting.created", "meeting.deleted", "webinar.created", "recording.trashed"])) {
        let me = UserIdentity { user_id: Some("me".into()), email: None };
        let mut envelope = json!({"event": event, "payload": {"object": {"host_id": "someone"}}});
        if let Some(op) = &operator {
            envelope["payload"]["operator_id"] = Value::from(op.clone());
        }
        let names = classify(App::ZOOM, &envelope, &me);
        let by_me = format!("{event}.by_me");
        prop_assert_eq!(names.contains(&by_me), operator.as_deref() == Some("me"));
    }

    #[test]
    fn every_shipped_source_maps_any_input_without_panicking(envelope in envelope()) {
        for source in shipped() {
            let Some(event) = envelope.get("event").and_then(Value::as_str) else { continue };
            let raw = RawEvent { app: source.app, envelope: &envelope, event_id: "e", received_at_ms: None };
            if let Ok(records) = records(source, &raw, event) {
                for record in records {
                    prop_assert!(record.value.validate(&source.schema), "{}: a record that does not fit its schema", source.name);
                }
            }
        }
    }

    #[test]
    fn the_recording_split_keeps_exactly_the_completed_allowed_files(files in prop::collection::vec(recording_file(), 0..12), token in prop::option::of("[A-Za-z0-9.]{1,30}")) {
        let source = shipped().iter().find(|s| s.name == "recording-completed").unwrap();
        let mut envelope = json!({
            "event": "recording.completed", "event_ts": 1626230691572i64,
            "payload": {"account_id": "a", "object": {"id": 1, "uuid": "u", "host_id": "h", "topic": "t",
                "start_time": "2021-07-13T21:44:51Z", "host_email": "h@example.com", "recording_files": files.clone()}}
        });
        if let Some(token) = &token {
            envelope["download_token"] = Value::from(token.clone());
        }
        let raw = RawEvent { app: App::ZOOM, envelope: &envelope, event_id: "e", received_at_ms: None };
        let kept: Vec<&Value> = files
            .iter()
            .filter(|f| f["status"] == "completed" && f["file_type"] != "M4A" && f["file_type"] != "CHAT")
            .collect();
        match records(source, &raw, "recording.completed") {
            Ok(records) => {
                prop_assert_eq!(records.len(), kept.len());
                for (record, file) in records.iter().zip(&kept) {
                    // String fields hold scalars as their JSON text (ids are numbers in some events).
                    let id = match &file["id"] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    prop_assert_eq!(record.key.as_deref(), Some(id.as_str()));
                    prop_assert!(record.value.validate(&source.schema));
                }
            }
            // A kept file without the fields its record needs is a mapping error (a dead
            // letter), never a panic and never a silently dropped file.
            Err(err) => prop_assert!(!kept.is_empty(), "error without a kept file: {err}"),
        }
    }
}
