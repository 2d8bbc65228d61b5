//! Transformations: compiled from the schema's `Transformation`s (regexes, date formats and
//! expressions built once), their static type rules, and running them on one value.
//!
//! `null` and missing values pass through every transformation untouched, except `custom`,
//! which sees them as `()` and may return a value.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono_tz::Tz;
use hub_core::model::Transformation;
use regex::Regex;

use crate::date::{self, DateInput, DateOutput};
use crate::error::{ErrorCode, Issue};
use crate::expr::{self, ExprFailure, Inputs};
use crate::value::{Num, Val};

/// Longest compiled form of a tenant's regular expression (the regex crate's own default is
/// 10 MiB; a tenant's pattern does not need that much memory).
pub(crate) const REGEX_SIZE_LIMIT: usize = 1 << 20;

#[derive(Debug, Clone)]
pub(crate) enum Step {
    Uppercase,
    Lowercase,
    Trim,
    Truncate(usize),
    Replace {
        search: String,
        replace: String,
    },
    RegexReplace {
        regex: Regex,
        replace: String,
    },
    Split {
        separator: String,
        index: usize,
    },
    Concat {
        prefix: String,
        suffix: String,
    },
    Round(u32),
    Multiply(Num),
    Divide(f64),
    CurrencyConvert {
        from: String,
        to: String,
        /// Units of `to` per one `from`, from the schema; else the task's table.
        rate: Option<f64>,
    },
    ParseDate {
        input: DateInput,
        zone: Option<Tz>,
        format: String,
    },
    FormatDate {
        output: DateOutput,
        zone: Option<Tz>,
    },
    AddDays(i32),
    ToTimestamp,
    ToIsoString,
    ToString,
    ToNumber,
    ToBoolean,
    ToArray,
    ToDate,
    Custom(expr::Expr),
}

/// What the compiler knows about a value's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Any,
    Text,
    /// Text that holds a date (a `date` or `datetime` field of the source entity).
    DateText,
    Number,
    Bool,
    Date,
    Array,
    Object,
}

impl Ty {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Ty::Any => "any value",
            Ty::Text => "text",
            Ty::DateText => "date text",
            Ty::Number => "a number",
            Ty::Bool => "a boolean",
            Ty::Date => "a date",
            Ty::Array => "an array",
            Ty::Object => "an object",
        }
    }
}

impl Step {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Step::Uppercase => "uppercase",
            Step::Lowercase => "lowercase",
            Step::Trim => "trim",
            Step::Truncate(_) => "truncate",
            Step::Replace { .. } => "replace",
            Step::RegexReplace { .. } => "regex_replace",
            Step::Split { .. } => "split",
            Step::Concat { .. } => "concat",
            Step::Round(_) => "round",
            Step::Multiply(_) => "multiply",
            Step::Divide(_) => "divide",
            Step::CurrencyConvert { .. } => "currency_convert",
            Step::ParseDate { .. } => "parse_date",
            Step::FormatDate { .. } => "format_date",
            Step::AddDays(_) => "add_days",
            Step::ToTimestamp => "to_timestamp",
            Step::ToIsoString => "to_iso_string",
            Step::ToString => "to_string",
            Step::ToNumber => "to_number",
            Step::ToBoolean => "to_boolean",
            Step::ToArray => "to_array",
            Step::ToDate => "to_date",
            Step::Custom(_) => "custom",
        }
    }

    /// The type of the result for an input of type `input`, or why the step cannot take it.
    pub(crate) fn check(&self, input: Ty) -> Result<Ty, String> {
        use Ty::*;
        let refuse = || {
            Err(format!(
                "`{}` cannot convert {}{}",
                self.name(),
                input.name(),
                match input {
                    Date => " (turn it into text first with `format_date` or `to_iso_string`)",
                    _ => "",
                }
            ))
        };
        match self {
            Step::Uppercase
            | Step::Lowercase
            | Step::Trim
            | Step::Truncate(_)
            | Step::Replace { .. }
            | Step::RegexReplace { .. }
            | Step::Split { .. }
            | Step::Concat { .. } => match input {
                Any | Text | DateText | Number | Bool => Ok(Text),
                Date | Array | Object => refuse(),
            },
            Step::Round(_) | Step::Multiply(_) | Step::Divide(_) | Step::CurrencyConvert { .. } => {
                match input {
                    Any | Text | Number => Ok(Number),
                    DateText | Bool | Date | Array | Object => refuse(),
                }
            }
            Step::ParseDate { .. }
            | Step::AddDays(_)
            | Step::ToDate
            | Step::FormatDate { .. }
            | Step::ToTimestamp
            | Step::ToIsoString => match input {
                Any | Text | DateText | Number | Date => Ok(match self {
                    Step::FormatDate {
                        output: DateOutput::EpochMillis | DateOutput::EpochSeconds,
                        ..
                    }
                    | Step::ToTimestamp => Number,
                    Step::FormatDate { .. } => Text,
                    Step::ToIsoString => DateText,
                    _ => Date,
                }),
                Bool | Array | Object => refuse(),
            },
            Step::ToString => Ok(Text),
            Step::ToNumber => match input {
                Array | Object => refuse(),
                _ => Ok(Number),
            },
            Step::ToBoolean => match input {
                Any | Text | Number | Bool => Ok(Bool),
                DateText | Date | Array | Object => refuse(),
            },
            Step::ToArray => Ok(Array),
            Step::Custom(_) => Ok(Any),
        }
    }
}

/// Everything of a schema's `Transformation` that can fail is checked here, once.
pub(crate) fn compile_step(t: &Transformation) -> Result<Step, (&'static str, String)> {
    use Transformation as T;
    Ok(match t {
        T::Uppercase => Step::Uppercase,
        T::Lowercase => Step::Lowercase,
        T::Trim => Step::Trim,
        T::Truncate(c) => Step::Truncate(c.max_length),
        T::Replace(c) => Step::Replace {
            search: c.search.clone(),
            replace: c.replace.clone(),
        },
        T::RegexReplace(c) => Step::RegexReplace {
            regex: compile_regex(&c.pattern).map_err(|m| ("pattern", m))?,
            replace: c.replace.clone(),
        },
        T::Split(c) => Step::Split {
            separator: c.separator.clone(),
            index: c.index,
        },
        T::Concat(c) => Step::Concat {
            prefix: c.prefix.clone().unwrap_or_default(),
            suffix: c.suffix.clone().unwrap_or_default(),
        },
        T::Round(c) => Step::Round(c.decimals),
        T::Multiply(c) => Step::Multiply(Num::from_json(&c.factor)),
        T::Divide(c) => Step::Divide(c.divisor.as_f64().unwrap_or(f64::NAN)),
        T::CurrencyConvert(c) => {
            let rate = match &c.rates {
                Some(_) if c.from == c.to => Some(1.0),
                Some(rates) => Some(
                    rates
                        .get(&c.to)
                        .and_then(serde_json::Number::as_f64)
                        .ok_or_else(|| ("rates", format!("has no rate for `{}`", c.to)))?,
                ),
                None => None,
            };
            Step::CurrencyConvert {
                from: c.from.clone(),
                to: c.to.clone(),
                rate,
            }
        }
        T::ParseDate(c) => Step::ParseDate {
            input: date::compile_input(&c.format).map_err(|m| ("format", m))?,
            zone: c.timezone.as_ref().map(|z| z.tz()),
            format: c.format.clone(),
        },
        T::FormatDate(c) => Step::FormatDate {
            output: date::compile_output(&c.format).map_err(|m| ("format", m))?,
            zone: c.timezone.as_ref().map(|z| z.tz()),
        },
        T::AddDays(c) => Step::AddDays(c.days),
        T::ToTimestamp => Step::ToTimestamp,
        T::ToIsoString => Step::ToIsoString,
        T::ToString => Step::ToString,
        T::ToNumber => Step::ToNumber,
        T::ToBoolean => Step::ToBoolean,
        T::ToArray => Step::ToArray,
        T::ToDate => Step::ToDate,
        T::Custom(c) => Step::Custom(expr::compile(&c.expression).map_err(|m| ("expression", m))?),
    })
}

pub(crate) fn compile_regex(pattern: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|error| format!("invalid regular expression: {error}"))
}

/// What running a step needs besides the value.
pub(crate) struct StepContext<'c, 'r> {
    /// Rates of the task's currency table: units per one unit of its base currency.
    pub(crate) rates: Option<&'c BTreeMap<String, f64>>,
    pub(crate) inputs: Inputs<'c, 'r>,
}

fn invalid_type(step: &Step, value: &Val<'_>) -> Issue {
    Issue::new(
        ErrorCode::InvalidType,
        format!("`{}` cannot convert {}", step.name(), value.kind_name()),
    )
}

/// The text a string transformation works on.
fn text_of<'v, 'r>(step: &Step, value: &'v Val<'r>) -> Result<Cow<'v, str>, Issue> {
    value.scalar_text().ok_or_else(|| invalid_type(step, value))
}

/// Numbers as people write them in text: `12`, `-3.5`, `+4`, `.5`, `5.`, `1e3`, with
/// surrounding whitespace. Thousands separators and currency signs are refused.
pub(crate) fn parse_number_text(text: &str) -> Option<Num> {
    let t = text.trim();
    let (sign, body) = match t.as_bytes().first()? {
        b'-' => ("-", &t[1..]),
        b'+' => ("", &t[1..]),
        _ => ("", t),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return None;
    }
    if let Some(e) = exponent {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        if digits.is_empty() || !all_digits(digits) {
            return None;
        }
    }
    let int_part = int_part.trim_start_matches('0');
    let mut normal = String::with_capacity(t.len() + 2);
    normal.push_str(sign);
    normal.push_str(if int_part.is_empty() { "0" } else { int_part });
    if !frac_part.is_empty() {
        normal.push('.');
        normal.push_str(frac_part);
    }
    if let Some(e) = exponent {
        normal.push('e');
        normal.push_str(e);
    }
    Some(Num::from_text(&normal))
}

fn number_of(step: &Step, value: &Val<'_>) -> Result<Num, Issue> {
    match value {
        Val::Num(n) => Ok(n.clone()),
        Val::Str(s) => parse_number_text(s).ok_or_else(|| {
            Issue::new(
                ErrorCode::InvalidNumber,
                format!(
                    "`{}` needs a number, got the text {}",
                    step.name(),
                    quote(s)
                ),
            )
        }),
        other => Err(invalid_type(step, other)),
    }
}

fn date_of(step: &Step, value: &Val<'_>) -> Result<date::DateVal, Issue> {
    match value {
        Val::Date(d) => Ok(*d),
        Val::Num(_) | Val::Str(_) => date::to_date(value, None).ok_or_else(|| {
            Issue::new(
                ErrorCode::InvalidDate,
                format!(
                    "`{}` needs a date (ISO 8601, RFC 2822 or epoch), got {}",
                    step.name(),
                    describe(value)
                ),
            )
        }),
        other => Err(invalid_type(step, other)),
    }
}

/// A short rendering of a value for messages (long text is cut).
pub(crate) fn describe(value: &Val<'_>) -> String {
    match value.scalar_text() {
        Some(text) if matches!(value, Val::Str(_)) => format!("the text {}", quote(&text)),
        Some(text) => text.into_owned(),
        None => value.kind_name().to_owned(),
    }
}

pub(crate) fn quote(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("\"{}…\"", &text[..cut]),
        None => format!("\"{text}\""),
    }
}

fn number_result(step: &Step, x: f64) -> Result<Val<'static>, Issue> {
    Num::from_f64(x).map(Val::Num).ok_or_else(|| {
        Issue::new(
            ErrorCode::NumberOutOfRange,
            format!("`{}` gives a number out of range", step.name()),
        )
    })
}

fn finite(step: &Step, n: &Num) -> Result<f64, Issue> {
    let x = n.to_f64();
    if x.is_finite() {
        Ok(x)
    } else {
        Err(Issue::new(
            ErrorCode::NumberOutOfRange,
            format!("`{}` cannot compute with {}", step.name(), n.text()),
        ))
    }
}

/// Runs a chain. `None` is a missing value.
pub(crate) fn run<'r>(
    steps: &[Step],
    mut value: Option<Val<'r>>,
    ctx: &StepContext<'_, 'r>,
) -> Result<Option<Val<'r>>, Issue> {
    for step in steps {
        value = match (step, value) {
            (Step::Custom(expr), current) => {
                let input = current.unwrap_or(Val::Null);
                match expr::eval(expr, &input, &ctx.inputs) {
                    Ok(result) => Some(result),
                    Err(ExprFailure::Failed(m)) => {
                        return Err(Issue::new(ErrorCode::ExpressionFailed, m));
                    }
                    Err(ExprFailure::Limit(m)) => {
                        return Err(Issue::new(ErrorCode::ExpressionLimit, m));
                    }
                }
            }
            (_, None) => None,
            (_, Some(Val::Null)) => Some(Val::Null),
            (step, Some(current)) => apply(step, current, ctx)?,
        };
    }
    Ok(value)
}

fn map_text<'r>(value: Val<'r>, f: impl FnOnce(&str) -> String) -> Val<'r> {
    Val::Str(Cow::Owned(match &value {
        Val::Str(s) => f(s),
        other => f(&other.scalar_text().unwrap_or_default()),
    }))
}

fn apply<'r>(
    step: &Step,
    value: Val<'r>,
    ctx: &StepContext<'_, 'r>,
) -> Result<Option<Val<'r>>, Issue> {
    if matches!(
        step,
        Step::Uppercase
            | Step::Lowercase
            | Step::Trim
            | Step::Truncate(_)
            | Step::Replace { .. }
            | Step::RegexReplace { .. }
            | Step::Split { .. }
            | Step::Concat { .. }
    ) {
        text_of(step, &value)?;
    }
    Ok(Some(match step {
        Step::Uppercase => map_text(value, |s| {
            if s.is_ascii() {
                s.to_ascii_uppercase()
            } else {
                s.to_uppercase()
            }
        }),
        Step::Lowercase => map_text(value, |s| {
            if s.is_ascii() {
                s.to_ascii_lowercase()
            } else {
                s.to_lowercase()
            }
        }),
        Step::Trim => match value {
            Val::Str(Cow::Borrowed(s)) => Val::Str(Cow::Borrowed(s.trim())),
            other => map_text(other, |s| s.trim().to_owned()),
        },
        Step::Truncate(max) => {
            let text = text_of(step, &value)?;
            match text.char_indices().nth(*max) {
                None => Val::Str(Cow::Owned(text.into_owned())),
                Some((cut, _)) => Val::Str(Cow::Owned(text[..cut].to_owned())),
            }
        }
        Step::Replace { search, replace } => match value {
            Val::Str(Cow::Borrowed(s)) if !s.contains(search.as_str()) => {
                Val::Str(Cow::Borrowed(s))
            }
            other => map_text(other, |s| {
                let mut chars = search.chars();
                match (chars.next(), chars.next()) {
                    // A one-character search string takes std's faster `char` pattern.
                    (Some(c), None) => s.replace(c, replace),
                    _ => s.replace(search.as_str(), replace),
                }
            }),
        },
        Step::RegexReplace { regex, replace } => map_text(value, |s| {
            regex.replace_all(s, replace.as_str()).into_owned()
        }),
        Step::Split { separator, index } => {
            let text = text_of(step, &value)?;
            match text.split(separator.as_str()).nth(*index) {
                Some(part) => Val::Str(Cow::Owned(part.to_owned())),
                None => return Ok(None),
            }
        }
        Step::Concat { prefix, suffix } => map_text(value, |s| format!("{prefix}{s}{suffix}")),
        Step::Round(decimals) => match number_of(step, &value)? {
            Num::Int(i) => Val::Num(Num::Int(i)),
            Num::UInt(u) => Val::Num(Num::UInt(u)),
            Num::Float(f) => Val::Num(crate::value::round_f64(f, *decimals).unwrap_or_else(|| {
                Num::from_decimal(&Num::Float(f).to_decimal().round(*decimals))
            })),
            n => Val::Num(Num::from_decimal(&n.to_decimal().round(*decimals))),
        },
        Step::Multiply(factor) => {
            let n = number_of(step, &value)?;
            match (&n, factor) {
                (Num::Int(a), Num::Int(b)) if a.checked_mul(*b).is_some() => {
                    Val::Num(Num::Int(a * b))
                }
                _ => number_result(step, finite(step, &n)? * factor.to_f64())?,
            }
        }
        Step::Divide(divisor) => {
            let n = number_of(step, &value)?;
            number_result(step, finite(step, &n)? / divisor)?
        }
        Step::CurrencyConvert { from, to, rate } => {
            let n = number_of(step, &value)?;
            let rate = match rate {
                Some(rate) => *rate,
                None if from == to => 1.0,
                None => task_rate(ctx.rates, from, to)?,
            };
            number_result(step, finite(step, &n)? * rate)?
        }
        Step::ParseDate {
            input,
            zone,
            format,
        } => match date::parse_with(&value, input, *zone) {
            Some(d) => Val::Date(d),
            None if matches!(value, Val::Str(_) | Val::Num(_)) => {
                return Err(Issue::new(
                    ErrorCode::InvalidDate,
                    format!(
                        "{} does not match the date format `{format}`",
                        describe(&value)
                    ),
                ));
            }
            None => return Err(invalid_type(step, &value)),
        },
        Step::FormatDate { output, zone } => {
            let d = date_of(step, &value)?;
            date::format_with(&d, output, *zone).ok_or_else(|| {
                Issue::new(
                    ErrorCode::InvalidDate,
                    format!("cannot write {} in the requested format", d.to_iso_string()),
                )
            })?
        }
        Step::AddDays(days) => {
            let d = date_of(step, &value)?;
            Val::Date(d.add_days(*days).ok_or_else(|| {
                Issue::new(
                    ErrorCode::InvalidDate,
                    format!("{} plus {days} days is out of range", d.to_iso_string()),
                )
            })?)
        }
        Step::ToTimestamp => Val::Num(Num::Int(date_of(step, &value)?.epoch_millis())),
        Step::ToIsoString => Val::Str(Cow::Owned(date_of(step, &value)?.to_iso_string())),
        Step::ToDate => Val::Date(date_of(step, &value)?),
        Step::ToString => match value {
            Val::Str(s) => Val::Str(s),
            Val::Ref(_) | Val::List(_) | Val::Json(_) => {
                Val::Str(Cow::Owned(value.to_json().to_string()))
            }
            other => Val::Str(Cow::Owned(
                other.scalar_text().unwrap_or_default().into_owned(),
            )),
        },
        Step::ToNumber => match value {
            Val::Num(n) => Val::Num(n),
            Val::Bool(b) => Val::Num(Num::Int(i64::from(b))),
            Val::Date(d) => Val::Num(Num::Int(d.epoch_millis())),
            other => Val::Num(number_of(step, &other)?),
        },
        Step::ToBoolean => match &value {
            Val::Bool(b) => Val::Bool(*b),
            Val::Num(n) => Val::Bool(!n.to_decimal().is_zero()),
            Val::Str(s) => Val::Bool(parse_bool(s).ok_or_else(|| {
                Issue::new(
                    ErrorCode::InvalidBoolean,
                    format!(
                        "`to_boolean` reads true/false, yes/no, y/n, on/off or 1/0, got {}",
                        describe(&value)
                    ),
                )
            })?),
            other => return Err(invalid_type(step, other)),
        },
        Step::ToArray => match value {
            Val::List(items) => Val::List(items),
            Val::Ref(view) if view.array_len().is_some() => Val::Ref(view),
            Val::Json(json) if json.is_array() => Val::Json(json),
            other => Val::List(vec![other]),
        },
        Step::Custom(_) => return Ok(Some(value)),
    }))
}

fn parse_bool(text: &str) -> Option<bool> {
    let t = text.trim();
    const TRUE: [&str; 5] = ["true", "yes", "y", "on", "1"];
    const FALSE: [&str; 6] = ["false", "no", "n", "off", "0", ""];
    if TRUE.iter().any(|w| w.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if FALSE.iter().any(|w| w.eq_ignore_ascii_case(t)) {
        Some(false)
    } else {
        None
    }
}

fn task_rate(rates: Option<&BTreeMap<String, f64>>, from: &str, to: &str) -> Result<f64, Issue> {
    let missing = |code: &str| {
        Issue::new(
            ErrorCode::MissingCurrencyRate,
            format!(
                "no rate for `{code}`: give `rates` in the transformation or a `currencyRates` table in the sync task's config"
            ),
        )
    };
    let rates = rates.ok_or_else(|| missing(to))?;
    let per_base_from = *rates.get(from).ok_or_else(|| missing(from))?;
    let per_base_to = *rates.get(to).ok_or_else(|| missing(to))?;
    Ok(per_base_to / per_base_from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_text() {
        let n = |t: &str| parse_number_text(t);
        assert_eq!(n(" 12 "), Some(Num::Int(12)));
        assert_eq!(n("+4"), Some(Num::Int(4)));
        assert_eq!(n("-3.5"), Some(Num::Float(-3.5)));
        assert_eq!(n(".5"), Some(Num::Float(0.5)));
        assert_eq!(n("5."), Some(Num::Int(5)));
        assert_eq!(n("007"), Some(Num::Int(7)));
        assert_eq!(n("1e3"), Some(Num::Float(1000.0)));
        assert_eq!(
            n("123456789012345678901234567890"),
            Some(Num::Big("123456789012345678901234567890".into()))
        );
        for bad in [
            "", " ", "1,000", "$5", "1e", "e5", "--1", "1.2.3", "NaN", "inf", "0x10", "١٢",
        ] {
            assert_eq!(n(bad), None, "{bad}");
        }
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool(" Yes "), Some(true));
        assert_eq!(parse_bool("OFF"), Some(false));
        assert_eq!(parse_bool(""), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn quotes_cut_long_text() {
        let long = "é".repeat(100);
        assert_eq!(quote(&long).chars().count(), 63);
        assert_eq!(quote("ab"), "\"ab\"");
    }
}
