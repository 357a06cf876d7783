//! The alert ledger in memory: a claim takes an alert that is new, or pending with a lapsed
//! lease, exactly as the DynamoDB adapter's conditional put does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use cuba_core::alert::{Alert, AlertEntry, AlertId, AlertStatus, Claim, Delivery};
use cuba_core::domain::Millis;
use cuba_core::ports::{AlertLedger, PortError};

use crate::faults::{Faults, lock};

pub(crate) struct LedgerRow {
    pub entry: AlertEntry,
    pub lease_until: Option<Millis>,
}

#[derive(Default)]
pub struct MemoryAlertLedger {
    faults: Arc<Faults>,
    pub(crate) rows: Mutex<HashMap<AlertId, LedgerRow>>,
}

impl MemoryAlertLedger {
    pub fn new(faults: Arc<Faults>) -> Self {
        MemoryAlertLedger {
            faults,
            rows: Mutex::default(),
        }
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> Vec<AlertEntry> {
        let mut entries: Vec<AlertEntry> = lock(&self.rows)
            .values()
            .map(|row| row.entry.clone())
            .collect();
        entries.sort_by(|a, b| {
            (a.fired_at, a.alert_id.as_str()).cmp(&(b.fired_at, b.alert_id.as_str()))
        });
        entries
    }
}

#[async_trait]
impl AlertLedger for MemoryAlertLedger {
    async fn claim(
        &self,
        alert: &Alert,
        now: Millis,
        lease_until: Millis,
    ) -> Result<Claim, PortError> {
        let call = self.faults.enter("ledger.claim")?;
        let mut rows = lock(&self.rows);
        let free = match rows.get(&alert.id) {
            None => Ok(()),
            Some(row) if row.entry.status != AlertStatus::Pending => Err(Claim::AlreadySettled),
            Some(row) => match row.lease_until {
                Some(held) if held < now => Ok(()),
                Some(held) => Err(Claim::InFlight { lease_until: held }),
                None => Err(Claim::InFlight { lease_until: now }),
            },
        };
        let claim = match free {
            Err(claim) => claim,
            Ok(()) => {
                rows.insert(
                    alert.id.clone(),
                    LedgerRow {
                        entry: AlertEntry::pending(alert),
                        lease_until: Some(lease_until),
                    },
                );
                Claim::Claimed
            }
        };
        call.finish(claim)
    }

    async fn settle(
        &self,
        id: &AlertId,
        delivery: &Delivery,
        now: Millis,
    ) -> Result<(), PortError> {
        let call = self.faults.enter("ledger.settle")?;
        if let Some(row) = lock(&self.rows).get_mut(id) {
            match delivery {
                Delivery::Sent { message_id } => {
                    row.entry.status = AlertStatus::Sent;
                    row.entry.message_id = Some(message_id.clone());
                }
                Delivery::Undeliverable { reason } => {
                    row.entry.status = AlertStatus::Undeliverable;
                    row.entry.reason = Some(reason.clone());
                }
            }
            row.entry.settled_at = Some(now);
            row.lease_until = None;
        }
        call.finish(())
    }

    async fn release(&self, id: &AlertId, error: &str) -> Result<(), PortError> {
        let call = self.faults.enter("ledger.release")?;
        if let Some(row) = lock(&self.rows).get_mut(id)
            && row.entry.status == AlertStatus::Pending
        {
            row.lease_until = Some(Millis(0));
            row.entry.last_error = Some(error.chars().take(1000).collect());
            row.entry.attempts = Some(row.entry.attempts.unwrap_or(0) + 1);
        }
        call.finish(())
    }
}
