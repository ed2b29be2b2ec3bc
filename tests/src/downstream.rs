//! Downstream readers nobody in this project wrote, as the tests run them: the Schema Registry's
//! own API (Apicurio, started by `scripts/test`), and the Python analytics reader of
//! `examples/analytics/` on fastavro, confluent-kafka and DuckDB (`scripts/install-python`).

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// The test registry's Confluent-compatible API (`ZOOMSTREAM_TEST_REGISTRY_URL`, set by
/// `scripts/test`; not `ZOOMSTREAM_SCHEMA_REGISTRY_URL`, which every spawned service would read).
pub fn registry_url() -> String {
    std::env::var("ZOOMSTREAM_TEST_REGISTRY_URL").expect(
        "ZOOMSTREAM_TEST_REGISTRY_URL is not set: run the tests with scripts/test, which starts Apicurio Registry",
    )
}

/// A JSON request to the registry; its status and body.
pub async fn registry_request(
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = client
        .request(method, format!("{}{path}", registry_url()))
        .header("accept", "application/vnd.schemaregistry.v1+json");
    if let Some(body) = body {
        request = request
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("the registry answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The Python of the downstream readers' venv (`ZOOMSTREAM_TEST_PYTHON`, set by `scripts/test`).
pub fn python() -> PathBuf {
    std::env::var_os("ZOOMSTREAM_TEST_PYTHON")
        .map(PathBuf::from)
        .expect("ZOOMSTREAM_TEST_PYTHON is not set: run the tests with scripts/test")
}

/// `examples/analytics/zoom_analytics.py` with `args`; its JSON output.
pub fn run_analytics_reader(args: &[&str]) -> Value {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/analytics/zoom_analytics.py");
    let output = Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .expect("running the analytics reader");
    assert!(
        output.status.success(),
        "the analytics reader failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "the analytics reader printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}
