//! Records per provider: what a verified delivery carries, as the records a sync of the same
//! integration would fetch.

use serde::Serialize;
use serde_json::Value;

use crate::config::SchemeConfig;
use crate::error::WebhookError;
use crate::providers::{
    generic, github, graph, hubspot, jira, meta, shopify, slack, standard_webhooks, stripe, teams,
    twilio, zendesk,
};

/// One record of a delivery, with its external id where the provider gives one.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtractedRecord {
    pub external_id: Option<String>,
    pub record: Value,
}

/// The records of a delivery's payload: the object inside a Stripe event, each event of a
/// HubSpot batch, the main object of a GitHub event, a Slack callback's `event`, Standard
/// Webhooks' `data`, Graph's notifications, or for a generic route the value at its records
/// pointer. Takes what a `webhook.received` event carries (event type and payload), so it can
/// run in the receiver or in whatever consumes the event.
pub fn extract_records(
    scheme: &SchemeConfig,
    event_type: Option<&str>,
    payload: &Value,
) -> Result<Vec<ExtractedRecord>, WebhookError> {
    Ok(match scheme {
        SchemeConfig::Github => github::extract(event_type, payload),
        SchemeConfig::Stripe => stripe::extract(payload)?,
        SchemeConfig::Slack => slack::extract(payload),
        SchemeConfig::Shopify => shopify::extract(payload),
        SchemeConfig::Twilio => twilio::extract(payload),
        SchemeConfig::Zendesk(_) => zendesk::extract(payload),
        SchemeConfig::Hubspot(_) => hubspot::extract(payload),
        SchemeConfig::Meta(_) => meta::extract(payload),
        SchemeConfig::StandardWebhooks => standard_webhooks::extract(payload),
        SchemeConfig::Jira => jira::extract(event_type, payload),
        SchemeConfig::MicrosoftTeams => teams::extract(payload),
        SchemeConfig::MicrosoftGraph => graph::extract(payload),
        SchemeConfig::Generic(scheme) => generic::extract(scheme, payload)?,
    })
}
