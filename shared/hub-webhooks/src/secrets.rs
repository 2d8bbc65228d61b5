//! A route's secrets as the caller read them from the secret store, and the HMAC key each one
//! stands for under the route's scheme.

use std::collections::HashMap;
use std::fmt;

use hub_core::model::SecretRef;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{SchemeConfig, SecretEncoding};
use crate::crypto::{HmacKey, decode_base64_any};
use crate::error::WebhookError;

/// Secret values by reference. The caller resolves [`crate::RouteConfig::secret_refs`] through
/// its `SecretStore` (cached) and hands them over; this crate never reads a store.
#[derive(Clone, Default)]
pub struct ResolvedSecrets {
    values: HashMap<SecretRef, SecretString>,
}

impl ResolvedSecrets {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, reference: SecretRef, value: SecretString) {
        self.values.insert(reference, value);
    }

    pub fn with(mut self, reference: SecretRef, value: SecretString) -> Self {
        self.insert(reference, value);
        self
    }

    pub fn get(&self, reference: &SecretRef) -> Option<&SecretString> {
        self.values.get(reference)
    }
}

/// References only.
impl fmt::Debug for ResolvedSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

/// The HMAC key (or, for Microsoft Graph, the `clientState` bytes) a secret stands for.
/// `reference` names the secret in errors; its value never appears.
pub(crate) fn key_for(
    scheme: &SchemeConfig,
    reference: &str,
    secret: &SecretString,
) -> Result<HmacKey, WebhookError> {
    let text = secret.expose_secret();
    let encoding = match scheme {
        // Standard Webhooks: base64 after `whsec_`. Stripe secrets look alike but are used as
        // text, which is why the scheme, not the secret's shape, decides.
        SchemeConfig::StandardWebhooks => SecretEncoding::Base64,
        SchemeConfig::MicrosoftTeams => SecretEncoding::Base64,
        SchemeConfig::Generic(generic) => generic.secret_encoding,
        _ => SecretEncoding::Utf8,
    };
    let bytes = match encoding {
        SecretEncoding::Utf8 => Some(text.as_bytes().to_vec()),
        SecretEncoding::Base64 => decode_base64_any(text.strip_prefix("whsec_").unwrap_or(text)),
        SecretEncoding::Hex => hex::decode(text).ok(),
    };
    match bytes {
        Some(bytes) if !bytes.is_empty() => Ok(HmacKey::new(bytes)),
        Some(_) => Err(WebhookError::config(format!(
            "secret `{reference}` is empty"
        ))),
        None => Err(WebhookError::config(format!(
            "secret `{reference}` is not {} as the {} scheme requires",
            match encoding {
                SecretEncoding::Base64 => "base64",
                SecretEncoding::Hex => "hex",
                SecretEncoding::Utf8 => "text",
            },
            scheme.provider()
        ))),
    }
}

/// A secret used as text (Meta's verify token).
pub(crate) fn text_key(reference: &str, secret: &SecretString) -> Result<HmacKey, WebhookError> {
    let text = secret.expose_secret();
    if text.is_empty() {
        return Err(WebhookError::config(format!(
            "secret `{reference}` is empty"
        )));
    }
    Ok(HmacKey::new(text.as_bytes().to_vec()))
}
