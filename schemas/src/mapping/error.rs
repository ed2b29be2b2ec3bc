//! Why a webhook could not become records, with the constructors the mapping uses.

use serde_json::Value;

/// Why a webhook could not become records: it goes to the dead-letter topic with
/// [`MappingError::reason_code`] and the Display text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("source {source_name:?} does not take this webhook: {reason}")]
    NotForSource { source_name: String, reason: String },
    #[error("{field} is missing")]
    MissingField { field: String },
    #[error("{field} is {found}, expected {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{field} is not an RFC 3339 timestamp: {value:?}")]
    BadTimestamp { field: String, value: String },
    #[error("payload.object.recording_files is missing from a {event} webhook")]
    NoRecordingFiles { event: String },
    #[error("{field} does not fit the schema: {reason}")]
    SchemaMismatch { field: String, reason: String },
}

impl MappingError {
    /// A short, bounded code for DLQ headers and metric labels.
    pub fn reason_code(&self) -> &'static str {
        match self {
            MappingError::NotForSource { .. } => "not_for_source",
            MappingError::MissingField { .. } => "missing_field",
            MappingError::WrongType { .. } => "wrong_type",
            MappingError::BadTimestamp { .. } => "bad_timestamp",
            MappingError::NoRecordingFiles { .. } => "no_recording_files",
            MappingError::SchemaMismatch { .. } => "schema_mismatch",
        }
    }

    /// Every code [`MappingError::reason_code`] can return (to pre-register metric labels).
    pub const REASON_CODES: [&'static str; 6] = [
        "not_for_source",
        "missing_field",
        "wrong_type",
        "bad_timestamp",
        "no_recording_files",
        "schema_mismatch",
    ];
}

pub(super) fn missing(field: &str) -> MappingError {
    MappingError::MissingField {
        field: field.to_owned(),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn wrong_type(field: &str, expected: &'static str, found: &Value) -> MappingError {
    MappingError::WrongType {
        field: field.to_owned(),
        expected,
        found: json_type(found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reason_codes_are_a_bounded_set() {
        let errors = [
            MappingError::NotForSource {
                source_name: "s".into(),
                reason: "r".into(),
            },
            missing("f"),
            wrong_type("f", "a string", &json!([])),
            MappingError::BadTimestamp {
                field: "f".into(),
                value: "v".into(),
            },
            MappingError::NoRecordingFiles {
                event: "recording.completed".into(),
            },
            MappingError::SchemaMismatch {
                field: "f".into(),
                reason: "r".into(),
            },
        ];
        let codes: Vec<_> = errors.iter().map(MappingError::reason_code).collect();
        assert_eq!(codes, MappingError::REASON_CODES);
        assert_eq!(errors[2].to_string(), "f is an array, expected a string");
    }
}
