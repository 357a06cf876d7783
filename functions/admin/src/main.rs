//! The admin Lambda: the operators' API for rules, behind the same HTTP API.

use std::sync::Arc;

use cuba::clock::SystemClock;
use cuba::wiring::{self, AwsClients, Settings};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let sdk = aws_config::load_from_env().await;
    let api = wiring::admin_api(
        &Settings::from_process_env(),
        &AwsClients::new(&sdk),
        Arc::new(SystemClock),
    )
    .await?;
    lambda_http::run(cuba::admin::router(api)).await
}
