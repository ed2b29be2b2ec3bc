//! zoomstream processors: the raw Zoom webhook topic in, per-source Avro topics out.
//!
//! [`Processor::build`] validates the sources file (a bad file stops the start, with every
//! problem named), prepares the encoders (registering schemas when a registry is configured),
//! creates missing topics and binds the metrics endpoint; [`Processor::run_until`] runs the
//! consume-transform-produce loop ([`pipeline`]) until the token is cancelled. `main` runs it as
//! a [`Service`](zoomstream_runtime::service::Service).

pub mod batch;
pub mod call_watchdog;
pub mod config;
pub mod consumer_context;
pub mod dead_letter;
pub mod events;
pub mod metrics;
pub mod outputs;
pub mod pipeline;
pub mod producer_context;
pub mod redeliveries;
pub mod route;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::producer::{Producer as _, ThreadedProducer};
use tokio::net::TcpListener;
use zoomstream_runtime::endpoints::{self, Health};
use zoomstream_runtime::kafka::{ensure_topics, TopicSpec};
use zoomstream_runtime::listener::{self, guard, ListenerArgs, ListenerMetrics, Listening};
use zoomstream_runtime::record_size::{max_output_record_bytes, max_record_bytes, topic_config};
use zoomstream_runtime::schema_registry::SchemaRegistry;
use zoomstream_runtime::service::Service;
use zoomstream_runtime::shutdown::ShutdownToken;
use zoomstream_runtime::topic_configs;
use zoomstream_schemas::avro::{self, Encoder};
use zoomstream_schemas::catalogue::UserIdentity;
use zoomstream_schemas::{sources, App};

pub use config::{Config, Delivery, RegistryMode};

use crate::batch::BatchProducer;
use crate::consumer_context::RawConsumerContext;
use crate::metrics::ProcessorMetrics;
use crate::pipeline::Pipeline;
use crate::producer_context::OutputProducerContext;
use crate::redeliveries::Redeliveries;
use crate::route::{Route, Router};

/// A processor with its sources loaded, topics created and metrics endpoint bound.
pub struct Processor {
    config: Config,
    router: Router,
    metrics: ProcessorMetrics,
    metrics_listener: TcpListener,
}

impl Processor {
    pub async fn build(config: Config) -> anyhow::Result<Processor> {
        config.listener.validate()?;
        let apps = config.apps()?;
        let file = sources::load_with(&config.sources, &apps)
            .with_context(|| format!("loading the sources file {}", config.sources.display()))?;
        for warning in &file.warnings {
            events::SourcesWarned { warning }.emit();
        }
        let unconfigured = |app: App| {
            apps.get(app.as_str())
                .is_none_or(|a| a.user == UserIdentity::default())
        };
        let needing_user: Vec<&str> = file
            .sources
            .iter()
            .filter(|s| s.needs_user() && unconfigured(s.app))
            .map(|s| s.name.as_str())
            .collect();
        if !needing_user.is_empty() {
            events::UserNotConfigured {
                sources: &needing_user,
            }
            .emit();
        }
        let mut selected = file.sources;
        if let Some(only) = &config.backfill_source {
            selected.retain(|s| &s.name == only);
            if selected.is_empty() {
                bail!(
                    "--backfill-source {only:?} is not a source of {}",
                    config.sources.display()
                );
            }
        }
        let routes = encoders(&config, selected).await?;
        let creation = &config.topic_creation;
        let size = [topic_config(max_output_record_bytes(config.max_body_bytes))];
        let source_configs = topic_configs::merged(
            topic_configs::SOURCE_DEFAULTS,
            &size,
            &config.source_topic_configs,
        );
        let mut topics: Vec<TopicSpec> = routes
            .iter()
            .map(|r| {
                creation.spec(
                    &r.source.topic,
                    config.topic_partitions,
                    source_configs.clone(),
                )
            })
            .collect();
        topics.push(creation.spec(
            &config.dlq_topic,
            config.topic_partitions,
            topic_configs::merged(
                topic_configs::DLQ_DEFAULTS,
                &size,
                &config.dlq_topic_configs,
            ),
        ));
        if creation.create {
            ensure_topics(&config.kafka, &topics)
                .await
                .context("creating the source and DLQ topics")?;
        }

        let metrics_listener = TcpListener::bind(config.metrics_listen)
            .await
            .with_context(|| format!("binding the metrics endpoint {}", config.metrics_listen))?;
        Ok(Processor {
            router: Router::new(routes, apps),
            metrics: ProcessorMetrics::new(),
            metrics_listener,
            config,
        })
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Runs the loop until `shutdown` is cancelled (or, for a backfill, until the raw topic is
    /// read to its end); then commits the open batch and leaves the group.
    pub async fn run_until(self, shutdown: ShutdownToken) -> anyhow::Result<()> {
        let Processor {
            config,
            router,
            metrics,
            metrics_listener,
        } = self;
        let health = Health::new();
        let http = tokio::spawn(serve_metrics(
            metrics_listener,
            config.listener.clone(),
            metrics.clone(),
            health.clone(),
            shutdown.clone(),
        ));

        let loop_shutdown = shutdown.clone();
        // Creating the clients (init_transactions blocks) and the loop run on a thread of their own.
        let result = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let pipeline = pipeline(&config, router, metrics)?;
            tracing::info!(
                group = %config.effective_group_id(),
                raw_topic = %config.raw_topic,
                delivery = ?config.delivery,
                sources = pipeline.router.routes.len(),
                "processor starting"
            );
            let batches = pipeline.batches.clone();
            let result = pipeline.run(loop_shutdown);
            // Flush only after the loop let go of the consumer (dropped in run).
            if let Err(err) = batches.flush(Duration::from_secs(10)) {
                tracing::error!(error = %err, "outputs left unacknowledged at shutdown");
            }
            result.context("processing stopped")
        })
        .await
        .context("the processing loop panicked")?;
        health.set(result.is_ok());
        shutdown.cancel();
        let _ = http.await;
        result?;
        tracing::info!("processor stopped");
        Ok(())
    }
}

/// One encoder per source: Confluent framing with the schema's registry id when a registry is
/// configured, Avro single-object encoding otherwise.
async fn encoders(config: &Config, sources: Vec<sources::Source>) -> anyhow::Result<Vec<Route>> {
    if config.registry.url.is_none() {
        return Ok(sources
            .into_iter()
            .map(|source| Route {
                encoder: Encoder::single_object(&source.schema),
                source,
            })
            .collect());
    }
    let registry = SchemaRegistry::from_args(&config.registry)?;
    tracing::info!(url = registry.base_url(), mode = ?config.schema_registry_mode, "using the schema registry");
    let mode = config.schema_registry_mode;
    let budget = Duration::from_secs(config.schema_registry_startup_timeout_secs);
    tokio::task::spawn_blocking(move || {
        sources
            .into_iter()
            .map(|source| {
                let id = schema_id(&registry, mode, budget, &source)?;
                Ok(Route {
                    encoder: Encoder::confluent(&source.schema, id),
                    source,
                })
            })
            .collect()
    })
    .await?
}

/// The registry id of a source's schema: registered (the registry checks compatibility with
/// the subject's earlier versions), or only looked up, with the subject named when it is missing
/// or incompatible.
fn schema_id(
    registry: &SchemaRegistry,
    mode: RegistryMode,
    budget: Duration,
    source: &sources::Source,
) -> anyhow::Result<u32> {
    let subject = avro::subject_for_topic(&source.topic);
    let text = avro::registry_schema_text(&source.schema);
    let name = &source.name;
    match mode {
        RegistryMode::Register => registry
            .retrying(budget, |r| r.register(&subject, &text))
            .with_context(|| {
                format!("registering the schema of source {name} under subject {subject}")
            }),
        RegistryMode::Lookup => match registry.retrying(budget, |r| r.lookup(&subject, &text)) {
            Ok(id) => Ok(id),
            Err(e) if e.is_not_found() => {
                // Say whether the subject lacks this version or cannot take it at all.
                let verdict = registry
                    .check_compatibility(&subject, &text)
                    .map(|(compatible, reasons)| if compatible {
                        "it is compatible with the latest version: register it (or run with --schema-registry-mode register)".to_owned()
                    } else {
                        format!("it is NOT compatible with the latest version: {}", reasons.join("; "))
                    })
                    .unwrap_or_else(|_| "the subject does not exist".to_owned());
                bail!(
                    "source {name}: schema {} is not registered under subject {subject} (lookup mode); {verdict}",
                    source.schema_path.display()
                )
            }
            Err(e) => Err(e).with_context(|| {
                format!("looking up the schema of source {name} under subject {subject}")
            }),
        },
    }
}

/// librdkafka's default `fetch.max.bytes` (50 MiB), kept unless one record is larger.
const FETCH_MAX_BYTES_DEFAULT: usize = 52_428_800;

fn pipeline(
    config: &Config,
    router: Router,
    metrics: ProcessorMetrics,
) -> anyhow::Result<Pipeline> {
    let transactional_id = config.transactional_id();
    // Sized from ingest's body limit (librdkafka's defaults stop at about 1 MB): a fetch must
    // hold the largest raw record; a source record may be twice the body (record_size.rs).
    let max_record = max_record_bytes(config.max_body_bytes);
    let max_record_text = max_record.to_string();
    let max_output_text = max_output_record_bytes(config.max_body_bytes).to_string();
    let fetch_max_text = max_record.max(FETCH_MAX_BYTES_DEFAULT).to_string();
    let mut producer_settings = vec![
        ("acks", "all"),
        ("enable.idempotence", "true"),
        ("linger.ms", "5"),
        ("client.id", "zoomstream-processor"),
        ("message.max.bytes", max_output_text.as_str()),
    ];
    if config.delivery == Delivery::ExactlyOnce {
        producer_settings.push(("transactional.id", &transactional_id));
        // How long Kafka lets a dead process's open transaction hold back read_committed
        // readers before aborting it; a batch commits within a fraction of this.
        producer_settings.push(("transaction.timeout.ms", "30000"));
    }
    let producer: ThreadedProducer<OutputProducerContext> = config
        .kafka
        .client_config(&producer_settings)
        .create_with_context(OutputProducerContext::default())
        .map_err(|err| anyhow::anyhow!(config.kafka.redacted(&err)))
        .context("creating the Kafka producer")?;
    if config.delivery == Delivery::ExactlyOnce {
        producer
            .init_transactions(Duration::from_secs(30))
            .context("initialising Kafka transactions (use --delivery at-least-once on brokers without them)")?;
    }

    let group_id = config.effective_group_id();
    let backfill = config.backfill_source.is_some();
    let loader_group = format!("{group_id}.redeliveries");
    let redeliveries = Arc::new(Redeliveries::new(
        Duration::from_secs(config.redelivery_window_secs),
        // A reader without a group (the id is never joined or committed to).
        config.kafka.client_config(&[
            ("group.id", loader_group.as_str()),
            ("client.id", "zoomstream-processor-redeliveries"),
            ("enable.auto.commit", "false"),
            ("isolation.level", "read_committed"),
            ("enable.partition.eof", "true"),
            ("max.partition.fetch.bytes", max_record_text.as_str()),
            ("fetch.max.bytes", fetch_max_text.as_str()),
            ("message.max.bytes", max_record_text.as_str()),
        ]),
        config.raw_topic.clone(),
    ));
    let batches = Arc::new(
        BatchProducer::new(
            producer,
            config.delivery,
            config.raw_topic.clone(),
            metrics,
            redeliveries,
        )
        .context("starting the transactional-call watchdog")?,
    );
    let instance_id = config.group_instance_id();
    let mut consumer_settings = vec![
        ("group.id", group_id.as_str()),
        ("client.id", "zoomstream-processor"),
        ("partition.assignment.strategy", "cooperative-sticky"),
        ("auto.offset.reset", "earliest"),
        // Offsets are stored only once every output of a record is acknowledged.
        ("enable.auto.offset.store", "false"),
        (
            "enable.auto.commit",
            if config.delivery == Delivery::AtLeastOnce {
                "true"
            } else {
                "false"
            },
        ),
        ("isolation.level", "read_committed"),
        (
            "enable.partition.eof",
            if backfill { "true" } else { "false" },
        ),
        ("statistics.interval.ms", "5000"),
        ("max.partition.fetch.bytes", max_record_text.as_str()),
        ("fetch.max.bytes", fetch_max_text.as_str()),
        ("message.max.bytes", max_record_text.as_str()),
    ];
    if let Some(id) = &instance_id {
        consumer_settings.push(("group.instance.id", id));
    }
    let consumer: BaseConsumer<RawConsumerContext> = config
        .kafka
        .client_config(&consumer_settings)
        .create_with_context(RawConsumerContext {
            batches: batches.clone(),
        })
        .map_err(|err| anyhow::anyhow!(config.kafka.redacted(&err)))
        .context("creating the Kafka consumer")?;
    consumer
        .subscribe(&[&config.raw_topic])
        .with_context(|| format!("subscribing to {}", config.raw_topic))?;
    Ok(Pipeline {
        consumer,
        batches,
        router,
        dlq_topic: config.dlq_topic.clone(),
        batch_max_records: config.batch_max_records.max(1),
        batch_max_age: Duration::from_millis(config.batch_max_ms),
        backfill,
    })
}

/// `/healthz` and `/metrics` on the metrics listener until `shutdown`.
async fn serve_metrics(
    listener: TcpListener,
    args: ListenerArgs,
    metrics: ProcessorMetrics,
    health: Health,
    shutdown: ShutdownToken,
) {
    let listening = Listening::new(&args, ListenerMetrics::new(&metrics.registry), 64);
    let app = guard::harden(
        endpoints::router(metrics.registry, health),
        listening.metrics.clone(),
    );
    listener::serve(listener, app, listening, shutdown, listener::plain).await;
}

impl Service for Processor {
    const NAME: &'static str = "zoomstream-processor";
    type Config = Config;

    fn build(config: Config) -> impl std::future::Future<Output = anyhow::Result<Self>> + Send {
        Processor::build(config)
    }

    /// The metrics endpoint's address: the processor serves nothing else over HTTP.
    fn local_addr(&self) -> SocketAddr {
        self.metrics_addr()
    }

    fn run_until(
        self,
        shutdown: ShutdownToken,
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send {
        Processor::run_until(self, shutdown)
    }
}
