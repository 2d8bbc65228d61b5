//! `SecretStore` on Secrets Manager.
//!
//! Compare-and-swap on the current version uses staging labels, which Secrets Manager moves
//! atomically: the new value is first stored as a version labelled `AWSPENDING` (so it is not
//! current yet), then `UpdateSecretVersionStage` moves `AWSCURRENT` to it *from the expected
//! version*. That call fails when `AWSCURRENT` is no longer on the expected version, which is
//! exactly the conflict; the pending version then loses its label (Secrets Manager deprecates
//! unlabelled versions). moto 5.1 and 5.2 check this the same way (`Version stage AWSCURRENT not found
//! in version ...`), and a test against moto checks a stale version is rejected.
//!
//! Reads always ask for the `AWSCURRENT` stage: moto answers an unqualified read with the
//! version the secret was created or last `PutSecretValue`d with, not the one the label moved
//! to.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::SdkError;
use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;
use aws_sdk_secretsmanager::operation::delete_secret::DeleteSecretError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;
use aws_sdk_secretsmanager::operation::update_secret_version_stage::UpdateSecretVersionStageError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use hub_core::ports::{
    SecretError, SecretStore, SecretVersion, validate_secret_name, validate_secret_write,
};
use secrecy::{ExposeSecret, SecretString};

use crate::errors::{Fault, code, describe, is_validation_code, service_error};

const CURRENT: &str = "AWSCURRENT";
const PENDING: &str = "AWSPENDING";
/// Secrets Manager behind the `SecretStore` port.
#[derive(Clone)]
pub struct SecretsManagerStore {
    client: Client,
}

/// What a failed call means for the secret it named.
enum Outcome {
    Missing,
    Exists,
    /// `UpdateSecretVersionStage` refused: the label is not where we said it is.
    StageMismatch,
    Other(SecretError),
}

impl SecretsManagerStore {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn fault(fault: Fault) -> SecretError {
    match fault {
        Fault::Transport(message) => SecretError::Unavailable(message),
        Fault::Construction(message) => SecretError::Invalid(message),
    }
}

fn by_code(error: &impl ProvideErrorMetadata) -> Outcome {
    match code(error) {
        "ResourceNotFoundException" => Outcome::Missing,
        "ResourceExistsException" => Outcome::Exists,
        c if is_validation_code(c) || c == "InvalidRequestException" => {
            Outcome::Other(SecretError::Invalid(describe(error)))
        }
        _ => Outcome::Other(SecretError::Unavailable(describe(error))),
    }
}

fn get_error(error: SdkError<GetSecretValueError>) -> Outcome {
    match service_error(error) {
        Err(f) => Outcome::Other(fault(f)),
        Ok(GetSecretValueError::ResourceNotFoundException(_)) => Outcome::Missing,
        Ok(
            e @ (GetSecretValueError::InvalidParameterException(_)
            | GetSecretValueError::InvalidRequestException(_)),
        ) => Outcome::Other(SecretError::Invalid(describe(&e))),
        Ok(
            e @ (GetSecretValueError::DecryptionFailure(_)
            | GetSecretValueError::InternalServiceError(_)),
        ) => Outcome::Other(SecretError::Unavailable(describe(&e))),
        Ok(other) => by_code(&other),
    }
}

fn create_error(error: SdkError<CreateSecretError>) -> Outcome {
    match service_error(error) {
        Err(f) => Outcome::Other(fault(f)),
        Ok(CreateSecretError::ResourceExistsException(_)) => Outcome::Exists,
        Ok(CreateSecretError::ResourceNotFoundException(_)) => Outcome::Missing,
        Ok(
            e @ (CreateSecretError::InvalidParameterException(_)
            | CreateSecretError::InvalidRequestException(_)
            | CreateSecretError::LimitExceededException(_)
            | CreateSecretError::MalformedPolicyDocumentException(_)
            | CreateSecretError::PreconditionNotMetException(_)),
        ) => Outcome::Other(SecretError::Invalid(describe(&e))),
        Ok(
            e @ (CreateSecretError::DecryptionFailure(_)
            | CreateSecretError::EncryptionFailure(_)
            | CreateSecretError::InternalServiceError(_)),
        ) => Outcome::Other(SecretError::Unavailable(describe(&e))),
        Ok(other) => by_code(&other),
    }
}

fn put_value_error(error: SdkError<PutSecretValueError>) -> Outcome {
    match service_error(error) {
        Err(f) => Outcome::Other(fault(f)),
        Ok(PutSecretValueError::ResourceNotFoundException(_)) => Outcome::Missing,
        // Only a reused request token produces this; ours are fresh, so it is a service fault.
        Ok(e @ PutSecretValueError::ResourceExistsException(_)) => {
            Outcome::Other(SecretError::Unavailable(describe(&e)))
        }
        Ok(
            e @ (PutSecretValueError::InvalidParameterException(_)
            | PutSecretValueError::InvalidRequestException(_)
            | PutSecretValueError::LimitExceededException(_)),
        ) => Outcome::Other(SecretError::Invalid(describe(&e))),
        Ok(
            e @ (PutSecretValueError::DecryptionFailure(_)
            | PutSecretValueError::EncryptionFailure(_)
            | PutSecretValueError::InternalServiceError(_)),
        ) => Outcome::Other(SecretError::Unavailable(describe(&e))),
        Ok(other) => by_code(&other),
    }
}

fn stage_error(error: SdkError<UpdateSecretVersionStageError>) -> Outcome {
    match service_error(error) {
        Err(f) => Outcome::Other(fault(f)),
        // An unknown version id: AWS says not found, moto says invalid parameter. Both mean
        // the expected version is not the current one (the caller checks the secret exists).
        Ok(
            UpdateSecretVersionStageError::InvalidParameterException(_)
            | UpdateSecretVersionStageError::ResourceNotFoundException(_),
        ) => Outcome::StageMismatch,
        Ok(
            e @ (UpdateSecretVersionStageError::InvalidRequestException(_)
            | UpdateSecretVersionStageError::LimitExceededException(_)),
        ) => Outcome::Other(SecretError::Invalid(describe(&e))),
        Ok(e @ UpdateSecretVersionStageError::InternalServiceError(_)) => {
            Outcome::Other(SecretError::Unavailable(describe(&e)))
        }
        Ok(other) => by_code(&other),
    }
}

fn delete_error(error: SdkError<DeleteSecretError>) -> Outcome {
    match service_error(error) {
        Err(f) => Outcome::Other(fault(f)),
        Ok(DeleteSecretError::ResourceNotFoundException(_)) => Outcome::Missing,
        Ok(
            e @ (DeleteSecretError::InvalidParameterException(_)
            | DeleteSecretError::InvalidRequestException(_)),
        ) => Outcome::Other(SecretError::Invalid(describe(&e))),
        Ok(e @ DeleteSecretError::InternalServiceError(_)) => {
            Outcome::Other(SecretError::Unavailable(describe(&e)))
        }
        Ok(other) => by_code(&other),
    }
}

/// A fresh version id, also used as the idempotency token of the write (32-64 characters).
fn new_version_id() -> String {
    let hex = format!("{:032x}", ulid::Ulid::generate().0);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl SecretsManagerStore {
    fn conflict(name: &str, expected: Option<&str>) -> SecretError {
        SecretError::VersionConflict {
            name: name.to_owned(),
            expected: expected.map(str::to_owned),
        }
    }

    async fn create(&self, name: &str, value: SecretString) -> Result<String, SecretError> {
        let version_id = new_version_id();
        let result = self
            .client
            .create_secret()
            .name(name)
            .secret_string(value.expose_secret())
            .client_request_token(&version_id)
            .send()
            .await;
        match result.map_err(create_error) {
            Ok(output) => Ok(output.version_id.unwrap_or(version_id)),
            Err(Outcome::Exists) => Err(Self::conflict(name, None)),
            Err(Outcome::Missing) => Err(SecretError::NotFound(name.to_owned())),
            Err(Outcome::StageMismatch) => Err(Self::conflict(name, None)),
            Err(Outcome::Other(error)) => Err(error),
        }
    }

    async fn swap(
        &self,
        name: &str,
        value: SecretString,
        expected: &str,
    ) -> Result<String, SecretError> {
        let version_id = new_version_id();
        let stored = self
            .client
            .put_secret_value()
            .secret_id(name)
            .secret_string(value.expose_secret())
            .client_request_token(&version_id)
            .version_stages(PENDING)
            .send()
            .await;
        match stored.map_err(put_value_error) {
            Ok(_) => {}
            Err(Outcome::Missing) => return Err(SecretError::NotFound(name.to_owned())),
            Err(Outcome::Exists | Outcome::StageMismatch) => {
                return Err(Self::conflict(name, Some(expected)));
            }
            Err(Outcome::Other(error)) => return Err(error),
        }
        let moved = self
            .client
            .update_secret_version_stage()
            .secret_id(name)
            .version_stage(CURRENT)
            .move_to_version_id(&version_id)
            .remove_from_version_id(expected)
            .send()
            .await;
        match moved.map_err(stage_error) {
            Ok(_) => Ok(version_id),
            Err(Outcome::StageMismatch) => {
                self.abandon(name, &version_id).await;
                // The secret may have been deleted meanwhile: that is not a version conflict.
                match self.get(name).await? {
                    Some(_) => Err(Self::conflict(name, Some(expected))),
                    None => Err(SecretError::NotFound(name.to_owned())),
                }
            }
            Err(Outcome::Missing) => Err(SecretError::NotFound(name.to_owned())),
            Err(Outcome::Exists) => Err(Self::conflict(name, Some(expected))),
            Err(Outcome::Other(error)) => {
                self.abandon(name, &version_id).await;
                Err(error)
            }
        }
    }

    /// Takes the pending label off a version that lost the race, so it is deprecated; a
    /// failure here leaves only an unused labelled version behind, so it is logged, not raised.
    async fn abandon(&self, name: &str, version_id: &str) {
        let result = self
            .client
            .update_secret_version_stage()
            .secret_id(name)
            .version_stage(PENDING)
            .remove_from_version_id(version_id)
            .send()
            .await;
        if let Err(error) = result {
            let reason = match stage_error(error) {
                Outcome::Other(e) => e.to_string(),
                Outcome::Missing | Outcome::Exists | Outcome::StageMismatch => {
                    "the version or label is gone".to_owned()
                }
            };
            tracing::warn!(secret = name, version_id, %reason, "could not drop a pending secret version");
        }
    }
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    async fn get(&self, name: &str) -> Result<Option<SecretVersion>, SecretError> {
        validate_secret_name(name)?;
        let result = self
            .client
            .get_secret_value()
            .secret_id(name)
            .version_stage(CURRENT)
            .send()
            .await;
        let output = match result.map_err(get_error) {
            Ok(output) => output,
            Err(Outcome::Missing) => return Ok(None),
            Err(Outcome::Exists | Outcome::StageMismatch) => {
                return Err(SecretError::Unavailable(format!(
                    "unexpected answer reading secret `{name}`"
                )));
            }
            Err(Outcome::Other(error)) => return Err(error),
        };
        let value = output.secret_string.ok_or_else(|| {
            SecretError::Invalid(format!("secret `{name}` holds binary data, not a string"))
        })?;
        let version_id = output.version_id.ok_or_else(|| {
            SecretError::Unavailable(format!("no version id returned for secret `{name}`"))
        })?;
        let created_at = output
            .created_date
            .and_then(|d| DateTime::<Utc>::from_timestamp_millis(d.to_millis().ok()?))
            .unwrap_or_default();
        Ok(Some(SecretVersion {
            version_id,
            value: SecretString::from(value),
            created_at,
        }))
    }

    async fn put(
        &self,
        name: &str,
        value: SecretString,
        expected_version: Option<&str>,
    ) -> Result<String, SecretError> {
        validate_secret_write(name, &value)?;
        match expected_version {
            None => self.create(name, value).await,
            Some(expected) => self.swap(name, value, expected).await,
        }
    }

    async fn delete(&self, name: &str) -> Result<(), SecretError> {
        validate_secret_name(name)?;
        let result = self
            .client
            .delete_secret()
            .secret_id(name)
            .force_delete_without_recovery(true)
            .send()
            .await;
        match result.map_err(delete_error) {
            Ok(_) | Err(Outcome::Missing) => Ok(()),
            Err(Outcome::Exists | Outcome::StageMismatch) => Err(SecretError::Unavailable(
                format!("unexpected answer deleting secret `{name}`"),
            )),
            Err(Outcome::Other(error)) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ids_fit_the_request_token_rules() {
        let a = new_version_id();
        let b = new_version_id();
        assert_ne!(a, b);
        assert!((32..=64).contains(&a.len()), "{a}");
        assert_eq!(a.matches('-').count(), 4);
    }
}
