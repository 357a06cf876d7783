//! Cuba's core: the domain, intake, the rule and schema languages, the decisions, and the ports
//! (traits) through which it reaches storage, queues and notifications. No cloud SDK, web
//! framework or Lambda runtime is a dependency of this crate: Cargo keeps them out.
//!
//! Modules, in import order (each imports only modules above it):
//! - [`domain`]: ids, events, profiles.
//! - [`document`]: versioned documents, the vocabulary rules and schemas share.
//! - [`rules`], [`schemas`], [`intake`]: the languages, and reading what clients send.
//! - [`sms`]: how carriers count an SMS; [`catalogue`]: the event types rules can name, and
//!   their fields.
//! - [`alert`], [`absence`], [`error_log`], [`listing`], [`activity`], [`window`]: the data
//!   the ports carry.
//! - [`decision`]: whether and how a rule fires, as one pure function.
//! - [`ports`]: the traits; [`clock`]: time as a dependency.
//! - [`source`], [`alerting`], [`evaluation`], [`scheduling`], [`processing`]: the
//!   orchestration the functions run; [`verification`] proves phone numbers; [`tryout`] and
//!   [`backtest`] serve the admin API.

pub mod absence;
pub mod activity;
pub mod alert;
pub mod alerting;
pub mod backtest;
pub mod catalogue;
pub mod clock;
pub mod decision;
pub mod document;
pub mod domain;
pub mod error_log;
pub mod evaluation;
#[cfg(test)]
mod fixtures;
pub mod intake;
pub mod listing;
pub mod ports;
pub mod processing;
pub mod rules;
pub mod scheduling;
pub mod schemas;
pub mod sms;
pub mod source;
pub mod tryout;
pub mod verification;
pub mod window;
