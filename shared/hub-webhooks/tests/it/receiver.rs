//! The receiver on the embedded backend: what is published, what is refused with which code,
//! the dedup ledger, the claim check, secret rotation, the rate limit and the allow-list.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use hub_core::keys;
use hub_core::ports::{BusError, BusEvent, EventBus, FailedEntry, Item, PK, RuleSpec, SK};
use hub_testkit::faults::{FaultyState, StateCall};
use hub_webhooks::route::RateLimit;
use hub_webhooks::{
    IpRange, MetaOptions, RateLimiting, Receiver, ReceiverOptions, SchemeConfig, WebhookRequest,
    load_payload, sign_request,
};
use secrecy::SecretString;
use serde_json::json;

use crate::harness::{
    Harness, START, TENANT, TENANT_INTEGRATION, at, body_json, fixture, github, received,
    secret_ref,
};

const SECRET: &str = "github-test-secret";

#[tokio::test]
async fn a_verified_delivery_is_published_once_and_its_duplicate_answered() {
    let h = Harness::new().await;
    let route = h
        .route(SchemeConfig::Github, &[("gh-1", SECRET)], |_| {})
        .await;
    let body = fixture("github/issues.opened.json");

    let response = h.send(&route, github(&route, SECRET, "dlv-1", &body)).await;
    assert_eq!(response.status, 200, "{:?}", body_json(&response));
    assert_eq!(
        body_json(&response),
        json!({"status": "accepted", "deliveryId": "dlv-1"})
    );

    let again = h.send(&route, github(&route, SECRET, "dlv-1", &body)).await;
    assert_eq!(again.status, 200);
    assert_eq!(
        body_json(&again),
        json!({"status": "duplicate", "deliveryId": "dlv-1"})
    );

    let messages = h.transform_messages().await;
    assert_eq!(messages.len(), 1, "published once");
    let event = received(&messages[0]);
    assert_eq!(event.tenant_id.as_str(), TENANT);
    assert_eq!(event.tenant_integration_id, TENANT_INTEGRATION);
    assert_eq!(event.integration_id, "github");
    assert_eq!(event.route_id, route.id.as_str());
    assert_eq!(event.provider, "github");
    assert_eq!(event.delivery_id, "dlv-1");
    assert_eq!(event.event_type.as_deref(), Some("issues.opened"));
    assert_eq!(event.received_at, at(START));
    assert_eq!(
        event.payload,
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()
    );
    // A JSON body travels as the bytes it came as, not re-encoded.
    assert_eq!(event.payload.get().as_bytes(), body.trim_ascii());
    assert!(event.payload_ref.is_none());

    let ledger = h
        .ports
        .state
        .get(&keys::webhook_delivery(route.id.as_str(), "dlv-1"))
        .await
        .unwrap()
        .expect("a ledger entry");
    assert_eq!(ledger["state"], "published");
    assert_eq!(
        ledger["expiresAt"],
        json!(START + 3 * 86_400),
        "the default window is three days"
    );
}

/// The local host answers before marking the ledger; the marks still come before the next
/// claim, so copies sent at the same time, or right after the answer, are duplicates.
#[tokio::test]
async fn answering_before_marking_still_answers_every_copy_duplicate() {
    let h = Harness::with(ReceiverOptions {
        rate_limiting: RateLimiting::InProcess,
        answer_before_marking: true,
        ..ReceiverOptions::default()
    })
    .await;
    let route = h
        .route(SchemeConfig::Github, &[("gh-1", SECRET)], |_| {})
        .await;
    let body = fixture("github/issues.opened.json");
    let send = || h.send(&route, github(&route, SECRET, "dlv-1", &body));
    let answers = futures::future::join_all([send(), send(), send(), send()]).await;
    let mut statuses: Vec<String> = answers
        .iter()
        .map(|answer| {
            assert_eq!(answer.status, 200, "{:?}", body_json(answer));
            body_json(answer)["status"].as_str().unwrap().to_owned()
        })
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        ["accepted", "duplicate", "duplicate", "duplicate"]
    );
    let right_after = send().await;
    assert_eq!(body_json(&right_after)["status"], "duplicate");
    let ledger = h
        .ports
        .state
        .get(&keys::webhook_delivery(route.id.as_str(), "dlv-1"))
        .await
        .unwrap()
        .expect("a ledger entry");
    assert_eq!(ledger["state"], "published");
    assert_eq!(h.transform_depth().await, 1, "published once");
}

#[tokio::test]
async fn a_delivery_id_is_forgotten_after_the_route_s_window() {
    let h = Harness::new().await;
    let route = h
        .route(SchemeConfig::Github, &[("gh-1", SECRET)], |route| {
            route.dedup_window_days = Some(1);
        })
        .await;
    let body = fixture("github/ping.json");
    assert_eq!(
        h.send(&route, github(&route, SECRET, "d", &body))
            .await
            .status,
        200
    );
    h.clock.advance(Duration::from_secs(86_400 - 60));
    let inside = h.send(&route, github(&route, SECRET, "d", &body)).await;
    assert_eq!(body_json(&inside)["status"], "duplicate");
    h.clock.advance(Duration::from_secs(61));
    let after = h.send(&route, github(&route, SECRET, "d", &body)).await;
    assert_eq!(body_json(&after)["status"], "accepted");
    assert_eq!(h.transform_depth().await, 2);
}

/// Each refusal: its status, its stable code, a JSON body, and nothing published or recorded.
#[tokio::test]
async fn every_bad_input_has_its_own_code_and_publishes_nothing() {
    let h = Harness::new().await;
    let github_route = h
        .route(SchemeConfig::Github, &[("gh-1", SECRET)], |route| {
            route.config.max_body_bytes = Some(64 * 1024);
        })
        .await;
    let stripe_route = h
        .route(SchemeConfig::Stripe, &[("st-1", "whsec_stripe")], |_| {})
        .await;
    let allow_listed = h
        .route(SchemeConfig::Github, &[("gh-2", SECRET)], |route| {
            route.config.ip_allow_list = Some(vec![IpRange::parse("192.0.2.0/24").unwrap()]);
        })
        .await;
    let limited = h
        .route(SchemeConfig::Github, &[("gh-3", SECRET)], |route| {
            route.rate_limit = Some(RateLimit {
                requests_per_second: 1,
                burst: Some(1),
            });
        })
        .await;
    let unresolvable = h
        .route(SchemeConfig::Github, &[], |route| {
            route.config.secrets = vec![secret_ref("never-stored")];
        })
        .await;
    let body = fixture("github/issues.opened.json");
    let signed = |route, delivery: &str| github(route, SECRET, delivery, &body);
    let stripe = |body: &[u8], signed_at: i64| {
        let mut request = WebhookRequest::post("http://127.0.0.1/webhooks/x")
            .with_header("Content-Type", "application/json")
            .with_body(body.to_vec());
        sign_request(
            &stripe_route.config,
            &SecretString::from("whsec_stripe"),
            &mut request,
            at(signed_at),
        )
        .unwrap();
        request
    };
    // Uses up the limited route's only token.
    assert_eq!(
        h.send(&limited, signed(&limited, "first")).await.status,
        200
    );
    let published_before = h.transform_depth().await;

    let mut unsigned = signed(&github_route, "d-unsigned");
    unsigned.headers_mut().remove("X-Hub-Signature-256");
    let mut wrong = signed(&github_route, "d-wrong");
    wrong.set_body([body.as_slice(), b" "].concat());
    let mut oversize = signed(&github_route, "d-big");
    oversize.set_body(vec![b' '; 64 * 1024 + 1]);
    let mut not_json = github(&github_route, SECRET, "d-text", b"not json at all");
    not_json
        .headers_mut()
        .insert("content-type", "application/json");
    let mut xml = WebhookRequest::post("http://127.0.0.1/x")
        .with_header("Content-Type", "text/xml")
        .with_header("X-GitHub-Event", "issues")
        .with_header("X-GitHub-Delivery", "d-xml")
        .with_body(b"<issue/>".to_vec());
    sign_request(
        &github_route.config,
        &SecretString::from(SECRET),
        &mut xml,
        at(START),
    )
    .unwrap();
    let stripe_body = fixture("stripe/event.plan.created.json");
    let put = {
        let mut put = signed(&github_route, "d-put");
        put = WebhookRequest::new("PUT", put.url())
            .with_headers(put.headers().clone())
            .with_body(body.clone());
        put
    };

    let cases: Vec<(&str, &str, WebhookRequest, u16, &str)> = vec![
        (
            "unknown route",
            "rt_doesnotexist0000000000000000",
            signed(&github_route, "d-1"),
            404,
            "unknown_route",
        ),
        (
            "malformed route id",
            "../etc",
            signed(&github_route, "d-2"),
            404,
            "unknown_route",
        ),
        (
            "missing signature",
            github_route.id.as_str(),
            unsigned,
            401,
            "missing_signature",
        ),
        (
            "wrong signature",
            github_route.id.as_str(),
            wrong,
            401,
            "bad_signature",
        ),
        (
            "stale timestamp",
            stripe_route.id.as_str(),
            stripe(&stripe_body, START - 301),
            401,
            "timestamp_outside_window",
        ),
        (
            "future timestamp",
            stripe_route.id.as_str(),
            stripe(&stripe_body, START + 301),
            401,
            "timestamp_outside_window",
        ),
        (
            "body over the limit",
            github_route.id.as_str(),
            oversize,
            413,
            "body_too_large",
        ),
        (
            "unsupported content type",
            github_route.id.as_str(),
            xml,
            415,
            "unsupported_content_type",
        ),
        (
            "malformed JSON after a valid signature",
            github_route.id.as_str(),
            not_json,
            400,
            "malformed_body",
        ),
        (
            "method",
            github_route.id.as_str(),
            put,
            405,
            "method_not_allowed",
        ),
        (
            "source outside the allow-list",
            allow_listed.id.as_str(),
            signed(&allow_listed, "d-ip").with_source_ip("198.51.100.7".parse().unwrap()),
            403,
            "source_ip_not_allowed",
        ),
        (
            "no source address with an allow-list",
            allow_listed.id.as_str(),
            signed(&allow_listed, "d-ip2"),
            403,
            "source_ip_not_allowed",
        ),
        (
            "rate limit",
            limited.id.as_str(),
            signed(&limited, "d-rate"),
            429,
            "rate_limited",
        ),
        (
            "route whose secrets cannot be read",
            unresolvable.id.as_str(),
            signed(&unresolvable, "d-cfg"),
            404,
            "unknown_scheme_config",
        ),
    ];
    for (what, route_id, request, status, code) in cases {
        let response = h.receiver.handle(route_id, request).await;
        assert_eq!(
            response.status,
            status,
            "{what}: {:?}",
            body_json(&response)
        );
        assert_eq!(
            response.header("content-type"),
            Some("application/json"),
            "{what}"
        );
        let error = body_json(&response);
        assert_eq!(error["code"], code, "{what}: {error}");
        let message = error["message"].as_str().expect("a message");
        assert!(
            !message.is_empty() && !message.contains(SECRET),
            "{what}: {message}"
        );
        assert!(
            !message.contains("\"title\""),
            "{what}: the body is not quoted"
        );
        if code == "rate_limited" {
            assert_eq!(response.header("retry-after"), Some("1"), "{what}");
        }
    }
    assert_eq!(
        h.transform_depth().await,
        published_before,
        "nothing was published"
    );
    for delivery in ["d-unsigned", "d-wrong", "d-big", "d-text", "d-xml", "d-put"] {
        let entry = h
            .ports
            .state
            .get(&keys::webhook_delivery(github_route.id.as_str(), delivery))
            .await
            .unwrap();
        assert!(entry.is_none(), "{delivery} left a ledger entry");
    }
}

#[tokio::test]
async fn a_payload_too_large_for_an_event_travels_by_claim_check() {
    let h = Harness::new().await;
    let route = h
        .route(SchemeConfig::Github, &[("gh-1", SECRET)], |_| {})
        .await;
    let mut issue: serde_json::Value =
        serde_json::from_slice(&fixture("github/issues.opened.json")).unwrap();
    issue["issue"]["body"] = json!("x\"y\\z ".repeat(111_000));
    let body = serde_json::to_vec(&issue).unwrap();
    assert!((880_000..1_000_000).contains(&body.len()), "{}", body.len());

    let response = h
        .send(&route, github(&route, SECRET, "dlv-big", &body))
        .await;
    assert_eq!(response.status, 200, "{:?}", body_json(&response));
    let messages = h.transform_messages().await;
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].body.len() < 4 * 1024,
        "the event carries a reference, not the payload"
    );
    let event = received(&messages[0]);
    assert!(event.payload.is_null());
    let reference = event.payload_ref.clone().expect("a claim check");
    assert!(reference.chunks >= 3, "{reference:?}");
    let payload = load_payload(
        &*h.ports.state,
        &event.route_id,
        &event.delivery_id,
        &reference,
    )
    .await
    .unwrap();
    assert_eq!(payload, issue);

    // A damaged chunk is detected, not passed on.
    let chunk = keys::webhook_payload_chunk(route.id.as_str(), "dlv-big", 1);
    let mut item = h.ports.state.get(&chunk).await.unwrap().unwrap();
    item.insert("data".into(), json!("tampered"));
    h.ports.state.put(item, None).await.unwrap();
    let error = load_payload(&*h.ports.state, &event.route_id, "dlv-big", &reference)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("does not match"), "{error}");
}

#[tokio::test]
async fn two_active_secrets_both_verify_and_a_rotated_secret_is_picked_up_after_the_ttl() {
    let h = Harness::new().await;
    let route = h
        .route(
            SchemeConfig::Github,
            &[("gh-old", "old-secret"), ("gh-new", "new-secret")],
            |_| {},
        )
        .await;
    let body = fixture("github/ping.json");
    for (secret, delivery) in [("old-secret", "a"), ("new-secret", "b")] {
        let response = h
            .send(&route, github(&route, secret, delivery, &body))
            .await;
        assert_eq!(body_json(&response)["status"], "accepted", "{secret}");
    }
    let refused = h.send(&route, github(&route, "other", "c", &body)).await;
    assert_eq!(body_json(&refused)["code"], "bad_signature");

    // The old secret's value is replaced in the store: the cached verifier keeps it for up to
    // a minute, then the new value is read.
    h.set_secret(&secret_ref("gh-old"), "rotated-secret").await;
    let cached = h
        .send(&route, github(&route, "rotated-secret", "d", &body))
        .await;
    assert_eq!(body_json(&cached)["code"], "bad_signature");
    h.clock.advance(Duration::from_secs(61));
    let fresh = h
        .send(&route, github(&route, "rotated-secret", "d", &body))
        .await;
    assert_eq!(body_json(&fresh)["status"], "accepted");
    let old = h
        .send(&route, github(&route, "old-secret", "e", &body))
        .await;
    assert_eq!(body_json(&old)["code"], "bad_signature");
    assert_eq!(h.transform_depth().await, 3);
}

async fn rate_limit_is_enforced(limiting: RateLimiting) {
    let h = Harness::with(ReceiverOptions {
        rate_limiting: limiting,
        ..ReceiverOptions::default()
    })
    .await;
    let route = h
        .route(SchemeConfig::Github, &[("gh-1", SECRET)], |route| {
            route.rate_limit = Some(RateLimit {
                requests_per_second: 2,
                burst: Some(2),
            });
        })
        .await;
    let other = h
        .route(SchemeConfig::Github, &[("gh-2", SECRET)], |_| {})
        .await;
    let body = fixture("github/ping.json");
    let mut statuses = Vec::new();
    for n in 0..3 {
        let delivery = format!("d-{n}");
        statuses.push(
            h.send(&route, github(&route, SECRET, &delivery, &body))
                .await
                .status,
        );
    }
    assert_eq!(statuses, [200, 200, 429], "{limiting:?}");
    let elsewhere = h.send(&other, github(&other, SECRET, "x", &body)).await;
    assert_eq!(
        elsewhere.status, 200,
        "{limiting:?}: routes are limited apart"
    );
    h.clock.advance(Duration::from_secs(1));
    let later = h.send(&route, github(&route, SECRET, "d-3", &body)).await;
    assert_eq!(later.status, 200, "{limiting:?}: the allowance comes back");
    assert_eq!(h.transform_depth().await, 4);
}

#[tokio::test]
async fn the_rate_limit_holds_in_the_state_table_and_in_process() {
    rate_limit_is_enforced(RateLimiting::StateTable).await;
    rate_limit_is_enforced(RateLimiting::InProcess).await;
}

#[tokio::test]
async fn the_allow_list_admits_its_ranges_only() {
    let h = Harness::new().await;
    let route = h
        .route(SchemeConfig::Github, &[("gh-1", SECRET)], |route| {
            route.config.ip_allow_list = Some(vec![
                IpRange::parse("192.0.2.0/24").unwrap(),
                IpRange::parse("2001:db8::/32").unwrap(),
            ]);
        })
        .await;
    let body = fixture("github/ping.json");
    for (n, (ip, status)) in [
        ("192.0.2.77", 200),
        ("2001:db8::5", 200),
        ("192.0.3.1", 403),
        ("::1", 403),
    ]
    .into_iter()
    .enumerate()
    {
        let request =
            github(&route, SECRET, &format!("d-{n}"), &body).with_source_ip(ip.parse().unwrap());
        assert_eq!(h.send(&route, request).await.status, status, "{ip}");
    }
    assert_eq!(h.transform_depth().await, 2);
}

#[tokio::test]
async fn handshakes_are_answered_and_publish_nothing() {
    let h = Harness::new().await;
    let slack = h
        .route(
            SchemeConfig::Slack,
            &[("slack-1", "slack-signing-secret")],
            |_| {},
        )
        .await;
    let mut url_verification = WebhookRequest::post("http://127.0.0.1/x")
        .with_header("Content-Type", "application/json")
        .with_body(fixture("slack/url_verification.json"));
    sign_request(
        &slack.config,
        &SecretString::from("slack-signing-secret"),
        &mut url_verification,
        at(START),
    )
    .unwrap();
    let response = h.send(&slack, url_verification).await;
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(
        response.body,
        b"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );

    h.set_secret(&secret_ref("meta-token"), "tok-123").await;
    let meta = h
        .route(
            SchemeConfig::Meta(MetaOptions {
                verify_token: secret_ref("meta-token"),
                allow_sha1: None,
            }),
            &[("meta-app", "app-secret")],
            |_| {},
        )
        .await;
    let subscribe = |token: &str| {
        WebhookRequest::new(
            "GET",
            format!(
                "http://127.0.0.1{}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444",
                meta.path()
            ),
        )
    };
    let answer = h.send(&meta, subscribe("tok-123")).await;
    assert_eq!(
        (answer.status, answer.body.as_slice()),
        (200, &b"1158201444"[..])
    );
    let refused = h.send(&meta, subscribe("tok-999")).await;
    assert_eq!(refused.status, 403);
    assert_eq!(body_json(&refused)["code"], "handshake_rejected");

    let graph = h
        .route(
            SchemeConfig::MicrosoftGraph,
            &[("graph-1", "client-state")],
            |_| {},
        )
        .await;
    let validation = WebhookRequest::post(format!(
        "http://127.0.0.1{}?validationToken=Validation%3A%20Testing",
        graph.path()
    ));
    let answer = h.send(&graph, validation).await;
    assert_eq!(
        (answer.status, answer.body.as_slice()),
        (200, &b"Validation: Testing"[..])
    );

    assert_eq!(h.transform_depth().await, 0);
}

/// The attempt that wrote `pending` died before marking the entry: a retry within the
/// takeover time is told to come back, a later one publishes.
#[tokio::test]
async fn a_pending_entry_of_a_dead_attempt_is_taken_over_after_a_few_seconds() {
    let h = Harness::new().await;
    let route = h
        .route(SchemeConfig::Github, &[("gh-1", SECRET)], |_| {})
        .await;
    let key = keys::webhook_delivery(route.id.as_str(), "dlv-crash");
    let mut pending = Item::new();
    pending.insert(PK.into(), key.pk.clone().into());
    pending.insert(SK.into(), key.sk.clone().into());
    pending.insert("state".into(), "pending".into());
    pending.insert("attempt".into(), "dead-attempt".into());
    pending.insert("pendingSinceMs".into(), (START * 1000).into());
    pending.insert("expiresAt".into(), (START + 86_400).into());
    h.ports.state.put(pending, None).await.unwrap();

    let body = fixture("github/ping.json");
    h.clock.advance(Duration::from_secs(2));
    let early = h
        .send(&route, github(&route, SECRET, "dlv-crash", &body))
        .await;
    assert_eq!(early.status, 409);
    assert_eq!(body_json(&early)["code"], "delivery_in_progress");
    assert_eq!(early.header("retry-after"), Some("5"));
    assert_eq!(h.transform_depth().await, 0);

    h.clock.advance(Duration::from_secs(4));
    let later = h
        .send(&route, github(&route, SECRET, "dlv-crash", &body))
        .await;
    assert_eq!(body_json(&later)["status"], "accepted");
    assert_eq!(h.transform_depth().await, 1);
    let entry = h.ports.state.get(&key).await.unwrap().unwrap();
    assert_eq!(entry["state"], "published");
}

/// A bus that refuses every event, as during an outage.
struct DownBus;

#[async_trait]
impl EventBus for DownBus {
    fn bus_name(&self) -> &str {
        "down"
    }

    async fn put_events(&self, events: Vec<BusEvent>) -> Result<Vec<FailedEntry>, BusError> {
        Ok((0..events.len())
            .map(|index| FailedEntry {
                index,
                code: "InternalFailure".into(),
                message: "the bus is down".into(),
            })
            .collect())
    }

    async fn put_rule(&self, _rule: RuleSpec) -> Result<(), BusError> {
        Err(BusError::Unavailable("the bus is down".into()))
    }
}

#[tokio::test]
async fn a_failed_publish_is_a_503_and_leaves_the_delivery_to_the_retry() {
    let h = Harness::new().await;
    let route = h
        .route(SchemeConfig::Github, &[("gh-1", SECRET)], |_| {})
        .await;
    let mut down = h.ports.clone();
    down.bus = Arc::new(DownBus);
    let failing = Receiver::new(&down, ReceiverOptions::default());
    let body = fixture("github/ping.json");

    let response = failing
        .handle(route.id.as_str(), github(&route, SECRET, "dlv-1", &body))
        .await;
    assert_eq!(response.status, 503);
    let error = body_json(&response);
    assert_eq!(error["code"], "unavailable");
    assert!(
        !error["message"].as_str().unwrap().contains("down"),
        "the cause is logged, not answered: {error}"
    );
    let entry = h
        .ports
        .state
        .get(&keys::webhook_delivery(route.id.as_str(), "dlv-1"))
        .await
        .unwrap();
    assert!(entry.is_none(), "the ledger entry was released");

    let retry = h.send(&route, github(&route, SECRET, "dlv-1", &body)).await;
    assert_eq!(body_json(&retry)["status"], "accepted");
    assert_eq!(h.transform_depth().await, 1);
}

/// Deliveries arriving together are claimed in one transaction and published in one call;
/// each is still published once, and a duplicate among them is answered as one.
#[tokio::test]
async fn deliveries_arriving_together_are_committed_together_and_each_once() {
    let h = Harness::new().await;
    let route = h
        .route(SchemeConfig::Github, &[("gh-1", SECRET)], |_| {})
        .await;
    let transactions = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&transactions);
    let mut ports = h.ports.clone();
    ports.state = Arc::new(FaultyState::new(Arc::clone(&h.ports.state), move |call| {
        if call == StateCall::TransactWrite {
            counted.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }));
    let receiver = Receiver::new(
        &ports,
        ReceiverOptions {
            rate_limiting: RateLimiting::InProcess,
            ..ReceiverOptions::default()
        },
    );
    let body = fixture("github/ping.json");
    let first = receiver
        .handle(route.id.as_str(), github(&route, SECRET, "dlv-0", &body))
        .await;
    assert_eq!(body_json(&first)["status"], "accepted");

    let mut deliveries: Vec<String> = (1..=20).map(|n| format!("dlv-{n}")).collect();
    deliveries.extend(["dlv-0".to_owned(), "dlv-7".to_owned(), "dlv-7".to_owned()]);
    let answers = futures::future::join_all(deliveries.iter().map(|delivery| {
        receiver.handle(route.id.as_str(), github(&route, SECRET, delivery, &body))
    }))
    .await;
    let mut accepted = std::collections::BTreeMap::new();
    for (delivery, answer) in deliveries.iter().zip(&answers) {
        assert_eq!(answer.status, 200, "{delivery}: {:?}", body_json(answer));
        let status = body_json(answer)["status"].as_str().unwrap().to_owned();
        accepted
            .entry(delivery.clone())
            .or_insert_with(Vec::new)
            .push(status);
    }
    assert_eq!(accepted["dlv-0"], ["duplicate"]);
    let mut seven = accepted["dlv-7"].clone();
    seven.sort();
    assert_eq!(seven, ["accepted", "duplicate", "duplicate"]);
    assert!(
        (1..=20).all(|n| accepted[&format!("dlv-{n}")].contains(&"accepted".to_owned())),
        "{accepted:?}"
    );
    assert!(
        transactions.load(Ordering::Relaxed) >= 1,
        "the claims of deliveries arriving together share a transaction"
    );
    assert_eq!(h.transform_depth().await, 21, "each delivery once");
}
