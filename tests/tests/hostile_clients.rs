//! Ingest and SSE against clients that mean harm (issue 18), each against the real binary:
//! connections held idle or half-sent, slow unsigned bodies, concurrent replays, forged stream
//! ids, one token opening many streams. The figures go to RELIABILITY.md ("Hostile clients").

use std::net::IpAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use zoomstream_schemas::raw::headers;
use zoomstream_tests::*;

mod sse_support;
use sse_support::*;

const SECRET: &str = "hostile-zoom-secret";
const LOOPBACK_2: [u8; 4] = [127, 0, 0, 2];

fn ingest_env(brokers: &str, raw_topic: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ZOOMSTREAM_KAFKA_BROKERS", brokers.to_owned()),
        ("ZOOMSTREAM_RAW_TOPIC", raw_topic.to_owned()),
        ("ZOOMSTREAM_ZOOM_SECRET_TOKEN", SECRET.to_owned()),
    ]
}

/// A fixture made unique, so that it is not a replay of another test's request.
fn fresh_body() -> Vec<u8> {
    let body: Value = serde_json::from_slice(&fixture("meeting.started.json")).unwrap();
    let mut body = body;
    body["payload"]["object"]["uuid"] = Value::String(unique("uuid"));
    serde_json::to_vec(&body).unwrap()
}

/// Opens a connection and sends a request head announcing `content_length` bytes, then only
/// the first bytes of the body: a client that holds its request open.
async fn half_sent_unsigned(port: u16, content_length: usize) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "POST /webhooks/zoom HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         content-length: {content_length}\r\n\r\n{{\"event\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Reads what the server answers on `stream` until it closes it.
async fn answer_of(mut stream: TcpStream) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut text = Vec::new();
    let _ = stream.read_to_end(&mut text).await;
    String::from_utf8_lossy(&text).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_unsigned_bodies_hold_no_in_flight_slot() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    create_topic(&brokers, &raw_topic, 1).await;
    let mut env = ingest_env(&brokers, &raw_topic);
    env.push(("ZOOMSTREAM_MAX_IN_FLIGHT", "20".into()));
    env.push(("ZOOMSTREAM_BODY_TIMEOUT_MS", "5000".into()));
    let ingest = IngestProcess::spawn(&env);
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;

    // Twice the old limit of slow unsigned bodies, each announcing 1000 bytes and sending 8.
    let mut slow = Vec::new();
    for _ in 0..40 {
        slow.push(half_sent_unsigned(ingest.port, 1000).await);
    }
    let metrics_url = ingest.url("/metrics");
    wait_for(
        "the slow bodies' connections to be open",
        Duration::from_secs(10),
        || async {
            metric(
                &get_text(&client, &metrics_url).await,
                "zoomstream_http_connections_open",
            ) >= 40.0
        },
    )
    .await;

    // Signed webhooks while they are held: every one accepted.
    let started = Instant::now();
    let mut answers = Vec::new();
    for _ in 0..10 {
        let signed = sign(SECRET, &fresh_body());
        let url = ingest.url("/webhooks/zoom");
        let client = client.clone();
        answers.push(tokio::spawn(async move {
            post_signed(&client, &url, &signed, &unique("signed"))
                .await
                .status()
        }));
    }
    for answer in answers {
        assert_eq!(answer.await.unwrap(), 200, "a signed webhook is accepted");
    }
    let signed_took = started.elapsed();
    let page = get_text(&client, &metrics_url).await;
    assert_eq!(
        metric(
            &page,
            r#"zoomstream_ingest_requests_total{app="zoom",outcome="overloaded"}"#
        ),
        0.0,
        "no webhook was shed"
    );

    // The slow bodies end at the body timeout, answered 408.
    for stream in slow {
        let answer = answer_of(stream).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    figures!(
        "hostile clients: 40 slow unsigned bodies held against max_in_flight 20; 10/10 signed webhooks answered 200 meanwhile (in {signed_took:?}), 0 shed; the slow bodies answered 408 at the 5 s body timeout"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_being_received_share_a_memory_budget() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    create_topic(&brokers, &raw_topic, 1).await;
    let mut env = ingest_env(&brokers, &raw_topic);
    env.push(("ZOOMSTREAM_MAX_BODY_BYTES", "65536".into()));
    env.push(("ZOOMSTREAM_MAX_BODY_BYTES_IN_FLIGHT", "131072".into()));
    env.push(("ZOOMSTREAM_BODY_TIMEOUT_MS", "3000".into()));
    let ingest = IngestProcess::spawn(&env);
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;

    // Two bodies of 60,000 of their announced 65,536 bytes, held.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = half_sent_unsigned(ingest.port, 65_536).await;
        stream.write_all(&vec![b' '; 60_000]).await.unwrap();
        held.push(stream);
    }
    let metrics_url = ingest.url("/metrics");
    wait_for(
        "the held bodies to be charged",
        Duration::from_secs(10),
        || async {
            metric(
                &get_text(&client, &metrics_url).await,
                "zoomstream_ingest_body_bytes_in_flight",
            ) >= 120_000.0
        },
    )
    .await;
    // A third that would go over the budget is shed at once, not held to the body timeout.
    let started = Instant::now();
    let mut third = half_sent_unsigned(ingest.port, 65_536).await;
    third.write_all(&vec![b' '; 20_000]).await.unwrap();
    let answer = answer_of(third).await;
    let shed_after = started.elapsed();
    assert!(
        answer.starts_with("HTTP/1.1 503") && answer.contains("overloaded"),
        "{answer}"
    );
    // The held ones end at the body timeout; their charge comes back.
    for stream in held {
        let answer = answer_of(stream).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    wait_for(
        "the budget to come back",
        Duration::from_secs(10),
        || async {
            metric(
                &get_text(&client, &metrics_url).await,
                "zoomstream_ingest_body_bytes_in_flight",
            ) == 0.0
        },
    )
    .await;
    let signed = sign(SECRET, &fresh_body());
    let response = post_signed(&client, &ingest.url("/webhooks/zoom"), &signed, "after").await;
    assert_eq!(response.status(), 200);
    figures!(
        "hostile clients: body budget 128 KiB, two 60,000-byte bodies held: a third body shed with 503 after {shed_after:?} (not at the 3 s body timeout); the held ones 408, the budget back to 0, a signed webhook 200"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_replays_are_published_once() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    create_topic(&brokers, &raw_topic, 1).await;
    let ingest = IngestProcess::spawn(&ingest_env(&brokers, &raw_topic));
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;

    let signed = std::sync::Arc::new(sign(SECRET, &fresh_body()));
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(10));
    let mut copies = Vec::new();
    for _ in 0..10 {
        let (client, signed, start) = (client.clone(), signed.clone(), start.clone());
        let url = ingest.url("/webhooks/zoom");
        copies.push(tokio::spawn(async move {
            start.wait().await;
            let response = post_signed(&client, &url, &signed, "the-replayed-request").await;
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (
                status,
                body["status"].as_str().unwrap_or_default().to_owned(),
            )
        }));
    }
    let mut statuses = Vec::new();
    for copy in copies {
        let (status, answer) = copy.await.unwrap();
        assert_eq!(status, 200, "every copy is answered 200");
        statuses.push(answer);
    }
    statuses.sort();
    let duplicates = statuses.iter().filter(|s| *s == "duplicate").count();
    assert_eq!(statuses.iter().filter(|s| *s == "accepted").count(), 1);
    assert_eq!(duplicates, 9, "{statuses:?}");

    let sentinel = sign(SECRET, &fresh_body());
    let url = ingest.url("/webhooks/zoom");
    assert_eq!(
        post_signed(&client, &url, &sentinel, "sentinel")
            .await
            .status(),
        200
    );
    let records = read_topic_until(&brokers, &raw_topic, Duration::from_secs(30), |r| {
        r.iter()
            .any(|r| r.header(headers::ZM_REQUEST_ID).as_deref() == Some("sentinel"))
    });
    let replayed = records
        .iter()
        .filter(|r| r.header(headers::ZM_REQUEST_ID).as_deref() == Some("the-replayed-request"))
        .count();
    assert_eq!(replayed, 1, "one raw record for ten concurrent copies");
    figures!(
        "hostile clients: 10 concurrent copies of one signed request -> {replayed} raw record, answers 1 accepted + {duplicates} duplicate"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_connection_flood_under_a_low_fd_limit_leaves_webhooks_answered() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    create_topic(&brokers, &raw_topic, 1).await;
    let mut env = ingest_env(&brokers, &raw_topic);
    env.push(("ZOOMSTREAM_MAX_CONNECTIONS_PER_ADDRESS", "32".into()));
    env.push(("ZOOMSTREAM_HEADER_READ_TIMEOUT_MS", "4000".into()));
    let ingest = IngestProcess::spawn_with_fd_limit(&env, 128);
    // Zoom's side comes from another address than the attacker's (all of 127/8 is loopback).
    let zoom = reqwest::Client::builder()
        .local_address(IpAddr::from(LOOPBACK_2))
        .build()
        .unwrap();
    ingest.wait_ready(&zoom).await;

    // 200 idle connections from 127.0.0.1: more than the descriptors the process has.
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(
            TcpStream::connect(("127.0.0.1", ingest.port))
                .await
                .unwrap(),
        );
    }
    let metrics_url = ingest.url("/metrics");
    wait_for(
        "the flood to be accepted or refused",
        Duration::from_secs(10),
        || async {
            let page = get_text(&zoom, &metrics_url).await;
            metric(&page, "zoomstream_http_connections_open") >= 32.0
                && metric(
                    &page,
                    r#"zoomstream_http_connections_refused_total{reason="address_limit"}"#,
                ) >= 168.0
        },
    )
    .await;

    let signed = sign(SECRET, &fresh_body());
    let started = Instant::now();
    let answer = post_signed(
        &zoom,
        &ingest.url("/webhooks/zoom"),
        &signed,
        "during-flood",
    )
    .await;
    let took = started.elapsed();
    assert_eq!(answer.status(), 200);
    assert!(took < Duration::from_secs(3), "answered in {took:?}");

    // The idle connections are closed by the server: at once beyond the cap, at the header
    // timeout within it.
    let closing = Instant::now();
    for stream in idle {
        let answer = tokio::time::timeout(Duration::from_secs(30), answer_of(stream))
            .await
            .expect("an idle connection is closed");
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }
    let all_closed = closing.elapsed();
    // Counted as each connection ends, which may be just after the client saw it close.
    let timed_out = r#"zoomstream_http_connections_closed_total{reason="header_timeout"}"#;
    wait_for(
        "the header timeouts to be counted",
        Duration::from_secs(10),
        || async { metric(&get_text(&zoom, &metrics_url).await, timed_out) >= 32.0 },
    )
    .await;
    let page = get_text(&zoom, &metrics_url).await;
    let timed_out = metric(&page, timed_out);
    assert_eq!(metric(&page, "zoomstream_http_accept_errors_total"), 0.0);
    assert!(
        !ingest.log_text().contains("Too many open files"),
        "no accept failed for want of descriptors"
    );
    assert!(
        ingest
            .log_text()
            .contains("the file-descriptor limit is low for the configured max_connections"),
        "the low limit was warned about at start"
    );
    figures!(
        "hostile clients: fd limit 128, 200 idle connections from one address (32 held, 168 refused at once); a signed webhook from another address answered 200 in {took:?}; the held ones closed at the 4 s header timeout ({timed_out} counted, all closed {all_closed:?} after the webhook)"
    );
}

/// A connection to `port` from the loopback address `local`.
async fn connect_from(local: [u8; 4], port: u16) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((IpAddr::from(local), 0).into()).unwrap();
    socket.connect(([127, 0, 0, 1], port).into()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_from_many_addresses_displaces_idle_connections_not_webhooks() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    create_topic(&brokers, &raw_topic, 1).await;
    let mut env = ingest_env(&brokers, &raw_topic);
    env.push(("ZOOMSTREAM_MAX_CONNECTIONS_PER_ADDRESS", "32".into()));
    let ingest = IngestProcess::spawn_with_fd_limit(&env, 128);
    let zoom = reqwest::Client::builder()
        .local_address(IpAddr::from(LOOPBACK_2))
        .build()
        .unwrap();
    ingest.wait_ready(&zoom).await;

    // 20 idle connections from each of 10 addresses: every slot the descriptors leave (64)
    // taken, each within its address's cap.
    let mut idle = Vec::new();
    for host in 11..21 {
        for _ in 0..20 {
            idle.push(connect_from([127, 0, 0, host], ingest.port).await);
        }
    }
    let metrics_url = ingest.url("/metrics");
    wait_for("the slots to be taken", Duration::from_secs(10), || async {
        let page = get_text(&zoom, &metrics_url).await;
        metric(
            &page,
            r#"zoomstream_http_connections_closed_total{reason="displaced"}"#,
        ) >= 100.0
    })
    .await;

    let signed = sign(SECRET, &fresh_body());
    let started = Instant::now();
    let answer = post_signed(
        &zoom,
        &ingest.url("/webhooks/zoom"),
        &signed,
        "through-flood",
    )
    .await;
    let took = started.elapsed();
    assert_eq!(answer.status(), 200);
    assert!(took < Duration::from_secs(3), "answered in {took:?}");
    let page = get_text(&zoom, &metrics_url).await;
    let displaced = metric(
        &page,
        r#"zoomstream_http_connections_closed_total{reason="displaced"}"#,
    );
    let open = metric(&page, "zoomstream_http_connections_open");
    assert!(
        open <= 64.0,
        "the cap fitted to 128 descriptors holds: {open}"
    );
    assert_eq!(metric(&page, "zoomstream_http_accept_errors_total"), 0.0);
    drop(idle);
    figures!(
        "hostile clients: fd limit 128 (64 connections), 200 idle connections from 10 addresses: {displaced} displaced oldest-first without a request; a signed webhook from another address answered 200 in {took:?}"
    );
}

/// An SSE id: base64url of `partition:offset` pairs.
fn id_of(pairs: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pairs)
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_stream_ids_are_refused_with_the_reason() {
    let (sources, source, producer) = direct_setup(2).await;
    // Three records on partition 0 and two on partition 1: the ends are 3 and 2.
    produce_meetings(&producer, &source, 0..5, 2, 0);
    let sse = SseApp::start(sse_config(&sources)).await;
    let url = sse.events_url("meeting-started");

    let mut refused = 0;
    for (forged, why) in [
        ("0:4,1:0", "past the end of partition 0"),
        ("0:9223372036854775807", "i64::MAX"),
        ("0:1,1:3", "past the end of partition 1"),
        ("2:0", "a partition the topic does not have"),
        ("0:1,7:0", "a made-up partition beside a real one"),
    ] {
        let response = request(&url, Auth::Bearer(TOKEN), Some(&id_of(forged))).await;
        assert_eq!(response.status(), 400, "{why}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "bad_last_event_id", "{why}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("partition"), "{why}: {message}");
        refused += 1;
    }
    // Ids at the ends, or before them, are positions of the topic: streamed from there.
    for real in ["0:3,1:2", "0:1", ""] {
        let id = id_of(real);
        let mut client = SseClient::connect(TOKEN, &url, (!id.is_empty()).then_some(&id)).await;
        client.wait_live().await;
    }
    let page = sse.metrics().await;
    assert_eq!(
        sample(
            &page,
            "zoomstream_sse_requests_total",
            &[("outcome", "bad_last_event_id")]
        ),
        5.0
    );
    sse.stop().await;
    figures!("hostile clients: {refused}/5 forged Last-Event-IDs (past the end, i64::MAX, made-up partitions) answered 400 bad_last_event_id with the partition in the reason");
}

/// A stream request from `local` (a loopback address) with `token`.
async fn stream_from(local: [u8; 4], url: &str, token: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .local_address(IpAddr::from(local))
        .build()
        .unwrap()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_token_or_one_address_cannot_take_every_stream() {
    let sources = TestSources::new(SOURCES);
    for source in &sources.file.sources {
        create_topic(&brokers(), &source.topic, 1).await;
    }
    let mut config = sse_config(&sources);
    config.source_tokens = vec!["meeting-ended=tenant-b-token".to_owned().into()];
    config.max_clients = 10;
    config.max_clients_per_token = 2;
    config.max_clients_per_address = 3;
    let sse = SseApp::start(config).await;
    let started = sse.events_url("meeting-started");
    let ended = sse.events_url("meeting-ended");

    // Tenant A's token: two streams, then 429 (not the global 503), whatever the address.
    let mut held = Vec::new();
    for _ in 0..2 {
        let response = stream_from([127, 0, 0, 1], &started, TOKEN).await;
        assert_eq!(response.status(), 200);
        held.push(response);
    }
    let over = stream_from(LOOPBACK_2, &started, TOKEN).await;
    assert_eq!(over.status(), 429);
    assert!(over.headers().contains_key("retry-after"));
    let body: Value = over.json().await.unwrap();
    assert_eq!(body["error"], "token_stream_limit");

    // Tenant B still gets its stream; then this address is at its three.
    let response = stream_from([127, 0, 0, 1], &ended, "tenant-b-token").await;
    assert_eq!(response.status(), 200, "another tenant is not starved");
    held.push(response);
    let over = stream_from([127, 0, 0, 1], &ended, "tenant-b-token").await;
    assert_eq!(over.status(), 429);
    let body: Value = over.json().await.unwrap();
    assert_eq!(body["error"], "address_stream_limit");
    let response = stream_from(LOOPBACK_2, &ended, "tenant-b-token").await;
    assert_eq!(response.status(), 200, "from another address");
    held.push(response);

    // A closed stream gives its place back.
    drop(held.remove(0));
    wait_for(
        "tenant A's place to come back",
        Duration::from_secs(10),
        || {
            let started = started.clone();
            async move {
                let response = stream_from(LOOPBACK_2, &started, TOKEN).await;
                response.status() == 200
            }
        },
    )
    .await;
    let page = sse.metrics().await;
    for outcome in ["token_stream_limit", "address_stream_limit"] {
        assert!(
            sample(
                &page,
                "zoomstream_sse_requests_total",
                &[("outcome", outcome)]
            ) >= 1.0,
            "{outcome}: {page}"
        );
    }
    sse.stop().await;
    figures!("hostile clients: SSE with max_clients 10, per token 2, per address 3: tenant A's third stream 429 token_stream_limit while tenant B streamed; a fourth stream from one address 429 address_stream_limit, from another address 200");
}
