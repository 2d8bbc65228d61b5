//! The sample CRM API over HTTP: determinism, auth, the modify endpoint, chaos knobs.

use std::time::{Duration, Instant};

use hub_connectors::sample::ChaosConfig;
use hub_connectors::{SampleConfig, SampleServer};
use serde_json::{Value, json};

use crate::support::*;

async fn get_json(client: &reqwest::Client, url: &str, key: &str) -> (u16, Value) {
    let response = client
        .get(url)
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn same_seed_same_data_and_relations_hold() {
    let a = sample(300).await;
    let b = sample(300).await;
    let client = reqwest::Client::new();
    let key = a.api().api_key().to_owned();
    let (_, page_a) = get_json(
        &client,
        &format!("{}/v1/contacts?limit=300", a.base_url()),
        &key,
    )
    .await;
    let (_, page_b) = get_json(
        &client,
        &format!("{}/v1/contacts?limit=300", b.base_url()),
        &key,
    )
    .await;
    assert_eq!(page_a["data"], page_b["data"]);
    assert_eq!(page_a["data"].as_array().unwrap().len(), 300);
    let (_, companies) = get_json(
        &client,
        &format!("{}/v1/companies?limit=100", a.base_url()),
        &key,
    )
    .await;
    let company_ids: Vec<&str> = companies["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    for contact in page_a["data"].as_array().unwrap() {
        assert!(company_ids.contains(&contact["companyId"].as_str().unwrap()));
        assert!(contact["email"].as_str().unwrap().contains('@'));
    }
    let (status, one) = get_json(
        &client,
        &format!("{}/v1/contacts/ct_000000007", a.base_url()),
        &key,
    )
    .await;
    assert_eq!((status, &one), (200, &page_a["data"][7]));
    let (status, _) = get_json(
        &client,
        &format!("{}/v1/contacts/ct_999999999", a.base_url()),
        &key,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_api_key_is_required_except_for_health() {
    let server = sample(3).await;
    let client = reqwest::Client::new();
    let (status, _) = get_json(
        &client,
        &format!("{}/v1/contacts", server.base_url()),
        "wrong",
    )
    .await;
    assert_eq!(status, 401);
    let health = client
        .get(format!("{}/health", server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let bearer = client
        .get(format!("{}/v1/contacts", server.base_url()))
        .bearer_auth(server.api().api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status().as_u16(), 200);
    assert_eq!(server.api().stats().unauthorized, 1);
}

#[tokio::test]
async fn modifying_n_records_changes_exactly_n() {
    let server = sample(400).await;
    let client = reqwest::Client::new();
    let key = server.api().api_key().to_owned();
    let (_, before) = get_json(
        &client,
        &format!("{}/v1/contacts?limit=400", server.base_url()),
        &key,
    )
    .await;
    let response: Value = client
        .post(format!("{}/_admin/modify", server.base_url()))
        .header("x-api-key", &key)
        .json(&json!({"entity": "contacts", "count": 100}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let modified: Vec<&str> = response["modified"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(modified.len(), 100);
    let since = response["updatedAt"].as_str().unwrap();
    let (_, after) = get_json(
        &client,
        &format!("{}/v1/contacts?limit=400", server.base_url()),
        &key,
    )
    .await;
    let before = before["data"].as_array().unwrap();
    let after = after["data"].as_array().unwrap();
    assert_eq!(after.len(), 400);
    let changed: Vec<&Value> = after.iter().filter(|r| !before.contains(r)).collect();
    assert_eq!(changed.len(), 100);
    for record in &changed {
        assert!(modified.contains(&record["id"].as_str().unwrap()));
        assert!(record["updatedAt"].as_str().unwrap() >= since);
    }
    let url = format!(
        "{}/v1/contacts?limit=400&updated_since={since}",
        server.base_url()
    );
    let (_, newer) = get_json(&client, &url, &key).await;
    assert_eq!(newer["total"], 100);
}

#[tokio::test]
async fn chaos_is_reproducible_and_adjustable() {
    let config = SampleConfig {
        contacts: 10,
        chaos: ChaosConfig {
            rate_limited: 0.2,
            server_errors: 0.2,
            ..ChaosConfig::default()
        },
        ..SampleConfig::default()
    };
    let client = reqwest::Client::new();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let server = SampleServer::start(config.clone()).await.unwrap();
        let mut statuses = Vec::new();
        for _ in 0..40 {
            let (status, _) = get_json(
                &client,
                &format!("{}/v1/contacts", server.base_url()),
                "sample-api-key",
            )
            .await;
            statuses.push(status);
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].contains(&429) && runs[0].iter().any(|s| *s >= 500) && runs[0].contains(&200));

    let server = SampleServer::start(config).await.unwrap();
    let off = client
        .put(format!("{}/_admin/chaos", server.base_url()))
        .header("x-api-key", "sample-api-key")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status().as_u16(), 204);
    for _ in 0..20 {
        let (status, _) = get_json(
            &client,
            &format!("{}/v1/contacts", server.base_url()),
            "sample-api-key",
        )
        .await;
        assert_eq!(status, 200);
    }
    let bad = client
        .put(format!("{}/_admin/chaos", server.base_url()))
        .header("x-api-key", "sample-api-key")
        .json(&json!({"rateLimited": 0.8, "serverErrors": 0.8}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
}

#[tokio::test]
async fn latency_and_held_requests() {
    let server = SampleServer::start(SampleConfig {
        contacts: 3,
        latency: Duration::from_millis(150),
        chaos: ChaosConfig {
            timeouts: 1.0,
            timeout_hold_ms: 200,
            ..ChaosConfig::default()
        },
        ..SampleConfig::default()
    })
    .await
    .unwrap();
    let started = Instant::now();
    let (status, _) = get_json(
        &reqwest::Client::new(),
        &format!("{}/v1/contacts", server.base_url()),
        "sample-api-key",
    )
    .await;
    assert_eq!(status, 504);
    assert!(started.elapsed() >= Duration::from_millis(350));
    assert_eq!(server.api().stats().timeouts, 1);
    server.shutdown(Duration::from_secs(1)).await;
}
