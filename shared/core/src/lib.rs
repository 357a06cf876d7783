//! Cuba's core: the domain, intake, the rule and schema languages, the decisions, and the ports
//! (traits) through which it reaches storage, queues and notifications. No cloud SDK, web
//! framework or Lambda runtime is a dependency of this crate: Cargo keeps them out.
//!
//! One folder per concern, each owning its data, its logic and its ports (`ports.rs`: the
//! traits it needs from the outside). In layer order (a folder imports only folders above it in
//! this list; the layering test holds it):
//! - [`model`]: ids, events, profiles, time, versioned documents, pages, and the shared ports.
//! - [`intake`]: reading what clients send into domain values, and how fast one user may send.
//! - [`schemas`]: the schema registry, and the error log of events that fail it.
//! - [`rules`]: the rule language, its index, and the catalogue of event types rules can name.
//! - [`delivery`]: alerts, delivering them (ledger, limits, provider), SMS length, phone
//!   verification.
//! - [`evaluation`]: deciding whether and how a rule fires (one pure `decide`), window buckets,
//!   the documents in force, and evaluating a stored event's rules.
//! - [`absence`]: absence checks, relayed once ripe and decided in the user's stream.
//! - [`pipeline`]: what happens to a stored event: validate, then schedule its checks and
//!   evaluate its rules, or log it as invalid.
//! - [`console`]: what operators read and try: the activity tally, the dry run, the backtest.
//!
//! A stream record visits them in that order: [`pipeline`] validates it against [`schemas`],
//! [`evaluation`] decides its rules, [`delivery`] sends what fired.

pub mod absence;
pub mod console;
pub mod delivery;
pub mod evaluation;
#[cfg(test)]
mod fixtures;
pub mod intake;
pub mod model;
pub mod pipeline;
pub mod rules;
pub mod schemas;
