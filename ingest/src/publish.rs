//! Writing verified webhooks to the raw topic, durably: acks=all, idempotent producer, and the
//! caller hears success only from the broker's acknowledgement.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use zoomstream_runtime::kafka::KafkaArgs;
use zoomstream_runtime::record_size::max_record_bytes;
use zoomstream_schemas::raw::headers;
use zoomstream_schemas::App;

use crate::events::{ProducerReplaced, PublishEnded, PublishFailed};
use crate::metrics::IngestMetrics;

/// What a webhook is published with, besides its body.
pub struct RawRecord<'a> {
    pub app: App,
    pub event: &'a str,
    pub event_id: &'a str,
    pub key: Option<&'a str>,
    pub received_at_ms: i64,
    pub zm_timestamp: &'a str,
    pub zm_signature: &'a str,
    pub zm_request_id: Option<&'a str>,
    pub zm_tracking_id: Option<&'a str>,
    pub traceparent: Option<&'a str>,
    pub body: &'a Bytes,
}

/// Why a webhook could not be made durable. All of them are transient from Zoom's point of view
/// (answered 503, so Zoom retries).
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("Kafka did not acknowledge the webhook within {0:?}")]
    Timeout(Duration),
    #[error("the Kafka producer queue is full")]
    QueueFull,
    #[error("Kafka rejected the webhook: {0}")]
    Kafka(KafkaError),
}

impl PublishError {
    /// The record can never be stored (larger than the producer's or the topic's limit):
    /// retrying would not help.
    pub fn is_too_large(&self) -> bool {
        self.kind() == "too_large"
    }

    /// A bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PublishError::Timeout(_) => "timeout",
            PublishError::QueueFull => "queue_full",
            PublishError::Kafka(KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageTimedOut,
            )) => "timeout",
            PublishError::Kafka(KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageSizeTooLarge,
            )) => "too_large",
            PublishError::Kafka(KafkaError::MessageProduction(
                RDKafkaErrorCode::ProducerFenced,
            )) => "fenced",
            PublishError::Kafka(_) => "kafka",
        }
    }
}

/// Why ingest is not ready, as `/readyz` answers it: a short code, never a topic name or a
/// library's error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error("kafka_unreachable")]
    KafkaUnreachable,
    #[error("raw_topic_missing")]
    RawTopicMissing,
    #[error("check_failed")]
    CheckFailed,
}

pub struct RawPublisher {
    /// Replaced when librdkafka reports a fatal error (an idempotence guarantee it can no
    /// longer keep): a producer in that state never sends again.
    producer: RwLock<FutureProducer>,
    config: ClientConfig,
    /// For redacting option values out of librdkafka's errors.
    kafka: KafkaArgs,
    topic: String,
    timeout: Duration,
    metrics: IngestMetrics,
}

impl RawPublisher {
    pub fn new(
        kafka: &KafkaArgs,
        topic: String,
        timeout: Duration,
        max_body_bytes: usize,
        metrics: IngestMetrics,
    ) -> anyhow::Result<Self> {
        let timeout_ms = timeout.as_millis().to_string();
        let max_record = max_record_bytes(max_body_bytes).to_string();
        let config = kafka.client_config(&[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            // Small batches: a webhook waits for its own acknowledgement.
            ("linger.ms", "2"),
            // librdkafka gives up on a record when ingest gives up on it, so a 503'd
            // webhook is rarely written later (and if it is, its event id marks the duplicate).
            ("message.timeout.ms", &timeout_ms),
            ("client.id", "zoomstream-ingest"),
            // librdkafka's default (1 MB) would refuse bodies ingest accepts.
            ("message.max.bytes", &max_record),
            // The raw topic is created with its partitions and configs (raw_topic.rs), never by
            // a metadata request racing that on a broker that auto-creates topics.
            ("allow.auto.create.topics", "false"),
        ]);
        let producer: FutureProducer = config
            .create()
            .map_err(|err| anyhow::anyhow!(kafka.redacted(&err)))
            .context("creating the Kafka producer")?;
        Ok(RawPublisher {
            producer: RwLock::new(producer),
            config,
            kafka: kafka.clone(),
            topic,
            timeout,
            metrics,
        })
    }

    fn producer(&self) -> FutureProducer {
        self.producer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces `failed` with a new producer once librdkafka declared it fatally broken, so
    /// ingest recovers without a restart. Concurrent requests that saw the same failure
    /// replace it once.
    fn recover_if_broken(&self, failed: &FutureProducer) {
        let Some((code, reason)) = failed.client().fatal_error() else {
            return;
        };
        let mut current = self.producer.write().unwrap_or_else(|p| p.into_inner());
        if current.client().native_ptr() != failed.client().native_ptr() {
            return;
        }
        ProducerReplaced {
            code,
            reason: &reason,
        }
        .emit(&self.metrics);
        match self.config.create::<FutureProducer>() {
            Ok(fresh) => *current = fresh,
            Err(err) => {
                tracing::error!(error = %self.kafka.redacted(&err), "could not create a new Kafka producer; retrying on the next failure")
            }
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Publishes one webhook and waits for the broker's acknowledgement (or the budget).
    #[tracing::instrument(level = "debug", skip_all, fields(app = %record.app, event = record.event, event_id = record.event_id))]
    pub async fn publish(&self, record: &RawRecord<'_>) -> Result<(i32, i64), PublishError> {
        let received_at = record.received_at_ms.to_string();
        let mut hdrs = OwnedHeaders::new()
            .insert(Header {
                key: headers::APP,
                value: Some(record.app.as_str()),
            })
            .insert(Header {
                key: headers::EVENT,
                value: Some(record.event),
            })
            .insert(Header {
                key: headers::EVENT_ID,
                value: Some(record.event_id),
            })
            .insert(Header {
                key: headers::RECEIVED_AT,
                value: Some(&received_at),
            })
            .insert(Header {
                key: headers::ZM_REQUEST_TIMESTAMP,
                value: Some(record.zm_timestamp),
            })
            .insert(Header {
                key: headers::ZM_SIGNATURE,
                value: Some(record.zm_signature),
            });
        for (key, value) in [
            (headers::ZM_REQUEST_ID, record.zm_request_id),
            (headers::ZM_TRACKING_ID, record.zm_tracking_id),
            (headers::TRACEPARENT, record.traceparent),
        ] {
            if let Some(value) = value {
                hdrs = hdrs.insert(Header {
                    key,
                    value: Some(value),
                });
            }
        }
        let mut fr = FutureRecord::<str, [u8]>::to(&self.topic)
            .payload(record.body.as_ref())
            .headers(hdrs);
        if let Some(key) = record.key {
            fr = fr.key(key);
        }
        let started = Instant::now();
        // Queue timeout zero: a full local queue means overload, answered at once.
        let producer = self.producer();
        let delivery = producer.send(fr, Timeout::After(Duration::ZERO));
        let result = match tokio::time::timeout(self.timeout, delivery).await {
            Err(_) => Err(PublishError::Timeout(self.timeout)),
            Ok(Ok(delivered)) => Ok((delivered.partition, delivered.offset)),
            Ok(Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))) => {
                Err(PublishError::QueueFull)
            }
            Ok(Err((err, _))) => Err(PublishError::Kafka(err)),
        };
        PublishEnded {
            elapsed: started.elapsed(),
        }
        .emit(&self.metrics);
        if let Err(error) = &result {
            PublishFailed { error }.emit(&self.metrics);
            self.recover_if_broken(&producer);
        }
        result
    }

    /// Whether the broker answers and the raw topic exists with partitions. The detail goes to
    /// the log; callers get a bounded reason.
    pub async fn ready(&self) -> Result<(), NotReady> {
        let producer = self.producer();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            let metadata = producer
                .client()
                .fetch_metadata(Some(&topic), Duration::from_secs(1))
                .map_err(|err| {
                    tracing::debug!(error = %err, "readiness: Kafka unreachable");
                    NotReady::KafkaUnreachable
                })?;
            match metadata.topics().first() {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(()),
                _ => Err(NotReady::RawTopicMissing),
            }
        })
        .await
        .unwrap_or(Err(NotReady::CheckFailed))
    }

    /// Waits for every queued record to be acknowledged; called once, at shutdown.
    pub fn flush(&self, timeout: Duration) {
        if let Err(err) = self.producer().flush(timeout) {
            tracing::error!(error = %err, "records left unacknowledged at shutdown");
        }
    }
}
