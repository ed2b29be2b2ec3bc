//! Standard Avro and Kafka tooling reads every source topic, with no zoomstream code: processors
//! in Confluent framing against a real registry (Apicurio), whose ids the registry resolves and
//! confluent-kafka's `AvroDeserializer` decodes; single-object records whose fingerprints fastavro
//! recognises; records written before a schema edit decoded after it by `zoomstream tail`, the
//! SSE service and the analytics reader; every shipped schema history passing the registry's own
//! BACKWARD check; a lookup-only processor refusing a schema the registry lacks.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use zoomstream_processors::RegistryMode;
use zoomstream_runtime::schema_registry::RegistryArgs;
use zoomstream_schemas::avro;
use zoomstream_schemas::App;
use zoomstream_tests::*;

const SOURCES: &str = r#"
[[source]]
name = "meeting-ended"
app = "zoom"
events = ["meeting.ended"]
topic = "zoom.meeting-ended"
schema = "meeting.avsc"

[[source]]
name = "meeting-participants"
app = "zoom"
events = ["meeting.participant_joined"]
extra_events = ["meeting.participant_left"]
topic = "zoom.meeting-participants"
schema = "participant.avsc"

[[source]]
name = "recording-completed"
app = "zoom"
events = ["recording.completed"]
topic = "zoom.recording-completed"
schema = "recording_file.avsc"
"#;

const HOSTS: [&str; 2] = ["host-a", "host-b"];
const MEETINGS: usize = 4;

/// `2026-01-01T10:00:00Z` plus `minutes`.
fn at(minutes: usize) -> String {
    format!(
        "2026-01-01T{:02}:{:02}:00Z",
        10 + minutes / 60,
        minutes % 60
    )
}

fn webhook(event: &str, ts: usize, object: Value) -> (String, Vec<u8>) {
    let key = object["uuid"].as_str().unwrap().to_owned();
    let body = json!({
        "event": event,
        "event_ts": 1_767_261_600_000_u64 + ts as u64,
        "payload": {"account_id": "acct-1", "object": object},
    });
    (key, serde_json::to_vec(&body).unwrap())
}

/// Meetings with participants joining and leaving, their ends, and recordings of the first
/// three; and the figures an analyst must get from them.
fn posted_meetings(tag: &str) -> (Vec<(String, Vec<u8>)>, Value) {
    let mut webhooks = Vec::new();
    let mut meetings = serde_json::Map::new();
    let mut recordings = serde_json::Map::new();
    let mut scheduled = 0;
    let recording = zoomstream_tests::fixture("recording.completed.json");
    let recording: Value = serde_json::from_slice(&recording).unwrap();
    for i in 0..MEETINGS {
        let uuid = format!("{tag}-meeting-{i}==");
        let host = HOSTS[i % 2];
        let meeting = |extra: Value| {
            let mut object = json!({
                "id": format!("{}", 90_000 + i), "uuid": uuid, "host_id": host,
                "topic": format!("Meeting {i}"), "type": 2, "start_time": at(0),
                "timezone": "UTC", "duration": 30 + i,
            });
            object
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            object
        };
        let attendees = i + 2;
        let mut minutes = 0;
        for j in 0..attendees {
            let participant = |extra: Value| {
                let mut p = json!({
                    "user_id": format!("u{j}"), "user_name": format!("User {j}"),
                    "id": format!("{tag}-{i}-{j}"), "participant_uuid": format!("{tag}-p-{i}-{j}"),
                    "join_time": at(j), "email": format!("u{j}@example.com"),
                });
                p.as_object_mut()
                    .unwrap()
                    .extend(extra.as_object().unwrap().clone());
                p
            };
            let stay = 10 + j;
            minutes += stay;
            webhooks.push(webhook(
                "meeting.participant_joined",
                i * 100 + j,
                meeting(json!({"participant": participant(json!({}))})),
            ));
            webhooks.push(webhook(
                "meeting.participant_left",
                i * 100 + 50 + j,
                meeting(json!({"participant": participant(
                    json!({"leave_time": at(j + stay), "leave_reason": "left the meeting"})
                )})),
            ));
        }
        meetings.insert(
            uuid.clone(),
            json!({"attendees": attendees, "minutes_attended": minutes as f64}),
        );
        scheduled += 30 + i;
        webhooks.push(webhook(
            "meeting.ended",
            i * 100 + 99,
            meeting(json!({"end_time": at(60)})),
        ));
        if i < 3 {
            let mut object = recording["payload"]["object"].clone();
            object["uuid"] = json!(uuid);
            object["id"] = json!(90_000 + i);
            object["host_id"] = json!(host);
            for (n, file) in object["recording_files"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .enumerate()
            {
                file["id"] = json!(format!("{tag}-file-{i}-{n}"));
            }
            webhooks.push(webhook("recording.completed", i * 100 + 98, object));
            let entry = recordings.entry(host).or_insert(json!({"recordings": 0}));
            entry["recordings"] = json!(entry["recordings"].as_u64().unwrap() + 1);
        }
    }
    let expected = json!({
        "meetings": meetings,
        "recordings_per_host": recordings,
        "meetings_ended": {"count": MEETINGS, "scheduled_minutes": scheduled},
    });
    (webhooks, expected)
}

/// The analytics reader's figures against the posted ones; `files` is the number of recording
/// records on the topic.
fn assert_figures(figures: &Value, expected: &Value, files: usize) {
    assert_eq!(figures["meetings"], expected["meetings"], "{figures:#}");
    assert_eq!(
        figures["meetings_ended"], expected["meetings_ended"],
        "{figures:#}"
    );
    let per_host = figures["recordings_per_host"].as_object().unwrap();
    let expected_hosts = expected["recordings_per_host"].as_object().unwrap();
    assert_eq!(per_host.len(), expected_hosts.len(), "{figures:#}");
    for (host, want) in expected_hosts {
        assert_eq!(
            per_host[host]["recordings"], want["recordings"],
            "{host}: {figures:#}"
        );
    }
    let counted: u64 = per_host
        .values()
        .map(|h| h["files"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, files as u64, "{figures:#}");
}

/// Posts the meetings to a new raw topic and runs a processor over it until every webhook is
/// processed; returns the posted figures.
async fn process_meetings(
    brokers: &str,
    sources: &TestSources,
    registry: Option<RegistryArgs>,
) -> Value {
    let raw_topic = unique("raw");
    create_topic(brokers, &raw_topic, 3).await;
    let mut config = processor_config(brokers, &raw_topic, sources);
    if let Some(registry) = registry {
        config.registry = registry;
    }
    let group = config.group_id.clone();
    let processor = ProcessorApp::start(config).await;
    let (webhooks, expected) = posted_meetings(&sources.prefix);
    produce_webhooks(brokers, &raw_topic, App::ZOOM, &webhooks);
    let raw = read_topic_until(brokers, &raw_topic, Duration::from_secs(60), |r| {
        r.len() == webhooks.len()
    });
    wait_processed(brokers, &group, &raw_topic, &raw, Duration::from_secs(90));
    processor.stop().await.expect("the processor stops cleanly");
    expected
}

fn topic(sources: &TestSources, name: &str) -> String {
    sources.source(name).topic.clone()
}

fn reader_topic_args(sources: &TestSources) -> Vec<String> {
    vec![
        "--meeting-ended".into(),
        topic(sources, "meeting-ended"),
        "--participants".into(),
        topic(sources, "meeting-participants"),
        "--recordings".into(),
        topic(sources, "recording-completed"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn confluent_framed_records_resolve_in_the_registry_and_read_with_confluent_kafkas_deserializer(
) {
    let brokers = brokers();
    let sources = TestSources::new(SOURCES);
    let expected =
        process_meetings(&brokers, &sources, Some(RegistryArgs::new(registry_url()))).await;

    // The reader first: the whole-topic reads below add marker records, which are not Avro.
    let url = registry_url();
    let mut args = vec![
        "--bootstrap",
        &brokers,
        "--framing",
        "confluent",
        "--registry-url",
        &url,
    ];
    let topics = reader_topic_args(&sources);
    args.extend(topics.iter().map(String::as_str));
    let figures = run_analytics_reader(&args);

    let mut recording_files = 0;
    for source in &sources.file.sources {
        let records = read_all(&brokers, &source.topic);
        assert!(!records.is_empty(), "{} is empty", source.topic);
        let subject = avro::subject_for_topic(&source.topic);
        let (status, latest) = registry_request(
            Method::GET,
            &format!("/subjects/{subject}/versions/latest"),
            None,
        )
        .await;
        assert_eq!(status, 200, "subject {subject} is registered: {latest}");
        for record in &records {
            let payload = record.payload.as_ref().unwrap();
            assert_eq!(payload[0], 0, "Confluent magic byte");
            let id = u32::from_be_bytes(payload[1..5].try_into().unwrap());
            assert_eq!(Some(u64::from(id)), latest["id"].as_u64(), "{latest}");
            let (status, by_id) =
                registry_request(Method::GET, &format!("/schemas/ids/{id}"), None).await;
            assert_eq!(status, 200, "{by_id}");
            let registered = apache_avro::Schema::parse_str(by_id["schema"].as_str().unwrap())
                .expect("the registry's schema parses");
            assert_eq!(
                avro::parsing_canonical_form(&registered),
                avro::parsing_canonical_form(&source.schema),
                "{subject}"
            );
        }
        if source.name == "recording-completed" {
            recording_files = records.len();
        }
    }

    assert_figures(&figures, &expected, recording_files);
}

/// `schemas/` copied to a folder of the test's own, with a sources file beside the schemas.
fn copy_schemas(to: &Path, sources: &TestSources) {
    let from = schemas_dir();
    std::fs::create_dir_all(to.join("history")).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "avsc") {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
    for entry in std::fs::read_dir(from.join("history")).unwrap() {
        let folder = entry.unwrap().path();
        let target = to.join("history").join(folder.file_name().unwrap());
        std::fs::create_dir_all(&target).unwrap();
        for file in std::fs::read_dir(&folder).unwrap() {
            let file = file.unwrap().path();
            std::fs::copy(&file, target.join(file.file_name().unwrap())).unwrap();
        }
    }
    // The test's topics, with schema paths relative to the copy.
    let text = std::fs::read_to_string(&sources.path)
        .unwrap()
        .replace(&format!("{}/", from.display()), "");
    std::fs::write(to.join("sources.toml"), text).unwrap();
}

/// A BACKWARD-compatible edit of participant.avsc, released as v2: a field with a default.
fn release_participant_v2(schemas: &Path) -> String {
    let path = schemas.join("participant.avsc");
    let mut schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    schema["fields"].as_array_mut().unwrap().push(json!({
        "name": "cohort", "type": "string", "default": "before-cohorts",
        "doc": "Added in v2: records written before read the default."
    }));
    let text = serde_json::to_string_pretty(&schema).unwrap();
    std::fs::write(&path, &text).unwrap();
    std::fs::write(schemas.join("history/participant/v2.avsc"), &text).unwrap();
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn records_written_before_a_schema_edit_decode_after_it_in_tail_sse_and_the_analytics_reader()
{
    let brokers = brokers();
    let sources = TestSources::new(SOURCES);
    let expected = process_meetings(&brokers, &sources, None).await;
    let participants_topic = topic(&sources, "meeting-participants");
    // Two per participant; not read_all, whose markers the readers below would meet.
    let participant_records = (0..MEETINGS).map(|i| 2 * (i + 2)).sum::<usize>();
    let written = read_topic_until(
        &brokers,
        &participants_topic,
        Duration::from_secs(30),
        |r| r.len() == participant_records,
    );
    // Written with v1: the specification's fingerprint of participant.avsc, as fastavro has it.
    let vectors: Value = serde_json::from_str(
        &std::fs::read_to_string(schemas_dir().join("tests/fixtures/fingerprints.json")).unwrap(),
    )
    .unwrap();
    let v1 = vectors["schemas"]["participant.avsc"]["fingerprint"]
        .as_str()
        .unwrap();
    for record in &written {
        let payload = record.payload.as_ref().unwrap();
        assert_eq!(payload[..2], avro::SINGLE_OBJECT_MAGIC);
        assert_eq!(hex::encode(&payload[2..10]), v1);
    }

    let dir = tempfile::tempdir().unwrap();
    copy_schemas(dir.path(), &sources);
    release_participant_v2(dir.path());
    let edited_sources = dir.path().join("sources.toml");

    // zoomstream tail
    let output = Command::new(binary("zoomstream"))
        .args(["tail", &participants_topic, "--from-beginning", "--max"])
        .arg(written.len().to_string())
        .args(["--brokers", &brokers, "--sources"])
        .arg(&edited_sources)
        .output()
        .expect("running zoomstream tail");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), written.len());
    for line in &lines {
        let record = line.get("value").unwrap_or(line);
        assert_eq!(record["cohort"], "before-cohorts", "{line}");
        assert!(record["participant_uuid"].is_string(), "{line}");
    }

    // The SSE service, from the beginning of the source.
    let mut config = zoomstream_sse::Config::new(&brokers, &edited_sources);
    config.token = Some("readers-token".to_owned().into());
    let sse = SseApp::start(config).await;
    let url = format!("{}?from=earliest", sse.events_url("meeting-participants"));
    let mut client = SseClient::connect("readers-token", &url, None).await;
    let events = client.events(written.len(), Duration::from_secs(30)).await;
    for event in &events {
        let record = event.json();
        assert_eq!(record["cohort"], "before-cohorts", "{record}");
    }
    sse.stop().await;

    // The analytics reader, over the edited schemas and their history.
    let schemas = dir.path().to_str().unwrap().to_owned();
    let mut args = vec![
        "--bootstrap",
        &brokers,
        "--framing",
        "single-object",
        "--schemas",
        &schemas,
    ];
    let topics = reader_topic_args(&sources);
    args.extend(topics.iter().map(String::as_str));
    let figures = run_analytics_reader(&args);
    let recording_files = read_all(&brokers, &topic(&sources, "recording-completed")).len();
    assert_figures(&figures, &expected, recording_files);
}

/// The subject's compatibility rule, through the registry's API.
async fn set_compatibility(subject: &str, level: &str) {
    let (status, body) = registry_request(
        Method::PUT,
        &format!("/config/{subject}"),
        Some(json!({ "compatibility": level })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_shipped_schema_history_passes_the_registrys_backward_check() {
    let dir = schemas_dir();
    let mut checked = 0;
    for entry in std::fs::read_dir(dir.join("history")).unwrap() {
        let folder = entry.unwrap().path();
        let name = folder.file_name().unwrap().to_str().unwrap().to_owned();
        let subject = unique(&format!("compat-{name}"));
        set_compatibility(&subject, "BACKWARD").await;
        let mut versions: Vec<_> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        versions.sort();
        // Each released version in order: the registry refuses one that breaks BACKWARD.
        for version in &versions {
            let (status, body) = registry_request(
                Method::POST,
                &format!("/subjects/{subject}/versions"),
                Some(json!({"schema": std::fs::read_to_string(version).unwrap()})),
            )
            .await;
            assert_eq!(status, 200, "{}: {body}", version.display());
        }
        let current = std::fs::read_to_string(dir.join(format!("{name}.avsc"))).unwrap();
        let (status, verdict) = registry_request(
            Method::POST,
            &format!("/compatibility/subjects/{subject}/versions/latest"),
            Some(json!({"schema": current})),
        )
        .await;
        assert_eq!(status, 200, "{verdict}");
        assert_eq!(verdict["is_compatible"], true, "{name}.avsc: {verdict}");

        // The control: a required field added without a default cannot read older records.
        let mut breaking: Value = serde_json::from_str(&current).unwrap();
        breaking["fields"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "required_without_default", "type": "string"}));
        let (_, verdict) = registry_request(
            Method::POST,
            &format!("/compatibility/subjects/{subject}/versions/latest"),
            Some(json!({"schema": breaking.to_string()})),
        )
        .await;
        assert_eq!(verdict["is_compatible"], false, "{name}: {verdict}");
        checked += 1;
    }
    let shipped = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "avsc")
        })
        .count();
    assert_eq!(
        checked, shipped,
        "every shipped schema has a history folder"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lookup_only_processor_refuses_a_schema_the_registry_lacks_naming_the_subject() {
    let brokers = brokers();
    let sources = TestSources::new(
        r#"
[[source]]
name = "meeting-ended"
app = "zoom"
events = ["meeting.ended"]
topic = "zoom.meeting-ended"
schema = "meeting.avsc"
"#,
    );
    let raw_topic = unique("raw");
    create_topic(&brokers, &raw_topic, 1).await;
    let mut config = processor_config(&brokers, &raw_topic, &sources);
    config.registry = RegistryArgs::new(registry_url());
    config.schema_registry_mode = RegistryMode::Lookup;
    let subject = avro::subject_for_topic(&topic(&sources, "meeting-ended"));

    // Missing: refused at start, subject named.
    let Err(err) = zoomstream_processors::Processor::build(config.clone()).await else {
        panic!("a lookup-only processor started without its schema registered");
    };
    let text = format!("{err:#}");
    assert!(
        text.contains(&subject) && text.contains("not registered"),
        "{text}"
    );

    // Registered under the subject, an incompatible version (lacks a field ours requires).
    let schema = sources.source("meeting-ended").schema.clone();
    let mut other: Value = serde_json::to_value(&schema).unwrap();
    other["fields"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["name"] != "event_id");
    set_compatibility(&subject, "BACKWARD").await;
    let (status, body) = registry_request(
        Method::POST,
        &format!("/subjects/{subject}/versions"),
        Some(json!({"schema": other.to_string()})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let Err(err) = zoomstream_processors::Processor::build(config.clone()).await else {
        panic!("a lookup-only processor started with an incompatible schema registered");
    };
    let text = format!("{err:#}");
    assert!(
        text.contains(&subject) && text.contains("NOT compatible"),
        "{text}"
    );

    // Registered by "the user's CI" (which decided to break compatibility): the processor
    // starts.
    set_compatibility(&subject, "NONE").await;
    let (status, registered) = registry_request(
        Method::POST,
        &format!("/subjects/{subject}/versions"),
        Some(json!({"schema": avro::registry_schema_text(&schema)})),
    )
    .await;
    assert_eq!(status, 200, "{registered}");
    let processor = ProcessorApp::start(config).await;
    processor.stop().await.expect("the processor stops cleanly");
}
