//! The host's own HTTP routes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use hub_core::ports::Ports;
use serde::Serialize;

pub fn router(ports: Ports) -> axum::Router {
    axum::Router::new()
        .route("/health", get(health))
        .with_state(ports)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Health {
    status: &'static str,
    backend: &'static str,
    version: &'static str,
    queues: Vec<QueueHealth>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QueueHealth {
    name: String,
    #[serde(flatten)]
    depth: Option<hub_core::ports::QueueDepth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Backend, version and the depth of every queue; 503 when a queue cannot be read.
async fn health(State(ports): State<Ports>) -> impl IntoResponse {
    let mut queues = Vec::with_capacity(ports.queues.len());
    for (name, queue) in &ports.queues {
        let (depth, error) = match queue.depth().await {
            Ok(depth) => (Some(depth), None),
            Err(error) => (None, Some(error.to_string())),
        };
        queues.push(QueueHealth {
            name: name.clone(),
            depth,
            error,
        });
    }
    let healthy = queues.iter().all(|q| q.error.is_none());
    let body = Health {
        status: if healthy { "ok" } else { "degraded" },
        backend: ports.backend,
        version: env!("CARGO_PKG_VERSION"),
        queues,
    };
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
