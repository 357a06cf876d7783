//! The sweeper Lambda: on a schedule, finishes alerts whose worker died, sends what came due,
//! and decides the heartbeat rules.

use std::sync::Arc;

use cuba_lambda::SystemClock;
use cuba_lambda::config::SweeperConfig;
use cuba_lambda::embedded_metrics::FunctionMetrics;
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
    let config = configured(SweeperConfig::from_settings(&settings));
    let clients = AwsClients::new(&sdk);
    let handler = wiring::sweep_handler(&config, &clients, Arc::new(SystemClock));
    // The account's SMS delivery status logs are turned on by the process's first sweep, beside
    // it: a cold start waits for no SNS call of its own.
    let delivery_status = tokio::sync::OnceCell::new();
    let (handler, delivery_status, config, clients) =
        (&handler, &delivery_status, &config, &clients);
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            let (answer, ()) = tokio::join!(
                handler.handle(),
                delivery_status
                    .get_or_init(|| wiring::turn_on_sms_delivery_status(config, clients)),
            );
            metrics.flush();
            answer
        },
    ))
    .await
}
