//! EventBridge event patterns: parsed once (so a bad pattern fails `put_rule`, as it does on
//! EventBridge) and matched against the envelope JSON of an event.
//!
//! Supported: literal lists (strings, numbers, booleans, null), nested objects, array fields
//! (an array matches when any element does), `prefix` and `suffix` (optionally
//! `{"equals-ignore-case": ..}`), `anything-but` (a value, a list, or `prefix` / `suffix` /
//! `equals-ignore-case` / `wildcard`), `exists`, `numeric` ranges, `equals-ignore-case`,
//! `wildcard`, `cidr` and `$or`. Matching follows EventBridge's flattened view of the event: a
//! pattern path that runs through a missing object or a scalar finds no value there.

use std::net::IpAddr;

use serde_json::{Map, Value};

/// Why a pattern was rejected; the message names the path of the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event pattern at `{path}`: {reason}")]
pub struct PatternError {
    pub path: String,
    pub reason: String,
}

/// A parsed event pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPattern {
    root: ObjectPattern,
}

#[derive(Debug, Clone, PartialEq)]
struct ObjectPattern {
    fields: Vec<(String, FieldPattern)>,
    /// Each `$or` is a list of alternatives; every `$or` of an object must hold.
    any_of: Vec<Vec<ObjectPattern>>,
}

#[derive(Debug, Clone, PartialEq)]
enum FieldPattern {
    Nested(ObjectPattern),
    Leaf(Vec<Matcher>),
}

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    Exact(Value),
    Prefix { prefix: String, ignore_case: bool },
    Suffix { suffix: String, ignore_case: bool },
    EqualsIgnoreCase(String),
    Wildcard(Wildcard),
    AnythingBut(AnythingBut),
    Numeric(Vec<(NumericOp, f64)>),
    Exists(bool),
    Cidr(Cidr),
}

#[derive(Debug, Clone, PartialEq)]
enum AnythingBut {
    Values(Vec<Value>),
    Prefix(String),
    Suffix(String),
    EqualsIgnoreCase(Vec<String>),
    Wildcard(Vec<Wildcard>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum NumericOp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A wildcard pattern split at its unescaped `*`s.
#[derive(Debug, Clone, PartialEq)]
struct Wildcard {
    literals: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

impl EventPattern {
    /// Parses a pattern as `PutRule` would, rejecting what EventBridge rejects.
    pub fn parse(pattern: &Value) -> Result<Self, PatternError> {
        let Value::Object(map) = pattern else {
            return Err(error("$", "a pattern must be a JSON object"));
        };
        if map.is_empty() {
            return Err(error("$", "a pattern must not be empty"));
        }
        Ok(Self {
            root: ObjectPattern::parse(map, "$")?,
        })
    }

    /// Whether the pattern looks at this member of the envelope (`detail`, `source`), so a
    /// caller parses the detail only for the patterns that read it.
    pub fn reads(&self, member: &str) -> bool {
        self.root.names(member)
    }

    /// Whether the event (the envelope as JSON) matches.
    pub fn matches(&self, event: &Value) -> bool {
        match event {
            Value::Object(map) => self.root.matches(map),
            _ => self.root.matches(&Map::new()),
        }
    }
}

fn error(path: &str, reason: impl Into<String>) -> PatternError {
    PatternError {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

impl ObjectPattern {
    fn parse(map: &Map<String, Value>, path: &str) -> Result<Self, PatternError> {
        let mut fields = Vec::new();
        let mut any_of = Vec::new();
        for (name, value) in map {
            let field_path = format!("{path}.{name}");
            if name == "$or" {
                any_of.push(parse_or(value, &field_path)?);
                continue;
            }
            let field = match value {
                Value::Object(nested) if nested.is_empty() => {
                    return Err(error(&field_path, "an object must not be empty"));
                }
                Value::Object(nested) => {
                    FieldPattern::Nested(ObjectPattern::parse(nested, &field_path)?)
                }
                Value::Array(items) if items.is_empty() => {
                    return Err(error(&field_path, "a list of values must not be empty"));
                }
                Value::Array(items) => FieldPattern::Leaf(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| Matcher::parse(item, &format!("{field_path}[{i}]")))
                        .collect::<Result<_, _>>()?,
                ),
                _ => {
                    return Err(error(
                        &field_path,
                        "match values must be in a list, e.g. [\"value\"]",
                    ));
                }
            };
            fields.push((name.clone(), field));
        }
        Ok(Self { fields, any_of })
    }

    fn names(&self, member: &str) -> bool {
        self.fields.iter().any(|(name, _)| name == member)
            || self
                .any_of
                .iter()
                .flatten()
                .any(|alternative| alternative.names(member))
    }

    fn matches(&self, event: &Map<String, Value>) -> bool {
        self.fields
            .iter()
            .all(|(name, field)| field.matches(event.get(name)))
            && self
                .any_of
                .iter()
                .all(|alternatives| alternatives.iter().any(|p| p.matches(event)))
    }
}

fn parse_or(value: &Value, path: &str) -> Result<Vec<ObjectPattern>, PatternError> {
    let Value::Array(alternatives) = value else {
        return Err(error(path, "`$or` takes a list of patterns"));
    };
    if alternatives.len() < 2 {
        return Err(error(path, "`$or` needs at least two patterns"));
    }
    alternatives
        .iter()
        .enumerate()
        .map(|(i, alternative)| {
            let alt_path = format!("{path}[{i}]");
            match alternative {
                Value::Object(map) if !map.is_empty() => ObjectPattern::parse(map, &alt_path),
                _ => Err(error(&alt_path, "each `$or` pattern is a non-empty object")),
            }
        })
        .collect()
}

impl FieldPattern {
    fn matches(&self, value: Option<&Value>) -> bool {
        match self {
            Self::Nested(pattern) => match value {
                Some(Value::Object(map)) => pattern.matches(map),
                Some(Value::Array(items)) if !items.is_empty() => {
                    items.iter().any(|item| match item {
                        Value::Object(map) => pattern.matches(map),
                        _ => pattern.matches(&Map::new()),
                    })
                }
                // The flattened event has no leaves under this path.
                _ => pattern.matches(&Map::new()),
            },
            Self::Leaf(matchers) => {
                let leaves: Vec<&Value> = match value {
                    None | Some(Value::Object(_)) => Vec::new(),
                    Some(Value::Array(items)) => items
                        .iter()
                        .filter(|item| !matches!(item, Value::Object(_) | Value::Array(_)))
                        .collect(),
                    Some(leaf) => vec![leaf],
                };
                if leaves.is_empty() {
                    matchers.iter().any(Matcher::matches_missing)
                } else {
                    leaves
                        .iter()
                        .any(|leaf| matchers.iter().any(|m| m.matches(leaf)))
                }
            }
        }
    }
}

impl Matcher {
    fn parse(value: &Value, path: &str) -> Result<Self, PatternError> {
        match value {
            Value::String(_) | Value::Bool(_) | Value::Null => Ok(Self::Exact(value.clone())),
            Value::Number(n) => {
                n.as_f64()
                    .ok_or_else(|| error(path, "a number must be finite"))?;
                Ok(Self::Exact(value.clone()))
            }
            Value::Array(_) => Err(error(path, "lists cannot be nested")),
            Value::Object(map) => {
                let mut entries = map.iter();
                let (Some((operator, operand)), None) = (entries.next(), entries.next()) else {
                    return Err(error(path, "a matcher object holds exactly one operator"));
                };
                let path = format!("{path}.{operator}");
                let path = path.as_str();
                match operator.as_str() {
                    "prefix" => {
                        let (prefix, ignore_case) = string_or_ignore_case(operand, path)?;
                        Ok(Self::Prefix {
                            prefix,
                            ignore_case,
                        })
                    }
                    "suffix" => {
                        let (suffix, ignore_case) = string_or_ignore_case(operand, path)?;
                        Ok(Self::Suffix {
                            suffix,
                            ignore_case,
                        })
                    }
                    "equals-ignore-case" => Ok(Self::EqualsIgnoreCase(
                        string_operand(operand, path)?.to_lowercase(),
                    )),
                    "wildcard" => Ok(Self::Wildcard(Wildcard::parse(
                        string_operand(operand, path)?,
                        path,
                    )?)),
                    "anything-but" => Ok(Self::AnythingBut(AnythingBut::parse(operand, path)?)),
                    "numeric" => Ok(Self::Numeric(parse_numeric(operand, path)?)),
                    "exists" => match operand {
                        Value::Bool(b) => Ok(Self::Exists(*b)),
                        _ => Err(error(path, "`exists` takes true or false")),
                    },
                    "cidr" => Ok(Self::Cidr(Cidr::parse(
                        string_operand(operand, path)?,
                        path,
                    )?)),
                    other => Err(error(path, format!("unknown operator `{other}`"))),
                }
            }
        }
    }

    fn matches_missing(&self) -> bool {
        matches!(self, Self::Exists(false))
    }

    fn matches(&self, value: &Value) -> bool {
        match self {
            Self::Exact(expected) => literal_equals(expected, value),
            Self::Prefix {
                prefix,
                ignore_case,
            } => value.as_str().is_some_and(|s| {
                if *ignore_case {
                    s.to_lowercase().starts_with(prefix.as_str())
                } else {
                    s.starts_with(prefix.as_str())
                }
            }),
            Self::Suffix {
                suffix,
                ignore_case,
            } => value.as_str().is_some_and(|s| {
                if *ignore_case {
                    s.to_lowercase().ends_with(suffix.as_str())
                } else {
                    s.ends_with(suffix.as_str())
                }
            }),
            Self::EqualsIgnoreCase(expected) => value
                .as_str()
                .is_some_and(|s| s.to_lowercase() == *expected),
            Self::Wildcard(wildcard) => value.as_str().is_some_and(|s| wildcard.matches(s)),
            Self::AnythingBut(but) => but.matches(value),
            Self::Numeric(conditions) => value.as_f64().is_some_and(|n| {
                conditions.iter().all(|(op, bound)| match op {
                    NumericOp::Eq => n == *bound,
                    NumericOp::Lt => n < *bound,
                    NumericOp::Le => n <= *bound,
                    NumericOp::Gt => n > *bound,
                    NumericOp::Ge => n >= *bound,
                })
            }),
            Self::Exists(expected) => *expected,
            Self::Cidr(cidr) => value
                .as_str()
                .and_then(|s| s.parse::<IpAddr>().ok())
                .is_some_and(|ip| cidr.contains(ip)),
        }
    }
}

/// Strings, booleans and null compare as JSON values; numbers numerically (`5` matches `5.0`).
fn literal_equals(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => expected == actual,
    }
}

fn string_operand<'a>(operand: &'a Value, path: &str) -> Result<&'a str, PatternError> {
    operand
        .as_str()
        .ok_or_else(|| error(path, "the operand must be a string"))
}

/// `"text"` or `{"equals-ignore-case": "text"}` (for `prefix` and `suffix`); the text is
/// lowercased when case is ignored.
fn string_or_ignore_case(operand: &Value, path: &str) -> Result<(String, bool), PatternError> {
    match operand {
        Value::String(s) => Ok((s.clone(), false)),
        Value::Object(map) if map.len() == 1 => match map.get("equals-ignore-case") {
            Some(Value::String(s)) => Ok((s.to_lowercase(), true)),
            _ => Err(error(
                path,
                "the operand is a string or {\"equals-ignore-case\": string}",
            )),
        },
        _ => Err(error(
            path,
            "the operand is a string or {\"equals-ignore-case\": string}",
        )),
    }
}

impl AnythingBut {
    fn parse(operand: &Value, path: &str) -> Result<Self, PatternError> {
        let literal = |value: &Value, path: &str| match value {
            Value::String(_) => Ok(value.clone()),
            Value::Number(n) if n.as_f64().is_some() => Ok(value.clone()),
            _ => Err(error(path, "`anything-but` values are strings or numbers")),
        };
        match operand {
            Value::Array(items) if items.is_empty() => {
                Err(error(path, "`anything-but` needs at least one value"))
            }
            Value::Array(items) => Ok(Self::Values(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| literal(item, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            )),
            Value::Object(map) => {
                let mut entries = map.iter();
                let (Some((operator, inner)), None) = (entries.next(), entries.next()) else {
                    return Err(error(path, "`anything-but` holds exactly one operator"));
                };
                let path = format!("{path}.{operator}");
                let path = path.as_str();
                match operator.as_str() {
                    "prefix" => Ok(Self::Prefix(string_operand(inner, path)?.to_owned())),
                    "suffix" => Ok(Self::Suffix(string_operand(inner, path)?.to_owned())),
                    "equals-ignore-case" => Ok(Self::EqualsIgnoreCase(
                        strings_operand(inner, path)?
                            .into_iter()
                            .map(|s| s.to_lowercase())
                            .collect(),
                    )),
                    "wildcard" => Ok(Self::Wildcard(
                        strings_operand(inner, path)?
                            .into_iter()
                            .map(|s| Wildcard::parse(&s, path))
                            .collect::<Result<_, _>>()?,
                    )),
                    other => Err(error(
                        path,
                        format!("`anything-but` does not support `{other}`"),
                    )),
                }
            }
            other => Ok(Self::Values(vec![literal(other, path)?])),
        }
    }

    fn matches(&self, value: &Value) -> bool {
        match self {
            Self::Values(excluded) => !excluded.iter().any(|e| literal_equals(e, value)),
            Self::Prefix(prefix) => !value.as_str().is_some_and(|s| s.starts_with(prefix)),
            Self::Suffix(suffix) => !value.as_str().is_some_and(|s| s.ends_with(suffix)),
            Self::EqualsIgnoreCase(excluded) => !value
                .as_str()
                .is_some_and(|s| excluded.contains(&s.to_lowercase())),
            Self::Wildcard(excluded) => !value
                .as_str()
                .is_some_and(|s| excluded.iter().any(|w| w.matches(s))),
        }
    }
}

fn strings_operand(operand: &Value, path: &str) -> Result<Vec<String>, PatternError> {
    match operand {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| error(path, "the operand must be a list of strings"))
            })
            .collect(),
        _ => Err(error(path, "the operand is a string or a list of strings")),
    }
}

fn parse_numeric(operand: &Value, path: &str) -> Result<Vec<(NumericOp, f64)>, PatternError> {
    let Value::Array(items) = operand else {
        return Err(error(
            path,
            "`numeric` takes a list such as [\">\", 0, \"<=\", 5]",
        ));
    };
    if items.is_empty() || items.len() % 2 != 0 || items.len() > 4 {
        return Err(error(
            path,
            "`numeric` takes one or two (operator, number) pairs",
        ));
    }
    items
        .chunks(2)
        .map(|pair| {
            let op = match pair[0].as_str() {
                Some("=") => NumericOp::Eq,
                Some("<") => NumericOp::Lt,
                Some("<=") => NumericOp::Le,
                Some(">") => NumericOp::Gt,
                Some(">=") => NumericOp::Ge,
                _ => {
                    return Err(error(path, "numeric operators are =, <, <=, > and >="));
                }
            };
            let bound = pair[1]
                .as_f64()
                .ok_or_else(|| error(path, "a numeric bound must be a number"))?;
            Ok((op, bound))
        })
        .collect()
}

impl Wildcard {
    fn parse(pattern: &str, path: &str) -> Result<Self, PatternError> {
        let mut literals = vec![String::new()];
        let mut chars = pattern.chars();
        let mut previous_was_star = false;
        while let Some(c) = chars.next() {
            match c {
                '*' if previous_was_star => {
                    return Err(error(
                        path,
                        "consecutive wildcard characters are not allowed",
                    ));
                }
                '*' => {
                    literals.push(String::new());
                    previous_was_star = true;
                    continue;
                }
                '\\' => match chars.next() {
                    Some(escaped @ ('*' | '\\')) => push_last(&mut literals, escaped),
                    _ => return Err(error(path, "`\\` escapes only `*` and `\\`")),
                },
                other => push_last(&mut literals, other),
            }
            previous_was_star = false;
        }
        Ok(Self { literals })
    }

    /// Greedy glob matching: the first and last literals anchor the ends, the middle ones are
    /// found left to right (leftmost matches leave the most room for the rest).
    fn matches(&self, text: &str) -> bool {
        let (first, rest) = match self.literals.split_first() {
            Some(parts) => parts,
            None => return text.is_empty(),
        };
        let Some(mut remaining) = text.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return remaining.is_empty();
        };
        for literal in middle {
            match remaining.find(literal.as_str()) {
                Some(at) => remaining = &remaining[at + literal.len()..],
                None => return false,
            }
        }
        remaining.ends_with(last.as_str())
    }
}

fn push_last(literals: &mut [String], c: char) {
    if let Some(last) = literals.last_mut() {
        last.push(c);
    }
}

impl Cidr {
    fn parse(text: &str, path: &str) -> Result<Self, PatternError> {
        let invalid = || error(path, "`cidr` takes a network such as 10.0.0.0/24");
        let (address, length) = text.split_once('/').ok_or_else(invalid)?;
        let network: IpAddr = address.parse().map_err(|_| invalid())?;
        let prefix_len: u8 = length.parse().map_err(|_| invalid())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        if prefix_len > max {
            return Err(invalid());
        }
        Ok(Self {
            network,
            prefix_len,
        })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (network, candidate, width) = match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(c)) => (u32::from(n) as u128, u32::from(c) as u128, 32),
            (IpAddr::V6(n), IpAddr::V6(c)) => (u128::from(n), u128::from(c), 128),
            _ => return false,
        };
        let host_bits = width - u32::from(self.prefix_len);
        if host_bits >= 128 {
            return true;
        }
        (network >> host_bits) == (candidate >> host_bits)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event() -> Value {
        json!({
            "version": "0",
            "id": "01J0000000000000000000000",
            "detail-type": "sync.completed",
            "source": "hub.sync",
            "account": "000000000000",
            "time": "2024-05-01T12:00:00Z",
            "region": "local",
            "resources": ["arn:hub:task/1", "arn:hub:task/2"],
            "detail": {
                "tenantId": "t-1",
                "status": "COMPLETED",
                "count": 42,
                "ratio": 0.5,
                "flag": true,
                "nothing": null,
                "tags": ["a", "b"],
                "sourceIp": "10.0.1.17",
                "nested": {"deep": {"value": "x"}},
                "items": [{"kind": "contact"}, {"kind": "deal"}],
            }
        })
    }

    fn matches(pattern: Value) -> bool {
        EventPattern::parse(&pattern)
            .unwrap_or_else(|e| panic!("{pattern} should parse: {e}"))
            .matches(&event())
    }

    fn rejects(pattern: Value) -> PatternError {
        match EventPattern::parse(&pattern) {
            Ok(p) => panic!("{pattern} should be rejected, parsed as {p:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn literal_lists_match_any_listed_value() {
        assert!(matches(json!({"source": ["hub.sync"]})));
        assert!(matches(json!({"source": ["other", "hub.sync"]})));
        assert!(!matches(json!({"source": ["hub.webhooks"]})));
        assert!(matches(
            json!({"source": ["hub.sync"], "detail-type": ["sync.completed"]})
        ));
        assert!(!matches(
            json!({"source": ["hub.sync"], "detail-type": ["sync.failed"]})
        ));
    }

    #[test]
    fn literals_keep_their_json_type() {
        assert!(matches(json!({"detail": {"count": [42]}})));
        assert!(matches(json!({"detail": {"count": [42.0]}})));
        assert!(!matches(json!({"detail": {"count": ["42"]}})));
        assert!(matches(json!({"detail": {"flag": [true]}})));
        assert!(!matches(json!({"detail": {"flag": ["true"]}})));
        assert!(matches(json!({"detail": {"nothing": [null]}})));
        assert!(!matches(json!({"detail": {"status": [null]}})));
        assert!(matches(json!({"detail": {"ratio": [0.5]}})));
    }

    #[test]
    fn nested_objects_and_missing_paths() {
        assert!(matches(
            json!({"detail": {"nested": {"deep": {"value": ["x"]}}}})
        ));
        assert!(!matches(
            json!({"detail": {"nested": {"deep": {"value": ["y"]}}}})
        ));
        assert!(!matches(json!({"detail": {"absent": {"deep": ["x"]}}})));
        // A path through a scalar has no leaves below it.
        assert!(!matches(json!({"detail": {"status": {"inner": ["x"]}}})));
        assert!(matches(
            json!({"detail": {"status": {"inner": [{"exists": false}]}}})
        ));
    }

    #[test]
    fn array_fields_match_when_any_element_matches() {
        assert!(matches(json!({"resources": ["arn:hub:task/2"]})));
        assert!(!matches(json!({"resources": ["arn:hub:task/3"]})));
        assert!(matches(json!({"detail": {"tags": ["b", "z"]}})));
        assert!(matches(json!({"detail": {"items": {"kind": ["deal"]}}})));
        assert!(!matches(json!({"detail": {"items": {"kind": ["ticket"]}}})));
    }

    #[test]
    fn prefix_and_suffix() {
        assert!(matches(json!({"source": [{"prefix": "hub."}]})));
        assert!(!matches(json!({"source": [{"prefix": "aws."}]})));
        assert!(matches(json!({"detail-type": [{"suffix": ".completed"}]})));
        assert!(!matches(json!({"detail-type": [{"suffix": ".failed"}]})));
        assert!(matches(
            json!({"source": [{"prefix": {"equals-ignore-case": "HUB."}}]})
        ));
        assert!(matches(
            json!({"detail-type": [{"suffix": {"equals-ignore-case": ".COMPLETED"}}]})
        ));
        // Prefix applies to strings only.
        assert!(!matches(json!({"detail": {"count": [{"prefix": "4"}]}})));
    }

    #[test]
    fn anything_but_values_lists_and_prefixes() {
        assert!(matches(
            json!({"detail": {"status": [{"anything-but": "FAILED"}]}})
        ));
        assert!(!matches(
            json!({"detail": {"status": [{"anything-but": "COMPLETED"}]}})
        ));
        assert!(!matches(
            json!({"detail": {"status": [{"anything-but": ["FAILED", "COMPLETED"]}]}})
        ));
        assert!(matches(
            json!({"detail": {"count": [{"anything-but": [1, 2]}]}})
        ));
        assert!(!matches(
            json!({"detail": {"count": [{"anything-but": 42}]}})
        ));
        assert!(!matches(
            json!({"detail": {"status": [{"anything-but": {"prefix": "COMP"}}]}})
        ));
        assert!(matches(
            json!({"detail": {"status": [{"anything-but": {"prefix": "FAIL"}}]}})
        ));
        assert!(!matches(
            json!({"detail": {"status": [{"anything-but": {"suffix": "TED"}}]}})
        ));
        assert!(!matches(
            json!({"detail": {"status": [{"anything-but": {"equals-ignore-case": ["completed"]}}]}})
        ));
        assert!(!matches(
            json!({"detail": {"status": [{"anything-but": {"wildcard": "COMP*"}}]}})
        ));
        // A missing field is not "anything but".
        assert!(!matches(
            json!({"detail": {"absent": [{"anything-but": "x"}]}})
        ));
    }

    #[test]
    fn exists() {
        assert!(matches(json!({"detail": {"status": [{"exists": true}]}})));
        assert!(!matches(json!({"detail": {"absent": [{"exists": true}]}})));
        assert!(matches(json!({"detail": {"absent": [{"exists": false}]}})));
        assert!(!matches(json!({"detail": {"status": [{"exists": false}]}})));
        // `null` is a value; an object is not a leaf.
        assert!(matches(json!({"detail": {"nothing": [{"exists": true}]}})));
        assert!(!matches(json!({"detail": {"nested": [{"exists": true}]}})));
    }

    #[test]
    fn numeric_ranges() {
        assert!(matches(
            json!({"detail": {"count": [{"numeric": [">", 0]}]}})
        ));
        assert!(matches(
            json!({"detail": {"count": [{"numeric": [">=", 42, "<", 43]}]}})
        ));
        assert!(!matches(
            json!({"detail": {"count": [{"numeric": [">", 42, "<=", 100]}]}})
        ));
        assert!(matches(
            json!({"detail": {"count": [{"numeric": ["=", 42]}]}})
        ));
        assert!(matches(
            json!({"detail": {"ratio": [{"numeric": ["<=", 0.5]}]}})
        ));
        assert!(!matches(
            json!({"detail": {"status": [{"numeric": [">", 0]}]}})
        ));
    }

    #[test]
    fn equals_ignore_case_and_wildcard() {
        assert!(matches(
            json!({"detail": {"status": [{"equals-ignore-case": "completed"}]}})
        ));
        assert!(!matches(
            json!({"detail": {"status": [{"equals-ignore-case": "failed"}]}})
        ));
        assert!(matches(json!({"detail-type": [{"wildcard": "sync.*"}]})));
        assert!(matches(
            json!({"detail-type": [{"wildcard": "*.comp*ted"}]})
        ));
        assert!(matches(
            json!({"detail-type": [{"wildcard": "sync.completed"}]})
        ));
        assert!(!matches(
            json!({"detail-type": [{"wildcard": "sync.*d.x"}]})
        ));
        assert!(!matches(
            json!({"detail-type": [{"wildcard": "webhook.*"}]})
        ));
    }

    #[test]
    fn wildcard_escapes_and_edges() {
        let w = |p: &str| Wildcard::parse(p, "$").unwrap();
        assert!(w("a\\*b").matches("a*b"));
        assert!(!w("a\\*b").matches("axb"));
        assert!(w("*").matches(""));
        assert!(w("*").matches("anything"));
        assert!(w("a*a").matches("aa"));
        assert!(!w("a*a").matches("a"));
        assert!(w("*ab*ab").matches("xabyab"));
        assert!(w("").matches(""));
        assert!(!w("").matches("x"));
        assert!(Wildcard::parse("a**b", "$").is_err());
        assert!(Wildcard::parse("a\\b", "$").is_err());
    }

    #[test]
    fn cidr_ranges() {
        assert!(matches(
            json!({"detail": {"sourceIp": [{"cidr": "10.0.0.0/16"}]}})
        ));
        assert!(!matches(
            json!({"detail": {"sourceIp": [{"cidr": "10.1.0.0/16"}]}})
        ));
        assert!(matches(
            json!({"detail": {"sourceIp": [{"cidr": "0.0.0.0/0"}]}})
        ));
        assert!(!matches(
            json!({"detail": {"sourceIp": [{"cidr": "::/0"}]}})
        ));
        assert!(
            rejects(json!({"detail": {"ip": [{"cidr": "10.0.0.0/33"}]}}))
                .reason
                .contains("cidr")
        );
    }

    #[test]
    fn or_alternatives() {
        assert!(matches(json!({
            "source": ["hub.sync"],
            "$or": [{"detail": {"count": [{"numeric": [">", 100]}]}}, {"detail": {"flag": [true]}}]
        })));
        assert!(!matches(json!({
            "$or": [{"source": ["x"]}, {"detail": {"flag": [false]}}]
        })));
    }

    #[test]
    fn invalid_patterns_name_their_path() {
        let e = rejects(json!({"source": "hub.sync"}));
        assert_eq!(e.path, "$.source");
        let e = rejects(json!({"detail": {"status": []}}));
        assert_eq!(e.path, "$.detail.status");
        let e = rejects(json!({"detail": {"n": [{"numeric": [">", "x"]}]}}));
        assert_eq!(e.path, "$.detail.n[0].numeric");
        let e = rejects(json!({"source": [{"bogus": 1}]}));
        assert!(e.reason.contains("bogus"), "{e}");
        rejects(json!({}));
        rejects(json!([]));
        rejects(json!({"source": [{"prefix": "a", "suffix": "b"}]}));
        rejects(json!({"source": [["nested"]]}));
        rejects(json!({"detail": {"n": [{"numeric": [">"]}]}}));
        rejects(json!({"detail": {"n": [{"exists": "yes"}]}}));
        rejects(json!({"detail": {"n": [{"anything-but": []}]}}));
        rejects(json!({"detail": {"n": [{"anything-but": {"numeric": [">", 1]}}]}}));
        rejects(json!({"$or": [{"source": ["a"]}]}));
        rejects(json!({"detail": {}}));
    }

    #[test]
    fn non_object_events_only_match_absence() {
        let pattern = EventPattern::parse(&json!({"source": [{"exists": false}]})).unwrap();
        assert!(pattern.matches(&json!("scalar")));
        let pattern = EventPattern::parse(&json!({"source": ["x"]})).unwrap();
        assert!(!pattern.matches(&json!(null)));
    }
}
