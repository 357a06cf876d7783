//! Cuba's Lambda edge: the two batch handlers ([`handlers`]) at the level Lambda sees them,
//! configuration ([`settings`]), and the wiring that builds each function from its settings and
//! the AWS clients ([`wiring`]). The function crates only call into here.

pub mod handlers;
pub mod settings;
pub mod wiring;

pub use cuba_aws::AwsClients;
pub use cuba_core::clock::SystemClock;
