//! Delivering fired alerts: claim in the ledger, check the recipient and the SMS limits, mark
//! the alert `sending`, publish, settle. The ledger key is derived from what fired the alert,
//! so a retried or duplicated delivery of the same stream record or queue message finds the
//! alert already settled (or being sent) and publishes nothing.
//!
//! What "exactly once" means here: every fired alert gets exactly one ledger entry and is
//! published at most once; it is not published only when it was settled `undeliverable` or
//! `suppressed` (with the reason), or when the provider never answered the one publish
//! (`unconfirmed`: it may have gone out). Only the holder of a live claim can move an alert to
//! `sending`, and nothing moves it back unless the provider answered that it did not take the
//! message.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use crate::delivery::alert::{
    Alert, AlertEntry, AlertId, AlertStatus, Claim, ClaimToken, Delivery, Lease, NoticeClaim,
    OperatorAlert, OperatorMessage,
};
use crate::delivery::grouping::{GROUP_SAMPLE, GroupNotice, MAX_NOTICES_PER_SLOT, group_message};
use crate::delivery::ports::{
    AlertLedger, Notifier, ProfileStore, PublishError, SmsBudget, SmsQuotas,
};
use crate::delivery::quiet_hours::{Held, SmsManners};
use crate::delivery::silences::SilenceSource;
use crate::delivery::sms;

use crate::delivery::limits::HOUR_MILLIS;
pub use crate::delivery::limits::{
    DEFAULT_OPERATOR_ALERTS_PER_RULE_PER_HOUR, OperatorLimit, SmsAdmission, SmsPolicy,
};
use crate::model::clock::Clock;
use crate::model::domain::{Millis, PhoneNumber, UserProfile};
use crate::model::locality::Locale;
use crate::model::ports::{ErrorChain, PortError};
use crate::model::trace;
use crate::rules::{
    Action, Grouping, OPERATOR_CAP_RULE, QuietHoursPolicy, RESERVED_RULE_IDS, RuleId,
    SMS_BUDGET_RULE, Severity, Translations,
};
use jiff::civil::Date;

/// What [`AlertDispatcher::dispatch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dispatched {
    Delivered(Delivery),
    /// Settled by an earlier delivery of the same trigger.
    AlreadySettled,
    /// Another worker holds the alert; if that worker died, the sweeper finishes the alert once
    /// the lease lapses.
    InFlight,
    /// An SMS held through the user's quiet hours: the sweeper sends it once `until` passes.
    Deferred {
        until: Millis,
    },
}

impl Dispatched {
    /// The name this outcome is counted under (metrics, a rule's day counts): the status it
    /// settled at, or what kept it from settling.
    pub fn counted_as(&self) -> &'static str {
        match self {
            Dispatched::Delivered(delivery) => match delivery.status() {
                AlertStatus::Sent => "sent",
                AlertStatus::Undeliverable => "undeliverable",
                AlertStatus::Suppressed => "suppressed",
                AlertStatus::Silenced => "silenced",
                AlertStatus::Unconfirmed => "unconfirmed",
                AlertStatus::Expired => "expired",
                AlertStatus::Delivered => "delivered",
                AlertStatus::Failed => "failed",
                AlertStatus::Grouped => "grouped",
                AlertStatus::Pending | AlertStatus::Sending | AlertStatus::Deferred => "unsettled",
            },
            Dispatched::AlreadySettled => "already_settled",
            Dispatched::InFlight => "in_flight",
            Dispatched::Deferred { .. } => "deferred",
        }
    }

    /// Whether this was the alert's first dispatch (settled now, or held for quiet hours), not
    /// a redelivery that found it settled or in flight: what counts a rule as having fired.
    pub fn is_first(&self) -> bool {
        matches!(self, Dispatched::Delivered(_) | Dispatched::Deferred { .. })
    }
}

/// The longest any store call and the publish call may take, as the adapters are configured
/// (their timeouts, retries included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    pub store: Duration,
    pub publish: Duration,
}

/// Store calls a claim's holder may make before the alert is `sending`: the profile read, two
/// attempts of a read and a conditional write for each of the per-user and per-phone quotas,
/// the budget, the budget alert's claim, and the mark itself.
pub const STORE_CALLS_BEFORE_SENDING: u32 = 12;

/// Tries of the settle after a publish, before the alert is left to the sweeper.
pub const SETTLE_ATTEMPTS: u32 = 3;

const SETTLE_BACKOFF: Duration = Duration::from_millis(200);
const LEASE_MARGIN: Duration = Duration::from_secs(1);

/// How long a worker holds an alert: a claim lease covering every call up to `sending`, and a
/// `sending` lease covering the publish and the settles, each derived from the calls' limits so
/// that a live worker is not overtaken. (Overtaking would not double a message: the `sending`
/// mark is conditional on the claim. It would make the live worker give the alert up.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryLeases {
    pub claim: Duration,
    pub sending: Duration,
}

impl DeliveryLeases {
    pub fn covering(limits: CallLimits) -> Self {
        let backoffs: Duration = (1..SETTLE_ATTEMPTS).map(|n| SETTLE_BACKOFF * n).sum();
        DeliveryLeases {
            claim: limits.store * STORE_CALLS_BEFORE_SENDING + LEASE_MARGIN,
            sending: limits.publish + limits.store * SETTLE_ATTEMPTS + backoffs + LEASE_MARGIN,
        }
    }
}

#[derive(Clone)]
pub struct AlertDispatcher {
    pub ledger: Arc<dyn AlertLedger>,
    pub profiles: Arc<dyn ProfileStore>,
    pub notifier: Arc<dyn Notifier>,
    pub quotas: Arc<dyn SmsQuotas>,
    pub clock: Arc<dyn Clock>,
    pub leases: DeliveryLeases,
    pub sms: SmsPolicy,
    pub operators: OperatorLimit,
    /// Operator alerts an operator silenced for now.
    pub silences: Arc<SilenceSource>,
    /// When SMS that may wait are held.
    pub manners: SmsManners,
    /// How long after sending an SMS its carrier receipt counts as overdue.
    pub receipt_timeout: Duration,
    /// Held while this process opens a group message: its alerts gathered at once make one
    /// creator, the others join what it made. (DynamoDB serialises concurrent creations of an
    /// item anyway; moto, which tests run on, lets two of them both create it, and the second
    /// drops what the first counted.)
    pub opening_groups: Arc<tokio::sync::Mutex<()>>,
}

/// Why a claimed alert was left unsettled, which decides whether it may be handed out again.
enum Unsettled {
    /// Nothing was published: the claim is released for an immediate retry.
    NothingSent(PortError),
    /// Published (or possibly published), then the settle failed: never handed out again.
    Published(PortError),
}

/// An SMS counted against the limits, and how it goes out.
struct AdmittedSms {
    phone: PhoneNumber,
    /// When it was counted (the budget's day).
    admitted_at: Millis,
    /// The user's date then: the day their cap counted it in.
    local_day: Date,
    /// Written in this language where the rule has it.
    locale: Option<Locale>,
}

/// What a claimed alert publishes.
enum Outgoing {
    Sms(AdmittedSms),
    Operator(OperatorMessage),
}

/// Where a claimed alert goes, once its recipient and limits are checked.
enum Route {
    Sms(AdmittedSms),
    Operator,
    /// Settled without publishing.
    Settle(Delivery),
    /// Held until the user's quiet hours end.
    Defer(Held),
}

impl AlertDispatcher {
    pub async fn dispatch(&self, alert: &Alert) -> Result<Dispatched, PortError> {
        let now = self.clock.now();
        let lease = Lease::new(now.plus_millis(millis(self.leases.claim)));
        let claim = self.ledger.claim(alert, now, &lease).await?;
        self.carry_out(claim, alert, &lease.holder, None).await
    }

    /// Publishes a group message that came due: claims it, which closes it (no alert joins
    /// it after), and sends one message for all it gathered.
    async fn flush_notice(&self, entry: &AlertEntry) -> Result<Dispatched, PortError> {
        let now = self.clock.now();
        let lease = Lease::new(now.plus_millis(millis(self.leases.claim)));
        let alert = entry.alert();
        match self
            .ledger
            .claim_notice(&entry.alert_id, now, &lease)
            .await?
        {
            NoticeClaim::Claimed(notice) => {
                let claim = Claim::Claimed {
                    lease_until: lease.until,
                };
                self.carry_out(claim, &alert, &lease.holder, Some(&notice))
                    .await
            }
            NoticeClaim::Refused(claim) => self.carry_out(claim, &alert, &lease.holder, None).await,
        }
    }

    /// Acts on a claim: a claimed alert (or group message: `notice`, its final tally) is
    /// delivered and settled, an abandoned one settled `unconfirmed`.
    async fn carry_out(
        &self,
        claim: Claim,
        alert: &Alert,
        holder: &ClaimToken,
        notice: Option<&AlertEntry>,
    ) -> Result<Dispatched, PortError> {
        match claim {
            Claim::AlreadySettled => Ok(Dispatched::AlreadySettled),
            Claim::InFlight { .. } => Ok(Dispatched::InFlight),
            Claim::Abandoned => {
                let delivery = Delivery::Unconfirmed {
                    reason: "publishing began but its outcome was never recorded (the worker \
                             stopped, or could not settle); not sent again"
                        .into(),
                };
                self.settle(alert, &delivery).await?;
                Ok(Dispatched::Delivered(delivery))
            }
            Claim::Claimed { .. } => {
                let delivered = match notice {
                    Some(notice) => self.deliver_notice(alert, notice, holder).await,
                    None => self.deliver_claimed(alert, holder).await,
                };
                match delivered {
                    Ok(dispatched) => Ok(dispatched),
                    Err(Unsettled::NothingSent(error)) => {
                        let reason = ErrorChain(&error).to_string();
                        if let Err(release_error) = self.ledger.release(&alert.id, &reason).await {
                            // The lease lapses by itself; the retry or the sweeper waits for it.
                            tracing::warn!(alert_id = alert.id.as_str(), release_error = %ErrorChain(&release_error), "could not release alert claim");
                        }
                        Err(error)
                    }
                    Err(Unsettled::Published(error)) => {
                        // Never released: the alert stays `sending`, so nothing publishes it again,
                        // and the sweeper settles it `unconfirmed` once its lease lapses.
                        tracing::error!(alert_id = alert.id.as_str(), error = %ErrorChain(&error), "published, but the ledger could not record it");
                        Err(error)
                    }
                }
            }
        }
    }

    /// Finishes alerts whose worker died: a `pending` one is delivered, a `sending` one is
    /// settled `unconfirmed`.
    /// A group message that came due is published.
    pub async fn redrive(&self, entry: &AlertEntry) -> Result<Dispatched, PortError> {
        if entry.is_group_notice() {
            return self.flush_notice(entry).await;
        }
        self.dispatch(&entry.alert()).await
    }

    async fn deliver_claimed(
        &self,
        alert: &Alert,
        holder: &ClaimToken,
    ) -> Result<Dispatched, Unsettled> {
        let nothing_sent = Unsettled::NothingSent;
        let outgoing = match self.route(alert).await.map_err(nothing_sent)? {
            Route::Settle(delivery) => {
                self.settle(alert, &delivery).await.map_err(nothing_sent)?;
                return Ok(Dispatched::Delivered(delivery));
            }
            Route::Defer(held) => {
                let deferred = self
                    .ledger
                    .defer(&alert.id, holder, held.until, &held.reason)
                    .await
                    .map_err(nothing_sent)?;
                // Not deferred: the lease lapsed under this worker and another took the alert.
                return Ok(if deferred {
                    Dispatched::Deferred { until: held.until }
                } else {
                    Dispatched::InFlight
                });
            }
            Route::Sms(admitted) => Outgoing::Sms(admitted),
            Route::Operator => Outgoing::Operator(OperatorMessage::Alert(operator_body(alert))),
        };
        self.send(alert, holder, outgoing).await
    }

    /// Sends a closed group message: one message for the alerts it gathered, carrying the
    /// first in full. A silence of the whole rule made since they were gathered holds it too.
    async fn deliver_notice(
        &self,
        alert: &Alert,
        notice: &AlertEntry,
        holder: &ClaimToken,
    ) -> Result<Dispatched, Unsettled> {
        let nothing_sent = Unsettled::NothingSent;
        let now = self.clock.now();
        if let Some(silence) = self
            .silences
            .silencing(alert, now)
            .await
            .map_err(nothing_sent)?
        {
            let delivery = Delivery::Silenced {
                reason: silence.reason_for_alert(now),
            };
            self.settle(alert, &delivery).await.map_err(nothing_sent)?;
            return Ok(Dispatched::Delivered(delivery));
        }
        let mut sample = Vec::new();
        for id in notice.group.sample.iter().take(GROUP_SAMPLE) {
            // One expired (or deleted by hand) since is left out of the message, not waited for.
            if let Some(member) = self.ledger.entry(id).await.map_err(nothing_sent)? {
                sample.push(member);
            }
        }
        let message = OperatorMessage::Group(group_message(notice, &sample));
        self.send(alert, holder, Outgoing::Operator(message)).await
    }

    /// Marks a claimed alert `sending`, publishes it, and settles it with the provider's
    /// answer.
    async fn send(
        &self,
        alert: &Alert,
        holder: &ClaimToken,
        outgoing: Outgoing,
    ) -> Result<Dispatched, Unsettled> {
        let sms = match &outgoing {
            Outgoing::Sms(admitted) => Some(admitted),
            Outgoing::Operator(_) => None,
        };
        let sending_until = self.clock.now().plus_millis(millis(self.leases.sending));
        let marked = self
            .ledger
            .mark_sending(&alert.id, holder, sending_until)
            .await;
        if !marked.as_ref().is_ok_and(|marked| *marked) {
            // Whoever sends it next counts it in the day's budget again (the quotas count it
            // once per alert, so theirs stay: another worker may hold the alert already).
            if let Some(admitted) = sms
                && let Err(error) = self
                    .quotas
                    .give_back_budget(SmsBudget::Alerts, admitted.admitted_at.utc_day())
                    .await
            {
                tracing::warn!(alert_id = alert.id.as_str(), error = %ErrorChain(&error), "could not give back an unsent SMS's budget");
            }
            // Lost: the lease lapsed under this worker and another took the alert over.
            return marked
                .map(|_| Dispatched::InFlight)
                .map_err(Unsettled::NothingSent);
        }
        let published = match &outgoing {
            Outgoing::Sms(admitted) => {
                let text = sms::fit(
                    alert.text_in(admitted.locale.as_ref()),
                    usize::from(self.sms.max_segments),
                );
                self.notifier.send_sms(&admitted.phone, &text).await
            }
            Outgoing::Operator(message) => self.notifier.notify_operator(message).await,
        };
        // Charges follow sends: an SMS the provider refused or did not take counts nowhere (a
        // retry counts it again). Given back after the settle of a refusal, and before the
        // claim of one not taken is released.
        let not_sent = matches!(
            published,
            Err(PublishError::Refused { .. } | PublishError::NotSent(_))
        );
        let give_back = async {
            if let (true, Some(admitted)) = (not_sent, &sms) {
                self.release_sms(alert, admitted).await;
            }
        };
        let delivery = match published {
            Ok(message_id) => Delivery::Sent { message_id },
            Err(PublishError::Refused { reason }) => Delivery::Undeliverable { reason },
            Err(PublishError::Unanswered(error)) => Delivery::Unconfirmed {
                reason: ErrorChain(&PublishError::Unanswered(error)).to_string(),
            },
            Err(PublishError::NotSent(error)) => {
                give_back.await;
                return Err(Unsettled::NothingSent(error));
            }
        };
        self.settle(alert, &delivery)
            .await
            .map_err(Unsettled::Published)?;
        give_back.await;
        if let (Some(_), Delivery::Sent { message_id }) = (&sms, &delivery) {
            self.await_receipt(alert, message_id).await;
        }
        Ok(Dispatched::Delivered(delivery))
    }

    /// Links a sent SMS to its message id so its carrier receipt finds it, and applies a
    /// receipt that came first. The SMS is sent and settled either way: a failure here only
    /// leaves it `sent` without a receipt (counted once overdue, like one the carrier never
    /// answered).
    async fn await_receipt(&self, alert: &Alert, message_id: &str) {
        let now = self.clock.now();
        let due = now.plus_millis(millis(self.receipt_timeout));
        let linked = self.ledger.await_receipt(&alert.id, message_id, due).await;
        let applied = match linked {
            Ok(Some(early)) => self.ledger.apply_receipt(&alert.id, &early, now).await,
            Ok(None) => Ok(()),
            Err(error) => Err(error),
        };
        if let Err(error) = applied {
            tracing::warn!(alert_id = alert.id.as_str(), error = %ErrorChain(&error), "could not link a sent SMS to its receipt");
        }
    }

    async fn route(&self, alert: &Alert) -> Result<Route, PortError> {
        let (quiet_hours, expires_after_seconds) = match alert.action {
            Action::NotifyOperator { .. } => return self.route_operator(alert).await,
            Action::SmsUser {
                quiet_hours,
                expires_after_seconds,
            } => (quiet_hours, expires_after_seconds),
        };
        let profile = self.profiles.profile(alert.user).await?;
        let (phone, zone, locale) = match profile {
            None => {
                return Ok(undeliverable(format!(
                    "user {} has no phone number on file",
                    alert.user
                )));
            }
            Some(UserProfile {
                phone_verified: false,
                ..
            }) => {
                // The number stays out of the reason: reasons are logged.
                return Ok(undeliverable(format!(
                    "user {}'s phone number is not verified",
                    alert.user
                )));
            }
            Some(profile) => (profile.phone, profile.time_zone, profile.locale),
        };
        let now = self.clock.now();
        let expires_at = alert
            .fired_at
            .plus_seconds(u64::from(expires_after_seconds));
        if now > expires_at {
            return Ok(Route::Settle(Delivery::Expired {
                reason: format!(
                    "not sent: its rule keeps an SMS worth sending for {expires_after_seconds} s \
                     after it fires, and this one could not go out in that time"
                ),
            }));
        }
        if quiet_hours == QuietHoursPolicy::Defer
            && let Some(held) = self.manners.held(zone.as_ref(), now)
        {
            if held.until > expires_at {
                return Ok(Route::Settle(Delivery::Expired {
                    reason: format!(
                        "not sent: {}, which end after the SMS stops being worth sending \
                         ({expires_after_seconds} s after it fired)",
                        held.reason
                    ),
                }));
            }
            return Ok(Route::Defer(held));
        }
        let local_day = self.manners.local_day(zone.as_ref(), now);
        let admission = self
            .sms
            .admit(
                self.quotas.as_ref(),
                (alert.user, local_day),
                &phone,
                &alert.id,
                now,
            )
            .await?;
        match admission {
            SmsAdmission::Admitted => Ok(Route::Sms(AdmittedSms {
                phone,
                admitted_at: now,
                local_day,
                locale: locale.or_else(|| self.manners.default_locale.clone()),
            })),
            SmsAdmission::OverCap(reason) => Ok(Route::Settle(Delivery::Suppressed { reason })),
            SmsAdmission::BudgetSpent { day, reason } => {
                self.report_budget_exhausted(alert, day).await?;
                Ok(Route::Settle(Delivery::Suppressed { reason }))
            }
        }
    }

    /// An operator alert goes out unless its rule has published its cap this hour. Cuba's own
    /// notices are not counted (there is one per day or per capped rule and hour).
    async fn route_operator(&self, alert: &Alert) -> Result<Route, PortError> {
        if RESERVED_RULE_IDS.contains(&alert.rule_id.as_str()) {
            return Ok(Route::Operator);
        }
        // Before the cap: a silenced alert spends none of the rule's hour.
        let now = self.clock.now();
        if let Some(silence) = self.silences.silencing(alert, now).await? {
            return Ok(Route::Settle(Delivery::Silenced {
                reason: silence.reason_for_alert(now),
            }));
        }
        // A grouping rule publishes one message per interval, so its cap is not needed.
        if let Action::NotifyOperator {
            severity,
            grouping: Some(grouping),
        } = alert.action
        {
            return self
                .gather(alert, grouping, severity)
                .await
                .map(Route::Settle);
        }
        let hour = self.clock.now().0 / HOUR_MILLIS;
        let limit = &self.operators;
        let cap = limit.per_rule_per_hour;
        if !limit.is_capped(&alert.rule_id, hour) {
            if limit.quotas.take(&alert.rule_id, hour, cap).await? {
                return Ok(Route::Operator);
            }
            // Remembered only once the notice is out: a failure here retries both.
            self.report_operator_cap(alert, hour).await?;
            limit.remember_capped(&alert.rule_id, hour);
        }
        Ok(Route::Settle(Delivery::Suppressed {
            reason: format!(
                "rule {} published its cap of {cap} operator alerts this hour; recorded, not published",
                alert.rule_id
            ),
        }))
    }

    /// Gathers an operator alert into its rule's open group message for this interval: the
    /// interval's first message while it is open, a later one after it went out.
    async fn gather(
        &self,
        alert: &Alert,
        grouping: Grouping,
        severity: Severity,
    ) -> Result<Delivery, PortError> {
        let now = self.clock.now();
        let slot = grouping.slot(now);
        let mut opening = None;
        for generation in 0..MAX_NOTICES_PER_SLOT {
            let id = AlertId::group_notice(&alert.rule_id, slot, generation);
            let mut found = self.ledger.entry(&id).await?;
            if found.is_none() && opening.is_none() {
                opening = Some(self.opening_groups.lock().await);
                found = self.ledger.entry(&id).await?;
            }
            let (due, kept) = match found {
                Some(open) if open.status == AlertStatus::Deferred => {
                    (open.deliver_at.unwrap_or(now), open.group.sample.len())
                }
                // Going out or gone: the alert joins the next one.
                Some(_) => continue,
                None => {
                    let quiet_before = generation == 0
                        && match slot.checked_sub(1) {
                            Some(previous) => {
                                let previous = AlertId::group_notice(&alert.rule_id, previous, 0);
                                self.ledger.entry(&previous).await?.is_none()
                            }
                            None => true,
                        };
                    (grouping.due(slot, generation, now, quiet_before), 0)
                }
            };
            let notice = GroupNotice {
                id,
                rule_id: alert.rule_id.clone(),
                severity,
                grouping,
                opened_at: now,
                due,
            };
            let sample = if kept < GROUP_SAMPLE { GROUP_SAMPLE } else { 0 };
            if self.ledger.gather(&notice, alert, sample).await? {
                return Ok(Delivery::Grouped { notice: notice.id });
            }
        }
        Err(PortError::unavailable_because(
            "alert ledger",
            format!(
                "rule {}'s group messages of this interval all went out while this alert was \
                 gathered; it is retried",
                alert.rule_id
            ),
        ))
    }

    /// Tells the operators, once per rule and hour (the notice's alert id), that the rule's
    /// further operator alerts this hour are recorded, not published.
    async fn report_operator_cap(&self, alert: &Alert, hour: u64) -> Result<(), PortError> {
        let rule_id = RuleId::parse(OPERATOR_CAP_RULE)
            .map_err(|e| PortError::corrupt_from("the operator cap rule id", e))?;
        let resumes = (hour + 1) % 24;
        let notice = Alert {
            trace: None,
            id: AlertId::operator_cap(&alert.rule_id, hour),
            rule_id,
            user: alert.user,
            event_ids: alert.event_ids.clone(),
            action: Action::NotifyOperator {
                severity: Severity::Warning,
                grouping: None,
            },
            text: format!(
                "Rule {} published its cap of {} operator alerts this hour: its further alerts are \
                 recorded as suppressed (the admin UI lists them) until {resumes:02}:00 UTC.",
                alert.rule_id, self.operators.per_rule_per_hour
            ),
            translations: Translations::new(),
            fired_at: self.clock.now(),
        };
        // Not recursive: Cuba's own notices are not capped.
        Box::pin(self.dispatch(&notice)).await.map(|_| ())
    }

    /// Gives back what an SMS that was not sent counted. A give-back that fails leaves the SMS
    /// counted: the limits err on the side of sending less.
    async fn release_sms(&self, alert: &Alert, admitted: &AdmittedSms) {
        if let Err(error) = self
            .sms
            .release(
                self.quotas.as_ref(),
                (alert.user, admitted.local_day),
                &admitted.phone,
                &alert.id,
                admitted.admitted_at,
            )
            .await
        {
            tracing::warn!(alert_id = alert.id.as_str(), error = %ErrorChain(&error), "could not give back an unsent SMS's count");
        }
    }

    /// Tells the operators, once per day, that SMS are being suppressed. Sent before the SMS
    /// that crossed the budget is settled, so a failure here retries both.
    async fn report_budget_exhausted(&self, alert: &Alert, day: u64) -> Result<(), PortError> {
        let rule_id = RuleId::parse(SMS_BUDGET_RULE)
            .map_err(|e| PortError::corrupt_from("the budget rule id", e))?;
        let notice = Alert {
            trace: None,
            id: AlertId::budget_exhausted(day),
            rule_id,
            user: alert.user,
            event_ids: alert.event_ids.clone(),
            action: Action::NotifyOperator {
                severity: Severity::Critical,
                grouping: None,
            },
            text: format!(
                "The daily budget of {} SMS is spent: further SMS are suppressed until 00:00 UTC.",
                self.sms.daily_budget
            ),
            translations: Translations::new(),
            fired_at: self.clock.now(),
        };
        // Not recursive: an operator alert never reaches the budget.
        Box::pin(self.dispatch(&notice)).await.map(|_| ())
    }

    /// Settles, trying again briefly: a publish that happened must not be left looking unsent.
    async fn settle(&self, alert: &Alert, delivery: &Delivery) -> Result<(), PortError> {
        let mut attempt = 1;
        loop {
            match self
                .ledger
                .settle(&alert.id, delivery, self.clock.now())
                .await
            {
                Ok(()) => {
                    // The trace too: a sweeper settling the alert runs outside the trigger's span.
                    tracing::info!(alert_id = alert.id.as_str(), rule_id = %alert.rule_id, user = %alert.user, trace_id = alert.trace.as_ref().map(|t| tracing::field::display(t.root())), outcome = ?delivery, "alert settled");
                    return Ok(());
                }
                Err(error) if attempt >= SETTLE_ATTEMPTS => return Err(error),
                Err(error) => {
                    tracing::warn!(alert_id = alert.id.as_str(), attempt, error = %ErrorChain(&error), "settling the alert failed; trying again");
                    tokio::time::sleep(SETTLE_BACKOFF * attempt).await;
                    attempt += 1;
                }
            }
        }
    }
}

fn undeliverable(reason: String) -> Route {
    Route::Settle(Delivery::Undeliverable { reason })
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn operator_body(alert: &Alert) -> OperatorAlert {
    let (status, silent_since, firing_since) = alert.id.condition_fields();
    let severity = match alert.action {
        Action::NotifyOperator { severity, .. } => severity,
        Action::SmsUser { .. } => Severity::Info,
    };
    OperatorAlert {
        alert_id: alert.id.clone(),
        rule_id: alert.rule_id.clone(),
        severity,
        user: alert.user,
        event_ids: alert.event_ids.clone(),
        text: alert.text.clone(),
        fired_at: alert.fired_at,
        status,
        silent_since,
        firing_since,
    }
}

/// What one sweep of stuck alerts did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    /// Unsettled alerts past their lease that the sweep found (deferred SMS and group messages
    /// coming due are counted in `released` and `groups_sent`, not here: they are on time).
    pub stuck: usize,
    /// Of those, delivered (or settled) now.
    pub settled: usize,
    /// Of those, settled `unconfirmed` (publishing began and was never recorded).
    pub unconfirmed: usize,
    /// Of those and the due deferred SMS, still unsettled (the retry failed or another worker
    /// holds them).
    pub remaining: usize,
    /// Deferred SMS whose quiet hours ended, handed on: sent, settled, or held again.
    pub released: usize,
    /// Group messages that came due, published (or settled).
    pub groups_sent: usize,
    /// Sent SMS whose carrier receipt is overdue (each counted by one sweep).
    pub receipts_overdue: usize,
}

/// How long after an SMS is sent its carrier receipt counts as overdue, unless configured.
/// Most arrive within seconds; carriers may take up to 72 hours.
pub const DEFAULT_SMS_RECEIPT_TIMEOUT: Duration = Duration::from_secs(3600);

/// Pages of `batch` alerts one sweep may take on: quiet hours end for a whole zone at once,
/// and the sweep is what sends those SMS.
pub const SWEEP_PAGES: usize = 5;

/// Alerts a sweep delivers at once.
pub const SWEEP_CONCURRENCY: usize = 8;

/// Re-drives alerts stuck `pending` past their lease (their worker died, or gave up after the
/// source's retries), settles those stuck `sending` as `unconfirmed`, and sends deferred SMS
/// that came due. Runs on a schedule.
#[derive(Clone)]
pub struct AlertSweeper {
    pub dispatcher: AlertDispatcher,
    /// The most alerts one page of a sweep takes on.
    pub batch: usize,
}

impl AlertSweeper {
    pub async fn sweep(&self) -> Result<SweepReport, PortError> {
        let mut report = SweepReport::default();
        for _ in 0..SWEEP_PAGES {
            let now = self.dispatcher.clock.now();
            let page = self.dispatcher.ledger.stuck(now, self.batch).await?;
            let remaining_before = report.remaining;
            for chunk in page.chunks(SWEEP_CONCURRENCY) {
                let outcomes = join_all(
                    chunk
                        .iter()
                        .map(|e| trace::in_span(redrive_span(e), self.dispatcher.redrive(e))),
                )
                .await;
                for (entry, outcome) in chunk.iter().zip(outcomes) {
                    report.count(entry, outcome);
                }
            }
            // A short page was the last; a page nothing moved on would come back the same.
            let stalled = report.remaining - remaining_before == page.len();
            if page.len() < self.batch || stalled {
                break;
            }
        }
        let now = self.dispatcher.clock.now();
        let overdue = self
            .dispatcher
            .ledger
            .overdue_receipts(now, self.batch)
            .await?;
        for entry in &overdue {
            tracing::warn!(
                alert_id = entry.alert_id.as_str(),
                "no carrier receipt for a sent SMS"
            );
        }
        report.receipts_overdue = overdue.len();
        Ok(report)
    }
}

/// The span an alert is re-driven in: what the sweeper logs while sending it names the alert
/// and the trace of the request that caused it, and in AWS the span is a segment of that trace
/// (`trace`, read by `cuba_lambda::xray`), its AWS calls (the claim, the publish) its subsegments.
fn redrive_span(entry: &AlertEntry) -> tracing::Span {
    tracing::info_span!(
        "alert_redrive",
        alert_id = entry.alert_id.as_str(),
        user = %entry.user,
        rule_id = %entry.rule_id,
        event_id = entry.event_ids.first().map(tracing::field::display),
        trace_id = entry.trace.as_ref().map(|t| tracing::field::display(t.root())),
        trace = entry.trace.as_ref().map(tracing::field::display),
        { trace::STATUS_FIELD } = tracing::field::Empty,
    )
}

impl SweepReport {
    fn count(&mut self, entry: &AlertEntry, outcome: Result<Dispatched, PortError>) {
        let id = entry.alert_id.as_str();
        let due = entry.status == AlertStatus::Deferred;
        let group = due && entry.is_group_notice();
        if !due {
            self.stuck += 1;
        }
        match outcome {
            Ok(Dispatched::InFlight) => self.remaining += 1,
            Err(error) => {
                tracing::warn!(alert_id = id, error = %ErrorChain(&error), "re-driving an alert failed");
                self.remaining += 1;
            }
            Ok(_) if group => self.groups_sent += 1,
            Ok(_) if due => self.released += 1,
            Ok(Dispatched::Delivered(Delivery::Unconfirmed { reason })) => {
                tracing::warn!(alert_id = id, %reason, "stuck alert settled unconfirmed");
                self.unconfirmed += 1;
                self.settled += 1;
            }
            Ok(
                Dispatched::Delivered(_) | Dispatched::AlreadySettled | Dispatched::Deferred { .. },
            ) => self.settled += 1,
        }
    }
}
