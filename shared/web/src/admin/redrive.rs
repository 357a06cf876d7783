//! The stream failure queue from the console: how many stream records ran out of retries, and
//! their redrive (the same one the rules function runs when invoked with `{"redrive": {}}`).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::AdminState;
use crate::auth::Authorized;
use crate::error::ApiError;
use cuba_core::console::redrive::{RedriveReport, StreamRedrive};

/// How long one redrive request may take to start its last message: its records are then done
/// within the admin function's timeout (29 s), inside API Gateway's 30.
pub const REDRIVE_SECONDS: u64 = 20;

#[derive(Serialize)]
pub(super) struct Waiting {
    waiting: u64,
}

/// How many failure records wait on the queue.
pub(super) async fn waiting(
    State(api): State<AdminState>,
    _: Authorized,
) -> Result<Json<Waiting>, ApiError> {
    let waiting = configured(&api)?.waiting().await?;
    Ok(Json(Waiting { waiting }))
}

/// Processes the waiting records again; what is left (failing again, or not started in time)
/// stays on the queue for the next one.
pub(super) async fn redrive(
    State(api): State<AdminState>,
    Authorized(admin): Authorized,
) -> Result<Json<RedriveReport>, ApiError> {
    let report = configured(&api)?
        .redrive(Duration::from_secs(REDRIVE_SECONDS))
        .await;
    tracing::info!(admin = %admin.0, ?report, "stream failures redriven from the console");
    Ok(Json(report))
}

fn configured(api: &AdminState) -> Result<&Arc<dyn StreamRedrive>, ApiError> {
    api.redrive.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_failure_queue",
            "this deployment has no stream failure queue (CUBA_STREAM_FAILURE_QUEUE_URL is not set)",
        )
    })
}
