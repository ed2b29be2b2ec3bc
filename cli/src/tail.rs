//! `zoomstream tail`: a topic's records as JSON lines, on stdout.
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
    #[arg(long)]
    pub from_beginning: bool,

    /// The sources file: tells which topics are source topics, and their schemas.
    #[arg(
        long,
        env = "ZOOMSTREAM_SOURCES",
        default_value = "schemas/sources.toml"
    )]
    pub sources: PathBuf,

    /// The Schema Registry, for topics in Confluent framing: each record is decoded with the
    /// schema its id names.
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Stop after printing N records.
    #[arg(long, value_name = "N")]
    pub max: Option<u64>,
}

pub async fn run(args: TailArgs) -> anyhow::Result<()> {
    let file = sources::load(&args.sources).with_context(|| {
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
    assign_all_partitions(&consumer, &args.topic, args.from_beginning).await?;

    let shutdown = shutdown::on_signal();
    let mut printed = 0;
    let mut stdout = std::io::stdout().lock();
    while args.max.is_none_or(|max| printed < max) {
        let message = tokio::select! {
            () = shutdown.cancelled() => break,
            message = consumer.recv() => message.with_context(|| format!("reading {}", args.topic))?,
        };
        let line = match &versions {
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
        match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
            Ok(()) => printed += 1,
            // The reader went away (`| head`): that is a normal end.
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => break,
            Err(err) => return Err(err).context("writing to stdout"),
        }
    }
    Ok(())
}

/// Assigns every partition of the topic at its beginning or its end; fails if the topic does
/// not exist (the consumer never creates it).
async fn assign_all_partitions(
    consumer: &StreamConsumer,
    topic: &str,
    from_beginning: bool,
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
    if described.partitions().is_empty() {
        bail!("topic {topic} has no partitions");
    }
    let offset = if from_beginning {
        Offset::Beginning
    } else {
        Offset::End
    };
    let mut assignment = TopicPartitionList::new();
    for partition in described.partitions() {
        assignment.add_partition_offset(topic, partition.id(), offset)?;
    }
    consumer
        .assign(&assignment)
        .context("assigning the topic's partitions")?;
    Ok(())
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

/// Any other record: where it is, key, headers and value as text (the value embedded as JSON
/// when it is JSON, as the raw topic's webhook bodies are).
fn as_text(message: &BorrowedMessage<'_>) -> Value {
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
    let value = message
        .payload()
        .map(|bytes| serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(text(bytes))));
    json!({
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp": message.timestamp().to_millis(),
        "key": message.key().map(text),
        "headers": headers,
        "value": value,
    })
}
