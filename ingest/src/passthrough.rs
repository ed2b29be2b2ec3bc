//! The unsigned headers ingest copies onto the raw record (`x-zm-request-id`,
//! `x-zm-tracking-id`, `traceparent`): the signature does not cover them, so anyone can set
//! them. Each is passed on only when it is short and plain (visible ASCII; `traceparent` in its
//! W3C form); otherwise it is dropped, counted, and the webhook is published without it.

use axum::http::HeaderMap;
use zoomstream_schemas::raw::headers;

use crate::events::PassThroughHeaderDropped;
use crate::metrics::IngestMetrics;

/// Longest `x-zm-request-id` / `x-zm-tracking-id` passed on (Zoom's are well under 100).
pub const MAX_ID_LEN: usize = 128;

/// The pass-through headers that may be published.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PassThrough<'h> {
    pub zm_request_id: Option<&'h str>,
    pub zm_tracking_id: Option<&'h str>,
    pub traceparent: Option<&'h str>,
}

/// Why a header was dropped (a bounded label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    TooLong,
    BadCharacters,
    Malformed,
    Repeated,
}

impl Dropped {
    pub fn as_str(self) -> &'static str {
        match self {
            Dropped::TooLong => "too_long",
            Dropped::BadCharacters => "bad_characters",
            Dropped::Malformed => "malformed",
            Dropped::Repeated => "repeated",
        }
    }
}

/// The valid pass-through headers of a request; each invalid one is dropped and emitted.
pub fn pass_through<'h>(request: &'h HeaderMap, metrics: &IngestMetrics) -> PassThrough<'h> {
    let take = |name: &'static str, check: fn(&str) -> Result<(), Dropped>| {
        let mut values = request.get_all(name).iter();
        let value = values.next()?;
        let checked = if values.next().is_some() {
            Err(Dropped::Repeated)
        } else {
            value
                .to_str()
                .map_err(|_| Dropped::BadCharacters)
                .and_then(|v| check(v).map(|()| v))
        };
        checked
            .map_err(|reason| {
                PassThroughHeaderDropped {
                    header: name,
                    reason,
                }
                .emit(metrics)
            })
            .ok()
    };
    PassThrough {
        zm_request_id: take(headers::ZM_REQUEST_ID, plain_id),
        zm_tracking_id: take(headers::ZM_TRACKING_ID, plain_id),
        traceparent: take(headers::TRACEPARENT, traceparent),
    }
}

fn plain_id(value: &str) -> Result<(), Dropped> {
    if value.len() > MAX_ID_LEN {
        return Err(Dropped::TooLong);
    }
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Dropped::BadCharacters);
    }
    Ok(())
}

/// `version-traceid-parentid-flags` in lowercase hex (W3C Trace Context, version 00's length).
fn traceparent(value: &str) -> Result<(), Dropped> {
    if value.len() > 55 {
        return Err(Dropped::TooLong);
    }
    let fields: Vec<&str> = value.split('-').collect();
    let lowercase_hex = |f: &str| f.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let well_formed = fields.len() == 4
        && [2, 32, 16, 2]
            .iter()
            .zip(&fields)
            .all(|(len, f)| f.len() == *len && lowercase_hex(f))
        && fields[0] != "ff"
        && fields[1].bytes().any(|b| b != b'0')
        && fields[2].bytes().any(|b| b != b'0');
    if well_formed {
        Ok(())
    } else {
        Err(Dropped::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn plain_values_pass_and_others_are_dropped_and_counted() {
        let metrics = IngestMetrics::new();
        let mut request = HeaderMap::new();
        request.insert(
            headers::ZM_REQUEST_ID,
            HeaderValue::from_static("8e0c4a1b-req"),
        );
        request.insert(
            headers::TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        request.insert(
            headers::ZM_TRACKING_ID,
            HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        );
        let kept = pass_through(&request, &metrics);
        assert_eq!(kept.zm_request_id, Some("8e0c4a1b-req"));
        assert!(kept.traceparent.is_some());
        assert_eq!(kept.zm_tracking_id, None);

        for bad in [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "hello",
        ] {
            assert_eq!(traceparent(bad), Err(Dropped::Malformed), "{bad}");
        }
        assert_eq!(plain_id(&"a".repeat(MAX_ID_LEN + 1)), Err(Dropped::TooLong));
        assert_eq!(plain_id("two words"), Err(Dropped::BadCharacters));
        assert_eq!(
            metrics
                .headers_dropped
                .with_label_values(&[headers::ZM_TRACKING_ID, "bad_characters"])
                .get(),
            1
        );
    }
}
