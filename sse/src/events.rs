//! What happens in the SSE service that a metric counts, each happening defined once: its
//! `emit` writes the log line (if it has one) and updates the metric together, so the two
//! cannot drift apart. (Lines no metric counts are logged where they happen; events sent are
//! counted per client by [`ClientBody`](crate::client::ClientBody) on its hot path.)

use std::time::Duration;

use prometheus::IntGauge;

use crate::frames::RenderError;
use crate::metrics::{Reason, SseMetrics};
use crate::position::Position;

/// A stream request answered, by outcome ([`outcome`](crate::metrics::outcome)).
pub struct StreamRequestAnswered {
    pub outcome: &'static str,
}

impl StreamRequestAnswered {
    pub fn emit(&self, metrics: &SseMetrics) {
        metrics.requests.with_label_values(&[self.outcome]).inc();
    }
}

/// A client's stream started, from `start` (`latest`, `earliest`, `resume`).
pub struct ClientConnected<'a> {
    pub source: &'a str,
    pub start: &'static str,
}

impl ClientConnected<'_> {
    pub fn emit(&self, metrics: &SseMetrics) {
        metrics.clients.with_label_values(&[self.source]).inc();
        tracing::info!(source = %self.source, start = self.start, "client connected");
    }
}

/// The server ended a client's stream for `reason`; the client's connection may stay until it
/// read its final event, or is cut. Counted now, when decided.
pub struct StreamEnded<'a> {
    pub source: &'a str,
    pub reason: Reason,
    /// Events still queued for the client.
    pub queued: usize,
}

impl StreamEnded<'_> {
    pub fn emit(&self, metrics: &SseMetrics) {
        count_disconnect(metrics, self.source, self.reason);
        tracing::debug!(
            source = %self.source,
            reason = self.reason.as_str(),
            queued = self.queued,
            "ending the stream"
        );
    }
}

/// A client's connection is gone. Its reason is the server's, if the server ended the stream
/// (already counted by [`StreamEnded`]), else `client_closed` (counted here).
pub struct ClientDisconnected<'a> {
    pub source: &'a str,
    /// Why the server ended the stream, if it did.
    pub ended_by_server: Option<Reason>,
    /// Events the client was sent.
    pub events: u64,
    pub connected_for: Duration,
}

impl ClientDisconnected<'_> {
    pub fn emit(&self, metrics: &SseMetrics) {
        let reason = self.ended_by_server.unwrap_or(Reason::ClientClosed);
        metrics.clients.with_label_values(&[self.source]).dec();
        if self.ended_by_server.is_none() {
            count_disconnect(metrics, self.source, reason);
        }
        tracing::info!(
            source = %self.source,
            reason = reason.as_str(),
            events = self.events,
            seconds = self.connected_for.as_secs_f64(),
            "client disconnected"
        );
    }
}

fn count_disconnect(metrics: &SseMetrics, source: &str, reason: Reason) {
    metrics
        .disconnects
        .with_label_values(&[source, reason.as_str()])
        .inc();
}

/// A client behind the live feed starts reading the gap from Kafka with a consumer of its own.
pub struct CatchUpStarted<'a> {
    pub source: &'a str,
    pub from: &'a Position,
    pub until: &'a Position,
}

impl CatchUpStarted<'_> {
    pub fn emit(&self, metrics: &SseMetrics) {
        metrics.catchups.with_label_values(&[self.source]).inc();
        tracing::debug!(source = %self.source, from = ?self.from, until = ?self.until, "catching up");
    }
}

/// A source record that does not decode with the source's schema: skipped.
pub struct RecordUndecodable<'a> {
    pub source: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub error: &'a RenderError,
}

impl RecordUndecodable<'_> {
    pub fn emit(&self, metrics: &SseMetrics) {
        metrics.undecodable.with_label_values(&[self.source]).inc();
        tracing::warn!(
            source = %self.source,
            partition = self.partition,
            offset = self.offset,
            error = %self.error,
            "skipping a record that does not decode"
        );
    }
}

/// A source's live consumer is assigned and feeding its hub. The returned guard counts it as
/// live until dropped.
pub struct LiveConsumerStarted<'a> {
    pub topic: &'a str,
    pub start: &'a Position,
}

impl LiveConsumerStarted<'_> {
    #[must_use = "the consumer counts as live while the guard lives"]
    pub fn emit(&self, metrics: &SseMetrics) -> LiveConsumer {
        tracing::info!(topic = %self.topic, start = ?self.start, "live consumer started");
        metrics.live_consumers.inc();
        LiveConsumer(metrics.live_consumers.clone())
    }
}

/// A live consumer counted in `zoomstream_sse_live_consumers` until dropped.
pub struct LiveConsumer(IntGauge);

impl Drop for LiveConsumer {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::outcome;

    #[test]
    fn each_happening_updates_its_metric_under_its_labels() {
        let metrics = SseMetrics::new();
        let disconnects = |reason: Reason| {
            metrics
                .disconnects
                .with_label_values(&["s", reason.as_str()])
                .get()
        };
        StreamRequestAnswered {
            outcome: outcome::STREAMING,
        }
        .emit(&metrics);
        assert_eq!(metrics.requests.with_label_values(&["streaming"]).get(), 1);

        ClientConnected {
            source: "s",
            start: "latest",
        }
        .emit(&metrics);
        ClientConnected {
            source: "s",
            start: "resume",
        }
        .emit(&metrics);
        assert_eq!(metrics.clients.with_label_values(&["s"]).get(), 2);
        StreamEnded {
            source: "s",
            reason: Reason::SlowClient,
            queued: 3,
        }
        .emit(&metrics);
        let gone = |ended_by_server| ClientDisconnected {
            source: "s",
            ended_by_server,
            events: 5,
            connected_for: Duration::from_secs(1),
        };
        gone(Some(Reason::SlowClient)).emit(&metrics);
        gone(None).emit(&metrics);
        assert_eq!(metrics.clients.with_label_values(&["s"]).get(), 0);
        assert_eq!(
            disconnects(Reason::SlowClient),
            1,
            "counted once, when ended"
        );
        assert_eq!(disconnects(Reason::ClientClosed), 1);

        let position = Position::default();
        CatchUpStarted {
            source: "s",
            from: &position,
            until: &position,
        }
        .emit(&metrics);
        assert_eq!(metrics.catchups.with_label_values(&["s"]).get(), 1);
        RecordUndecodable {
            source: "s",
            partition: 0,
            offset: 7,
            error: &RenderError::NoValue,
        }
        .emit(&metrics);
        assert_eq!(metrics.undecodable.with_label_values(&["s"]).get(), 1);

        let live = LiveConsumerStarted {
            topic: "t",
            start: &position,
        }
        .emit(&metrics);
        assert_eq!(metrics.live_consumers.get(), 1);
        drop(live);
        assert_eq!(metrics.live_consumers.get(), 0);
    }
}
