//! What the hub stores on the records it writes: external ids, and the news entity type.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{JsonPath, ModelError, Validate};

/// Links a hub record to the record it came from (a record may have one per integration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalRelationship {
    /// e.g. `salesforce`.
    pub integration_id: String,
    /// e.g. `001D000001234ABC`.
    pub external_id: String,
    /// e.g. `Contact`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_type: Option<String>,
    pub last_synced_at: DateTime<Utc>,
    pub sync_status: RelationshipSyncStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl Validate for ExternalRelationship {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        at.key("integrationId").non_empty(&self.integration_id)?;
        at.key("externalId").non_empty(&self.external_id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationshipSyncStatus {
    Synced,
    Pending,
    Error,
}

/// The structured data of a `c_news` record (what the Google News schema produces).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewsStructuredData {
    /// The article title.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub url: String,
    /// The news source's name.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    pub published_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub industry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<Sentiment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_entities: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relevance_score: Option<f64>,
}

impl Validate for NewsStructuredData {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        at.key("name").non_empty(&self.name)?;
        at.key("url").non_empty(&self.url)?;
        at.key("source").non_empty(&self.source)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sentiment {
    Positive,
    Negative,
    Neutral,
}
