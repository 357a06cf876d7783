//! Counting and deciding windows across users ([`crate::evaluation::group_window`]): at the end
//! of each stream batch, and on the sweeper's clock.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use futures_util::future::join_all;

use crate::delivery::alerting::{AlertDispatcher, Dispatched};
use crate::evaluation::RuleOutcome;
use crate::evaluation::group_window::{
    FiringClaim, GroupContribution, GroupWindowKey, Steps, fired_alert, reminder_alert,
    resolved_alert, user_resolved_alert,
};
use crate::evaluation::ports::{GroupWindows, WindowStore};
use crate::evaluation::source::RuleSource;
use crate::evaluation::window::{WindowKey, WindowMember, WindowRead};
use crate::model::clock::Clock;
use crate::model::domain::{Millis, UserId};
use crate::model::ports::{ErrorChain, PortError};
use crate::rules::{
    Action, Condition, GroupBy, GroupKey, Rule, RuleId, RuleSet, WindowCondition, WindowTotals,
};

/// What one look at the firing groups did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GroupWindowReport {
    /// Firing groups looked at.
    pub decided: usize,
    /// Alerts of firing groups sent now (a flush stopped between its claim and its alert).
    pub fired: usize,
    /// Reminders of groups still firing, sent now.
    pub reminded: usize,
    /// Groups found no longer met (a resolve message each).
    pub resolved: usize,
}

impl GroupWindowReport {
    fn add(&mut self, other: &GroupWindowReport) {
        self.decided += other.decided;
        self.fired += other.fired;
        self.reminded += other.reminded;
        self.resolved += other.resolved;
    }
}

/// Counts the stream's contributions to windows across users and decides them; and tells ops
/// when a user's window that alerted them is over.
#[derive(Clone)]
pub struct GroupWindowDesk {
    pub rules: Arc<RuleSource>,
    pub store: Arc<dyn GroupWindows>,
    /// The window buckets of rules per user, to see whether a user's window that alerted ops
    /// is still met (`None`: such windows are not followed).
    pub windows: Option<Arc<dyn WindowStore>>,
    pub dispatcher: AlertDispatcher,
    pub clock: Arc<dyn Clock>,
    /// When this instance last noted each group of a drop per field value as seen: noted at
    /// most once an hour, so a busy group costs a write now and then, not one per batch.
    pub noted: Arc<Mutex<SeenNotes>>,
}

/// Per rule definition and group: when this instance last noted it seen.
pub type SeenNotes = HashMap<(RuleId, u64, GroupKey), Millis>;

/// How many groups a batch's flush decides at once.
const GROUPS_DECIDED_AT_ONCE: usize = 16;

/// How often an instance notes a group of a drop per field value as seen again.
const NOTE_SEEN_EVERY_SECONDS: u64 = 3600;
/// A group of a drop per field value not seen for this long is no longer watched.
pub const FORGET_GROUP_AFTER_SECONDS: u64 = 7 * 24 * 3600;

/// A rule in force whose window across users is `key`'s (same definition), and its window.
fn window_of<'r>(rule: Option<&'r Rule>, key: &GroupWindowKey) -> Option<&'r WindowCondition> {
    let rule = rule.filter(|r| r.enabled)?;
    match &rule.condition {
        Condition::Window(w) if w.group_by != GroupBy::User && w.definition == key.definition => {
            Some(w)
        }
        _ => None,
    }
}

impl GroupWindowDesk {
    /// Counts a batch's contributions, then decides each group they touched at its latest
    /// event. Safe to repeat: the counts are kept once per event, the firing is claimed once,
    /// and the ledger sends an alert once.
    pub async fn flush(
        &self,
        contributions: &[GroupContribution],
    ) -> Result<Vec<RuleOutcome>, PortError> {
        let mut outcomes = Vec::new();
        if contributions.is_empty() {
            return Ok(outcomes);
        }
        self.store.add(contributions).await?;
        let rules = self.rules.current().await?;
        let mut latest: BTreeMap<&GroupWindowKey, (Steps, Millis)> = BTreeMap::new();
        for c in contributions {
            let entry = latest.entry(&c.key).or_insert((c.steps, c.received_at));
            entry.1 = entry.1.max(c.received_at);
        }
        // Groups decided a few at once: a batch may touch many merchants, each a read or two.
        let latest: Vec<(&GroupWindowKey, (Steps, Millis))> = latest.into_iter().collect();
        for chunk in latest.chunks(GROUPS_DECIDED_AT_ONCE) {
            let decided = join_all(
                chunk
                    .iter()
                    .map(|(key, (steps, at))| self.decide_in_batch(&rules, key, *steps, *at)),
            )
            .await;
            for outcome in decided {
                outcomes.extend(outcome?);
            }
        }
        Ok(outcomes)
    }

    /// A user's window rule alerted ops (`fired` is what its dispatch said): followed as firing
    /// from `at` (unless it already is), so that the sweeper's look says when it is over.
    pub async fn follow_user_window(
        &self,
        rule: &Rule,
        window: &WindowCondition,
        user: UserId,
        at: Millis,
    ) -> Result<(), PortError> {
        if self.windows.is_none() {
            return Ok(());
        }
        let key = GroupWindowKey {
            rule: rule.id.clone(),
            definition: window.definition,
            group: user_group(user),
        };
        self.store.claim_firing(&key, at, at).await.map(|_| ())
    }

    /// Each followed user window of `rule`, decided at `now`: no longer met, one message says
    /// it is over (on the user's timeline: the alert is theirs).
    async fn look_at_users(
        &self,
        rule: &Rule,
        window: &WindowCondition,
        now: Millis,
    ) -> Result<GroupWindowReport, PortError> {
        let mut report = GroupWindowReport::default();
        let Some(windows) = &self.windows else {
            return Ok(report);
        };
        for (group, since) in self.store.firing(&rule.id, window.definition).await? {
            let Some(user) = user_of(&group) else {
                continue;
            };
            report.decided += 1;
            let WindowRead::Members(members) = windows
                .window(&WindowKey::new(&rule.id, window, user), now)
                .await?
            else {
                // Past a bucket's capacity: busy enough to be still met.
                continue;
            };
            let from = window.starts_after(now);
            let members: Vec<WindowMember> = members
                .into_iter()
                .filter(|m| m.received_at > from && m.received_at <= now)
                .collect();
            let totals = crate::evaluation::window::tally(&members);
            if window.is_met(&totals) {
                continue;
            }
            self.dispatcher
                .dispatch(&user_resolved_alert(rule, user, since, now, &totals))
                .await?;
            let key = GroupWindowKey {
                rule: rule.id.clone(),
                definition: window.definition,
                group,
            };
            self.store.resolve(&key, since).await?;
            report.resolved += 1;
        }
        Ok(report)
    }

    /// One group a batch touched, decided at its latest event: met, and neither firing nor
    /// cooling down, it fires.
    async fn decide_in_batch(
        &self,
        rules: &RuleSet,
        key: &GroupWindowKey,
        steps: Steps,
        at: Millis,
    ) -> Result<Option<RuleOutcome>, PortError> {
        let Some(rule) = rules.get(key.rule.as_str()) else {
            return Ok(None);
        };
        let Some(window) = window_of(Some(rule), key) else {
            return Ok(None);
        };
        // A drop in volume: no event makes one, the sweeper's look decides it (for a field's
        // groups, among those seen).
        if window.threshold.at_most().is_some() {
            if window.group_by != GroupBy::All {
                self.note_seen(key, at).await?;
            }
            return Ok(None);
        }
        Ok(self
            .decide(rule, window, key, steps, at)
            .await?
            .map(|dispatched| RuleOutcome {
                rule_id: rule.id.clone(),
                action: rule.action,
                dispatched,
            }))
    }

    /// `key`'s window decided at `at`: met, and the group neither firing nor cooling down, it
    /// begins firing and its alert is sent (what the dispatch did is returned).
    async fn decide(
        &self,
        rule: &Rule,
        window: &WindowCondition,
        key: &GroupWindowKey,
        steps: Steps,
        at: Millis,
    ) -> Result<Option<Dispatched>, PortError> {
        let totals = self.totals(window, key, steps, at).await?;
        if !window.is_met(&totals) {
            return Ok(None);
        }
        let quiet_after = at.minus_seconds(u64::from(window.cooldown_seconds));
        let FiringClaim::Fired { since } = self.store.claim_firing(key, at, quiet_after).await?
        else {
            return Ok(None);
        };
        self.dispatcher
            .dispatch(&fired_alert(rule, &key.group, since, &totals))
            .await
            .map(Some)
    }

    /// The window of `key` ending `at`: its count and sum, and its different values when the
    /// rule counts them.
    async fn totals(
        &self,
        window: &WindowCondition,
        key: &GroupWindowKey,
        steps: Steps,
        at: Millis,
    ) -> Result<WindowTotals, PortError> {
        let mut totals = self.store.totals(key, steps, steps.ending(at)).await?;
        if window.threshold.distinct().is_some() {
            let values = self.store.values(key, steps, steps.ending(at)).await?;
            totals.distinct = u32::try_from(values.len()).unwrap_or(u32::MAX);
        }
        Ok(totals)
    }

    /// On the sweeper's clock: each firing group of each enabled rule grouped across users,
    /// decided at `now`. Still met: its alert is sent (none goes twice; this finishes a flush
    /// that stopped between its claim and its alert). No longer met: a resolve message, then
    /// the group is quiet. A group whose look fails is logged and left to the next sweep.
    pub async fn look(&self) -> Result<GroupWindowReport, PortError> {
        let rules = self.rules.current().await?;
        let now = self.clock.now();
        let mut report = GroupWindowReport::default();
        for rule in rules.all().iter().filter(|r| r.enabled) {
            let Condition::Window(window) = &rule.condition else {
                continue;
            };
            let looked = if window.group_by == GroupBy::User {
                if !matches!(rule.action, Action::NotifyOperator { .. }) {
                    continue;
                }
                self.look_at_users(rule, window, now).await
            } else {
                self.look_at(rule, window, now).await
            };
            match looked {
                Ok(done) => report.add(&done),
                Err(error) => {
                    tracing::warn!(rule_id = %rule.id, error = %ErrorChain(&error), "group window look failed");
                }
            }
        }
        Ok(report)
    }

    async fn look_at(
        &self,
        rule: &Rule,
        window: &WindowCondition,
        now: Millis,
    ) -> Result<GroupWindowReport, PortError> {
        let steps = Steps::of(window);
        let mut report = GroupWindowReport::default();
        for (group, since) in self.store.firing(&rule.id, window.definition).await? {
            let key = GroupWindowKey {
                rule: rule.id.clone(),
                definition: window.definition,
                group,
            };
            report.decided += 1;
            let totals = self.totals(window, &key, steps, now).await?;
            if window.is_met(&totals) {
                if self
                    .dispatcher
                    .dispatch(&fired_alert(rule, &key.group, since, &totals))
                    .await?
                    .is_first()
                {
                    report.fired += 1;
                }
                if let Some(n) = window.reminder(since, now)
                    && self
                        .dispatcher
                        .dispatch(&reminder_alert(rule, &key.group, since, n, now, &totals))
                        .await?
                        .is_first()
                {
                    report.reminded += 1;
                }
                continue;
            }
            // The message first, the state after: a look that stops in between is finished by
            // the next, whose message the ledger already holds.
            self.dispatcher
                .dispatch(&resolved_alert(rule, &key.group, since, now, &totals))
                .await?;
            self.store.resolve(&key, since).await?;
            report.resolved += 1;
        }
        if window.threshold.at_most().is_some() {
            report.add(&self.look_for_drop(rule, window, steps, now).await?);
        }
        Ok(report)
    }

    /// Notes `key`'s group as seen at `at`, unless this instance did within the hour.
    async fn note_seen(&self, key: &GroupWindowKey, at: Millis) -> Result<(), PortError> {
        let entry = (key.rule.clone(), key.definition, key.group.clone());
        let due = {
            let noted = self.noted.lock().unwrap_or_else(|e| e.into_inner());
            noted
                .get(&entry)
                .is_none_or(|last| at >= last.plus_seconds(NOTE_SEEN_EVERY_SECONDS))
        };
        if !due {
            return Ok(());
        }
        self.store
            .seen(&key.rule, key.definition, &[(key.group.clone(), at)])
            .await?;
        self.noted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(entry, at);
        Ok(())
    }

    /// A drop in volume (`count_at_most`), decided at `now`: the fleet's once the rule has
    /// watched a whole window (since the sweeper's first look at it, and since it was saved);
    /// each group of a field among those seen (a group's window holds its first events, so a
    /// group just seen is no drop), a group unseen for a week forgotten.
    async fn look_for_drop(
        &self,
        rule: &Rule,
        window: &WindowCondition,
        steps: Steps,
        now: Millis,
    ) -> Result<GroupWindowReport, PortError> {
        if window.group_by == GroupBy::All {
            return self.look_for_fleet_drop(rule, window, steps, now).await;
        }
        let mut report = GroupWindowReport::default();
        for (group, last_seen) in self.store.known(&rule.id, window.definition).await? {
            if now > last_seen.plus_seconds(FORGET_GROUP_AFTER_SECONDS) {
                self.store
                    .forget(&rule.id, window.definition, &group, last_seen)
                    .await?;
                continue;
            }
            let key = GroupWindowKey {
                rule: rule.id.clone(),
                definition: window.definition,
                group,
            };
            report.add(&self.decide_drop(rule, window, &key, steps, now).await?);
        }
        Ok(report)
    }

    async fn look_for_fleet_drop(
        &self,
        rule: &Rule,
        window: &WindowCondition,
        steps: Steps,
        now: Millis,
    ) -> Result<GroupWindowReport, PortError> {
        let mut report = GroupWindowReport::default();
        let watched = self
            .store
            .watch(&rule.id, window.definition, now)
            .await?
            .max(rule.saved_at.unwrap_or(Millis(0)));
        if now < watched.plus_seconds(u64::from(window.seconds.get())) {
            return Ok(report);
        }
        let key = GroupWindowKey {
            rule: rule.id.clone(),
            definition: window.definition,
            group: GroupKey::stored("all"),
        };
        report.add(&self.decide_drop(rule, window, &key, steps, now).await?);
        Ok(report)
    }

    /// One group's drop, decided at `now`: met, and neither firing nor cooling down, it fires.
    async fn decide_drop(
        &self,
        rule: &Rule,
        window: &WindowCondition,
        key: &GroupWindowKey,
        steps: Steps,
        now: Millis,
    ) -> Result<GroupWindowReport, PortError> {
        let fired = self.decide(rule, window, key, steps, now).await?;
        Ok(GroupWindowReport {
            decided: 1,
            fired: usize::from(fired.is_some_and(|d| d.is_first())),
            ..GroupWindowReport::default()
        })
    }
}

/// The group a user's window is followed under (no field's value takes this form for the same
/// rule: a rule groups by one thing).
fn user_group(user: UserId) -> GroupKey {
    GroupKey::stored(format!("user:{}", user.0))
}

fn user_of(group: &GroupKey) -> Option<UserId> {
    group
        .as_str()
        .strip_prefix("user:")
        .and_then(|n| n.parse().ok())
        .map(UserId)
}
