//! The pre-traffic hook: CodeDeploy invokes it before shifting traffic to a new version of the
//! ingest or rules function; it checks both new versions (`cuba_lambda::pre_traffic`) and
//! reports the verdict, so a version that fails is rolled back before it serves anyone.

use aws_lambda_events::codedeploy::CodeDeployLifecycleEvent;
use cuba_lambda::config::PreTrafficConfig;
use cuba_lambda::settings::Settings;
use cuba_lambda::{configured, wiring};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let settings = Settings::from_process_env();
    let sdk = configured(cuba_lambda::sdk::load(&settings).await);
    let config = configured(PreTrafficConfig::from_settings(&settings));
    let check = wiring::pre_traffic_check(&config, &sdk);
    let check = &check;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<CodeDeployLifecycleEvent>| async move {
            check
                .run(&event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
