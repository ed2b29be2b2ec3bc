//! The HTTP surface: `GET /sources/{name}/events`, `/healthz`, `/metrics`.
//!
//! | request | answer |
//! | --- | --- |
//! | no token, or one that does not open the source | 401, `WWW-Authenticate: Bearer`, no data |
//! | unknown source (with a token that opens every source without its own tokens) | 404 |
//! | `Last-Event-ID` this service did not issue, or not a position of the topic (a partition it does not have, an offset past the end), `from` not `earliest`/`latest` | 400 with the reason |
//! | `max_clients_per_token` streams open with the token, or `max_clients_per_address` from the address | 429, `retry-after: 5` |
//! | `max_clients` streams open | 503, `retry-after: 5` |
//! | otherwise | 200 `text/event-stream` |
//!
//! The token is checked before the source's existence, so source names cannot be enumerated
//! without a token: only a token that would open an unknown source learns it is unknown.
//!
//! The token comes as `Authorization: Bearer <token>`, or as `?access_token=<token>` for
//! browsers, whose `EventSource` cannot set headers. The query string is never logged.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use zoomstream_runtime::endpoints::{self, Health};
use zoomstream_runtime::listener::limits::client_of;

use crate::client::{self, Refused, Start, Streams};
use crate::conn::Conn;
use crate::events::StreamRequestAnswered;
use crate::frames::SourceSpec;
use crate::metrics::{outcome, SseMetrics};
use crate::position::Position;
use crate::quotas::{QuotaScope, Quotas};
use crate::resume::ResumeError;
use crate::tokens::{self, Tokens};

pub struct AppState {
    pub sources: HashMap<String, Arc<SourceSpec>>,
    pub tokens: Tokens,
    pub streams: Arc<Streams>,
    pub metrics: SseMetrics,
    pub quotas: Arc<Quotas>,
    pub cors_origins: Vec<String>,
}

pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/sources/{name}/events", get(events).options(preflight))
        .merge(endpoints::router(
            state.metrics.registry.clone(),
            Health::new(),
        ))
        .with_state(state)
}

/// An error answer: `{"error": code, "message": reason}`.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

#[tracing::instrument(skip_all, fields(source = %name, remote = %conn.remote))]
async fn events(
    State(state): State<Arc<AppState>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    Path(name): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let mut response = answer(&state, conn, &name, &query, &headers).await;
    cors(&state, &headers, &mut response);
    response
}

async fn answer(
    state: &AppState,
    conn: Conn,
    name: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> Response {
    let param = |key: &str| {
        query
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let count = |outcome| StreamRequestAnswered { outcome }.emit(&state.metrics);

    let presented = bearer(headers).or_else(|| param("access_token"));
    let Some(token) = presented.filter(|token| state.tokens.allows(name, token)) else {
        count(outcome::UNAUTHORIZED);
        let challenge = if presented.is_some() {
            r#"Bearer realm="zoomstream-sse", error="invalid_token""#
        } else {
            r#"Bearer realm="zoomstream-sse""#
        };
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a bearer token that opens this source is required (Authorization: Bearer …, or ?access_token=…)",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
        return response;
    };
    let Some(source) = state.sources.get(name) else {
        count(outcome::UNKNOWN_SOURCE);
        return error(
            StatusCode::NOT_FOUND,
            "unknown_source",
            "no source of that name",
        );
    };

    // Last-Event-ID (set by EventSource on reconnect) wins over ?last_event_id, which wins over
    // ?from.
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or_else(|| param("last_event_id"))
        .filter(|id| !id.trim().is_empty());
    let start = match (last_event_id, param("from")) {
        (Some(id), _) => match Position::decode(id) {
            Ok(position) => Start::Resume(position),
            Err(err) => {
                count(outcome::BAD_REQUEST);
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_last_event_id",
                    &format!("Last-Event-ID is not an id of this stream: {err}"),
                );
            }
        },
        (None, None | Some("latest")) => Start::Latest,
        (None, Some("earliest")) => Start::Earliest,
        (None, Some(_)) => {
            count(outcome::BAD_REQUEST);
            return error(
                StatusCode::BAD_REQUEST,
                "bad_from",
                "from must be earliest or latest",
            );
        }
    };

    let quota = match state
        .quotas
        .admit(tokens::digest(token), client_of(conn.remote.ip()))
    {
        Ok(quota) => quota,
        Err(scope) => {
            let (code, message) = match scope {
                QuotaScope::Token => (
                    outcome::TOKEN_STREAM_LIMIT,
                    "too many streams are open with this token; close one or retry later",
                ),
                QuotaScope::Address => (
                    outcome::ADDRESS_STREAM_LIMIT,
                    "too many streams are open from this address; close one or retry later",
                ),
            };
            count(code);
            return retry_later(StatusCode::TOO_MANY_REQUESTS, code, message);
        }
    };
    let body = match client::open(&state.streams, source.clone(), start, conn.kill, quota).await {
        Ok(body) => body,
        Err(Refused::TooManyClients) => {
            count(outcome::TOO_MANY_CLIENTS);
            return retry_later(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_clients",
                "too many streams are open; retry later",
            );
        }
        Err(Refused::BadId(err @ ResumeError::Unchecked(_))) => {
            count(outcome::SOURCE_UNAVAILABLE);
            return retry_later(
                StatusCode::SERVICE_UNAVAILABLE,
                err.code(),
                &err.to_string(),
            );
        }
        Err(Refused::BadId(err)) => {
            count(outcome::BAD_LAST_EVENT_ID);
            return error(
                StatusCode::BAD_REQUEST,
                err.code(),
                &format!("Last-Event-ID is not a position of this stream: {err}"),
            );
        }
    };
    count(outcome::STREAMING);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache, no-store")
        // nginx and friends: do not buffer the stream.
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(body))
        .expect("a valid response")
}

/// An error answer the client may retry after a while.
fn retry_later(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = error(status, code, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// CORS for browsers on allowed origins: `EventSource` needs only the allow-origin header.
fn cors(state: &AppState, headers: &HeaderMap, response: &mut Response) {
    // `null` is the origin of sandboxed frames and local files: any page can claim it, so it
    // is never allowed, not even by `*`.
    let Some(origin) = headers
        .get(header::ORIGIN)
        .filter(|o| o.as_bytes() != b"null")
    else {
        return;
    };
    let allowed = state
        .cors_origins
        .iter()
        .any(|o| o == "*" || o.as_bytes() == origin.as_bytes());
    if allowed {
        response
            .headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        response
            .headers_mut()
            .append(header::VARY, HeaderValue::from_static("origin"));
    }
}

/// `OPTIONS`: a preflight, for clients that send `Authorization` or `Last-Event-ID`
/// cross-origin (e.g. fetch-based SSE clients).
async fn preflight(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    cors(&state, &headers, &mut response);
    if response
        .headers()
        .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    {
        let h = response.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(Method::GET.as_str()),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, last-event-id, cache-control"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    response
}
