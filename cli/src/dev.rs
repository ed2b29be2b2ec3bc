//! `zoomstream dev`: the whole pipeline in one process, on librdkafka's in-process mock cluster.
//!
//! The mock cluster has no CreateTopics API and does not store transactional offsets, so the
//! topics are created here through the mock API and the processor runs at-least-once. It is a
//! real Kafka listener on loopback, so any Kafka client can read the topics while dev runs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use clap::builder::NonEmptyStringValueParser;
use rdkafka::mocking::MockCluster;
use tokio::task::{JoinError, JoinSet};
use zoomstream_ingest::Ingest;
use zoomstream_processors::{Delivery, Processor};
use zoomstream_runtime::shutdown::{self, ShutdownToken};
use zoomstream_schemas::sources::{self, SourcesFile};
use zoomstream_schemas::{App, Apps};

/// The Zoom app's secret token in dev mode, unless `--zoom-secret` says otherwise.
pub const DEV_ZOOM_SECRET: &str = "zoomstream-dev-zoom-secret";
/// The Zoom Admin app's secret token in dev mode, unless `--zoom-admin-secret` says otherwise.
pub const DEV_ZOOM_ADMIN_SECRET: &str = "zoomstream-dev-zoom-admin-secret";
/// The bearer token of every SSE stream in dev mode, unless `--sse-token` says otherwise.
pub const DEV_SSE_TOKEN: &str = "zoomstream-dev-sse-token";

/// The development secret of a built-in app: what `zoomstream send` signs with by default.
pub fn dev_secret(app: &str) -> Option<&'static str> {
    if app == App::ZOOM.as_str() {
        Some(DEV_ZOOM_SECRET)
    } else if app == App::ZOOM_ADMIN.as_str() {
        Some(DEV_ZOOM_ADMIN_SECRET)
    } else {
        None
    }
}

/// How long ingest may take to see its raw topic on the mock cluster.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(clap::Args)]
pub struct DevArgs {
    /// Address ingest listens on for webhooks, /healthz, /readyz and /metrics (port 0: any free
    /// port, printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Address of the processor's /metrics and /healthz (port 0: any free port, printed).
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub metrics_listen: SocketAddr,

    /// Address of the SSE streams, `/sources/{name}/events` (port 0: any free port, printed).
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub sse_listen: SocketAddr,

    /// Bearer token of every SSE stream.
    #[arg(long, default_value = DEV_SSE_TOKEN, value_parser = NonEmptyStringValueParser::new())]
    pub sse_token: String,

    /// Secret token webhooks to /webhooks/zoom are signed with.
    #[arg(long, default_value = DEV_ZOOM_SECRET, value_parser = NonEmptyStringValueParser::new())]
    pub zoom_secret: String,

    /// Secret token webhooks to /webhooks/zoom-admin are signed with.
    #[arg(long, default_value = DEV_ZOOM_ADMIN_SECRET, value_parser = NonEmptyStringValueParser::new())]
    pub zoom_admin_secret: String,

    /// The sources file: which events go to which topic with which schema.
    #[arg(
        long,
        env = "ZOOMSTREAM_SOURCES",
        default_value = "schemas/sources.toml"
    )]
    pub sources: PathBuf,

    /// An apps file (README, "Several Zoom apps"): its apps instead of the built-in two, each
    /// app's secret taken from the variable the file names (`--zoom-secret`,
    /// `--zoom-admin-secret` and the user flags are then unused).
    #[arg(long, env = "ZOOMSTREAM_APPS_FILE")]
    pub apps_file: Option<PathBuf>,

    /// Zoom user id of the Zoom app's user: decides the `*.by_me` / `*.for_me` sources.
    #[arg(long)]
    pub zoom_user_id: Option<String>,

    /// E-mail of the Zoom app's user (matched against `payload.operator`).
    #[arg(long)]
    pub zoom_user_email: Option<String>,
}

/// A topic created on the mock cluster, and what it carries (for the banner).
struct DevTopic {
    name: String,
    partitions: i32,
    carries: String,
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    // Listen for signals first: a ctrl-c during start-up stops the services as soon as they run.
    let shutdown = shutdown::on_signal();
    let apps = Apps::load_or_builtin(args.apps_file.as_deref())?;
    let sources = sources::load_with(&args.sources, &apps).with_context(|| {
        format!(
            "loading the sources file {} (pass --sources)",
            args.sources.display()
        )
    })?;

    let cluster = MockCluster::new(1).context("starting librdkafka's mock cluster")?;
    let bootstrap = cluster.bootstrap_servers();
    let ingest_config = ingest_config(&args, &bootstrap);
    let processor_config = processor_config(&args, &bootstrap, &ingest_config.raw_topic);
    let topics = topics(&ingest_config, &processor_config, &sources);
    for topic in &topics {
        cluster
            .create_topic(&topic.name, topic.partitions, 1)
            .with_context(|| format!("creating topic {} on the mock cluster", topic.name))?;
        // librdkafka 2.12's mock thread drains its wake-up pipe after serving a request; a
        // request queued in between loses its wake-up and waits for the thread's 1 s timer.
        // Back-to-back creations hit that race most of the time (40 topics: 1-10 s instead of
        // 50 ms); a moment's pause lets the thread finish first.
        std::thread::sleep(Duration::from_millis(1));
    }

    let ingest = Ingest::build(ingest_config)
        .await
        .context("starting ingest")?;
    let processor = Processor::build(processor_config)
        .await
        .context("starting the processor")?;
    let mut sse_config = zoomstream_sse::Config::new(&bootstrap, &args.sources);
    sse_config.apps_file = args.apps_file.clone();
    sse_config.listen = args.sse_listen;
    sse_config.token = Some(args.sse_token.clone().into());
    let sse = zoomstream_sse::Sse::build(sse_config)
        .await
        .context("starting the SSE service")?;
    let ingest_addr = reachable(ingest.local_addr());
    let metrics_addr = reachable(processor.metrics_addr());
    let sse_addr = reachable(sse.local_addr());

    let mut services = JoinSet::new();
    let token = shutdown.clone();
    services.spawn(async move { ("ingest", ingest.run_until(token).await) });
    let token = shutdown.clone();
    services.spawn(async move { ("processor", processor.run_until(token).await) });
    let token = shutdown.clone();
    services.spawn(async move { ("sse", sse.run_until(token).await) });

    // Announce only once webhooks can be accepted; stop everything if a service ends first.
    let mut first_error = None;
    tokio::select! {
        ready = wait_ready(ingest_addr) => match ready {
            Ok(()) => print_banner(&args, &apps, ingest_addr, metrics_addr, sse_addr, &bootstrap, &topics),
            Err(err) => first_error = Some(err),
        },
        Some(ended) = services.join_next() => first_error = outcome(ended, &shutdown).err(),
        () = shutdown.cancelled() => {}
    }
    if first_error.is_some() {
        shutdown.cancel();
    }
    // The first service to end (by a signal or by failing) stops the others.
    while let Some(ended) = services.join_next().await {
        let result = outcome(ended, &shutdown);
        shutdown.cancel();
        if let Err(err) = result {
            first_error.get_or_insert(err);
        }
    }
    // Every service has stopped and flushed its producer; only now may the cluster go.
    drop(cluster);
    match first_error {
        Some(err) => Err(err),
        None => {
            eprintln!("zoomstream dev: stopped");
            Ok(())
        }
    }
}

/// Ingest against the mock cluster, with dev's listener and secrets, topics created here.
fn ingest_config(args: &DevArgs, bootstrap: &str) -> zoomstream_ingest::Config {
    let mut config = zoomstream_ingest::Config::new(bootstrap);
    config.listen = args.listen;
    config.zoom_secret_token = Some(args.zoom_secret.clone().into());
    config.zoom_admin_secret_token = Some(args.zoom_admin_secret.clone().into());
    config.apps_file = args.apps_file.clone();
    config.topic_creation.create = false;
    // The mock cluster keeps no topic configs (and stores records of any size).
    config.check_raw_topic = false;
    config
}

/// A processor against the mock cluster: at-least-once (no transactional offsets there), no
/// schema registry (single-object encoding), topics created here.
fn processor_config(
    args: &DevArgs,
    bootstrap: &str,
    raw_topic: &str,
) -> zoomstream_processors::Config {
    let mut config = zoomstream_processors::Config::new(bootstrap, &args.sources);
    config.raw_topic = raw_topic.to_owned();
    config.metrics_listen = args.metrics_listen;
    config.delivery = Delivery::AtLeastOnce;
    config.topic_creation.create = false;
    config.zoom_user_id = args.zoom_user_id.clone();
    config.zoom_user_email = args.zoom_user_email.clone();
    config.apps_file = args.apps_file.clone();
    config
}

/// Every topic the pipeline writes: the raw topic, the dead-letter topic, each source's topic.
fn topics(
    ingest: &zoomstream_ingest::Config,
    processor: &zoomstream_processors::Config,
    sources: &SourcesFile,
) -> Vec<DevTopic> {
    let mut topics = vec![
        DevTopic {
            name: ingest.raw_topic.clone(),
            partitions: ingest.raw_topic_partitions,
            carries: "every verified webhook, byte for byte".into(),
        },
        DevTopic {
            name: processor.dlq_topic.clone(),
            partitions: processor.topic_partitions,
            carries: "records the processor could not handle, with the reason in headers".into(),
        },
    ];
    topics.extend(sources.sources.iter().map(|source| DevTopic {
        name: source.topic.clone(),
        partitions: processor.topic_partitions,
        carries: format!("source {} ({} app)", source.name, source.app),
    }));
    topics
}

/// The address to connect to: a wildcard listener is reached on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        ip if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

/// Waits until ingest's /readyz answers 200: the producer reaches the cluster and sees the raw
/// topic.
async fn wait_ready(addr: SocketAddr) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let url = format!("http://{addr}/readyz");
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let last = match client.get(&url).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => format!(
                "{}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            ),
            Err(err) => format!("{:#}", anyhow::Error::from(err)),
        };
        if Instant::now() >= deadline {
            return Err(anyhow!(
                "ingest was not ready within {READY_TIMEOUT:?}; {url} last answered {last}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a finished service task means: an error, or a stop nobody asked for.
fn outcome(
    ended: Result<(&'static str, anyhow::Result<()>), JoinError>,
    shutdown: &ShutdownToken,
) -> anyhow::Result<()> {
    let (name, result) = ended.map_err(|err| anyhow!("a service task panicked: {err}"))?;
    result.with_context(|| format!("{name} failed"))?;
    if shutdown.is_cancelled() {
        Ok(())
    } else {
        Err(anyhow!("{name} stopped on its own"))
    }
}

fn print_banner(
    args: &DevArgs,
    apps: &Apps,
    ingest: SocketAddr,
    metrics: SocketAddr,
    sse: SocketAddr,
    bootstrap: &str,
    topics: &[DevTopic],
) {
    let me = std::env::args()
        .next()
        .unwrap_or_else(|| "zoomstream".into());
    let sse_token = &args.sse_token;
    let secret_flag = if args.zoom_secret == DEV_ZOOM_SECRET {
        String::new()
    } else {
        format!(" --secret '{}'", args.zoom_secret)
    };
    let width = topics.iter().map(|t| t.name.len()).max().unwrap_or(0);
    // The recording source shows the per-file split best; any source topic will do otherwise.
    let example = topics
        .iter()
        .find(|t| t.name == "zoom.recording-completed")
        .or(topics.last())
        .map_or("TOPIC", |t| t.name.as_str());
    let webhooks = if args.apps_file.is_none() {
        format!(
            "Webhook URLs     http://{ingest}/webhooks/zoom          (Zoom app)\n\
             \x20                http://{ingest}/webhooks/zoom-admin    (Zoom Admin app)\n\
             Secret tokens    zoom:       {zoom}\n\
             \x20                zoom-admin: {admin}\n",
            zoom = args.zoom_secret,
            admin = args.zoom_admin_secret,
        )
    } else {
        // The apps file's: secrets stay in their variables, only the names are shown.
        let mut lines = String::new();
        for (i, app) in apps.iter().enumerate() {
            let label = if i == 0 { "Webhook URLs" } else { "" };
            lines += &format!(
                "{label:<16} http://{ingest}{path}   ({name}: {kind} app, secret in ${env})\n",
                path = app.path,
                name = app.app,
                kind = app.app.kind().label(),
                env = app.secret_tokens_env,
            );
        }
        lines
    };
    let mut out = format!(
        "\n\
         zoomstream dev: ingest, processor and SSE streams in one process, on librdkafka's in-process mock Kafka\n\
         cluster (at-least-once delivery; nothing is kept after exit).\n\
         \n\
         {webhooks}\
         Kafka bootstrap  {bootstrap}   (any Kafka client can read the topics here)\n\
         Metrics          http://{ingest}/metrics (ingest), http://{metrics}/metrics (processor)\n\
         SSE streams      http://{sse}/sources/<source>/events   (bearer token: {sse_token})\n\
         \n\
         Topics ({count}):\n",
        count = topics.len(),
    );
    for topic in topics {
        out += &format!(
            "  {:<width$}  {:>2} partitions  {}\n",
            topic.name, topic.partitions, topic.carries
        );
    }
    out += &format!(
        "\n\
         Try, from the repository root:\n\
         \x20 {me} send --url http://{ingest}{secret_flag} --all tests/fixtures/zoom\n\
         \x20 {me} tail {example} --brokers {bootstrap} --from-beginning\n\
         \x20 curl -N -H 'Authorization: Bearer {sse_token}' 'http://{sse}/sources/recording-completed/events?from=earliest'\n\
         \n\
         zoomstream dev ready: ingest=http://{ingest} kafka={bootstrap} sse=http://{sse}\n"
    );
    print!("{out}");
}
