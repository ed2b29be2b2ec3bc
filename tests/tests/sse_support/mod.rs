//! What the SSE tests share: the token and sources they use, the service's config, a metric
//! reader, and feeding source topics (directly, as the processor writes them, or through ingest
//! and a processor).
#![allow(dead_code)] // each test file uses its own part

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;

use rdkafka::producer::{BaseProducer, Producer as _};
use serde_json::Value;
use zoomstream_processors::outputs;
use zoomstream_processors::route::Route;
use zoomstream_schemas::mapping::{self, RawEvent};
use zoomstream_schemas::raw;
use zoomstream_schemas::sources::Source;
use zoomstream_schemas::App;
use zoomstream_tests::*;

pub const TOKEN: &str = "sse-test-token-4f7c";
pub const ZOOM_SECRET: &str = "zoom-app-secret";

pub const SOURCES: &str = r#"
[[source]]
name = "meeting-started"
app = "zoom"
events = ["meeting.started"]
topic = "zoom.meeting-started"
schema = "meeting.avsc"

[[source]]
name = "meeting-ended"
app = "zoom"
events = ["meeting.ended"]
topic = "zoom.meeting-ended"
schema = "meeting.avsc"
"#;

// ------------------------------------------------------------------------------------------
// The service under test

/// An in-process SSE service on a free port; stops when dropped.
pub fn sse_config(sources: &TestSources) -> zoomstream_sse::Config {
    let mut config = zoomstream_sse::Config::new(brokers(), &sources.path);
    config.token = Some(TOKEN.to_owned().into());
    // Short, so that a closed client is noticed fast (the next keep-alive write fails).
    config.keep_alive_ms = 300;
    config.retry_ms = 500;
    config
}

/// A sample value from a Prometheus page: the line of `name` carrying every label given.
pub fn sample(page: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| v.parse().expect("a number"))
        .unwrap_or(0.0)
}

// ------------------------------------------------------------------------------------------
// An SSE client

// ------------------------------------------------------------------------------------------
// Feeding source topics directly, as the processor writes them

/// A meeting.started webhook made unique by `seq` (its uuid and topic), `pad` bytes bigger.
pub fn meeting_webhook(seq: usize, pad: usize) -> Value {
    let mut envelope: Value = serde_json::from_slice(&fixture("meeting.started.json")).unwrap();
    let object = &mut envelope["payload"]["object"];
    object["uuid"] = format!("sse-meeting-{seq}").into();
    object["topic"] = format!("meeting {seq}").into();
    if pad > 0 {
        object["agenda"] = "x".repeat(pad).into();
    }
    envelope
}

/// Writes records `seqs` of the meeting-started source to its topic, record `seq` on
/// partition `seq % partitions`, exactly as the processor writes them (its mapping, encoder and
/// record builder). Returns the event id of each, by seq.
pub fn produce_meetings(
    producer: &BaseProducer,
    source: &Source,
    seqs: std::ops::Range<usize>,
    partitions: i32,
    pad: usize,
) -> HashMap<String, usize> {
    let route = Route::single_object(source.clone());
    let mut ids = HashMap::new();
    for seq in seqs {
        let envelope = meeting_webhook(seq, pad);
        let event_id = raw::event_id(App::ZOOM, &envelope);
        let raw_event = RawEvent {
            app: App::ZOOM,
            envelope: &envelope,
            event_id: &event_id,
            received_at_ms: Some(1_700_000_000_000),
        };
        let records = mapping::records(source, &raw_event, "meeting.started").expect("maps");
        assert_eq!(records.len(), 1);
        let record = &records[0];
        let bytes = route.encoder.encode(&record.value).expect("encodes");
        let mut message = outputs::source_record(&route, record, &bytes)
            .partition((seq % partitions as usize) as i32);
        loop {
            match producer.send(message) {
                Ok(()) => break,
                Err((err, back)) => {
                    assert!(
                        matches!(
                            err,
                            rdkafka::error::KafkaError::MessageProduction(
                                rdkafka::types::RDKafkaErrorCode::QueueFull
                            )
                        ),
                        "{err}"
                    );
                    producer.poll(Duration::from_millis(10));
                    message = back;
                }
            }
        }
        ids.insert(record.event_id.clone(), seq);
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("records acknowledged");
    ids
}

/// The seq of each event (by its record's event id), checking each was produced.
pub fn seqs(events: &[SseEvent], ids: &HashMap<String, usize>) -> Vec<usize> {
    events
        .iter()
        .map(|e| {
            assert_eq!(e.event, "meeting.started");
            let id = e.json()["event_id"].as_str().expect("event_id").to_owned();
            *ids.get(&id)
                .unwrap_or_else(|| panic!("an event nobody produced: {id}"))
        })
        .collect()
}

pub fn decode_id(id: &str) -> HashMap<i32, i64> {
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id)
        .expect("base64url id");
    String::from_utf8(text)
        .unwrap()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (p, o) = pair.split_once(':').expect("partition:offset");
            (p.parse().unwrap(), o.parse().unwrap())
        })
        .collect()
}

pub async fn direct_setup(partitions: i32) -> (TestSources, Source, BaseProducer) {
    let sources = TestSources::new(SOURCES);
    let source = sources.source("meeting-started").clone();
    create_topic(&brokers(), &source.topic, partitions).await;
    (sources, source, producer(&brokers()))
}

// ------------------------------------------------------------------------------------------
/// Ingest (Zoom app) and a processor over a raw topic of their own, ready for webhooks.
pub async fn start_pipeline(brokers: &str, sources: &TestSources) -> (IngestApp, ProcessorApp) {
    let raw_topic = unique("raw");
    let ingest = IngestApp::start(ingest_config(brokers, &raw_topic, ZOOM_SECRET)).await;
    ingest.wait_ready(&reqwest::Client::new()).await;
    let processor = ProcessorApp::start(processor_config(brokers, &raw_topic, sources)).await;
    (ingest, processor)
}
