//! What can be wrong with a sources file, and how it is told to the operator: every problem
//! with its file, line and source.

use std::fmt::{self, Write as _};
use std::path::PathBuf;

use crate::catalogue::{self, EventDef};
use crate::shape::Shape;
use crate::{App, AppKind};

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
    /// The sources file, when loaded from one ([`super::load`]); `None` for [`super::parse()`].
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
    #[error("app {app:?} is not an app of this deployment (its apps: {known})")]
    UnknownApp { app: String, known: String },
    #[error("lists no events (give events, or extra_events for a custom source)")]
    NoEvents,
    #[error("event {event:?} is not in the Zoom event catalogue (for events Zoom sends that the catalogue lacks, use extra_events)")]
    NotInCatalogue { event: String },
    #[error("event {event:?} is not offered by the {app_label} app{hint}")]
    NotOffered {
        event: String,
        app_label: String,
        hint: String,
    },
    #[error("event pattern {pattern:?} is not valid: only a trailing '*' is allowed (\"meeting.*\", or \"*\" for every event)")]
    BadPattern { pattern: String },
    #[error("event pattern {pattern:?} matches no event of the {app_label} app")]
    WildcardMatchesNothing { pattern: String, app_label: String },
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
    #[error("schema {}: its history: {error}", path.display())]
    SchemaHistory { path: PathBuf, error: String },
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

/// What a sources file does that works but should change; the processor logs each at start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Warning {
    #[error("event {old:?} is an old catalogue name (Zoom sends {new:?}); taking {new:?} - write {new:?}")]
    Alias { old: String, new: &'static str },
    #[error(
        "extra event {event:?} is in the event catalogue now; it works, but list it under events"
    )]
    ExtraNowCatalogued { event: String },
    #[error("event pattern {pattern:?} leaves out {}, which the {shape} shape cannot carry: give them a source of their own shape", abbreviate(events))]
    PatternSetsAside {
        pattern: String,
        events: Vec<String>,
        shape: Shape,
    },
}

/// A warning with where it is (same form as [`Issue`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub line: Option<usize>,
    pub source_name: String,
    pub warning: Warning,
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        write!(f, "source {:?}: {}", self.source_name, self.warning)
    }
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

/// `Zoom` for the built-in apps; `"sales" (Zoom)` for an app of the apps file.
pub(super) fn app_label(app: App) -> String {
    let kind = app.kind();
    if app.as_str() == kind.as_str() {
        kind.label().to_owned()
    } else {
        format!("{:?} ({})", app.as_str(), kind.label())
    }
}

/// Why a catalogue event is not offered by `app`, with the names that app has for it instead.
pub(super) fn not_offered_hint(def: &EventDef, app: App) -> String {
    let alternatives: Vec<&str> = catalogue::events()
        .iter()
        .filter(|d| d.wire_event == def.wire_event && d.offered_by(app))
        .map(|d| d.name)
        .collect();
    let other = match app.kind() {
        AppKind::Zoom => AppKind::ZoomAdmin,
        AppKind::ZoomAdmin => AppKind::Zoom,
    };
    let mut hint = format!(" (it is a {} event", other.label());
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
