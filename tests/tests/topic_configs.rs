//! Created topics take configs per kind: the raw topic (the system of record) is kept for ever
//! unless bounded, source topics a week, the DLQ 30 days; every one stores the largest record
//! of the body limit; the operator's `--<kind>-topic-config` flags win.

use zoomstream_runtime::record_size::{
    max_output_record_bytes, max_record_bytes, DEFAULT_MAX_BODY_BYTES,
};
use zoomstream_tests::*;

const SECRET: &str = "zoom-app-secret";

#[tokio::test(flavor = "multi_thread")]
async fn created_topics_take_the_documented_defaults_per_kind() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    let sources = TestSources::shipped();
    let ingest = IngestApp::start(ingest_config(&brokers, &raw_topic, SECRET)).await;
    ingest.wait_ready(&reqwest::Client::new()).await;
    let config = processor_config(&brokers, &raw_topic, &sources);
    let dlq = config.dlq_topic.clone();
    let processor = ProcessorApp::start(config).await;

    let raw = topic_configs(&brokers, &raw_topic).await;
    assert_eq!(raw["retention.ms"], "-1", "the raw topic is kept for ever");
    let raw_size = max_record_bytes(DEFAULT_MAX_BODY_BYTES).to_string();
    assert_eq!(raw["max.message.bytes"], raw_size);

    let output_size = max_output_record_bytes(DEFAULT_MAX_BODY_BYTES).to_string();
    for source in &sources.file.sources {
        let configs = topic_configs(&brokers, &source.topic).await;
        assert_eq!(configs["retention.ms"], "604800000", "{}", source.name);
        assert_eq!(configs["max.message.bytes"], output_size, "{}", source.name);
    }
    let dlq_configs = topic_configs(&brokers, &dlq).await;
    assert_eq!(dlq_configs["retention.ms"], "2592000000");
    assert_eq!(dlq_configs["max.message.bytes"], output_size);
    processor.stop().await.unwrap();
    ingest.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operators_topic_configs_win_per_kind() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    let sources = TestSources::shipped();
    // As an operator bounds the raw topic: through the binary's environment.
    let ingest = IngestProcess::spawn(&[
        ("ZOOMSTREAM_KAFKA_BROKERS", brokers.clone()),
        ("ZOOMSTREAM_ZOOM_SECRET_TOKEN", SECRET.to_owned()),
        ("ZOOMSTREAM_RAW_TOPIC", raw_topic.clone()),
        (
            "ZOOMSTREAM_RAW_TOPIC_CONFIG",
            "retention.ms=7776000000,retention.bytes=1073741824".to_owned(),
        ),
    ]);
    ingest.wait_ready(&reqwest::Client::new()).await;
    let mut config = processor_config(&brokers, &raw_topic, &sources);
    config.source_topic_configs = vec![("retention.ms".into(), "86400000".into())];
    config.dlq_topic_configs = vec![("cleanup.policy".into(), "compact,delete".into())];
    let dlq = config.dlq_topic.clone();
    let processor = ProcessorApp::start(config).await;

    let raw = topic_configs(&brokers, &raw_topic).await;
    assert_eq!(raw["retention.ms"], "7776000000");
    assert_eq!(raw["retention.bytes"], "1073741824");
    let source = topic_configs(&brokers, &sources.source("meeting-started").topic).await;
    assert_eq!(source["retention.ms"], "86400000");
    let dlq_configs = topic_configs(&brokers, &dlq).await;
    assert_eq!(dlq_configs["cleanup.policy"], "compact,delete");
    assert_eq!(dlq_configs["retention.ms"], "2592000000", "defaults kept");
    processor.stop().await.unwrap();
}
