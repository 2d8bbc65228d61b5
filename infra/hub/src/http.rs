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
    /// Why the status is `degraded`; absent when it is `ok`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reasons: Vec<Reason>,
    queues: Vec<QueueHealth>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Reason {
    /// Stable snake_case code (`disk_full`, `queue_unavailable`).
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<chrono::DateTime<chrono::Utc>>,
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

/// Backend, version and the depth of every queue; `degraded` with its reasons, and 503, when
/// a queue cannot be read or the backend's storage refuses writes (a full disk).
async fn health(State(ports): State<Ports>) -> impl IntoResponse {
    let mut reasons = Vec::new();
    if let Some(fault) = ports.storage.fault() {
        reasons.push(Reason {
            code: fault.code,
            message: fault.message,
            since: Some(fault.since),
        });
    }
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
    reasons.extend(queues.iter().filter_map(|q| {
        q.error.as_ref().map(|error| Reason {
            code: "queue_unavailable",
            message: format!("queue `{}` cannot be read: {error}", q.name),
            since: None,
        })
    }));
    let healthy = reasons.is_empty();
    let body = Health {
        status: if healthy { "ok" } else { "degraded" },
        backend: ports.backend,
        version: env!("CARGO_PKG_VERSION"),
        reasons,
        queues,
    };
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
