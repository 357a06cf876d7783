//! Builds each function's handler from configuration and an AWS SDK config. Lambda entrypoints
//! pass `std::env::var`; the local runner passes the environment the template declares.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_types::sdk_config::TimeoutConfig;

use aws_types::SdkConfig;
use serde_json::Value;

use crate::admin::AdminApi;
use crate::alerting::AlertDispatcher;
use crate::auth::{AdminVerifier, TokenSecret, TokenVerifier, WeakSecret};
use crate::aws::{
    DynamoAlertLedger, DynamoBrowse, DynamoErrorLog, DynamoEvents, DynamoProfiles, DynamoRuleState,
    DynamoRuleStore, SnsNotifier, SqsAbsenceScheduler,
};
use crate::clock::{Clock, SystemClock};
use crate::evaluation::RuleEvaluator;
use crate::http::IngestApi;
use crate::lambda::{AbsenceQueueHandler, StreamHandler};
use crate::ports::RuleStore;
use crate::processing::EventPipeline;
use crate::registry::{CachedSchemas, DEFAULT_SCHEMAS, SchemaSource, documents_of_file};
use crate::rulebook::{CachedRules, RuleSource};
use crate::rules::{DEFAULT_RULES_JSON, InvalidRules, RuleId, RuleSet};
use crate::scheduling::AbsenceChecker;
use crate::schemas::{Schema, SchemaSet};

/// The environment variables the functions read.
pub mod env {
    pub const EVENTS_TABLE: &str = "CUBA_EVENTS_TABLE";
    pub const PROFILES_TABLE: &str = "CUBA_PROFILES_TABLE";
    pub const RULE_STATE_TABLE: &str = "CUBA_RULE_STATE_TABLE";
    pub const ALERTS_TABLE: &str = "CUBA_ALERTS_TABLE";
    pub const ABSENCE_QUEUE_URL: &str = "CUBA_ABSENCE_QUEUE_URL";
    pub const OPERATOR_TOPIC_ARN: &str = "CUBA_OPERATOR_TOPIC_ARN";
    pub const TOKEN_SECRET: &str = "CUBA_TOKEN_SECRET";
    pub const RULES_FILE: &str = "CUBA_RULES_FILE";
    pub const RULES_TABLE: &str = "CUBA_RULES_TABLE";
    pub const ADMIN_TOKEN_SECRET: &str = "CUBA_ADMIN_TOKEN_SECRET";
    pub const RULES_CACHE_SECONDS: &str = "CUBA_RULES_CACHE_SECONDS";
    pub const SCHEMAS_TABLE: &str = "CUBA_SCHEMAS_TABLE";
    pub const SCHEMAS_FILE: &str = "CUBA_SCHEMAS_FILE";
    pub const ERRORS_TABLE: &str = "CUBA_ERRORS_TABLE";
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {0} must be {1}")]
    Invalid(&'static str, &'static str),
    #[error("{}: {}", env::TOKEN_SECRET, .0)]
    WeakSecret(#[from] WeakSecret),
    #[error("cannot read rules file {path}: {source}")]
    RulesFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("seeding the rule store: {0}")]
    Seeding(crate::ports::PortError),
    #[error("rules file {path}: {source}")]
    InvalidRules { path: String, source: InvalidRules },
    #[error("schemas file {path}: {message}")]
    InvalidSchemas { path: String, message: String },
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

    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        (self.lookup)(name)
            .filter(|v| !v.is_empty())
            .ok_or(ConfigError::Missing(name))
    }

    /// The text of `CUBA_RULES_FILE` when set, else of the built-in default rules, with its name.
    fn rules_text(&self) -> Result<(String, String), ConfigError> {
        match (self.lookup)(env::RULES_FILE).filter(|v| !v.is_empty()) {
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

    /// `CUBA_RULES_FILE` when set, else the built-in default rules.
    pub fn rules(&self) -> Result<RuleSet, ConfigError> {
        let (path, text) = self.rules_text()?;
        RuleSet::from_json_str(&text).map_err(|source| ConfigError::InvalidRules { path, source })
    }

    /// The same rules as documents, keyed by id, to seed the rule store with.
    pub fn rule_documents(&self) -> Result<Vec<(RuleId, Value)>, ConfigError> {
        let rules = self.rules()?;
        let (_, text) = self.rules_text()?;
        let document: Value = serde_json::from_str(&text).unwrap_or_default();
        let items = document["rules"].as_array().cloned().unwrap_or_default();
        Ok(rules
            .all()
            .iter()
            .map(|r| r.id.clone())
            .zip(items)
            .collect())
    }

    /// How long a function keeps rules before re-reading the store.
    pub fn rules_cache_ttl(&self) -> Result<Duration, ConfigError> {
        match (self.lookup)(env::RULES_CACHE_SECONDS).filter(|v| !v.is_empty()) {
            None => Ok(DEFAULT_RULES_CACHE),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .ok_or(ConfigError::Invalid(
                    env::RULES_CACHE_SECONDS,
                    "a number of seconds",
                )),
        }
    }

    /// The rules in force: the rule store behind a cache, with the rules file (or the built-in
    /// defaults) applying until the store is first seeded.
    pub fn rule_source(&self, clients: &AwsClients) -> Result<Arc<dyn RuleSource>, ConfigError> {
        Ok(Arc::new(CachedRules::new(
            Arc::new(DynamoRuleStore::new(
                clients.dynamodb.clone(),
                self.required(env::RULES_TABLE)?,
            )),
            Arc::new(self.rules()?),
            self.rules_cache_ttl()?,
        )))
    }

    /// `CUBA_SCHEMAS_FILE` when set, else the shipped registry: the documents that seed the
    /// schema store, and the registry they make (in force until the store is first seeded).
    /// Each document is compiled once, here.
    fn initial_schemas(&self) -> Result<(Vec<(RuleId, Value)>, SchemaSet), ConfigError> {
        let (path, text) = match (self.lookup)(env::SCHEMAS_FILE).filter(|v| !v.is_empty()) {
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
            let id = RuleId::parse(&schema.id).map_err(invalid)?;
            if document.get("enabled") != Some(&Value::Bool(false)) {
                in_force.push(schema);
            }
            documents.push((id, document));
        }
        Ok((documents, SchemaSet::new(in_force)))
    }

    /// The documents to seed the schema store with.
    pub fn schema_documents(&self) -> Result<Vec<(RuleId, Value)>, ConfigError> {
        Ok(self.initial_schemas()?.0)
    }

    /// The schemas in force: the schema store behind the same cache as rules.
    pub fn schema_source(
        &self,
        clients: &AwsClients,
    ) -> Result<Arc<dyn SchemaSource>, ConfigError> {
        let (_, unseeded) = self.initial_schemas()?;
        Ok(Arc::new(CachedSchemas::new(
            Arc::new(DynamoRuleStore::new(
                clients.dynamodb.clone(),
                self.required(env::SCHEMAS_TABLE)?,
            )),
            Arc::new(unseeded),
            self.rules_cache_ttl()?,
        )))
    }

    pub fn admin_verifier(&self) -> Result<AdminVerifier, ConfigError> {
        let secret = TokenSecret::new(self.required(env::ADMIN_TOKEN_SECRET)?.into_bytes())?;
        Ok(AdminVerifier::new(&secret))
    }

    pub fn token_verifier(&self) -> Result<TokenVerifier, ConfigError> {
        let secret = TokenSecret::new(self.required(env::TOKEN_SECRET)?.into_bytes())?;
        Ok(TokenVerifier::new(&secret))
    }
}

/// A saved rule change reaches every function instance within this long, unless
/// `CUBA_RULES_CACHE_SECONDS` says otherwise.
pub const DEFAULT_RULES_CACHE: Duration = Duration::from_secs(30);

/// No single AWS call (retries included) may take longer, so an alert's delivery lease
/// ([`crate::alerting::DELIVERY_LEASE_SECONDS`]) cannot lapse under a live worker.
pub const AWS_OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// The AWS clients, built once per process and shared by every adapter.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
}

impl AwsClients {
    pub fn new(sdk: &SdkConfig) -> Self {
        let sdk = sdk
            .to_builder()
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(AWS_OPERATION_TIMEOUT)
                    .operation_attempt_timeout(AWS_OPERATION_TIMEOUT / 2)
                    .build(),
            )
            .build();
        AwsClients {
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
        }
    }
}

fn events(settings: &Settings, clients: &AwsClients) -> Result<Arc<DynamoEvents>, ConfigError> {
    Ok(Arc::new(DynamoEvents::new(
        clients.dynamodb.clone(),
        settings.required(env::EVENTS_TABLE)?,
    )))
}

fn profiles(settings: &Settings, clients: &AwsClients) -> Result<Arc<DynamoProfiles>, ConfigError> {
    Ok(Arc::new(DynamoProfiles::new(
        clients.dynamodb.clone(),
        settings.required(env::PROFILES_TABLE)?,
    )))
}

fn rule_state(
    settings: &Settings,
    clients: &AwsClients,
) -> Result<Arc<DynamoRuleState>, ConfigError> {
    Ok(Arc::new(DynamoRuleState::new(
        clients.dynamodb.clone(),
        settings.required(env::RULE_STATE_TABLE)?,
    )))
}

fn absence_scheduler(
    settings: &Settings,
    clients: &AwsClients,
) -> Result<Arc<SqsAbsenceScheduler>, ConfigError> {
    Ok(Arc::new(SqsAbsenceScheduler::new(
        clients.sqs.clone(),
        settings.required(env::ABSENCE_QUEUE_URL)?,
    )))
}

fn dispatcher(
    settings: &Settings,
    clients: &AwsClients,
    clock: Arc<dyn Clock>,
) -> Result<AlertDispatcher, ConfigError> {
    Ok(AlertDispatcher {
        ledger: Arc::new(DynamoAlertLedger::new(
            clients.dynamodb.clone(),
            settings.required(env::ALERTS_TABLE)?,
        )),
        profiles: profiles(settings, clients)?,
        notifier: Arc::new(SnsNotifier::new(
            clients.sns.clone(),
            settings.required(env::OPERATOR_TOPIC_ARN)?,
        )),
        clock,
    })
}

/// The ingest function: the HTTP API.
pub fn ingest_api(
    settings: &Settings,
    clients: &AwsClients,
    clock: Arc<dyn Clock>,
) -> Result<IngestApi, ConfigError> {
    Ok(IngestApi {
        events: events(settings, clients)?,
        profiles: profiles(settings, clients)?,
        verifier: settings.token_verifier()?,
        clock,
    })
}

/// The rules function: the events table's stream consumer.
pub fn stream_handler(
    settings: &Settings,
    clients: &AwsClients,
) -> Result<StreamHandler, ConfigError> {
    Ok(StreamHandler {
        pipeline: pipeline(settings, clients, Arc::new(SystemClock))?,
    })
}

/// Validation, then absence checks and rules: what the stream consumer and replays run.
fn pipeline(
    settings: &Settings,
    clients: &AwsClients,
    clock: Arc<dyn Clock>,
) -> Result<EventPipeline, ConfigError> {
    let events = events(settings, clients)?;
    Ok(EventPipeline {
        schemas: settings.schema_source(clients)?,
        errors: Arc::new(DynamoErrorLog::new(
            clients.dynamodb.clone(),
            settings.required(env::ERRORS_TABLE)?,
        )),
        events: events.clone(),
        scheduler: absence_scheduler(settings, clients)?,
        evaluator: RuleEvaluator {
            rules: settings.rule_source(clients)?,
            events,
            state: rule_state(settings, clients)?,
            dispatcher: dispatcher(settings, clients, clock.clone())?,
        },
        clock,
    })
}

/// The absence-check function: the delay queue's consumer.
pub fn absence_handler(
    settings: &Settings,
    clients: &AwsClients,
    clock: Arc<dyn Clock>,
) -> Result<AbsenceQueueHandler, ConfigError> {
    Ok(AbsenceQueueHandler {
        checker: AbsenceChecker {
            rules: settings.rule_source(clients)?,
            events: events(settings, clients)?,
            scheduler: absence_scheduler(settings, clients)?,
            dispatcher: dispatcher(settings, clients, clock.clone())?,
            clock,
        },
    })
}

/// The admin function: the admin API. Seeds the rule store from the rules file (or the built-in
/// defaults) the first time any admin function starts.
pub async fn admin_api(
    settings: &Settings<'_>,
    clients: &AwsClients,
    clock: Arc<dyn Clock>,
) -> Result<AdminApi, ConfigError> {
    let rules: Arc<dyn RuleStore> = Arc::new(DynamoRuleStore::new(
        clients.dynamodb.clone(),
        settings.required(env::RULES_TABLE)?,
    ));
    let seeded = rules
        .seed(
            &settings.rule_documents()?,
            "cuba (initial rules)",
            clock.now(),
        )
        .await
        .map_err(ConfigError::Seeding)?;
    if seeded {
        tracing::info!("rule store seeded with the initial rules");
    }
    let schemas: Arc<dyn RuleStore> = Arc::new(DynamoRuleStore::new(
        clients.dynamodb.clone(),
        settings.required(env::SCHEMAS_TABLE)?,
    ));
    let seeded = schemas
        .seed(
            &settings.schema_documents()?,
            "cuba (initial schemas)",
            clock.now(),
        )
        .await
        .map_err(ConfigError::Seeding)?;
    if seeded {
        tracing::info!("schema store seeded with the initial schemas");
    }
    let pipeline = pipeline(settings, clients, clock.clone())?;
    Ok(AdminApi {
        rules,
        schemas,
        errors: pipeline.errors.clone(),
        pipeline,
        browse: Arc::new(DynamoBrowse::new(
            clients.dynamodb.clone(),
            settings.required(env::EVENTS_TABLE)?,
            settings.required(env::ALERTS_TABLE)?,
        )),
        profiles: profiles(settings, clients)?,
        events: events(settings, clients)?,
        state: rule_state(settings, clients)?,
        verifier: settings.admin_verifier()?,
        clock,
    })
}
