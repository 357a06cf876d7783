//! Silences: an operator pauses a rule's operator alerts (all of them, or one user's) until a
//! time, with a reason, during an incident or a maintenance. A silenced alert is still fired,
//! claimed and recorded, as `silenced` with the silence's id, so the console shows what the rule
//! would have said; it is never published. The rule keeps running (disabling it would also stop
//! recording), and the silence stops applying by itself when it ends. A recurring silence (a
//! maintenance window) applies for the same span every day or every week, from its start until
//! it ends.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::delivery::alert::Alert;
use crate::model::cache::TtlCache;
use crate::model::domain::{Millis, UserId};
use crate::model::ports::PortError;
use crate::rules::RuleId;

/// Silences kept at once (active, pending, and those ended within [`KEPT_AFTER_END`]): they
/// share one item, which stays far under DynamoDB's 400 KB.
pub const MAX_SILENCES: usize = 500;
/// How long a silence stays listed after it ended.
pub const KEPT_AFTER_END: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest a silence may last: a forgotten one must end by itself.
pub const MAX_SILENCE: Duration = Duration::from_secs(30 * 24 * 3600);
/// The longest a recurring silence may keep recurring.
pub const MAX_RECURRING_SILENCE: Duration = Duration::from_secs(180 * 24 * 3600);
/// The longest reason.
pub const MAX_REASON_CHARS: usize = 500;

/// A silence's id: a UUID as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SilenceId(String);

impl SilenceId {
    pub fn new_random() -> Self {
        SilenceId(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SilenceId {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        uuid::Uuid::parse_str(&text)
            .map(|id| SilenceId(id.to_string()))
            .map_err(|_| "a silence id is a UUID".to_owned())
    }
}

impl From<SilenceId> for String {
    fn from(id: SilenceId) -> String {
        id.0
    }
}

/// How often a recurring silence's window comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Every {
    Day,
    Week,
}

impl Every {
    fn millis(self) -> u64 {
        match self {
            Every::Day => 24 * 3600 * 1000,
            Every::Week => 7 * 24 * 3600 * 1000,
        }
    }
}

/// A maintenance window: the silence applies for `window_minutes` from its start, and again
/// every day or week after, until it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurrence {
    pub every: Every,
    pub window_minutes: u32,
}

impl Recurrence {
    fn window_millis(self) -> u64 {
        u64::from(self.window_minutes) * 60_000
    }
}

/// One silence, as stored and listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: SilenceId,
    /// The rule whose operator alerts it silences.
    pub rule_id: RuleId,
    /// Only this user's alerts (all users' when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
    pub starts_at: Millis,
    /// When it stops for good (for a recurring one, its last window ends by then).
    pub ends_at: Millis,
    /// Applies in a window every day or week from `starts_at` (always, from start to end,
    /// when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<Recurrence>,
    pub reason: String,
    /// The admin who created it.
    pub created_by: String,
    pub created_at: Millis,
    /// The admin who ended it early, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
}

/// Where a silence stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceState {
    /// Starts later.
    Pending,
    Active,
    Expired,
}

impl Silence {
    pub fn state(&self, at: Millis) -> SilenceState {
        // Ended first: a pending silence ended early ends before it would have started.
        if self.ends_at <= at {
            SilenceState::Expired
        } else if at < self.starts_at {
            SilenceState::Pending
        } else {
            match self.repeat {
                Some(r) if (at.0 - self.starts_at.0) % r.every.millis() >= r.window_millis() => {
                    SilenceState::Pending
                }
                _ => SilenceState::Active,
            }
        }
    }

    /// When the window applying at `at` ends (the silence's end, for one that does not recur).
    pub fn window_end(&self, at: Millis) -> Millis {
        match self.repeat {
            Some(r) if at >= self.starts_at => {
                let period = r.every.millis();
                let opened = self.starts_at.0 + (at.0 - self.starts_at.0) / period * period;
                Millis(opened + r.window_millis()).min(self.ends_at)
            }
            _ => self.ends_at,
        }
    }

    /// When its next window opens after `at`, if one does before it ends.
    pub fn next_window(&self, at: Millis) -> Option<Millis> {
        let next = match self.repeat {
            _ if at < self.starts_at => self.starts_at,
            Some(r) => {
                let period = r.every.millis();
                Millis(self.starts_at.0 + ((at.0 - self.starts_at.0) / period + 1) * period)
            }
            None => return None,
        };
        (next < self.ends_at).then_some(next)
    }

    /// True when it silences an alert of `rule` for `user` at `at`.
    pub fn silences(&self, rule: &RuleId, user: UserId, at: Millis) -> bool {
        self.state(at) == SilenceState::Active
            && &self.rule_id == rule
            && self.user.is_none_or(|only| only == user)
    }

    /// Why an alert it silences at `at` was not sent, as the ledger records it.
    pub fn reason_for_alert(&self, at: Millis) -> String {
        let until = self.window_end(at);
        let until =
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(until.0) * 1_000_000)
                .ok()
                .and_then(|at| {
                    at.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_else(|| until.0.to_string());
        format!(
            "silenced by {} until {until} (silence {}): {}",
            self.created_by,
            self.id.as_str(),
            self.reason
        )
    }

    /// True when the silence ended long enough before `at` to be dropped from the list.
    pub fn is_past_keeping(&self, at: Millis) -> bool {
        self.ends_at.plus_millis(KEPT_AFTER_END.as_millis() as u64) <= at
    }
}

/// Why a silence was not created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceRefused {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{MAX_SILENCES} silences are kept already; end or let some expire first")]
    TooMany,
}

/// A silence as an admin asks for it, before it is checked and given an id.
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceRequest {
    pub rule_id: RuleId,
    pub user: Option<UserId>,
    /// Now when absent.
    pub starts_at: Option<Millis>,
    pub ends_at: Millis,
    pub repeat: Option<Recurrence>,
    pub reason: String,
}

impl SilenceRequest {
    /// The silence `by` asks for at `now`, if it is one Cuba keeps: it ends after it starts and
    /// after now, within [`MAX_SILENCE`] of its start ([`MAX_RECURRING_SILENCE`] when it recurs,
    /// its window shorter than its period), and gives a reason.
    pub fn silence(self, by: &str, now: Millis) -> Result<Silence, SilenceRefused> {
        let invalid = |field, message: &str| SilenceRefused::Invalid {
            field,
            message: message.to_owned(),
        };
        let starts_at = self.starts_at.unwrap_or(now).max(now);
        if self.ends_at <= starts_at {
            return Err(invalid(
                "ends_at",
                "a silence must end after it starts (and after now)",
            ));
        }
        match self.repeat {
            None if self.ends_at.0 - starts_at.0 > MAX_SILENCE.as_millis() as u64 => {
                return Err(invalid("ends_at", "a silence lasts at most 30 days"));
            }
            Some(_) if self.ends_at.0 - starts_at.0 > MAX_RECURRING_SILENCE.as_millis() as u64 => {
                return Err(invalid(
                    "ends_at",
                    "a recurring silence recurs for at most 180 days",
                ));
            }
            Some(r) if r.window_minutes == 0 || r.window_millis() >= r.every.millis() => {
                return Err(invalid(
                    "window_minutes",
                    match r.every {
                        Every::Day => "a daily window lasts 1 to 1439 minutes",
                        Every::Week => "a weekly window lasts 1 to 10079 minutes",
                    },
                ));
            }
            _ => {}
        }
        let reason = self.reason.trim();
        if reason.is_empty() {
            return Err(invalid("reason", "say why the alerts are silenced"));
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(invalid("reason", "a reason has at most 500 characters"));
        }
        Ok(Silence {
            id: SilenceId::new_random(),
            rule_id: self.rule_id,
            user: self.user,
            starts_at,
            ends_at: self.ends_at,
            repeat: self.repeat,
            reason: reason.to_owned(),
            created_by: by.to_owned(),
            created_at: now,
            ended_by: None,
        })
    }
}

/// What a store keeping `kept` drops to take one more silence at `now`: those past keeping.
/// Refused when [`MAX_SILENCES`] would still be kept without room for it.
pub fn make_room<'a>(
    kept: impl IntoIterator<Item = &'a Silence>,
    now: Millis,
) -> Result<Vec<SilenceId>, SilenceRefused> {
    let (dropped, staying): (Vec<&Silence>, Vec<&Silence>) =
        kept.into_iter().partition(|s| s.is_past_keeping(now));
    if staying.len() >= MAX_SILENCES {
        return Err(SilenceRefused::TooMany);
    }
    Ok(dropped.into_iter().map(|s| s.id.clone()).collect())
}

/// Where silences are kept.
#[async_trait]
pub trait SilenceStore: Send + Sync {
    /// Every silence kept, in no particular order.
    async fn all(&self) -> Result<Vec<Silence>, PortError>;

    /// Adds `silence`, and drops those past keeping at `now`; refused when [`MAX_SILENCES`]
    /// would be kept.
    async fn create(&self, silence: &Silence, now: Millis) -> Result<(), CreateSilenceError>;

    /// Ends the silence `id` at `at` (if it had not ended yet), recording who ended it; the
    /// silence as it is then, or `None` when there is no such silence.
    async fn end(&self, id: &SilenceId, at: Millis, by: &str)
    -> Result<Option<Silence>, PortError>;
}

#[derive(Debug, thiserror::Error)]
pub enum CreateSilenceError {
    #[error(transparent)]
    Refused(#[from] SilenceRefused),
    #[error(transparent)]
    Port(#[from] PortError),
}

/// The silences the dispatcher applies, re-read at most once per `ttl`: a new or ended silence
/// takes effect everywhere within it.
pub struct SilenceSource {
    store: Arc<dyn SilenceStore>,
    cache: TtlCache<Vec<Silence>>,
}

impl SilenceSource {
    pub fn new(store: Arc<dyn SilenceStore>, ttl: Duration) -> Self {
        SilenceSource {
            store,
            cache: TtlCache::new(ttl),
        }
    }

    /// The silence that silences `alert` at `at`, if any.
    pub async fn silencing(&self, alert: &Alert, at: Millis) -> Result<Option<Silence>, PortError> {
        let silences = self
            .cache
            .get("silence", || async { self.store.all().await.map(Arc::new) })
            .await?;
        Ok(silences
            .iter()
            .find(|s| s.silences(&alert.rule_id, alert.user, at))
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = Millis(1_750_000_000_000);

    fn rule(id: &str) -> RuleId {
        RuleId::parse(id).unwrap()
    }

    fn request(ends_in_seconds: u64) -> SilenceRequest {
        SilenceRequest {
            rule_id: rule("bill-paid-no-feedback"),
            user: None,
            starts_at: None,
            ends_at: NOW.plus_seconds(ends_in_seconds),
            repeat: None,
            reason: " maintenance of the payments provider ".into(),
        }
    }

    #[test]
    fn a_silence_applies_to_its_rule_and_user_while_it_runs() {
        let all = request(3600).silence("ops@cube.test", NOW).unwrap();
        assert_eq!(all.reason, "maintenance of the payments provider");
        let one = Silence {
            user: Some(UserId(7)),
            ..all.clone()
        };
        let paid = rule("bill-paid-no-feedback");
        assert!(all.silences(&paid, UserId(1), NOW));
        assert!(!all.silences(&rule("other"), UserId(1), NOW));
        assert!(one.silences(&paid, UserId(7), NOW.plus_seconds(10)));
        assert!(!one.silences(&paid, UserId(8), NOW.plus_seconds(10)));
        assert!(
            !all.silences(&paid, UserId(1), NOW.plus_seconds(3600)),
            "ended"
        );
        assert_eq!(all.state(NOW.plus_seconds(3600)), SilenceState::Expired);
        let later = SilenceRequest {
            starts_at: Some(NOW.plus_seconds(60)),
            ..request(120)
        }
        .silence("ops@cube.test", NOW)
        .unwrap();
        assert_eq!(later.state(NOW), SilenceState::Pending);
        assert!(!later.silences(&paid, UserId(1), NOW));
        assert!(later.silences(&paid, UserId(1), NOW.plus_seconds(60)));
        let ended_before_it_began = Silence {
            ends_at: NOW,
            ..later
        };
        assert_eq!(ended_before_it_began.state(NOW), SilenceState::Expired);
        assert!(!ended_before_it_began.silences(&paid, UserId(1), NOW.plus_seconds(60)));
    }

    #[test]
    fn a_silence_must_end_in_the_future_within_30_days_and_give_a_reason() {
        let field = |r: Result<Silence, SilenceRefused>| match r {
            Err(SilenceRefused::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(request(0).silence("a", NOW)), "ends_at");
        assert_eq!(field(request(31 * 24 * 3600).silence("a", NOW)), "ends_at");
        let blank = SilenceRequest {
            reason: "  ".into(),
            ..request(60)
        };
        assert_eq!(field(blank.silence("a", NOW)), "reason");
        assert!(request(30 * 24 * 3600).silence("a", NOW).is_ok());
        let daily = |window_minutes: u32, days: u64| SilenceRequest {
            repeat: Some(Recurrence {
                every: Every::Day,
                window_minutes,
            }),
            ..request(days * 24 * 3600)
        };
        assert!(daily(60, 180).silence("a", NOW).is_ok());
        assert_eq!(field(daily(60, 181).silence("a", NOW)), "ends_at");
        assert_eq!(field(daily(1440, 10).silence("a", NOW)), "window_minutes");
        assert_eq!(field(daily(0, 10).silence("a", NOW)), "window_minutes");
    }

    #[test]
    fn a_recurring_silence_applies_in_its_window_every_day_until_it_ends() {
        let nightly = SilenceRequest {
            starts_at: Some(NOW.plus_seconds(3600)),
            repeat: Some(Recurrence {
                every: Every::Day,
                window_minutes: 30,
            }),
            ..request(10 * 24 * 3600)
        }
        .silence("ops@cube.test", NOW)
        .unwrap();
        let paid = rule("bill-paid-no-feedback");
        let day = 24 * 3600;
        assert_eq!(nightly.state(NOW), SilenceState::Pending);
        assert_eq!(nightly.next_window(NOW), Some(NOW.plus_seconds(3600)));
        for (after, silenced) in [
            (3600, true),
            (3600 + 29 * 60, true),
            (3600 + 30 * 60, false),
            (3600 + day - 1, false),
            (3600 + day, true),
            (3600 + 5 * day + 600, true),
            (3600 + 5 * day + 1800, false),
        ] {
            let at = NOW.plus_seconds(after);
            assert_eq!(
                nightly.silences(&paid, UserId(1), at),
                silenced,
                "{after} s on"
            );
        }
        let between = NOW.plus_seconds(3600 + 3600);
        assert_eq!(nightly.state(between), SilenceState::Pending);
        assert_eq!(
            nightly.next_window(between),
            Some(NOW.plus_seconds(3600 + day))
        );
        let inside = NOW.plus_seconds(3600 + 2 * day + 60);
        assert_eq!(
            nightly.window_end(inside),
            NOW.plus_seconds(3600 + 2 * day + 1800)
        );
        assert!(nightly.reason_for_alert(inside).contains("until "));
        // Its end is the last word: no window after it.
        let ends = nightly.ends_at;
        assert_eq!(nightly.state(ends), SilenceState::Expired);
        assert_eq!(nightly.next_window(ends.minus_seconds(3600)), None);
        let cut_short = Silence {
            ends_at: NOW.plus_seconds(3600 + 600),
            ..nightly
        };
        assert_eq!(
            cut_short.window_end(NOW.plus_seconds(3600)),
            cut_short.ends_at
        );
    }
}
