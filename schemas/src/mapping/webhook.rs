//! One webhook as read from the raw topic, and the values the shapes' field tables read from it:
//! each looked up by its path in the body and typed by its field's kind, leniently only where
//! nothing is lost.

use serde_json::{Map, Value};

use super::error::{wrong_type, MappingError};
use super::rfc3339::parse_rfc3339_millis;
use crate::shape::{FieldDef, Kind, Src};
use crate::{url_component, App};

/// One webhook as read from the raw topic.
#[derive(Debug, Clone, Copy)]
pub struct RawEvent<'a> {
    /// The app the webhook was delivered for (the raw record's header).
    pub app: App,
    /// The parsed webhook body.
    pub envelope: &'a Value,
    /// [`crate::raw::event_id`] of the body (the raw record's header).
    pub event_id: &'a str,
    /// When ingest received it, in ms since the epoch (the raw record's header), when known.
    pub received_at_ms: Option<i64>,
}

/// The parts of one webhook the field table reads.
pub(super) struct Ctx<'a> {
    pub(super) raw: &'a RawEvent<'a>,
    pub(super) matched: &'a str,
    pub(super) body: &'a Map<String, Value>,
    pub(super) payload: Option<&'a Map<String, Value>>,
    pub(super) object: Option<&'a Map<String, Value>>,
    pub(super) participant: Option<&'a Map<String, Value>>,
    /// The recording file being mapped, with its index (recording-file shape only).
    pub(super) file: Option<(usize, &'a Map<String, Value>)>,
    /// The record's event id: the webhook's, or the file's derived one.
    pub(super) event_id: String,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(raw: &'a RawEvent<'a>, matched: &'a str) -> Result<Self, MappingError> {
        let body = raw
            .envelope
            .as_object()
            .ok_or_else(|| wrong_type("the webhook body", "a JSON object", raw.envelope))?;
        let payload = optional_object(body.get("payload"), "payload")?;
        let object = optional_object(payload.and_then(|p| p.get("object")), "payload.object")?;
        let participant = optional_object(
            object.and_then(|o| o.get("participant")),
            "payload.object.participant",
        )?;
        Ok(Ctx {
            raw,
            matched,
            body,
            payload,
            object,
            participant,
            file: None,
            event_id: raw.event_id.to_owned(),
        })
    }

    pub(super) fn wire_event(&self) -> Option<String> {
        self.body
            .get("event")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// The JSON path of a field's source, for error messages.
    pub(super) fn path(&self, src: Src) -> String {
        match src {
            Src::EventId | Src::Event | Src::App | Src::ReceivedAt => "(zoomstream)".to_owned(),
            Src::WireEvent => "event".to_owned(),
            Src::EventTs => "event_ts".to_owned(),
            Src::Payload(key) => format!("payload.{key}"),
            Src::Object(key) => format!("payload.object.{key}"),
            Src::Participant(key) => format!("payload.object.participant.{key}"),
            Src::Nested(outer, key) => format!("payload.object.{outer}.{key}"),
            Src::File(key) => match self.file {
                Some((index, _)) => format!("payload.object.recording_files[{index}].{key}"),
                None => format!("payload.object.recording_files[].{key}"),
            },
            Src::ObjectJson | Src::TranscriptObjectJson => "payload.object".to_owned(),
            Src::FileJson => match self.file {
                Some((index, _)) => format!("payload.object.recording_files[{index}]"),
                None => "payload.object.recording_files[]".to_owned(),
            },
            Src::OldObjectJson => "payload.old_object".to_owned(),
            Src::PayloadJson => "payload".to_owned(),
            Src::BodyJson => "(body)".to_owned(),
            Src::DownloadToken => "download_token".to_owned(),
            Src::DownloadUrlWithToken => self.path(Src::File("download_url")),
        }
    }

    /// The value of a field, typed by its kind; `None` when the webhook lacks it.
    pub(super) fn extract(&self, def: &FieldDef) -> Result<Option<Datum>, MappingError> {
        let get = |map: Option<&'a Map<String, Value>>, key: &str| map.and_then(|m| m.get(key));
        let json = match def.src {
            Src::EventId => return Ok(Some(Datum::Str(self.event_id.clone()))),
            Src::Event => return Ok(Some(Datum::Str(self.matched.to_owned()))),
            Src::App => return Ok(Some(Datum::Str(self.raw.app.as_str().to_owned()))),
            Src::ReceivedAt => return Ok(self.raw.received_at_ms.map(Datum::Ts)),
            Src::ObjectJson => return Ok(to_json_text(get(self.payload, "object"))),
            Src::TranscriptObjectJson => {
                let transcript =
                    self.wire_event().as_deref() == Some("recording.transcript_completed");
                return Ok(if transcript {
                    to_json_text(get(self.payload, "object"))
                } else {
                    None
                });
            }
            Src::FileJson => {
                return Ok(self
                    .file
                    .and_then(|(_, file)| serde_json::to_string(file).ok())
                    .map(Datum::Str))
            }
            Src::OldObjectJson => return Ok(to_json_text(get(self.payload, "old_object"))),
            Src::PayloadJson => return Ok(to_json_text(self.body.get("payload"))),
            Src::BodyJson => return Ok(to_json_text(Some(self.raw.envelope))),
            Src::DownloadUrlWithToken => {
                let url = as_string(
                    get(self.file.map(|f| f.1), "download_url"),
                    &self.path(def.src),
                )?;
                let token = as_string(self.body.get("download_token"), "download_token")?;
                return Ok(match (url, token) {
                    (Some(url), Some(token)) if !url.is_empty() && !token.is_empty() => {
                        Some(Datum::Str(url_with_token(&url, &token)))
                    }
                    _ => None,
                });
            }
            Src::WireEvent => self.body.get("event"),
            Src::EventTs => self.body.get("event_ts"),
            Src::DownloadToken => self.body.get("download_token"),
            Src::Payload(key) => get(self.payload, key),
            Src::Object(key) => get(self.object, key),
            Src::Participant(key) => get(self.participant, key),
            Src::Nested(outer, key) => self
                .object
                .and_then(|o| o.get(outer))
                .and_then(Value::as_object)
                .and_then(|inner| inner.get(key)),
            Src::File(key) => get(self.file.map(|f| f.1), key),
        };
        let path = || self.path(def.src);
        // The field's path is only needed for an error: build it only then.
        let present = match json {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        };
        Ok(match (def.kind, present) {
            (_, None) => None,
            (Kind::Str, Some(Value::String(s))) => Some(Datum::Str(s.clone())),
            (Kind::Int | Kind::Long, Some(Value::Number(n))) if n.as_i64().is_some() => {
                n.as_i64().map(Datum::Int)
            }
            (Kind::Str, _) => as_string(json, &path())?.map(Datum::Str),
            (Kind::Int | Kind::Long, _) => as_integer(json, &path())?.map(Datum::Int),
            (Kind::Ts, _) => as_timestamp(json, &path())?.map(Datum::Ts),
        })
    }
}

/// A field's typed value, before conversion to the field's Avro type.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Datum {
    Str(String),
    Int(i64),
    /// Milliseconds since the epoch.
    Ts(i64),
}

impl Datum {
    pub(super) fn kind(&self) -> Kind {
        match self {
            Datum::Str(_) => Kind::Str,
            Datum::Int(_) => Kind::Long,
            Datum::Ts(_) => Kind::Ts,
        }
    }
}

/// An optional JSON object: absent and null are `None`, anything but an object is an error.
fn optional_object<'v>(
    value: Option<&'v Value>,
    path: &str,
) -> Result<Option<&'v Map<String, Value>>, MappingError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(wrong_type(path, "an object", other)),
    }
}

/// A string field. Numbers and booleans are taken as their JSON text: Zoom sends ids as numbers
/// in some events and strings in others, and a string field loses nothing by holding them.
pub(super) fn as_string(value: Option<&Value>, path: &str) -> Result<Option<String>, MappingError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(wrong_type(path, "a string", other)),
    }
}

fn as_integer(value: Option<&Value>, path: &str) -> Result<Option<i64>, MappingError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| wrong_type(path, "an integer", &Value::Number(n.clone()))),
        Some(other) => Err(wrong_type(path, "an integer", other)),
    }
}

/// A timestamp: an RFC 3339 string (as Zoom's `start_time`), or a number of milliseconds (as
/// `event_ts`). An empty string is absent: Zoom sends `""` for times that do not apply.
fn as_timestamp(value: Option<&Value>, path: &str) -> Result<Option<i64>, MappingError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => {
            parse_rfc3339_millis(s)
                .map(Some)
                .ok_or_else(|| MappingError::BadTimestamp {
                    field: path.to_owned(),
                    value: s.clone(),
                })
        }
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
            wrong_type(
                path,
                "an integer or an RFC 3339 timestamp",
                &Value::Number(n.clone()),
            )
        }),
        Some(other) => Err(wrong_type(path, "an RFC 3339 timestamp", other)),
    }
}

fn to_json_text(value: Option<&Value>) -> Option<Datum> {
    match value {
        None | Some(Value::Null) => None,
        // serde_json::to_string writes into a Vec directly; Display goes through fmt::Formatter.
        Some(v) => serde_json::to_string(v).ok().map(Datum::Str),
    }
}

/// `url` with `access_token=<token>` added to its query, as Pipedream's
/// `download_url_with_token` (which always used `?`, wrong for a URL that has a query).
fn url_with_token(url: &str, token: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{separator}access_token={}",
        url_component::encode(token)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn download_urls_get_the_token_in_their_query() {
        assert_eq!(
            url_with_token("https://x/d/1", "a.b-c_d"),
            "https://x/d/1?access_token=a.b-c_d"
        );
        assert_eq!(
            url_with_token("https://x/d/1?type=mp4", "t"),
            "https://x/d/1?type=mp4&access_token=t"
        );
    }

    #[test]
    fn json_values_are_read_leniently_only_where_nothing_is_lost() {
        assert_eq!(as_string(Some(&json!(12)), "p"), Ok(Some("12".into())));
        assert_eq!(as_string(Some(&json!(null)), "p"), Ok(None));
        assert_eq!(
            as_string(Some(&json!({})), "p"),
            Err(MappingError::WrongType {
                field: "p".into(),
                expected: "a string",
                found: "an object"
            })
        );
        assert_eq!(as_integer(Some(&json!(60)), "p"), Ok(Some(60)));
        assert!(as_integer(Some(&json!("60")), "p").is_err());
        assert!(as_integer(Some(&json!(1.5)), "p").is_err());
        assert_eq!(as_timestamp(Some(&json!("")), "p"), Ok(None));
        assert_eq!(
            as_timestamp(Some(&json!(1626230691572_i64)), "p"),
            Ok(Some(1626230691572))
        );
        assert_eq!(
            as_timestamp(Some(&json!("yesterday")), "p"),
            Err(MappingError::BadTimestamp {
                field: "p".into(),
                value: "yesterday".into()
            })
        );
    }
}
