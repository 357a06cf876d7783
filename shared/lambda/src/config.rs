//! Each function's configuration, typed and read once at a cold start. Reading goes on past a
//! bad variable, so one failed start names every missing or invalid variable at once instead of
//! one per deploy. Each function reads only the variables its own template entry sets.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;

use cuba_aws::partition_keys::ListingShards;
use cuba_aws::{Retention, SmsMaxPrice};
use cuba_core::delivery::limits::SmsPolicy;
use cuba_core::delivery::quiet_hours::SmsManners;
use cuba_core::model::document::{DocumentId, DocumentSet};
use cuba_core::rules::RuleSet;
use cuba_core::schemas::SchemaSet;

use crate::settings::{
    ConfigError, DEFAULT_ALERT_RETENTION_DAYS, DEFAULT_ERROR_RETENTION_DAYS,
    DEFAULT_EVENT_RETENTION_DAYS, Settings, env,
};

/// Every problem found in one function's configuration.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => f.write_str("the configuration is incomplete"),
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} problems", many.len())?;
                for (i, problem) in many.iter().enumerate() {
                    let separator = if i == 0 { ": " } else { "; " };
                    write!(f, "{separator}{problem}")?;
                    if let Some(cause) = std::error::Error::source(problem) {
                        write!(f, " ({cause})")?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigErrors {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.0.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

/// Reads through [`Settings`], keeping every problem: each read gives `None` after recording
/// why, so a configuration is assembled with `?` once everything has been read.
pub struct Reader<'s> {
    settings: &'s Settings<'s>,
    problems: Vec<ConfigError>,
}

impl<'s> Reader<'s> {
    /// The configuration `read` assembles, or every problem found on the way.
    pub fn read<T>(
        settings: &'s Settings<'s>,
        read: impl FnOnce(&mut Reader<'s>) -> Option<T>,
    ) -> Result<T, ConfigErrors> {
        let mut reader = Reader {
            settings,
            problems: Vec::new(),
        };
        let value = read(&mut reader);
        match value {
            Some(value) if reader.problems.is_empty() => Ok(value),
            _ => Err(ConfigErrors(reader.problems)),
        }
    }

    /// `result`'s value, or `None` with its error kept (once: several parts of a configuration
    /// read the same variable, such as the listing shards).
    fn take<T>(&mut self, result: Result<T, ConfigError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(problem) => {
                let text = problem.to_string();
                if !self.problems.iter().any(|p| p.to_string() == text) {
                    self.problems.push(problem);
                }
                None
            }
        }
    }

    fn required(&mut self, name: &'static str) -> Option<String> {
        let value = self.settings.required(name);
        self.take(value)
    }

    fn optional(&self, name: &str) -> Option<String> {
        self.settings.optional(name)
    }

    fn sms(&mut self) -> Option<SmsPolicy> {
        let value = self.settings.sms_policy();
        self.take(value)
    }

    fn rules_cache_ttl(&mut self) -> Option<Duration> {
        let value = self.settings.rules_cache_ttl();
        self.take(value)
    }
}

/// A table that is also listed across users: its name, how long it keeps items, and how many
/// shards its listing spreads over.
#[derive(Debug, Clone)]
pub struct ListedTable {
    pub name: String,
    pub retention: Retention,
    pub shards: ListingShards,
}

impl ListedTable {
    fn read(
        r: &mut Reader,
        table: &'static str,
        (retention, default_days): (&'static str, u32),
    ) -> Option<Self> {
        let name = r.required(table);
        let retention = r.settings.retention(retention, default_days);
        let retention = r.take(retention);
        let shards = r.settings.listing_shards();
        let shards = r.take(shards);
        Some(ListedTable {
            name: name?,
            retention: retention?,
            shards: shards?,
        })
    }

    fn events(r: &mut Reader) -> Option<Self> {
        Self::read(
            r,
            env::EVENTS_TABLE,
            (env::EVENT_RETENTION_DAYS, DEFAULT_EVENT_RETENTION_DAYS),
        )
    }

    fn errors(r: &mut Reader) -> Option<Self> {
        Self::read(
            r,
            env::ERRORS_TABLE,
            (env::ERROR_RETENTION_DAYS, DEFAULT_ERROR_RETENTION_DAYS),
        )
    }

    fn alerts(r: &mut Reader) -> Option<Self> {
        Self::read(
            r,
            env::ALERTS_TABLE,
            (env::ALERT_RETENTION_DAYS, DEFAULT_ALERT_RETENTION_DAYS),
        )
    }
}

/// Where alerts are recorded and sent, and the SMS limits.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub alerts: ListedTable,
    pub profiles_table: String,
    /// The rule-state table, which also holds the SMS quota counters.
    pub quotas_table: String,
    pub operator_topic_arn: String,
    pub sms: SmsPolicy,
    /// Operator alerts one rule may publish per hour.
    pub operator_alerts_per_rule_per_hour: u32,
    /// How long the silences are cached: a new or ended one applies everywhere within it (as a
    /// saved rule does).
    pub silences_ttl: Duration,
    /// When SMS that may wait are held.
    pub manners: SmsManners,
    pub sms_max_price: Option<SmsMaxPrice>,
    /// How long after sending an SMS its carrier receipt counts as overdue.
    pub receipt_timeout: Duration,
}

impl DeliveryConfig {
    fn read(r: &mut Reader) -> Option<Self> {
        let alerts = ListedTable::alerts(r);
        let profiles_table = r.required(env::PROFILES_TABLE);
        let quotas_table = r.required(env::RULE_STATE_TABLE);
        let operator_topic_arn = r.required(env::OPERATOR_TOPIC_ARN);
        let sms = r.sms();
        let operator_cap = r.settings.operator_alerts_per_rule_per_hour();
        let operator_cap = r.take(operator_cap);
        let silences_ttl = r.rules_cache_ttl();
        let manners = r.settings.sms_manners();
        let manners = r.take(manners);
        let sms_max_price = r.settings.sms_max_price();
        let sms_max_price = r.take(sms_max_price);
        let receipt_timeout = r.settings.sms_receipt_timeout();
        let receipt_timeout = r.take(receipt_timeout);
        Some(DeliveryConfig {
            receipt_timeout: receipt_timeout?,
            sms_max_price: sms_max_price?,
            manners: manners?,
            silences_ttl: silences_ttl?,
            alerts: alerts?,
            profiles_table: profiles_table?,
            quotas_table: quotas_table?,
            operator_topic_arn: operator_topic_arn?,
            sms: sms?,
            operator_alerts_per_rule_per_hour: operator_cap?,
        })
    }
}

/// A document store (rules or schemas) behind a cache, with what applies until it is seeded.
#[derive(Debug)]
pub struct DocumentsConfig<T> {
    pub table: String,
    pub initial: Arc<InitialDocuments<T>>,
    pub cache_ttl: Duration,
}

/// What seeds a document store, and what it makes.
type Initial<T> = (Vec<(DocumentId, Value)>, T);
/// The same, the set shared by the functions' document sources.
type Built<T> = (Vec<(DocumentId, Value)>, Arc<T>);

/// What seeds a document store, keyed by id, and the set it makes, in force until the store is
/// seeded. A configured file is read and checked at the cold start, so a bad one stops the
/// function there. The built-in defaults are built when first needed: compiling the shipped
/// schemas is about 1.3 ms of a cold process (the JSON Schema library's first use), and a
/// deployed stack's stores are seeded at its creation, so most processes never need them.
pub struct InitialDocuments<T> {
    built: OnceLock<Built<T>>,
    read: fn(&Settings) -> Result<Initial<T>, ConfigError>,
}

impl<T> fmt::Debug for InitialDocuments<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.built.get().is_some() {
            "built"
        } else {
            "the built-in defaults, not built yet"
        };
        f.debug_struct("InitialDocuments")
            .field("state", &state)
            .finish()
    }
}

impl<T: DocumentSet> InitialDocuments<T> {
    /// The documents `read` gives for `settings`: at once when `file` names a file, else (the
    /// built-in defaults) at the first need.
    fn new(
        settings: &Settings,
        file: &'static str,
        read: fn(&Settings) -> Result<Initial<T>, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let initial = InitialDocuments {
            built: OnceLock::new(),
            read,
        };
        if settings.optional(file).is_some() {
            let (documents, set) = read(settings)?;
            let _ = initial.built.set((documents, Arc::new(set)));
        }
        Ok(initial)
    }

    fn built(&self) -> Result<&Built<T>, ConfigError> {
        if let Some(built) = self.built.get() {
            return Ok(built);
        }
        // No file was named (that case was built at once): the built-in defaults.
        let (documents, set) = (self.read)(&Settings::new(|_| None))?;
        Ok(self.built.get_or_init(|| (documents, Arc::new(set))))
    }

    /// The documents that seed the store.
    pub fn documents(&self) -> Result<&[(DocumentId, Value)], ConfigError> {
        Ok(&self.built()?.0)
    }

    /// The set in force until the store is seeded. The built-in defaults always build (a unit
    /// test holds it); were they ever not to, nothing applies and the error is logged.
    pub fn unseeded(&self) -> Arc<T> {
        match self.built() {
            Ok((_, set)) => set.clone(),
            Err(error) => {
                tracing::error!(error = %cuba_core::model::ports::ErrorChain(&error), "the built-in {}s do not build", T::NOUN);
                Arc::new(T::assemble(Vec::new()))
            }
        }
    }
}

impl<T: DocumentSet> DocumentsConfig<T> {
    /// The store named by `table`, seeded with what `read` reads (`file` naming a file, or the
    /// built-in defaults).
    fn read(
        r: &mut Reader,
        table: &'static str,
        file: &'static str,
        read: fn(&Settings) -> Result<Initial<T>, ConfigError>,
    ) -> Option<Self> {
        let table = r.required(table);
        let initial = InitialDocuments::new(r.settings, file, read);
        let initial = r.take(initial);
        let cache_ttl = r.rules_cache_ttl();
        Some(DocumentsConfig {
            table: table?,
            initial: Arc::new(initial?),
            cache_ttl: cache_ttl?,
        })
    }
}

impl DocumentsConfig<RuleSet> {
    fn rules(r: &mut Reader) -> Option<Self> {
        Self::read(r, env::RULES_TABLE, env::RULES_FILE, |s| s.initial_rules())
    }
}

impl DocumentsConfig<SchemaSet> {
    fn schemas(r: &mut Reader) -> Option<Self> {
        Self::read(r, env::SCHEMAS_TABLE, env::SCHEMAS_FILE, |s| {
            s.initial_schemas()
        })
    }
}

/// The rules function: the events table's stream consumer.
#[derive(Debug)]
pub struct StreamConfig {
    pub events: ListedTable,
    /// Where the listings across everyone and by session are written, a page per batch.
    pub event_pages_table: String,
    pub errors: ListedTable,
    pub rule_state_table: String,
    pub absence_queue_url: String,
    pub delivery: DeliveryConfig,
    pub rules: DocumentsConfig<RuleSet>,
    pub schemas: DocumentsConfig<SchemaSet>,
    /// Where records whose retries ran out are sent, for a redrive (the rules function's only).
    pub failure_queue_url: Option<String>,
    /// Events one user's records may read in one batch ([`cuba_core::evaluation::batch_reads`]).
    pub user_reads_per_batch: usize,
}

impl StreamConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigErrors> {
        Reader::read(settings, Self::read)
    }

    fn read(r: &mut Reader) -> Option<Self> {
        let events = ListedTable::events(r);
        let event_pages_table = r.required(env::EVENT_PAGES_TABLE);
        let errors = ListedTable::errors(r);
        let rule_state_table = r.required(env::RULE_STATE_TABLE);
        let absence_queue_url = r.required(env::ABSENCE_QUEUE_URL);
        let delivery = DeliveryConfig::read(r);
        let rules = DocumentsConfig::rules(r);
        let schemas = DocumentsConfig::schemas(r);
        let failure_queue_url = r.optional(env::STREAM_FAILURE_QUEUE_URL);
        let user_reads_per_batch = r.settings.user_reads_per_batch();
        let user_reads_per_batch = r.take(user_reads_per_batch);
        Some(StreamConfig {
            failure_queue_url,
            user_reads_per_batch: user_reads_per_batch?,
            events: events?,
            event_pages_table: event_pages_table?,
            errors: errors?,
            rule_state_table: rule_state_table?,
            absence_queue_url: absence_queue_url?,
            delivery: delivery?,
            rules: rules?,
            schemas: schemas?,
        })
    }
}

/// The absence-check function: the delay queue's consumer.
#[derive(Debug, Clone)]
pub struct AbsenceConfig {
    pub events: ListedTable,
    pub absence_queue_url: String,
    /// How long after its due time a check is posted for deciding.
    pub settle: Duration,
}

impl AbsenceConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigErrors> {
        Reader::read(settings, |r| {
            let events = ListedTable::events(r);
            let absence_queue_url = r.required(env::ABSENCE_QUEUE_URL);
            let settle = r.settings.absence_settle();
            let settle = r.take(settle);
            Some(AbsenceConfig {
                events: events?,
                absence_queue_url: absence_queue_url?,
                settle: settle?,
            })
        })
    }
}

/// The sweeper function: finishes alerts whose worker died, and decides the heartbeat rules.
#[derive(Debug)]
pub struct SweeperConfig {
    pub delivery: DeliveryConfig,
    /// The rules, for the heartbeat rules it decides.
    pub rules: DocumentsConfig<RuleSet>,
    /// The role SNS writes SMS delivery status logs with; set: the sweeper turns the logs on
    /// for the account where nothing else did.
    pub delivery_status_role_arn: Option<String>,
}

impl SweeperConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigErrors> {
        Reader::read(settings, |r| {
            let delivery_status_role_arn = r.optional(env::SMS_DELIVERY_STATUS_ROLE_ARN);
            let delivery = DeliveryConfig::read(r);
            let rules = DocumentsConfig::rules(r);
            Some(SweeperConfig {
                delivery: delivery?,
                rules: rules?,
                delivery_status_role_arn,
            })
        })
    }
}

/// The receipts function: the alert ledger its receipts settle.
#[derive(Debug, Clone)]
pub struct ReceiptsConfig {
    pub alerts: ListedTable,
    /// The rule-state table, which holds the dashboard's per-minute tally.
    pub rule_state_table: String,
}

impl ReceiptsConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigErrors> {
        Reader::read(settings, |r| {
            let alerts = ListedTable::alerts(r);
            let rule_state_table = r.required(env::RULE_STATE_TABLE);
            Some(ReceiptsConfig {
                alerts: alerts?,
                rule_state_table: rule_state_table?,
            })
        })
    }
}

#[cfg(feature = "http")]
pub use http::{AdminConfig, IngestConfig, ProviderConfig, TokenKeys, TokenMode};

/// The store-seeding function: the rule and schema stores, and what seeds them.
#[derive(Debug)]
pub struct StoreSeedingConfig {
    pub rules: DocumentsConfig<RuleSet>,
    pub schemas: DocumentsConfig<SchemaSet>,
}

impl StoreSeedingConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigErrors> {
        Reader::read(settings, |r| {
            let rules = DocumentsConfig::rules(r);
            let schemas = DocumentsConfig::schemas(r);
            // The one function that needs the documents: built now, so a fault stops its start.
            for problem in [
                rules.as_ref().and_then(|c| c.initial.documents().err()),
                schemas.as_ref().and_then(|c| c.initial.documents().err()),
            ]
            .into_iter()
            .flatten()
            {
                r.problems.push(problem);
            }
            Some(StoreSeedingConfig {
                rules: rules?,
                schemas: schemas?,
            })
        })
    }
}

/// The pre-traffic hook: the new versions a deployment is about to shift traffic to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreTrafficConfig {
    pub ingest_version: String,
    pub rules_version: String,
}

impl PreTrafficConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigErrors> {
        Reader::read(settings, |r| {
            let ingest_version = r.required(env::INGEST_VERSION);
            let rules_version = r.required(env::RULES_VERSION);
            Some(PreTrafficConfig {
                ingest_version: ingest_version?,
                rules_version: rules_version?,
            })
        })
    }
}

#[cfg(feature = "http")]
mod http {
    use std::time::Duration;

    use cuba_aws::SmsMaxPrice;
    use cuba_core::delivery::limits::SmsPolicy;
    use cuba_core::intake::rate_limit::RateLimit;
    use cuba_core::schemas::SchemaSet;
    use cuba_web::auth::{AdminGroup, KeyRefresh, KeyRing, OidcIssuer, TokenClaims};

    use super::{ConfigErrors, DocumentsConfig, ListedTable, Reader, StreamConfig};
    use crate::settings::{ConfigError, Settings, env};

    /// Where a function's token keys come from.
    #[derive(Debug, Clone)]
    pub enum TokenKeys {
        /// A Secrets Manager secret (a deployed stack), re-read every `cache_ttl`; `variable`
        /// names the variable that gave its id, for the error if it cannot be read.
        Stored {
            variable: &'static str,
            secret_id: String,
            cache_ttl: Duration,
        },
        /// The key ring itself, from a variable (tests, tools).
        Given(KeyRing),
    }

    impl TokenKeys {
        /// From the `arn` variable when set, else from the `value` variable: a key ring or a
        /// bare secret (see [`KeyRing::parse`]).
        fn read(r: &mut Reader, (arn, value): (&'static str, &'static str)) -> Option<Self> {
            if let Some(secret_id) = r.optional(arn) {
                let cache_ttl = r.settings.secrets_cache_ttl();
                return Some(TokenKeys::Stored {
                    variable: arn,
                    secret_id,
                    cache_ttl: r.take(cache_ttl)?,
                });
            }
            let ring = match r.optional(value) {
                None => Err(ConfigError::MissingSecret(arn, value)),
                Some(text) => KeyRing::parse(&text).map_err(|_| {
                    ConfigError::Invalid(value, "a secret of at least 32 bytes, or a key ring")
                }),
            };
            r.take(ring).map(TokenKeys::Given)
        }
    }

    /// How a function checks bearer tokens.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum TokenMode {
        /// `hs256`: signed with the key ring ([`TokenKeys`]), with these claims required.
        Keys(TokenClaims),
        /// `oidc`: issued by an identity provider. The key ring still keys what Cuba derives
        /// from it (verification codes' hashes, the admin listing's cursors), and signs no token.
        Provider(ProviderConfig),
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ProviderConfig {
        pub issuer: OidcIssuer,
        pub refresh: KeyRefresh,
        /// User tokens only: the claim naming the user.
        pub user_claim: String,
        /// Admin tokens only: the group that makes one an admin's.
        pub admin: Option<AdminGroup>,
    }

    /// The variables one function's token mode is read from.
    struct ModeVariables {
        mode: &'static str,
        issuer: &'static str,
        audience: &'static str,
        jwks_url: &'static str,
        admin: bool,
    }

    const USER_MODE: ModeVariables = ModeVariables {
        mode: env::TOKEN_MODE,
        issuer: env::TOKEN_ISSUER,
        audience: env::TOKEN_AUDIENCE,
        jwks_url: env::TOKEN_JWKS_URL,
        admin: false,
    };

    const ADMIN_MODE: ModeVariables = ModeVariables {
        mode: env::ADMIN_TOKEN_MODE,
        issuer: env::ADMIN_TOKEN_ISSUER,
        audience: env::ADMIN_TOKEN_AUDIENCE,
        jwks_url: env::ADMIN_TOKEN_JWKS_URL,
        admin: true,
    };

    /// The admin group claim Cognito user pools put groups in.
    pub const DEFAULT_ADMIN_GROUP_CLAIM: &str = "cognito:groups";
    pub const DEFAULT_ADMIN_GROUP: &str = "admin";

    impl TokenMode {
        fn read(r: &mut Reader, vars: &ModeVariables) -> Option<Self> {
            let issuer = r.optional(vars.issuer);
            let audience = r.optional(vars.audience);
            match r.optional(vars.mode).as_deref() {
                None | Some("hs256") => {
                    if vars.admin {
                        return Some(TokenMode::Keys(TokenClaims::default()));
                    }
                    Some(TokenMode::Keys(TokenClaims { issuer, audience }))
                }
                Some("oidc") => {
                    let issuer = r.take(issuer.ok_or(ConfigError::Missing(vars.issuer)));
                    let audience = r.take(audience.ok_or(ConfigError::Missing(vars.audience)));
                    let unknown_key_after = r.settings.oidc_unknown_key_after();
                    let unknown_key_after = r.take(unknown_key_after);
                    let issuer = OidcIssuer {
                        issuer: issuer?,
                        audience: audience?,
                        jwks_url: r.optional(vars.jwks_url),
                    };
                    if !issuer.is_secure() {
                        r.take::<()>(Err(ConfigError::Invalid(
                            vars.issuer,
                            "an https:// URL (and so its key set's), or http:// on this machine",
                        )));
                        return None;
                    }
                    let admin = vars.admin.then(|| AdminGroup {
                        claim: r
                            .optional(env::ADMIN_GROUP_CLAIM)
                            .unwrap_or_else(|| DEFAULT_ADMIN_GROUP_CLAIM.to_owned()),
                        group: r
                            .optional(env::ADMIN_GROUP)
                            .unwrap_or_else(|| DEFAULT_ADMIN_GROUP.to_owned()),
                    });
                    let user_claim = r
                        .optional(env::TOKEN_USER_CLAIM)
                        .filter(|_| !vars.admin)
                        .unwrap_or_else(|| "sub".to_owned());
                    Some(TokenMode::Provider(ProviderConfig {
                        issuer,
                        user_claim,
                        refresh: KeyRefresh {
                            unknown_key_after: unknown_key_after?,
                            ..KeyRefresh::default()
                        },
                        admin,
                    }))
                }
                Some(_) => {
                    r.take::<()>(Err(ConfigError::Invalid(vars.mode, "`hs256` or `oidc`")));
                    None
                }
            }
        }
    }

    /// The ingest function: the HTTP API for the app.
    #[derive(Debug)]
    pub struct IngestConfig {
        pub events: ListedTable,
        pub profiles_table: String,
        /// The rule-state table, which holds the verification codes' SMS quota counters.
        pub quotas_table: String,
        pub schemas: DocumentsConfig<SchemaSet>,
        pub sms: SmsPolicy,
        pub sms_max_price: Option<SmsMaxPrice>,
        /// How fast one user may send events.
        pub rate: RateLimit,
        pub tokens: TokenKeys,
        pub mode: TokenMode,
    }

    impl IngestConfig {
        pub fn from_settings(settings: &Settings) -> Result<Self, ConfigErrors> {
            Reader::read(settings, |r| {
                let events = ListedTable::events(r);
                let profiles_table = r.required(env::PROFILES_TABLE);
                let quotas_table = r.required(env::RULE_STATE_TABLE);
                let schemas = DocumentsConfig::schemas(r);
                let sms = r.sms();
                let sms_max_price = r.settings.sms_max_price();
                let sms_max_price = r.take(sms_max_price);
                let rate = r.settings.user_rate();
                let rate = r.take(rate);
                let tokens = TokenKeys::read(r, (env::TOKEN_SECRET_ARN, env::TOKEN_SECRET));
                let mode = TokenMode::read(r, &USER_MODE);
                Some(IngestConfig {
                    events: events?,
                    profiles_table: profiles_table?,
                    quotas_table: quotas_table?,
                    schemas: schemas?,
                    sms: sms?,
                    sms_max_price: sms_max_price?,
                    rate: rate?,
                    tokens: tokens?,
                    mode: mode?,
                })
            })
        }
    }

    /// The admin function: the operators' API and UI, and the replays it runs through the
    /// stream consumer's graph.
    #[derive(Debug)]
    pub struct AdminConfig {
        pub stream: StreamConfig,
        pub tokens: TokenKeys,
        pub mode: TokenMode,
    }

    impl AdminConfig {
        pub fn from_settings(settings: &Settings) -> Result<Self, ConfigErrors> {
            Reader::read(settings, |r| {
                let stream = StreamConfig::read(r);
                let tokens =
                    TokenKeys::read(r, (env::ADMIN_TOKEN_SECRET_ARN, env::ADMIN_TOKEN_SECRET));
                let mode = TokenMode::read(r, &ADMIN_MODE);
                Some(AdminConfig {
                    stream: stream?,
                    tokens: tokens?,
                    mode: mode?,
                })
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Settings<'static> {
        Settings::from_pairs(vars)
    }

    const STREAM: &[(&str, &str)] = &[
        (env::EVENTS_TABLE, "events"),
        (env::EVENT_PAGES_TABLE, "pages"),
        (env::ERRORS_TABLE, "errors"),
        (env::ALERTS_TABLE, "alerts"),
        (env::PROFILES_TABLE, "profiles"),
        (env::RULE_STATE_TABLE, "state"),
        (env::RULES_TABLE, "rules"),
        (env::SCHEMAS_TABLE, "schemas"),
        (env::ABSENCE_QUEUE_URL, "http://queue"),
        (env::OPERATOR_TOPIC_ARN, "arn:aws:sns:eu-west-1:1:ops"),
    ];

    #[test]
    fn a_complete_configuration_is_read_with_its_defaults() {
        let config = StreamConfig::from_settings(&settings(STREAM)).unwrap();
        assert_eq!(config.events.name, "events");
        assert_eq!(config.events.shards, ListingShards::DEFAULT);
        assert_eq!(config.delivery.alerts.name, "alerts");
        assert_eq!(config.delivery.quotas_table, "state");
        assert_eq!(config.delivery.sms, SmsPolicy::default());
        let seed = config
            .rules
            .initial
            .documents()
            .expect("the built-in rules");
        assert_eq!(seed.len(), config.rules.initial.unseeded().all().len());
        assert_eq!(seed.len(), 3);
        let schemas = config
            .schemas
            .initial
            .documents()
            .expect("the built-in schemas");
        assert_eq!(schemas.len(), config.schemas.initial.unseeded().len());
        assert_eq!(config.rules.cache_ttl, crate::settings::DEFAULT_RULES_CACHE);
    }

    #[test]
    fn the_built_in_documents_wait_for_a_need_and_a_named_file_is_read_at_once() {
        let config = StreamConfig::from_settings(&settings(STREAM)).unwrap();
        assert!(
            config.schemas.initial.built.get().is_none(),
            "not built at the start"
        );
        assert!(!config.schemas.initial.unseeded().is_empty());
        assert!(
            config.schemas.initial.built.get().is_some(),
            "built once needed"
        );

        let mut vars = STREAM.to_vec();
        vars.push((env::RULES_FILE, "/nonexistent/rules.json"));
        let errors = StreamConfig::from_settings(&settings(&vars)).unwrap_err();
        assert!(
            matches!(errors.0.as_slice(), [ConfigError::RulesFile { .. }]),
            "{errors}"
        );
        // The store-seeding function builds them at its start, whatever they are.
        let seeding = StoreSeedingConfig::from_settings(&settings(STREAM)).unwrap();
        assert!(seeding.rules.initial.built.get().is_some());
        assert!(seeding.schemas.initial.built.get().is_some());
    }

    #[test]
    fn every_problem_is_reported_at_once_each_variable_once() {
        let mut vars: Vec<(&str, &str)> = STREAM
            .iter()
            .copied()
            .filter(|(name, _)| *name != env::EVENTS_TABLE && *name != env::OPERATOR_TOPIC_ARN)
            .collect();
        vars.push((env::SMS_PER_USER, "lots"));
        // Read by the events, errors and alerts tables alike: reported once.
        vars.push((env::LISTING_SHARDS, "0"));
        let error = StreamConfig::from_settings(&settings(&vars)).unwrap_err();
        let named: Vec<String> = error.0.iter().map(ToString::to_string).collect();
        assert_eq!(named.len(), 4, "{named:?}");
        for variable in [
            env::EVENTS_TABLE,
            env::OPERATOR_TOPIC_ARN,
            env::SMS_PER_USER,
            env::LISTING_SHARDS,
        ] {
            assert!(
                named.iter().any(|problem| problem.contains(variable)),
                "{variable} not named in {named:?}"
            );
        }
        assert!(error.to_string().starts_with("4 problems: "), "{error}");
    }

    #[test]
    fn each_function_reads_only_its_own_variables() {
        let absence = settings(&[
            (env::EVENTS_TABLE, "events"),
            (env::ABSENCE_QUEUE_URL, "http://queue"),
        ]);
        let config = AbsenceConfig::from_settings(&absence).unwrap();
        assert_eq!(config.settle, crate::settings::DEFAULT_ABSENCE_SETTLE);
        // The sweeper needs the ledger's tables, the topic, and the rules (for heartbeats).
        let error = SweeperConfig::from_settings(&absence).unwrap_err();
        assert_eq!(error.0.len(), 5, "{error}");
    }

    #[cfg(feature = "http")]
    #[test]
    fn the_admin_function_names_its_missing_keys_beside_the_rest() {
        let mut vars = STREAM.to_vec();
        vars.retain(|(name, _)| *name != env::RULES_TABLE);
        vars.push((
            env::TOKEN_SECRET,
            "a user key the admin function never reads",
        ));
        let error = AdminConfig::from_settings(&settings(&vars)).unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("2 problems: "), "{text}");
        assert!(text.contains(env::RULES_TABLE), "{text}");
        assert!(
            text.contains(env::ADMIN_TOKEN_SECRET_ARN) && text.contains(env::ADMIN_TOKEN_SECRET),
            "{text}"
        );
        vars.push((env::RULES_TABLE, "rules"));
        vars.push((env::ADMIN_TOKEN_SECRET, "short"));
        let error = AdminConfig::from_settings(&settings(&vars)).unwrap_err();
        assert!(
            matches!(
                error.0.as_slice(),
                [ConfigError::Invalid(env::ADMIN_TOKEN_SECRET, _)]
            ),
            "{error}"
        );
        assert!(
            !format!("{error:?}").contains("short"),
            "the value is never shown"
        );
    }

    #[cfg(feature = "http")]
    #[test]
    fn the_admin_token_mode_reads_the_provider_and_refuses_what_would_be_unsafe() {
        let mut vars = STREAM.to_vec();
        vars.push((
            env::ADMIN_TOKEN_SECRET,
            "an admin key ring of at least 32 bytes",
        ));
        let keys = AdminConfig::from_settings(&settings(&vars)).unwrap();
        assert_eq!(keys.mode, TokenMode::Keys(Default::default()));

        vars.push((env::ADMIN_TOKEN_MODE, "oidc"));
        let error = AdminConfig::from_settings(&settings(&vars)).unwrap_err();
        let missing: Vec<String> = error.0.iter().map(ToString::to_string).collect();
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert!(missing[0].contains(env::ADMIN_TOKEN_ISSUER), "{missing:?}");
        assert!(
            missing[1].contains(env::ADMIN_TOKEN_AUDIENCE),
            "{missing:?}"
        );

        vars.push((env::ADMIN_TOKEN_AUDIENCE, "cuba-console"));
        vars.push((env::ADMIN_TOKEN_ISSUER, "http://id.example.com"));
        let error = AdminConfig::from_settings(&settings(&vars)).unwrap_err();
        assert!(
            matches!(
                error.0.as_slice(),
                [ConfigError::Invalid(env::ADMIN_TOKEN_ISSUER, _)]
            ),
            "plain HTTP over a network lets whoever answers choose the keys: {error}"
        );

        vars.retain(|(name, _)| *name != env::ADMIN_TOKEN_ISSUER);
        vars.push((
            env::ADMIN_TOKEN_ISSUER,
            "https://cognito-idp.eu-west-1.amazonaws.com/pool",
        ));
        vars.push((env::OIDC_UNKNOWN_KEY_SECONDS, "2"));
        let provider = match AdminConfig::from_settings(&settings(&vars)).unwrap().mode {
            TokenMode::Provider(provider) => provider,
            other => panic!("{other:?}"),
        };
        assert_eq!(provider.issuer.audience, "cuba-console");
        assert_eq!(provider.issuer.jwks_url, None);
        assert_eq!(provider.refresh.unknown_key_after, Duration::from_secs(2));
        let group = provider.admin.unwrap();
        assert_eq!(
            (group.claim.as_str(), group.group.as_str()),
            ("cognito:groups", "admin")
        );

        vars.push((env::ADMIN_TOKEN_MODE, "rs256"));
        vars.retain(|pair| *pair != (env::ADMIN_TOKEN_MODE, "oidc"));
        let error = AdminConfig::from_settings(&settings(&vars)).unwrap_err();
        assert!(
            matches!(
                error.0.as_slice(),
                [ConfigError::Invalid(env::ADMIN_TOKEN_MODE, _)]
            ),
            "{error}"
        );
    }
}
