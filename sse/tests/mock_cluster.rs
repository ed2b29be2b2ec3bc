//! The SSE service on librdkafka's in-process mock cluster, as `zoomstream dev` would run it:
//! no broker to install. (The real-broker tests are in tests/tests/sse.rs.) Records are written
//! as the processor writes them; a client reads them from the beginning, then live, then
//! resumes from its last id.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer as _};
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use zoomstream_runtime::shutdown::ShutdownToken;
use zoomstream_schemas::avro::Encoder;
use zoomstream_schemas::mapping::{self, RawEvent};
use zoomstream_schemas::raw::{self, headers};
use zoomstream_schemas::sources::{self, Source};
use zoomstream_schemas::App;

const TOKEN: &str = "mock-token";

fn sources_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/sources.toml")
}

fn produce(producer: &BaseProducer, source: &Source, seq: usize) -> String {
    let envelope = json!({
        "event": "meeting.started",
        "event_ts": 1_626_230_691_572_i64,
        "payload": {"account_id": "acc", "object": {
            "id": "1234567890", "uuid": format!("mock-{seq}"), "host_id": "host",
            "topic": format!("meeting {seq}"), "type": 2, "start_time": "2021-07-13T21:44:51Z",
            "timezone": "UTC", "duration": 60}}
    });
    let event_id = raw::event_id(App::ZOOM, &envelope);
    let raw_event = RawEvent {
        app: App::ZOOM,
        envelope: &envelope,
        event_id: &event_id,
        received_at_ms: None,
    };
    let record = mapping::records(source, &raw_event, "meeting.started")
        .expect("maps")
        .remove(0);
    let bytes = Encoder::single_object(&source.schema)
        .encode(&record.value)
        .expect("encodes");
    let hdrs = OwnedHeaders::new()
        .insert(Header {
            key: headers::EVENT,
            value: Some("meeting.started"),
        })
        .insert(Header {
            key: headers::EVENT_ID,
            value: Some(record.event_id.as_str()),
        });
    producer
        .send(
            BaseRecord::<str, [u8]>::to(&source.topic)
                .partition((seq % 2) as i32)
                .payload(&bytes)
                .headers(hdrs),
        )
        .map_err(|(e, _)| e)
        .expect("enqueue");
    producer
        .flush(Duration::from_secs(10))
        .expect("acknowledged");
    record.event_id
}

/// A raw HTTP/1.0 stream: the body as it comes, split into SSE events (id, event, data).
struct Client {
    stream: TcpStream,
    text: String,
}

impl Client {
    async fn connect(addr: SocketAddr, query: &str, last_id: Option<&str>) -> Client {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut request = format!("GET /sources/meeting-started/events{query} HTTP/1.0\r\nauthorization: Bearer {TOKEN}\r\n");
        if let Some(id) = last_id {
            request.push_str(&format!("last-event-id: {id}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        Client {
            stream,
            text: String::new(),
        }
    }

    /// Reads until `n` events are complete; returns them as (id, event, data).
    async fn events(&mut self, n: usize) -> Vec<(String, String, Value)> {
        loop {
            let events = parse(&self.text);
            if events.len() >= n {
                return events;
            }
            let mut buf = vec![0; 16 * 1024];
            let read = tokio::time::timeout(Duration::from_secs(30), self.stream.read(&mut buf))
                .await
                .expect("events in time")
                .unwrap();
            assert!(read > 0, "the stream ended: {}", self.text);
            self.text
                .push_str(std::str::from_utf8(&buf[..read]).unwrap());
        }
    }
}

fn parse(text: &str) -> Vec<(String, String, Value)> {
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    body.split("\n\n")
        .filter(|block| block.contains("\nid: ") || block.starts_with("id: "))
        .filter(|block| text.contains(&format!("{block}\n\n")))
        .map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
                    .unwrap_or_default()
            };
            (
                field("id"),
                field("event"),
                serde_json::from_str(&field("data")).expect("JSON data"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_resume_on_the_mock_cluster() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let file = sources::load(&sources_path()).unwrap();
    let source = file.get("meeting-started").unwrap().clone();
    cluster.create_topic(&source.topic, 2, 1).expect("topic");
    let producer: BaseProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .create()
        .unwrap();

    let mut config = zoomstream_sse::Config::new(cluster.bootstrap_servers(), sources_path());
    config.token = Some(TOKEN.to_owned().into());
    let sse = zoomstream_sse::Sse::build(config).await.expect("builds");
    let addr = sse.local_addr();
    let shutdown = ShutdownToken::new();
    let task = tokio::spawn(sse.run_until(shutdown.clone()));

    let first = [
        produce(&producer, &source, 0),
        produce(&producer, &source, 1),
    ];
    let mut client = Client::connect(addr, "?from=earliest", None).await;
    let events = client.events(2).await;
    let mut ids: Vec<&str> = events
        .iter()
        .map(|(_, _, data)| data["event_id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = first.iter().map(String::as_str).collect::<Vec<_>>();
    want.sort();
    assert_eq!(ids, want);
    assert!(events
        .iter()
        .all(|(_, event, _)| event == "meeting.started"));
    let last_id = events[1].0.clone();
    drop(client);

    let later = produce(&producer, &source, 2);
    let mut resumed = Client::connect(addr, "", Some(&last_id)).await;
    let events = resumed.events(1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].2["event_id"], later.as_str());
    assert_eq!(events[0].2["topic"], "meeting 2");

    shutdown.cancel();
    task.await.unwrap().expect("stops cleanly");
}
