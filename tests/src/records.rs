//! Kafka reading and writing as the tests need it: records read back, raw webhooks produced
//! as ingest would, waiting for a group to have processed what was written.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::names::unique;
use crate::zoom::fixture;

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

/// A consumer group's committed offsets and a topic's end offsets, read without joining it.
pub struct GroupOffsets {
    consumer: BaseConsumer,
}

impl GroupOffsets {
    pub fn new(brokers: &str, group: &str) -> GroupOffsets {
        let consumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            .create()
            .expect("offset reader");
        GroupOffsets { consumer }
    }

    /// The next offset the group will read, per partition of `topic` (`None`: nothing
    /// committed, or the coordinator did not answer this time).
    pub fn committed(
        &self,
        topic: &str,
        partitions: impl IntoIterator<Item = i32>,
    ) -> HashMap<i32, Option<i64>> {
        let mut tpl = TopicPartitionList::new();
        let partitions: Vec<i32> = partitions.into_iter().collect();
        for &p in &partitions {
            tpl.add_partition(topic, p);
        }
        let committed = self
            .consumer
            .committed_offsets(tpl, Duration::from_secs(5))
            .ok();
        partitions
            .into_iter()
            .map(|p| {
                let at = committed
                    .as_ref()
                    .and_then(|c| c.find_partition(topic, p))
                    .and_then(|e| e.offset().to_raw())
                    .filter(|o| *o >= 0);
                (p, at)
            })
            .collect()
    }

    /// The end offset (high watermark) of one partition.
    pub fn end_offset(&self, topic: &str, partition: i32) -> i64 {
        self.consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .expect("watermarks")
            .1
    }
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
    let offsets = GroupOffsets::new(brokers, group);
    let deadline = Instant::now() + timeout;
    loop {
        let committed = offsets.committed(raw_topic, needed.keys().copied());
        let behind: Vec<(i32, i64, Option<i64>)> = needed
            .iter()
            .filter_map(|(&p, &next)| {
                let at = committed[&p];
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
        let id = event_id(zoomstream_schemas::App::ZOOM, &body);
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
    produce_webhooks(brokers, topic, zoomstream_schemas::App::ZOOM, &webhooks);
    expected
}
