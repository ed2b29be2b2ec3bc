//! What happens to connections that a metric counts, each happening defined once with its log
//! line and metric. The metrics go on the service's own registry.

use std::io;
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::listener::limits::Refusal;
use crate::metrics::register;

#[derive(Clone)]
pub struct ListenerMetrics {
    /// Connections open now.
    pub open: IntGauge,
    /// Connections closed at once on accept, by cap (`global_limit`, `address_limit`).
    pub refused: IntCounterVec,
    /// Connections the server ended, by reason (`idle_timeout`, `header_timeout`,
    /// `displaced` (by a new connection while every slot was taken, before sending a request),
    /// `bad_request`, `headers_too_large`, `protocol_error`).
    pub closed: IntCounterVec,
    /// Requests answered before any handler (`method_not_allowed`, `non_canonical_path`).
    pub rejected: IntCounterVec,
    /// Failed accepts (e.g. the file-descriptor limit reached).
    pub accept_errors: IntCounter,
}

impl ListenerMetrics {
    pub fn new(registry: &Registry) -> Self {
        ListenerMetrics {
            open: register(
                registry,
                IntGauge::new("zoomstream_http_connections_open", "Open HTTP connections.")
                    .expect("valid metric"),
            ),
            refused: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "zoomstream_http_connections_refused_total",
                        "Connections closed on accept by a connection cap, by cap.",
                    ),
                    &["reason"],
                )
                .expect("valid metric"),
            ),
            closed: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "zoomstream_http_connections_closed_total",
                        "Connections the server ended early (timeouts, malformed requests), by reason.",
                    ),
                    &["reason"],
                )
                .expect("valid metric"),
            ),
            rejected: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "zoomstream_http_requests_rejected_total",
                        "Requests rejected before reaching a handler, by reason.",
                    ),
                    &["reason"],
                )
                .expect("valid metric"),
            ),
            accept_errors: register(
                registry,
                IntCounter::new(
                    "zoomstream_http_accept_errors_total",
                    "Failed accepts of new connections (e.g. out of file descriptors).",
                )
                .expect("valid metric"),
            ),
        }
    }
}

/// A connection closed on accept because a cap was reached.
pub struct ConnectionRefused {
    pub reason: Refusal,
}

impl ConnectionRefused {
    pub fn emit(&self, metrics: &ListenerMetrics) {
        tracing::debug!(reason = self.reason.as_str(), "connection refused");
        metrics
            .refused
            .with_label_values(&[self.reason.as_str()])
            .inc();
    }
}

/// A connection the server ended early; `reason` is one of [`ListenerMetrics::closed`]'s.
pub struct ConnectionClosed {
    pub reason: &'static str,
}

impl ConnectionClosed {
    pub fn emit(&self, metrics: &ListenerMetrics) {
        tracing::debug!(reason = self.reason, "connection closed by the server");
        metrics.closed.with_label_values(&[self.reason]).inc();
    }
}

/// A request rejected before any handler; `reason` is one of [`ListenerMetrics::rejected`]'s.
pub struct RequestRejected {
    pub reason: &'static str,
}

impl RequestRejected {
    pub fn emit(&self, metrics: &ListenerMetrics) {
        tracing::info!(reason = self.reason, "request rejected");
        metrics.rejected.with_label_values(&[self.reason]).inc();
    }
}

/// An accept that failed; logged at most once per `LOG_EVERY` (a flood would fill the log).
pub struct AcceptFailed<'a> {
    pub error: &'a io::Error,
    pub log: bool,
}

pub const LOG_EVERY: Duration = Duration::from_secs(5);

impl AcceptFailed<'_> {
    pub fn emit(&self, metrics: &ListenerMetrics) {
        if self.log {
            tracing::warn!(error = %self.error, "cannot accept a connection");
        }
        metrics.accept_errors.inc();
    }
}

/// An open connection: the gauge counts it for as long as this lives.
pub struct ConnectionOpen(IntGauge);

impl ConnectionOpen {
    pub fn enter(metrics: &ListenerMetrics) -> Self {
        metrics.open.inc();
        ConnectionOpen(metrics.open.clone())
    }
}

impl Drop for ConnectionOpen {
    fn drop(&mut self) {
        self.0.dec();
    }
}
