//! The rules Lambda: DynamoDB stream batches of new events (and ripe absence checks) in, alerts
//! out through SNS.

use std::sync::Arc;

use cuba_lambda::SystemClock;
use cuba_lambda::config::StreamConfig;
use cuba_lambda::embedded_metrics::FunctionMetrics;
use cuba_lambda::handlers::DynamoDbEvent;
use cuba_lambda::settings::Settings;
use cuba_lambda::wiring;
use cuba_lambda::{AwsClients, configured};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let metrics = FunctionMetrics::install();
    let sdk = aws_config::load_from_env().await;
    let config = configured(StreamConfig::from_settings(&Settings::from_process_env()));
    let handler = wiring::stream_handler(&config, &AwsClients::new(&sdk), Arc::new(SystemClock));
    let handler = &handler;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<DynamoDbEvent>| async move {
            let left = event
                .context
                .deadline()
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            let deadline = tokio::time::Instant::now() + left;
            let answer = handler.handle_until(event.payload, Some(deadline)).await;
            metrics.flush();
            Ok::<_, lambda_runtime::Error>(answer)
        },
    ))
    .await
}
