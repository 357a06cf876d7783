//! The functions' subscriber: Lambda's default lines (JSON with `AWS_LAMBDA_LOG_FORMAT=JSON`, at
//! `AWS_LAMBDA_LOG_LEVEL`, as `lambda_runtime::tracing::init_default_subscriber` sets them up),
//! and, where Lambda runs an X-Ray daemon beside the function, the segments of the spans that
//! carry a request's trace ([`crate::xray`]).

use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use crate::xray::{SDK_TARGETS, XraySegments};

/// Installs the subscriber; a second call changes nothing.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|level| level.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT")
        .is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let lines = fmt::layer().with_target(false).without_time();
    let lines = if json {
        lines.json().with_filter(filter).boxed()
    } else {
        lines.with_filter(filter).boxed()
    };
    // Segments are sent whatever the log level: the spans they come from are INFO, and the
    // SDK's operation spans, which become their subsegments, DEBUG.
    let sdk_operations = SDK_TARGETS.iter().fold(
        Targets::new().with_default(LevelFilter::INFO),
        |targets, sdk| targets.with_target(*sdk, LevelFilter::DEBUG),
    );
    let segments = XraySegments::from_env().map(|segments| segments.with_filter(sdk_operations));
    let _ = tracing_subscriber::registry()
        .with(lines)
        .with(segments)
        .try_init();
}
