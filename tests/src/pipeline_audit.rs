//! A processor pipeline under test — raw topic, two sources (`meeting.started`, recording
//! files), its processors' config — and the audit that reads every source topic back
//! (read_committed) against the event ids the raw records must produce.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zoomstream_processors::{Config, Delivery};
use zoomstream_schemas::raw::headers;

use crate::apps::processor_config;
use crate::broker::create_replicated_topic;
use crate::names::unique;
use crate::records::{decode, read_all, read_topic_until, wait_processed};
use crate::sources::TestSources;

const SOURCES: &str = r#"
[[source]]
name = "started"
app = "zoom"
events = ["meeting.started"]
topic = "started"
schema = "meeting.avsc"

[[source]]
name = "recordings"
app = "zoom"
events = ["recording.completed"]
topic = "recordings"
schema = "recording_file.avsc"
"#;

pub struct PipelineUnderTest {
    pub brokers: String,
    pub raw_topic: String,
    pub sources: TestSources,
    pub config: Config,
}

impl PipelineUnderTest {
    /// Topics of 6 partitions (`replication_factor` replicas), small batches so kills land
    /// mid-batch often.
    pub async fn new(brokers: &str, delivery: Delivery, replication_factor: i32) -> Self {
        let raw_topic = unique("raw");
        create_replicated_topic(brokers, &raw_topic, 6, replication_factor).await;
        let sources = TestSources::new(SOURCES);
        let mut config = processor_config(brokers, &raw_topic, &sources);
        config.delivery = delivery;
        config.batch_max_records = 25;
        config.batch_max_ms = 20;
        config.topic_creation.replication_factor = replication_factor;
        for source in &sources.file.sources {
            create_replicated_topic(brokers, &source.topic, 6, replication_factor).await;
        }
        create_replicated_topic(brokers, &config.dlq_topic, 1, replication_factor).await;
        PipelineUnderTest {
            brokers: brokers.to_owned(),
            raw_topic,
            sources,
            config,
        }
    }

    /// Processors run with Kafka's default session timeout (45 s) instead of the tests' 6 s:
    /// what operators run, and long enough to ride out a group coordinator's failover.
    pub fn use_default_session_timeout(&mut self) {
        self.config
            .kafka
            .options
            .retain(|(k, _)| k != "session.timeout.ms" && k != "heartbeat.interval.ms");
    }

    /// Waits until the raw topic holds `count` records and the group has committed past all of
    /// them: then every output of those records is written.
    pub fn drain(&self, count: usize, timeout: Duration) {
        let raw = read_topic_until(
            &self.brokers,
            &self.raw_topic,
            Duration::from_secs(60),
            |r| r.len() == count,
        );
        wait_processed(
            &self.brokers,
            &self.config.group_id,
            &self.raw_topic,
            &raw,
            timeout,
        );
    }

    /// Reads every source topic; checks that each record's event id is one of `expected` (and
    /// agrees with its header), and returns what was found.
    pub fn audit(&self, expected: &HashSet<String>) -> Audit {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for source in &self.sources.file.sources {
            for record in read_all(&self.brokers, &source.topic) {
                let value = decode(&record, &source.schema);
                let id = value["event_id"].as_str().unwrap().to_owned();
                assert_eq!(
                    record.header(headers::EVENT_ID).as_deref(),
                    Some(id.as_str()),
                    "header and value agree"
                );
                assert!(
                    expected.contains(&id),
                    "{}: a record no raw record explains: {value}",
                    source.name
                );
                *seen.entry(id).or_default() += 1;
            }
        }
        Audit {
            expected: expected.len(),
            found: seen.len(),
            missing: expected.iter().filter(|id| !seen.contains_key(*id)).count(),
            duplicates: seen.values().map(|n| n - 1).sum(),
        }
    }

    /// The dead-letter topic's records (a healthy run has none).
    pub fn dead_letters(&self) -> usize {
        read_all(&self.brokers, &self.config.dlq_topic).len()
    }
}

/// What a read of the source topics found against what the raw records must produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Audit {
    pub expected: usize,
    /// Distinct expected event ids found.
    pub found: usize,
    pub missing: usize,
    /// Records beyond the first of each event id.
    pub duplicates: usize,
}

/// A small deterministic generator, seeded from the clock and printed, so a failing run can be
/// replayed by setting ZOOMSTREAM_TEST_SEED.
pub struct Lcg(u64);

impl Lcg {
    pub fn seeded() -> Lcg {
        let seed = std::env::var("ZOOMSTREAM_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("ZOOMSTREAM_TEST_SEED={seed}");
        Lcg(seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}
