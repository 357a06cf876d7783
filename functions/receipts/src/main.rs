//! The receipts Lambda: SNS's SMS delivery status log, through a CloudWatch Logs subscription,
//! settles each sent SMS `delivered` or `failed`.

use std::sync::Arc;

use cuba_lambda::SystemClock;
use cuba_lambda::config::ReceiptsConfig;
use cuba_lambda::embedded_metrics::FunctionMetrics;
use cuba_lambda::handlers::LogsEvent;
use cuba_lambda::settings::Settings;
use cuba_lambda::wiring;
use cuba_lambda::{AwsClients, configured};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let metrics = FunctionMetrics::install();
    let settings = Settings::from_process_env();
    let sdk = configured(cuba_lambda::sdk::load(&settings).await);
    let config = configured(ReceiptsConfig::from_settings(&settings));
    let handler = wiring::receipts_handler(&config, &AwsClients::new(&sdk), Arc::new(SystemClock));
    let handler = &handler;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<LogsEvent>| async move {
            let answer = handler.handle(event.payload).await;
            metrics.flush();
            answer
        },
    ))
    .await
}
