//! Into Kafka or into the spool, and out of the spool into Kafka.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zoomstream_runtime::shutdown::ShutdownToken;

use crate::metrics::IngestMetrics;
use crate::publish::{PublishError, RawPublisher, RawRecord};
use crate::spool::events::{
    SpoolDrainStalled, SpoolRefused, SpooledWebhookPublished, WebhookSpooled,
};
use crate::spool::{entry, Spool, SpoolError};

const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Where a webhook was made durable.
pub enum Stored {
    Published { partition: i32, offset: i64 },
    Spooled,
}

/// Publishes a webhook, or, when Kafka cannot take it within the budget (or older webhooks
/// are still spooled), appends it to the spool. An error is what to answer 503 for.
pub async fn store(
    publisher: &RawPublisher,
    spool: Option<&Arc<Spool>>,
    record: &RawRecord<'_>,
    metrics: &IngestMetrics,
) -> Result<Stored, PublishError> {
    let Some(spool) = spool else {
        return publish(publisher, record).await;
    };
    // Behind older spooled webhooks, so one key's webhooks reach Kafka in order.
    if !spool.is_empty() {
        match append(spool, record).await {
            Ok(depth) => {
                WebhookSpooled {
                    app: record.app,
                    event: record.event,
                    event_id: record.event_id,
                    cause: None,
                    depth,
                }
                .emit(metrics);
                return Ok(Stored::Spooled);
            }
            Err(error) => SpoolRefused { error: &error }.emit(),
        }
    }
    match publish(publisher, record).await {
        Err(error) if !error.is_too_large() => match append(spool, record).await {
            Ok(depth) => {
                WebhookSpooled {
                    app: record.app,
                    event: record.event,
                    event_id: record.event_id,
                    cause: Some(&error),
                    depth,
                }
                .emit(metrics);
                Ok(Stored::Spooled)
            }
            Err(refused) => {
                SpoolRefused { error: &refused }.emit();
                Err(error)
            }
        },
        other => other,
    }
}

async fn publish(publisher: &RawPublisher, record: &RawRecord<'_>) -> Result<Stored, PublishError> {
    publisher
        .publish(record)
        .await
        .map(|(partition, offset)| Stored::Published { partition, offset })
}

/// Appends on a blocking thread (the write is fsynced); returns the new depth.
async fn append(spool: &Arc<Spool>, record: &RawRecord<'_>) -> Result<u64, SpoolError> {
    let value = entry::encode(record);
    let spool = spool.clone();
    tokio::task::spawn_blocking(move || spool.append(value).map(|()| spool.depth()))
        .await
        .map_err(|e| SpoolError::Store(e.into()))?
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Publishes the spool's entries oldest first, one at a time (so order is kept), removing each
/// once Kafka acknowledged it; waits for new entries when empty. Runs until `shutdown`.
pub async fn drain(spool: Arc<Spool>, publisher: Arc<RawPublisher>, shutdown: ShutdownToken) {
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let reader = spool.clone();
        let next = tokio::task::spawn_blocking(move || reader.oldest())
            .await
            .map_err(anyhow::Error::from)
            .and_then(|r| r);
        let stalled = match next {
            Ok(None) => {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = spool.added.notified() => {}
                    _ = tokio::time::sleep(RETRY_EVERY) => {}
                }
                continue;
            }
            Ok(Some((seq, webhook))) => {
                spool.observe_oldest(webhook.received_at_ms(), now_ms());
                match publisher.publish(&webhook.record()).await {
                    Ok((partition, offset)) => {
                        let remover = spool.clone();
                        let removed = tokio::task::spawn_blocking(move || remover.remove(seq))
                            .await
                            .map_err(anyhow::Error::from)
                            .and_then(|r| r);
                        match removed {
                            Ok(()) => {
                                SpooledWebhookPublished {
                                    event_id: webhook.record().event_id,
                                    partition,
                                    offset,
                                    left: spool.depth(),
                                }
                                .emit();
                                continue;
                            }
                            // Published but still spooled: published again later (same
                            // event id; the processors drop the repeat).
                            Err(error) => error,
                        }
                    }
                    Err(error) => anyhow::Error::new(error),
                }
            }
            Err(error) => error,
        };
        SpoolDrainStalled {
            error: &stalled,
            depth: spool.depth(),
        }
        .emit();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RETRY_EVERY) => {}
        }
    }
}
