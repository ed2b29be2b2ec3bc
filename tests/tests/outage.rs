//! Ingest under load while the broker goes away: every request answered 200 is in the raw
//! topic; every other answer is a 5xx given before Zoom's 3 s deadline; /readyz reflects the
//! outage; ingest recovers on its own. Then overload: ingest sheds with 503 (never a 4xx),
//! answers within the deadline, stays within its memory, and loses nothing it accepted.

use std::time::Duration;

use zoomstream_tests::*;

const SECRET: &str = "outage-secret";

async fn ready(client: &reqwest::Client, url: &str) -> u16 {
    client
        .get(url)
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_webhook_answered_200_survives_broker_stops_and_a_crash_restart() {
    let mut broker = KafkaCluster::single();
    let topic = unique("raw");
    let mut config = ingest_config(&broker.bootstrap(), &topic, SECRET);
    config.publish_timeout_ms = 1500;
    let ingest = IngestApp::start(config).await;
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;

    let load = WebhookLoad::start(ingest.url("/webhooks/zoom"), SECRET, 4);
    let patience = Duration::from_secs(60);
    load.wait_answers("load before the outage", 50, patience)
        .await;
    // Outage 1: the broker stops answering (SIGSTOP), then continues.
    broker.signal(1, "STOP");
    load.wait_answers("requests during the stop", 8, patience)
        .await;
    assert_eq!(
        ready(&client, &ingest.url("/readyz")).await,
        503,
        "/readyz during the stop"
    );
    broker.signal(1, "CONT");
    ingest.wait_ready(&client).await;
    load.wait_answers("load after the stop", 50, patience).await;

    // Outage 2: the broker is killed and restarted on its data.
    broker.kill(1);
    broker.restart(1);
    ingest.wait_ready(&client).await;
    load.wait_answers("load after the restart", 50, patience)
        .await;
    // Recovered without a restart of ingest: requests are accepted again.
    load.wait_accepted("acceptance after the restart", 100, patience)
        .await;
    let tally = load.stop().await;

    let (accepted, refused, slowest) = tally.check_answers();
    assert!(refused > 0, "the outages were felt");
    let records = read_until_all_found(&broker.bootstrap(), &topic, &accepted);
    figures!(
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

    let load = WebhookLoad::start(ingest.url("/webhooks/zoom"), SECRET, 256);
    load.wait_answers(
        "5000 answers under overload",
        5000,
        Duration::from_secs(120),
    )
    .await;
    let tally = load.stop().await;
    let (accepted, refused, slowest) = tally.check_answers();
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
    figures!(
        "overload: {} requests on 256 connections against 4 in-flight slots: {} accepted (all in Kafka), {refused} shed with 503, slowest answer {slowest:?}, peak RSS {} KiB (idle {idle_rss} KiB)",
        accepted.len() + refused,
        accepted.len(),
        peak
    );
}
