//! The output producer's context: it counts failed deliveries, so an at-least-once batch knows
//! whether every one of its outputs landed.

use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::ClientContext;

use crate::events;

#[derive(Default)]
pub struct OutputProducerContext {
    failures: AtomicU64,
}

impl OutputProducerContext {
    /// Deliveries that failed since the producer was created.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }
}

impl ClientContext for OutputProducerContext {}

impl ProducerContext for OutputProducerContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((err, msg)) = result {
            self.failures.fetch_add(1, Ordering::SeqCst);
            events::OutputNotDelivered {
                topic: msg.topic(),
                error: err,
            }
            .emit();
        }
    }
}
