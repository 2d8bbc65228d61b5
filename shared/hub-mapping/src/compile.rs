//! Compiling a conversion schema into a flat plan: every path parsed, regex built, date format
//! and expression compiled, constant checked for placeholders, and types checked where they
//! are known, so that applying the plan to a record parses nothing.

use std::collections::HashMap;

use hub_core::model::{
    ConditionOperator, ConversionSchema, Deduplication, EntityFieldType, FieldMapping,
    FieldMappingConfig, IntegrationEntity, JsonPath, RelationshipType, ThenClause, Transformation,
    Validate, ValidationRule,
};
use regex::Regex;
use serde_json::Value;

use crate::error::{CompileError, CompileErrorCode as Code};
use crate::expr::{self, Expr};
use crate::json::{MAX_DEPTH, Selection};
use crate::path::Path;
use crate::transform::{self, Step, Ty};
use crate::value::{Decimal, Num};

/// Index into [`CompiledSchema::consts`].
pub(crate) type ConstId = usize;

/// A constant of the schema; `templated` when it holds `{{task.<key>}}` placeholders, which
/// each batch resolves against its sync task's config.
#[derive(Debug, Clone)]
pub(crate) struct Const {
    pub(crate) value: Value,
    pub(crate) templated: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Cond {
    pub(crate) field: Path,
    pub(crate) op: Op,
}

#[derive(Debug, Clone)]
pub(crate) enum Op {
    Eq(ConstId),
    Neq(ConstId),
    Gt(ConstId),
    Gte(ConstId),
    Lt(ConstId),
    Lte(ConstId),
    Contains(ConstId),
    StartsWith(ConstId),
    EndsWith(ConstId),
    In(ConstId),
    NotIn(ConstId),
    Exists,
    NotExists,
    Custom(Expr),
}

#[derive(Debug, Clone)]
pub(crate) enum Then {
    Value(ConstId),
    Field(Path),
    Transform(Path, Vec<Step>),
}

#[derive(Debug, Clone)]
pub(crate) enum Join {
    Separator(String),
    /// Literal text and indexes into the composite's sources.
    Template(Vec<Piece>),
}

#[derive(Debug, Clone)]
pub(crate) enum Piece {
    Text(String),
    Field(usize),
}

#[derive(Debug, Clone)]
pub(crate) enum Produce {
    Direct(Path),
    Transform(Path, Vec<Step>),
    Conditional {
        rules: Vec<(Cond, Then)>,
        default: Option<ConstId>,
    },
    Default(ConstId),
    Composite {
        sources: Vec<Path>,
        join: Join,
    },
    Lookup {
        source: Path,
        /// Keyed by the source value's text, lowercased when `fold_case`.
        table: HashMap<String, ConstId>,
        fold_case: bool,
        default: Option<ConstId>,
    },
    Flatten {
        source: Path,
        path: Path,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum Rule {
    Required,
    MinLength(usize),
    MaxLength(usize),
    Pattern(Regex),
    Min(Decimal, String),
    Max(Decimal, String),
    Email,
    Url,
    Enum(Vec<Value>),
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    pub(crate) rule: Rule,
    pub(crate) message: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) target: String,
    /// The source path errors name (`None` for defaults).
    pub(crate) source: Option<String>,
    pub(crate) produce: Produce,
    pub(crate) required: bool,
    pub(crate) rules: Vec<CompiledRule>,
}

#[derive(Debug, Clone)]
pub(crate) struct Relationship {
    pub(crate) target: String,
    pub(crate) source: Path,
    pub(crate) kind: RelationshipType,
    pub(crate) shard_type: String,
    pub(crate) lookup_field: Option<String>,
}

impl Relationship {
    pub(crate) fn many(&self) -> bool {
        matches!(
            self.kind,
            RelationshipType::HasMany | RelationshipType::ManyToMany
        )
    }
}

#[derive(Debug, Clone)]
pub(crate) enum MatchSource {
    /// The value a field mapping produced for this target field.
    Target(usize),
    Source(Path),
}

#[derive(Debug, Clone)]
pub(crate) struct MatchField {
    pub(crate) name: String,
    pub(crate) source: MatchSource,
}

#[derive(Debug, Clone)]
pub(crate) enum Dedup {
    ExternalId,
    FieldMatch(Vec<MatchField>),
    Composite(Vec<MatchField>),
}

/// Optional knowledge that makes compilation stricter and fills gaps of the schema.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompileOptions<'a> {
    /// The integration's description of the source entity: declared field types are checked
    /// against the transformations, conditions and rules applied to them; its `idField` is the
    /// external id when the deduplication names none; its `modifiedField` gives
    /// `sourceModifiedAt` when the sync task names none.
    pub source_entity: Option<&'a IntegrationEntity>,
}

/// A conversion schema ready to map records. Build it once per schema version, share it (it is
/// `Send + Sync`), and call [`CompiledSchema::bind`] for each batch.
#[derive(Debug, Clone)]
pub struct CompiledSchema {
    pub(crate) id: String,
    pub(crate) version: Option<u32>,
    pub(crate) target: String,
    pub(crate) filters: Vec<Cond>,
    pub(crate) fields: Vec<Field>,
    pub(crate) relationships: Vec<Relationship>,
    pub(crate) dedup: Dedup,
    pub(crate) external_id: Option<Path>,
    pub(crate) modified_field: Option<Path>,
    pub(crate) consts: Vec<Const>,
    /// Indexes of `fields` in target field order: the entity's map is built from a sorted
    /// sequence, which is cheaper than inserting field by field.
    pub(crate) output_order: Vec<usize>,
    /// What of a record the plan reads (the modified field of a sync task aside, which
    /// [`CompiledSchema::bind`] adds): records given as text are parsed only that far.
    pub(crate) selection: Selection,
}

impl CompiledSchema {
    /// Validates (`hub_core::model::Validate`) and compiles a schema.
    pub fn compile(schema: &ConversionSchema) -> Result<CompiledSchema, CompileError> {
        Self::compile_with(schema, &CompileOptions::default())
    }

    pub fn compile_with(
        schema: &ConversionSchema,
        options: &CompileOptions<'_>,
    ) -> Result<CompiledSchema, CompileError> {
        schema.validate()?;
        Compiler {
            entity: options.source_entity,
            consts: Vec::new(),
        }
        .schema(schema)
    }

    pub fn schema_id(&self) -> &str {
        &self.id
    }

    pub fn schema_version(&self) -> Option<u32> {
        self.version
    }

    /// The internal entity type records are mapped to (`target.shardTypeId`).
    pub fn target_entity_type(&self) -> &str {
        &self.target
    }

    /// The target fields, in the schema's order (relationship targets last).
    pub fn target_fields(&self) -> impl Iterator<Item = &str> {
        self.fields
            .iter()
            .map(|f| f.target.as_str())
            .chain(self.relationships.iter().map(|r| r.target.as_str()))
    }
}

impl CompiledSchema {
    /// Every path the plan looks up, or the whole record when an expression reads `record`.
    fn reads(&self) -> Selection {
        fn path(selection: &mut Selection, path: &Path) {
            selection.add(path.selection_steps());
        }
        fn steps(selection: &mut Selection, steps: &[Step]) {
            let reads_record = |step: &Step| matches!(step, Step::Custom(e) if e.uses_record());
            if steps.iter().any(reads_record) {
                *selection = Selection::All;
            }
        }
        fn cond(selection: &mut Selection, cond: &Cond) {
            path(selection, &cond.field);
            if matches!(&cond.op, Op::Custom(e) if e.uses_record()) {
                *selection = Selection::All;
            }
        }
        let mut selection = Selection::nothing();
        let s = &mut selection;
        for filter in &self.filters {
            cond(s, filter);
        }
        for field in &self.fields {
            match &field.produce {
                Produce::Direct(source) => path(s, source),
                Produce::Transform(source, list) => {
                    path(s, source);
                    steps(s, list);
                }
                Produce::Conditional { rules, .. } => {
                    for (rule, then) in rules {
                        cond(s, rule);
                        match then {
                            Then::Value(_) => {}
                            Then::Field(source) => path(s, source),
                            Then::Transform(source, list) => {
                                path(s, source);
                                steps(s, list);
                            }
                        }
                    }
                }
                Produce::Default(_) => {}
                Produce::Composite { sources, .. } => {
                    for source in sources {
                        path(s, source);
                    }
                }
                Produce::Lookup { source, .. } => path(s, source),
                Produce::Flatten { source, path } => {
                    s.add(source.selection_steps().chain(path.selection_steps()));
                }
            }
        }
        for relationship in &self.relationships {
            path(s, &relationship.source);
        }
        if let Dedup::FieldMatch(fields) | Dedup::Composite(fields) = &self.dedup {
            for field in fields {
                if let MatchSource::Source(source) = &field.source {
                    path(s, source);
                }
            }
        }
        for source in self.external_id.iter().chain(&self.modified_field) {
            path(s, source);
        }
        selection
    }
}

struct Compiler<'e> {
    entity: Option<&'e IntegrationEntity>,
    consts: Vec<Const>,
}

fn at_str(at: &JsonPath) -> String {
    at.to_string()
}

impl Compiler<'_> {
    fn schema(mut self, schema: &ConversionSchema) -> Result<CompiledSchema, CompileError> {
        let root = JsonPath::root();
        let filters_at = root.key("source").key("filters");
        let filters = schema
            .source
            .filters
            .iter()
            .enumerate()
            .map(|(i, f)| self.condition(f, &filters_at.index(i)))
            .collect::<Result<Vec<_>, _>>()?;

        let mappings_at = root.key("fieldMappings");
        let fields = schema
            .field_mappings
            .iter()
            .enumerate()
            .map(|(i, m)| self.field(m, &mappings_at.index(i)))
            .collect::<Result<Vec<_>, _>>()?;

        let relationships_at = root.key("relationshipMappings");
        let mut relationships = Vec::new();
        for (i, r) in schema.relationship_mappings.iter().enumerate() {
            let at = relationships_at.index(i);
            let source = self.source_path(&r.source_field, &at.key("sourceField"))?;
            let ty = self.source_type(&source, &at.key("sourceField"))?;
            if matches!(ty, Ty::Object | Ty::Bool | Ty::Date) {
                return Err(incompatible(
                    &at.key("sourceField"),
                    format!(
                        "a relationship needs an id or a list of ids, `{}` is {}",
                        r.source_field,
                        ty.name()
                    ),
                ));
            }
            relationships.push(Relationship {
                target: r.target_field.clone(),
                source,
                kind: r.relationship_type,
                shard_type: r.lookup_shard_type.clone(),
                lookup_field: r.lookup_field.clone(),
            });
        }

        let dedup_at = root.key("deduplication");
        let (dedup, external_field, external_at) = match &schema.deduplication {
            Deduplication::ExternalId(d) => (
                Dedup::ExternalId,
                Some(d.external_id_field.as_str()),
                dedup_at.key("externalIdField"),
            ),
            Deduplication::FieldMatch(d) | Deduplication::Composite(d) => {
                let matches = d
                    .match_fields
                    .iter()
                    .enumerate()
                    .map(|(i, name)| {
                        self.match_field(name, &fields, &dedup_at.key("matchFields").index(i))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let dedup = if matches!(schema.deduplication, Deduplication::FieldMatch(_)) {
                    Dedup::FieldMatch(matches)
                } else {
                    Dedup::Composite(matches)
                };
                let fallback = self.entity.and_then(|e| e.id_field.as_deref());
                (
                    dedup,
                    d.external_id_field.as_deref().or(fallback),
                    dedup_at.key("externalIdField"),
                )
            }
        };
        let external_id = match external_field {
            Some(field) => {
                let path = self.source_path(field, &external_at)?;
                self.scalar_source(&path, &external_at, "an external id")?;
                Some(path)
            }
            None => None,
        };
        let mut output_order: Vec<usize> = (0..fields.len()).collect();
        output_order.sort_by(|&a, &b| fields[a].target.cmp(&fields[b].target));
        let modified_field = self
            .entity
            .and_then(|e| e.modified_field.as_deref())
            .and_then(|f| Path::dotted(f).ok());

        let mut compiled = CompiledSchema {
            id: schema.id.clone(),
            version: schema.version,
            target: schema.target.shard_type_id.clone(),
            filters,
            fields,
            relationships,
            dedup,
            external_id,
            modified_field,
            consts: self.consts,
            output_order,
            selection: Selection::nothing(),
        };
        compiled.selection = compiled.reads();
        Ok(compiled)
    }

    fn match_field(
        &self,
        name: &str,
        fields: &[Field],
        at: &JsonPath,
    ) -> Result<MatchField, CompileError> {
        if let Some(index) = fields.iter().position(|f| f.target == name) {
            return Ok(MatchField {
                name: name.to_owned(),
                source: MatchSource::Target(index),
            });
        }
        let path = self.source_path(name, at)?;
        self.scalar_source(&path, at, "a deduplication field")?;
        Ok(MatchField {
            name: name.to_owned(),
            source: MatchSource::Source(path),
        })
    }

    fn scalar_source(&self, path: &Path, at: &JsonPath, what: &str) -> Result<(), CompileError> {
        match self.source_type(path, at)? {
            ty @ (Ty::Object | Ty::Array | Ty::Bool) => Err(incompatible(
                at,
                format!(
                    "{what} must be text or a number, `{}` is {}",
                    path.text(),
                    ty.name()
                ),
            )),
            _ => Ok(()),
        }
    }

    fn source_path(&self, text: &str, at: &JsonPath) -> Result<Path, CompileError> {
        Path::dotted(text).map_err(|m| CompileError::new(at_str(at), Code::InvalidPath, m))
    }

    /// The declared type of a source path, `Any` when the entity does not say.
    fn source_type(&self, path: &Path, at: &JsonPath) -> Result<Ty, CompileError> {
        let Some(entity) = self.entity else {
            return Ok(Ty::Any);
        };
        let Some(root) = path.root_key() else {
            return Ok(Ty::Any);
        };
        let Some(field) = entity.fields.iter().find(|f| f.name == root) else {
            return Ok(Ty::Any);
        };
        let ty = match field.field_type {
            EntityFieldType::String | EntityFieldType::Reference => Ty::Text,
            EntityFieldType::Number | EntityFieldType::Integer => Ty::Number,
            EntityFieldType::Boolean => Ty::Bool,
            EntityFieldType::Date | EntityFieldType::Datetime => Ty::DateText,
            EntityFieldType::Object => Ty::Object,
            EntityFieldType::Array => Ty::Array,
        };
        if path.is_single_key() {
            return Ok(ty);
        }
        match ty {
            Ty::Object | Ty::Array => Ok(Ty::Any),
            scalar => Err(incompatible(
                at,
                format!(
                    "`{}` reads inside `{root}`, which the entity declares as {}",
                    path.text(),
                    scalar.name()
                ),
            )),
        }
    }

    fn constant(&mut self, value: &Value, at: &JsonPath) -> Result<ConstId, CompileError> {
        let templated = check_placeholders(value, 0)
            .map_err(|m| CompileError::new(at_str(at), Code::UnknownPlaceholder, m))?;
        self.consts.push(Const {
            value: value.clone(),
            templated,
        });
        Ok(self.consts.len() - 1)
    }

    fn steps(
        &self,
        list: &[Transformation],
        at: &JsonPath,
        input: Ty,
    ) -> Result<(Vec<Step>, Ty), CompileError> {
        let mut ty = input;
        let mut steps = Vec::with_capacity(list.len());
        for (i, t) in list.iter().enumerate() {
            let step_at = at.index(i);
            let step = transform::compile_step(t).map_err(|(member, message)| {
                let code = match member {
                    "pattern" => Code::InvalidRegex,
                    "format" => Code::InvalidDateFormat,
                    "expression" => Code::InvalidExpression,
                    _ => Code::MissingRate,
                };
                CompileError::new(at_str(&step_at.key("config").key(member)), code, message)
            })?;
            ty = step.check(ty).map_err(|m| incompatible(&step_at, m))?;
            steps.push(step);
        }
        Ok((steps, ty))
    }

    fn condition(
        &mut self,
        c: &hub_core::model::Condition,
        at: &JsonPath,
    ) -> Result<Cond, CompileError> {
        use ConditionOperator as O;
        let field = self.source_path(&c.field, &at.key("field"))?;
        let ty = self.source_type(&field, &at.key("field"))?;
        let value_at = at.key("value");
        let value = c.value.clone().unwrap_or(Value::Null);
        let refuse = |what: &str| {
            Err(incompatible(
                at,
                format!(
                    "`{}` cannot compare {} (`{}`)",
                    c.operator.as_str(),
                    ty.name(),
                    what
                ),
            ))
        };
        match (c.operator, ty) {
            (O::Gt | O::Gte | O::Lt | O::Lte, Ty::Bool | Ty::Array | Ty::Object) => {
                return refuse(&c.field);
            }
            (O::StartsWith | O::EndsWith, Ty::Bool | Ty::Array | Ty::Object) => {
                return refuse(&c.field);
            }
            (O::Contains, Ty::Bool | Ty::Object) => return refuse(&c.field),
            _ => {}
        }
        let op = match c.operator {
            O::Eq => Op::Eq(self.constant(&value, &value_at)?),
            O::Neq => Op::Neq(self.constant(&value, &value_at)?),
            O::Gt => Op::Gt(self.constant(&value, &value_at)?),
            O::Gte => Op::Gte(self.constant(&value, &value_at)?),
            O::Lt => Op::Lt(self.constant(&value, &value_at)?),
            O::Lte => Op::Lte(self.constant(&value, &value_at)?),
            O::Contains => Op::Contains(self.constant(&value, &value_at)?),
            O::StartsWith => Op::StartsWith(self.constant(&value, &value_at)?),
            O::EndsWith => Op::EndsWith(self.constant(&value, &value_at)?),
            O::In => Op::In(self.constant(&value, &value_at)?),
            O::NotIn => Op::NotIn(self.constant(&value, &value_at)?),
            O::Exists => Op::Exists,
            O::NotExists => Op::NotExists,
            O::Custom => {
                let text = value.as_str().unwrap_or_default();
                Op::Custom(expr::compile(text).map_err(|m| {
                    CompileError::new(at_str(&value_at), Code::InvalidExpression, m)
                })?)
            }
        };
        Ok(Cond { field, op })
    }

    fn field(&mut self, m: &FieldMapping, at: &JsonPath) -> Result<Field, CompileError> {
        let config_at = at.key("config");
        let source_at = config_at.key("sourceField");
        let (produce, source, ty) = match &m.config {
            FieldMappingConfig::Direct(d) => {
                let path = self.source_path(&d.source_field, &source_at)?;
                let ty = self.source_type(&path, &source_at)?;
                (Produce::Direct(path), Some(d.source_field.clone()), ty)
            }
            FieldMappingConfig::Transform(t) => {
                let path = self.source_path(&t.source_field, &source_at)?;
                let input = self.source_type(&path, &source_at)?;
                let (steps, ty) =
                    self.steps(&t.transformations, &config_at.key("transformations"), input)?;
                (
                    Produce::Transform(path, steps),
                    Some(t.source_field.clone()),
                    ty,
                )
            }
            FieldMappingConfig::Conditional(c) => {
                let rules_at = config_at.key("conditions");
                let mut rules = Vec::with_capacity(c.conditions.len());
                for (i, rule) in c.conditions.iter().enumerate() {
                    let rule_at = rules_at.index(i);
                    let cond = self.condition(&rule.condition, &rule_at.key("condition"))?;
                    let then_at = rule_at.key("then");
                    let then = match &rule.then {
                        ThenClause::Value(v) => {
                            Then::Value(self.constant(&v.value, &then_at.key("value"))?)
                        }
                        ThenClause::Field(f) => Then::Field(
                            self.source_path(&f.source_field, &then_at.key("sourceField"))?,
                        ),
                        ThenClause::Transform(t) => {
                            let (path, path_at) = match &t.source_field {
                                Some(field) => (
                                    self.source_path(field, &then_at.key("sourceField"))?,
                                    then_at.key("sourceField"),
                                ),
                                None => (cond.field.clone(), rule_at.key("condition").key("field")),
                            };
                            let input = self.source_type(&path, &path_at)?;
                            let (steps, _) = self.steps(
                                &t.transformations,
                                &then_at.key("transformations"),
                                input,
                            )?;
                            Then::Transform(path, steps)
                        }
                    };
                    rules.push((cond, then));
                }
                let default = match &c.default {
                    Some(value) => Some(self.constant(value, &config_at.key("default"))?),
                    None => None,
                };
                let source = c.conditions.first().map(|r| r.condition.field.clone());
                (Produce::Conditional { rules, default }, source, Ty::Any)
            }
            FieldMappingConfig::Default(d) => {
                let id = self.constant(&d.value, &config_at.key("value"))?;
                let ty = if self.consts[id].templated {
                    Ty::Any
                } else {
                    type_of_constant(&d.value)
                };
                (Produce::Default(id), None, ty)
            }
            FieldMappingConfig::Composite(c) => {
                let fields_at = config_at.key("sourceFields");
                let mut sources = Vec::with_capacity(c.source_fields.len());
                for (i, field) in c.source_fields.iter().enumerate() {
                    let path = self.source_path(field, &fields_at.index(i))?;
                    match self.source_type(&path, &fields_at.index(i))? {
                        ty @ (Ty::Object | Ty::Array) => {
                            return Err(incompatible(
                                &fields_at.index(i),
                                format!("a composite joins text, `{field}` is {}", ty.name()),
                            ));
                        }
                        _ => sources.push(path),
                    }
                }
                let join = match &c.template {
                    Some(template) => Join::Template(template_pieces(template, &c.source_fields)),
                    None => Join::Separator(c.separator.clone().unwrap_or_else(|| " ".into())),
                };
                (
                    Produce::Composite { sources, join },
                    Some(c.source_fields.join(",")),
                    Ty::Text,
                )
            }
            FieldMappingConfig::Lookup(l) => {
                let source = self.source_path(&l.source_field, &source_at)?;
                if let ty @ (Ty::Object | Ty::Array) = self.source_type(&source, &source_at)? {
                    return Err(incompatible(
                        &source_at,
                        format!(
                            "a lookup keys on text, `{}` is {}",
                            l.source_field,
                            ty.name()
                        ),
                    ));
                }
                let fold_case = !l.case_sensitive();
                let values_at = config_at.key("values");
                let mut table = HashMap::with_capacity(l.values.len());
                for (key, value) in &l.values {
                    let id = self.constant(value, &values_at.key(key))?;
                    let folded = if fold_case {
                        key.to_lowercase()
                    } else {
                        key.clone()
                    };
                    if table.insert(folded, id).is_some() {
                        return Err(CompileError::new(
                            at_str(&values_at.key(key)),
                            Code::DuplicateLookupKey,
                            format!("`{key}` collides with another key when case is ignored"),
                        ));
                    }
                }
                let default = match &l.default {
                    Some(value) => Some(self.constant(value, &config_at.key("default"))?),
                    None => None,
                };
                (
                    Produce::Lookup {
                        source,
                        table,
                        fold_case,
                        default,
                    },
                    Some(l.source_field.clone()),
                    Ty::Any,
                )
            }
            FieldMappingConfig::Flatten(f) => {
                let source = self.source_path(&f.source_field, &source_at)?;
                match self.source_type(&source, &source_at)? {
                    Ty::Any | Ty::Object | Ty::Array => {}
                    ty => {
                        return Err(incompatible(
                            &source_at,
                            format!(
                                "flatten reads inside an object or array, `{}` is {}",
                                f.source_field,
                                ty.name()
                            ),
                        ));
                    }
                }
                let path = Path::flatten(&f.path).map_err(|m| {
                    CompileError::new(at_str(&config_at.key("path")), Code::InvalidPath, m)
                })?;
                let shown = format!(
                    "{}.{}",
                    f.source_field,
                    f.path.trim_start_matches(['$', '.'])
                );
                (Produce::Flatten { source, path }, Some(shown), Ty::Any)
            }
        };
        let rules_at = at.key("validation");
        let rules = m
            .validation
            .iter()
            .enumerate()
            .map(|(i, rule)| compile_rule(rule, ty, &rules_at.index(i)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Field {
            target: m.target_field.clone(),
            source,
            produce,
            required: m.required,
            rules,
        })
    }
}

fn incompatible(at: &JsonPath, message: String) -> CompileError {
    CompileError::new(at_str(at), Code::IncompatibleType, message)
}

fn type_of_constant(value: &Value) -> Ty {
    match value {
        Value::Null => Ty::Any,
        Value::Bool(_) => Ty::Bool,
        Value::Number(_) => Ty::Number,
        Value::String(_) => Ty::Text,
        Value::Array(_) => Ty::Array,
        Value::Object(_) => Ty::Object,
    }
}

fn compile_rule(
    rule: &ValidationRule,
    ty: Ty,
    at: &JsonPath,
) -> Result<CompiledRule, CompileError> {
    use ValidationRule as V;
    let text_like = matches!(ty, Ty::Any | Ty::Text | Ty::DateText | Ty::Number);
    let refuse = |name: &str| {
        Err(incompatible(
            at,
            format!("the `{name}` rule cannot check {}", ty.name()),
        ))
    };
    let (rule, message) = match rule {
        V::Required(r) => (Rule::Required, r.message.clone()),
        V::MinLength(r) | V::MaxLength(r) => {
            if !matches!(ty, Ty::Any | Ty::Text | Ty::DateText | Ty::Array) {
                return refuse(if matches!(rule, V::MinLength(_)) {
                    "min_length"
                } else {
                    "max_length"
                });
            }
            let compiled = if matches!(rule, V::MinLength(_)) {
                Rule::MinLength(r.value)
            } else {
                Rule::MaxLength(r.value)
            };
            (compiled, r.message.clone())
        }
        V::Pattern(r) => {
            if !text_like {
                return refuse("pattern");
            }
            let regex = transform::compile_regex(&r.value)
                .map_err(|m| CompileError::new(at_str(&at.key("value")), Code::InvalidRegex, m))?;
            (Rule::Pattern(regex), r.message.clone())
        }
        V::Min(r) | V::Max(r) => {
            if !matches!(ty, Ty::Any | Ty::Number | Ty::Text) {
                return refuse(if matches!(rule, V::Min(_)) {
                    "min"
                } else {
                    "max"
                });
            }
            let bound = Num::from_json(&r.value);
            let decimal = bound.to_decimal();
            let compiled = if matches!(rule, V::Min(_)) {
                Rule::Min(decimal, bound.text())
            } else {
                Rule::Max(decimal, bound.text())
            };
            (compiled, r.message.clone())
        }
        V::Email(r) => {
            if !text_like {
                return refuse("email");
            }
            (Rule::Email, r.message.clone())
        }
        V::Url(r) => {
            if !text_like {
                return refuse("url");
            }
            (Rule::Url, r.message.clone())
        }
        V::Enum(r) => (Rule::Enum(r.values.clone()), r.message.clone()),
    };
    Ok(CompiledRule { rule, message })
}

/// `${Field}` templates; hub-core's validation already checked that every placeholder names
/// one of `sourceFields`.
fn template_pieces(template: &str, fields: &[String]) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        if start > 0 {
            pieces.push(Piece::Text(rest[..start].to_owned()));
        }
        let name = &after[..end];
        match fields.iter().position(|f| f == name) {
            Some(index) => pieces.push(Piece::Field(index)),
            None => pieces.push(Piece::Text(rest[start..start + 2 + end + 1].to_owned())),
        }
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    pieces
}

/// Whether `value` holds `{{task.<key>}}` placeholders; an error for any other `{{...}}`.
fn check_placeholders(value: &Value, depth: usize) -> Result<bool, String> {
    match value {
        Value::String(s) => {
            let mut found = false;
            for placeholder in placeholders(s) {
                match placeholder {
                    Placeholder::Task(_) => found = true,
                    Placeholder::Other(inner) => {
                        return Err(format!(
                            "unknown placeholder `{{{{{inner}}}}}`: only `{{{{task.<key>}}}}` (a value of the sync task's config) is supported"
                        ));
                    }
                }
            }
            Ok(found)
        }
        Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => Ok(false),
        Value::Array(items) => {
            let mut found = false;
            for item in items {
                found |= check_placeholders(item, depth + 1)?;
            }
            Ok(found)
        }
        Value::Object(members) => {
            let mut found = false;
            for member in members.values() {
                found |= check_placeholders(member, depth + 1)?;
            }
            Ok(found)
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(false),
    }
}

pub(crate) enum Placeholder<'a> {
    Task(&'a str),
    Other(&'a str),
}

/// The `{{...}}` of a string, in order, with their byte ranges.
pub(crate) fn placeholder_spans(text: &str) -> Vec<(std::ops::Range<usize>, Placeholder<'_>)> {
    let mut spans = Vec::new();
    let mut offset = 0;
    while let Some(start) = text[offset..].find("{{") {
        let open = offset + start;
        let Some(len) = text[open + 2..].find("}}") else {
            break;
        };
        let close = open + 2 + len + 2;
        let inner = text[open + 2..open + 2 + len].trim();
        let placeholder = match inner.strip_prefix("task.") {
            Some(key) if !key.trim().is_empty() => Placeholder::Task(key.trim()),
            _ => Placeholder::Other(inner),
        };
        spans.push((open..close, placeholder));
        offset = close;
    }
    spans
}

fn placeholders(text: &str) -> impl Iterator<Item = Placeholder<'_>> {
    placeholder_spans(text).into_iter().map(|(_, p)| p)
}
