//! The Prometheus text endpoint. Each service owns its own [`prometheus::Registry`] (not the
//! process-global one), so several services, or several tests, can share a process.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder as _, Registry, TextEncoder};

/// Renders a registry in the Prometheus text format, as `GET /metrics` answers it.
pub fn render(registry: &Registry) -> Response {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&registry.gather(), &mut body) {
        Ok(()) => (
            [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
            body,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "encoding metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Registers a collector, panicking on a duplicate name: that is a programming error found by
/// the first test that builds the service.
pub fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry
        .register(Box::new(c.clone()))
        .expect("metric names are unique within a service");
    c
}
