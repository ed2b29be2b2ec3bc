//! zoomstream SSE: every source of the sources file as a private, resumable Server-Sent Events
//! stream, `GET /sources/{name}/events`.
//!
//! - **Private**: bearer tokens per source or global ([`tokens`]), compared in constant time.
//! - **Resumable**: each event's id is the client's position in the source topic, the next
//!   Kafka offset of every partition ([`position`]); `Last-Event-ID` continues exactly after
//!   it, with no state on the server, so across restarts and replicas too.
//! - **Fan-out**: one live Kafka consumer per source with clients, whose records are decoded
//!   and rendered once and shared through a bounded ring ([`hub`]); clients resuming from an
//!   older position read the gap with a consumer of their own first, then join the ring
//!   ([`client`]).
//! - **Bounded**: each client has a bounded queue; one that cannot keep up is told so in a
//!   final event and disconnected, and its connection cut if it reads nothing at all
//!   ([`conn`]).
//!
//! [`Sse::build`] loads the sources and tokens and binds the listener (port 0 works;
//! [`Sse::local_addr`] tells the real one); [`Sse::run_until`] serves until the token is
//! cancelled, then ends every stream with a final event and stops. `main` runs it as a
//! [`Service`](zoomstream_runtime::service::Service).

pub mod client;
pub mod config;
pub mod conn;
pub mod events;
pub mod frames;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod position;
pub mod quotas;
pub mod resume;
pub mod tokens;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use zoomstream_runtime::listener::{self, guard, ListenerMetrics, Listening};
use zoomstream_runtime::schema_registry::{SchemaRegistry, WriterSchemaCache};
use zoomstream_runtime::service::Service;
use zoomstream_runtime::shutdown::ShutdownToken;
use zoomstream_schemas::sources;

pub use config::Config;
pub use frames::DISCONNECTED_EVENT;
pub use position::Position;

use crate::client::Streams;
use crate::conn::killable;
use crate::frames::SourceSpec;
use crate::http::AppState;
use crate::hub::Hubs;
use crate::metrics::SseMetrics;
use crate::quotas::Quotas;
use crate::tokens::Tokens;

/// A bound SSE service, not yet serving.
pub struct Sse {
    listener: TcpListener,
    listening: Listening,
    state: Arc<AppState>,
    hubs: Hubs,
    /// Cancelled when serving should stop (the token given to `run_until` fired).
    stop: ShutdownToken,
    /// Cuts every connection still open when the shutdown grace ends.
    cut_all: CancellationToken,
    shutdown_grace: Duration,
}

impl Sse {
    pub async fn build(config: Config) -> anyhow::Result<Sse> {
        config.validate()?;
        let apps = zoomstream_schemas::Apps::load_or_builtin(config.apps_file.as_deref())?;
        let file = sources::load_with(&config.sources, &apps)
            .with_context(|| format!("loading the sources file {}", config.sources.display()))?;
        let tokens = Tokens::build(
            config.token.as_ref(),
            &config.source_tokens()?,
            config.tokens_file.as_deref(),
            &file,
        )?;
        let closed = tokens.closed(&file);
        if !closed.is_empty() {
            tracing::warn!(sources = ?closed, "these sources have no token (and there is no global one): every request for them gets 401");
        }
        tracing::info!(
            sources = file.sources.len(),
            global_token = config.token.is_some() || config.tokens_file.is_some(),
            sources_with_own_tokens = tokens.per_source_count(),
            "tokens loaded"
        );

        let metrics = SseMetrics::new();
        let stop = ShutdownToken::new();
        let hubs = Hubs::new(
            config.kafka.clone(),
            metrics.clone(),
            config.live_buffer,
            config.consumer_idle(),
            stop.clone(),
        );
        let streams = Arc::new(Streams {
            hubs: hubs.clone(),
            kafka: config.kafka.clone(),
            metrics: metrics.clone(),
            keep_alive: config.keep_alive(),
            retry_ms: config.retry_ms,
            client_buffer: config.client_buffer,
            slow_client_timeout: config.slow_client_timeout(),
            catchups: Arc::new(Semaphore::new(config.max_catchups)),
            max_clients: config.max_clients,
            clients: AtomicUsize::new(0),
            shutdown: stop.clone(),
        });
        let registry = match &config.registry.url {
            Some(_) => Some(Arc::new(WriterSchemaCache::new(SchemaRegistry::from_args(
                &config.registry,
            )?))),
            None => None,
        };
        let sources: HashMap<String, Arc<SourceSpec>> = file
            .sources
            .into_iter()
            .map(|s| {
                let spec = SourceSpec {
                    name: s.name.clone(),
                    topic: s.topic,
                    versions: s.schema_versions,
                    registry: registry.clone(),
                };
                metrics.add_source(&s.name);
                (s.name, Arc::new(spec))
            })
            .collect();
        let state = Arc::new(AppState {
            sources,
            tokens,
            streams,
            metrics,
            quotas: Quotas::new(config.max_clients_per_token, config.max_clients_per_address),
            cors_origins: config.cors_origins.clone(),
        });
        // Every catch-up and live consumer holds Kafka sockets and wake-up pipes of its own.
        let reserved_fds = 64 + 16 * (config.max_catchups + state.sources.len()) as u64;
        let listening = Listening::new(
            &config.listener,
            ListenerMetrics::new(&state.metrics.registry),
            reserved_fds,
        );
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        Ok(Sse {
            listener,
            listening,
            state,
            hubs,
            stop,
            cut_all: CancellationToken::new(),
            shutdown_grace: config.shutdown_grace(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` is cancelled. Then every stream ends with a
    /// `zoomstream.disconnected` event (reason `shutdown`); connections still open after the
    /// shutdown grace are cut; the live consumers stop.
    pub async fn run_until(self, shutdown: ShutdownToken) -> anyhow::Result<()> {
        let Sse {
            listener,
            listening,
            state,
            hubs,
            stop,
            cut_all,
            shutdown_grace,
        } = self;
        let trigger = stop.clone();
        let relay = tokio::spawn(async move {
            shutdown.cancelled().await;
            trigger.cancel();
        });
        let router = guard::harden(http::app(state), listening.metrics.clone());
        let serve = listener::serve(
            listener,
            router,
            listening,
            stop.clone(),
            killable(cut_all.clone()),
        );
        tokio::pin!(serve);
        tokio::select! {
            () = &mut serve => {}
            _ = stop.cancelled() => {
                if tokio::time::timeout(shutdown_grace, &mut serve).await.is_err() {
                    tracing::warn!("cutting the connections of clients that did not take their final event");
                    cut_all.cancel();
                    serve.await;
                }
            }
        }
        relay.abort();
        stop.cancel();
        hubs.join(Duration::from_secs(10)).await;
        tracing::info!("sse stopped");
        Ok(())
    }
}

impl Service for Sse {
    const NAME: &'static str = "zoomstream-sse";
    type Config = Config;

    fn build(config: Config) -> impl std::future::Future<Output = anyhow::Result<Self>> + Send {
        Sse::build(config)
    }

    fn local_addr(&self) -> SocketAddr {
        Sse::local_addr(self)
    }

    fn run_until(
        self,
        shutdown: ShutdownToken,
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send {
        Sse::run_until(self, shutdown)
    }
}
