//! The SSE service's Prometheus metrics, all on the service's own registry. Labels are bounded:
//! `source` by the sources file, `reason` and `outcome` by the fixed sets below. They are
//! updated by the happenings of [`events`](crate::events), and events sent by each client's
//! stream.

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use zoomstream_runtime::metrics::register;

/// Why a client's stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The client went away (closed the connection, or a write to it failed).
    ClientClosed,
    /// The client did not keep up: its buffer was full at the live edge, or stayed full
    /// while catching up.
    SlowClient,
    /// The service is shutting down.
    Shutdown,
    /// The source's records could not be read (Kafka refused a reader).
    SourceUnavailable,
}

impl Reason {
    pub const ALL: [Reason; 4] = [
        Reason::ClientClosed,
        Reason::SlowClient,
        Reason::Shutdown,
        Reason::SourceUnavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ClientClosed => "client_closed",
            Reason::SlowClient => "slow_client",
            Reason::Shutdown => "shutdown",
            Reason::SourceUnavailable => "source_unavailable",
        }
    }

    /// What the client is told in its final event.
    pub fn message(self) -> &'static str {
        match self {
            Reason::ClientClosed => "the client closed the stream",
            Reason::SlowClient => {
                "the client did not read fast enough and was disconnected; reconnect with the last \
                 event id to continue where it stopped"
            }
            Reason::Shutdown => "the server is shutting down; reconnect with the last event id to continue",
            Reason::SourceUnavailable => {
                "the source's records cannot be read right now; reconnect with the last event id to continue"
            }
        }
    }
}

/// Outcomes of `GET /sources/{name}/events`.
pub mod outcome {
    pub const STREAMING: &str = "streaming";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const UNKNOWN_SOURCE: &str = "unknown_source";
    pub const BAD_REQUEST: &str = "bad_request";
    pub const TOO_MANY_CLIENTS: &str = "too_many_clients";
    pub const TOKEN_STREAM_LIMIT: &str = "token_stream_limit";
    pub const ADDRESS_STREAM_LIMIT: &str = "address_stream_limit";
    pub const BAD_LAST_EVENT_ID: &str = "bad_last_event_id";
    pub const SOURCE_UNAVAILABLE: &str = "source_unavailable";
}

#[derive(Clone)]
pub struct SseMetrics {
    pub registry: Registry,
    /// Connected clients, by source.
    pub clients: IntGaugeVec,
    /// Events handed to clients' connections, by source.
    pub events_sent: IntCounterVec,
    /// Streams ended, by source and reason ([`Reason`]): counted when the server ends a stream
    /// (its connection may stay until the client read the final event, or was cut), or when
    /// the client is seen gone.
    pub disconnects: IntCounterVec,
    /// Stream requests, by outcome ([`outcome`]).
    pub requests: IntCounterVec,
    /// Live Kafka consumers (one per source with clients, whatever their number).
    pub live_consumers: IntGauge,
    /// Catch-ups from Kafka started (a client resuming from an older position), by source.
    pub catchups: IntCounterVec,
    /// Source records that did not decode with the source's schema (skipped), by source.
    pub undecodable: IntCounterVec,
}

impl SseMetrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            register(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        SseMetrics {
            clients: register(
                &registry,
                IntGaugeVec::new(Opts::new("zoomstream_sse_connected_clients", "Connected SSE clients, by source."), &["source"])
                    .expect("valid metric"),
            ),
            events_sent: counter_vec("zoomstream_sse_events_sent_total", "Events sent to SSE clients, by source.", &["source"]),
            disconnects: counter_vec(
                "zoomstream_sse_disconnects_total",
                "SSE streams ended, by source and reason.",
                &["source", "reason"],
            ),
            requests: counter_vec("zoomstream_sse_requests_total", "SSE stream requests, by outcome.", &["outcome"]),
            live_consumers: register(
                &registry,
                IntGauge::new("zoomstream_sse_live_consumers", "Live Kafka consumers (one per source with clients).")
                    .expect("valid metric"),
            ),
            catchups: counter_vec(
                "zoomstream_sse_catchups_total",
                "Clients that read older records from Kafka before joining the live feed, by source.",
                &["source"],
            ),
            undecodable: counter_vec(
                "zoomstream_sse_undecodable_records_total",
                "Source records skipped because they do not decode with the source's schema, by source.",
                &["source"],
            ),
            registry,
        }
    }
}

impl SseMetrics {
    /// Creates a source's series at zero, so dashboards see zeros, not gaps.
    pub fn add_source(&self, source: &str) {
        self.clients.with_label_values(&[source]);
        self.events_sent.with_label_values(&[source]);
        for reason in Reason::ALL {
            self.disconnects
                .with_label_values(&[source, reason.as_str()]);
        }
    }
}

impl Default for SseMetrics {
    fn default() -> Self {
        Self::new()
    }
}
