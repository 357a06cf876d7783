//! AWS implementations of the core's ports. Every SDK type stays inside this module.

mod dynamodb;
mod rules_table;
mod sns;
mod sqs;

pub use dynamodb::{
    DynamoAlertLedger, DynamoEvents, DynamoProfiles, DynamoRuleState, EVENTS_BY_RECEIVED_INDEX,
};
pub use rules_table::DynamoRuleStore;
pub use sns::SnsNotifier;
pub use sqs::SqsAbsenceScheduler;
