//! The bad-input corpus, beside the webhook handler (tests/tests/bad_input.rs has the requests
//! to it): what hyper refuses itself, `/readyz` while not ready, refused Kafka options, and what
//! SSE answers without a token or from a hostile page. Each answer is brief, counted, and
//! tells nothing it should not (RELIABILITY.md, "Hostile clients").

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use zoomstream_schemas::raw::headers;
use zoomstream_tests::*;

mod sse_support;

const ZOOM_SECRET: &str = "corpus-zoom-secret-7f3a";

#[tokio::test(flavor = "multi_thread")]
async fn unsigned_pass_through_headers_are_published_only_when_plain() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    create_topic(&brokers, &raw_topic, 1).await;
    let ingest = IngestProcess::spawn(&[
        ("ZOOMSTREAM_KAFKA_BROKERS", brokers.clone()),
        ("ZOOMSTREAM_RAW_TOPIC", raw_topic.clone()),
        ("ZOOMSTREAM_ZOOM_SECRET_TOKEN", ZOOM_SECRET.into()),
    ]);
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;

    const TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    // (case, request id, traceparent): the webhook is published either way, a bad header
    // left off.
    let cases: [(&str, Vec<u8>, Vec<u8>); 6] = [
        ("plain", b"plain-id".to_vec(), TRACE.into()),
        ("request id of 10 KiB", vec![b'r'; 10 * 1024], TRACE.into()),
        (
            "request id not ASCII",
            b"req-\xc3\xa9".to_vec(),
            TRACE.into(),
        ),
        ("request id with a space", b"req id".to_vec(), TRACE.into()),
        (
            "traceparent malformed",
            b"bad-trace".to_vec(),
            b"00-zz-yy-01".to_vec(),
        ),
        (
            "traceparent of 4 KiB",
            b"long-trace".to_vec(),
            vec![b'0'; 4096],
        ),
    ];
    for (what, request_id, traceparent) in &cases {
        let mut body: serde_json::Value =
            serde_json::from_slice(&fixture("meeting.started.json")).unwrap();
        body["payload"]["object"]["uuid"] = unique("uuid").into();
        let signed = sign(ZOOM_SECRET, &serde_json::to_vec(&body).unwrap());
        let value = |v: &[u8]| reqwest::header::HeaderValue::from_bytes(v).unwrap();
        let response = client
            .post(ingest.url("/webhooks/zoom"))
            .header("content-type", "application/json")
            .header("x-zm-request-timestamp", &signed.timestamp)
            .header("x-zm-signature", &signed.signature)
            .header("x-zm-request-id", value(request_id))
            .header("traceparent", value(traceparent))
            .body(signed.body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{what}: published");
    }
    let records = read_topic_until(&brokers, &raw_topic, Duration::from_secs(30), |r| {
        r.len() >= cases.len()
    });
    let passed: Vec<(Option<String>, Option<String>)> = records
        .iter()
        .map(|r| {
            (
                r.header(headers::ZM_REQUEST_ID),
                r.header(headers::TRACEPARENT),
            )
        })
        .collect();
    let trace = || Some(TRACE.to_owned());
    assert_eq!(
        passed,
        vec![
            (Some("plain-id".into()), trace()),
            (None, trace()),
            (None, trace()),
            (None, trace()),
            (Some("bad-trace".into()), None),
            (Some("long-trace".into()), None),
        ]
    );
    let page = get_text(&client, &ingest.url("/metrics")).await;
    let dropped = |header: &str, reason: &str| {
        metric(
            &page,
            &format!(
                r#"zoomstream_ingest_headers_dropped_total{{header="{header}",reason="{reason}"}}"#
            ),
        )
    };
    assert_eq!(dropped("x-zm-request-id", "too_long"), 1.0);
    assert_eq!(dropped("x-zm-request-id", "bad_characters"), 2.0);
    assert_eq!(dropped("traceparent", "malformed"), 1.0);
    assert_eq!(dropped("traceparent", "too_long"), 1.0);
}

/// Writes `request` on a new connection and reads the answer until the server closes it.
fn raw_exchange(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may answer and close before taking all of an oversized request.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn what_hyper_rejects_and_readiness_are_answered_briefly_and_counted() {
    let brokers = brokers();
    // The raw topic is missing and ingest may not create it: /readyz says why, briefly.
    let raw_topic = unique("missing-raw");
    let ingest = IngestProcess::spawn(&[
        ("ZOOMSTREAM_KAFKA_BROKERS", brokers.clone()),
        ("ZOOMSTREAM_RAW_TOPIC", raw_topic.clone()),
        ("ZOOMSTREAM_CREATE_TOPICS", "false".into()),
        ("ZOOMSTREAM_ZOOM_SECRET_TOKEN", ZOOM_SECRET.into()),
    ]);
    let client = reqwest::Client::new();

    let threads = || {
        std::fs::read_to_string(format!("/proc/{}/status", ingest.child.id()))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .map(|n| n.trim().parse::<u64>().unwrap())
            .unwrap()
    };
    let first = client.get(ingest.url("/readyz")).send().await.unwrap();
    assert_eq!(first.status(), 503);
    let body = first.text().await.unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"status": "not_ready", "reason": "raw_topic_missing"})
    );
    assert!(!body.contains(&raw_topic), "no topic name: {body}");
    let threads_before = threads();
    let mut calls = Vec::new();
    for _ in 0..150 {
        let (client, url) = (client.clone(), ingest.url("/readyz"));
        calls.push(tokio::spawn(async move {
            client.get(url).send().await.unwrap().status()
        }));
    }
    for call in calls {
        assert_eq!(call.await.unwrap(), 503);
    }
    let threads_after = threads();
    assert!(
        threads_after <= threads_before + 4,
        "150 concurrent /readyz: {threads_before} -> {threads_after} threads"
    );

    // Requests hyper refuses itself: answered by hyper (no handler runs), counted.
    let garbage = raw_exchange(ingest.port, b"NOT HTTP AT ALL\r\n\r\n");
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let too_large = raw_exchange(ingest.port, huge.as_bytes());
    assert!(too_large.starts_with("HTTP/1.1 431"), "{too_large}");
    // A dot segment, which an HTTP client library would have removed.
    let dotted = raw_exchange(
        ingest.port,
        b"POST /healthz/../webhooks/zoom HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    );
    assert!(
        dotted.starts_with("HTTP/1.1 400") && dotted.contains("non_canonical_path"),
        "{dotted}"
    );
    // Counted once hyper's connection ends, which may be just after the client read the answer.
    let metrics_url = ingest.url("/metrics");
    wait_for(
        "both rejections to be counted",
        Duration::from_secs(10),
        || async {
            let page = get_text(&client, &metrics_url).await;
            ["bad_request", "headers_too_large"].iter().all(|reason| {
                metric(
                    &page,
                    &format!(r#"zoomstream_http_connections_closed_total{{reason="{reason}"}}"#),
                ) == 1.0
            })
        },
    )
    .await;
    figures!(
        "bad input: /readyz not ready answers {{reason: raw_topic_missing}}; 150 concurrent calls took ingest from {threads_before} to {threads_after} threads; hyper's 400 (garbage) and 431 (1 MiB header) counted"
    );
}

#[test]
fn a_refused_kafka_option_is_never_echoed() {
    const PASSWORD: &str = "corpus-sasl-password-5e1d";
    for (options, what) in [
        (format!("sasl.password:{PASSWORD}"), "not key=value"),
        (
            format!("security.protocol={PASSWORD}"),
            "refused by librdkafka",
        ),
    ] {
        let output = std::process::Command::new(binary("zoomstream-ingest"))
            .env_clear()
            .env("ZOOMSTREAM_LISTEN", "127.0.0.1:0")
            .env("ZOOMSTREAM_KAFKA_BROKERS", brokers())
            .env("ZOOMSTREAM_ZOOM_SECRET_TOKEN", ZOOM_SECRET)
            .env("ZOOMSTREAM_KAFKA_OPTIONS", options)
            .output()
            .expect("running zoomstream-ingest");
        assert!(!output.status.success(), "{what}: refused");
        let said = [output.stdout, output.stderr].concat();
        let said = String::from_utf8_lossy(&said);
        assert!(
            !said.contains(PASSWORD),
            "{what}: the value was echoed: {said}"
        );
        assert!(!said.is_empty(), "{what}: a reason is given");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kafka_options_file_carries_values_with_commas_and_never_shows_them() {
    const SECRET: &str = "file,held=secret-7a2c";
    let dir = tempfile::tempdir().unwrap();
    // A value with a comma and an equals sign: the comma-separated variable cannot carry it.
    let good = dir.path().join("client.properties");
    std::fs::write(
        &good,
        format!("# test\nclient.id = {}\n", SECRET.replace('=', "\\=")),
    )
    .unwrap();
    let raw_topic = unique("raw");
    create_topic(&brokers(), &raw_topic, 1).await;
    let ingest = IngestProcess::spawn(&[
        ("ZOOMSTREAM_KAFKA_BROKERS", brokers()),
        ("ZOOMSTREAM_RAW_TOPIC", raw_topic.clone()),
        ("ZOOMSTREAM_ZOOM_SECRET_TOKEN", ZOOM_SECRET.into()),
        ("ZOOMSTREAM_KAFKA_OPTIONS_FILE", good.display().to_string()),
    ]);
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;
    let answer = post_signed(
        &client,
        &ingest.url("/webhooks/zoom"),
        &sign(ZOOM_SECRET, &fixture("meeting.started.json")),
        &unique("request"),
    )
    .await;
    assert_eq!(answer.status(), 200);
    assert!(!ingest.log_text().contains(SECRET), "the value was logged");

    // A value librdkafka refuses, from the file: refused at start, never quoted.
    let bad = dir.path().join("bad.properties");
    std::fs::write(&bad, format!("security.protocol={SECRET}\n")).unwrap();
    let output = std::process::Command::new(binary("zoomstream-ingest"))
        .env_clear()
        .env("ZOOMSTREAM_LISTEN", "127.0.0.1:0")
        .env("ZOOMSTREAM_KAFKA_BROKERS", brokers())
        .env("ZOOMSTREAM_ZOOM_SECRET_TOKEN", ZOOM_SECRET)
        .env("ZOOMSTREAM_KAFKA_OPTIONS_FILE", &bad)
        .output()
        .expect("running zoomstream-ingest");
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&[output.stdout, output.stderr].concat()).into_owned();
    assert!(!said.contains("secret-7a2c") && !said.is_empty(), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_refuses_without_telling_what_it_should_not() {
    use sse_support::*;
    let sources = TestSources::new(SOURCES);
    for source in &sources.file.sources {
        create_topic(&brokers(), &source.topic, 1).await;
    }
    let mut config = sse_config(&sources);
    config.cors_origins = vec!["*".into()];
    let sse = SseApp::start(config).await;
    let client = reqwest::Client::new();
    let started = sse.events_url("meeting-started");

    // Origin `null` (sandboxed frames, local files) is never allowed, not even by `*`.
    for (origin, allowed) in [("null", false), ("https://app.example", true)] {
        for method in [reqwest::Method::GET, reqwest::Method::OPTIONS] {
            let response = client
                .request(method.clone(), &started)
                .header("origin", origin)
                .header("authorization", format!("Bearer {TOKEN}"))
                .send()
                .await
                .unwrap();
            assert_eq!(
                response
                    .headers()
                    .contains_key("access-control-allow-origin"),
                allowed,
                "{method} with origin {origin}"
            );
        }
    }
    // Source names cannot be probed without a token; paths are plain or refused.
    for (path, status, code) in [
        ("/sources/no-such-source/events", 401, "unauthorized"),
        (
            "/sources/meeting%2Dstarted/events",
            400,
            "non_canonical_path",
        ),
        ("/sources//events", 400, "non_canonical_path"),
    ] {
        let response = client.get(sse.url(path)).send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], code, "{path}");
    }
    let response = client.delete(&started).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
    sse.stop().await;
}
