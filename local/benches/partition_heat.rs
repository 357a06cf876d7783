//! Partition heat of the design: one synthetic minute at 10,000 events/s from 1 million
//! users (Zipf-distributed activity, exponent 1), 10% of events bill payments, every user new
//! (so each user's first payment in the minute fires the first-payment SMS), and a fleet window
//! (`group_by: all`) over every event, firing all minute. For each event the
//! writes and reads the pipeline makes are keyed with the adapters' own key functions
//! (`cuba_aws::partition_keys`, `AlertId`), and the hottest partition key of every table and
//! index is printed in writes/s and reads/s against DynamoDB's per-partition limits (1,000 write
//! units/s, 3,000 read units/s; an item of up to 1 KB is one write unit, a read of up to 4 KB half
//! a unit eventually consistent, a whole unit strongly consistent). Issue 10 asks for every figure
//! under half the limit; docs/src/benchmarks.md keeps the figures from before its changes beside these.
//! Ingest holds each user to the per-user event rate at its defaults (the core's own limiter, one
//! instance, its shared-count writes keyed as the adapter keys them); refused events write
//! nothing. Run with `cargo bench -p cuba-local --bench partition_heat` (`make bench` runs it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use cuba_aws::FLEET_SHARDS;
use cuba_aws::partition_keys::{
    ListingShards, SMS_BUDGET_SHARDS, TALLY_SHARDS, cooldown, first_marker, group_firing,
    group_marker, group_window_counter, listing_bucket, rate_window, rule_bucket, sms_budget,
    sms_quota, tally, unsettled_bucket, window_bucket,
};
use cuba_core::delivery::alert::AlertId;
use cuba_core::delivery::ports::{SmsBudget, SmsQuota};
use cuba_core::delivery::quiet_hours::SmsManners;
use cuba_core::evaluation::group_window::STEPS_PER_WINDOW;
use cuba_core::evaluation::window::WindowKey;
use cuba_core::intake::MAX_BATCH_EVENTS;
use cuba_core::intake::ports::RateCounter;
use cuba_core::intake::rate::{Admission, UserRateLimiter};
use cuba_core::intake::rate_limit::{RateLimit, RateWindow};
use cuba_core::model::clock::ManualClock;
use cuba_core::model::domain::{EventId, Millis, PhoneNumber, UserId};
use cuba_core::model::ports::PortError;
use cuba_core::rules::{GroupKey, RuleId};
use cuba_lambda::settings::{DEFAULT_USER_EVENT_BURST, DEFAULT_USER_EVENTS_PER_SECOND};

const EVENTS_PER_SECOND: u64 = 10_000;
const SECONDS: u64 = 60;
const USERS: u64 = 1_000_000;
const BILL_SHARE_PERCENT: u64 = 10;

/// Write and read units per partition key, per table or index.
#[derive(Default)]
struct Heat {
    writes: HashMap<String, HashMap<String, f64>>,
    reads: HashMap<String, HashMap<String, f64>>,
}

impl Heat {
    fn write(&mut self, table: &str, key: impl ToString, units: f64) {
        *self
            .writes
            .entry(table.to_owned())
            .or_default()
            .entry(key.to_string())
            .or_default() += units;
    }

    fn read(&mut self, table: &str, key: impl ToString, units: f64) {
        *self
            .reads
            .entry(table.to_owned())
            .or_default()
            .entry(key.to_string())
            .or_default() += units;
    }
}

/// Zipf(1) over `n` users by inverse transform on the harmonic series' continuous
/// approximation: rank ≈ exp(u · ln n).
struct Zipf {
    state: u64,
    n: f64,
}

impl Zipf {
    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let u = (self.state >> 11) as f64 / (1u64 << 53) as f64;
        ((u * self.n.ln()).exp() as u64).clamp(1, self.n as u64)
    }
}

/// Whole hours since the epoch: the minute tally's item holds an hour.
fn hour_of(at: Millis) -> u64 {
    at.0 / 3_600_000
}

/// The rate limit's shared count: write units per key, and each window's total.
#[derive(Default)]
struct SharedCount {
    totals: Mutex<HashMap<String, u64>>,
    writes: Mutex<HashMap<String, f64>>,
}

#[async_trait]
impl RateCounter for SharedCount {
    async fn add(&self, window: &RateWindow, count: u32, _: Millis) -> Result<u64, PortError> {
        let key = rate_window(window);
        *self
            .writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default() += 1.0;
        let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        let total = totals.entry(key).or_default();
        *total += u64::from(count);
        Ok(*total)
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let clock = ManualClock::at(Millis(0));
    let shared = Arc::new(SharedCount::default());
    let limit = RateLimit::new(
        DEFAULT_USER_EVENTS_PER_SECOND,
        DEFAULT_USER_EVENT_BURST,
        MAX_BATCH_EVENTS as u32,
    )
    .expect("the default limit");
    let limiter = UserRateLimiter::new(limit, shared.clone(), Arc::new(clock.clone()));
    let mut refused = 0u64;
    let mut refused_users: HashMap<u64, u64> = HashMap::new();
    let mut zipf = Zipf {
        state: 0x2545_F491_4F6C_DD1D,
        n: USERS as f64,
    };
    let first_rule = RuleId::parse("first-bill-payment").expect("a rule id");
    let burst_rule = RuleId::parse("bill-payment-burst").expect("a rule id");
    let absence_rule = RuleId::parse("bill-paid-no-feedback").expect("a rule id");
    let fleet_rule = RuleId::parse("events-surge").expect("a rule id");
    let fleet_group = GroupKey::stored("all").digest();
    // A 5-minute window's steps: 5 s.
    let fleet_step_ms = 5_000;
    let start = Millis(1_795_600_000_000);
    let mut heat = Heat::default();
    let shards = ListingShards::DEFAULT;
    let mut paid_before: HashMap<u64, u32> = HashMap::new();
    let total = EVENTS_PER_SECOND * SECONDS;
    for i in 0..total {
        let user = UserId(zipf.next());
        let at = Millis(start.0 + i * 1000 / EVENTS_PER_SECOND);
        clock.set(at);
        if runtime.block_on(limiter.admit(user, 1)) != Admission::Admitted {
            refused += 1;
            *refused_users.entry(user.0).or_default() += 1;
            continue;
        }
        let id = EventId::minted_at(at);
        // Ingest: one put of the item (~0.5 KB) on the user's partition (a minted id needs no
        // lookup entry). The stream consumer lists each batch of 100 in one page (about 7 KB:
        // 7 units) on the shard its batch hashes to.
        heat.write("events (user)", user.0, 1.0);
        if i % 100 == 0 {
            heat.write(
                "event pages",
                format!(
                    "e#{}",
                    listing_bucket(shards, at, &format!("batch-{}", i / 100))
                ),
                7.0,
            );
        }
        // The stream consumer adds each batch of 100 to one minute-tally shard.
        if i % 100 == 0 {
            let shard = (i / 100 % u64::from(TALLY_SHARDS)) as u16;
            heat.write("rule state", tally(hour_of(at), shard), 1.0);
        }
        // A fleet window over every event (`group_by: all`, 5 minutes): each event's marker put
        // in its batch's transaction (a small item, two units in a transaction), and per batch
        // of 100 one counter shard's update (60 steps of counts and sums, about 2 KB: four
        // units in a transaction), then its window read back (two epochs of every shard,
        // strongly consistent, a unit each) and, the window being met all minute, the firing
        // claim refused (a unit) and the firing item read (a unit).
        heat.write("rule state", group_marker(&fleet_rule, 0, id.as_str()), 2.0);
        if i % 100 == 99 {
            let shard = (i / 100 % u64::from(FLEET_SHARDS)) as u16;
            let epoch = at.0 / fleet_step_ms / STEPS_PER_WINDOW;
            heat.write(
                "rule state",
                group_window_counter(&fleet_rule, 0, &fleet_group, epoch, shard),
                4.0,
            );
            for epoch in [epoch.saturating_sub(1), epoch] {
                for shard in 0..FLEET_SHARDS {
                    heat.read(
                        "rule state",
                        group_window_counter(&fleet_rule, 0, &fleet_group, epoch, shard),
                        1.0,
                    );
                }
            }
            heat.write("rule state", group_firing(&fleet_rule, 0), 1.0);
            heat.read("rule state", group_firing(&fleet_rule, 0), 1.0);
        }
        if i % 100 < BILL_SHARE_PERCENT {
            // First-payment rule: the marker read (consistent), then put only if it is absent.
            let marker = first_marker(&first_rule, user);
            heat.read("rule state", &marker, 1.0);
            if !paid_before.contains_key(&user.0) {
                heat.write("rule state", &marker, 1.0);
            }
            // Burst rule: the payment recorded in its window bucket (one small update), then
            // the buckets of its window and of the later windows it may complete read back
            // strongly consistent (at most three, a unit each).
            let key = WindowKey {
                rule: burst_rule.clone(),
                definition: 0,
                user,
                bucket_ms: 300_000,
            };
            heat.write(
                "rule state",
                window_bucket(&burst_rule, 0, user, key.bucket_of(at)),
                1.0,
            );
            for bucket in key.buckets_around(at) {
                heat.read(
                    "rule state",
                    window_bucket(&burst_rule, 0, user, bucket),
                    1.0,
                );
            }
            // Absence rule: once ripe, the check is posted beside the user's events (one small
            // put), then decided from the trigger (a consistent read) and at most two of the
            // rule's expectation buckets (feedback, which this minute holds none of, would be
            // recorded there).
            heat.write("events (user)", user.0, 1.0);
            heat.read("events (user)", user.0, 1.0);
            let expecting = WindowKey {
                rule: absence_rule.clone(),
                definition: 0,
                user,
                bucket_ms: 900_001,
            };
            for bucket in expecting.buckets_ending(Millis(at.0 + 900_000)) {
                heat.read(
                    "rule state",
                    window_bucket(&absence_rule, 0, user, bucket),
                    1.0,
                );
            }
            let count = paid_before.entry(user.0).or_default();
            *count += 1;
            if *count == 1 {
                // The first payment fires: claim, sending, settled (3 writes of the ledger item),
                // and the SMS quotas and daily budget.
                let alert = AlertId::first(&first_rule, user);
                heat.write("alerts (alert_id)", alert.as_str(), 3.0);
                // The listing indexes project keys only: written once, at the claim.
                heat.write("alerts by_user", user.0, 1.0);
                heat.write(
                    "alerts by_rule",
                    rule_bucket(shards, &first_rule, alert.as_str()),
                    1.0,
                );
                heat.write(
                    "alerts by_day",
                    listing_bucket(shards, at, alert.as_str()),
                    1.0,
                );
                // Into the sparse index at the claim, moved at sending, out at the settle.
                heat.write(
                    "alerts by_lease",
                    unsettled_bucket(shards, alert.as_str()),
                    3.0,
                );
                // The user's day (UTC users here: one key per user and date).
                let day = SmsManners::default().local_day(None, at);
                heat.write("rule state", sms_quota(&SmsQuota::UserDay(user, day)), 1.0);
                // Every user names a number of their own here (SMS pumping is the other case).
                let phone = PhoneNumber::parse(&format!("+1555{:07}", user.0 % 10_000_000))
                    .expect("a well-formed number");
                heat.write("rule state", sms_quota(&SmsQuota::Phone(phone)), 1.0);
                let shard = (i % u64::from(SMS_BUDGET_SHARDS)) as u16;
                heat.write(
                    "rule state",
                    sms_budget(SmsBudget::Alerts, at.utc_day(), shard),
                    1.0,
                );
            }
            if *count == 5 {
                heat.write("rule state", cooldown(&burst_rule, user), 1.0);
            }
        }
    }
    for (key, units) in shared
        .writes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        heat.write("rule state", key, *units);
    }
    println!(
        "One minute at {EVENTS_PER_SECOND} events/s from {USERS} Zipf users, {BILL_SHARE_PERCENT}% bill payments ({} distinct payers):",
        paid_before.len()
    );
    println!(
        "The per-user rate limit ({} events/s, bursts of {}) refused {refused} events ({:.2}%) of {} users.",
        limit.per_second(),
        limit.burst(),
        refused as f64 * 100.0 / total as f64,
        refused_users.len()
    );
    println!();
    println!(
        "| table or index | hottest partition key | writes/s | reads/s | of the limit (1,000 W / 3,000 R) |"
    );
    println!("|---|---|---:|---:|---:|");
    let mut tables: Vec<&String> = heat.writes.keys().chain(heat.reads.keys()).collect();
    tables.sort();
    tables.dedup();
    for table in tables {
        let hottest = |units: Option<&HashMap<String, f64>>| {
            units
                .into_iter()
                .flatten()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(k, v)| (k.clone(), v / SECONDS as f64))
        };
        let (wkey, w) = hottest(heat.writes.get(table)).unwrap_or_default();
        let (rkey, r) = hottest(heat.reads.get(table)).unwrap_or_default();
        let key = if w / 1000.0 >= r / 3000.0 { wkey } else { rkey };
        let share = (w / 1000.0).max(r / 3000.0) * 100.0;
        let verdict = if share >= 100.0 {
            "over"
        } else if share >= 50.0 {
            "over half"
        } else {
            "ok"
        };
        println!("| {table} | `{key}` | {w:.0} | {r:.0} | {share:.0}% ({verdict}) |");
    }
}
