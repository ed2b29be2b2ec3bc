//! The disk spool (`ZOOMSTREAM_SPOOL_DIR`): with Kafka down for longer than the publish budget,
//! webhooks are answered 200 from the spool; ingest SIGKILLed with a non-empty spool and
//! restarted publishes everything once Kafka returns; nothing answered 200 is lost; one key's
//! webhooks reach the raw topic in the order they were answered.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use zoomstream_schemas::raw::headers;
use zoomstream_tests::*;

const SECRET: &str = "zoom-app-secret";
const MEETING: &str = "spooled-meeting-uuid";

/// A meeting.started of one meeting (one partition key), numbered by its topic.
fn numbered(n: usize) -> Vec<u8> {
    let mut envelope: Value = serde_json::from_slice(&fixture("meeting.started.json")).unwrap();
    envelope["payload"]["object"]["uuid"] = json!(MEETING);
    envelope["payload"]["object"]["topic"] = json!(format!("number {n}"));
    serde_json::to_vec(&envelope).unwrap()
}

async fn post(client: &reqwest::Client, ingest: &IngestProcess, n: usize) -> u16 {
    let signed = sign(SECRET, &numbered(n));
    post_signed(
        client,
        &ingest.url("/webhooks/zoom"),
        &signed,
        &format!("r-{n}"),
    )
    .await
    .status()
    .as_u16()
}

async fn spool_entries(client: &reqwest::Client, ingest: &IngestProcess) -> f64 {
    metric(
        &get_text(client, &ingest.url("/metrics")).await,
        "zoomstream_ingest_spool_entries",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_spooled_through_an_outage_and_a_sigkill_all_reach_kafka_in_order() {
    let mut broker = KafkaCluster::single();
    let topic = unique("raw");
    let spool_dir = workspace_target().join("spool-test").join(unique("spool"));
    let env = vec![
        ("ZOOMSTREAM_KAFKA_BROKERS", broker.bootstrap()),
        ("ZOOMSTREAM_RAW_TOPIC", topic.clone()),
        ("ZOOMSTREAM_RAW_TOPIC_PARTITIONS", "3".to_owned()),
        ("ZOOMSTREAM_ZOOM_SECRET_TOKEN", SECRET.to_owned()),
        ("ZOOMSTREAM_PUBLISH_TIMEOUT_MS", "1000".to_owned()),
        ("ZOOMSTREAM_SPOOL_DIR", spool_dir.display().to_string()),
    ];
    let client = reqwest::Client::new();
    let mut ingest = IngestProcess::spawn(&env);
    ingest.wait_ready(&client).await;
    assert_eq!(post(&client, &ingest, 0).await, 200, "before the outage");

    broker.stop(1);
    let during_outage = 20;
    for n in 1..=during_outage {
        assert_eq!(post(&client, &ingest, n).await, 200, "webhook {n} spooled");
    }
    assert_eq!(spool_entries(&client, &ingest).await, during_outage as f64);
    let readyz: Value = client
        .get(ingest.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(readyz["spool_entries"], during_outage);

    // SIGKILL with a full spool, restart on the same folder, Kafka still down.
    ingest.child.kill().unwrap();
    ingest.child.wait().unwrap();
    let ingest = IngestProcess::spawn(&env);
    wait_for(
        "the restarted ingest to serve",
        Duration::from_secs(30),
        || async { client.get(ingest.url("/healthz")).send().await.is_ok() },
    )
    .await;
    assert_eq!(
        spool_entries(&client, &ingest).await,
        during_outage as f64,
        "the spool survived"
    );
    let last = during_outage + 1;
    assert_eq!(
        post(&client, &ingest, last).await,
        200,
        "queued behind the spool"
    );

    broker.restart(1);
    let expected: HashSet<String> = (0..=last).map(|n| format!("r-{n}")).collect();
    let records = read_topic_until(&broker.bootstrap(), &topic, Duration::from_secs(120), |r| {
        let found: HashSet<String> = r
            .iter()
            .filter_map(|r| r.header(headers::ZM_REQUEST_ID))
            .collect();
        expected.is_subset(&found)
    });
    wait_for("the spool to be empty", Duration::from_secs(60), || async {
        spool_entries(&client, &ingest).await == 0.0
    })
    .await;

    // One key: one partition, read in offset order; first occurrences in answer order.
    let mut order: Vec<String> = Vec::new();
    for record in &records {
        assert_eq!(record.key_str().as_deref(), Some(MEETING));
        let id = record.header(headers::ZM_REQUEST_ID).unwrap();
        if !order.contains(&id) {
            order.push(id);
        }
    }
    let answered: Vec<String> = (0..=last).map(|n| format!("r-{n}")).collect();
    assert_eq!(order, answered, "in the order they were answered");
    figures!(
        "spool: {} webhooks answered 200 while Kafka was down (ingest SIGKILLed and restarted in between), {} found on the raw topic afterwards in answer order ({} records)",
        last,
        last,
        records.len() - 1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_spool_answers_503_as_without_one() {
    // No broker at all: every publish fails at the budget.
    let spool_dir = workspace_target().join("spool-test").join(unique("spool"));
    // An entry is its body plus a head of about 350 bytes: room for two, not three.
    let max_bytes = 2 * numbered(1).len() + 1000;
    let ingest = IngestProcess::spawn(&[
        (
            "ZOOMSTREAM_KAFKA_BROKERS",
            format!("127.0.0.1:{}", free_port()),
        ),
        ("ZOOMSTREAM_ZOOM_SECRET_TOKEN", SECRET.to_owned()),
        ("ZOOMSTREAM_PUBLISH_TIMEOUT_MS", "300".to_owned()),
        ("ZOOMSTREAM_SPOOL_DIR", spool_dir.display().to_string()),
        ("ZOOMSTREAM_SPOOL_MAX_BYTES", max_bytes.to_string()),
    ]);
    let client = reqwest::Client::new();
    wait_for("ingest to serve", Duration::from_secs(30), || async {
        client.get(ingest.url("/healthz")).send().await.is_ok()
    })
    .await;
    let answers = [
        post(&client, &ingest, 1).await,
        post(&client, &ingest, 2).await,
        post(&client, &ingest, 3).await,
    ];
    assert_eq!(answers, [200, 200, 503], "two fit, the third is refused");
    let page = get_text(&client, &ingest.url("/metrics")).await;
    assert_eq!(
        metric(
            &page,
            r#"zoomstream_ingest_requests_total{app="zoom",outcome="spooled"}"#
        ),
        2.0
    );
    assert_eq!(metric(&page, "zoomstream_ingest_spool_entries"), 2.0);
}
