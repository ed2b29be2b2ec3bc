//! Routing: one raw record in, the records of every source it matches out, or dead letters
//! saying why it could not be handled. Pure: no Kafka here, so it is unit-tested and fuzzed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use zoomstream_schemas::avro::Encoder;
use zoomstream_schemas::catalogue;
use zoomstream_schemas::mapping::{self, RawEvent, SourceRecord};
use zoomstream_schemas::raw;
use zoomstream_schemas::sources::Source;
use zoomstream_schemas::{App, Apps};

use crate::dead_letter::{DeadLetter, DeadLetterReason};

/// A raw record as read from the raw topic.
pub struct RawMessage<'a> {
    pub payload: Option<&'a [u8]>,
    pub app: Option<&'a str>,
    pub event_id: Option<&'a str>,
    pub received_at: Option<&'a str>,
}

/// A source and how its records are encoded.
pub struct Route {
    pub source: Source,
    pub encoder: Encoder,
}

impl Route {
    /// A route whose records are in Avro single-object encoding (no schema registry).
    pub fn single_object(source: Source) -> Route {
        Route {
            encoder: Encoder::single_object(&source.schema),
            source,
        }
    }
}

/// What one raw record becomes.
pub enum Output<'r> {
    Record {
        route: &'r Route,
        record: SourceRecord,
        bytes: Vec<u8>,
    },
    DeadLetter(DeadLetter),
}

pub struct Router {
    pub routes: Vec<Route>,
    /// The apps raw records may name: each one's kind and user.
    pub apps: Apps,
    /// For each (app, classified names) seen: the routes that take one of the names, with the
    /// name each takes first. A handful of combinations recur for every webhook, and testing
    /// every source's patterns against them per record was ~10 % of routing (BENCHMARKS.md, P1).
    /// Bounded by the catalogue's names per app (and the few unknown events operators see).
    matches: Mutex<HashMap<(App, Vec<String>), Matches>>,
}

/// Route indices with the index (into the names) of the name each route takes.
type Matches = Arc<[(usize, usize)]>;

/// Past this many distinct (app, names) combinations the memo is cleared: only a flood of
/// made-up event names gets there, and it must not grow without bound.
const MAX_MEMOISED: usize = 4096;

impl Router {
    pub fn new(routes: Vec<Route>, apps: Apps) -> Router {
        Router {
            routes,
            apps,
            matches: Mutex::default(),
        }
    }

    /// The routes of `app` taking one of `names`, in route order (see [`Router::matches`]).
    fn matching(&self, app: App, names: Vec<String>) -> (Vec<String>, Matches) {
        let mut memo = self.matches.lock().unwrap_or_else(|p| p.into_inner());
        let key = (app, names);
        if let Some(found) = memo.get(&key) {
            let found = found.clone();
            return (key.1, found);
        }
        let found: Matches = self
            .routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.source.app == app)
            .filter_map(|(i, r)| {
                let matched = r.source.matches(&key.1)?;
                let at = key.1.iter().position(|n| n == matched)?;
                Some((i, at))
            })
            .collect();
        if memo.len() >= MAX_MEMOISED {
            memo.clear();
        }
        memo.insert(key.clone(), found.clone());
        (key.1, found)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(event_id = msg.event_id))]
    pub fn route(&self, msg: &RawMessage<'_>) -> Vec<Output<'_>> {
        match self.try_route(msg) {
            Ok(outputs) => outputs,
            Err(dead) => vec![Output::DeadLetter(dead)],
        }
    }

    fn try_route(&self, msg: &RawMessage<'_>) -> Result<Vec<Output<'_>>, DeadLetter> {
        let app_name = msg.app.ok_or_else(|| {
            DeadLetter::new(
                DeadLetterReason::MissingHeader,
                format!("no {} header", raw::headers::APP),
            )
        })?;
        let entry = self.apps.get(app_name).ok_or_else(|| {
            DeadLetter::new(
                DeadLetterReason::UnknownApp,
                format!(
                    "app {app_name:?} is not an app of this deployment (its apps: {})",
                    self.apps.names()
                ),
            )
        })?;
        let (app, me) = (entry.app, &entry.user);
        let payload = msg
            .payload
            .ok_or_else(|| DeadLetter::new(DeadLetterReason::Empty, "record has no value"))?;
        let envelope: Value = serde_json::from_slice(payload).map_err(|e| {
            DeadLetter::new(DeadLetterReason::NotJson, format!("value is not JSON: {e}"))
        })?;
        let event = envelope
            .get("event")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                DeadLetter::new(
                    DeadLetterReason::NoEvent,
                    "value has no string field \"event\"",
                )
            })?;
        let event_id = match msg.event_id {
            Some(id) => id.to_owned(),
            None => raw::event_id(app, &envelope),
        };
        let received_at_ms = msg.received_at.and_then(|v| v.parse().ok());
        let raw_event = RawEvent {
            app,
            envelope: &envelope,
            event_id: &event_id,
            received_at_ms,
        };

        let names = catalogue::classify(app, &envelope, me);
        let (names, matching) = self.matching(app, names);
        let mut outputs = Vec::new();
        let matched_any = !matching.is_empty();
        for &(index, name_at) in matching.iter() {
            let route = &self.routes[index];
            let matched = names[name_at].as_str();
            // Pipedream's filters (meeting_ids, webinar_ids, hosted_by_me): taken, not wanted.
            if !route.source.options.accepts(&envelope, me) {
                continue;
            }
            let dead = |reason: DeadLetterReason, detail: String| {
                Output::DeadLetter(DeadLetter {
                    reason,
                    detail,
                    source: Some(route.source.name.clone()),
                })
            };
            match mapping::records(&route.source, &raw_event, matched) {
                Err(err) => outputs.push(dead(DeadLetterReason::from(&err), err.to_string())),
                Ok(records) => {
                    for record in records {
                        match route.encoder.encode(&record.value) {
                            Ok(bytes) => outputs.push(Output::Record {
                                route,
                                record,
                                bytes,
                            }),
                            Err(err) => {
                                outputs.push(dead(DeadLetterReason::EncodeFailed, err.to_string()))
                            }
                        }
                    }
                }
            }
        }
        // A catalogued event nobody subscribed to is simply not routed; an event the catalogue
        // does not know and no source asked for is worth an operator's look.
        if !matched_any && catalogue::lookup(event).is_none() {
            return Err(DeadLetter::new(
                DeadLetterReason::UnknownEvent,
                format!(
                    "event {event:?} is not in the Zoom event catalogue and no source asks for it"
                ),
            ));
        }
        Ok(outputs)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use zoomstream_schemas::catalogue::UserIdentity;
    use zoomstream_schemas::{sources, App};

    const SOURCES: &str = r#"
[[source]]
name = "recordings"
app = "zoom"
events = ["recording.completed"]
topic = "recordings"
schema = "recording_file.avsc"

[[source]]
name = "started"
app = "zoom"
events = ["meeting.started"]
topic = "started"
schema = "meeting.avsc"

[[source]]
name = "admin-started"
app = "zoom-admin"
events = ["meeting.started"]
topic = "admin-started"
schema = "meeting.avsc"
"#;

    fn router() -> Router {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        let file = sources::parse(SOURCES, &dir).expect("valid sources");
        let routes = file.sources.into_iter().map(Route::single_object).collect();
        Router::new(routes, Apps::builtin())
    }

    fn route(router: &Router, app: Option<&str>, payload: &[u8]) -> Vec<(String, String)> {
        let msg = RawMessage {
            payload: Some(payload),
            app,
            event_id: Some("e1"),
            received_at: None,
        };
        router
            .route(&msg)
            .into_iter()
            .map(|o| match o {
                Output::Record { route, record, .. } => {
                    (route.source.name.clone(), record.event_id)
                }
                Output::DeadLetter(d) => (
                    format!("dlq:{}", d.reason.as_str()),
                    d.source.unwrap_or_default(),
                ),
            })
            .collect()
    }

    #[test]
    fn routes_to_the_sources_of_the_delivering_app_only() {
        let r = router();
        let started = br#"{"event":"meeting.started","event_ts":1,"payload":{"account_id":"a","object":{"id":1,"uuid":"u","host_id":"h","topic":"t"}}}"#;
        assert_eq!(
            route(&r, Some("zoom"), started),
            [("started".to_owned(), "e1".to_owned())]
        );
        assert_eq!(
            route(&r, Some("zoom-admin"), started),
            [("admin-started".to_owned(), "e1".to_owned())]
        );
    }

    #[test]
    fn memoised_matches_route_like_the_first_time_and_stay_bounded() {
        let r = router();
        let started = br#"{"event":"meeting.started","event_ts":1,"payload":{"account_id":"a","object":{"id":1,"uuid":"u","host_id":"h","topic":"t"}}}"#;
        let first = route(&r, Some("zoom"), started);
        assert_eq!(route(&r, Some("zoom"), started), first);
        assert_eq!(
            route(&r, Some("zoom-admin"), started),
            [("admin-started".to_owned(), "e1".to_owned())]
        );
        // A flood of made-up event names (each a dead letter or nothing) cannot grow the memo
        // past its bound.
        for i in 0..(MAX_MEMOISED + 10) {
            let made_up = format!(r#"{{"event":"made.up_{i}","event_ts":1,"payload":{{}}}}"#);
            route(&r, Some("zoom"), made_up.as_bytes());
        }
        assert!(r.matches.lock().unwrap().len() <= MAX_MEMOISED);
        assert_eq!(route(&r, Some("zoom"), started), first);
    }

    #[test]
    fn each_app_of_an_apps_file_decides_by_me_with_its_own_user() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        let apps = Apps::parse(
            "[[app]]\nname = \"sales\"\nkind = \"zoom\"\nsecret_tokens_env = \"S\"\nuser_id = \"s\"\n\
             [[app]]\nname = \"support\"\nkind = \"zoom\"\nsecret_tokens_env = \"T\"\nuser_id = \"t\"\n",
            "apps.toml",
        )
        .unwrap();
        let source = |name: &str| {
            format!("[[source]]\nname = \"{name}\"\napp = \"{name}\"\nevents = [\"meeting.created.by_me\"]\ntopic = \"{name}\"\nschema = \"meeting.avsc\"\n")
        };
        let text = source("sales") + &source("support");
        let file = sources::parse_with(&text, &dir, &apps).expect("valid sources");
        let r = Router::new(
            file.sources.into_iter().map(Route::single_object).collect(),
            apps,
        );
        let created = |operator: &str| {
            format!(
                r#"{{"event":"meeting.created","event_ts":1,"payload":{{"account_id":"a","operator_id":"{operator}","object":{{"id":1,"uuid":"u","host_id":"h","topic":"t"}}}}}}"#
            )
        };
        let names = |outputs: Vec<(String, String)>| -> Vec<String> {
            outputs.into_iter().map(|(name, _)| name).collect()
        };
        assert_eq!(
            names(route(&r, Some("sales"), created("s").as_bytes())),
            ["sales"]
        );
        assert_eq!(
            names(route(&r, Some("support"), created("t").as_bytes())),
            ["support"]
        );
        assert!(
            route(&r, Some("sales"), created("t").as_bytes()).is_empty(),
            "support's user is not sales'"
        );
        assert_eq!(
            names(route(&r, Some("zoom"), created("s").as_bytes())),
            ["dlq:unknown_app"],
            "a built-in app is not one of an apps file"
        );
    }

    #[test]
    fn catalogued_events_without_a_source_are_dropped_but_unknown_ones_are_dead_letters() {
        let r = router();
        assert!(route(
            &r,
            Some("zoom"),
            br#"{"event":"meeting.ended","payload":{}}"#
        )
        .is_empty());
        assert_eq!(
            route(&r, Some("zoom"), br#"{"event":"phone.call","payload":{}}"#),
            [("dlq:unknown_event".into(), String::new())]
        );
    }

    #[test]
    fn filtered_events_are_taken_but_not_emitted_nor_dead_lettered() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        let text = r#"
[[source]]
name = "mine"
app = "zoom"
events = ["meeting.started"]
topic = "mine"
schema = "meeting.avsc"
[source.options]
meeting_ids = [1]
hosted_by_me = true
"#;
        let file = sources::parse(text, &dir).expect("valid sources");
        let r = Router::new(
            file.sources.into_iter().map(Route::single_object).collect(),
            Apps::builtin().with_user(
                App::ZOOM,
                UserIdentity {
                    user_id: Some("h".into()),
                    email: None,
                },
            ),
        );
        let started = |id: u64, host: &str| {
            format!(
                r#"{{"event":"meeting.started","event_ts":1,"payload":{{"object":{{"id":{id},"uuid":"u","host_id":"{host}"}}}}}}"#
            )
        };
        assert_eq!(
            route(&r, Some("zoom"), started(1, "h").as_bytes()),
            [("mine".to_owned(), "e1".to_owned())]
        );
        assert!(route(&r, Some("zoom"), started(2, "h").as_bytes()).is_empty());
        assert!(route(&r, Some("zoom"), started(1, "other").as_bytes()).is_empty());
    }

    #[test]
    fn each_kind_of_poison_has_its_reason() {
        let r = router();
        assert_eq!(route(&r, None, b"{}")[0].0, "dlq:missing_header");
        assert_eq!(route(&r, Some("teams"), b"{}")[0].0, "dlq:unknown_app");
        assert_eq!(route(&r, Some("zoom"), b"\xff")[0].0, "dlq:not_json");
        assert_eq!(
            route(&r, Some("zoom"), br#"{"event":1}"#)[0].0,
            "dlq:no_event"
        );
        let no_files =
            br#"{"event":"recording.completed","event_ts":1,"payload":{"object":{"uuid":"u"}}}"#;
        assert_eq!(
            route(&r, Some("zoom"), no_files),
            [("dlq:no_recording_files".into(), "recordings".into())]
        );
    }
}
