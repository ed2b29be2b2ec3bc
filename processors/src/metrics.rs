//! The processor's Prometheus metrics, all on the service's own registry.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use zoomstream_runtime::metrics::register;

use crate::dead_letter::DeadLetterReason;

/// How a batch ended: the `outcome` label of `zoomstream_processor_batches_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Outputs and input offsets committed.
    Committed,
    /// Aborted and rewound, to be read again.
    Aborted,
}

impl BatchOutcome {
    pub const ALL: [BatchOutcome; 2] = [BatchOutcome::Committed, BatchOutcome::Aborted];

    pub fn as_str(self) -> &'static str {
        match self {
            BatchOutcome::Committed => "committed",
            BatchOutcome::Aborted => "aborted",
        }
    }
}

#[derive(Clone)]
pub struct ProcessorMetrics {
    pub registry: Registry,
    /// Raw records consumed.
    pub records_in: IntCounter,
    /// Source records produced, by source name (bounded by the sources file).
    pub records_out: IntCounterVec,
    /// Dead letters, by reason (every [`DeadLetterReason`], from start-up).
    pub dlq_records: IntCounterVec,
    /// Time to route, map and encode one raw record.
    pub processing_seconds: Histogram,
    /// Time to commit one batch (transaction commit, or flush + offset store).
    pub commit_seconds: Histogram,
    /// Batches by [`BatchOutcome`] (both from start-up).
    pub batches: IntCounterVec,
    /// Zoom redeliveries not written again, by source name.
    pub redeliveries_dropped: IntCounterVec,
    /// Records between the group's committed offsets and the end of the raw topic, over the
    /// partitions this process owns (updated with librdkafka's statistics, every 5 s).
    pub consumer_lag: IntGauge,
}

impl ProcessorMetrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            register(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            register(
                &registry,
                Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
                    .expect("valid metric"),
            )
        };
        let metrics = ProcessorMetrics {
            records_in: register(
                &registry,
                IntCounter::new(
                    "zoomstream_processor_records_in_total",
                    "Raw records consumed.",
                )
                .expect("valid metric"),
            ),
            records_out: counter_vec(
                "zoomstream_processor_records_out_total",
                "Source records produced, by source.",
                &["source"],
            ),
            dlq_records: counter_vec(
                "zoomstream_processor_dlq_records_total",
                "Records sent to the dead-letter topic, by reason.",
                &["reason"],
            ),
            processing_seconds: histogram(
                "zoomstream_processor_processing_duration_seconds",
                "Time to route, map and encode one raw record.",
                vec![
                    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05,
                ],
            ),
            commit_seconds: histogram(
                "zoomstream_processor_commit_duration_seconds",
                "Time to commit one batch of outputs and input offsets.",
                vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0],
            ),
            redeliveries_dropped: counter_vec(
                "zoomstream_processor_redeliveries_dropped_total",
                "Zoom redeliveries (an event id already written within the window) not written again, by source.",
                &["source"],
            ),
            batches: counter_vec(
                "zoomstream_processor_batches_total",
                "Batches by outcome (committed, aborted).",
                &["outcome"],
            ),
            consumer_lag: register(
                &registry,
                IntGauge::new(
                    "zoomstream_processor_consumer_lag_records",
                    "Raw records past the group's committed offsets on this process's partitions.",
                )
                .expect("valid metric"),
            ),
            registry,
        };
        // Every label value from the start, so dashboards see each series before its first event.
        for reason in DeadLetterReason::ALL {
            metrics.dlq_records.with_label_values(&[reason.as_str()]);
        }
        for outcome in BatchOutcome::ALL {
            metrics.batches.with_label_values(&[outcome.as_str()]);
        }
        metrics
    }
}

impl Default for ProcessorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The label values a counter family has on the registry.
    fn labels(metrics: &ProcessorMetrics, family: &str) -> Vec<(String, u64)> {
        let families = metrics.registry.gather();
        let family = families
            .iter()
            .find(|f| f.name() == family)
            .expect("registered");
        family
            .get_metric()
            .iter()
            .map(|m| {
                (
                    m.get_label()[0].value().to_owned(),
                    m.get_counter().get_value() as u64,
                )
            })
            .collect()
    }

    #[test]
    fn every_reason_and_outcome_is_there_at_zero_from_the_start() {
        let metrics = ProcessorMetrics::new();
        let mut reasons = labels(&metrics, "zoomstream_processor_dlq_records_total");
        reasons.sort();
        let mut expected: Vec<(String, u64)> = DeadLetterReason::ALL
            .iter()
            .map(|r| (r.as_str().to_owned(), 0))
            .collect();
        expected.sort();
        assert_eq!(reasons, expected);
        let mut outcomes = labels(&metrics, "zoomstream_processor_batches_total");
        outcomes.sort();
        assert_eq!(
            outcomes,
            [("aborted".to_owned(), 0), ("committed".to_owned(), 0)]
        );
    }
}
