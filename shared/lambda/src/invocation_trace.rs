//! The trace each HTTP request is received in, as Lambda names it.
//!
//! Lambda gives every invocation a trace id (with `Tracing: Active`, sampled and recorded by
//! X-Ray) and the runtime puts it in `_X_AMZN_TRACE_ID` for the invocation's length. The web
//! layer reads a request's trace from its `X-Amzn-Trace-Id` header ([`TRACE_HEADER`]), which a
//! client can write too: the invocation's id replaces whatever the request carried, so what an
//! event is stored with is the trace its function really ran in.

use cuba_web::request::TRACE_HEADER;

/// Where the Lambda runtime keeps the current invocation's trace header (not set in the
/// runtime's concurrent mode, where the request keeps the header API Gateway gave it).
pub const INVOCATION_TRACE_VARIABLE: &str = "_X_AMZN_TRACE_ID";

/// `router` with each request's trace header set to the invocation's.
pub fn in_invocation_trace(router: cuba_web::Router) -> cuba_web::Router {
    router.layer(axum::middleware::map_request(
        |mut request: axum::extract::Request| async move {
            let invocation = std::env::var(INVOCATION_TRACE_VARIABLE)
                .ok()
                .and_then(|header| axum::http::HeaderValue::from_str(&header).ok());
            if let Some(header) = invocation {
                request.headers_mut().insert(TRACE_HEADER, header);
            }
            request
        },
    ))
}
