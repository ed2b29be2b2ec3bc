//! Zoom's redeliveries are written once: a webhook delivered again (same event id, new
//! signature) after the processor that wrote it was SIGKILLed and restarted, or after its
//! partitions moved to another processor, is not written to a source again; a source with
//! `keep_redeliveries = true` still gets every delivery; the metric counts what was dropped.

use std::time::Duration;

use zoomstream_schemas::raw::headers;
use zoomstream_tests::*;

const SECRET: &str = "zoom-app-secret";

const SOURCES: &str = r#"
[[source]]
name = "started"
app = "zoom"
events = ["meeting.started"]
topic = "zoom.started"
schema = "meeting.avsc"

[[source]]
name = "started-every-delivery"
app = "zoom"
events = ["meeting.started"]
topic = "zoom.started-every-delivery"
schema = "meeting.avsc"
[source.options]
keep_redeliveries = true

[[source]]
name = "ended"
app = "zoom"
events = ["meeting.ended"]
topic = "zoom.ended"
schema = "meeting.avsc"
"#;

const DROPPED: &str = r#"zoomstream_processor_redeliveries_dropped_total{source="started"}"#;

/// Posts `meeting.started` as Zoom delivers it, signed at `base - attempt`: each attempt has its
/// own signature (as Zoom's retries do), so ingest's replay check passes it.
async fn deliver_started(
    client: &reqwest::Client,
    ingest: &IngestApp,
    base: u64,
    attempt: u64,
) -> String {
    let signed = sign_at(SECRET, &fixture("meeting.started.json"), base - attempt);
    let response = post_signed(
        client,
        &ingest.url("/webhooks/zoom"),
        &signed,
        &format!("attempt-{attempt}"),
    )
    .await;
    assert_eq!(response.status(), 200, "attempt {attempt}");
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        answer["status"], "accepted",
        "attempt {attempt} is published"
    );
    answer["event_id"].as_str().unwrap().to_owned()
}

/// Waits until the group has processed the `expected` raw records.
fn wait_raw_processed(brokers: &str, group: &str, raw_topic: &str, expected: usize) {
    let raw = read_topic_until(brokers, raw_topic, Duration::from_secs(60), |r| {
        r.len() >= expected
    });
    wait_processed(brokers, group, raw_topic, &raw, Duration::from_secs(90));
}

struct Setup {
    brokers: String,
    raw_topic: String,
    sources: TestSources,
    ingest: IngestApp,
    client: reqwest::Client,
    config: zoomstream_processors::Config,
    /// The signing time of the first delivery; attempt k is signed k seconds earlier.
    base: u64,
}

async fn setup() -> Setup {
    let brokers = brokers();
    let raw_topic = unique("raw");
    let sources = TestSources::new(SOURCES);
    let ingest = IngestApp::start(ingest_config(&brokers, &raw_topic, SECRET)).await;
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;
    let config = processor_config(&brokers, &raw_topic, &sources);
    Setup {
        brokers,
        raw_topic,
        sources,
        ingest,
        client,
        config,
        base: now_secs(),
    }
}

impl Setup {
    /// (records of `started`, records of `started-every-delivery`), each as event ids.
    fn written(&self) -> (Vec<String>, Vec<String>) {
        let ids = |source: &str| -> Vec<String> {
            read_all(&self.brokers, &self.sources.source(source).topic)
                .iter()
                .map(|r| r.header(headers::EVENT_ID).expect("an event id header"))
                .collect()
        };
        (ids("started"), ids("started-every-delivery"))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivery_after_a_processor_sigkill_is_written_once() {
    let s = setup().await;
    let group = s.config.group_id.clone();
    let mut processor = ProcessorProcess::spawn(&s.config, "p1");
    let event_id = deliver_started(&s.client, &s.ingest, s.base, 0).await;
    wait_raw_processed(&s.brokers, &group, &s.raw_topic, 1);

    processor.kill();
    let processor = ProcessorProcess::spawn(&s.config, "p1");
    let again = deliver_started(&s.client, &s.ingest, s.base, 2).await;
    assert_eq!(again, event_id, "a redelivery keeps its event id");
    wait_raw_processed(&s.brokers, &group, &s.raw_topic, 2);

    let (started, every) = s.written();
    assert_eq!(started, std::slice::from_ref(&event_id), "written once");
    assert_eq!(
        every,
        [event_id.clone(), event_id],
        "kept by the opted-out source"
    );
    assert_eq!(processor.metric(DROPPED), 1.0);
    figures!("redeliveries, after a SIGKILL and restart: 2 deliveries of one event → 1 record (1 dropped); the keep_redeliveries source got 2");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivery_after_a_rebalance_is_written_once() {
    let s = setup().await;
    let group = s.config.group_id.clone();
    let mut first = ProcessorProcess::spawn_dynamic(&s.config, "first");
    let event_id = deliver_started(&s.client, &s.ingest, s.base, 0).await;
    wait_raw_processed(&s.brokers, &group, &s.raw_topic, 1);

    // A second processor joins, the first leaves: every partition moves to the second.
    let second = ProcessorProcess::spawn_dynamic(&s.config, "second");
    wait_for(
        "the second processor to serve metrics",
        Duration::from_secs(30),
        || async { second.metrics().is_some() },
    )
    .await;
    assert!(first.terminate().success());
    deliver_started(&s.client, &s.ingest, s.base, 2).await;
    deliver_started(&s.client, &s.ingest, s.base, 3).await;
    wait_raw_processed(&s.brokers, &group, &s.raw_topic, 3);

    let (started, every) = s.written();
    assert_eq!(started, std::slice::from_ref(&event_id), "written once");
    assert_eq!(every.len(), 3, "kept by the opted-out source");
    assert_eq!(second.metric(DROPPED), 2.0, "the new owner dropped both");
    figures!("redeliveries, after a rebalance: 3 deliveries of one event → 1 record (2 dropped by the partition's new owner); the keep_redeliveries source got 3");
}
