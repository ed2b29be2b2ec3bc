//! Reading a sources file: the TOML structure, then every check of every source, collecting
//! all problems before giving up.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use apache_avro::Schema;
use serde::Deserialize;
use toml::Spanned;

use super::model::{pattern_matches, Source, SourceOptions, SourcesFile};
use super::problems::{app_label, not_offered_hint, Issue, Notice, Problem, SourcesError, Warning};
use crate::avro::SchemaVersions;
use crate::catalogue::{self, EventDef};
use crate::shape::{check_schema, FieldPlan, Shape};
use crate::{App, AppKind, Apps};

/// Reads and validates the sources file at `path` against the built-in apps (`zoom`,
/// `zoom-admin`); schema paths are relative to its directory.
pub fn load(path: &Path) -> Result<SourcesFile, SourcesError> {
    load_with(path, &Apps::builtin())
}

/// Reads and validates the sources file at `path`: each source's `app` must be one of `apps`,
/// whose kind decides the events it may take.
pub fn load_with(path: &Path, apps: &Apps) -> Result<SourcesFile, SourcesError> {
    let text = std::fs::read_to_string(path).map_err(|error| SourcesError::Read {
        path: path.to_owned(),
        error,
    })?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    Parser::new(&text, &dir, Some(path), apps).run()
}

/// Validates sources-file text; schema paths are relative to `dir`. Issues carry line numbers
/// but no file name.
pub fn parse(text: &str, dir: &Path) -> Result<SourcesFile, SourcesError> {
    parse_with(text, dir, &Apps::builtin())
}

/// [`parse`], against the apps of `apps`.
pub fn parse_with(text: &str, dir: &Path, apps: &Apps) -> Result<SourcesFile, SourcesError> {
    Parser::new(text, dir, None, apps).run()
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
    apps: &'a Apps,
    issues: Vec<Issue>,
    warnings: Vec<Notice>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, dir: &'a Path, file: Option<&'a Path>, apps: &'a Apps) -> Self {
        Parser {
            text,
            dir,
            file,
            apps,
            issues: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn warn(&mut self, offset: usize, source: &str, warning: Warning) {
        self.warnings.push(Notice {
            line: Some(self.line_of(offset)),
            source_name: source.to_owned(),
            warning,
        });
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
                warnings: self.warnings,
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
        let app = match self.apps.app(raw.app.get_ref()) {
            Some(app) => Some(app),
            None => {
                let problem = Problem::UnknownApp {
                    app: raw.app.get_ref().clone(),
                    known: self.apps.names(),
                };
                self.issue(Some(raw.app.span().start), Some(name), problem);
                None
            }
        };
        if raw.events.is_empty() && raw.extra_events.is_empty() {
            self.issue(Some(raw.name.span().start), Some(name), Problem::NoEvents);
        }
        // Each written event with the catalogue rows it stands for.
        let mut resolved: Vec<(&Spanned<String>, Vec<&'static EventDef>)> = Vec::new();
        // The events as the source takes them: old names replaced by today's.
        let events: Vec<String> = raw
            .events
            .iter()
            .map(|e| {
                catalogue::alias_of(e.get_ref()).map_or_else(|| e.get_ref().clone(), str::to_owned)
            })
            .collect();
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
        if let Some((_, shape, _)) = &loaded {
            for (event, defs) in &resolved {
                let wildcard = event.get_ref().contains('*');
                let names = |keep: &dyn Fn(&EventDef) -> bool| -> Vec<String> {
                    defs.iter()
                        .filter(|d| keep(d))
                        .map(|d| d.name.to_owned())
                        .collect()
                };
                if wildcard {
                    let set_aside = names(&|d| shape.sets_aside(d.wire_event));
                    if !set_aside.is_empty() {
                        let warning = Warning::PatternSetsAside {
                            pattern: event.get_ref().clone(),
                            events: set_aside,
                            shape: *shape,
                        };
                        self.warn(event.span().start, name, warning);
                    }
                }
                let uncarried = names(&|d| {
                    !(shape.can_carry(d.wire_event) || wildcard && shape.sets_aside(d.wire_event))
                });
                if uncarried.is_empty() {
                    continue;
                }
                let problem = if wildcard {
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
            options = self.check_options(name, app, *shape, &raw.options);
        }
        let (Some(app), Some((schema, shape, schema_versions))) = (app, loaded) else {
            return None;
        };
        if self.issues.len() > before {
            return None;
        }
        Some(Source {
            name: name.to_owned(),
            app,
            events,
            extra_events: raw
                .extra_events
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            topic: raw.topic.into_inner(),
            schema_path,
            field_plan: FieldPlan::new(shape, &schema),
            schema,
            schema_versions,
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
        let def = match catalogue::alias_of(text) {
            Some(new) => {
                let warning = Warning::Alias {
                    old: text.clone(),
                    new,
                };
                self.warn(event.span().start, source, warning);
                catalogue::lookup(new)
            }
            None => catalogue::lookup(text),
        };
        match def {
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
        } else if catalogue::added_since_seed(text) {
            // Sources written before the catalogue had it keep working.
            let warning = Warning::ExtraNowCatalogued {
                event: text.clone(),
            };
            self.warn(extra.span().start, source, warning);
            None
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
    ) -> Option<(Schema, Shape, SchemaVersions)> {
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
        if !fits {
            return None;
        }
        match SchemaVersions::load(path, schema.clone()) {
            Ok(versions) => Some((schema, shape, versions)),
            Err(problems) => {
                for problem in problems {
                    let problem = Problem::SchemaHistory {
                        path: path.to_owned(),
                        error: problem.to_string(),
                    };
                    self.issue(at, Some(source), problem);
                }
                None
            }
        }
    }

    fn check_options(
        &mut self,
        source: &str,
        app: Option<App>,
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
            let known = shape.option_names().contains(&key.get_ref().as_str());
            match (shape, key.get_ref().as_str()) {
                (_, option @ ("meeting_ids" | "webinar_ids")) if known => {
                    let expected = "a non-empty list of ids, e.g. [\"85746065432\"] (numbers or strings)";
                    let ids: Option<Vec<String>> = match value.get_ref() {
                        toml::Value::Array(items) if !items.is_empty() => items
                            .iter()
                            .map(|item| match item {
                                toml::Value::String(s) if !s.trim().is_empty() => {
                                    Some(s.trim().to_owned())
                                }
                                toml::Value::Integer(n) => Some(n.to_string()),
                                _ => None,
                            })
                            .collect(),
                        _ => None,
                    };
                    match (ids, option) {
                        (Some(ids), "meeting_ids") => options.meeting_ids = Some(ids),
                        (Some(ids), _) => options.webinar_ids = Some(ids),
                        (None, _) => self.issue(at, Some(source), bad(option, expected)),
                    }
                }
                (_, "hosted_by_me") if known => match (value.get_ref(), app.map(App::kind)) {
                    (toml::Value::Boolean(b), Some(AppKind::Zoom) | None) => options.hosted_by_me = *b,
                    (toml::Value::Boolean(_), Some(AppKind::ZoomAdmin)) => self.issue(
                        at,
                        Some(source),
                        bad("hosted_by_me", "left out on a zoom-admin source (it has no configured user; filter with meeting_ids or webinar_ids)"),
                    ),
                    _ => self.issue(at, Some(source), bad("hosted_by_me", "true or false")),
                },
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
                (_, "keep_redeliveries") => match value.get_ref() {
                    toml::Value::Boolean(b) => options.keep_redeliveries = *b,
                    _ => self.issue(at, Some(source), bad("keep_redeliveries", "true or false")),
                },
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
