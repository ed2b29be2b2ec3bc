//! A minimal, blocking Confluent Schema Registry client: registers each source's schema under its
//! topic's subject, for the Confluent framing. What is registered (the subject, the schema text)
//! is the contract's ([`zoomstream_schemas::avro`]); talking HTTP is the processor's alone.

use std::time::Duration;

use apache_avro::Schema;
use serde_json::Value as JsonValue;
use zoomstream_schemas::avro::registry_schema_text;
use zoomstream_schemas::url_component;

/// Why registering a schema failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("schema registry {url}: {error}")]
    Transport {
        url: String,
        #[source]
        error: ureq::Error,
    },
    #[error("schema registry {url} answered {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("schema registry {url} answered 200 without a schema id: {body}")]
    BadResponse { url: String, body: String },
}

impl RegistryError {
    /// Whether trying again later may succeed (network trouble, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Transport { .. } => true,
            RegistryError::Status { status, .. } => *status >= 500 || *status == 429,
            RegistryError::BadResponse { .. } => false,
        }
    }
}

/// A minimal, blocking Confluent Schema Registry client (run it in `spawn_blocking`).
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    base_url: String,
    agent: ureq::Agent,
}

impl SchemaRegistry {
    /// A client of the registry at `base_url` (e.g. `http://localhost:8081`), with a 10 s
    /// timeout per request.
    pub fn new(base_url: impl Into<String>) -> SchemaRegistry {
        SchemaRegistry::with_timeout(base_url, Duration::from_secs(10))
    }

    /// A client whose requests give up after `timeout` (connect, send and read together).
    pub fn with_timeout(base_url: impl Into<String>, timeout: Duration) -> SchemaRegistry {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build();
        SchemaRegistry {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            agent: config.into(),
        }
    }

    /// The registry's URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Registers `schema` under `subject` (or finds it registered) and returns its id.
    pub fn register(&self, subject: &str, schema: &Schema) -> Result<u32, RegistryError> {
        let url = format!(
            "{}/subjects/{}/versions",
            self.base_url,
            url_component::encode(subject)
        );
        let body = serde_json::json!({ "schema": registry_schema_text(schema) }).to_string();
        let transport = |error| RegistryError::Transport {
            url: url.clone(),
            error,
        };
        let mut response = self
            .agent
            .post(&url)
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .header(
                "Accept",
                "application/vnd.schemaregistry.v1+json, application/json",
            )
            .send(body.as_str())
            .map_err(transport)?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().map_err(transport)?;
        if !(200..300).contains(&status) {
            // The registry's errors are {"error_code": …, "message": "…"}.
            let message = serde_json::from_str::<JsonValue>(&text)
                .ok()
                .and_then(|v| {
                    v.get("message")
                        .and_then(JsonValue::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or(text);
            return Err(RegistryError::Status {
                url,
                status,
                message,
            });
        }
        serde_json::from_str::<JsonValue>(&text)
            .ok()
            .and_then(|v| v.get("id").and_then(JsonValue::as_u64))
            .and_then(|id| u32::try_from(id).ok())
            .ok_or(RegistryError::BadResponse { url, body: text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::IntoFuture as _;
    use std::net::TcpListener;
    use std::thread;

    use zoomstream_schemas::avro::subject_for_topic;
    use zoomstream_schemas::shape::Shape;

    fn record_schema() -> Schema {
        Schema::parse_str(
            r#"{"type": "record", "name": "R", "namespace": "t", "doc": "d", "fields": [
                {"name": "s", "type": "string"},
                {"name": "n", "type": ["null", "long"], "default": null},
                {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}"#,
        )
        .unwrap()
    }

    /// A one-request HTTP server (axum) answering `status` with `body`; returns its URL and a
    /// handle giving back the request it saw (request line, lower-cased headers, body).
    fn serve_once(
        status: &'static str,
        body: &'static str,
    ) -> (String, thread::JoinHandle<(String, Vec<String>, String)>) {
        use axum::http::{header::CONTENT_TYPE, HeaderMap, Method, StatusCode, Uri};

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let code: u16 = status.split(' ').next().unwrap().parse().unwrap();
        let handle = thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (seen, mut requests) = tokio::sync::mpsc::channel(1);
                let app = axum::Router::new().fallback(
                    move |method: Method, uri: Uri, headers: HeaderMap, request: String| async move {
                        let headers = headers
                            .iter()
                            .map(|(k, v)| {
                                format!("{k}: {}", v.to_str().unwrap()).to_ascii_lowercase()
                            })
                            .collect::<Vec<_>>();
                        let line = format!("{method} {uri} HTTP/1.1");
                        seen.send((line, headers, request)).await.unwrap();
                        (
                            StatusCode::from_u16(code).unwrap(),
                            [(CONTENT_TYPE, "application/vnd.schemaregistry.v1+json")],
                            body,
                        )
                    },
                );
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                let server = tokio::spawn(
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        })
                        .into_future(),
                );
                let request = requests.recv().await.unwrap();
                // Graceful: the answer in flight is still written.
                stop.send(()).unwrap();
                server.await.unwrap().unwrap();
                request
            })
        });
        (url, handle)
    }

    #[test]
    fn registering_posts_the_schema_and_reads_the_id() {
        let (url, server) = serve_once("200 OK", r#"{"id":17}"#);
        let schema = Schema::parse_str(Shape::Meeting.builtin_schema()).unwrap();
        let registry = SchemaRegistry::new(format!("{url}/"));
        assert_eq!(registry.base_url(), url);
        let id = registry
            .register(&subject_for_topic("zoom.meeting-created"), &schema)
            .unwrap();
        assert_eq!(id, 17);
        let (request_line, headers, body) = server.join().unwrap();
        assert_eq!(
            request_line,
            "POST /subjects/zoom.meeting-created-value/versions HTTP/1.1"
        );
        assert!(
            headers.contains(&"content-type: application/vnd.schemaregistry.v1+json".to_owned()),
            "{headers:?}"
        );
        let body: JsonValue = serde_json::from_str(&body).unwrap();
        let sent = Schema::parse_str(body["schema"].as_str().unwrap()).unwrap();
        assert_eq!(sent.canonical_form(), schema.canonical_form());
    }

    #[test]
    fn registry_errors_carry_the_registry_message() {
        let (url, server) = serve_once(
            "409 Conflict",
            r#"{"error_code":409,"message":"Schema being registered is incompatible with an earlier schema"}"#,
        );
        let schema = record_schema();
        let err = SchemaRegistry::new(url).register("s", &schema).unwrap_err();
        server.join().unwrap();
        assert!(
            matches!(err, RegistryError::Status { status: 409, .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("incompatible with an earlier schema"),
            "{err}"
        );
        assert!(!err.is_transient());

        let (url, server) = serve_once("200 OK", r#"{"version":1}"#);
        let err = SchemaRegistry::new(url).register("s", &schema).unwrap_err();
        server.join().unwrap();
        assert!(matches!(err, RegistryError::BadResponse { .. }), "{err}");

        // Nobody listening: a transport error, worth retrying.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = SchemaRegistry::with_timeout(
            format!("http://127.0.0.1:{port}"),
            Duration::from_secs(2),
        )
        .register("s", &schema)
        .unwrap_err();
        assert!(matches!(err, RegistryError::Transport { .. }), "{err}");
        assert!(err.is_transient());
    }
}
