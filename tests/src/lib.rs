//! Helpers for the end-to-end tests: the broker under test, unique names, signing as Zoom
//! does, starting the real services (in-process apps on port 0, or the real binaries) and
//! reading topics back.
//!
//! The broker comes from `ZOOMSTREAM_KAFKA_BROKERS`, which `scripts/test` sets after starting
//! nisshi; tests that take a broker away start their own from `ZOOMSTREAM_NISSHI_BIN`.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::task::JoinHandle;
use zoomstream_runtime::kafka::{ensure_topics, KafkaArgs, TopicSpec};
use zoomstream_runtime::shutdown::ShutdownToken;

/// The broker every test talks to.
pub fn brokers() -> String {
    std::env::var("ZOOMSTREAM_KAFKA_BROKERS").expect(
        "ZOOMSTREAM_KAFKA_BROKERS is not set: run the tests with scripts/test, which starts a broker",
    )
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn create_topic(brokers: &str, name: &str, partitions: i32) {
    ensure_topics(
        &KafkaArgs::new(brokers),
        &[TopicSpec {
            name: name.to_owned(),
            partitions,
            replication_factor: 1,
        }],
    )
    .await
    .expect("creating a test topic");
}

/// The directory of the fixtures copied from Zoom's documentation.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/zoom")
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name))
        .unwrap_or_else(|e| panic!("reading fixture {name}: {e}"))
}

/// The webhook fixtures (event payloads, not the headers example or the validation exchange).
pub fn event_fixtures() -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json") && !n.starts_with('_') && !n.starts_with("endpoint."))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| (n.clone(), fixture(&n)))
        .collect()
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A request exactly as Zoom sends it: body, timestamp and signature over both.
pub struct Signed {
    pub body: Vec<u8>,
    pub timestamp: String,
    pub signature: String,
}

pub fn sign(secret: &str, body: &[u8]) -> Signed {
    sign_at(secret, body, now_secs())
}

pub fn sign_at(secret: &str, body: &[u8], timestamp: u64) -> Signed {
    let timestamp = timestamp.to_string();
    let signature = zoomstream_ingest::verify::sign(secret, &timestamp, body);
    Signed {
        body: body.to_vec(),
        timestamp,
        signature,
    }
}

/// Posts a signed webhook with Zoom's headers.
pub async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    signed: &Signed,
    request_id: &str,
) -> reqwest::Response {
    client
        .post(url)
        .header("content-type", "application/json; charset=utf-8")
        .header("user-agent", "Zoom Marketplace/1.0a")
        .header("x-zm-request-timestamp", &signed.timestamp)
        .header("x-zm-signature", &signed.signature)
        .header("x-zm-request-id", request_id)
        .body(signed.body.clone())
        .send()
        .await
        .expect("ingest answers")
}

/// An in-process ingest service on a free port; stops when dropped.
pub struct IngestApp {
    pub addr: SocketAddr,
    pub shutdown: ShutdownToken,
    pub task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl IngestApp {
    pub async fn start(config: zoomstream_ingest::Config) -> IngestApp {
        let ingest = zoomstream_ingest::Ingest::build(config)
            .await
            .expect("ingest builds");
        let addr = ingest.local_addr();
        let shutdown = ShutdownToken::new();
        let task = Some(tokio::spawn(ingest.run_until(shutdown.clone())));
        IngestApp {
            addr,
            shutdown,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Waits until /readyz says the broker is reachable and the raw topic exists.
    pub async fn wait_ready(&self, client: &reqwest::Client) {
        wait_ingest_ready(client, &self.url("/readyz")).await;
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.take().unwrap().await.expect("ingest task")
    }
}

impl Drop for IngestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Polls `condition` until it holds; panics naming `what` after `timeout`.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: HashMap<String, Option<Vec<u8>>>,
}

impl Record {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.as_ref())
            .map(|v| String::from_utf8(v.clone()).expect("utf-8 header"))
    }

    pub fn key_str(&self) -> Option<String> {
        self.key
            .as_ref()
            .map(|k| String::from_utf8(k.clone()).expect("utf-8 key"))
    }
}

impl From<&OwnedMessage> for Record {
    fn from(m: &OwnedMessage) -> Self {
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Record {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec),
            headers,
        }
    }
}

/// Reads a whole topic from the beginning, without a consumer group, until `done` holds for
/// what was read so far. Panics after `timeout` with what was read.
pub fn read_topic_until(
    brokers: &str,
    topic: &str,
    timeout: Duration,
    mut done: impl FnMut(&[Record]) -> bool,
) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("test consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("topic metadata");
    let partitions = metadata.topics()[0].partitions().len();
    assert!(partitions > 0, "topic {topic} has no partitions");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p as i32, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut records = Vec::new();
    while !done(&records) {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} reading {topic}; read {} records: {records:#?}",
            records.len()
        );
        if let Some(msg) = consumer.poll(Duration::from_millis(100)) {
            records.push(Record::from(&msg.expect("consuming").detach()));
        }
    }
    records
}

/// A free TCP port on loopback (for brokers the test starts itself).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A nisshi broker of the test's own, for tests that stop, kill or restart it.
pub struct Broker {
    pub child: Child,
    pub port: u16,
    storage: String,
    /// nisshi resolves sqlite paths against its working directory.
    dir: PathBuf,
}

impl Broker {
    fn binary() -> PathBuf {
        std::env::var_os("ZOOMSTREAM_NISSHI_BIN")
            .map(PathBuf::from)
            .expect("ZOOMSTREAM_NISSHI_BIN is not set: run the tests with scripts/test")
    }

    /// Starts a broker with memory storage (nothing survives a restart).
    pub fn start_memory() -> Broker {
        Broker::start_with("memory://test/".into(), std::env::temp_dir(), free_port())
    }

    /// Starts a broker that keeps data in an sqlite file in `dir` (survives SIGKILL and restart).
    pub fn start_sqlite(dir: &std::path::Path) -> Broker {
        Broker::start_with("sqlite://broker.db".into(), dir.to_owned(), free_port())
    }

    fn start_with(storage: String, dir: PathBuf, port: u16) -> Broker {
        let child = Broker::spawn(&storage, &dir, port);
        let broker = Broker {
            child,
            port,
            storage,
            dir,
        };
        broker.wait_listening();
        broker
    }

    fn spawn(storage: &str, dir: &std::path::Path, port: u16) -> Child {
        let url = format!("tcp://127.0.0.1:{port}");
        Command::new(Broker::binary())
            .current_dir(dir)
            .args([
                "broker",
                "--storage-engine",
                storage,
                "--cluster-id",
                "zoomstream-test",
            ])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nisshi")
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nisshi did not listen on {} within 30 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// SIGKILLs the broker and starts it again on the same port and storage.
    pub fn restart(&mut self) {
        self.child.kill().expect("killing nisshi");
        self.child.wait().expect("reaping nisshi");
        self.child = Broker::spawn(&self.storage, &self.dir, self.port);
        self.wait_listening();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of a binary of this workspace, built by `cargo build --workspace --bins`
/// (scripts/test does that before running the tests).
pub fn binary(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` (scripts/test does)",
        path.display()
    );
    path
}

/// The schemas directory of the workspace (the shipped sources file and `.avsc` files).
pub fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas")
        .canonicalize()
        .expect("schemas/")
}

/// A sources file written for one test: every topic prefixed so tests never share topics,
/// every schema path made absolute.
pub struct TestSources {
    pub path: PathBuf,
    pub prefix: String,
    pub file: zoomstream_schemas::sources::SourcesFile,
}

impl TestSources {
    /// From sources-file text whose `schema` paths are relative to `schemas/`.
    pub fn new(template: &str) -> TestSources {
        let prefix = unique("t");
        let schemas = schemas_dir();
        let text: String = template
            .lines()
            .map(|line| {
                let trimmed = line.trim_start();
                if let Some(rest) = trimmed.strip_prefix("topic = \"") {
                    format!("topic = \"{prefix}.{rest}")
                } else if let Some(rest) = trimmed.strip_prefix("schema = \"") {
                    format!("schema = \"{}/{rest}", schemas.display())
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sources.toml");
        std::fs::write(&path, text).unwrap();
        let file =
            zoomstream_schemas::sources::load(&path).expect("the test sources file is valid");
        TestSources { path, prefix, file }
    }

    /// The shipped `schemas/sources.toml`, with test topics.
    pub fn shipped() -> TestSources {
        TestSources::new(&std::fs::read_to_string(schemas_dir().join("sources.toml")).unwrap())
    }

    pub fn source(&self, name: &str) -> &zoomstream_schemas::sources::Source {
        self.file
            .sources
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no source {name}"))
    }
}

/// An in-process processor; stops when dropped.
pub struct ProcessorApp {
    pub metrics_addr: SocketAddr,
    pub shutdown: ShutdownToken,
    pub task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl ProcessorApp {
    pub async fn start(config: zoomstream_processors::Config) -> ProcessorApp {
        let processor = zoomstream_processors::Processor::build(config)
            .await
            .expect("processor builds");
        let metrics_addr = processor.metrics_addr();
        let shutdown = ShutdownToken::new();
        let task = Some(tokio::spawn(processor.run_until(shutdown.clone())));
        ProcessorApp {
            metrics_addr,
            shutdown,
            task,
        }
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.take().unwrap().await.expect("processor task")
    }
}

impl Drop for ProcessorApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A processor config for tests: the group joins fast on nisshi (see ../shared/broker.md).
pub fn processor_config(
    brokers: &str,
    raw_topic: &str,
    sources: &TestSources,
) -> zoomstream_processors::Config {
    let mut config = zoomstream_processors::Config::new(brokers, &sources.path);
    config.raw_topic = raw_topic.to_owned();
    config.group_id = unique("group");
    config.dlq_topic = format!("{}.dlq", sources.prefix);
    config
        .kafka
        .options
        .push(("session.timeout.ms".into(), "6000".into()));
    config
        .kafka
        .options
        .push(("heartbeat.interval.ms".into(), "500".into()));
    config.batch_max_ms = 50;
    config
}

/// Produces a record to the raw topic as ingest would (headers from the raw contract), or with
/// the given headers only when `headers` is `Some`.
pub fn produce_raw(
    producer: &rdkafka::producer::BaseProducer,
    topic: &str,
    key: Option<&str>,
    payload: &[u8],
    headers: &[(&str, &str)],
) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseRecord, Producer as _};
    let mut hdrs = OwnedHeaders::new();
    for (k, v) in headers {
        hdrs = hdrs.insert(Header {
            key: k,
            value: Some(*v),
        });
    }
    let mut record = BaseRecord::<str, [u8]>::to(topic)
        .payload(payload)
        .headers(hdrs);
    if let Some(key) = key {
        record = record.key(key);
    }
    producer.send(record).map_err(|(e, _)| e).expect("enqueue");
    producer
        .flush(Duration::from_secs(30))
        .expect("raw record acknowledged");
}

pub fn producer(brokers: &str) -> rdkafka::producer::BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("test producer")
}

/// The headers ingest writes for a webhook body of `app`.
pub fn raw_headers(app: zoomstream_schemas::App, body: &[u8]) -> Vec<(String, String)> {
    use zoomstream_schemas::raw;
    let envelope: serde_json::Value = serde_json::from_slice(body).expect("JSON fixture");
    vec![
        (raw::headers::APP.into(), app.as_str().into()),
        (
            raw::headers::EVENT.into(),
            envelope["event"].as_str().unwrap_or_default().into(),
        ),
        (raw::headers::EVENT_ID.into(), raw::event_id(app, &envelope)),
        (raw::headers::RECEIVED_AT.into(), "1700000000000".into()),
    ]
}

/// Waits until `group` has committed offsets past every record of `raw_topic` read so far
/// (`raw`, e.g. from [`read_topic_until`]): then every output of those records is written.
pub fn wait_processed(
    brokers: &str,
    group: &str,
    raw_topic: &str,
    raw: &[Record],
    timeout: Duration,
) {
    let mut needed: HashMap<i32, i64> = HashMap::new();
    for r in raw {
        let next = needed.entry(r.partition).or_insert(0);
        *next = (*next).max(r.offset + 1);
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .expect("offset reader");
    let mut tpl = TopicPartitionList::new();
    for &p in needed.keys() {
        tpl.add_partition(raw_topic, p);
    }
    let deadline = Instant::now() + timeout;
    loop {
        let committed = consumer.committed_offsets(tpl.clone(), Duration::from_secs(5));
        let behind: Vec<(i32, i64, Option<i64>)> = needed
            .iter()
            .filter_map(|(&p, &next)| {
                let at = committed
                    .as_ref()
                    .ok()
                    .and_then(|c| c.find_partition(raw_topic, p))
                    .and_then(|e| e.offset().to_raw());
                (at.unwrap_or(-1) < next).then_some((p, next, at))
            })
            .collect();
        if behind.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "group {group} has not processed {raw_topic} within {timeout:?}: {behind:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const MARKER: &str = "zoomstream-test-marker";

/// Reads a whole topic: writes a marker to each partition, then reads every partition up to
/// its marker. Everything written (and committed) before the call is returned, nothing else.
pub fn read_all(brokers: &str, topic: &str) -> Vec<Record> {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseRecord, Producer as _};
    let producer = producer(brokers);
    let metadata = producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions = metadata.topics()[0].partitions().len() as i32;
    assert!(partitions > 0, "topic {topic} does not exist");
    let marker_id = unique("marker");
    for p in 0..partitions {
        let record = BaseRecord::<str, str>::to(topic)
            .partition(p)
            .payload("marker")
            .headers(OwnedHeaders::new().insert(Header {
                key: MARKER,
                value: Some(marker_id.as_str()),
            }));
        producer.send(record).map_err(|(e, _)| e).expect("marker");
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("markers acknowledged");
    let mut seen = std::collections::HashSet::new();
    let records = read_topic_until(brokers, topic, Duration::from_secs(60), |records| {
        if let Some(last) = records.last() {
            if last.header(MARKER).as_deref() == Some(marker_id.as_str()) {
                seen.insert(last.partition);
            }
        }
        seen.len() == partitions as usize
    });
    records
        .into_iter()
        .filter(|r| !r.headers.contains_key(MARKER))
        .collect()
}

/// Decodes a source record's Avro value (either framing) to JSON with its source's schema.
pub fn decode(record: &Record, schema: &apache_avro::Schema) -> serde_json::Value {
    let bytes = record.payload.as_ref().expect("a value");
    let value =
        zoomstream_schemas::avro::decode(bytes, schema).expect("decodes with the schema file");
    zoomstream_schemas::avro::to_json(&value)
}

/// Waits until an ingest's `/readyz` (at `readyz_url`) answers 200.
pub async fn wait_ingest_ready(client: &reqwest::Client, readyz_url: &str) {
    wait_for(
        "ingest /readyz to answer 200",
        Duration::from_secs(30),
        || async {
            client
                .get(readyz_url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
}

/// The body of a GET of `url` (e.g. a `/metrics` page), as text.
pub async fn get_text(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// Reads a counter or gauge from a Prometheus text page (0 when absent).
pub fn metric(page: &str, name_with_labels: &str) -> f64 {
    page.lines()
        .find_map(|l| {
            l.strip_prefix(name_with_labels)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map(|v| v.trim().parse().expect("a number"))
        .unwrap_or(0.0)
}

/// A real `zoomstream-processor` process; SIGKILLed when dropped.
pub struct ProcessorProcess {
    pub child: Child,
    pub metrics_port: u16,
    pub log: PathBuf,
}

impl ProcessorProcess {
    /// Starts the binary with the config's environment, as an operator would. `name` is the
    /// process's identity: its transactional id, stable across restarts as a supervisor keeps
    /// a container's host name.
    pub fn spawn(config: &zoomstream_processors::Config, name: &str) -> ProcessorProcess {
        let metrics_port = free_port();
        let log =
            std::env::temp_dir().join(unique(&format!("{}-{name}", config.group_id)) + ".log");
        let options: Vec<String> = config
            .kafka
            .options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let delivery = match config.delivery {
            zoomstream_processors::Delivery::ExactlyOnce => "exactly-once",
            zoomstream_processors::Delivery::AtLeastOnce => "at-least-once",
        };
        let child = Command::new(binary("zoomstream-processor"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ZOOMSTREAM_KAFKA_BROKERS", &config.kafka.brokers)
            .env("ZOOMSTREAM_KAFKA_OPTIONS", options.join(","))
            .env("ZOOMSTREAM_RAW_TOPIC", &config.raw_topic)
            .env("ZOOMSTREAM_GROUP_ID", &config.group_id)
            .env("ZOOMSTREAM_SOURCES", &config.sources)
            .env("ZOOMSTREAM_DLQ_TOPIC", &config.dlq_topic)
            .env("ZOOMSTREAM_DELIVERY", delivery)
            .env(
                "ZOOMSTREAM_BATCH_MAX_RECORDS",
                config.batch_max_records.to_string(),
            )
            .env("ZOOMSTREAM_BATCH_MAX_MS", config.batch_max_ms.to_string())
            .env(
                "ZOOMSTREAM_METRICS_LISTEN",
                format!("127.0.0.1:{metrics_port}"),
            )
            .env(
                "ZOOMSTREAM_TRANSACTIONAL_ID",
                format!("{}-{name}", config.group_id),
            )
            .env("RUST_LOG", "info,zoomstream_processors=debug")
            .stdout(std::fs::File::create(&log).expect("log file"))
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting zoomstream-processor");
        ProcessorProcess {
            child,
            metrics_port,
            log,
        }
    }

    /// The process's metrics page, once it serves one.
    pub fn metrics(&self) -> Option<String> {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(("127.0.0.1", self.metrics_port)).ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .ok()?;
        let mut page = String::new();
        stream.read_to_string(&mut page).ok()?;
        Some(page)
    }

    /// Raw records this process has consumed so far.
    pub fn records_in(&self) -> f64 {
        self.metrics()
            .map_or(0.0, |p| metric(&p, "zoomstream_processor_records_in_total"))
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("processor exits")
    }
}

impl Drop for ProcessorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A real `zoomstream-ingest` process, its JSON log captured to a file; SIGKILLed when dropped.
pub struct IngestProcess {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl IngestProcess {
    /// Starts the binary with `env` (on top of a listen address of its own).
    pub fn spawn(env: &[(&str, String)]) -> IngestProcess {
        let port = free_port();
        let log = std::env::temp_dir().join(unique("ingest") + ".log");
        let mut command = Command::new(binary("zoomstream-ingest"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "debug")
            .env("ZOOMSTREAM_LISTEN", format!("127.0.0.1:{port}"));
        for (k, v) in env {
            command.env(k, v);
        }
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = command
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("starting zoomstream-ingest");
        let process = IngestProcess { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "zoomstream-ingest did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        process
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Waits until /readyz says the broker is reachable and the raw topic exists.
    pub async fn wait_ready(&self, client: &reqwest::Client) {
        wait_ingest_ready(client, &self.url("/readyz")).await;
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Peak resident memory so far, in KiB (VmHWM).
    pub fn peak_rss_kib(&self) -> u64 {
        peak_rss_kib(self.child.id())
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("ingest exits")
    }
}

impl Drop for IngestProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Peak resident memory of a process, in KiB (VmHWM of /proc/PID/status).
pub fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Produces webhook bodies of `app` to the raw topic as ingest would (key, raw headers), and
/// waits once for all of them to be acknowledged.
pub fn produce_webhooks(
    brokers: &str,
    topic: &str,
    app: zoomstream_schemas::App,
    webhooks: &[(String, Vec<u8>)],
) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseRecord, Producer as _};
    let producer = producer(brokers);
    for (key, body) in webhooks {
        let mut hdrs = OwnedHeaders::new();
        for (k, v) in raw_headers(app, body) {
            hdrs = hdrs.insert(Header {
                key: &k,
                value: Some(&v),
            });
        }
        let mut record = BaseRecord::to(topic)
            .key(key.as_str())
            .payload(body.as_slice())
            .headers(hdrs);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("webhooks acknowledged");
}

/// A backlog of distinct webhooks on the raw topic: `meeting.started`, and every 4th a
/// `recording.completed` with four files (two kept by the default options). Returns the event
/// ids the source records of a `meeting.started` source and a default recording source must carry.
pub fn produce_meeting_backlog(
    brokers: &str,
    topic: &str,
    range: std::ops::Range<usize>,
) -> std::collections::HashSet<String> {
    use zoomstream_schemas::raw::{derived_event_id, event_id};
    let started: serde_json::Value =
        serde_json::from_slice(&fixture("meeting.started.json")).unwrap();
    let recording: serde_json::Value =
        serde_json::from_slice(&fixture("recording.completed.json")).unwrap();
    let mut expected = std::collections::HashSet::new();
    let mut webhooks = Vec::with_capacity(range.len());
    for i in range {
        let mut body = if i % 4 == 0 {
            recording.clone()
        } else {
            started.clone()
        };
        body["event_ts"] = serde_json::json!(1_700_000_000_000i64 + i as i64);
        body["payload"]["object"]["uuid"] = serde_json::json!(format!("meeting-{i}"));
        let id = event_id(zoomstream_schemas::App::Zoom, &body);
        if i % 4 == 0 {
            expected.insert(derived_event_id(
                &id,
                "388ffb46-1541-460d-8447-4624451a1db7",
            ));
            expected.insert(derived_event_id(
                &id,
                "9f1d2c3b-4a5e-4f60-8a7b-1c2d3e4f5a6b",
            ));
        } else {
            expected.insert(id);
        }
        webhooks.push((format!("meeting-{i}"), serde_json::to_vec(&body).unwrap()));
    }
    produce_webhooks(brokers, topic, zoomstream_schemas::App::Zoom, &webhooks);
    expected
}
