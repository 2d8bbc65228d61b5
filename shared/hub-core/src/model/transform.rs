//! Transformations applied by `transform` mappings: `{ "type": ..., "config": {...} }` with a
//! config whose shape depends on the type (the specification's comments, made into types).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Number, Value};

use super::tagged::{NoFields, from_buffered};
use super::{JsonPath, ModelError, TimeZoneName, Validate};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransformationType {
    Uppercase,
    Lowercase,
    Trim,
    Truncate,
    Replace,
    RegexReplace,
    Split,
    Concat,
    Round,
    Multiply,
    Divide,
    CurrencyConvert,
    ParseDate,
    FormatDate,
    AddDays,
    ToTimestamp,
    ToIsoString,
    ToString,
    ToNumber,
    ToBoolean,
    ToArray,
    ToDate,
    Custom,
}

/// One step of a transform mapping.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "config", rename_all = "snake_case")]
pub enum Transformation {
    Uppercase,
    Lowercase,
    Trim,
    Truncate(TruncateConfig),
    Replace(ReplaceConfig),
    RegexReplace(RegexReplaceConfig),
    Split(SplitConfig),
    Concat(ConcatConfig),
    Round(RoundConfig),
    Multiply(MultiplyConfig),
    Divide(DivideConfig),
    CurrencyConvert(CurrencyConvertConfig),
    ParseDate(DateFormatConfig),
    FormatDate(DateFormatConfig),
    AddDays(AddDaysConfig),
    ToTimestamp,
    ToIsoString,
    ToString,
    ToNumber,
    ToBoolean,
    ToArray,
    ToDate,
    Custom(CustomConfig),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TruncateConfig {
    pub max_length: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplaceConfig {
    /// Literal text; every occurrence is replaced.
    pub search: String,
    pub replace: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegexReplaceConfig {
    /// Compiled by the mapping engine when it compiles the schema.
    pub pattern: String,
    pub replace: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SplitConfig {
    pub separator: String,
    /// Which part to keep, from 0.
    pub index: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConcatConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoundConfig {
    pub decimals: u32,
}

/// Numbers keep their JSON form (`100` stays `100`, not `100.0`) so documents round-trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MultiplyConfig {
    pub factor: Number,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DivideConfig {
    pub divisor: Number,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CurrencyConvertConfig {
    /// ISO 4217 codes (`USD`).
    pub from: String,
    pub to: String,
    /// Units of each currency per one unit of `from`; when absent the engine uses its rate
    /// source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rates: Option<BTreeMap<String, Number>>,
}

/// `parse_date` and `format_date`: a strftime-style format (`%Y-%m-%d`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DateFormatConfig {
    pub format: String,
    /// Not in the specification: the zone in which `parse_date` reads a wall-clock time that
    /// carries no offset, and in which `format_date` writes; UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<TimeZoneName>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddDaysConfig {
    pub days: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomConfig {
    pub expression: String,
}

impl Transformation {
    pub fn kind(&self) -> TransformationType {
        use TransformationType as T;
        match self {
            Self::Uppercase => T::Uppercase,
            Self::Lowercase => T::Lowercase,
            Self::Trim => T::Trim,
            Self::Truncate(_) => T::Truncate,
            Self::Replace(_) => T::Replace,
            Self::RegexReplace(_) => T::RegexReplace,
            Self::Split(_) => T::Split,
            Self::Concat(_) => T::Concat,
            Self::Round(_) => T::Round,
            Self::Multiply(_) => T::Multiply,
            Self::Divide(_) => T::Divide,
            Self::CurrencyConvert(_) => T::CurrencyConvert,
            Self::ParseDate(_) => T::ParseDate,
            Self::FormatDate(_) => T::FormatDate,
            Self::AddDays(_) => T::AddDays,
            Self::ToTimestamp => T::ToTimestamp,
            Self::ToIsoString => T::ToIsoString,
            Self::ToString => T::ToString,
            Self::ToNumber => T::ToNumber,
            Self::ToBoolean => T::ToBoolean,
            Self::ToArray => T::ToArray,
            Self::ToDate => T::ToDate,
            Self::Custom(_) => T::Custom,
        }
    }

    /// The transformation of a type that takes no config.
    fn without_config(kind: TransformationType) -> Option<Self> {
        use TransformationType as T;
        Some(match kind {
            T::Uppercase => Self::Uppercase,
            T::Lowercase => Self::Lowercase,
            T::Trim => Self::Trim,
            T::ToTimestamp => Self::ToTimestamp,
            T::ToIsoString => Self::ToIsoString,
            T::ToString => Self::ToString,
            T::ToNumber => Self::ToNumber,
            T::ToBoolean => Self::ToBoolean,
            T::ToArray => Self::ToArray,
            T::ToDate => Self::ToDate,
            T::Truncate
            | T::Replace
            | T::RegexReplace
            | T::Split
            | T::Concat
            | T::Round
            | T::Multiply
            | T::Divide
            | T::CurrencyConvert
            | T::ParseDate
            | T::FormatDate
            | T::AddDays
            | T::Custom => return None,
        })
    }
}

/// Deserialises the `config` member for a known type. Types without a config accept an absent,
/// `null` or empty `config` (editors tend to send `{}`).
struct ConfigSeed(TransformationType);

impl<'de> DeserializeSeed<'de> for ConfigSeed {
    type Value = Transformation;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Transformation, D::Error> {
        use Transformation as X;
        use TransformationType as T;
        fn plain<'de, D: Deserializer<'de>>(
            d: D,
            t: Transformation,
        ) -> Result<Transformation, D::Error> {
            Option::<NoFields>::deserialize(d).map(|_| t)
        }
        match self.0 {
            T::Uppercase => plain(d, X::Uppercase),
            T::Lowercase => plain(d, X::Lowercase),
            T::Trim => plain(d, X::Trim),
            T::ToTimestamp => plain(d, X::ToTimestamp),
            T::ToIsoString => plain(d, X::ToIsoString),
            T::ToString => plain(d, X::ToString),
            T::ToNumber => plain(d, X::ToNumber),
            T::ToBoolean => plain(d, X::ToBoolean),
            T::ToArray => plain(d, X::ToArray),
            T::ToDate => plain(d, X::ToDate),
            T::Truncate => Deserialize::deserialize(d).map(X::Truncate),
            T::Replace => Deserialize::deserialize(d).map(X::Replace),
            T::RegexReplace => Deserialize::deserialize(d).map(X::RegexReplace),
            T::Split => Deserialize::deserialize(d).map(X::Split),
            T::Concat => Deserialize::deserialize(d).map(X::Concat),
            T::Round => Deserialize::deserialize(d).map(X::Round),
            T::Multiply => Deserialize::deserialize(d).map(X::Multiply),
            T::Divide => Deserialize::deserialize(d).map(X::Divide),
            T::CurrencyConvert => Deserialize::deserialize(d).map(X::CurrencyConvert),
            T::ParseDate => Deserialize::deserialize(d).map(X::ParseDate),
            T::FormatDate => Deserialize::deserialize(d).map(X::FormatDate),
            T::AddDays => Deserialize::deserialize(d).map(X::AddDays),
            T::Custom => Deserialize::deserialize(d).map(X::Custom),
        }
    }
}

impl<'de> Deserialize<'de> for Transformation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(TransformationVisitor)
    }
}

struct TransformationVisitor;

const MEMBERS: &[&str] = &["type", "config"];

impl<'de> Visitor<'de> for TransformationVisitor {
    type Value = Transformation;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a transformation object with a `type`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Transformation, A::Error> {
        let mut kind: Option<TransformationType> = None;
        let mut parsed: Option<Transformation> = None;
        // A `config` that comes before `type` cannot be typed yet.
        let mut buffered: Option<Value> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "type" if kind.is_some() => return Err(de::Error::duplicate_field("type")),
                "type" => kind = Some(map.next_value()?),
                "config" if parsed.is_some() || buffered.is_some() => {
                    return Err(de::Error::duplicate_field("config"));
                }
                "config" => match kind {
                    Some(kind) => parsed = Some(map.next_value_seed(ConfigSeed(kind))?),
                    None => buffered = Some(map.next_value()?),
                },
                other => return Err(de::Error::unknown_field(other, MEMBERS)),
            }
        }
        let kind = kind.ok_or_else(|| de::Error::missing_field("type"))?;
        if let Some(transformation) = parsed {
            return Ok(transformation);
        }
        if let Some(config) = buffered {
            return from_buffered(config, Some("config"), |d| ConfigSeed(kind).deserialize(d));
        }
        Transformation::without_config(kind).ok_or_else(|| de::Error::missing_field("config"))
    }
}

fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

impl Validate for Transformation {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        let config = at.key("config");
        match self {
            Self::Truncate(c) if c.max_length == 0 => {
                Err(config.key("maxLength").invalid("must be at least 1"))
            }
            Self::Replace(c) if c.search.is_empty() => {
                Err(config.key("search").invalid("must not be empty"))
            }
            Self::RegexReplace(c) if c.pattern.is_empty() => {
                Err(config.key("pattern").invalid("must not be empty"))
            }
            Self::Split(c) if c.separator.is_empty() => {
                Err(config.key("separator").invalid("must not be empty"))
            }
            Self::Concat(c) if c.prefix.is_none() && c.suffix.is_none() => {
                Err(config.invalid("needs a `prefix`, a `suffix` or both"))
            }
            // An f64 holds about 15 significant decimal digits.
            Self::Round(c) if c.decimals > 15 => {
                Err(config.key("decimals").invalid("must be at most 15"))
            }
            Self::Divide(c) if c.divisor.as_f64() == Some(0.0) => {
                Err(config.key("divisor").invalid("must not be zero"))
            }
            Self::CurrencyConvert(c) => {
                for (member, code) in [("from", &c.from), ("to", &c.to)] {
                    if !is_currency_code(code) {
                        return Err(config.key(member).invalid(format!(
                            "must be an ISO 4217 code such as `USD`, got `{code}`"
                        )));
                    }
                }
                for (code, rate) in c.rates.iter().flatten() {
                    let at = config.key("rates").key(code);
                    if !is_currency_code(code) {
                        return Err(at.invalid("keys must be ISO 4217 codes such as `EUR`"));
                    }
                    if rate.as_f64().is_none_or(|rate| rate <= 0.0) {
                        return Err(at.invalid("a rate must be greater than zero"));
                    }
                }
                Ok(())
            }
            Self::ParseDate(c) | Self::FormatDate(c) => config.key("format").non_empty(&c.format),
            Self::Custom(c) => config.key("expression").non_empty(&c.expression),
            _ => Ok(()),
        }
    }
}
