//! Builds each function's handler from its settings and the AWS clients. Each function reads
//! only the variables its own template entry sets; the HTTP functions' wiring needs the `http`
//! feature, so the rules and absence-check functions never link the web layer.

use std::sync::Arc;

use cuba_aws::{
    AwsClients, DynamoActivityTally, DynamoAlertLedger, DynamoDocumentStore, DynamoErrorLog,
    DynamoEvents, DynamoProfiles, DynamoRuleState, DynamoSmsQuotas, DynamoWindows, SnsNotifier,
    SqsAbsenceScheduler,
};
use cuba_core::absence::scheduling::AbsenceRelay;
use cuba_core::delivery::alerting::{AlertDispatcher, AlertSweeper, DeliveryLeases};
use cuba_core::evaluation::source::{CachedDocuments, RuleSource, SchemaSource};
use cuba_core::model::clock::Clock;
use cuba_core::pipeline::StreamPorts;
use cuba_core::rules::RuleSet;
use cuba_core::schemas::SchemaSet;

use crate::handlers::{AbsenceQueueHandler, StreamHandler};
use crate::settings::{
    ConfigError, DEFAULT_ALERT_RETENTION_DAYS, DEFAULT_ERROR_RETENTION_DAYS,
    DEFAULT_EVENT_RETENTION_DAYS, Settings, env,
};

fn events(settings: &Settings, clients: &AwsClients) -> Result<Arc<DynamoEvents>, ConfigError> {
    Ok(Arc::new(
        DynamoEvents::new(
            clients.dynamodb.clone(),
            settings.required(env::EVENTS_TABLE)?,
        )
        .retained_for(settings.retention(env::EVENT_RETENTION_DAYS, DEFAULT_EVENT_RETENTION_DAYS)?)
        .sharded(settings.listing_shards()?),
    ))
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

/// The per-minute counts of events and alerts, kept in the rule-state table.
fn activity_tally(
    settings: &Settings,
    clients: &AwsClients,
) -> Result<Arc<DynamoActivityTally>, ConfigError> {
    Ok(Arc::new(DynamoActivityTally::new(
        clients.dynamodb.clone(),
        settings.required(env::RULE_STATE_TABLE)?,
    )))
}

fn rule_store(
    settings: &Settings,
    clients: &AwsClients,
) -> Result<Arc<DynamoDocumentStore>, ConfigError> {
    Ok(Arc::new(DynamoDocumentStore::new(
        clients.dynamodb.clone(),
        settings.required(env::RULES_TABLE)?,
    )))
}

fn schema_store(
    settings: &Settings,
    clients: &AwsClients,
) -> Result<Arc<DynamoDocumentStore>, ConfigError> {
    Ok(Arc::new(DynamoDocumentStore::new(
        clients.dynamodb.clone(),
        settings.required(env::SCHEMAS_TABLE)?,
    )))
}

fn error_log(
    settings: &Settings,
    clients: &AwsClients,
) -> Result<Arc<DynamoErrorLog>, ConfigError> {
    Ok(Arc::new(
        DynamoErrorLog::new(
            clients.dynamodb.clone(),
            settings.required(env::ERRORS_TABLE)?,
        )
        .retained_for(settings.retention(env::ERROR_RETENTION_DAYS, DEFAULT_ERROR_RETENTION_DAYS)?)
        .sharded(settings.listing_shards()?),
    ))
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

/// The rules in force: the rule store behind a cache, with the rules file (or the built-in
/// defaults) applying until the store is first seeded.
fn rule_source(settings: &Settings, clients: &AwsClients) -> Result<Arc<RuleSource>, ConfigError> {
    Ok(Arc::new(CachedDocuments::<RuleSet>::new(
        rule_store(settings, clients)?,
        Arc::new(settings.rules()?),
        settings.rules_cache_ttl()?,
    )))
}

/// The schemas in force: the schema store behind the same cache as rules.
fn schema_source(
    settings: &Settings,
    clients: &AwsClients,
) -> Result<Arc<SchemaSource>, ConfigError> {
    let (_, unseeded) = settings.initial_schemas()?;
    Ok(Arc::new(CachedDocuments::<SchemaSet>::new(
        schema_store(settings, clients)?,
        Arc::new(unseeded),
        settings.rules_cache_ttl()?,
    )))
}

fn dispatcher(
    settings: &Settings,
    clients: &AwsClients,
    clock: Arc<dyn Clock>,
) -> Result<AlertDispatcher, ConfigError> {
    Ok(AlertDispatcher {
        ledger: Arc::new(
            DynamoAlertLedger::new(
                clients.dynamodb.clone(),
                settings.required(env::ALERTS_TABLE)?,
            )
            .retained_for(
                settings.retention(env::ALERT_RETENTION_DAYS, DEFAULT_ALERT_RETENTION_DAYS)?,
            )
            .sharded(settings.listing_shards()?),
        ),
        profiles: profiles(settings, clients)?,
        notifier: Arc::new(SnsNotifier::new(
            clients.sns.clone(),
            settings.required(env::OPERATOR_TOPIC_ARN)?,
        )),
        quotas: Arc::new(DynamoSmsQuotas::new(
            clients.dynamodb.clone(),
            settings.required(env::RULE_STATE_TABLE)?,
        )),
        clock,
        leases: DeliveryLeases::covering(clients.call_limits()),
        sms: settings.sms_policy()?,
    })
}

fn windows(settings: &Settings, clients: &AwsClients) -> Result<Arc<DynamoWindows>, ConfigError> {
    Ok(Arc::new(DynamoWindows::new(
        clients.dynamodb.clone(),
        settings.required(env::RULE_STATE_TABLE)?,
    )))
}

/// The ports of the stream consumer's graph on DynamoDB, SQS and SNS, each built once.
fn stream_ports(
    settings: &Settings,
    clients: &AwsClients,
    clock: Arc<dyn Clock>,
) -> Result<StreamPorts, ConfigError> {
    Ok(StreamPorts {
        events: events(settings, clients)?,
        errors: error_log(settings, clients)?,
        scheduler: absence_scheduler(settings, clients)?,
        windows: Some(windows(settings, clients)?),
        state: rule_state(settings, clients)?,
        dispatcher: dispatcher(settings, clients, clock)?,
    })
}

/// The rules function: the events table's stream consumer, deciding the absence checks posted
/// into the stream with the pipeline's own rules (one cache) and ports.
pub fn stream_handler(
    settings: &Settings,
    clients: &AwsClients,
    clock: Arc<dyn Clock>,
) -> Result<StreamHandler, ConfigError> {
    let ports = stream_ports(settings, clients, clock.clone())?;
    let rules = rule_source(settings, clients)?;
    Ok(StreamHandler {
        pipeline: ports.pipeline(
            rules.clone(),
            schema_source(settings, clients)?,
            clock.clone(),
        ),
        checker: ports.absence_checker(rules, settings.rules_cache_ttl()?, clock),
        tally: activity_tally(settings, clients)?,
    })
}

/// The absence-check function: the delay queue's consumer, posting ripe checks into the
/// events table's stream.
pub fn absence_handler(
    settings: &Settings,
    clients: &AwsClients,
    clock: Arc<dyn Clock>,
) -> Result<AbsenceQueueHandler, ConfigError> {
    Ok(AbsenceQueueHandler {
        relay: AbsenceRelay {
            scheduler: absence_scheduler(settings, clients)?,
            due: events(settings, clients)?,
            clock,
            settle: settings.absence_settle()?,
        },
    })
}

/// Alerts the sweeper takes on per run; the rest wait for the next run.
const SWEEP_BATCH: usize = 100;

/// The sweeper function: finishes alerts whose worker died, on a schedule.
pub fn sweeper(
    settings: &Settings,
    clients: &AwsClients,
    clock: Arc<dyn Clock>,
) -> Result<AlertSweeper, ConfigError> {
    Ok(AlertSweeper {
        dispatcher: dispatcher(settings, clients, clock)?,
        batch: SWEEP_BATCH,
    })
}

#[cfg(feature = "http")]
pub use http::{admin_api, admin_router, ingest_api, ingest_router};

#[cfg(feature = "http")]
mod http {
    use std::sync::Arc;

    use cuba_aws::SecretsManagerStore;
    use cuba_aws::{AwsClients, DynamoBrowse, DynamoSmsQuotas, SnsNotifier};
    use cuba_core::delivery::verification::PhoneVerifier;
    use cuba_core::model::clock::{Clock, SystemClock};
    use cuba_core::model::ports::DocumentStore;
    use cuba_web::admin::{AdminApi, CursorSeal};
    use cuba_web::auth::{
        AdminVerifier, KeyBuilder, KeyRing, PhoneCodeHasher, Rotating, TokenClaims, TokenVerifier,
    };
    use cuba_web::ingest::IngestApi;

    use cuba_core::evaluation::source::RuleSource;
    use cuba_core::pipeline::EventPipeline;

    use super::{
        activity_tally, events, profiles, rule_source, rule_state, rule_store, schema_source,
        schema_store, stream_ports,
    };
    use crate::settings::{ConfigError, Settings, env};

    /// Validation, then absence checks and rules: what the admin function's replays run.
    fn pipeline(
        settings: &Settings,
        clients: &AwsClients,
        rules: Arc<RuleSource>,
        clock: Arc<dyn Clock>,
    ) -> Result<EventPipeline, ConfigError> {
        Ok(stream_ports(settings, clients, clock.clone())?.pipeline(
            rules,
            schema_source(settings, clients)?,
            clock,
        ))
    }

    /// A token verifier and the ring it was built from: read from Secrets Manager when the
    /// `arn` variable is set (a deployed stack), else from the `value` variable itself (tests,
    /// tools). Both forms take a key ring or a bare secret (see [`KeyRing::parse`]).
    async fn token_keys<V>(
        settings: &Settings<'_>,
        clients: &AwsClients,
        (arn, value): (&'static str, &'static str),
        build: KeyBuilder<V>,
    ) -> Result<(Rotating<V>, KeyRing), ConfigError> {
        if let Some(id) = settings.optional(arn) {
            let store = Arc::new(SecretsManagerStore::new(clients.secrets.clone()));
            return Rotating::stored(store, &id, settings.secrets_cache_ttl()?, build)
                .await
                .map_err(|source| ConfigError::Secret {
                    variable: arn,
                    source,
                });
        }
        let text = settings
            .optional(value)
            .ok_or(ConfigError::MissingSecret(arn, value))?;
        let ring = KeyRing::parse(&text).map_err(|_| {
            ConfigError::Invalid(value, "a secret of at least 32 bytes, or a key ring")
        })?;
        Ok((Rotating::fixed(build(&ring)), ring))
    }

    /// The ingest function: the HTTP API.
    pub async fn ingest_api(
        settings: &Settings<'_>,
        clients: &AwsClients,
        clock: Arc<dyn Clock>,
    ) -> Result<IngestApi, ConfigError> {
        let claims = TokenClaims {
            issuer: settings.optional(env::TOKEN_ISSUER),
            audience: settings.optional(env::TOKEN_AUDIENCE),
        };
        let (verifier, ring) = token_keys(
            settings,
            clients,
            (env::TOKEN_SECRET_ARN, env::TOKEN_SECRET),
            Box::new(move |ring| TokenVerifier::with_claims(ring, claims.clone())),
        )
        .await?;
        Ok(IngestApi {
            events: events(settings, clients)?,
            schemas: schema_source(settings, clients)?,
            phones: PhoneVerifier {
                profiles: profiles(settings, clients)?,
                sender: Arc::new(SnsNotifier::sms_only(clients.sns.clone())),
                hasher: Arc::new(PhoneCodeHasher::new(&ring.signing().secret)),
                quotas: Arc::new(DynamoSmsQuotas::new(
                    clients.dynamodb.clone(),
                    settings.required(env::RULE_STATE_TABLE)?,
                )),
                sms: settings.sms_policy()?,
                clock: clock.clone(),
            },
            verifier,
            clock,
        })
    }

    /// The ingest function's router, on the system clock.
    pub async fn ingest_router(
        settings: &Settings<'_>,
        clients: &AwsClients,
    ) -> Result<cuba_web::Router, ConfigError> {
        Ok(cuba_web::ingest::router(
            ingest_api(settings, clients, Arc::new(SystemClock)).await?,
        ))
    }

    /// The admin function's router (API and UI), on the system clock.
    pub async fn admin_router(
        settings: &Settings<'_>,
        clients: &AwsClients,
    ) -> Result<cuba_web::Router, ConfigError> {
        Ok(cuba_web::admin::router(
            admin_api(settings, clients, Arc::new(SystemClock)).await?,
        ))
    }

    /// Writes `documents` into `store` unless it was seeded before.
    async fn seed(
        store: &dyn DocumentStore,
        what: &'static str,
        documents: &[(cuba_core::model::document::DocumentId, serde_json::Value)],
        clock: &dyn Clock,
    ) -> Result<(), ConfigError> {
        let by = format!("cuba (initial {what}s)");
        let seeded = store
            .seed(documents, &by, clock.now())
            .await
            .map_err(|source| ConfigError::Seeding { what, source })?;
        if seeded {
            tracing::info!("{what} store seeded with the initial {what}s");
        }
        Ok(())
    }

    /// The admin function: the admin API. Seeds the rule and schema stores from the files (or
    /// the built-in defaults) the first time any admin function starts.
    pub async fn admin_api(
        settings: &Settings<'_>,
        clients: &AwsClients,
        clock: Arc<dyn Clock>,
    ) -> Result<AdminApi, ConfigError> {
        let rules = rule_store(settings, clients)?;
        seed(
            rules.as_ref(),
            "rule",
            &settings.rule_documents()?,
            clock.as_ref(),
        )
        .await?;
        let schemas = schema_store(settings, clients)?;
        let (schema_documents, _) = settings.initial_schemas()?;
        seed(
            schemas.as_ref(),
            "schema",
            &schema_documents,
            clock.as_ref(),
        )
        .await?;
        let pipeline = pipeline(
            settings,
            clients,
            rule_source(settings, clients)?,
            clock.clone(),
        )?;
        let (verifier, ring) = token_keys(
            settings,
            clients,
            (env::ADMIN_TOKEN_SECRET_ARN, env::ADMIN_TOKEN_SECRET),
            Box::new(AdminVerifier::from_ring),
        )
        .await?;
        Ok(AdminApi {
            rules,
            schemas,
            errors: pipeline.errors.clone(),
            pipeline,
            browse: Arc::new(
                DynamoBrowse::new(
                    clients.dynamodb.clone(),
                    settings.required(env::EVENTS_TABLE)?,
                    settings.required(env::ALERTS_TABLE)?,
                )
                .sharded(settings.listing_shards()?),
            ),
            tally: activity_tally(settings, clients)?,
            profiles: profiles(settings, clients)?,
            events: events(settings, clients)?,
            state: rule_state(settings, clients)?,
            verifier,
            cursors: CursorSeal::new(&ring.signing().secret),
            clock,
        })
    }
}
