//! The processor's Prometheus metrics, all on the service's own registry.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use zoomstream_runtime::metrics::register;

#[derive(Clone)]
pub struct ProcessorMetrics {
    pub registry: Registry,
    /// Raw records consumed.
    pub records_in: IntCounter,
    /// Source records produced, by source name (bounded by the sources file).
    pub records_out: IntCounterVec,
    /// Dead letters, by reason code (a fixed set).
    pub dlq_records: IntCounterVec,
    /// Time to route, map and encode one raw record.
    pub processing_seconds: Histogram,
    /// Time to commit one batch (transaction commit, or flush + offset store).
    pub commit_seconds: Histogram,
    /// Batches committed / aborted and rewound.
    pub batches: IntCounterVec,
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
        ProcessorMetrics {
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
        }
    }
}

impl Default for ProcessorMetrics {
    fn default() -> Self {
        Self::new()
    }
}
