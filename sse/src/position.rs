//! Stream positions: which records of a source topic a client has been sent, as the SSE `id`.
//!
//! A position holds, for every partition of the topic, the offset of the next record to send.
//! Each event's id is the client's whole position *after* that event, so the events a client
//! has seen are always every record below the position on every partition. Resuming from an id
//! therefore reads exactly the rest — nothing skipped, nothing repeated — whatever order the
//! partitions were interleaved in, and with no state kept on the server.
//!
//! On the wire an id is base64url (no padding) of `partition:offset` pairs joined by `,`,
//! sorted by partition, e.g. `0:17,1:4,2:0` → `MDoxNywxOjQsMjow`. Clients treat it as opaque.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Longest id accepted (characters): far above any real topic's, far below anything costly.
const MAX_ID_LEN: usize = 8192;
/// Most partitions an id may name.
const MAX_PARTITIONS: usize = 4096;

/// The next offset to send, per partition. A partition not named is at its beginning.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Position {
    next: BTreeMap<i32, i64>,
}

/// An id this service did not issue.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PositionError {
    #[error("the id is longer than {MAX_ID_LEN} characters")]
    TooLong,
    #[error("the id is not base64url")]
    NotBase64,
    #[error("the id does not hold partition:offset pairs")]
    Malformed,
    #[error("the id names a partition twice")]
    Duplicate,
    #[error("the id names more than {MAX_PARTITIONS} partitions")]
    TooManyPartitions,
}

impl Position {
    /// Every partition at its beginning.
    pub fn beginning(partitions: impl IntoIterator<Item = i32>) -> Position {
        Position {
            next: partitions.into_iter().map(|p| (p, 0)).collect(),
        }
    }

    /// The next offset to send on `partition` (0 — its beginning — when not named).
    pub fn next(&self, partition: i32) -> i64 {
        self.next.get(&partition).copied().unwrap_or(0)
    }

    pub fn set(&mut self, partition: i32, next: i64) {
        self.next.insert(partition, next);
    }

    /// Records that the record at `offset` of `partition` was sent.
    pub fn sent(&mut self, partition: i32, offset: i64) {
        self.next.insert(partition, offset + 1);
    }

    /// Whether the record at `offset` of `partition` was already sent (is below the position).
    pub fn covers(&self, partition: i32, offset: i64) -> bool {
        offset < self.next(partition)
    }

    pub fn partitions(&self) -> impl Iterator<Item = (i32, i64)> + '_ {
        self.next.iter().map(|(&p, &o)| (p, o))
    }

    /// The partitions where this position is behind `target`, with the range still to read.
    pub fn behind<'a>(
        &'a self,
        target: &'a Position,
    ) -> impl Iterator<Item = (i32, i64, i64)> + 'a {
        target.partitions().filter_map(|(p, until)| {
            let from = self.next(p);
            (from < until).then_some((p, from, until))
        })
    }

    /// The id of this position.
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(self.next.len() * 8);
        for (i, (p, o)) in self.next.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&p.to_string());
            text.push(':');
            text.push_str(&o.to_string());
        }
        URL_SAFE_NO_PAD.encode(text)
    }

    /// Reads an id issued by [`Position::encode`].
    pub fn decode(id: &str) -> Result<Position, PositionError> {
        let id = id.trim();
        if id.len() > MAX_ID_LEN {
            return Err(PositionError::TooLong);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(id)
            .map_err(|_| PositionError::NotBase64)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| PositionError::Malformed)?;
        let mut next = BTreeMap::new();
        if text.is_empty() {
            return Ok(Position { next });
        }
        for pair in text.split(',') {
            let (p, o) = pair.split_once(':').ok_or(PositionError::Malformed)?;
            let p: i32 = p.parse().map_err(|_| PositionError::Malformed)?;
            let o: i64 = o.parse().map_err(|_| PositionError::Malformed)?;
            if p < 0 || o < 0 {
                return Err(PositionError::Malformed);
            }
            if next.insert(p, o).is_some() {
                return Err(PositionError::Duplicate);
            }
            if next.len() > MAX_PARTITIONS {
                return Err(PositionError::TooManyPartitions);
            }
        }
        Ok(Position { next })
    }
}

impl fmt::Debug for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.next.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_url_safe() {
        let mut pos = Position::beginning(0..3);
        pos.sent(0, 16);
        pos.sent(1, 3);
        let id = pos.encode();
        assert_eq!(id, URL_SAFE_NO_PAD.encode("0:17,1:4,2:0"));
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{id}"
        );
        assert_eq!(Position::decode(&id).unwrap(), pos);
        assert_eq!(Position::decode("").unwrap(), Position::default());
    }

    #[test]
    fn garbage_ids_are_refused() {
        assert_eq!(
            Position::decode("not base64!"),
            Err(PositionError::NotBase64)
        );
        let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
        assert_eq!(
            Position::decode(&enc("0:1,x")),
            Err(PositionError::Malformed)
        );
        assert_eq!(
            Position::decode(&enc("0:-1")),
            Err(PositionError::Malformed)
        );
        assert_eq!(
            Position::decode(&enc("-1:0")),
            Err(PositionError::Malformed)
        );
        assert_eq!(
            Position::decode(&enc("0:1,0:2")),
            Err(PositionError::Duplicate)
        );
        assert_eq!(
            Position::decode(&"A".repeat(MAX_ID_LEN + 1)),
            Err(PositionError::TooLong)
        );
    }

    #[test]
    fn behind_lists_what_is_left_to_read() {
        let mut client = Position::beginning(0..3);
        client.set(0, 5);
        client.set(1, 9);
        let mut target = Position::beginning(0..4);
        target.set(0, 7);
        target.set(1, 9);
        target.set(2, 0);
        target.set(3, 2);
        let left: Vec<_> = client.behind(&target).collect();
        // Partition 3 is unknown to the client: read from its beginning.
        assert_eq!(left, vec![(0, 5, 7), (3, 0, 2)]);
        assert!(client.covers(0, 4) && !client.covers(0, 5) && !client.covers(3, 0));
    }
}
