//! Configuration: the environment variables the functions read, and what they make (the initial
//! rules and schemas, the cache time-to-live). Lambda entrypoints read the process environment;
//! the local runner passes the environment the template declares.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use cuba_aws::partition_keys::ListingShards;
use cuba_aws::{Retention, SmsMaxPrice};
use cuba_core::delivery::alerting::DEFAULT_SMS_RECEIPT_TIMEOUT;
use cuba_core::delivery::limits::{DEFAULT_OPERATOR_ALERTS_PER_RULE_PER_HOUR, SmsPolicy};
use cuba_core::delivery::quiet_hours::{QuietHours, SmsManners};
use cuba_core::evaluation::batch_reads::DEFAULT_USER_READS_PER_BATCH;
use cuba_core::intake::MAX_BATCH_EVENTS;
use cuba_core::intake::rate_limit::RateLimit;
use cuba_core::model::document::{DocumentId, InvalidDocument};
use cuba_core::model::locality::{Locale, TimeZoneName};
use cuba_core::model::ports::PortError;
use cuba_core::rules::{DEFAULT_RULES_JSON, RuleSet};
use cuba_core::schemas::{DEFAULT_SCHEMAS, Schema, SchemaSet, documents_of_file};

/// The environment variables the functions read.
pub mod env {
    pub const EVENTS_TABLE: &str = "CUBA_EVENTS_TABLE";
    /// The event pages table: the listings across everyone and by web session.
    pub const EVENT_PAGES_TABLE: &str = "CUBA_EVENT_PAGES_TABLE";
    pub const PROFILES_TABLE: &str = "CUBA_PROFILES_TABLE";
    pub const RULE_STATE_TABLE: &str = "CUBA_RULE_STATE_TABLE";
    pub const ALERTS_TABLE: &str = "CUBA_ALERTS_TABLE";
    pub const ABSENCE_QUEUE_URL: &str = "CUBA_ABSENCE_QUEUE_URL";
    /// The stream mapping's on-failure queue, which a redrive reads (the rules function).
    pub const STREAM_FAILURE_QUEUE_URL: &str = "CUBA_STREAM_FAILURE_QUEUE_URL";
    pub const OPERATOR_TOPIC_ARN: &str = "CUBA_OPERATOR_TOPIC_ARN";
    pub const TOKEN_SECRET: &str = "CUBA_TOKEN_SECRET";
    /// The roots the functions' AWS calls trust: `amazon` (Amazon Trust Services', built in;
    /// the default) or `system` (the system's certificate store).
    pub const AWS_TRUST_STORE: &str = "CUBA_AWS_TRUST_STORE";
    pub const TOKEN_ISSUER: &str = "CUBA_TOKEN_ISSUER";
    pub const TOKEN_AUDIENCE: &str = "CUBA_TOKEN_AUDIENCE";
    pub const RULES_FILE: &str = "CUBA_RULES_FILE";
    pub const RULES_TABLE: &str = "CUBA_RULES_TABLE";
    pub const ADMIN_TOKEN_SECRET: &str = "CUBA_ADMIN_TOKEN_SECRET";
    /// `hs256` (tokens signed with the key ring; the default) or `oidc` (an identity
    /// provider's RS256/ES256 tokens, checked against its published keys).
    pub const TOKEN_MODE: &str = "CUBA_TOKEN_MODE";
    /// The pre-traffic hook: the new versions it checks (qualified ARNs).
    pub const INGEST_VERSION: &str = "CUBA_INGEST_VERSION";
    pub const RULES_VERSION: &str = "CUBA_RULES_VERSION";
    /// In `oidc` mode: where the provider's keys are (unset: from its discovery document).
    pub const TOKEN_JWKS_URL: &str = "CUBA_TOKEN_JWKS_URL";
    /// In `oidc` mode: the claim naming the user (default `sub`).
    pub const TOKEN_USER_CLAIM: &str = "CUBA_TOKEN_USER_CLAIM";
    pub const ADMIN_TOKEN_MODE: &str = "CUBA_ADMIN_TOKEN_MODE";
    pub const ADMIN_TOKEN_ISSUER: &str = "CUBA_ADMIN_TOKEN_ISSUER";
    pub const ADMIN_TOKEN_AUDIENCE: &str = "CUBA_ADMIN_TOKEN_AUDIENCE";
    pub const ADMIN_TOKEN_JWKS_URL: &str = "CUBA_ADMIN_TOKEN_JWKS_URL";
    /// In `oidc` mode: the claim listing an admin token's groups, and the group that is admin.
    pub const ADMIN_GROUP_CLAIM: &str = "CUBA_ADMIN_GROUP_CLAIM";
    pub const ADMIN_GROUP: &str = "CUBA_ADMIN_GROUP";
    /// In `oidc` mode: the least time between two key fetches that tokens naming an unknown
    /// key cause.
    pub const OIDC_UNKNOWN_KEY_SECONDS: &str = "CUBA_OIDC_UNKNOWN_KEY_SECONDS";
    /// Deployed: the Secrets Manager secrets holding the token key rings (instead of the keys).
    pub const TOKEN_SECRET_ARN: &str = "CUBA_TOKEN_SECRET_ARN";
    pub const ADMIN_TOKEN_SECRET_ARN: &str = "CUBA_ADMIN_TOKEN_SECRET_ARN";
    pub const SECRETS_CACHE_SECONDS: &str = "CUBA_SECRETS_CACHE_SECONDS";
    pub const RULES_CACHE_SECONDS: &str = "CUBA_RULES_CACHE_SECONDS";
    pub const SCHEMAS_TABLE: &str = "CUBA_SCHEMAS_TABLE";
    pub const SCHEMAS_FILE: &str = "CUBA_SCHEMAS_FILE";
    pub const ERRORS_TABLE: &str = "CUBA_ERRORS_TABLE";
    pub const SMS_MAX_SEGMENTS: &str = "CUBA_SMS_MAX_SEGMENTS";
    pub const SMS_PER_USER: &str = "CUBA_SMS_PER_USER_PER_DAY";
    pub const SMS_PER_PHONE: &str = "CUBA_SMS_PER_PHONE_PER_DAY";
    pub const SMS_DAILY_BUDGET: &str = "CUBA_SMS_DAILY_BUDGET";
    pub const SMS_CODES_PER_PHONE: &str = "CUBA_SMS_CODES_PER_PHONE_PER_DAY";
    pub const SMS_CODE_DAILY_BUDGET: &str = "CUBA_SMS_CODE_DAILY_BUDGET";
    pub const EVENT_RETENTION_DAYS: &str = "CUBA_EVENT_RETENTION_DAYS";
    pub const ERROR_RETENTION_DAYS: &str = "CUBA_ERROR_RETENTION_DAYS";
    pub const ALERT_RETENTION_DAYS: &str = "CUBA_ALERT_RETENTION_DAYS";
    pub const LISTING_SHARDS: &str = "CUBA_LISTING_SHARDS";
    pub const OPERATOR_ALERTS_PER_RULE_PER_HOUR: &str = "CUBA_OPERATOR_ALERTS_PER_RULE_PER_HOUR";
    pub const USER_EVENTS_PER_SECOND: &str = "CUBA_USER_EVENTS_PER_SECOND";
    pub const USER_EVENT_BURST: &str = "CUBA_USER_EVENT_BURST";
    pub const ABSENCE_SETTLE_SECONDS: &str = "CUBA_ABSENCE_SETTLE_SECONDS";
    pub const USER_READS_PER_BATCH: &str = "CUBA_USER_READS_PER_BATCH";
    /// `HH:MM-HH:MM` on the user's clock, or `off`.
    pub const QUIET_HOURS: &str = "CUBA_QUIET_HOURS";
    pub const DEFAULT_TIME_ZONE: &str = "CUBA_DEFAULT_TIME_ZONE";
    /// The language of users who named none (unset: the rules' `default` text).
    pub const DEFAULT_LOCALE: &str = "CUBA_DEFAULT_LOCALE";
    /// US dollars SNS may spend on one SMS at most (`AWS.SNS.SMS.MaxPrice`); unset: no cap.
    pub const SMS_MAX_PRICE_USD: &str = "CUBA_SMS_MAX_PRICE_USD";
    /// Minutes after sending an SMS its carrier receipt counts as overdue.
    pub const SMS_RECEIPT_TIMEOUT_MINUTES: &str = "CUBA_SMS_RECEIPT_TIMEOUT_MINUTES";
    /// The role SNS writes SMS delivery status logs with (the sweeper turns the logs on).
    pub const SMS_DELIVERY_STATUS_ROLE_ARN: &str = "CUBA_SMS_DELIVERY_STATUS_ROLE_ARN";
}

/// How fast one user may send events, unless configured: a quarter of a partition's write
/// limit at most (an event writes its item and its local index entry, 2 units, to the user's
/// partition: 200 of 1,000 a second).
pub const DEFAULT_USER_EVENTS_PER_SECOND: u32 = 100;
pub const DEFAULT_USER_EVENT_BURST: u32 = 200;

/// How long the tables keep what they hold, in days, unless configured.
pub const DEFAULT_EVENT_RETENTION_DAYS: u32 = 400;
pub const DEFAULT_ERROR_RETENTION_DAYS: u32 = 90;
pub const DEFAULT_ALERT_RETENTION_DAYS: u32 = 400;

/// A saved rule change reaches every function instance within this long, unless
/// `CUBA_RULES_CACHE_SECONDS` says otherwise.
pub const DEFAULT_RULES_CACHE: Duration = Duration::from_secs(30);
/// How long after its due time an absence check is decided, unless
/// `CUBA_ABSENCE_SETTLE_SECONDS` says otherwise: longer than the ingest function's timeout
/// (15 s), so every event received by the due time is stored by then.
pub const DEFAULT_ABSENCE_SETTLE: Duration = Duration::from_secs(30);
/// How often a warm function re-reads its token keys from Secrets Manager.
pub const DEFAULT_SECRETS_CACHE: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("set {0} (a Secrets Manager secret's ARN) or {1} (the key ring itself)")]
    MissingSecret(&'static str, &'static str),
    #[error("cannot read the secret that {variable} names")]
    Secret {
        variable: &'static str,
        #[source]
        source: PortError,
    },
    #[error("environment variable {0} must be {1}")]
    Invalid(&'static str, &'static str),
    #[error("cannot read rules file {path}")]
    RulesFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rules file {path} is invalid")]
    InvalidRules {
        path: String,
        #[source]
        source: InvalidDocument,
    },
    #[error("schemas file {path}: {message}")]
    InvalidSchemas { path: String, message: String },
    #[error("cannot read the system's TLS certificate roots (to fetch the token keys)")]
    CertificateRoots(#[source] std::io::Error),
    #[error("cannot build the AWS calls' TLS configuration: {0}")]
    AwsTls(String),
    #[error("cannot seed the {what} store")]
    Seeding {
        what: &'static str,
        #[source]
        source: PortError,
    },
}

/// Finds a configuration value by environment variable name.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Reads configuration through a lookup function.
pub struct Settings<'a> {
    lookup: Lookup<'a>,
}

impl<'a> Settings<'a> {
    pub fn new(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Settings {
            lookup: Box::new(lookup),
        }
    }

    pub fn from_process_env() -> Settings<'static> {
        Settings::new(|name| std::env::var(name).ok())
    }

    /// Settings holding just `vars` (tests, tools).
    pub fn from_pairs(vars: &[(&str, &str)]) -> Settings<'static> {
        let vars: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::new(move |name| vars.get(name).cloned())
    }

    pub fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    /// The text of `CUBA_RULES_FILE` when set, else of the built-in default rules, with its name.
    fn rules_text(&self) -> Result<(String, String), ConfigError> {
        match self.optional(env::RULES_FILE) {
            None => Ok(("(built-in default)".into(), DEFAULT_RULES_JSON.to_owned())),
            Some(path) => {
                let text =
                    std::fs::read_to_string(&path).map_err(|source| ConfigError::RulesFile {
                        path: PathBuf::from(&path),
                        source,
                    })?;
                Ok((path, text))
            }
        }
    }

    /// `CUBA_RULES_FILE` when set, else the built-in default rules: the documents that seed the
    /// rule store, keyed by id, and the rules they make (in force until the store is seeded).
    pub fn initial_rules(&self) -> Result<(Vec<(DocumentId, Value)>, RuleSet), ConfigError> {
        let (path, text) = self.rules_text()?;
        let rules = RuleSet::from_json_str(&text)
            .map_err(|source| ConfigError::InvalidRules { path, source })?;
        // The text parsed as a rule set just above, so it is a document with a `rules` array.
        let document: Value = serde_json::from_str(&text).unwrap_or_default();
        let items = document["rules"].as_array().cloned().unwrap_or_default();
        let documents = rules
            .all()
            .iter()
            .map(|r| r.id.clone())
            .zip(items)
            .collect();
        Ok((documents, rules))
    }

    /// A duration in (possibly fractional) seconds from `name`, or `default` when unset.
    fn seconds(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .ok_or(ConfigError::Invalid(name, "a number of seconds")),
        }
    }

    /// `CUBA_SECRETS_CACHE_SECONDS`: how long token keys read from Secrets Manager are kept.
    pub fn secrets_cache_ttl(&self) -> Result<Duration, ConfigError> {
        self.seconds(env::SECRETS_CACHE_SECONDS, DEFAULT_SECRETS_CACHE)
    }

    /// In `oidc` mode: how often tokens naming a key not seen yet may fetch the keys again.
    #[cfg(feature = "http")]
    pub fn oidc_unknown_key_after(&self) -> Result<Duration, ConfigError> {
        self.seconds(
            env::OIDC_UNKNOWN_KEY_SECONDS,
            cuba_web::auth::KeyRefresh::default().unknown_key_after,
        )
    }

    /// How long a function keeps rules and schemas before re-reading the stores.
    pub fn rules_cache_ttl(&self) -> Result<Duration, ConfigError> {
        self.seconds(env::RULES_CACHE_SECONDS, DEFAULT_RULES_CACHE)
    }

    /// How long after its due time the absence-check function posts a check for deciding.
    pub fn absence_settle(&self) -> Result<Duration, ConfigError> {
        self.seconds(env::ABSENCE_SETTLE_SECONDS, DEFAULT_ABSENCE_SETTLE)
    }

    /// The SMS limits: each variable, when set, replaces its default.
    pub fn sms_policy(&self) -> Result<SmsPolicy, ConfigError> {
        let defaults = SmsPolicy::default();
        Ok(SmsPolicy {
            max_segments: self.number(
                env::SMS_MAX_SEGMENTS,
                defaults.max_segments,
                1..=10,
                "a whole number from 1 to 10",
            )?,
            per_user: self.number(
                env::SMS_PER_USER,
                defaults.per_user,
                0..=1000,
                "a whole number from 0 to 1000",
            )?,
            per_phone: self.number(
                env::SMS_PER_PHONE,
                defaults.per_phone,
                0..=1000,
                "a whole number from 0 to 1000",
            )?,
            daily_budget: self.number(
                env::SMS_DAILY_BUDGET,
                defaults.daily_budget,
                0..=u32::MAX,
                "a whole number",
            )?,
            codes_per_phone: self.number(
                env::SMS_CODES_PER_PHONE,
                defaults.codes_per_phone,
                0..=1000,
                "a whole number from 0 to 1000",
            )?,
            code_daily_budget: self.number(
                env::SMS_CODE_DAILY_BUDGET,
                defaults.code_daily_budget,
                0..=u32::MAX,
                "a whole number",
            )?,
        })
    }

    /// How long items of one table are kept: the variable `name`, 1 to 3650 days.
    pub fn retention(&self, name: &'static str, default: u32) -> Result<Retention, ConfigError> {
        Ok(Retention {
            days: self.number(
                name,
                default,
                1..=3650,
                "a whole number of days from 1 to 3650",
            )?,
        })
    }

    /// How many write shards the listing indexes spread over: `CUBA_LISTING_SHARDS`, 1 to 256
    /// (32 when unset). Writers and readers must agree, so every function gets the same value.
    pub fn listing_shards(&self) -> Result<ListingShards, ConfigError> {
        let count = self.number(
            env::LISTING_SHARDS,
            ListingShards::DEFAULT.count(),
            1..=ListingShards::MAX,
            "a whole number of shards from 1 to 256",
        )?;
        ListingShards::new(count).ok_or(ConfigError::Invalid(
            env::LISTING_SHARDS,
            "a whole number of shards from 1 to 256",
        ))
    }

    /// `CUBA_SMS_RECEIPT_TIMEOUT_MINUTES` (1 to 4320, 72 hours; default 60).
    pub fn sms_receipt_timeout(&self) -> Result<Duration, ConfigError> {
        let minutes: u32 = self.number(
            env::SMS_RECEIPT_TIMEOUT_MINUTES,
            (DEFAULT_SMS_RECEIPT_TIMEOUT.as_secs() / 60) as u32,
            1..=4320,
            "a whole number of minutes from 1 to 4320 (72 hours)",
        )?;
        Ok(Duration::from_secs(u64::from(minutes) * 60))
    }

    /// `CUBA_SMS_MAX_PRICE_USD`: the most SNS may spend on one SMS, if set.
    pub fn sms_max_price(&self) -> Result<Option<SmsMaxPrice>, ConfigError> {
        self.optional(env::SMS_MAX_PRICE_USD)
            .map(|text| {
                SmsMaxPrice::parse(&text).map_err(|_| {
                    ConfigError::Invalid(
                        env::SMS_MAX_PRICE_USD,
                        "a positive number of US dollars up to 10, e.g. 0.50",
                    )
                })
            })
            .transpose()
    }

    /// When SMS that may wait are held: `CUBA_QUIET_HOURS` (`HH:MM-HH:MM`, or `off`, the
    /// default when unset) on the clock of the user's zone, or of `CUBA_DEFAULT_TIME_ZONE`
    /// (`UTC` when unset) for users who named none; and `CUBA_DEFAULT_LOCALE`, the language
    /// of users who named none (unset: each rule's `default` text).
    pub fn sms_manners(&self) -> Result<SmsManners, ConfigError> {
        let quiet = match self.optional(env::QUIET_HOURS).as_deref().map(str::trim) {
            None | Some("off") => None,
            Some(window) => Some(QuietHours::parse(window).map_err(|_| {
                ConfigError::Invalid(
                    env::QUIET_HOURS,
                    "HH:MM-HH:MM (for example 21:00-08:00) or off",
                )
            })?),
        };
        let default_zone = match self.optional(env::DEFAULT_TIME_ZONE) {
            None => TimeZoneName::utc(),
            Some(name) => TimeZoneName::parse(&name).map_err(|_| {
                ConfigError::Invalid(
                    env::DEFAULT_TIME_ZONE,
                    "an IANA time zone name such as America/Sao_Paulo or UTC",
                )
            })?,
        };
        let default_locale = match self.optional(env::DEFAULT_LOCALE) {
            None => None,
            Some(tag) => Some(Locale::parse(&tag).map_err(|_| {
                ConfigError::Invalid(
                    env::DEFAULT_LOCALE,
                    "a BCP 47 language tag such as en or pt-BR",
                )
            })?),
        };
        Ok(SmsManners {
            quiet,
            default_zone,
            default_locale,
        })
    }

    /// Operator alerts one rule may publish per hour: `CUBA_OPERATOR_ALERTS_PER_RULE_PER_HOUR`,
    /// 1 to 100000 (60 when unset).
    pub fn operator_alerts_per_rule_per_hour(&self) -> Result<u32, ConfigError> {
        self.number(
            env::OPERATOR_ALERTS_PER_RULE_PER_HOUR,
            DEFAULT_OPERATOR_ALERTS_PER_RULE_PER_HOUR,
            1..=100_000,
            "a whole number of alerts from 1 to 100000",
        )
    }

    /// Events one user's records may read in one stream batch before the rest of them wait for
    /// the retry: `CUBA_USER_READS_PER_BATCH`, 1 to 10000000 (40000 when unset).
    pub fn user_reads_per_batch(&self) -> Result<usize, ConfigError> {
        self.number(
            env::USER_READS_PER_BATCH,
            DEFAULT_USER_READS_PER_BATCH,
            1..=10_000_000,
            "a whole number of events from 1 to 10000000",
        )
    }

    /// How fast one user may send events: `CUBA_USER_EVENTS_PER_SECOND` (100 when unset) with
    /// bursts of `CUBA_USER_EVENT_BURST` (200; at least one full batch).
    pub fn user_rate(&self) -> Result<RateLimit, ConfigError> {
        let per_second = self.number(
            env::USER_EVENTS_PER_SECOND,
            DEFAULT_USER_EVENTS_PER_SECOND,
            1..=100_000,
            "a whole number of events from 1 to 100000",
        )?;
        let burst = self.number(
            env::USER_EVENT_BURST,
            DEFAULT_USER_EVENT_BURST,
            1..=1_000_000,
            "a whole number of events from 100 (one full batch) to 1000000",
        )?;
        RateLimit::new(per_second, burst, MAX_BATCH_EVENTS as u32).map_err(|_| {
            ConfigError::Invalid(
                env::USER_EVENT_BURST,
                "a whole number of events from 100 (one full batch) to 1000000",
            )
        })
    }

    fn number<T>(
        &self,
        name: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
        expected: &'static str,
    ) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<T>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or(ConfigError::Invalid(name, expected)),
        }
    }

    /// `CUBA_SCHEMAS_FILE` when set, else the shipped registry: the documents that seed the
    /// schema store, and the registry they make (in force until the store is first seeded).
    /// Each document is compiled once, here.
    pub fn initial_schemas(&self) -> Result<(Vec<(DocumentId, Value)>, SchemaSet), ConfigError> {
        let (path, text) = match self.optional(env::SCHEMAS_FILE) {
            None => ("(built-in default)".to_owned(), DEFAULT_SCHEMAS.to_owned()),
            Some(path) => {
                let text =
                    std::fs::read_to_string(&path).map_err(|e| ConfigError::InvalidSchemas {
                        path: path.clone(),
                        message: format!("cannot read it: {e}"),
                    })?;
                (path, text)
            }
        };
        let invalid = |message: String| ConfigError::InvalidSchemas {
            path: path.clone(),
            message,
        };
        let mut documents = Vec::new();
        let mut in_force = Vec::new();
        for document in documents_of_file(&text).map_err(invalid)? {
            let schema = Schema::from_json(&document, 0).map_err(|e| invalid(e.to_string()))?;
            let id = DocumentId::parse(&schema.id).map_err(|e| invalid(e.to_string()))?;
            if document.get("enabled") != Some(&Value::Bool(false)) {
                in_force.push(schema);
            }
            documents.push((id, document));
        }
        Ok((documents, SchemaSet::new(in_force)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Settings<'static> {
        Settings::from_pairs(vars)
    }

    #[test]
    fn a_missing_variable_is_named() {
        let error = settings(&[]).required(env::EVENTS_TABLE).unwrap_err();
        assert_eq!(
            error.to_string(),
            "environment variable CUBA_EVENTS_TABLE is not set"
        );
        let error = settings(&[(env::EVENTS_TABLE, "")])
            .required(env::EVENTS_TABLE)
            .unwrap_err();
        assert!(matches!(error, ConfigError::Missing(env::EVENTS_TABLE)));
    }

    #[test]
    fn sms_limits_default_and_are_checked() {
        assert_eq!(settings(&[]).sms_policy().ok(), Some(SmsPolicy::default()));
        let policy = settings(&[
            (env::SMS_MAX_SEGMENTS, "1"),
            (env::SMS_PER_USER, "0"),
            (env::SMS_PER_PHONE, "3"),
            (env::SMS_DAILY_BUDGET, "100"),
            (env::SMS_CODES_PER_PHONE, "2"),
            (env::SMS_CODE_DAILY_BUDGET, "50"),
        ])
        .sms_policy()
        .ok();
        assert_eq!(
            policy,
            Some(SmsPolicy {
                max_segments: 1,
                per_user: 0,
                per_phone: 3,
                daily_budget: 100,
                codes_per_phone: 2,
                code_daily_budget: 50,
            })
        );
        for (name, bad) in [
            (env::SMS_MAX_SEGMENTS, "0"),
            (env::SMS_MAX_SEGMENTS, "11"),
            (env::SMS_PER_USER, "-1"),
            (env::SMS_PER_PHONE, "1001"),
            (env::SMS_DAILY_BUDGET, "lots"),
            (env::SMS_CODES_PER_PHONE, "1001"),
            (env::SMS_CODE_DAILY_BUDGET, "-5"),
        ] {
            let error = settings(&[(name, bad)]).sms_policy().unwrap_err();
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("environment variable {name} must be")),
                "{error}"
            );
        }
    }

    #[test]
    fn listing_shards_default_and_are_checked() {
        assert_eq!(
            settings(&[]).listing_shards().ok(),
            Some(ListingShards::DEFAULT)
        );
        assert_eq!(
            settings(&[(env::LISTING_SHARDS, "4")])
                .listing_shards()
                .ok(),
            ListingShards::new(4)
        );
        for bad in ["0", "257", "many"] {
            assert!(matches!(
                settings(&[(env::LISTING_SHARDS, bad)]).listing_shards(),
                Err(ConfigError::Invalid(env::LISTING_SHARDS, _))
            ));
        }
    }

    #[test]
    fn retention_defaults_and_is_checked() {
        assert_eq!(
            settings(&[]).retention(env::EVENT_RETENTION_DAYS, 400).ok(),
            Some(Retention { days: 400 })
        );
        assert_eq!(
            settings(&[(env::ERROR_RETENTION_DAYS, "30")])
                .retention(env::ERROR_RETENTION_DAYS, 90)
                .ok(),
            Some(Retention { days: 30 })
        );
        for bad in ["0", "3651", "a year"] {
            assert!(matches!(
                settings(&[(env::ALERT_RETENTION_DAYS, bad)])
                    .retention(env::ALERT_RETENTION_DAYS, 400),
                Err(ConfigError::Invalid(env::ALERT_RETENTION_DAYS, _))
            ));
        }
        assert_eq!(
            Retention { days: 2 }.expires_at(cuba_core::model::domain::Millis(1_000_500)),
            1_000 + 2 * 24 * 3600
        );
    }

    #[test]
    fn a_bad_cache_ttl_is_refused() {
        for bad in ["-1", "soon", "NaN", "inf"] {
            assert!(matches!(
                settings(&[(env::RULES_CACHE_SECONDS, bad)]).rules_cache_ttl(),
                Err(ConfigError::Invalid(env::RULES_CACHE_SECONDS, _))
            ));
        }
        assert_eq!(
            settings(&[(env::RULES_CACHE_SECONDS, "0.5")])
                .rules_cache_ttl()
                .unwrap(),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn an_unreadable_rules_file_keeps_its_cause() {
        let error = settings(&[(env::RULES_FILE, "/nonexistent/rules.json")])
            .initial_rules()
            .unwrap_err();
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert!(
            source.is_some_and(|s| s.contains("No such file")),
            "{error:?}"
        );
    }

    #[test]
    fn the_default_rules_seed_as_their_own_documents() {
        let (documents, rules) = settings(&[]).initial_rules().unwrap();
        assert_eq!(rules.all().len(), documents.len());
        let ids: Vec<&str> = documents.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids.len(), 3);
        for (id, document) in &documents {
            assert_eq!(document["id"], id.as_str());
        }
    }
}
