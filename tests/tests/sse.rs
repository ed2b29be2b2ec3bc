//! The SSE service against a real broker: a client sees the live events of its source only
//! (fed through the real ingest and processor); tokens guard every source; a reconnect with
//! Last-Event-ID — after a dropped connection, and after a restart of the service binary —
//! gets exactly the missing events; a client that reads nothing is cut off while a fast one
//! keeps receiving; 200 clients of one source get the same events from one Kafka consumer; and
//! a headless Chromium's `EventSource` receives a posted webhook's record.
//!
//! Source records are fed either through ingest + processor from signed webhooks, or produced
//! directly to a source topic exactly as the processor writes them (the schemas crate's
//! mapping, single-object Avro, the processor's headers), which lets a test control partitions,
//! sizes and timing.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::task::JoinHandle;
use zoomstream_runtime::shutdown::ShutdownToken;
use zoomstream_schemas::avro::Encoder;
use zoomstream_schemas::mapping::{self, RawEvent};
use zoomstream_schemas::raw::{self, headers};
use zoomstream_schemas::sources::Source;
use zoomstream_schemas::App;
use zoomstream_tests::*;

const TOKEN: &str = "sse-test-token-4f7c";
const ZOOM_SECRET: &str = "zoom-app-secret";

const SOURCES: &str = r#"
[[source]]
name = "meeting-started"
app = "zoom"
events = ["meeting.started"]
topic = "zoom.meeting-started"
schema = "meeting.avsc"

[[source]]
name = "meeting-ended"
app = "zoom"
events = ["meeting.ended"]
topic = "zoom.meeting-ended"
schema = "meeting.avsc"
"#;

// ------------------------------------------------------------------------------------------
// The service under test

/// An in-process SSE service on a free port; stops when dropped.
struct SseApp {
    addr: SocketAddr,
    shutdown: ShutdownToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl SseApp {
    async fn start(config: zoomstream_sse::Config) -> SseApp {
        if std::env::var_os("ZOOMSTREAM_TEST_LOG").is_some() {
            zoomstream_runtime::telemetry::init_logging();
        }
        let sse = zoomstream_sse::Sse::build(config)
            .await
            .expect("the SSE service builds");
        let addr = sse.local_addr();
        let shutdown = ShutdownToken::new();
        let task = Some(tokio::spawn(sse.run_until(shutdown.clone())));
        SseApp {
            addr,
            shutdown,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn events_url(&self, source: &str) -> String {
        self.url(&format!("/sources/{source}/events"))
    }

    async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .unwrap()
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        self.task
            .take()
            .unwrap()
            .await
            .expect("sse task")
            .expect("sse stops cleanly");
    }
}

impl Drop for SseApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn sse_config(sources: &TestSources) -> zoomstream_sse::Config {
    let mut config = zoomstream_sse::Config::new(brokers(), &sources.path);
    config.token = Some(TOKEN.to_owned().into());
    // Short, so that a closed client is noticed fast (the next keep-alive write fails).
    config.keep_alive_ms = 300;
    config.retry_ms = 500;
    config
}

/// A sample value from a Prometheus page: the line of `name` carrying every label given.
fn sample(page: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| v.parse().expect("a number"))
        .unwrap_or(0.0)
}

// ------------------------------------------------------------------------------------------
// An SSE client

#[derive(Debug, Clone, PartialEq)]
struct SseEvent {
    id: Option<String>,
    event: String,
    data: String,
}

impl SseEvent {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("data is not JSON ({e}): {}", self.data))
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Event(SseEvent),
    Comment(String),
    Retry(u64),
}

/// The `text/event-stream` format, as the HTML standard parses it (enough of it: every field
/// this service sends, comments kept for the tests).
#[derive(Default)]
struct Parser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
    id: Option<String>,
}

impl Parser {
    fn feed(&mut self, bytes: &[u8]) -> Vec<Item> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(nl) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let line =
                String::from_utf8(self.buf[start..start + nl].to_vec()).expect("utf-8 stream");
            start += nl + 1;
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if line.is_empty() {
                if !self.data.is_empty() || self.event.is_some() || self.id.is_some() {
                    out.push(Item::Event(SseEvent {
                        id: self.id.take(),
                        event: self.event.take().unwrap_or_else(|| "message".into()),
                        data: std::mem::take(&mut self.data).join("\n"),
                    }));
                }
                continue;
            }
            if let Some(comment) = line.strip_prefix(':') {
                out.push(Item::Comment(comment.trim_start().to_owned()));
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => self.event = Some(value.to_owned()),
                "data" => self.data.push(value.to_owned()),
                "id" => self.id = Some(value.to_owned()),
                "retry" => out.push(Item::Retry(value.parse().expect("numeric retry"))),
                other => panic!("unexpected field {other:?}"),
            }
        }
        self.buf.drain(..start);
        out
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A streaming client (reqwest), as a program would read the stream.
struct SseClient {
    body: ByteStream,
    parser: Parser,
    queue: VecDeque<Item>,
    last_id: Option<String>,
    ended: bool,
}

enum Auth<'a> {
    None,
    Bearer(&'a str),
    Query(&'a str),
}

async fn request(url: &str, auth: Auth<'_>, last_id: Option<&str>) -> reqwest::Response {
    let client = reqwest::Client::new();
    let mut request = match auth {
        Auth::Query(token) => {
            let sep = if url.contains('?') { '&' } else { '?' };
            client.get(format!("{url}{sep}access_token={token}"))
        }
        _ => client.get(url),
    };
    if let Auth::Bearer(token) = auth {
        request = request.bearer_auth(token);
    }
    if let Some(id) = last_id {
        request = request.header("last-event-id", id);
    }
    request
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("the SSE service answers")
}

impl SseClient {
    async fn connect(url: &str, last_id: Option<&str>) -> SseClient {
        SseClient::connect_with(url, Auth::Bearer(TOKEN), last_id).await
    }

    async fn connect_with(url: &str, auth: Auth<'_>, last_id: Option<&str>) -> SseClient {
        let response = request(url, auth, last_id).await;
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            status,
            200,
            "{url}: {}",
            response.text().await.unwrap_or_default()
        );
        assert_eq!(content_type.as_deref(), Some("text/event-stream"));
        SseClient {
            body: Box::pin(response.bytes_stream()),
            parser: Parser::default(),
            queue: VecDeque::new(),
            last_id: last_id.map(str::to_owned),
            ended: false,
        }
    }

    /// The next item; `None` once the stream ended. Panics after `timeout`.
    async fn next(&mut self, timeout: Duration) -> Option<Item> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(item) = self.queue.pop_front() {
                if let Item::Event(SseEvent { id: Some(id), .. }) = &item {
                    self.last_id = Some(id.clone());
                }
                return Some(item);
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => panic!("no SSE item within {timeout:?}"),
                Ok(None) | Ok(Some(Err(_))) => self.ended = true,
                Ok(Some(Ok(bytes))) => {
                    let items = self.parser.feed(&bytes);
                    self.queue.extend(items);
                }
            }
        }
    }

    async fn next_event(&mut self, timeout: Duration) -> SseEvent {
        loop {
            match self.next(timeout).await {
                Some(Item::Event(event)) => return event,
                Some(_) => continue,
                None => panic!("the stream ended while an event was expected"),
            }
        }
    }

    async fn events(&mut self, n: usize, timeout: Duration) -> Vec<SseEvent> {
        let mut events = Vec::with_capacity(n);
        while events.len() < n {
            events.push(self.next_event(timeout).await);
        }
        events
    }

    /// Reads until the `: live` comment: from then on, events come from the live feed.
    async fn wait_live(&mut self) -> Vec<Item> {
        let mut before = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                Instant::now() < deadline,
                "the stream did not go live within 60 s: {before:?}"
            );
            match self.next(Duration::from_secs(30)).await {
                Some(Item::Comment(c)) if c == "live" => return before,
                Some(item) => before.push(item),
                None => panic!("the stream ended before going live: {before:?}"),
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Feeding source topics directly, as the processor writes them

/// A meeting.started webhook made unique by `seq` (its uuid and topic), `pad` bytes bigger.
fn meeting_webhook(seq: usize, pad: usize) -> Value {
    let mut envelope: Value = serde_json::from_slice(&fixture("meeting.started.json")).unwrap();
    let object = &mut envelope["payload"]["object"];
    object["uuid"] = format!("sse-meeting-{seq}").into();
    object["topic"] = format!("meeting {seq}").into();
    if pad > 0 {
        object["agenda"] = "x".repeat(pad).into();
    }
    envelope
}

/// Writes records `seqs` of the meeting-started source to its topic, record `seq` on
/// partition `seq % partitions`, exactly as the processor would (mapping, single-object Avro,
/// headers). Returns the event id of each, by seq.
fn produce_meetings(
    producer: &BaseProducer,
    source: &Source,
    seqs: std::ops::Range<usize>,
    partitions: i32,
    pad: usize,
) -> HashMap<String, usize> {
    let encoder = Encoder::single_object(&source.schema);
    let mut ids = HashMap::new();
    for seq in seqs {
        let envelope = meeting_webhook(seq, pad);
        let event_id = raw::event_id(App::Zoom, &envelope);
        let raw_event = RawEvent {
            app: App::Zoom,
            envelope: &envelope,
            event_id: &event_id,
            received_at_ms: Some(1_700_000_000_000),
        };
        let records = mapping::records(source, &raw_event, "meeting.started").expect("maps");
        assert_eq!(records.len(), 1);
        let record = &records[0];
        let bytes = encoder.encode(&record.value).expect("encodes");
        let hdrs = OwnedHeaders::new()
            .insert(Header {
                key: headers::APP,
                value: Some("zoom"),
            })
            .insert(Header {
                key: headers::EVENT,
                value: Some(record.event.as_str()),
            })
            .insert(Header {
                key: headers::EVENT_ID,
                value: Some(record.event_id.as_str()),
            })
            .insert(Header {
                key: "zoomstream-source",
                value: Some(source.name.as_str()),
            });
        let key = record.key.clone().unwrap_or_default();
        let mut message = BaseRecord::<str, [u8]>::to(&source.topic)
            .partition((seq % partitions as usize) as i32)
            .key(&key)
            .payload(&bytes)
            .headers(hdrs);
        loop {
            match producer.send(message) {
                Ok(()) => break,
                Err((err, back)) => {
                    assert!(
                        matches!(
                            err,
                            rdkafka::error::KafkaError::MessageProduction(
                                rdkafka::types::RDKafkaErrorCode::QueueFull
                            )
                        ),
                        "{err}"
                    );
                    producer.poll(Duration::from_millis(10));
                    message = back;
                }
            }
        }
        ids.insert(record.event_id.clone(), seq);
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("records acknowledged");
    ids
}

/// The seq of each event (by its record's event id), checking each was produced.
fn seqs(events: &[SseEvent], ids: &HashMap<String, usize>) -> Vec<usize> {
    events
        .iter()
        .map(|e| {
            assert_eq!(e.event, "meeting.started");
            let id = e.json()["event_id"].as_str().expect("event_id").to_owned();
            *ids.get(&id)
                .unwrap_or_else(|| panic!("an event nobody produced: {id}"))
        })
        .collect()
}

fn decode_id(id: &str) -> HashMap<i32, i64> {
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id)
        .expect("base64url id");
    String::from_utf8(text)
        .unwrap()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (p, o) = pair.split_once(':').expect("partition:offset");
            (p.parse().unwrap(), o.parse().unwrap())
        })
        .collect()
}

async fn direct_setup(partitions: i32) -> (TestSources, Source, BaseProducer) {
    let sources = TestSources::new(SOURCES);
    let source = sources.source("meeting-started").clone();
    create_topic(&brokers(), &source.topic, partitions).await;
    (sources, source, producer(&brokers()))
}

// ------------------------------------------------------------------------------------------
/// Ingest (Zoom app) and a processor over a raw topic of their own, ready for webhooks.
async fn start_pipeline(brokers: &str, sources: &TestSources) -> (IngestApp, ProcessorApp) {
    let raw_topic = unique("raw");
    let mut ingest_config = zoomstream_ingest::Config::new(brokers);
    ingest_config.zoom_secret_token = Some(ZOOM_SECRET.to_owned().into());
    ingest_config.raw_topic = raw_topic.clone();
    ingest_config.raw_topic_partitions = 3;
    let ingest = IngestApp::start(ingest_config).await;
    ingest.wait_ready(&reqwest::Client::new()).await;
    let processor = ProcessorApp::start(processor_config(brokers, &raw_topic, sources)).await;
    (ingest, processor)
}

// Tests

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
    let mut started = SseClient::connect(&sse.events_url("meeting-started"), None).await;
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

    // Unknown sources are 404, with or without a token.
    for auth in [Auth::None, Auth::Bearer("global-token-1")] {
        let response = request(&sse.events_url("no-such-source"), auth, None).await;
        assert_eq!(response.status(), 404);
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
        6.0,
        "{page}"
    );
    assert_eq!(
        sample(
            &page,
            "zoomstream_sse_requests_total",
            &[("outcome", "unknown_source")]
        ),
        2.0
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
    let mut first = SseClient::connect(&format!("{url}?from=earliest"), None).await;
    let seen_first = seqs(&first.events(4, timeout).await, &ids);
    let last_id = first.last_id.clone().expect("an id");
    drop(first); // the connection drops after 4 of 9

    ids.extend(produce_meetings(&producer, &source, 9..15, 3, 0));
    // Resumes from the Kafka offsets in the id: the 5 it missed of the first 9, the 6 new.
    let mut second = SseClient::connect(&url, Some(&last_id)).await;
    let caught_up = seqs(&second.events(11, timeout).await, &ids);
    // A new client starts at the end (from=latest is the default) ...
    let mut newcomer = SseClient::connect(&url, None).await;
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
    let mut third = SseClient::connect(&format!("{url}?last_event_id={last_id}"), None).await;
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

/// The service binary, as an operator runs it.
struct SseProcess {
    child: Child,
    port: u16,
}

impl SseProcess {
    fn spawn(sources: &TestSources, port: u16, log: &PathBuf) -> SseProcess {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let child = Command::new(binary("zoomstream-sse"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ZOOMSTREAM_SSE_LISTEN", format!("127.0.0.1:{port}"))
            .env("ZOOMSTREAM_SOURCES", &sources.path)
            .env("ZOOMSTREAM_KAFKA_BROKERS", brokers())
            .env("ZOOMSTREAM_SSE_TOKEN", TOKEN)
            .env("ZOOMSTREAM_SSE_KEEP_ALIVE_MS", "300")
            .env("RUST_LOG", "info,zoomstream_sse=debug")
            .stdout(out)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting zoomstream-sse");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "zoomstream-sse did not listen on {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        SseProcess { child, port }
    }

    fn url(&self, source: &str) -> String {
        format!("http://127.0.0.1:{}/sources/{source}/events", self.port)
    }

    /// SIGTERM; the exit status once it stopped.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "zoomstream-sse did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SseProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconnect_after_a_restart_of_the_service_gets_exactly_the_missing_events() {
    let (sources, source, producer) = direct_setup(3).await;
    let port = free_port();
    let log = std::env::temp_dir().join(format!("{}-sse.log", sources.prefix));
    let mut service = SseProcess::spawn(&sources, port, &log);
    let timeout = Duration::from_secs(30);

    let mut ids = produce_meetings(&producer, &source, 0..5, 3, 0);
    let mut client = SseClient::connect(
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
    let service = SseProcess::spawn(&sources, port, &log);
    let last_id = client.last_id.clone().expect("an id");
    let mut resumed = SseClient::connect(&service.url("meeting-started"), Some(&last_id)).await;
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

/// A raw HTTP/1.0 client with a tiny receive buffer, to play a client that stops reading.
struct RawClient {
    stream: tokio::net::TcpStream,
    parser: Parser,
    items: Vec<Item>,
}

impl RawClient {
    async fn connect(addr: SocketAddr, path: &str) -> RawClient {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stream = socket.connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.0\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\naccept: text/event-stream\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut client = RawClient {
            stream,
            parser: Parser::default(),
            items: Vec::new(),
        };
        // The head, then the body up to `: live`.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0];
            client
                .stream
                .read_exact(&mut byte)
                .await
                .expect("response head");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(
            head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
            "{head}"
        );
        while !client.items.contains(&Item::Comment("live".into())) {
            assert!(
                client.read_some(Duration::from_secs(30)).await,
                "the stream ended before going live"
            );
        }
        client
    }

    /// Reads what is there; false at the end of the stream (or a reset connection).
    async fn read_some(&mut self, timeout: Duration) -> bool {
        let mut buf = vec![0; 64 * 1024];
        match tokio::time::timeout(timeout, self.stream.read(&mut buf))
            .await
            .expect("data or the end in time")
        {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                let items = self.parser.feed(&buf[..n]);
                self.items.extend(items);
                true
            }
        }
    }

    fn events(&self) -> Vec<SseEvent> {
        self.items
            .iter()
            .filter_map(|i| match i {
                Item::Event(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_reads_nothing_is_cut_off_while_a_fast_one_keeps_receiving() {
    let (sources, source, producer) = direct_setup(1).await;
    let mut config = sse_config(&sources);
    config.client_buffer = 32;
    config.slow_client_timeout_ms = 5_000;
    let sse = SseApp::start(config).await;
    let path = "/sources/meeting-started/events";

    let mut fast = SseClient::connect(&sse.events_url("meeting-started"), None).await;
    fast.wait_live().await;
    // `slow` stops reading for a while, then reads again; `stuck` never reads again.
    let mut slow = RawClient::connect(sse.addr, path).await;
    let mut stuck = RawClient::connect(sse.addr, path).await;

    // The fast client reads everything as it comes.
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        loop {
            match fast.next(Duration::from_secs(120)).await {
                Some(Item::Event(event)) => {
                    if seen_tx.send(event).is_err() {
                        return;
                    }
                }
                Some(_) => {}
                None => panic!("the fast client's stream ended"),
            }
        }
    });

    let metrics_url = sse.url("/metrics");
    let slow_disconnects = move || {
        let url = metrics_url.clone();
        async move {
            let page = reqwest::get(url)
                .await
                .expect("metrics")
                .text()
                .await
                .unwrap();
            sample(
                &page,
                "zoomstream_sse_disconnects_total",
                &[("source", "meeting-started"), ("reason", "slow_client")],
            )
        }
    };
    // The slow client reads again as soon as the service found both silent clients slow (well
    // within the slow-client timeout): what was queued for it, then the reason, then the end.
    let check = slow_disconnects.clone();
    let slow_reader = tokio::spawn(async move {
        wait_for(
            "both silent clients to be found slow",
            Duration::from_secs(120),
            || {
                let check = check.clone();
                async move { check().await >= 2.0 }
            },
        )
        .await;
        while slow.read_some(Duration::from_secs(30)).await {}
        slow
    });

    // Big records, a few at a time, until both silent clients are found slow: their socket
    // buffers, the server's and their 32-event queues fill up (a few MB), while the fast client
    // keeps pace.
    let mut ids = HashMap::new();
    let mut produced = 0;
    let mut fast_seen = Vec::new();
    while slow_disconnects().await < 2.0 {
        assert!(
            produced < 3000,
            "no client was found slow after {produced} records of 32 KB"
        );
        ids.extend(produce_meetings(
            &producer,
            &source,
            produced..produced + 5,
            1,
            32 * 1024,
        ));
        produced += 5;
        while fast_seen.len() < produced {
            let event = tokio::time::timeout(Duration::from_secs(60), seen_rx.recv())
                .await
                .expect("the fast client keeps receiving")
                .unwrap();
            fast_seen.push(event);
        }
    }
    // After the slow ones were dropped the fast one still gets new records.
    ids.extend(produce_meetings(
        &producer,
        &source,
        produced..produced + 5,
        1,
        0,
    ));
    produced += 5;
    while fast_seen.len() < produced {
        let event = tokio::time::timeout(Duration::from_secs(60), seen_rx.recv())
            .await
            .expect("more events")
            .unwrap();
        fast_seen.push(event);
    }
    assert_eq!(
        seqs(&fast_seen, &ids),
        (0..produced).collect::<Vec<_>>(),
        "the fast client got every record, in order"
    );

    let slow = slow_reader.await.expect("the slow client reads to the end");
    let slow_events = slow.events();
    let farewell = slow_events.last().expect("events").clone();
    assert_eq!(
        farewell.event,
        zoomstream_sse::DISCONNECTED_EVENT,
        "the stream ends with the reason"
    );
    assert_eq!(farewell.json()["reason"], "slow_client");
    let slow_records = &slow_events[..slow_events.len() - 1];
    let got = seqs(slow_records, &ids);
    assert!(
        got.len() < produced,
        "the slow client was cut before the end ({} of {produced})",
        got.len()
    );
    assert_eq!(got, (0..got.len()).collect::<Vec<_>>());

    // ... and resumes with its last id: exactly the rest.
    let last_id = slow_records
        .last()
        .and_then(|e| e.id.clone())
        .expect("an id");
    let mut resumed = SseClient::connect(&sse.events_url("meeting-started"), Some(&last_id)).await;
    let rest = seqs(
        &resumed
            .events(produced - got.len(), Duration::from_secs(60))
            .await,
        &ids,
    );
    assert_eq!(rest, (got.len()..produced).collect::<Vec<_>>());
    drop(resumed);

    // The stuck client never read: the server cut its connection when the timeout ran out,
    // so only the fast client is left connected.
    wait_for(
        "the stuck client's connection to be cut",
        Duration::from_secs(30),
        || async {
            sample(
                &sse.metrics().await,
                "zoomstream_sse_connected_clients",
                &[("source", "meeting-started")],
            ) == 1.0
        },
    )
    .await;
    let cut = tokio::time::timeout(Duration::from_secs(30), async {
        while stuck.read_some(Duration::from_secs(30)).await {}
    })
    .await;
    assert!(cut.is_ok(), "the stuck client's socket ends");
    reader.abort();
    sse.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_clients_of_one_source_get_the_same_events_from_one_consumer() {
    const CLIENTS: usize = 200;
    const RECORDS: usize = 30;
    let (sources, source, producer) = direct_setup(3).await;
    let mut config = sse_config(&sources);
    config.consumer_idle_ms = 500;
    let sse = SseApp::start(config).await;
    let url = format!("{}?from=earliest", sse.events_url("meeting-started"));

    let mut connecting = Vec::new();
    for _ in 0..CLIENTS {
        let url = url.clone();
        connecting.push(tokio::spawn(async move {
            let mut client = SseClient::connect(&url, None).await;
            client.wait_live().await;
            client
        }));
    }
    let mut clients = Vec::new();
    for c in connecting {
        clients.push(c.await.expect("a client connects"));
    }
    let ids = Arc::new(produce_meetings(&producer, &source, 0..RECORDS, 3, 0));

    let mut reading = Vec::new();
    for mut client in clients {
        reading.push(tokio::spawn(async move {
            let events = client.events(RECORDS, Duration::from_secs(60)).await;
            (client, events)
        }));
    }
    let mut streams = Vec::new();
    let mut clients = Vec::new();
    for r in reading {
        let (client, events) = r.await.expect("a client reads");
        clients.push(client);
        streams.push(events);
    }
    let mut first = seqs(&streams[0], &ids);
    for (i, events) in streams.iter().enumerate() {
        assert_eq!(
            events, &streams[0],
            "client {i} got other events, ids or order than client 0"
        );
    }
    first.sort();
    assert_eq!(first, (0..RECORDS).collect::<Vec<_>>());

    let page = sse.metrics().await;
    assert_eq!(
        sample(
            &page,
            "zoomstream_sse_connected_clients",
            &[("source", "meeting-started")]
        ),
        CLIENTS as f64
    );
    assert_eq!(
        sample(
            &page,
            "zoomstream_sse_events_sent_total",
            &[("source", "meeting-started")]
        ),
        (CLIENTS * RECORDS) as f64
    );
    assert_eq!(
        sample(&page, "zoomstream_sse_live_consumers", &[]),
        1.0,
        "one Kafka consumer for all clients"
    );
    assert_eq!(
        sample(
            &page,
            "zoomstream_sse_catchups_total",
            &[("source", "meeting-started")]
        ),
        0.0
    );

    drop(clients);
    wait_for(
        "every client to be seen gone",
        Duration::from_secs(30),
        || async {
            let page = sse.metrics().await;
            sample(
                &page,
                "zoomstream_sse_connected_clients",
                &[("source", "meeting-started")],
            ) == 0.0
                && sample(
                    &page,
                    "zoomstream_sse_disconnects_total",
                    &[("source", "meeting-started"), ("reason", "client_closed")],
                ) == CLIENTS as f64
        },
    )
    .await;
    // With no client left, the source's consumer stops (here after 500 ms).
    wait_for(
        "the live consumer to stop",
        Duration::from_secs(30),
        || async { sample(&sse.metrics().await, "zoomstream_sse_live_consumers", &[]) == 0.0 },
    )
    .await;
    sse.stop().await;
}

// ------------------------------------------------------------------------------------------
// The browser

fn chromium() -> PathBuf {
    let path = std::env::var_os("ZOOMSTREAM_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "{} not found: the browser test needs headless Chromium (Debian: apt-get install -y chromium; \
         .ci/run installs it), or ZOOMSTREAM_CHROMIUM pointing at a Chromium binary",
        path.display()
    );
    path
}

/// What the test page reports back.
#[derive(Default)]
struct Reports {
    open: bool,
    events: Vec<Value>,
    errors: usize,
}

/// Serves the test page at `/` on `port` and collects what it reports to `/report/{what}`.
async fn page_server(port: u16, page: String, reports: Arc<Mutex<Reports>>) -> JoinHandle<()> {
    use axum::routing::{get, post};
    let app = axum::Router::new().route("/", get(move || async move { axum::response::Html(page) })).route(
        "/report/{what}",
        post(move |axum::extract::Path(what): axum::extract::Path<String>, body: String| async move {
            let mut r = reports.lock().unwrap();
            match what.as_str() {
                "open" => r.open = true,
                "event" => r.events.push(serde_json::from_str(&body).expect("a JSON report")),
                _ => r.errors += 1,
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() })
}

/// A process killed when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_event_source_receives_a_posted_webhook() {
    let chromium = chromium();
    let brokers = brokers();
    let sources = TestSources::new(SOURCES);
    let (ingest, processor) = start_pipeline(&brokers, &sources).await;
    let http = reqwest::Client::new();

    // The page is served from another origin than the stream: CORS lets it read.
    let reports = Arc::new(Mutex::new(Reports::default()));
    let page_port = free_port();
    let page_origin = format!("http://127.0.0.1:{page_port}");
    let mut config = sse_config(&sources);
    config.cors_origins = vec![page_origin.clone()];
    let sse = SseApp::start(config).await;
    let template = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser/eventsource.html"),
    )
    .unwrap();
    let stream_url = format!("{}?access_token={TOKEN}", sse.events_url("meeting-started"));
    let page = template.replace("{{STREAM_URL}}", &stream_url);
    let page_task = page_server(page_port, page, reports.clone()).await;

    let profile = std::env::temp_dir().join(format!("{}-chromium", sources.prefix));
    std::fs::create_dir_all(&profile).unwrap();
    let browser = KillOnDrop(
        Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("{page_origin}/"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromium"),
    );

    wait_for(
        "the page's EventSource to open",
        Duration::from_secs(60),
        || async { reports.lock().unwrap().open },
    )
    .await;
    let body = fixture("meeting.started.json");
    let response = post_signed(
        &http,
        &ingest.url("/webhooks/zoom"),
        &sign(ZOOM_SECRET, &body),
        "browser-1",
    )
    .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let event_id = answer["event_id"].as_str().unwrap().to_owned();

    wait_for(
        "the page to receive the record",
        Duration::from_secs(60),
        || async { !reports.lock().unwrap().events.is_empty() },
    )
    .await;
    let report = reports.lock().unwrap().events[0].clone();
    assert_eq!(report["type"], "meeting.started");
    assert_eq!(report["data"]["event_id"], event_id.as_str());
    assert_eq!(report["data"]["topic"], "My Meeting");
    assert_eq!(report["data"]["meeting_id"], "1234567890");
    assert!(
        !report["id"].as_str().unwrap_or_default().is_empty(),
        "the browser saw the event id: {report}"
    );
    assert!(
        report["dom"]
            .as_str()
            .unwrap_or_default()
            .contains("My Meeting"),
        "the page shows it: {report}"
    );
    assert_eq!(
        reports.lock().unwrap().errors,
        0,
        "the EventSource reported no error"
    );

    drop(browser);
    page_task.abort();
    sse.stop().await;
    processor.stop().await.expect("processor stops");
    ingest.stop().await.expect("ingest stops");
}
