//! Sources files written per test, so tests never share topics.

use std::path::PathBuf;

use crate::names::unique;

/// The schemas directory of the workspace (the shipped sources file and `.avsc` files).
pub fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas")
        .canonicalize()
        .expect("schemas/")
}

/// A sources file written for one test: every topic prefixed so tests never share topics,
/// every schema path made absolute.
pub struct TestSources {
    pub path: PathBuf,
    pub prefix: String,
    pub file: zoomstream_schemas::sources::SourcesFile,
}

impl TestSources {
    /// From sources-file text whose `schema` paths are relative to `schemas/`.
    pub fn new(template: &str) -> TestSources {
        TestSources::with_apps(template, &zoomstream_schemas::Apps::builtin())
    }

    /// [`TestSources::new`], for sources naming the apps of `apps` (an apps file's).
    pub fn with_apps(template: &str, apps: &zoomstream_schemas::Apps) -> TestSources {
        let prefix = unique("t");
        let schemas = schemas_dir();
        let text: String = template
            .lines()
            .map(|line| {
                let trimmed = line.trim_start();
                if let Some(rest) = trimmed.strip_prefix("topic = \"") {
                    format!("topic = \"{prefix}.{rest}")
                } else if let Some(rest) = trimmed.strip_prefix("schema = \"") {
                    format!("schema = \"{}/{rest}", schemas.display())
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sources.toml");
        std::fs::write(&path, text).unwrap();
        let file = zoomstream_schemas::sources::load_with(&path, apps)
            .unwrap_or_else(|e| panic!("the test sources file is valid: {e}"));
        TestSources { path, prefix, file }
    }

    /// The shipped `schemas/sources.toml`, with test topics.
    pub fn shipped() -> TestSources {
        TestSources::new(&std::fs::read_to_string(schemas_dir().join("sources.toml")).unwrap())
    }

    pub fn source(&self, name: &str) -> &zoomstream_schemas::sources::Source {
        self.file
            .sources
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no source {name}"))
    }
}
