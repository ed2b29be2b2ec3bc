//! Replay protection inside the timestamp window: a request whose signature was already
//! published is not published again. It is answered 200, not 4xx: it is durably in Kafka, and a
//! retry by Zoom of a request whose first answer was lost must not look like a failure.
//!
//! The cache is per ingest instance. Replays spread over several instances are caught by
//! consumers through the deterministic event id, which the replay shares with its original.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct ReplayCache {
    window: Duration,
    max_entries: usize,
    seen: Mutex<HashMap<[u8; 32], Instant>>,
}

impl ReplayCache {
    /// Remembers signatures for `window` (the accepted timestamp distance, both ways), at most
    /// `max_entries` of them.
    pub fn new(window: Duration, max_entries: usize) -> Self {
        ReplayCache { window: window * 2, max_entries, seen: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Instant>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this signature was published within the window.
    pub fn was_published(&self, signature: &[u8; 32]) -> bool {
        self.lock().get(signature).is_some_and(|at| at.elapsed() < self.window)
    }

    /// Records a published signature. When full, expired entries are dropped first; if it is
    /// still full the signature is not remembered (memory stays bounded; the event id still
    /// marks the duplicate).
    pub fn published(&self, signature: [u8; 32]) {
        let mut seen = self.lock();
        if seen.len() >= self.max_entries {
            let window = self.window;
            seen.retain(|_, at| at.elapsed() < window);
        }
        if seen.len() < self.max_entries {
            seen.insert(signature, Instant::now());
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
        assert!(!cache.was_published(&[3; 32]), "full: not remembered");
        assert_eq!(cache.lock().len(), 2);

        let short = ReplayCache::new(Duration::ZERO, 10);
        short.published([1; 32]);
        assert!(!short.was_published(&[1; 32]), "expired");
    }
}
