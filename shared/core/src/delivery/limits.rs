//! What Cuba may send, and how much: the SMS caps per user and per number, the daily budgets
//! (alerts and verification codes apart), and the cap on operator alerts per rule and hour.
//! Each is counted in a shared store through the delivery ports; a count for something that is
//! not sent is given back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::delivery::alert::AlertId;
use crate::delivery::ports::{OperatorQuotas, SmsBudget, SmsQuota, SmsQuotas};
use jiff::civil::Date;

use crate::model::domain::{Millis, PhoneNumber, UserId};
use crate::model::ports::PortError;
use crate::rules::RuleId;

/// Limits on SMS: what a client can make Cuba send, and how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsPolicy {
    /// Segments one SMS may take (counted the GSM-7 / UCS-2 way); longer text is cut.
    pub max_segments: u8,
    /// SMS per user and day of theirs (the date on their zone's clock).
    pub per_user: u32,
    /// SMS per phone number in any 24 hours, whichever users name it.
    pub per_phone: u32,
    /// Alert SMS per UTC day, all users together.
    pub daily_budget: u32,
    /// Verification codes per phone number in any 24 hours, whichever accounts ask.
    pub codes_per_phone: u32,
    /// Verification codes per UTC day, all accounts together (apart from `daily_budget`).
    pub code_daily_budget: u32,
}

impl Default for SmsPolicy {
    fn default() -> Self {
        SmsPolicy {
            max_segments: 2,
            per_user: 10,
            per_phone: 10,
            daily_budget: 5000,
            codes_per_phone: 5,
            code_daily_budget: 1000,
        }
    }
}

/// Whether one more SMS may go out, by [`SmsPolicy::admit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsAdmission {
    Admitted,
    /// Over the per-user or per-phone cap: the reason says which.
    OverCap(String),
    /// The budget of UTC day `day` is spent.
    BudgetSpent {
        day: u64,
        reason: String,
    },
}

impl SmsPolicy {
    /// Counts one alert SMS (`counted`, the key a retry counts under again) to `user`'s
    /// `phone` against the user's cap for `local_day` (the date on their clock) and the
    /// number's rolling 24-hour cap, then against the day's alert budget.
    pub async fn admit(
        &self,
        quotas: &dyn SmsQuotas,
        (user, local_day): (UserId, Date),
        phone: &PhoneNumber,
        counted: &AlertId,
        now: Millis,
    ) -> Result<SmsAdmission, PortError> {
        let caps = [
            (
                SmsQuota::UserDay(user, local_day),
                self.per_user,
                format!(
                    "this user already had {} SMS on {local_day} (their day)",
                    self.per_user
                ),
            ),
            (
                SmsQuota::Phone(phone.clone()),
                self.per_phone,
                format!(
                    "this phone number already had {} SMS in the last 24 hours",
                    self.per_phone
                ),
            ),
        ];
        admit(
            quotas,
            &caps,
            (SmsBudget::Alerts, self.daily_budget, "SMS"),
            counted,
            now,
        )
        .await
    }

    /// Counts one verification code SMS to `phone` against the codes' own cap per number and
    /// their own daily budget: never against what alerts to the number's owner need.
    pub async fn admit_code(
        &self,
        quotas: &dyn SmsQuotas,
        phone: &PhoneNumber,
        counted: &AlertId,
        now: Millis,
    ) -> Result<SmsAdmission, PortError> {
        let caps = [(
            SmsQuota::CodesTo(phone.clone()),
            self.codes_per_phone,
            format!(
                "this phone number already had {} verification codes in the last 24 hours",
                self.codes_per_phone
            ),
        )];
        admit(
            quotas,
            &caps,
            (
                SmsBudget::Codes,
                self.code_daily_budget,
                "verification codes",
            ),
            counted,
            now,
        )
        .await
    }

    /// Gives back what [`SmsPolicy::admit`] counted (at `admitted_at`) for an alert SMS that was
    /// not sent: one the provider refused, or did not take (its retry counts it again).
    pub async fn release(
        &self,
        quotas: &dyn SmsQuotas,
        (user, local_day): (UserId, Date),
        phone: &PhoneNumber,
        counted: &AlertId,
        admitted_at: Millis,
    ) -> Result<(), PortError> {
        quotas
            .give_back(&SmsQuota::UserDay(user, local_day), counted)
            .await?;
        quotas
            .give_back(&SmsQuota::Phone(phone.clone()), counted)
            .await?;
        quotas
            .give_back_budget(SmsBudget::Alerts, admitted_at.utc_day())
            .await
    }

    /// Gives back what [`SmsPolicy::admit_code`] counted (at `now`) for a code that will not be
    /// sent: a lost race or a refused publish charges nothing.
    pub async fn release_code(
        &self,
        quotas: &dyn SmsQuotas,
        phone: &PhoneNumber,
        counted: &AlertId,
        now: Millis,
    ) -> Result<(), PortError> {
        quotas
            .give_back(&SmsQuota::CodesTo(phone.clone()), counted)
            .await?;
        quotas
            .give_back_budget(SmsBudget::Codes, now.utc_day())
            .await
    }
}

/// Counts one SMS in each of `caps` (quota, cap, the reason a refusal gives), then in the
/// day's `budget` (which, its cap, what it counts). A refusal gives back what this call counted
/// before it, so an SMS that is not sent is charged nowhere.
async fn admit(
    quotas: &dyn SmsQuotas,
    caps: &[(SmsQuota, u32, String)],
    (budget, budget_cap, what): (SmsBudget, u32, &str),
    counted: &AlertId,
    now: Millis,
) -> Result<SmsAdmission, PortError> {
    for (taken, (quota, cap, refusal)) in caps.iter().enumerate() {
        if !quotas.take(quota, *cap, counted, now).await? {
            give_back(quotas, &caps[..taken], counted).await?;
            return Ok(SmsAdmission::OverCap(refusal.clone()));
        }
    }
    let day = now.utc_day();
    if !quotas.take_budget(budget, day, budget_cap).await? {
        give_back(quotas, caps, counted).await?;
        return Ok(SmsAdmission::BudgetSpent {
            day,
            reason: format!("the daily budget of {budget_cap} {what} is spent"),
        });
    }
    Ok(SmsAdmission::Admitted)
}

async fn give_back(
    quotas: &dyn SmsQuotas,
    caps: &[(SmsQuota, u32, String)],
    counted: &AlertId,
) -> Result<(), PortError> {
    for (quota, _, _) in caps {
        quotas.give_back(quota, counted).await?;
    }
    Ok(())
}

/// Operator alerts one rule may publish per hour (a clock hour, UTC), unless configured: no
/// rule can flood the operator topic; beyond it alerts are recorded `suppressed` and one notice
/// says so.
pub const DEFAULT_OPERATOR_ALERTS_PER_RULE_PER_HOUR: u32 = 60;

pub(crate) const HOUR_MILLIS: u64 = 3_600_000;

/// The cap on operator alerts per rule and hour, counted in a shared store; each instance
/// remembers the rules it found capped this hour, so a flooding rule costs the store one
/// refused count per instance, not one per alert.
#[derive(Clone)]
pub struct OperatorLimit {
    pub per_rule_per_hour: u32,
    pub quotas: Arc<dyn OperatorQuotas>,
    capped: Arc<Mutex<HashMap<RuleId, u64>>>,
}

impl OperatorLimit {
    pub fn new(per_rule_per_hour: u32, quotas: Arc<dyn OperatorQuotas>) -> Self {
        OperatorLimit {
            per_rule_per_hour,
            quotas,
            capped: Arc::default(),
        }
    }

    pub(crate) fn is_capped(&self, rule: &RuleId, hour: u64) -> bool {
        let capped = self.capped.lock().unwrap_or_else(|p| p.into_inner());
        capped.get(rule) == Some(&hour)
    }

    pub(crate) fn remember_capped(&self, rule: &RuleId, hour: u64) {
        let mut capped = self.capped.lock().unwrap_or_else(|p| p.into_inner());
        capped.retain(|_, at| *at >= hour);
        capped.insert(rule.clone(), hour);
    }
}
