//! The ingest Lambda: API Gateway requests in, events into DynamoDB.

use cuba_lambda::config::IngestConfig;
use cuba_lambda::embedded_metrics::{self, FunctionMetrics};
use cuba_lambda::invocation_trace::in_invocation_trace;
use cuba_lambda::settings::Settings;
use cuba_lambda::wiring;
use cuba_lambda::{AwsClients, configured};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    cuba_lambda::logging::init();
    let metrics = FunctionMetrics::install();
    let settings = Settings::from_process_env();
    let sdk = configured(cuba_lambda::sdk::load(&settings).await);
    let config = configured(IngestConfig::from_settings(&settings));
    let router = configured(wiring::ingest_router(&config, &AwsClients::new(&sdk)).await);
    lambda_http::run(embedded_metrics::flushing(
        in_invocation_trace(router),
        metrics,
    ))
    .await
}
