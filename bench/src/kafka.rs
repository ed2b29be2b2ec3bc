//! The Kafka-side ceilings and probes: the raw producer (broker ceiling, and how every drain
//! scenario's backlog is written), the raw consume→produce pipe (pipe ceiling) and the
//! end-to-end latency consumer.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use apache_avro::types::Value as AvroValue;
use apache_avro::Schema;
use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::Serialize;

use zoomstream_runtime::record_size::{
    max_output_record_bytes, topic_config, DEFAULT_MAX_BODY_BYTES,
};

use crate::gen::RawRecord;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

pub fn client(brokers: &str, settings: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    for (k, v) in settings {
        c.set(*k, *v);
    }
    c
}

/// The Kafka headers of a backlog record, as ingest writes them.
fn raw_headers(r: &RawRecord) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
    for (k, v) in &r.headers {
        headers = headers.insert(Header {
            key: k,
            value: Some(v.as_str()),
        });
    }
    headers
}

/// Sends `rec`, waiting while the producer's queue is full (its own thread serves the
/// delivery reports that empty it); any other error is returned.
fn send_when_queued<K, P>(
    producer: &ThreadedProducer<Acks>,
    mut rec: BaseRecord<'_, K, P>,
) -> Result<(), rdkafka::error::KafkaError>
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    loop {
        match producer.send(rec) {
            Ok(()) => return Ok(()),
            Err((
                rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                back,
            )) => {
                rec = back;
                std::thread::sleep(Duration::from_micros(200));
            }
            Err((err, _)) => return Err(err),
        }
    }
}

pub async fn create_topic(brokers: &str, name: &str, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = client(brokers, &[]).create()?;
    // Records as large as the services' default body limit, as they would create the topic.
    let (key, value) = topic_config(max_output_record_bytes(DEFAULT_MAX_BODY_BYTES));
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1)).set(&key, &value);
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics([&topic], &opts).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("creating {name}: {code}"),
        }
    }
    Ok(())
}

/// Counts acknowledged and failed deliveries, and when the last one arrived.
#[derive(Default)]
pub struct Acks {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    pub last: Mutex<Option<Instant>>,
}

impl ClientContext for Acks {}
impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
        *self.last.lock().unwrap() = Some(Instant::now());
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ProduceReport {
    pub records: u64,
    pub failed: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub records_per_s: f64,
    pub mb_per_s: f64,
}

/// The broker ceiling: a raw rdkafka producer writing `records` (raw-topic key, headers and
/// bodies) with acks=all and idempotence, as fast as the broker acknowledges. Timed from the
/// first send to the last acknowledgement.
pub fn produce(
    brokers: &str,
    topic: &str,
    records: &[RawRecord],
    extra: &[(String, String)],
) -> anyhow::Result<ProduceReport> {
    let mut cfg = client(
        brokers,
        &[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("linger.ms", "5"),
            ("queue.buffering.max.messages", "1000000"),
            ("queue.buffering.max.kbytes", "1048576"),
            ("client.id", "zoomstream-bench-produce"),
        ],
    );
    for (k, v) in extra {
        cfg.set(k, v);
    }
    let producer: ThreadedProducer<Acks> = cfg.create_with_context(Acks::default())?;
    let started = Instant::now();
    let mut bytes = 0u64;
    for r in records {
        let mut rec = BaseRecord::<str, [u8]>::to(topic)
            .payload(&r.body)
            .headers(raw_headers(r));
        if let Some(key) = &r.key {
            rec = rec.key(key.as_str());
        }
        bytes += r.body.len() as u64;
        send_when_queued(&producer, rec).context("producing")?;
    }
    producer.flush(Duration::from_secs(120))?;
    let ctx = producer.context();
    let end = ctx.last.lock().unwrap().unwrap_or_else(Instant::now);
    let seconds = end.duration_since(started).as_secs_f64();
    let ok = ctx.ok.load(Ordering::Relaxed);
    Ok(ProduceReport {
        records: ok,
        failed: ctx.failed.load(Ordering::Relaxed),
        bytes,
        seconds,
        records_per_s: ok as f64 / seconds,
        mb_per_s: bytes as f64 / seconds / 1e6,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct DrainReport {
    pub name: String,
    pub records_in: u64,
    pub records_out: u64,
    /// From the first record consumed to the last output acknowledged (and the offsets stored).
    pub seconds: f64,
    pub in_per_s: f64,
    pub out_per_s: f64,
    /// From start-up (before the group join) to the first record.
    pub startup_s: f64,
    pub peak_rss_mb: Option<f64>,
}

/// The pipe ceiling: consume the raw topic in a group and produce every record unchanged (key,
/// value, headers) to `out_topic` with acks=all and idempotence: no parsing, no transform.
/// `transactional`: the same loop in Kafka transactions with the offsets, each closed at `batch`
/// records or [`TXN_MAX_AGE`], the processor's default rule (the ceiling of an exactly-once
/// processor on this broker).
pub const TXN_MAX_AGE: Duration = Duration::from_millis(100);

pub fn pipe(
    brokers: &str,
    raw_topic: &str,
    out_topic: &str,
    group: &str,
    expect: u64,
    transactional: Option<usize>,
) -> anyhow::Result<DrainReport> {
    let launched = Instant::now();
    let mut pcfg = client(
        brokers,
        &[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("linger.ms", "5"),
            ("client.id", "zoomstream-bench-pipe"),
        ],
    );
    if transactional.is_some() {
        pcfg.set("transactional.id", format!("{group}-pipe"));
    }
    let producer: ThreadedProducer<Acks> = pcfg.create_with_context(Acks::default())?;
    if transactional.is_some() {
        producer.init_transactions(Duration::from_secs(30))?;
    }
    let consumer: BaseConsumer = client(
        brokers,
        &[
            ("group.id", group),
            ("client.id", "zoomstream-bench-pipe"),
            ("session.timeout.ms", "6000"),
            ("auto.offset.reset", "earliest"),
            (
                "enable.auto.commit",
                if transactional.is_some() {
                    "false"
                } else {
                    "true"
                },
            ),
            ("isolation.level", "read_committed"),
        ],
    )
    .create()?;
    consumer.subscribe(&[raw_topic])?;
    let mut first: Option<Instant> = None;
    let mut consumed = 0u64;
    let mut in_batch = 0usize;
    let mut opened = Instant::now();
    let mut next_offsets: HashMap<i32, i64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    let commit = |offsets: &HashMap<i32, i64>| -> anyhow::Result<()> {
        let mut tpl = TopicPartitionList::new();
        for (&p, &o) in offsets {
            tpl.add_partition_offset(raw_topic, p, Offset::Offset(o))?;
        }
        let meta = consumer.group_metadata().context("no group metadata")?;
        wait_acknowledged(&producer)?;
        producer.send_offsets_to_transaction(&tpl, &meta, Duration::from_secs(10))?;
        producer.commit_transaction(Duration::from_secs(10))?;
        Ok(())
    };
    while consumed < expect {
        if Instant::now() > deadline {
            bail!("pipe: only {consumed} of {expect} records within 600 s");
        }
        let Some(msg) = consumer.poll(Duration::from_millis(100)) else {
            if transactional.is_some() && in_batch > 0 && opened.elapsed() >= TXN_MAX_AGE {
                commit(&next_offsets)?;
                in_batch = 0;
            }
            continue;
        };
        let msg = msg?;
        if first.is_none() {
            first = Some(Instant::now());
        }
        if transactional.is_some() {
            if in_batch == 0 {
                producer.begin_transaction()?;
                opened = Instant::now();
            }
            in_batch += 1;
            next_offsets.insert(msg.partition(), msg.offset() + 1);
        }
        let mut rec = BaseRecord::<[u8], [u8]>::to(out_topic);
        if let Some(p) = msg.payload() {
            rec = rec.payload(p);
        }
        if let Some(k) = msg.key() {
            rec = rec.key(k);
        }
        if let Some(h) = msg.headers() {
            rec = rec.headers(h.detach());
        }
        send_when_queued(&producer, rec).context("pipe produce")?;
        consumed += 1;
        if let Some(batch) = transactional {
            if in_batch >= batch || opened.elapsed() >= TXN_MAX_AGE {
                commit(&next_offsets)?;
                in_batch = 0;
            }
        }
    }
    if transactional.is_some() && in_batch > 0 {
        commit(&next_offsets)?;
    }
    producer.flush(Duration::from_secs(60))?;
    let end = Instant::now();
    let first = first.unwrap_or(end);
    let seconds = end.duration_since(first).as_secs_f64();
    let out = producer.context().ok.load(Ordering::Relaxed);
    Ok(DrainReport {
        name: if transactional.is_some() {
            "pipe-eos".into()
        } else {
            "pipe".into()
        },
        records_in: consumed,
        records_out: out,
        seconds,
        in_per_s: consumed as f64 / seconds,
        out_per_s: out as f64 / seconds,
        startup_s: first.duration_since(launched).as_secs_f64(),
        peak_rss_mb: crate::procs::self_peak_rss_mb(),
    })
}

/// Source topic → its schema, from a sources file.
pub fn source_schemas(sources: &Path) -> anyhow::Result<HashMap<String, Schema>> {
    let file = zoomstream_schemas::sources::load(sources).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(file
        .sources
        .into_iter()
        .map(|s| (s.topic.clone(), s.schema.clone()))
        .collect())
}

/// End-to-end latency: reads every source topic (read_committed, as the README tells readers
/// to) and records, for each source record, now − its `received_at` (when ingest received the
/// webhook). Runs until `stop`; counts only records received after `from_ms`.
pub struct E2e {
    pub stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<anyhow::Result<(Histogram<u64>, u64)>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct E2eReport {
    pub records: u64,
    pub undecodable: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl E2e {
    pub fn start(
        brokers: &str,
        schemas: HashMap<String, Schema>,
        group: &str,
        from_ms: Arc<AtomicU64>,
    ) -> anyhow::Result<E2e> {
        let consumer: BaseConsumer = client(
            brokers,
            &[
                ("group.id", group),
                ("client.id", "zoomstream-bench-e2e"),
                ("session.timeout.ms", "6000"),
                ("auto.offset.reset", "earliest"),
                ("enable.auto.commit", "false"),
                ("isolation.level", "read_committed"),
            ],
        )
        .create()?;
        let topics: Vec<&str> = schemas.keys().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
            let mut undecodable = 0u64;
            while !stopping.load(Ordering::Relaxed) {
                let Some(msg) = consumer.poll(Duration::from_millis(50)) else {
                    continue;
                };
                let Ok(msg) = msg else { continue };
                let now = now_ms();
                let Some(schema) = schemas.get(msg.topic()) else {
                    continue;
                };
                let received = msg
                    .payload()
                    .and_then(|p| zoomstream_schemas::avro::decode(p, schema).ok())
                    .and_then(|v| received_at(&v));
                match received {
                    Some(at) if at >= from_ms.load(Ordering::Relaxed) as i64 => {
                        hist.saturating_record(((now - at).max(0) as u64 * 1000).max(1));
                    }
                    Some(_) => {}
                    None => undecodable += 1,
                }
            }
            Ok((hist, undecodable))
        });
        Ok(E2e { stop, handle })
    }

    pub fn finish(self) -> anyhow::Result<E2eReport> {
        self.stop.store(true, Ordering::Relaxed);
        let (hist, undecodable) = self
            .handle
            .join()
            .map_err(|_| anyhow::anyhow!("e2e consumer panicked"))??;
        let q = |p: f64| hist.value_at_quantile(p) as f64 / 1000.0;
        Ok(E2eReport {
            records: hist.len(),
            undecodable,
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: hist.max() as f64 / 1000.0,
        })
    }
}

fn received_at(value: &AvroValue) -> Option<i64> {
    let AvroValue::Record(fields) = value else {
        return None;
    };
    let (_, v) = fields.iter().find(|(name, _)| name == "received_at")?;
    match v {
        AvroValue::Union(_, inner) => match inner.as_ref() {
            AvroValue::TimestampMillis(t) | AvroValue::Long(t) => Some(*t),
            _ => None,
        },
        AvroValue::TimestampMillis(t) | AvroValue::Long(t) => Some(*t),
        _ => None,
    }
}

/// Waits for every record sent to be acknowledged, as the processor does before committing:
/// rdkafka's commit_transaction() flushes first, polling in 100 ms steps that the
/// ThreadedProducer's own thread makes it wait out (BENCHMARKS.md, P2).
pub(crate) fn wait_acknowledged(producer: &ThreadedProducer<Acks>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while producer.in_flight_count() > 0 {
        if Instant::now() > deadline {
            bail!("records not acknowledged within 10 s");
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    Ok(())
}

/// The acknowledged-producer ceiling: `connections` concurrent senders, each sending one raw
/// record (the backlog's, in turn) and awaiting its acknowledgement before the next, with
/// ingest's producer settings (rdkafka `FutureProducer`, acks=all, idempotence, linger 2 ms).
/// What ingest does per webhook, minus HTTP, JSON and verification: the ceiling of a service
/// that answers each request only once Kafka has acknowledged it, closed loop like C1.
pub async fn produce_acked(
    brokers: &str,
    topic: &str,
    records: Arc<Vec<RawRecord>>,
    connections: usize,
    warmup: f64,
    duration: f64,
) -> anyhow::Result<crate::load::LoadReport> {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = client(
        brokers,
        &[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("linger.ms", "2"),
            ("client.id", "zoomstream-bench-produce-acked"),
        ],
    )
    .create()?;
    let start = Instant::now();
    let measuring_from = start + Duration::from_secs_f64(warmup);
    let end = measuring_from + Duration::from_secs_f64(duration);
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (producer, records, next, errors) = (
            producer.clone(),
            records.clone(),
            next.clone(),
            errors.clone(),
        );
        let topic = topic.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut hist = crate::load::new_histogram();
            while Instant::now() < end {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let r = &records[i % records.len()];
                let mut rec = FutureRecord::<str, [u8]>::to(&topic)
                    .payload(&r.body)
                    .headers(raw_headers(r));
                if let Some(key) = &r.key {
                    rec = rec.key(key.as_str());
                }
                let sent = Instant::now();
                let acked = producer.send(rec, Duration::from_secs(10)).await;
                let done = Instant::now();
                if sent >= measuring_from && done <= end {
                    match acked {
                        Ok(_) => hist
                            .saturating_record(done.duration_since(sent).as_micros().max(1) as u64),
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            hist
        }));
    }
    let mut hist = crate::load::new_histogram();
    for task in tasks {
        hist.add(task.await.context("sender panicked")?)?;
    }
    Ok(crate::load::report(
        None,
        connections,
        duration,
        &hist,
        errors.load(Ordering::Relaxed),
        0,
    ))
}
