//! Values while a record is mapped: scalars borrowed from the record where possible, exact
//! numbers, dates with the zone they were read in, and the conversion to the JSON of the
//! mapped entity.
//!
//! Numbers: a number is kept exactly as long as no arithmetic touches it. One that an `i64`,
//! a `u64` or an `f64` holds exactly (the double nearest to it prints back as the same decimal
//! value) becomes a JSON number of the entity; any other (more than ~17 significant digits, an
//! integer beyond ±2^64, an exponent out of a double's range) becomes a JSON **string** of its
//! exact digits, because `serde_json::Value` cannot hold it without the workspace-wide
//! `arbitrary_precision` feature. `round` works on the decimal digits and so stays exact;
//! `multiply`, `divide` and `currency_convert` compute in `f64`.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::Write as _;

use serde::{Serialize, Serializer};
use serde_json::{Map, Number, Value};

use crate::date::DateVal;
use crate::json::{MAX_DEPTH, Node, View};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    /// Only above `i64::MAX`.
    UInt(u64),
    /// Finite, and holds its decimal value exactly (see the module documentation).
    Float(f64),
    /// A decimal that no machine number holds: the digits as written.
    Big(Box<str>),
}

/// Decimals with at most this many significant digits survive a trip through an `f64`.
const F64_SAFE_DIGITS: usize = 15;

impl Num {
    /// From text in the JSON number grammar (an optional leading `+` is accepted).
    pub(crate) fn from_text(text: &str) -> Num {
        let unsigned = text.strip_prefix('+').unwrap_or(text);
        if !unsigned.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
            if unsigned.starts_with('-') && unsigned.bytes().skip(1).all(|b| b == b'0') {
                // serde_json reads `-0` as the double -0.0; so does the engine.
                return Num::Float(-0.0);
            }
            if let Ok(i) = unsigned.parse::<i64>() {
                return Num::Int(i);
            }
            if let Ok(u) = unsigned.parse::<u64>() {
                return Num::UInt(u);
            }
            return Num::Big(unsigned.into());
        }
        let Ok(float) = unsigned.parse::<f64>() else {
            return Num::Big(unsigned.into());
        };
        let in_range = float.is_finite() && (float == 0.0 || float.abs() >= f64::MIN_POSITIVE);
        if in_range {
            // Most numbers have few digits: decide without building a `Decimal`.
            let mantissa = unsigned.split(['e', 'E']).next().unwrap_or_default();
            // From the first non-zero digit to the last one.
            let (mut significant, mut zeros, mut seen) = (0usize, 0usize, false);
            for d in mantissa.bytes().filter(u8::is_ascii_digit) {
                if d == b'0' {
                    zeros += usize::from(seen);
                } else {
                    significant += zeros + 1;
                    zeros = 0;
                    seen = true;
                }
            }
            if significant <= F64_SAFE_DIGITS && (float == 0.0) == (significant == 0) {
                return Num::Float(float);
            }
        }
        let Some(decimal) = Decimal::parse(unsigned) else {
            return Num::Big(unsigned.into());
        };
        // A subnormal double has fewer significant bits, so no digit count is safe for it:
        // only a round trip tells (serde_json reads and writes subnormals like any double).
        let normal = float == 0.0 || float.abs() >= f64::MIN_POSITIVE;
        let representable = float.is_finite() && (float == 0.0) == decimal.is_zero();
        if representable
            && ((normal && decimal.digits.len() <= F64_SAFE_DIGITS)
                || Decimal::from_f64(float) == decimal)
        {
            Num::Float(float)
        } else {
            Num::Big(unsigned.into())
        }
    }

    pub(crate) fn from_json(n: &Number) -> Num {
        if let Some(i) = n.as_i64() {
            Num::Int(i)
        } else if let Some(u) = n.as_u64() {
            Num::UInt(u)
        } else {
            // serde_json only produces finite doubles.
            Num::Float(n.as_f64().unwrap_or(0.0))
        }
    }

    /// The result of arithmetic: integral values within the range where doubles count
    /// exactly become integers (`100 * 2` is `200`, not `200.0`), as in JavaScript.
    pub(crate) fn from_f64(x: f64) -> Option<Num> {
        if !x.is_finite() {
            return None;
        }
        const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
        if x.fract() == 0.0 && x.abs() < EXACT {
            Some(Num::Int(x as i64))
        } else {
            Some(Num::Float(x))
        }
    }

    pub(crate) fn to_f64(&self) -> f64 {
        match self {
            Num::Int(i) => *i as f64,
            Num::UInt(u) => *u as f64,
            Num::Float(f) => *f,
            Num::Big(text) => text.parse().unwrap_or(f64::NAN),
        }
    }

    pub(crate) fn to_decimal(&self) -> Decimal {
        match self {
            Num::Int(i) => Decimal::from_i128(i128::from(*i)),
            Num::UInt(u) => Decimal::from_i128(i128::from(*u)),
            Num::Float(f) => Decimal::from_f64(*f),
            Num::Big(text) => Decimal::parse(text).unwrap_or_default(),
        }
    }

    pub(crate) fn from_decimal(decimal: &Decimal) -> Num {
        Num::from_text(&decimal.to_text())
    }

    pub(crate) fn to_json(&self) -> Value {
        match self {
            Num::Int(i) => Value::Number((*i).into()),
            Num::UInt(u) => Value::Number((*u).into()),
            Num::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Num::Big(text) => Value::String(text.to_string()),
        }
    }

    /// The number as text, as JavaScript's `String(n)` writes it (exact digits for `Big`).
    pub(crate) fn write_text(&self, out: &mut String) {
        match self {
            Num::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Num::UInt(u) => {
                let _ = write!(out, "{u}");
            }
            Num::Float(f) => write_float_js(*f, out),
            Num::Big(text) => out.push_str(text),
        }
    }

    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        self.write_text(&mut out);
        out
    }
}

fn write_float_js(f: f64, out: &mut String) {
    let abs = f.abs();
    if abs == 0.0 {
        out.push('0');
    } else if !(1e-6..1e21).contains(&abs) {
        // `{:e}` is the shortest round-trip form, as `{}` is.
        let text = format!("{f:e}");
        match text.split_once('e') {
            Some((mantissa, exponent)) if !exponent.starts_with('-') => {
                let _ = write!(out, "{mantissa}e+{exponent}");
            }
            _ => out.push_str(&text),
        }
    } else {
        let _ = write!(out, "{f}");
    }
}

/// `round` of a double without building a [`Decimal`]: the shortest decimal form's digits
/// are rounded half away from zero as integers, and the result divided back exactly (an integer
/// below 2^53 divided by a power of ten up to 10^22 is the double nearest the decimal). `None`
/// when those bounds do not hold; the caller then takes the `Decimal` path.
pub(crate) fn round_f64(x: f64, decimals: u32) -> Option<Num> {
    use std::io::Write as _;
    if !x.is_finite() || decimals > 22 {
        return None;
    }
    // Away from a tie, the scaled double rounds the way its shortest decimal digits do: the
    // two differ by at most about 2^-52 of the scaled value, far inside the margin, and a
    // difference across an integer changes no rounding. Only near-ties need the digits.
    let scale = 10f64.powi(decimals as i32);
    let scaled = x.abs() * scale;
    if scaled < (1u64 << 52) as f64 {
        let whole = scaled.floor();
        let fraction = scaled - whole;
        if (fraction - 0.5).abs() > scaled * 2e-15 + f64::MIN_POSITIVE {
            let rounded = if fraction > 0.5 { whole + 1.0 } else { whole };
            let magnitude = rounded / scale;
            return Num::from_f64(if x < 0.0 { -magnitude } else { magnitude });
        }
    }
    let mut buffer = [0u8; 40];
    let mut cursor = std::io::Cursor::new(&mut buffer[..]);
    write!(cursor, "{:e}", x.abs()).ok()?;
    let written = cursor.position() as usize;
    let text = std::str::from_utf8(&buffer[..written]).ok()?;
    let (mantissa, exponent) = text.split_once('e')?;
    let exponent: i64 = exponent.parse().ok()?;
    let (mut digits, mut count) = (0u64, 0i64);
    for b in mantissa.bytes().filter(u8::is_ascii_digit) {
        digits = digits * 10 + u64::from(b - b'0');
        count += 1;
    }
    // x = digits × 10^scale
    let scale = exponent - (count - 1);
    let shift = -(scale + i64::from(decimals));
    if shift <= 0 {
        // Already has no more than `decimals` places.
        return Num::from_f64(x);
    }
    let quotient = if shift > 19 {
        0
    } else {
        let divisor = 10u64.pow(shift as u32);
        let (q, r) = (digits / divisor, digits % divisor);
        if r >= divisor - r { q + 1 } else { q }
    };
    const EXACT: u64 = 1 << 53;
    if quotient >= EXACT {
        return None;
    }
    let magnitude = quotient as f64 / 10f64.powi(decimals as i32);
    Num::from_f64(if x < 0.0 { -magnitude } else { magnitude })
}

/// A decimal number: `0.d1 d2 ... dn × 10^exponent`, digits without leading or trailing zeros
/// (none for zero). Compares and rounds exactly, whatever the precision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exponent: i64,
}

impl Decimal {
    /// From text in the JSON number grammar, with an optional leading `+`.
    pub(crate) fn parse(text: &str) -> Option<Decimal> {
        let (negative, rest) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().ok()?),
            None => (rest, 0),
        };
        let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let mut digits = Vec::with_capacity(int_part.len() + frac_part.len());
        for b in int_part.bytes().chain(frac_part.bytes()) {
            if !b.is_ascii_digit() {
                return None;
            }
            digits.push(b - b'0');
        }
        let leading = digits.iter().take_while(|&&d| d == 0).count();
        digits.drain(..leading);
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            return Some(Decimal::default());
        }
        let exponent = exponent.checked_add(int_part.len() as i64 - leading as i64)?;
        Some(Decimal {
            negative,
            digits,
            exponent,
        })
    }

    pub(crate) fn from_f64(f: f64) -> Decimal {
        Decimal::parse(&format!("{f:e}")).unwrap_or_default()
    }

    pub(crate) fn from_i128(i: i128) -> Decimal {
        Decimal::parse(&i.to_string()).unwrap_or_default()
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// Rounds half away from zero to `decimals` places after the point.
    pub(crate) fn round(&self, decimals: u32) -> Decimal {
        let keep = self.exponent.saturating_add(i64::from(decimals));
        if keep >= self.digits.len() as i64 {
            return self.clone();
        }
        if keep < 0 {
            return Decimal::default();
        }
        let keep = keep as usize;
        let mut digits = self.digits[..keep].to_vec();
        let mut exponent = self.exponent;
        if self.digits[keep] >= 5 {
            let mut carry = true;
            for d in digits.iter_mut().rev() {
                if *d == 9 {
                    *d = 0;
                } else {
                    *d += 1;
                    carry = false;
                    break;
                }
            }
            if carry {
                digits.insert(0, 1);
                exponent += 1;
            }
        }
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            return Decimal::default();
        }
        Decimal {
            negative: self.negative,
            digits,
            exponent,
        }
    }

    /// Plain notation when it is reasonably short, scientific otherwise.
    pub(crate) fn to_text(&self) -> String {
        if self.digits.is_empty() {
            return "0".into();
        }
        let mut out = String::new();
        if self.negative {
            out.push('-');
        }
        let n = self.digits.len() as i64;
        let digit = |d: &u8| char::from(b'0' + d);
        if (-20..=40).contains(&self.exponent) {
            if self.exponent <= 0 {
                out.push_str("0.");
                out.extend(std::iter::repeat_n('0', (-self.exponent) as usize));
                out.extend(self.digits.iter().map(digit));
            } else if self.exponent >= n {
                out.extend(self.digits.iter().map(digit));
                out.extend(std::iter::repeat_n('0', (self.exponent - n) as usize));
            } else {
                let point = self.exponent as usize;
                out.extend(self.digits[..point].iter().map(digit));
                out.push('.');
                out.extend(self.digits[point..].iter().map(digit));
            }
        } else {
            out.push(digit(&self.digits[0]));
            if self.digits.len() > 1 {
                out.push('.');
                out.extend(self.digits[1..].iter().map(digit));
            }
            let _ = write!(out, "e{}", self.exponent - 1);
        }
        out
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        let sign = |d: &Decimal| match (d.is_zero(), d.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        };
        let (a, b) = (sign(self), sign(other));
        if a != b || a == 0 {
            return a.cmp(&b);
        }
        let magnitude = self
            .exponent
            .cmp(&other.exponent)
            .then_with(|| self.digits.cmp(&other.digits));
        if a < 0 {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

/// A value being mapped. `None` around it (missing) and `Null` differ: a missing value leaves
/// the target field unset, `null` sets it to null.
#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    Null,
    Bool(bool),
    Num(Num),
    Str(Cow<'a, str>),
    Date(DateVal),
    /// An array or object of the record or of the schema, not copied.
    Ref(View<'a>),
    /// An array built while mapping (`to_array`, a JSONPath wildcard).
    List(Vec<Val<'a>>),
    /// Any value built while mapping (results of custom expressions). Boxed, which keeps
    /// every value, and the results that carry them, at 32 bytes.
    Json(Box<Value>),
}

impl<'a> Val<'a> {
    pub(crate) fn from_view(view: View<'a>) -> Val<'a> {
        match view {
            View::Node(Node::Null) | View::Json(Value::Null) => Val::Null,
            View::Node(Node::True) => Val::Bool(true),
            View::Node(Node::False) => Val::Bool(false),
            View::Json(Value::Bool(b)) => Val::Bool(*b),
            View::Node(Node::Number(text)) => Val::Num(Num::from_text(text)),
            View::Json(Value::Number(n)) => Val::Num(Num::from_json(n)),
            View::Node(Node::String(s)) => Val::Str(Cow::Borrowed(s.as_ref())),
            View::Json(Value::String(s)) => Val::Str(Cow::Borrowed(s)),
            View::Node(Node::Array(_) | Node::Object(_))
            | View::Json(Value::Array(_) | Value::Object(_)) => Val::Ref(view),
        }
    }

    /// For values built at run time (custom expression results, task values).
    pub(crate) fn from_json(value: Value) -> Val<'a> {
        match value {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(b),
            Value::Number(n) => Val::Num(Num::from_json(&n)),
            Value::String(s) => Val::Str(Cow::Owned(s)),
            other => Val::Json(Box::new(other)),
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    /// What kind of JSON this value becomes, for messages.
    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "a boolean",
            Val::Num(_) => "a number",
            Val::Str(_) => "a string",
            Val::Date(_) => "a date",
            Val::Ref(view) => view.kind().name(),
            Val::List(_) => "an array",
            Val::Json(value) => match &**value {
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
                _ => "a value",
            },
        }
    }

    /// The text of a scalar (strings, numbers, booleans, dates); `None` for null, arrays and
    /// objects.
    pub(crate) fn scalar_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Val::Str(s) => Some(Cow::Borrowed(s.as_ref())),
            Val::Num(n) => Some(Cow::Owned(n.text())),
            Val::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Val::Date(d) => Some(Cow::Owned(d.to_iso_string())),
            Val::Null | Val::Ref(_) | Val::List(_) | Val::Json(_) => None,
        }
    }

    /// The JSON of the mapped entity.
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Bool(b) => Value::Bool(*b),
            Val::Num(n) => n.to_json(),
            Val::Str(s) => Value::String(s.as_ref().to_owned()),
            Val::Date(d) => Value::String(d.to_iso_string()),
            Val::Ref(view) => view_to_json(*view, 0),
            Val::List(items) => Value::Array(items.iter().map(Val::to_json).collect()),
            Val::Json(value) => (**value).clone(),
        }
    }

    /// Serialises as [`Val::to_json`] would then serde_json, without building the `Value`.
    pub(crate) fn as_json(&self) -> AsJson<'_, 'a> {
        AsJson(self)
    }
}

/// See [`Val::as_json`].
pub(crate) struct AsJson<'v, 'a>(&'v Val<'a>);

impl Serialize for AsJson<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Val::Null => serializer.serialize_unit(),
            Val::Bool(b) => serializer.serialize_bool(*b),
            Val::Num(n) => serialize_num(n, serializer),
            Val::Str(s) => serializer.serialize_str(s),
            Val::Date(d) => serializer.serialize_str(&d.to_iso_string()),
            Val::Ref(view) => ViewAsJson(*view, 0).serialize(serializer),
            Val::List(items) => serializer.collect_seq(items.iter().map(Val::as_json)),
            Val::Json(value) => value.serialize(serializer),
        }
    }
}

/// As [`Num::to_json`].
fn serialize_num<S: Serializer>(n: &Num, serializer: S) -> Result<S::Ok, S::Error> {
    match n {
        Num::Int(i) => serializer.serialize_i64(*i),
        Num::UInt(u) => serializer.serialize_u64(*u),
        Num::Float(f) if f.is_finite() => serializer.serialize_f64(*f),
        Num::Float(_) => serializer.serialize_unit(),
        Num::Big(text) => serializer.serialize_str(text),
    }
}

/// A value of the record as [`view_to_json`] copies it, at `depth`.
struct ViewAsJson<'a>(View<'a>, usize);

impl Serialize for ViewAsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let ViewAsJson(view, depth) = *self;
        let node = match view {
            View::Json(value) => return value.serialize(serializer),
            View::Node(node) => node,
        };
        match node {
            Node::Null => serializer.serialize_unit(),
            Node::True => serializer.serialize_bool(true),
            Node::False => serializer.serialize_bool(false),
            Node::Number(text) => serialize_num(&Num::from_text(text), serializer),
            Node::String(s) => serializer.serialize_str(s),
            Node::Array(_) | Node::Object(_) if depth >= MAX_DEPTH => serializer.serialize_unit(),
            Node::Array(items) => serializer.collect_seq(
                items
                    .iter()
                    .map(|item| ViewAsJson(View::Node(item), depth + 1)),
            ),
            // Members are sorted and unique, as a map of them would write them.
            Node::Object(members) => serializer.collect_map(
                members
                    .iter()
                    .map(|(key, value)| (key.as_ref(), ViewAsJson(View::Node(value), depth + 1))),
            ),
        }
    }
}

/// Copies a value of the record into the entity. The parser bounds a record's depth, and a
/// `serde_json::Value` parsed from text is bounded the same way; anything deeper (only a value
/// built in code could be) is cut at [`MAX_DEPTH`] rather than overflowing the stack.
pub(crate) fn view_to_json(view: View<'_>, depth: usize) -> Value {
    match view {
        View::Json(value) => value.clone(),
        View::Node(node) => match node {
            Node::Null => Value::Null,
            Node::True => Value::Bool(true),
            Node::False => Value::Bool(false),
            Node::Number(text) => Num::from_text(text).to_json(),
            Node::String(s) => Value::String(s.as_ref().to_owned()),
            Node::Array(_) | Node::Object(_) if depth >= MAX_DEPTH => Value::Null,
            Node::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| view_to_json(View::Node(item), depth + 1))
                    .collect(),
            ),
            Node::Object(members) => {
                let mut map = Map::new();
                for (key, value) in members {
                    map.insert(key.to_string(), view_to_json(View::Node(value), depth + 1));
                }
                Value::Object(map)
            }
        },
    }
}

/// JSON equality with numbers compared by value (`1 == 1.0`, exact for every precision).
pub(crate) fn loose_equal(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Num(x), Val::Num(y)) => numbers_equal(x, y),
        (Val::Str(_) | Val::Date(_), Val::Str(_) | Val::Date(_)) => {
            a.scalar_text() == b.scalar_text()
        }
        (Val::Ref(_) | Val::List(_) | Val::Json(_), Val::Ref(_) | Val::List(_) | Val::Json(_)) => {
            json_equal(&a.to_json(), &b.to_json())
        }
        _ => false,
    }
}

/// Deep JSON equality with numbers compared by value.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            numbers_equal(&Num::from_json(x), &Num::from_json(y))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

pub(crate) fn numbers_equal(x: &Num, y: &Num) -> bool {
    match (x, y) {
        (Num::Int(a), Num::Int(b)) => a == b,
        (Num::UInt(a), Num::UInt(b)) => a == b,
        (Num::Float(a), Num::Float(b)) => a == b,
        _ => x.to_decimal() == y.to_decimal(),
    }
}

pub(crate) fn compare_numbers(x: &Num, y: &Num) -> Ordering {
    match (x, y) {
        (Num::Int(a), Num::Int(b)) => a.cmp(b),
        (Num::Float(a), Num::Float(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
        _ => x.to_decimal().cmp(&y.to_decimal()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_that_doubles_hold_stay_numbers() {
        assert_eq!(Num::from_text("42"), Num::Int(42));
        assert_eq!(Num::from_text("-9223372036854775808"), Num::Int(i64::MIN));
        assert_eq!(Num::from_text("18446744073709551615"), Num::UInt(u64::MAX));
        assert_eq!(Num::from_text("12.5"), Num::Float(12.5));
        assert_eq!(Num::from_text("1e2"), Num::Float(100.0));
        assert_eq!(Num::from_text("0.1"), Num::Float(0.1));
        assert_eq!(
            Num::from_text("0.30000000000000004"),
            Num::Float(0.30000000000000004)
        );
        assert_eq!(Num::from_text("-0.0"), Num::Float(-0.0));
    }

    #[test]
    fn subnormal_doubles_are_numbers_when_their_digits_round_trip() {
        let tiny = 1.881_581_076e-314;
        assert!(tiny != 0.0 && tiny < f64::MIN_POSITIVE);
        assert_eq!(Num::from_text("1.881581076e-314"), Num::Float(tiny));
        assert_eq!(Num::from_text("5e-324"), Num::Float(5e-324));
        assert_eq!(
            Num::from_text(&serde_json::to_string(&tiny).unwrap()),
            Num::from_json(&serde_json::Number::from_f64(tiny).unwrap())
        );
    }

    #[test]
    fn numbers_beyond_doubles_keep_their_digits() {
        for text in [
            "18446744073709551616",
            "-9223372036854775809",
            "123456789012345678901234567890",
            "3.14159265358979323846264338327950288",
            "0.1000000000000000000000000001",
            "1e400",
            "1e-400",
            "4.9e-324",
        ] {
            assert_eq!(Num::from_text(text), Num::Big(text.into()), "{text}");
            assert_eq!(Num::from_text(text).to_json(), Value::String(text.into()));
            assert_eq!(Num::from_text(text).text(), text);
        }
    }

    #[test]
    fn decimals_compare_and_round_exactly() {
        let d = |t: &str| Decimal::parse(t).unwrap();
        assert_eq!(d("1.0"), d("1"));
        assert_eq!(d("100"), d("1e2"));
        assert_eq!(d("-0"), d("0"));
        assert!(d("-1") < d("0.5"));
        assert!(d("-2") < d("-1.5"));
        assert!(d("123456789012345678901234567891") > d("123456789012345678901234567890"));
        assert_eq!(d("1.005").round(2).to_text(), "1.01");
        assert_eq!(d("2.5").round(0).to_text(), "3");
        assert_eq!(d("-2.5").round(0).to_text(), "-3");
        assert_eq!(d("9.999").round(2).to_text(), "10");
        assert_eq!(d("0.004").round(2).to_text(), "0");
        assert_eq!(d("0.005").round(2).to_text(), "0.01");
        assert_eq!(d("1234.5678").round(0).to_text(), "1235");
        assert_eq!(d("1e-30").round(15).to_text(), "0");
        assert_eq!(
            d("123456789012345678901234567890.55").round(1).to_text(),
            "123456789012345678901234567890.6"
        );
        assert_eq!(d("1e50").to_text(), "1e50");
        assert_eq!(d("0.000001").to_text(), "0.000001");
    }

    #[test]
    fn fast_rounding_agrees_with_decimal_rounding() {
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut checked = 0;
        for _ in 0..20_000 {
            let bits = next();
            let x = match bits % 4 {
                0 => (bits >> 8) as f64 / 1000.0,
                1 => -((bits >> 20) as f64) / 100_000.0,
                2 => f64::from_bits(bits),
                _ => ((bits >> 40) as f64) + 0.5,
            };
            if !x.is_finite() {
                continue;
            }
            let decimals = (next() % 8) as u32;
            let slow = Num::from_decimal(&Num::Float(x).to_decimal().round(decimals));
            if let Some(fast) = round_f64(x, decimals) {
                assert!(
                    numbers_equal(&fast, &slow),
                    "round({x}, {decimals}): {fast:?} vs {slow:?}"
                );
                checked += 1;
            }
        }
        assert!(checked > 10_000);
        assert_eq!(round_f64(1.005, 2), Some(Num::Float(1.01)));
        assert_eq!(round_f64(-2.5, 0), Some(Num::Int(-3)));
        assert_eq!(round_f64(0.0004, 3), Some(Num::Int(0)));
    }

    #[test]
    fn float_text_follows_javascript() {
        assert_eq!(Num::Float(100.5).text(), "100.5");
        assert_eq!(Num::Float(1e21).text(), "1e+21");
        assert_eq!(Num::Float(1.5e-7).text(), "1.5e-7");
        assert_eq!(Num::Float(0.1 + 0.2).text(), "0.30000000000000004");
        assert_eq!(Num::from_f64(200.0), Some(Num::Int(200)));
        assert_eq!(Num::from_f64(f64::INFINITY), None);
    }
}
