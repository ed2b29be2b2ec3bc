//! Ingest under load while the broker goes away: every request answered 200 is in the raw
//! topic; every other answer is a 5xx given before Zoom's 3 s deadline; /readyz reflects the
//! outage; ingest recovers on its own. Then overload: ingest sheds with 503 (never a 4xx),
//! answers within the deadline, stays within its memory, and loses nothing it accepted.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use zoomstream_ingest::Config;
use zoomstream_schemas::raw::headers;
use zoomstream_tests::*;

const SECRET: &str = "outage-secret";

#[derive(Default)]
struct Tally {
    /// request id → (status, latency)
    answers: Mutex<HashMap<String, (u16, Duration)>>,
}

/// Sends signed webhooks with unique request ids from `connections` tasks until `stop`.
fn load(
    url: String,
    connections: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let template: Value =
        serde_json::from_slice(&fixture("meeting.participant_joined.json")).unwrap();
    (0..connections)
        .map(|c| {
            let (url, stop, tally, template) =
                (url.clone(), stop.clone(), tally.clone(), template.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let id = format!("c{c}-{n}");
                    let mut body = template.clone();
                    body["payload"]["object"]["uuid"] = json!(id);
                    let signed = sign(SECRET, &serde_json::to_vec(&body).unwrap());
                    let started = Instant::now();
                    let status = match client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("x-zm-request-timestamp", &signed.timestamp)
                        .header("x-zm-signature", &signed.signature)
                        .header("x-zm-request-id", &id)
                        .body(signed.body)
                        .send()
                        .await
                    {
                        Ok(r) => r.status().as_u16(),
                        Err(_) => 0,
                    };
                    tally
                        .answers
                        .lock()
                        .unwrap()
                        .insert(id, (status, started.elapsed()));
                }
            })
        })
        .collect()
}

fn summary(tally: &Tally) -> (HashSet<String>, usize, Duration) {
    let answers = tally.answers.lock().unwrap();
    let accepted: HashSet<String> = answers
        .iter()
        .filter(|(_, (s, _))| *s == 200)
        .map(|(id, _)| id.clone())
        .collect();
    for (id, (status, latency)) in answers.iter() {
        assert!(
            *status == 200 || *status == 503,
            "{id}: answered {status}: only 200 or 503 are allowed"
        );
        assert!(
            *latency < Duration::from_secs(3),
            "{id}: answered {status} after {latency:?}, past Zoom's deadline"
        );
    }
    let max = answers.values().map(|(_, l)| *l).max().unwrap_or_default();
    (
        accepted,
        answers.len() - answers.values().filter(|(s, _)| *s == 200).count(),
        max,
    )
}

fn distribution(tally: &Tally) -> HashMap<u16, usize> {
    let mut counts = HashMap::new();
    for (status, _) in tally.answers.lock().unwrap().values() {
        *counts.entry(*status).or_default() += 1;
    }
    counts
}

/// Reads the raw topic until every accepted request id is on it (the test's promise), for at
/// most 60 s; the records read.
fn read_until_all_found(brokers: &str, topic: &str, accepted: &HashSet<String>) -> Vec<Record> {
    read_topic_until(brokers, topic, Duration::from_secs(60), |records| {
        let found: HashSet<String> = records
            .iter()
            .filter_map(|r| r.header(headers::ZM_REQUEST_ID))
            .collect();
        accepted.is_subset(&found)
    })
}

async fn ready(client: &reqwest::Client, url: &str) -> u16 {
    client
        .get(url)
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_webhook_answered_200_survives_broker_stops_and_a_crash_restart() {
    let dir = std::env::temp_dir().join(unique("outage"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut broker = Broker::start_sqlite(&dir);
    let topic = unique("raw");
    let mut config = Config::new(broker.address());
    config.zoom_secret_token = Some(SECRET.to_owned().into());
    config.raw_topic = topic.clone();
    config.raw_topic_partitions = 3;
    config.publish_timeout_ms = 1500;
    let ingest = IngestApp::start(config).await;
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let tasks = load(ingest.url("/webhooks/zoom"), 4, stop.clone(), tally.clone());
    let count = |t: &Tally| t.answers.lock().unwrap().len();
    let served_since = |n: usize| {
        let tally = tally.clone();
        move || {
            let tally = tally.clone();
            async move { count(&tally) >= n }
        }
    };

    wait_for(
        "load before the outage",
        Duration::from_secs(30),
        served_since(50),
    )
    .await;
    // Outage 1: the broker stops answering (SIGSTOP), then continues.
    broker.signal("STOP");
    let before = count(&tally);
    wait_for(
        "requests during the stop",
        Duration::from_secs(30),
        served_since(before + 8),
    )
    .await;
    assert_eq!(
        ready(&client, &ingest.url("/readyz")).await,
        503,
        "/readyz during the stop"
    );
    broker.signal("CONT");
    ingest.wait_ready(&client).await;
    let before = count(&tally);
    wait_for(
        "load after the stop",
        Duration::from_secs(30),
        served_since(before + 50),
    )
    .await;

    // Outage 2: the broker is killed and restarted on its durable storage.
    broker.restart();
    ingest.wait_ready(&client).await;
    let before = count(&tally);
    wait_for(
        "load after the restart",
        Duration::from_secs(60),
        served_since(before + 50),
    )
    .await;
    // Recovered without a restart of ingest: requests are accepted again.
    let accepted_now = || {
        tally
            .answers
            .lock()
            .unwrap()
            .values()
            .filter(|(s, _)| *s == 200)
            .count()
    };
    let after_restart = accepted_now();
    let deadline = Instant::now() + Duration::from_secs(60);
    while accepted_now() < after_restart + 100 {
        assert!(
            Instant::now() < deadline,
            "not recovered after the restart: {:?}",
            distribution(&tally)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }

    let (accepted, refused, slowest) = summary(&tally);
    assert!(refused > 0, "the outages were felt");
    let records = read_until_all_found(&broker.address(), &topic, &accepted);
    eprintln!(
        "outage: {} requests, {} acknowledged (all {} found in Kafka, {} records there), {refused} answered 503, slowest answer {slowest:?}",
        accepted.len() + refused,
        accepted.len(),
        accepted.len(),
        records.len()
    );
    ingest.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn overload_is_shed_with_503_within_the_deadline_and_bounded_memory() {
    let brokers = brokers();
    let topic = unique("raw");
    create_topic(&brokers, &topic, 3).await;
    let ingest = IngestProcess::spawn(&[
        ("ZOOMSTREAM_KAFKA_BROKERS", brokers.clone()),
        ("ZOOMSTREAM_RAW_TOPIC", topic.clone()),
        ("ZOOMSTREAM_ZOOM_SECRET_TOKEN", SECRET.into()),
        // Capacity made small, so 256 connections are far beyond it.
        ("ZOOMSTREAM_MAX_IN_FLIGHT", "4".into()),
        ("RUST_LOG", "warn".into()),
    ]);
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;
    let idle_rss = ingest.peak_rss_kib();

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let tasks = load(
        ingest.url("/webhooks/zoom"),
        256,
        stop.clone(),
        tally.clone(),
    );
    let shed = tally.clone();
    wait_for(
        "5000 answers under overload",
        Duration::from_secs(120),
        || {
            let shed = shed.clone();
            async move { shed.answers.lock().unwrap().len() >= 5000 }
        },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    let (accepted, refused, slowest) = summary(&tally);
    assert!(refused > 0, "overload was shed with 503");
    assert!(
        !accepted.is_empty(),
        "and some requests were still accepted"
    );
    let peak = ingest.peak_rss_kib();
    assert!(peak < 256 * 1024, "peak RSS {peak} KiB under overload");
    assert_eq!(
        ready(&client, &ingest.url("/healthz")).await,
        200,
        "still alive"
    );
    let page = get_text(&client, &ingest.url("/metrics")).await;
    assert!(
        metric(
            &page,
            r#"zoomstream_ingest_requests_total{app="zoom",outcome="overloaded"}"#
        ) > 0.0
    );

    read_until_all_found(&brokers, &topic, &accepted);
    eprintln!(
        "overload: {} requests on 256 connections against 4 in-flight slots: {} accepted (all in Kafka), {refused} shed with 503, slowest answer {slowest:?}, peak RSS {} KiB (idle {idle_rss} KiB)",
        accepted.len() + refused,
        accepted.len(),
        peak
    );
}
