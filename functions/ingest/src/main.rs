//! The ingest Lambda: API Gateway requests in, events into DynamoDB, absence checks onto SQS.

use std::sync::Arc;

use cuba::clock::SystemClock;
use cuba::wiring::{self, AwsClients, Settings};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let sdk = aws_config::load_from_env().await;
    let api = wiring::ingest_api(
        &Settings::from_process_env(),
        &AwsClients::new(&sdk),
        Arc::new(SystemClock),
    )?;
    lambda_http::run(cuba::http::router(api)).await
}
