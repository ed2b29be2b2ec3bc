//! What happens in ingest that a metric counts, each happening defined once: its `emit` writes
//! the log line and updates the metric together, so the two cannot drift apart. (Lines no
//! metric counts, such as start-up, shutdown and topic creation, are logged where they happen.)

use std::time::Duration;

use rdkafka::types::RDKafkaErrorCode;
use zoomstream_schemas::App;

use crate::http::WebhookError;
use crate::metrics::IngestMetrics;
use crate::passthrough::Dropped;
use crate::publish::PublishError;

fn count_request(metrics: &IngestMetrics, app: &str, outcome: &str) {
    metrics.requests.with_label_values(&[app, outcome]).inc();
}

/// A webhook Kafka acknowledged: answered 200 `accepted`. Its line is at debug level: one line
/// per webhook at info was ~9 % of ingest's instructions and a write(2) per request
/// (BENCHMARKS.md, I1); `zoomstream_ingest_requests_total{outcome="accepted"}` counts them.
pub struct WebhookPublished<'a> {
    pub app: App,
    pub event: &'a str,
    pub event_id: &'a str,
    pub partition: i32,
    pub offset: i64,
}

impl WebhookPublished<'_> {
    pub fn emit(&self, metrics: &IngestMetrics) {
        tracing::debug!(
            app = self.app.as_str(),
            event = self.event,
            event_id = %self.event_id,
            partition = self.partition,
            offset = self.offset,
            "webhook published"
        );
        count_request(metrics, self.app.as_str(), "accepted");
    }
}

/// An `endpoint.url_validation` answered with the encrypted token (never published).
pub struct UrlValidationAnswered {
    pub app: App,
}

impl UrlValidationAnswered {
    pub fn emit(&self, metrics: &IngestMetrics) {
        tracing::info!("answered endpoint.url_validation");
        count_request(metrics, self.app.as_str(), "url_validation");
    }
}

/// A request already published, seen again within the replay window: answered `duplicate`,
/// not published again.
pub struct ReplayNotPublished<'a> {
    pub app: App,
    pub event: &'a str,
    pub event_id: &'a str,
}

impl ReplayNotPublished<'_> {
    pub fn emit(&self, metrics: &IngestMetrics) {
        tracing::info!(
            event = self.event,
            event_id = %self.event_id,
            "replay of a published request; not published again"
        );
        count_request(metrics, self.app.as_str(), "replay");
    }
}

/// A webhook not accepted, with the outcome it was answered with: a 4xx (the request can never
/// succeed, and Zoom's retries of it are refused alike; info) or a 5xx (transient: a retry can
/// succeed; a warning).
pub struct WebhookRejected<'a> {
    /// `None` when the path names no app.
    pub app: Option<App>,
    pub error: &'a WebhookError,
}

impl WebhookRejected<'_> {
    pub fn emit(&self, metrics: &IngestMetrics) {
        let app = self.app.map_or("unknown", App::as_str);
        let outcome = self.error.code();
        if self.error.status().is_server_error() {
            tracing::warn!(app, outcome, error = ?self.error, "webhook not accepted");
        } else {
            tracing::info!(app, outcome, reason = %self.error, "webhook rejected");
        }
        count_request(metrics, app, outcome);
    }
}

/// A publish ended, acknowledged or not, `elapsed` after the record went to the producer.
pub struct PublishEnded {
    pub elapsed: Duration,
}

impl PublishEnded {
    pub fn emit(&self, metrics: &IngestMetrics) {
        metrics.publish_seconds.observe(self.elapsed.as_secs_f64());
    }
}

/// A publish Kafka did not acknowledge, by kind. Logged with the request's answer
/// ([`WebhookRejected`]), which carries the error.
pub struct PublishFailed<'a> {
    pub error: &'a PublishError,
}

impl PublishFailed<'_> {
    pub fn emit(&self, metrics: &IngestMetrics) {
        metrics
            .kafka_errors
            .with_label_values(&[self.error.kind()])
            .inc();
    }
}

/// librdkafka declared the producer fatally failed: it is replaced (counted as kind `fatal`).
pub struct ProducerReplaced<'a> {
    pub code: RDKafkaErrorCode,
    pub reason: &'a str,
}

impl ProducerReplaced<'_> {
    pub fn emit(&self, metrics: &IngestMetrics) {
        tracing::error!(code = ?self.code, reason = %self.reason, "Kafka producer cannot send again; replacing it");
        metrics.kafka_errors.with_label_values(&["fatal"]).inc();
    }
}

/// An unsigned pass-through header left off the raw record (the webhook is still published).
pub struct PassThroughHeaderDropped {
    pub header: &'static str,
    pub reason: Dropped,
}

impl PassThroughHeaderDropped {
    pub fn emit(&self, metrics: &IngestMetrics) {
        tracing::info!(
            header = self.header,
            reason = self.reason.as_str(),
            "pass-through header dropped"
        );
        metrics
            .headers_dropped
            .with_label_values(&[self.header, self.reason.as_str()])
            .inc();
    }
}

/// A webhook being handled, from its permit to its answer: the in-flight gauge counts it for
/// as long as this lives, however the handler ends.
pub struct WebhookInFlight<'a>(&'a IngestMetrics);

impl<'a> WebhookInFlight<'a> {
    pub fn enter(metrics: &'a IngestMetrics) -> Self {
        metrics.in_flight.inc();
        WebhookInFlight(metrics)
    }
}

impl Drop for WebhookInFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_happening_updates_its_metric_under_its_labels() {
        let metrics = IngestMetrics::new();
        let requests =
            |app: &str, outcome: &str| metrics.requests.with_label_values(&[app, outcome]).get();
        WebhookPublished {
            app: App::ZOOM,
            event: "meeting.started",
            event_id: "id",
            partition: 0,
            offset: 1,
        }
        .emit(&metrics);
        UrlValidationAnswered {
            app: App::ZOOM_ADMIN,
        }
        .emit(&metrics);
        ReplayNotPublished {
            app: App::ZOOM,
            event: "meeting.started",
            event_id: "id",
        }
        .emit(&metrics);
        WebhookRejected {
            app: None,
            error: &WebhookError::NotFound,
        }
        .emit(&metrics);
        WebhookRejected {
            app: Some(App::ZOOM),
            error: &WebhookError::Overloaded,
        }
        .emit(&metrics);
        assert_eq!(requests("zoom", "accepted"), 1);
        assert_eq!(requests("zoom-admin", "url_validation"), 1);
        assert_eq!(requests("zoom", "replay"), 1);
        assert_eq!(requests("unknown", "not_found"), 1);
        assert_eq!(requests("zoom", "overloaded"), 1);

        PublishEnded {
            elapsed: Duration::from_millis(3),
        }
        .emit(&metrics);
        PublishFailed {
            error: &PublishError::QueueFull,
        }
        .emit(&metrics);
        assert_eq!(metrics.publish_seconds.get_sample_count(), 1);
        assert_eq!(
            metrics
                .kafka_errors
                .with_label_values(&["queue_full"])
                .get(),
            1
        );

        {
            let _in_flight = WebhookInFlight::enter(&metrics);
            assert_eq!(metrics.in_flight.get(), 1);
        }
        assert_eq!(metrics.in_flight.get(), 0);
    }
}
