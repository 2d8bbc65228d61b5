//! Conversion schemas: how records of an external entity become records of an internal entity
//! type (field mappings, conditions, validation, relationships, deduplication).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Number, Value};

use super::integration::unique;
use super::tagged::{Tagged, present, tagged_deserialize};
use super::{JsonPath, ModelError, Transformation, Validate};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConversionSchema {
    pub id: String,
    /// Set by the server when the schema is stored under a tenant integration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_integration_id: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Not in the specification: bumped by the store on every update, so a batch names the
    /// exact schema that mapped it (`RecordBatch.schemaVersion`, record lineage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,

    pub source: SchemaSource,
    pub target: SchemaTarget,
    pub field_mappings: Vec<FieldMapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relationship_mappings: Vec<RelationshipMapping>,
    pub deduplication: Deduplication,

    pub is_active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl Validate for ConversionSchema {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        at.key("id").non_empty(&self.id)?;
        at.key("name").non_empty(&self.name)?;
        self.source.validate_at(&at.key("source"))?;
        at.key("target")
            .key("shardTypeId")
            .non_empty(&self.target.shard_type_id)?;

        let mappings_at = at.key("fieldMappings");
        if self.field_mappings.is_empty() {
            return Err(mappings_at.invalid("a schema needs at least one field mapping"));
        }
        self.field_mappings.validate_at(&mappings_at)?;
        unique(
            self.field_mappings.iter().map(|m| m.target_field.as_str()),
            &mappings_at,
            "targetField",
        )?;
        unique(
            self.field_mappings.iter().filter_map(|m| m.id.as_deref()),
            &mappings_at,
            "id",
        )?;

        let relationships_at = at.key("relationshipMappings");
        self.relationship_mappings.validate_at(&relationships_at)?;
        for (index, relationship) in self.relationship_mappings.iter().enumerate() {
            let target = relationship.target_field.as_str();
            if self.field_mappings.iter().any(|m| m.target_field == target) {
                return Err(relationships_at
                    .index(index)
                    .key("targetField")
                    .invalid(format!(
                        "`{target}` is already the target of a field mapping"
                    )));
            }
        }
        self.deduplication.validate_at(&at.key("deduplication"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchemaSource {
    /// The external entity (`Contact`, `Opportunity`, `article`).
    pub entity: String,
    /// All must hold for a record to be mapped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<SourceFilter>,
}

impl Validate for SchemaSource {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        at.key("entity").non_empty(&self.entity)?;
        self.filters.validate_at(&at.key("filters"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchemaTarget {
    /// The internal entity type (`c_contact`).
    pub shard_type_id: String,
    pub create_if_missing: bool,
    pub update_if_exists: bool,
    pub delete_if_removed: bool,
    /// Not in the specification: what `deleteIfRemoved` does to a record a full sync no longer
    /// sees; `soft` (flag it `deleted`, keep it and its lineage) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_mode: Option<DeleteMode>,
}

/// How a record the source no longer has is removed (`deleteIfRemoved`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteMode {
    /// Flag the record `deleted` and take it out of the external-id index; a later write of
    /// the same record restores it.
    #[default]
    Soft,
    /// Delete the item.
    Hard,
}

/// A filter on source records; the same shape as a conditional rule's condition.
pub type SourceFilter = Condition;

/// `field operator value`, evaluated against a source record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Condition {
    /// A source field, dot notation for nested values.
    pub field: String,
    pub operator: ConditionOperator,
    /// Absent only for `exists` / `not_exists`; an explicit `null` is kept (`eq null`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub value: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionOperator {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Contains,
    StartsWith,
    EndsWith,
    In,
    NotIn,
    Exists,
    NotExists,
    /// Not in the specification: `value` is a custom expression (docs/mapping.md) that sees the
    /// field as `value` and the whole record as `record`, for rules over several fields.
    Custom,
}

impl ConditionOperator {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Neq => "neq",
            Self::Gt => "gt",
            Self::Gte => "gte",
            Self::Lt => "lt",
            Self::Lte => "lte",
            Self::Contains => "contains",
            Self::StartsWith => "starts_with",
            Self::EndsWith => "ends_with",
            Self::In => "in",
            Self::NotIn => "not_in",
            Self::Exists => "exists",
            Self::NotExists => "not_exists",
            Self::Custom => "custom",
        }
    }
}

impl Validate for Condition {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        use ConditionOperator as Op;
        at.key("field").non_empty(&self.field)?;
        let value_at = at.key("value");
        let operator = self.operator.as_str();
        let wrong = |expected: &str| value_at.invalid(format!("`{operator}` needs {expected}"));
        match (self.operator, &self.value) {
            (Op::Exists | Op::NotExists, None | Some(Value::Null)) => Ok(()),
            (Op::Exists | Op::NotExists, Some(_)) => Err(wrong("no value")),
            (_, None) => Err(wrong("a value")),
            (Op::Custom, Some(Value::String(expression))) if !expression.trim().is_empty() => {
                Ok(())
            }
            (Op::Custom, Some(_)) => Err(wrong("an expression (a non-empty string)")),
            (Op::In | Op::NotIn, Some(Value::Array(_))) => Ok(()),
            (Op::In | Op::NotIn, Some(_)) => Err(wrong("an array of values")),
            (Op::StartsWith | Op::EndsWith, Some(Value::String(_))) => Ok(()),
            (Op::StartsWith | Op::EndsWith, Some(_)) => Err(wrong("a string")),
            (Op::Gt | Op::Gte | Op::Lt | Op::Lte, Some(Value::Number(_) | Value::String(_))) => {
                Ok(())
            }
            (Op::Gt | Op::Gte | Op::Lt | Op::Lte, Some(_)) => Err(wrong(
                "a number or a string (dates compare as ISO 8601 text)",
            )),
            (Op::Contains, Some(Value::Null | Value::Array(_) | Value::Object(_))) => {
                Err(wrong("a string, number or boolean"))
            }
            (Op::Contains | Op::Eq | Op::Neq, Some(_)) => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldMapping {
    /// Set by the server when stored; the specification's examples leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A field of the target entity type.
    pub target_field: String,
    /// Must agree with `config.type` (checked by `Validate`): the specification carries both.
    pub mapping_type: FieldMappingType,
    pub config: FieldMappingConfig,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation: Vec<ValidationRule>,
}

impl Validate for FieldMapping {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        at.key("targetField").non_empty(&self.target_field)?;
        let config_type = self.config.mapping_type();
        if self.mapping_type != config_type {
            return Err(at.key("mappingType").invalid(format!(
                "`{}` does not match config.type `{}`",
                self.mapping_type.as_str(),
                config_type.as_str()
            )));
        }
        self.config.validate_at(&at.key("config"))?;
        self.validation.validate_at(&at.key("validation"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldMappingType {
    /// 1:1.
    Direct,
    /// A chain of transformations.
    Transform,
    /// The first matching rule decides.
    Conditional,
    /// A static value.
    Default,
    /// Several fields joined.
    Composite,
    /// A value looked up in a table.
    Lookup,
    /// A value taken out of a nested object.
    Flatten,
}

impl FieldMappingType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Transform => "transform",
            Self::Conditional => "conditional",
            Self::Default => "default",
            Self::Composite => "composite",
            Self::Lookup => "lookup",
            Self::Flatten => "flatten",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FieldMappingConfig {
    Direct(DirectMapping),
    Transform(TransformMapping),
    Conditional(ConditionalMapping),
    Default(DefaultMapping),
    Composite(CompositeMapping),
    Lookup(LookupMapping),
    Flatten(FlattenMapping),
}

impl FieldMappingConfig {
    pub fn mapping_type(&self) -> FieldMappingType {
        match self {
            Self::Direct(_) => FieldMappingType::Direct,
            Self::Transform(_) => FieldMappingType::Transform,
            Self::Conditional(_) => FieldMappingType::Conditional,
            Self::Default(_) => FieldMappingType::Default,
            Self::Composite(_) => FieldMappingType::Composite,
            Self::Lookup(_) => FieldMappingType::Lookup,
            Self::Flatten(_) => FieldMappingType::Flatten,
        }
    }
}

impl Tagged for FieldMappingConfig {
    const TAG: &'static str = "type";
    const EXPECTING: &'static str = "a field mapping config object with a `type`";
    type Kind = FieldMappingType;

    fn from_variant<'de, D: Deserializer<'de>>(
        kind: Self::Kind,
        rest: D,
    ) -> Result<Self, D::Error> {
        Ok(match kind {
            FieldMappingType::Direct => Self::Direct(Deserialize::deserialize(rest)?),
            FieldMappingType::Transform => Self::Transform(Deserialize::deserialize(rest)?),
            FieldMappingType::Conditional => Self::Conditional(Deserialize::deserialize(rest)?),
            FieldMappingType::Default => Self::Default(Deserialize::deserialize(rest)?),
            FieldMappingType::Composite => Self::Composite(Deserialize::deserialize(rest)?),
            FieldMappingType::Lookup => Self::Lookup(Deserialize::deserialize(rest)?),
            FieldMappingType::Flatten => Self::Flatten(Deserialize::deserialize(rest)?),
        })
    }
}
tagged_deserialize!(FieldMappingConfig);

impl Validate for FieldMappingConfig {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        match self {
            Self::Direct(m) => at.key("sourceField").non_empty(&m.source_field),
            Self::Transform(m) => {
                at.key("sourceField").non_empty(&m.source_field)?;
                check_transformations(&m.transformations, &at.key("transformations"))
            }
            Self::Conditional(m) => {
                let rules_at = at.key("conditions");
                if m.conditions.is_empty() {
                    return Err(rules_at.invalid("needs at least one rule"));
                }
                m.conditions.validate_at(&rules_at)
            }
            Self::Default(_) => Ok(()),
            Self::Composite(m) => m.validate_at(at),
            Self::Lookup(m) => {
                at.key("sourceField").non_empty(&m.source_field)?;
                if m.values.is_empty() {
                    return Err(at.key("values").invalid("needs at least one entry"));
                }
                Ok(())
            }
            Self::Flatten(m) => {
                at.key("sourceField").non_empty(&m.source_field)?;
                at.key("path").non_empty(&m.path)
            }
        }
    }
}

fn check_transformations(list: &[Transformation], at: &JsonPath) -> Result<(), ModelError> {
    if list.is_empty() {
        return Err(at.invalid("needs at least one transformation"));
    }
    list.iter()
        .enumerate()
        .try_for_each(|(index, t)| t.validate_at(&at.index(index)))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DirectMapping {
    pub source_field: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransformMapping {
    pub source_field: String,
    /// Applied in order.
    pub transformations: Vec<Transformation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConditionalMapping {
    pub conditions: Vec<ConditionalRule>,
    /// When no rule matches; an explicit `null` is a value.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub default: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DefaultMapping {
    /// May hold `{{task.<name>}}` placeholders, filled from the sync task's config.
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompositeMapping {
    pub source_fields: Vec<String>,
    /// Joins the fields when there is no template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
    /// `${Field}` placeholders, each naming one of `sourceFields`; wins over `separator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

impl CompositeMapping {
    /// The `${Name}` placeholders of the template, in order.
    pub fn placeholders(&self) -> Result<Vec<&str>, String> {
        let Some(template) = &self.template else {
            return Ok(Vec::new());
        };
        let mut names = Vec::new();
        let mut rest = template.as_str();
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(format!("unterminated `${{` in `{template}`"));
            };
            let name = &after[..end];
            if name.trim().is_empty() {
                return Err(format!("empty placeholder `${{}}` in `{template}`"));
            }
            names.push(name);
            rest = &after[end + 1..];
        }
        Ok(names)
    }
}

impl Validate for CompositeMapping {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        let fields_at = at.key("sourceFields");
        if self.source_fields.is_empty() {
            return Err(fields_at.invalid("needs at least one field"));
        }
        for (index, field) in self.source_fields.iter().enumerate() {
            fields_at.index(index).non_empty(field)?;
        }
        let template_at = at.key("template");
        let placeholders = self.placeholders().map_err(|m| template_at.invalid(m))?;
        if let Some(unknown) = placeholders
            .iter()
            .find(|name| !self.source_fields.iter().any(|f| f == *name))
        {
            return Err(template_at.invalid(format!(
                "placeholder `${{{unknown}}}` is not one of sourceFields"
            )));
        }
        if self.template.is_some() && placeholders.is_empty() {
            return Err(template_at.invalid("has no `${Field}` placeholder"));
        }
        Ok(())
    }
}

/// Maps a source value through a table (`{"Prospecting": "lead"}`); not configured by the
/// specification, so defined here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LookupMapping {
    pub source_field: String,
    /// Source value (as text) to target value.
    pub values: Map<String, Value>,
    /// When the source value is not in `values`; without it the field is left unset.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub default: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_sensitive: Option<bool>,
}

impl LookupMapping {
    pub fn case_sensitive(&self) -> bool {
        self.case_sensitive.unwrap_or(true)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlattenMapping {
    pub source_field: String,
    /// Dot notation (`address.street`) or a JSONPath (`$.address.street`) inside the field.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConditionalRule {
    pub condition: Condition,
    pub then: ThenClause,
}

impl Validate for ConditionalRule {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        self.condition.validate_at(&at.key("condition"))?;
        let then_at = at.key("then");
        match &self.then {
            ThenClause::Value(_) => Ok(()),
            ThenClause::Field(then) => then_at.key("sourceField").non_empty(&then.source_field),
            ThenClause::Transform(then) => {
                if let Some(field) = &then.source_field {
                    then_at.key("sourceField").non_empty(field)?;
                }
                check_transformations(&then.transformations, &then_at.key("transformations"))
            }
        }
    }
}

/// What a matching rule yields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ThenClause {
    Value(ThenValue),
    Field(ThenField),
    Transform(ThenTransform),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThenKind {
    Value,
    Field,
    Transform,
}

impl Tagged for ThenClause {
    const TAG: &'static str = "type";
    const EXPECTING: &'static str = "a `then` object with a `type`";
    type Kind = ThenKind;

    fn from_variant<'de, D: Deserializer<'de>>(kind: ThenKind, rest: D) -> Result<Self, D::Error> {
        Ok(match kind {
            ThenKind::Value => Self::Value(Deserialize::deserialize(rest)?),
            ThenKind::Field => Self::Field(Deserialize::deserialize(rest)?),
            ThenKind::Transform => Self::Transform(Deserialize::deserialize(rest)?),
        })
    }
}
tagged_deserialize!(ThenClause);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThenValue {
    pub value: Value,
}

/// The value of another source field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThenField {
    pub source_field: String,
}

/// Transformations of `sourceField`, or of the condition's field when it is absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThenTransform {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_field: Option<String>,
    pub transformations: Vec<Transformation>,
}

/// A check on the mapped value (the specification names `ValidationRule` without defining it).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ValidationRule {
    Required(RuleMessage),
    MinLength(LengthRule),
    MaxLength(LengthRule),
    /// A regular expression the text must match (compiled by the mapping engine).
    Pattern(PatternRule),
    Min(BoundRule),
    Max(BoundRule),
    Email(RuleMessage),
    Url(RuleMessage),
    Enum(EnumRule),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidationRuleType {
    Required,
    MinLength,
    MaxLength,
    Pattern,
    Min,
    Max,
    Email,
    Url,
    Enum,
}

impl Tagged for ValidationRule {
    const TAG: &'static str = "type";
    const EXPECTING: &'static str = "a validation rule object with a `type`";
    type Kind = ValidationRuleType;

    fn from_variant<'de, D: Deserializer<'de>>(
        kind: ValidationRuleType,
        rest: D,
    ) -> Result<Self, D::Error> {
        use ValidationRuleType as T;
        Ok(match kind {
            T::Required => Self::Required(Deserialize::deserialize(rest)?),
            T::MinLength => Self::MinLength(Deserialize::deserialize(rest)?),
            T::MaxLength => Self::MaxLength(Deserialize::deserialize(rest)?),
            T::Pattern => Self::Pattern(Deserialize::deserialize(rest)?),
            T::Min => Self::Min(Deserialize::deserialize(rest)?),
            T::Max => Self::Max(Deserialize::deserialize(rest)?),
            T::Email => Self::Email(Deserialize::deserialize(rest)?),
            T::Url => Self::Url(Deserialize::deserialize(rest)?),
            T::Enum => Self::Enum(Deserialize::deserialize(rest)?),
        })
    }
}
tagged_deserialize!(ValidationRule);

impl Validate for ValidationRule {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        match self {
            Self::Pattern(rule) => at.key("value").non_empty(&rule.value),
            Self::Enum(rule) if rule.values.is_empty() => {
                Err(at.key("values").invalid("needs at least one value"))
            }
            Self::Required(_)
            | Self::MinLength(_)
            | Self::MaxLength(_)
            | Self::Min(_)
            | Self::Max(_)
            | Self::Email(_)
            | Self::Url(_)
            | Self::Enum(_) => Ok(()),
        }
    }
}

/// The optional message shown when a rule fails.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LengthRule {
    /// In characters.
    pub value: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatternRule {
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BoundRule {
    pub value: Number,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnumRule {
    pub values: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Links the mapped record to another internal record (an opportunity to its company).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RelationshipMapping {
    pub relationship_type: RelationshipType,
    /// Receives the id of the related internal record.
    pub target_field: String,
    /// Holds the related record's key in the source record (`AccountId`).
    pub source_field: String,
    /// The entity type of the related record (`c_company`).
    pub lookup_shard_type: String,
    /// Find the related record by its external id from the same integration.
    pub lookup_by_external_id: bool,
    /// Otherwise: the field of the related record to match `sourceField` against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup_field: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationshipType {
    BelongsTo,
    HasOne,
    HasMany,
    ManyToMany,
}

impl Validate for RelationshipMapping {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        at.key("targetField").non_empty(&self.target_field)?;
        at.key("sourceField").non_empty(&self.source_field)?;
        at.key("lookupShardType")
            .non_empty(&self.lookup_shard_type)?;
        match (&self.lookup_field, self.lookup_by_external_id) {
            (None, false) => Err(at
                .key("lookupField")
                .invalid("required when lookupByExternalId is false")),
            (Some(_), true) => Err(at
                .key("lookupField")
                .invalid("not allowed when lookupByExternalId is true")),
            (Some(field), false) => at.key("lookupField").non_empty(field),
            (None, true) => Ok(()),
        }
    }
}

/// How a mapped record finds the internal record it updates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum Deduplication {
    /// By the value of one source field holding the external id.
    ExternalId(ExternalIdDedup),
    /// By the first of `matchFields` that has a value (e-mail, then phone, ...).
    FieldMatch(FieldsDedup),
    /// By all of `matchFields` together.
    Composite(FieldsDedup),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeduplicationStrategy {
    ExternalId,
    FieldMatch,
    Composite,
}

impl Deduplication {
    pub fn strategy(&self) -> DeduplicationStrategy {
        match self {
            Self::ExternalId(_) => DeduplicationStrategy::ExternalId,
            Self::FieldMatch(_) => DeduplicationStrategy::FieldMatch,
            Self::Composite(_) => DeduplicationStrategy::Composite,
        }
    }
}

impl Tagged for Deduplication {
    const TAG: &'static str = "strategy";
    const EXPECTING: &'static str = "a deduplication object with a `strategy`";
    type Kind = DeduplicationStrategy;

    fn from_variant<'de, D: Deserializer<'de>>(
        kind: DeduplicationStrategy,
        rest: D,
    ) -> Result<Self, D::Error> {
        Ok(match kind {
            DeduplicationStrategy::ExternalId => Self::ExternalId(Deserialize::deserialize(rest)?),
            DeduplicationStrategy::FieldMatch => Self::FieldMatch(Deserialize::deserialize(rest)?),
            DeduplicationStrategy::Composite => Self::Composite(Deserialize::deserialize(rest)?),
        })
    }
}
tagged_deserialize!(Deduplication);

impl Validate for Deduplication {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        match self {
            Self::ExternalId(d) => at.key("externalIdField").non_empty(&d.external_id_field),
            Self::FieldMatch(d) | Self::Composite(d) => {
                if let Some(field) = &d.external_id_field {
                    at.key("externalIdField").non_empty(field)?;
                }
                let fields_at = at.key("matchFields");
                if d.match_fields.is_empty() {
                    return Err(fields_at.invalid("needs at least one field"));
                }
                for (index, field) in d.match_fields.iter().enumerate() {
                    fields_at.index(index).non_empty(field)?;
                    if d.match_fields[..index].contains(field) {
                        return Err(fields_at
                            .index(index)
                            .invalid(format!("`{field}` appears more than once")));
                    }
                }
                Ok(())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalIdDedup {
    pub external_id_field: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldsDedup {
    pub match_fields: Vec<String>,
    /// The source field holding the record's id in the external system (the specification
    /// allows it with every strategy); without it the record's external id is its dedup key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id_field: Option<String>,
}
