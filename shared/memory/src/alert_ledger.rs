//! The alert ledger in memory: a claim takes an alert that is new, or pending with a lapsed
//! lease, exactly as the DynamoDB adapter's conditional put does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use cuba_core::delivery::alert::{
    Alert, AlertEntry, AlertId, AlertStatus, Claim, ClaimToken, Delivery, Lease, NoticeClaim,
};
use cuba_core::delivery::grouping::GroupNotice;
use cuba_core::delivery::ports::AlertLedger;
use cuba_core::delivery::receipts::{ReceiptOutcome, SmsReceipt};
use cuba_core::model::domain::Millis;
use cuba_core::model::ports::PortError;

use crate::faults::{Faults, lock};

pub(crate) struct LedgerRow {
    pub entry: AlertEntry,
    pub lease_until: Option<Millis>,
    pub holder: Option<ClaimToken>,
    /// While a sent SMS awaits its carrier receipt: until when.
    pub receipt_due: Option<Millis>,
}

/// What is known under one provider message id: the alert it belongs to, the receipt.
#[derive(Default)]
struct MessageLink {
    alert: Option<AlertId>,
    receipt: Option<SmsReceipt>,
}

#[derive(Default)]
pub struct MemoryAlertLedger {
    faults: Arc<Faults>,
    pub(crate) rows: Mutex<HashMap<AlertId, LedgerRow>>,
    links: Mutex<HashMap<String, MessageLink>>,
}

impl MemoryAlertLedger {
    pub fn new(faults: Arc<Faults>) -> Self {
        MemoryAlertLedger {
            faults,
            rows: Mutex::default(),
            links: Mutex::default(),
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
    async fn claim(&self, alert: &Alert, now: Millis, lease: &Lease) -> Result<Claim, PortError> {
        let lease_until = lease.until;
        let call = self.faults.enter("ledger.claim")?;
        let mut rows = lock(&self.rows);
        let held = |row: &LedgerRow| row.lease_until.unwrap_or(now);
        let claim = match rows.get(&alert.id) {
            Some(row) if row.entry.status.is_settled() => Claim::AlreadySettled,
            Some(row) if row.entry.status == AlertStatus::Sending => {
                if held(row) < now {
                    Claim::Abandoned
                } else {
                    Claim::InFlight {
                        lease_until: held(row),
                    }
                }
            }
            // A repeat of this very claim (its answer was lost).
            Some(row) if row.holder.as_ref() == Some(&lease.holder) => {
                Claim::Claimed { lease_until }
            }
            Some(row) if held(row) >= now => Claim::InFlight {
                lease_until: held(row),
            },
            _ => {
                rows.insert(
                    alert.id.clone(),
                    LedgerRow {
                        entry: AlertEntry::pending(alert),
                        lease_until: Some(lease_until),
                        holder: Some(lease.holder.clone()),
                        receipt_due: None,
                    },
                );
                Claim::Claimed { lease_until }
            }
        };
        call.finish(claim)
    }

    async fn mark_sending(
        &self,
        id: &AlertId,
        holder: &ClaimToken,
        sending_until: Millis,
    ) -> Result<bool, PortError> {
        let call = self.faults.enter("ledger.mark_sending")?;
        let marked = match lock(&self.rows).get_mut(id) {
            Some(row)
                if row.entry.status == AlertStatus::Pending
                    && row.holder.as_ref() == Some(holder) =>
            {
                row.entry.status = AlertStatus::Sending;
                row.lease_until = Some(sending_until);
                true
            }
            Some(row) => {
                row.entry.status == AlertStatus::Sending && row.holder.as_ref() == Some(holder)
            }
            None => false,
        };
        call.finish(marked)
    }

    async fn settle(
        &self,
        id: &AlertId,
        delivery: &Delivery,
        now: Millis,
    ) -> Result<(), PortError> {
        let call = self.faults.enter("ledger.settle")?;
        if let Some(row) = lock(&self.rows).get_mut(id) {
            row.entry.status = delivery.status();
            match delivery {
                Delivery::Sent { message_id } => row.entry.message_id = Some(message_id.clone()),
                Delivery::Grouped { notice } => row.entry.group.grouped_in = Some(notice.clone()),
                _ => row.entry.reason = Some(delivery.detail().1.to_owned()),
            }
            row.entry.deliver_at = None;
            row.entry.settled_at = Some(now);
            row.lease_until = None;
            row.holder = None;
        }
        call.finish(())
    }

    async fn defer(
        &self,
        id: &AlertId,
        holder: &ClaimToken,
        deliver_at: Millis,
        reason: &str,
    ) -> Result<bool, PortError> {
        let call = self.faults.enter("ledger.defer")?;
        let deferred = match lock(&self.rows).get_mut(id) {
            Some(row)
                if row.entry.status == AlertStatus::Pending
                    && row.holder.as_ref() == Some(holder) =>
            {
                row.entry.status = AlertStatus::Deferred;
                row.entry.deliver_at = Some(deliver_at);
                row.entry.reason = Some(reason.to_owned());
                row.lease_until = Some(deliver_at);
                row.holder = None;
                true
            }
            // A repeat of a deferral that took effect.
            Some(row) => {
                row.entry.status == AlertStatus::Deferred
                    && row.entry.deliver_at == Some(deliver_at)
            }
            None => false,
        };
        call.finish(deferred)
    }

    async fn release(&self, id: &AlertId, error: &str) -> Result<(), PortError> {
        let call = self.faults.enter("ledger.release")?;
        if let Some(row) = lock(&self.rows).get_mut(id)
            && !row.entry.status.is_settled()
        {
            row.entry.status = AlertStatus::Pending;
            row.lease_until = Some(Millis(0));
            row.holder = None;
            row.entry.last_error = Some(error.chars().take(1000).collect());
            row.entry.attempts = Some(row.entry.attempts.unwrap_or(0) + 1);
        }
        call.finish(())
    }

    async fn entry(&self, id: &AlertId) -> Result<Option<AlertEntry>, PortError> {
        let call = self.faults.enter("ledger.entry")?;
        let entry = lock(&self.rows).get(id).map(|row| row.entry.clone());
        call.finish(entry)
    }

    async fn gather(
        &self,
        notice: &GroupNotice,
        member: &Alert,
        sample: usize,
    ) -> Result<bool, PortError> {
        let call = self.faults.enter("ledger.gather")?;
        let mut rows = lock(&self.rows);
        let row = rows.entry(notice.id.clone()).or_insert_with(|| LedgerRow {
            entry: notice.entry(),
            lease_until: Some(notice.due),
            holder: None,
            receipt_due: None,
        });
        let open = row.entry.status == AlertStatus::Deferred;
        if open {
            let group = &mut row.entry.group;
            group.members = Some(group.members.unwrap_or(0) + 1);
            group.first_member_at.get_or_insert(member.fired_at);
            group.last_member_at = Some(member.fired_at);
            if group.sample.len() < sample {
                group.sample.push(member.id.clone());
            }
        }
        call.finish(open)
    }

    async fn claim_notice(
        &self,
        id: &AlertId,
        now: Millis,
        lease: &Lease,
    ) -> Result<NoticeClaim, PortError> {
        let call = self.faults.enter("ledger.claim_notice")?;
        let mut rows = lock(&self.rows);
        let claim = match rows.get_mut(id) {
            // Deleted by hand between the listing and the claim, as the DynamoDB ledger answers.
            None => NoticeClaim::Refused(Claim::InFlight { lease_until: now }),
            Some(row) if row.entry.status.is_settled() => {
                NoticeClaim::Refused(Claim::AlreadySettled)
            }
            // A repeat of this very claim (its answer was lost).
            Some(row) if row.holder.as_ref() == Some(&lease.holder) => {
                NoticeClaim::Claimed(Box::new(row.entry.clone()))
            }
            Some(row) if row.lease_until.unwrap_or(now) >= now => {
                NoticeClaim::Refused(Claim::InFlight {
                    lease_until: row.lease_until.unwrap_or(now),
                })
            }
            Some(row) if row.entry.status == AlertStatus::Sending => {
                NoticeClaim::Refused(Claim::Abandoned)
            }
            Some(row) => {
                row.entry.status = AlertStatus::Pending;
                row.lease_until = Some(lease.until);
                row.holder = Some(lease.holder.clone());
                NoticeClaim::Claimed(Box::new(row.entry.clone()))
            }
        };
        call.finish(claim)
    }

    async fn stuck(
        &self,
        lapsed_before: Millis,
        limit: usize,
    ) -> Result<Vec<AlertEntry>, PortError> {
        let call = self.faults.enter("ledger.stuck")?;
        let mut stuck: Vec<(Millis, AlertEntry)> = lock(&self.rows)
            .values()
            .filter(|row| !row.entry.status.is_settled())
            .filter_map(|row| {
                let lease = row.lease_until.unwrap_or(Millis(0));
                (lease < lapsed_before).then(|| (lease, row.entry.clone()))
            })
            .collect();
        stuck.sort_by(|a, b| (a.0, a.1.alert_id.as_str()).cmp(&(b.0, b.1.alert_id.as_str())));
        stuck.truncate(limit);
        call.finish(stuck.into_iter().map(|(_, entry)| entry).collect())
    }

    async fn await_receipt(
        &self,
        id: &AlertId,
        message_id: &str,
        receipt_due: Millis,
    ) -> Result<Option<SmsReceipt>, PortError> {
        let call = self.faults.enter("ledger.await_receipt")?;
        let early = {
            let mut links = lock(&self.links);
            let link = links.entry(message_id.to_owned()).or_default();
            link.alert = Some(id.clone());
            link.receipt.clone()
        };
        if early.is_none()
            && let Some(row) = lock(&self.rows).get_mut(id)
            && row.entry.receipt.is_none()
        {
            row.receipt_due = Some(receipt_due);
        }
        call.finish(early)
    }

    async fn receive_receipt(
        &self,
        receipt: &SmsReceipt,
        _now: Millis,
    ) -> Result<Option<AlertId>, PortError> {
        let call = self.faults.enter("ledger.receive_receipt")?;
        let mut links = lock(&self.links);
        let link = links.entry(receipt.message_id.clone()).or_default();
        link.receipt = Some(receipt.clone());
        call.finish(link.alert.clone())
    }

    async fn apply_receipt(
        &self,
        id: &AlertId,
        receipt: &SmsReceipt,
        _now: Millis,
    ) -> Result<(), PortError> {
        let call = self.faults.enter("ledger.apply_receipt")?;
        if let Some(row) = lock(&self.rows).get_mut(id)
            && matches!(
                row.entry.status,
                AlertStatus::Sent | AlertStatus::Delivered | AlertStatus::Failed
            )
        {
            row.entry.status = match receipt.outcome {
                ReceiptOutcome::Delivered => AlertStatus::Delivered,
                ReceiptOutcome::Failed => AlertStatus::Failed,
            };
            row.entry.receipt = Some(receipt.clone());
            row.receipt_due = None;
        }
        call.finish(())
    }

    async fn overdue_receipts(
        &self,
        before: Millis,
        limit: usize,
    ) -> Result<Vec<AlertEntry>, PortError> {
        let call = self.faults.enter("ledger.overdue_receipts")?;
        let mut rows = lock(&self.rows);
        let mut overdue: Vec<(Millis, &mut LedgerRow)> = rows
            .values_mut()
            .filter_map(|row| {
                row.receipt_due
                    .filter(|due| *due < before)
                    .map(|due| (due, row))
            })
            .collect();
        overdue.sort_by(|a, b| {
            (a.0, a.1.entry.alert_id.as_str()).cmp(&(b.0, b.1.entry.alert_id.as_str()))
        });
        let found = overdue
            .into_iter()
            .take(limit)
            .map(|(_, row)| {
                row.receipt_due = None;
                row.entry.clone()
            })
            .collect();
        call.finish(found)
    }
}
