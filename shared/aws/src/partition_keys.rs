//! The partition keys Cuba writes, in one place: the adapters build their keys here, and the
//! partition-heat simulation (`local/benches/partition_heat.rs`) runs the same functions over a
//! synthetic load to find the hottest key of every table and index.

use cuba_core::domain::{Millis, UserId};
use cuba_core::ports::SmsQuota;
use cuba_core::rules::RuleId;

/// The rule-state item holding a rule's first-occurrence marker for a user.
pub fn first_marker(rule: &RuleId, user: UserId) -> String {
    format!("first#{rule}#{user}")
}

/// The rule-state item holding a rule's cooldown for a user.
pub fn cooldown(rule: &RuleId, user: UserId) -> String {
    format!("cooldown#{rule}#{user}")
}

/// The rule-state item counting one SMS quota (a user's or a phone number's rolling day).
pub fn sms_quota(quota: &SmsQuota) -> String {
    match quota {
        SmsQuota::User(user) => format!("sms#user#{user}"),
        SmsQuota::Phone(phone) => format!("sms#phone#{}", phone.as_str()),
    }
}

/// The rule-state item counting every SMS of one UTC day (the daily budget).
pub fn sms_budget(day: u64) -> String {
    format!("sms#budget#{day}")
}

/// The `by_hour` indexes' partition key (events, alerts, error log): the hour since the epoch.
pub fn hour_bucket(at: Millis) -> u64 {
    at.0 / 3_600_000
}

/// The `by_lease` index's one partition key, carried by unsettled alerts only.
pub const UNSETTLED_ALERTS: &str = "u";
