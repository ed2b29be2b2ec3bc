//! Connections that have not sent a request yet, oldest first. When every connection slot is
//! taken, a new connection displaces the oldest of them instead of being refused: an attacker
//! holding connections from many addresses open without a request cannot lock out a client
//! that sends one at once (as Zoom does), while a connection serving a request, or a stream,
//! is never displaced.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
pub struct Waiting {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    by_age: BTreeMap<u64, CancellationToken>,
}

/// A connection's place in the queue until its first request (or its end).
pub struct WaitingEntry {
    waiting: Waiting,
    id: u64,
    /// Cancelled when the connection is displaced.
    pub displaced: CancellationToken,
}

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new connection, waiting for its first request.
    pub fn enter(&self) -> WaitingEntry {
        let mut inner = self.lock();
        let id = inner.next;
        inner.next += 1;
        let displaced = CancellationToken::new();
        inner.by_age.insert(id, displaced.clone());
        WaitingEntry {
            waiting: self.clone(),
            id,
            displaced,
        }
    }

    /// Displaces the oldest waiting connection; `false` when none waits.
    pub fn displace_oldest(&self) -> bool {
        match self.lock().by_age.pop_first() {
            Some((_, displaced)) => {
                displaced.cancel();
                true
            }
            None => false,
        }
    }
}

impl WaitingEntry {
    /// The connection sent a request: it can no longer be displaced.
    pub fn leave(&self) {
        self.waiting.lock().by_age.remove(&self.id);
    }
}

impl Drop for WaitingEntry {
    fn drop(&mut self) {
        self.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_connection_without_a_request_is_displaced_first() {
        let waiting = Waiting::default();
        let first = waiting.enter();
        let second = waiting.enter();
        let third = waiting.enter();
        first.leave();
        assert!(waiting.displace_oldest());
        assert!(!first.displaced.is_cancelled(), "it sent a request");
        assert!(second.displaced.is_cancelled());
        drop(third);
        assert!(!waiting.displace_oldest(), "no one is waiting");
    }
}
