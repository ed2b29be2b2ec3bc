//! Replay protection inside the timestamp window: a request whose signature was already
//! published is not published again. It is answered 200, not 4xx: it is durably in Kafka, and a
//! retry by Zoom of a request whose first answer was lost must not look like a failure.
//!
//! Copies arriving together are published once too: the first delivery of a signature
//! *reserves* it ([`Claim::First`]) before publishing; copies arriving meanwhile get
//! [`Claim::Pending`] and wait for its outcome, answering like it (`duplicate` once it is
//! published; 503 if it failed, after which the signature is free again and a retry may
//! publish).
//!
//! The cache is per ingest instance. Replays spread over several instances are caught by
//! consumers through the deterministic event id, which the replay shares with its original.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub struct ReplayCache {
    window: Duration,
    max_entries: usize,
    seen: Mutex<Seen>,
}

type Signature = [u8; 32];

/// The outcome of a delivery being published, as the copies waiting for it see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Publishing,
    Published,
    Failed,
}

enum Entry {
    Published(Instant),
    /// Reserved by a delivery being published; `u64` tells reservations apart.
    Publishing(u64, watch::Receiver<Outcome>),
}

/// The signatures with their state, and the published ones in publication order, so that
/// expired entries are dropped from the front in O(1) each instead of scanning the whole map.
struct Seen {
    by_signature: HashMap<Signature, Entry>,
    order: VecDeque<(Signature, Instant)>,
    next_reservation: u64,
}

impl Seen {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_signature.len()
    }
}

/// What a delivery of a verified request is to do.
pub enum Claim<'a> {
    /// The first delivery: publish it, then call [`Reservation::published`]. Dropping the
    /// reservation unpublished frees the signature and fails the waiting copies.
    First(Reservation<'a>),
    /// Published within the window: answer `duplicate`.
    Published,
    /// Another delivery of it is being published: wait for [`wait`]'s outcome.
    Pending(watch::Receiver<Outcome>),
}

/// A signature being published by one delivery.
pub struct Reservation<'a> {
    cache: &'a ReplayCache,
    signature: Signature,
    id: u64,
    outcome: watch::Sender<Outcome>,
    done: bool,
}

impl Reservation<'_> {
    /// The publish succeeded: the signature is remembered and the waiting copies are told.
    pub fn published(mut self) {
        self.done = true;
        self.cache.published(self.signature);
        self.outcome.send_replace(Outcome::Published);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut seen = self.cache.lock();
        if matches!(seen.by_signature.get(&self.signature), Some(Entry::Publishing(id, _)) if *id == self.id)
        {
            seen.by_signature.remove(&self.signature);
        }
        drop(seen);
        self.outcome.send_replace(Outcome::Failed);
    }
}

/// The outcome of the delivery a [`Claim::Pending`] waits for (`Failed` if it went away).
pub async fn wait(mut pending: watch::Receiver<Outcome>) -> Outcome {
    match pending.wait_for(|o| *o != Outcome::Publishing).await {
        Ok(outcome) => *outcome,
        Err(_) => Outcome::Failed,
    }
}

impl ReplayCache {
    /// Remembers signatures for `window` (the accepted timestamp distance, both ways), at most
    /// `max_entries` of them.
    pub fn new(window: Duration, max_entries: usize) -> Self {
        // Sized up front: growing a map of 100k+ entries copies megabytes under the lock every
        // request waits for, and each doubling was a step in ingest's RSS. Twice `max_entries`
        // for the map: at the cap every insert follows a removal, and hashbrown reclaims the
        // removed slots in place only while the live entries fill at most half its capacity;
        // sized for `max_entries` alone it grew once more, mid-run (BENCHMARKS.md).
        let seen = Seen {
            by_signature: HashMap::with_capacity(max_entries.saturating_mul(2)),
            order: VecDeque::with_capacity(max_entries),
            next_reservation: 0,
        };
        ReplayCache {
            window: window * 2,
            max_entries,
            seen: Mutex::new(seen),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims a verified signature for publication (see [`Claim`]).
    pub fn claim(&self, signature: &Signature) -> Claim<'_> {
        let mut seen = self.lock();
        match seen.by_signature.get(signature) {
            Some(Entry::Published(at)) if at.elapsed() < self.window => return Claim::Published,
            Some(Entry::Publishing(_, outcome)) => return Claim::Pending(outcome.clone()),
            _ => {}
        }
        let id = seen.next_reservation;
        seen.next_reservation += 1;
        let (outcome, rx) = watch::channel(Outcome::Publishing);
        seen.by_signature
            .insert(*signature, Entry::Publishing(id, rx));
        Claim::First(Reservation {
            cache: self,
            signature: *signature,
            id,
            outcome,
            done: false,
        })
    }

    /// Whether this signature was published within the window.
    pub fn was_published(&self, signature: &Signature) -> bool {
        matches!(
            self.lock().by_signature.get(signature),
            Some(Entry::Published(at)) if at.elapsed() < self.window
        )
    }

    /// Records a published signature. Expired entries are dropped from the oldest end; when it
    /// is still full, the oldest entry is forgotten (memory stays bounded; the event id still
    /// marks a duplicate of a forgotten one).
    pub fn published(&self, signature: Signature) {
        let mut seen = self.lock();
        let now = Instant::now();
        while let Some(&(sig, at)) = seen.order.front() {
            let expired = now.duration_since(at) >= self.window;
            if !expired && seen.order.len() < self.max_entries {
                break;
            }
            seen.order.pop_front();
            // Only remove the map entry if it is this one (a re-publication refreshed it).
            if matches!(seen.by_signature.get(&sig), Some(Entry::Published(t)) if *t == at) {
                seen.by_signature.remove(&sig);
            }
        }
        if self.max_entries > 0 {
            seen.by_signature.insert(signature, Entry::Published(now));
            seen.order.push_back((signature, now));
        } else {
            seen.by_signature.remove(&signature);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_within_the_window_and_stays_bounded() {
        let cache = ReplayCache::new(Duration::from_secs(300), 2);
        assert!(!cache.was_published(&[1; 32]));
        cache.published([1; 32]);
        assert!(cache.was_published(&[1; 32]));
        cache.published([2; 32]);
        cache.published([3; 32]);
        assert!(
            cache.was_published(&[3; 32]),
            "full: the oldest is forgotten"
        );
        assert!(!cache.was_published(&[1; 32]));
        assert_eq!(cache.lock().len(), 2);

        let short = ReplayCache::new(Duration::ZERO, 10);
        short.published([1; 32]);
        assert!(!short.was_published(&[1; 32]), "expired");
    }

    #[tokio::test]
    async fn copies_wait_for_the_first_delivery_and_answer_like_it() {
        let cache = ReplayCache::new(Duration::from_secs(300), 10);
        let Claim::First(first) = cache.claim(&[7; 32]) else {
            panic!("the first delivery reserves")
        };
        let Claim::Pending(copy) = cache.claim(&[7; 32]) else {
            panic!("a copy waits")
        };
        drop(first);
        assert_eq!(wait(copy).await, Outcome::Failed);

        let Claim::First(retry) = cache.claim(&[7; 32]) else {
            panic!("after a failure a retry may publish")
        };
        let Claim::Pending(copy) = cache.claim(&[7; 32]) else {
            panic!("a copy waits")
        };
        retry.published();
        assert_eq!(wait(copy).await, Outcome::Published);
        assert!(matches!(cache.claim(&[7; 32]), Claim::Published));
    }
}
