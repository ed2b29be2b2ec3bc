//! The services in-process (`build → local_addr → run`), on port 0, stopped when dropped.

use std::net::SocketAddr;

use tokio::task::JoinHandle;
use zoomstream_runtime::shutdown::ShutdownToken;

use crate::names::unique;
use crate::probes::wait_ingest_ready;
use crate::sources::TestSources;

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

/// An ingest config for tests: the Zoom app's secret, the given raw topic, 3 partitions when
/// ingest creates it.
pub fn ingest_config(brokers: &str, raw_topic: &str, secret: &str) -> zoomstream_ingest::Config {
    let mut config = zoomstream_ingest::Config::new(brokers);
    config.zoom_secret_token = Some(secret.to_owned().into());
    config.raw_topic = raw_topic.to_owned();
    config.raw_topic_partitions = 3;
    config
}

/// A processor config for tests: its own group and dead-letter topic, and Kafka's shortest
/// session timeout, so a member that dies hands its partitions on within seconds.
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

/// An in-process SSE service on a free port; stops when dropped.
pub struct SseApp {
    pub addr: SocketAddr,
    shutdown: ShutdownToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl SseApp {
    pub async fn start(config: zoomstream_sse::Config) -> SseApp {
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

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn events_url(&self, source: &str) -> String {
        self.url(&format!("/sources/{source}/events"))
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .unwrap()
    }

    pub async fn stop(mut self) {
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
