//! A spooled webhook on disk: everything the raw record is published with. Encoded as a
//! length-prefixed JSON head (the headers' values) followed by the body's raw bytes, so a body
//! is stored as it came, without escaping.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use zoomstream_schemas::{App, AppKind};

use crate::publish::RawRecord;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Head {
    app: String,
    /// Absent in entries spooled before apps had kinds: then the name is a built-in app's.
    #[serde(default)]
    app_kind: Option<AppKind>,
    event: String,
    event_id: String,
    key: Option<String>,
    received_at_ms: i64,
    zm_timestamp: String,
    zm_signature: String,
    zm_request_id: Option<String>,
    zm_tracking_id: Option<String>,
    traceparent: Option<String>,
}

/// A webhook read back from the spool.
#[derive(Debug, PartialEq, Eq)]
pub struct SpooledWebhook {
    head: Head,
    app: App,
    pub body: Bytes,
}

/// Why a stored entry cannot be read (never expected: entries are written by this module).
#[derive(Debug, thiserror::Error)]
#[error("a spool entry is corrupt: {0}")]
pub struct CorruptEntry(&'static str);

pub fn encode(record: &RawRecord<'_>) -> Vec<u8> {
    let head = Head {
        app: record.app.as_str().to_owned(),
        app_kind: Some(record.app.kind()),
        event: record.event.to_owned(),
        event_id: record.event_id.to_owned(),
        key: record.key.map(str::to_owned),
        received_at_ms: record.received_at_ms,
        zm_timestamp: record.zm_timestamp.to_owned(),
        zm_signature: record.zm_signature.to_owned(),
        zm_request_id: record.zm_request_id.map(str::to_owned),
        zm_tracking_id: record.zm_tracking_id.map(str::to_owned),
        traceparent: record.traceparent.map(str::to_owned),
    };
    let head = serde_json::to_vec(&head).expect("a head serialises");
    let mut out = Vec::with_capacity(4 + head.len() + record.body.len());
    out.extend_from_slice(&u32::try_from(head.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(record.body);
    out
}

pub fn decode(bytes: &[u8]) -> Result<SpooledWebhook, CorruptEntry> {
    let len: [u8; 4] = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or(CorruptEntry("shorter than its length prefix"))?;
    let len = u32::from_le_bytes(len) as usize;
    let head = bytes
        .get(4..4 + len)
        .ok_or(CorruptEntry("shorter than its head"))?;
    let head: Head = serde_json::from_slice(head).map_err(|_| CorruptEntry("head not JSON"))?;
    let kind = match head.app_kind {
        Some(kind) => kind,
        None => head.app.parse().map_err(|_| CorruptEntry("unknown app"))?,
    };
    let app = App::new(&head.app, kind).map_err(|_| CorruptEntry("bad app name"))?;
    Ok(SpooledWebhook {
        app,
        body: Bytes::copy_from_slice(&bytes[4 + len..]),
        head,
    })
}

impl SpooledWebhook {
    pub fn received_at_ms(&self) -> i64 {
        self.head.received_at_ms
    }

    /// The raw record to publish, exactly as the request would have been.
    pub fn record(&self) -> RawRecord<'_> {
        let h = &self.head;
        RawRecord {
            app: self.app,
            event: &h.event,
            event_id: &h.event_id,
            key: h.key.as_deref(),
            received_at_ms: h.received_at_ms,
            zm_timestamp: &h.zm_timestamp,
            zm_signature: &h.zm_signature,
            zm_request_id: h.zm_request_id.as_deref(),
            zm_tracking_id: h.zm_tracking_id.as_deref(),
            traceparent: h.traceparent.as_deref(),
            body: &self.body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_as_written_body_byte_exact() {
        let body = Bytes::from_static(b"{\"event\":\"meeting.started\"}\n\xff raw");
        let record = RawRecord {
            app: App::ZOOM_ADMIN,
            event: "meeting.started",
            event_id: "id",
            key: Some("k"),
            received_at_ms: 7,
            zm_timestamp: "1",
            zm_signature: "v0=00",
            zm_request_id: None,
            zm_tracking_id: Some("t"),
            traceparent: None,
            body: &body,
        };
        let back = decode(&encode(&record)).unwrap();
        let again = back.record();
        assert_eq!(again.body, &body);
        assert_eq!(again.app, App::ZOOM_ADMIN);
        assert_eq!(again.key, Some("k"));
        assert_eq!(again.zm_tracking_id, Some("t"));
        assert_eq!(back.received_at_ms(), 7);
        assert!(decode(b"\x05\x00").is_err());
        assert!(decode(b"\x05\x00\x00\x00{").is_err());
    }
}
