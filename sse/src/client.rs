//! One client's stream.
//!
//! Each connection gets a small *feeder* task and a bounded queue (`client_buffer` events)
//! that the response body drains as fast as the socket takes it:
//!
//! 1. The feeder subscribes to the source's [`Hub`](crate::hub::Hub), learning the position the
//!    live feed starts after.
//! 2. If the client's start (its `Last-Event-ID`, or `from=earliest`) is behind that, it
//!    **catches up**: reads the missing records from Kafka with a consumer of its own (assigned
//!    partitions, no group, at most `max_catchups` at once), each partition up to the live
//!    feed's start, waiting for the client as it goes.
//! 3. Then it follows the **live feed**, skipping what the client already has. A live event
//!    that finds the client's queue full means the client cannot keep up: its stream ends with
//!    a `zoomstream.disconnected` event (reason `slow_client`) after what is queued. If it does
//!    not even read that within `slow_client_timeout`, its connection is cut.
//!
//! Every event's id is the client's position after it ([`Position`]), so a reconnect continues
//! exactly after the last event the client saw.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus::IntCounter;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, Semaphore};
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::{CancellationToken, DropGuard};
use zoomstream_runtime::kafka::KafkaArgs;
use zoomstream_runtime::shutdown::ShutdownToken;

use crate::events::{
    CatchUpStarted, ClientConnected, ClientDisconnected, RecordUndecodable, StreamEnded,
};
use crate::frames::{self, SourceSpec};
use crate::hub::{HubLease, HubStatus, Hubs, LiveEvent, Throttle};
use crate::metrics::{Reason, SseMetrics};
use crate::position::Position;
use crate::quotas::QuotaSlot;
use crate::resume::{self, ResumeError};

/// Where a new stream starts.
#[derive(Debug, Clone)]
pub enum Start {
    /// After everything already on the topic (the default for a new client).
    Latest,
    /// At the beginning of the topic.
    Earliest,
    /// Right after the event with this id (`Last-Event-ID`).
    Resume(Position),
}

impl Start {
    fn kind(&self) -> &'static str {
        match self {
            Start::Latest => "latest",
            Start::Earliest => "earliest",
            Start::Resume(_) => "resume",
        }
    }
}

/// What every client's stream shares.
pub struct Streams {
    pub hubs: Hubs,
    pub kafka: KafkaArgs,
    pub metrics: SseMetrics,
    pub keep_alive: Duration,
    pub retry_ms: u64,
    pub client_buffer: usize,
    pub slow_client_timeout: Duration,
    pub catchups: Arc<Semaphore>,
    pub max_clients: usize,
    pub clients: AtomicUsize,
    pub shutdown: ShutdownToken,
}

/// A piece of the stream.
enum Frame {
    /// A record: its shared part, then the client's id line.
    Event { body: Bytes, id: Bytes },
    /// Anything else (preamble, comments).
    Text(Bytes),
}

/// How long a request waits for its source's live feed before its response starts: a stream
/// whose response has started (`EventSource.onopen`) then misses nothing that comes after, even
/// from `latest`. A feed not live by then (its topic does not exist yet) is waited for inside
/// the stream, with keep-alives.
const SUBSCRIBE_BEFORE_RESPONSE: Duration = Duration::from_secs(5);

type Subscription = (broadcast::Receiver<Arc<LiveEvent>>, Position);

/// Why a stream was not started.
#[derive(Debug)]
pub enum Refused {
    /// The service already has `max_clients` clients.
    TooManyClients,
    /// The `Last-Event-ID` is not a position of the topic.
    BadId(ResumeError),
}

/// Starts a stream, holding `quota` (its token's and address's place) while it lasts.
pub async fn open(
    streams: &Arc<Streams>,
    source: Arc<SourceSpec>,
    start: Start,
    kill: CancellationToken,
    quota: QuotaSlot,
) -> Result<ClientBody, Refused> {
    let hub = streams.hubs.lease(&source);
    let subscription = tokio::time::timeout(SUBSCRIBE_BEFORE_RESPONSE, live(&hub))
        .await
        .ok()
        .flatten();
    // A feed not live yet (the topic does not exist) cannot check an id; the stream waits
    // for it, and an id it cannot follow is read from the beginning of what exists then.
    if let (Start::Resume(id), Some((_, live))) = (&start, &subscription) {
        resume::check(id, live, &hub)
            .await
            .map_err(Refused::BadId)?;
    }
    // Counted from here on (no await below): the body's drop uncounts it.
    if streams.clients.fetch_add(1, Ordering::SeqCst) >= streams.max_clients {
        streams.clients.fetch_sub(1, Ordering::SeqCst);
        return Err(Refused::TooManyClients);
    }
    let (tx, rx) = mpsc::channel(streams.client_buffer);
    let farewell = Arc::new(Mutex::new(None));
    let closed = CancellationToken::new();
    ClientConnected {
        source: &source.name,
        start: start.kind(),
    }
    .emit(&streams.metrics);
    let body = ClientBody {
        rx,
        pending_id: None,
        farewell: farewell.clone(),
        finished: false,
        events_sent: streams
            .metrics
            .events_sent
            .with_label_values(&[&source.name]),
        sent: 0,
        opened: Instant::now(),
        streams: streams.clone(),
        source: source.clone(),
        _closed: closed.clone().drop_guard(),
        _quota: quota,
    };
    let feeder = Feeder {
        streams: streams.clone(),
        source,
        out: Outbox {
            tx,
            last: Instant::now(),
            keep_alive: streams.keep_alive,
        },
        closed,
    };
    tokio::spawn(feeder.run(start, hub, subscription, farewell, kill));
    Ok(body)
}

/// The hub's live feed once it is live; `None` if it stopped first.
async fn live(hub: &HubLease) -> Option<Subscription> {
    let mut status = hub.status();
    loop {
        if let Some(subscription) = hub.subscribe() {
            return Some(subscription);
        }
        if *status.borrow_and_update() == HubStatus::Stopped || status.changed().await.is_err() {
            return None;
        }
    }
}

/// The response body: the queue, then the farewell (if the server ended the stream).
pub struct ClientBody {
    rx: mpsc::Receiver<Frame>,
    pending_id: Option<Bytes>,
    farewell: Arc<Mutex<Option<Reason>>>,
    finished: bool,
    events_sent: IntCounter,
    sent: u64,
    opened: Instant,
    streams: Arc<Streams>,
    source: Arc<SourceSpec>,
    /// Tells the feeder the body is gone (the client left, or the connection was cut).
    _closed: DropGuard,
    /// The stream's place in its token's and address's quotas.
    _quota: QuotaSlot,
}

impl futures_core::Stream for ClientBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(id) = self.pending_id.take() {
            return Poll::Ready(Some(Ok(id)));
        }
        if self.finished {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Frame::Event { body, id })) => {
                self.pending_id = Some(id);
                self.events_sent.inc();
                self.sent += 1;
                Poll::Ready(Some(Ok(body)))
            }
            Poll::Ready(Some(Frame::Text(text))) => Poll::Ready(Some(Ok(text))),
            Poll::Ready(None) => {
                self.finished = true;
                let reason = *self.farewell.lock().expect("farewell lock");
                Poll::Ready(reason.map(|r| Ok(frames::farewell(r))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for ClientBody {
    fn drop(&mut self) {
        self.streams.clients.fetch_sub(1, Ordering::SeqCst);
        ClientDisconnected {
            source: &self.source.name,
            ended_by_server: *self.farewell.lock().expect("farewell lock"),
            events: self.sent,
            connected_for: self.opened.elapsed(),
        }
        .emit(&self.streams.metrics);
    }
}

/// The sending side of a client's queue.
struct Outbox {
    tx: mpsc::Sender<Frame>,
    last: Instant,
    keep_alive: Duration,
}

impl Outbox {
    fn is_full(&self) -> bool {
        self.tx.capacity() == 0
    }

    /// Queues a frame if there is room (comments are dropped when the client has data queued:
    /// it needs no keep-alive then).
    fn offer(&mut self, frame: Frame) -> bool {
        let queued = self.tx.try_send(frame).is_ok();
        if queued {
            self.last = Instant::now();
        }
        queued
    }

    fn keep_alive_if_idle(&mut self) {
        if self.last.elapsed() >= self.keep_alive {
            self.offer(Frame::Text(frames::comment("keep-alive")));
        }
    }
}

/// Ticks at the keep-alive interval.
fn ticker(every: Duration) -> Interval {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

struct Feeder {
    streams: Arc<Streams>,
    source: Arc<SourceSpec>,
    out: Outbox,
    /// Cancelled when the response body is dropped.
    closed: CancellationToken,
}

impl Feeder {
    async fn run(
        mut self,
        start: Start,
        hub: HubLease,
        subscription: Option<Subscription>,
        farewell: Arc<Mutex<Option<Reason>>>,
        kill: CancellationToken,
    ) {
        let reason = self.stream(start, &hub, subscription).await;
        drop(hub);
        if reason == Reason::ClientClosed {
            return;
        }
        *farewell.lock().expect("farewell lock") = Some(reason);
        StreamEnded {
            source: &self.source.name,
            reason,
            queued: self.out.tx.max_capacity() - self.out.tx.capacity(),
        }
        .emit(&self.streams.metrics);
        let Feeder {
            streams,
            source,
            out,
            closed,
        } = self;
        // Closing the queue lets the body send what is queued, the farewell, then end.
        drop(out);
        if reason == Reason::Shutdown {
            // The service cuts what is left when its shutdown grace ends.
            return;
        }
        tokio::select! {
            _ = closed.cancelled() => {}
            _ = tokio::time::sleep(streams.slow_client_timeout) => {
                tracing::warn!(source = %source.name, reason = reason.as_str(), "cutting the connection of a client that does not read");
                kill.cancel();
            }
        }
    }

    /// Streams until the client leaves or the server ends the stream; says why.
    async fn stream(
        &mut self,
        start: Start,
        hub: &HubLease,
        subscription: Option<Subscription>,
    ) -> Reason {
        self.out.offer(Frame::Text(frames::preamble(
            self.streams.retry_ms,
            &self.source.name,
        )));
        let (mut rx, mut target) = match subscription {
            Some(subscription) => subscription,
            None => match self.subscribe(hub).await {
                Ok(subscription) => subscription,
                Err(reason) => return reason,
            },
        };
        let mut position = match start {
            Start::Latest => target.clone(),
            Start::Earliest => Position::beginning(target.partitions().map(|(p, _)| p)),
            Start::Resume(position) => position,
        };
        let mut ticker = ticker(self.streams.keep_alive);
        let mut announced = false;
        loop {
            if position.behind(&target).next().is_some() {
                if let Err(reason) = self.catch_up(&mut position, &target, &mut ticker).await {
                    return reason;
                }
            }
            if !announced {
                // For people and tests reading the raw stream: from here on, events come live.
                self.out.offer(Frame::Text(frames::comment("live")));
                announced = true;
            }
            loop {
                tokio::select! {
                    biased;
                    _ = self.streams.shutdown.cancelled() => return Reason::Shutdown,
                    _ = self.closed.cancelled() => return Reason::ClientClosed,
                    received = rx.recv() => match received {
                        Ok(event) => {
                            if position.covers(event.partition, event.offset) {
                                continue;
                            }
                            if self.out.is_full() {
                                return Reason::SlowClient;
                            }
                            position.sent(event.partition, event.offset);
                            let id = frames::id_line(&position);
                            if !self.out.offer(Frame::Event { body: event.body.clone(), id }) {
                                return Reason::ClientClosed;
                            }
                        }
                        Err(RecvError::Lagged(missed)) => {
                            // This task fell more than the live buffer behind the feed (the
                            // server, not the client, was slow): read the gap from Kafka.
                            tracing::debug!(source = %self.source.name, missed, "fell behind the live feed; catching up from Kafka");
                            match hub.subscribe() {
                                Some((new_rx, new_target)) => {
                                    rx = new_rx;
                                    target = new_target;
                                    break;
                                }
                                None => return Reason::SourceUnavailable,
                            }
                        }
                        Err(RecvError::Closed) => return Reason::SourceUnavailable,
                    },
                    _ = ticker.tick() => self.out.keep_alive_if_idle(),
                }
            }
        }
    }

    /// Waits until the hub is live, then subscribes.
    async fn subscribe(&mut self, hub: &HubLease) -> Result<Subscription, Reason> {
        let mut status = hub.status();
        let mut ticker = ticker(self.streams.keep_alive);
        let mut told = false;
        loop {
            if let Some(subscription) = hub.subscribe() {
                return Ok(subscription);
            }
            if *status.borrow_and_update() == HubStatus::Stopped {
                return Err(if self.streams.shutdown.is_cancelled() {
                    Reason::Shutdown
                } else {
                    Reason::SourceUnavailable
                });
            }
            if !told {
                self.out
                    .offer(Frame::Text(frames::comment("waiting for the source topic")));
                told = true;
            }
            tokio::select! {
                _ = self.streams.shutdown.cancelled() => return Err(Reason::Shutdown),
                _ = self.closed.cancelled() => return Err(Reason::ClientClosed),
                changed = status.changed() => if changed.is_err() {
                    return Err(Reason::SourceUnavailable);
                },
                _ = ticker.tick() => self.out.keep_alive_if_idle(),
            }
        }
    }

    /// Reads what `position` lacks up to `target` from Kafka and queues it, waiting for the
    /// client (at most `slow_client_timeout` per event).
    async fn catch_up(
        &mut self,
        position: &mut Position,
        target: &Position,
        ticker: &mut Interval,
    ) -> Result<(), Reason> {
        let mut pending: BTreeMap<i32, i64> = position
            .behind(target)
            .map(|(p, _, until)| (p, until))
            .collect();
        let streams = self.streams.clone();
        let source = self.source.clone();
        let _permit = loop {
            tokio::select! {
                permit = streams.catchups.clone().acquire_owned() => break permit.map_err(|_| Reason::Shutdown)?,
                _ = streams.shutdown.cancelled() => return Err(Reason::Shutdown),
                _ = self.closed.cancelled() => return Err(Reason::ClientClosed),
                _ = ticker.tick() => self.out.keep_alive_if_idle(),
            }
        };
        CatchUpStarted {
            source: &source.name,
            from: position,
            until: target,
        }
        .emit(&streams.metrics);
        let consumer: StreamConsumer = streams.kafka.client_config(&catch_up_settings()).create().map_err(|err| {
            tracing::error!(source = %source.name, error = %streams.kafka.redacted(&err), "cannot create a catch-up consumer");
            Reason::SourceUnavailable
        })?;
        let mut assignment = TopicPartitionList::new();
        for (partition, from, _) in position.behind(target) {
            let offset = if from == 0 {
                Offset::Beginning
            } else {
                Offset::Offset(from)
            };
            assignment
                .add_partition_offset(&source.topic, partition, offset)
                .map_err(|_| Reason::SourceUnavailable)?;
        }
        consumer.assign(&assignment).map_err(|err| {
            tracing::error!(source = %source.name, error = %err, "cannot assign the catch-up consumer");
            Reason::SourceUnavailable
        })?;
        let mut warnings = Throttle::new(Duration::from_secs(10));
        let mut check = tokio::time::interval(Duration::from_millis(100));
        check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        while !pending.is_empty() {
            tokio::select! {
                biased;
                _ = streams.shutdown.cancelled() => return Err(Reason::Shutdown),
                _ = self.closed.cancelled() => return Err(Reason::ClientClosed),
                received = consumer.recv() => match received {
                    Ok(message) => {
                        let (partition, offset) = (message.partition(), message.offset());
                        let Some(&until) = pending.get(&partition) else { continue };
                        if offset < until && !position.covers(partition, offset) {
                            match frames::render(&source, &message) {
                                Ok(body) => {
                                    position.sent(partition, offset);
                                    let frame = Frame::Event { body, id: frames::id_line(position) };
                                    self.send_waiting(frame).await?;
                                }
                                Err(error) => RecordUndecodable {
                                    source: &source.name,
                                    partition,
                                    offset,
                                    error: &error,
                                }
                                .emit(&streams.metrics),
                            }
                        }
                        if offset + 1 >= until {
                            done(&consumer, &source.topic, &mut pending, partition);
                        }
                    }
                    Err(err) => {
                        if warnings.ready() {
                            tracing::warn!(source = %source.name, error = %err, "catch-up consumer error");
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
                _ = check.tick() => {
                    // A partition whose last records before the target are transaction markers
                    // yields no message there: its consumer position tells it is done.
                    if let Ok(at) = consumer.position() {
                        for element in at.elements() {
                            if let (Offset::Offset(next), Some(&until)) = (element.offset(), pending.get(&element.partition())) {
                                if next >= until {
                                    done(&consumer, &source.topic, &mut pending, element.partition());
                                }
                            }
                        }
                    }
                    self.out.keep_alive_if_idle();
                }
            }
        }
        Ok(())
    }

    /// Queues a frame, waiting for room at most `slow_client_timeout`.
    async fn send_waiting(&mut self, frame: Frame) -> Result<(), Reason> {
        tokio::select! {
            biased;
            _ = self.streams.shutdown.cancelled() => Err(Reason::Shutdown),
            sent = tokio::time::timeout(self.streams.slow_client_timeout, self.out.tx.send(frame)) => match sent {
                Ok(Ok(())) => {
                    self.out.last = Instant::now();
                    Ok(())
                }
                Ok(Err(_)) => Err(Reason::ClientClosed),
                Err(_) => Err(Reason::SlowClient),
            },
        }
    }
}

/// Stops reading a partition the catch-up has finished.
fn done(consumer: &StreamConsumer, topic: &str, pending: &mut BTreeMap<i32, i64>, partition: i32) {
    if pending.remove(&partition).is_some() {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        if let Err(err) = consumer.pause(&tpl) {
            tracing::debug!(error = %err, partition, "cannot pause a finished partition");
        }
    }
}

/// Settings of a catch-up consumer: assigned partitions (no group, nothing committed), only
/// committed transactions, and a small prefetch queue (it reads as fast as its client only).
fn catch_up_settings() -> Vec<(&'static str, &'static str)> {
    vec![
        ("client.id", "zoomstream-sse-catch-up"),
        ("group.id", "zoomstream-sse"),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("isolation.level", "read_committed"),
        // An id older than the topic's retention continues at the oldest record kept.
        ("auto.offset.reset", "earliest"),
        ("queued.max.messages.kbytes", "1024"),
    ]
}
