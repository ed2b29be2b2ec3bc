//! Replay protection inside the timestamp window: a request whose signature was already
//! published is not published again. It is answered 200, not 4xx: it is durably in Kafka, and a
//! retry by Zoom of a request whose first answer was lost must not look like a failure.
//!
//! The cache is per ingest instance. Replays spread over several instances are caught by
//! consumers through the deterministic event id, which the replay shares with its original.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct ReplayCache {
    window: Duration,
    max_entries: usize,
    seen: Mutex<Seen>,
}

/// The signatures with when they were published, and the same in publication order, so that
/// expired entries are dropped from the front in O(1) each instead of scanning the whole map.
struct Seen {
    by_signature: HashMap<[u8; 32], Instant>,
    order: VecDeque<([u8; 32], Instant)>,
}

impl Seen {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_signature.len()
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

    /// Whether this signature was published within the window.
    pub fn was_published(&self, signature: &[u8; 32]) -> bool {
        self.lock()
            .by_signature
            .get(signature)
            .is_some_and(|at| at.elapsed() < self.window)
    }

    /// Records a published signature. Expired entries are dropped from the oldest end; when it
    /// is still full, the oldest entry is forgotten (memory stays bounded; the event id still
    /// marks a duplicate of a forgotten one).
    pub fn published(&self, signature: [u8; 32]) {
        let mut seen = self.lock();
        let now = Instant::now();
        while let Some(&(sig, at)) = seen.order.front() {
            let expired = now.duration_since(at) >= self.window;
            if !expired && seen.order.len() < self.max_entries {
                break;
            }
            seen.order.pop_front();
            // Only remove the map entry if it is this one (a re-publication refreshed it).
            if seen.by_signature.get(&sig) == Some(&at) {
                seen.by_signature.remove(&sig);
            }
        }
        if self.max_entries > 0 {
            seen.by_signature.insert(signature, now);
            seen.order.push_back((signature, now));
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
}
