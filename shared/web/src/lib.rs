//! Cuba's HTTP layer: the ingest API ([`ingest`]), the admin API ([`admin`]) and its web UI
//! ([`admin_ui`]), over the core's ports. One error type ([`error::ApiError`]) and one pair of
//! auth extractors ([`auth::Authenticated`], [`auth::Authorized`]) serve every route. The
//! Lambda functions serve these routers through `lambda_http`; the local runner serves the very
//! same routers on a TCP port.

pub mod admin;
pub mod admin_ui;
pub mod auth;
pub mod error;
pub mod ingest;
pub mod request;

/// The router type the HTTP functions serve.
pub use axum::Router;
