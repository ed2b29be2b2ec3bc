//! The HTTP contract: webhook paths, health, readiness and metrics, and how each failure is
//! answered. Zoom retries any answer but a 200/204 (three times, then stops sending that
//! event), so anything transient is a 503 — a retry can succeed — and a 4xx always means "this
//! request can never succeed".

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use zoomstream_runtime::endpoints::{self, Health};
use zoomstream_schemas::{raw, App};

use crate::body::parse_strict;
use crate::body_budget::{BodyBudget, Budgeted, OverBudget};
use crate::events::{
    ReplayNotPublished, UrlValidationAnswered, WebhookInFlight, WebhookPublished, WebhookRejected,
};
use crate::metrics::IngestMetrics;
use crate::passthrough::pass_through;
use crate::publish::{PublishError, RawPublisher, RawRecord};
use crate::readiness::Readiness;
use crate::replay::{self, Claim, Outcome, ReplayCache};
use crate::verify::{Verifier, VerifyError};

/// Everything a request handler needs; built once per service.
pub struct AppState {
    /// One per app, each on its own path.
    pub apps: Vec<ReceivingRoute>,
    pub publisher: Arc<RawPublisher>,
    /// The disk spool, when configured (`ZOOMSTREAM_SPOOL_DIR`).
    pub spool: Option<Arc<crate::spool::Spool>>,
    pub metrics: IngestMetrics,
    pub permits: Arc<Semaphore>,
    pub max_body_bytes: usize,
    pub body_budget: BodyBudget,
    pub body_timeout: Duration,
    pub replays: ReplayCache,
    pub readiness: Readiness,
}

/// An app's webhook path, and its verifier when its secret tokens are configured.
pub struct ReceivingRoute {
    pub app: App,
    pub path: String,
    pub verifier: Option<Verifier>,
}

impl AppState {
    fn verifier(&self, app: App) -> Option<&Verifier> {
        self.apps
            .iter()
            .find(|r| r.app == app)
            .and_then(|r| r.verifier.as_ref())
    }
}

/// The router: `POST` on each app's path (by default `/webhooks/<app name>`), `GET /healthz`,
/// `GET /readyz`, `GET /metrics`.
pub fn app(state: Arc<AppState>) -> Router {
    let mut router = Router::new();
    for route in &state.apps {
        let app = route.app;
        router = router.route(
            &route.path,
            post(
                move |State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body| {
                    webhook(state, app, headers, body)
                },
            ),
        );
    }
    router
        .route("/readyz", get(readyz))
        .merge(endpoints::router(
            state.metrics.registry.clone(),
            Health::new(),
        ))
        .fallback(not_found)
        .with_state(state)
}

/// A path no app has: a webhook posted there is counted as rejected for app `unknown`.
async fn not_found(State(state): State<Arc<AppState>>, method: Method) -> Response {
    let error = WebhookError::NotFound;
    if method == Method::POST {
        WebhookRejected {
            app: None,
            error: &error,
        }
        .emit(&state.metrics);
    }
    error.into_response()
}

/// Why a webhook was not accepted. The message is what the caller reads: specific, and never
/// an internal detail (broker addresses, secrets, library errors go to the log only).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no such endpoint")]
    NotFound,
    #[error("the {0} app is not configured on this server")]
    AppNotConfigured(App),
    #[error("content-type must be application/json")]
    UnsupportedMediaType,
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("request body was not received within {0:?}")]
    BodyTimeout(Duration),
    #[error("request body could not be read")]
    BodyUnreadable,
    #[error("{0}")]
    Unauthorized(#[from] VerifyError),
    #[error("body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("body has no string field \"event\"")]
    MissingEvent,
    #[error("endpoint.url_validation without a string payload.plainToken")]
    MissingPlainToken,
    #[error("server is overloaded, retry later")]
    Overloaded,
    #[error("the webhook could not be stored durably, retry later")]
    Unavailable(#[source] PublishError),
    #[error("a copy of this request arriving at the same time could not be stored; retry later")]
    OriginalNotStored,
}

impl WebhookError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebhookError::NotFound | WebhookError::AppNotConfigured(_) => StatusCode::NOT_FOUND,
            WebhookError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            WebhookError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            WebhookError::BodyUnreadable
            | WebhookError::MalformedJson(_)
            | WebhookError::MissingEvent
            | WebhookError::MissingPlainToken => StatusCode::BAD_REQUEST,
            WebhookError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            WebhookError::Overloaded
            | WebhookError::Unavailable(_)
            | WebhookError::OriginalNotStored => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The outcome label of the requests metric, and the `error` field of the response.
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::NotFound => "not_found",
            WebhookError::AppNotConfigured(_) => "app_not_configured",
            WebhookError::UnsupportedMediaType => "unsupported_media_type",
            WebhookError::PayloadTooLarge(_) => "payload_too_large",
            WebhookError::BodyTimeout(_) => "body_timeout",
            WebhookError::BodyUnreadable => "body_unreadable",
            WebhookError::Unauthorized(_) => "unauthorized",
            WebhookError::MalformedJson(_) => "malformed_json",
            WebhookError::MissingEvent => "missing_event",
            WebhookError::MissingPlainToken => "missing_plain_token",
            WebhookError::Overloaded => "overloaded",
            WebhookError::Unavailable(_) => "unavailable",
            WebhookError::OriginalNotStored => "original_not_stored",
        }
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": self.code(), "message": self.to_string()}));
        if self.status() == StatusCode::SERVICE_UNAVAILABLE {
            (self.status(), [(header::RETRY_AFTER, "1")], body).into_response()
        } else {
            (self.status(), body).into_response()
        }
    }
}

async fn webhook(state: Arc<AppState>, app: App, headers: HeaderMap, body: Body) -> Response {
    let outcome = handle(&state, app, &headers, body).await;
    outcome.unwrap_or_else(|error| {
        WebhookRejected {
            app: Some(app),
            error: &error,
        }
        .emit(&state.metrics);
        error.into_response()
    })
}

/// Answers one webhook of `app`. Emits what happened when it succeeds; a failure is emitted
/// by the caller.
// A span per request at debug level only: at info it cost more than verifying the webhook.
#[tracing::instrument(level = "debug", skip_all, fields(app = %app))]
async fn handle(
    state: &AppState,
    app: App,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, WebhookError> {
    let verifier = state
        .verifier(app)
        .ok_or(WebhookError::AppNotConfigured(app))?;
    if !is_json(headers) {
        return Err(WebhookError::UnsupportedMediaType);
    }
    // The body is read and verified before any scarce resource is taken: an unsigned client
    // holds only its connection (capped per address and overall, runtime::listener) and at
    // most `body_timeout`, never an in-flight slot.
    let (body, _charge) = state.body_budget.wrap(body);
    let body = read_body(body, headers, state.max_body_bytes, state.body_timeout).await?;
    let received_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();

    let timestamp = header_str(headers, raw::headers::ZM_REQUEST_TIMESTAMP);
    let signature = header_str(headers, raw::headers::ZM_SIGNATURE);
    let signature_bytes = verifier.verify(timestamp, signature, &body, received_at.as_secs())?;
    let (timestamp, signature) = (timestamp.unwrap_or_default(), signature.unwrap_or_default());

    let envelope: Value =
        parse_strict(&body).map_err(|e| WebhookError::MalformedJson(e.to_string()))?;
    let event = envelope
        .get("event")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        .ok_or(WebhookError::MissingEvent)?;

    if event == "endpoint.url_validation" {
        let plain = envelope
            .pointer("/payload/plainToken")
            .and_then(Value::as_str)
            .ok_or(WebhookError::MissingPlainToken)?;
        let answer = json!({"plainToken": plain, "encryptedToken": verifier.encrypt_token(plain)});
        UrlValidationAnswered { app }.emit(&state.metrics);
        return Ok(Json(answer).into_response());
    }

    let event_id = raw::event_id(app, &envelope);
    let duplicate = || {
        ReplayNotPublished {
            app,
            event,
            event_id: &event_id,
        }
        .emit(&state.metrics);
        Json(json!({"status": "duplicate", "event_id": event_id})).into_response()
    };
    let reservation = match state.replays.claim(&signature_bytes) {
        Claim::First(reservation) => reservation,
        Claim::Published => return Ok(duplicate()),
        Claim::Pending(first) => {
            return match replay::wait(first).await {
                Outcome::Published => Ok(duplicate()),
                _ => Err(WebhookError::OriginalNotStored),
            }
        }
    };
    // Shed load only now, for verified webhooks: a 503 makes Zoom retry later.
    let _permit = state
        .permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| WebhookError::Overloaded)?;
    let _in_flight = WebhookInFlight::enter(&state.metrics);
    let key = raw::partition_key(&envelope);
    let passed = pass_through(headers, &state.metrics);
    let record = RawRecord {
        app,
        event,
        event_id: &event_id,
        key: key.as_deref(),
        received_at_ms: i64::try_from(received_at.as_millis()).unwrap_or(i64::MAX),
        zm_timestamp: timestamp,
        zm_signature: signature,
        zm_request_id: passed.zm_request_id,
        zm_tracking_id: passed.zm_tracking_id,
        traceparent: passed.traceparent,
        body: &body,
    };
    let stored = crate::spool::drain::store(
        &state.publisher,
        state.spool.as_ref(),
        &record,
        &state.metrics,
    )
    .await
    .map_err(|err| match err {
        // Only when a body's key and headers exceed the 64 KiB the limits leave for them.
        err if err.is_too_large() => WebhookError::PayloadTooLarge(state.max_body_bytes),
        err => WebhookError::Unavailable(err),
    })?;
    // Spooled or in Kafka: durable either way, so copies waiting on it answer `duplicate`.
    reservation.published();
    if let crate::spool::drain::Stored::Published { partition, offset } = stored {
        WebhookPublished {
            app,
            event,
            event_id: &event_id,
            partition,
            offset,
        }
        .emit(&state.metrics);
    }
    Ok(Json(json!({"status": "accepted", "event_id": event_id})).into_response())
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Exactly one content type, and it is JSON (charset parameters allowed).
fn is_json(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    match (values.next(), values.next()) {
        (Some(ct), None) => ct
            .to_str()
            .ok()
            .and_then(|ct| ct.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json")),
        _ => false,
    }
}

async fn read_body(
    body: Budgeted<Body>,
    headers: &HeaderMap,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, WebhookError> {
    let declared =
        header_str(headers, header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(WebhookError::PayloadTooLarge(limit));
    }
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Err(_) => Err(WebhookError::BodyTimeout(timeout)),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if err.downcast_ref::<LengthLimitError>().is_some() => {
            Err(WebhookError::PayloadTooLarge(limit))
        }
        Ok(Err(err)) if err.downcast_ref::<OverBudget>().is_some() => Err(WebhookError::Overloaded),
        Ok(Err(err)) => {
            tracing::debug!(error = %err, "reading request body");
            Err(WebhookError::BodyUnreadable)
        }
    }
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let (status, mut body) = match state.readiness.check(&state.publisher).await {
        Ok(()) => (StatusCode::OK, json!({"status": "ready"})),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "not_ready", "reason": reason.to_string()}),
        ),
    };
    // With a spool, its depth: webhooks accepted and not yet in Kafka.
    if let Some(spool) = &state.spool {
        body["spool_entries"] = json!(spool.depth());
    }
    (status, Json(body)).into_response()
}
