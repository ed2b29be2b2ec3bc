//! The ingest service's Prometheus metrics, all on the service's own registry. They are updated
//! only by the happenings of [`events`](crate::events).

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};
use zoomstream_runtime::metrics::register;

#[derive(Clone)]
pub struct IngestMetrics {
    pub registry: Registry,
    /// Webhooks by app (a configured app's name, or `unknown` for a path no app has) and outcome (a fixed set: `accepted`,
    /// `url_validation`, `replay` and the codes of `WebhookError`).
    pub requests: IntCounterVec,
    /// Time from handing a webhook to the producer to the broker's acknowledgement.
    pub publish_seconds: Histogram,
    /// Publish failures by kind (`timeout`, `queue_full`, `too_large`, `kafka`).
    pub kafka_errors: IntCounterVec,
    /// Verified webhooks being published right now (each holds an in-flight slot).
    pub in_flight: IntGauge,
    /// Unsigned pass-through headers not published, by header and reason.
    pub headers_dropped: IntCounterVec,
    /// Bytes of request bodies received and not yet answered (the body budget's use).
    pub body_bytes_in_flight: IntGauge,
}

impl IngestMetrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "zoomstream_ingest_requests_total",
                    "Webhook requests by app and outcome.",
                ),
                &["app", "outcome"],
            )
            .expect("valid metric"),
        );
        let publish_seconds = register(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "zoomstream_ingest_publish_duration_seconds",
                    "Time from producing a webhook to the broker's acknowledgement.",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0,
                ]),
            )
            .expect("valid metric"),
        );
        let kafka_errors = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "zoomstream_ingest_kafka_errors_total",
                    "Failed publishes to Kafka by kind.",
                ),
                &["kind"],
            )
            .expect("valid metric"),
        );
        let in_flight = register(
            &registry,
            IntGauge::new(
                "zoomstream_ingest_in_flight_requests",
                "Webhook requests being handled.",
            )
            .expect("valid metric"),
        );
        let headers_dropped = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "zoomstream_ingest_headers_dropped_total",
                    "Pass-through headers (x-zm-request-id, x-zm-tracking-id, traceparent) not published for being too long or malformed, by header and reason.",
                ),
                &["header", "reason"],
            )
            .expect("valid metric"),
        );
        let body_bytes_in_flight = register(
            &registry,
            IntGauge::new(
                "zoomstream_ingest_body_bytes_in_flight",
                "Bytes of request bodies received and not yet answered.",
            )
            .expect("valid metric"),
        );
        IngestMetrics {
            headers_dropped,
            body_bytes_in_flight,
            registry,
            requests,
            publish_seconds,
            kafka_errors,
            in_flight,
        }
    }
}

impl Default for IngestMetrics {
    fn default() -> Self {
        Self::new()
    }
}
