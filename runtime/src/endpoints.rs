//! The endpoints every service serves beside its own: `GET /healthz` and `GET /metrics`.

use std::future::ready;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use prometheus::Registry;
use serde_json::{json, Value};

use crate::metrics;

/// Whether the service is healthy, as `/healthz` tells it. Healthy from the start; a service
/// whose work stopped for good marks itself failed.
#[derive(Clone, Debug)]
pub struct Health(Arc<AtomicBool>);

impl Health {
    pub fn new() -> Health {
        Health(Arc::new(AtomicBool::new(true)))
    }

    pub fn set(&self, healthy: bool) {
        self.0.store(healthy, Ordering::SeqCst);
    }

    pub fn is_healthy(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

/// `GET /healthz`: 200 `{"status":"ok"}` while healthy, else 503 `{"status":"failed"}`.
/// `GET /metrics`: the registry in the Prometheus text format. Merged into a service's router.
pub fn router<S>(registry: Registry, health: Health) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/healthz", get(move || ready(healthz(&health))))
        .route("/metrics", get(move || ready(metrics::render(&registry))))
}

fn healthz(health: &Health) -> (StatusCode, Json<Value>) {
    if health.is_healthy() {
        (StatusCode::OK, Json(json!({"status": "ok"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "failed"})),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    /// The status line and body of `GET path`, over a plain TCP connection.
    fn get_raw(addr: std::net::SocketAddr, path: &str) -> String {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    #[tokio::test]
    async fn healthz_follows_the_health_and_metrics_renders_the_registry() {
        let registry = Registry::new();
        let counter =
            prometheus::IntCounter::new("endpoint_test_total", "A test counter.").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.inc();
        let health = Health::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app: Router = router(registry, health.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let get = |path: &'static str| tokio::task::spawn_blocking(move || get_raw(addr, path));
        let ok = get("/healthz").await.unwrap();
        assert!(
            ok.starts_with("HTTP/1.1 200") && ok.ends_with(r#"{"status":"ok"}"#),
            "{ok}"
        );
        let page = get("/metrics").await.unwrap();
        assert!(page.contains("endpoint_test_total 1"), "{page}");
        health.set(false);
        let failed = get("/healthz").await.unwrap();
        assert!(
            failed.starts_with("HTTP/1.1 503") && failed.ends_with(r#"{"status":"failed"}"#),
            "{failed}"
        );
    }
}
