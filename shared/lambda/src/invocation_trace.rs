//! The trace each HTTP request is received in, as Lambda names it.
//!
//! Lambda gives every invocation a trace id (with `Tracing: Active`, sampled and recorded by
//! X-Ray) and the runtime puts it in `_X_AMZN_TRACE_ID` for the invocation's length. The web
//! layer reads a request's trace from its `X-Amzn-Trace-Id` header ([`TRACE_HEADER`]), which a
//! client can write too: the invocation's id replaces whatever the request carried, so what an
//! event is stored with is the trace its function really ran in.
//!
//! The request is handled in a span of that trace ([`REQUEST_SPAN`]). Lambda's own segment of
//! the invocation shows only its length; where the X-Ray daemon runs beside the function, the
//! span is sent as a segment under it, and the AWS calls the request made (the event's write among
//! them) are its subsegments ([`crate::xray`]). The span names the route the request matched and
//! the status it was answered with, under OpenTelemetry's names (`http.route`,
//! `http.response.status_code`): the segment is marked an error on a 4xx, a fault on a 5xx.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use cuba_core::model::trace::TraceContext;
use cuba_web::request::TRACE_HEADER;
use tracing::Instrument;

use crate::xray::{METHOD_FIELD, ROUTE_FIELD, STATUS_FIELD};

/// Where the Lambda runtime keeps the current invocation's trace header (not set in the
/// runtime's concurrent mode, where the request keeps the header API Gateway gave it).
pub const INVOCATION_TRACE_VARIABLE: &str = "_X_AMZN_TRACE_ID";

/// The name of the span a request is handled in: the `step` of its X-Ray segment.
pub const REQUEST_SPAN: &str = "http_request";

/// `router` with each request's trace header set to the invocation's, and each request handled
/// in a span of that trace.
pub fn in_invocation_trace(router: cuba_web::Router) -> cuba_web::Router {
    // The route is known only once the router has matched one: an inner layer, on routes alone,
    // writes it into the outer layer's span.
    router
        .route_layer(axum::middleware::from_fn(record_route))
        .layer(axum::middleware::from_fn(in_trace))
}

async fn record_route(request: Request, next: Next) -> Response {
    if let Some(route) = request.extensions().get::<MatchedPath>() {
        tracing::Span::current().record(ROUTE_FIELD, route.as_str());
    }
    next.run(request).await
}

async fn in_trace(mut request: Request, next: Next) -> Response {
    let invocation = std::env::var(INVOCATION_TRACE_VARIABLE)
        .ok()
        .and_then(|header| axum::http::HeaderValue::from_str(&header).ok());
    if let Some(header) = invocation {
        request.headers_mut().insert(TRACE_HEADER, header);
    }
    let trace = request
        .headers()
        .get(TRACE_HEADER)
        .and_then(|header| header.to_str().ok())
        .and_then(|header| header.parse::<TraceContext>().ok());
    // Not the path: it is the client's to write (anything at all, on a route that matches
    // nothing), and it is not needed to find the request: the trace names it.
    let span = tracing::info_span!(
        REQUEST_SPAN,
        { METHOD_FIELD } = %request.method(),
        trace_id = trace.as_ref().map(|t| tracing::field::display(t.root())),
        trace = trace.as_ref().map(tracing::field::display),
        { ROUTE_FIELD } = tracing::field::Empty,
        { STATUS_FIELD } = tracing::field::Empty,
    );
    let response = next.run(request).instrument(span.clone()).await;
    span.record(STATUS_FIELD, response.status().as_u16());
    response
}
