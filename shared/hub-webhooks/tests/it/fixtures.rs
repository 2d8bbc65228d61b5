//! Each vendor payload fixture, signed with a test secret by the crate's own signing helper,
//! verifies and yields its delivery id, event type and records.

use hub_webhooks::{
    DeliveryIdOrigin, HubspotOptions, HubspotVersion, Outcome, SchemeConfig, WebhookRequest,
    sign_request,
};
use secrecy::SecretString;

use crate::support::{at, fixture, route, verifier_for};

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";
/// base64 of `test-secret-for-hub-webhooks`, as Standard Webhooks secrets are.
const STANDARD_SECRET: &str = "whsec_dGVzdC1zZWNyZXQtZm9yLWh1Yi13ZWJob29rcw==";

enum Expect {
    Delivery {
        /// `None`: the body's hash stands in.
        delivery_id: Option<&'static str>,
        event_type: Option<&'static str>,
        external_ids: Vec<Option<&'static str>>,
    },
    Handshake(&'static str),
}

struct Case {
    path: &'static str,
    scheme: SchemeConfig,
    secret: &'static str,
    content_type: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    expect: Expect,
}

fn github(path: &'static str, event: &'static str, expect: Expect) -> Case {
    Case {
        path,
        scheme: SchemeConfig::Github,
        secret: "github-test-secret",
        content_type: JSON,
        headers: vec![
            ("X-GitHub-Event", event),
            ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ],
        expect,
    }
}

fn github_delivery(event_type: &'static str, id: &'static str) -> Expect {
    Expect::Delivery {
        delivery_id: Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        event_type: Some(event_type),
        external_ids: vec![Some(id)],
    }
}

fn standard(path: &'static str, expect: Expect) -> Case {
    Case {
        path,
        scheme: SchemeConfig::StandardWebhooks,
        secret: STANDARD_SECRET,
        content_type: JSON,
        headers: Vec::new(),
        expect,
    }
}

fn cases() -> Vec<Case> {
    let hubspot_event = || Expect::Delivery {
        delivery_id: None,
        event_type: Some("contact.creation"),
        external_ids: vec![Some("123")],
    };
    let hubspot = |options: HubspotOptions| Case {
        path: "hubspot/contact.creation.v1-doc-example.json",
        scheme: SchemeConfig::Hubspot(options),
        secret: "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
        content_type: JSON,
        headers: Vec::new(),
        expect: hubspot_event(),
    };
    let slack = |path, content_type, expect| Case {
        path,
        scheme: SchemeConfig::Slack,
        secret: "slack-signing-secret",
        content_type,
        headers: Vec::new(),
        expect,
    };
    vec![
        github(
            "github/ping.json",
            "ping",
            github_delivery("ping", "266738161"),
        ),
        github(
            "github/push.json",
            "push",
            github_delivery(
                "push",
                "refs/tags/simple-tag@0000000000000000000000000000000000000000",
            ),
        ),
        github(
            "github/issues.opened.json",
            "issues",
            github_delivery("issues.opened", "444500041"),
        ),
        github(
            "github/pull_request.opened.json",
            "pull_request",
            github_delivery("pull_request.opened", "279147437"),
        ),
        github(
            "github/issue_comment.created.json",
            "issue_comment",
            github_delivery("issue_comment.created", "492700400"),
        ),
        Case {
            path: "stripe/event.plan.created.json",
            scheme: SchemeConfig::Stripe,
            secret: "whsec_stripe_test_secret",
            content_type: JSON,
            headers: Vec::new(),
            expect: Expect::Delivery {
                delivery_id: Some("evt_1Pgc76B7WZ01zgkWwyRHS12y"),
                event_type: Some("plan.created"),
                external_ids: vec![Some("price_1PgafmB7WZ01zgkW6dKueIc5")],
            },
        },
        slack(
            "slack/url_verification.json",
            JSON,
            Expect::Handshake("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"),
        ),
        slack(
            "slack/event_callback.message.app_home.json",
            JSON,
            Expect::Delivery {
                delivery_id: Some("Ev0PV52K25"),
                event_type: Some("message"),
                external_ids: vec![Some("D0PNCRP9N:1525215129.000001")],
            },
        ),
        slack(
            "slack/slash_command.form-urlencoded.txt",
            FORM,
            Expect::Delivery {
                delivery_id: None,
                event_type: Some("slash_command"),
                external_ids: vec![Some(
                    "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
                )],
            },
        ),
        hubspot(HubspotOptions::default()),
        hubspot(HubspotOptions {
            versions: Some(vec![HubspotVersion::V2]),
        }),
        hubspot(HubspotOptions {
            versions: Some(vec![HubspotVersion::V1]),
        }),
        standard(
            "standardwebhooks/contact.created.full.json",
            Expect::Delivery {
                delivery_id: Some("msg_"),
                event_type: Some("contact.created"),
                external_ids: vec![Some("1f81eb52-5198-4599-803e-771906343485")],
            },
        ),
        standard(
            "standardwebhooks/contact.created.thin.json",
            Expect::Delivery {
                delivery_id: Some("msg_"),
                event_type: Some("contact.created"),
                external_ids: vec![Some("1f81eb52-5198-4599-803e-771906343485")],
            },
        ),
        standard(
            "standardwebhooks/test-vector.body.json",
            Expect::Delivery {
                delivery_id: Some("msg_"),
                event_type: None,
                external_ids: vec![None],
            },
        ),
    ]
}

fn signed(case: &Case, secret: &str, seconds: i64) -> WebhookRequest {
    let mut request = WebhookRequest::post("https://hooks.example.test/webhooks/rt_01")
        .with_header("Content-Type", case.content_type)
        .with_body(fixture(case.path));
    for (name, value) in &case.headers {
        request.headers_mut().append(name, *value);
    }
    sign_request(
        &route(case.scheme.clone(), 1),
        &SecretString::from(secret),
        &mut request,
        at(seconds),
    )
    .unwrap_or_else(|error| panic!("{}: {error}", case.path));
    request
}

#[test]
fn every_fixture_signed_by_the_crate_verifies_and_yields_its_records() {
    let now = 1_750_000_000;
    for case in cases() {
        let name = case.path;
        let verifier = verifier_for(route(case.scheme.clone(), 1), &[case.secret]);
        let outcome = verifier
            .verify(signed(&case, case.secret, now), at(now))
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        match (outcome, &case.expect) {
            (Outcome::Handshake(handshake), Expect::Handshake(challenge)) => {
                assert_eq!(handshake.body(), *challenge, "{name}");
                assert_eq!(handshake.status(), 200);
                assert!(handshake.content_type().starts_with("text/plain"));
            }
            (
                Outcome::Delivery(delivery),
                Expect::Delivery {
                    delivery_id,
                    event_type,
                    external_ids,
                },
            ) => {
                let id = delivery.delivery_id();
                match delivery_id {
                    Some(expected) => {
                        assert_eq!(id.origin(), DeliveryIdOrigin::Provider, "{name}");
                        assert!(id.as_str().starts_with(expected), "{name}: {id}");
                    }
                    None => {
                        assert_eq!(id.origin(), DeliveryIdOrigin::BodyHash, "{name}");
                        assert!(id.as_str().starts_with("sha256:"), "{name}: {id}");
                    }
                }
                assert_eq!(delivery.event_type(), *event_type, "{name}");
                assert_eq!(delivery.raw_body(), fixture(name).as_slice(), "{name}");
                let records = verifier.extract_records(&delivery).unwrap();
                let found: Vec<Option<&str>> = records
                    .iter()
                    .map(|record| record.external_id.as_deref())
                    .collect();
                assert_eq!(&found, external_ids, "{name}");
                assert!(
                    records.iter().all(|record| !record.record.is_null()),
                    "{name}"
                );
            }
            (outcome, _) => panic!("{name}: unexpected {outcome:?}"),
        }
    }
}

#[test]
fn a_fixture_signed_with_another_secret_is_refused() {
    let now = 1_750_000_000;
    for case in cases() {
        let other = if case.secret == STANDARD_SECRET {
            "whsec_b3RoZXItc2VjcmV0LWZvci1odWItd2ViaG9va3M="
        } else {
            "another-secret"
        };
        let verifier = verifier_for(route(case.scheme.clone(), 1), &[case.secret]);
        let error = verifier
            .verify(signed(&case, other, now), at(now))
            .expect_err(case.path);
        assert_eq!(error.code(), "bad_signature", "{}", case.path);
        assert_eq!(error.status(), 401);
    }
}

/// A provider's retry (signed again, later) has the delivery id of the first attempt, so the
/// dedup ledger recognises it.
#[test]
fn a_retried_fixture_keeps_its_delivery_id() {
    let first = 1_750_000_000;
    let retry = first + 120;
    for case in cases() {
        let verifier = verifier_for(route(case.scheme.clone(), 1), &[case.secret]);
        let id = |seconds| match verifier.verify(signed(&case, case.secret, seconds), at(seconds)) {
            Ok(Outcome::Delivery(delivery)) => Some(delivery.delivery_id().clone()),
            Ok(Outcome::Handshake(_)) => None,
            Err(error) => panic!("{}: {error}", case.path),
        };
        assert_eq!(id(first), id(retry), "{}", case.path);
    }
}
