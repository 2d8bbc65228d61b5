//! The receiver behind API Gateway (HTTP API, payload format 2.0): the event becomes a
//! [`WebhookRequest`] with the exact bytes the provider sent, the [`WebhookResponse`] becomes
//! the function's answer. The Lambda binary only wires this to the runtime, so the whole path
//! is testable with sample events and no runtime.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderName, HeaderValue};
use base64::Engine;

use crate::receiver::{Receiver, WebhookResponse};
use crate::request::WebhookRequest;

/// The path parameter of `/webhooks/{routeId}`.
const ROUTE_ID: &str = "routeId";

/// Handles one invocation. Never fails: every problem is an HTTP answer.
pub async fn handle_http_event(
    receiver: &Receiver,
    event: ApiGatewayV2httpRequest,
) -> ApiGatewayV2httpResponse {
    match request_of(receiver, event) {
        Ok((route_id, request)) => response_of(receiver.handle(&route_id, request).await),
        Err(response) => response_of(response),
    }
}

/// The route id and the request as the provider sent it.
fn request_of(
    receiver: &Receiver,
    event: ApiGatewayV2httpRequest,
) -> Result<(String, WebhookRequest), WebhookResponse> {
    let path = event
        .raw_path
        .clone()
        .or_else(|| event.request_context.http.path.clone())
        .unwrap_or_default();
    let route_id = event
        .path_parameters
        .get(ROUTE_ID)
        .cloned()
        .or_else(|| path.strip_prefix("/webhooks/").map(str::to_owned))
        .unwrap_or_default();
    // API Gateway passes text bodies as they came and everything else in base64; either way
    // these are the bytes the signature covers.
    let body = match event.body {
        Some(body) if event.is_base64_encoded => base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| WebhookResponse::malformed_request("the body is not valid base64"))?,
        Some(body) => body.into_bytes(),
        None => Vec::new(),
    };
    let host = event
        .request_context
        .domain_name
        .clone()
        .or_else(|| {
            event
                .headers
                .get("host")
                .and_then(|host| host.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let url = receiver.request_url(
        &format!("https://{host}"),
        &path,
        event.raw_query_string.as_deref(),
    );
    let mut request = WebhookRequest::new(event.request_context.http.method.as_str(), url);
    for (name, value) in &event.headers {
        // Header values that are not visible ASCII cannot be part of any scheme's signature
        // input; they are kept as lossy text rather than dropped, so a check still sees them.
        request
            .headers_mut()
            .append(name.as_str(), String::from_utf8_lossy(value.as_bytes()));
    }
    request.set_body(body);
    if let Some(ip) = event
        .request_context
        .http
        .source_ip
        .as_deref()
        .and_then(|ip| ip.parse().ok())
    {
        request = request.with_source_ip(ip);
    }
    Ok((route_id, request))
}

fn response_of(response: WebhookResponse) -> ApiGatewayV2httpResponse {
    let mut answer = ApiGatewayV2httpResponse::default();
    answer.status_code = i64::from(response.status);
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            answer.headers.insert(name, value);
        }
    }
    answer.body = Some(match String::from_utf8(response.body) {
        Ok(text) => Body::Text(text),
        Err(error) => Body::Binary(error.into_bytes()),
    });
    answer.is_base64_encoded = matches!(answer.body, Some(Body::Binary(_)));
    answer
}
