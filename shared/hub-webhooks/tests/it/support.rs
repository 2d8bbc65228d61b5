use std::path::PathBuf;

use chrono::{DateTime, Utc};
use hub_core::model::SecretRef;
use hub_webhooks::{
    Outcome, ResolvedSecrets, RouteConfig, SchemeConfig, VerifiedDelivery, Verifier, WebhookRequest,
};
use secrecy::SecretString;

/// `hub/t1/wh-<index>`.
pub fn secret_ref(index: usize) -> SecretRef {
    SecretRef::parse(format!("hub/t1/wh-{index}")).expect("a valid secret reference")
}

/// A route over `scheme` whose secrets are `secrets`, in order.
pub fn route(scheme: SchemeConfig, secrets: usize) -> RouteConfig {
    RouteConfig::new(scheme, (0..secrets).map(secret_ref).collect())
}

pub fn resolved(secrets: &[&str]) -> ResolvedSecrets {
    secrets
        .iter()
        .enumerate()
        .fold(ResolvedSecrets::new(), |resolved, (index, secret)| {
            resolved.with(secret_ref(index), SecretString::from(*secret))
        })
}

pub fn verifier(scheme: SchemeConfig, secrets: &[&str]) -> Verifier {
    verifier_for(route(scheme, secrets.len()), secrets)
}

pub fn verifier_for(route: RouteConfig, secrets: &[&str]) -> Verifier {
    Verifier::new(route, &resolved(secrets)).expect("a usable route")
}

pub fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).expect("a representable time")
}

pub fn vector(name: &str) -> Vec<u8> {
    read(&["vectors", name])
}

pub fn fixture(path: &str) -> Vec<u8> {
    read(&["fixtures", path])
}

fn read(parts: &[&str]) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests"]
        .iter()
        .chain(parts)
        .collect();
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

pub fn delivery(outcome: Outcome) -> VerifiedDelivery {
    match outcome {
        Outcome::Delivery(delivery) => delivery,
        Outcome::Handshake(handshake) => panic!("expected a delivery, got {handshake:?}"),
    }
}

/// A part of the request the signature covers.
#[derive(Debug, Clone, Copy)]
pub enum Field {
    Body,
    Header(&'static str),
    Url,
}

impl Field {
    pub fn get(self, request: &WebhookRequest) -> Vec<u8> {
        match self {
            Self::Body => request.body().to_vec(),
            Self::Header(name) => request
                .headers()
                .get(name)
                .unwrap_or_else(|| panic!("the vector has no {name}"))
                .as_bytes()
                .to_vec(),
            Self::Url => request.url().as_bytes().to_vec(),
        }
    }

    /// Header values and URLs are text on every adapter; a byte that is not UTF-8 arrives
    /// replaced, which is still a change.
    pub fn set(self, request: &WebhookRequest, value: Vec<u8>) -> WebhookRequest {
        let mut changed = request.clone();
        match self {
            Self::Body => changed.set_body(value),
            Self::Header(name) => changed
                .headers_mut()
                .insert(name, String::from_utf8_lossy(&value).into_owned()),
            Self::Url => changed.set_url(String::from_utf8_lossy(&value).into_owned()),
        }
        changed
    }
}

/// One changed copy of a request.
pub struct Change {
    pub field: Field,
    /// `byte 3 bit 5`, `last byte removed`, `byte appended`.
    pub what: String,
    pub original: Vec<u8>,
    pub changed: Vec<u8>,
    pub request: WebhookRequest,
}

/// Every one-bit change, the last byte removed and a byte appended, to each field of `request`.
pub fn one_byte_changes(request: &WebhookRequest, fields: &[Field]) -> Vec<Change> {
    let mut changes = Vec::new();
    for field in fields.iter().copied() {
        let original = field.get(request);
        let mut variants: Vec<(String, Vec<u8>)> = Vec::new();
        for position in 0..original.len() {
            for bit in 0..8 {
                let mut changed = original.clone();
                changed[position] ^= 1 << bit;
                variants.push((format!("byte {position} bit {bit}"), changed));
            }
        }
        if let Some((_, shorter)) = original.split_last() {
            variants.push(("last byte removed".into(), shorter.to_vec()));
        }
        variants.push(("byte appended".into(), [original.as_slice(), b"0"].concat()));
        for (what, changed) in variants {
            changes.push(Change {
                field,
                what,
                original: original.clone(),
                request: field.set(request, changed.clone()),
                changed,
            });
        }
    }
    changes
}

/// The changes of [`one_byte_changes`] that still authenticate (none, for a sound scheme).
pub fn changes_that_still_verify(
    verifier: &Verifier,
    request: &WebhookRequest,
    now: DateTime<Utc>,
    fields: &[Field],
) -> Vec<String> {
    one_byte_changes(request, fields)
        .into_iter()
        .filter(|change| verifier.authenticate(&change.request, now).is_ok())
        .map(|change| format!("{:?} {}", change.field, change.what))
        .collect()
}
