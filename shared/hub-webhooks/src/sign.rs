//! Signing deliveries as each provider does, for end-to-end tests and benchmarks that must
//! produce deliveries the receiver accepts. Never used to verify: verification recomputes on
//! the received bytes and compares in constant time.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

pub use crate::providers::generic::sign as generic;
pub use crate::providers::github::sign as github;
pub use crate::providers::graph::sign as microsoft_graph;
pub use crate::providers::hubspot::{
    sign_v1 as hubspot_v1, sign_v2 as hubspot_v2, sign_v3 as hubspot_v3,
};
pub use crate::providers::jira::sign as jira;
pub use crate::providers::meta::sign as meta;
pub use crate::providers::shopify::sign as shopify;
pub use crate::providers::slack::sign as slack;
pub use crate::providers::standard_webhooks::sign as standard_webhooks;
pub use crate::providers::stripe::sign as stripe;
pub use crate::providers::teams::sign as microsoft_teams;
pub use crate::providers::twilio::{
    json_url as twilio_json_url, sign as twilio, sign_form_body as twilio_form_body,
};
pub use crate::providers::zendesk::{sign as zendesk, timestamp as zendesk_timestamp};

use crate::config::{
    HubspotVersion, RouteConfig, SchemeConfig, TimestampFormat, ZendeskSignedOrder,
};
use crate::crypto::sha256_hex;
use crate::error::WebhookError;
use crate::providers::{
    github as github_scheme, hubspot as hubspot_scheme, jira as jira_scheme, meta as meta_scheme,
    shopify as shopify_scheme, slack as slack_scheme, standard_webhooks as standard_scheme,
    stripe as stripe_scheme, teams as teams_scheme, twilio as twilio_scheme,
    zendesk as zendesk_scheme,
};
use crate::request::{ContentKind, WebhookRequest};

/// Adds the headers the route's provider would send for `request` at `now`, signed with
/// `secret` (one of the route's secrets, as stored). The body, URL, method and content type
/// must be final, except that a Twilio JSON request gets its `bodySHA256` query parameter and
/// a Graph body its `clientState`. A Standard Webhooks `webhook-id` absent from the request
/// is derived from the body, so signing the same body twice yields the same delivery.
pub fn sign_request(
    route: &RouteConfig,
    secret: &SecretString,
    request: &mut WebhookRequest,
    now: DateTime<Utc>,
) -> Result<(), WebhookError> {
    let secret = secret.expose_secret();
    let body = request.body().to_vec();
    let seconds = now.timestamp();
    match &route.scheme {
        SchemeConfig::Github => {
            let signature = github(secret, &body);
            request
                .headers_mut()
                .insert(github_scheme::SIGNATURE, signature);
        }
        SchemeConfig::Stripe => {
            let signature = stripe(secret, seconds, &body);
            request
                .headers_mut()
                .insert(stripe_scheme::SIGNATURE, signature);
        }
        SchemeConfig::Slack => {
            let signature = slack(secret, seconds, &body);
            let headers = request.headers_mut();
            headers.insert(slack_scheme::TIMESTAMP, seconds.to_string());
            headers.insert(slack_scheme::SIGNATURE, signature);
        }
        SchemeConfig::Shopify => {
            let signature = shopify(secret, &body);
            request
                .headers_mut()
                .insert(shopify_scheme::SIGNATURE, signature);
        }
        SchemeConfig::Twilio => {
            let signature = match ContentKind::of(request.headers()) {
                ContentKind::Form => twilio_form_body(secret, request.url(), &body)?,
                ContentKind::Json => {
                    if request.query_param("bodySHA256").is_none() {
                        request.set_url(twilio_json_url(request.url(), &body));
                    }
                    twilio::<&str, &str>(secret, request.url(), &[])
                }
                _ => twilio::<&str, &str>(secret, request.url(), &[]),
            };
            request
                .headers_mut()
                .insert(twilio_scheme::SIGNATURE, signature);
        }
        SchemeConfig::Zendesk(options) => {
            let timestamp = zendesk_timestamp(now);
            let order = match options.signed_order() {
                ZendeskSignedOrder::BodyThenTimestamp => ZendeskSignedOrder::BodyThenTimestamp,
                _ => ZendeskSignedOrder::TimestampThenBody,
            };
            let signature = zendesk(secret, &timestamp, &body, order);
            let headers = request.headers_mut();
            headers.insert(zendesk_scheme::TIMESTAMP, timestamp);
            headers.insert(zendesk_scheme::SIGNATURE, signature);
        }
        SchemeConfig::Hubspot(options) => {
            let (method, url) = (request.method().to_owned(), request.url().to_owned());
            let headers = request.headers_mut();
            if options.accepts(HubspotVersion::V3) {
                let millis = now.timestamp_millis();
                let signature = hubspot_v3(secret, &method, &url, &body, millis);
                headers.insert(hubspot_scheme::TIMESTAMP, millis.to_string());
                headers.insert(hubspot_scheme::SIGNATURE_V3, signature);
            } else if options.accepts(HubspotVersion::V2) {
                headers.insert(hubspot_scheme::VERSION, "v2");
                headers.insert(
                    hubspot_scheme::SIGNATURE,
                    hubspot_v2(secret, &method, &url, &body),
                );
            } else {
                headers.insert(hubspot_scheme::VERSION, "v1");
                headers.insert(hubspot_scheme::SIGNATURE, hubspot_v1(secret, &body));
            }
        }
        SchemeConfig::Meta(_) => {
            let signature = meta(secret, &body);
            request
                .headers_mut()
                .insert(meta_scheme::SIGNATURE, signature);
        }
        SchemeConfig::StandardWebhooks => {
            let id = match request.headers().get(standard_scheme::ID) {
                Some(id) => id.to_owned(),
                None => format!("msg_{}", &sha256_hex(&body)[..24]),
            };
            let signature = standard_webhooks(secret, &id, seconds, &body)?;
            let headers = request.headers_mut();
            headers.insert(standard_scheme::ID, id);
            headers.insert(standard_scheme::TIMESTAMP, seconds.to_string());
            headers.insert(standard_scheme::SIGNATURE, signature);
        }
        SchemeConfig::Jira => {
            let signature = jira(secret, &body);
            request
                .headers_mut()
                .insert(jira_scheme::SIGNATURE, signature);
        }
        SchemeConfig::MicrosoftTeams => {
            let signature = microsoft_teams(secret, &body)?;
            request
                .headers_mut()
                .insert(teams_scheme::AUTHORIZATION, signature);
        }
        SchemeConfig::MicrosoftGraph => {
            let signed = microsoft_graph(secret, &body)?;
            request.set_body(signed);
        }
        SchemeConfig::Generic(scheme) => {
            if let Some(name) = &scheme.delivery_id_header
                && !request.headers().contains(name)
            {
                let id = format!("dlv_{}", &sha256_hex(&body)[..24]);
                request.headers_mut().insert(name, id);
            }
            let timestamp = scheme.timestamp_header.as_ref().map(|name| {
                let text = match scheme.timestamp_format() {
                    TimestampFormat::UnixSeconds => seconds.to_string(),
                    TimestampFormat::UnixMillis => now.timestamp_millis().to_string(),
                    TimestampFormat::Rfc3339 => zendesk_timestamp(now),
                };
                (name.clone(), text)
            });
            let signature = generic(
                scheme,
                secret,
                request,
                timestamp.as_ref().map(|(_, text)| text.as_str()),
            )?;
            let headers = request.headers_mut();
            if let Some((name, text)) = timestamp {
                headers.insert(&name, text);
            }
            headers.insert(&scheme.signature_header, signature);
        }
    }
    Ok(())
}
