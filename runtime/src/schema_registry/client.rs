//! A small, blocking Confluent Schema Registry client (run it in `spawn_blocking`): register a
//! schema, check that one is registered or compatible, fetch a schema by id. The registry's
//! errors (`{"error_code": …, "message": …}`) are kept; credentials never appear in errors or
//! logs.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value as JsonValue;

use super::RegistryArgs;

/// Why a registry request failed.
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
        /// The registry's `error_code` (e.g. 40401 subject not found, 40403 schema not found).
        code: Option<u64>,
        message: String,
    },
    #[error("schema registry {url} answered 200 without {missing}: {body}")]
    BadResponse {
        url: String,
        missing: &'static str,
        body: String,
    },
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

    /// Whether the registry said the subject or the schema is not there (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::Status { status: 404, .. })
    }
}

/// How requests authenticate.
#[derive(Clone)]
enum Auth {
    None,
    /// The whole `Authorization` header value (`Basic …` or `Bearer …`).
    Header(SecretString),
}

/// A blocking Confluent Schema Registry client.
#[derive(Clone)]
pub struct SchemaRegistry {
    /// Without user info and trailing `/`: safe to log.
    base_url: String,
    agent: ureq::Agent,
    auth: Auth,
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistry")
            .field("url", &self.base_url)
            .field("auth", &matches!(self.auth, Auth::Header(_)))
            .finish_non_exhaustive()
    }
}

/// `https://user:pass@host/x` → `https://host/x` (for logs and errors).
pub(super) fn without_user_info(url: &str) -> String {
    split_user_info(url).0
}

/// The URL without user info, and the user info's user and password (percent-decoded).
fn split_user_info(url: &str) -> (String, Option<(String, String)>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some((user_info, host)) = rest[..authority_end].rsplit_once('@') else {
        return (url.to_owned(), None);
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let (user, password) = user_info.split_once(':').unwrap_or((user_info, ""));
    let clean = format!("{scheme}://{host}{}", &rest[authority_end..]);
    (clean, Some((decode(user), decode(password))))
}

impl SchemaRegistry {
    /// A client of the registry at `base_url` (e.g. `http://localhost:8081`), with a 10 s
    /// timeout per request; credentials in the URL are used as basic auth.
    pub fn new(base_url: impl Into<String>) -> SchemaRegistry {
        SchemaRegistry::from_args(&RegistryArgs::new(base_url))
            .expect("a registry without a CA file always builds")
    }

    /// A client as `args` say (URL, basic auth or bearer token, CA file); fails on an
    /// unreadable CA file or a missing URL.
    pub fn from_args(args: &RegistryArgs) -> anyhow::Result<SchemaRegistry> {
        let url = args
            .url
            .as_deref()
            .context("no schema registry URL (--schema-registry-url)")?;
        let (base_url, url_credentials) = split_user_info(url);
        let auth = match (&args.token, &args.username, url_credentials) {
            (Some(token), _, _) => Auth::Header(format!("Bearer {}", token.expose_secret()).into()),
            (None, Some(user), _) => basic(
                user,
                args.password
                    .as_ref()
                    .map(|p| p.expose_secret())
                    .unwrap_or(""),
            ),
            (None, None, Some((user, password))) => basic(&user, &password),
            (None, None, None) => Auth::None,
        };
        let mut tls = ureq::tls::TlsConfig::builder();
        tls = match &args.ca_file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("reading the registry CA file {}", path.display()))?;
                let certs = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(ureq::tls::PemItem::Certificate(cert)) => Some(Ok(cert)),
                        Ok(_) => None,
                        Err(e) => Some(Err(e)),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .with_context(|| format!("parsing the registry CA file {}", path.display()))?;
                anyhow::ensure!(
                    !certs.is_empty(),
                    "the registry CA file {} holds no certificate",
                    path.display()
                );
                tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
            }
            None => tls.root_certs(ureq::tls::RootCerts::PlatformVerifier),
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .tls_config(tls.build())
            .build();
        Ok(SchemaRegistry {
            base_url: base_url.trim_end_matches('/').to_owned(),
            agent: config.into(),
            auth,
        })
    }

    /// The registry's URL, without user info and trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Registers `schema` (its JSON text) under `subject`, or finds it registered; its id.
    pub fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let url = format!("{}/subjects/{}/versions", self.base_url, encode(subject));
        let body = self.request(&url, Some(schema_body(schema)))?;
        id_of(&url, body)
    }

    /// The id of `schema` if it is registered under `subject`; a 404 error (see
    /// [`RegistryError::is_not_found`]) if the subject or the schema is not there.
    pub fn lookup(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let url = format!("{}/subjects/{}", self.base_url, encode(subject));
        let body = self.request(&url, Some(schema_body(schema)))?;
        id_of(&url, body)
    }

    /// Whether `schema` is compatible with the subject's latest version under the subject's
    /// compatibility rule, and the registry's reasons when it is not.
    pub fn check_compatibility(
        &self,
        subject: &str,
        schema: &str,
    ) -> Result<(bool, Vec<String>), RegistryError> {
        let url = format!(
            "{}/compatibility/subjects/{}/versions/latest?verbose=true",
            self.base_url,
            encode(subject)
        );
        let body = self.request(&url, Some(schema_body(schema)))?;
        let compatible = body
            .get("is_compatible")
            .and_then(JsonValue::as_bool)
            .ok_or_else(|| RegistryError::BadResponse {
                url: url.clone(),
                missing: "is_compatible",
                body: body.to_string(),
            })?;
        let messages = body
            .get("messages")
            .and_then(JsonValue::as_array)
            .map(|m| {
                m.iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok((compatible, messages))
    }

    /// The schema text registered under `id`.
    pub fn schema_text_by_id(&self, id: u32) -> Result<String, RegistryError> {
        let url = format!("{}/schemas/ids/{id}", self.base_url);
        let body = self.request(&url, None)?;
        body.get("schema")
            .and_then(JsonValue::as_str)
            .map(str::to_owned)
            .ok_or_else(|| RegistryError::BadResponse {
                url,
                missing: "a schema",
                body: body.to_string(),
            })
    }

    /// Runs `op` until it succeeds, fails for good, or `budget` is spent retrying transient
    /// failures (the registry may start after the processor), backing off up to 5 s.
    pub fn retrying<T>(
        &self,
        budget: Duration,
        mut op: impl FnMut(&SchemaRegistry) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let deadline = Instant::now() + budget;
        let mut pause = Duration::from_millis(250);
        loop {
            match op(self) {
                Err(e) if e.is_transient() && Instant::now() + pause < deadline => {
                    tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "schema registry unavailable, retrying");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                other => return other,
            }
        }
    }

    /// POSTs `body` to `url`, or GETs it without one; the JSON answer of a 2xx.
    fn request(&self, url: &str, body: Option<String>) -> Result<JsonValue, RegistryError> {
        let transport = |error| RegistryError::Transport {
            url: url.to_owned(),
            error,
        };
        let accept = "application/vnd.schemaregistry.v1+json, application/json";
        let mut response = match body {
            Some(body) => {
                let mut request = self
                    .agent
                    .post(url)
                    .header("Content-Type", "application/vnd.schemaregistry.v1+json")
                    .header("Accept", accept);
                if let Auth::Header(value) = &self.auth {
                    request = request.header("Authorization", value.expose_secret());
                }
                request.send(body.as_str())
            }
            None => {
                let mut request = self.agent.get(url).header("Accept", accept);
                if let Auth::Header(value) = &self.auth {
                    request = request.header("Authorization", value.expose_secret());
                }
                request.call()
            }
        }
        .map_err(transport)?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().map_err(transport)?;
        let json = serde_json::from_str::<JsonValue>(&text).ok();
        if !(200..300).contains(&status) {
            let field = |name: &str| json.as_ref().and_then(|v| v.get(name).cloned());
            return Err(RegistryError::Status {
                url: url.to_owned(),
                status,
                code: field("error_code").and_then(|c| c.as_u64()),
                message: field("message")
                    .and_then(|m| m.as_str().map(str::to_owned))
                    .unwrap_or(text),
            });
        }
        json.ok_or(RegistryError::BadResponse {
            url: url.to_owned(),
            missing: "a JSON body",
            body: text,
        })
    }
}

fn basic(user: &str, password: &str) -> Auth {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    Auth::Header(format!("Basic {encoded}").into())
}

fn encode(subject: &str) -> String {
    zoomstream_schemas::url_component::encode(subject)
}

fn schema_body(schema: &str) -> String {
    serde_json::json!({ "schema": schema, "schemaType": "AVRO" }).to_string()
}

fn id_of(url: &str, body: JsonValue) -> Result<u32, RegistryError> {
    body.get("id")
        .and_then(JsonValue::as_u64)
        .and_then(|id| u32::try_from(id).ok())
        .ok_or_else(|| RegistryError::BadResponse {
            url: url.to_owned(),
            missing: "a schema id",
            body: body.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::IntoFuture as _;
    use std::net::TcpListener;
    use std::thread;

    const SCHEMA: &str = r#"{"type":"record","name":"R","fields":[{"name":"s","type":"string"}]}"#;

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
                            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
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
        let registry = SchemaRegistry::new(format!("{url}/"));
        assert_eq!(registry.base_url(), url);
        let id = registry
            .register("zoom.meeting-created-value", SCHEMA)
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
        assert!(!headers.iter().any(|h| h.starts_with("authorization")));
        let body: JsonValue = serde_json::from_str(&body).unwrap();
        assert_eq!(body["schema"], SCHEMA);
    }

    #[test]
    fn credentials_in_the_url_are_basic_auth_and_never_shown() {
        let (url, server) = serve_once("200 OK", r#"{"schema":"\"long\""}"#);
        let with_user = url.replace("http://", "http://key:s%40cret@");
        let registry = SchemaRegistry::new(&with_user);
        assert_eq!(registry.base_url(), url);
        assert!(!format!("{registry:?}").contains("cret"));
        assert_eq!(registry.schema_text_by_id(3).unwrap(), "\"long\"");
        let (line, headers, _) = server.join().unwrap();
        assert_eq!(line, "GET /schemas/ids/3 HTTP/1.1");
        // base64("key:s@cret")
        assert!(
            headers.contains(&"authorization: Basic a2V5OnNAY3JldA==".to_owned()),
            "{headers:?}"
        );
    }

    #[test]
    fn a_token_is_sent_as_bearer_and_args_hide_secrets() {
        let (url, server) = serve_once("200 OK", r#"{"id":4,"version":1}"#);
        let args = RegistryArgs {
            url: Some(url.replace("http://", "http://u:p@")),
            username: Some("ignored".into()),
            password: Some(SecretString::from("pw-secret".to_owned())),
            token: Some(SecretString::from("tok-secret".to_owned())),
            ca_file: None,
        };
        let shown = format!("{args:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("u:p@"),
            "{shown}"
        );
        let registry = SchemaRegistry::from_args(&args).unwrap();
        assert_eq!(registry.lookup("s-value", SCHEMA).unwrap(), 4);
        let (line, headers, _) = server.join().unwrap();
        assert_eq!(line, "POST /subjects/s-value HTTP/1.1");
        assert!(
            headers.contains(&"authorization: Bearer tok-secret".to_owned()),
            "{headers:?}"
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let args = RegistryArgs {
            ca_file: Some(path),
            ..RegistryArgs::new("https://registry.invalid")
        };
        let err = SchemaRegistry::from_args(&args).unwrap_err();
        assert!(
            format!("{err:#}").contains("holds no certificate"),
            "{err:#}"
        );
    }

    #[test]
    fn registry_errors_carry_the_registry_message_and_code() {
        let (url, server) = serve_once(
            "404 Not Found",
            r#"{"error_code":40403,"message":"Schema not found"}"#,
        );
        let err = SchemaRegistry::new(url).lookup("s", SCHEMA).unwrap_err();
        server.join().unwrap();
        assert!(
            matches!(
                err,
                RegistryError::Status {
                    status: 404,
                    code: Some(40403),
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.is_not_found() && !err.is_transient());
        assert!(err.to_string().contains("Schema not found"), "{err}");

        let (url, server) = serve_once("200 OK", r#"{"version":1}"#);
        let err = SchemaRegistry::new(url).register("s", SCHEMA).unwrap_err();
        server.join().unwrap();
        assert!(matches!(err, RegistryError::BadResponse { .. }), "{err}");

        // Nobody listening: a transport error, worth retrying; retries stop at the budget.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let registry = SchemaRegistry::new(format!("http://127.0.0.1:{port}"));
        let mut attempts = 0;
        let err = registry
            .retrying(Duration::from_millis(600), |r| {
                attempts += 1;
                r.register("s", SCHEMA)
            })
            .unwrap_err();
        assert!(matches!(err, RegistryError::Transport { .. }), "{err}");
        assert!(err.is_transient());
        assert!(attempts >= 2, "{attempts} attempts");
    }
}
