//! The consume-transform-produce loop.
//!
//! Records are handled in batches. A batch's outputs (source records and dead letters) and its
//! input offsets are committed together: in one Kafka transaction (exactly-once), or by waiting
//! for every output's acknowledgement and only then storing the offsets (at-least-once). When a
//! commit fails, the batch is aborted and the consumer rewinds to its first record, so nothing
//! is skipped. Partitions being revoked in a rebalance get their open batch committed first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use zoomstream_runtime::shutdown::ShutdownToken;
use zoomstream_schemas::raw::headers;

use crate::config::Delivery;
use crate::metrics::ProcessorMetrics;
use crate::route::{DeadLetter, Output, RawMessage, Router};

/// Headers the processor adds to dead letters (the raw record's own headers are kept too).
pub mod dlq_headers {
    pub const REASON: &str = "zoomstream-dlq-reason";
    pub const DETAIL: &str = "zoomstream-dlq-detail";
    pub const SOURCE: &str = "zoomstream-dlq-source";
    pub const ORIGIN: &str = "zoomstream-dlq-origin";
}

/// Header naming the source on every source record.
pub const SOURCE_HEADER: &str = "zoomstream-source";

const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// A failure the loop cannot recover from by retrying the batch (e.g. this producer was fenced
/// by a newer instance): the process stops and its supervisor restarts it.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct FatalError {
    context: &'static str,
    #[source]
    source: KafkaError,
}

/// Counts failed deliveries, so an at-least-once batch knows whether all its outputs landed.
#[derive(Default)]
pub struct ProduceContext {
    failures: AtomicU64,
}

impl ClientContext for ProduceContext {}

impl ProducerContext for ProduceContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((err, msg)) = result {
            self.failures.fetch_add(1, Ordering::SeqCst);
            tracing::warn!(error = %err, topic = msg.topic(), "output not delivered; the batch will be retried");
        }
    }
}

#[derive(Default)]
struct Batch {
    open: bool,
    started: Option<Instant>,
    records: usize,
    /// partition → (first offset in the batch, next offset to consume)
    offsets: BTreeMap<i32, (i64, i64)>,
    failures_at_start: u64,
}

/// What the rebalance callback shares with the loop.
pub struct Shared {
    pub producer: ThreadedProducer<ProduceContext>,
    pub delivery: Delivery,
    pub raw_topic: String,
    pub metrics: ProcessorMetrics,
    batch: Mutex<Batch>,
    /// partition → next offset this process committed (for the lag metric).
    committed: Mutex<HashMap<i32, i64>>,
}

pub struct PipelineContext {
    pub shared: Arc<Shared>,
}

impl ClientContext for PipelineContext {
    /// Lag = end offset (the last stable offset: readers are read_committed) minus the group's
    /// committed offset, over the partitions this process owns. librdkafka's own
    /// `consumer_lag` misses offsets committed through a transaction (exactly-once), so the
    /// offsets this process committed itself count too.
    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.shared.raw_topic) else {
            return;
        };
        let committed = self.shared.committed_lock();
        let lag: i64 = topic
            .partitions
            .values()
            .filter(|p| p.partition >= 0 && p.desired && p.ls_offset >= 0)
            .map(|p| {
                let ours = committed.get(&p.partition).copied().unwrap_or(-1);
                let at = match p.committed_offset.max(ours) {
                    // Nothing committed yet: the group starts at the beginning.
                    at if at < 0 => p.lo_offset.max(0),
                    at => at,
                };
                (p.ls_offset - at).max(0)
            })
            .sum();
        self.shared.metrics.consumer_lag.set(lag);
    }
}

impl ConsumerContext for PipelineContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            tracing::info!(
                partitions = tpl.count(),
                "partitions revoked; committing the open batch"
            );
            if let Err(err) = self.shared.finish_batch(consumer, true) {
                // The new owner resumes from the last committed offset.
                tracing::error!(error = %err, "could not commit before the rebalance");
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            tracing::info!(partitions = tpl.count(), "partitions assigned");
        }
    }
}

impl Shared {
    pub fn new(
        producer: ThreadedProducer<ProduceContext>,
        delivery: Delivery,
        raw_topic: String,
        metrics: ProcessorMetrics,
    ) -> Self {
        Shared {
            producer,
            delivery,
            raw_topic,
            metrics,
            batch: Mutex::new(Batch::default()),
            committed: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Batch> {
        // A panic while holding the lock ends the loop anyway; the state itself stays usable.
        self.batch.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn committed_lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, i64>> {
        self.committed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open_batch(&self) -> Result<(), FatalError> {
        let mut batch = self.lock();
        if batch.open {
            return Ok(());
        }
        if self.delivery == Delivery::ExactlyOnce {
            self.producer
                .begin_transaction()
                .map_err(|source| FatalError {
                    context: "beginning a transaction",
                    source,
                })?;
        }
        *batch = Batch {
            open: true,
            started: Some(Instant::now()),
            failures_at_start: self.producer.context().failures.load(Ordering::SeqCst),
            ..Batch::default()
        };
        Ok(())
    }

    fn record_consumed(&self, partition: i32, offset: i64) {
        let mut batch = self.lock();
        batch.records += 1;
        let entry = batch
            .offsets
            .entry(partition)
            .or_insert((offset, offset + 1));
        entry.1 = offset + 1;
    }

    fn batch_due(&self, max_records: usize, max_age: Duration) -> bool {
        let batch = self.lock();
        batch.open
            && (batch.records >= max_records
                || batch.started.is_some_and(|s| s.elapsed() >= max_age))
    }

    /// Commits the open batch, or aborts it and rewinds the consumer to its first record.
    pub fn finish_batch<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        sync: bool,
    ) -> Result<(), FatalError> {
        let mut batch = self.lock();
        if !batch.open {
            return Ok(());
        }
        let started = Instant::now();
        let mut tpl = TopicPartitionList::new();
        for (&partition, &(_, next)) in &batch.offsets {
            tpl.add_partition_offset(&self.raw_topic, partition, Offset::Offset(next))
                .expect("valid offset");
        }
        let result = match self.delivery {
            Delivery::ExactlyOnce => self.commit_transaction(consumer, &tpl),
            Delivery::AtLeastOnce => {
                self.commit_acknowledged(consumer, &tpl, batch.failures_at_start, sync)
            }
        };
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        let outcome = match result {
            Ok(()) => {
                let mut committed = self.committed_lock();
                for (&partition, &(_, next)) in &batch.offsets {
                    committed.insert(partition, next);
                }
                drop(committed);
                tracing::debug!(
                    records = batch.records,
                    partitions = batch.offsets.len(),
                    "batch committed"
                );
                self.metrics.batches.with_label_values(&["committed"]).inc();
                Ok(())
            }
            Err(err) if is_fatal(&err) => Err(FatalError {
                context: "committing a batch",
                source: err,
            }),
            Err(err) if self.producer_unusable() => Err(FatalError {
                context: "the producer can no longer deliver",
                source: err,
            }),
            Err(err) => {
                tracing::warn!(error = %err, records = batch.records, "batch aborted; rewinding to reprocess it");
                self.metrics.batches.with_label_values(&["aborted"]).inc();
                if self.delivery == Delivery::ExactlyOnce {
                    if let Err(abort) = retry_retriable("aborting the transaction", || {
                        self.producer.abort_transaction(COMMIT_TIMEOUT)
                    }) {
                        if is_fatal(&abort) {
                            return Err(FatalError {
                                context: "aborting a transaction",
                                source: abort,
                            });
                        }
                    }
                }
                for (&partition, &(first, _)) in &batch.offsets {
                    // A partition revoked meanwhile cannot be sought; its new owner resumes
                    // from the committed offset anyway.
                    if let Err(e) = consumer.seek(
                        &self.raw_topic,
                        partition,
                        Offset::Offset(first),
                        COMMIT_TIMEOUT,
                    ) {
                        tracing::debug!(partition, error = %e, "not rewinding a partition no longer assigned");
                    }
                }
                Ok(())
            }
        };
        *batch = Batch::default();
        outcome
    }

    /// librdkafka declared a fatal error (fenced by a newer instance or by the transaction
    /// coordinator, or an idempotence guarantee lost): retrying the batch would fail forever.
    fn producer_unusable(&self) -> bool {
        self.producer.client().fatal_error().is_some()
    }

    fn commit_transaction<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
    ) -> KafkaResult<()> {
        let metadata = consumer.group_metadata().ok_or_else(|| {
            KafkaError::Subscription("the consumer has no group metadata yet".into())
        })?;
        retry_retriable("sending offsets to the transaction", || {
            self.producer
                .send_offsets_to_transaction(tpl, &metadata, COMMIT_TIMEOUT)
        })?;
        retry_retriable("committing the transaction", || {
            self.producer.commit_transaction(COMMIT_TIMEOUT)
        })
    }

    fn commit_acknowledged<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
        failures_at_start: u64,
        sync: bool,
    ) -> KafkaResult<()> {
        // rdkafka's flush() polls in 100 ms steps while the ThreadedProducer's own thread takes
        // the delivery reports, so it returned ~100 ms late for every batch. Wait for the
        // in-flight count instead (the producer thread serves the delivery reports).
        let deadline = Instant::now() + COMMIT_TIMEOUT;
        while self.producer.in_flight_count() > 0 {
            if Instant::now() >= deadline {
                return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        if self.producer.context().failures.load(Ordering::SeqCst) != failures_at_start {
            return Err(KafkaError::MessageProduction(RDKafkaErrorCode::Fail));
        }
        consumer.store_offsets(tpl)?;
        // Commit now rather than at the next auto-commit tick: fewer records to redo after a
        // crash. Synchronously where the partitions are about to be given up.
        let mode = if sync {
            CommitMode::Sync
        } else {
            CommitMode::Async
        };
        match consumer.commit_consumer_state(mode) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
            Err(err) => Err(err),
        }
    }
}

/// Retries a transactional call while librdkafka says the same call may succeed (e.g. the
/// broker was briefly unreachable), up to a bound; other errors are returned at once.
fn retry_retriable(what: &str, mut call: impl FnMut() -> KafkaResult<()>) -> KafkaResult<()> {
    const ATTEMPTS: usize = 6;
    for attempt in 1.. {
        match call() {
            Err(KafkaError::Transaction(e)) if e.is_retriable() && attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, call = what, "transactional call failed; retrying");
            }
            other => return other,
        }
    }
    unreachable!("the loop returns")
}

fn is_fatal(err: &KafkaError) -> bool {
    match err {
        KafkaError::Transaction(e) => e.is_fatal(),
        _ => false,
    }
}

/// The loop itself; runs on a blocking thread of its own.
pub struct Pipeline {
    pub consumer: BaseConsumer<PipelineContext>,
    pub shared: Arc<Shared>,
    pub router: Router,
    pub dlq_topic: String,
    pub batch_max_records: usize,
    pub batch_max_age: Duration,
    /// Backfill: stop once every assigned partition is read to its end; write no dead letters
    /// that do not belong to the backfilled source.
    pub backfill: bool,
}

impl Pipeline {
    pub fn run(self, shutdown: ShutdownToken) -> Result<(), FatalError> {
        let mut at_end: HashSet<i32> = HashSet::new();
        loop {
            if shutdown.is_cancelled() {
                tracing::info!("stopping: committing the open batch");
                return self.shared.finish_batch(&self.consumer, true);
            }
            match self.consumer.poll(Duration::from_millis(20)) {
                None => {}
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    at_end.insert(partition);
                }
                Some(Err(err)) => tracing::warn!(error = %err, "consumer error"),
                Some(Ok(msg)) => {
                    at_end.remove(&msg.partition());
                    self.handle(&msg)?;
                }
            }
            if self
                .shared
                .batch_due(self.batch_max_records, self.batch_max_age)
            {
                self.shared.finish_batch(&self.consumer, false)?;
            }
            if self.backfill && self.backfill_done(&at_end) {
                self.shared.finish_batch(&self.consumer, true)?;
                tracing::info!("backfill complete");
                return Ok(());
            }
        }
    }

    fn backfill_done(&self, at_end: &HashSet<i32>) -> bool {
        let Ok(assignment) = self.consumer.assignment() else {
            return false;
        };
        let assigned: Vec<i32> = assignment
            .elements()
            .iter()
            .map(|e| e.partition())
            .collect();
        !assigned.is_empty() && assigned.iter().all(|p| at_end.contains(p))
    }

    // Debug level: a span per record at the default info level costs more than routing one.
    #[tracing::instrument(level = "debug", skip_all, fields(partition = msg.partition(), offset = msg.offset()))]
    fn handle(&self, msg: &BorrowedMessage<'_>) -> Result<(), FatalError> {
        self.shared.open_batch()?;
        let started = Instant::now();
        let header = |name: &str| -> Option<&str> {
            msg.headers()?
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .and_then(|v| std::str::from_utf8(v).ok())
        };
        let raw = RawMessage {
            payload: msg.payload(),
            app: header(headers::APP),
            event_id: header(headers::EVENT_ID),
            received_at: header(headers::RECEIVED_AT),
        };
        let outputs = self.router.route(&raw);
        self.shared
            .metrics
            .processing_seconds
            .observe(started.elapsed().as_secs_f64());
        self.shared.metrics.records_in.inc();
        for output in outputs {
            match output {
                Output::Record {
                    route,
                    record,
                    bytes,
                } => {
                    let source = route.source.name.as_str();
                    let hdrs = OwnedHeaders::new()
                        .insert(Header {
                            key: headers::APP,
                            value: Some(route.source.app.as_str()),
                        })
                        .insert(Header {
                            key: headers::EVENT,
                            value: Some(record.event.as_str()),
                        })
                        .insert(Header {
                            key: headers::EVENT_ID,
                            value: Some(record.event_id.as_str()),
                        })
                        .insert(Header {
                            key: SOURCE_HEADER,
                            value: Some(source),
                        });
                    let mut out = BaseRecord::to(&route.source.topic)
                        .payload(&bytes)
                        .headers(hdrs);
                    if let Some(key) = &record.key {
                        out = out.key(key.as_str());
                    }
                    match self.send(out) {
                        Ok(()) => self
                            .shared
                            .metrics
                            .records_out
                            .with_label_values(&[source])
                            .inc(),
                        // E.g. larger than message.max.bytes: this record can never be written.
                        Err(err) => self.dead_letter(
                            msg,
                            &DeadLetter {
                                reason: "output_rejected",
                                detail: format!(
                                    "the {source} record was rejected by the producer: {err}"
                                ),
                                source: Some(source.to_owned()),
                            },
                        )?,
                    }
                }
                Output::DeadLetter(dead) if self.backfill && dead.source.is_none() => {
                    tracing::debug!(
                        reason = dead.reason,
                        "backfill leaves record-level dead letters to the main group"
                    );
                }
                Output::DeadLetter(dead) => self.dead_letter(msg, &dead)?,
            }
        }
        self.shared.record_consumed(msg.partition(), msg.offset());
        Ok(())
    }

    fn dead_letter(&self, msg: &BorrowedMessage<'_>, dead: &DeadLetter) -> Result<(), FatalError> {
        let origin = format!("{}/{}/{}", msg.topic(), msg.partition(), msg.offset());
        tracing::warn!(reason = dead.reason, detail = %dead.detail, source = dead.source.as_deref(), origin = %origin, "record sent to the dead-letter topic");
        let mut hdrs = OwnedHeaders::new();
        if let Some(original) = msg.headers() {
            for h in original.iter() {
                hdrs = hdrs.insert(h);
            }
        }
        hdrs = hdrs
            .insert(Header {
                key: dlq_headers::REASON,
                value: Some(dead.reason),
            })
            .insert(Header {
                key: dlq_headers::DETAIL,
                value: Some(dead.detail.as_str()),
            })
            .insert(Header {
                key: dlq_headers::ORIGIN,
                value: Some(origin.as_str()),
            });
        if let Some(source) = &dead.source {
            hdrs = hdrs.insert(Header {
                key: dlq_headers::SOURCE,
                value: Some(source.as_str()),
            });
        }
        let mut out = BaseRecord::<[u8], [u8]>::to(&self.dlq_topic).headers(hdrs.clone());
        if let Some(key) = msg.key() {
            out = out.key(key);
        }
        let with_payload = match msg.payload() {
            Some(payload) => out.payload(payload),
            None => out,
        };
        if let Err(err) = self.send(with_payload) {
            // The original value does not fit with the added headers: keep the headers, which
            // point at the original record on the raw topic.
            tracing::warn!(error = %err, "dead letter too large; writing it without the value");
            let mut bare = BaseRecord::<[u8], [u8]>::to(&self.dlq_topic).headers(hdrs);
            if let Some(key) = msg.key() {
                bare = bare.key(key);
            }
            self.send(bare).map_err(|source| FatalError {
                context: "producing a dead letter",
                source,
            })?;
        }
        self.shared
            .metrics
            .dlq_records
            .with_label_values(&[dead.reason])
            .inc();
        Ok(())
    }

    /// Enqueues one output, waiting while the producer's local queue is full. Any other error
    /// means this record can never be enqueued.
    fn send<K: rdkafka::message::ToBytes + ?Sized, P: rdkafka::message::ToBytes + ?Sized>(
        &self,
        mut record: BaseRecord<'_, K, P>,
    ) -> Result<(), KafkaError> {
        loop {
            match self.shared.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((err, _)) => return Err(err),
            }
        }
    }
}
