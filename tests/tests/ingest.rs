//! Ingest against a real broker: what Zoom sends lands on the raw topic byte-for-byte, with its
//! headers; what Zoom did not send (or cannot be accepted) gets its status and publishes nothing;
//! a broker outage is a quick 503 and the same request succeeds once the broker is back.

use std::time::{Duration, Instant};

use serde_json::Value;
use zoomstream_ingest::Config;
use zoomstream_schemas::raw::headers;
use zoomstream_tests::*;

const ZOOM_SECRET: &str = "zoom-app-secret";
const ADMIN_SECRET: &str = "zoom-admin-app-secret";

fn config(brokers: &str, raw_topic: &str) -> Config {
    let mut config = Config::new(brokers);
    config.zoom_secret_token = Some(ZOOM_SECRET.to_owned().into());
    config.zoom_admin_secret_token = Some(ADMIN_SECRET.to_owned().into());
    config.raw_topic = raw_topic.to_owned();
    config
}

async fn json_body(response: reqwest::Response) -> Value {
    response.json().await.expect("a JSON body")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_fixture_lands_on_the_raw_topic_byte_for_byte_with_its_headers() {
    let brokers = brokers();
    let topic = unique("raw");
    let ingest = IngestApp::start(config(&brokers, &topic)).await;
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;

    let mut expected = Vec::new();
    for (app, secret) in [("zoom", ZOOM_SECRET), ("zoom-admin", ADMIN_SECRET)] {
        for (name, body) in event_fixtures() {
            let signed = sign(secret, &body);
            let request_id = unique("req");
            let response = post_signed(
                &client,
                &ingest.url(&format!("/webhooks/{app}")),
                &signed,
                &request_id,
            )
            .await;
            assert_eq!(response.status(), 200, "{app} {name}");
            let event_id = json_body(response).await["event_id"]
                .as_str()
                .expect("event_id")
                .to_owned();
            expected.push((app, name, signed, request_id, event_id));
        }
    }
    assert_eq!(
        expected.len(),
        2 * 19,
        "nineteen event fixtures per app (the seed's five and one per family added since)"
    );

    let records = read_topic_until(&brokers, &topic, Duration::from_secs(30), |r| {
        r.len() >= expected.len()
    });
    assert_eq!(
        records.len(),
        expected.len(),
        "one record per accepted webhook"
    );
    for (app, name, signed, request_id, event_id) in &expected {
        let record = records
            .iter()
            .find(|r| r.header(headers::ZM_REQUEST_ID).as_deref() == Some(request_id))
            .unwrap_or_else(|| panic!("{app} {name} is not on the raw topic"));
        let envelope: Value = serde_json::from_slice(&signed.body).unwrap();
        assert_eq!(
            record.payload.as_deref(),
            Some(signed.body.as_slice()),
            "{app} {name}: body byte-for-byte"
        );
        assert_eq!(record.header(headers::APP).as_deref(), Some(*app));
        assert_eq!(
            record.header(headers::EVENT).as_deref(),
            envelope["event"].as_str()
        );
        assert_eq!(
            record.header(headers::EVENT_ID).as_deref(),
            Some(event_id.as_str())
        );
        assert_eq!(
            record.header(headers::ZM_REQUEST_TIMESTAMP),
            Some(signed.timestamp.clone())
        );
        assert_eq!(
            record.header(headers::ZM_SIGNATURE),
            Some(signed.signature.clone())
        );
        let received_at: u64 = record
            .header(headers::RECEIVED_AT)
            .expect("received-at")
            .parse()
            .unwrap();
        assert!(received_at / 1000 >= signed.timestamp.parse::<u64>().unwrap() - 1);
        // The key keeps one meeting's events together: the object's uuid (or meeting_uuid, as
        // summaries and RTMS name it), else a phone call's id, else its id (a chat message's, a
        // room's…), else the account.
        let key = [
            "/payload/object/uuid",
            "/payload/object/meeting_uuid",
            "/payload/object/call_id",
            "/payload/object/id",
        ]
        .iter()
        .find_map(|p| match envelope.pointer(p) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
        .or_else(|| {
            envelope
                .pointer("/payload/account_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        assert_eq!(record.key_str(), key, "{app} {name}: key");
        // A consumer holding the secret can re-verify what it reads.
        let secret = if *app == "zoom" {
            ZOOM_SECRET
        } else {
            ADMIN_SECRET
        };
        let resigned = zoomstream_ingest::verify::sign(
            secret,
            &signed.timestamp,
            record.payload.as_ref().unwrap(),
        );
        assert_eq!(Some(resigned), record.header(headers::ZM_SIGNATURE));
    }
    ingest.stop().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivery_keeps_its_event_id() {
    let brokers = brokers();
    let ingest = IngestApp::start(config(&brokers, &unique("raw"))).await;
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;
    let url = ingest.url("/webhooks/zoom");

    let body = fixture("recording.completed.json");
    let first = json_body(post_signed(&client, &url, &sign(ZOOM_SECRET, &body), "r1").await).await;
    // Zoom's second delivery of one recording differs in download credentials only.
    let mut again: Value = serde_json::from_slice(&body).unwrap();
    again["download_token"] = Value::from("another-token");
    let again = serde_json::to_vec_pretty(&again).unwrap();
    let second =
        json_body(post_signed(&client, &url, &sign(ZOOM_SECRET, &again), "r2").await).await;
    assert_eq!(first["event_id"], second["event_id"]);
    let other = json_body(
        post_signed(
            &client,
            &url,
            &sign(ZOOM_SECRET, &fixture("meeting.ended.json")),
            "r3",
        )
        .await,
    )
    .await;
    assert_ne!(first["event_id"], other["event_id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn url_validation_is_answered_as_zoom_documents_and_never_published() {
    let brokers = brokers();
    let topic = unique("raw");
    create_topic(&brokers, &topic, 1).await;
    let mut config = config(&brokers, &topic);
    // The secret behind Zoom's documented example exchange.
    config.zoom_secret_token = Some("SECRET_TOKEN".to_owned().into());
    let ingest = IngestApp::start(config).await;
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;

    let request = fixture("endpoint.url_validation.json");
    let response = post_signed(
        &client,
        &ingest.url("/webhooks/zoom"),
        &sign("SECRET_TOKEN", &request),
        "v1",
    )
    .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let expected: Value =
        serde_json::from_slice(&fixture("endpoint.url_validation.response.json")).unwrap();
    assert_eq!(json_body(response).await, expected);

    // The challenge is verified like any webhook.
    let forged = post_signed(
        &client,
        &ingest.url("/webhooks/zoom"),
        &sign("not-the-secret", &request),
        "v2",
    )
    .await;
    assert_eq!(forged.status(), 401);

    assert_only_the_sentinel_is_published(&client, &ingest, &brokers, &topic, "SECRET_TOKEN").await;
}

/// Posts one good webhook after the requests under test and reads the single-partition topic
/// up to it: anything published before it would be there too.
async fn assert_only_the_sentinel_is_published(
    client: &reqwest::Client,
    ingest: &IngestApp,
    brokers: &str,
    topic: &str,
    secret: &str,
) {
    let sentinel = sign(secret, &fixture("meeting.started.json"));
    let response = post_signed(client, &ingest.url("/webhooks/zoom"), &sentinel, "sentinel").await;
    assert_eq!(response.status(), 200);
    let records = read_topic_until(brokers, topic, Duration::from_secs(30), |r| {
        r.iter()
            .any(|r| r.header(headers::ZM_REQUEST_ID).as_deref() == Some("sentinel"))
    });
    let others: Vec<_> = records
        .iter()
        .filter_map(|r| r.header(headers::ZM_REQUEST_ID))
        .collect();
    assert_eq!(
        others,
        vec!["sentinel".to_owned()],
        "nothing but the sentinel was published"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_requests_get_their_status_and_publish_nothing() {
    let brokers = brokers();
    let topic = unique("raw");
    create_topic(&brokers, &topic, 1).await;
    let mut config = config(&brokers, &topic);
    config.max_body_bytes = 64 * 1024;
    config.zoom_admin_secret_token = None;
    let ingest = IngestApp::start(config).await;
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;
    let url = ingest.url("/webhooks/zoom");
    let body = fixture("meeting.started.json");
    let good = sign(ZOOM_SECRET, &body);

    let send = |builder: reqwest::RequestBuilder| async move {
        builder.send().await.expect("ingest answers")
    };
    let signed_request = |signed: &Signed| {
        client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-zm-request-timestamp", &signed.timestamp)
            .header("x-zm-signature", &signed.signature)
            .body(signed.body.clone())
    };

    let mut cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "unsigned",
            client
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone()),
            401,
            "unauthorized",
        ),
        (
            "no timestamp",
            client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-zm-signature", &good.signature)
                .body(body.clone()),
            401,
            "unauthorized",
        ),
        (
            "wrong secret",
            signed_request(&sign("guessed", &body)),
            401,
            "unauthorized",
        ),
        (
            "other app's secret",
            signed_request(&sign(ADMIN_SECRET, &body)),
            401,
            "unauthorized",
        ),
        (
            "stale",
            signed_request(&sign_at(ZOOM_SECRET, &body, now_secs() - 301)),
            401,
            "unauthorized",
        ),
        (
            "from the future",
            // Well past the 300 s window: the request is signed before the earlier cases are
            // sent, and a second passing meanwhile brings +301 back inside it.
            signed_request(&sign_at(ZOOM_SECRET, &body, now_secs() + 360)),
            401,
            "unauthorized",
        ),
        (
            "body changed after signing",
            signed_request(&Signed {
                body: [body.as_slice(), b" "].concat(),
                ..sign(ZOOM_SECRET, &body)
            }),
            401,
            "unauthorized",
        ),
        (
            "not JSON",
            signed_request(&sign(ZOOM_SECRET, b"{\"event\": ")),
            400,
            "malformed_json",
        ),
        (
            "no event",
            signed_request(&sign(ZOOM_SECRET, br#"{"payload": {}}"#)),
            400,
            "missing_event",
        ),
        (
            "event not a string",
            signed_request(&sign(ZOOM_SECRET, br#"{"event": 7}"#)),
            400,
            "missing_event",
        ),
        (
            "validation without token",
            signed_request(&sign(
                ZOOM_SECRET,
                br#"{"event": "endpoint.url_validation", "payload": {}}"#,
            )),
            400,
            "missing_plain_token",
        ),
        (
            "oversize",
            signed_request(&sign(ZOOM_SECRET, &vec![b' '; 64 * 1024 + 1])),
            413,
            "payload_too_large",
        ),
        (
            "wrong content type",
            signed_request(&good).header("content-type", "text/plain"),
            415,
            "unsupported_media_type",
        ),
        (
            "unknown app",
            client
                .post(ingest.url("/webhooks/slack"))
                .header("content-type", "application/json")
                .body(body.clone()),
            404,
            "not_found",
        ),
        (
            "app without a secret",
            client
                .post(ingest.url("/webhooks/zoom-admin"))
                .header("content-type", "application/json")
                .body(body.clone()),
            404,
            "app_not_configured",
        ),
    ];
    for (name, request, status, code) in cases.drain(..) {
        let response = send(request).await;
        assert_eq!(response.status().as_u16(), status, "{name}");
        let error = json_body(response).await;
        assert_eq!(error["error"], code, "{name}: {error}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{name}: a reason is given");
        assert!(
            !message.contains(ZOOM_SECRET) && !message.contains(&brokers),
            "{name}: nothing internal leaks"
        );
    }
    let wrong_method = client.get(&url).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);

    let metrics = get_text(&client, &ingest.url("/metrics")).await;
    assert!(
        metrics
            .contains(r#"zoomstream_ingest_requests_total{app="zoom",outcome="unauthorized"} 7"#),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"zoomstream_ingest_requests_total{app="unknown",outcome="not_found"} 1"#),
        "{metrics}"
    );

    assert_only_the_sentinel_is_published(&client, &ingest, &brokers, &topic, ZOOM_SECRET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_outage_is_a_quick_503_and_the_same_request_succeeds_once_it_is_back() {
    let broker = KafkaCluster::single();
    let topic = unique("raw");
    let mut config = config(&broker.bootstrap(), &topic);
    config.publish_timeout_ms = 1500;
    let ingest = IngestApp::start(config).await;
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;
    let url = ingest.url("/webhooks/zoom");

    // Warm: the producer has its connection and partition leaders.
    let warm = post_signed(
        &client,
        &url,
        &sign(ZOOM_SECRET, &fixture("meeting.created.json")),
        "warm",
    )
    .await;
    assert_eq!(warm.status(), 200);

    broker.signal(1, "STOP");
    let signed = sign(ZOOM_SECRET, &fixture("meeting.ended.json"));
    let started = Instant::now();
    let response = post_signed(&client, &url, &signed, "during-outage").await;
    let waited = started.elapsed();
    assert_eq!(response.status(), 503);
    assert_eq!(json_body(response).await["error"], "unavailable");
    // Zoom gives up after 3 s; the answer must come before that so Zoom schedules a retry.
    assert!(waited < Duration::from_secs(3), "answered after {waited:?}");
    let ready = client.get(ingest.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "/readyz reflects the outage");

    broker.signal(1, "CONT");
    // Zoom's retry carries the same body, timestamp and signature.
    wait_for(
        "the retried webhook to be accepted",
        Duration::from_secs(30),
        || {
            let (client, url, signed) = (&client, &url, &signed);
            async move {
                post_signed(client, url, signed, "after-outage")
                    .await
                    .status()
                    == 200
            }
        },
    )
    .await;
    let records = read_topic_until(&broker.bootstrap(), &topic, Duration::from_secs(30), |r| {
        r.iter()
            .any(|r| r.header(headers::ZM_REQUEST_ID).as_deref() == Some("after-outage"))
    });
    let accepted = records
        .iter()
        .find(|r| r.header(headers::ZM_REQUEST_ID).as_deref() == Some("after-outage"))
        .unwrap();
    assert_eq!(accepted.payload.as_deref(), Some(signed.body.as_slice()));
    ingest.wait_ready(&client).await;
}
