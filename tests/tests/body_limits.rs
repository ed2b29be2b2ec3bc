//! Every body under ingest's limit lands: the HTTP limit, the producers' `message.max.bytes`,
//! the topics' `max.message.bytes` and the processors' fetch sizes agree, so a signed webhook of
//! 1.5 MiB or of exactly the limit is answered 200, stored byte-exact and routed; one byte more
//! is 413. An existing raw topic too small for the limit stops ingest with the fix named.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use zoomstream_runtime::kafka::{ensure_topics, KafkaArgs, TopicSpec};
use zoomstream_runtime::record_size::{max_record_bytes, DEFAULT_MAX_BODY_BYTES};
use zoomstream_schemas::raw::headers;
use zoomstream_tests::*;

const SECRET: &str = "zoom-app-secret";

/// A meeting.started of exactly `size` bytes: the fixture with its topic padded.
fn meeting_started_of(size: usize) -> Vec<u8> {
    let mut envelope: Value = serde_json::from_slice(&fixture("meeting.started.json")).unwrap();
    envelope["payload"]["object"]["topic"] = json!("");
    let base = serde_json::to_vec(&envelope).unwrap().len();
    envelope["payload"]["object"]["topic"] = json!("a".repeat(size - base));
    let body = serde_json::to_vec(&envelope).unwrap();
    assert_eq!(body.len(), size);
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_up_to_the_limit_land_byte_exact_and_are_routed_larger_ones_get_413() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    let sources = TestSources::shipped();
    let ingest = IngestApp::start(ingest_config(&brokers, &raw_topic, SECRET)).await;
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;
    let processor = ProcessorApp::start(processor_config(&brokers, &raw_topic, &sources)).await;
    let url = ingest.url("/webhooks/zoom");

    let sizes = [1024 * 1024 + 512 * 1024, DEFAULT_MAX_BODY_BYTES];
    for size in sizes {
        let signed = sign(SECRET, &meeting_started_of(size));
        let response = post_signed(&client, &url, &signed, &format!("size-{size}")).await;
        assert_eq!(response.status(), 200, "a body of {size} bytes");
    }
    // One byte over: refused on its Content-Length, before a byte of the body is read. The
    // connection then closes, so a client still writing the body may see a broken pipe instead
    // of the answer: the request goes over a raw connection that reads the answer first.
    let over = sign(SECRET, &meeting_started_of(DEFAULT_MAX_BODY_BYTES + 1));
    let answer = refused_on_its_length(&url, &over).await;
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "one byte over the limit: {answer}"
    );
    assert!(answer.contains("\"payload_too_large\""), "{answer}");

    let raw = read_topic_until(&brokers, &raw_topic, Duration::from_secs(60), |r| {
        r.len() >= sizes.len()
    });
    assert_eq!(raw.len(), sizes.len(), "the 413 published nothing");
    for size in sizes {
        let record = raw
            .iter()
            .find(|r| r.header(headers::ZM_REQUEST_ID) == Some(format!("size-{size}")))
            .unwrap_or_else(|| panic!("the {size}-byte body is not on the raw topic"));
        assert_eq!(
            record.payload.as_deref(),
            Some(meeting_started_of(size).as_slice()),
            "the {size}-byte body byte-exact"
        );
    }

    // The processor fetched both and wrote both source records (each as large as its body).
    let source = sources.source("meeting-started");
    let routed = read_topic_until(&brokers, &source.topic, Duration::from_secs(60), |r| {
        r.len() >= sizes.len()
    });
    let mut topic_lengths: Vec<usize> = routed
        .iter()
        .map(|r| {
            decode(r, &source.schema)["topic"]
                .as_str()
                .expect("a topic")
                .len()
        })
        .collect();
    topic_lengths.sort_unstable();
    assert_eq!(topic_lengths.len(), sizes.len());
    assert!(
        topic_lengths[1] > DEFAULT_MAX_BODY_BYTES - 1024,
        "the largest record routed whole: {topic_lengths:?}"
    );
    figures!(
        "body limits: bodies of {} and {} bytes answered 200, stored byte-exact and routed; {} bytes answered 413",
        sizes[0],
        sizes[1],
        DEFAULT_MAX_BODY_BYTES + 1
    );
    processor.stop().await.expect("the processor stops cleanly");
    ingest.stop().await.expect("ingest stops cleanly");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_raw_topic_too_small_for_the_limit_stops_ingest_with_the_fix_named() {
    let brokers = brokers();
    let raw_topic = unique("raw");
    // Created without configs: the broker's default max.message.bytes (1048588).
    ensure_topics(
        &KafkaArgs::new(&brokers),
        &[TopicSpec {
            name: raw_topic.clone(),
            partitions: 1,
            replication_factor: 1,
            configs: Vec::new(),
        }],
    )
    .await
    .unwrap();
    let env = |max_body: usize| {
        vec![
            ("ZOOMSTREAM_KAFKA_BROKERS", brokers.clone()),
            ("ZOOMSTREAM_ZOOM_SECRET_TOKEN", SECRET.to_owned()),
            ("ZOOMSTREAM_RAW_TOPIC", raw_topic.clone()),
            ("ZOOMSTREAM_MAX_BODY_BYTES", max_body.to_string()),
        ]
    };

    let mut ingest = IngestProcess::spawn(&env(DEFAULT_MAX_BODY_BYTES));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = ingest.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "ingest kept running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success(), "ingest stopped with an error");
    let log = ingest.log_text();
    let fix = format!(
        "--entity-name {raw_topic} --add-config max.message.bytes={}",
        max_record_bytes(DEFAULT_MAX_BODY_BYTES)
    );
    assert!(log.contains(&fix), "the fix is named: {log}");
    assert!(
        log.contains("stores records of at most 1048588 bytes"),
        "{log}"
    );

    // A limit the topic can store: ingest runs on the same topic.
    let fitting = 1_048_588 - 64 * 1024;
    let ingest = IngestProcess::spawn(&env(fitting));
    let client = reqwest::Client::new();
    ingest.wait_ready(&client).await;
    let signed = sign(SECRET, &meeting_started_of(fitting));
    let response = post_signed(&client, &ingest.url("/webhooks/zoom"), &signed, "fits").await;
    assert_eq!(response.status(), 200);
}

/// Sends `signed`'s headers with its Content-Length, and the answer ingest gives before the body.
async fn refused_on_its_length(url: &str, signed: &Signed) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let url = reqwest::Url::parse(url).unwrap();
    let address = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: ingest\r\ncontent-type: application/json\r\n\
         x-zm-request-timestamp: {}\r\nx-zm-signature: {}\r\ncontent-length: {}\r\n\r\n",
        url.path(),
        signed.timestamp,
        signed.signature,
        signed.body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Until the JSON body is complete or the server closes (it need not close at once).
    let mut answer = Vec::new();
    let read = async {
        let mut chunk = [0; 4096];
        while !answer.ends_with(b"}") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("ingest answers before the body");
    String::from_utf8_lossy(&answer).into_owned()
}
