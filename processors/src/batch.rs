//! Batches of outputs and the input offsets they commit.
//!
//! A batch's outputs (source records and dead letters) and its input offsets are committed
//! together: in one Kafka transaction (exactly-once), or by waiting for every output's
//! acknowledgement and only then storing the offsets (at-least-once). When a commit fails, the
//! batch is aborted and the consumer rewinds to its first record, so nothing is skipped.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::ToBytes;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use crate::call_watchdog::CallWatchdog;
use crate::config::Delivery;
use crate::events;
use crate::metrics::ProcessorMetrics;
use crate::producer_context::OutputProducerContext;
use crate::redeliveries::Redeliveries;

const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a transactional call may block in all before the process gives up on it: well past
/// the timeout it is given, which librdkafka does not always keep (see `call_watchdog`).
const CALL_LIMIT: Duration = Duration::from_secs(40);

/// A failure the loop cannot recover from by retrying the batch (e.g. this producer was fenced
/// by a newer instance): the process stops and its supervisor restarts it.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct FatalError {
    context: &'static str,
    #[source]
    source: KafkaError,
}

impl FatalError {
    pub fn new(context: &'static str, source: KafkaError) -> Self {
        FatalError { context, source }
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

/// The producer of the processor's outputs and the batch it is writing; shared by the loop and
/// the rebalance callback, which commits the open batch before partitions are revoked.
pub struct BatchProducer {
    producer: ThreadedProducer<OutputProducerContext>,
    delivery: Delivery,
    pub raw_topic: String,
    pub metrics: ProcessorMetrics,
    /// Told when a batch commits or aborts (the ids its records first saw).
    pub redeliveries: Arc<Redeliveries>,
    batch: Mutex<Batch>,
    /// partition → next offset this process committed (for the lag metric).
    committed: Mutex<HashMap<i32, i64>>,
    watchdog: CallWatchdog,
}

impl BatchProducer {
    pub fn new(
        producer: ThreadedProducer<OutputProducerContext>,
        delivery: Delivery,
        raw_topic: String,
        metrics: ProcessorMetrics,
        redeliveries: Arc<Redeliveries>,
    ) -> std::io::Result<Self> {
        Ok(BatchProducer {
            producer,
            delivery,
            raw_topic,
            metrics,
            redeliveries,
            batch: Mutex::new(Batch::default()),
            committed: Mutex::new(HashMap::new()),
            watchdog: CallWatchdog::start(CALL_LIMIT)?,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Batch> {
        // A panic while holding the lock ends the loop anyway; the state itself stays usable.
        self.batch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// partition → next offset this process committed on the raw topic.
    pub fn committed_offsets(&self) -> MutexGuard<'_, HashMap<i32, i64>> {
        self.committed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to `timeout` for every output to be acknowledged.
    pub fn flush(&self, timeout: Duration) -> KafkaResult<()> {
        self.producer.flush(timeout)
    }

    /// Opens a batch unless one is open (in exactly-once mode: begins its transaction).
    pub fn open(&self) -> Result<(), FatalError> {
        let mut batch = self.lock();
        if batch.open {
            return Ok(());
        }
        if self.delivery == Delivery::ExactlyOnce {
            self.producer
                .begin_transaction()
                .map_err(|source| FatalError::new("beginning a transaction", source))?;
        }
        *batch = Batch {
            open: true,
            started: Some(Instant::now()),
            failures_at_start: self.producer.context().failures(),
            ..Batch::default()
        };
        Ok(())
    }

    /// Enqueues one output of the open batch, waiting while the producer's local queue is full.
    /// Any other error means this record can never be enqueued.
    pub fn send<K: ToBytes + ?Sized, P: ToBytes + ?Sized>(
        &self,
        mut record: BaseRecord<'_, K, P>,
    ) -> Result<(), KafkaError> {
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((err, _)) => return Err(err),
            }
        }
    }

    /// Adds a raw record, whose outputs are enqueued, to the open batch.
    pub fn record_consumed(&self, partition: i32, offset: i64) {
        let mut batch = self.lock();
        batch.records += 1;
        let entry = batch
            .offsets
            .entry(partition)
            .or_insert((offset, offset + 1));
        entry.1 = offset + 1;
    }

    /// Whether the open batch reached `max_records` or `max_age`.
    pub fn due(&self, max_records: usize, max_age: Duration) -> bool {
        let batch = self.lock();
        batch.open
            && (batch.records >= max_records
                || batch.started.is_some_and(|s| s.elapsed() >= max_age))
    }

    /// Commits the open batch, or aborts it and rewinds the consumer to its first record.
    pub fn finish<C: ConsumerContext>(
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
        let elapsed = started.elapsed();
        let failed = |context, err| {
            events::BatchFailed { elapsed }.emit(&self.metrics);
            Err(FatalError::new(context, err))
        };
        let outcome = match result {
            Ok(()) => {
                let mut committed = self.committed_offsets();
                for (&partition, &(_, next)) in &batch.offsets {
                    committed.insert(partition, next);
                }
                drop(committed);
                self.redeliveries.batch_committed();
                events::BatchCommitted {
                    records: batch.records,
                    partitions: batch.offsets.len(),
                    elapsed,
                }
                .emit(&self.metrics);
                Ok(())
            }
            Err(err) if is_fatal(&err) => failed("committing a batch", err),
            Err(err) if self.producer_unusable() => {
                failed("the producer can no longer deliver", err)
            }
            Err(err) => {
                self.redeliveries.batch_aborted();
                events::BatchAborted {
                    error: &err,
                    records: batch.records,
                    elapsed,
                }
                .emit(&self.metrics);
                if self.delivery == Delivery::ExactlyOnce {
                    if let Err(abort) = self.transactional("aborting the transaction", || {
                        self.producer.abort_transaction(COMMIT_TIMEOUT)
                    }) {
                        if is_fatal(&abort) {
                            return Err(FatalError::new("aborting a transaction", abort));
                        }
                    }
                }
                for (&partition, &(first, _)) in &batch.offsets {
                    // A partition revoked meanwhile cannot be sought.
                    if let Err(error) = consumer.seek(
                        &self.raw_topic,
                        partition,
                        Offset::Offset(first),
                        COMMIT_TIMEOUT,
                    ) {
                        events::PartitionNotRewound {
                            partition,
                            error: &error,
                        }
                        .emit();
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
        // rdkafka's commit_transaction() flushes first, with the same 100 ms polling steps as
        // flush() (below): waiting here leaves it nothing to flush. A commit took ~100 ms more
        // than the broker needed (BENCHMARKS.md, P2).
        self.wait_acknowledged()?;
        self.transactional("sending offsets to the transaction", || {
            self.producer
                .send_offsets_to_transaction(tpl, &metadata, COMMIT_TIMEOUT)
        })?;
        self.transactional("committing the transaction", || {
            self.producer.commit_transaction(COMMIT_TIMEOUT)
        })
    }

    /// One transactional call: retried while librdkafka says the same call may succeed, each
    /// attempt bounded by the watchdog (librdkafka does not always keep the call's timeout).
    fn transactional(
        &self,
        what: &'static str,
        mut call: impl FnMut() -> KafkaResult<()>,
    ) -> KafkaResult<()> {
        retry_retriable(what, || self.watchdog.bounded(what, &mut call))
    }

    /// Waits until every output sent so far is acknowledged (or failed), up to the commit
    /// timeout. rdkafka's flush() polls in 100 ms steps while the ThreadedProducer's own thread
    /// takes the delivery reports, so it returned ~100 ms late for every batch; the in-flight
    /// count drops as that thread serves them.
    fn wait_acknowledged(&self) -> KafkaResult<()> {
        let deadline = Instant::now() + COMMIT_TIMEOUT;
        while self.producer.in_flight_count() > 0 {
            if Instant::now() >= deadline {
                return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        Ok(())
    }

    fn commit_acknowledged<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
        failures_at_start: u64,
        sync: bool,
    ) -> KafkaResult<()> {
        self.wait_acknowledged()?;
        if self.producer.context().failures() != failures_at_start {
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
            Err(KafkaError::Transaction(error)) if error.is_retriable() && attempt < ATTEMPTS => {
                events::TransactionalCallRetried {
                    call: what,
                    attempt,
                    error: &error,
                }
                .emit();
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
