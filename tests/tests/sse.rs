//! The SSE service against Kafka: a client sees the live events of its source only (fed
//! through the real ingest and processor); tokens guard every source; a reconnect with
//! Last-Event-ID — after a dropped connection, and after a restart of the service binary —
//! gets exactly the missing events; `from=latest` on a topic written in transactions never
//! replays an older record. (Clients under load: `sse_clients.rs`; a browser: `sse_browser.rs`.)
//!
//! Source records are fed either through ingest + processor from signed webhooks, or produced
//! directly to a source topic exactly as the processor writes them (the schemas crate's
//! mapping, single-object Avro, the processor's headers), which lets a test control partitions,
//! sizes and timing.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use zoomstream_schemas::raw::{self, headers};
use zoomstream_schemas::App;
use zoomstream_tests::*;

mod sse_support;
use sse_support::*;

#[tokio::test(flavor = "multi_thread")]
async fn clients_get_the_live_events_of_their_source_only_through_the_processor() {
    let brokers = brokers();
    let sources = TestSources::new(SOURCES);
    let (ingest, processor) = start_pipeline(&brokers, &sources).await;
    let http = reqwest::Client::new();
    let sse = SseApp::start(sse_config(&sources)).await;

    assert_eq!(
        http.get(sse.url("/healthz")).send().await.unwrap().status(),
        200
    );
    let mut started = SseClient::connect(TOKEN, &sse.events_url("meeting-started"), None).await;
    let mut ended =
        SseClient::connect_with(&sse.events_url("meeting-ended"), Auth::Query(TOKEN), None).await;
    let preamble = started.wait_live().await;
    assert_eq!(
        preamble.first(),
        Some(&Item::Retry(500)),
        "the stream starts with the retry hint: {preamble:?}"
    );
    ended.wait_live().await;

    let post = |name: &'static str, uuid: &'static str| {
        let http = http.clone();
        let url = ingest.url("/webhooks/zoom");
        async move {
            let mut body: Value = serde_json::from_slice(&fixture(name)).unwrap();
            body["payload"]["object"]["uuid"] = uuid.into();
            let body = serde_json::to_vec(&body).unwrap();
            let response = post_signed(&http, &url, &sign(ZOOM_SECRET, &body), uuid).await;
            assert_eq!(response.status(), 200, "{name}");
            let answer: Value = response.json().await.unwrap();
            answer["event_id"].as_str().unwrap().to_owned()
        }
    };
    let started_1 = post("meeting.started.json", "sse-started-1").await;
    let ended_1 = post("meeting.ended.json", "sse-ended-1").await;
    post("meeting.created.json", "sse-created-1").await; // no source of this test takes it
    let started_2 = post("meeting.started.json", "sse-started-2").await;
    let ended_2 = post("meeting.ended.json", "sse-ended-2").await;

    let timeout = Duration::from_secs(60);
    let got_started = started.events(2, timeout).await;
    let got_ended = ended.events(2, timeout).await;
    // Each stream carries its source's events only, in the order they happened (one meeting
    // uuid each, so possibly different partitions: compare as sets of what came).
    let ids = |events: &[SseEvent]| -> HashSet<String> {
        events
            .iter()
            .map(|e| e.json()["event_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&got_started),
        HashSet::from([started_1.clone(), started_2.clone()])
    );
    assert_eq!(ids(&got_ended), HashSet::from([ended_1, ended_2]));
    assert!(
        got_started.iter().all(|e| e.event == "meeting.started"),
        "{got_started:?}"
    );
    assert!(
        got_ended.iter().all(|e| e.event == "meeting.ended"),
        "{got_ended:?}"
    );

    // The data is the record on the topic, decoded with the source's schema; the id is the
    // position right after that record.
    let source = sources.source("meeting-started");
    let on_topic = read_all(&brokers, &source.topic);
    assert_eq!(on_topic.len(), 2);
    for event in &got_started {
        let data = event.json();
        let record = on_topic
            .iter()
            .find(|r| r.header(headers::EVENT_ID).as_deref() == data["event_id"].as_str())
            .expect("the record of the event");
        assert_eq!(decode(record, &source.schema), data);
        assert_eq!(data["wire_event"], "meeting.started");
        assert_eq!(data["meeting_id"], "1234567890");
        let position = decode_id(event.id.as_deref().expect("an id"));
        assert_eq!(
            position.get(&record.partition),
            Some(&(record.offset + 1)),
            "{position:?} vs {record:?}"
        );
    }

    let page = sse.metrics().await;
    assert_eq!(
        sample(
            &page,
            "zoomstream_sse_events_sent_total",
            &[("source", "meeting-started")]
        ),
        2.0,
        "{page}"
    );
    assert_eq!(
        sample(
            &page,
            "zoomstream_sse_connected_clients",
            &[("source", "meeting-started")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &page,
            "zoomstream_sse_connected_clients",
            &[("source", "meeting-ended")]
        ),
        1.0
    );
    assert_eq!(sample(&page, "zoomstream_sse_live_consumers", &[]), 2.0);

    drop(started);
    drop(ended);
    sse.stop().await;
    processor.stop().await.expect("processor stops");
    ingest.stop().await.expect("ingest stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_guard_every_source() {
    let sources = TestSources::new(SOURCES);
    for source in &sources.file.sources {
        create_topic(&brokers(), &source.topic, 1).await;
    }
    let mut config = sse_config(&sources);
    config.token = Some("global-token-1".to_owned().into());
    // meeting-ended has a token of its own, which overrides the global one for it.
    config.source_tokens = vec!["meeting-ended=ended-token-2".to_owned().into()];
    let sse = SseApp::start(config).await;
    let started = sse.events_url("meeting-started");
    let ended = sse.events_url("meeting-ended");

    for (url, auth, why) in [
        (&started, Auth::None, "no token"),
        (&started, Auth::Bearer("wrong"), "a wrong token"),
        (
            &started,
            Auth::Bearer("global-token-"),
            "a prefix of the token",
        ),
        (
            &started,
            Auth::Query("ended-token-2"),
            "another source's token",
        ),
        (
            &ended,
            Auth::Bearer("global-token-1"),
            "the global token, overridden for this source",
        ),
        (&ended, Auth::Query(""), "an empty token"),
    ] {
        let response = request(url, auth, None).await;
        assert_eq!(response.status(), 401, "{why}");
        let challenge = response
            .headers()
            .get("www-authenticate")
            .expect("a challenge")
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "application/json",
            "{why}"
        );
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("data:") && body.contains("unauthorized"),
            "{why}: {body}"
        );
    }

    // The right tokens open their sources, by header (any case of the scheme) or query.
    SseClient::connect_with(&started, Auth::Bearer("global-token-1"), None)
        .await
        .wait_live()
        .await;
    SseClient::connect_with(&started, Auth::Query("global-token-1"), None).await;
    SseClient::connect_with(&ended, Auth::Bearer("ended-token-2"), None).await;
    let response = reqwest::Client::new()
        .get(&ended)
        .header("authorization", "bearer ended-token-2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    drop(response);

    // Unknown sources are 401 without a token (names cannot be enumerated), 404 with one that
    // opens every source without its own tokens.
    for (auth, status) in [
        (Auth::None, 401),
        (Auth::Bearer("ended-token-2"), 401),
        (Auth::Bearer("global-token-1"), 404),
    ] {
        let response = request(&sse.events_url("no-such-source"), auth, None).await;
        assert_eq!(response.status(), status);
    }
    // Ids this service did not issue, and unknown starts, are 400.
    let response = request(&started, Auth::Bearer("global-token-1"), Some("not an id!")).await;
    assert_eq!(response.status(), 400);
    let response = request(
        &format!("{started}?from=middle"),
        Auth::Bearer("global-token-1"),
        None,
    )
    .await;
    assert_eq!(response.status(), 400);

    let page = sse.metrics().await;
    assert_eq!(
        sample(
            &page,
            "zoomstream_sse_requests_total",
            &[("outcome", "unauthorized")]
        ),
        8.0,
        "{page}"
    );
    assert_eq!(
        sample(
            &page,
            "zoomstream_sse_requests_total",
            &[("outcome", "unknown_source")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &page,
            "zoomstream_sse_requests_total",
            &[("outcome", "bad_request")]
        ),
        2.0
    );
    assert!(!page.contains("global-token") && !page.contains("ended-token"));
    sse.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconnect_with_last_event_id_gets_exactly_the_missing_events() {
    let (sources, source, producer) = direct_setup(3).await;
    let sse = SseApp::start(sse_config(&sources)).await;
    let url = sse.events_url("meeting-started");
    let timeout = Duration::from_secs(30);

    let mut ids = produce_meetings(&producer, &source, 0..9, 3, 0);
    let mut first = SseClient::connect(TOKEN, &format!("{url}?from=earliest"), None).await;
    let seen_first = seqs(&first.events(4, timeout).await, &ids);
    let last_id = first.last_id.clone().expect("an id");
    drop(first); // the connection drops after 4 of 9

    ids.extend(produce_meetings(&producer, &source, 9..15, 3, 0));
    // Resumes from the Kafka offsets in the id: the 5 it missed of the first 9, the 6 new.
    let mut second = SseClient::connect(TOKEN, &url, Some(&last_id)).await;
    let caught_up = seqs(&second.events(11, timeout).await, &ids);
    // A new client starts at the end (from=latest is the default) ...
    let mut newcomer = SseClient::connect(TOKEN, &url, None).await;
    newcomer.wait_live().await;
    // ... and both then get the next records live.
    ids.extend(produce_meetings(&producer, &source, 15..18, 3, 0));
    let live = seqs(&second.events(3, timeout).await, &ids);
    let newcomer_live = seqs(&newcomer.events(3, timeout).await, &ids);

    let mut all: Vec<usize> = seen_first
        .iter()
        .chain(&caught_up)
        .chain(&live)
        .copied()
        .collect();
    all.sort();
    assert_eq!(
        all,
        (0..18).collect::<Vec<_>>(),
        "nothing skipped, nothing repeated: {seen_first:?} {caught_up:?} {live:?}"
    );
    let mut newcomer_live = newcomer_live;
    newcomer_live.sort();
    assert_eq!(newcomer_live, vec![15, 16, 17]);

    // Per partition, in offset order, whatever the interleaving.
    for p in 0..3 {
        let order: Vec<usize> = caught_up
            .iter()
            .chain(&live)
            .copied()
            .filter(|s| s % 3 == p)
            .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "partition {p}: {order:?}"
        );
    }

    // The same id as a query parameter (for pages that keep it across reloads) resumes the same.
    let mut third =
        SseClient::connect(TOKEN, &format!("{url}?last_event_id={last_id}"), None).await;
    let mut again = seqs(&third.events(14, timeout).await, &ids);
    again.sort();
    let mut expected: Vec<usize> = caught_up.iter().chain(&live).copied().collect();
    expected.sort();
    assert_eq!(again, expected);

    let page = sse.metrics().await;
    assert!(
        sample(
            &page,
            "zoomstream_sse_catchups_total",
            &[("source", "meeting-started")]
        ) >= 3.0,
        "{page}"
    );
    assert_eq!(sample(&page, "zoomstream_sse_live_consumers", &[]), 1.0);
    sse.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconnect_after_a_restart_of_the_service_gets_exactly_the_missing_events() {
    let (sources, source, producer) = direct_setup(3).await;
    let port = free_port();
    let log = std::env::temp_dir().join(format!("{}-sse.log", sources.prefix));
    let mut service = SseProcess::spawn(&sources, TOKEN, port, &log);
    let timeout = Duration::from_secs(30);

    let mut ids = produce_meetings(&producer, &source, 0..5, 3, 0);
    let mut client = SseClient::connect(
        TOKEN,
        &format!("{}?from=earliest", service.url("meeting-started")),
        None,
    )
    .await;
    let mut seen = seqs(&client.events(5, timeout).await, &ids);
    ids.extend(produce_meetings(&producer, &source, 5..7, 3, 0));
    seen.extend(seqs(&client.events(2, timeout).await, &ids));

    // A wrong token on the way, to check below that no token reaches the log.
    let wrong = request(
        &service.url("meeting-started"),
        Auth::Query("wrong-token-93b1"),
        None,
    )
    .await;
    assert_eq!(wrong.status(), 401);

    // SIGTERM: the stream ends with a final event naming the reason, the process exits 0.
    let status = tokio::task::spawn_blocking(move || {
        let status = service.terminate();
        (service, status)
    });
    let farewell = client.next_event(timeout).await;
    assert_eq!(farewell.event, zoomstream_sse::DISCONNECTED_EVENT);
    assert_eq!(farewell.json()["reason"], "shutdown");
    assert_eq!(
        farewell.id, None,
        "the final event keeps the client's last id"
    );
    assert_eq!(client.next(timeout).await, None, "the stream ends");
    let (service, status) = status.await.unwrap();
    assert!(
        status.success(),
        "zoomstream-sse exits 0 on SIGTERM: {status}"
    );
    drop(service);

    // Records keep coming while the service is down.
    ids.extend(produce_meetings(&producer, &source, 7..11, 3, 0));
    let service = SseProcess::spawn(&sources, TOKEN, port, &log);
    let last_id = client.last_id.clone().expect("an id");
    let mut resumed =
        SseClient::connect(TOKEN, &service.url("meeting-started"), Some(&last_id)).await;
    seen.extend(seqs(&resumed.events(4, timeout).await, &ids));
    ids.extend(produce_meetings(&producer, &source, 11..13, 3, 0));
    seen.extend(seqs(&resumed.events(2, timeout).await, &ids));

    seen.sort();
    assert_eq!(
        seen,
        (0..13).collect::<Vec<_>>(),
        "nothing skipped, nothing repeated across the restart"
    );
    drop(resumed);
    drop(service);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("client connected"),
        "the service logs: {logged}"
    );
    assert!(
        !logged.contains(TOKEN) && !logged.contains("wrong-token-93b1"),
        "a token reached the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn from_latest_never_replays_an_older_record_of_a_transactional_topic() {
    // The exactly-once processor writes the source topic in transactions: its end offsets sit
    // past commit markers, and a batch may still be open when the client connects.
    let brokers = brokers();
    let sources = TestSources::new(SOURCES);
    let (ingest, processor) = start_pipeline(&brokers, &sources).await;
    let sse = SseApp::start(sse_config(&sources)).await;
    let url = sse.events_url("meeting-started");
    let client = reqwest::Client::new();
    let webhook_url = ingest.url("/webhooks/zoom");
    let post = |seq: usize| {
        let (client, webhook_url) = (client.clone(), webhook_url.clone());
        async move {
            let body = serde_json::to_vec(&meeting_webhook(seq, 0)).unwrap();
            let status = post_signed(&client, &webhook_url, &sign(ZOOM_SECRET, &body), "latest")
                .await
                .status();
            assert_eq!(status, 200);
            raw::event_id(App::ZOOM, &meeting_webhook(seq, 0))
        }
    };
    let timeout = Duration::from_secs(60);
    // History: three rounds of older records, each seen by a client from the beginning.
    let mut older = HashSet::new();
    for round in 0..3 {
        for seq in round * 10..round * 10 + 10 {
            older.insert(post(seq).await);
        }
    }
    let mut history = SseClient::connect(TOKEN, &format!("{url}?from=earliest"), None).await;
    let seen: HashSet<String> = history
        .events(30, timeout)
        .await
        .iter()
        .map(|e| e.json()["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, older, "the history is all there");

    for attempt in 0..3 {
        let mut latest = SseClient::connect(TOKEN, &url, None).await;
        latest.wait_live().await;
        let fresh = post(1000 + attempt).await;
        let first = latest.next_event(timeout).await;
        let first_id = first.json()["event_id"].as_str().unwrap().to_owned();
        assert!(
            !older.contains(&first_id),
            "attempt {attempt}: from=latest replayed an older record"
        );
        assert_eq!(
            first_id, fresh,
            "attempt {attempt}: the first event is the new one"
        );
        older.insert(fresh);
    }
    figures!("SSE from=latest: 3 connects to a transactional source topic after 30 older records: each client's first event was the webhook posted after it went live, no older one");
    sse.stop().await;
    drop((ingest, processor));
}
