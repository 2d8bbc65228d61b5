//! Secret rotation, handshakes, the providers without published vectors or fixtures, the
//! generic scheme, and every refusal with its code and status.

use hub_core::model::{SecretRef, load_json};
use hub_webhooks::{
    GenericScheme, HandshakeKind, HmacAlgorithm, HubspotOptions, JsonPointer, MetaOptions, Outcome,
    ResolvedSecrets, RouteConfig, SchemeConfig, SecretEncoding, SignatureEncoding, SignedPayload,
    Verifier, WebhookError, WebhookRequest, ZendeskOptions, extract_records, sign, sign_request,
};
use secrecy::SecretString;
use serde_json::json;

use crate::support::{
    Field, at, changes_that_still_verify, delivery, resolved, route, secret_ref, vector, verifier,
    verifier_for,
};

const URL: &str = "https://hooks.example.test/webhooks/rt_01";
const NOW: i64 = 1_750_000_000;

fn json_post(body: &serde_json::Value) -> WebhookRequest {
    WebhookRequest::post(URL)
        .with_header("Content-Type", "application/json")
        .with_body(serde_json::to_vec(body).unwrap())
}

/// Signs `request` for `scheme` with `secret` and verifies it with a route holding `secrets`.
fn sign_and_verify(
    scheme: &SchemeConfig,
    secret: &str,
    secrets: &[&str],
    mut request: WebhookRequest,
) -> (Verifier, WebhookRequest, Result<Outcome, WebhookError>) {
    let route = route(scheme.clone(), secrets.len());
    sign_request(&route, &SecretString::from(secret), &mut request, at(NOW)).unwrap();
    let verifier = verifier_for(route, secrets);
    let outcome = verifier.verify(request.clone(), at(NOW));
    (verifier, request, outcome)
}

// --- rotation: several secrets per route, several signatures per delivery ---

#[test]
fn any_active_secret_verifies() {
    let body = vector("github_hello.txt");
    let request = WebhookRequest::post(URL)
        .with_header(
            "X-Hub-Signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )
        .with_body(body);
    for secrets in [
        ["It's a Secret to Everybody", "next"],
        ["previous", "It's a Secret to Everybody"],
    ] {
        let verifier = verifier(SchemeConfig::Github, &secrets);
        assert_eq!(verifier.authenticate(&request, at(NOW)), Ok(None));
    }
    let verifier = verifier(SchemeConfig::Github, &["previous", "next"]);
    assert_eq!(
        verifier.authenticate(&request, at(NOW)),
        Err(WebhookError::BadSignature {
            header: "X-Hub-Signature-256".into()
        })
    );
}

#[test]
fn a_secret_missing_from_the_store_is_skipped_while_another_remains() {
    let route = route(SchemeConfig::Github, 2);
    let only_second = ResolvedSecrets::new().with(secret_ref(1), SecretString::from("new"));
    let verifier = Verifier::new(route.clone(), &only_second).unwrap();
    let mut request = WebhookRequest::post(URL).with_body(b"{}".to_vec());
    request
        .headers_mut()
        .insert("X-Hub-Signature-256", sign::github("new", b"{}"));
    assert!(verifier.authenticate(&request, at(NOW)).is_ok());

    let error = Verifier::new(route, &ResolvedSecrets::new()).unwrap_err();
    assert_eq!(
        (error.code(), error.status()),
        ("unknown_scheme_config", 404)
    );
}

#[test]
fn stripe_accepts_any_of_several_v1_signatures() {
    let body = vector("standardwebhooks_test.json");
    let valid = "10c96c6fd3f320fcfc264cdc4f476c15060ede8e8a08404cea2ddf3b72544a9c";
    let other = "0".repeat(64);
    let verifier = verifier(SchemeConfig::Stripe, &["whsec_test_secret"]);
    let request = |header: String| {
        json_post(&json!(null))
            .with_body(body.clone())
            .with_header("Stripe-Signature", header)
    };
    for header in [
        format!("t=1614265330,v1={other},v1={valid}"),
        format!("t=1614265330,v1={valid},v1={other},v0={other}"),
        format!("t=1614265330,v1=not-hex,v1={valid}"),
    ] {
        assert!(
            verifier
                .authenticate(&request(header.clone()), at(1_614_265_330))
                .is_ok(),
            "{header}"
        );
    }
    for (header, code) in [
        (
            format!("t=1614265330,v1={other},v1={other}"),
            "bad_signature",
        ),
        (format!("t=1614265330,v0={valid}"), "malformed_signature"),
        (format!("v1={valid}"), "malformed_signature"),
        (
            format!("t=1614265330,t=1614265330,v1={valid}"),
            "malformed_signature",
        ),
        (format!("t=1614265330 ,v1={valid}"), "malformed_signature"),
    ] {
        let error = verifier
            .authenticate(&request(header.clone()), at(1_614_265_330))
            .unwrap_err();
        assert_eq!(error.code(), code, "{header}");
    }
}

#[test]
fn standard_webhooks_accepts_any_of_several_signatures_and_secrets() {
    let body = vector("standardwebhooks_test.json");
    let valid = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    let request = |signature: &str| {
        WebhookRequest::post(URL)
            .with_header("Content-Type", "application/json")
            .with_header("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
            .with_header("webhook-timestamp", "1614265330")
            .with_header("webhook-signature", signature)
            .with_body(body.clone())
    };
    let verifier = verifier(
        SchemeConfig::StandardWebhooks,
        &[
            "whsec_dGVzdC1zZWNyZXQtZm9yLWh1Yi13ZWJob29rcw==",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ],
    );
    let other = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    for signature in [
        format!("{other} {valid}"),
        format!("v1a,bm90LWNoZWNrZWQ= {valid}"),
        format!("v2,xyz {valid} {other}"),
    ] {
        assert!(
            verifier
                .authenticate(&request(&signature), at(1_614_265_330))
                .is_ok(),
            "{signature}"
        );
    }
    assert_eq!(
        verifier
            .authenticate(&request(other), at(1_614_265_330))
            .unwrap_err()
            .code(),
        "bad_signature"
    );
    assert_eq!(
        verifier
            .authenticate(&request("v1a,bm90LWNoZWNrZWQ="), at(1_614_265_330))
            .unwrap_err()
            .code(),
        "malformed_signature"
    );
}

// --- handshakes ---

fn meta_route() -> (RouteConfig, ResolvedSecrets) {
    let token = SecretRef::parse("hub/t1/wh-verify").unwrap();
    let route = RouteConfig::new(
        SchemeConfig::Meta(MetaOptions {
            verify_token: token.clone(),
            allow_sha1: None,
        }),
        vec![secret_ref(0)],
    );
    let secrets = resolved(&["meta-app-secret"]).with(token, SecretString::from("tok-123"));
    (route, secrets)
}

#[test]
fn meta_subscription_handshake_answers_the_challenge_for_the_right_token_only() {
    let (route, secrets) = meta_route();
    let verifier = Verifier::new(route, &secrets).unwrap();
    let handshake = |query: &str| {
        verifier.verify(
            WebhookRequest::new("GET", format!("{URL}?{query}")),
            at(NOW),
        )
    };
    let Ok(Outcome::Handshake(answer)) =
        handshake("hub.mode=subscribe&hub.verify_token=tok-123&hub.challenge=1158201444")
    else {
        panic!("no handshake");
    };
    assert_eq!(answer.kind(), HandshakeKind::MetaSubscription);
    assert_eq!((answer.status(), answer.body()), (200, "1158201444"));
    for query in [
        "hub.mode=subscribe&hub.verify_token=tok-124&hub.challenge=1",
        "hub.mode=subscribe&hub.verify_token=tok-12&hub.challenge=1",
        "hub.mode=unsubscribe&hub.verify_token=tok-123&hub.challenge=1",
        "hub.mode=subscribe&hub.challenge=1",
        "hub.mode=subscribe&hub.verify_token=tok-123",
        "",
    ] {
        let error = handshake(query).unwrap_err();
        assert_eq!(
            (error.code(), error.status()),
            ("handshake_rejected", 403),
            "{query}"
        );
        assert!(!error.to_string().contains("tok-12"), "{error}");
    }
}

#[test]
fn meta_deliveries_are_signed_by_the_app_secret() {
    let (route, secrets) = meta_route();
    let verifier = Verifier::new(route.clone(), &secrets).unwrap();
    // Shape of a WhatsApp Cloud API message notification (developers.facebook.com,
    // "Webhooks payload examples"), values made up.
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "messages": [{"from": "16505551234", "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQ", "type": "text", "text": {"body": "Hello"}}]
        }}]}]
    });
    let mut request = json_post(&body);
    sign_request(
        &route,
        &SecretString::from("meta-app-secret"),
        &mut request,
        at(NOW),
    )
    .unwrap();
    let delivery = delivery(verifier.verify(request.clone(), at(NOW)).unwrap());
    assert_eq!(
        delivery.event_type(),
        Some("whatsapp_business_account.messages")
    );
    let records = verifier.extract_records(&delivery).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].record["messages"][0]["text"]["body"], "Hello");
    assert!(
        changes_that_still_verify(
            &verifier,
            &request,
            at(NOW),
            &[Field::Body, Field::Header("X-Hub-Signature-256")]
        )
        .is_empty()
    );
    // The verify token is not a signing key.
    let mut forged = json_post(&body);
    let by_token = sign::meta("tok-123", forged.body());
    forged.headers_mut().insert("X-Hub-Signature-256", by_token);
    assert_eq!(
        verifier.verify(forged, at(NOW)).unwrap_err().code(),
        "bad_signature"
    );
}

#[test]
fn meta_accepts_the_legacy_sha1_signature_only_when_allowed() {
    let (mut route, secrets) = meta_route();
    let body = br#"{"object":"page","entry":[]}"#;
    let hex_sha1 = hub_sha1("meta-app-secret", body);
    let request = WebhookRequest::post(URL)
        .with_header("Content-Type", "application/json")
        .with_header("X-Hub-Signature", format!("sha1={hex_sha1}"))
        .with_body(body.to_vec());
    let verifier = Verifier::new(route.clone(), &secrets).unwrap();
    assert_eq!(
        verifier.authenticate(&request, at(NOW)).unwrap_err().code(),
        "missing_signature"
    );
    route.scheme = SchemeConfig::Meta(MetaOptions {
        verify_token: SecretRef::parse("hub/t1/wh-verify").unwrap(),
        allow_sha1: Some(true),
    });
    let verifier = Verifier::new(route, &secrets).unwrap();
    assert!(verifier.authenticate(&request, at(NOW)).is_ok());
}

/// HMAC-SHA1 through a generic SHA-1 route, to check Meta's legacy header independently.
fn hub_sha1(secret: &str, body: &[u8]) -> String {
    let scheme = GenericScheme {
        signature_header: "X".into(),
        signature_prefix: None,
        signature_separator: None,
        algorithm: HmacAlgorithm::Sha1,
        encoding: SignatureEncoding::Hex,
        secret_encoding: SecretEncoding::Utf8,
        signed_payload: SignedPayload::default(),
        timestamp_header: None,
        timestamp_format: None,
        delivery_id_header: None,
        delivery_id_pointer: None,
        event_type_header: None,
        event_type_pointer: None,
        records_pointer: None,
        record_id_pointer: None,
    };
    let request = WebhookRequest::post(URL).with_body(body.to_vec());
    sign::generic(&scheme, secret, &request, None).unwrap()
}

#[test]
fn graph_validation_echoes_the_decoded_token_without_a_secret() {
    let verifier = verifier(SchemeConfig::MicrosoftGraph, &["client-state-1"]);
    let request = WebhookRequest::post(format!(
        "{URL}?validationToken=Validation%3A%20Testing%20client%20application%20reachability"
    ))
    .with_header("Content-Type", "text/plain");
    let Ok(Outcome::Handshake(answer)) = verifier.verify(request, at(NOW)) else {
        panic!("no handshake");
    };
    assert_eq!(answer.kind(), HandshakeKind::GraphValidation);
    assert_eq!(
        answer.body(),
        "Validation: Testing client application reachability"
    );
    assert!(answer.content_type().starts_with("text/plain"));
    let get = WebhookRequest::new("GET", format!("{URL}?validationToken=x"));
    assert_eq!(
        verifier.verify(get, at(NOW)).unwrap_err().code(),
        "method_not_allowed"
    );
    let control = WebhookRequest::post(format!("{URL}?validationToken=a%0Ab"));
    assert_eq!(
        verifier.verify(control, at(NOW)).unwrap_err().code(),
        "handshake_rejected"
    );
}

/// Shape of a change notification (learn.microsoft.com, "Receive change notifications through
/// webhooks"), values made up.
fn graph_notifications(client_states: &[Option<&str>]) -> serde_json::Value {
    let items: Vec<_> = client_states
        .iter()
        .enumerate()
        .map(|(index, state)| {
            let mut item = json!({
                "subscriptionId": "76222963-cc7b-42d2-882d-8aaa69cb2ba3",
                "changeType": "created",
                "resource": format!("Users/u1/Messages/m{index}"),
                "resourceData": {"@odata.type": "#Microsoft.Graph.Message", "id": format!("m{index}")},
                "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95"
            });
            if let Some(state) = state {
                item["clientState"] = json!(state);
            }
            item
        })
        .collect();
    json!({"value": items})
}

#[test]
fn graph_notifications_are_checked_by_client_state_which_never_leaves() {
    let verifier = verifier(SchemeConfig::MicrosoftGraph, &["old-state", "new-state"]);
    let body = graph_notifications(&[Some("new-state"), Some("old-state")]);
    let delivery = delivery(verifier.verify(json_post(&body), at(NOW)).unwrap());
    assert_eq!(delivery.event_type(), Some("created"));
    assert!(
        !serde_json::to_string(delivery.payload())
            .unwrap()
            .contains("state")
    );
    // Nor does the event's payload carry the body as it came.
    let published = delivery.clone().into_payload_json();
    assert!(!published.get().contains("state"), "{published}");
    assert_eq!(published, *delivery.payload());
    let records = verifier.extract_records(&delivery).unwrap();
    let ids: Vec<_> = records.iter().map(|r| r.external_id.as_deref()).collect();
    assert_eq!(ids, [Some("m0"), Some("m1")]);

    for (states, code) in [
        (vec![Some("new-state"), Some("other")], "bad_signature"),
        (vec![Some("new-state"), None], "missing_signature"),
        (vec![Some("new-statE")], "bad_signature"),
    ] {
        let error = verifier
            .verify(json_post(&graph_notifications(&states)), at(NOW))
            .unwrap_err();
        assert_eq!(error.code(), code, "{states:?}");
    }
    let error = verifier.verify(json_post(&json!({"value": []})), at(NOW));
    assert_eq!(error.unwrap_err().code(), "malformed_body");

    // The signing helper stamps the client state into every notification.
    let (_, _, outcome) = sign_and_verify(
        &SchemeConfig::MicrosoftGraph,
        "new-state",
        &["new-state"],
        json_post(&graph_notifications(&[None, None])),
    );
    assert!(matches!(outcome, Ok(Outcome::Delivery(_))));
}

#[test]
fn a_payload_travels_as_the_body_only_when_it_is_the_json_body_unchanged() {
    // JSON bodies spaced as no encoder writes them: their own bytes travel, whether the
    // provider parsed them (Slack, Twilio) or only read their head (GitHub).
    let spaced = |text: &str| {
        WebhookRequest::post(URL)
            .with_header("Content-Type", "application/json")
            .with_body(text.as_bytes().to_vec())
    };
    for (scheme, text) in [
        (
            SchemeConfig::Github,
            r#"{ "action" : "opened" ,"issue": {"id": 1} }"#,
        ),
        (
            SchemeConfig::Slack,
            r#"{"type":"event_callback", "event_id":"Ev1", "event":{ "type":"message"}}"#,
        ),
        (SchemeConfig::Twilio, r#"{ "CallSid" : "CA1" }"#),
    ] {
        let (_, _, outcome) = sign_and_verify(&scheme, "secret", &["secret"], spaced(text));
        let published = delivery(outcome.unwrap()).into_payload_json();
        assert_eq!(published.get(), text, "{scheme:?}");
    }
    // A form travels as the object of its fields, never as the form's text.
    let form = WebhookRequest::post(URL)
        .with_header("Content-Type", "application/x-www-form-urlencoded")
        .with_body(b"command=%2Fweather&text=94070".to_vec());
    let (_, _, outcome) = sign_and_verify(&SchemeConfig::Slack, "secret", &["secret"], form);
    let published = delivery(outcome.unwrap()).into_payload_json();
    assert_eq!(
        published.to_value().unwrap(),
        json!({"command": "/weather", "text": "94070"})
    );
}

// --- providers without published vectors: sign, verify, extract, and resist changes ---

#[test]
fn shopify_jira_teams_zendesk_and_hubspot_v3_round_trip_and_resist_changes() {
    // Bodies made up in the shape of each provider's documentation.
    let cases = [
        (
            SchemeConfig::Shopify,
            "shpss_test",
            json!({"id": 820982911946154508_u64, "email": "jon@example.com", "total_price": "10.00"}),
            vec![
                ("X-Shopify-Topic", "orders/create"),
                (
                    "X-Shopify-Webhook-Id",
                    "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
                ),
            ],
            vec!["X-Shopify-Hmac-Sha256"],
            Some("orders/create"),
            Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
            vec![Some("820982911946154508")],
        ),
        (
            SchemeConfig::Jira,
            "jira-secret",
            json!({"timestamp": 1_750_000_000_000_u64, "webhookEvent": "jira:issue_updated",
                   "issue": {"id": "10002", "key": "HUB-2", "fields": {"summary": "Fix"}}}),
            vec![("X-Atlassian-Webhook-Identifier", "1234-5678")],
            vec!["X-Hub-Signature"],
            Some("jira:issue_updated"),
            Some("1234-5678"),
            vec![Some("10002")],
        ),
        (
            SchemeConfig::MicrosoftTeams,
            "dGVhbXMtc2VjdXJpdHktdG9rZW4tZm9yLXRlc3Rz",
            json!({"type": "message", "id": "1485983408511", "text": "<at>Hub</at> sync"}),
            vec![],
            vec!["Authorization"],
            Some("message"),
            Some("1485983408511"),
            vec![Some("1485983408511")],
        ),
        (
            SchemeConfig::Zendesk(ZendeskOptions::default()),
            "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==",
            json!({"type": "zen:event-type:ticket.created", "id": "01HX", "account_id": 1,
                   "detail": {"id": "35436", "subject": "Help"}}),
            vec![("X-Zendesk-Webhook-Invocation-Id", "8350205582")],
            vec![
                "X-Zendesk-Webhook-Signature",
                "X-Zendesk-Webhook-Signature-Timestamp",
            ],
            Some("zen:event-type:ticket.created"),
            Some("8350205582"),
            vec![Some("35436")],
        ),
        (
            SchemeConfig::Hubspot(HubspotOptions::default()),
            "hubspot-client-secret",
            json!([{"eventId": 1, "objectId": 51, "subscriptionType": "contact.propertyChange"},
                   {"eventId": 2, "objectId": 52, "subscriptionType": "contact.propertyChange"}]),
            vec![],
            vec!["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"],
            Some("contact.propertyChange"),
            None,
            vec![Some("51"), Some("52")],
        ),
    ];
    for (scheme, secret, body, headers, signed, event_type, delivery_id, ids) in cases {
        let mut request = json_post(&body);
        for (name, value) in headers {
            request.headers_mut().insert(name, value);
        }
        let (verifier, request, outcome) =
            sign_and_verify(&scheme, secret, &["cmV0aXJlZC1zZWNyZXQ=", secret], request);
        let name = scheme.provider();
        let delivery = delivery(outcome.unwrap_or_else(|error| panic!("{name}: {error}")));
        assert_eq!(delivery.event_type(), event_type, "{name}");
        if let Some(id) = delivery_id {
            assert_eq!(delivery.delivery_id().as_str(), id, "{name}");
        }
        let records = verifier.extract_records(&delivery).unwrap();
        let found: Vec<_> = records.iter().map(|r| r.external_id.as_deref()).collect();
        assert_eq!(found, ids, "{name}");
        let mut fields = vec![Field::Body];
        fields.extend(signed.into_iter().map(Field::Header));
        if name == hub_webhooks::Provider::Hubspot {
            fields.push(Field::Url);
        }
        let accepted = changes_that_still_verify(&verifier, &request, at(NOW), &fields);
        assert!(accepted.is_empty(), "{name}: {accepted:?}");
    }
}

#[test]
fn hubspot_v3_window_is_in_milliseconds_and_the_documented_url_decoding_is_accepted() {
    let scheme = SchemeConfig::Hubspot(HubspotOptions::default());
    let verifier = verifier(scheme, &["secret"]);
    let signed_at = at(NOW);
    let millis = signed_at.timestamp_millis();
    let body = br#"[{"objectId":1}]"#;
    let request = |url: &str, signature: String| {
        WebhookRequest::post(url)
            .with_header("Content-Type", "application/json")
            .with_header("X-HubSpot-Request-Timestamp", millis.to_string())
            .with_header("X-HubSpot-Signature-v3", signature)
            .with_body(body.to_vec())
    };
    let escaped = "https://h.example/hook?from=a%3Ab%40c";
    let decoded = "https://h.example/hook?from=a:b@c";
    for signed_url in [escaped, decoded] {
        let signature = sign::hubspot_v3("secret", "POST", signed_url, body, millis);
        assert!(
            verifier
                .authenticate(&request(escaped, signature), signed_at)
                .is_ok(),
            "{signed_url}"
        );
    }
    let signature = sign::hubspot_v3("secret", "POST", escaped, body, millis);
    let late = signed_at + chrono::TimeDelta::milliseconds(300_001);
    assert_eq!(
        verifier.authenticate(&request(escaped, signature.clone()), late),
        Err(WebhookError::TimestampOutsideWindow {
            skew_seconds: -300,
            tolerance_seconds: 300
        })
    );
    let edge = signed_at + chrono::TimeDelta::milliseconds(300_000);
    assert!(
        verifier
            .authenticate(&request(escaped, signature), edge)
            .is_ok()
    );

    let v3_only = verifier_for(
        route(
            SchemeConfig::Hubspot(HubspotOptions {
                versions: Some(vec![hub_webhooks::HubspotVersion::V3]),
            }),
            1,
        ),
        &["yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"],
    );
    let v1 = WebhookRequest::post(URL)
        .with_header("X-HubSpot-Signature-Version", "v1")
        .with_header(
            "X-HubSpot-Signature",
            "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de",
        )
        .with_body(vector("hubspot_v1_body.json"));
    assert_eq!(
        v3_only.authenticate(&v1, at(NOW)).unwrap_err().code(),
        "missing_signature",
        "a route that pinned v3 refuses the unsigned-timestamp versions"
    );
}

#[test]
fn twilio_json_bodies_are_covered_by_body_sha256_and_default_ports_match() {
    let body = json!({"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030"});
    let (verifier, request, outcome) =
        sign_and_verify(&SchemeConfig::Twilio, "token", &["token"], json_post(&body));
    assert!(request.url().contains("bodySHA256="), "{}", request.url());
    let delivery = delivery(outcome.unwrap());
    let records = verifier.extract_records(&delivery).unwrap();
    assert_eq!(records[0].external_id.as_deref(), Some("CA1234567890ABCDE"));
    // The body is not in the signed string: the hash in the URL covers it.
    let accepted =
        changes_that_still_verify(&verifier, &request, at(NOW), &[Field::Body, Field::Url]);
    assert!(accepted.is_empty(), "{accepted:?}");

    let form = vector("twilio_gather.txt");
    let signature = sign::twilio_form_body(
        "12345",
        "https://mycompany.com/myapp.php?foo=1&bar=2",
        &form,
    )
    .unwrap();
    assert_eq!(signature, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    let verifier = verifier_for(route(SchemeConfig::Twilio, 1), &["12345"]);
    let with_port = WebhookRequest::post("https://mycompany.com:443/myapp.php?foo=1&bar=2")
        .with_header("Content-Type", "application/x-www-form-urlencoded")
        .with_header("X-Twilio-Signature", signature)
        .with_body(form);
    assert!(verifier.authenticate(&with_port, at(NOW)).is_ok());
}

// --- the generic scheme ---

fn generic(json: serde_json::Value) -> SchemeConfig {
    let route: RouteConfig =
        load_json(&json!({"scheme": json, "secrets": ["hub/t1/wh-0"]}).to_string()).unwrap();
    route.scheme
}

#[test]
fn the_generic_scheme_reproduces_the_github_and_slack_vectors() {
    let github_like = generic(json!({
        "type": "generic", "signatureHeader": "X-Hub-Signature-256",
        "signaturePrefix": "sha256=", "encoding": "hex"
    }));
    let request = WebhookRequest::post(URL)
        .with_header(
            "X-Hub-Signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )
        .with_body(vector("github_hello.txt"));
    let github_verifier = verifier(github_like, &["It's a Secret to Everybody"]);
    assert!(github_verifier.authenticate(&request, at(NOW)).is_ok());

    let slack_like = generic(json!({
        "type": "generic", "signatureHeader": "X-Slack-Signature", "signaturePrefix": "v0=",
        "encoding": "hex", "signedPayload": "v0:{timestamp}:{body}",
        "timestampHeader": "X-Slack-Request-Timestamp"
    }));
    let request = WebhookRequest::post(URL)
        .with_header("Content-Type", "application/x-www-form-urlencoded")
        .with_header("X-Slack-Request-Timestamp", "1531420618")
        .with_header(
            "X-Slack-Signature",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        )
        .with_body(vector("slack_slash_command.txt"));
    let verifier = verifier(slack_like, &["8f742231b10e8888abcd99yyyzzz85a5"]);
    assert!(verifier.authenticate(&request, at(1_531_420_618)).is_ok());
    assert_eq!(
        verifier
            .authenticate(&request, at(1_531_420_618 + 301))
            .unwrap_err()
            .code(),
        "timestamp_outside_window"
    );
    let accepted = changes_that_still_verify(
        &verifier,
        &request,
        at(1_531_420_618),
        &[
            Field::Body,
            Field::Header("X-Slack-Signature"),
            Field::Header("X-Slack-Request-Timestamp"),
        ],
    );
    assert!(accepted.is_empty(), "{accepted:?}");
}

#[test]
fn a_configured_generic_scheme_signs_verifies_and_extracts() {
    let scheme = generic(json!({
        "type": "generic", "signatureHeader": "X-Signature", "signaturePrefix": "s=",
        "signatureSeparator": ",", "algorithm": "sha512", "encoding": "base64",
        "secretEncoding": "hex", "signedPayload": "{method} {url}|{deliveryId}|{timestamp}|{body}",
        "timestampHeader": "X-Timestamp", "timestampFormat": "rfc3339",
        "deliveryIdHeader": "X-Delivery", "eventTypePointer": "/event",
        "recordsPointer": "/items", "recordIdPointer": "/ref/id"
    }));
    let body =
        json!({"event": "items.changed", "items": [{"ref": {"id": 7}}, {"ref": {"id": "x"}}]});
    let (verifier, request, outcome) = sign_and_verify(
        &scheme,
        "00112233445566778899aabbccddeeff",
        &[
            "ffeeddccbbaa99887766554433221100",
            "00112233445566778899aabbccddeeff",
        ],
        json_post(&body),
    );
    let delivery = delivery(outcome.unwrap());
    assert_eq!(delivery.event_type(), Some("items.changed"));
    assert!(delivery.delivery_id().as_str().starts_with("dlv_"));
    let records = verifier.extract_records(&delivery).unwrap();
    let ids: Vec<_> = records.iter().map(|r| r.external_id.as_deref()).collect();
    assert_eq!(ids, [Some("7"), Some("x")]);

    // Several signatures in the header; any one may match.
    let signature = request.headers().get("X-Signature").unwrap().to_owned();
    let mut rotated = request.clone();
    rotated
        .headers_mut()
        .insert("X-Signature", format!("s=AAAA, {signature}"));
    assert!(verifier.authenticate(&rotated, at(NOW)).is_ok());

    let accepted = changes_that_still_verify(
        &verifier,
        &request,
        at(NOW),
        &[
            Field::Body,
            Field::Url,
            Field::Header("X-Signature"),
            Field::Header("X-Timestamp"),
            Field::Header("X-Delivery"),
        ],
    );
    assert!(accepted.is_empty(), "{accepted:?}");

    let pointer = JsonPointer::parse("/missing").unwrap();
    let SchemeConfig::Generic(mut options) = scheme else {
        unreachable!("built as generic above");
    };
    options.records_pointer = Some(pointer);
    let error =
        extract_records(&SchemeConfig::Generic(options), None, delivery.payload()).unwrap_err();
    assert_eq!(error.code(), "malformed_body");
}

// --- refusals: one code and status each, nothing secret or from the body in them ---

const SECRET: &str = "sekrit-value-0123";
const BODY_MARKER: &str = "personal-data-marker";

fn github_request(body: &[u8]) -> WebhookRequest {
    let mut request = WebhookRequest::post(URL)
        .with_header("Content-Type", "application/json")
        .with_header("X-GitHub-Event", "issues")
        .with_body(body.to_vec());
    request
        .headers_mut()
        .insert("X-Hub-Signature-256", sign::github(SECRET, body));
    request
}

fn stripe_request(body: &[u8], content_type: &str) -> WebhookRequest {
    WebhookRequest::post(URL)
        .with_header("Content-Type", content_type)
        .with_header("Stripe-Signature", sign::stripe(SECRET, NOW, body))
        .with_body(body.to_vec())
}

#[test]
fn every_refusal_has_its_code_and_status_and_reveals_nothing() {
    let body =
        format!(r#"{{"id":"evt_1","type":"x","data":{{"object":{{"note":"{BODY_MARKER}"}}}}}}"#);
    let body = body.as_bytes();
    let github = verifier(SchemeConfig::Github, &[SECRET]);
    let stripe = verifier(SchemeConfig::Stripe, &[SECRET]);
    let mut limited = route(SchemeConfig::Github, 1);
    limited.max_body_bytes = Some(16);
    let limited = verifier_for(limited, &[SECRET]);
    let mut listed = route(SchemeConfig::Github, 1);
    listed.ip_allow_list = Some(vec![hub_webhooks::IpRange::parse("192.0.2.0/24").unwrap()]);
    let listed = verifier_for(listed, &[SECRET]);

    let without = |name: &str| {
        let mut request = github_request(body);
        request.headers_mut().remove(name);
        request
    };
    let with = |name: &str, value: &str| {
        let mut request = github_request(body);
        request.headers_mut().insert(name, value);
        request
    };
    let signature = sign::github(SECRET, body);
    let cases: Vec<(&str, Result<Outcome, WebhookError>, &str, u16)> = vec![
        (
            "no signature",
            github.verify(without("X-Hub-Signature-256"), at(NOW)),
            "missing_signature",
            401,
        ),
        (
            "wrong secret",
            github.verify(
                with("X-Hub-Signature-256", &sign::github("other", body)),
                at(NOW),
            ),
            "bad_signature",
            401,
        ),
        (
            "stale",
            stripe.verify(stripe_request(body, "application/json"), at(NOW + 301)),
            "timestamp_outside_window",
            401,
        ),
        (
            "future",
            stripe.verify(stripe_request(body, "application/json"), at(NOW - 301)),
            "timestamp_outside_window",
            401,
        ),
        (
            "sha1 prefix",
            github.verify(
                with(
                    "X-Hub-Signature-256",
                    &signature.replace("sha256=", "sha1="),
                ),
                at(NOW),
            ),
            "malformed_signature",
            400,
        ),
        (
            "upper-case hex",
            github.verify(
                with(
                    "X-Hub-Signature-256",
                    &signature.to_uppercase().replace("SHA256=", "sha256="),
                ),
                at(NOW),
            ),
            "malformed_signature",
            400,
        ),
        (
            "repeated signature",
            github.verify(
                {
                    let mut r = github_request(body);
                    r.headers_mut()
                        .append("X-Hub-Signature-256", signature.clone());
                    r
                },
                at(NOW),
            ),
            "malformed_signature",
            400,
        ),
        (
            "delivery id with a space",
            github.verify(with("X-GitHub-Delivery", "a b"), at(NOW)),
            "malformed_header",
            400,
        ),
        (
            "xml",
            stripe.verify(stripe_request(body, "text/xml"), at(NOW)),
            "unsupported_content_type",
            415,
        ),
        (
            "not json",
            stripe.verify(
                stripe_request(b"<a>personal-data-marker</a>", "application/json"),
                at(NOW),
            ),
            "malformed_body",
            400,
        ),
        (
            "event without id",
            stripe.verify(
                stripe_request(br#"{"type":"personal-data-marker"}"#, "application/json"),
                at(NOW),
            ),
            "malformed_body",
            400,
        ),
        (
            "too large",
            limited.verify(github_request(body), at(NOW)),
            "body_too_large",
            413,
        ),
        (
            "no source address",
            listed.verify(github_request(body), at(NOW)),
            "source_ip_not_allowed",
            403,
        ),
        (
            "other source address",
            listed.verify(
                github_request(body).with_source_ip("198.51.100.1".parse().unwrap()),
                at(NOW),
            ),
            "source_ip_not_allowed",
            403,
        ),
        (
            "GET",
            github.verify(WebhookRequest::new("GET", URL), at(NOW)),
            "method_not_allowed",
            405,
        ),
    ];
    for (what, result, code, status) in cases {
        let error = result.expect_err(what);
        assert_eq!(
            (error.code(), error.status()),
            (code, status),
            "{what}: {error}"
        );
        for shown in [error.to_string(), format!("{error:?}")] {
            assert!(!shown.contains(SECRET), "{what}: {shown}");
            assert!(!shown.contains(BODY_MARKER), "{what}: {shown}");
            assert!(!shown.contains(&signature[7..]), "{what}: {shown}");
        }
    }
    let allowed = listed.verify(
        github_request(body).with_source_ip("::ffff:192.0.2.10".parse().unwrap()),
        at(NOW),
    );
    assert!(allowed.is_ok(), "{allowed:?}");
}

#[test]
fn unusable_routes_are_refused_when_the_verifier_is_built() {
    let bad_base64 = Verifier::new(
        route(SchemeConfig::StandardWebhooks, 1),
        &resolved(&["whsec_not base64!"]),
    )
    .unwrap_err();
    assert_eq!(bad_base64.code(), "unknown_scheme_config");
    assert!(
        !bad_base64.to_string().contains("not base64!"),
        "{bad_base64}"
    );

    let (route_meta, _) = meta_route();
    let no_token = Verifier::new(route_meta, &resolved(&["meta-app-secret"])).unwrap_err();
    assert_eq!(no_token.code(), "unknown_scheme_config");

    let invalid = Verifier::new(route(SchemeConfig::Github, 0), &resolved(&[])).unwrap_err();
    assert_eq!(invalid.code(), "unknown_scheme_config");
    assert!(invalid.to_string().contains("secrets"), "{invalid}");
}

#[test]
fn debug_output_shows_no_secret_body_or_signature() {
    let body = format!(r#"{{"issue":{{"id":1,"title":"{BODY_MARKER}"}},"action":"opened"}}"#);
    let request = github_request(body.as_bytes());
    let signature = request
        .headers()
        .get("X-Hub-Signature-256")
        .unwrap()
        .to_owned();
    let secrets = resolved(&[SECRET]);
    let verifier = Verifier::new(route(SchemeConfig::Github, 1), &secrets).unwrap();
    let delivery = delivery(verifier.verify(request.clone(), at(NOW)).unwrap());
    assert_eq!(delivery.event_type(), Some("issues.opened"));
    for shown in [
        format!("{request:?}"),
        format!("{secrets:?}"),
        format!("{verifier:?}"),
        format!("{delivery:?}"),
    ] {
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(!shown.contains(BODY_MARKER), "{shown}");
        assert!(!shown.contains(&signature[7..]), "{shown}");
    }
}
