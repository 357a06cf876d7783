//! The absence-check Lambda: checks from the delay queue in; ripe ones posted into the events
//! table's stream, where the rules Lambda decides them.

use std::sync::Arc;

use cuba_lambda::SystemClock;
use cuba_lambda::config::AbsenceConfig;
use cuba_lambda::embedded_metrics::FunctionMetrics;
use cuba_lambda::handlers::SqsEvent;
use cuba_lambda::settings::Settings;
use cuba_lambda::wiring;
use cuba_lambda::{AwsClients, configured};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cuba_lambda::logging::init();
    let metrics = FunctionMetrics::install();
    let settings = Settings::from_process_env();
    let sdk = configured(cuba_lambda::sdk::load(&settings).await);
    let config = configured(AbsenceConfig::from_settings(&settings));
    let handler = wiring::absence_handler(&config, &AwsClients::new(&sdk), Arc::new(SystemClock));
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let answer = handler.handle(event.payload).await;
        metrics.flush();
        Ok::<_, lambda_runtime::Error>(answer)
    }))
    .await
}
