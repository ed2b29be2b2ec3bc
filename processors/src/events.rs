//! What happens in the processor, each written once: `emit()` writes the happening's log line
//! and updates its metrics together, so the two cannot drift apart (Vector's "internal
//! events", in the small). The loop, the batches and the Kafka contexts build an event and emit
//! it; they log or count nothing themselves. (The service's start and stop lines stay in
//! `lib.rs`, with the service skeleton.)

use std::fmt::Display;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaError};

use crate::dead_letter::{DeadLetter, DeadLetterReason};
use crate::metrics::{BatchOutcome, ProcessorMetrics};

// Start-up.

/// The sources file loaded with warnings: each works, but should change.
pub struct SourcesWarned<'a> {
    pub warning: &'a dyn Display,
}

impl SourcesWarned<'_> {
    pub fn emit(self) {
        tracing::warn!(warning = %self.warning, "sources file warning");
    }
}

/// Sources that decide by the configured user (by_me, for_me, hosted_by_me) while no user is
/// configured: they would stay empty without a word.
pub struct UserNotConfigured<'a> {
    pub sources: &'a [&'a str],
}

impl UserNotConfigured<'_> {
    pub fn emit(self) {
        tracing::warn!(
            sources = %self.sources.join(", "),
            "these sources decide by the configured Zoom user of their app, but it has none (--zoom-user-id / --zoom-user-email, or user_id / user_email in the apps file): they will receive nothing"
        );
    }
}

// The consumer and its group.

/// The rebalance callback is about to give partitions up.
pub struct PartitionsRevoked {
    pub partitions: usize,
}

impl PartitionsRevoked {
    pub fn emit(self) {
        tracing::info!(
            partitions = self.partitions,
            "partitions revoked; committing the open batch"
        );
    }
}

/// The open batch could not be committed before its partitions were revoked; the new owner
/// resumes from the last committed offset.
pub struct RevokeCommitFailed<'a> {
    pub error: &'a dyn Display,
}

impl RevokeCommitFailed<'_> {
    pub fn emit(self) {
        tracing::error!(error = %self.error, "could not commit before the rebalance");
    }
}

/// Partitions were assigned to this process.
pub struct PartitionsAssigned {
    pub partitions: usize,
}

impl PartitionsAssigned {
    pub fn emit(self) {
        tracing::info!(partitions = self.partitions, "partitions assigned");
    }
}

/// librdkafka's statistics gave a new consumer lag.
pub struct ConsumerLagMeasured {
    pub lag: i64,
}

impl ConsumerLagMeasured {
    pub fn emit(self, metrics: &ProcessorMetrics) {
        metrics.consumer_lag.set(self.lag);
    }
}

/// A poll returned an error; the loop goes on polling.
pub struct ConsumerErrored<'a> {
    pub error: &'a KafkaError,
}

impl ConsumerErrored<'_> {
    pub fn emit(self) {
        tracing::warn!(error = %self.error, "consumer error");
    }
}

/// Shutdown was asked for: the loop commits its open batch and returns.
pub struct Stopping;

impl Stopping {
    pub fn emit(self) {
        tracing::info!("stopping: committing the open batch");
    }
}

/// A backfill read every assigned partition to its end and committed.
pub struct BackfillCompleted;

impl BackfillCompleted {
    pub fn emit(self) {
        tracing::info!("backfill complete");
    }
}

// Batches.

/// A batch's outputs and input offsets were committed.
pub struct BatchCommitted {
    pub records: usize,
    pub partitions: usize,
    pub elapsed: Duration,
}

impl BatchCommitted {
    pub fn emit(self, metrics: &ProcessorMetrics) {
        metrics.commit_seconds.observe(self.elapsed.as_secs_f64());
        tracing::debug!(
            records = self.records,
            partitions = self.partitions,
            "batch committed"
        );
        metrics
            .batches
            .with_label_values(&[BatchOutcome::Committed.as_str()])
            .inc();
    }
}

/// A batch's commit failed; it is aborted and its records are read again.
pub struct BatchAborted<'a> {
    pub error: &'a KafkaError,
    pub records: usize,
    pub elapsed: Duration,
}

impl BatchAborted<'_> {
    pub fn emit(self, metrics: &ProcessorMetrics) {
        metrics.commit_seconds.observe(self.elapsed.as_secs_f64());
        tracing::warn!(error = %self.error, records = self.records, "batch aborted; rewinding to reprocess it");
        metrics
            .batches
            .with_label_values(&[BatchOutcome::Aborted.as_str()])
            .inc();
    }
}

/// A batch's commit failed in a way retrying cannot mend: the process stops, and the error is
/// logged where it stops.
pub struct BatchFailed {
    pub elapsed: Duration,
}

impl BatchFailed {
    pub fn emit(self, metrics: &ProcessorMetrics) {
        metrics.commit_seconds.observe(self.elapsed.as_secs_f64());
    }
}

/// A transactional call failed in a way librdkafka says may pass; it is called again.
pub struct TransactionalCallRetried<'a> {
    pub call: &'a str,
    pub attempt: usize,
    pub error: &'a RDKafkaError,
}

impl TransactionalCallRetried<'_> {
    pub fn emit(self) {
        tracing::warn!(error = %self.error, attempt = self.attempt, call = self.call, "transactional call failed; retrying");
    }
}

/// A transactional call did not return within its bound (see `call_watchdog`): the process
/// ends so that its supervisor restarts it.
pub struct TransactionalCallHung {
    pub call: &'static str,
    pub waited: std::time::Duration,
}

impl TransactionalCallHung {
    pub fn emit(self) {
        tracing::error!(
            call = self.call,
            waited_s = self.waited.as_secs_f64(),
            "transactional call hung past its timeout (librdkafka#5456); exiting so that a restart resumes from the last commit"
        );
    }
}

/// An aborted batch's partition could not be rewound: it was revoked meanwhile, and its new
/// owner resumes from the committed offset.
pub struct PartitionNotRewound<'a> {
    pub partition: i32,
    pub error: &'a KafkaError,
}

impl PartitionNotRewound<'_> {
    pub fn emit(self) {
        tracing::debug!(partition = self.partition, error = %self.error, "not rewinding a partition no longer assigned");
    }
}

/// An output was not delivered; the batch it belongs to will be retried.
pub struct OutputNotDelivered<'a> {
    pub topic: &'a str,
    pub error: &'a KafkaError,
}

impl OutputNotDelivered<'_> {
    pub fn emit(self) {
        tracing::warn!(error = %self.error, topic = self.topic, "output not delivered; the batch will be retried");
    }
}

// Records.

/// A raw record was routed, mapped and encoded.
pub struct RecordRouted {
    pub elapsed: Duration,
}

impl RecordRouted {
    pub fn emit(self, metrics: &ProcessorMetrics) {
        metrics
            .processing_seconds
            .observe(self.elapsed.as_secs_f64());
        metrics.records_in.inc();
    }
}

/// A source record was enqueued in the open batch.
pub struct SourceRecordSent<'a> {
    pub source: &'a str,
}

impl SourceRecordSent<'_> {
    pub fn emit(self, metrics: &ProcessorMetrics) {
        metrics.records_out.with_label_values(&[self.source]).inc();
    }
}

/// A dead letter was enqueued in the open batch.
pub struct RecordDeadLettered<'a> {
    pub dead: &'a DeadLetter,
    pub origin: &'a str,
}

impl RecordDeadLettered<'_> {
    pub fn emit(self, metrics: &ProcessorMetrics) {
        let dead = self.dead;
        tracing::warn!(reason = dead.reason.as_str(), detail = %dead.detail, source = dead.source.as_deref(), origin = %self.origin, "record sent to the dead-letter topic");
        metrics
            .dlq_records
            .with_label_values(&[dead.reason.as_str()])
            .inc();
    }
}

/// A dead letter did not fit with its value; it is written without it.
pub struct DeadLetterValueDropped<'a> {
    pub error: &'a KafkaError,
}

impl DeadLetterValueDropped<'_> {
    pub fn emit(self) {
        tracing::warn!(error = %self.error, "dead letter too large; writing it without the value");
    }
}

/// A backfill left a record-level dead letter (no one source at fault) to the main group.
pub struct DeadLetterLeftToMainGroup {
    pub reason: DeadLetterReason,
}

impl DeadLetterLeftToMainGroup {
    pub fn emit(self) {
        tracing::debug!(
            reason = self.reason.as_str(),
            "backfill leaves record-level dead letters to the main group"
        );
    }
}

// Redeliveries (redeliveries.rs).

/// A partition's event ids of the window were read again from the raw topic.
pub struct RedeliveryStateRebuilt {
    pub partition: i32,
    pub event_ids: usize,
    pub elapsed: Duration,
}

impl RedeliveryStateRebuilt {
    pub fn emit(self) {
        tracing::info!(
            partition = self.partition,
            event_ids = self.event_ids,
            elapsed_ms = self.elapsed.as_millis() as u64,
            "redelivery window rebuilt from the raw topic"
        );
    }
}

/// A partition's event ids could not be read again: a redelivery of an event processed before
/// the assignment may be written twice.
pub struct RedeliveryStateIncomplete<'a> {
    /// -1 when the committed offsets themselves could not be read.
    pub partition: i32,
    pub error: &'a KafkaError,
}

impl RedeliveryStateIncomplete<'_> {
    pub fn emit(self) {
        tracing::warn!(
            partition = self.partition,
            error = %self.error,
            "could not rebuild the redelivery window; earlier events' redeliveries may be written again"
        );
    }
}

/// A Zoom redelivery (an event id already written within the window) was not written to a
/// source again.
pub struct RedeliveryDropped<'a> {
    pub source: &'a str,
    pub event_id: &'a str,
}

impl RedeliveryDropped<'_> {
    pub fn emit(self, metrics: &ProcessorMetrics) {
        tracing::debug!(
            source = self.source,
            event_id = self.event_id,
            "redelivery not written again"
        );
        metrics
            .redeliveries_dropped
            .with_label_values(&[self.source])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_updates_its_metrics() {
        let metrics = ProcessorMetrics::new();
        let dead = DeadLetter::new(DeadLetterReason::NotJson, "value is not JSON");
        RecordDeadLettered {
            dead: &dead,
            origin: "raw/0/7",
        }
        .emit(&metrics);
        assert_eq!(
            metrics.dlq_records.with_label_values(&["not_json"]).get(),
            1
        );
        BatchCommitted {
            records: 3,
            partitions: 1,
            elapsed: Duration::from_millis(2),
        }
        .emit(&metrics);
        BatchFailed {
            elapsed: Duration::from_millis(2),
        }
        .emit(&metrics);
        assert_eq!(metrics.batches.with_label_values(&["committed"]).get(), 1);
        assert_eq!(metrics.batches.with_label_values(&["aborted"]).get(), 0);
        assert_eq!(metrics.commit_seconds.get_sample_count(), 2);
        RecordRouted {
            elapsed: Duration::from_micros(30),
        }
        .emit(&metrics);
        SourceRecordSent { source: "started" }.emit(&metrics);
        assert_eq!(metrics.records_in.get(), 1);
        assert_eq!(metrics.processing_seconds.get_sample_count(), 1);
        assert_eq!(metrics.records_out.with_label_values(&["started"]).get(), 1);
    }
}
