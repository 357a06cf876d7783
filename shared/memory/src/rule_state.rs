//! Rule state in memory: first-occurrence markers and cooldowns, claimed atomically (under one
//! lock) with the same conditions as the DynamoDB adapter's conditional writes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use cuba_core::domain::{EventId, Millis, UserId};
use cuba_core::ports::{PortError, RuleState};
use cuba_core::rules::RuleId;

use crate::faults::{Faults, lock};

#[derive(Default)]
pub struct MemoryRuleState {
    faults: Arc<Faults>,
    firsts: Mutex<HashMap<(RuleId, UserId), EventId>>,
    cooldowns: Mutex<HashMap<(RuleId, UserId), (EventId, Millis)>>,
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
            Some((holder, ends)) => *ends <= at || holder == event,
        };
        if won {
            cooldowns.insert(key, (event.clone(), until));
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

    async fn cooldown_until(
        &self,
        rule: &RuleId,
        user: UserId,
    ) -> Result<Option<Millis>, PortError> {
        let call = self.faults.enter("rule_state.cooldown_until")?;
        let until = lock(&self.cooldowns)
            .get(&(rule.clone(), user))
            .map(|(_, until)| *until);
        call.finish(until)
    }
}
