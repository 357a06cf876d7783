//! The partition keys Cuba writes, in one place: the adapters build their keys here, and the
//! partition-heat simulation (`local/benches/partition_heat.rs`) runs the same functions over a
//! synthetic load to find the hottest key of every table and index.

use std::num::NonZeroU16;

use cuba_core::delivery::ports::{SmsBudget, SmsQuota};
use cuba_core::intake::rate_limit::RateWindow;
use cuba_core::model::domain::{Millis, UserId, stable_hash};
use cuba_core::rules::RuleId;

/// The rule-state item holding every silence.
pub const SILENCES: &str = "silences";

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
        SmsQuota::UserDay(user, day) => format!("sms#user#{user}#{day}"),
        SmsQuota::Phone(phone) => format!("sms#phone#{}", phone.as_str()),
        SmsQuota::CodesTo(phone) => format!("sms#codes#{}", phone.as_str()),
    }
}

/// The rule-state item counting one shard of the SMS budget of a UTC day. The day's budget is
/// split evenly over [`SMS_BUDGET_SHARDS`] items, so concurrent deliveries rarely race on one
/// conditional update.
pub fn sms_budget(budget: SmsBudget, day: u64, shard: u16) -> String {
    match budget {
        SmsBudget::Alerts => format!("sms#budget#{day}#{shard}"),
        SmsBudget::Codes => format!("sms#code-budget#{day}#{shard}"),
    }
}

/// The rule-state item counting a user's admitted events in one rate window, across every
/// ingest instance.
pub fn rate_window(window: &RateWindow) -> String {
    format!("rate#{}#{}", window.user, window.index)
}

/// The rule-state item counting what one rule did on one UTC day (days since 1970).
pub fn rule_day(rule: &RuleId, day: u64) -> String {
    format!("ruleday#{rule}#{day}")
}

/// The rule-state item holding a heartbeat rule's last sighting and silence.
pub fn heartbeat(rule: &RuleId) -> String {
    format!("heartbeat#{rule}")
}

/// The rule-state item counting one rule's operator alerts in one hour (hours since 1970).
pub fn operator_quota(rule: &RuleId, hour: u64) -> String {
    format!("operator#{rule}#{hour}")
}

/// How many items a day's SMS budget is split over.
pub const SMS_BUDGET_SHARDS: u16 = 8;

/// The rule-state item holding one time bucket of a window rule's members for a user.
pub fn window_bucket(rule: &RuleId, definition: u64, user: UserId, bucket: u64) -> String {
    format!("window#{rule}#{definition:016x}#{user}#{bucket}")
}

/// The rule-state item holding one shard of a window across users' counters: 60 steps (an
/// epoch) of one group (by its digest) of one rule definition.
pub fn group_window_counter(
    rule: &RuleId,
    definition: u64,
    group_digest: &str,
    epoch: u64,
    shard: u16,
) -> String {
    format!("gwin#{rule}#{definition:016x}#{group_digest}#{epoch}#{shard}")
}

/// The rule-state item holding one step's different values of a window across users (of one
/// group, by its digest).
pub fn group_window_values(
    rule: &RuleId,
    definition: u64,
    group_digest: &str,
    step: u64,
) -> String {
    format!("gdis#{rule}#{definition:016x}#{group_digest}#{step}")
}

/// The rule-state item saying an event was counted in a rule definition's window across users.
pub fn group_marker(rule: &RuleId, definition: u64, event: &str) -> String {
    format!("gmark#{rule}#{definition:016x}#{event}")
}

/// The rule-state item holding which groups of a rule definition's window are firing.
pub fn group_firing(rule: &RuleId, definition: u64) -> String {
    format!("gfire#{rule}#{definition:016x}")
}

/// The rule-state item holding one minute-tally shard: the events and alerts counted in an hour.
pub fn tally(hour: u64, shard: u16) -> String {
    format!("tally#{hour}#{shard}")
}

/// How many items each hour's per-minute tallies are spread over.
pub const TALLY_SHARDS: u16 = 8;

/// Whole UTC days since the epoch: the time buckets of the `by_day` listing indexes.
pub fn day_bucket(at: Millis) -> u64 {
    at.0 / 86_400_000
}

/// How many write shards each listing index spreads a partition over: the `by_day` indexes of
/// events, alerts and the error log, and the alerts' `by_rule` and `by_lease` indexes. Readers
/// merge every shard, so the count may be raised at any time (items keep the shard they were
/// written under, and every lower shard is still read) but lowering it hides the items written
/// to the shards above the new count until they expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListingShards(NonZeroU16);

impl ListingShards {
    /// Sized for 10,000 writes/s: about 312 per shard, under a third of a partition's 1,000.
    pub const DEFAULT: ListingShards = ListingShards(NonZeroU16::new(32).expect("32 is not 0"));
    /// Beyond this a reader's fan-out costs more than any write rate needs.
    pub const MAX: u16 = 256;

    pub fn new(count: u16) -> Option<ListingShards> {
        NonZeroU16::new(count)
            .filter(|c| c.get() <= Self::MAX)
            .map(ListingShards)
    }

    pub fn count(self) -> u16 {
        self.0.get()
    }

    /// The shard an item with this key is written under: a stable hash, so a rewrite of the
    /// same item lands on the same shard.
    pub fn of(self, key: &str) -> u16 {
        (stable_hash(key.as_bytes()) % u64::from(self.count())) as u16
    }

    /// Every shard's partition value under `prefix`: what a reader merges.
    pub fn all(self, prefix: &str) -> impl Iterator<Item = String> + '_ {
        (0..self.count()).map(move |shard| sharded(prefix, shard))
    }
}

impl Default for ListingShards {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A sharded partition value: `{prefix}#{shard}`.
pub fn sharded(prefix: &str, shard: u16) -> String {
    format!("{prefix}#{shard}")
}

/// The `by_day` indexes' partition value of an item written `at` with item key `key`.
pub fn listing_bucket(shards: ListingShards, at: Millis, key: &str) -> String {
    sharded(&day_bucket(at).to_string(), shards.of(key))
}

/// The alerts' `by_rule` partition value of alert `alert_id` of `rule`.
pub fn rule_bucket(shards: ListingShards, rule: &RuleId, alert_id: &str) -> String {
    sharded(rule.as_str(), shards.of(alert_id))
}

/// The alerts' `by_lease` partition value, carried by unsettled alerts only.
pub fn unsettled_bucket(shards: ListingShards, alert_id: &str) -> String {
    sharded(UNSETTLED_ALERTS, shards.of(alert_id))
}

/// The prefix of the `by_lease` index's partition values.
pub const UNSETTLED_ALERTS: &str = "u";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_spread_keys_evenly_and_stably() {
        let shards = ListingShards::DEFAULT;
        let mut counts = vec![0u32; usize::from(shards.count())];
        for i in 0..32_000 {
            let key = format!("{}/01J{i:08}", i % 977);
            let shard = shards.of(&key);
            assert_eq!(shard, shards.of(&key), "the same key, the same shard");
            counts[usize::from(shard)] += 1;
        }
        let (min, max) = (counts.iter().min(), counts.iter().max());
        assert!(
            min >= Some(&850) && max <= Some(&1150),
            "32,000 keys over 32 shards: {counts:?}"
        );
    }

    #[test]
    fn shard_counts_are_bounded() {
        assert_eq!(ListingShards::new(0), None);
        assert_eq!(ListingShards::new(257), None);
        assert_eq!(ListingShards::new(1).map(ListingShards::count), Some(1));
        assert_eq!(ListingShards::new(1).map(|s| s.of("anything")), Some(0));
        let all: Vec<String> = ListingShards::new(3)
            .into_iter()
            .flat_map(|s| s.all("20000").collect::<Vec<_>>())
            .collect();
        assert_eq!(all, ["20000#0", "20000#1", "20000#2"]);
    }
}
