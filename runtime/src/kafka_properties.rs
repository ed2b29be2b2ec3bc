//! `--kafka-options-file`: librdkafka settings from a Java properties file, the way Kafka's own
//! tools take client settings (`--command-config client.properties`). Values may hold anything a
//! secret needs — commas included, which the comma-separated `ZOOMSTREAM_KAFKA_OPTIONS` cannot
//! carry — and are never shown, not even in a parse error.

use std::ffi::OsStr;
use std::fmt;
use std::path::PathBuf;

/// The settings of a properties file, read when the flags are parsed.
#[derive(Clone)]
pub struct PropertiesFile {
    pub path: PathBuf,
    /// `(key, value)`, sorted by key.
    pub options: Vec<(String, String)>,
}

impl fmt::Debug for PropertiesFile {
    // Values may be secrets: the path and the names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.options.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("PropertiesFile")
            .field("path", &self.path)
            .field("options", &names)
            .finish()
    }
}

impl PropertiesFile {
    /// Reads `path` (`key=value` or `key: value` lines, `#` and `!` comments, Java escapes).
    pub fn read(path: PathBuf) -> Result<PropertiesFile, String> {
        let file = std::fs::File::open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // The crate's errors carry the line number, never the value.
        let map = java_properties::read(std::io::BufReader::new(file)).map_err(|e| {
            format!(
                "{} is not a properties file: line {}",
                path.display(),
                e.line_number().map_or("?".to_owned(), |n| n.to_string())
            )
        })?;
        let mut options: Vec<(String, String)> = map
            .into_iter()
            .map(|(k, v)| (k.trim().to_owned(), v))
            .filter(|(k, _)| !k.is_empty())
            .collect();
        options.sort();
        Ok(PropertiesFile { path, options })
    }
}

/// The clap parser of `--kafka-options-file`.
#[derive(Clone, Copy)]
pub(crate) struct PropertiesFileParser;

impl clap::builder::TypedValueParser for PropertiesFileParser {
    type Value = PropertiesFile;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Self::Value, clap::Error> {
        PropertiesFile::read(PathBuf::from(value)).map_err(|reason| {
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!("--kafka-options-file / ZOOMSTREAM_KAFKA_OPTIONS_FILE: {reason}\n"),
            )
            .with_cmd(cmd)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_commas_and_escapes_and_never_show() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.properties");
        std::fs::write(
            &path,
            "# Confluent Cloud\nsecurity.protocol=SASL_SSL\nsasl.mechanisms: PLAIN\n\
             sasl.password = pa,ss\\=word\n! comment\n\n",
        )
        .unwrap();
        let file = PropertiesFile::read(path).unwrap();
        assert_eq!(
            file.options,
            [
                ("sasl.mechanisms".to_owned(), "PLAIN".to_owned()),
                ("sasl.password".to_owned(), "pa,ss=word".to_owned()),
                ("security.protocol".to_owned(), "SASL_SSL".to_owned()),
            ]
        );
        let shown = format!("{file:?}");
        assert!(
            shown.contains("sasl.password") && !shown.contains("pa,ss"),
            "{shown}"
        );
        let missing = PropertiesFile::read(dir.path().join("none")).unwrap_err();
        assert!(missing.contains("cannot open"), "{missing}");
    }
}
