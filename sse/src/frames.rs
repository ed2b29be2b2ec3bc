//! The text of the stream (`text/event-stream`), and how a source record becomes an event.
//!
//! An event is sent in two parts: the shared part `event: <zoom event>\ndata: <record JSON>\n`,
//! rendered once per record and shared by every client at the live edge, and the client's own
//! `id: <position>\n\n`, which ends the event. (Field order within an event is free in SSE.)

use std::sync::Arc;

use bytes::Bytes;
use rdkafka::message::{Headers as _, Message};
use serde_json::{json, Value};
use zoomstream_runtime::schema_registry::WriterSchemaCache;
use zoomstream_schemas::avro::{self, RegistrySchemas, SchemaVersions};
use zoomstream_schemas::raw::headers;

use crate::metrics::Reason;
use crate::position::Position;

/// The event name of the final event of a stream the server ends.
pub const DISCONNECTED_EVENT: &str = "zoomstream.disconnected";

/// A source as the service streams it.
#[derive(Debug)]
pub struct SourceSpec {
    pub name: String,
    pub topic: String,
    /// The source's schema and its released versions: records are decoded with the version
    /// that wrote them and shown as the current one describes them.
    pub versions: SchemaVersions,
    /// Writer schemas of Confluent-framed records, when a registry is configured.
    pub registry: Option<Arc<WriterSchemaCache>>,
}

/// Why a record is not streamed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the record has no value")]
    NoValue,
    #[error(transparent)]
    Decode(#[from] avro::AvroError),
}

/// `event: …\ndata: …\n` of a source record: its Avro value decoded with its writer's schema
/// into the source's current one, as one line of JSON. The event name is the `zoomstream-event` header, else the record's
/// `event` field.
pub fn render(source: &SourceSpec, message: &impl Message) -> Result<Bytes, RenderError> {
    let payload = message.payload().ok_or(RenderError::NoValue)?;
    let registry = source
        .registry
        .as_deref()
        .map(|r| r as &dyn RegistrySchemas);
    // The first record of a registry id fetches its schema over HTTP: off the async workers.
    let decode = || avro::decode_resolved(payload, &source.versions, registry);
    let decoded = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) if registry.is_some() => {
            tokio::task::block_in_place(decode)
        }
        _ => decode(),
    };
    let value = avro::to_json(&decoded?);
    let from_header = message.headers().and_then(|hs| {
        hs.iter()
            .find(|h| h.key == headers::EVENT)
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_owned)
    });
    let name = from_header
        .or_else(|| {
            value
                .get("event")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "message".to_owned());
    Ok(event_body(&name, &value))
}

/// The shared part of an event. `data` is compact JSON: one line whatever the record holds.
pub fn event_body(name: &str, data: &Value) -> Bytes {
    let name = one_line(name);
    let data = data.to_string();
    let mut text = String::with_capacity(name.len() + data.len() + 16);
    text.push_str("event: ");
    text.push_str(&name);
    text.push_str("\ndata: ");
    text.push_str(&data);
    text.push('\n');
    Bytes::from(text)
}

/// The client's part of an event: its position after it, which ends the event.
pub fn id_line(position: &Position) -> Bytes {
    Bytes::from(format!("id: {}\n\n", position.encode()))
}

/// A comment: ignored by clients, keeps proxies and the connection alive.
pub fn comment(text: &str) -> Bytes {
    Bytes::from(format!(": {}\n\n", one_line(text)))
}

/// What a stream starts with: the reconnection delay clients should use.
pub fn preamble(retry_ms: u64, source: &str) -> Bytes {
    Bytes::from(format!(
        "retry: {retry_ms}\n: zoomstream-sse source {}\n\n",
        one_line(source)
    ))
}

/// The last thing a stream the server ends says: a comment for people reading the raw stream,
/// and a `zoomstream.disconnected` event (no id, so a client's last event id stays the last
/// record's) for code.
pub fn farewell(reason: Reason) -> Bytes {
    let data = json!({"reason": reason.as_str(), "message": reason.message()});
    let mut text = format!(
        ": disconnected ({}): {}\n",
        reason.as_str(),
        reason.message()
    );
    text.push_str(&String::from_utf8_lossy(&event_body(
        DISCONNECTED_EVENT,
        &data,
    )));
    text.push('\n');
    Bytes::from(text)
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_single_line_fields() {
        let body = event_body("meeting.started\nevil: x", &json!({"topic": "a\nb"}));
        assert_eq!(
            &body[..],
            b"event: meeting.started evil: x\ndata: {\"topic\":\"a\\nb\"}\n"
        );
        let mut pos = Position::beginning(0..2);
        pos.sent(1, 41);
        assert_eq!(
            &id_line(&pos)[..],
            format!("id: {}\n\n", pos.encode()).as_bytes()
        );
    }

    #[test]
    fn the_farewell_names_the_reason_and_keeps_the_last_id() {
        let text = String::from_utf8(farewell(Reason::SlowClient).to_vec()).unwrap();
        assert!(text.starts_with(": disconnected (slow_client): "), "{text}");
        assert!(
            text.contains("\nevent: zoomstream.disconnected\ndata: {"),
            "{text}"
        );
        assert!(text.ends_with("}\n\n") && !text.contains("\nid:"), "{text}");
        assert_eq!(
            &preamble(3000, "a")[..],
            b"retry: 3000\n: zoomstream-sse source a\n\n"
        );
    }
}
