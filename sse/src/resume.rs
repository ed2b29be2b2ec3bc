//! Checking a `Last-Event-ID` against the topic before streaming from it: an id names only
//! partitions the topic has, at offsets no further than their ends. A forged id (an offset past
//! the end, `i64::MAX`, a partition that does not exist) would otherwise give a stream that
//! never delivers, and its made-up partitions would be copied into every later id.

use crate::hub::Hub;
use crate::position::Position;

/// Why an id cannot be resumed from; the message is the 400's reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResumeError {
    #[error("the id names partition {0}, which the source's topic does not have")]
    NoSuchPartition(i32),
    #[error("the id is past the end of partition {partition} (at {end})")]
    PastTheEnd { partition: i32, end: i64 },
    #[error("the end of partition {0} cannot be read right now to check the id")]
    Unchecked(i32),
}

impl ResumeError {
    /// The `error` code of the 400 (or 503, for [`ResumeError::Unchecked`]).
    pub fn code(&self) -> &'static str {
        match self {
            ResumeError::NoSuchPartition(_) | ResumeError::PastTheEnd { .. } => "bad_last_event_id",
            ResumeError::Unchecked(_) => "source_unavailable",
        }
    }
}

/// Checks `id` against `live`, the live feed's position (every partition of the topic, at most
/// at its end). An offset ahead of the feed (an id from a replica whose feed is further along)
/// is checked against the partition's end as Kafka tells it.
pub async fn check(id: &Position, live: &Position, hub: &Hub) -> Result<(), ResumeError> {
    for (partition, next) in id.partitions() {
        let Some(fed) = live
            .partitions()
            .find(|(p, _)| *p == partition)
            .map(|(_, o)| o)
        else {
            return Err(ResumeError::NoSuchPartition(partition));
        };
        if next <= fed {
            continue;
        }
        let end = hub
            .end_offset(partition)
            .await
            .ok_or(ResumeError::Unchecked(partition))?;
        if next > end {
            return Err(ResumeError::PastTheEnd { partition, end });
        }
    }
    Ok(())
}
