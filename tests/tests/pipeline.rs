//! Ingest + processor against a real broker: every fixture reaches exactly the sources that
//! ask for it, as Avro that decodes with the schema files; recording.completed becomes one
//! record per allowed file; user-level variants follow the configured user; poison records go
//! to the DLQ and the stream keeps flowing; a backfill fills a new source only.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use zoomstream_ingest::Config as IngestConfig;
use zoomstream_processors::Delivery;
use zoomstream_schemas::raw::headers;
use zoomstream_schemas::App;
use zoomstream_tests::*;

const ZOOM_SECRET: &str = "zoom-app-secret";
const ADMIN_SECRET: &str = "zoom-admin-app-secret";
/// The operator of meeting.created.json: the configured user of the Zoom app in these tests.
const ME: &str = "z8yCxjabcdEFGHfp8uQ";

fn ingest_config(brokers: &str, raw_topic: &str) -> IngestConfig {
    let mut config = IngestConfig::new(brokers);
    config.zoom_secret_token = Some(ZOOM_SECRET.to_owned().into());
    config.zoom_admin_secret_token = Some(ADMIN_SECRET.to_owned().into());
    config.raw_topic = raw_topic.to_owned();
    config.raw_topic_partitions = 3;
    config
}

fn rfc3339_millis(s: &str) -> i64 {
    // The fixtures' times are all whole seconds in UTC; the epoch seconds below were computed
    // with `date -d`.
    match s {
        "2021-07-13T21:44:51Z" => 1_626_212_691_000,
        "2021-03-23T22:14:57Z" => 1_616_537_697_000,
        "2021-03-23T23:15:41Z" => 1_616_541_341_000,
        "2021-07-13T23:00:51Z" => 1_626_217_251_000,
        other => panic!("no expected value for {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_fixture_reaches_exactly_its_sources_as_avro() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    let sources = TestSources::shipped();
    let ingest = IngestApp::start(ingest_config(&brokers, &raw_topic)).await;
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;
    let mut config = processor_config(&brokers, &raw_topic, &sources);
    config.zoom_user_id = Some(ME.into());
    let group = config.group_id.clone();
    let processor = ProcessorApp::start(config).await;

    let mut event_ids: HashMap<(App, String), String> = HashMap::new();
    for (app, secret) in [(App::ZOOM, ZOOM_SECRET), (App::ZOOM_ADMIN, ADMIN_SECRET)] {
        for (name, body) in event_fixtures() {
            let url = ingest.url(&format!("/webhooks/{app}"));
            let response = post_signed(&client, &url, &sign(secret, &body), &name).await;
            assert_eq!(response.status(), 200, "{app} {name}");
            let id: Value = response.json().await.unwrap();
            event_ids.insert((app, name), id["event_id"].as_str().unwrap().to_owned());
        }
    }
    let raw = read_topic_until(&brokers, &raw_topic, Duration::from_secs(30), |r| {
        r.len() == event_ids.len()
    });
    wait_processed(&brokers, &group, &raw_topic, &raw, Duration::from_secs(60));

    // Which source each fixture reaches, by app. Everything else must stay empty.
    let expected: HashMap<&str, usize> = HashMap::from([
        ("meeting-created", 1), // meeting.created.by_me: the operator is the configured user
        ("meeting-started", 1),
        ("meeting-ended", 1),
        ("meeting-participants", 2),    // joined and left
        ("custom-meeting-activity", 1), // + meeting.participant_left below
        ("recording-completed", 2),     // MP4 and TRANSCRIPT; M4A and CHAT are off by default
        ("admin-meeting-created", 1),
        ("admin-meeting-started", 1),
        ("admin-meeting-ended", 1),
        ("admin-meeting-participants", 2),
        ("admin-recording-completed", 2),
        ("phone-calls", 1), // phone.callee_ringing, in the call shape too
        ("admin-phone-calls", 1),
    ]);
    let mut expected = expected;
    // The families added since the seed, each to its source of each app that receives it.
    // (tests/tests/families.rs checks what each of them holds.)
    for (fixture_name, zoom, admin) in FAMILY_FIXTURES {
        for source in [zoom, admin].into_iter().flatten() {
            *expected.entry(source).or_default() += 1;
        }
        assert!(event_ids.contains_key(&(App::ZOOM, fixture_name.to_string())));
    }
    let mut by_source = HashMap::new();
    for source in &sources.file.sources {
        let records = read_all(&brokers, &source.topic);
        let want = expected.get(source.name.as_str()).copied().unwrap_or(0);
        assert_eq!(
            records.len(),
            want,
            "source {} has {} records, expected {want}",
            source.name,
            records.len()
        );
        let decoded: Vec<(Record, Value)> = records
            .into_iter()
            .map(|r| {
                let v = decode(&r, &source.schema);
                (r, v)
            })
            .collect();
        for (record, value) in &decoded {
            assert_eq!(
                record.header(headers::APP).as_deref(),
                Some(source.app.as_str())
            );
            assert_eq!(
                record.header(headers::EVENT_ID).as_deref(),
                value["event_id"].as_str()
            );
            assert_eq!(
                record.header(headers::EVENT).as_deref(),
                value["event"].as_str()
            );
            assert_eq!(value["app"], source.app.as_str());
        }
        by_source.insert(source.name.clone(), decoded);
    }
    assert!(
        read_all(&brokers, &format!("{}.dlq", sources.prefix)).is_empty(),
        "no dead letters"
    );

    // Recording Completed: one record per allowed file, keyed by file id, with the token.
    let recording: Value = serde_json::from_slice(&fixture("recording.completed.json")).unwrap();
    let object = &recording["payload"]["object"];
    for (name, app) in [
        ("recording-completed", App::ZOOM),
        ("admin-recording-completed", App::ZOOM_ADMIN),
    ] {
        let records = &by_source[name];
        let mut types: Vec<&str> = records
            .iter()
            .map(|(_, v)| v["file_type"].as_str().unwrap())
            .collect();
        types.sort();
        assert_eq!(types, ["MP4", "TRANSCRIPT"], "{name}");
        let parent = &event_ids[&(app, "recording.completed.json".to_owned())];
        for (record, value) in records {
            let file = object["recording_files"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["id"] == value["file_id"])
                .expect("a file of the fixture");
            assert_eq!(
                record.key_str().as_deref(),
                file["id"].as_str(),
                "keyed by file id"
            );
            assert_eq!(
                value["event_id"],
                zoomstream_schemas::raw::derived_event_id(parent, file["id"].as_str().unwrap())
            );
            assert_eq!(value["event"], "recording.completed");
            assert_eq!(value["wire_event"], "recording.completed");
            assert_eq!(value["event_ts"], 1_626_230_691_572i64);
            assert_eq!(
                value["meeting_id"], "1234567890",
                "numeric object.id kept as a string"
            );
            assert_eq!(value["meeting_uuid"], object["uuid"]);
            assert_eq!(value["topic"], object["topic"]);
            assert_eq!(value["host_id"], object["host_id"]);
            assert_eq!(value["host_email"], object["host_email"]);
            assert_eq!(
                value["start_time"],
                rfc3339_millis(object["start_time"].as_str().unwrap())
            );
            for field in [
                "file_type",
                "file_extension",
                "file_size",
                "status",
                "recording_type",
                "play_url",
                "download_url",
            ] {
                assert_eq!(value[field], file[field], "{name}: {field}");
            }
            assert_eq!(
                value["recording_start"],
                rfc3339_millis(file["recording_start"].as_str().unwrap())
            );
            assert_eq!(
                value["recording_end"],
                rfc3339_millis(file["recording_end"].as_str().unwrap())
            );
            assert_eq!(
                value["download_token"], recording["download_token"],
                "top-level download_token"
            );
            let with_token = format!(
                "{}?access_token={}",
                file["download_url"].as_str().unwrap(),
                recording["download_token"].as_str().unwrap()
            );
            assert_eq!(value["download_url_with_token"], with_token);
        }
    }

    // Meeting sources: the object's fields, string ids, timestamps in millis.
    let ended: Value = serde_json::from_slice(&fixture("meeting.ended.json")).unwrap();
    let (record, value) = &by_source["meeting-ended"][0];
    assert_eq!(
        record.key_str().as_deref(),
        ended["payload"]["object"]["uuid"].as_str()
    );
    assert_eq!(
        value["event_id"],
        event_ids[&(App::ZOOM, "meeting.ended.json".to_owned())]
    );
    assert_eq!(value["event"], "meeting.ended");
    assert_eq!(value["meeting_id"], "1234567890");
    assert_eq!(value["meeting_uuid"], ended["payload"]["object"]["uuid"]);
    assert_eq!(value["host_id"], ended["payload"]["object"]["host_id"]);
    assert_eq!(value["topic"], "My Meeting");
    assert_eq!(value["type"], 3);
    assert_eq!(value["duration"], 60);
    assert_eq!(value["timezone"], "America/Los_Angeles");
    assert_eq!(value["start_time"], rfc3339_millis("2021-07-13T21:44:51Z"));
    assert_eq!(value["end_time"], rfc3339_millis("2021-07-13T23:00:51Z"));
    assert_eq!(value["operator"], "admin@example.com");
    assert_eq!(value["operator_id"], "z8yCxjabcdEFGHfp8uQ");
    assert_eq!(value["account_id"], "AAAAAABBBB");
    let object_json: Value = serde_json::from_str(value["object_json"].as_str().unwrap()).unwrap();
    assert_eq!(
        object_json, ended["payload"]["object"],
        "the full object is kept"
    );

    let (_, created) = &by_source["meeting-created"][0];
    assert_eq!(created["event"], "meeting.created.by_me");
    assert_eq!(created["wire_event"], "meeting.created");
    assert_eq!(
        created["meeting_id"], "1234567890",
        "numeric object.id as a string"
    );
    let (_, admin_created) = &by_source["admin-meeting-created"][0];
    assert_eq!(admin_created["event"], "meeting.created");

    // Participants: the participant's fields.
    let joined: Value =
        serde_json::from_slice(&fixture("meeting.participant_joined.json")).unwrap();
    let participant = &joined["payload"]["object"]["participant"];
    let of_event = |source: &str, event: &str| {
        by_source[source]
            .iter()
            .find(|(_, v)| v["event"] == event)
            .unwrap_or_else(|| panic!("{source} has no {event}"))
            .1
            .clone()
    };
    let value = &of_event("meeting-participants", "meeting.participant_joined");
    assert_eq!(value["user_name"], participant["user_name"]);
    assert_eq!(value["email"], participant["email"]);
    assert_eq!(value["participant_uuid"], participant["participant_uuid"]);
    assert_eq!(value["join_time"], rfc3339_millis("2021-07-13T21:44:51Z"));

    // The custom source keeps the whole webhook.
    let value = &of_event("custom-meeting-activity", "meeting.participant_joined");
    let body: Value = serde_json::from_str(value["body_json"].as_str().unwrap()).unwrap();
    assert_eq!(body, joined);

    let page = reqwest::get(format!("http://{}/metrics", processor.metrics_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(&page, "zoomstream_processor_records_in_total"),
        event_ids.len() as f64
    );
    assert_eq!(
        metric(
            &page,
            r#"zoomstream_processor_records_out_total{source="recording-completed"}"#
        ),
        2.0
    );
    processor.stop().await.expect("clean stop");
    ingest.stop().await.expect("clean stop");
}

const VARIANT_SOURCES: &str = r#"
[[source]]
name = "created-by-me"
app = "zoom"
events = ["meeting.created.by_me"]
topic = "by-me"
schema = "meeting.avsc"

[[source]]
name = "created-for-me"
app = "zoom"
events = ["meeting.created.for_me"]
topic = "for-me"
schema = "meeting.avsc"

[[source]]
name = "everything-meeting"
app = "zoom"
events = ["meeting.*"]
topic = "meeting-all"
schema = "envelope.avsc"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn by_me_and_for_me_follow_the_configured_user_each_way() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    create_topic(&brokers, &raw_topic, 1).await;
    let sources = TestSources::new(VARIANT_SOURCES);
    let mut config = processor_config(&brokers, &raw_topic, &sources);
    config.zoom_user_id = Some(ME.into());
    config.delivery = Delivery::AtLeastOnce;
    let group = config.group_id.clone();
    let processor = ProcessorApp::start(config).await;

    let created: Value = serde_json::from_slice(&fixture("meeting.created.json")).unwrap();
    // 1: created by me (I am the operator), hosted by someone else.
    let by_me = created.clone();
    // 2: created by someone else, hosted by me.
    let mut for_me = created.clone();
    for_me["payload"]["operator_id"] = json!("someone-else");
    for_me["payload"]["operator"] = json!("other@example.com");
    for_me["payload"]["object"]["host_id"] = json!(ME);
    for_me["payload"]["object"]["uuid"] = json!("for-me-uuid");
    // 3: neither.
    let mut neither = created.clone();
    neither["payload"]["operator_id"] = json!("someone-else");
    neither["payload"]["operator"] = json!("other@example.com");
    neither["payload"]["object"]["uuid"] = json!("neither-uuid");

    let producer = producer(&brokers);
    for body in [&by_me, &for_me, &neither] {
        let bytes = serde_json::to_vec(body).unwrap();
        let hdrs = raw_headers(App::ZOOM, &bytes);
        let hdrs: Vec<(&str, &str)> = hdrs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        produce_raw(&producer, &raw_topic, None, &bytes, &hdrs);
    }
    let raw = read_topic_until(&brokers, &raw_topic, Duration::from_secs(30), |r| {
        r.len() == 3
    });
    wait_processed(&brokers, &group, &raw_topic, &raw, Duration::from_secs(60));

    let uuids = |topic: &str, schema: &apache_avro::Schema| -> Vec<String> {
        read_all(&brokers, topic)
            .iter()
            .map(|r| decode(r, schema))
            .map(|v| {
                v["meeting_uuid"]
                    .as_str()
                    .or(v["object_id"].as_str())
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    };
    let by_me_src = sources.source("created-by-me");
    let for_me_src = sources.source("created-for-me");
    assert_eq!(
        uuids(&by_me_src.topic, &by_me_src.schema),
        ["4444AAAiAAAAAiAiAiiAii=="]
    );
    assert_eq!(
        uuids(&for_me_src.topic, &for_me_src.schema),
        ["for-me-uuid"]
    );
    // A wildcard over the Zoom app's names: the two variant events, not the third (the Zoom
    // app does not offer plain meeting.created).
    let all = sources.source("everything-meeting");
    let mut events: Vec<String> = read_all(&brokers, &all.topic)
        .iter()
        .map(|r| decode(r, &all.schema)["event"].as_str().unwrap().to_owned())
        .collect();
    events.sort();
    assert_eq!(events, ["meeting.created.by_me", "meeting.created.for_me"]);
    processor.stop().await.expect("clean stop");
}

const POISON_SOURCES: &str = r#"
[[source]]
name = "recordings"
app = "zoom"
events = ["recording.completed"]
topic = "recordings"
schema = "recording_file.avsc"

[[source]]
name = "started"
app = "zoom"
events = ["meeting.started"]
topic = "started"
schema = "meeting.avsc"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn poison_records_go_to_the_dlq_with_their_reason_and_the_stream_keeps_flowing() {
    for delivery in [Delivery::ExactlyOnce, Delivery::AtLeastOnce] {
        let brokers = brokers();
        let raw_topic = unique("raw");
        create_topic(&brokers, &raw_topic, 1).await;
        let sources = TestSources::new(POISON_SOURCES);
        let mut config = processor_config(&brokers, &raw_topic, &sources);
        config.delivery = delivery;
        // Output records up to 2 × 512 KiB + 64 KiB (record_size.rs).
        config.max_body_bytes = 512 * 1024;
        let group = config.group_id.clone();
        let dlq = config.dlq_topic.clone();
        let processor = ProcessorApp::start(config).await;

        let producer = producer(&brokers);
        let mut no_files: Value =
            serde_json::from_slice(&fixture("recording.completed.json")).unwrap();
        no_files["payload"]["object"]
            .as_object_mut()
            .unwrap()
            .remove("recording_files");
        let no_files = serde_json::to_vec(&no_files).unwrap();
        let with_topic_of = |len: usize| {
            let mut v: Value = serde_json::from_slice(&fixture("meeting.started.json")).unwrap();
            v["payload"]["object"]["topic"] = json!("x".repeat(len));
            serde_json::to_vec(&v).unwrap()
        };
        // Its record (the topic twice: as a field and in object_json) is over the producer's
        // message.max.bytes (sized from a 512 KiB body limit above): it can never be written.
        let too_big = with_topic_of(600_000);
        let huge = with_topic_of(300_000);
        let unknown =
            br#"{"event":"whiteboard.future_event_2027","event_ts":1,"payload":{"account_id":"a"}}"#
                .to_vec();
        // (expected dead-letter reason, raw value, raw headers)
        type Poison<'a> = (&'a str, Vec<u8>, Vec<(&'a str, &'a str)>);
        let poison: Vec<Poison> = vec![
            (
                "not_json",
                b"\xff\xfe not json".to_vec(),
                vec![(headers::APP, "zoom")],
            ),
            (
                "no_event",
                br#"{"payload":{}}"#.to_vec(),
                vec![(headers::APP, "zoom")],
            ),
            ("no_recording_files", no_files, vec![(headers::APP, "zoom")]),
            ("unknown_event", unknown, vec![(headers::APP, "zoom")]),
            ("missing_header", fixture("meeting.started.json"), vec![]),
            (
                "unknown_app",
                fixture("meeting.started.json"),
                vec![(headers::APP, "slack")],
            ),
            ("output_rejected", too_big, vec![(headers::APP, "zoom")]),
        ];
        for (_, payload, hdrs) in &poison {
            produce_raw(&producer, &raw_topic, Some("k"), payload, hdrs);
        }
        // An enormous but valid webhook, then a good one: both still flow.
        produce_raw(
            &producer,
            &raw_topic,
            None,
            &huge,
            &[(headers::APP, "zoom")],
        );
        let good = fixture("meeting.started.json");
        let good_headers = raw_headers(App::ZOOM, &good);
        let good_headers: Vec<(&str, &str)> = good_headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        produce_raw(&producer, &raw_topic, None, &good, &good_headers);

        let raw = read_topic_until(&brokers, &raw_topic, Duration::from_secs(30), |r| {
            r.len() == poison.len() + 2
        });
        wait_processed(&brokers, &group, &raw_topic, &raw, Duration::from_secs(60));

        let dead = read_all(&brokers, &dlq);
        let reasons: Vec<String> = dead
            .iter()
            .map(|r| r.header(headers::DLQ_REASON).unwrap())
            .collect();
        let expected: Vec<&str> = poison.iter().map(|(reason, _, _)| *reason).collect();
        assert_eq!(
            reasons, expected,
            "{delivery:?}: each poison record dead-lettered once, in order"
        );
        for (record, (reason, payload, _)) in dead.iter().zip(&poison) {
            assert_eq!(
                record.payload.as_ref(),
                Some(payload),
                "{reason}: the original value is kept"
            );
            assert_eq!(
                record.key_str().as_deref(),
                Some("k"),
                "{reason}: the original key is kept"
            );
            assert!(
                !record.header(headers::DLQ_DETAIL).unwrap().is_empty(),
                "{reason}: a detail"
            );
            let origin = record.header(headers::DLQ_ORIGIN).unwrap();
            assert!(
                origin.starts_with(&format!("{raw_topic}/0/")),
                "{reason}: origin {origin}"
            );
        }
        assert_eq!(
            dead[2].header(headers::DLQ_SOURCE).as_deref(),
            Some("recordings")
        );
        assert_eq!(
            dead[6].header(headers::DLQ_SOURCE).as_deref(),
            Some("started")
        );

        let started = sources.source("started");
        let flowed: Vec<Value> = read_all(&brokers, &started.topic)
            .iter()
            .map(|r| decode(r, &started.schema))
            .collect();
        assert_eq!(
            flowed.len(),
            2,
            "{delivery:?}: the huge and the good meeting.started both flow"
        );
        assert_eq!(flowed[0]["topic"].as_str().map(str::len), Some(300_000));
        assert_eq!(flowed[1]["meeting_uuid"], "Wk9PTV9NRUVUSU5HX0lE");
        processor.stop().await.expect("clean stop");
    }
}

const BACKFILL_BEFORE: &str = r#"
[[source]]
name = "started"
app = "zoom"
events = ["meeting.started"]
topic = "started"
schema = "meeting.avsc"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_fills_a_new_source_from_history_without_touching_the_others() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    create_topic(&brokers, &raw_topic, 2).await;
    let before = TestSources::new(BACKFILL_BEFORE);
    let config = processor_config(&brokers, &raw_topic, &before);
    let group = config.group_id.clone();
    let processor = ProcessorApp::start(config).await;

    let producer = producer(&brokers);
    let mut sent = 0;
    for (name, body) in event_fixtures() {
        for i in 0..3 {
            let mut v: Value = serde_json::from_slice(&body).unwrap();
            v["event_ts"] = json!(1_700_000_000_000i64 + i);
            let bytes = serde_json::to_vec(&v).unwrap();
            let hdrs = raw_headers(App::ZOOM, &bytes);
            let hdrs: Vec<(&str, &str)> =
                hdrs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            produce_raw(&producer, &raw_topic, Some(&name), &bytes, &hdrs);
            sent += 1;
        }
    }
    let raw = read_topic_until(&brokers, &raw_topic, Duration::from_secs(30), |r| {
        r.len() == sent
    });
    wait_processed(&brokers, &group, &raw_topic, &raw, Duration::from_secs(60));
    processor.stop().await.unwrap();

    // A source added later, in the same file as the existing one (same topic names).
    let added = format!(
        "{}\n[[source]]\nname = \"ended\"\napp = \"zoom\"\nevents = [\"meeting.ended\"]\ntopic = \"{}.ended\"\nschema = \"{}/meeting.avsc\"\n",
        std::fs::read_to_string(&before.path).unwrap(),
        before.prefix,
        schemas_dir().display()
    );
    std::fs::write(&before.path, added).unwrap();
    let mut backfill = processor_config(&brokers, &raw_topic, &before);
    backfill.group_id = group.clone();
    backfill.backfill_source = Some("ended".into());
    // The backfill exits by itself once it has read the raw topic to its end.
    let run = zoomstream_processors::Processor::build(backfill)
        .await
        .expect("backfill builds");
    tokio::time::timeout(
        Duration::from_secs(120),
        run.run_until(zoomstream_runtime::shutdown::ShutdownToken::new()),
    )
    .await
    .expect("the backfill finishes")
    .expect("the backfill succeeds");

    let ended = read_all(&brokers, &format!("{}.ended", before.prefix));
    assert_eq!(ended.len(), 3, "every meeting.ended of history");
    let started = read_all(&brokers, &format!("{}.started", before.prefix));
    assert_eq!(started.len(), 3, "the existing source is not written again");
}
