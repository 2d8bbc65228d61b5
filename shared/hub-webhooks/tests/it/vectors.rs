//! Every published test vector of `../shared/webhook-schemes.md` verifies; every one-bit
//! change to its body, signature, timestamp (or signed URL) fails; replays outside the window
//! fail.

use chrono::{DateTime, TimeDelta, Utc};
use hub_webhooks::{
    HubspotOptions, Outcome, SchemeConfig, Verifier, WebhookError, WebhookRequest, ZendeskOptions,
    ZendeskSignedOrder,
};

use crate::support::{Field, at, delivery, one_byte_changes, vector, verifier};

struct Vector {
    name: &'static str,
    verifier: Verifier,
    request: WebhookRequest,
    now: DateTime<Utc>,
    fields: Vec<Field>,
    /// The signing time, for timestamped schemes.
    signed_at: Option<DateTime<Utc>>,
}

const GITHUB_SIGNATURE: &str = "X-Hub-Signature-256";
const STRIPE_SIGNATURE: &str = "Stripe-Signature";
const SLACK_SIGNATURE: &str = "X-Slack-Signature";
const SLACK_TIMESTAMP: &str = "X-Slack-Request-Timestamp";
const TWILIO_SIGNATURE: &str = "X-Twilio-Signature";
const ZENDESK_SIGNATURE: &str = "X-Zendesk-Webhook-Signature";
const ZENDESK_TIMESTAMP: &str = "X-Zendesk-Webhook-Signature-Timestamp";
const HUBSPOT_SIGNATURE: &str = "X-HubSpot-Signature";
const HUBSPOT_VERSION: &str = "X-HubSpot-Signature-Version";
const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

/// Zendesk's vector: `2021-07-25T10:00:00Z`.
const ZENDESK_SIGNED_AT: i64 = 1_627_207_200;

fn standard_webhooks_vector(name: &'static str, prefix: &'static str) -> Vector {
    let [id, timestamp, signature] = match prefix {
        "svix" => ["svix-id", "svix-timestamp", "svix-signature"],
        _ => ["webhook-id", "webhook-timestamp", "webhook-signature"],
    };
    Vector {
        name,
        verifier: verifier(
            SchemeConfig::StandardWebhooks,
            &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        ),
        request: WebhookRequest::post("https://hooks.example/webhooks/r1")
            .with_header("Content-Type", JSON)
            .with_header(id, "msg_p5jXN8AQM9LWM0D4loKWxJek")
            .with_header(timestamp, "1614265330")
            .with_header(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
            .with_body(vector("standardwebhooks_test.json")),
        now: at(1_614_265_330),
        fields: vec![
            Field::Body,
            Field::Header(signature),
            Field::Header(timestamp),
            Field::Header(id),
        ],
        signed_at: Some(at(1_614_265_330)),
    }
}

fn zendesk_vector(
    name: &'static str,
    order: Option<ZendeskSignedOrder>,
    signature: &str,
) -> Vector {
    Vector {
        name,
        verifier: verifier(
            SchemeConfig::Zendesk(ZendeskOptions {
                signed_order: order,
            }),
            &["HRkRd4BeOAoUkfZr-mhauJT64rvBASlJRoIyPsd3zeA="],
        ),
        request: WebhookRequest::post("https://hooks.example/webhooks/r1")
            .with_header("Content-Type", JSON)
            .with_header(ZENDESK_TIMESTAMP, "2021-07-25T10:00:00Z")
            .with_header(ZENDESK_SIGNATURE, signature)
            .with_body(vector("zendesk_say_hello.json")),
        now: at(ZENDESK_SIGNED_AT),
        fields: vec![
            Field::Body,
            Field::Header(ZENDESK_SIGNATURE),
            Field::Header(ZENDESK_TIMESTAMP),
        ],
        signed_at: Some(at(ZENDESK_SIGNED_AT)),
    }
}

fn hubspot() -> SchemeConfig {
    SchemeConfig::Hubspot(HubspotOptions::default())
}

const HUBSPOT_SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";

/// The vectors, each with the secret, time and request its source gives.
fn published() -> Vec<Vector> {
    vec![
        Vector {
            name: "github (docs.github.com)",
            verifier: verifier(SchemeConfig::Github, &["It's a Secret to Everybody"]),
            request: WebhookRequest::post("https://hooks.example/webhooks/r1")
                .with_header(
                    GITHUB_SIGNATURE,
                    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
                )
                .with_body(vector("github_hello.txt")),
            now: at(1_700_000_000),
            fields: vec![Field::Body, Field::Header(GITHUB_SIGNATURE)],
            signed_at: None,
        },
        Vector {
            name: "stripe (stripe-node generateTestHeaderString)",
            verifier: verifier(SchemeConfig::Stripe, &["whsec_test_secret"]),
            request: WebhookRequest::post("https://hooks.example/webhooks/r1")
                .with_header("Content-Type", JSON)
                .with_header(
                    STRIPE_SIGNATURE,
                    "t=1614265330,v1=10c96c6fd3f320fcfc264cdc4f476c15060ede8e8a08404cea2ddf3b72544a9c",
                )
                .with_body(vector("standardwebhooks_test.json")),
            now: at(1_614_265_330),
            fields: vec![Field::Body, Field::Header(STRIPE_SIGNATURE)],
            signed_at: Some(at(1_614_265_330)),
        },
        Vector {
            name: "slack (api.slack.com)",
            verifier: verifier(SchemeConfig::Slack, &["8f742231b10e8888abcd99yyyzzz85a5"]),
            request: WebhookRequest::post("https://hooks.example/webhooks/r1")
                .with_header("Content-Type", FORM)
                .with_header(SLACK_TIMESTAMP, "1531420618")
                .with_header(
                    SLACK_SIGNATURE,
                    "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
                )
                .with_body(vector("slack_slash_command.txt")),
            now: at(1_531_420_618),
            fields: vec![
                Field::Body,
                Field::Header(SLACK_SIGNATURE),
                Field::Header(SLACK_TIMESTAMP),
            ],
            signed_at: Some(at(1_531_420_618)),
        },
        Vector {
            name: "twilio (twilio.com/docs/usage/security)",
            verifier: verifier(SchemeConfig::Twilio, &["12345"]),
            request: WebhookRequest::post("https://mycompany.com/myapp.php?foo=1&bar=2")
                .with_header("Content-Type", FORM)
                .with_header(TWILIO_SIGNATURE, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
                .with_body(vector("twilio_gather.txt")),
            now: at(1_700_000_000),
            fields: vec![Field::Body, Field::Header(TWILIO_SIGNATURE), Field::Url],
            signed_at: None,
        },
        zendesk_vector(
            "zendesk (older docs page: body + timestamp)",
            None,
            "tRDSF7URY8BLCDlaBcQ7FHu051Zk+aAB0NKMP53teMw=",
        ),
        zendesk_vector(
            "zendesk (current docs order: timestamp + body)",
            None,
            "Rry/4TtIdFyawtXXp8QdI6tlAUUQ/5kL1OTp5qo/ZIk=",
        ),
        standard_webhooks_vector("standard webhooks (webhook.test.ts)", "webhook"),
        standard_webhooks_vector("svix (docs.svix.com headers)", "svix"),
        Vector {
            name: "hubspot v1 (legacydocs.hubspot.com)",
            verifier: verifier(hubspot(), &[HUBSPOT_SECRET]),
            request: WebhookRequest::post("https://hooks.example/webhooks/r1")
                .with_header("Content-Type", JSON)
                .with_header(HUBSPOT_VERSION, "v1")
                .with_header(
                    HUBSPOT_SIGNATURE,
                    "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de",
                )
                .with_body(vector("hubspot_v1_body.json")),
            now: at(1_700_000_000),
            fields: vec![Field::Body, Field::Header(HUBSPOT_SIGNATURE)],
            signed_at: None,
        },
        Vector {
            name: "hubspot v2 GET (legacydocs.hubspot.com)",
            verifier: verifier(hubspot(), &[HUBSPOT_SECRET]),
            request: WebhookRequest::new("GET", "https://www.example.com/webhook_uri")
                .with_header(HUBSPOT_VERSION, "v2")
                .with_header(
                    HUBSPOT_SIGNATURE,
                    "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e",
                ),
            now: at(1_700_000_000),
            fields: vec![Field::Body, Field::Header(HUBSPOT_SIGNATURE), Field::Url],
            signed_at: None,
        },
        Vector {
            name: "hubspot v2 POST (legacydocs.hubspot.com)",
            verifier: verifier(hubspot(), &[HUBSPOT_SECRET]),
            request: WebhookRequest::post("https://www.example.com/webhook_uri")
                .with_header("Content-Type", JSON)
                .with_header(HUBSPOT_VERSION, "v2")
                .with_header(
                    HUBSPOT_SIGNATURE,
                    "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900",
                )
                .with_body(vector("hubspot_v2_body.json")),
            now: at(1_700_000_000),
            fields: vec![Field::Body, Field::Header(HUBSPOT_SIGNATURE), Field::Url],
            signed_at: None,
        },
    ]
}

#[test]
fn every_published_vector_verifies() {
    for vector in published() {
        assert_eq!(
            vector.verifier.authenticate(&vector.request, vector.now),
            Ok(vector.signed_at),
            "{}",
            vector.name
        );
    }
}

/// Twilio signs the decoded form parameters, not the body's bytes: upper- and lower-case
/// hex in a percent-escape (`%2B`, `%2b`) decode to the same parameters and verify alike.
/// Those changes, and only those, are allowed to pass.
fn twilio_equivalent(original: &[u8], changed: &[u8]) -> bool {
    let params = |body: &[u8]| {
        let mut params: Vec<(String, String)> = form_urlencoded::parse(body)
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        params.sort();
        params.dedup();
        params
    };
    params(original) == params(changed)
}

#[test]
fn every_one_bit_change_to_body_signature_timestamp_or_signed_url_fails() {
    for vector in published() {
        let changes = one_byte_changes(&vector.request, &vector.fields);
        assert!(
            changes.len() > 100,
            "{}: only {} changes",
            vector.name,
            changes.len()
        );
        let mut equivalent_changes = Vec::new();
        for change in changes {
            if vector
                .verifier
                .authenticate(&change.request, vector.now)
                .is_err()
            {
                continue;
            }
            let allowed = vector.name.starts_with("twilio")
                && matches!(change.field, Field::Body)
                && twilio_equivalent(&change.original, &change.changed);
            assert!(
                allowed,
                "{}: {:?} {} still verifies",
                vector.name, change.field, change.what
            );
            equivalent_changes.push(change.what);
        }
        if vector.name.starts_with("twilio") {
            // The three `%2B` of `+1234...` with their `B` lower-cased.
            assert_eq!(equivalent_changes.len(), 3, "{equivalent_changes:?}");
        }
    }
}

#[test]
fn replays_outside_the_window_fail_in_both_directions() {
    let tolerance = TimeDelta::seconds(300);
    let mut timestamped = 0;
    for vector in published() {
        let Some(signed_at) = vector.signed_at else {
            continue;
        };
        timestamped += 1;
        for now in [signed_at - tolerance, signed_at + tolerance] {
            assert!(
                vector.verifier.authenticate(&vector.request, now).is_ok(),
                "{} at the edge of the window",
                vector.name
            );
        }
        for (now, skew) in [
            (signed_at + tolerance + TimeDelta::seconds(1), -301),
            (signed_at - tolerance - TimeDelta::seconds(1), 301),
        ] {
            assert_eq!(
                vector.verifier.authenticate(&vector.request, now),
                Err(WebhookError::TimestampOutsideWindow {
                    skew_seconds: skew,
                    tolerance_seconds: 300
                }),
                "{}",
                vector.name
            );
        }
    }
    assert_eq!(timestamped, 6);
}

#[test]
fn zendesk_routes_can_pin_the_signed_order() {
    let older = "tRDSF7URY8BLCDlaBcQ7FHu051Zk+aAB0NKMP53teMw=";
    let current = "Rry/4TtIdFyawtXXp8QdI6tlAUUQ/5kL1OTp5qo/ZIk=";
    for (order, signature, accepted) in [
        (ZendeskSignedOrder::BodyThenTimestamp, older, true),
        (ZendeskSignedOrder::BodyThenTimestamp, current, false),
        (ZendeskSignedOrder::TimestampThenBody, current, true),
        (ZendeskSignedOrder::TimestampThenBody, older, false),
    ] {
        let vector = zendesk_vector("pinned", Some(order), signature);
        let result = vector.verifier.authenticate(&vector.request, vector.now);
        assert_eq!(
            result.is_ok(),
            accepted,
            "{order:?} {signature}: {result:?}"
        );
    }
}

/// Past the signature, each vector's body is read as the provider's payload would be.
#[test]
fn vectors_with_provider_bodies_become_deliveries() {
    for vector in published() {
        let name = vector.name;
        let result = vector.verifier.verify(vector.request, vector.now);
        let expected_event = match name.split(' ').next() {
            // "Hello, World!" is not a GitHub payload, `{"test": ...}` not a Stripe event: the
            // signature is fine, the body is refused after it.
            Some("github" | "stripe") => {
                let error = result.expect_err(name);
                assert_eq!(
                    (error.code(), error.status()),
                    ("malformed_body", 400),
                    "{name}"
                );
                continue;
            }
            Some("slack") => Some("slash_command"),
            Some("hubspot") if name.contains("v1") => Some("contact.creation"),
            _ => None,
        };
        let Outcome::Delivery(delivery) = result.expect(name) else {
            panic!("{name}: a handshake");
        };
        assert_eq!(delivery.event_type(), expected_event, "{name}");
        assert_eq!(delivery.received_at(), vector.now);
    }
}

#[test]
fn vector_records() {
    let records = |vector: Vector| {
        let verifier = vector.verifier;
        let delivery = delivery(verifier.verify(vector.request, vector.now).unwrap());
        verifier.extract_records(&delivery).unwrap()
    };
    let by_name = |prefix: &str| {
        published()
            .into_iter()
            .find(|vector| vector.name.starts_with(prefix))
            .unwrap()
    };

    let twilio = records(by_name("twilio"));
    assert_eq!(twilio.len(), 1);
    assert_eq!(twilio[0].external_id.as_deref(), Some("CA1234567890ABCDE"));
    assert_eq!(twilio[0].record["Caller"], "+12349013030");

    let hubspot = records(by_name("hubspot v1"));
    assert_eq!(hubspot.len(), 1);
    assert_eq!(hubspot[0].external_id.as_deref(), Some("123"));

    assert!(records(by_name("hubspot v2 GET")).is_empty());

    let slack = records(by_name("slack"));
    assert_eq!(
        slack[0].external_id.as_deref(),
        Some("398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    );
    assert_eq!(slack[0].record["command"], "/webhook-collect");
}
