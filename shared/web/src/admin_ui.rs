//! The operators' web UI (`/admin/`): one page and its scripts and style, compiled into the
//! binary so the admin function serves it with no CDN and no files beside it.
//!
//! The page renders attacker-controlled event data, so it is built to make stored XSS
//! impossible twice over: the script only ever writes data through `textContent` and DOM
//! attributes (never HTML strings), and every UI response carries a Content-Security-Policy that
//! allows no inline script and nothing from other origins.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("../ui/index.html");

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// The page's scripts and style, by name under `/admin/assets/`: the page loads the scripts in
/// this order (they share one global scope; `dom.js` first, `app.js`, which starts the page,
/// last).
pub const ASSETS: [(&str, &str, &str); 9] = [
    ("dom.js", JAVASCRIPT, include_str!("../ui/dom.js")),
    (
        "rule-form.js",
        JAVASCRIPT,
        include_str!("../ui/rule-form.js"),
    ),
    ("builder.js", JAVASCRIPT, include_str!("../ui/builder.js")),
    (
        "rule-records.js",
        JAVASCRIPT,
        include_str!("../ui/rule-records.js"),
    ),
    ("browsers.js", JAVASCRIPT, include_str!("../ui/browsers.js")),
    ("silences.js", JAVASCRIPT, include_str!("../ui/silences.js")),
    ("app.js", JAVASCRIPT, include_str!("../ui/app.js")),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../ui/app.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../ui/favicon.svg"),
    ),
];

/// Allows exactly this origin's own script, style and API; no inline code, frames or plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The UI routes; the API it calls is [`crate::admin::routes`].
pub fn routes() -> Router {
    Router::new()
        .route("/admin", get(index))
        .route("/admin/", get(index))
        .route("/admin/index.html", get(index))
        .route("/admin/assets/{name}", get(asset_named))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 6] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        // A deploy replaces the page and its assets together; never mix old and new.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, body).into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn asset_named(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(asset_name, _, _)| *asset_name == name) {
        Some((_, content_type, body)) => asset(content_type, body),
        None => crate::error::ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such asset")
            .into_response(),
    }
}
