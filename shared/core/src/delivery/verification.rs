//! Phone verification: SMS actions only reach a number its user proved is theirs, by entering a
//! six-digit code texted to it. Codes are stored hashed, expire after ten minutes, allow five
//! attempts, and a user gets at most three per hour, so the code SMS itself cannot be used to
//! pump messages or guess codes.

use std::sync::Arc;

use serde::Serialize;

use crate::delivery::alert::AlertId;
use crate::delivery::limits::{SmsAdmission, SmsPolicy};
use crate::delivery::ports::{ProfileStore, PublishError, SmsQuotas};
use crate::model::clock::Clock;
use crate::model::domain::{
    Millis, PendingCode, PhoneNumber, ProfileUpdate, UserId, UserProfile, VerificationCode,
};
use crate::model::locality::{Locale, TimeZoneName};
use crate::model::ports::PortError;

pub const CODES_PER_HOUR: usize = 3;
pub const ATTEMPTS_PER_CODE: u8 = 5;
pub const CODE_TTL_SECONDS: u64 = 600;
const HOUR_MILLIS: u64 = 3600 * 1000;

/// Hashes a code with a server-side key, bound to the user and number it was sent for.
pub trait CodeHasher: Send + Sync {
    fn hash(&self, user: UserId, phone: &PhoneNumber, code: &VerificationCode) -> String;
}

/// Sends the code SMS. (Separate from [`crate::delivery::ports::Notifier`] so that the ingest function
/// needs nothing of the operator topic.)
#[async_trait::async_trait]
pub trait CodeSender: Send + Sync {
    async fn send_code(&self, phone: &PhoneNumber, text: &str) -> Result<String, PublishError>;
}

#[async_trait::async_trait]
impl<N: crate::delivery::ports::Notifier + ?Sized> CodeSender for N {
    async fn send_code(&self, phone: &PhoneNumber, text: &str) -> Result<String, PublishError> {
        self.send_sms(phone, text).await
    }
}

/// Where a user's phone number stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhoneStatus {
    pub user: UserId,
    pub phone: PhoneNumber,
    pub verified: bool,
    /// While a code is outstanding: when it expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_expires_at: Option<Millis>,
    /// `null` when the deployment's default applies.
    pub time_zone: Option<TimeZoneName>,
    pub locale: Option<Locale>,
}

impl PhoneStatus {
    fn of(profile: &UserProfile) -> Self {
        PhoneStatus {
            user: profile.user,
            phone: profile.phone.clone(),
            verified: profile.phone_verified,
            code_expires_at: profile.pending_code.as_ref().map(|c| c.expires_at),
            time_zone: profile.time_zone.clone(),
            locale: profile.locale.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerificationError {
    #[error(
        "{CODES_PER_HOUR} codes were sent in the last hour; try again in {retry_after_seconds} s"
    )]
    TooManyCodes { retry_after_seconds: u64 },
    #[error("no verification code is outstanding: set the phone number first")]
    NoPendingCode,
    #[error("the code expired; set the phone number again for a new one")]
    CodeExpired,
    #[error(
        "the code was entered wrong {ATTEMPTS_PER_CODE} times; set the phone number again for a new one"
    )]
    TooManyAttempts,
    #[error("wrong code; {attempts_left} attempts left")]
    WrongCode { attempts_left: u8 },
    #[error("the SMS provider refused the number: {reason}")]
    NumberRefused { reason: String },
    #[error("the profile was changed by another request; try again")]
    Conflict,
    #[error("{0}; no code was sent")]
    SmsLimit(String),
    /// The day's budget of code SMS for all accounts is spent: every user's code requests are
    /// refused until 00:00 UTC, which the operators must hear of.
    #[error("{0}; no code was sent")]
    CodeBudgetSpent(String),
    #[error(transparent)]
    Port(#[from] PortError),
}

#[derive(Clone)]
pub struct PhoneVerifier {
    pub profiles: Arc<dyn ProfileStore>,
    pub sender: Arc<dyn CodeSender>,
    pub hasher: Arc<dyn CodeHasher>,
    /// Code SMS count against a cap per number and a daily budget of their own, so many accounts
    /// naming one victim's number can neither make Cube text it without end nor spend what the
    /// victim's own alerts need.
    pub quotas: Arc<dyn SmsQuotas>,
    pub sms: SmsPolicy,
    pub clock: Arc<dyn Clock>,
}

impl PhoneVerifier {
    /// Stores the update's phone as the user's number and texts it a code, unless it is
    /// already their verified number (then only the time zone and locale may change, and
    /// nothing is sent).
    pub async fn set_phone(
        &self,
        user: UserId,
        update: ProfileUpdate,
    ) -> Result<PhoneStatus, VerificationError> {
        let now = self.clock.now();
        let current = self.profiles.profile(user).await?;
        let ProfileUpdate {
            phone,
            time_zone,
            locale,
        } = update;
        if let Some(profile) = &current
            && profile.phone == phone
            && profile.phone_verified
        {
            let mut kept = profile.clone();
            kept.time_zone = time_zone.applied_to(profile.time_zone.as_ref());
            kept.locale = locale.applied_to(profile.locale.as_ref());
            if kept == *profile {
                return Ok(PhoneStatus::of(profile));
            }
            kept.updated_at = now;
            if !self.profiles.save(&kept, profile.version).await? {
                return Err(VerificationError::Conflict);
            }
            return Ok(PhoneStatus::of(&kept));
        }
        let mut codes_sent: Vec<Millis> = current
            .as_ref()
            .map(|p| p.codes_sent.clone())
            .unwrap_or_default();
        codes_sent.retain(|at| at.0 + HOUR_MILLIS > now.0);
        if codes_sent.len() >= CODES_PER_HOUR {
            let oldest = codes_sent.iter().min().copied().unwrap_or(now);
            return Err(VerificationError::TooManyCodes {
                retry_after_seconds: (oldest.0 + HOUR_MILLIS)
                    .saturating_sub(now.0)
                    .div_ceil(1000),
            });
        }
        // The per-user limit of codes is the hourly one above; the number's is its code cap.
        let counted = AlertId::verification_code(user, now);
        match self
            .sms
            .admit_code(self.quotas.as_ref(), &phone, &counted, now)
            .await?
        {
            SmsAdmission::Admitted => {}
            SmsAdmission::OverCap(reason) => return Err(VerificationError::SmsLimit(reason)),
            SmsAdmission::BudgetSpent { reason, .. } => {
                return Err(VerificationError::CodeBudgetSpent(reason));
            }
        }
        codes_sent.push(now);
        let code = VerificationCode::random();
        let profile = UserProfile {
            user,
            phone: phone.clone(),
            updated_at: now,
            phone_verified: false,
            pending_code: Some(PendingCode {
                hash: self.hasher.hash(user, &phone, &code),
                expires_at: now.plus_seconds(CODE_TTL_SECONDS),
                attempts_left: ATTEMPTS_PER_CODE,
            }),
            codes_sent,
            time_zone: time_zone.applied_to(current.as_ref().and_then(|p| p.time_zone.as_ref())),
            locale: locale.applied_to(current.as_ref().and_then(|p| p.locale.as_ref())),
            version: 0,
        };
        let expected = current.as_ref().map_or(0, |p| p.version);
        // What is not sent is not charged: a request that lost the race for the profile, or
        // whose code the provider refused, gives its counts back.
        let release = || {
            self.sms
                .release_code(self.quotas.as_ref(), &phone, &counted, now)
        };
        if !self.profiles.save(&profile, expected).await? {
            release().await?;
            return Err(VerificationError::Conflict);
        }
        let text = format!(
            "Your Cube verification code is {}. It expires in {} minutes.",
            code.as_str(),
            CODE_TTL_SECONDS / 60
        );
        match self.sender.send_code(&phone, &text).await {
            Ok(_) => {}
            Err(PublishError::Refused { reason }) => {
                release().await?;
                return Err(VerificationError::NumberRefused { reason });
            }
            Err(PublishError::NotSent(error)) => {
                release().await?;
                return Err(error.into());
            }
            // The code may well arrive; asking for another one is the user's next step if not.
            Err(PublishError::Unanswered(error)) => {
                tracing::warn!(%user, error = %crate::model::ports::ErrorChain(&error), "verification code SMS unanswered");
            }
        }
        tracing::info!(%user, "verification code sent");
        Ok(PhoneStatus::of(&profile))
    }

    /// Checks a code the user entered against the outstanding one.
    pub async fn verify(
        &self,
        user: UserId,
        code: &VerificationCode,
    ) -> Result<PhoneStatus, VerificationError> {
        let now = self.clock.now();
        let Some(mut profile) = self.profiles.profile(user).await? else {
            return Err(VerificationError::NoPendingCode);
        };
        let Some(pending) = profile.pending_code.clone() else {
            if profile.phone_verified {
                return Ok(PhoneStatus::of(&profile));
            }
            return Err(VerificationError::NoPendingCode);
        };
        if pending.expires_at < now {
            return Err(VerificationError::CodeExpired);
        }
        if pending.attempts_left == 0 {
            return Err(VerificationError::TooManyAttempts);
        }
        // The attempt is spent before the code is compared, in one atomic step: guesses that
        // arrive together cannot share an attempt (a rewrite of the profile could not tell
        // two identical wrong guesses apart).
        let Some(attempts_left) = self.profiles.spend_attempt(user, &pending.hash).await? else {
            return Err(VerificationError::TooManyAttempts);
        };
        let matches = constant_time_eq(
            self.hasher.hash(user, &profile.phone, code).as_bytes(),
            pending.hash.as_bytes(),
        );
        if !matches {
            return Err(VerificationError::WrongCode { attempts_left });
        }
        let expected = profile.version;
        profile.phone_verified = true;
        profile.pending_code = None;
        profile.updated_at = now;
        if !self.profiles.save(&profile, expected).await? {
            return Err(VerificationError::Conflict);
        }
        Ok(PhoneStatus::of(&profile))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
