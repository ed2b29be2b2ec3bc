//! A user's cluster may compress: ingest producing zstd batches (`ZOOMSTREAM_KAFKA_OPTIONS=
//! compression.type=zstd`) and another producer writing lz4 batches to the raw topic are both
//! read by the processor and routed (librdkafka is built with zstd; lz4 is built in).

use std::time::Duration;

use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use rdkafka::ClientConfig;
use zoomstream_schemas::App;
use zoomstream_tests::*;

const SECRET: &str = "zoom-app-secret";

#[tokio::test(flavor = "multi_thread")]
async fn zstd_and_lz4_compressed_raw_batches_are_read_and_routed() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    let sources = TestSources::shipped();
    let mut config = ingest_config(&brokers, &raw_topic, SECRET);
    config
        .kafka
        .options
        .push(("compression.type".into(), "zstd".into()));
    let ingest = IngestApp::start(config).await;
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;
    let processor = ProcessorApp::start(processor_config(&brokers, &raw_topic, &sources)).await;

    let body = fixture("meeting.started.json");
    let response = post_signed(
        &client,
        &ingest.url("/webhooks/zoom"),
        &sign(SECRET, &body),
        "zstd",
    )
    .await;
    assert_eq!(response.status(), 200, "published in a zstd batch");

    let lz4: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("compression.type", "lz4")
        .create()
        .expect("an lz4 producer");
    let ended = fixture("meeting.ended.json");
    let headers = raw_headers(App::ZOOM, &ended);
    let mut hdrs = rdkafka::message::OwnedHeaders::new();
    for (k, v) in &headers {
        hdrs = hdrs.insert(rdkafka::message::Header {
            key: k,
            value: Some(v),
        });
    }
    lz4.send(
        BaseRecord::<str, [u8]>::to(&raw_topic)
            .key("lz4")
            .payload(ended.as_slice())
            .headers(hdrs),
    )
    .map_err(|(e, _)| e)
    .unwrap();
    lz4.flush(Duration::from_secs(30)).unwrap();

    for source in ["meeting-started", "meeting-ended"] {
        let topic = &sources.source(source).topic;
        let records = read_topic_until(&brokers, topic, Duration::from_secs(60), |r| !r.is_empty());
        assert_eq!(records.len(), 1, "{source}");
    }
    figures!("compression: a zstd batch from ingest and an lz4 batch from another producer were both routed");
    processor.stop().await.unwrap();
    ingest.stop().await.unwrap();
}
