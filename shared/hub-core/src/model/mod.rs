//! The data model of the integrations specification (seed 004), as it travels on the wire:
//! camelCase JSON, the enum values the specification writes (`superadmin_only`, `regex_replace`,
//! `not_in`, ...), RFC 3339 timestamps.
//!
//! Documents are read with [`load_json`] / [`load_value`]: serde checks the shape (and the domain
//! newtypes such as [`CronExpression`] and [`TimeZoneName`] reject bad values while parsing), then
//! [`Validate`] checks the rules serde cannot express. Either way a failure is a [`ModelError`]
//! whose message starts with the JSON path of the offending value.
//!
//! Fields the specification declares but its own examples omit are optional here and are not
//! written back when absent, so every example round-trips unchanged; the accessors
//! (`SyncTask::retry_config`, `IntegrationDefinition::is_premium`, ...) apply the defaults.
//! Credentials are never part of these documents: a connection holds a [`SecretRef`] to its
//! secret, whose content is [`Credentials`].

mod conflict;
mod connection;
mod error;
mod execution;
mod integration;
mod load;
mod schema;
mod shard;
mod sync_task;
pub(crate) mod tagged;
mod tenant;
mod transform;
mod values;

pub use conflict::{
    ConflictResolution, ConflictResolutionStrategy, ConflictStatus, ConflictingField, SyncConflict,
};
pub use connection::{
    ApiKeyCredentials, BasicCredentials, ConnectionStatus, Credentials, CustomCredentials,
    IntegrationConnection, OAuth2Credentials, OAuthState, OAuthTokenMetadata, ScopeLevel,
};
pub use error::ModelError;
pub use execution::{
    ExecutionPhase, ExecutionStatus, LogLevel, SyncError, SyncExecution, SyncLog, SyncProgress,
    SyncResults, Trigger,
};
pub use integration::{
    AuthType, ConnectionScope, EntityField, EntityFieldType, IntegrationCapability,
    IntegrationCategory, IntegrationDefinition, IntegrationEntity, IntegrationStatus, OAuthConfig,
    SyncDirection, Visibility,
};
pub use load::{JsonPath, Validate, decode_json, decode_value, load_json, load_slice, load_value};
pub use schema::{
    BoundRule, CompositeMapping, Condition, ConditionOperator, ConditionalMapping, ConditionalRule,
    ConversionSchema, Deduplication, DeduplicationStrategy, DefaultMapping, DeleteMode,
    DirectMapping, EnumRule, ExternalIdDedup, FieldMapping, FieldMappingConfig, FieldMappingType,
    FieldsDedup, FlattenMapping, LengthRule, LookupMapping, PatternRule, RelationshipMapping,
    RelationshipType, RuleMessage, SchemaSource, SchemaTarget, SourceFilter, ThenClause, ThenField,
    ThenKind, ThenTransform, ThenValue, TransformMapping, ValidationRule, ValidationRuleType,
};
pub use shard::{ExternalRelationship, NewsStructuredData, RelationshipSyncStatus, Sentiment};
pub use sync_task::{
    CronSchedule, IntervalSchedule, IntervalUnit, ManualSchedule, Notifications, RealtimeSchedule,
    RetryConfig, RunStatus, ScheduleConfig, ScheduleType, SyncSchedule, SyncStats, SyncTask,
    SyncTaskConfig, SyncTaskStatus, TaskError,
};
pub use tenant::{
    AiProviderCredentials, DefaultModels, TenantAIConfig, TenantIntegration,
    TenantIntegrationStatus,
};
pub use transform::{
    AddDaysConfig, ConcatConfig, CurrencyConvertConfig, CustomConfig, DateFormatConfig,
    DivideConfig, MultiplyConfig, RegexReplaceConfig, ReplaceConfig, RoundConfig, SplitConfig,
    Transformation, TransformationType, TruncateConfig,
};
pub use values::{
    ConnectionId, CronExpression, IntervalCount, SecretOwner, SecretRef, TenantId, TimeZoneName,
    VerificationToken,
};
