//! AWS implementations of the core's ports. Every SDK type stays inside this module.

mod browse;
mod dynamodb;
mod errors;
mod items;
mod rules_table;
mod sns;
mod sqs;

pub use browse::{DynamoBrowse, hour_of};
pub use dynamodb::{
    DynamoAlertLedger, DynamoEvents, DynamoProfiles, DynamoRuleState, EVENTS_BY_RECEIVED_INDEX,
};
pub use errors::DynamoErrorLog;
pub use rules_table::DynamoRuleStore;
pub use sns::SnsNotifier;
pub use sqs::SqsAbsenceScheduler;
