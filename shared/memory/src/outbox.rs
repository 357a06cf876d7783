//! The outside world's end of the memory ports: what was sent (SMS, operator alerts) and what
//! waits on the delay queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use cuba_core::absence::AbsenceCheck;
use cuba_core::absence::ports::{AbsenceScheduler, DueChecks};
use cuba_core::delivery::alert::{AlertId, OperatorAlert, OperatorGroup, OperatorMessage};
use cuba_core::delivery::ports::{
    Notifier, OperatorQuotas, PublishError, SmsBudget, SmsQuota, SmsQuotas,
};
use cuba_core::intake::ports::RateCounter;
use cuba_core::intake::rate_limit::RateWindow;
use cuba_core::model::domain::{DAY_MILLIS, Millis, PhoneNumber, UserId};
use cuba_core::model::ports::PortError;
use cuba_core::rules::RuleId;

use crate::faults::{Faults, lock};

/// One SMS as the provider accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSms {
    pub message_id: String,
    pub phone: PhoneNumber,
    pub text: String,
}

/// Records every message instead of sending it, with a message id per message.
#[derive(Default)]
pub struct MemoryNotifier {
    faults: Arc<Faults>,
    sms: Mutex<Vec<SentSms>>,
    operator: Mutex<Vec<OperatorMessage>>,
    refused: Mutex<Vec<(PhoneNumber, String)>>,
}

impl MemoryNotifier {
    pub fn new(faults: Arc<Faults>) -> Self {
        MemoryNotifier {
            faults,
            ..MemoryNotifier::default()
        }
    }

    /// Makes the provider refuse every SMS to `phone` for good, as SNS does an invalid number.
    pub fn refuse(&self, phone: &PhoneNumber, reason: &str) {
        lock(&self.refused).push((phone.clone(), reason.to_owned()));
    }

    /// Takes SMS to `phone` again (the number was fixed, or opted back in).
    pub fn accept_again(&self, phone: &PhoneNumber) {
        lock(&self.refused).retain(|(refused, _)| refused != phone);
    }

    pub fn sms(&self) -> Vec<SentSms> {
        lock(&self.sms).clone()
    }

    /// The message id the next SMS will get (ids count the SMS sent), so a test can hand in a
    /// receipt before its SMS exists.
    pub fn next_message_id(&self) -> String {
        format!("sms-{}", lock(&self.sms).len() + 1)
    }

    /// The operator messages of single alerts.
    pub fn operator_alerts(&self) -> Vec<OperatorAlert> {
        lock(&self.operator)
            .iter()
            .filter_map(|message| match message {
                OperatorMessage::Alert(alert) => Some(alert.clone()),
                OperatorMessage::Group(_) => None,
            })
            .collect()
    }

    /// The group messages.
    pub fn operator_groups(&self) -> Vec<OperatorGroup> {
        lock(&self.operator)
            .iter()
            .filter_map(|message| match message {
                OperatorMessage::Group(group) => Some(group.clone()),
                OperatorMessage::Alert(_) => None,
            })
            .collect()
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    async fn send_sms(&self, phone: &PhoneNumber, text: &str) -> Result<String, PublishError> {
        if let Some(reason) = lock(&self.refused)
            .iter()
            .find(|(p, _)| p == phone)
            .map(|(_, r)| r.clone())
        {
            return Err(PublishError::Refused { reason });
        }
        let call = self
            .faults
            .enter("notifier.send_sms")
            .map_err(PublishError::NotSent)?;
        let mut sms = lock(&self.sms);
        let message_id = format!("sms-{}", sms.len() + 1);
        sms.push(SentSms {
            message_id: message_id.clone(),
            phone: phone.clone(),
            text: text.to_owned(),
        });
        call.finish(message_id).map_err(PublishError::Unanswered)
    }

    async fn notify_operator(&self, message: &OperatorMessage) -> Result<String, PublishError> {
        let call = self
            .faults
            .enter("notifier.notify_operator")
            .map_err(PublishError::NotSent)?;
        let mut operator = lock(&self.operator);
        operator.push(message.clone());
        let message_id = format!("op-{}", operator.len());
        call.finish(message_id).map_err(PublishError::Unanswered)
    }
}

/// SMS counters in memory: per quota, the alerts counted with when; per day, a count.
#[derive(Default)]
pub struct MemorySmsQuotas {
    faults: Arc<Faults>,
    counted: Mutex<HashMap<SmsQuota, Vec<(AlertId, Millis)>>>,
    days: Mutex<HashMap<(SmsBudget, u64), u32>>,
}

impl MemorySmsQuotas {
    pub fn new(faults: Arc<Faults>) -> Self {
        MemorySmsQuotas {
            faults,
            ..MemorySmsQuotas::default()
        }
    }
}

#[async_trait]
impl SmsQuotas for MemorySmsQuotas {
    async fn take(
        &self,
        quota: &SmsQuota,
        cap: u32,
        alert: &AlertId,
        now: Millis,
    ) -> Result<bool, PortError> {
        let call = self.faults.enter("quotas.take")?;
        let mut counted = lock(&self.counted);
        let entries = counted.entry(quota.clone()).or_default();
        entries.retain(|(_, at)| at.0 + DAY_MILLIS > now.0);
        let taken = if entries.iter().any(|(id, _)| id == alert) {
            true
        } else if entries.len() < cap as usize {
            entries.push((alert.clone(), now));
            true
        } else {
            false
        };
        call.finish(taken)
    }

    async fn take_budget(&self, budget: SmsBudget, day: u64, cap: u32) -> Result<bool, PortError> {
        let call = self.faults.enter("quotas.take_budget")?;
        let mut days = lock(&self.days);
        let count = days.entry((budget, day)).or_default();
        let taken = *count < cap;
        if taken {
            *count += 1;
        }
        call.finish(taken)
    }

    async fn give_back(&self, quota: &SmsQuota, alert: &AlertId) -> Result<(), PortError> {
        let call = self.faults.enter("quotas.give_back")?;
        if let Some(entries) = lock(&self.counted).get_mut(quota) {
            entries.retain(|(id, _)| id != alert);
        }
        call.finish(())
    }

    async fn give_back_budget(&self, budget: SmsBudget, day: u64) -> Result<(), PortError> {
        let call = self.faults.enter("quotas.give_back_budget")?;
        if let Some(count) = lock(&self.days).get_mut(&(budget, day)) {
            *count = count.saturating_sub(1);
        }
        call.finish(())
    }
}

/// A check on the delay queue, with the delay it was sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedCheck {
    pub check: AbsenceCheck,
    pub delay_seconds: u32,
}

/// The delay queue: checks are kept until a test takes them.
#[derive(Default)]
pub struct MemoryAbsenceQueue {
    faults: Arc<Faults>,
    queued: Mutex<Vec<QueuedCheck>>,
}

impl MemoryAbsenceQueue {
    pub fn new(faults: Arc<Faults>) -> Self {
        MemoryAbsenceQueue {
            faults,
            queued: Mutex::default(),
        }
    }

    /// Everything sent since the last take, oldest first.
    pub fn take(&self) -> Vec<QueuedCheck> {
        std::mem::take(&mut *lock(&self.queued))
    }
}

#[async_trait]
impl AbsenceScheduler for MemoryAbsenceQueue {
    async fn schedule(&self, check: &AbsenceCheck, delay_seconds: u32) -> Result<(), PortError> {
        let call = self.faults.enter("queue.schedule")?;
        lock(&self.queued).push(QueuedCheck {
            check: check.clone(),
            delay_seconds,
        });
        call.finish(())
    }
}

/// The user's stream, as far as due checks go: each check posted once, kept until a test takes
/// it (and hands it to the checker, as the rules function would).
#[derive(Default)]
pub struct MemoryDueChecks {
    faults: Arc<Faults>,
    posted: Mutex<Vec<AbsenceCheck>>,
    taken: Mutex<Vec<AbsenceCheck>>,
}

impl MemoryDueChecks {
    pub fn new(faults: Arc<Faults>) -> Self {
        MemoryDueChecks {
            faults,
            ..MemoryDueChecks::default()
        }
    }

    /// Every check posted since the last take, oldest first.
    pub fn take(&self) -> Vec<AbsenceCheck> {
        let posted = std::mem::take(&mut *lock(&self.posted));
        lock(&self.taken).extend(posted.iter().cloned());
        posted
    }
}

#[async_trait]
impl DueChecks for MemoryDueChecks {
    async fn post(&self, check: &AbsenceCheck) -> Result<(), PortError> {
        let call = self.faults.enter("due.post")?;
        let mut posted = lock(&self.posted);
        // Like the conditional put: a check already posted (taken or not) is not posted again.
        if !posted.contains(check) && !lock(&self.taken).contains(check) {
            posted.push(check.clone());
        }
        call.finish(())
    }
}

/// Operator alerts counted per rule and hour.
#[derive(Default)]
pub struct MemoryOperatorQuotas {
    faults: Arc<Faults>,
    counts: Mutex<HashMap<(RuleId, u64), u32>>,
}

impl MemoryOperatorQuotas {
    pub fn new(faults: Arc<Faults>) -> Self {
        MemoryOperatorQuotas {
            faults,
            ..MemoryOperatorQuotas::default()
        }
    }
}

#[async_trait]
impl OperatorQuotas for MemoryOperatorQuotas {
    async fn take(&self, rule: &RuleId, hour: u64, cap: u32) -> Result<bool, PortError> {
        let call = self.faults.enter("operators.take")?;
        let mut counts = lock(&self.counts);
        let count = counts.entry((rule.clone(), hour)).or_default();
        let taken = *count < cap;
        if taken {
            *count += 1;
        }
        call.finish(taken)
    }
}

/// The rate limit's shared count: admitted events per user and window.
#[derive(Default)]
pub struct MemoryRateCounter {
    faults: Arc<Faults>,
    totals: Mutex<HashMap<(UserId, u64), u64>>,
}

impl MemoryRateCounter {
    pub fn new(faults: Arc<Faults>) -> Self {
        MemoryRateCounter {
            faults,
            ..MemoryRateCounter::default()
        }
    }
}

#[async_trait]
impl RateCounter for MemoryRateCounter {
    async fn add(&self, window: &RateWindow, count: u32, _: Millis) -> Result<u64, PortError> {
        let call = self.faults.enter("rate.add")?;
        let mut totals = lock(&self.totals);
        let total = totals.entry((window.user, window.index)).or_default();
        *total += u64::from(count);
        call.finish(*total)
    }
}
