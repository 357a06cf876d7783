//! The store-seeding function: a CloudFormation custom resource that writes the initial rules
//! and schemas into their stores when the stack is created (`cuba_lambda::store_seeding`), so
//! no function has to check for it at a cold start.

use aws_lambda_events::cloudformation::CloudFormationCustomResourceRequest;
use cuba_lambda::config::StoreSeedingConfig;
use cuba_lambda::settings::Settings;
use cuba_lambda::{configured, wiring};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let settings = Settings::from_process_env();
    let sdk = configured(cuba_lambda::sdk::load(&settings).await);
    let config = configured(StoreSeedingConfig::from_settings(&settings));
    let resource = configured(wiring::seeding_resource(&config, &settings, &sdk));
    let resource = &resource;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<CloudFormationCustomResourceRequest>| async move {
            resource
                .handle(&event.payload)
                .await
                .map(|_| ())
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}
