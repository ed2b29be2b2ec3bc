//! Several Zoom apps in one deployment (issue 13, point 6): an apps file gives each app a
//! name, a kind, a path, the variable holding its secret tokens and (kind zoom) its user.
//! Ingest answers each app on its path with its own secrets and writes the app's name in the
//! raw header; the processors route each app's webhooks to the sources naming that app only,
//! deciding `*.by_me` with that app's user.

use std::time::{Duration, Instant};

use serde_json::Value;
use zoomstream_schemas::raw::headers;
use zoomstream_schemas::Apps;
use zoomstream_tests::*;

const SALES_SECRET: &str = "sales-secret-5Tq";
const SUPPORT_SECRET: &str = "support-secret-8Wm";
const CORP_SECRET: &str = "corp-secret-2Lz";
const SALES_USER: &str = "sales-user-id";
const SUPPORT_EMAIL: &str = "support@example.com";

const APPS: &str = r#"
[[app]]
name = "sales"
kind = "zoom"
secret_tokens_env = "TEST_SALES_TOKENS"
user_id = "sales-user-id"

[[app]]
name = "support"
kind = "zoom"
path = "/hooks/support"
secret_tokens_env = "TEST_SUPPORT_TOKENS"
user_email = "support@example.com"

[[app]]
name = "corp"
kind = "zoom-admin"
secret_tokens_env = "TEST_CORP_TOKENS"
"#;

const SOURCES: &str = r#"
[[source]]
name = "sales-created"
app = "sales"
events = ["meeting.created.by_me"]
topic = "sales-created"
schema = "meeting.avsc"

[[source]]
name = "support-created"
app = "support"
events = ["meeting.created.by_me"]
topic = "support-created"
schema = "meeting.avsc"

[[source]]
name = "corp-created"
app = "corp"
events = ["meeting.created"]
topic = "corp-created"
schema = "meeting.avsc"
"#;

/// `meeting.created` by the given operator (the by_me variants compare it with the app's user).
fn created(operator_id: &str, operator: &str, meeting_id: u64) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&fixture("meeting.created.json")).unwrap();
    body["payload"]["operator_id"] = operator_id.into();
    body["payload"]["operator"] = operator.into();
    body["payload"]["object"]["id"] = meeting_id.into();
    // Source records are keyed by the meeting's uuid.
    body["payload"]["object"]["uuid"] = format!("uuid-{meeting_id}").into();
    serde_json::to_vec(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_app_of_the_apps_file_has_its_path_secret_header_sources_and_user() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    let dir = tempfile::tempdir().unwrap();
    let apps_path = dir.path().join("apps.toml");
    std::fs::write(&apps_path, APPS).unwrap();
    let apps = Apps::load(&apps_path).unwrap();

    let mut ingest = IngestProcess::spawn(&[
        ("ZOOMSTREAM_KAFKA_BROKERS", brokers.clone()),
        ("ZOOMSTREAM_RAW_TOPIC", raw_topic.clone()),
        ("ZOOMSTREAM_APPS_FILE", apps_path.display().to_string()),
        ("TEST_SALES_TOKENS", SALES_SECRET.to_owned()),
        ("TEST_SUPPORT_TOKENS", SUPPORT_SECRET.to_owned()),
        ("TEST_CORP_TOKENS", CORP_SECRET.to_owned()),
    ]);
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;
    let sources = TestSources::with_apps(SOURCES, &apps);
    let mut config = processor_config(&brokers, &raw_topic, &sources);
    config.apps_file = Some(apps_path.clone());
    let group = config.group_id.clone();
    let processor = ProcessorApp::start(config).await;

    let sales_url = ingest.url("/webhooks/sales");
    let support_url = ingest.url("/hooks/support");
    let corp_url = ingest.url("/webhooks/corp");
    // (url, secret, body, request id, expected status)
    let deliveries = [
        // By each app's own user: by_me for that app.
        (
            &sales_url,
            SALES_SECRET,
            created(SALES_USER, "x@example.com", 1),
            "sales-by-sales-user",
            200,
        ),
        (
            &support_url,
            SUPPORT_SECRET,
            created("other", SUPPORT_EMAIL, 2),
            "support-by-support-user",
            200,
        ),
        // By the other app's user: a meeting.created, but not by_me for this app.
        (
            &sales_url,
            SALES_SECRET,
            created("other", SUPPORT_EMAIL, 3),
            "sales-by-support-user",
            200,
        ),
        (
            &support_url,
            SUPPORT_SECRET,
            created(SALES_USER, "x@example.com", 4),
            "support-by-sales-user",
            200,
        ),
        // The Zoom Admin app: its catalogue, no user.
        (
            &corp_url,
            CORP_SECRET,
            created(SALES_USER, "x@example.com", 5),
            "corp",
            200,
        ),
        // Another app's secret on an app's path: refused.
        (
            &sales_url,
            SUPPORT_SECRET,
            created(SALES_USER, "x@example.com", 6),
            "wrong-secret-1",
            401,
        ),
        (
            &support_url,
            SALES_SECRET,
            created(SALES_USER, "x@example.com", 7),
            "wrong-secret-2",
            401,
        ),
        (
            &corp_url,
            SALES_SECRET,
            created(SALES_USER, "x@example.com", 8),
            "wrong-secret-3",
            401,
        ),
    ];
    let started = Instant::now();
    for (url, secret, body, request_id, status) in &deliveries {
        let response = post_signed(&client, url, &sign(secret, body), request_id).await;
        assert_eq!(response.status(), *status, "{request_id}");
    }
    // Paths no app has: the built-in apps' are gone with an apps file, and an app with its own
    // path is not also on the default one.
    for path in [
        "/webhooks/zoom",
        "/webhooks/zoom-admin",
        "/webhooks/support",
    ] {
        let body = created(SALES_USER, "x@example.com", 9);
        let response = post_signed(
            &client,
            &ingest.url(path),
            &sign(SALES_SECRET, &body),
            "nowhere",
        )
        .await;
        assert_eq!(response.status(), 404, "{path}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "not_found", "{path}");
    }

    let accepted = deliveries.iter().filter(|d| d.4 == 200).count();
    let raw = read_topic_until(&brokers, &raw_topic, Duration::from_secs(30), |r| {
        r.len() >= accepted
    });
    let mut apps_by_request: Vec<(String, String)> = raw
        .iter()
        .map(|r| {
            let id = r.header(headers::ZM_REQUEST_ID).unwrap_or_default();
            (id, r.header(headers::APP).unwrap_or_default())
        })
        .collect();
    apps_by_request.sort();
    assert_eq!(
        apps_by_request,
        [
            ("corp", "corp"),
            ("sales-by-sales-user", "sales"),
            ("sales-by-support-user", "sales"),
            ("support-by-sales-user", "support"),
            ("support-by-support-user", "support"),
        ]
        .map(|(id, app)| (id.to_owned(), app.to_owned())),
        "only accepted webhooks are stored, each with its app's name in the raw header"
    );

    wait_processed(&brokers, &group, &raw_topic, &raw, Duration::from_secs(60));
    let elapsed = started.elapsed();
    let meeting_ids = |source: &str| -> Vec<u64> {
        let topic = &sources.source(source).topic;
        let mut ids: Vec<u64> = read_all(&brokers, topic)
            .iter()
            .map(|r| {
                let key = r.key_str().unwrap_or_default();
                let payload = r.payload.as_deref().unwrap_or_default();
                assert!(!payload.is_empty(), "{source}: record {key} has a value");
                key
            })
            .map(|key| {
                let id = key.strip_prefix("uuid-").and_then(|id| id.parse().ok());
                id.unwrap_or_else(|| panic!("{source}: key {key:?}"))
            })
            .collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(meeting_ids("sales-created"), [1], "by sales' own user only");
    assert_eq!(
        meeting_ids("support-created"),
        [2],
        "by support's own user only"
    );
    assert_eq!(
        meeting_ids("corp-created"),
        [5],
        "the admin app's event, to its source only"
    );
    zoomstream_tests::figures!(
        "several_apps: 3 apps from one apps file: {accepted} webhooks accepted on their paths, 3 signed \
             with another app's secret refused (401), 3 paths of no app 404; each reached only \
             its app's source, by_me decided by its app's user; webhooks to records processed \
             in {:.1} s",
        elapsed.as_secs_f64()
    );
    processor.stop().await.unwrap();
    ingest.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apps_file_naming_an_unset_variable_stops_ingest_with_the_app_named() {
    let dir = tempfile::tempdir().unwrap();
    let apps_path = dir.path().join("apps.toml");
    std::fs::write(&apps_path, APPS).unwrap();
    let output = run_to_end(
        std::process::Command::new(binary("zoomstream-ingest"))
            .env_clear()
            .env("ZOOMSTREAM_KAFKA_BROKERS", brokers())
            .env("ZOOMSTREAM_LISTEN", "127.0.0.1:0")
            .env("ZOOMSTREAM_APPS_FILE", &apps_path)
            .env("TEST_SALES_TOKENS", SALES_SECRET)
            .env("TEST_CORP_TOKENS", CORP_SECRET),
        Duration::from_secs(30),
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(r#"app "support""#) && stderr.contains("TEST_SUPPORT_TOKENS is not set"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(SALES_SECRET),
        "no secret is printed: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_raw_record_of_an_app_the_processor_does_not_know_is_a_dead_letter() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    let dir = tempfile::tempdir().unwrap();
    let apps_path = dir.path().join("apps.toml");
    std::fs::write(&apps_path, APPS).unwrap();
    let apps = Apps::load(&apps_path).unwrap();
    let sources = TestSources::with_apps(SOURCES, &apps);
    let mut config = processor_config(&brokers, &raw_topic, &sources);
    config.apps_file = Some(apps_path);
    let dlq = config.dlq_topic.clone();
    let group = config.group_id.clone();
    // Written before the processor starts, under the built-in app's name: the raw topic of a
    // deployment that moved to an apps file without listing "zoom".
    let body = created(SALES_USER, "x@example.com", 1);
    let hdrs = raw_headers(zoomstream_schemas::App::ZOOM, &body);
    let hdrs: Vec<(&str, &str)> = hdrs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    produce_raw(&producer(&brokers), &raw_topic, None, &body, &hdrs);
    let processor = ProcessorApp::start(config).await;
    let raw = read_all(&brokers, &raw_topic);
    wait_processed(
        &brokers,
        &group,
        &raw_topic,
        &raw[..1],
        Duration::from_secs(60),
    );
    let dead = read_all(&brokers, &dlq);
    assert_eq!(dead.len(), 1);
    let reason = dead[0].header("zoomstream-dlq-reason");
    assert_eq!(
        reason.as_deref(),
        Some("unknown_app"),
        "{:?}",
        dead[0].headers
    );
    for source in ["sales-created", "support-created", "corp-created"] {
        assert!(
            read_all(&brokers, &sources.source(source).topic).is_empty(),
            "{source}"
        );
    }
    processor.stop().await.unwrap();
}
