//! The configuration of one webhook route: which provider scheme verifies it, the references of
//! its secrets, and its limits. JSON in camelCase, read with `hub_core::model::load_json`, so a
//! bad document is refused with the JSON path of the offending value.

use std::fmt;
use std::marker::PhantomData;
use std::net::IpAddr;

use hub_core::model::{JsonPath, ModelError, SecretRef, Validate};
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::crypto::HmacAlgorithm;

/// The body limit when a route sets none.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;
/// The most a route may allow: Lambda's synchronous invocation payload limit.
pub const MAX_BODY_BYTES_LIMIT: u64 = 6 * 1024 * 1024;
/// The replay window of every timestamped scheme unless the route sets one: the providers'
/// own libraries use five minutes (Stripe, Slack, Standard Webhooks, HubSpot v3).
pub const DEFAULT_TOLERANCE_SECONDS: u64 = 300;
const MAX_TOLERANCE_SECONDS: u64 = 86_400;
const MAX_SECRETS: usize = 5;

/// One webhook endpoint of a tenant integration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteConfig {
    pub scheme: SchemeConfig,
    /// Names in the secret store of the route's active secrets. Every one is tried, so a secret
    /// is rotated by adding the new reference, switching the provider over, then removing the
    /// old one. For Microsoft Graph these are `clientState` values, for Meta the App Secrets.
    pub secrets: Vec<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    /// The replay window, both directions; only for schemes that sign a timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_seconds: Option<u64>,
    /// Addresses or CIDR ranges the provider calls from; absent: any address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_allow_list: Option<Vec<IpRange>>,
}

impl RouteConfig {
    /// A route with the scheme's defaults.
    pub fn new(scheme: SchemeConfig, secrets: Vec<SecretRef>) -> Self {
        Self {
            scheme,
            secrets,
            max_body_bytes: None,
            tolerance_seconds: None,
            ip_allow_list: None,
        }
    }

    pub fn max_body_bytes(&self) -> u64 {
        self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES)
    }

    /// The replay window in seconds, `None` for schemes without a signed timestamp.
    pub fn tolerance_seconds(&self) -> Option<u64> {
        self.scheme
            .signs_timestamp()
            .then(|| self.tolerance_seconds.unwrap_or(DEFAULT_TOLERANCE_SECONDS))
    }

    /// Every secret the caller must resolve before building a `Verifier`.
    pub fn secret_refs(&self) -> impl Iterator<Item = &SecretRef> {
        let verify_token = match &self.scheme {
            SchemeConfig::Meta(meta) => Some(&meta.verify_token),
            _ => None,
        };
        self.secrets.iter().chain(verify_token)
    }

    pub fn ip_allowed(&self, ip: Option<IpAddr>) -> bool {
        match (&self.ip_allow_list, ip) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(ranges), Some(ip)) => ranges.iter().any(|range| range.contains(ip)),
        }
    }
}

impl Validate for RouteConfig {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        self.scheme.validate_at(&at.key("scheme"))?;
        let secrets_at = at.key("secrets");
        if self.secrets.is_empty() {
            return Err(secrets_at.invalid("a route needs at least one secret"));
        }
        if self.secrets.len() > MAX_SECRETS {
            return Err(
                secrets_at.invalid(format!("at most {MAX_SECRETS} secrets are active at once"))
            );
        }
        for (index, secret) in self.secrets.iter().enumerate() {
            if self.secrets[..index].contains(secret) {
                return Err(secrets_at.index(index).invalid("repeats an earlier secret"));
            }
        }
        if let Some(max) = self.max_body_bytes
            && !(1..=MAX_BODY_BYTES_LIMIT).contains(&max)
        {
            return Err(at.key("maxBodyBytes").invalid(format!(
                "must be between 1 and {MAX_BODY_BYTES_LIMIT} (the Lambda payload limit)"
            )));
        }
        if let Some(tolerance) = self.tolerance_seconds {
            let tolerance_at = at.key("toleranceSeconds");
            if !self.scheme.signs_timestamp() {
                return Err(tolerance_at.invalid(format!(
                    "{} deliveries carry no signed timestamp to check a window against",
                    self.scheme.provider()
                )));
            }
            if !(1..=MAX_TOLERANCE_SECONDS).contains(&tolerance) {
                return Err(tolerance_at.invalid(format!(
                    "must be between 1 and {MAX_TOLERANCE_SECONDS} seconds"
                )));
            }
        }
        if let Some(ranges) = &self.ip_allow_list
            && ranges.is_empty()
        {
            return Err(at
                .key("ipAllowList")
                .invalid("an empty allow-list would refuse every delivery; omit it instead"));
        }
        Ok(())
    }
}

/// The providers whose schemes the hub verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Github,
    Stripe,
    Slack,
    Shopify,
    Twilio,
    Zendesk,
    Hubspot,
    /// Facebook, Instagram and WhatsApp Cloud API webhooks.
    Meta,
    /// The Standard Webhooks specification, which Svix implements (`webhook-*` or `svix-*`
    /// headers).
    StandardWebhooks,
    /// Jira Cloud admin webhooks with a secret.
    Jira,
    /// Microsoft Teams outgoing webhooks.
    MicrosoftTeams,
    /// Microsoft Graph change notifications.
    MicrosoftGraph,
    /// An HMAC scheme described by the route.
    Generic,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Stripe => "stripe",
            Self::Slack => "slack",
            Self::Shopify => "shopify",
            Self::Twilio => "twilio",
            Self::Zendesk => "zendesk",
            Self::Hubspot => "hubspot",
            Self::Meta => "meta",
            Self::StandardWebhooks => "standard_webhooks",
            Self::Jira => "jira",
            Self::MicrosoftTeams => "microsoft_teams",
            Self::MicrosoftGraph => "microsoft_graph",
            Self::Generic => "generic",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The provider scheme with its options: `{"type": "zendesk", "signedOrder": "either"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SchemeConfig {
    Github,
    Stripe,
    Slack,
    Shopify,
    Twilio,
    Zendesk(ZendeskOptions),
    Hubspot(HubspotOptions),
    Meta(MetaOptions),
    StandardWebhooks,
    Jira,
    MicrosoftTeams,
    MicrosoftGraph,
    // Boxed: its options are several times the size of every other variant.
    Generic(Box<GenericScheme>),
}

impl SchemeConfig {
    pub fn provider(&self) -> Provider {
        match self {
            Self::Github => Provider::Github,
            Self::Stripe => Provider::Stripe,
            Self::Slack => Provider::Slack,
            Self::Shopify => Provider::Shopify,
            Self::Twilio => Provider::Twilio,
            Self::Zendesk(_) => Provider::Zendesk,
            Self::Hubspot(_) => Provider::Hubspot,
            Self::Meta(_) => Provider::Meta,
            Self::StandardWebhooks => Provider::StandardWebhooks,
            Self::Jira => Provider::Jira,
            Self::MicrosoftTeams => Provider::MicrosoftTeams,
            Self::MicrosoftGraph => Provider::MicrosoftGraph,
            Self::Generic(_) => Provider::Generic,
        }
    }

    /// Whether deliveries carry a signed timestamp, so a replay window applies.
    pub fn signs_timestamp(&self) -> bool {
        match self {
            Self::Stripe | Self::Slack | Self::Zendesk(_) | Self::StandardWebhooks => true,
            Self::Hubspot(options) => options.accepts(HubspotVersion::V3),
            Self::Generic(generic) => generic.timestamp_header.is_some(),
            Self::Github
            | Self::Shopify
            | Self::Twilio
            | Self::Meta(_)
            | Self::Jira
            | Self::MicrosoftTeams
            | Self::MicrosoftGraph => false,
        }
    }
}

impl Validate for SchemeConfig {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        match self {
            Self::Hubspot(options) => options.validate_at(at),
            Self::Generic(generic) => generic.validate_at(at),
            _ => Ok(()),
        }
    }
}

/// Reads the `type` member first and streams the rest of the object into the variant's
/// options, so errors inside them keep their JSON path (serde's derived internally tagged
/// enums buffer the object and lose it). Members before `type` are buffered and their path
/// travels in the message in hub-core's nested form, which `ModelError` folds back.
impl<'de> Deserialize<'de> for SchemeConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(SchemeVisitor(PhantomData))
    }
}

struct SchemeVisitor<'de>(PhantomData<&'de ()>);

impl<'de> Visitor<'de> for SchemeVisitor<'de> {
    type Value = SchemeConfig;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a scheme object with a `type`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SchemeConfig, A::Error> {
        let mut before_type = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key != "type" {
                before_type.insert(key, map.next_value::<Value>()?);
                continue;
            }
            let provider = map.next_value::<Provider>()?;
            if before_type.is_empty() {
                return scheme_from(provider, MapAccessDeserializer::new(map));
            }
            while let Some((key, value)) = map.next_entry::<String, Value>()? {
                before_type.insert(key, value);
            }
            let mut track = serde_path_to_error::Track::new();
            let value = Value::Object(before_type);
            return scheme_from(
                provider,
                serde_path_to_error::Deserializer::new(value, &mut track),
            )
            .map_err(|error: serde_json::Error| {
                de::Error::custom(format!("at `{}`: {error}", track.path()))
            });
        }
        Err(de::Error::missing_field("type"))
    }
}

fn scheme_from<'de, D: Deserializer<'de>>(
    provider: Provider,
    rest: D,
) -> Result<SchemeConfig, D::Error> {
    let unit = |scheme: SchemeConfig, rest: D| NoOptions::deserialize(rest).map(|_| scheme);
    match provider {
        Provider::Github => unit(SchemeConfig::Github, rest),
        Provider::Stripe => unit(SchemeConfig::Stripe, rest),
        Provider::Slack => unit(SchemeConfig::Slack, rest),
        Provider::Shopify => unit(SchemeConfig::Shopify, rest),
        Provider::Twilio => unit(SchemeConfig::Twilio, rest),
        Provider::StandardWebhooks => unit(SchemeConfig::StandardWebhooks, rest),
        Provider::Jira => unit(SchemeConfig::Jira, rest),
        Provider::MicrosoftTeams => unit(SchemeConfig::MicrosoftTeams, rest),
        Provider::MicrosoftGraph => unit(SchemeConfig::MicrosoftGraph, rest),
        Provider::Zendesk => Deserialize::deserialize(rest).map(SchemeConfig::Zendesk),
        Provider::Hubspot => Deserialize::deserialize(rest).map(SchemeConfig::Hubspot),
        Provider::Meta => Deserialize::deserialize(rest).map(SchemeConfig::Meta),
        Provider::Generic => Deserialize::deserialize(rest).map(SchemeConfig::Generic),
    }
}

/// Schemes without options accept nothing but their `type`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZendeskOptions {
    /// Default `either`: Zendesk's current documentation signs timestamp + body, while its
    /// only published test vector signs body + timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_order: Option<ZendeskSignedOrder>,
}

impl ZendeskOptions {
    pub fn signed_order(&self) -> ZendeskSignedOrder {
        self.signed_order.unwrap_or(ZendeskSignedOrder::Either)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZendeskSignedOrder {
    TimestampThenBody,
    BodyThenTimestamp,
    Either,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HubspotOptions {
    /// The signature versions accepted; default all three. A delivery carrying a v3 signature
    /// is judged by it alone when v3 is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<HubspotVersion>>,
}

impl HubspotOptions {
    pub fn accepts(&self, version: HubspotVersion) -> bool {
        self.versions
            .as_ref()
            .is_none_or(|versions| versions.contains(&version))
    }
}

impl Validate for HubspotOptions {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        let Some(versions) = &self.versions else {
            return Ok(());
        };
        if versions.is_empty() {
            return Err(at.key("versions").invalid("must name at least one version"));
        }
        for (index, version) in versions.iter().enumerate() {
            if versions[..index].contains(version) {
                return Err(at.key("versions").index(index).invalid("repeated version"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HubspotVersion {
    V1,
    V2,
    V3,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetaOptions {
    /// The verify token of the `GET hub.challenge` subscription handshake (not the App Secret,
    /// which is in the route's `secrets`).
    pub verify_token: SecretRef,
    /// Accept the legacy `X-Hub-Signature: sha1=` when no SHA-256 signature is sent. Off by
    /// default: every current Meta product sends `X-Hub-Signature-256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_sha1: Option<bool>,
}

/// An HMAC scheme described by the route, for providers without a built-in scheme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenericScheme {
    /// The header carrying the signature(s).
    pub signature_header: String,
    /// Text before the signature (`sha256=`); a signature without it is malformed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_prefix: Option<String>,
    /// Splits a header carrying several signatures (`,` or ` `); each may carry the prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_separator: Option<String>,
    #[serde(default)]
    pub algorithm: HmacAlgorithm,
    pub encoding: SignatureEncoding,
    /// How the secret's text becomes the HMAC key.
    #[serde(default)]
    pub secret_encoding: SecretEncoding,
    /// What is signed, default `{body}`: literal text and the placeholders `{body}`,
    /// `{timestamp}`, `{method}`, `{url}`, `{deliveryId}` (e.g. `{timestamp}.{body}`).
    #[serde(default)]
    pub signed_payload: SignedPayload,
    /// The header with the signing time; the route's tolerance applies to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_format: Option<TimestampFormat>,
    /// The provider's delivery id: a header, or a JSON pointer into the body; otherwise the
    /// SHA-256 of the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id_header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id_pointer: Option<JsonPointer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type_header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type_pointer: Option<JsonPointer>,
    /// Where the records are: an object is one record, an array one per element; default the
    /// whole body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_pointer: Option<JsonPointer>,
    /// A record's external id, relative to the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id_pointer: Option<JsonPointer>,
}

impl GenericScheme {
    pub fn timestamp_format(&self) -> TimestampFormat {
        self.timestamp_format
            .unwrap_or(TimestampFormat::UnixSeconds)
    }
}

impl Validate for GenericScheme {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        check_header_name(&at.key("signatureHeader"), &self.signature_header)?;
        for (member, header) in [
            ("timestampHeader", &self.timestamp_header),
            ("deliveryIdHeader", &self.delivery_id_header),
            ("eventTypeHeader", &self.event_type_header),
        ] {
            if let Some(header) = header {
                check_header_name(&at.key(member), header)?;
            }
        }
        if self.signature_separator.as_deref() == Some("") {
            return Err(at.key("signatureSeparator").invalid("must not be empty"));
        }
        let payload_at = at.key("signedPayload");
        let parts = &self.signed_payload.parts;
        if !parts.contains(&PayloadPart::Body) {
            return Err(payload_at.invalid("must sign `{body}`, or the body is not authenticated"));
        }
        match (
            parts.contains(&PayloadPart::Timestamp),
            &self.timestamp_header,
        ) {
            (true, None) => {
                return Err(payload_at.invalid("`{timestamp}` needs a `timestampHeader`"));
            }
            (false, Some(_)) => {
                return Err(at.key("timestampHeader").invalid(
                    "the signed payload must include `{timestamp}`, or the replay window \
                     would check an unsigned value",
                ));
            }
            _ => {}
        }
        if self.timestamp_format.is_some() && self.timestamp_header.is_none() {
            return Err(at
                .key("timestampFormat")
                .invalid("applies only with a `timestampHeader`"));
        }
        if parts.contains(&PayloadPart::DeliveryId) && self.delivery_id_header.is_none() {
            return Err(payload_at.invalid("`{deliveryId}` needs a `deliveryIdHeader`"));
        }
        if self.delivery_id_header.is_some() && self.delivery_id_pointer.is_some() {
            return Err(at
                .key("deliveryIdPointer")
                .invalid("give a delivery id header or a pointer, not both"));
        }
        if self.event_type_header.is_some() && self.event_type_pointer.is_some() {
            return Err(at
                .key("eventTypePointer")
                .invalid("give an event type header or a pointer, not both"));
        }
        Ok(())
    }
}

/// RFC 9110 token characters.
fn check_header_name(at: &JsonPath, name: &str) -> Result<(), ModelError> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte));
    if valid {
        Ok(())
    } else {
        Err(at.invalid(format!("`{name}` is not an HTTP header name")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureEncoding {
    /// Lower-case hex.
    Hex,
    /// Standard alphabet, padded.
    Base64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretEncoding {
    /// The secret's UTF-8 bytes.
    #[default]
    Utf8,
    /// Base64, after an optional `whsec_` prefix.
    Base64,
    Hex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampFormat {
    UnixSeconds,
    UnixMillis,
    /// RFC 3339 / ISO 8601 with an offset (`2021-07-25T10:00:00Z`).
    Rfc3339,
}

/// The template of a generic scheme's signed string, kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SignedPayload {
    template: String,
    parts: Vec<PayloadPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PayloadPart {
    Literal(String),
    Body,
    Timestamp,
    Method,
    Url,
    DeliveryId,
}

impl SignedPayload {
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                Some(0) if rest.starts_with('{') => {
                    let end = rest.find('}').ok_or_else(|| {
                        format!("unclosed `{{` in the signed payload `{template}`")
                    })?;
                    let part = match &rest[1..end] {
                        "body" => PayloadPart::Body,
                        "timestamp" => PayloadPart::Timestamp,
                        "method" => PayloadPart::Method,
                        "url" => PayloadPart::Url,
                        "deliveryId" => PayloadPart::DeliveryId,
                        other => {
                            return Err(format!(
                                "unknown placeholder `{{{other}}}`: use {{body}}, {{timestamp}}, \
                                 {{method}}, {{url}} or {{deliveryId}}"
                            ));
                        }
                    };
                    parts.push(part);
                    rest = &rest[end + 1..];
                }
                Some(0) => return Err(format!("unopened `}}` in the signed payload `{template}`")),
                Some(next) => {
                    parts.push(PayloadPart::Literal(rest[..next].to_owned()));
                    rest = &rest[next..];
                }
                None => {
                    parts.push(PayloadPart::Literal(rest.to_owned()));
                    rest = "";
                }
            }
        }
        Ok(Self {
            template: template.to_owned(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.template
    }

    pub(crate) fn parts(&self) -> &[PayloadPart] {
        &self.parts
    }
}

impl Default for SignedPayload {
    fn default() -> Self {
        Self {
            template: "{body}".into(),
            parts: vec![PayloadPart::Body],
        }
    }
}

impl TryFrom<String> for SignedPayload {
    type Error = String;

    fn try_from(template: String) -> Result<Self, String> {
        Self::parse(&template)
    }
}

impl From<SignedPayload> for String {
    fn from(payload: SignedPayload) -> String {
        payload.template
    }
}

/// An RFC 6901 JSON pointer (`/data/object`; `""` is the whole document).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JsonPointer(String);

impl JsonPointer {
    pub fn parse(pointer: impl Into<String>) -> Result<Self, String> {
        let pointer = pointer.into();
        if !pointer.is_empty() && !pointer.starts_with('/') {
            return Err(format!(
                "a JSON pointer is empty or starts with `/`, got `{pointer}`"
            ));
        }
        let bad_escape = pointer
            .match_indices('~')
            .any(|(at, _)| !matches!(pointer.as_bytes().get(at + 1), Some(b'0' | b'1')));
        if bad_escape {
            return Err(format!(
                "`~` in a JSON pointer is followed by 0 or 1, got `{pointer}`"
            ));
        }
        Ok(Self(pointer))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn resolve<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        value.pointer(&self.0)
    }
}

impl TryFrom<String> for JsonPointer {
    type Error = String;

    fn try_from(pointer: String) -> Result<Self, String> {
        Self::parse(pointer)
    }
}

impl From<JsonPointer> for String {
    fn from(pointer: JsonPointer) -> String {
        pointer.0
    }
}

/// An address or a CIDR range (`192.0.2.0/24`, `2001:db8::/32`, `203.0.113.7`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IpRange {
    source: String,
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    pub fn parse(source: impl Into<String>) -> Result<Self, String> {
        let source = source.into();
        let invalid = || format!("`{source}` is not an IP address or CIDR range");
        let (address, prefix) = match source.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (source.as_str(), None),
        };
        let network: IpAddr = address.parse().map_err(|_| invalid())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|prefix| *prefix <= max)
                .ok_or_else(invalid)?,
        };
        if masked(network, prefix) != network {
            return Err(format!(
                "`{source}` has host bits set; the network is `{}/{prefix}`",
                masked(network, prefix)
            ));
        }
        Ok(Self {
            source,
            network,
            prefix,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // A dual-stack listener reports IPv4 callers as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        ip.is_ipv4() == self.network.is_ipv4() && masked(ip, self.prefix) == self.network
    }
}

fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

impl TryFrom<String> for IpRange {
    type Error = String;

    fn try_from(source: String) -> Result<Self, String> {
        Self::parse(source)
    }
}

impl From<IpRange> for String {
    fn from(range: IpRange) -> String {
        range.source
    }
}

#[cfg(test)]
mod tests {
    use hub_core::model::load_json;

    use super::*;

    fn error_of(json: &str) -> (String, String) {
        let error = load_json::<RouteConfig>(json).unwrap_err();
        (
            error.path().unwrap_or_default().to_owned(),
            error.to_string(),
        )
    }

    #[test]
    fn a_route_round_trips_with_defaults_applied_by_accessors() {
        let json = r#"{"scheme":{"type":"stripe"},"secrets":["hub/t1/wh-a","hub/t1/wh-b"]}"#;
        let route: RouteConfig = load_json(json).unwrap();
        assert_eq!(route.scheme, SchemeConfig::Stripe);
        assert_eq!(route.max_body_bytes(), DEFAULT_MAX_BODY_BYTES);
        assert_eq!(route.tolerance_seconds(), Some(300));
        assert_eq!(serde_json::to_string(&route).unwrap(), json);

        let github: RouteConfig =
            load_json(r#"{"scheme":{"type":"github"},"secrets":["hub/t1/wh"]}"#).unwrap();
        assert_eq!(github.tolerance_seconds(), None);
    }

    #[test]
    fn options_round_trip_and_the_type_may_come_last() {
        let json = r#"{"scheme":{"signedOrder":"body_then_timestamp","type":"zendesk"},
            "secrets":["hub/t1/wh"],"toleranceSeconds":60,"ipAllowList":["192.0.2.0/24"]}"#;
        let route: RouteConfig = load_json(json).unwrap();
        assert_eq!(
            route.scheme,
            SchemeConfig::Zendesk(ZendeskOptions {
                signed_order: Some(ZendeskSignedOrder::BodyThenTimestamp)
            })
        );
        let again: RouteConfig = load_json(&serde_json::to_string(&route).unwrap()).unwrap();
        assert_eq!(again, route);
    }

    #[test]
    fn errors_name_the_json_path() {
        let (path, _) = error_of(r#"{"scheme":{"type":"gitlab"},"secrets":["hub/t1/wh"]}"#);
        assert_eq!(path, "scheme.type");
        let (path, _) =
            error_of(r#"{"scheme":{"type":"github","extra":1},"secrets":["hub/t1/a"]}"#);
        assert_eq!(path, "scheme.extra");
        let (path, message) = error_of(
            r#"{"scheme":{"encoding":"hex","type":"generic","signatureHeader":"x","algorithm":"md5"},"secrets":["hub/t1/a"]}"#,
        );
        assert_eq!(path, "scheme.algorithm", "{message}");
        let (path, _) = error_of(r#"{"scheme":{"type":"github"},"secrets":["nope"]}"#);
        assert_eq!(path, "secrets[0]");
        let (path, _) = error_of(r#"{"scheme":{"type":"github"},"secrets":[]}"#);
        assert_eq!(path, "secrets");
        let (path, _) =
            error_of(r#"{"scheme":{"type":"github"},"secrets":["hub/t1/a","hub/t1/a"]}"#);
        assert_eq!(path, "secrets[1]");
        let (path, _) = error_of(
            r#"{"scheme":{"type":"github"},"secrets":["hub/t1/a"],"toleranceSeconds":60}"#,
        );
        assert_eq!(path, "toleranceSeconds");
        let (path, _) =
            error_of(r#"{"scheme":{"type":"slack"},"secrets":["hub/t1/a"],"maxBodyBytes":0}"#);
        assert_eq!(path, "maxBodyBytes");
        let (path, _) = error_of(
            r#"{"scheme":{"type":"slack"},"secrets":["hub/t1/a"],"ipAllowList":["10.0.0.1/8"]}"#,
        );
        assert_eq!(path, "ipAllowList[0]");
        let (path, _) = error_of(
            r#"{"scheme":{"type":"hubspot","versions":["v3","v3"]},"secrets":["hub/t1/a"]}"#,
        );
        assert_eq!(path, "scheme.versions[1]");
        let (path, _) = error_of(r#"{"scheme":{"type":"meta"},"secrets":["hub/t1/a"]}"#);
        assert_eq!(path, "scheme");
    }

    #[test]
    fn generic_schemes_must_authenticate_what_they_check() {
        let generic = |extra: &str| {
            format!(
                r#"{{"scheme":{{"type":"generic","signatureHeader":"X-Sig","encoding":"hex"{extra}}},"secrets":["hub/t1/a"]}}"#
            )
        };
        let route: RouteConfig = load_json(&generic("")).unwrap();
        assert_eq!(route.tolerance_seconds(), None);
        let route: RouteConfig = load_json(&generic(
            r#","timestampHeader":"X-Ts","signedPayload":"{timestamp}.{body}""#,
        ))
        .unwrap();
        assert_eq!(route.tolerance_seconds(), Some(300));

        for (extra, path) in [
            (r#","signedPayload":"{timestamp}""#, "scheme.signedPayload"),
            (r#","signedPayload":"{body}{nope}""#, "scheme.signedPayload"),
            (r#","signedPayload":"{body""#, "scheme.signedPayload"),
            (
                r#","signedPayload":"{timestamp}.{body}""#,
                "scheme.signedPayload",
            ),
            (r#","timestampHeader":"X-Ts""#, "scheme.timestampHeader"),
            (r#","timestampFormat":"rfc3339""#, "scheme.timestampFormat"),
            (
                r#","deliveryIdHeader":"bad header""#,
                "scheme.deliveryIdHeader",
            ),
            (r#","recordsPointer":"data""#, "scheme.recordsPointer"),
            (r#","signatureSeparator":"""#, "scheme.signatureSeparator"),
        ] {
            let (found, message) = error_of(&generic(extra));
            assert_eq!(found, path, "{extra}: {message}");
        }
    }

    #[test]
    fn signed_payload_templates() {
        let payload = SignedPayload::parse("v0:{timestamp}:{body}").unwrap();
        assert_eq!(
            payload.parts(),
            [
                PayloadPart::Literal("v0:".into()),
                PayloadPart::Timestamp,
                PayloadPart::Literal(":".into()),
                PayloadPart::Body
            ]
        );
        assert!(SignedPayload::parse("a}b").is_err());
        assert_eq!(SignedPayload::default().as_str(), "{body}");
    }

    #[test]
    fn ip_ranges() {
        let range = IpRange::parse("192.0.2.0/24").unwrap();
        assert!(range.contains("192.0.2.77".parse().unwrap()));
        assert!(range.contains("::ffff:192.0.2.1".parse().unwrap()));
        assert!(!range.contains("192.0.3.1".parse().unwrap()));
        assert!(!range.contains("2001:db8::1".parse().unwrap()));
        let v6 = IpRange::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        let any = IpRange::parse("0.0.0.0/0").unwrap();
        assert!(any.contains("203.0.113.9".parse().unwrap()));
        let single = IpRange::parse("203.0.113.7").unwrap();
        assert!(single.contains("203.0.113.7".parse().unwrap()));
        assert!(!single.contains("203.0.113.8".parse().unwrap()));
        for bad in ["192.0.2.1/24", "192.0.2.0/33", "host", "::/129"] {
            assert!(IpRange::parse(bad).is_err(), "{bad}");
        }
        let mut route = RouteConfig::new(SchemeConfig::Github, Vec::new());
        assert!(route.ip_allowed(None));
        route.ip_allow_list = Some(vec![range]);
        assert!(!route.ip_allowed(None));
        assert!(route.ip_allowed(Some("192.0.2.1".parse().unwrap())));
    }

    #[test]
    fn json_pointers() {
        assert!(JsonPointer::parse("").is_ok());
        assert!(JsonPointer::parse("/a~1b/~0").is_ok());
        assert!(JsonPointer::parse("/a~2").is_err());
        assert!(JsonPointer::parse("a").is_err());
        let value = serde_json::json!({"data": {"object": {"id": 1}}});
        let pointer = JsonPointer::parse("/data/object/id").unwrap();
        assert_eq!(pointer.resolve(&value), Some(&serde_json::json!(1)));
    }
}
