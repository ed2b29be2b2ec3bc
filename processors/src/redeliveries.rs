//! Zoom's redeliveries, written once: each raw event id reaches a source topic at most once
//! within a window (default 2 h, longer than Zoom's 85-minute retry horizon).
//!
//! Two deliveries of one event share the raw event id and the partition key, so they land on
//! one raw partition, and the ids seen on each partition this process owns are enough. The
//! state lives in Kafka itself: when a partition is assigned (after a restart or a rebalance),
//! the raw partition is read again from the window's start (found with offsets-for-times) up
//! to the group's committed offset, the records whose outputs are already written; what comes
//! after is read by the loop as usual. No external store.
//!
//! An id seen by the open batch counts at once, and is forgotten again if the batch is
//! aborted, since its records are then read again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use sha2::{Digest as _, Sha256};
use zoomstream_schemas::raw::headers;

use crate::events;

/// Reading a partition's window again; the loop waits for it (it runs in the rebalance
/// callback), well within `max.poll.interval.ms` (5 min).
const LOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// Asking the group coordinator for the committed offsets: short, since a coordinator that is
/// moving would hold the whole loop (the window is then incomplete, and says so).
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(10);

/// An event id as the window keeps it: 16 bytes. Ingest's ids (and the ids derived from them)
/// are 32 hex digits, the first 128 bits of a SHA-256, kept as those bits; any other id by the
/// first 128 bits of its own SHA-256. As strings in a map and a queue an id cost ~170 bytes, and
/// the window holds every id of the last 2 h: the 5-minute benchmark run at 4 173 webhooks/s
/// grew the processor from 102 to 211 MiB (BENCHMARKS.md, P3). Now ~64 bytes per id.
type IdKey = u128;

fn id_key(id: &str) -> IdKey {
    // Lower-case only: "ABC…" is another id than "abc…", and keeps its own key.
    if id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        if let Ok(bits) = u128::from_str_radix(id, 16) {
            return bits;
        }
    }
    let digest = Sha256::digest(id.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(first)
}

/// The event ids one raw partition carried within the window, by record timestamp.
#[derive(Default)]
struct Seen {
    ids: HashMap<IdKey, i64>,
    order: VecDeque<(i64, IdKey)>,
}

impl Seen {
    /// Whether `id` was seen within `window_ms` before `ts`; records it when not.
    fn check(&mut self, id: IdKey, ts: i64, window_ms: i64) -> bool {
        while let Some((oldest, _)) = self.order.front() {
            if *oldest >= ts.saturating_sub(window_ms) {
                break;
            }
            let (oldest, old_id) = self.order.pop_front().expect("front exists");
            if self.ids.get(&old_id) == Some(&oldest) {
                self.ids.remove(&old_id);
            }
        }
        match self.ids.get(&id) {
            Some(&seen) if ts.saturating_sub(seen) <= window_ms => true,
            _ => {
                self.ids.insert(id, ts);
                self.order.push_back((ts, id));
                false
            }
        }
    }
}

#[derive(Default)]
struct State {
    partitions: HashMap<i32, Seen>,
    /// Ids first seen by the open batch: forgotten if it aborts.
    pending: Vec<(i32, IdKey)>,
}

/// The redelivery filter of one processor; shared by the loop, the batches and the rebalance
/// callback.
pub struct Redeliveries {
    /// Zero: off (every delivery is written).
    window_ms: i64,
    /// A group-less reader of the raw topic, for rebuilding a partition's ids.
    loader: ClientConfig,
    raw_topic: String,
    state: Mutex<State>,
}

impl Redeliveries {
    pub fn new(window: Duration, loader: ClientConfig, raw_topic: String) -> Self {
        Redeliveries {
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
            loader,
            raw_topic,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn enabled(&self) -> bool {
        self.window_ms > 0
    }

    /// Whether the record at `partition` with `event_id` and timestamp `ts` (ms) repeats one
    /// seen within the window; a first delivery is remembered in the open batch.
    pub fn is_redelivery(&self, partition: i32, event_id: &str, ts: i64) -> bool {
        if !self.enabled() {
            return false;
        }
        let id = id_key(event_id);
        let mut state = self.lock();
        let seen = state
            .partitions
            .entry(partition)
            .or_default()
            .check(id, ts, self.window_ms);
        if !seen {
            state.pending.push((partition, id));
        }
        seen
    }

    /// The open batch committed: its ids stay.
    pub fn batch_committed(&self) {
        self.lock().pending.clear();
    }

    /// The open batch aborted: its records will be read again, so their ids are forgotten.
    pub fn batch_aborted(&self) {
        let mut state = self.lock();
        let pending = std::mem::take(&mut state.pending);
        for (partition, id) in pending {
            if let Some(seen) = state.partitions.get_mut(&partition) {
                seen.ids.remove(&id);
            }
        }
    }

    /// Partitions given up: another process rebuilds their ids.
    pub fn forget(&self, partitions: &TopicPartitionList) {
        let mut state = self.lock();
        for element in partitions.elements() {
            state.partitions.remove(&element.partition());
        }
    }

    /// Partitions assigned, with the group's committed offsets: each one's ids are read again
    /// from the window's start up to its committed offset. A partition without a committed
    /// offset is read from its start by the loop itself.
    pub fn rebuild<C: rdkafka::consumer::ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        assigned: &TopicPartitionList,
    ) {
        if !self.enabled() {
            return;
        }
        let committed = match consumer.committed_offsets(assigned.clone(), COMMITTED_TIMEOUT) {
            Ok(committed) => committed,
            Err(error) => {
                events::RedeliveryStateIncomplete {
                    partition: -1,
                    error: &error,
                }
                .emit();
                return;
            }
        };
        for element in committed.elements() {
            let partition = element.partition();
            let Offset::Offset(until) = element.offset() else {
                self.lock().partitions.insert(partition, Seen::default());
                continue;
            };
            let started = Instant::now();
            match self.load(partition, until) {
                Ok(seen) => {
                    events::RedeliveryStateRebuilt {
                        partition,
                        event_ids: seen.ids.len(),
                        elapsed: started.elapsed(),
                    }
                    .emit();
                    self.lock().partitions.insert(partition, seen);
                }
                Err(error) => events::RedeliveryStateIncomplete {
                    partition,
                    error: &error,
                }
                .emit(),
            }
        }
    }

    /// The ids of `partition` from the window's start up to `until` (exclusive).
    fn load(&self, partition: i32, until: i64) -> Result<Seen, KafkaError> {
        let mut seen = Seen::default();
        let loader: BaseConsumer = self.loader.create()?;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let mut wanted = TopicPartitionList::new();
        wanted.add_partition_offset(
            &self.raw_topic,
            partition,
            Offset::Offset(now_ms.saturating_sub(self.window_ms)),
        )?;
        let found = loader.offsets_for_times(wanted, LOAD_TIMEOUT)?;
        let start = match found
            .find_partition(&self.raw_topic, partition)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(start)) if start < until => start,
            // Nothing that recent, or nothing before `until`.
            _ => return Ok(seen),
        };
        let mut from = TopicPartitionList::new();
        from.add_partition_offset(&self.raw_topic, partition, Offset::Offset(start))?;
        loader.assign(&from)?;
        let deadline = Instant::now() + LOAD_TIMEOUT;
        loop {
            if Instant::now() >= deadline {
                return Err(KafkaError::Seek(
                    "the raw partition was not read in time".into(),
                ));
            }
            match loader.poll(Duration::from_millis(100)) {
                None => {}
                Some(Err(KafkaError::PartitionEOF(_))) => return Ok(seen),
                Some(Err(error)) => return Err(error),
                Some(Ok(msg)) => {
                    if msg.offset() >= until {
                        return Ok(seen);
                    }
                    let id = msg.headers().and_then(|h| {
                        h.iter()
                            .find(|h| h.key == headers::EVENT_ID)
                            .and_then(|h| h.value)
                            .and_then(|v| std::str::from_utf8(v).ok())
                    });
                    if let (Some(id), Some(ts)) = (id, msg.timestamp().to_millis()) {
                        seen.check(id_key(id), ts, self.window_ms);
                    }
                    if msg.offset() + 1 >= until {
                        return Ok(seen);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(window_ms: u64) -> Redeliveries {
        Redeliveries::new(
            Duration::from_millis(window_ms),
            ClientConfig::new(),
            "raw".into(),
        )
    }

    #[test]
    fn a_repeat_within_the_window_is_a_redelivery_and_one_after_it_is_not() {
        let f = filter(1000);
        assert!(!f.is_redelivery(0, "a", 10_000));
        assert!(f.is_redelivery(0, "a", 10_900));
        assert!(!f.is_redelivery(1, "a", 10_900), "per partition");
        assert!(!f.is_redelivery(0, "a", 12_000), "outside the window");
        assert!(f.is_redelivery(0, "a", 12_500));
    }

    #[test]
    fn an_aborted_batch_forgets_its_ids_and_a_committed_one_keeps_them() {
        let f = filter(1000);
        assert!(!f.is_redelivery(0, "kept", 1));
        f.batch_committed();
        assert!(!f.is_redelivery(0, "aborted", 2));
        f.batch_aborted();
        assert!(
            !f.is_redelivery(0, "aborted", 2),
            "read again after the abort"
        );
        assert!(f.is_redelivery(0, "kept", 3));
    }

    #[test]
    fn ids_are_kept_as_their_128_bits_and_other_ids_by_their_digest() {
        let ingest_id = "0ce0edb12f920abcf559d58a683587d9";
        assert_eq!(id_key(ingest_id), 0x0ce0edb12f920abcf559d58a683587d9);
        assert_ne!(id_key(&ingest_id.to_uppercase()), id_key(ingest_id));
        assert_ne!(id_key("a"), id_key("b"));
        assert_ne!(id_key("not-hex-but-32-characters-long!!"), 0);
        let f = filter(1000);
        assert!(!f.is_redelivery(0, ingest_id, 1));
        assert!(f.is_redelivery(0, ingest_id, 2));
    }

    #[test]
    fn a_zero_window_turns_it_off_and_old_ids_are_dropped() {
        let off = filter(0);
        assert!(!off.is_redelivery(0, "a", 1));
        assert!(!off.is_redelivery(0, "a", 1));
        let f = filter(10);
        for ts in 0..1000 {
            f.is_redelivery(0, &format!("id-{ts}"), ts);
        }
        let state = f.lock();
        assert!(
            state.partitions[&0].ids.len() <= 11,
            "only the window's ids are kept"
        );
    }
}
