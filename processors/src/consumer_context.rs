//! The raw-topic consumer's context: it commits the open batch before partitions are revoked,
//! rebuilds the redelivery window of partitions assigned, and turns librdkafka's statistics into the consumer-lag metric.

use std::sync::Arc;

use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;

use crate::batch::BatchProducer;
use crate::events;

pub struct RawConsumerContext {
    pub batches: Arc<BatchProducer>,
}

impl ClientContext for RawConsumerContext {
    /// Lag = end offset (the last stable offset: readers are read_committed) minus the group's
    /// committed offset, over the partitions this process owns. librdkafka's own
    /// `consumer_lag` misses offsets committed through a transaction (exactly-once), so the
    /// offsets this process committed itself count too.
    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.batches.raw_topic) else {
            return;
        };
        let committed = self.batches.committed_offsets();
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
        events::ConsumerLagMeasured { lag }.emit(&self.batches.metrics);
    }
}

impl ConsumerContext for RawConsumerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            events::PartitionsRevoked {
                partitions: tpl.count(),
            }
            .emit();
            if let Err(err) = self.batches.finish(consumer, true) {
                events::RevokeCommitFailed { error: &err }.emit();
            }
            self.batches.redeliveries.forget(tpl);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            events::PartitionsAssigned {
                partitions: tpl.count(),
            }
            .emit();
            // Before the first record of these partitions is polled.
            self.batches.redeliveries.rebuild(consumer, tpl);
        }
    }
}
