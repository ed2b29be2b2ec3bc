//! `zoomstream tail`: a topic's records as JSON lines, on stdout: where each record is
//! (partition, offset, timestamp), its key and headers, and its value (decoded from Avro on a
//! source topic).
//!
//! Reads without a consumer group (nothing is committed, nothing disturbs the processors) and
//! with `read_committed`, so aborted exactly-once output never shows.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers as _, Message as _};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Map, Value};
use zoomstream_runtime::kafka::KafkaArgs;
use zoomstream_runtime::schema_registry::{RegistryArgs, SchemaRegistry, WriterSchemaCache};
use zoomstream_runtime::shutdown;
use zoomstream_schemas::avro::{self, RegistrySchemas, SchemaVersions};
use zoomstream_schemas::sources;

#[derive(clap::Args)]
// The services call it --kafka-brokers; --brokers is the name Kafka's own tools use.
#[command(mut_arg("brokers", |arg| arg.long("brokers").visible_alias("kafka-brokers")))]
pub struct TailArgs {
    /// The topic to read.
    pub topic: String,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Start at the beginning of the topic instead of at its end.
    #[arg(long, conflicts_with_all = ["offset", "since"])]
    pub from_beginning: bool,

    /// Start at this offset (in every partition read; see --partition).
    #[arg(long, value_name = "N", conflicts_with = "since")]
    pub offset: Option<i64>,

    /// Start at the first record written at or after this time: RFC 3339
    /// (`2026-05-01T12:00:00Z`) or a duration ago (`15m`, `2h`, `1day`).
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Option<i64>,

    /// Read only this partition (repeatable); all partitions by default.
    #[arg(long, value_name = "P")]
    pub partition: Vec<i32>,

    /// The sources file: tells which topics are source topics, and their schemas.
    #[arg(
        long,
        env = "ZOOMSTREAM_SOURCES",
        default_value = "schemas/sources.toml"
    )]
    pub sources: PathBuf,

    /// The apps file, when sources name its apps (README, "Several Zoom apps").
    #[arg(long, env = "ZOOMSTREAM_APPS_FILE")]
    pub apps_file: Option<PathBuf>,

    /// The Schema Registry, for topics in Confluent framing: each record is decoded with the
    /// schema its id names.
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Stop after printing N records.
    #[arg(long, value_name = "N")]
    pub max: Option<u64>,
}

pub async fn run(args: TailArgs) -> anyhow::Result<()> {
    let apps = zoomstream_schemas::Apps::load_or_builtin(args.apps_file.as_deref())?;
    let file = sources::load_with(&args.sources, &apps).with_context(|| {
        format!(
            "loading the sources file {} (pass --sources: it gives each source topic's schema)",
            args.sources.display()
        )
    })?;
    // Records are decoded with the schema version that wrote them (found by fingerprint in the
    // schema's history, or by id in the registry) and shown as the current schema describes them.
    let versions = file
        .sources
        .into_iter()
        .find(|s| s.topic == args.topic)
        .map(|s| s.schema_versions);
    let registry = match &args.registry.url {
        Some(_) => Some(WriterSchemaCache::new(SchemaRegistry::from_args(
            &args.registry,
        )?)),
        None => None,
    };

    let consumer: StreamConsumer = args
        .kafka
        .client_config(&[
            ("client.id", "zoomstream-tail"),
            // librdkafka wants a group for assign(); assigned partitions never join it and
            // nothing is committed under it.
            ("group.id", "zoomstream-tail"),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("isolation.level", "read_committed"),
        ])
        .create()
        .context("creating the Kafka consumer")?;
    let start = if args.from_beginning {
        Start::Beginning
    } else if let Some(offset) = args.offset {
        Start::Offset(offset)
    } else if let Some(millis) = args.since {
        Start::Time(millis)
    } else {
        Start::End
    };
    assign(&consumer, &args.topic, &args.partition, start).await?;

    let shutdown = shutdown::on_signal();
    let mut printed = 0;
    let mut stdout = std::io::stdout().lock();
    while args.max.is_none_or(|max| printed < max) {
        let message = tokio::select! {
            () = shutdown.cancelled() => break,
            message = consumer.recv() => message.with_context(|| format!("reading {}", args.topic))?,
        };
        let value = match &versions {
            Some(versions) => match decode(&message, versions, registry.as_ref()) {
                Ok(value) => value,
                Err(err) => {
                    eprintln!(
                        "{} partition {} offset {}: {err:#}",
                        args.topic,
                        message.partition(),
                        message.offset()
                    );
                    continue;
                }
            },
            None => as_text(&message),
        };
        let line = with_position(&message, value);
        match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
            Ok(()) => printed += 1,
            // The reader went away (`| head`): that is a normal end.
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => break,
            Err(err) => return Err(err).context("writing to stdout"),
        }
    }
    Ok(())
}

/// Where reading starts in each partition.
#[derive(Clone, Copy)]
enum Start {
    Beginning,
    End,
    Offset(i64),
    /// Milliseconds since the epoch: the first record at or after it.
    Time(i64),
}

/// Assigns the chosen partitions (all by default) at the start position; fails if the topic
/// does not exist (the consumer never creates it) or lacks a chosen partition.
async fn assign(
    consumer: &StreamConsumer,
    topic: &str,
    only: &[i32],
    start: Start,
) -> anyhow::Result<()> {
    let metadata = tokio::task::block_in_place(|| {
        consumer.fetch_metadata(Some(topic), Duration::from_secs(10))
    })
    .context("fetching the topic's metadata from Kafka")?;
    let Some(described) = metadata.topics().iter().find(|t| t.name() == topic) else {
        bail!("Kafka did not describe topic {topic}");
    };
    if let Some(err) = described.error() {
        bail!(
            "topic {topic}: {}",
            rdkafka::types::RDKafkaErrorCode::from(err)
        );
    }
    let existing: Vec<i32> = described.partitions().iter().map(|p| p.id()).collect();
    if existing.is_empty() {
        bail!("topic {topic} has no partitions");
    }
    if let Some(missing) = only.iter().find(|p| !existing.contains(p)) {
        bail!(
            "topic {topic} has no partition {missing} (it has 0 to {})",
            existing.len() - 1
        );
    }
    let chosen = existing
        .into_iter()
        .filter(|p| only.is_empty() || only.contains(p));
    let mut assignment = TopicPartitionList::new();
    for partition in chosen {
        let offset = match start {
            Start::Beginning => Offset::Beginning,
            Start::End => Offset::End,
            Start::Offset(n) => Offset::Offset(n),
            // Replaced below by the offset Kafka finds for that time.
            Start::Time(millis) => Offset::Offset(millis),
        };
        assignment.add_partition_offset(topic, partition, offset)?;
    }
    if let Start::Time(_) = start {
        // A partition with no record since then comes back at its end.
        assignment = tokio::task::block_in_place(|| {
            consumer.offsets_for_times(assignment, Duration::from_secs(10))
        })
        .context("asking Kafka for the offsets at that time")?;
    }
    consumer
        .assign(&assignment)
        .context("assigning the topic's partitions")?;
    Ok(())
}

/// `--since`: RFC 3339, or a duration before now; as milliseconds since the epoch.
fn parse_since(text: &str) -> Result<i64, String> {
    let at = match time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        Ok(at) => at,
        Err(_) => {
            let ago = humantime::parse_duration(text).map_err(|_| {
                format!("expected an RFC 3339 time (2026-05-01T12:00:00Z) or a duration ago (15m), got {text:?}")
            })?;
            time::OffsetDateTime::now_utc() - ago
        }
    };
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| format!("{text:?} is out of range"))
}

/// A source record: its Avro value, as JSON.
fn decode(
    message: &BorrowedMessage<'_>,
    versions: &SchemaVersions,
    registry: Option<&WriterSchemaCache>,
) -> anyhow::Result<Value> {
    let payload = message.payload().context("the record has no value")?;
    let registry = registry.map(|r| r as &dyn RegistrySchemas);
    // A registry lookup is HTTP: off the async workers.
    let value = tokio::task::block_in_place(|| avro::decode_resolved(payload, versions, registry))?;
    Ok(avro::to_json(&value))
}

/// Any other record's value as text (embedded as JSON when it is JSON, as the raw topic's
/// webhook bodies are).
fn as_text(message: &BorrowedMessage<'_>) -> Value {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    message
        .payload()
        .map(|bytes| serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(text(bytes))))
        .into()
}

/// The printed line: where the record is, its key and headers, and its value.
fn with_position(message: &BorrowedMessage<'_>, value: Value) -> Value {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let headers: Map<String, Value> = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| (h.key.to_owned(), h.value.map(text).into()))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp": message.timestamp().to_millis(),
        "key": message.key().map(text),
        "headers": headers,
        "value": value,
    })
}
