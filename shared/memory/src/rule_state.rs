//! Rule state in memory: first-occurrence markers, cooldowns and window buckets; markers and
//! cooldowns claimed atomically (under one
//! lock) with the same conditions as the DynamoDB adapter's conditional writes.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use cuba_core::evaluation::decision::{Beat, Cooldown};
use cuba_core::evaluation::ports::{RuleState, WindowStore};
use cuba_core::evaluation::window::{
    MAX_BUCKET_MEMBERS, Recorded, WindowKey, WindowMember, WindowRead,
};
use cuba_core::model::domain::{EventId, Millis, UserId};
use cuba_core::model::ports::PortError;
use cuba_core::rules::RuleId;

use crate::faults::{Faults, lock};

#[derive(Default)]
pub struct MemoryRuleState {
    faults: Arc<Faults>,
    firsts: Mutex<HashMap<(RuleId, UserId), EventId>>,
    cooldowns: Mutex<HashMap<(RuleId, UserId), Cooldown>>,
    beats: Mutex<HashMap<RuleId, Beat>>,
}

impl MemoryRuleState {
    pub fn new(faults: Arc<Faults>) -> Self {
        MemoryRuleState {
            faults,
            ..MemoryRuleState::default()
        }
    }
}

#[async_trait]
impl RuleState for MemoryRuleState {
    async fn claim_first(
        &self,
        rule: &RuleId,
        user: UserId,
        event: &EventId,
    ) -> Result<bool, PortError> {
        let call = self.faults.enter("rule_state.claim_first")?;
        let mut firsts = lock(&self.firsts);
        let key = (rule.clone(), user);
        let won = match firsts.get(&key) {
            Some(holder) => holder == event,
            None => {
                firsts.insert(key, event.clone());
                true
            }
        };
        call.finish(won)
    }

    async fn claim_cooldown(
        &self,
        rule: &RuleId,
        user: UserId,
        event: &EventId,
        at: Millis,
        until: Millis,
    ) -> Result<bool, PortError> {
        let call = self.faults.enter("rule_state.claim_cooldown")?;
        let mut cooldowns = lock(&self.cooldowns);
        let key = (rule.clone(), user);
        let won = match cooldowns.get(&key) {
            None => true,
            Some(cooldown) => cooldown.until <= at || cooldown.started_by == *event,
        };
        if won {
            let started = Cooldown {
                until,
                started_by: event.clone(),
                started_at: Some(at),
            };
            cooldowns.insert(key, started);
        }
        call.finish(won)
    }

    async fn first_holder(
        &self,
        rule: &RuleId,
        user: UserId,
    ) -> Result<Option<EventId>, PortError> {
        let call = self.faults.enter("rule_state.first_holder")?;
        let holder = lock(&self.firsts).get(&(rule.clone(), user)).cloned();
        call.finish(holder)
    }

    async fn cooldown(&self, rule: &RuleId, user: UserId) -> Result<Option<Cooldown>, PortError> {
        let call = self.faults.enter("rule_state.cooldown")?;
        let cooldown = lock(&self.cooldowns).get(&(rule.clone(), user)).cloned();
        call.finish(cooldown)
    }

    async fn heartbeat_seen(&self, rule: &RuleId, at: Millis) -> Result<(), PortError> {
        let call = self.faults.enter("rule_state.heartbeat_seen")?;
        let mut beats = lock(&self.beats);
        let beat = beats.entry(rule.clone()).or_insert(Beat {
            last_seen: at,
            silent_since: None,
        });
        beat.last_seen = beat.last_seen.max(at);
        call.finish(())
    }

    async fn heartbeat(&self, rule: &RuleId, now: Millis) -> Result<Beat, PortError> {
        let call = self.faults.enter("rule_state.heartbeat")?;
        let beat = *lock(&self.beats).entry(rule.clone()).or_insert(Beat {
            last_seen: now,
            silent_since: None,
        });
        call.finish(beat)
    }

    async fn set_heartbeat_silence(
        &self,
        rule: &RuleId,
        since: Option<Millis>,
    ) -> Result<(), PortError> {
        let call = self.faults.enter("rule_state.set_heartbeat_silence")?;
        if let Some(beat) = lock(&self.beats).get_mut(rule) {
            beat.silent_since = since;
        }
        call.finish(())
    }
}

/// One window bucket: its members by event id, or overflowed.
#[derive(Default)]
struct Bucket {
    members: HashMap<EventId, WindowMember>,
    overflowed: bool,
}

/// Window buckets in memory, with the DynamoDB adapter's capacity (or a smaller one, so tests
/// can make buckets overflow).
pub struct MemoryWindows {
    faults: Arc<Faults>,
    capacity: usize,
    buckets: Mutex<HashMap<(WindowKey, u64), Bucket>>,
}

impl MemoryWindows {
    pub fn new(faults: Arc<Faults>) -> Self {
        Self::with_capacity(faults, MAX_BUCKET_MEMBERS)
    }

    pub fn with_capacity(faults: Arc<Faults>, capacity: usize) -> Self {
        MemoryWindows {
            faults,
            capacity,
            buckets: Mutex::default(),
        }
    }
}

#[async_trait]
impl WindowStore for MemoryWindows {
    async fn record(&self, key: &WindowKey, member: &WindowMember) -> Result<Recorded, PortError> {
        let call = self.faults.enter("windows.record")?;
        let mut buckets = lock(&self.buckets);
        let bucket = buckets
            .entry((key.clone(), key.bucket_of(member.received_at)))
            .or_default();
        let recorded = if bucket.members.contains_key(&member.id) {
            Recorded::Kept
        } else if bucket.members.len() < self.capacity {
            bucket.members.insert(member.id.clone(), member.clone());
            Recorded::Kept
        } else {
            bucket.overflowed = true;
            Recorded::Overflowed
        };
        call.finish(recorded)
    }

    async fn buckets(
        &self,
        key: &WindowKey,
        range: RangeInclusive<u64>,
    ) -> Result<WindowRead, PortError> {
        let call = self.faults.enter("windows.window")?;
        let buckets = lock(&self.buckets);
        let mut members = Vec::new();
        for bucket in range {
            if let Some(b) = buckets.get(&(key.clone(), bucket)) {
                if b.overflowed {
                    return call.finish(WindowRead::Overflowed);
                }
                members.extend(b.members.values().cloned());
            }
        }
        call.finish(WindowRead::Members(members))
    }
}
