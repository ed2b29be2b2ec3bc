//! A disk spool for long Kafka outages (opt-in: `ZOOMSTREAM_SPOOL_DIR`). When Kafka cannot
//! acknowledge a webhook within the publish budget, ingest appends it to the spool, fsynced,
//! and answers 200: durable on disk, not in memory. While the spool holds entries, new webhooks
//! queue behind them (so one key's webhooks stay in order), and a drainer publishes them to the
//! raw topic oldest first once Kafka is back, also after a restart. Bounded in bytes: full, a
//! webhook Kafka cannot take is answered 503 as without a spool.
//!
//! The store is redb, an embedded ACID key-value store in one file (pure Rust, well kept): a
//! committed write transaction is fsynced and survives a crash, which is the whole job; entries
//! are keyed by a sequence number, so the oldest is the first key.

pub mod drain;
pub mod entry;
pub mod events;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use prometheus::IntGauge;
use redb::{
    Database, ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _,
    TableDefinition,
};
use tokio::sync::Notify;
use zoomstream_runtime::metrics::register;

use crate::metrics::IngestMetrics;
use entry::SpooledWebhook;

const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("webhooks");

/// Why a webhook could not be spooled.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the spool is full ({max_bytes} bytes)")]
    Full { max_bytes: u64 },
    #[error("writing the spool failed")]
    Store(#[source] anyhow::Error),
}

/// The spool's gauges, on ingest's registry.
#[derive(Clone)]
pub struct SpoolMetrics {
    pub entries: IntGauge,
    pub bytes: IntGauge,
    pub oldest_age_seconds: IntGauge,
}

impl SpoolMetrics {
    fn new(metrics: &IngestMetrics) -> Self {
        let gauge = |name: &str, help: &str| {
            register(
                &metrics.registry,
                IntGauge::new(name, help).expect("valid metric"),
            )
        };
        SpoolMetrics {
            entries: gauge(
                "zoomstream_ingest_spool_entries",
                "Webhooks in the disk spool, waiting for Kafka.",
            ),
            bytes: gauge(
                "zoomstream_ingest_spool_bytes",
                "Bytes of webhooks in the disk spool.",
            ),
            oldest_age_seconds: gauge(
                "zoomstream_ingest_spool_oldest_age_seconds",
                "Age of the oldest webhook in the disk spool (0 when empty).",
            ),
        }
    }
}

/// The spool; shared by the request handlers and the drainer.
pub struct Spool {
    db: Database,
    path: PathBuf,
    max_bytes: u64,
    next_seq: AtomicU64,
    entries: AtomicU64,
    bytes: AtomicU64,
    /// Wakes the drainer when an entry is added.
    pub added: Notify,
    pub metrics: SpoolMetrics,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, with what an earlier process left in it.
    pub fn open(dir: &Path, max_bytes: u64, metrics: &IngestMetrics) -> anyhow::Result<Arc<Spool>> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the spool folder {}", dir.display()))?;
        let path = dir.join("webhooks.redb");
        let db = Database::create(&path)
            .with_context(|| format!("opening the spool {}", path.display()))?;
        let tx = db.begin_write()?;
        let (next_seq, entries, bytes) = {
            let table = tx.open_table(ENTRIES)?;
            let next = table.last()?.map_or(0, |(k, _)| k.value() + 1);
            let mut bytes = 0u64;
            for item in table.iter()? {
                bytes += item?.1.value().len() as u64;
            }
            (next, table.len()?, bytes)
        };
        tx.commit()?;
        let spool = Spool {
            db,
            path,
            max_bytes,
            next_seq: AtomicU64::new(next_seq),
            entries: AtomicU64::new(entries),
            bytes: AtomicU64::new(bytes),
            added: Notify::new(),
            metrics: SpoolMetrics::new(metrics),
        };
        spool.update_gauges();
        Ok(Arc::new(spool))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_empty(&self) -> bool {
        self.entries.load(Ordering::SeqCst) == 0
    }

    pub fn depth(&self) -> u64 {
        self.entries.load(Ordering::SeqCst)
    }

    /// Appends a webhook, fsynced before it returns. Blocking: call from a blocking thread.
    pub fn append(&self, value: Vec<u8>) -> Result<(), SpoolError> {
        let size = value.len() as u64;
        if self.bytes.load(Ordering::SeqCst) + size > self.max_bytes {
            return Err(SpoolError::Full {
                max_bytes: self.max_bytes,
            });
        }
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        let write = || -> anyhow::Result<()> {
            let tx = self.db.begin_write()?;
            tx.open_table(ENTRIES)?.insert(seq, value.as_slice())?;
            tx.commit()?;
            Ok(())
        };
        write().map_err(SpoolError::Store)?;
        self.entries.fetch_add(1, Ordering::SeqCst);
        self.bytes.fetch_add(size, Ordering::SeqCst);
        self.update_gauges();
        self.added.notify_one();
        Ok(())
    }

    /// The oldest entry, if any. Blocking.
    pub fn oldest(&self) -> anyhow::Result<Option<(u64, SpooledWebhook)>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ENTRIES)?;
        let Some((seq, value)) = table.first()? else {
            return Ok(None);
        };
        Ok(Some((seq.value(), entry::decode(value.value())?)))
    }

    /// Removes an entry once Kafka acknowledged it. Blocking.
    pub fn remove(&self, seq: u64) -> anyhow::Result<()> {
        let tx = self.db.begin_write()?;
        let removed = tx
            .open_table(ENTRIES)?
            .remove(seq)?
            .map(|v| v.value().len() as u64);
        tx.commit()?;
        if let Some(size) = removed {
            self.entries.fetch_sub(1, Ordering::SeqCst);
            self.bytes.fetch_sub(size, Ordering::SeqCst);
        }
        self.update_gauges();
        Ok(())
    }

    fn update_gauges(&self) {
        let depth = self.entries.load(Ordering::SeqCst);
        self.metrics
            .entries
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.metrics
            .bytes
            .set(i64::try_from(self.bytes.load(Ordering::SeqCst)).unwrap_or(i64::MAX));
        if depth == 0 {
            self.metrics.oldest_age_seconds.set(0);
        }
    }

    /// Sets the oldest entry's age (the drainer calls it with each entry it looks at).
    pub fn observe_oldest(&self, received_at_ms: i64, now_ms: i64) {
        self.metrics
            .oldest_age_seconds
            .set(now_ms.saturating_sub(received_at_ms).max(0) / 1000);
    }
}
