//! Requests refused before any handler, answered with the services' JSON error body and
//! counted: paths that are not canonical (percent-encoded, dot or empty segments: a path must
//! name one route in one way), and methods a route does not take.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;

use crate::listener::events::{ListenerMetrics, RequestRejected};

/// `{"error": code, "message": message}` with `status`, as every zoomstream error is answered.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

/// Whether `path` is written in its one canonical form.
pub fn is_canonical(path: &str) -> bool {
    path.starts_with('/')
        && !path.contains('%')
        && !path.contains("//")
        && !path
            .split('/')
            .any(|segment| segment == "." || segment == "..")
}

/// `router` with non-canonical paths refused (400 `non_canonical_path`) and wrong methods
/// answered 405 `method_not_allowed` with the JSON body, both counted.
pub fn harden(router: Router, metrics: ListenerMetrics) -> Router {
    let on_method = metrics.clone();
    router
        .method_not_allowed_fallback(move || {
            let metrics = on_method.clone();
            async move {
                RequestRejected {
                    reason: "method_not_allowed",
                }
                .emit(&metrics);
                error_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "this endpoint does not take that method",
                )
            }
        })
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            let metrics = metrics.clone();
            async move {
                if is_canonical(request.uri().path()) {
                    return next.run(request).await;
                }
                RequestRejected {
                    reason: "non_canonical_path",
                }
                .emit(&metrics);
                error_response(
                    StatusCode::BAD_REQUEST,
                    "non_canonical_path",
                    "the path must be written plainly: no percent-encoding, no empty or dot segments",
                )
            }
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_are_canonical() {
        for path in ["/webhooks/zoom-admin", "/sources/a/events", "/healthz", "/"] {
            assert!(is_canonical(path), "{path}");
        }
        for path in [
            "/webhooks/zoom%2Dadmin",
            "/webhooks//zoom",
            "/webhooks/./zoom",
            "/webhooks/../healthz",
            "/webhooks/zoom%00",
        ] {
            assert!(!is_canonical(path), "{path}");
        }
    }
}
