//! The Kafka records the processor writes: source records and dead letters, with their headers.

use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use zoomstream_schemas::mapping::SourceRecord;
use zoomstream_schemas::raw::headers;

use crate::dead_letter::DeadLetter;
use crate::route::Route;

/// One record for `route`'s topic: the encoded value, its key, and the app, event, event id
/// and source headers.
pub fn source_record<'a>(
    route: &'a Route,
    record: &'a SourceRecord,
    bytes: &'a [u8],
) -> BaseRecord<'a, str, [u8]> {
    let hdrs = OwnedHeaders::new()
        .insert(Header {
            key: headers::APP,
            value: Some(route.source.app.as_str()),
        })
        .insert(Header {
            key: headers::EVENT,
            value: Some(record.event.as_str()),
        })
        .insert(Header {
            key: headers::EVENT_ID,
            value: Some(record.event_id.as_str()),
        })
        .insert(Header {
            key: headers::SOURCE,
            value: Some(route.source.name.as_str()),
        });
    let out = BaseRecord::to(&route.source.topic)
        .payload(bytes)
        .headers(hdrs);
    match &record.key {
        Some(key) => out.key(key.as_str()),
        None => out,
    }
}

/// Where a raw record came from: `topic/partition/offset`.
pub fn origin(msg: &BorrowedMessage<'_>) -> String {
    format!("{}/{}/{}", msg.topic(), msg.partition(), msg.offset())
}

/// A raw record as a dead letter: its key, value and headers, plus the reason, the detail, the
/// origin and (when one source could not map it) the source.
pub struct DeadLetterRecord<'a> {
    topic: &'a str,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: OwnedHeaders,
}

impl<'a> DeadLetterRecord<'a> {
    pub fn new(
        topic: &'a str,
        msg: &'a BorrowedMessage<'_>,
        dead: &DeadLetter,
        origin: &str,
    ) -> Self {
        let mut hdrs = OwnedHeaders::new();
        if let Some(original) = msg.headers() {
            for h in original.iter() {
                hdrs = hdrs.insert(h);
            }
        }
        hdrs = hdrs
            .insert(Header {
                key: headers::DLQ_REASON,
                value: Some(dead.reason.as_str()),
            })
            .insert(Header {
                key: headers::DLQ_DETAIL,
                value: Some(dead.detail.as_str()),
            })
            .insert(Header {
                key: headers::DLQ_ORIGIN,
                value: Some(origin),
            });
        if let Some(source) = &dead.source {
            hdrs = hdrs.insert(Header {
                key: headers::DLQ_SOURCE,
                value: Some(source.as_str()),
            });
        }
        DeadLetterRecord {
            topic,
            key: msg.key(),
            value: msg.payload(),
            headers: hdrs,
        }
    }

    /// The dead letter with the original value.
    pub fn with_value(&self) -> BaseRecord<'_, [u8], [u8]> {
        let out = self.without_value();
        match self.value {
            Some(value) => out.payload(value),
            None => out,
        }
    }

    /// The dead letter without the value, for one whose value does not fit with the added
    /// headers: the headers still point at the original record on the raw topic.
    pub fn without_value(&self) -> BaseRecord<'_, [u8], [u8]> {
        let out = BaseRecord::to(self.topic).headers(self.headers.clone());
        match self.key {
            Some(key) => out.key(key),
            None => out,
        }
    }
}
