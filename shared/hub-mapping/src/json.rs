//! Records as the engine reads them: a JSON tree borrowed from the record's text (strings without
//! escapes and every number stay slices of the input), or a `serde_json::Value` already parsed by
//! someone else, behind one read-only [`View`].
//!
//! Parsing the text ourselves does two things serde_json cannot do without the workspace-wide
//! `arbitrary_precision` feature: numbers keep their exact digits (see `value::Num`), and
//! strings are not copied. Objects are sorted by key while parsing, so lookups are binary
//! searches and the canonical form of the payload hash needs no second sort.

use std::borrow::Cow;

use serde_json::Value;

/// Containers nested deeper than this are refused (serde_json's own limit), so no walk over a
/// record can exhaust the stack.
pub const MAX_DEPTH: usize = 128;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node<'a> {
    Null,
    Bool(bool),
    /// The number's text, checked against the JSON grammar.
    Number(&'a str),
    String(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    /// Sorted by key; of duplicate keys only the last is kept (as serde_json does).
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

/// Why a record's text is not JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at byte {offset}")]
pub struct JsonError {
    pub offset: usize,
    pub reason: &'static str,
}

/// A parsed record.
#[derive(Debug)]
pub(crate) struct Parsed<'a> {
    pub(crate) root: Node<'a>,
    /// The text is already in the canonical form of the payload hash (see `hash`): no
    /// whitespace, members sorted by key, serde_json's escapes and number forms. Text that
    /// serde_json wrote from a `Value` always is, so hashing can skip re-writing it.
    pub(crate) canonical: bool,
}

/// Parses one JSON document.
pub(crate) fn parse(text: &str) -> Result<Parsed<'_>, JsonError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        canonical: true,
        members: Vec::with_capacity(64),
        items: Vec::with_capacity(16),
    };
    let root = parser.value(0)?;
    parser.skip_whitespace();
    if parser.pos != parser.bytes.len() {
        return Err(parser.error("trailing characters after the document"));
    }
    Ok(Parsed {
        root,
        canonical: parser.canonical,
    })
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    canonical: bool,
    /// Members and items of the containers being parsed, innermost last: each container is
    /// moved out into one allocation of its exact size when it closes.
    members: Vec<(Cow<'a, str>, Node<'a>)>,
    items: Vec<Node<'a>>,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Bit 7 of each byte of `v` below `n` (exact for the lowest such byte, which is all a scan
/// needs).
#[inline]
fn bytes_below(v: u64, n: u8) -> u64 {
    v.wrapping_sub(ONES * u64::from(n)) & !v & HIGHS
}

/// The first `"`, `\` or control character at or after `from`, eight bytes at a time.
#[inline]
pub(crate) fn find_string_special(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let v = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        let hits = bytes_below(v ^ (ONES * u64::from(b'"')), 1)
            | bytes_below(v ^ (ONES * u64::from(b'\\')), 1)
            | bytes_below(v, 0x20);
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    bytes[i..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|p| i + p)
}

impl<'a> Parser<'a> {
    fn error(&self, reason: &'static str) -> JsonError {
        JsonError {
            offset: self.pos,
            reason,
        }
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
            self.canonical = false;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn value(&mut self, depth: usize) -> Result<Node<'a>, JsonError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Node::String),
            Some(b't') => self.literal("true", Node::Bool(true)),
            Some(b'f') => self.literal("false", Node::Bool(false)),
            Some(b'n') => self.literal("null", Node::Null),
            Some(b'-' | b'0'..=b'9') => self.number().map(Node::Number),
            Some(_) => Err(self.error("expected a JSON value")),
            None => Err(self.error("unexpected end of input")),
        }
    }

    fn literal(&mut self, word: &'static str, node: Node<'a>) -> Result<Node<'a>, JsonError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(node)
        } else {
            Err(self.error("expected a JSON value"))
        }
    }

    fn object(&mut self, depth: usize) -> Result<Node<'a>, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.pos += 1;
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Node::Object(Vec::new()));
        }
        let start = self.members.len();
        let mut sorted = true;
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a member name"));
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.error("expected `:`"));
            }
            self.pos += 1;
            let value = self.value(depth)?;
            if self.members.len() > start {
                sorted &= self.members[self.members.len() - 1].0.as_ref() < key.as_ref();
            }
            self.members.push((key, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
        let mut members: Vec<_> = self.members.drain(start..).collect();
        if !sorted {
            self.canonical = false;
            // Stable, so among equal keys the last one written ends up last.
            members.sort_by(|a, b| a.0.cmp(&b.0));
            members.dedup_by(|later, earlier| {
                if later.0 == earlier.0 {
                    std::mem::swap(later, earlier);
                    true
                } else {
                    false
                }
            });
        }
        Ok(Node::Object(members))
    }

    fn array(&mut self, depth: usize) -> Result<Node<'a>, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.pos += 1;
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Node::Array(Vec::new()));
        }
        let start = self.items.len();
        loop {
            let item = self.value(depth)?;
            self.items.push(item);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Node::Array(self.items.drain(start..).collect()));
                }
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
    }

    fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        self.pos += 1;
        let start = self.pos;
        let Some(at) = find_string_special(self.bytes, start) else {
            self.pos = self.bytes.len();
            return Err(self.error("unterminated string"));
        };
        self.pos = at;
        if self.bytes[at] == b'"' {
            self.pos += 1;
            // `"` is ASCII, so both ends are character boundaries of `text`.
            return Ok(Cow::Borrowed(&self.text[start..at]));
        }
        let mut owned = String::with_capacity(at - start + 16);
        owned.push_str(&self.text[start..at]);
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(owned));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(&mut owned)?;
                }
                Some(b) if b < 0x20 => {
                    return Err(self.error("control character in a string"));
                }
                Some(_) => {
                    let end = find_string_special(self.bytes, self.pos).unwrap_or(self.bytes.len());
                    owned.push_str(&self.text[self.pos..end]);
                    self.pos = end;
                }
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), JsonError> {
        let Some(b) = self.peek() else {
            return Err(self.error("unterminated string"));
        };
        self.pos += 1;
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => {
                self.canonical = false;
                '/'
            }
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let digits = self.pos;
                let unit = self.hex4()?;
                // serde_json writes `\u00XX` (lowercase) only for control characters
                // without a short escape.
                let short = matches!(unit, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d);
                let lowercase = !self.bytes[digits..digits + 4]
                    .iter()
                    .any(u8::is_ascii_uppercase);
                if unit >= 0x20 || short || !lowercase {
                    self.canonical = false;
                }
                match unit {
                    0xD800..=0xDBFF => {
                        if !self.bytes[self.pos..].starts_with(b"\\u") {
                            return Err(self.error("lone leading surrogate in a \\u escape"));
                        }
                        self.pos += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(self.error("invalid low surrogate in a \\u escape"));
                        }
                        let code = 0x10000
                            + ((u32::from(unit) - 0xD800) << 10)
                            + (u32::from(low) - 0xDC00);
                        char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))?
                    }
                    0xDC00..=0xDFFF => {
                        return Err(self.error("lone trailing surrogate in a \\u escape"));
                    }
                    unit => char::from_u32(u32::from(unit))
                        .ok_or_else(|| self.error("invalid \\u escape"))?,
                }
            }
            _ => return Err(self.error("invalid escape")),
        };
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u16, JsonError> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("truncated \\u escape"))?;
        let mut unit: u16 = 0;
        for &d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.error("invalid \\u escape")),
            };
            unit = (unit << 4) | u16::from(v);
        }
        self.pos += 4;
        Ok(unit)
    }

    fn number(&mut self) -> Result<&'a str, JsonError> {
        let start = self.pos;
        let mut plain_integer = true;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            plain_integer = false;
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            plain_integer = false;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        let text = &self.text[start..self.pos];
        // Integers are written as read, except `-0` (serde_json reads a double -0.0).
        if self.canonical && (!plain_integer || text == "-0") {
            self.canonical = crate::hash::number_is_canonical(text);
        }
        Ok(text)
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }
}

/// A read-only handle on a value of a record, whichever way the record was parsed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum View<'a> {
    Node(&'a Node<'a>),
    Json(&'a Value),
}

impl<'a> View<'a> {
    pub(crate) fn get(self, key: &str) -> Option<View<'a>> {
        match self {
            // Comparing lengths first rules most members out without touching their text,
            // which beats a binary search's string comparisons at the sizes records have.
            View::Node(Node::Object(members)) if members.len() <= 48 => members
                .iter()
                .find(|(k, _)| k.len() == key.len() && k.as_bytes() == key.as_bytes())
                .map(|(_, v)| View::Node(v)),
            View::Node(Node::Object(members)) => members
                .binary_search_by(|(k, _)| k.as_ref().cmp(key))
                .ok()
                .map(|i| View::Node(&members[i].1)),
            View::Json(Value::Object(map)) => map.get(key).map(View::Json),
            _ => None,
        }
    }

    pub(crate) fn at(self, index: usize) -> Option<View<'a>> {
        match self {
            View::Node(Node::Array(items)) => items.get(index).map(View::Node),
            View::Json(Value::Array(items)) => items.get(index).map(View::Json),
            _ => None,
        }
    }

    /// The number of items of an array.
    pub(crate) fn array_len(self) -> Option<usize> {
        match self {
            View::Node(Node::Array(items)) => Some(items.len()),
            View::Json(Value::Array(items)) => Some(items.len()),
            _ => None,
        }
    }

    pub(crate) fn is_object(self) -> bool {
        matches!(
            self,
            View::Node(Node::Object(_)) | View::Json(Value::Object(_))
        )
    }

    /// The members of an object in key order, or the items of an array with no key.
    pub(crate) fn children(self) -> Children<'a> {
        match self {
            View::Node(Node::Object(members)) => Children::NodeObject(members.iter()),
            View::Node(Node::Array(items)) => Children::NodeArray(items.iter()),
            View::Json(Value::Object(map)) => Children::JsonObject(map.iter()),
            View::Json(Value::Array(items)) => Children::JsonArray(items.iter()),
            _ => Children::None,
        }
    }

    pub(crate) fn kind(self) -> Kind {
        match self {
            View::Node(Node::Null) | View::Json(Value::Null) => Kind::Null,
            View::Node(Node::Bool(_)) | View::Json(Value::Bool(_)) => Kind::Bool,
            View::Node(Node::Number(_)) | View::Json(Value::Number(_)) => Kind::Number,
            View::Node(Node::String(_)) | View::Json(Value::String(_)) => Kind::String,
            View::Node(Node::Array(_)) | View::Json(Value::Array(_)) => Kind::Array,
            View::Node(Node::Object(_)) | View::Json(Value::Object(_)) => Kind::Object,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::String => "a string",
            Kind::Array => "an array",
            Kind::Object => "an object",
        }
    }
}

pub(crate) enum Children<'a> {
    NodeObject(std::slice::Iter<'a, (Cow<'a, str>, Node<'a>)>),
    NodeArray(std::slice::Iter<'a, Node<'a>>),
    JsonObject(serde_json::map::Iter<'a>),
    JsonArray(std::slice::Iter<'a, Value>),
    None,
}

impl<'a> Iterator for Children<'a> {
    type Item = (Option<&'a str>, View<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Children::NodeObject(it) => it.next().map(|(k, v)| (Some(k.as_ref()), View::Node(v))),
            Children::NodeArray(it) => it.next().map(|v| (None, View::Node(v))),
            Children::JsonObject(it) => it.next().map(|(k, v)| (Some(k.as_str()), View::Json(v))),
            Children::JsonArray(it) => it.next().map(|v| (None, View::Json(v))),
            Children::None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Node<'_> {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}")).root
    }

    #[test]
    fn parses_what_serde_json_parses() {
        let text = r#" {"b": [1, -2.5e3, true, false, null], "a": {"x": "y\n\u00e9\ud83d\ude00"}, "c": ""} "#;
        let node = ok(text);
        let view = View::Node(&node);
        assert!(matches!(
            view.get("a").and_then(|a| a.get("x")),
            Some(View::Node(Node::String(s))) if s == "y\né😀"
        ));
        assert!(matches!(
            view.get("b").and_then(|b| b.at(1)),
            Some(View::Node(Node::Number("-2.5e3")))
        ));
        assert!(matches!(view.get("c"), Some(View::Node(Node::String(s))) if s.is_empty()));
        assert!(view.get("d").is_none());
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let node = ok(r#"{"k": "plain text", "e": "a\"b"}"#);
        let Node::Object(members) = &node else {
            panic!("not an object")
        };
        assert!(matches!(
            members[1].1,
            Node::String(Cow::Borrowed("plain text"))
        ));
        assert!(matches!(&members[0].1, Node::String(Cow::Owned(s)) if s == "a\"b"));
    }

    #[test]
    fn duplicate_keys_keep_the_last_value_like_serde_json() {
        let node = ok(r#"{"a": 1, "b": 2, "a": 3, "a": 4}"#);
        let view = View::Node(&node);
        assert!(matches!(view.get("a"), Some(View::Node(Node::Number("4")))));
        let Node::Object(members) = &node else {
            panic!("not an object")
        };
        assert_eq!(members.len(), 2);
    }

    #[test]
    fn numbers_keep_every_digit() {
        let node = ok("[123456789012345678901234567890.123456789, 0, -0.0, 1E+2]");
        let digits: Vec<_> = (0..4)
            .map(|i| match View::Node(&node).at(i) {
                Some(View::Node(Node::Number(t))) => *t,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            digits,
            [
                "123456789012345678901234567890.123456789",
                "0",
                "-0.0",
                "1E+2"
            ]
        );
    }

    #[test]
    fn rejects_what_json_rejects() {
        for bad in [
            "",
            " ",
            "{",
            "[1,]",
            "{\"a\":}",
            "{\"a\" 1}",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "\"abc",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"a\u{1}\"",
            "tru",
            "nul",
            "[1] 2",
            "{\"a\":1,}",
            "NaN",
            "Infinity",
            "'a'",
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
            assert!(
                serde_json::from_str::<Value>(bad).is_err(),
                "serde accepts {bad:?}"
            );
        }
    }

    #[test]
    fn nesting_is_bounded_without_overflowing_the_stack() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&deep).is_ok());
        let deeper = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(&deeper).unwrap_err().reason, "nested too deeply");
        let hostile = "{\"a\":".repeat(100_000);
        assert!(parse(&hostile).is_err());
    }

    #[test]
    fn string_scans_find_the_first_special_byte() {
        for text in [
            "abcdefghijk\\",
            "é\"",
            "0123456789abcdef\u{1f}x",
            "aaaaaaa\"",
            "\u{7f}\u{80}ÿ\"x",
        ] {
            let expected = text
                .bytes()
                .position(|b| b == b'"' || b == b'\\' || b < 0x20);
            assert_eq!(
                find_string_special(text.as_bytes(), 0),
                expected,
                "{text:?}"
            );
        }
        let long = format!("{}\"", "x".repeat(1000));
        assert_eq!(find_string_special(long.as_bytes(), 3), Some(1000));
        assert_eq!(find_string_special(b"no quote here at all", 0), None);
    }

    #[test]
    fn canonical_text_is_recognised() {
        let canonical = |t: &str| parse(t).unwrap().canonical;
        assert!(canonical(
            r#"{"a":[1,-2,1.5,100.0,"x\"\n\u001f"],"b":{"c":null}}"#
        ));
        assert!(!canonical(r#"{"a": 1}"#));
        assert!(!canonical(r#"{"b":1,"a":2}"#));
        assert!(!canonical(r#"{"a":1.50}"#));
        assert!(!canonical(r#"{"a":1e2}"#));
        assert!(!canonical(r#"{"a":-0}"#));
        assert!(!canonical(r#"{"a":"\/"}"#));
        assert!(!canonical(r#"{"a":"\u00e9"}"#));
        assert!(!canonical(r#"{"a":"\u001F"}"#));
        assert!(!canonical(r#"{"a":"\u000a"}"#));
    }

    #[test]
    fn views_over_serde_values_answer_the_same() {
        let value: Value = serde_json::from_str(r#"{"a": {"b": [10, "x"]}}"#).unwrap();
        let view = View::Json(&value);
        let b = view.get("a").and_then(|a| a.get("b"));
        assert_eq!(b.and_then(View::array_len), Some(2));
        assert!(matches!(b.and_then(|b| b.at(1)), Some(View::Json(Value::String(s))) if s == "x"));
        assert_eq!(b.map(View::kind), Some(Kind::Array));
    }
}
