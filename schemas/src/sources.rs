//! The sources file: which Zoom events go to which Kafka topic, with which Avro schema.
//!
//! ```toml
//! [[source]]
//! name = "recording-completed"         # unique, [a-z0-9-]+
//! app = "zoom"                          # zoom | zoom-admin
//! events = ["recording.completed"]      # catalogue names offered by that app; "meeting.*" allowed
//! extra_events = []                     # wire names the catalogue lacks (custom sources)
//! topic = "zoom.recording-completed"    # unique across sources
//! schema = "recording_file.avsc"        # relative to the sources file's directory
//! description = "..."                   # optional
//! [source.options]                      # optional, depends on the schema's shape
//! include_audio = false
//! ```
//!
//! Everything is checked at load, so that a processor never starts with a source that could not
//! work; every problem found is reported (with the file and line), not only the first.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use apache_avro::Schema;
use serde::Deserialize;
use toml::Spanned;

use crate::catalogue::{self, EventDef};
use crate::shape::{check_schema, FieldPlan, Shape};
use crate::App;

/// Per-source options; only the recording-file shape has any today.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceOptions {
    /// Emit M4A (audio-only) files. Off by default, as in Pipedream.
    pub include_audio: bool,
    /// Emit CHAT files. Off by default, as in Pipedream.
    pub include_chat: bool,
    /// When set, exactly these file types are emitted (upper case), whatever the two flags say.
    pub file_types: Option<Vec<String>>,
}

impl SourceOptions {
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
    /// The first of `names` (as returned by [`catalogue::classify`]) that this source takes.
    /// The caller checks the app; [`Source::select`] does both.
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

    /// Whether the catalogue (or extra) name `name` is one this source takes.
    pub fn takes(&self, name: &str) -> bool {
        self.events
            .iter()
            .any(|pattern| pattern_matches(pattern, name))
            || self.extra_events.iter().any(|extra| extra == name)
    }
}

/// `meeting.*` matches every name starting with `meeting.`; `*` matches every name; anything
/// else matches itself.
fn pattern_matches(pattern: &str, name: &str) -> bool {
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
}

impl SourcesFile {
    /// The source named `name`.
    pub fn get(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// The sources of one app, in file order.
    pub fn for_app(&self, app: App) -> impl Iterator<Item = &Source> {
        self.sources.iter().filter(move |s| s.app == app)
    }
}

/// Why a sources file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    /// The file could not be read at all.
    #[error("{}: cannot read the sources file", path.display())]
    Read {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    /// Every problem found, in file order; displayed one per line.
    #[error("{}", display_issues(.0))]
    Invalid(Vec<Issue>),
}

fn display_issues(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(Issue::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl SourcesError {
    /// The problems, when the file was read but is invalid.
    pub fn issues(&self) -> &[Issue] {
        match self {
            SourcesError::Invalid(issues) => issues,
            SourcesError::Read { .. } => &[],
        }
    }
}

/// One problem of a sources file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The sources file, when loaded from one ([`load`]); `None` for [`parse`].
    pub file: Option<PathBuf>,
    /// 1-based line in the sources file, when known.
    pub line: Option<usize>,
    /// The source concerned, when the problem is a source's.
    pub source_name: Option<String>,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{line}: ", file.display())?,
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            (None, Some(line)) => write!(f, "line {line}: ")?,
            (None, None) => {}
        }
        if let Some(name) = &self.source_name {
            write!(f, "source {name:?}: ")?;
        }
        write!(f, "{}", self.problem)
    }
}

/// What is wrong; the Display is the operator-facing reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("{0}")]
    Toml(String),
    #[error("the file defines no [[source]]")]
    NoSources,
    #[error("name {0:?} must be non-empty and use only a-z, 0-9 and '-'")]
    BadName(String),
    #[error("name {name:?} is already used by the source on line {first_line}")]
    DuplicateName { name: String, first_line: usize },
    #[error("{0}")]
    UnknownApp(String),
    #[error("lists no events (give events, or extra_events for a custom source)")]
    NoEvents,
    #[error("event {event:?} is not in the Zoom event catalogue (for events Zoom sends that the catalogue lacks, use extra_events)")]
    NotInCatalogue { event: String },
    #[error("event {event:?} is not offered by the {app_label} app{hint}")]
    NotOffered {
        event: String,
        app_label: &'static str,
        hint: String,
    },
    #[error("event pattern {pattern:?} is not valid: only a trailing '*' is allowed (\"meeting.*\", or \"*\" for every event)")]
    BadPattern { pattern: String },
    #[error("event pattern {pattern:?} matches no event of the {app_label} app")]
    WildcardMatchesNothing {
        pattern: String,
        app_label: &'static str,
    },
    #[error("event {event:?} is listed twice")]
    DuplicateEvent { event: String },
    #[error("extra event {event:?} {reason}")]
    BadExtraEvent { event: String, reason: String },
    #[error("topic {topic:?} is not a valid Kafka topic name (1-249 of a-z, A-Z, 0-9, '.', '_', '-'; not \".\" or \"..\")")]
    BadTopic { topic: String },
    #[error("topic {topic:?} is already used by source {other:?} (line {first_line})")]
    DuplicateTopic {
        topic: String,
        other: String,
        first_line: usize,
    },
    #[error("cannot read schema {}: {error}", path.display())]
    SchemaUnreadable { path: PathBuf, error: String },
    #[error("schema {} is not a valid Avro schema: {error}", path.display())]
    SchemaInvalid { path: PathBuf, error: String },
    #[error("schema {} has record {name:?}, which is not a zoomstream shape (expected one of {})", path.display(), known_shapes())]
    UnknownShape { path: PathBuf, name: String },
    #[error("schema {}: field {field:?} {reason}", path.display())]
    SchemaField {
        path: PathBuf,
        field: String,
        reason: String,
    },
    #[error("event {event:?} cannot be carried by the {shape} shape of {} (it carries {})", schema.display(), shape.carries())]
    ShapeCannotCarry {
        event: String,
        shape: Shape,
        schema: PathBuf,
    },
    #[error("event pattern {pattern:?} covers {}, which the {shape} shape of {} cannot carry (it carries {})", abbreviate(events), schema.display(), shape.carries())]
    PatternCannotCarry {
        pattern: String,
        events: Vec<String>,
        shape: Shape,
        schema: PathBuf,
    },
    #[error("unknown option {option:?} for the {shape} shape{}", known_options(*shape))]
    UnknownOption { option: String, shape: Shape },
    #[error("option {option:?} must be {expected}")]
    BadOption {
        option: String,
        expected: &'static str,
    },
}

/// `a, b, c and 4 more`.
fn abbreviate(names: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut text = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        let _ = write!(text, " and {} more", names.len() - SHOWN);
    }
    text
}

fn known_shapes() -> String {
    Shape::ALL.map(Shape::record_name).join(", ")
}

fn known_options(shape: Shape) -> String {
    match shape.option_names() {
        [] => format!(" (the {shape} shape takes no options)"),
        names => format!(" (known: {})", names.join(", ")),
    }
}

fn app_label(app: App) -> &'static str {
    match app {
        App::Zoom => "Zoom",
        App::ZoomAdmin => "Zoom Admin",
    }
}

/// Reads and validates the sources file at `path`; schema paths are relative to its directory.
pub fn load(path: &Path) -> Result<SourcesFile, SourcesError> {
    let text = std::fs::read_to_string(path).map_err(|error| SourcesError::Read {
        path: path.to_owned(),
        error,
    })?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    Parser::new(&text, &dir, Some(path)).run()
}

/// Validates sources-file text; schema paths are relative to `dir`. Issues carry line numbers
/// but no file name.
pub fn parse(text: &str, dir: &Path) -> Result<SourcesFile, SourcesError> {
    Parser::new(text, dir, None).run()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    source: Vec<RawSource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: Spanned<String>,
    app: Spanned<String>,
    #[serde(default)]
    events: Vec<Spanned<String>>,
    #[serde(default)]
    extra_events: Vec<Spanned<String>>,
    topic: Spanned<String>,
    schema: Spanned<String>,
    description: Option<String>,
    #[serde(default)]
    options: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
}

/// One validation pass over a sources file, collecting issues.
struct Parser<'a> {
    text: &'a str,
    dir: &'a Path,
    file: Option<&'a Path>,
    issues: Vec<Issue>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, dir: &'a Path, file: Option<&'a Path>) -> Self {
        Parser {
            text,
            dir,
            file,
            issues: Vec::new(),
        }
    }

    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn issue(&mut self, offset: Option<usize>, source: Option<&str>, problem: Problem) {
        let line = offset.map(|o| self.line_of(o));
        self.issues.push(Issue {
            file: self.file.map(Path::to_owned),
            line,
            source_name: source.map(str::to_owned),
            problem,
        });
    }

    fn run(mut self) -> Result<SourcesFile, SourcesError> {
        let raw: RawFile = match toml::from_str(self.text) {
            Ok(raw) => raw,
            Err(e) => {
                let message = e.message().trim_end().to_owned();
                self.issue(e.span().map(|s| s.start), None, Problem::Toml(message));
                return Err(SourcesError::Invalid(self.issues));
            }
        };
        if raw.source.is_empty() {
            self.issue(None, None, Problem::NoSources);
        }
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut topics: HashMap<String, (String, usize)> = HashMap::new();
        let mut sources = Vec::new();
        for raw_source in raw.source {
            let name = raw_source.name.get_ref().clone();
            let name_line = self.line_of(raw_source.name.span().start);
            if !is_valid_name(&name) {
                self.issue(
                    Some(raw_source.name.span().start),
                    Some(&name),
                    Problem::BadName(name.clone()),
                );
            }
            if let Some(&first_line) = names.get(&name) {
                let problem = Problem::DuplicateName {
                    name: name.clone(),
                    first_line,
                };
                self.issue(Some(raw_source.name.span().start), Some(&name), problem);
            } else {
                names.insert(name.clone(), name_line);
            }
            let topic = raw_source.topic.get_ref();
            let topic_at = Some(raw_source.topic.span().start);
            if !is_valid_topic(topic) {
                self.issue(
                    topic_at,
                    Some(&name),
                    Problem::BadTopic {
                        topic: topic.clone(),
                    },
                );
            } else if let Some((other, first_line)) = topics.get(topic) {
                let problem = Problem::DuplicateTopic {
                    topic: topic.clone(),
                    other: other.clone(),
                    first_line: *first_line,
                };
                self.issue(topic_at, Some(&name), problem);
            } else {
                let line = self.line_of(raw_source.topic.span().start);
                topics.insert(topic.clone(), (name.clone(), line));
            }
            if let Some(source) = self.check_source(&name, raw_source) {
                sources.push(source);
            }
        }
        if self.issues.is_empty() {
            Ok(SourcesFile {
                sources,
                dir: self.dir.to_owned(),
            })
        } else {
            self.issues.sort_by_key(|issue| issue.line.unwrap_or(0));
            Err(SourcesError::Invalid(self.issues))
        }
    }

    /// Checks everything of one source but its name's and topic's uniqueness; `None` when the
    /// source has problems (recorded as issues).
    fn check_source(&mut self, name: &str, raw: RawSource) -> Option<Source> {
        let before = self.issues.len();
        let app = match raw.app.get_ref().parse::<App>() {
            Ok(app) => Some(app),
            Err(e) => {
                let problem = Problem::UnknownApp(e.to_string());
                self.issue(Some(raw.app.span().start), Some(name), problem);
                None
            }
        };
        if raw.events.is_empty() && raw.extra_events.is_empty() {
            self.issue(Some(raw.name.span().start), Some(name), Problem::NoEvents);
        }
        // Each written event with the catalogue rows it stands for.
        let mut resolved: Vec<(&Spanned<String>, Vec<&'static EventDef>)> = Vec::new();
        if let Some(app) = app {
            let mut seen: Vec<&str> = Vec::new();
            for event in &raw.events {
                if seen.contains(&event.get_ref().as_str()) {
                    let problem = Problem::DuplicateEvent {
                        event: event.get_ref().clone(),
                    };
                    self.issue(Some(event.span().start), Some(name), problem);
                    continue;
                }
                seen.push(event.get_ref());
                if let Some(defs) = self.resolve_event(name, app, event) {
                    resolved.push((event, defs));
                }
            }
        }
        for extra in &raw.extra_events {
            self.check_extra_event(name, extra);
        }
        let schema_path = self.dir.join(raw.schema.get_ref());
        let schema_at = Some(raw.schema.span().start);
        let loaded = self.load_schema(name, &schema_path, schema_at);
        let mut options = SourceOptions::default();
        if let Some((_, shape)) = &loaded {
            for (event, defs) in &resolved {
                let uncarried: Vec<String> = defs
                    .iter()
                    .filter(|d| !shape.can_carry(d.wire_event))
                    .map(|d| d.name.to_owned())
                    .collect();
                if uncarried.is_empty() {
                    continue;
                }
                let problem = if event.get_ref().contains('*') {
                    Problem::PatternCannotCarry {
                        pattern: event.get_ref().clone(),
                        events: uncarried,
                        shape: *shape,
                        schema: schema_path.clone(),
                    }
                } else {
                    Problem::ShapeCannotCarry {
                        event: event.get_ref().clone(),
                        shape: *shape,
                        schema: schema_path.clone(),
                    }
                };
                self.issue(Some(event.span().start), Some(name), problem);
            }
            for extra in &raw.extra_events {
                if !shape.can_carry(extra.get_ref()) {
                    let problem = Problem::ShapeCannotCarry {
                        event: extra.get_ref().clone(),
                        shape: *shape,
                        schema: schema_path.clone(),
                    };
                    self.issue(Some(extra.span().start), Some(name), problem);
                }
            }
            options = self.check_options(name, *shape, &raw.options);
        }
        let (Some(app), Some((schema, shape))) = (app, loaded) else {
            return None;
        };
        if self.issues.len() > before {
            return None;
        }
        Some(Source {
            name: name.to_owned(),
            app,
            events: raw.events.into_iter().map(Spanned::into_inner).collect(),
            extra_events: raw
                .extra_events
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            topic: raw.topic.into_inner(),
            schema_path,
            field_plan: FieldPlan::new(shape, &schema),
            schema,
            shape,
            options,
            description: raw.description,
        })
    }

    /// The catalogue rows an `events` entry stands for, or `None` after recording why it is
    /// wrong.
    fn resolve_event(
        &mut self,
        source: &str,
        app: App,
        event: &Spanned<String>,
    ) -> Option<Vec<&'static EventDef>> {
        let text = event.get_ref();
        let at = Some(event.span().start);
        if text.contains('*') {
            let valid = text.find('*') == Some(text.len() - 1);
            if !valid {
                self.issue(
                    at,
                    Some(source),
                    Problem::BadPattern {
                        pattern: text.clone(),
                    },
                );
                return None;
            }
            let defs: Vec<_> = catalogue::events()
                .iter()
                .filter(|d| d.offered_by(app) && pattern_matches(text, d.name))
                .collect();
            if defs.is_empty() {
                let problem = Problem::WildcardMatchesNothing {
                    pattern: text.clone(),
                    app_label: app_label(app),
                };
                self.issue(at, Some(source), problem);
                return None;
            }
            return Some(defs);
        }
        match catalogue::lookup(text) {
            None => {
                let problem = Problem::NotInCatalogue {
                    event: text.clone(),
                };
                self.issue(at, Some(source), problem);
                None
            }
            Some(def) if !def.offered_by(app) => {
                let problem = Problem::NotOffered {
                    event: text.clone(),
                    app_label: app_label(app),
                    hint: not_offered_hint(def, app),
                };
                self.issue(at, Some(source), problem);
                None
            }
            Some(def) => Some(vec![def]),
        }
    }

    fn check_extra_event(&mut self, source: &str, extra: &Spanned<String>) {
        let text = extra.get_ref();
        let reason = if text.contains('*') {
            Some("must be an exact wire event name (wildcards belong in events)".to_owned())
        } else if text.is_empty()
            || !text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            Some("is not a Zoom event name (lowercase letters, digits, '.', '_', '-')".to_owned())
        } else if catalogue::lookup(text).is_some() || catalogue::knows_wire_event(text) {
            Some("is in the event catalogue: list it under events".to_owned())
        } else {
            None
        };
        if let Some(reason) = reason {
            let problem = Problem::BadExtraEvent {
                event: text.clone(),
                reason,
            };
            self.issue(Some(extra.span().start), Some(source), problem);
        }
    }

    /// Reads and parses the schema and checks that the shape's records fit it.
    fn load_schema(
        &mut self,
        source: &str,
        path: &Path,
        at: Option<usize>,
    ) -> Option<(Schema, Shape)> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                let problem = Problem::SchemaUnreadable {
                    path: path.to_owned(),
                    error: e.to_string(),
                };
                self.issue(at, Some(source), problem);
                return None;
            }
        };
        let schema = match Schema::parse_str(&text) {
            Ok(schema) => schema,
            Err(e) => {
                let problem = Problem::SchemaInvalid {
                    path: path.to_owned(),
                    error: e.to_string(),
                };
                self.issue(at, Some(source), problem);
                return None;
            }
        };
        let full_name = match &schema {
            Schema::Record(record) => record.name.fullname(None),
            other => format!(
                "(a {:?} schema, not a record)",
                apache_avro::schema::SchemaKind::from(other)
            ),
        };
        let Some(shape) = Shape::from_record_name(&full_name) else {
            let problem = Problem::UnknownShape {
                path: path.to_owned(),
                name: full_name,
            };
            self.issue(at, Some(source), problem);
            return None;
        };
        let field_problems = check_schema(shape, &schema);
        let fits = field_problems.is_empty();
        for (field, reason) in field_problems {
            let problem = Problem::SchemaField {
                path: path.to_owned(),
                field,
                reason,
            };
            self.issue(at, Some(source), problem);
        }
        fits.then_some((schema, shape))
    }

    fn check_options(
        &mut self,
        source: &str,
        shape: Shape,
        raw: &BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    ) -> SourceOptions {
        let mut options = SourceOptions::default();
        for (key, value) in raw {
            let at = Some(key.span().start);
            let bad = |option: &str, expected: &'static str| Problem::BadOption {
                option: option.to_owned(),
                expected,
            };
            match (shape, key.get_ref().as_str()) {
                (Shape::RecordingFile, "include_audio") => match value.get_ref() {
                    toml::Value::Boolean(b) => options.include_audio = *b,
                    _ => self.issue(at, Some(source), bad("include_audio", "true or false")),
                },
                (Shape::RecordingFile, "include_chat") => match value.get_ref() {
                    toml::Value::Boolean(b) => options.include_chat = *b,
                    _ => self.issue(at, Some(source), bad("include_chat", "true or false")),
                },
                (Shape::RecordingFile, "file_types") => {
                    let expected = "a non-empty list of file types, e.g. [\"MP4\", \"TRANSCRIPT\"]";
                    let types: Option<Vec<String>> = match value.get_ref() {
                        toml::Value::Array(items) if !items.is_empty() => items
                            .iter()
                            .map(|item| {
                                item.as_str()
                                    .filter(|s| !s.is_empty())
                                    .map(str::to_ascii_uppercase)
                            })
                            .collect(),
                        _ => None,
                    };
                    match types {
                        Some(types) => options.file_types = Some(types),
                        None => self.issue(at, Some(source), bad("file_types", expected)),
                    }
                }
                (_, option) => {
                    let problem = Problem::UnknownOption {
                        option: option.to_owned(),
                        shape,
                    };
                    self.issue(at, Some(source), problem);
                }
            }
        }
        options
    }
}

/// Why a catalogue event is not offered by `app`, with the names that app has for it instead.
fn not_offered_hint(def: &EventDef, app: App) -> String {
    let alternatives: Vec<&str> = catalogue::events()
        .iter()
        .filter(|d| d.wire_event == def.wire_event && d.offered_by(app))
        .map(|d| d.name)
        .collect();
    let other = match app {
        App::Zoom => App::ZoomAdmin,
        App::ZoomAdmin => App::Zoom,
    };
    let mut hint = format!(" (it is a {} event", app_label(other));
    if !alternatives.is_empty() {
        let _ = write!(
            hint,
            "; the {} app offers {}",
            app_label(app),
            alternatives.join(", ")
        );
    }
    hint.push(')');
    hint
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Kafka's rule for topic names.
fn is_valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The crate directory, where the shipped schemas live.
    fn shipped_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// A scratch directory removed on drop (std only; no tempfile dependency).
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Scratch {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("zoomstream-sources-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn issues(text: &str) -> Vec<Issue> {
        match parse(text, &shipped_dir()) {
            Ok(file) => panic!("expected errors, got {} sources", file.sources.len()),
            Err(e) => e.issues().to_vec(),
        }
    }

    fn one_issue(text: &str) -> Issue {
        let mut all = issues(text);
        assert_eq!(all.len(), 1, "{all:#?}");
        all.remove(0)
    }

    fn source_toml(events: &str, schema: &str) -> String {
        format!(
            "[[source]]\nname = \"s\"\napp = \"zoom\"\nevents = {events}\ntopic = \"zoom.s\"\nschema = \"{schema}\"\n"
        )
    }

    #[test]
    fn the_shipped_file_loads() {
        let file = load(&shipped_dir().join("sources.toml")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(file.dir, shipped_dir());
        assert!(file.sources.len() >= 30);
        let rc = file.get("recording-completed").unwrap();
        assert_eq!(rc.shape, Shape::RecordingFile);
        assert_eq!(rc.topic, "zoom.recording-completed");
        assert_eq!(rc.options, SourceOptions::default());
        for source in &file.sources {
            assert!(
                source.topic.starts_with(&format!("{}.", source.app)),
                "{}",
                source.topic
            );
            // Topics read `<app>.<what>`: the admin- prefix of names is not repeated.
            let what = source.name.strip_prefix("admin-").unwrap_or(&source.name);
            assert_eq!(source.topic, format!("{}.{}", source.app, what));
            assert_eq!(
                source.app == App::ZoomAdmin,
                source.name.starts_with("admin-"),
                "{}",
                source.name
            );
        }
        assert_eq!(
            file.for_app(App::Zoom).count() + file.for_app(App::ZoomAdmin).count(),
            file.sources.len()
        );
    }

    #[test]
    fn a_good_source_is_read_whole() {
        let text = r#"
[[source]]
name = "recordings"
app = "zoom-admin"
events = ["recording.completed"]
topic = "zoom-admin.recordings"
schema = "recording_file.avsc"
description = "files"
[source.options]
include_chat = true
file_types = ["mp4", "Chat"]
"#;
        let file = parse(text, &shipped_dir()).unwrap();
        let source = &file.sources[0];
        assert_eq!(source.app, App::ZoomAdmin);
        assert_eq!(
            source.schema_path,
            shipped_dir().join("recording_file.avsc")
        );
        assert_eq!(source.description.as_deref(), Some("files"));
        assert!(source.options.include_chat && !source.options.include_audio);
        assert_eq!(
            source.options.file_types,
            Some(vec!["MP4".to_owned(), "CHAT".to_owned()])
        );
        assert!(
            source.options.keeps_file_type("MP4") && !source.options.keeps_file_type("TRANSCRIPT")
        );
    }

    #[test]
    fn file_type_flags_default_like_pipedream() {
        let mut options = SourceOptions::default();
        assert!(options.keeps_file_type("MP4") && options.keeps_file_type("TRANSCRIPT"));
        assert!(!options.keeps_file_type("M4A") && !options.keeps_file_type("CHAT"));
        options.include_audio = true;
        options.include_chat = true;
        assert!(options.keeps_file_type("M4A") && options.keeps_file_type("CHAT"));
    }

    #[test]
    fn unknown_event_names_the_file_line_and_source() {
        let scratch = Scratch::new();
        let text = "\n[[source]]\nname = \"meeting-ended\"\napp = \"zoom\"\nevents = [\"meeting.endd\"]\ntopic = \"zoom.meeting-ended\"\nschema = \"meeting.avsc\"\n";
        for shape in Shape::ALL {
            scratch.write(shape.schema_file(), shape.builtin_schema());
        }
        let path = scratch.write("sources.toml", text);
        let err = load(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}:5: source \"meeting-ended\": event \"meeting.endd\" is not in the Zoom event catalogue \
                 (for events Zoom sends that the catalogue lacks, use extra_events)",
                path.display()
            )
        );
    }

    #[test]
    fn events_of_the_other_app_are_explained() {
        let issue = one_issue(&source_toml(r#"["meeting.created"]"#, "meeting.avsc"));
        assert_eq!(issue.line, Some(4));
        assert_eq!(
            issue.to_string(),
            "line 4: source \"s\": event \"meeting.created\" is not offered by the Zoom app (it is a Zoom Admin \
             event; the Zoom app offers meeting.created.by_me, meeting.created.for_me)"
        );
        let text = source_toml(r#"["user.created"]"#, "user.avsc");
        assert!(matches!(
            one_issue(&text).problem,
            Problem::NotOffered { .. }
        ));
    }

    #[test]
    fn wildcards_must_match_and_be_trailing() {
        let file = parse(
            &source_toml(r#"["meeting.*"]"#, "meeting.avsc"),
            &shipped_dir(),
        )
        .unwrap();
        let source = &file.sources[0];
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            source.matches(&names(&["meeting.created.by_me"])),
            Some("meeting.created.by_me")
        );
        assert_eq!(
            source.matches(&names(&["webinar.started", "meeting.started"])),
            Some("meeting.started")
        );
        assert_eq!(source.matches(&names(&["webinar.started"])), None);
        assert_eq!(
            source.select(App::ZoomAdmin, &names(&["meeting.started"])),
            None
        );
        assert_eq!(
            source.select(App::Zoom, &names(&["meeting.started"])),
            Some("meeting.started")
        );

        let issue = one_issue(&source_toml(r#"["account.*"]"#, "account.avsc"));
        assert_eq!(
            issue.problem,
            Problem::WildcardMatchesNothing {
                pattern: "account.*".into(),
                app_label: "Zoom"
            }
        );
        let issue = one_issue(&source_toml(r#"["meet*ing.started"]"#, "meeting.avsc"));
        assert!(
            matches!(issue.problem, Problem::BadPattern { .. }),
            "{issue}"
        );
    }

    #[test]
    fn star_takes_everything_but_needs_a_shape_that_carries_everything() {
        let file = parse(&source_toml(r#"["*"]"#, "envelope.avsc"), &shipped_dir()).unwrap();
        let names = vec!["phone.callee_ringing".to_owned()];
        assert_eq!(
            file.sources[0].matches(&names),
            Some("phone.callee_ringing")
        );
        let issue = one_issue(&source_toml(r#"["*"]"#, "meeting.avsc"));
        assert!(
            matches!(issue.problem, Problem::PatternCannotCarry { .. }),
            "{issue}"
        );
        assert!(issue.to_string().contains("and "), "{issue}");
    }

    #[test]
    fn a_shape_must_carry_its_events() {
        let issue = one_issue(&source_toml(
            r#"["meeting.started"]"#,
            "recording_file.avsc",
        ));
        assert_eq!(
            issue.problem,
            Problem::ShapeCannotCarry {
                event: "meeting.started".into(),
                shape: Shape::RecordingFile,
                schema: shipped_dir().join("recording_file.avsc"),
            }
        );
        assert!(issue
            .to_string()
            .contains("it carries recording.completed and recording.transcript_completed"));
        let text = source_toml(
            r#"["recording.completed", "recording.transcript_completed"]"#,
            "recording_file.avsc",
        );
        assert!(parse(&text, &shipped_dir()).is_ok());
        let text = source_toml(
            r#"["meeting.sharing_started.host", "webinar.participant_left"]"#,
            "participant.avsc",
        );
        assert!(parse(&text, &shipped_dir()).is_ok());
        let issue = one_issue(&source_toml(r#"["meeting.started"]"#, "participant.avsc"));
        assert!(matches!(issue.problem, Problem::ShapeCannotCarry { .. }));
    }

    #[test]
    fn extra_events_are_for_what_the_catalogue_lacks() {
        let ok = "[[source]]\nname = \"s\"\napp = \"zoom\"\nextra_events = [\"phone.callee_ringing\"]\ntopic = \"t\"\nschema = \"envelope.avsc\"\n";
        let file = parse(ok, &shipped_dir()).unwrap();
        assert!(file.sources[0].events.is_empty());
        assert!(file.sources[0].takes("phone.callee_ringing"));

        let text = ok.replace("phone.callee_ringing", "meeting.started");
        let issue = one_issue(&text);
        assert!(
            issue
                .to_string()
                .contains("is in the event catalogue: list it under events"),
            "{issue}"
        );
        let text = ok.replace("phone.callee_ringing", "meeting.created");
        assert!(matches!(
            one_issue(&text).problem,
            Problem::BadExtraEvent { .. }
        ));
        let text = ok.replace("phone.callee_ringing", "phone.*");
        assert!(one_issue(&text)
            .to_string()
            .contains("wildcards belong in events"));
        let text = ok.replace("envelope.avsc", "meeting.avsc");
        assert!(matches!(
            one_issue(&text).problem,
            Problem::ShapeCannotCarry { .. }
        ));
        let text = ok
            .replace("phone.callee_ringing", "meeting.participant_left")
            .replace("envelope", "participant");
        assert!(parse(&text, &shipped_dir()).is_ok());
    }

    #[test]
    fn names_and_topics_are_unique_and_well_formed() {
        let text = r#"
[[source]]
name = "a"
app = "zoom"
events = ["meeting.started"]
topic = "zoom.a"
schema = "meeting.avsc"

[[source]]
name = "a"
app = "zoom"
events = ["meeting.ended"]
topic = "zoom.a"
schema = "meeting.avsc"

[[source]]
name = "Bad_Name"
app = "zoom"
events = ["meeting.ended"]
topic = "bad topic"
schema = "meeting.avsc"
"#;
        let all = issues(text);
        let problems: Vec<_> = all.iter().map(|i| (i.line, i.problem.clone())).collect();
        assert_eq!(
            problems,
            vec![
                (
                    Some(10),
                    Problem::DuplicateName {
                        name: "a".into(),
                        first_line: 3
                    }
                ),
                (
                    Some(13),
                    Problem::DuplicateTopic {
                        topic: "zoom.a".into(),
                        other: "a".into(),
                        first_line: 6
                    }
                ),
                (Some(17), Problem::BadName("Bad_Name".into())),
                (
                    Some(20),
                    Problem::BadTopic {
                        topic: "bad topic".into()
                    }
                ),
            ]
        );
        // Displayed one per line.
        let err = parse(text, &shipped_dir()).unwrap_err();
        assert_eq!(err.to_string().lines().count(), 4);
    }

    #[test]
    fn all_problems_are_reported_in_line_order() {
        let text = r#"
[[source]]
name = "x"
app = "zoom-admin"
events = ["meeting.endd", "meeting.created.by_me", "meeting.started", "meeting.started"]
topic = "t1"
schema = "missing.avsc"
[source.options]
include_audio = true

[[source]]
name = "y"
app = "zoom-pro"
events = ["meeting.started"]
topic = "t2"
schema = "meeting.avsc"
"#;
        let all = issues(text);
        let kinds: Vec<_> = all.iter().map(|i| i.line).collect();
        assert_eq!(
            kinds,
            vec![Some(5), Some(5), Some(5), Some(7), Some(13)],
            "{all:#?}"
        );
        assert!(matches!(all[0].problem, Problem::NotInCatalogue { .. }));
        assert!(matches!(all[1].problem, Problem::NotOffered { .. }));
        assert!(matches!(all[2].problem, Problem::DuplicateEvent { .. }));
        assert!(matches!(all[3].problem, Problem::SchemaUnreadable { .. }));
        assert_eq!(
            all[4].to_string(),
            "line 13: source \"y\": unknown Zoom app \"zoom-pro\" (expected \"zoom\" or \"zoom-admin\")"
        );
    }

    #[test]
    fn options_are_checked_against_the_shape() {
        let meeting = format!(
            "{}[source.options]\ninclude_audio = true\n",
            source_toml(r#"["meeting.started"]"#, "meeting.avsc")
        );
        let issue = one_issue(&meeting);
        assert_eq!(issue.line, Some(8));
        assert_eq!(
            issue.problem.to_string(),
            "unknown option \"include_audio\" for the Meeting shape (the Meeting shape takes no options)"
        );
        let recording = source_toml(r#"["recording.completed"]"#, "recording_file.avsc");
        let text = format!("{recording}[source.options]\ninclude_video = true\n");
        assert!(one_issue(&text)
            .to_string()
            .ends_with("(known: include_audio, include_chat, file_types)"));
        let text = format!("{recording}[source.options]\ninclude_chat = \"yes\"\n");
        assert!(matches!(
            one_issue(&text).problem,
            Problem::BadOption { .. }
        ));
        let text = format!("{recording}[source.options]\nfile_types = []\n");
        assert!(matches!(
            one_issue(&text).problem,
            Problem::BadOption { .. }
        ));
    }

    #[test]
    fn schemas_are_checked() {
        let scratch = Scratch::new();
        let source = |schema: &str| source_toml(r#"["meeting.started"]"#, schema);
        scratch.write("broken.avsc", "{\"type\": \"record\"");
        let issue = parse(&source("broken.avsc"), &scratch.0)
            .unwrap_err()
            .issues()[0]
            .clone();
        assert!(
            matches!(issue.problem, Problem::SchemaInvalid { .. }),
            "{issue}"
        );

        scratch.write(
            "other.avsc",
            r#"{"type": "record", "name": "Other", "namespace": "acme", "fields": []}"#,
        );
        let issue = parse(&source("other.avsc"), &scratch.0)
            .unwrap_err()
            .issues()[0]
            .clone();
        assert!(
            issue
                .to_string()
                .contains("\"acme.Other\", which is not a zoomstream shape"),
            "{issue}"
        );

        scratch.write("string.avsc", "\"string\"");
        let issue = parse(&source("string.avsc"), &scratch.0)
            .unwrap_err()
            .issues()[0]
            .clone();
        assert!(
            matches!(issue.problem, Problem::UnknownShape { .. }),
            "{issue}"
        );

        // An edited schema: a field dropped, one made nullable, one added with a default: fine.
        let edited = r#"{"type": "record", "name": "Meeting", "namespace": "zoomstream", "fields": [
            {"name": "event_id", "type": "string"},
            {"name": "meeting_id", "type": ["null", "string"], "default": null},
            {"name": "region", "type": "string", "default": "eu"}]}"#;
        scratch.write("edited.avsc", edited);
        assert!(parse(&source("edited.avsc"), &scratch.0).is_ok());

        // Wrong types and fields the shape cannot fill are rejected.
        let wrong = r#"{"type": "record", "name": "Meeting", "namespace": "zoomstream", "fields": [
            {"name": "event_ts", "type": "string"},
            {"name": "duration", "type": "string"},
            {"name": "region", "type": "string"},
            {"name": "topic", "type": ["null", "string", "long"]}]}"#;
        scratch.write("wrong.avsc", wrong);
        let err = parse(&source("wrong.avsc"), &scratch.0).unwrap_err();
        let fields: Vec<_> = err
            .issues()
            .iter()
            .map(|i| match &i.problem {
                Problem::SchemaField { field, .. } => field.as_str(),
                other => panic!("{other}"),
            })
            .collect();
        assert_eq!(fields, ["event_ts", "duration", "region", "topic"]);
        assert!(
            err.to_string()
                .contains("field \"event_ts\" is string, but the Meeting shape gives a timestamp"),
            "{err}"
        );
    }

    #[test]
    fn structural_errors_come_from_toml_with_their_line() {
        let issue = one_issue("[[source]]\nname = \"a\"\nnmae = 1\n");
        assert_eq!(issue.line, Some(3), "{issue}");
        assert!(issue.to_string().contains("nmae"), "{issue}");
        let issue = one_issue("[[source]\n");
        assert!(matches!(issue.problem, Problem::Toml(_)));
        assert_eq!(issue.line, Some(1));
        assert_eq!(one_issue("").problem, Problem::NoSources);
        let text =
            "[[source]]\nname = \"s\"\napp = \"zoom\"\ntopic = \"t\"\nschema = \"meeting.avsc\"\n";
        assert_eq!(one_issue(text).problem, Problem::NoEvents);
    }

    #[test]
    fn an_unreadable_file_is_its_own_error() {
        let err = load(Path::new("/nonexistent/sources.toml")).unwrap_err();
        assert!(matches!(err, SourcesError::Read { .. }));
        assert!(err
            .to_string()
            .starts_with("/nonexistent/sources.toml: cannot read the sources file"));
    }
}
