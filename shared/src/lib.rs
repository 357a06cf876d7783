//! Cuba: event ingestion and business-rule alerting.
//!
//! The pure core ([`domain`], [`intake`], [`rules`], and the orchestration in [`evaluation`],
//! [`scheduling`] and [`alerting`]) talks to the world only through the traits in [`ports`].
//! [`aws`] implements those traits; [`http`] and [`lambda`] are the entry points the Lambda
//! functions (and the local runner) call; [`wiring`] assembles them from configuration.

pub mod activity;
pub mod admin;
pub mod admin_ui;
pub mod alerting;
pub mod auth;
pub mod aws;
pub mod backtest;
pub mod clock;
pub mod domain;
pub mod evaluation;
pub mod http;
pub mod intake;
pub mod lambda;
pub mod ports;
pub mod processing;
pub mod registry;
pub mod rulebook;
pub mod rules;
pub mod scheduling;
pub mod schemas;
pub mod ttl_cache;
pub mod wiring;
