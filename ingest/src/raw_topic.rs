//! The raw topic at start: created when missing (with its configs), then checked to store the
//! largest body ingest accepts. Kafka may come up after ingest, so both are retried until they
//! succeed; a topic that is there but too small is final and stops ingest with the fix named.

use std::time::Duration;

use zoomstream_runtime::kafka::{ensure_topics, KafkaArgs, TopicSpec};
use zoomstream_runtime::record_size::{check_topic_fits, TopicCheckError};
use zoomstream_runtime::shutdown::ShutdownToken;

const RETRY_EVERY: Duration = Duration::from_secs(2);

/// What ingest does with its raw topic before it can be ready.
pub struct RawTopicSetup {
    pub kafka: KafkaArgs,
    pub topic: String,
    /// The topic to create when missing; `None` where topics are provisioned separately.
    pub create: Option<TopicSpec>,
    pub max_body_bytes: usize,
    /// Off only for `zoomstream dev`'s mock cluster, which keeps no topic configs.
    pub check: bool,
}

impl RawTopicSetup {
    /// Returns once the topic exists and fits (or at shutdown); an error only for a topic that
    /// can never take ingest's bodies.
    pub async fn run(self, shutdown: ShutdownToken) -> Result<(), TopicCheckError> {
        loop {
            match self.attempt().await {
                Ok(()) => return Ok(()),
                Err(err) if !err.is_transient() => {
                    tracing::error!(error = %err, "the raw topic cannot store ingest's largest bodies");
                    return Err(err);
                }
                Err(err) => {
                    tracing::warn!(topic = %self.topic, error = format!("{:#}", anyhow::Error::from(err)), "raw topic not ready yet; retrying")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(RETRY_EVERY) => {}
            }
        }
    }

    async fn attempt(&self) -> Result<(), TopicCheckError> {
        if let Some(spec) = &self.create {
            ensure_topics(&self.kafka, std::slice::from_ref(spec))
                .await
                .map_err(|source| TopicCheckError::Unreachable {
                    topic: self.topic.clone(),
                    source,
                })?;
        }
        if !self.check {
            return Ok(());
        }
        check_topic_fits(&self.kafka, &self.topic, self.max_body_bytes).await
    }
}
