//! What a loaded sources file is: its sources, their options, and which events each takes.

use std::path::PathBuf;

use apache_avro::Schema;
use serde_json::Value;

use super::problems::Notice;
use crate::avro::SchemaVersions;
use crate::catalogue::{self, UserIdentity, Variant};

use crate::shape::{FieldPlan, Shape};
use crate::App;

/// Per-source options: `keep_redeliveries` for every shape, the recording-file shape's file
/// choices, and Pipedream's filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceOptions {
    /// Pipedream's `meetingIds`: only events of these meetings (`object.id`, or `object.meeting_id`
    /// where the object is not the meeting's). Meeting, participant, recording and envelope shapes.
    pub meeting_ids: Option<Vec<String>>,
    /// Only events of these webinars (`object.id`, or `object.webinar_id`).
    pub webinar_ids: Option<Vec<String>>,
    /// Zoom app only: only meetings and webinars whose host is the configured user (Pipedream's
    /// "where you're the host"), for subscriptions that cover a whole account.
    pub hosted_by_me: bool,
    /// Write Zoom's redeliveries of an event again (off by default: the processors write each
    /// event id to a source once within their redelivery window).
    pub keep_redeliveries: bool,
    /// Emit M4A (audio-only) files. Off by default, as in Pipedream.
    pub include_audio: bool,
    /// Emit CHAT files. Off by default, as in Pipedream.
    pub include_chat: bool,
    /// When set, exactly these file types are emitted (upper case), whatever the two flags say.
    pub file_types: Option<Vec<String>>,
}

impl SourceOptions {
    /// Whether the webhook `envelope` passes the filters (`meeting_ids`, `webinar_ids`,
    /// `hosted_by_me`); a source without filters passes everything.
    pub fn accepts(&self, envelope: &Value, me: &UserIdentity) -> bool {
        let payload = envelope.get("payload");
        if self.hosted_by_me && !catalogue::hosted_by(me, payload) {
            return false;
        }
        if self.meeting_ids.is_none() && self.webinar_ids.is_none() {
            return true;
        }
        let object = payload.and_then(|p| p.get("object"));
        let id_at = |key: &str| object.and_then(|o| o.get(key)).and_then(id_text);
        let listed = |ids: &Option<Vec<String>>, own_key: &str| {
            ids.as_ref().is_some_and(|ids| {
                [id_at("id"), id_at(own_key)]
                    .into_iter()
                    .flatten()
                    .any(|id| ids.contains(&id))
            })
        };
        listed(&self.meeting_ids, "meeting_id") || listed(&self.webinar_ids, "webinar_id")
    }

    /// Whether a recording file of type `file_type` is emitted.
    pub fn keeps_file_type(&self, file_type: &str) -> bool {
        if let Some(allowed) = &self.file_types {
            return allowed.iter().any(|t| t.eq_ignore_ascii_case(file_type));
        }
        match file_type {
            "M4A" => self.include_audio,
            "CHAT" => self.include_chat,
            _ => true,
        }
    }
}

/// One validated source.
#[derive(Debug, Clone)]
pub struct Source {
    /// Unique in the file; `[a-z0-9-]+`.
    pub name: String,
    /// The app whose webhooks the source reads.
    pub app: App,
    /// Catalogue names or trailing-wildcard patterns, as written.
    pub events: Vec<String>,
    /// Wire names the catalogue lacks, as written.
    pub extra_events: Vec<String>,
    /// The Kafka topic the records go to; unique in the file.
    pub topic: String,
    /// The schema file, resolved against the sources file's directory.
    pub schema_path: PathBuf,
    /// The parsed schema; the records fit it.
    pub schema: Schema,
    /// The schema and its released versions (`history/<stem>/` beside it), which readers look
    /// writer schemas up in; the schema reads what each of them wrote.
    pub schema_versions: SchemaVersions,
    /// Decided by the schema's record name.
    pub shape: Shape,
    /// `[source.options]`, checked against the shape.
    pub options: SourceOptions,
    /// Free text for operators.
    pub description: Option<String>,
    /// Where each field of `schema` comes from, resolved at load.
    pub(crate) field_plan: FieldPlan,
}

impl Source {
    /// The first of `names` (as returned by [`crate::catalogue::classify`]) that this source
    /// takes. The caller checks the app; [`Source::select`] does both.
    pub fn matches<'n>(&self, names: &'n [String]) -> Option<&'n str> {
        names
            .iter()
            .map(String::as_str)
            .find(|name| self.takes(name))
    }

    /// [`Source::matches`], for a webhook of `app` only.
    pub fn select<'n>(&self, app: App, names: &'n [String]) -> Option<&'n str> {
        if app == self.app {
            self.matches(names)
        } else {
            None
        }
    }

    /// Whether the catalogue (or extra) name `name` is one this source takes. A wildcard leaves
    /// out the events its shape sets aside (see [`Shape::sets_aside`]).
    pub fn takes(&self, name: &str) -> bool {
        let wire = catalogue::lookup(name).map_or(name, |def| def.wire_event);
        self.events.iter().any(|pattern| {
            pattern_matches(pattern, name)
                && !(pattern.contains('*') && self.shape.sets_aside(wire))
        }) || self.extra_events.iter().any(|extra| extra == name)
    }

    /// Whether the source decides by the configured user: `by_me`/`for_me` events (written or
    /// through a wildcard) or `hosted_by_me`. Without a user such a source stays empty.
    pub fn needs_user(&self) -> bool {
        self.options.hosted_by_me
            || catalogue::events().iter().any(|def| {
                def.offered_by(self.app)
                    && matches!(def.variant, Some(Variant::ByMe | Variant::ForMe))
                    && self.events.iter().any(|p| pattern_matches(p, def.name))
            })
    }
}

/// An id as Zoom sends it (a number or a string), as text.
fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `meeting.*` matches every name starting with `meeting.`; `*` matches every name; anything
/// else matches itself.
pub(super) fn pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// A loaded and validated sources file.
#[derive(Debug, Clone)]
pub struct SourcesFile {
    pub sources: Vec<Source>,
    /// The directory schema paths were resolved against.
    pub dir: PathBuf,
    /// What works but should change (old names, …); the processor logs them at start.
    pub warnings: Vec<Notice>,
}

impl SourcesFile {
    /// The source named `name`.
    pub fn get(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// The sources that decide by the configured user ([`Source::needs_user`]).
    pub fn needing_user(&self) -> Vec<&str> {
        self.sources
            .iter()
            .filter(|s| s.needs_user())
            .map(|s| s.name.as_str())
            .collect()
    }

    /// The sources of one app, in file order.
    pub fn for_app(&self, app: App) -> impl Iterator<Item = &Source> {
        self.sources.iter().filter(move |s| s.app == app)
    }
}
