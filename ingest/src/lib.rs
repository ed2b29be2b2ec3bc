//! zoomstream ingest: Zoom webhooks in, verified, durably on the raw Kafka topic before Zoom
//! hears 200.
//!
//! [`Ingest::build`] binds the listener (port 0 works; [`Ingest::local_addr`] tells the real
//! one) and connects the producer; [`Ingest::run_until`] serves until the token is cancelled,
//! then finishes in-flight requests and flushes the producer. `main` runs it as a
//! [`Service`](zoomstream_runtime::service::Service).

pub mod apps;
pub mod body;
pub mod body_budget;
pub mod config;
pub mod events;
pub mod http;
pub mod metrics;
pub mod passthrough;
pub mod publish;
pub mod raw_topic;
pub mod readiness;
pub mod replay;
pub mod secrets;
pub mod spool;
pub mod verify;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use zoomstream_runtime::endpoints::{self, Health};
use zoomstream_runtime::listener::{self, guard, ListenerMetrics, Listening};
use zoomstream_runtime::record_size::{max_record_bytes, topic_config};
use zoomstream_runtime::service::Service;
use zoomstream_runtime::shutdown::ShutdownToken;
use zoomstream_runtime::topic_configs;

pub use config::Config;
pub use http::app;

use crate::body_budget::BodyBudget;
use crate::http::{AppState, ReceivingRoute};
use crate::metrics::IngestMetrics;
use crate::publish::RawPublisher;
use crate::raw_topic::RawTopicSetup;
use crate::readiness::Readiness;
use crate::replay::ReplayCache;

use crate::verify::Verifier;

/// Signatures remembered for replay detection (about 60 bytes each).
const REPLAY_CACHE_ENTRIES: usize = 200_000;
/// File descriptors kept for everything but client connections (the Kafka producer's sockets
/// and wake-up pipes, logs): the connection cap fits in the limit minus these.
const RESERVED_FDS: u64 = 64;

/// A bound, connected ingest service, not yet serving.
pub struct Ingest {
    listener: TcpListener,
    listening: Listening,
    /// `/metrics` on a listener of its own (`--metrics-listen`), off the webhook port.
    metrics_listener: Option<TcpListener>,
    state: Arc<AppState>,
    raw_topic: RawTopicSetup,
}

impl Ingest {
    pub async fn build(config: Config) -> anyhow::Result<Ingest> {
        config.validate()?;
        let metrics = IngestMetrics::new();
        let window = Duration::from_secs(config.replay_window_secs);
        let apps = apps::receiving_apps(&config, |name| std::env::var(name).ok())?;
        let publisher = Arc::new(RawPublisher::new(
            &config.kafka,
            config.raw_topic.clone(),
            config.publish_timeout(),
            config.max_body_bytes,
            metrics.clone(),
        )?);
        let body_budget = BodyBudget::new(
            config.max_body_bytes_in_flight,
            metrics.body_bytes_in_flight.clone(),
        );
        let spool = match &config.spool_dir {
            Some(dir) => Some(spool::Spool::open(dir, config.spool_max_bytes, &metrics)?),
            None => None,
        };
        let state = Arc::new(AppState {
            spool,
            apps: apps
                .into_iter()
                .map(|a| ReceivingRoute {
                    app: a.app,
                    path: a.path,
                    verifier: a.secrets.map(|s| Verifier::new(s, window)),
                })
                .collect(),
            publisher,
            metrics,
            permits: Arc::new(Semaphore::new(config.max_in_flight)),
            max_body_bytes: config.max_body_bytes,
            body_budget,
            body_timeout: Duration::from_millis(config.body_timeout_ms),
            replays: ReplayCache::new(window, REPLAY_CACHE_ENTRIES),
            readiness: Readiness::default(),
        });
        let listening = Listening::new(
            &config.listener,
            ListenerMetrics::new(&state.metrics.registry),
            RESERVED_FDS,
        );
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the metrics endpoint {addr}"))?,
            ),
            None => None,
        };
        Ok(Ingest {
            listener,
            listening,
            metrics_listener,
            state,
            raw_topic: RawTopicSetup {
                kafka: config.kafka.clone(),
                topic: config.raw_topic.clone(),
                create: config.topic_creation.create.then(|| {
                    config.topic_creation.spec(
                        &config.raw_topic,
                        config.raw_topic_partitions,
                        topic_configs::merged(
                            topic_configs::RAW_DEFAULTS,
                            &[topic_config(max_record_bytes(config.max_body_bytes))],
                            &config.raw_topic_configs,
                        ),
                    )
                }),
                max_body_bytes: config.max_body_bytes,
                check: config.check_raw_topic,
            },
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The separate metrics endpoint's address, when `--metrics-listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .map(|l| l.local_addr().expect("a bound listener has an address"))
    }

    /// Serves until `shutdown` is cancelled, then drains in-flight requests and flushes Kafka.
    pub async fn run_until(self, shutdown: ShutdownToken) -> anyhow::Result<()> {
        let Ingest {
            listener,
            listening,
            metrics_listener,
            state,
            raw_topic,
        } = self;
        // Kafka may come up after ingest: the raw topic is created and checked in the
        // background (/readyz says when it is there). A topic too small for ingest's bodies
        // stops ingest.
        let stop = shutdown.clone();
        let drainer = state.spool.clone().map(|spool| {
            tokio::spawn(spool::drain::drain(
                spool,
                state.publisher.clone(),
                shutdown.clone(),
            ))
        });
        // The failure is recorded before the shutdown it causes, so the exit reports it however
        // the tasks interleave.
        let topic_failure = Arc::new(std::sync::Mutex::new(None));
        let failure = topic_failure.clone();
        let topic_task = tokio::spawn(async move {
            if let Err(err) = raw_topic.run(stop.clone()).await {
                *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(err);
                stop.cancel();
            }
        });
        let mut public = app(state.clone());
        let metrics_task = metrics_listener.map(|metrics_listener| {
            public = public.clone().layer(middleware::from_fn(hide_metrics));
            let metrics = endpoints::router(state.metrics.registry.clone(), Health::new());
            // Caps and timeouts of its own, the counters shared with the webhook listener.
            let listening =
                Listening::new(&listening.args, listening.metrics.clone(), RESERVED_FDS);
            let router = guard::harden(metrics, listening.metrics.clone());
            tokio::spawn(listener::serve(
                metrics_listener,
                router,
                listening,
                shutdown.clone(),
                listener::plain,
            ))
        });
        let router = guard::harden(public, listening.metrics.clone());
        listener::serve(
            listener,
            router,
            listening,
            shutdown.clone(),
            listener::plain,
        )
        .await;
        if let Some(task) = metrics_task {
            task.await.context("the metrics endpoint panicked")?;
        }
        if let Some(drainer) = drainer {
            let _ = drainer.await;
        }
        topic_task.abort();
        let unusable_topic = topic_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let flushing = state.clone();
        tokio::task::spawn_blocking(move || flushing.publisher.flush(Duration::from_secs(10)))
            .await
            .context("flushing the producer")?;
        if let Some(err) = unusable_topic {
            return Err(err).context("checking the raw topic");
        }
        tracing::info!("ingest stopped");
        Ok(())
    }
}

/// With a separate metrics listener, the webhook port does not serve `/metrics`.
async fn hide_metrics(request: Request, next: Next) -> Response {
    if request.uri().path() == "/metrics" {
        return StatusCode::NOT_FOUND.into_response();
    }
    next.run(request).await
}

impl Service for Ingest {
    const NAME: &'static str = "zoomstream-ingest";
    type Config = Config;

    fn build(config: Config) -> impl std::future::Future<Output = anyhow::Result<Self>> + Send {
        Ingest::build(config)
    }

    fn local_addr(&self) -> SocketAddr {
        Ingest::local_addr(self)
    }

    fn run_until(
        self,
        shutdown: ShutdownToken,
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send {
        Ingest::run_until(self, shutdown)
    }
}
