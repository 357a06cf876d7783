//! What every concern shares: the domain's types ([`domain`]: ids, events, profiles), time as a
//! dependency ([`clock`]), a user's time zone and language ([`locality`]), versioned documents ([`document`]: the vocabulary rules and schemas
//! share), newest-first pages ([`listing`]), and the ports every concern needs ([`ports`]: why a
//! port call fails; events, documents, secrets), a value reloaded once per time-to-live
//! ([`cache`]), and the trace an event was received in ([`trace`]).

pub mod cache;
pub mod clock;
pub mod document;
pub mod domain;
pub mod listing;
pub mod locality;
pub mod ports;
pub mod trace;
