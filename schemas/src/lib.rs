//! The zoomstream contract, shared by every service and by downstream tools:
//!
//! - [`app`]: a Zoom app webhooks arrive for (its name and kind);
//! - [`apps`]: the apps of a deployment (the apps file, or the two built-in apps);
//! - [`raw`]: what ingest writes to the raw topic (headers, key, event id);
//! - [`catalogue`]: every Zoom event of both apps, with the user-level variants;
//! - [`shape`]: the record shapes, their fields, and whether a `.avsc` fits one;
//! - [`sources`]: the sources file (which events go to which topic, with which schema);
//! - [`mapping`]: how a raw webhook becomes the Avro records of a source;
//! - [`avro`]: the `.avsc` files and the two wire encodings (single-object, Confluent);
//! - [`url_component`]: values put into URLs (registry subjects, download tokens).

pub mod app;
pub mod apps;
pub mod avro;
pub mod catalogue;
pub mod mapping;
pub mod raw;
pub mod shape;
pub mod sources;
pub mod url_component;

pub use app::{App, AppKind};
pub use apps::{AppConfig, Apps};
