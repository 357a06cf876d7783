//! The outside world's end of the memory ports: what was sent (SMS, operator alerts) and what
//! waits on the delay queue.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use cuba_core::absence::AbsenceCheck;
use cuba_core::alert::OperatorAlert;
use cuba_core::domain::PhoneNumber;
use cuba_core::ports::{AbsenceScheduler, Notifier, PortError};

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
    operator: Mutex<Vec<OperatorAlert>>,
}

impl MemoryNotifier {
    pub fn new(faults: Arc<Faults>) -> Self {
        MemoryNotifier {
            faults,
            ..MemoryNotifier::default()
        }
    }

    pub fn sms(&self) -> Vec<SentSms> {
        lock(&self.sms).clone()
    }

    pub fn operator_alerts(&self) -> Vec<OperatorAlert> {
        lock(&self.operator).clone()
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    async fn send_sms(&self, phone: &PhoneNumber, text: &str) -> Result<String, PortError> {
        let call = self.faults.enter("notifier.send_sms")?;
        let mut sms = lock(&self.sms);
        let message_id = format!("sms-{}", sms.len() + 1);
        sms.push(SentSms {
            message_id: message_id.clone(),
            phone: phone.clone(),
            text: text.to_owned(),
        });
        call.finish(message_id)
    }

    async fn notify_operator(&self, alert: &OperatorAlert) -> Result<String, PortError> {
        let call = self.faults.enter("notifier.notify_operator")?;
        let mut operator = lock(&self.operator);
        operator.push(alert.clone());
        let message_id = format!("op-{}", operator.len());
        call.finish(message_id)
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
