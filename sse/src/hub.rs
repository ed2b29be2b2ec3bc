//! The live feed of each source: one Kafka consumer per source, however many clients.
//!
//! A source's [`Hub`] starts with its first client and stops when it has had none for a while
//! (`ZOOMSTREAM_SSE_CONSUMER_IDLE_MS`). It assigns every partition of the topic at its end (the
//! last stable offset: `read_committed`), decodes each record once, renders the shared part of
//! its event once, and publishes it on a bounded broadcast ring. It also keeps the position
//! after the last published record: a client subscribing gets the ring's receiver and that
//! position together (under one lock), so it knows exactly which records the ring will bring
//! and which it must read from Kafka itself first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use bytes::Bytes;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use zoomstream_runtime::kafka::KafkaArgs;
use zoomstream_runtime::shutdown::ShutdownToken;

use crate::events::{LiveConsumerStarted, RecordUndecodable};
use crate::frames::{render, SourceSpec};
use crate::metrics::SseMetrics;
use crate::position::Position;

/// A record of the live feed: where it is, and the shared part of its event.
#[derive(Debug)]
pub struct LiveEvent {
    pub partition: i32,
    pub offset: i64,
    pub body: Bytes,
}

/// Where a hub is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubStatus {
    /// Waiting for the topic, reading its end offsets.
    Starting,
    /// Assigned at a known position: clients can subscribe.
    Live,
    /// Stopped (shutdown, or Kafka refused the consumer): clients end their streams.
    Stopped,
}

pub struct Hub {
    pub source: Arc<SourceSpec>,
    tx: broadcast::Sender<Arc<LiveEvent>>,
    /// The position after the last published record; `None` until live.
    position: Mutex<Option<Position>>,
    status: watch::Sender<HubStatus>,
    leases: AtomicUsize,
    /// The live consumer, once live: asked for a partition's end when a client's id is ahead
    /// of the feed.
    consumer: Mutex<Option<Arc<StreamConsumer>>>,
}

impl Hub {
    /// The live feed from now on, and the position it starts after. `None` until the hub is
    /// live.
    pub fn subscribe(&self) -> Option<(broadcast::Receiver<Arc<LiveEvent>>, Position)> {
        let position = self.position.lock().expect("hub lock");
        position.as_ref().map(|p| (self.tx.subscribe(), p.clone()))
    }

    pub fn status(&self) -> watch::Receiver<HubStatus> {
        self.status.subscribe()
    }

    /// The end (last stable offset) of `partition` as Kafka tells it now; `None` when the hub
    /// is not live or Kafka does not answer within a second.
    pub async fn end_offset(&self, partition: i32) -> Option<i64> {
        let consumer = self.consumer.lock().expect("hub lock").clone()?;
        let topic = self.source.topic.clone();
        tokio::task::spawn_blocking(move || {
            consumer
                .fetch_watermarks(&topic, partition, Duration::from_secs(1))
                .ok()
                .map(|(_, high)| high)
        })
        .await
        .ok()
        .flatten()
    }

    fn publish(&self, event: LiveEvent) {
        let mut position = self.position.lock().expect("hub lock");
        if let Some(position) = position.as_mut() {
            position.sent(event.partition, event.offset);
        }
        // No receiver is fine: the position still moves on.
        let _ = self.tx.send(Arc::new(event));
    }
}

/// A client's hold on a hub: the hub stays while someone holds one.
pub struct HubLease {
    hub: Arc<Hub>,
}

impl std::ops::Deref for HubLease {
    type Target = Hub;
    fn deref(&self) -> &Hub {
        &self.hub
    }
}

impl Drop for HubLease {
    fn drop(&mut self) {
        self.hub.leases.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The hubs of all sources, started on demand.
#[derive(Clone)]
pub struct Hubs {
    inner: Arc<HubsInner>,
}

struct HubsInner {
    hubs: Mutex<HashMap<String, Arc<Hub>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    kafka: KafkaArgs,
    metrics: SseMetrics,
    live_buffer: usize,
    idle: Duration,
    shutdown: ShutdownToken,
}

impl Hubs {
    pub fn new(
        kafka: KafkaArgs,
        metrics: SseMetrics,
        live_buffer: usize,
        idle: Duration,
        shutdown: ShutdownToken,
    ) -> Hubs {
        Hubs {
            inner: Arc::new(HubsInner {
                hubs: Mutex::new(HashMap::new()),
                tasks: Mutex::new(Vec::new()),
                kafka,
                metrics,
                live_buffer,
                idle,
                shutdown,
            }),
        }
    }

    /// The source's hub, started if it is not running.
    pub fn lease(&self, source: &Arc<SourceSpec>) -> HubLease {
        let mut hubs = self.inner.hubs.lock().expect("hubs lock");
        let hub = hubs
            .entry(source.name.clone())
            .or_insert_with(|| {
                let (tx, _) = broadcast::channel(self.inner.live_buffer);
                let hub = Arc::new(Hub {
                    source: source.clone(),
                    tx,
                    position: Mutex::new(None),
                    status: watch::Sender::new(HubStatus::Starting),
                    leases: AtomicUsize::new(0),
                    consumer: Mutex::new(None),
                });
                let task = tokio::spawn(run(hub.clone(), self.inner.clone()));
                let mut tasks = self.inner.tasks.lock().expect("tasks lock");
                tasks.retain(|t| !t.is_finished());
                tasks.push(task);
                hub
            })
            .clone();
        // Taken under the map's lock: a hub retiring for idleness checks it under the same lock.
        hub.leases.fetch_add(1, Ordering::SeqCst);
        HubLease { hub }
    }

    /// Waits for every hub to stop (they stop on the shutdown token), at most `timeout`.
    pub async fn join(&self, timeout: Duration) {
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.inner.tasks.lock().expect("tasks lock"));
        let all = async {
            for task in tasks {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(timeout, all).await.is_err() {
            tracing::warn!("live consumers did not stop in time");
        }
    }
}

impl HubsInner {
    /// Removes `hub` if nobody holds it; true when removed (it must then stop).
    fn retire_if_idle(&self, hub: &Arc<Hub>) -> bool {
        let mut hubs = self.hubs.lock().expect("hubs lock");
        if hub.leases.load(Ordering::SeqCst) != 0 {
            return false;
        }
        if hubs
            .get(&hub.source.name)
            .is_some_and(|h| Arc::ptr_eq(h, hub))
        {
            hubs.remove(&hub.source.name);
        }
        true
    }

    fn forget(&self, hub: &Arc<Hub>) {
        let mut hubs = self.hubs.lock().expect("hubs lock");
        if hubs
            .get(&hub.source.name)
            .is_some_and(|h| Arc::ptr_eq(h, hub))
        {
            hubs.remove(&hub.source.name);
        }
    }
}

/// Tracks how long a hub has had no client.
struct Idleness {
    since: Option<Instant>,
    limit: Duration,
}

impl Idleness {
    /// True once the hub has had no lease for the whole limit.
    fn expired(&mut self, hub: &Hub) -> bool {
        if hub.leases.load(Ordering::SeqCst) > 0 {
            self.since = None;
            return false;
        }
        let since = *self.since.get_or_insert_with(Instant::now);
        since.elapsed() >= self.limit
    }
}

#[tracing::instrument(skip_all, fields(source = %hub.source.name))]
async fn run(hub: Arc<Hub>, inner: Arc<HubsInner>) {
    match feed(&hub, &inner).await {
        Ok(()) => tracing::info!("live consumer stopped"),
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "live consumer failed");
            inner.forget(&hub);
        }
    }
    hub.consumer.lock().expect("hub lock").take();
    hub.status.send_replace(HubStatus::Stopped);
}

async fn feed(hub: &Arc<Hub>, inner: &HubsInner) -> anyhow::Result<()> {
    let source = &hub.source;
    let consumer: Arc<StreamConsumer> = Arc::new(
        inner
            .kafka
            .client_config(&live_consumer_settings())
            .create()
            .map_err(|err| anyhow!(inner.kafka.redacted(&err)))
            .context("creating the live Kafka consumer")?,
    );
    let mut idle = Idleness {
        since: None,
        limit: inner.idle,
    };
    let check_every = inner
        .idle
        .min(Duration::from_secs(1))
        .max(Duration::from_millis(10));

    // The topic's partitions and end offsets, once the topic exists.
    let mut warned = false;
    let start = loop {
        match end_offsets(consumer.clone(), &source.topic).await {
            Ok(start) => break start,
            Err(err) => {
                if !warned {
                    tracing::warn!(topic = %source.topic, error = format!("{err:#}"), "waiting for the source topic");
                    warned = true;
                }
            }
        }
        tokio::select! {
            _ = inner.shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if idle.expired(hub) && inner.retire_if_idle(hub) {
            return Ok(());
        }
    };
    let mut assignment = TopicPartitionList::new();
    for (partition, offset) in start.partitions() {
        assignment
            .add_partition_offset(&source.topic, partition, Offset::Offset(offset))
            .context("building the assignment")?;
    }
    consumer
        .assign(&assignment)
        .context("assigning the source topic's partitions")?;
    let _live = LiveConsumerStarted {
        topic: &source.topic,
        start: &start,
    }
    .emit(&inner.metrics);
    *hub.position.lock().expect("hub lock") = Some(start);
    *hub.consumer.lock().expect("hub lock") = Some(consumer.clone());
    hub.status.send_replace(HubStatus::Live);

    let mut warnings = Throttle::new(Duration::from_secs(10));
    let mut check = tokio::time::interval(check_every);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = inner.shutdown.cancelled() => return Ok(()),
            received = consumer.recv() => match received {
                Ok(message) => match render(source, &message) {
                    Ok(body) => hub.publish(LiveEvent { partition: message.partition(), offset: message.offset(), body }),
                    Err(error) => RecordUndecodable {
                        source: &source.name,
                        partition: message.partition(),
                        offset: message.offset(),
                        error: &error,
                    }
                    .emit(&inner.metrics),
                },
                Err(err) => {
                    // librdkafka retries by itself (a broker away, a leader moving): say so
                    // now and then, and slow down.
                    if warnings.ready() {
                        tracing::warn!(error = %err, "live consumer error");
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            _ = check.tick() => {
                if idle.expired(hub) && inner.retire_if_idle(hub) {
                    return Ok(());
                }
            }
        }
    }
}

/// Settings of the live consumer: partitions are assigned (no group is joined, nothing is
/// committed), only committed transactions are read, and the prefetch queue is bounded.
fn live_consumer_settings() -> Vec<(&'static str, &'static str)> {
    vec![
        ("client.id", "zoomstream-sse-live"),
        ("group.id", "zoomstream-sse"),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("isolation.level", "read_committed"),
        ("auto.offset.reset", "latest"),
        ("queued.max.messages.kbytes", "16384"),
    ]
}

/// Every partition of `topic` at its end: the last stable offset, as the consumer reads
/// `read_committed` (librdkafka asks with the consumer's isolation level).
async fn end_offsets(consumer: Arc<StreamConsumer>, topic: &str) -> anyhow::Result<Position> {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(5);
        let metadata = consumer
            .fetch_metadata(Some(&topic), timeout)
            .context("fetching metadata")?;
        let info = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .ok_or_else(|| anyhow!("no metadata for the topic"))?;
        if let Some(err) = info.error() {
            return Err(anyhow!("{:?}", err));
        }
        if info.partitions().is_empty() {
            return Err(anyhow!("the topic has no partitions"));
        }
        let mut position = Position::default();
        for partition in info.partitions() {
            let (_, high) = consumer
                .fetch_watermarks(&topic, partition.id(), timeout)
                .with_context(|| format!("reading the end of partition {}", partition.id()))?;
            position.set(partition.id(), high);
        }
        Ok(position)
    })
    .await
    .context("reading the topic's end offsets")?
}

/// Lets a repeated warning through at most once per interval.
pub(crate) struct Throttle {
    last: Option<Instant>,
    every: Duration,
}

impl Throttle {
    pub(crate) fn new(every: Duration) -> Throttle {
        Throttle { last: None, every }
    }

    pub(crate) fn ready(&mut self) -> bool {
        if self.last.is_some_and(|last| last.elapsed() < self.every) {
            return false;
        }
        self.last = Some(Instant::now());
        true
    }
}
