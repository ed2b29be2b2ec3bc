//! Rotating an app's secret token drops no delivery: during the rotation ingest takes
//! `current,old`, accepts webhooks signed with either, answers URL validation with the current
//! one, and still refuses any other.

use std::time::Duration;

use serde_json::{json, Value};
use zoomstream_schemas::raw::headers;
use zoomstream_tests::*;

const CURRENT: &str = "rotated-in-secret-7Qx";
const OLD: &str = "rotated-out-secret-3Kp";

#[tokio::test(flavor = "multi_thread")]
async fn during_a_rotation_both_secrets_are_accepted_and_validation_uses_the_current_one() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    let ingest = IngestProcess::spawn(&[
        ("ZOOMSTREAM_KAFKA_BROKERS", brokers.clone()),
        ("ZOOMSTREAM_RAW_TOPIC", raw_topic.clone()),
        ("ZOOMSTREAM_ZOOM_SECRET_TOKEN", format!("{CURRENT},{OLD}")),
        (
            "ZOOMSTREAM_ZOOM_ADMIN_SECRET_TOKEN",
            "admin-only".to_owned(),
        ),
    ]);
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;
    let url = ingest.url("/webhooks/zoom");
    let body = fixture("meeting.started.json");

    for (secret, request_id) in [(CURRENT, "current"), (OLD, "old")] {
        let response = post_signed(&client, &url, &sign(secret, &body), request_id).await;
        assert_eq!(
            response.status(),
            200,
            "signed with the {request_id} secret"
        );
    }
    for (secret, what) in [
        ("retired-secret", "a retired secret"),
        ("admin-only", "the other app's"),
    ] {
        let response = post_signed(&client, &url, &sign(secret, &body), "refused").await;
        assert_eq!(response.status(), 401, "signed with {what}");
    }

    let validation = serde_json::to_vec(&json!({
        "event": "endpoint.url_validation",
        "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"},
        "event_ts": 1
    }))
    .unwrap();
    for secret in [CURRENT, OLD] {
        let response = post_signed(&client, &url, &sign(secret, &validation), "validation").await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            answer["encryptedToken"],
            zoomstream_tests::encrypted_token(CURRENT, "qgg8vlvZRS6UYooatFL8Aw"),
            "validation is answered with the current secret, whichever signed the request"
        );
    }

    let records = read_topic_until(&brokers, &raw_topic, Duration::from_secs(30), |r| {
        r.len() >= 2
    });
    let mut ids: Vec<String> = records
        .iter()
        .filter_map(|r| r.header(headers::ZM_REQUEST_ID))
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        ["current", "old"],
        "both deliveries landed, nothing else"
    );
    let log = ingest.log_text();
    assert!(!log.is_empty());
    for secret in [CURRENT, OLD] {
        assert!(!log.contains(secret), "a secret token is in the log");
    }
    figures!(
        "secret rotation: webhooks signed with the current and the old token → 200 and on the raw topic; a retired token → 401; validation answered with the current token"
    );
}
