//! The admin Lambda: the operators' API and web UI, behind the same HTTP API.

use cuba_lambda::config::AdminConfig;
use cuba_lambda::embedded_metrics::{self, FunctionMetrics};
use cuba_lambda::invocation_trace::in_invocation_trace;
use cuba_lambda::settings::Settings;
use cuba_lambda::wiring;
use cuba_lambda::{AwsClients, SystemClock, configured};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    cuba_lambda::logging::init();
    let metrics = FunctionMetrics::install();
    let settings = Settings::from_process_env();
    let sdk = configured(cuba_lambda::sdk::load(&settings).await);
    let config = configured(AdminConfig::from_settings(&settings));
    let clients = AwsClients::new(&sdk);
    let redrive = wiring::console_redrive(
        &config.stream,
        &clients,
        aws_sdk_dynamodbstreams::Client::new(&sdk),
        Arc::new(SystemClock),
    );
    let router = configured(wiring::admin_router(&config, &clients, redrive).await);
    lambda_http::run(embedded_metrics::flushing(
        in_invocation_trace(router),
        metrics,
    ))
    .await
}
