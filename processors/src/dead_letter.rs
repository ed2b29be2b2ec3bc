//! Dead letters: why a raw record, or one source's share of it, could not become records.

use zoomstream_schemas::mapping::MappingError;

/// Why a record went to the dead-letter topic, with the detail for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub reason: DeadLetterReason,
    pub detail: String,
    /// The source whose mapping failed, when the record was fine for the others.
    pub source: Option<String>,
}

impl DeadLetter {
    /// A dead letter for the whole record (no one source at fault).
    pub fn new(reason: DeadLetterReason, detail: impl Into<String>) -> Self {
        DeadLetter {
            reason,
            detail: detail.into(),
            source: None,
        }
    }
}

/// The bounded set of dead-letter reasons. [`DeadLetterReason::as_str`] is the
/// `zoomstream-dlq-reason` header and the `reason` label of
/// `zoomstream_processor_dlq_records_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeadLetterReason {
    /// The record has no `zoomstream-app` header.
    MissingHeader,
    /// The app header names no app this processor knows.
    UnknownApp,
    /// The record has no value.
    Empty,
    /// The value is not JSON.
    NotJson,
    /// The value has no string field `event`.
    NoEvent,
    /// Neither the catalogue nor any source knows the event.
    UnknownEvent,
    /// A source was handed a webhook it does not take.
    NotForSource,
    /// A field the source's shape needs is missing.
    MissingField,
    /// A field has the wrong JSON type.
    WrongType,
    /// A timestamp is not RFC 3339.
    BadTimestamp,
    /// A recording webhook without `recording_files`.
    NoRecordingFiles,
    /// A value does not fit the source's schema.
    SchemaMismatch,
    /// The Avro encoder refused the record.
    EncodeFailed,
    /// The producer refused the source record (e.g. larger than `message.max.bytes`).
    OutputRejected,
}

impl DeadLetterReason {
    /// Every reason, to pre-register the metric's labels.
    pub const ALL: [DeadLetterReason; 14] = [
        DeadLetterReason::MissingHeader,
        DeadLetterReason::UnknownApp,
        DeadLetterReason::Empty,
        DeadLetterReason::NotJson,
        DeadLetterReason::NoEvent,
        DeadLetterReason::UnknownEvent,
        DeadLetterReason::NotForSource,
        DeadLetterReason::MissingField,
        DeadLetterReason::WrongType,
        DeadLetterReason::BadTimestamp,
        DeadLetterReason::NoRecordingFiles,
        DeadLetterReason::SchemaMismatch,
        DeadLetterReason::EncodeFailed,
        DeadLetterReason::OutputRejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::MissingHeader => "missing_header",
            DeadLetterReason::UnknownApp => "unknown_app",
            DeadLetterReason::Empty => "empty",
            DeadLetterReason::NotJson => "not_json",
            DeadLetterReason::NoEvent => "no_event",
            DeadLetterReason::UnknownEvent => "unknown_event",
            DeadLetterReason::NotForSource => "not_for_source",
            DeadLetterReason::MissingField => "missing_field",
            DeadLetterReason::WrongType => "wrong_type",
            DeadLetterReason::BadTimestamp => "bad_timestamp",
            DeadLetterReason::NoRecordingFiles => "no_recording_files",
            DeadLetterReason::SchemaMismatch => "schema_mismatch",
            DeadLetterReason::EncodeFailed => "encode_failed",
            DeadLetterReason::OutputRejected => "output_rejected",
        }
    }
}

impl From<&MappingError> for DeadLetterReason {
    fn from(err: &MappingError) -> Self {
        match err {
            MappingError::NotForSource { .. } => DeadLetterReason::NotForSource,
            MappingError::MissingField { .. } => DeadLetterReason::MissingField,
            MappingError::WrongType { .. } => DeadLetterReason::WrongType,
            MappingError::BadTimestamp { .. } => DeadLetterReason::BadTimestamp,
            MappingError::NoRecordingFiles { .. } => DeadLetterReason::NoRecordingFiles,
            MappingError::SchemaMismatch { .. } => DeadLetterReason::SchemaMismatch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_labels_are_the_documented_codes() {
        let labels: Vec<&str> = DeadLetterReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            labels,
            [
                "missing_header",
                "unknown_app",
                "empty",
                "not_json",
                "no_event",
                "unknown_event",
                "not_for_source",
                "missing_field",
                "wrong_type",
                "bad_timestamp",
                "no_recording_files",
                "schema_mismatch",
                "encode_failed",
                "output_rejected",
            ]
        );
    }

    #[test]
    fn a_mapping_error_keeps_its_reason_code() {
        let s = || String::from("x");
        let errors = [
            MappingError::NotForSource {
                source_name: s(),
                reason: s(),
            },
            MappingError::MissingField { field: s() },
            MappingError::WrongType {
                field: s(),
                expected: "a string",
                found: "a number",
            },
            MappingError::BadTimestamp {
                field: s(),
                value: s(),
            },
            MappingError::NoRecordingFiles { event: s() },
            MappingError::SchemaMismatch {
                field: s(),
                reason: s(),
            },
        ];
        for err in &errors {
            assert_eq!(DeadLetterReason::from(err).as_str(), err.reason_code());
        }
        assert_eq!(errors.len(), MappingError::REASON_CODES.len());
    }
}
