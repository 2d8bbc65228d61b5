//! Applying a compiled schema to records: a [`Mapper`] is a schema bound to one batch's sync
//! task (its `{{task.<key>}}` values, currency table and modified field), and maps each record
//! on its own: one record's failure never touches another's.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::cmp::Ordering;
use std::collections::BTreeMap;

use hub_core::messages::{EntityJson, RecordError};
use hub_core::model::SyncTaskConfig;
use rhai::Dynamic;
use serde_json::{Map, Value};

use crate::compile::{
    CompiledRule, CompiledSchema, Cond, ConstId, Dedup, Field, Join, MatchSource, Op, Piece,
    Placeholder, Produce, Rule, Then, placeholder_spans,
};
use crate::date;
use crate::error::{ErrorCode, Issue};
use crate::expr::{self, ExprFailure, Inputs};
use crate::hash::{payload_hash, short_digest};
use crate::json::{self, MAX_DEPTH, Selection, View};
use crate::outcome::{BatchOutcome, MappedRecord, RecordOutcome, SkippedRecord};
use crate::path::Path;
use crate::relations::{LookupKey, RelationshipRef};
use crate::transform::{self, StepContext, describe, parse_number_text};
use crate::value::{Val, compare_numbers, loose_equal};

/// One record as the mapper accepts it.
#[derive(Debug, Clone, Copy)]
pub enum RecordInput<'a> {
    /// Already parsed (a `RecordBatch`'s records). Numbers are what serde_json kept of them.
    Value(&'a Value),
    /// The record's JSON text: parsed without copying strings, numbers keep every digit.
    Text(&'a str),
}

impl<'a> From<&'a Value> for RecordInput<'a> {
    fn from(value: &'a Value) -> Self {
        RecordInput::Value(value)
    }
}

impl<'a> From<&'a str> for RecordInput<'a> {
    fn from(text: &'a str) -> Self {
        RecordInput::Text(text)
    }
}

/// A compiled schema bound to the sync task of one batch. Cheap to build; build one per batch.
pub struct Mapper<'s> {
    schema: &'s CompiledSchema,
    /// The templated constants with the task's values filled in (by constant id), or the key
    /// the task lacks.
    resolved: Vec<Option<Result<Value, String>>>,
    /// The task's `currencyRates`: units of each currency per one unit of the table's base.
    rates: Option<BTreeMap<String, f64>>,
    modified: Option<Path>,
    task: Dynamic,
    /// What of a record given as text is parsed: the schema's reads and the modified field.
    selection: Selection,
}

impl CompiledSchema {
    /// Binds the schema to a sync task's config (`None` for webhook batches, which belong to no
    /// task: a `{{task.<key>}}` then fails the records that need it).
    pub fn bind(&self, task: Option<&SyncTaskConfig>) -> Mapper<'_> {
        let values: Map<String, Value> = match task.map(serde_json::to_value) {
            Some(Ok(Value::Object(map))) => map,
            _ => Map::new(),
        };
        let resolved = self
            .consts
            .iter()
            .map(|c| c.templated.then(|| fill_placeholders(&c.value, &values, 0)))
            .collect();
        let modified = task
            .and_then(|t| t.modified_since_field.as_deref())
            .and_then(|f| Path::dotted(f).ok())
            .or_else(|| self.modified_field.clone());
        let mut selection = self.selection.clone();
        if let Some(path) = &modified {
            selection.add(path.selection_steps());
        }
        Mapper {
            schema: self,
            resolved,
            rates: values.get("currencyRates").and_then(currency_table),
            modified,
            task: expr::task_dynamic(&values),
            selection,
        }
    }
}

/// `{"base": "USD", "rates": {"EUR": 0.92}}` or `{"USD": 1, "EUR": 0.92}`: positive finite
/// numbers per currency code; anything else is left out (and a conversion needing it fails
/// with `missing_currency_rate`).
fn currency_table(value: &Value) -> Option<BTreeMap<String, f64>> {
    let object = value.as_object()?;
    let (base, rates) = match object.get("rates").and_then(Value::as_object) {
        Some(rates) => (object.get("base").and_then(Value::as_str), rates),
        None => (None, object),
    };
    let mut table: BTreeMap<String, f64> = rates
        .iter()
        .filter_map(|(code, rate)| {
            let rate = rate.as_f64()?;
            (rate.is_finite() && rate > 0.0).then(|| (code.clone(), rate))
        })
        .collect();
    if let Some(base) = base {
        table.insert(base.to_owned(), 1.0);
    }
    Some(table)
}

fn fill_placeholders(
    value: &Value,
    task: &Map<String, Value>,
    depth: usize,
) -> Result<Value, String> {
    match value {
        Value::String(s) => {
            let spans = placeholder_spans(s);
            if spans.is_empty() {
                return Ok(value.clone());
            }
            let lookup = |key: &str| task.get(key).ok_or_else(|| key.to_owned());
            if let [(range, Placeholder::Task(key))] = spans.as_slice()
                && range.start == 0
                && range.end == s.len()
            {
                return lookup(key).cloned();
            }
            let mut out = String::with_capacity(s.len());
            let mut last = 0;
            for (range, placeholder) in &spans {
                out.push_str(&s[last..range.start]);
                match placeholder {
                    Placeholder::Task(key) => match lookup(key)? {
                        Value::String(text) => out.push_str(text),
                        Value::Null => {}
                        other => out.push_str(&other.to_string()),
                    },
                    Placeholder::Other(_) => out.push_str(&s[range.clone()]),
                }
                last = range.end;
            }
            out.push_str(&s[last..]);
            Ok(Value::String(out))
        }
        Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => Ok(value.clone()),
        Value::Array(items) => items
            .iter()
            .map(|item| fill_placeholders(item, task, depth + 1))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(members) => members
            .iter()
            .map(|(k, v)| Ok((k.clone(), fill_placeholders(v, task, depth + 1)?)))
            .collect::<Result<_, _>>()
            .map(Value::Object),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(value.clone()),
    }
}

/// The state of one record being mapped.
struct RecordScope<'r> {
    root: View<'r>,
    record_map: OnceCell<Dynamic>,
}

impl<'s> Mapper<'s> {
    pub fn schema(&self) -> &'s CompiledSchema {
        self.schema
    }

    /// Maps every record; `records[i]` gets record index `i`.
    pub fn map_batch<'r, I>(&self, records: I) -> BatchOutcome
    where
        I: IntoIterator<Item = RecordInput<'r>>,
    {
        BatchOutcome {
            records: records
                .into_iter()
                .enumerate()
                .map(|(i, record)| self.map_record(u32::try_from(i).unwrap_or(u32::MAX), record))
                .collect(),
        }
    }

    pub fn map_record(&self, record_index: u32, record: RecordInput<'_>) -> RecordOutcome {
        match record {
            RecordInput::Value(value) => self.map_view(record_index, View::Json(value)),
            RecordInput::Text(text) => self.map_text(record_index, text, &self.selection),
        }
    }

    /// Maps a record given as text with every member of it parsed, where
    /// [`Mapper::map_record`] parses only the members the schema reads. The outcome is the
    /// same; this is the reference the tests, fuzz targets and benchmark check that against.
    pub fn map_record_fully_parsed(&self, record_index: u32, text: &str) -> RecordOutcome {
        self.map_text(record_index, text, &Selection::All)
    }

    fn map_text(&self, record_index: u32, text: &str, selection: &Selection) -> RecordOutcome {
        match json::parse_selected(text, selection) {
            Ok(root) => self.map_view(record_index, View::Node(&root)),
            Err(error) => RecordOutcome::Failed {
                errors: vec![RecordError {
                    record_index,
                    external_id: None,
                    target_field: None,
                    source_path: None,
                    code: ErrorCode::InvalidRecord.as_str().to_owned(),
                    message: format!("the record is not JSON: {error}"),
                }],
            },
        }
    }

    fn map_view(&self, record_index: u32, root: View<'_>) -> RecordOutcome {
        let error = |issue: Issue,
                     external_id: &Option<String>,
                     target: Option<&str>,
                     source: Option<&str>| {
            let issue = issue.into_parts();
            RecordError {
                record_index,
                external_id: external_id.clone(),
                target_field: target.map(str::to_owned),
                source_path: issue.source_path.or_else(|| source.map(str::to_owned)),
                code: issue.code.as_str().to_owned(),
                message: issue.message,
            }
        };
        if !root.is_object() {
            let issue = Issue::new(
                ErrorCode::InvalidRecord,
                format!("a record must be a JSON object, got {}", root.kind().name()),
            );
            return RecordOutcome::Failed {
                errors: vec![error(issue, &None, None, None)],
            };
        }
        let scope = RecordScope {
            root,
            record_map: OnceCell::new(),
        };
        let schema = self.schema;
        let mut errors = Vec::new();

        let external_id = match &schema.external_id {
            Some(path) => match external_id_of(path, root) {
                Ok(Some(id)) => Some(id),
                Ok(None) if matches!(schema.dedup, Dedup::ExternalId) => {
                    let issue = Issue::new(
                        ErrorCode::MissingExternalId,
                        format!("the external id field `{}` has no value", path.text()),
                    );
                    errors.push(error(issue, &None, None, Some(path.text())));
                    None
                }
                Ok(None) => None,
                Err(issue) => {
                    errors.push(error(issue, &None, None, Some(path.text())));
                    None
                }
            },
            None => None,
        };

        for (filter_index, filter) in schema.filters.iter().enumerate() {
            match self.holds(filter, &scope) {
                Ok(true) => {}
                Ok(false) if errors.is_empty() => {
                    return RecordOutcome::Skipped(SkippedRecord {
                        record_index,
                        external_id,
                        filter_index,
                        reason: format!(
                            "source filter {filter_index} (`{}` {}) does not hold",
                            filter.field.text(),
                            op_name(&filter.op)
                        ),
                    });
                }
                Ok(false) => {}
                Err(issue) => {
                    errors.push(error(issue, &external_id, None, Some(filter.field.text())))
                }
            }
        }

        let mut values: Vec<Option<Val<'_>>> = Vec::with_capacity(schema.fields.len());
        for field in &schema.fields {
            values.push(None);
            let produced = self.produce(field, &scope);
            let source = field.source.as_deref();
            let value = match produced {
                Ok(value) => value,
                Err(issue) => {
                    errors.push(error(issue, &external_id, Some(&field.target), source));
                    continue;
                }
            };
            let is_absent = value.as_ref().is_none_or(Val::is_null);
            if is_absent
                && (field.required || field.rules.iter().any(|r| matches!(r.rule, Rule::Required)))
            {
                let message = field
                    .rules
                    .iter()
                    .find(|r| matches!(r.rule, Rule::Required))
                    .and_then(|r| r.message.clone())
                    .unwrap_or_else(|| match &value {
                        None => format!("`{}` is required and has no value", field.target),
                        Some(_) => format!("`{}` is required and is null", field.target),
                    });
                let issue = Issue::new(ErrorCode::MissingRequiredField, message);
                errors.push(error(issue, &external_id, Some(&field.target), source));
                continue;
            }
            let Some(value) = value else { continue };
            if !value.is_null() {
                for rule in &field.rules {
                    if let Some(issue) = check_rule(rule, &value) {
                        errors.push(error(issue, &external_id, Some(&field.target), source));
                    }
                }
            }
            if let Some(slot) = values.last_mut() {
                *slot = Some(value);
            }
        }

        let mut relationships = Vec::with_capacity(schema.relationships.len());
        for relationship in &schema.relationships {
            match relationship_keys(relationship, root) {
                Ok(keys) if keys.is_empty() => {}
                Ok(keys) => relationships.push(RelationshipRef {
                    target_field: relationship.target.clone(),
                    relationship_type: relationship.kind,
                    keys,
                    internal_ids: Vec::new(),
                }),
                Err(issue) => errors.push(error(
                    issue,
                    &external_id,
                    Some(&relationship.target),
                    Some(relationship.source.text()),
                )),
            }
        }

        let dedup_key = match self.dedup_key(external_id.as_deref(), &values, root) {
            Ok(key) => key,
            Err(issue) => {
                errors.push(error(issue, &external_id, None, None));
                String::new()
            }
        };
        if !errors.is_empty() {
            return RecordOutcome::Failed { errors };
        }
        let source_modified_at = self
            .modified
            .as_ref()
            .and_then(|path| path.get(root))
            .and_then(|view| date::to_date(&Val::from_view(view), None))
            .map(|d| d.instant);
        // The entity's text is written straight from the values, in the order the plan
        // precomputed: no map of owned keys and values is built, serialised and dropped.
        let entity = serde_json::value::to_raw_value(&Entity {
            fields: &schema.fields,
            output_order: &schema.output_order,
            values: &values,
        });
        let Some(data) = entity.ok().and_then(EntityJson::from_raw) else {
            // Writing JSON values to text does not fail; were it to, the record would.
            let issue = Issue::new(
                ErrorCode::InvalidType,
                "the entity could not be written as JSON".to_owned(),
            );
            return RecordOutcome::Failed {
                errors: vec![error(issue, &external_id, None, None)],
            };
        };
        let payload_hash = payload_hash(data.as_str());
        RecordOutcome::Mapped(MappedRecord {
            record_index,
            external_id: external_id.unwrap_or_else(|| dedup_key.clone()),
            dedup_key,
            data,
            source_modified_at,
            payload_hash,
            relationships,
        })
    }

    /// A constant as a value: from the schema, or with the task's values filled in.
    fn constant_val<'a>(&'a self, id: ConstId) -> Result<Val<'a>, Issue> {
        match self.resolved.get(id).and_then(Option::as_ref) {
            None => Ok(Val::from_view(View::Json(&self.schema.consts[id].value))),
            Some(Ok(value)) => Ok(Val::from_view(View::Json(value))),
            Some(Err(key)) => Err(missing_task_value(key)),
        }
    }

    fn step_context<'a, 'r>(&'a self, scope: &'a RecordScope<'r>) -> StepContext<'a, 'r> {
        StepContext {
            rates: self.rates.as_ref(),
            inputs: Inputs {
                record: scope.root,
                record_map: &scope.record_map,
                task: &self.task,
            },
        }
    }

    fn produce<'a>(
        &'a self,
        field: &'a Field,
        scope: &'a RecordScope<'a>,
    ) -> Result<Option<Val<'a>>, Issue> {
        let root = scope.root;
        match &field.produce {
            Produce::Direct(path) => Ok(path.get(root).map(Val::from_view)),
            Produce::Transform(path, steps) => {
                let input = path.get(root).map(Val::from_view);
                transform::run(steps, input, &self.step_context(scope))
            }
            Produce::Conditional { rules, default } => {
                // Rules usually test the same field: look it up once.
                let mut looked_up: Option<(&Path, Option<View<'a>>)> = None;
                for (cond, then) in rules {
                    let field = match looked_up {
                        Some((path, view)) if path == &cond.field => view,
                        _ => {
                            let view = cond.field.get(root);
                            looked_up = Some((&cond.field, view));
                            view
                        }
                    };
                    if self
                        .holds_for(cond, field, scope)
                        .map_err(|i| i.at(cond.field.text()))?
                    {
                        return match then {
                            Then::Value(id) => self.constant_val(*id).map(Some),
                            Then::Field(path) => Ok(path.get(root).map(Val::from_view)),
                            Then::Transform(path, steps) => {
                                let input = path.get(root).map(Val::from_view);
                                transform::run(steps, input, &self.step_context(scope))
                                    .map_err(|i| i.at(path.text()))
                            }
                        };
                    }
                }
                default.map(|id| self.constant_val(id)).transpose()
            }
            Produce::Default(id) => self.constant_val(*id).map(Some),
            Produce::Composite { sources, join } => composite(sources, join, root),
            Produce::Lookup {
                source,
                table,
                fold_case,
                default,
            } => {
                let hit = match source.get(root).map(Val::from_view) {
                    None | Some(Val::Null) => None,
                    Some(value) => {
                        let key = value.scalar_text().ok_or_else(|| {
                            Issue::new(
                                ErrorCode::InvalidType,
                                format!(
                                    "a lookup keys on text, `{}` is {}",
                                    source.text(),
                                    value.kind_name()
                                ),
                            )
                        })?;
                        if *fold_case {
                            table.get(&key.to_lowercase())
                        } else {
                            table.get(key.as_ref())
                        }
                    }
                };
                match hit.or(default.as_ref()) {
                    Some(id) => self.constant_val(*id).map(Some),
                    None => Ok(None),
                }
            }
            Produce::Flatten { source, path } => {
                let Some(base) = source.get(root) else {
                    return Ok(None);
                };
                if !path.selects_many() {
                    return Ok(path.get(base).map(Val::from_view));
                }
                let mut found = Vec::new();
                path.select(base, &mut found).map_err(|_| {
                    Issue::new(
                        ErrorCode::PathTooCostly,
                        format!(
                            "`{}` visits more than {} values of this record",
                            path.text(),
                            crate::path::VISIT_BUDGET
                        ),
                    )
                })?;
                if found.is_empty() {
                    Ok(None)
                } else {
                    Ok(Some(Val::List(
                        found.into_iter().map(Val::from_view).collect(),
                    )))
                }
            }
        }
    }

    fn holds(&self, cond: &Cond, scope: &RecordScope<'_>) -> Result<bool, Issue> {
        self.holds_for(cond, cond.field.get(scope.root), scope)
    }

    /// `cond` for the value of its field, already looked up.
    fn holds_for(
        &self,
        cond: &Cond,
        field: Option<View<'_>>,
        scope: &RecordScope<'_>,
    ) -> Result<bool, Issue> {
        let field = field.map(Val::from_view);
        let present = field.as_ref().filter(|v| !v.is_null());
        Ok(match &cond.op {
            Op::Exists => present.is_some(),
            Op::NotExists => present.is_none(),
            Op::Eq(id) => equals(field.as_ref(), &self.constant_val(*id)?),
            Op::Neq(id) => !equals(field.as_ref(), &self.constant_val(*id)?),
            Op::Gt(id) => order(present, &self.constant_val(*id)?).is_some_and(Ordering::is_gt),
            Op::Gte(id) => order(present, &self.constant_val(*id)?).is_some_and(Ordering::is_ge),
            Op::Lt(id) => order(present, &self.constant_val(*id)?).is_some_and(Ordering::is_lt),
            Op::Lte(id) => order(present, &self.constant_val(*id)?).is_some_and(Ordering::is_le),
            Op::Contains(id) => contains(present, &self.constant_val(*id)?),
            Op::StartsWith(id) => {
                text_test(present, &self.constant_val(*id)?, |a, b| a.starts_with(b))
            }
            Op::EndsWith(id) => text_test(present, &self.constant_val(*id)?, |a, b| a.ends_with(b)),
            Op::In(id) => one_of(field.as_ref(), &self.constant_val(*id)?),
            Op::NotIn(id) => !one_of(field.as_ref(), &self.constant_val(*id)?),
            Op::Custom(expr) => {
                let inputs = Inputs {
                    record: scope.root,
                    record_map: &scope.record_map,
                    task: &self.task,
                };
                let value = field.unwrap_or(Val::Null);
                match expr::eval(expr, &value, &inputs) {
                    Ok(Val::Bool(b)) => b,
                    Ok(other) => {
                        return Err(Issue::new(
                            ErrorCode::ExpressionFailed,
                            format!(
                                "a condition's expression must give true or false, it gave {}",
                                describe(&other)
                            ),
                        ));
                    }
                    Err(ExprFailure::Failed(m)) => {
                        return Err(Issue::new(ErrorCode::ExpressionFailed, m));
                    }
                    Err(ExprFailure::Limit(m)) => {
                        return Err(Issue::new(ErrorCode::ExpressionLimit, m));
                    }
                }
            }
        })
    }

    fn dedup_key(
        &self,
        external_id: Option<&str>,
        produced: &[Option<Val<'_>>],
        root: View<'_>,
    ) -> Result<String, Issue> {
        let fields = match &self.schema.dedup {
            Dedup::ExternalId => {
                // A missing external id is already reported.
                return Ok(external_id
                    .map(|id| short_digest(&["external_id:"], [id]))
                    .unwrap_or_default());
            }
            Dedup::FieldMatch(fields) | Dedup::Composite(fields) => fields,
        };
        let mut values = Vec::with_capacity(fields.len());
        for field in fields {
            // A target field is matched on its value in the entity, as JSON.
            let entity_value = match &field.source {
                MatchSource::Target(index) => entity_value(
                    &self.schema.fields,
                    produced,
                    &self.schema.fields[*index].target,
                ),
                MatchSource::Source(_) => None,
            };
            let value = match &field.source {
                MatchSource::Target(_) => {
                    entity_value.as_ref().map(|v| Val::from_view(View::Json(v)))
                }
                MatchSource::Source(path) => path.get(root).map(Val::from_view),
            };
            let text = match value {
                None | Some(Val::Null) => None,
                Some(value) => {
                    let text = value.scalar_text().ok_or_else(|| {
                        Issue::new(
                            ErrorCode::InvalidType,
                            format!(
                                "the deduplication field `{}` is {}",
                                field.name,
                                value.kind_name()
                            ),
                        )
                        .at(&field.name)
                    })?;
                    Some(text.trim().to_lowercase()).filter(|t| !t.is_empty())
                }
            };
            values.push((field.name.as_str(), text));
        }
        match &self.schema.dedup {
            Dedup::FieldMatch(_) => values
                .iter()
                .find_map(|(name, text)| {
                    text.as_deref()
                        .map(|text| short_digest(&["field_match:", name, ":"], [*name, text]))
                })
                .ok_or_else(|| {
                    let names: Vec<_> = values.iter().map(|(n, _)| format!("`{n}`")).collect();
                    Issue::new(
                        ErrorCode::MissingDedupField,
                        format!(
                            "none of the deduplication fields {} has a value",
                            names.join(", ")
                        ),
                    )
                }),
            _ => {
                if let Some((name, _)) = values.iter().find(|(_, text)| text.is_none()) {
                    return Err(Issue::new(
                        ErrorCode::MissingDedupField,
                        format!("the deduplication field `{name}` has no value"),
                    )
                    .at(name));
                }
                let parts: Vec<&str> = values
                    .iter()
                    .flat_map(|(name, text)| [*name, text.as_deref().unwrap_or_default()])
                    .collect();
                Ok(short_digest(&["composite:"], parts))
            }
        }
    }
}

/// The entity as serde_json would write the map of its fields, without building the map:
/// members in target field order (the plan's `output_order`); of several mappings of one
/// target field, the last that produced a value.
struct Entity<'e, 'v> {
    fields: &'e [Field],
    output_order: &'e [usize],
    values: &'e [Option<Val<'v>>],
}

impl serde::Serialize for Entity<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        let mut order = self.output_order.iter().peekable();
        while let Some(&first) = order.next() {
            let target = &self.fields[first].target;
            let mut value = self.values.get(first).and_then(Option::as_ref);
            // Equal targets are adjacent in `output_order`, in schema order.
            while let Some(&&next) = order.peek() {
                if self.fields[next].target != *target {
                    break;
                }
                value = self.values.get(next).and_then(Option::as_ref).or(value);
                order.next();
            }
            if let Some(value) = value {
                map.serialize_entry(target, &value.as_json())?;
            }
        }
        map.end()
    }
}

/// The value of `target` in the entity, as JSON (see [`Entity`]).
fn entity_value(fields: &[Field], produced: &[Option<Val<'_>>], target: &str) -> Option<Value> {
    fields
        .iter()
        .zip(produced)
        .rev()
        .filter(|(field, _)| field.target == target)
        .find_map(|(_, value)| value.as_ref())
        .map(Val::to_json)
}

fn missing_task_value(key: &str) -> Issue {
    Issue::new(
        ErrorCode::MissingTaskValue,
        format!("`{{{{task.{key}}}}}`: the sync task's config has no `{key}`"),
    )
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Eq(_) => "eq",
        Op::Neq(_) => "neq",
        Op::Gt(_) => "gt",
        Op::Gte(_) => "gte",
        Op::Lt(_) => "lt",
        Op::Lte(_) => "lte",
        Op::Contains(_) => "contains",
        Op::StartsWith(_) => "starts_with",
        Op::EndsWith(_) => "ends_with",
        Op::In(_) => "in",
        Op::NotIn(_) => "not_in",
        Op::Exists => "exists",
        Op::NotExists => "not_exists",
        Op::Custom(_) => "custom",
    }
}

/// Text or a number; empty text counts as no id.
fn external_id_of(path: &Path, root: View<'_>) -> Result<Option<String>, Issue> {
    match path.get(root).map(Val::from_view) {
        None | Some(Val::Null) => Ok(None),
        Some(Val::Str(s)) if s.trim().is_empty() => Ok(None),
        Some(Val::Str(s)) => Ok(Some(s.into_owned())),
        Some(Val::Num(n)) => Ok(Some(n.text())),
        Some(other) => Err(Issue::new(
            ErrorCode::InvalidExternalId,
            format!(
                "the external id `{}` is {}, not text or a number",
                path.text(),
                other.kind_name()
            ),
        )),
    }
}

fn relationship_keys(
    relationship: &crate::compile::Relationship,
    root: View<'_>,
) -> Result<Vec<LookupKey>, Issue> {
    let key = |value: String| LookupKey {
        shard_type: relationship.shard_type.clone(),
        field: relationship.lookup_field.clone(),
        value,
    };
    let id_text = |value: Val<'_>| -> Result<Option<String>, Issue> {
        match value {
            Val::Null => Ok(None),
            Val::Str(s) if s.trim().is_empty() => Ok(None),
            Val::Str(s) => Ok(Some(s.into_owned())),
            Val::Num(n) => Ok(Some(n.text())),
            other => Err(Issue::new(
                ErrorCode::InvalidRelationship,
                format!(
                    "a related record's id must be text or a number, got {}",
                    other.kind_name()
                ),
            )),
        }
    };
    let Some(view) = relationship.source.get(root) else {
        return Ok(Vec::new());
    };
    let ids: Vec<String> = match view.array_len() {
        Some(_) => view
            .children()
            .map(|(_, item)| id_text(Val::from_view(item)))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect(),
        None => id_text(Val::from_view(view))?.into_iter().collect(),
    };
    if !relationship.many() && ids.len() > 1 {
        return Err(Issue::new(
            ErrorCode::InvalidRelationship,
            format!("a single-valued relationship got {} ids", ids.len()),
        ));
    }
    Ok(ids.into_iter().map(key).collect())
}

fn composite<'r>(sources: &[Path], join: &Join, root: View<'r>) -> Result<Option<Val<'r>>, Issue> {
    let mut texts: Vec<Option<Cow<'r, str>>> = Vec::with_capacity(sources.len());
    for path in sources {
        let text = match path.get(root).map(Val::from_view) {
            None | Some(Val::Null) => None,
            Some(Val::Str(s)) => Some(s),
            Some(value) => Some(Cow::Owned(
                value
                    .scalar_text()
                    .ok_or_else(|| {
                        Issue::new(
                            ErrorCode::InvalidType,
                            format!(
                                "a composite joins text, `{}` is {}",
                                path.text(),
                                value.kind_name()
                            ),
                        )
                        .at(path.text())
                    })?
                    .into_owned(),
            )),
        };
        texts.push(text);
    }
    if texts.iter().all(|t| t.as_deref().is_none_or(str::is_empty)) {
        return Ok(None);
    }
    let lengths: usize = texts.iter().flatten().map(|t| t.len()).sum();
    let out = match join {
        Join::Separator(separator) => {
            let mut out = String::with_capacity(lengths + separator.len() * texts.len());
            for text in texts.iter().flatten().filter(|t| !t.is_empty()) {
                if !out.is_empty() {
                    out.push_str(separator);
                }
                out.push_str(text);
            }
            out
        }
        Join::Template(pieces) => {
            let literal: usize = pieces
                .iter()
                .map(|piece| match piece {
                    Piece::Text(text) => text.len(),
                    Piece::Field(_) => 0,
                })
                .sum();
            let mut out = String::with_capacity(lengths + literal);
            for piece in pieces {
                match piece {
                    Piece::Text(text) => out.push_str(text),
                    Piece::Field(i) => {
                        out.push_str(texts.get(*i).and_then(|t| t.as_deref()).unwrap_or(""))
                    }
                }
            }
            if texts.iter().any(Option::is_none) {
                // `${FirstName} ${LastName}` without a first name is `Lovelace`, not ` Lovelace`.
                out.trim().to_owned()
            } else {
                out
            }
        }
    };
    Ok(Some(Val::Str(Cow::Owned(out))))
}

/// `eq`: JSON equality with numbers by value; a missing field equals `null`.
fn equals(field: Option<&Val<'_>>, constant: &Val<'_>) -> bool {
    match field {
        None => constant.is_null(),
        Some(value) => loose_equal(value, constant),
    }
}

fn one_of(field: Option<&Val<'_>>, list: &Val<'_>) -> bool {
    let Val::Ref(View::Json(Value::Array(items))) = list else {
        return equals(field, list);
    };
    items
        .iter()
        .any(|item| equals(field, &Val::from_view(View::Json(item))))
}

/// Numbers by value (numeric text counts as a number against a number); text as dates when
/// both sides are ISO 8601 dates, else by Unicode code point.
fn order(field: Option<&Val<'_>>, constant: &Val<'_>) -> Option<Ordering> {
    let field = field?;
    let number = |v: &Val<'_>| match v {
        Val::Num(n) => Some(n.clone()),
        Val::Str(s) => parse_number_text(s),
        _ => None,
    };
    match (field, constant) {
        (Val::Num(a), Val::Num(b)) => Some(compare_numbers(a, b)),
        (Val::Num(_), Val::Str(_)) | (Val::Str(_), Val::Num(_)) => {
            Some(compare_numbers(&number(field)?, &number(constant)?))
        }
        (Val::Str(a), Val::Str(b)) => {
            match (
                date::parse_iso(a.trim(), None),
                date::parse_iso(b.trim(), None),
            ) {
                (Some(x), Some(y)) => Some(x.cmp(&y)),
                _ => Some(a.as_ref().cmp(b.as_ref())),
            }
        }
        (Val::Date(a), other) | (other, Val::Date(a)) => {
            let b = date::to_date(other, None)?;
            let ordering = a.instant.cmp(&b.instant);
            Some(if matches!(field, Val::Date(_)) {
                ordering
            } else {
                ordering.reverse()
            })
        }
        _ => None,
    }
}

/// Text containing the constant's text, or an array containing an equal item.
fn contains(field: Option<&Val<'_>>, constant: &Val<'_>) -> bool {
    match field {
        Some(Val::Str(s)) => constant
            .scalar_text()
            .is_some_and(|c| s.contains(c.as_ref())),
        Some(Val::Ref(view)) if view.array_len().is_some() => view
            .children()
            .any(|(_, item)| loose_equal(&Val::from_view(item), constant)),
        Some(Val::List(items)) => items.iter().any(|item| loose_equal(item, constant)),
        Some(other @ (Val::Num(_) | Val::Date(_))) => {
            match (other.scalar_text(), constant.scalar_text()) {
                (Some(a), Some(b)) => a.contains(b.as_ref()),
                _ => false,
            }
        }
        _ => false,
    }
}

fn text_test(
    field: Option<&Val<'_>>,
    constant: &Val<'_>,
    test: impl Fn(&str, &str) -> bool,
) -> bool {
    match (field.and_then(Val::scalar_text), constant.scalar_text()) {
        (Some(a), Some(b)) => test(&a, &b),
        _ => false,
    }
}

fn check_rule(rule: &CompiledRule, value: &Val<'_>) -> Option<Issue> {
    let fail = |code: ErrorCode, default: String| {
        Some(Issue::new(code, rule.message.clone().unwrap_or(default)))
    };
    let length = || match value {
        Val::Ref(view) => view.array_len(),
        Val::List(items) => Some(items.len()),
        Val::Json(json) => json.as_array().map(Vec::len),
        other => other.scalar_text().map(|t| t.chars().count()),
    };
    match &rule.rule {
        Rule::Required => None,
        Rule::MinLength(min) => match length() {
            Some(n) if n >= *min => None,
            Some(n) => fail(
                ErrorCode::ValidationMinLength,
                format!("is {n} long, shorter than {min}"),
            ),
            None => fail(
                ErrorCode::ValidationMinLength,
                format!("{} has no length", value.kind_name()),
            ),
        },
        Rule::MaxLength(max) => match length() {
            Some(n) if n <= *max => None,
            Some(n) => fail(
                ErrorCode::ValidationMaxLength,
                format!("is {n} long, longer than {max}"),
            ),
            None => fail(
                ErrorCode::ValidationMaxLength,
                format!("{} has no length", value.kind_name()),
            ),
        },
        Rule::Pattern(regex) => match value.scalar_text() {
            Some(text) if regex.is_match(&text) => None,
            _ => fail(
                ErrorCode::ValidationPattern,
                format!("{} does not match `{}`", describe(value), regex.as_str()),
            ),
        },
        Rule::Min(bound, shown) | Rule::Max(bound, shown) => {
            let is_min = matches!(rule.rule, Rule::Min(..));
            let code = if is_min {
                ErrorCode::ValidationMin
            } else {
                ErrorCode::ValidationMax
            };
            let number = match value {
                Val::Num(n) => Some(n.to_decimal()),
                Val::Str(s) => parse_number_text(s).map(|n| n.to_decimal()),
                _ => None,
            };
            match number {
                None => fail(code, format!("{} is not a number", describe(value))),
                Some(n) if is_min && n < *bound => {
                    fail(code, format!("{} is less than {shown}", describe(value)))
                }
                Some(n) if !is_min && n > *bound => {
                    fail(code, format!("{} is more than {shown}", describe(value)))
                }
                Some(_) => None,
            }
        }
        Rule::Email => match value.scalar_text() {
            Some(text) if is_email(&text) => None,
            _ => fail(
                ErrorCode::ValidationEmail,
                format!("{} is not an e-mail address", describe(value)),
            ),
        },
        Rule::Url => match value.scalar_text() {
            Some(text) if is_url(&text) => None,
            _ => fail(
                ErrorCode::ValidationUrl,
                format!("{} is not a URL", describe(value)),
            ),
        },
        Rule::Enum(values) => {
            if values
                .iter()
                .any(|v| loose_equal(value, &Val::from_view(View::Json(v))))
            {
                None
            } else {
                fail(
                    ErrorCode::ValidationEnum,
                    format!("{} is not one of the allowed values", describe(value)),
                )
            }
        }
    }
}

/// `local@domain.tld`: no whitespace, a non-empty local part, a domain of at least two
/// non-empty labels that do not start or end with `-`.
pub(crate) fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    let labels: Vec<&str> = domain.split('.').collect();
    !local.is_empty()
        && local.len() <= 64
        && !text.chars().any(char::is_whitespace)
        && labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

/// `scheme://host...` with a letter-led scheme, a non-empty host and no whitespace.
pub(crate) fn is_url(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
        && !host.is_empty()
        && !text.chars().any(char::is_whitespace)
}
