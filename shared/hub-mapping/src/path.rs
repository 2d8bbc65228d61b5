//! Paths into records: the dot notation every source field is written in (`MailingAddress.street`,
//! `Lines[0].Amount`, `Lines.0.Amount`, `Attributes['odd.key']`), and the JSONPath subset of
//! `flatten` mappings (`$.a.b`, `$['a b']`, `$.items[0]`, `$.items[-1]`, `$.items[*].sku`,
//! `$.a.*`, `$..sku`). JSONPath filters, slices and unions are refused when the schema is
//! compiled.

use crate::json::View;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// A member; also an index when it is all digits and the value is an array (`Lines.0`).
    Key { name: String, index: Option<usize> },
    /// `[n]`, negative from the end.
    Index(i64),
    /// `[*]` or `.*`: every member or item.
    Wildcard,
    /// `..name` / `..*`: at any depth.
    Descend(Option<String>),
}

/// A compiled path. `text` is the path as the schema wrote it, for error reports.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Path {
    text: String,
    steps: Vec<Step>,
    /// Has a wildcard or a descent, so it selects any number of values.
    multiple: bool,
}

impl Path {
    /// A source field in dot notation.
    pub(crate) fn dotted(text: &str) -> Result<Path, String> {
        let steps = parse_steps(text, false)?;
        Ok(Path {
            text: text.to_owned(),
            steps,
            multiple: false,
        })
    }

    /// A `flatten` path: JSONPath when it starts with `$`, dot notation otherwise.
    pub(crate) fn flatten(text: &str) -> Result<Path, String> {
        let Some(rest) = text.strip_prefix('$') else {
            return Path::dotted(text);
        };
        let steps = if rest.is_empty() {
            Vec::new()
        } else if rest.starts_with(['.', '[']) {
            parse_steps(rest, true)?
        } else {
            return Err(format!("`{text}`: expected `.` or `[` after `$`"));
        };
        let multiple = steps
            .iter()
            .any(|s| matches!(s, Step::Wildcard | Step::Descend(_)));
        Ok(Path {
            text: text.to_owned(),
            steps,
            multiple,
        })
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn selects_many(&self) -> bool {
        self.multiple
    }

    /// The first member name, to look the field up in the source entity's description.
    pub(crate) fn root_key(&self) -> Option<&str> {
        match self.steps.first() {
            Some(Step::Key { name, .. }) => Some(name),
            _ => None,
        }
    }

    pub(crate) fn is_single_key(&self) -> bool {
        self.steps.len() == 1 && matches!(self.steps[0], Step::Key { .. })
    }

    /// The steps as a [`crate::json::Selection`] reads them: member names, and `None` for
    /// any other step (from which on the selection reads everything).
    pub(crate) fn selection_steps(&self) -> impl Iterator<Item = Option<&str>> {
        self.steps.iter().map(|step| match step {
            Step::Key { name, .. } => Some(name.as_str()),
            Step::Index(_) | Step::Wildcard | Step::Descend(_) => None,
        })
    }

    /// The value at the path, for a path without wildcards.
    pub(crate) fn get<'a>(&self, root: View<'a>) -> Option<View<'a>> {
        let mut current = root;
        for step in &self.steps {
            current = match step {
                Step::Key { name, index } => match (current.array_len(), index) {
                    (Some(_), Some(i)) => current.at(*i)?,
                    _ => current.get(name)?,
                },
                Step::Index(i) => current.at(resolve_index(*i, current.array_len()?)?)?,
                Step::Wildcard | Step::Descend(_) => return None,
            };
        }
        Some(current)
    }

    /// Every value the path selects, in document order; `Err` when selecting visits more than
    /// [`VISIT_BUDGET`] values (nested `..` over a large record would otherwise take time
    /// polynomial in its size).
    pub(crate) fn select<'a>(
        &self,
        root: View<'a>,
        out: &mut Vec<View<'a>>,
    ) -> Result<(), Exhausted> {
        let mut budget = VISIT_BUDGET;
        select_from(&self.steps, root, out, &mut budget)
    }
}

fn resolve_index(index: i64, len: usize) -> Option<usize> {
    if index >= 0 {
        usize::try_from(index).ok().filter(|&i| i < len)
    } else {
        len.checked_sub(usize::try_from(index.unsigned_abs()).ok()?)
    }
}

/// How many values one JSONPath selection may visit.
pub(crate) const VISIT_BUDGET: usize = 100_000;

/// A selection ran out of [`VISIT_BUDGET`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exhausted;

fn select_from<'a>(
    steps: &[Step],
    current: View<'a>,
    out: &mut Vec<View<'a>>,
    budget: &mut usize,
) -> Result<(), Exhausted> {
    *budget = budget.checked_sub(1).ok_or(Exhausted)?;
    let Some((step, rest)) = steps.split_first() else {
        out.push(current);
        return Ok(());
    };
    match step {
        Step::Key { name, index } => {
            let next = match (current.array_len(), index) {
                (Some(_), Some(i)) => current.at(*i),
                _ => current.get(name),
            };
            if let Some(next) = next {
                select_from(rest, next, out, budget)?;
            }
        }
        Step::Index(i) => {
            if let Some(next) = current
                .array_len()
                .and_then(|len| resolve_index(*i, len))
                .and_then(|i| current.at(i))
            {
                select_from(rest, next, out, budget)?;
            }
        }
        Step::Wildcard => {
            for (_, child) in current.children() {
                select_from(rest, child, out, budget)?;
            }
        }
        Step::Descend(name) => descend(name.as_deref(), rest, current, out, budget)?,
    }
    Ok(())
}

/// `..name`: the member `name` of `current` and of every value below it; `..*`: every value
/// below `current`. Records are at most `json::MAX_DEPTH` deep, which bounds the recursion.
fn descend<'a>(
    name: Option<&str>,
    rest: &[Step],
    current: View<'a>,
    out: &mut Vec<View<'a>>,
    budget: &mut usize,
) -> Result<(), Exhausted> {
    // The matches among the members of `current` come before those deeper down.
    for (key, child) in current.children() {
        if name.is_none() || key == name {
            select_from(rest, child, out, budget)?;
        }
    }
    for (_, child) in current.children() {
        *budget = budget.checked_sub(1).ok_or(Exhausted)?;
        descend(name, rest, child, out, budget)?;
    }
    Ok(())
}

fn parse_steps(text: &str, jsonpath: bool) -> Result<Vec<Step>, String> {
    let bad = |why: &str| Err(format!("`{text}`: {why}"));
    let b = text.as_bytes();
    let mut steps = Vec::new();
    let mut pos = 0;
    // Dot notation starts with a name; the JSONPath rest starts with `.` or `[`.
    let mut expect_name = !jsonpath && !text.starts_with('[');
    while pos < b.len() || expect_name {
        if expect_name {
            let start = pos;
            while pos < b.len() && b[pos] != b'.' && b[pos] != b'[' {
                if b[pos] == b']' {
                    return bad("unexpected `]`");
                }
                pos += 1;
            }
            let name = &text[start..pos];
            if name.is_empty() {
                return bad("empty field name");
            }
            if jsonpath && name == "*" {
                steps.push(Step::Wildcard);
            } else {
                steps.push(key_step(name));
            }
            expect_name = false;
            continue;
        }
        match b[pos] {
            b'.' if jsonpath && b.get(pos + 1) == Some(&b'.') => {
                pos += 2;
                let start = pos;
                while pos < b.len() && b[pos] != b'.' && b[pos] != b'[' {
                    pos += 1;
                }
                let name = &text[start..pos];
                match name {
                    "" => return bad("`..` needs a member name or `*`"),
                    "*" => steps.push(Step::Descend(None)),
                    name => steps.push(Step::Descend(Some(name.to_owned()))),
                }
            }
            b'.' => {
                pos += 1;
                expect_name = true;
            }
            b'[' => {
                let close =
                    bracket_end(text, pos).ok_or_else(|| format!("`{text}`: unclosed `[`"))?;
                let inner = text[pos + 1..close].trim();
                pos = close + 1;
                steps.push(bracket_step(text, inner, jsonpath)?);
            }
            _ => return bad("expected `.` or `[`"),
        }
    }
    Ok(steps)
}

fn key_step(name: &str) -> Step {
    let index = if name.bytes().all(|b| b.is_ascii_digit()) {
        name.parse().ok()
    } else {
        None
    };
    Step::Key {
        name: name.to_owned(),
        index,
    }
}

/// The `]` closing the bracket at `open`, skipping quoted text.
fn bracket_end(text: &str, open: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut quote: Option<u8> = None;
    let mut pos = open + 1;
    while pos < b.len() {
        match (quote, b[pos]) {
            (Some(_), b'\\') => pos += 1,
            (Some(q), c) if c == q => quote = None,
            (None, c @ (b'\'' | b'"')) => quote = Some(c),
            (None, b']') => return Some(pos),
            _ => {}
        }
        pos += 1;
    }
    None
}

fn bracket_step(text: &str, inner: &str, jsonpath: bool) -> Result<Step, String> {
    let unsupported = |what: &str| Err(format!("`{text}`: JSONPath {what} are not supported"));
    if let Some(quoted) = inner
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
    {
        let name = unescape_quoted(quoted)
            .ok_or_else(|| format!("`{text}`: bad escape in `[{inner}]`"))?;
        return Ok(Step::Key { name, index: None });
    }
    if inner == "*" {
        return if jsonpath {
            Ok(Step::Wildcard)
        } else {
            Err(format!("`{text}`: `[*]` needs a JSONPath (`$...`)"))
        };
    }
    if inner.starts_with('?') || inner.starts_with('(') {
        return unsupported("filters and script expressions");
    }
    if inner.contains(':') {
        return unsupported("slices");
    }
    if inner.contains(',') {
        return unsupported("unions");
    }
    inner
        .parse::<i64>()
        .map(Step::Index)
        .map_err(|_| format!("`{text}`: `[{inner}]` is neither an index nor a quoted name"))
}

fn unescape_quoted(quoted: &str) -> Option<String> {
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next()?);
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn record() -> Value {
        json!({
            "MailingAddress": {"street": "1 Main St", "geo": {"lat": 1.5}},
            "Lines": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}, {"sku": "C", "nested": {"sku": "D"}}],
            "odd.key": {"x": 1},
            "0": "zero"
        })
    }

    fn get(path: &str) -> Option<Value> {
        let record = record();
        Path::dotted(path)
            .unwrap()
            .get(View::Json(&record))
            .map(|v| match v {
                View::Json(v) => v.clone(),
                View::Node(_) => unreachable!(),
            })
    }

    fn select(path: &str) -> Vec<Value> {
        let record = record();
        let mut out = Vec::new();
        Path::flatten(path)
            .unwrap()
            .select(View::Json(&record), &mut out)
            .unwrap();
        out.into_iter()
            .map(|v| match v {
                View::Json(v) => v.clone(),
                View::Node(_) => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn dot_notation() {
        assert_eq!(get("MailingAddress.street"), Some(json!("1 Main St")));
        assert_eq!(get("MailingAddress.geo.lat"), Some(json!(1.5)));
        assert_eq!(get("Lines[1].sku"), Some(json!("B")));
        assert_eq!(get("Lines.1.sku"), Some(json!("B")));
        assert_eq!(get("Lines[-1].sku"), Some(json!("C")));
        assert_eq!(get("['odd.key'].x"), Some(json!(1)));
        assert_eq!(get("0"), Some(json!("zero")));
        assert_eq!(get("Lines[3]"), None);
        assert_eq!(get("Lines[-4]"), None);
        assert_eq!(get("MailingAddress.street.more"), None);
        assert_eq!(get("Missing.field"), None);
    }

    #[test]
    fn jsonpath_subset() {
        assert_eq!(select("$.MailingAddress.street"), vec![json!("1 Main St")]);
        assert_eq!(select("$['MailingAddress'][\"geo\"].lat"), vec![json!(1.5)]);
        assert_eq!(
            select("$.Lines[*].sku"),
            vec![json!("A"), json!("B"), json!("C")]
        );
        assert_eq!(
            select("$.Lines..sku"),
            vec![json!("A"), json!("B"), json!("C"), json!("D")]
        );
        assert_eq!(select("$.MailingAddress.*").len(), 2);
        assert_eq!(select("$.Lines[-1].sku"), vec![json!("C")]);
        assert_eq!(select("$").len(), 1);
        assert!(Path::flatten("$.Lines[*]").unwrap().selects_many());
        assert!(!Path::flatten("$.Lines[0]").unwrap().selects_many());
    }

    #[test]
    fn nested_descents_over_a_large_record_stop_at_the_budget() {
        let chain = (0..10).fold(json!(1), |inner, _| json!({ "a": inner }));
        let wide = Value::Array(vec![chain; 2_000]);
        let mut out = Vec::new();
        let path = Path::flatten("$..a..a..a..a").unwrap();
        assert_eq!(path.select(View::Json(&wide), &mut out), Err(Exhausted));
    }

    #[test]
    fn malformed_and_unsupported_paths_are_refused() {
        for bad in ["", ".a", "a.", "a..b", "a[", "a[x]", "a]b", "a[*]", "a[0]b"] {
            assert!(Path::dotted(bad).is_err(), "{bad}");
        }
        for (bad, why) in [
            ("$.a[?(@.x > 1)]", "filters"),
            ("$.a[0:2]", "slices"),
            ("$.a[0,1]", "unions"),
            ("$a", "expected"),
            ("$..", "member name"),
        ] {
            let error = Path::flatten(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }
}
