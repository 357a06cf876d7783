//! Cuba's Lambda edge: the two batch handlers ([`handlers`]) at the level Lambda sees them,
//! configuration ([`settings`] reads variables, [`config`] types each function's, once), the
//! wiring that builds each function from its configuration and the AWS clients ([`wiring`]), and
//! the metrics they log ([`embedded_metrics`]). The function crates only call into here.

pub mod config;
pub mod embedded_metrics;
pub mod handlers;
#[cfg(feature = "http")]
pub mod invocation_trace;
pub mod logging;
#[cfg(feature = "pre-traffic")]
pub mod pre_traffic;
#[cfg(feature = "redrive")]
pub mod redrive;
pub mod sdk;
pub mod settings;
#[cfg(feature = "store-seeding")]
pub mod store_seeding;
pub mod wiring;
pub mod xray;

pub use cuba_aws::AwsClients;
pub use cuba_core::model::clock::SystemClock;

/// The function's parts, or the end of a cold start that cannot build them: one error line
/// naming what is wrong (the variable and the cause, never its value), then exit status 1,
/// which Lambda reports as an init failure. No panic, no backtrace.
pub fn configured<T, E: std::error::Error + 'static>(built: Result<T, E>) -> T {
    match built {
        Ok(parts) => parts,
        Err(e) => {
            tracing::error!(error = %cuba_core::model::ports::ErrorChain(&e), "cannot start: the function's configuration is invalid");
            std::process::exit(1)
        }
    }
}
