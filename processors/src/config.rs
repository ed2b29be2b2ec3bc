//! The processor service's configuration: every field a `--flag` and a `ZOOMSTREAM_…` variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use zoomstream_runtime::kafka::{parse_setting, KafkaArgs, TopicCreationArgs};
use zoomstream_runtime::record_size::DEFAULT_MAX_BODY_BYTES;
use zoomstream_runtime::schema_registry::RegistryArgs;
use zoomstream_schemas::catalogue::UserIdentity;
use zoomstream_schemas::{App, Apps};

/// zoomstream-processor: consumes the raw Zoom webhook topic in a consumer group and writes each
/// source's Avro records to its topic; records it cannot handle go to the dead-letter topic.
#[derive(Debug, Clone, Parser)]
#[command(name = "zoomstream-processor", version)]
pub struct Config {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// The raw topic ingest writes to.
    #[arg(
        long,
        env = "ZOOMSTREAM_RAW_TOPIC",
        default_value = "zoom.webhooks.raw"
    )]
    pub raw_topic: String,

    /// Consumer group shared by all processors; run more processes to scale out.
    #[arg(
        long,
        env = "ZOOMSTREAM_GROUP_ID",
        default_value = "zoomstream-processors"
    )]
    pub group_id: String,

    /// The sources file: which events go to which topic with which schema.
    #[arg(
        long,
        env = "ZOOMSTREAM_SOURCES",
        default_value = "schemas/sources.toml"
    )]
    pub sources: PathBuf,

    /// Where records that cannot be parsed or mapped go, with the reason in headers.
    #[arg(
        long,
        env = "ZOOMSTREAM_DLQ_TOPIC",
        default_value = "zoom.webhooks.dlq"
    )]
    pub dlq_topic: String,

    /// Address of the /metrics and /healthz endpoint. Port 0 picks a free port.
    #[arg(
        long,
        env = "ZOOMSTREAM_METRICS_LISTEN",
        default_value = "0.0.0.0:9090"
    )]
    pub metrics_listen: SocketAddr,

    /// Connection timeouts and caps of the metrics listener.
    #[command(flatten)]
    pub listener: zoomstream_runtime::listener::ListenerArgs,

    /// exactly-once: outputs and the input offset commit in one Kafka transaction (needs a
    /// broker with transactions; readers use isolation.level=read_committed).
    /// at-least-once: outputs are acknowledged, then the offset is committed.
    #[arg(long, env = "ZOOMSTREAM_DELIVERY", value_enum, default_value_t = Delivery::ExactlyOnce)]
    pub delivery: Delivery,

    /// Stable identity of this replica (e.g. `processor-1`), unique among running processors
    /// of the group. Makes it a static group member (`group.instance.id`): restarted under the
    /// same id it gets its partitions back at once, without a rebalance; stopped, its
    /// partitions wait up to the session timeout before moving. Also the default for the
    /// transactional id (`<group>-<instance id>`).
    #[arg(long, env = "ZOOMSTREAM_INSTANCE_ID")]
    pub instance_id: Option<String>,

    /// Transactional id of this process (exactly-once). Must differ between running processes;
    /// defaults to `<group>-<instance id>`, else to one derived from the group, host and
    /// process id. When set without an instance id, it is the static member id too.
    #[arg(long, env = "ZOOMSTREAM_TRANSACTIONAL_ID")]
    pub transactional_id: Option<String>,

    /// Confluent-compatible Schema Registry. When its URL is set, records use the Confluent
    /// wire format with each source's schema under `<topic>-value`; otherwise Avro
    /// single-object encoding.
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// register: register each source's schema at start (the registry checks compatibility).
    /// lookup: only look it up — schemas are registered by your own pipeline — and refuse to
    /// start, naming the subject, when one is missing or incompatible.
    #[arg(long, env = "ZOOMSTREAM_SCHEMA_REGISTRY_MODE", value_enum, default_value_t = RegistryMode::Register)]
    pub schema_registry_mode: RegistryMode,

    /// How long start-up keeps retrying an unreachable registry (5xx, 429, network), in seconds.
    #[arg(
        long,
        env = "ZOOMSTREAM_SCHEMA_REGISTRY_STARTUP_TIMEOUT_SECS",
        default_value_t = 60
    )]
    pub schema_registry_startup_timeout_secs: u64,

    /// The apps file (as ingest's): the apps raw records name, each app's kind (which decides
    /// its catalogue) and user (`*.by_me`, `*.for_me`). Unset: the built-in `zoom` and
    /// `zoom-admin` apps, the user of `zoom` given by the two settings below.
    #[arg(long, env = "ZOOMSTREAM_APPS_FILE")]
    pub apps_file: Option<PathBuf>,

    /// Zoom user id of the built-in Zoom app's user: decides `*.by_me`, `*.for_me` (with an
    /// apps file, each app's `user_id` does).
    #[arg(long, env = "ZOOMSTREAM_ZOOM_USER_ID")]
    pub zoom_user_id: Option<String>,

    /// E-mail of the built-in Zoom app's user (matched against `payload.operator`).
    #[arg(long, env = "ZOOMSTREAM_ZOOM_USER_EMAIL")]
    pub zoom_user_email: Option<String>,

    /// Whether the processor creates missing source and DLQ topics at start, and their
    /// replication.
    #[command(flatten)]
    pub topic_creation: TopicCreationArgs,

    /// Ingest's body limit (the same variable): sizes the consumer's fetches (body + 64 KiB),
    /// the producer's `message.max.bytes` and the created topics' `max.message.bytes` (twice the
    /// body + 64 KiB: a source record repeats the body's object as JSON), so a webhook ingest
    /// accepted is read, routed or dead-lettered whole.
    #[arg(long, env = "ZOOMSTREAM_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Configs of the source topics the processor creates, as `key=value` (repeatable; in the
    /// environment, comma-separated), over the defaults `retention.ms=604800000` (7 days: a
    /// source topic can be rebuilt from the raw topic) and `max.message.bytes`.
    #[arg(
        long = "source-topic-config",
        env = "ZOOMSTREAM_SOURCE_TOPIC_CONFIG",
        value_delimiter = ',',
        value_parser = parse_setting
    )]
    pub source_topic_configs: Vec<(String, String)>,

    /// Configs of the DLQ topic when the processor creates it, over the defaults
    /// `retention.ms=2592000000` (30 days, for a person to look) and `max.message.bytes`.
    #[arg(
        long = "dlq-topic-config",
        env = "ZOOMSTREAM_DLQ_TOPIC_CONFIG",
        value_delimiter = ',',
        value_parser = parse_setting
    )]
    pub dlq_topic_configs: Vec<(String, String)>,

    /// Partitions of the source and DLQ topics when the processor creates them.
    #[arg(long, env = "ZOOMSTREAM_TOPIC_PARTITIONS", default_value_t = 6)]
    pub topic_partitions: i32,

    /// Most raw records per transaction / offset commit. Under a backlog batches close here or
    /// at the age limit, whichever comes first; at live rates the age limit closes them.
    #[arg(long, env = "ZOOMSTREAM_BATCH_MAX_RECORDS", default_value_t = 10_000)]
    pub batch_max_records: usize,

    /// Longest a batch stays open, in milliseconds: bounds the added end-to-end latency.
    #[arg(long, env = "ZOOMSTREAM_BATCH_MAX_MS", default_value_t = 100)]
    pub batch_max_ms: u64,

    /// Zoom redeliveries within this many seconds of the first delivery (same event id) are
    /// not written to a source again; longer than Zoom's 85-minute retry horizon. 0 turns it
    /// off; a source's `keep_redeliveries = true` option turns it off for that source.
    #[arg(
        long,
        env = "ZOOMSTREAM_REDELIVERY_WINDOW_SECS",
        default_value_t = 7200
    )]
    pub redelivery_window_secs: u64,

    /// Backfill: reprocess the raw topic from the beginning for this one source only, under a
    /// group of its own, then exit. Other sources' topics are not written.
    #[arg(long, env = "ZOOMSTREAM_BACKFILL_SOURCE")]
    pub backfill_source: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RegistryMode {
    Register,
    Lookup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Delivery {
    ExactlyOnce,
    AtLeastOnce,
}

impl Config {
    /// A config for tests and embedding: metrics on a free loopback port, defaults elsewhere.
    /// Reads no flag and no environment variable (the binary's `Config::parse` does).
    /// The apps of the deployment: the apps file's, or the built-in two with the `zoom`
    /// app's user from `--zoom-user-id` / `--zoom-user-email`.
    pub fn apps(&self) -> anyhow::Result<Apps> {
        let Some(file) = &self.apps_file else {
            let user = UserIdentity {
                user_id: self.zoom_user_id.clone().filter(|s| !s.is_empty()),
                email: self.zoom_user_email.clone().filter(|s| !s.is_empty()),
            };
            return Ok(Apps::builtin().with_user(App::ZOOM, user));
        };
        Ok(Apps::load(file)?)
    }

    pub fn new(brokers: impl Into<String>, sources: impl Into<PathBuf>) -> Self {
        let mut config: Config = zoomstream_runtime::config::defaults();
        config.kafka.brokers = brokers.into();
        config.metrics_listen = ([127, 0, 0, 1], 0).into();
        config.sources = sources.into();
        config
    }

    /// The transactional id for this process.
    pub fn transactional_id(&self) -> String {
        if let Some(id) = &self.transactional_id {
            return id.clone();
        }
        if let Some(instance) = &self.instance_id {
            return format!("{}-{instance}", self.effective_group_id());
        }
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
        format!("{}-{}-{}", self.group_id, host, std::process::id())
    }

    /// The static group member id (`group.instance.id`): set only for a replica with a stable
    /// identity, since two live members with one id fence each other.
    pub fn group_instance_id(&self) -> Option<String> {
        self.instance_id
            .clone()
            .or_else(|| self.transactional_id.clone())
    }

    /// The consumer group: a backfill reads under a group of its own, from the beginning.
    pub fn effective_group_id(&self) -> String {
        match &self.backfill_source {
            Some(source) => format!("{}.backfill.{}", self.group_id, source),
            None => self.group_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_new_reads_no_environment() {
        // Settings the binary reads from the environment; no other test here reads them.
        std::env::set_var("ZOOMSTREAM_SCHEMA_REGISTRY_URL", "http://registry.invalid");
        std::env::set_var("ZOOMSTREAM_KAFKA_OPTIONS", "sasl.password=from-env");
        let from_env = Config::parse_from(["zoomstream-processor"]);
        let embedded = Config::new("b:1", "s.toml");
        std::env::remove_var("ZOOMSTREAM_SCHEMA_REGISTRY_URL");
        std::env::remove_var("ZOOMSTREAM_KAFKA_OPTIONS");
        assert!(
            from_env.registry.url.is_some(),
            "the binary reads the variables"
        );
        assert_eq!(from_env.kafka.options.len(), 1);
        assert_eq!(embedded.registry.url, None);
        assert!(embedded.kafka.options.is_empty());
        assert_eq!(embedded.kafka.brokers, "b:1");
        assert_eq!(
            embedded.metrics_listen,
            SocketAddr::from(([127, 0, 0, 1], 0))
        );
        assert_eq!(embedded.sources, PathBuf::from("s.toml"));
    }
}
