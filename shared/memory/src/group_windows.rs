//! Windows across users in memory: counters per step, each event counted once per window.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cuba_core::evaluation::group_window::{
    FiringClaim, GroupContribution, GroupWindowKey, Steps, totals_over,
};
use cuba_core::evaluation::ports::GroupWindows;
use cuba_core::model::domain::{EventId, Millis};
use cuba_core::model::ports::PortError;
use cuba_core::rules::{GroupKey, RuleId, WindowTotals};

use crate::faults::{Faults, lock};

#[derive(Default)]
struct Counted {
    /// Which events each rule definition has counted (an event is in one group of a rule).
    events: HashSet<(RuleId, u64, EventId)>,
    /// Per window and step: count and sum.
    steps: HashMap<(GroupWindowKey, u64), (u64, f64)>,
    /// Per window and step: its different values.
    values: HashMap<(GroupWindowKey, u64), BTreeSet<String>>,
    /// Per window: when its group began firing, if it is.
    firing: HashMap<GroupWindowKey, Millis>,
    /// Per rule definition: the groups seen, and when last.
    seen: HashMap<(RuleId, u64), BTreeMap<GroupKey, Millis>>,
    /// Per rule definition: when it was first watched.
    watched: HashMap<(RuleId, u64), Millis>,
    /// Per window: when its group last began firing.
    last_fired: HashMap<GroupWindowKey, Millis>,
}

pub struct MemoryGroupWindows {
    faults: Arc<Faults>,
    counted: Mutex<Counted>,
}

impl MemoryGroupWindows {
    pub fn new(faults: Arc<Faults>) -> Self {
        MemoryGroupWindows {
            faults,
            counted: Mutex::default(),
        }
    }
}

#[async_trait]
impl GroupWindows for MemoryGroupWindows {
    async fn add(&self, contributions: &[GroupContribution]) -> Result<(), PortError> {
        let call = self.faults.enter("group_windows.add")?;
        let mut counted = lock(&self.counted);
        // As the DynamoDB adapter: one conditional add per step of what the call brings for
        // it, taken whole while the step keeps fewer than `keep`.
        let mut brought: BTreeMap<(GroupWindowKey, u64), (u32, Vec<String>)> = BTreeMap::new();
        for c in contributions {
            if let Some(d) = &c.distinct {
                let entry = brought
                    .entry((c.key.clone(), c.steps.step_of(c.received_at)))
                    .or_insert((d.keep, Vec::new()));
                entry.1.push(d.value.clone());
            }
        }
        for (step, (keep, values)) in brought {
            let held = counted.values.entry(step).or_default();
            if held.len() < keep as usize {
                held.extend(values);
            }
        }
        for c in contributions {
            if counted
                .events
                .insert((c.key.rule.clone(), c.key.definition, c.event.clone()))
            {
                let step = counted
                    .steps
                    .entry((c.key.clone(), c.steps.step_of(c.received_at)))
                    .or_default();
                step.0 += 1;
                step.1 += c.amount;
            }
        }
        call.finish(())
    }

    async fn totals(
        &self,
        key: &GroupWindowKey,
        _grid: Steps,
        steps: RangeInclusive<u64>,
    ) -> Result<WindowTotals, PortError> {
        let call = self.faults.enter("group_windows.totals")?;
        let counted = lock(&self.counted);
        let counters = steps.clone().filter_map(|step| {
            counted
                .steps
                .get(&(key.clone(), step))
                .map(|(n, sum)| (step, *n, *sum))
        });
        let totals = totals_over(counters, &steps);
        drop(counted);
        call.finish(totals)
    }

    async fn values(
        &self,
        key: &GroupWindowKey,
        _grid: Steps,
        steps: RangeInclusive<u64>,
    ) -> Result<BTreeSet<String>, PortError> {
        let call = self.faults.enter("group_windows.values")?;
        let counted = lock(&self.counted);
        let values: BTreeSet<String> = steps
            .filter_map(|step| counted.values.get(&(key.clone(), step)))
            .flatten()
            .cloned()
            .collect();
        drop(counted);
        call.finish(values)
    }

    async fn claim_firing(
        &self,
        key: &GroupWindowKey,
        at: Millis,
        quiet_after: Millis,
    ) -> Result<FiringClaim, PortError> {
        let call = self.faults.enter("group_windows.claim_firing")?;
        let mut counted = lock(&self.counted);
        let claim = if let Some(since) = counted.firing.get(key) {
            FiringClaim::Firing { since: *since }
        } else if counted
            .last_fired
            .get(key)
            .is_some_and(|l| *l > quiet_after)
        {
            FiringClaim::CoolingDown
        } else {
            counted.firing.insert(key.clone(), at);
            counted.last_fired.insert(key.clone(), at);
            FiringClaim::Fired { since: at }
        };
        drop(counted);
        call.finish(claim)
    }

    async fn firing(
        &self,
        rule: &RuleId,
        definition: u64,
    ) -> Result<Vec<(GroupKey, Millis)>, PortError> {
        let call = self.faults.enter("group_windows.firing")?;
        let counted = lock(&self.counted);
        let mut firing: Vec<(GroupKey, Millis)> = counted
            .firing
            .iter()
            .filter(|(k, _)| &k.rule == rule && k.definition == definition)
            .map(|(k, since)| (k.group.clone(), *since))
            .collect();
        drop(counted);
        firing.sort();
        call.finish(firing)
    }

    async fn watch(
        &self,
        rule: &RuleId,
        definition: u64,
        now: Millis,
    ) -> Result<Millis, PortError> {
        let call = self.faults.enter("group_windows.watch")?;
        let mut counted = lock(&self.counted);
        let since = *counted
            .watched
            .entry((rule.clone(), definition))
            .or_insert(now);
        drop(counted);
        call.finish(since)
    }

    async fn seen(
        &self,
        rule: &RuleId,
        definition: u64,
        groups: &[(GroupKey, Millis)],
    ) -> Result<(), PortError> {
        let call = self.faults.enter("group_windows.seen")?;
        let mut counted = lock(&self.counted);
        let known = counted.seen.entry((rule.clone(), definition)).or_default();
        for (group, at) in groups {
            let last = known.entry(group.clone()).or_insert(*at);
            *last = (*last).max(*at);
        }
        drop(counted);
        call.finish(())
    }

    async fn known(
        &self,
        rule: &RuleId,
        definition: u64,
    ) -> Result<Vec<(GroupKey, Millis)>, PortError> {
        let call = self.faults.enter("group_windows.known")?;
        let counted = lock(&self.counted);
        let known: Vec<(GroupKey, Millis)> = counted
            .seen
            .get(&(rule.clone(), definition))
            .map(|k| k.iter().map(|(g, at)| (g.clone(), *at)).collect())
            .unwrap_or_default();
        drop(counted);
        call.finish(known)
    }

    async fn forget(
        &self,
        rule: &RuleId,
        definition: u64,
        group: &GroupKey,
        at: Millis,
    ) -> Result<(), PortError> {
        let call = self.faults.enter("group_windows.forget")?;
        let mut counted = lock(&self.counted);
        if let Some(known) = counted.seen.get_mut(&(rule.clone(), definition))
            && known.get(group) == Some(&at)
        {
            known.remove(group);
            // Its firing too: a group no longer watched is told of no more.
            counted.firing.remove(&GroupWindowKey {
                rule: rule.clone(),
                definition,
                group: group.clone(),
            });
        }
        drop(counted);
        call.finish(())
    }

    async fn resolve(&self, key: &GroupWindowKey, since: Millis) -> Result<(), PortError> {
        let call = self.faults.enter("group_windows.resolve")?;
        let mut counted = lock(&self.counted);
        if counted.firing.get(key) == Some(&since) {
            counted.firing.remove(key);
        }
        drop(counted);
        call.finish(())
    }
}
