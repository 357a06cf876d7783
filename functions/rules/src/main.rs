//! The rules Lambda: DynamoDB stream batches of new events (and ripe absence checks) in, alerts
//! out through SNS. Invoked with `{"redrive": {}}`, it processes again the stream records whose
//! retries ran out (see `cuba_lambda::redrive`).

use std::sync::Arc;

use cuba_lambda::SystemClock;
use cuba_lambda::config::StreamConfig;
use cuba_lambda::embedded_metrics::FunctionMetrics;
use cuba_lambda::handlers::DynamoDbEvent;
use cuba_lambda::redrive::{MAX_MESSAGES, StreamFailures};
use cuba_lambda::settings::Settings;
use cuba_lambda::wiring;
use cuba_lambda::{AwsClients, configured};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let metrics = FunctionMetrics::install();
    let sdk = aws_config::load_from_env().await;
    let config = configured(StreamConfig::from_settings(&Settings::from_process_env()));
    let handler = wiring::stream_handler(&config, &AwsClients::new(&sdk), Arc::new(SystemClock));
    let failures = config.failure_queue_url.map(|queue_url| StreamFailures {
        sqs: aws_sdk_sqs::Client::new(&sdk),
        streams: aws_sdk_dynamodbstreams::Client::new(&sdk),
        queue_url,
    });
    let (handler, failures) = (&handler, &failures);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let left = event
            .context
            .deadline()
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        let deadline = tokio::time::Instant::now() + left;
        if event.payload.get("redrive").is_some() {
            let Some(failures) = failures else {
                return Err(
                    "no failure queue is configured (CUBA_STREAM_FAILURE_QUEUE_URL)".into(),
                );
            };
            let report = failures
                .redrive(handler, MAX_MESSAGES, Some(deadline))
                .await;
            metrics.flush();
            return Ok(json!(report));
        }
        let batch: DynamoDbEvent = serde_json::from_value(event.payload)?;
        let answer = handler.handle_until(batch, Some(deadline)).await;
        metrics.flush();
        Ok::<_, lambda_runtime::Error>(serde_json::to_value(answer)?)
    }))
    .await
}
