//! A bound on transactional librdkafka calls that can block past their own timeout.
//!
//! librdkafka 2.12's `send_offsets_to_transaction()` can wait forever when the group
//! coordinator's broker dies mid-transaction (confluentinc/librdkafka#5456: the call's timeout
//! is never checked; #5511: a decommissioned coordinator stays cached). A processor stuck there
//! holds its partitions and its open transaction for good, so a call that overruns its bound
//! ends the process instead, as a fenced processor does: its supervisor restarts it, the
//! coordinator aborts the open transaction, and the partitions resume from the last commit.
//! Nothing committed is lost and nothing is written twice (the transaction never commits).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::events::TransactionalCallHung;

/// How often the watchdog looks; a hang is noticed at most this late.
const CHECK_EVERY: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Armed {
    call: &'static str,
    since: Option<Instant>,
}

/// Watches one call at a time (the processor's transactional calls are made one at a time,
/// under the batch lock).
#[derive(Clone)]
pub struct CallWatchdog {
    armed: Arc<Mutex<Armed>>,
    limit: Duration,
}

impl CallWatchdog {
    /// Starts the watching thread: a call armed for longer than `limit` ends the process.
    pub fn start(limit: Duration) -> std::io::Result<Self> {
        let watchdog = CallWatchdog {
            armed: Arc::default(),
            limit,
        };
        let watched = watchdog.clone();
        std::thread::Builder::new()
            .name("call-watchdog".into())
            .spawn(move || loop {
                std::thread::sleep(CHECK_EVERY);
                let armed = watched.lock();
                if let Some(since) = armed.since {
                    if since.elapsed() > watched.limit {
                        TransactionalCallHung {
                            call: armed.call,
                            waited: since.elapsed(),
                        }
                        .emit();
                        // The stuck thread holds librdkafka: no destructor could finish.
                        std::process::exit(1);
                    }
                }
            })?;
        Ok(watchdog)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Armed> {
        self.armed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `call`, ending the process if it has not returned within the limit.
    pub fn bounded<T>(&self, name: &'static str, call: impl FnOnce() -> T) -> T {
        *self.lock() = Armed {
            call: name,
            since: Some(Instant::now()),
        };
        let result = call();
        *self.lock() = Armed::default();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_within_its_bound_returns_its_result_and_disarms() {
        let watchdog = CallWatchdog::start(Duration::from_secs(5)).unwrap();
        assert_eq!(watchdog.bounded("quick", || 7), 7);
        assert!(watchdog.lock().since.is_none());
    }
}
