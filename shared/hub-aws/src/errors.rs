//! The parts of SDK error mapping every adapter shares.
//!
//! Each adapter matches its operation's service error enum variant by variant; the SDK marks
//! those enums `#[non_exhaustive]` (and the `Unhandled` variant deprecated for matching), so each
//! match ends with one arm that falls back to the error code, handled here.

use std::fmt::Debug;

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use aws_sdk_dynamodb::error::SdkError;

/// Why a call failed before or outside the service's own error response.
#[derive(Debug)]
pub enum Fault {
    /// Timeouts, connection failures, unparseable responses: the service may be fine later.
    Transport(String),
    /// The SDK refused to build the request (a bug in the caller's input).
    Construction(String),
}

/// The `Display` messages of an error and its sources, joined by `: `.
///
/// Deliberately not `DisplayErrorContext`: that appends the `Debug` form, which for a response
/// that failed to parse includes the raw body, and a `GetSecretValue` body holds the secret.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// Splits an SDK error into the service's error (to be matched by the caller) or a [`Fault`].
pub fn service_error<E, R>(error: SdkError<E, R>) -> Result<E, Fault>
where
    E: std::error::Error + 'static,
    R: Debug + 'static,
{
    let described = error_chain(&error);
    match error {
        SdkError::ServiceError(service) => Ok(service.into_err()),
        SdkError::ConstructionFailure(_) => Err(Fault::Construction(described)),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Err(Fault::Transport(described))
        }
        // A kind of failure added to a later SDK: not the caller's fault as far as we know.
        _ => Err(Fault::Transport(described)),
    }
}

/// `code: message` of a service error, for messages of errors we do not map to a variant.
pub fn describe(error: &impl ProvideErrorMetadata) -> String {
    format!(
        "{}: {}",
        error.code().unwrap_or("UnknownError"),
        error.message().unwrap_or("no message")
    )
}

pub fn code(error: &impl ProvideErrorMetadata) -> &str {
    error.code().unwrap_or("")
}

/// Throttling codes shared by the services (DynamoDB, SQS and the generic AWS ones).
pub fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "Throttling"
            | "ThrottledException"
            | "TooManyRequestsException"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "RequestLimitExceeded"
            | "ProvisionedThroughputExceededException"
            | "SlowDown"
    )
}

pub fn is_validation_code(code: &str) -> bool {
    matches!(
        code,
        "ValidationException"
            | "ValidationError"
            | "SerializationException"
            | "InvalidParameterValue"
            | "InvalidParameterException"
            | "InvalidParameterCombination"
            | "MissingParameter"
            | "InvalidArgument"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_secretsmanager::config::http::HttpResponse;
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
    use aws_smithy_types::body::SdkBody;

    #[test]
    fn unparseable_responses_do_not_leak_their_body() {
        let status = 200u16.try_into().expect("a status code");
        let raw = HttpResponse::new(status, SdkBody::from(r#"{"SecretString":"hunter2"#));
        let error: SdkError<GetSecretValueError, HttpResponse> =
            SdkError::response_error("unexpected end of JSON", raw);
        let Err(Fault::Transport(message)) = service_error(error) else {
            panic!("an unparseable response is a transport fault");
        };
        assert!(message.contains("unexpected end of JSON"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
}
