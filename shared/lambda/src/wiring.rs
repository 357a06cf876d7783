//! Builds each function's handler from its typed configuration ([`crate::config`]) and the AWS
//! clients: one constructor per port, each used wherever that port is needed. Nothing here reads
//! a variable or can fail, except what must reach AWS at a cold start (token keys in Secrets
//! Manager) and the documents the store seeding writes (built when first asked for). The HTTP
//! functions' wiring needs the `http` feature, so the rules and absence-check functions never
//! link the web layer.

use std::sync::Arc;

use cuba_aws::{
    AwsClients, DynamoActivityTally, DynamoAlertLedger, DynamoDocumentStore, DynamoErrorLog,
    DynamoEvents, DynamoGroupWindows, DynamoListingPages, DynamoOperatorQuotas, DynamoProfiles,
    DynamoRuleState, DynamoSilences, DynamoSmsQuotas, DynamoWindows, SnsNotifier,
    SqsAbsenceScheduler,
};
use cuba_core::absence::scheduling::AbsenceRelay;
use cuba_core::delivery::alerting::{AlertDispatcher, AlertSweeper, DeliveryLeases};
use cuba_core::delivery::limits::OperatorLimit;
use cuba_core::delivery::silences::{SilenceSource, SilenceStore};
use cuba_core::evaluation::group_desk::GroupWindowDesk;
use cuba_core::evaluation::heartbeat::HeartbeatWatch;
use cuba_core::evaluation::source::CachedDocuments;
use cuba_core::model::clock::Clock;
use cuba_core::model::document::DocumentSet;
use cuba_core::model::document::InvalidDocument;
use cuba_core::pipeline::StreamPorts;
use cuba_core::pipeline::smoke::{NoOneNotified, SmokeTest, smoke_documents};

use crate::config::{
    AbsenceConfig, DeliveryConfig, DocumentsConfig, ListedTable, ReceiptsConfig, StreamConfig,
    SweeperConfig,
};
use crate::handlers::{AbsenceQueueHandler, ReceiptsHandler, StreamHandler, SweepHandler};
use cuba_core::delivery::receipt_desk::ReceiptDesk;

fn events(table: &ListedTable, clients: &AwsClients) -> Arc<DynamoEvents> {
    Arc::new(
        DynamoEvents::new(clients.dynamodb.clone(), table.name.clone())
            .retained_for(table.retention),
    )
}

/// The listings across everyone and by session: pages that expire with the events they list.
fn listing_pages(config: &StreamConfig, clients: &AwsClients) -> Arc<DynamoListingPages> {
    Arc::new(
        DynamoListingPages::new(clients.dynamodb.clone(), config.event_pages_table.clone())
            .retained_for(config.events.retention)
            .sharded(config.events.shards),
    )
}

fn error_log(table: &ListedTable, clients: &AwsClients) -> Arc<DynamoErrorLog> {
    Arc::new(
        DynamoErrorLog::new(clients.dynamodb.clone(), table.name.clone())
            .retained_for(table.retention)
            .sharded(table.shards),
    )
}

fn profiles(table: &str, clients: &AwsClients) -> Arc<DynamoProfiles> {
    Arc::new(DynamoProfiles::new(
        clients.dynamodb.clone(),
        table.to_owned(),
    ))
}

fn quotas(table: &str, clients: &AwsClients) -> Arc<DynamoSmsQuotas> {
    Arc::new(DynamoSmsQuotas::new(
        clients.dynamodb.clone(),
        table.to_owned(),
    ))
}

/// The per-minute counts of events and alerts, kept in the rule-state table.
fn activity_tally(table: &str, clients: &AwsClients) -> Arc<DynamoActivityTally> {
    Arc::new(DynamoActivityTally::new(
        clients.dynamodb.clone(),
        table.to_owned(),
    ))
}

fn document_store<T>(
    config: &DocumentsConfig<T>,
    clients: &AwsClients,
) -> Arc<DynamoDocumentStore> {
    Arc::new(DynamoDocumentStore::new(
        clients.dynamodb.clone(),
        config.table.clone(),
    ))
}

/// The rules (or schemas) in force: the store behind a cache, with the file's (or the built-in
/// defaults) applying until the store is first seeded.
fn document_source<T: DocumentSet>(
    config: &DocumentsConfig<T>,
    clients: &AwsClients,
) -> Arc<CachedDocuments<T>> {
    let initial = config.initial.clone();
    Arc::new(CachedDocuments::unseeded_from(
        document_store(config, clients),
        move || initial.unseeded(),
        config.cache_ttl,
    ))
}

fn absence_scheduler(queue_url: &str, clients: &AwsClients) -> Arc<SqsAbsenceScheduler> {
    Arc::new(SqsAbsenceScheduler::new(
        clients.sqs.clone(),
        queue_url.to_owned(),
    ))
}

fn dispatcher(
    config: &DeliveryConfig,
    clients: &AwsClients,
    clock: Arc<dyn Clock>,
) -> AlertDispatcher {
    AlertDispatcher {
        ledger: Arc::new(
            DynamoAlertLedger::new(clients.dynamodb.clone(), config.alerts.name.clone())
                .retained_for(config.alerts.retention)
                .sharded(config.alerts.shards),
        ),
        profiles: profiles(&config.profiles_table, clients),
        notifier: Arc::new(
            SnsNotifier::new(clients.sns.clone(), config.operator_topic_arn.clone())
                .priced_at_most(config.sms_max_price.clone()),
        ),
        quotas: quotas(&config.quotas_table, clients),
        clock,
        leases: DeliveryLeases::covering(clients.call_limits()),
        sms: config.sms,
        operators: OperatorLimit::new(
            config.operator_alerts_per_rule_per_hour,
            Arc::new(DynamoOperatorQuotas::new(
                clients.dynamodb.clone(),
                config.quotas_table.clone(),
            )),
        ),
        silences: Arc::new(SilenceSource::new(
            silences(&config.quotas_table, clients),
            config.silences_ttl,
        )),
        manners: config.manners.clone(),
        receipt_timeout: config.receipt_timeout,
        opening_groups: Default::default(),
    }
}

/// The silences, kept in the rule-state table.
fn silences(table: &str, clients: &AwsClients) -> Arc<dyn SilenceStore> {
    Arc::new(DynamoSilences::new(clients.dynamodb.clone(), table))
}

/// The ports of the stream consumer's graph on DynamoDB, SQS and SNS, each built once.
fn stream_ports(config: &StreamConfig, clients: &AwsClients, clock: Arc<dyn Clock>) -> StreamPorts {
    StreamPorts {
        events: events(&config.events, clients),
        errors: error_log(&config.errors, clients),
        scheduler: absence_scheduler(&config.absence_queue_url, clients),
        windows: Some(Arc::new(DynamoWindows::new(
            clients.dynamodb.clone(),
            config.rule_state_table.clone(),
        ))),
        state: Arc::new(DynamoRuleState::new(
            clients.dynamodb.clone(),
            config.rule_state_table.clone(),
        )),
        group_windows: group_windows(&config.rule_state_table, clients),
        dispatcher: dispatcher(&config.delivery, clients, clock),
    }
}

/// Windows across users, kept in the rule-state table.
fn group_windows(table: &str, clients: &AwsClients) -> Arc<DynamoGroupWindows> {
    Arc::new(DynamoGroupWindows::new(clients.dynamodb.clone(), table))
}

/// The rules function: the events table's stream consumer, deciding the absence checks posted
/// into the stream with the pipeline's own rules (one cache) and ports.
pub fn stream_handler(
    config: &StreamConfig,
    clients: &AwsClients,
    clock: Arc<dyn Clock>,
) -> StreamHandler {
    let ports = stream_ports(config, clients, clock.clone());
    let rules = document_source(&config.rules, clients);
    StreamHandler {
        pipeline: ports.pipeline(
            rules.clone(),
            document_source(&config.schemas, clients),
            clock.clone(),
        ),
        checker: ports.absence_checker(rules, config.rules.cache_ttl, clock),
        tally: activity_tally(&config.rule_state_table, clients),
        pages: listing_pages(config, clients),
        user_reads_per_batch: config.user_reads_per_batch,
    }
}

/// The rules function's smoke test (`{"smoke_test": {"run": "<id>"}}`): this version's
/// pipeline on the stack's tables, with the smoke test's own rule and schema, delivering to no
/// one. Built only when asked for, so it costs a cold start nothing.
pub fn smoke_test(
    config: &StreamConfig,
    clients: &AwsClients,
    clock: Arc<dyn Clock>,
) -> Result<SmokeTest, InvalidDocument> {
    let (rules, schemas) = smoke_documents()?;
    let mut ports = stream_ports(config, clients, clock.clone());
    ports.dispatcher.notifier = Arc::new(NoOneNotified);
    Ok(SmokeTest {
        pipeline: ports.pipeline(Arc::new(rules), Arc::new(schemas), clock.clone()),
        events: ports.events.clone(),
        ledger: ports.dispatcher.ledger.clone(),
        clock,
    })
}

/// The pre-traffic hook's check, through Lambda and CodeDeploy.
#[cfg(feature = "pre-traffic")]
pub fn pre_traffic_check(
    config: &crate::config::PreTrafficConfig,
    sdk: &aws_types::SdkConfig,
) -> crate::pre_traffic::PreTrafficCheck {
    use crate::pre_traffic::{CodeDeployVerdicts, LambdaInvoker, PreTrafficCheck};
    PreTrafficCheck {
        invoker: Arc::new(LambdaInvoker(aws_sdk_lambda::Client::new(sdk))),
        verdicts: Arc::new(CodeDeployVerdicts(aws_sdk_codedeploy::Client::new(sdk))),
        ingest_version: config.ingest_version.clone(),
        rules_version: config.rules_version.clone(),
    }
}

/// The rule and schema stores with what seeds them (the store-seeding function's work, which
/// the local stack does at its start as CloudFormation would).
#[cfg(feature = "store-seeding")]
pub fn store_seeding(
    config: &crate::config::StoreSeedingConfig,
    clients: &AwsClients,
    clock: Arc<dyn Clock>,
) -> Result<crate::store_seeding::StoreSeeding, crate::settings::ConfigError> {
    use crate::store_seeding::{SeededStore, StoreSeeding};
    fn seeded<T: DocumentSet>(
        what: &'static str,
        config: &DocumentsConfig<T>,
        clients: &AwsClients,
    ) -> Result<SeededStore, crate::settings::ConfigError> {
        Ok(SeededStore {
            what,
            table: config.table.clone(),
            store: document_store(config, clients),
            documents: config.initial.documents()?.to_vec(),
        })
    }
    Ok(StoreSeeding {
        rules: seeded("rule", &config.rules, clients)?,
        schemas: seeded("schema", &config.schemas, clients)?,
        clock,
    })
}

/// The store-seeding custom resource, answering CloudFormation over HTTPS.
#[cfg(feature = "store-seeding")]
pub fn seeding_resource(
    config: &crate::config::StoreSeedingConfig,
    settings: &crate::settings::Settings,
    sdk: &aws_types::SdkConfig,
) -> Result<crate::store_seeding::SeedingResource, crate::settings::ConfigError> {
    use crate::store_seeding::{PresignedPut, SeedingResource};
    Ok(SeedingResource {
        seeding: store_seeding(config, &AwsClients::new(sdk), Arc::new(crate::SystemClock))?,
        response_url: Arc::new(PresignedPut::new(crate::sdk::https_connector(settings)?)),
    })
}

/// The console's redrive of the stream records whose retries ran out (the failure queue the
/// configuration names, if any), handing them to a stream handler of its own.
#[cfg(feature = "redrive")]
pub fn console_redrive(
    config: &StreamConfig,
    clients: &AwsClients,
    streams: aws_sdk_dynamodbstreams::Client,
    clock: Arc<dyn Clock>,
) -> Option<Arc<dyn cuba_core::console::redrive::StreamRedrive>> {
    let queue_url = config.failure_queue_url.clone()?;
    Some(Arc::new(crate::redrive::ConsoleRedrive {
        failures: crate::redrive::StreamFailures {
            sqs: clients.sqs.clone(),
            streams,
            queue_url,
        },
        handler: stream_handler(config, clients, clock),
    }))
}

/// The absence-check function: the delay queue's consumer, posting ripe checks into the
/// events table's stream.
pub fn absence_handler(
    config: &AbsenceConfig,
    clients: &AwsClients,
    clock: Arc<dyn Clock>,
) -> AbsenceQueueHandler {
    AbsenceQueueHandler {
        relay: AbsenceRelay {
            scheduler: absence_scheduler(&config.absence_queue_url, clients),
            due: events(&config.events, clients),
            clock,
            settle: config.settle,
        },
    }
}

/// Alerts the sweeper takes on per run; the rest wait for the next run.
const SWEEP_BATCH: usize = 100;

/// The receipts function's handler: SMS delivery status records settle the ledger.
pub fn receipts_handler(
    config: &ReceiptsConfig,
    clients: &AwsClients,
    clock: Arc<dyn Clock>,
) -> ReceiptsHandler {
    ReceiptsHandler {
        tally: activity_tally(&config.rule_state_table, clients),
        desk: ReceiptDesk {
            ledger: Arc::new(
                DynamoAlertLedger::new(clients.dynamodb.clone(), config.alerts.name.clone())
                    .retained_for(config.alerts.retention)
                    .sharded(config.alerts.shards),
            ),
            clock,
        },
    }
}

/// Turns the account's SMS delivery status logs on with the sweeper's configured role (the
/// function does it once per process, beside its first sweep), so the receipts function has
/// records to read. Logged, never fatal: the sweep itself does not depend on it.
pub async fn turn_on_sms_delivery_status(config: &SweeperConfig, clients: &AwsClients) {
    let Some(role) = &config.delivery_status_role_arn else {
        return;
    };
    match cuba_aws::ensure_sms_delivery_status(&clients.sns, role).await {
        Ok(cuba_aws::DeliveryStatusLogs::OnWithAnotherRole(other)) => {
            tracing::warn!(
                role = other.as_str(),
                "SMS delivery status logs use another role; left as they are"
            );
        }
        Ok(state) => tracing::info!(?state, "SMS delivery status logs on"),
        Err(error) => {
            tracing::warn!(error = %cuba_core::model::ports::ErrorChain(&error), "could not turn SMS delivery status logs on");
        }
    }
}

/// The sweeper function's handler: the alert sweep and the heartbeat rules' look, sharing one
/// dispatcher (its silence cache and group-message lock).
pub fn sweep_handler(
    config: &SweeperConfig,
    clients: &AwsClients,
    clock: Arc<dyn Clock>,
) -> SweepHandler {
    let dispatcher = dispatcher(&config.delivery, clients, clock.clone());
    let rules = document_source(&config.rules, clients);
    SweepHandler {
        heartbeats: HeartbeatWatch {
            rules: rules.clone(),
            state: Arc::new(DynamoRuleState::new(
                clients.dynamodb.clone(),
                config.delivery.quotas_table.clone(),
            )),
            dispatcher: dispatcher.clone(),
            clock: clock.clone(),
        },
        groups: GroupWindowDesk {
            rules,
            store: group_windows(&config.delivery.quotas_table, clients),
            windows: Some(Arc::new(DynamoWindows::new(
                clients.dynamodb.clone(),
                config.delivery.quotas_table.clone(),
            ))),
            dispatcher: dispatcher.clone(),
            clock,
            noted: Default::default(),
        },
        sweeper: AlertSweeper {
            dispatcher,
            batch: SWEEP_BATCH,
        },
    }
}

#[cfg(feature = "http")]
pub use http::{admin_api, admin_router, ingest_api, ingest_router};

#[cfg(feature = "http")]
mod http {
    use std::sync::Arc;

    use cuba_aws::{AwsClients, DynamoBrowse, DynamoRateCounter, SecretsManagerStore, SnsNotifier};
    use cuba_core::console::redrive::StreamRedrive;
    use cuba_core::delivery::verification::PhoneVerifier;
    use cuba_core::intake::rate::UserRateLimiter;
    use cuba_core::model::clock::{Clock, SystemClock};
    use cuba_web::admin::{AdminApi, CursorSeal};
    use cuba_web::auth::{
        AdminVerifier, HttpsFetch, KeyBuilder, KeyRing, OidcVerifier, PhoneCodeHasher, Rotating,
        TokenCheck, TokenClaims, TokenVerifier,
    };
    use cuba_web::ingest::IngestApi;

    use super::stream_ports;
    use super::{
        activity_tally, document_source, document_store, events, profiles, quotas, silences,
    };
    use crate::config::{AdminConfig, IngestConfig, TokenKeys, TokenMode};
    use crate::settings::ConfigError;

    /// A token verifier and the ring it was built from, read from Secrets Manager once now when
    /// the keys are stored there.
    async fn token_keys<V>(
        keys: &TokenKeys,
        clients: &AwsClients,
        build: KeyBuilder<V>,
    ) -> Result<(Rotating<V>, KeyRing), ConfigError> {
        match keys {
            TokenKeys::Stored {
                variable,
                secret_id,
                cache_ttl,
            } => {
                let store = Arc::new(SecretsManagerStore::new(clients.secrets.clone()));
                Rotating::stored(store, secret_id, *cache_ttl, build)
                    .await
                    .map_err(|source| ConfigError::Secret { variable, source })
            }
            TokenKeys::Given(ring) => Ok((Rotating::fixed(build(ring)), ring.clone())),
        }
    }

    /// How the function checks tokens: with the key ring's verifier, or against the identity
    /// provider's published keys.
    fn token_check<V>(mode: &TokenMode, keys: Rotating<V>) -> Result<TokenCheck<V>, ConfigError> {
        match mode {
            TokenMode::Keys(_) => Ok(TokenCheck::Keys(keys)),
            TokenMode::Provider(provider) => {
                let fetch = HttpsFetch::new().map_err(ConfigError::CertificateRoots)?;
                let verifier = OidcVerifier::new(
                    provider.issuer.clone(),
                    provider.admin.clone(),
                    provider.refresh,
                    Arc::new(fetch),
                )
                .reading_user_from(provider.user_claim.clone());
                Ok(TokenCheck::Provider(Arc::new(verifier)))
            }
        }
    }

    /// The ingest function: the HTTP API.
    pub async fn ingest_api(
        config: &IngestConfig,
        clients: &AwsClients,
        clock: Arc<dyn Clock>,
    ) -> Result<IngestApi, ConfigError> {
        let claims = match &config.mode {
            TokenMode::Keys(claims) => claims.clone(),
            TokenMode::Provider(_) => TokenClaims::default(),
        };
        let (keys, ring) = token_keys(
            &config.tokens,
            clients,
            Box::new(move |ring| TokenVerifier::with_claims(ring, claims.clone())),
        )
        .await?;
        let verifier = token_check(&config.mode, keys)?;
        Ok(IngestApi {
            events: events(&config.events, clients),
            schemas: document_source(&config.schemas, clients),
            phones: PhoneVerifier {
                profiles: profiles(&config.profiles_table, clients),
                sender: Arc::new(
                    SnsNotifier::sms_only(clients.sns.clone())
                        .priced_at_most(config.sms_max_price.clone()),
                ),
                hasher: Arc::new(PhoneCodeHasher::new(&ring.signing().secret)),
                quotas: quotas(&config.quotas_table, clients),
                sms: config.sms,
                clock: clock.clone(),
            },
            verifier,
            limiter: Arc::new(UserRateLimiter::new(
                config.rate,
                Arc::new(DynamoRateCounter::new(
                    clients.dynamodb.clone(),
                    config.quotas_table.clone(),
                )),
                clock.clone(),
            )),
            clock,
        })
    }

    /// The ingest function's router, on the system clock.
    pub async fn ingest_router(
        config: &IngestConfig,
        clients: &AwsClients,
    ) -> Result<cuba_web::Router, ConfigError> {
        Ok(cuba_web::ingest::router(
            ingest_api(config, clients, Arc::new(SystemClock)).await?,
        ))
    }

    /// The admin function's router (API and UI), on the system clock.
    pub async fn admin_router(
        config: &AdminConfig,
        clients: &AwsClients,
        redrive: Option<Arc<dyn StreamRedrive>>,
    ) -> Result<cuba_web::Router, ConfigError> {
        Ok(cuba_web::admin::router(
            admin_api(config, clients, redrive, Arc::new(SystemClock)).await?,
        ))
    }

    /// The admin function: the admin API. The rule and schema stores were seeded at deployment
    /// (the store-seeding custom resource), so its cold start reads only its token keys.
    pub async fn admin_api(
        config: &AdminConfig,
        clients: &AwsClients,
        redrive: Option<Arc<dyn StreamRedrive>>,
        clock: Arc<dyn Clock>,
    ) -> Result<AdminApi, ConfigError> {
        let stream = &config.stream;
        let rules = document_store(&stream.rules, clients);
        let schemas = document_store(&stream.schemas, clients);
        let (keys, ring) =
            token_keys(&config.tokens, clients, Box::new(AdminVerifier::from_ring)).await?;
        let ports = stream_ports(stream, clients, clock.clone());
        let pipeline = ports.pipeline(
            document_source(&stream.rules, clients),
            document_source(&stream.schemas, clients),
            clock.clone(),
        );
        let verifier = token_check(&config.mode, keys)?;
        Ok(AdminApi {
            rules,
            schemas,
            errors: ports.errors.clone(),
            pipeline,
            browse: Arc::new(
                DynamoBrowse::new(
                    clients.dynamodb.clone(),
                    stream.events.name.clone(),
                    stream.event_pages_table.clone(),
                    stream.delivery.alerts.name.clone(),
                )
                .sharded(stream.events.shards),
            ),
            tally: activity_tally(&stream.rule_state_table, clients),
            profiles: profiles(&stream.delivery.profiles_table, clients),
            events: events(&stream.events, clients),
            state: ports.state.clone(),
            verifier,
            cursors: CursorSeal::new(&ring.signing().secret),
            silences: silences(&stream.delivery.quotas_table, clients),
            redrive,
            clock,
        })
    }
}
