//! `{{namespace.name}}` placeholders in connector definitions.
//!
//! Namespaces: `settings.<name>` (the tenant integration's settings, declared in the
//! definition), `page.cursor|offset|limit|number` (the position of the page being fetched) and
//! `cursor.from|to` (the incremental window, already formatted for the API).
//!
//! Templates are parsed when the definition is read, so a typo fails the load with its JSON
//! path instead of failing a sync at 3 a.m.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Var(Var),
}

/// One placeholder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Var {
    Setting(String),
    PageCursor,
    PageOffset,
    PageLimit,
    PageNumber,
    CursorFrom,
    CursorTo,
}

impl fmt::Display for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Setting(name) => write!(f, "settings.{name}"),
            Self::PageCursor => f.write_str("page.cursor"),
            Self::PageOffset => f.write_str("page.offset"),
            Self::PageLimit => f.write_str("page.limit"),
            Self::PageNumber => f.write_str("page.number"),
            Self::CursorFrom => f.write_str("cursor.from"),
            Self::CursorTo => f.write_str("cursor.to"),
        }
    }
}

impl Var {
    fn parse(expression: &str) -> Result<Self, String> {
        let expression = expression.trim();
        let (namespace, name) = expression
            .split_once('.')
            .ok_or_else(|| format!("`{{{{{expression}}}}}` must be `namespace.name`"))?;
        match (namespace, name) {
            ("settings", name) if is_setting_name(name) => Ok(Self::Setting(name.to_owned())),
            ("settings", name) => Err(format!(
                "`{name}` is not a setting name (letters, digits and _)"
            )),
            ("page", "cursor") => Ok(Self::PageCursor),
            ("page", "offset") => Ok(Self::PageOffset),
            ("page", "limit") => Ok(Self::PageLimit),
            ("page", "number") => Ok(Self::PageNumber),
            ("cursor", "from") => Ok(Self::CursorFrom),
            ("cursor", "to") => Ok(Self::CursorTo),
            _ => Err(format!(
                "unknown placeholder `{expression}`: use settings.<name>, page.cursor, \
                 page.offset, page.limit, page.number, cursor.from or cursor.to"
            )),
        }
    }
}

pub(crate) fn is_setting_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Template {
    pub fn parse(source: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| "a `{{` has no closing `}}`".to_owned())?;
            parts.push(Part::Var(Var::parse(&after[..end])?));
            rest = &after[end + 2..];
        }
        if rest.contains("}}") {
            return Err("a `}}` has no opening `{{`".into());
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Self {
            source: source.to_owned(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn vars(&self) -> impl Iterator<Item = &Var> {
        self.parts.iter().filter_map(|part| match part {
            Part::Var(var) => Some(var),
            Part::Literal(_) => None,
        })
    }

    /// The placeholder when the template is exactly one placeholder (then it renders to the
    /// value's own JSON type in a body, and is inserted unchecked in a base URL).
    pub fn sole_var(&self) -> Option<&Var> {
        match self.parts.as_slice() {
            [Part::Var(var)] => Some(var),
            _ => None,
        }
    }

    /// Renders with `encode` applied to each placeholder's text; `None` when a placeholder has
    /// no value.
    pub(crate) fn render_with(
        &self,
        lookup: &dyn Fn(&Var) -> Option<Value>,
        encode: &mut dyn FnMut(&Var, &str) -> Result<String, String>,
    ) -> Result<Option<String>, String> {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Var(var) => match lookup(var).as_ref().and_then(value_text) {
                    Some(text) => out.push_str(&encode(var, &text)?),
                    None => return Ok(None),
                },
            }
        }
        Ok(Some(out))
    }
}

/// The text a value contributes to a URL, header or string: `null` counts as absent.
pub(crate) fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(_) | Value::Number(_) | Value::Array(_) | Value::Object(_) => {
            Some(value.to_string())
        }
    }
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Self::parse(&source).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_literals_and_placeholders() {
        let t =
            Template::parse("https://{{ settings.instance }}.example.com/{{page.cursor}}").unwrap();
        let vars: Vec<_> = t.vars().cloned().collect();
        assert_eq!(vars, vec![Var::Setting("instance".into()), Var::PageCursor]);
        assert!(t.sole_var().is_none());
        assert_eq!(
            Template::parse("{{cursor.from}}").unwrap().sole_var(),
            Some(&Var::CursorFrom)
        );
    }

    #[test]
    fn rejects_malformed_templates() {
        for bad in [
            "{{settings.x",
            "x}}",
            "{{page.size}}",
            "{{nothing}}",
            "{{settings.a-b}}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn renders_and_reports_missing_values() {
        let t = Template::parse("a{{page.limit}}b").unwrap();
        let lookup = |var: &Var| (var == &Var::PageLimit).then(|| Value::from(50));
        let mut plain = |_: &Var, text: &str| Ok(text.to_owned());
        assert_eq!(
            t.render_with(&lookup, &mut plain).unwrap(),
            Some("a50b".into())
        );
        let t = Template::parse("{{page.cursor}}").unwrap();
        assert_eq!(t.render_with(&lookup, &mut plain).unwrap(), None);
    }
}
