//! The rules Lambda: DynamoDB stream batches of new events (and ripe absence checks) in, alerts
//! out through SNS. Invoked with `{"redrive": {}}`, it processes again the stream records whose
//! retries ran out (see `cuba_lambda::redrive`); with `{"smoke_test": {"run": "<id>"}}`, it runs
//! the smoke test (`cuba_core::pipeline::smoke`) and answers its report.

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
    cuba_lambda::logging::init();
    let metrics = FunctionMetrics::install();
    let settings = Settings::from_process_env();
    let sdk = configured(cuba_lambda::sdk::load(&settings).await);
    let config = configured(StreamConfig::from_settings(&settings));
    let clients = AwsClients::new(&sdk);
    let handler = wiring::stream_handler(&config, &clients, Arc::new(SystemClock));
    let failures = config
        .failure_queue_url
        .clone()
        .map(|queue_url| StreamFailures {
            sqs: aws_sdk_sqs::Client::new(&sdk),
            streams: aws_sdk_dynamodbstreams::Client::new(&sdk),
            queue_url,
        });
    let (handler, failures, config, clients) = (&handler, &failures, &config, &clients);
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
        if let Some(smoke) = event.payload.get("smoke_test") {
            let run = smoke
                .get("run")
                .and_then(Value::as_str)
                .filter(|run| !run.is_empty())
                .unwrap_or(&event.context.request_id);
            let smoke_test = wiring::smoke_test(config, clients, Arc::new(SystemClock))?;
            let report = smoke_test.run(run).await;
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
