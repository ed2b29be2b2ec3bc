//! OAUTHBEARER with OIDC (`sasl.oauthbearer.method=oidc`, as managed Kafka services use):
//! librdkafka is built with libcurl (the rdkafka `curl-static` feature), so a service configured
//! for it asks the identity provider's token endpoint for a token with its client credentials.
//! Here the endpoint is a local axum server that records the request; the client asks before it
//! talks to any broker, so no broker needs to speak SASL.

use std::process::{Command, Stdio};
use std::time::Duration;

use axum::http::{header, HeaderMap};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::json;
use zoomstream_tests::*;

const CLIENT_ID: &str = "zoomstream-ingest";
const CLIENT_SECRET: &str = "oidc-client-secret-91f3";

/// A token as an identity provider issues it: a JWT whose payload names the principal and the
/// expiry (librdkafka reads both; the signature is the broker's business).
fn jwt() -> String {
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(json!({"alg": "RS256", "typ": "JWT"})),
        b64(json!({"sub": CLIENT_ID, "exp": exp, "iat": exp - 3600}))
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_configured_for_oidc_asks_the_token_endpoint_with_its_client_credentials() {
    let (seen, mut requests) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let endpoint = Router::new().route(
        "/oauth2/token",
        post(move |headers: HeaderMap, body: String| {
            let authorization = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let _ = seen.send((authorization, body));
            async move {
                Json(json!({"access_token": jwt(), "token_type": "bearer", "expires_in": 3600}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/oauth2/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, endpoint).await });

    let options = [
        "security.protocol=SASL_PLAINTEXT".to_owned(),
        "sasl.mechanisms=OAUTHBEARER".to_owned(),
        "sasl.oauthbearer.method=oidc".to_owned(),
        format!("sasl.oauthbearer.client.id={CLIENT_ID}"),
        format!("sasl.oauthbearer.client.secret={CLIENT_SECRET}"),
        format!("sasl.oauthbearer.token.endpoint.url={url}"),
    ]
    .join(",");
    let log = std::env::temp_dir().join(unique("oidc-ingest") + ".log");
    let mut ingest = Command::new(binary("zoomstream-ingest"))
        .env_clear()
        .env("ZOOMSTREAM_LISTEN", "127.0.0.1:0")
        // Nothing listens there: the token is asked for before any broker is reached.
        .env(
            "ZOOMSTREAM_KAFKA_BROKERS",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("ZOOMSTREAM_ZOOM_SECRET_TOKEN", "zoom-secret")
        .env("ZOOMSTREAM_KAFKA_OPTIONS", &options)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting zoomstream-ingest");

    let asked = tokio::time::timeout(Duration::from_secs(30), requests.recv()).await;
    let _ = ingest.kill();
    let _ = ingest.wait();
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    let (authorization, body) = asked
        .unwrap_or_else(|_| panic!("no token request within 30 s; ingest said:\n{said}"))
        .expect("the endpoint saw a request");

    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    assert_eq!(
        authorization,
        format!("Basic {credentials}"),
        "the client credentials, as HTTP basic authentication"
    );
    assert!(
        body.contains("grant_type=client_credentials"),
        "a client-credentials grant: {body}"
    );
    assert!(
        !said.contains(CLIENT_SECRET),
        "the client secret never reaches the log: {said}"
    );
    figures!(
        "OIDC: ingest asked the token endpoint with its client credentials (basic auth, grant_type=client_credentials); the secret is not in its log"
    );
}
