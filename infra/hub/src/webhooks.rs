//! `/webhooks/{routeId}` on the local host: the request goes to the receiver as the provider
//! sent it (method, URL, every header, the body's bytes untouched) and its answer comes back
//! as it is, exactly as the API Gateway adaptation does on AWS.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use hub_webhooks::{MAX_BODY_BYTES_LIMIT, Receiver, WebhookRequest};

/// The webhook routes. Every method reaches the receiver, so an unsupported one is answered
/// with the receiver's JSON error like any other refusal.
pub fn router(receiver: Arc<Receiver>) -> axum::Router {
    // Above the largest limit a route may set: the receiver, not axum, refuses oversize
    // bodies, with its own code.
    let body_limit = usize::try_from(MAX_BODY_BYTES_LIMIT).unwrap_or(usize::MAX) + 1;
    axum::Router::new()
        .route("/webhooks/{route_id}", any(receive))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(receiver)
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    Path(route_id): Path<String>,
    parts: Parts,
    body: Bytes,
) -> Response {
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or("127.0.0.1");
    let url = receiver.request_url(
        &format!("http://{host}"),
        parts.uri.path(),
        parts.uri.query(),
    );
    let mut request = WebhookRequest::new(parts.method.as_str(), url);
    for (name, value) in &parts.headers {
        request
            .headers_mut()
            .append(name.as_str(), String::from_utf8_lossy(value.as_bytes()));
    }
    request.set_body(body.to_vec());
    if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        request = request.with_source_ip(peer.ip());
    }
    let answer = receiver.handle(&route_id, request).await;
    let mut response = answer.body.into_response();
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
