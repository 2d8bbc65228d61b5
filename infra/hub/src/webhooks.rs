//! `/webhooks/{routeId}` on the local host: the request goes to the receiver as the provider
//! sent it (method, URL, every header, the body's bytes untouched) and its answer comes back
//! as it is, exactly as the API Gateway adaptation does on AWS.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use futures::StreamExt;
use hub_webhooks::{MAX_BODY_BYTES_LIMIT, Receiver, WebhookRequest, WebhookResponse};

/// The webhook routes. Every method reaches the receiver, so an unsupported one is answered
/// with the receiver's JSON error like any other refusal.
pub fn router(receiver: Arc<Receiver>) -> axum::Router {
    // No `DefaultBodyLimit`: the body is read here, up to the receiver's limit, so that a
    // larger one gets the receiver's `413 body_too_large` and log line, not axum's text.
    axum::Router::new()
        .route("/webhooks/{route_id}", any(receive))
        .with_state(receiver)
}

/// Why the body was not read in full.
enum Unread {
    /// Over [`MAX_BODY_BYTES_LIMIT`]: the announced `content-length`, when there was one.
    TooLarge { announced: Option<u64> },
    /// The connection failed while the body was read.
    Broken(axum::Error),
}

/// The body's bytes, reading no further than [`MAX_BODY_BYTES_LIMIT`].
async fn read_body(parts: &Parts, body: Body) -> Result<Vec<u8>, Unread> {
    let announced = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if announced.is_some_and(|size| size > MAX_BODY_BYTES_LIMIT) {
        return Err(Unread::TooLarge { announced });
    }
    let limit = usize::try_from(MAX_BODY_BYTES_LIMIT).unwrap_or(usize::MAX);
    let mut bytes = Vec::with_capacity(
        announced
            .and_then(|size| usize::try_from(size).ok())
            .unwrap_or(0),
    );
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(Unread::Broken)?;
        if bytes.len() + chunk.len() > limit {
            return Err(Unread::TooLarge { announced: None });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    Path(route_id): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = match read_body(&parts, body).await {
        Ok(body) => body,
        Err(Unread::TooLarge { announced }) => {
            return response_of(receiver.refuse_oversize_body(
                &route_id,
                parts.method.as_str(),
                announced,
            ));
        }
        Err(Unread::Broken(error)) => {
            return response_of(WebhookResponse::malformed_request(&format!(
                "the body could not be read: {error}"
            )));
        }
    };
    let host = parts
        .headers
        .get(header::HOST)
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
    request.set_body(body);
    if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        request = request.with_source_ip(peer.ip());
    }
    response_of(receiver.handle(&route_id, request).await)
}

fn response_of(answer: WebhookResponse) -> Response {
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
