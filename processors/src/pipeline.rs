//! The consume-transform-produce loop: poll a raw record, route it, enqueue its outputs in the
//! open batch ([`crate::batch`]), and commit the batch when it is due.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use zoomstream_runtime::shutdown::ShutdownToken;
use zoomstream_schemas::raw::headers;

use crate::batch::{BatchProducer, FatalError};
use crate::consumer_context::RawConsumerContext;
use crate::dead_letter::{DeadLetter, DeadLetterReason};
use crate::events;
use crate::outputs::{self, DeadLetterRecord};
use crate::route::{Output, RawMessage, Router};

/// The loop itself; runs on a blocking thread of its own.
pub struct Pipeline {
    pub consumer: BaseConsumer<RawConsumerContext>,
    pub batches: Arc<BatchProducer>,
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
                events::Stopping.emit();
                return self.batches.finish(&self.consumer, true);
            }
            match self.consumer.poll(Duration::from_millis(20)) {
                None => {}
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    at_end.insert(partition);
                }
                Some(Err(error)) => {
                    events::ConsumerErrored { error: &error }.emit();
                    // e.g. a static member fenced after its session expired: this consumer
                    // never consumes again, so stop and let the supervisor restart the process
                    // (under its identity it rejoins at once). Its open batch is not committed.
                    if let Some((code, _)) = self.consumer.client().fatal_error() {
                        return Err(FatalError::new(
                            "the Kafka consumer failed for good",
                            KafkaError::MessageConsumptionFatal(code),
                        ));
                    }
                }
                Some(Ok(msg)) => {
                    at_end.remove(&msg.partition());
                    self.handle(&msg)?;
                }
            }
            if self.batches.due(self.batch_max_records, self.batch_max_age) {
                self.batches.finish(&self.consumer, false)?;
            }
            if self.backfill && self.backfill_done(&at_end) {
                self.batches.finish(&self.consumer, true)?;
                events::BackfillCompleted.emit();
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
        self.batches.open()?;
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
        let redelivery = raw.event_id.is_some_and(|id| {
            let ts = msg.timestamp().to_millis().unwrap_or_default();
            self.batches
                .redeliveries
                .is_redelivery(msg.partition(), id, ts)
        });
        let outputs = self.router.route(&raw);
        let metrics = &self.batches.metrics;
        events::RecordRouted {
            elapsed: started.elapsed(),
        }
        .emit(metrics);
        for output in outputs {
            match output {
                Output::Record { route, .. }
                    if redelivery && !route.source.options.keep_redeliveries =>
                {
                    events::RedeliveryDropped {
                        source: &route.source.name,
                        event_id: raw.event_id.unwrap_or_default(),
                    }
                    .emit(metrics);
                }
                Output::Record {
                    route,
                    record,
                    bytes,
                } => {
                    let source = route.source.name.as_str();
                    match self
                        .batches
                        .send(outputs::source_record(route, &record, &bytes))
                    {
                        Ok(()) => events::SourceRecordSent { source }.emit(metrics),
                        // E.g. larger than message.max.bytes: this record can never be written.
                        Err(err) => self.dead_letter(
                            msg,
                            &DeadLetter {
                                reason: DeadLetterReason::OutputRejected,
                                detail: format!(
                                    "the {source} record was rejected by the producer: {err}"
                                ),
                                source: Some(source.to_owned()),
                            },
                        )?,
                    }
                }
                Output::DeadLetter(dead) if self.backfill && dead.source.is_none() => {
                    events::DeadLetterLeftToMainGroup {
                        reason: dead.reason,
                    }
                    .emit();
                }
                Output::DeadLetter(dead) => self.dead_letter(msg, &dead)?,
            }
        }
        self.batches.record_consumed(msg.partition(), msg.offset());
        Ok(())
    }

    fn dead_letter(&self, msg: &BorrowedMessage<'_>, dead: &DeadLetter) -> Result<(), FatalError> {
        let origin = outputs::origin(msg);
        let record = DeadLetterRecord::new(&self.dlq_topic, msg, dead, &origin);
        if let Err(err) = self.batches.send(record.with_value()) {
            // The original value does not fit with the added headers: keep the headers, which
            // point at the original record on the raw topic.
            events::DeadLetterValueDropped { error: &err }.emit();
            self.batches
                .send(record.without_value())
                .map_err(|source| FatalError::new("producing a dead letter", source))?;
        }
        events::RecordDeadLettered {
            dead,
            origin: &origin,
        }
        .emit(&self.batches.metrics);
        Ok(())
    }
}
