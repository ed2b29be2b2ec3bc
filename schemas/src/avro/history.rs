//! The released versions of a schema, so that readers decode every record with the schema that
//! **wrote** it (Avro schema resolution turns it into the current one).
//!
//! Every released version of `X.avsc` is kept, unchanged, as `history/X/v<N>.avsc` beside it.
//! Single-object records name their writer by fingerprint, looked up here; Confluent records by
//! registry id, looked up through a [`RegistrySchemas`] (the registry keeps its own history). The
//! current schema must read everything its versions wrote (BACKWARD compatibility), checked when
//! the versions are loaded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;

use super::{legacy_fingerprint, rabin_fingerprint};

/// Why a schema's history cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("cannot read {}: {error}", path.display())]
    Unreadable { path: PathBuf, error: String },
    #[error("{} is not a valid Avro schema: {error}", path.display())]
    Invalid { path: PathBuf, error: String },
    #[error("the current schema cannot read records written with {}: {reason} (a schema edit must be BACKWARD compatible: add fields with defaults, don't remove or retype fields without one)", path.display())]
    Incompatible { path: PathBuf, reason: String },
}

/// Writer schemas by registry id: the Schema Registry, for records in Confluent framing.
pub trait RegistrySchemas: Send + Sync {
    /// The schema registered under `id`, or why it cannot be had.
    fn schema_by_id(&self, id: u32) -> Result<Arc<Schema>, String>;
}

/// One schema's current version and every released one, by single-object fingerprint.
#[derive(Debug, Clone)]
pub struct SchemaVersions {
    current: Arc<Schema>,
    by_fingerprint: HashMap<[u8; 8], Arc<Schema>>,
    versions: Vec<(PathBuf, Arc<Schema>)>,
}

impl SchemaVersions {
    /// The current schema alone (no history).
    pub fn current_only(current: Schema) -> SchemaVersions {
        SchemaVersions::with_history(current, Vec::new())
    }

    /// The current schema and released versions (each with the file it came from).
    pub fn with_history(current: Schema, history: Vec<(PathBuf, Schema)>) -> SchemaVersions {
        let current = Arc::new(current);
        let versions: Vec<_> = history
            .into_iter()
            .map(|(path, schema)| (path, Arc::new(schema)))
            .collect();
        let mut by_fingerprint = HashMap::new();
        // Older versions first, so that the current schema wins a (harmless) tie.
        for schema in versions.iter().map(|(_, s)| s).chain([&current]) {
            // Records zoomstream wrote before it computed the specification's fingerprint carry
            // apache-avro's: still recognised.
            by_fingerprint.insert(legacy_fingerprint(schema), Arc::clone(schema));
            by_fingerprint.insert(rabin_fingerprint(schema), Arc::clone(schema));
        }
        SchemaVersions {
            current,
            by_fingerprint,
            versions,
        }
    }

    /// Reads the history of the schema file `path`: every `history/<stem>/*.avsc` beside it
    /// (none is fine), and checks that `current` reads what each of them wrote.
    pub fn load(path: &Path, current: Schema) -> Result<SchemaVersions, Vec<HistoryError>> {
        let folder = history_folder(path);
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&folder) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|p| p.extension().is_some_and(|e| e == "avsc"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(vec![HistoryError::Unreadable {
                    path: folder,
                    error: e.to_string(),
                }])
            }
        };
        files.sort_by_key(|p| version_number(p));
        let mut problems = Vec::new();
        let mut history = Vec::new();
        for file in files {
            match std::fs::read_to_string(&file) {
                Ok(text) => match Schema::parse_str(&text) {
                    Ok(schema) => history.push((file, schema)),
                    Err(e) => problems.push(HistoryError::Invalid {
                        path: file,
                        error: e.to_string(),
                    }),
                },
                Err(e) => problems.push(HistoryError::Unreadable {
                    path: file,
                    error: e.to_string(),
                }),
            }
        }
        let versions = SchemaVersions::with_history(current, history);
        problems.extend(versions.backward_compatibility_problems());
        if problems.is_empty() {
            Ok(versions)
        } else {
            Err(problems)
        }
    }

    /// The schema records are written with now, and the one readers resolve into.
    pub fn current(&self) -> &Arc<Schema> {
        &self.current
    }

    /// The released versions, oldest first, with their files.
    pub fn history(&self) -> impl Iterator<Item = (&Path, &Schema)> {
        self.versions.iter().map(|(p, s)| (p.as_path(), s.as_ref()))
    }

    /// The version whose single-object fingerprint is `fingerprint`.
    pub fn by_fingerprint(&self, fingerprint: &[u8; 8]) -> Option<&Arc<Schema>> {
        self.by_fingerprint.get(fingerprint)
    }

    /// Every released version the current schema cannot read (BACKWARD compatibility).
    pub fn backward_compatibility_problems(&self) -> Vec<HistoryError> {
        self.versions
            .iter()
            .filter_map(|(path, writer)| {
                SchemaCompatibility::can_read(writer, &self.current)
                    .err()
                    .map(|e| HistoryError::Incompatible {
                        path: path.clone(),
                        reason: e.to_string(),
                    })
            })
            .collect()
    }
}

/// `dir/history/<stem>/` for the schema file `dir/<stem>.avsc`.
pub fn history_folder(path: &Path) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default();
    path.parent()
        .unwrap_or(Path::new("."))
        .join("history")
        .join(stem)
}

/// `v12.avsc` → 12, so v10 sorts after v9; other names sort first, by name.
fn version_number(path: &Path) -> (u64, PathBuf) {
    let number = path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.strip_prefix('v'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (number, path.to_owned())
}
