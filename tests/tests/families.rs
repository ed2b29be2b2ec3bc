//! The event families Zoom added since the seed, and Pipedream's filters, on a real broker:
//! each family's documented webhook reaches the shipped sources of each app Zoom sends it to and
//! decodes there with nothing lost; `meeting_ids`, `webinar_ids` and `hosted_by_me` keep only
//! what they name, without dead letters.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use zoomstream_processors::Delivery;
use zoomstream_schemas::App;
use zoomstream_tests::*;

/// Writes `bodies` to the raw topic as ingest would, for `app`, and waits until the processor's
/// group has handled them all.
fn produce_and_process(brokers: &str, raw_topic: &str, group: &str, bodies: &[(App, Vec<u8>)]) {
    let producer = producer(brokers);
    for (app, bytes) in bodies {
        let hdrs = raw_headers(*app, bytes);
        let hdrs: Vec<(&str, &str)> = hdrs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        produce_raw(&producer, raw_topic, None, bytes, &hdrs);
    }
    let raw = read_topic_until(brokers, raw_topic, Duration::from_secs(30), |r| {
        r.len() == bodies.len()
    });
    wait_processed(brokers, group, raw_topic, &raw, Duration::from_secs(60));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_family_added_since_the_seed_reaches_its_shipped_sources_whole() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    create_topic(&brokers, &raw_topic, 1).await;
    let sources = TestSources::shipped();
    let mut config = processor_config(&brokers, &raw_topic, &sources);
    config.delivery = Delivery::AtLeastOnce;
    let group = config.group_id.clone();
    let processor = ProcessorApp::start(config).await;

    let mut bodies = Vec::new();
    for (name, _, _) in FAMILY_FIXTURES {
        for app in App::DEFAULTS {
            bodies.push((app, fixture(name)));
        }
    }
    produce_and_process(&brokers, &raw_topic, &group, &bodies);

    // Which events each source received, as (event, decoded record).
    let mut received: HashMap<&str, Vec<Value>> = HashMap::new();
    for source in &sources.file.sources {
        let decoded = read_all(&brokers, &source.topic)
            .iter()
            .map(|r| decode(r, &source.schema))
            .collect();
        received.insert(source.name.as_str(), decoded);
    }
    for (name, zoom, admin) in FAMILY_FIXTURES {
        let sent: Value = serde_json::from_slice(&fixture(name)).unwrap();
        let event = sent["event"].as_str().unwrap();
        for (app, source) in [(App::ZOOM, zoom), (App::ZOOM_ADMIN, admin)] {
            let Some(source) = source else { continue };
            let record = received[source]
                .iter()
                .find(|v| v["wire_event"] == event)
                .unwrap_or_else(|| panic!("{source} did not receive {name}"));
            assert_eq!(record["app"], app.as_str());
            assert_eq!(record["event"], event, "{source}: the catalogue name");
            // Envelope sources keep the body, the other shapes the object.
            match record["body_json"].as_str() {
                Some(body) => assert_eq!(
                    serde_json::from_str::<Value>(body).unwrap(),
                    sent,
                    "{source} keeps {name} whole"
                ),
                None => assert_eq!(
                    serde_json::from_str::<Value>(record["object_json"].as_str().unwrap()).unwrap(),
                    sent["payload"]["object"],
                    "{source} keeps the object of {name}"
                ),
            }
        }
    }
    // Nothing else: one record per listed source, plus meeting.participant_left in both apps'
    // participant sources and phone.callee_ringing in both apps' call sources.
    let listed: usize = FAMILY_FIXTURES
        .iter()
        .map(|(_, zoom, admin)| usize::from(zoom.is_some()) + usize::from(admin.is_some()))
        .sum();
    let total: usize = received.values().map(Vec::len).sum();
    assert_eq!(total, listed + 4, "{received:#?}");
    let sources_written = received.values().filter(|v| !v.is_empty()).count();
    figures!(
        "families: {} raw records -> {total} source records on {sources_written} sources, 0 dead letters",
        bodies.len()
    );

    // meeting.participant_left, catalogued now, in the participant shape of both apps.
    let left: Value = serde_json::from_slice(&fixture("meeting.participant_left.json")).unwrap();
    for source in ["meeting-participants", "admin-meeting-participants"] {
        let record = &received[source][0];
        assert_eq!(record["event"], "meeting.participant_left");
        assert_eq!(
            record["leave_time"], 1_626_216_291_000_i64,
            "2021-07-13T22:44:51Z"
        );
        assert_eq!(
            record["leave_reason"],
            left["payload"]["object"]["participant"]["leave_reason"]
        );
    }

    // The shapes made for what users query.
    let summary = &received["meeting-summaries"][0];
    assert_eq!(summary["meeting_id"], "1234567890");
    assert_eq!(summary["summary_title"], "Quarterly planning");
    let message = &received["admin-chat-messages"][0];
    assert_eq!(message["sender_name"], "Jill Chill");
    assert_eq!(message["message_content"], "Agenda is in the doc");
    for source in ["phone-calls", "admin-phone-calls"] {
        let call = &received[source][0];
        assert_eq!(call["call_id"], "6998252113337041462");
        assert_eq!(call["caller_number"], "+12058945752");
        assert_eq!(call["callee_extension"], "1002");
    }
    // Zoom Rooms are the account's: the user-level app's copy is catalogued, not a dead letter.
    assert!(
        read_all(&brokers, &format!("{}.dlq", sources.prefix)).is_empty(),
        "no dead letters"
    );
    processor.stop().await.expect("clean stop");
}

const FILTERED_SOURCES: &str = r#"
[[source]]
name = "chosen-recordings"
app = "zoom-admin"
events = ["recording.completed"]
topic = "chosen-recordings"
schema = "recording_file.avsc"
[source.options]
meeting_ids = [1234567890]

[[source]]
name = "chosen-webinars"
app = "zoom-admin"
events = ["webinar.ended"]
topic = "chosen-webinars"
schema = "webinar.avsc"
[source.options]
webinar_ids = ["777"]

[[source]]
name = "my-meetings"
app = "zoom"
events = ["meeting.ended"]
topic = "my-meetings"
schema = "meeting.avsc"
[source.options]
hosted_by_me = true

[[source]]
name = "my-summaries"
app = "zoom"
events = ["meeting.summary_completed"]
topic = "my-summaries"
schema = "meeting_summary.avsc"
[source.options]
hosted_by_me = true
"#;

#[tokio::test(flavor = "multi_thread")]
async fn pipedreams_filters_keep_only_the_chosen_meetings_and_the_users_own() {
    const ME: &str = "x1yCzABCDEfg23HiJKl4mN";
    let brokers = brokers();
    let raw_topic = unique("raw");
    create_topic(&brokers, &raw_topic, 1).await;
    let sources = TestSources::new(FILTERED_SOURCES);
    let mut config = processor_config(&brokers, &raw_topic, &sources);
    config.zoom_user_id = Some(ME.into());
    config.delivery = Delivery::AtLeastOnce;
    let group = config.group_id.clone();
    let processor = ProcessorApp::start(config).await;

    let body = |name: &str, edit: &dyn Fn(&mut Value)| {
        let mut v: Value = serde_json::from_slice(&fixture(name)).unwrap();
        edit(&mut v);
        serde_json::to_vec(&v).unwrap()
    };
    let ended_webinar = |id: u64| {
        body("meeting.ended.json", &|v: &mut Value| {
            v["event"] = json!("webinar.ended");
            v["payload"]["object"]["id"] = json!(id);
            v["payload"]["object"]["uuid"] = json!(format!("webinar-{id}"));
        })
    };
    let bodies = vec![
        // The chosen meeting's recording, and another meeting's.
        (App::ZOOM_ADMIN, fixture("recording.completed.json")),
        (
            App::ZOOM_ADMIN,
            body("recording.completed.json", &|v: &mut Value| {
                v["payload"]["object"]["id"] = json!(42);
                v["payload"]["object"]["uuid"] = json!("other-meeting");
            }),
        ),
        (App::ZOOM_ADMIN, ended_webinar(777)),
        (App::ZOOM_ADMIN, ended_webinar(778)),
        // A meeting I host, and one someone else hosts.
        (
            App::ZOOM,
            body("meeting.ended.json", &|v: &mut Value| {
                v["payload"]["object"]["host_id"] = json!(ME);
            }),
        ),
        (
            App::ZOOM,
            body("meeting.ended.json", &|v: &mut Value| {
                v["payload"]["object"]["host_id"] = json!("someone-else");
                v["payload"]["object"]["uuid"] = json!("not-mine");
            }),
        ),
        // Summaries name the host in meeting_host_id.
        (App::ZOOM, fixture("meeting.summary_completed.json")),
        (
            App::ZOOM,
            body("meeting.summary_completed.json", &|v: &mut Value| {
                v["payload"]["object"]["meeting_host_id"] = json!("someone-else");
                v["payload"]["object"]["meeting_uuid"] = json!("not-mine");
            }),
        ),
    ];
    produce_and_process(&brokers, &raw_topic, &group, &bodies);

    let values = |name: &str, field: &str| -> Vec<String> {
        let source = sources.source(name);
        let mut out: Vec<String> = read_all(&brokers, &source.topic)
            .iter()
            .map(|r| {
                decode(r, &source.schema)[field]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        out.sort();
        out.dedup();
        out
    };
    assert_eq!(
        values("chosen-recordings", "meeting_id"),
        ["1234567890"],
        "only the chosen meeting's files"
    );
    assert_eq!(values("chosen-webinars", "webinar_id"), ["777"]);
    assert_eq!(
        values("my-meetings", "meeting_uuid"),
        ["4444AAAiAAAAAiAiAiiAii=="],
        "only the meeting I host"
    );
    assert_eq!(
        values("my-summaries", "meeting_uuid"),
        ["4444AAAiAAAAAiAiAiiAii=="]
    );
    assert!(
        read_all(&brokers, &format!("{}.dlq", sources.prefix)).is_empty(),
        "what a filter turns away is not a dead letter"
    );
    processor.stop().await.expect("clean stop");
}
