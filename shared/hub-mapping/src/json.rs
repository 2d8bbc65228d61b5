//! Records as the engine reads them: a JSON tree borrowed from the record's text (strings without
//! escapes and every number stay slices of the input), or a `serde_json::Value` already parsed by
//! someone else, behind one read-only [`View`].
//!
//! Parsing the text ourselves does two things serde_json cannot do without the workspace-wide
//! `arbitrary_precision` feature: numbers keep their exact digits (see `value::Num`), and
//! strings are not copied. Objects are sorted by key while parsing, so lookups past a few
//! dozen members are binary searches.
//!
//! A compiled schema knows every path it reads, so a record is parsed against a [`Selection`]:
//! members nobody reads are checked (the whole text must still be JSON, with the same error at
//! the same byte as a full parse) but skipped without building anything.

use std::borrow::Cow;

use serde_json::Value;

/// Containers nested deeper than this are refused (serde_json's own limit), so no walk over a
/// record can exhaust the stack.
pub const MAX_DEPTH: usize = 128;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node<'a> {
    Null,
    // Two variants rather than `Bool(bool)`: a one-byte payload would start every variant's
    // payload right after the tag, and moving a node would copy unaligned bytes.
    True,
    False,
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

/// Which parts of a record a compiled schema reads.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Selection {
    /// The whole value.
    All,
    /// Of an object, only these members; a value of any other kind is read whole.
    Members(Members),
}

/// The members read of an object, each with what is read of it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Members {
    list: Vec<(String, Selection)>,
    /// By [`slot`] of a name: 1 + the index in `list` of the one name in that slot, 0 for none,
    /// `SEVERAL` when names share it. Every member name of a selected object is looked up, and
    /// most lookups end here.
    slots: [u8; 64],
}

const SEVERAL: u8 = u8::MAX;

/// A hash of a member name into 64 slots, from what tells short names apart cheaply.
#[inline]
fn slot(name: &[u8]) -> usize {
    let length = (name.len() as u32).wrapping_mul(0x9E37_79B9);
    let first = u32::from(name.first().copied().unwrap_or(0)).wrapping_mul(0x85EB_CA6B);
    let last = u32::from(name.last().copied().unwrap_or(0)).wrapping_mul(0xC2B2_AE35);
    ((length ^ first ^ last.rotate_left(13)) >> 26) as usize
}

impl Members {
    fn index(&mut self) {
        self.slots = [0; 64];
        let several = self.list.len() >= usize::from(SEVERAL);
        for (i, (name, _)) in self.list.iter().enumerate() {
            let slot = &mut self.slots[slot(name.as_bytes())];
            *slot = match *slot {
                _ if several => SEVERAL,
                0 => u8::try_from(i + 1).unwrap_or(SEVERAL),
                _ => SEVERAL,
            };
        }
    }

    /// What is read of the member `key`, if anything.
    #[inline]
    fn get(&self, key: &str) -> Option<&Selection> {
        match self.slots[slot(key.as_bytes())] {
            0 => None,
            SEVERAL => self
                .list
                .iter()
                .find(|(name, _)| same_text(name, key))
                .map(|(_, selection)| selection),
            i => {
                let (name, selection) = self.list.get(usize::from(i) - 1)?;
                same_text(name, key).then_some(selection)
            }
        }
    }
}

/// Shared by every member a full parse reads.
static ALL: Selection = Selection::All;

impl Selection {
    /// Nothing yet.
    pub(crate) fn nothing() -> Selection {
        Selection::Members(Members {
            list: Vec::new(),
            slots: [0; 64],
        })
    }

    /// Adds the value at a path: `Some(name)` is a member (of an object; of an array it may be
    /// an index, and arrays are read whole), `None` any other step (an index, a wildcard, a
    /// descent), from which on everything is read.
    pub(crate) fn add<'k>(&mut self, steps: impl IntoIterator<Item = Option<&'k str>>) {
        let mut current = self;
        for step in steps {
            let Some(name) = step else {
                *current = Selection::All;
                return;
            };
            let Selection::Members(members) = current else {
                return;
            };
            let at = match members.list.iter().position(|(key, _)| key == name) {
                Some(at) => at,
                None => {
                    members.list.push((name.to_owned(), Selection::nothing()));
                    members.index();
                    members.list.len() - 1
                }
            };
            current = &mut members.list[at].1;
        }
        *current = Selection::All;
    }
}

/// Parses one JSON document, building only what `selection` reads. The text is checked whole
/// whatever the selection: the same text gives the same error as with [`Selection::All`].
pub(crate) fn parse_selected<'a>(
    text: &'a str,
    selection: &Selection,
) -> Result<Node<'a>, JsonError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        // Allocated when an array is met.
        items: Vec::new(),
        fault: None,
    };
    let root = parser.value(0, selection).and_then(|root| {
        parser.skip_whitespace();
        if parser.pos == parser.bytes.len() {
            Ok(root)
        } else {
            Err(parser.fail("trailing characters after the document"))
        }
    });
    root.map_err(|Stop| {
        parser.fault.take().unwrap_or(JsonError {
            offset: 0,
            reason: "not JSON",
        })
    })
}

/// An object's members sorted by key, of duplicate keys the last; `sorted`: they already are,
/// without duplicates.
fn sorted_members<'a>(
    mut members: Vec<(Cow<'a, str>, Node<'a>)>,
    sorted: bool,
) -> Vec<(Cow<'a, str>, Node<'a>)> {
    if !sorted {
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
    members
}

/// A parse stopped; the parser holds the [`JsonError`]. The error travels up as this empty
/// value rather than as the error itself, so that most results fit in registers.
#[derive(Debug, Clone, Copy)]
struct Stop;

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Items of the arrays being parsed, innermost last: each array is moved out into one
    /// allocation of its exact size when it closes.
    items: Vec<Node<'a>>,
    fault: Option<JsonError>,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Bit 7 of each byte of `v` below `n` (exact for the lowest such byte, which is all a scan
/// needs).
#[inline]
fn bytes_below(v: u64, n: u8) -> u64 {
    v.wrapping_sub(ONES * u64::from(n)) & !v & HIGHS
}

/// `a < b`, deciding on the first bytes when they differ (they usually do) without a call to
/// `memcmp`.
#[inline]
fn text_before(a: &str, b: &str) -> bool {
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(x), Some(y)) if x != y => x < y,
        _ => a < b,
    }
}

/// `a == b` for the short texts of member names, without a call to `memcmp` per candidate
/// (member lookups compare every key of an object).
#[inline]
pub(crate) fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    // Overlapping loads from both ends cover every byte.
    let word =
        |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().unwrap_or_default());
    let half =
        |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().unwrap_or_default());
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

/// The first `"`, `\` or control character at or after `from`, eight bytes at a time.
#[inline(always)]
pub(crate) fn find_string_special(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..).unwrap_or_default();
    let mut chunks = rest.chunks_exact(8);
    for (n, chunk) in (&mut chunks).enumerate() {
        let v = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let hits = bytes_below(v ^ (ONES * u64::from(b'"')), 1)
            | bytes_below(v ^ (ONES * u64::from(b'\\')), 1)
            | bytes_below(v, 0x20);
        if hits != 0 {
            return Some(from + n * 8 + (hits.trailing_zeros() / 8) as usize);
        }
    }
    let tail = chunks.remainder();
    tail.iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|p| bytes.len() - tail.len() + p)
}

impl<'a> Parser<'a> {
    /// Records why the text is not JSON, for [`parse_selected`] to return.
    #[cold]
    fn fail(&mut self, reason: &'static str) -> Stop {
        self.fault = Some(JsonError {
            offset: self.pos,
            reason,
        });
        Stop
    }

    #[inline(always)]
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn value(&mut self, depth: usize, selection: &Selection) -> Result<Node<'a>, Stop> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => self.object(depth + 1, selection),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Node::String),
            Some(b't') => self.literal("true").map(|()| Node::True),
            Some(b'f') => self.literal("false").map(|()| Node::False),
            Some(b'n') => self.literal("null").map(|()| Node::Null),
            Some(b'-' | b'0'..=b'9') => self.number().map(Node::Number),
            Some(_) => Err(self.fail("expected a JSON value")),
            None => Err(self.fail("unexpected end of input")),
        }
    }

    /// [`Parser::value`] without building it: the same checks in the same order, so the same
    /// error at the same byte. Iterative (a bit per open container says object or array), as
    /// most of a record is skipped and calls per value would cost more than the scan.
    fn skip_value(&mut self, depth: usize) -> Result<(), Stop> {
        // Bit `n` set: the container opened `n + 1` levels below `depth` is an object.
        let mut objects: u128 = 0;
        let mut open = 0usize;
        loop {
            // A value.
            self.skip_whitespace();
            match self.peek() {
                Some(close @ (b'{' | b'[')) => {
                    if depth + open + 1 > MAX_DEPTH {
                        return Err(self.fail("nested too deeply"));
                    }
                    self.pos += 1;
                    self.skip_whitespace();
                    let is_object = close == b'{';
                    let end = if is_object { b'}' } else { b']' };
                    if self.peek() == Some(end) {
                        self.pos += 1;
                    } else {
                        // `open < MAX_DEPTH <= 128`, so the bit exists.
                        objects = (objects & !(1 << open)) | (u128::from(is_object) << open);
                        open += 1;
                        if is_object {
                            self.skip_member_name()?;
                        }
                        continue;
                    }
                }
                Some(b'"') => self.skip_string()?,
                Some(b't') => self.literal("true")?,
                Some(b'f') => self.literal("false")?,
                Some(b'n') => self.literal("null")?,
                Some(b'-' | b'0'..=b'9') => {
                    self.number()?;
                }
                Some(_) => return Err(self.fail("expected a JSON value")),
                None => return Err(self.fail("unexpected end of input")),
            }
            // After a value: close containers until one continues with another value.
            loop {
                let Some(level) = open.checked_sub(1) else {
                    return Ok(());
                };
                let in_object = objects & (1 << level) != 0;
                let ended = if in_object {
                    self.after_member()?
                } else {
                    self.after_item()?
                };
                if !ended {
                    if in_object {
                        self.skip_member_name()?;
                    }
                    break;
                }
                open = level;
            }
        }
    }

    /// A member's name and the `:` after it, not kept.
    #[inline]
    fn skip_member_name(&mut self) -> Result<(), Stop> {
        self.skip_whitespace();
        if self.peek() != Some(b'"') {
            return Err(self.fail("expected a member name"));
        }
        self.skip_string()?;
        self.colon()
    }

    fn literal(&mut self, word: &'static str) -> Result<(), Stop> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.fail("expected a JSON value"))
        }
    }

    /// After a member's value: `Ok(true)` at the end of the object.
    #[inline(always)]
    fn after_member(&mut self) -> Result<bool, Stop> {
        self.skip_whitespace();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(false)
            }
            Some(b'}') => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err(self.fail("expected `,` or `}`")),
        }
    }

    /// After an item: `Ok(true)` at the end of the array.
    #[inline(always)]
    fn after_item(&mut self) -> Result<bool, Stop> {
        self.skip_whitespace();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(false)
            }
            Some(b']') => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err(self.fail("expected `,` or `]`")),
        }
    }

    /// Past `{` and the whitespace after it: `Ok(true)` when the object is empty.
    fn open(&mut self, depth: usize, close: u8) -> Result<bool, Stop> {
        if depth > MAX_DEPTH {
            return Err(self.fail("nested too deeply"));
        }
        self.pos += 1;
        self.skip_whitespace();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }

    /// A member's name and the `:` after it.
    #[inline(always)]
    fn member_name(&mut self) -> Result<Cow<'a, str>, Stop> {
        self.skip_whitespace();
        if self.peek() != Some(b'"') {
            return Err(self.fail("expected a member name"));
        }
        let key = self.string()?;
        self.colon()?;
        Ok(key)
    }

    #[inline(always)]
    fn colon(&mut self) -> Result<(), Stop> {
        self.skip_whitespace();
        if self.peek() != Some(b':') {
            return Err(self.fail("expected `:`"));
        }
        self.pos += 1;
        Ok(())
    }

    fn object(&mut self, depth: usize, selection: &Selection) -> Result<Node<'a>, Stop> {
        if self.open(depth, b'}')? {
            return Ok(Node::Object(Vec::new()));
        }
        match selection {
            Selection::All => self.whole_object(depth),
            Selection::Members(wanted) => self.selected_object(depth, wanted),
        }
    }

    /// The members of an object after its `{`, every one of them.
    fn whole_object(&mut self, depth: usize) -> Result<Node<'a>, Stop> {
        let mut members: Vec<(Cow<'a, str>, Node<'a>)> = Vec::with_capacity(8);
        let mut sorted = true;
        loop {
            let key = self.member_name()?;
            if let Some((previous, _)) = members.last() {
                sorted &= text_before(previous, &key);
            }
            self.push_member(&mut members, key, depth, &ALL)?;
            if self.after_member()? {
                break;
            }
        }
        Ok(Node::Object(sorted_members(members, sorted)))
    }

    /// The members of an object after its `{` that `wanted` reads, built straight into a
    /// list of the size the selection asks for; the others checked and skipped.
    fn selected_object(&mut self, depth: usize, wanted: &Members) -> Result<Node<'a>, Stop> {
        let mut members: Vec<(Cow<'a, str>, Node<'a>)> = Vec::with_capacity(wanted.list.len());
        let mut sorted = true;
        loop {
            let key = self.member_name()?;
            if let Some(selection) = wanted.get(&key) {
                if let Some((previous, _)) = members.last() {
                    sorted &= text_before(previous, &key);
                }
                self.push_member(&mut members, key, depth, selection)?;
            } else {
                self.skip_whitespace();
                match self.peek() {
                    Some(b'"') => self.skip_string()?,
                    Some(b'-' | b'0'..=b'9') => {
                        self.number()?;
                    }
                    _ => self.skip_value(depth)?,
                }
            }
            if self.after_member()? {
                break;
            }
        }
        Ok(Node::Object(sorted_members(members, sorted)))
    }

    /// Parses a member's value and pushes the member. Scalars are parsed here rather than
    /// through a call of `value`, whose result would come back through memory (see
    /// `string`).
    #[inline(always)]
    fn push_member(
        &mut self,
        members: &mut Vec<(Cow<'a, str>, Node<'a>)>,
        key: Cow<'a, str>,
        depth: usize,
        selection: &Selection,
    ) -> Result<(), Stop> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'"') => {
                let text = self.string()?;
                members.push((key, Node::String(text)));
            }
            Some(b'-' | b'0'..=b'9') => {
                let number = self.number()?;
                members.push((key, Node::Number(number)));
            }
            _ => {
                let node = self.value(depth, selection)?;
                members.push((key, node));
            }
        }
        Ok(())
    }

    fn array(&mut self, depth: usize) -> Result<Node<'a>, Stop> {
        if self.open(depth, b']')? {
            return Ok(Node::Array(Vec::new()));
        }
        let start = self.items.len();
        loop {
            // Scalars here rather than through a call of `value` (see `push_member`).
            self.skip_whitespace();
            match self.peek() {
                Some(b'"') => {
                    let text = self.string()?;
                    self.items.push(Node::String(text));
                }
                Some(b'-' | b'0'..=b'9') => {
                    let number = self.number()?;
                    self.items.push(Node::Number(number));
                }
                _ => {
                    let item = self.value(depth, &ALL)?;
                    self.items.push(item);
                }
            }
            if self.after_item()? {
                return Ok(Node::Array(self.items.drain(start..).collect()));
            }
        }
    }

    /// Inlined for the common string without escapes, so the result stays in registers (a
    /// result written to memory by a call and read back at another width stalls the CPU).
    #[inline(always)]
    fn string(&mut self) -> Result<Cow<'a, str>, Stop> {
        self.pos += 1;
        let start = self.pos;
        if let Some(at) = find_string_special(self.bytes, start)
            && self.bytes[at] == b'"'
        {
            self.pos = at + 1;
            // `"` is ASCII, so both ends are character boundaries of `text`.
            return Ok(Cow::Borrowed(&self.text[start..at]));
        }
        self.escaped_string(start)
    }

    /// The rest of [`Parser::string`]: escapes, and the errors.
    #[cold]
    #[inline(never)]
    fn escaped_string(&mut self, start: usize) -> Result<Cow<'a, str>, Stop> {
        let Some(at) = find_string_special(self.bytes, start) else {
            self.pos = self.bytes.len();
            return Err(self.fail("unterminated string"));
        };
        self.pos = at;
        let mut owned = String::with_capacity(at - start + 16);
        owned.push_str(&self.text[start..at]);
        loop {
            match self.peek() {
                None => return Err(self.fail("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(owned));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    owned.push(self.escape()?);
                }
                Some(b) if b < 0x20 => {
                    return Err(self.fail("control character in a string"));
                }
                Some(_) => {
                    let end = find_string_special(self.bytes, self.pos).unwrap_or(self.bytes.len());
                    owned.push_str(&self.text[self.pos..end]);
                    self.pos = end;
                }
            }
        }
    }

    /// [`Parser::string`] without building it.
    #[inline(always)]
    fn skip_string(&mut self) -> Result<(), Stop> {
        self.pos += 1;
        loop {
            let Some(at) = find_string_special(self.bytes, self.pos) else {
                self.pos = self.bytes.len();
                return Err(self.fail("unterminated string"));
            };
            self.pos = at;
            match self.bytes[at] {
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                b'\\' => {
                    self.pos += 1;
                    self.escape()?;
                }
                _ => return Err(self.fail("control character in a string")),
            }
        }
    }

    /// The character of the escape after a `\\`.
    fn escape(&mut self) -> Result<char, Stop> {
        let Some(b) = self.peek() else {
            return Err(self.fail("unterminated string"));
        };
        self.pos += 1;
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                match unit {
                    0xD800..=0xDBFF => {
                        if !self.bytes[self.pos..].starts_with(b"\\u") {
                            return Err(self.fail("lone leading surrogate in a \\u escape"));
                        }
                        self.pos += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(self.fail("invalid low surrogate in a \\u escape"));
                        }
                        let code = 0x10000
                            + ((u32::from(unit) - 0xD800) << 10)
                            + (u32::from(low) - 0xDC00);
                        char::from_u32(code).ok_or_else(|| self.fail("invalid \\u escape"))?
                    }
                    0xDC00..=0xDFFF => {
                        return Err(self.fail("lone trailing surrogate in a \\u escape"));
                    }
                    unit => char::from_u32(u32::from(unit))
                        .ok_or_else(|| self.fail("invalid \\u escape"))?,
                }
            }
            _ => return Err(self.fail("invalid escape")),
        };
        Ok(c)
    }

    fn hex4(&mut self) -> Result<u16, Stop> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.fail("truncated \\u escape"))?;
        let mut unit: u16 = 0;
        for &d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.fail("invalid \\u escape")),
            };
            unit = (unit << 4) | u16::from(v);
        }
        self.pos += 4;
        Ok(unit)
    }

    fn number(&mut self) -> Result<&'a str, Stop> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.fail("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.fail("invalid number"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.fail("invalid number"));
            }
            self.digits();
        }
        Ok(&self.text[start..self.pos])
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
                .find(|(k, _)| same_text(k, key))
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
            View::Node(Node::True | Node::False) | View::Json(Value::Bool(_)) => Kind::Bool,
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

    fn parse(text: &str) -> Result<Node<'_>, JsonError> {
        parse_selected(text, &Selection::All)
    }

    fn ok(text: &str) -> Node<'_> {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
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
    fn member_lookups_find_exactly_the_selected_names() {
        // Enough names that some share a slot.
        let names: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
        let mut selection = Selection::nothing();
        for name in names.iter().step_by(2) {
            selection.add([Some(name.as_str())]);
        }
        let Selection::Members(members) = &selection else {
            panic!("not members")
        };
        assert!(members.slots.contains(&SEVERAL));
        for (i, name) in names.iter().enumerate() {
            assert_eq!(members.get(name).is_some(), i % 2 == 0, "{name}");
        }
        assert!(members.get("").is_none());
        assert!(members.get("k").is_none());
    }

    #[test]
    fn short_texts_compare_like_strings() {
        let texts = [
            "",
            "a",
            "b",
            "ab",
            "ba",
            "abc",
            "abd",
            "xbc",
            "abcd",
            "abce",
            "Email",
            "Emaim",
            "FirstName",
            "FirstNamf",
            "GirstName",
            "LastModifiedDate",
            "LastModifiedDatf",
            "MastModifiedDate",
            "LastModifiedDate1",
            "LastModifiedDate2",
            "é",
            "éa",
            "aé",
        ];
        for a in texts {
            for b in texts {
                assert_eq!(same_text(a, b), a == b, "{a:?} {b:?}");
            }
        }
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

    fn selection(paths: &[&[&str]]) -> Selection {
        let mut selection = Selection::nothing();
        for path in paths {
            selection.add(path.iter().map(|step| Some(*step)));
        }
        selection
    }

    #[test]
    fn selected_parses_build_only_what_is_read() {
        let text = r#"{"z": {"deep": [1, {"x": "\u00e9"}]}, "a": {"b": 1, "c": {"d": true}},
            "a": {"b": 2, "c": {"d": false, "e": null}}, "s": "x", "l": [{"k": 1}, 2]}"#;
        let node = parse_selected(text, &selection(&[&["a", "c", "d"], &["l", "0", "k"]]))
            .expect("parses");
        let Node::Object(members) = &node else {
            panic!("not an object")
        };
        let keys: Vec<&str> = members.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["a", "l"]);
        let view = View::Node(&node);
        // The last of duplicate members, as a full parse keeps; of it only `c.d`.
        let a = view.get("a").expect("a");
        assert!(a.get("b").is_none());
        assert!(matches!(
            a.get("c").and_then(|c| c.get("d")),
            Some(View::Node(Node::False))
        ));
        assert!(a.get("c").and_then(|c| c.get("e")).is_none());
        // Arrays are read whole.
        assert_eq!(view.get("l").and_then(View::array_len), Some(2));

        let mut whole = selection(&[&["s"]]);
        whole.add([Some("a"), None]);
        let node = parse_selected(text, &whole).expect("parses");
        let a = View::Node(&node).get("a").expect("a");
        assert!(a.get("b").is_some() && a.get("c").and_then(|c| c.get("e")).is_some());
        assert_eq!(parse_selected(text, &Selection::All), parse(text));
        assert!(matches!(
            parse_selected(text, &Selection::nothing()),
            Ok(Node::Object(m)) if m.is_empty()
        ));
    }

    #[test]
    fn selected_parses_fail_where_and_as_full_parses_do() {
        let valid = r#"{"id": "r1", "n": -12.5e3, "skip": {"s": "a\"b\\\u00e9\ud83d\ude00", "l": [true, false, null, 0, {}]}, "keep": {"x": [1, "two"], "y": {"z": "é"}}, "t": "\n"}"#;
        let selections = [
            Selection::All,
            Selection::nothing(),
            selection(&[&["id"], &["keep", "y"]]),
            selection(&[&["skip", "s"], &["keep", "x"], &["t"]]),
        ];
        let tricky: &[&[u8]] = &[
            b"", b"\"", b"\\", b"{", b"}", b"[", b"]", b",", b":", b" ", b"0", b"-", b".", b"e",
            b"u", b"x", b"\x01", b"\\u", b"\\ud800", b"tru", b"nul", b"\"\"", b"{}", b"[1,]",
        ];
        let mut checked = 0;
        for at in 0..=valid.len() {
            for cut in [0, 1, 2] {
                for insert in tricky {
                    let Some(tail) = valid.as_bytes().get((at + cut).min(valid.len())..) else {
                        continue;
                    };
                    let mut bytes = valid.as_bytes()[..at].to_vec();
                    bytes.extend_from_slice(insert);
                    bytes.extend_from_slice(tail);
                    let Ok(text) = std::str::from_utf8(&bytes) else {
                        continue;
                    };
                    let full = parse(text).err();
                    for selection in &selections {
                        assert_eq!(parse_selected(text, selection).err(), full, "{text}");
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 5_000, "{checked}");
        let deep = format!(
            "{{\"skip\": {}{}}}",
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        assert_eq!(
            parse_selected(&deep, &Selection::nothing()).err(),
            parse(&deep).err()
        );
        assert_eq!(
            parse(&deep).unwrap_err().reason,
            "nested too deeply",
            "the member's array is one level down"
        );
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
