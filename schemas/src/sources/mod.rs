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
//!
//! `model`: what a loaded file is; `parse`: reading and checking one; `problems`: what can be
//! wrong, worded for the operator.

mod model;
mod parse;
mod problems;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_since_seed;

pub use model::{Source, SourceOptions, SourcesFile};
pub use parse::{load, load_with, parse, parse_with};
pub use problems::{Issue, Notice, Problem, SourcesError, Warning};
