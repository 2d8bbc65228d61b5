//! Renders the port's conditions, updates and sort-key conditions into DynamoDB expressions.
//!
//! Names and values always go through placeholders (`#n0`, `:v0`), so no attribute name needs
//! escaping and no value is ever spliced into an expression. Conditions are first lowered into a
//! small tree in which constant parts are folded away: DynamoDB rejects placeholders that an
//! expression does not use, and it has no `true`/`false` literals.
//!
//! Comparisons are rendered with an explicit `attribute_type` guard. Real DynamoDB already
//! treats cross-type comparisons as false, but moto compares Python values (so `true = 1` holds
//! and `"a" < 1` is a server error); the guard makes both agree with [`Condition::evaluate`].

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use hub_core::ports::{CmpOp, Condition, EXPIRES_AT, PK, SortCondition, UpdateAction};
use serde_json::Value;

use crate::convert::to_attribute;

/// The placeholder maps shared by every expression of one request.
#[derive(Debug, Default)]
pub struct Placeholders {
    names: HashMap<String, String>,
    placeholder_of_name: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    placeholder_of_type: HashMap<&'static str, String>,
    now_placeholder: Option<String>,
    now: i64,
}

impl Placeholders {
    /// `now` (epoch seconds) is what the TTL part of write conditions compares `expiresAt` with.
    pub fn new(now: i64) -> Self {
        Self {
            now,
            ..Self::default()
        }
    }

    pub fn name(&mut self, attribute: &str) -> String {
        if let Some(placeholder) = self.placeholder_of_name.get(attribute) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), attribute.to_owned());
        self.placeholder_of_name
            .insert(attribute.to_owned(), placeholder.clone());
        placeholder
    }

    pub fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    fn type_tag(&mut self, tag: &'static str) -> String {
        if let Some(placeholder) = self.placeholder_of_type.get(tag) {
            return placeholder.clone();
        }
        let placeholder = self.value(AttributeValue::S(tag.to_owned()));
        self.placeholder_of_type.insert(tag, placeholder.clone());
        placeholder
    }

    fn now(&mut self) -> String {
        if let Some(placeholder) = &self.now_placeholder {
            return placeholder.clone();
        }
        let placeholder = self.value(AttributeValue::N(self.now.to_string()));
        self.now_placeholder = Some(placeholder.clone());
        placeholder
    }

    /// `ExpressionAttributeNames`, or `None` when empty (DynamoDB rejects an empty map).
    pub fn take_names(&mut self) -> Option<HashMap<String, String>> {
        let names = std::mem::take(&mut self.names);
        (!names.is_empty()).then_some(names)
    }

    /// `ExpressionAttributeValues`, or `None` when empty.
    pub fn take_values(&mut self) -> Option<HashMap<String, AttributeValue>> {
        let values = std::mem::take(&mut self.values);
        (!values.is_empty()).then_some(values)
    }
}

/// A condition with its constant parts folded away; `Const` only ever appears at the root.
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    Const(bool),
    Exists(&'a str),
    NotExists(&'a str),
    /// Same JSON type and equal.
    Equals(&'a str, &'a Value),
    /// Same JSON type (number or string) and ordered as `CmpOp` says.
    Ordered(&'a str, CmpOp, &'a Value),
    IsString(&'a str),
    BeginsWith(&'a str, &'a str),
    /// `expiresAt` is a number at or before now.
    Expired,
    And(Vec<Node<'a>>),
    Or(Vec<Node<'a>>),
    Not(Box<Node<'a>>),
}

pub fn lower(condition: &Condition) -> Node<'_> {
    match condition {
        Condition::Exists(name) => Node::Exists(name),
        Condition::NotExists(name) => Node::NotExists(name),
        Condition::Compare(name, CmpOp::Eq, value) => Node::Equals(name, value),
        Condition::Compare(name, CmpOp::Ne, value) => not(Node::Equals(name, value)),
        Condition::Compare(name, op, value) => match value {
            Value::Number(_) | Value::String(_) => Node::Ordered(name, *op, value),
            // Booleans, null, arrays and objects have no order: the comparison never holds.
            Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => Node::Const(false),
        },
        Condition::BeginsWith(name, prefix) if prefix.is_empty() => Node::IsString(name),
        Condition::BeginsWith(name, prefix) => Node::BeginsWith(name, prefix),
        Condition::And(all) => and(all.iter().map(lower).collect()),
        Condition::Or(any) => or(any.iter().map(lower).collect()),
        Condition::Not(inner) => not(lower(inner)),
    }
}

pub fn and(nodes: Vec<Node<'_>>) -> Node<'_> {
    let mut kept = Vec::with_capacity(nodes.len());
    for node in nodes {
        match node {
            Node::Const(false) => return Node::Const(false),
            Node::Const(true) => {}
            Node::And(inner) => kept.extend(inner),
            other => kept.push(other),
        }
    }
    match kept.len() {
        0 => Node::Const(true),
        1 => kept.pop().unwrap_or(Node::Const(true)),
        _ => Node::And(kept),
    }
}

pub fn or(nodes: Vec<Node<'_>>) -> Node<'_> {
    let mut kept = Vec::with_capacity(nodes.len());
    for node in nodes {
        match node {
            Node::Const(true) => return Node::Const(true),
            Node::Const(false) => {}
            Node::Or(inner) => kept.extend(inner),
            other => kept.push(other),
        }
    }
    match kept.len() {
        0 => Node::Const(false),
        1 => kept.pop().unwrap_or(Node::Const(false)),
        _ => Node::Or(kept),
    }
}

pub fn not(node: Node<'_>) -> Node<'_> {
    match node {
        Node::Const(b) => Node::Const(!b),
        Node::Not(inner) => *inner,
        other => Node::Not(Box::new(other)),
    }
}

/// The condition of a write, with the TTL rule of the port: an expired item is absent for
/// conditions too. `C` becomes `(C(absent) AND expired) OR (NOT expired AND C)`, where
/// `C(absent)` is the constant [`Condition::evaluate`] gives on no item.
pub fn write_condition(condition: Option<&Condition>) -> Node<'_> {
    let Some(condition) = condition else {
        return Node::Const(true);
    };
    // With `C(absent)` constant the rewrite simplifies to `expired OR C` (true on absent) or
    // `NOT expired AND C` (false on absent).
    if condition.evaluate(None) {
        or(vec![Node::Expired, lower(condition)])
    } else {
        and(vec![not(Node::Expired), lower(condition)])
    }
}

/// The expression for a node; `None` when it always holds (no condition needed).
pub fn render_optional(node: &Node<'_>, placeholders: &mut Placeholders) -> Option<String> {
    match node {
        Node::Const(true) => None,
        other => Some(render(other, placeholders)),
    }
}

/// The expression for a node, also when it is constant (a transaction's check needs one).
pub fn render(node: &Node<'_>, p: &mut Placeholders) -> String {
    match node {
        // `pk` exists on every stored item and is absent otherwise: these never depend on data.
        Node::Const(true) => {
            let pk = p.name(PK);
            format!("(attribute_exists({pk}) OR attribute_not_exists({pk}))")
        }
        Node::Const(false) => {
            let pk = p.name(PK);
            format!("(attribute_exists({pk}) AND attribute_not_exists({pk}))")
        }
        Node::Exists(name) => format!("attribute_exists({})", p.name(name)),
        Node::NotExists(name) => format!("attribute_not_exists({})", p.name(name)),
        Node::Equals(name, Value::Null) => {
            let name = p.name(name);
            format!("attribute_type({name}, {})", p.type_tag("NULL"))
        }
        Node::Equals(name, value) => {
            let name = p.name(name);
            let tag = p.type_tag(type_tag(value));
            let value = p.value(to_attribute(value));
            format!("(attribute_type({name}, {tag}) AND {name} = {value})")
        }
        Node::Ordered(name, op, value) => {
            let name = p.name(name);
            let tag = p.type_tag(type_tag(value));
            let value = p.value(to_attribute(value));
            let op = match op {
                CmpOp::Eq => "=",
                CmpOp::Ne => "<>",
                CmpOp::Lt => "<",
                CmpOp::Le => "<=",
                CmpOp::Gt => ">",
                CmpOp::Ge => ">=",
            };
            format!("(attribute_type({name}, {tag}) AND {name} {op} {value})")
        }
        Node::IsString(name) => {
            let name = p.name(name);
            format!("attribute_type({name}, {})", p.type_tag("S"))
        }
        Node::BeginsWith(name, prefix) => {
            let name = p.name(name);
            let prefix = p.value(AttributeValue::S((*prefix).to_owned()));
            format!("begins_with({name}, {prefix})")
        }
        Node::Expired => {
            let name = p.name(EXPIRES_AT);
            let tag = p.type_tag("N");
            let now = p.now();
            format!("(attribute_type({name}, {tag}) AND {name} <= {now})")
        }
        Node::And(all) => join(all, " AND ", p),
        Node::Or(any) => join(any, " OR ", p),
        Node::Not(inner) => format!("(NOT {})", render(inner, p)),
    }
}

fn join(nodes: &[Node<'_>], separator: &str, p: &mut Placeholders) -> String {
    let parts: Vec<String> = nodes.iter().map(|node| render(node, p)).collect();
    format!("({})", parts.join(separator))
}

fn type_tag(value: &Value) -> &'static str {
    match value {
        Value::Null => "NULL",
        Value::Bool(_) => "BOOL",
        Value::Number(_) => "N",
        Value::String(_) => "S",
        Value::Array(_) => "L",
        Value::Object(_) => "M",
    }
}

/// `SET a = :v, b = if_not_exists(b, :w) ADD c :n REMOVE d`.
pub fn update_expression(actions: &[UpdateAction], p: &mut Placeholders) -> String {
    let mut sets = Vec::new();
    let mut adds = Vec::new();
    let mut removes = Vec::new();
    for action in actions {
        match action {
            UpdateAction::Set(name, value) => {
                let name = p.name(name);
                let value = p.value(to_attribute(value));
                sets.push(format!("{name} = {value}"));
            }
            UpdateAction::SetIfNotExists(name, value) => {
                let name = p.name(name);
                let value = p.value(to_attribute(value));
                sets.push(format!("{name} = if_not_exists({name}, {value})"));
            }
            UpdateAction::Add(name, delta) => {
                let name = p.name(name);
                let value = p.value(AttributeValue::N(delta.to_string()));
                adds.push(format!("{name} {value}"));
            }
            UpdateAction::Remove(name) => removes.push(p.name(name)),
        }
    }
    let mut clauses = Vec::new();
    for (keyword, parts) in [("SET", sets), ("ADD", adds), ("REMOVE", removes)] {
        if !parts.is_empty() {
            clauses.push(format!("{keyword} {}", parts.join(", ")));
        }
    }
    clauses.join(" ")
}

/// What a sort-key condition selects, after the cases DynamoDB would reject (empty strings in
/// key conditions, an inverted `BETWEEN`) are resolved the way [`SortCondition::matches`] does.
#[derive(Debug, PartialEq)]
pub enum SortClause {
    /// No sort key can match: the query is empty without asking the service.
    Nothing,
    Everything,
    Expression(String),
}

pub fn sort_clause(sort: &SortCondition, key: &str, p: &mut Placeholders) -> SortClause {
    let compare = |op: &str, value: &str, p: &mut Placeholders| {
        let name = p.name(key);
        let value = p.value(AttributeValue::S(value.to_owned()));
        SortClause::Expression(format!("{name} {op} {value}"))
    };
    // Stored sort keys are never empty, which decides every comparison with "".
    match sort {
        SortCondition::Eq(v) | SortCondition::Lt(v) | SortCondition::Le(v) if v.is_empty() => {
            SortClause::Nothing
        }
        SortCondition::Gt(v) | SortCondition::Ge(v) | SortCondition::BeginsWith(v)
            if v.is_empty() =>
        {
            SortClause::Everything
        }
        SortCondition::Eq(v) => compare("=", v, p),
        SortCondition::Lt(v) => compare("<", v, p),
        SortCondition::Le(v) => compare("<=", v, p),
        SortCondition::Gt(v) => compare(">", v, p),
        SortCondition::Ge(v) => compare(">=", v, p),
        SortCondition::BeginsWith(prefix) => {
            let name = p.name(key);
            let value = p.value(AttributeValue::S(prefix.clone()));
            SortClause::Expression(format!("begins_with({name}, {value})"))
        }
        SortCondition::Between(low, high) if low.as_bytes() > high.as_bytes() => {
            SortClause::Nothing
        }
        SortCondition::Between(_, high) if high.is_empty() => SortClause::Nothing,
        SortCondition::Between(low, high) if low.is_empty() => compare("<=", high, p),
        SortCondition::Between(low, high) => {
            let name = p.name(key);
            let low = p.value(AttributeValue::S(low.clone()));
            let high = p.value(AttributeValue::S(high.clone()));
            SortClause::Expression(format!("{name} BETWEEN {low} AND {high}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rendered(condition: &Condition) -> (Option<String>, Placeholders) {
        let mut p = Placeholders::new(1_000);
        let node = lower(condition);
        (render_optional(&node, &mut p), p)
    }

    #[test]
    fn names_and_values_only_appear_as_placeholders() {
        let condition = Condition::eq("status.with dots", "O'Brien; DROP").and(Condition::cmp(
            "n",
            CmpOp::Gt,
            5,
        ));
        let (expression, mut p) = rendered(&condition);
        let expression = expression.unwrap();
        assert!(!expression.contains("status"), "{expression}");
        assert!(!expression.contains("O'Brien"), "{expression}");
        assert_eq!(
            expression,
            "((attribute_type(#n0, :v0) AND #n0 = :v1) AND (attribute_type(#n1, :v2) AND #n1 > :v3))"
        );
        let names = p.take_names().unwrap();
        assert_eq!(names["#n0"], "status.with dots");
        let values = p.take_values().unwrap();
        assert_eq!(values[":v1"], AttributeValue::S("O'Brien; DROP".into()));
        assert_eq!(values[":v3"], AttributeValue::N("5".into()));
    }

    #[test]
    fn a_repeated_name_gets_one_placeholder() {
        let condition = Condition::Exists("a".into()).or(Condition::NotExists("a".into()));
        let (expression, mut p) = rendered(&condition);
        assert_eq!(
            expression.unwrap(),
            "(attribute_exists(#n0) OR attribute_not_exists(#n0))"
        );
        assert_eq!(p.take_names().unwrap().len(), 1);
        assert!(p.take_values().is_none());
    }

    #[test]
    fn constant_parts_fold_away_without_unused_placeholders() {
        // Ordering a boolean never holds: the whole AND is false, the OR keeps the other side.
        let never = Condition::cmp("b", CmpOp::Lt, true);
        assert_eq!(lower(&never), Node::Const(false));
        let condition = never.clone().and(Condition::Exists("x".into()));
        assert_eq!(lower(&condition), Node::Const(false));
        let condition = never.or(Condition::Exists("x".into()));
        let (expression, mut p) = rendered(&condition);
        assert_eq!(expression.unwrap(), "attribute_exists(#n0)");
        assert_eq!(p.take_names().unwrap().len(), 1);
        assert_eq!(lower(&Condition::And(vec![])), Node::Const(true));
        assert_eq!(lower(&Condition::Or(vec![])), Node::Const(false));
        assert_eq!(
            lower(&Condition::Not(Box::new(Condition::Or(vec![])))),
            Node::Const(true)
        );
    }

    #[test]
    fn not_equal_is_the_negation_of_typed_equality() {
        let (expression, _) = rendered(&Condition::cmp("a", CmpOp::Ne, 1));
        assert_eq!(
            expression.unwrap(),
            "(NOT (attribute_type(#n0, :v0) AND #n0 = :v1))"
        );
        let (expression, _) = rendered(&Condition::eq("a", json!(null)));
        assert_eq!(expression.unwrap(), "attribute_type(#n0, :v0)");
    }

    #[test]
    fn write_conditions_treat_expired_items_as_absent() {
        let mut p = Placeholders::new(1_000);
        // True on an absent item: expired items pass, live items must satisfy the condition.
        let absent = Condition::item_absent();
        let node = write_condition(Some(&absent));
        assert_eq!(
            render(&node, &mut p),
            "((attribute_type(#n0, :v0) AND #n0 <= :v1) OR attribute_not_exists(#n1))"
        );
        let values = p.take_values().unwrap();
        assert_eq!(values[":v1"], AttributeValue::N("1000".into()));

        let mut p = Placeholders::new(1_000);
        // False on an absent item: expired items fail, live items must satisfy the condition.
        let present = Condition::item_present();
        let node = write_condition(Some(&present));
        assert_eq!(
            render(&node, &mut p),
            "((NOT (attribute_type(#n0, :v0) AND #n0 <= :v1)) AND attribute_exists(#n1))"
        );
        assert_eq!(write_condition(None), Node::Const(true));
    }

    #[test]
    fn constant_write_conditions_still_render_for_transaction_checks() {
        let mut p = Placeholders::new(0);
        let empty = Condition::And(vec![]);
        let always = write_condition(Some(&empty));
        assert_eq!(always, Node::Const(true));
        assert_eq!(render_optional(&always, &mut p), None);
        assert_eq!(
            render(&always, &mut p),
            "(attribute_exists(#n0) OR attribute_not_exists(#n0))"
        );
    }

    #[test]
    fn updates_group_actions_by_clause() {
        let mut p = Placeholders::new(0);
        let expression = update_expression(
            &[
                UpdateAction::Add("count".into(), 2),
                UpdateAction::Set("name".into(), json!("x")),
                UpdateAction::Remove("old".into()),
                UpdateAction::SetIfNotExists("created".into(), json!(7)),
            ],
            &mut p,
        );
        assert_eq!(
            expression,
            "SET #n1 = :v1, #n3 = if_not_exists(#n3, :v2) ADD #n0 :v0 REMOVE #n2"
        );
    }

    #[test]
    fn sort_clauses_resolve_what_dynamodb_would_reject() {
        let mut p = Placeholders::new(0);
        let clause = |s: SortCondition, p: &mut Placeholders| sort_clause(&s, "sk", p);
        assert_eq!(
            clause(SortCondition::Eq(String::new()), &mut p),
            SortClause::Nothing
        );
        assert_eq!(
            clause(SortCondition::BeginsWith(String::new()), &mut p),
            SortClause::Everything
        );
        assert_eq!(
            clause(SortCondition::Between("b".into(), "a".into()), &mut p),
            SortClause::Nothing
        );
        assert_eq!(
            clause(SortCondition::Between(String::new(), "m".into()), &mut p),
            SortClause::Expression("#n0 <= :v0".into())
        );
        assert_eq!(
            clause(SortCondition::Between("a".into(), "m".into()), &mut p),
            SortClause::Expression("#n0 BETWEEN :v1 AND :v2".into())
        );
        assert_eq!(
            clause(SortCondition::BeginsWith("x#".into()), &mut p),
            SortClause::Expression("begins_with(#n0, :v3)".into())
        );
    }
}
