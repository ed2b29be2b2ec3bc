//! The raw topic contract: ingest writes each verified webhook body byte-for-byte, with the
//! key and headers defined here; processors and any other consumer read them back. The headers
//! the processor adds to its source records and dead letters are named here too.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::App;

/// Header names: those on every raw record, then those the processor adds.
pub mod headers {
    /// The Zoom app the webhook was delivered for (`zoom` | `zoom-admin`).
    pub const APP: &str = "zoomstream-app";
    /// The wire event name (`event` field of the body).
    pub const EVENT: &str = "zoomstream-event";
    /// Deterministic id of the event: the same for Zoom's redeliveries of one event.
    pub const EVENT_ID: &str = "zoomstream-event-id";
    /// When ingest received the request, in milliseconds since the Unix epoch.
    pub const RECEIVED_AT: &str = "zoomstream-received-at";
    /// Zoom's `x-zm-request-timestamp`, kept so a holder of the secret can re-verify.
    pub const ZM_REQUEST_TIMESTAMP: &str = "x-zm-request-timestamp";
    /// Zoom's `x-zm-signature` (`v0=<hex>`), over `v0:<timestamp>:<body>`.
    pub const ZM_SIGNATURE: &str = "x-zm-signature";
    /// Zoom's `x-zm-request-id`, when sent.
    pub const ZM_REQUEST_ID: &str = "x-zm-request-id";
    /// Zoom's `x-zm-trackingid`, when sent.
    pub const ZM_TRACKING_ID: &str = "x-zm-trackingid";
    /// W3C `traceparent`, when sent.
    pub const TRACEPARENT: &str = "traceparent";

    /// On every source record (besides `APP`, `EVENT` and `EVENT_ID`): the source's name.
    pub const SOURCE: &str = "zoomstream-source";

    /// On dead letters, which keep the raw record's headers too: the reason code.
    pub const DLQ_REASON: &str = "zoomstream-dlq-reason";
    /// On dead letters: the specific reason, for the operator.
    pub const DLQ_DETAIL: &str = "zoomstream-dlq-detail";
    /// On dead letters: the source that could not map a record the others took.
    pub const DLQ_SOURCE: &str = "zoomstream-dlq-source";
    /// On dead letters: the raw record, as `topic/partition/offset`.
    pub const DLQ_ORIGIN: &str = "zoomstream-dlq-origin";
}

/// The record key that keeps the events of one meeting or webinar instance in order: the
/// object's uuid, else its `meeting_uuid` (summaries and RTMS name the meeting so), else its
/// `call_id` (Zoom Phone), else its id, else the account id. `None` when the body has none of them.
pub fn partition_key(envelope: &Value) -> Option<String> {
    let payload = envelope.get("payload")?;
    let object = payload.get("object");
    let pick = |v: Option<&Value>| -> Option<String> {
        match v? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    pick(object.and_then(|o| o.get("uuid")))
        .or_else(|| pick(object.and_then(|o| o.get("meeting_uuid"))))
        .or_else(|| pick(object.and_then(|o| o.get("call_id"))))
        .or_else(|| pick(object.and_then(|o| o.get("id"))))
        .or_else(|| pick(payload.get("account_id")))
}

/// A deterministic id for one Zoom event delivered to one app: the same for every redelivery.
///
/// Zoom's redeliveries of an event carry the same `event`, `event_ts` and payload, except for
/// short-lived download credentials (seen: `download_token` and the query of `download_url`
/// differ between two deliveries of one `recording.completed`). Those are left out; everything
/// else is hashed in a canonical form (sorted keys), so key order and whitespace don't matter.
pub fn event_id(app: App, envelope: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(app.as_str().as_bytes());
    hasher.update([0]);
    let mut canonical = Vec::with_capacity(2048);
    write_canonical(&mut canonical, envelope, None);
    hasher.update(&canonical);
    hex::encode(&hasher.finalize()[..16])
}

/// A deterministic id for one record derived from an event (e.g. one recording file).
pub fn derived_event_id(parent_event_id: &str, part: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(parent_event_id.as_bytes());
    hasher.update([0]);
    hasher.update(part.as_bytes());
    hex::encode(&hasher.finalize()[..16])
}

fn is_volatile_key(key: &str) -> bool {
    key == "download_token"
}

fn write_canonical(out: &mut Vec<u8>, value: &Value, key: Option<&str>) {
    // Strings and numbers are written by serde_json exactly as `Value::to_string` wrote them,
    // without an intermediate `Value` or `String` per key and scalar.
    let json = |out: &mut Vec<u8>, v: &dyn erased::Ser| v.write(out);
    match value {
        // serde_json's map is a BTreeMap (no `preserve_order`; a test below fails if a crate
        // turns that feature on), so it iterates in sorted key order already: no key list to
        // collect and sort, and no lookup per key.
        Value::Object(map) => {
            out.push(b'{');
            let mut first = true;
            for (k, v) in map.iter().filter(|(k, _)| !is_volatile_key(k)) {
                if !first {
                    out.push(b',');
                }
                first = false;
                json(out, &k.as_str());
                out.push(b':');
                write_canonical(out, v, Some(k));
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(out, item, None);
            }
            out.push(b']');
        }
        // Download URLs carry a per-delivery credential in their query.
        Value::String(s) if key.is_some_and(|k| k.ends_with("download_url")) => {
            let stable = s.split_once('?').map_or(s.as_str(), |(base, _)| base);
            json(out, &stable);
        }
        other => json(out, other),
    }
}

mod erased {
    pub trait Ser {
        fn write(&self, out: &mut Vec<u8>);
    }
    impl<T: serde::Serialize + ?Sized> Ser for T {
        fn write(&self, out: &mut Vec<u8>) {
            serde_json::to_writer(out, self).expect("writing to a Vec cannot fail");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_prefers_uuid_then_id_then_account() {
        let e = json!({"payload": {"account_id": "acc", "object": {"uuid": "u==", "id": 5}}});
        assert_eq!(partition_key(&e).as_deref(), Some("u=="));
        let e = json!({"payload": {"account_id": "acc", "object": {"meeting_uuid": "m==", "meeting_id": 5}}});
        assert_eq!(partition_key(&e).as_deref(), Some("m=="));
        let e = json!({"payload": {"account_id": "acc", "object": {"call_id": "c1"}}});
        assert_eq!(partition_key(&e).as_deref(), Some("c1"));
        let e = json!({"payload": {"account_id": "acc", "object": {"id": 5}}});
        assert_eq!(partition_key(&e).as_deref(), Some("5"));
        let e = json!({"payload": {"account_id": "acc"}});
        assert_eq!(partition_key(&e).as_deref(), Some("acc"));
        assert_eq!(partition_key(&json!({"event": "x"})), None);
    }

    #[test]
    fn event_id_ignores_key_order_and_download_credentials() {
        let a = json!({"event": "recording.completed", "event_ts": 1, "download_token": "t1",
            "payload": {"object": {"recording_files": [{"id": "f", "download_url": "https://x/d/1?access_token=a"}]}}});
        let b = json!({"payload": {"object": {"recording_files": [{"download_url": "https://x/d/1?access_token=b", "id": "f"}]}},
            "download_token": "t2", "event_ts": 1, "event": "recording.completed"});
        assert_eq!(event_id(App::ZOOM, &a), event_id(App::ZOOM, &b));
        assert_ne!(event_id(App::ZOOM, &a), event_id(App::ZOOM_ADMIN, &a));
        let c = json!({"event": "recording.completed", "event_ts": 2, "download_token": "t1",
            "payload": {"object": {"recording_files": [{"id": "f", "download_url": "https://x/d/1?access_token=a"}]}}});
        assert_ne!(event_id(App::ZOOM, &a), event_id(App::ZOOM, &c));
        assert_eq!(event_id(App::ZOOM, &a).len(), 32);
    }

    #[test]
    fn objects_iterate_in_sorted_key_order() {
        // event_id's canonical form relies on it: serde_json's `preserve_order` feature, if any
        // crate in the build enabled it, would change every event id.
        let v = json!({"b": 1, "a": 2, "B": 3});
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["B", "a", "b"]);
        // The id Python gives: sha256(b"zoom\0" + json.dumps(v, sort_keys=True,
        // separators=(",", ":")))[:16], hex.
        assert_eq!(
            event_id(
                App::ZOOM,
                &json!({"event": "x", "payload": {"b": 1, "a": [2, {"d": 3, "c": 4}]}})
            ),
            "0ce0edb12f920abcf559d58a683587d9"
        );
    }

    #[test]
    fn derived_ids_differ_per_part() {
        assert_ne!(derived_event_id("e", "f1"), derived_event_id("e", "f2"));
        assert_eq!(derived_event_id("e", "f1"), derived_event_id("e", "f1"));
    }
}
