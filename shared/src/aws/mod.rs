//! AWS implementations of the core's ports. Every SDK type stays inside this module.

mod dynamodb;
mod sns;
mod sqs;

pub use dynamodb::{
    DynamoAlertLedger, DynamoEvents, DynamoProfiles, DynamoRuleState, EVENTS_BY_RECEIVED_INDEX,
};
pub use sns::SnsNotifier;
pub use sqs::SqsAbsenceScheduler;
