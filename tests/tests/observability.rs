//! The dashboard and the alert rules against the real binaries: every `zoomstream_*` metric a
//! Grafana panel or a Prometheus rule names is one that ingest, a processor or the SSE service
//! exports on its `/metrics`, and every metric they export has a panel. The binaries are driven
//! until each metric has a sample (labelled metrics only show once they have one): webhooks
//! through ingest and a processor to an SSE client, a resumed client (catch-up), an undecodable
//! source record, a webhook too large for Kafka, clients that leave, a webhook delivered twice (a
//! redelivery), an unplain pass-through header, a non-canonical path, a malformed request and
//! connections over the per-address cap; ingest runs with its disk spool.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use rdkafka::producer::{BaseRecord, Producer as _};
use serde_json::Value;
use zoomstream_tests::*;

const TOKEN: &str = "observability-sse-token";
const ZOOM_SECRET: &str = "observability-zoom-secret";

const SOURCES: &str = r#"
[[source]]
name = "meeting-started"
app = "zoom"
events = ["meeting.started"]
topic = "zoom.meeting-started"
schema = "meeting.avsc"
"#;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every `zoomstream_…` name in `text`, without a histogram's `_bucket`/`_sum`/`_count`.
fn names_in(text: &str, histograms: &BTreeSet<String>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("zoomstream_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| histograms.contains(*base))
            .unwrap_or(name);
        names.insert(base.to_owned());
        rest = &tail[end..];
    }
    names
}

/// The metric families a `/metrics` page has samples of (`# TYPE` lines), and which of them are
/// histograms.
fn families(page: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut all = BTreeSet::new();
    let mut histograms = BTreeSet::new();
    for line in page.lines() {
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            let mut parts = declared.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            all.insert(name.to_owned());
            if kind == "histogram" {
                histograms.insert(name.to_owned());
            }
        }
    }
    (all, histograms)
}

fn meeting_started(seq: usize, pad: usize) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&fixture("meeting.started.json")).unwrap();
    body["payload"]["object"]["uuid"] = format!("observability-{seq}").into();
    if pad > 0 {
        body["payload"]["object"]["agenda"] = "x".repeat(pad).into();
    }
    serde_json::to_vec(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_metric_a_panel_or_an_alert_names_is_exported_and_every_exported_one_has_a_panel() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    create_topic(&brokers, &raw_topic, 1).await;
    let sources = TestSources::new(SOURCES);
    let source = sources.source("meeting-started").clone();
    let timeout = Duration::from_secs(60);
    let client = reqwest::Client::new();

    let processor = ProcessorProcess::spawn(
        &processor_config(&brokers, &raw_topic, &sources),
        "observability",
    );
    let ingest_metrics = free_port();
    let spool = tempfile::tempdir().unwrap();
    let ingest = IngestProcess::spawn(&[
        ("ZOOMSTREAM_SPOOL_DIR", spool.path().display().to_string()),
        // The producer's own limit below the body limit: a large body fails in Kafka.
        (
            "ZOOMSTREAM_KAFKA_OPTIONS",
            "message.max.bytes=1000000".into(),
        ),
        ("ZOOMSTREAM_MAX_CONNECTIONS_PER_ADDRESS", "16".into()),
        ("ZOOMSTREAM_KAFKA_BROKERS", brokers.clone()),
        ("ZOOMSTREAM_RAW_TOPIC", raw_topic.clone()),
        ("ZOOMSTREAM_ZOOM_SECRET_TOKEN", ZOOM_SECRET.into()),
        (
            "ZOOMSTREAM_METRICS_LISTEN",
            format!("127.0.0.1:{ingest_metrics}"),
        ),
    ]);
    ingest.wait_ready(&client).await;
    // The processor creates the source topic before it serves its metrics.
    wait_for("the processor's metrics", timeout, || async {
        processor.metrics().is_some()
    })
    .await;
    let log = std::env::temp_dir().join(format!("{}-sse.log", sources.prefix));
    let sse = SseProcess::spawn(&sources, TOKEN, free_port(), &log);

    let url = sse.url("meeting-started");
    let mut live = SseClient::connect(TOKEN, &url, None).await;
    live.wait_live().await;
    // A record that is not the source's Avro: skipped, counted as undecodable.
    let producer = producer(&brokers);
    producer
        .send(BaseRecord::<(), [u8]>::to(&source.topic).payload(b"not avro".as_slice()))
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(timeout).unwrap();

    let webhook = ingest.url("/webhooks/zoom");
    for seq in 0..2 {
        let answer = post_signed(
            &client,
            &webhook,
            &sign(ZOOM_SECRET, &meeting_started(seq, 0)),
            &unique("request"),
        )
        .await;
        assert_eq!(answer.status(), 200);
    }
    let events = live.events(2, timeout).await;
    // Resumed after the first event: the second comes from Kafka (a catch-up).
    let first_id = events[0].id.clone().expect("events carry ids");
    let mut resumed = SseClient::connect(TOKEN, &url, Some(&first_id)).await;
    resumed.next_event(timeout).await;

    // A redelivery: the same event signed again (another timestamp, so not a replay).
    let again = post_signed(
        &client,
        &webhook,
        &sign_at(ZOOM_SECRET, &meeting_started(0, 0), now_secs() - 5),
        &"x".repeat(300), // too long a request id: left off, counted
    )
    .await;
    assert_eq!(again.status(), 200);
    // A path written with a percent-encoding: rejected before a handler.
    let encoded = client
        .post(ingest.url("/webhooks/zoom%2Dadmin"))
        .send()
        .await
        .unwrap();
    assert_eq!(encoded.status(), 400);
    // A request hyper cannot parse: the connection is closed, counted.
    let port = ingest.port;
    let mut garbage = TcpStream::connect(("127.0.0.1", port)).unwrap();
    garbage
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = garbage.write_all(b"NOT HTTP AT ALL\r\n\r\n");
    let _ = garbage.read_to_end(&mut Vec::new());
    // More idle connections from this address than its cap: the extra ones are refused.
    let idle: Vec<TcpStream> = (0..24)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    wait_for(
        "connections refused over the per-address cap",
        timeout,
        || async {
            get_text(
                &client,
                &format!("http://127.0.0.1:{ingest_metrics}/metrics"),
            )
            .await
            .contains("zoomstream_http_connections_refused_total{")
        },
    )
    .await;
    drop(idle);
    wait_for("the redelivery dropped", timeout, || async {
        processor
            .metrics()
            .is_some_and(|m| m.contains("zoomstream_processor_redeliveries_dropped_total{"))
    })
    .await;

    // Larger than the producer's message.max.bytes (1,000,000), within ingest's body limit.
    let too_large = post_signed(
        &client,
        &webhook,
        &sign(ZOOM_SECRET, &meeting_started(2, 1_100_000)),
        &unique("request"),
    )
    .await;
    assert_ne!(too_large.status(), 200);

    drop(live);
    drop(resumed);
    wait_for("the clients' disconnects", timeout, || async {
        sse.metrics()
            .await
            .contains("zoomstream_sse_disconnects_total{")
    })
    .await;
    wait_for("the batch commit", timeout, || async {
        processor.records_in() >= 2.0
    })
    .await;

    let pages = [
        get_text(
            &client,
            &format!("http://127.0.0.1:{ingest_metrics}/metrics"),
        )
        .await,
        processor
            .metrics()
            .expect("the processor serves its metrics"),
        sse.metrics().await,
    ];
    let mut exported = BTreeSet::new();
    let mut histograms = BTreeSet::new();
    for page in &pages {
        let (all, hist) = families(page);
        exported.extend(all.into_iter().filter(|n| n.starts_with("zoomstream_")));
        histograms.extend(hist);
    }

    let dashboards: Vec<PathBuf> = std::fs::read_dir(deploy_dir().join("grafana/dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let mut on_panels = BTreeSet::new();
    for dashboard in &dashboards {
        let json: Value = serde_json::from_slice(&std::fs::read(dashboard).unwrap()).unwrap();
        for panel in json["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                on_panels.extend(names_in(target["expr"].as_str().unwrap_or(""), &histograms));
            }
        }
    }
    let rules =
        std::fs::read_to_string(deploy_dir().join("prometheus/rules/zoomstream.yml")).unwrap();
    // Names in expressions only: annotations may mention commands, not metrics.
    let expressions: String = rules
        .split("expr:")
        .skip(1)
        .map(|after| after.split("labels:").next().unwrap_or(""))
        .collect();
    let in_rules = names_in(&expressions, &histograms);

    let unknown_on_panels: Vec<_> = on_panels.difference(&exported).collect();
    assert!(
        unknown_on_panels.is_empty(),
        "panels query metrics no binary exports: {unknown_on_panels:?} (exported: {exported:?})"
    );
    let unknown_in_rules: Vec<_> = in_rules.difference(&exported).collect();
    assert!(
        unknown_in_rules.is_empty(),
        "rules query metrics no binary exports: {unknown_in_rules:?} (exported: {exported:?})"
    );
    let without_panel: Vec<_> = exported.difference(&on_panels).collect();
    assert!(
        without_panel.is_empty(),
        "metrics without a panel: {without_panel:?}"
    );
    // Ingest, processor and SSE metrics all took part.
    for service in [
        "zoomstream_ingest_",
        "zoomstream_processor_",
        "zoomstream_sse_",
    ] {
        assert!(
            exported.iter().any(|n| n.starts_with(service)),
            "{service}*: {exported:?}"
        );
    }
    assert!(!in_rules.is_empty());
}
