//! What happens in the spool, each happening defined once with its log line and metric.

use zoomstream_schemas::App;

use crate::metrics::IngestMetrics;
use crate::publish::PublishError;
use crate::spool::SpoolError;

/// A webhook Kafka could not take (or queued behind older spooled ones) was stored on disk:
/// answered 200 `accepted`.
pub struct WebhookSpooled<'a> {
    pub app: App,
    pub event: &'a str,
    pub event_id: &'a str,
    /// The publish failure that sent it to the spool; `None` when it queued behind others.
    pub cause: Option<&'a PublishError>,
    pub depth: u64,
}

impl WebhookSpooled<'_> {
    pub fn emit(&self, metrics: &IngestMetrics) {
        tracing::warn!(
            event = self.event,
            event_id = %self.event_id,
            cause = self.cause.map(|c| c.kind()).unwrap_or("queued_behind_spool"),
            spool_entries = self.depth,
            "webhook spooled to disk; published once Kafka takes it"
        );
        metrics
            .requests
            .with_label_values(&[self.app.as_str(), "spooled"])
            .inc();
    }
}

/// A webhook could not be spooled (full or a disk error): answered 503 as without a spool.
pub struct SpoolRefused<'a> {
    pub error: &'a SpoolError,
}

impl SpoolRefused<'_> {
    pub fn emit(&self) {
        tracing::error!(
            error = format!("{:#}", anyhow::anyhow!("{}", self.error)),
            "webhook not spooled"
        );
    }
}

/// A spooled webhook reached the raw topic and left the spool.
pub struct SpooledWebhookPublished<'a> {
    pub event_id: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub left: u64,
}

impl SpooledWebhookPublished<'_> {
    pub fn emit(&self) {
        tracing::info!(
            event_id = %self.event_id,
            partition = self.partition,
            offset = self.offset,
            spool_entries = self.left,
            "spooled webhook published"
        );
    }
}

/// The drainer could not publish or read the spool; it tries again shortly.
pub struct SpoolDrainStalled<'a> {
    pub error: &'a anyhow::Error,
    pub depth: u64,
}

impl SpoolDrainStalled<'_> {
    pub fn emit(&self) {
        tracing::warn!(
            error = format!("{:#}", self.error),
            spool_entries = self.depth,
            "spool not drained yet; retrying"
        );
    }
}
