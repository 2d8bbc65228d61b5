//! The two kinds of failure: a schema that cannot be compiled (one error naming the JSON path of
//! the offending value), and a record that cannot be mapped (any number of errors, each naming
//! the target field and source path, never failing the batch).

use std::fmt;

use hub_core::model::ModelError;

/// Why a schema was refused. `path` is the JSON path of the offending value in the schema
/// document (`fieldMappings[3].config.transformations[1].config.pattern`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CompileError {
    pub path: String,
    pub code: CompileErrorCode,
    pub message: String,
}

/// Stable snake_case codes of [`CompileError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompileErrorCode {
    /// The document breaks a rule of the data model (`hub_core::model::Validate`).
    InvalidSchema,
    InvalidRegex,
    InvalidDateFormat,
    /// A source field or flatten path that does not parse, or uses unsupported JSONPath.
    InvalidPath,
    /// `{{...}}` that is not `{{task.<key>}}`.
    UnknownPlaceholder,
    InvalidExpression,
    /// A transformation, condition or rule applied to a type it cannot convert.
    IncompatibleType,
    /// A lookup table whose keys collide once case is ignored.
    DuplicateLookupKey,
    /// A currency conversion whose rates table lacks the target currency.
    MissingRate,
}

impl CompileErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidSchema => "invalid_schema",
            Self::InvalidRegex => "invalid_regex",
            Self::InvalidDateFormat => "invalid_date_format",
            Self::InvalidPath => "invalid_path",
            Self::UnknownPlaceholder => "unknown_placeholder",
            Self::InvalidExpression => "invalid_expression",
            Self::IncompatibleType => "incompatible_type",
            Self::DuplicateLookupKey => "duplicate_lookup_key",
            Self::MissingRate => "missing_rate",
        }
    }
}

impl fmt::Display for CompileErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl CompileError {
    pub(crate) fn new(
        path: impl Into<String>,
        code: CompileErrorCode,
        message: impl Into<String>,
    ) -> Self {
        Self {
            path: path.into(),
            code,
            message: message.into(),
        }
    }

    /// The stable code, as a string.
    pub fn code(&self) -> &'static str {
        self.code.as_str()
    }
}

impl From<ModelError> for CompileError {
    fn from(error: ModelError) -> Self {
        match error {
            ModelError::InvalidValue { path, message }
            | ModelError::InvalidDocument { path, message, .. } => {
                CompileError::new(path, CompileErrorCode::InvalidSchema, message)
            }
            other => CompileError::new(".", CompileErrorCode::InvalidSchema, other.to_string()),
        }
    }
}

/// Stable snake_case codes of per-record errors (`RecordError.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The record is not a JSON object (or its text is not JSON).
    InvalidRecord,
    MissingRequiredField,
    /// A value of a type the transformation or operator cannot take (an object to `uppercase`).
    InvalidType,
    /// Text that should be a number and is not.
    InvalidNumber,
    /// A value that should be a date and is not, or a date out of range.
    InvalidDate,
    InvalidBoolean,
    /// Arithmetic that overflowed.
    NumberOutOfRange,
    MissingCurrencyRate,
    /// A `{{task.<key>}}` the sync task's config does not have.
    MissingTaskValue,
    /// A custom expression raised an error or returned something that is not JSON.
    ExpressionFailed,
    /// A custom expression exceeded its time, operation, size or depth limit.
    ExpressionLimit,
    /// A JSONPath that visits too many values of this record.
    PathTooCostly,
    ValidationMinLength,
    ValidationMaxLength,
    ValidationPattern,
    ValidationMin,
    ValidationMax,
    ValidationEmail,
    ValidationUrl,
    ValidationEnum,
    MissingExternalId,
    /// An external id that is not text or a number.
    InvalidExternalId,
    /// None (`field_match`) or not all (`composite`) of the deduplication fields have a value.
    MissingDedupField,
    /// A relationship's source value that is not an id or a list of ids.
    InvalidRelationship,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRecord => "invalid_record",
            Self::MissingRequiredField => "missing_required_field",
            Self::InvalidType => "invalid_type",
            Self::InvalidNumber => "invalid_number",
            Self::InvalidDate => "invalid_date",
            Self::InvalidBoolean => "invalid_boolean",
            Self::NumberOutOfRange => "number_out_of_range",
            Self::MissingCurrencyRate => "missing_currency_rate",
            Self::MissingTaskValue => "missing_task_value",
            Self::ExpressionFailed => "expression_failed",
            Self::ExpressionLimit => "expression_limit",
            Self::PathTooCostly => "path_too_costly",
            Self::ValidationMinLength => "validation_min_length",
            Self::ValidationMaxLength => "validation_max_length",
            Self::ValidationPattern => "validation_pattern",
            Self::ValidationMin => "validation_min",
            Self::ValidationMax => "validation_max",
            Self::ValidationEmail => "validation_email",
            Self::ValidationUrl => "validation_url",
            Self::ValidationEnum => "validation_enum",
            Self::MissingExternalId => "missing_external_id",
            Self::InvalidExternalId => "invalid_external_id",
            Self::MissingDedupField => "missing_dedup_field",
            Self::InvalidRelationship => "invalid_relationship",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure while producing one value; the mapper adds the record index, external id and
/// target field. Boxed: every value a mapping produces travels in a `Result` with it, and a
/// pointer keeps those results small (failures are rare).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issue(Box<IssueParts>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IssueParts {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
    /// Overrides the mapping's own source path (the field of the rule that failed).
    pub(crate) source_path: Option<String>,
}

impl Issue {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(Box::new(IssueParts {
            code,
            message: message.into(),
            source_path: None,
        }))
    }

    pub(crate) fn at(mut self, source_path: &str) -> Self {
        if self.0.source_path.is_none() {
            self.0.source_path = Some(source_path.to_owned());
        }
        self
    }

    pub(crate) fn into_parts(self) -> IssueParts {
        *self.0
    }
}
