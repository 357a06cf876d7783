//! Delivering fired alerts: claim in the ledger, deliver, settle. The ledger key is
//! derived from what fired the alert, so a retried or duplicated delivery of the same stream
//! record or queue message finds the alert already settled and sends nothing.

use std::sync::Arc;
use std::time::Duration;

use crate::alert::{Alert, Claim, Delivery, OperatorAlert};
use crate::clock::Clock;
use crate::ports::{AlertLedger, ErrorChain, Notifier, PortError, ProfileStore};
use crate::rules::Action;

/// What [`AlertDispatcher::dispatch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatched {
    Delivered(Delivery),
    /// Settled by an earlier delivery of the same trigger.
    AlreadySettled,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    #[error("alert {0} is being delivered by another worker")]
    InFlight(String),
    #[error(transparent)]
    Port(#[from] PortError),
}

/// How long a worker may hold an alert before another may take it over: longer than one SNS
/// publish can take (the SDK clients time out operations after
/// [`crate::wiring::AWS_OPERATION_TIMEOUT`]), short enough for a retry to wait it out.
pub const DELIVERY_LEASE_SECONDS: u64 = 10;

/// The longest a dispatch waits for another worker's lease to lapse.
const MAX_LEASE_WAIT_MILLIS: u64 = DELIVERY_LEASE_SECONDS * 1000 + 500;

/// SNS rejects SMS bodies over 1600 characters; message templates pull in client-controlled
/// fields, so the rendered text is cut rather than the alert lost.
pub const SMS_MAX_CHARS: usize = 1600;

#[derive(Clone)]
pub struct AlertDispatcher {
    pub ledger: Arc<dyn AlertLedger>,
    pub profiles: Arc<dyn ProfileStore>,
    pub notifier: Arc<dyn Notifier>,
    pub clock: Arc<dyn Clock>,
}

impl AlertDispatcher {
    pub async fn dispatch(&self, alert: &Alert) -> Result<Dispatched, DispatchError> {
        let mut claim = self.claim(alert).await?;
        if let Claim::InFlight { lease_until } = claim {
            // In Lambda a lease outlives its holder only when the holder died: its retry comes
            // after the invocation ended. Waiting out the (short) lease here, instead of failing
            // the record, keeps a crash from burning the source's retries.
            let wait = lease_until.0.saturating_sub(self.clock.now().0) + 50;
            if wait <= MAX_LEASE_WAIT_MILLIS {
                tokio::time::sleep(Duration::from_millis(wait)).await;
                claim = self.claim(alert).await?;
            }
        }
        match claim {
            Claim::AlreadySettled => return Ok(Dispatched::AlreadySettled),
            Claim::InFlight { .. } => {
                return Err(DispatchError::InFlight(alert.id.as_str().to_owned()));
            }
            Claim::Claimed => {}
        }
        match self.deliver(alert).await {
            Ok(delivery) => {
                self.ledger
                    .settle(&alert.id, &delivery, self.clock.now())
                    .await?;
                tracing::info!(alert_id = alert.id.as_str(), rule_id = %alert.rule_id, user = %alert.user, outcome = ?delivery, "alert settled");
                Ok(Dispatched::Delivered(delivery))
            }
            Err(error) => {
                let reason = ErrorChain(&error).to_string();
                if let Err(release_error) = self.ledger.release(&alert.id, &reason).await {
                    // The lease expires by itself; the retry just waits for it.
                    tracing::warn!(alert_id = alert.id.as_str(), release_error = %ErrorChain(&release_error), "could not release alert claim");
                }
                Err(error.into())
            }
        }
    }

    async fn claim(&self, alert: &Alert) -> Result<Claim, PortError> {
        let now = self.clock.now();
        self.ledger
            .claim(alert, now, now.plus_seconds(DELIVERY_LEASE_SECONDS))
            .await
    }

    async fn deliver(&self, alert: &Alert) -> Result<Delivery, PortError> {
        match alert.action {
            Action::SmsUser => {
                let Some(profile) = self.profiles.profile(alert.user).await? else {
                    return Ok(Delivery::Undeliverable {
                        reason: format!("user {} has no phone number on file", alert.user),
                    });
                };
                let text: String = alert.text.chars().take(SMS_MAX_CHARS).collect();
                let message_id = self.notifier.send_sms(&profile.phone, &text).await?;
                Ok(Delivery::Sent { message_id })
            }
            Action::NotifyOperator { severity } => {
                let body = OperatorAlert {
                    alert_id: alert.id.clone(),
                    rule_id: alert.rule_id.clone(),
                    severity,
                    user: alert.user,
                    event_ids: alert.event_ids.clone(),
                    text: alert.text.clone(),
                    fired_at: alert.fired_at,
                };
                let message_id = self.notifier.notify_operator(&body).await?;
                Ok(Delivery::Sent { message_id })
            }
        }
    }
}
