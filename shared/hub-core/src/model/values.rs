//! Domain newtypes that cannot hold invalid values; each is parsed once, at the edge.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use chrono::TimeDelta;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const MAX_IDENTIFIER_LEN: usize = 128;

/// Identifiers end up inside table keys (`tenant#entityType`) and secret names
/// (`hub/<tenantId>/<connectionId>`), so they may not contain separators of either.
fn check_identifier(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_IDENTIFIER_LEN {
        return Err(format!(
            "a {what} is 1 to {MAX_IDENTIFIER_LEN} characters long, got {}",
            value.len()
        ));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "a {what} is made of letters, digits, `-`, `_` and `.`; `{value}` contains {bad:?}"
        ));
    }
    Ok(())
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $what:literal, $extra:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, String> {
                let value = value.into();
                check_identifier($what, &value)?;
                let extra: fn(&str) -> Result<(), String> = $extra;
                extra(&value)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(value: String) -> Result<Self, String> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(value: &str) -> Result<Self, String> {
                Self::parse(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

identifier!(
    /// A tenant. `system` is reserved: it names the owner of system-scope secrets.
    TenantId,
    "tenant id",
    |value| {
        if value.eq_ignore_ascii_case(SYSTEM_OWNER) {
            Err("`system` is reserved and cannot be a tenant id".into())
        } else {
            Ok(())
        }
    }
);

identifier!(
    /// A connection (one set of credentials for one integration).
    ConnectionId,
    "connection id",
    |_| Ok(())
);

const SECRET_PREFIX: &str = "hub";
const SYSTEM_OWNER: &str = "system";

/// Who a secret belongs to: the platform (system-scope connections, OAuth apps) or one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretOwner {
    System,
    Tenant(TenantId),
}

/// The name of a secret in the secret store, `hub/<tenantId>/<name>` or `hub/system/<name>`.
/// Documents hold this instead of credentials; the secret's content is `Credentials`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretRef {
    full: String,
    owner: SecretOwner,
}

impl SecretRef {
    /// The secret of a connection: `hub/<tenantId>/<connectionId>`, or `hub/system/<connectionId>`
    /// for a system-scope connection (`tenant: None`).
    pub fn for_connection(tenant: Option<&TenantId>, connection: &ConnectionId) -> Self {
        let owner = match tenant {
            Some(tenant) => SecretOwner::Tenant(tenant.clone()),
            None => SecretOwner::System,
        };
        let owner_segment = tenant.map_or(SYSTEM_OWNER, TenantId::as_str);
        Self {
            full: format!("{SECRET_PREFIX}/{owner_segment}/{connection}"),
            owner,
        }
    }

    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let full = value.into();
        let shape_error = || {
            format!(
                "a secret reference is `hub/<tenantId>/<name>` or `hub/system/<name>`, got `{full}`"
            )
        };
        let mut segments = full.split('/');
        let (Some(SECRET_PREFIX), Some(owner), Some(name), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(shape_error());
        };
        check_identifier("secret name", name)?;
        let owner = if owner == SYSTEM_OWNER {
            SecretOwner::System
        } else {
            SecretOwner::Tenant(TenantId::parse(owner)?)
        };
        Ok(Self { full, owner })
    }

    pub fn owner(&self) -> &SecretOwner {
        &self.owner
    }

    pub fn as_str(&self) -> &str {
        &self.full
    }
}

impl TryFrom<String> for SecretRef {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(value)
    }
}

impl From<SecretRef> for String {
    fn from(value: SecretRef) -> String {
        value.full
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

/// A standard five-field cron expression (minute hour day-of-month month day-of-week, or a
/// nickname such as `@daily`), parsed with `croner`. The text is kept as written so documents
/// round-trip unchanged.
#[derive(Clone)]
pub struct CronExpression {
    source: String,
    // Boxed: a parsed pattern is ~350 bytes and would bloat every schedule enum.
    cron: Box<Cron>,
}

impl CronExpression {
    pub fn parse(source: impl Into<String>) -> Result<Self, String> {
        let source = source.into();
        // Seconds and years are croner extensions; the specification says "standard cron".
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        match parser.parse(source.trim()) {
            Ok(cron) => Ok(Self {
                source,
                cron: Box::new(cron),
            }),
            Err(error) => Err(format!(
                "invalid cron expression `{source}` (expected five fields: minute hour \
                 day-of-month month day-of-week): {error}"
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The parsed schedule, for computing occurrences.
    pub fn cron(&self) -> &Cron {
        &self.cron
    }
}

impl PartialEq for CronExpression {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for CronExpression {}

impl fmt::Debug for CronExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CronExpression").field(&self.source).finish()
    }
}

impl fmt::Display for CronExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for CronExpression {
    type Err = String;

    fn from_str(source: &str) -> Result<Self, String> {
        Self::parse(source)
    }
}

impl Serialize for CronExpression {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for CronExpression {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Self::parse(source).map_err(serde::de::Error::custom)
    }
}

/// An IANA time zone name (`America/New_York`, `UTC`), checked against the tz database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeZoneName(chrono_tz::Tz);

impl TimeZoneName {
    pub fn parse(name: &str) -> Result<Self, String> {
        name.parse::<chrono_tz::Tz>().map(Self).map_err(|_| {
            format!("unknown time zone `{name}` (expected an IANA name such as `America/New_York`)")
        })
    }

    pub fn tz(&self) -> chrono_tz::Tz {
        self.0
    }

    pub fn as_str(&self) -> &'static str {
        self.0.name()
    }
}

impl From<chrono_tz::Tz> for TimeZoneName {
    fn from(tz: chrono_tz::Tz) -> Self {
        Self(tz)
    }
}

impl fmt::Display for TimeZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TimeZoneName {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Self::parse(name)
    }
}

impl Serialize for TimeZoneName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TimeZoneName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::parse(&name).map_err(serde::de::Error::custom)
    }
}

/// How many units an interval schedule waits between runs: at least 1 and at most
/// [`IntervalCount::MAX`], which keeps every period representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u32")]
pub struct IntervalCount(NonZeroU32);

impl IntervalCount {
    /// A million units: about two years of minutes, which no schedule needs to exceed.
    pub const MAX: u32 = 1_000_000;

    pub fn new(count: u32) -> Result<Self, String> {
        match NonZeroU32::new(count) {
            Some(count) if count.get() <= Self::MAX => Ok(Self(count)),
            _ => Err(format!(
                "an interval is a whole number from 1 to {}, got {count}",
                Self::MAX
            )),
        }
    }

    pub fn get(self) -> u32 {
        self.0.get()
    }

    /// `self` times a unit of `unit_seconds` seconds.
    pub(crate) fn times(self, unit_seconds: i64) -> TimeDelta {
        TimeDelta::try_seconds(i64::from(self.get()) * unit_seconds).unwrap_or(TimeDelta::MAX)
    }
}

impl TryFrom<u64> for IntervalCount {
    type Error = String;

    fn try_from(count: u64) -> Result<Self, String> {
        u32::try_from(count)
            .map_err(|_| format!("an interval is at most {}, got {count}", Self::MAX))
            .and_then(Self::new)
    }
}

impl From<IntervalCount> for u32 {
    fn from(count: IntervalCount) -> u32 {
        count.get()
    }
}

/// The token a webhook caller proves itself with. Stored with the task (the specification puts
/// it there), but never shown by `Debug`, and compared in constant time.
#[derive(Clone)]
pub struct VerificationToken(SecretString);

impl VerificationToken {
    pub fn new(token: impl Into<String>) -> Result<Self, String> {
        let token = token.into();
        if token.trim().is_empty() {
            return Err("a verification token must not be empty".into());
        }
        Ok(Self(SecretString::from(token)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Constant-time comparison with what a caller presented.
    pub fn matches(&self, presented: &str) -> bool {
        let expected = self.0.expose_secret().as_bytes();
        let presented = presented.as_bytes();
        let mut difference = u8::from(expected.len() != presented.len());
        for (index, byte) in expected.iter().enumerate() {
            difference |= byte ^ presented.get(index).copied().unwrap_or(!byte);
        }
        difference == 0
    }
}

impl PartialEq for VerificationToken {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other.expose())
    }
}

impl Eq for VerificationToken {}

impl fmt::Debug for VerificationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerificationToken([redacted])")
    }
}

impl Serialize for VerificationToken {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for VerificationToken {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Not `String::deserialize` + message: a type error must not quote the token.
        let token = SecretString::deserialize(deserializer)?;
        Self::new(token.expose_secret().to_owned()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_reject_separators_and_the_reserved_owner() {
        assert!(TenantId::parse("acme-01").is_ok());
        assert!(TenantId::parse("acme#1").is_err());
        assert!(TenantId::parse("a/b").is_err());
        assert!(TenantId::parse("").is_err());
        assert!(TenantId::parse("System").is_err());
        assert!(ConnectionId::parse("system").is_ok());
        assert!(ConnectionId::parse("x".repeat(129)).is_err());
    }

    #[test]
    fn secret_refs_are_built_and_parsed_alike() {
        let tenant = TenantId::parse("acme").unwrap();
        let connection = ConnectionId::parse("conn-1").unwrap();
        let tenant_ref = SecretRef::for_connection(Some(&tenant), &connection);
        assert_eq!(tenant_ref.as_str(), "hub/acme/conn-1");
        assert_eq!(SecretRef::parse("hub/acme/conn-1").unwrap(), tenant_ref);
        assert_eq!(tenant_ref.owner(), &SecretOwner::Tenant(tenant));
        let system_ref = SecretRef::for_connection(None, &connection);
        assert_eq!(system_ref.as_str(), "hub/system/conn-1");
        assert_eq!(
            SecretRef::parse("hub/system/conn-1").unwrap().owner(),
            &SecretOwner::System
        );
        for bad in [
            "hub/acme",
            "hub/acme/c/d",
            "other/acme/c",
            "hub//c",
            "hub/acme/",
        ] {
            assert!(SecretRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cron_expressions_are_five_field_standard_cron() {
        assert_eq!(
            CronExpression::parse("0 2 * * *").unwrap().as_str(),
            "0 2 * * *"
        );
        assert!(CronExpression::parse("0 8 * * 1").is_ok());
        assert!(CronExpression::parse("@daily").is_ok());
        assert!(CronExpression::parse("*/15 9-17 * * MON-FRI").is_ok());
        assert!(
            CronExpression::parse("0 0 2 * * *").is_err(),
            "seconds are not standard"
        );
        assert!(CronExpression::parse("61 * * * *").is_err());
        assert!(CronExpression::parse("every day").is_err());
        assert!(CronExpression::parse("").is_err());
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert_eq!(TimeZoneName::parse("UTC").unwrap().as_str(), "UTC");
        assert_eq!(
            TimeZoneName::parse("America/New_York").unwrap().tz(),
            chrono_tz::America::New_York
        );
        assert!(TimeZoneName::parse("Mars/Olympus_Mons").is_err());
        assert!(TimeZoneName::parse("").is_err());
    }

    #[test]
    fn interval_counts_are_positive_and_bounded() {
        assert_eq!(IntervalCount::new(15).unwrap().get(), 15);
        assert!(IntervalCount::new(0).is_err());
        assert!(IntervalCount::try_from(u64::from(u32::MAX) + 1).is_err());
        assert!(IntervalCount::new(IntervalCount::MAX + 1).is_err());
        let longest = IntervalCount::new(IntervalCount::MAX)
            .unwrap()
            .times(7 * 24 * 3600);
        assert_eq!(longest.num_weeks(), i64::from(IntervalCount::MAX));
    }

    #[test]
    fn verification_tokens_are_redacted_and_compared_whole() {
        let token = VerificationToken::new("s3cr3t-token").unwrap();
        assert!(!format!("{token:?}").contains("s3cr3t"));
        assert!(token.matches("s3cr3t-token"));
        assert!(!token.matches("s3cr3t-toke"));
        assert!(!token.matches("s3cr3t-token!"));
        assert!(!token.matches(""));
        assert!(VerificationToken::new("  ").is_err());
    }
}
