//! One size limit for a webhook, from the HTTP body to every Kafka client and topic that carries
//! it. Ingest's body limit (`ZOOMSTREAM_MAX_BODY_BYTES`, read by ingest and the processors)
//! decides the largest Kafka record: the body plus room for its key, headers and batch framing.
//! The producers' `message.max.bytes`, the topics' `max.message.bytes` and the processors'
//! fetch sizes are all derived from it (source records up to twice the body, see
//! [`max_output_record_bytes`]), so a body ingest accepts is never refused further on
//! (librdkafka's and Kafka's defaults stop at about 1 MB).

use std::time::Duration;

use anyhow::Context as _;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka::KafkaArgs;

/// The default body limit: 4 MiB (Zoom's largest documented payloads are far smaller).
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Room a record takes beyond its body: key, headers (app, event, event id, signature,
/// timestamps, request/tracking ids, traceparent, dead-letter reasons) and batch framing.
pub const RECORD_OVERHEAD_BYTES: usize = 64 * 1024;

/// The largest record that carries a body of `max_body_bytes`.
pub fn max_record_bytes(max_body_bytes: usize) -> usize {
    max_body_bytes.saturating_add(RECORD_OVERHEAD_BYTES)
}

/// The largest record a processor writes for a body of `max_body_bytes`: a source record
/// carries fields taken from the body and the body's object again as JSON (`object_json`), so
/// up to twice the body; a dead letter carries the raw record and its reasons.
pub fn max_output_record_bytes(max_body_bytes: usize) -> usize {
    max_body_bytes
        .saturating_mul(2)
        .saturating_add(RECORD_OVERHEAD_BYTES)
}

/// The topic config that lets a topic store records of `max_record_bytes`.
pub fn topic_config(max_record_bytes: usize) -> (String, String) {
    ("max.message.bytes".to_owned(), max_record_bytes.to_string())
}

/// Why an existing topic cannot be used as it is.
#[derive(Debug, thiserror::Error)]
pub enum TopicCheckError {
    #[error("topic {0} does not exist yet")]
    Missing(String),
    #[error("could not read the configs of topic {topic}")]
    Unreachable {
        topic: String,
        #[source]
        source: anyhow::Error,
    },
    #[error(
        "topic {topic} stores records of at most {found} bytes (max.message.bytes), but a body \
         of up to {max_body} bytes (ZOOMSTREAM_MAX_BODY_BYTES) needs {needed}: raise it with \
         `kafka-configs.sh --bootstrap-server <brokers> --alter --entity-type topics \
         --entity-name {topic} --add-config max.message.bytes={needed}`, or lower \
         ZOOMSTREAM_MAX_BODY_BYTES"
    )]
    TooSmall {
        topic: String,
        found: u64,
        needed: usize,
        max_body: usize,
    },
}

impl TopicCheckError {
    /// Whether waiting may help (the topic may yet be created, the broker may come back).
    pub fn is_transient(&self) -> bool {
        !matches!(self, TopicCheckError::TooSmall { .. })
    }
}

/// Checks that `topic` exists and stores records that carry bodies of `max_body_bytes`.
pub async fn check_topic_fits(
    kafka: &KafkaArgs,
    topic: &str,
    max_body_bytes: usize,
) -> Result<(), TopicCheckError> {
    let unreachable = |source: anyhow::Error| TopicCheckError::Unreachable {
        topic: topic.to_owned(),
        source,
    };
    let admin: AdminClient<DefaultClientContext> = kafka
        .client_config(&[])
        .create()
        .context("creating the Kafka admin client")
        .map_err(unreachable)?;
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(5)));
    let results = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &options)
        .await
        .context("asking Kafka for the topic's configs")
        .map_err(unreachable)?;
    let resource = match results.into_iter().next() {
        Some(Ok(resource)) => resource,
        Some(Err(RDKafkaErrorCode::UnknownTopicOrPartition)) => {
            return Err(TopicCheckError::Missing(topic.to_owned()))
        }
        Some(Err(code)) => {
            return Err(unreachable(anyhow::anyhow!(
                "describing the topic's configs: {code}"
            )))
        }
        None => return Err(unreachable(anyhow::anyhow!("Kafka answered no configs"))),
    };
    let found: u64 = resource
        .get("max.message.bytes")
        .and_then(|entry| entry.value.as_deref())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| unreachable(anyhow::anyhow!("the topic has no max.message.bytes")))?;
    let needed = max_record_bytes(max_body_bytes);
    if found < needed as u64 {
        return Err(TopicCheckError::TooSmall {
            topic: topic.to_owned(),
            found,
            needed,
            max_body: max_body_bytes,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_limit_leaves_room_for_headers_and_framing() {
        assert_eq!(max_record_bytes(4 * 1024 * 1024), 4 * 1024 * 1024 + 65536);
        assert_eq!(max_record_bytes(usize::MAX), usize::MAX);
        assert_eq!(max_output_record_bytes(1000), 2000 + 65536);
        assert_eq!(
            topic_config(1000),
            ("max.message.bytes".to_owned(), "1000".to_owned())
        );
    }

    #[test]
    fn only_a_too_small_topic_is_final() {
        let small = TopicCheckError::TooSmall {
            topic: "raw".into(),
            found: 1_048_588,
            needed: 4_259_840,
            max_body: 4_194_304,
        };
        assert!(!small.is_transient());
        assert!(small.to_string().contains("max.message.bytes=4259840"));
        assert!(TopicCheckError::Missing("raw".into()).is_transient());
    }
}
