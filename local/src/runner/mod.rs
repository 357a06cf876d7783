//! Runs the three functions' handlers against moto the way Lambda would: the ingest router on a
//! TCP port, the rules handler fed `aws_lambda_events` DynamoDB stream batches polled from the
//! events table's stream, the absence handler fed SQS batches from the delay queue. Batch sizes,
//! retry limits and failure destinations come from the template's event source mappings.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use aws_lambda_events::dynamodb::EventRecord;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_types::SdkConfig;
use cuba_aws::StreamItem;
use cuba_core::model::clock::Clock;
use cuba_core::pipeline::smoke::SmokeTest;
use cuba_lambda::AwsClients;
use cuba_lambda::config::{
    AbsenceConfig, AdminConfig, IngestConfig, ReceiptsConfig, StoreSeedingConfig, StreamConfig,
    SweeperConfig,
};
use cuba_lambda::handlers::{AbsenceQueueHandler, StreamHandler, SweepHandler};
use cuba_lambda::redrive::StreamFailures;
use cuba_lambda::settings::{Settings, env};
use cuba_lambda::wiring;
use cuba_web::auth::{AdminVerifier, KeyRing, TokenCheck, TokenClaims, TokenVerifier};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::access::AccessLog;
use crate::faults::{FaultLog, FaultPlan, Faults};
use crate::meter::Meter;
use crate::provision::{Provisioned, create_queue, provision};
use crate::template::{Template, int_property};

mod filters;
mod gateway;
mod pollers;

use filters::RecordFilters;
pub mod sms_receipts;
pub use pollers::to_lambda_record;
use pollers::{StreamMapping, deliver_stream_batch, poll_queue, poll_stream};

pub const INGEST_FUNCTION: &str = "IngestFunction";
pub const RULES_FUNCTION: &str = "RulesFunction";
pub const ABSENCE_FUNCTION: &str = "AbsenceCheckFunction";
pub const ADMIN_FUNCTION: &str = "AdminFunction";
pub const SWEEPER_FUNCTION: &str = "SweeperFunction";
pub const RECEIPTS_FUNCTION: &str = "ReceiptsFunction";
pub const STORE_SEEDING_FUNCTION: &str = "StoreSeedingFunction";
/// The sweeper runs every minute on AWS; locally every two seconds, so that tests (and `make
/// dev`) see a dead worker's alert finished soon after its lease lapses.
const LOCAL_SWEEP_INTERVAL: Duration = Duration::from_secs(2);
pub const EVENTS_TABLE: &str = "EventsTable";
pub const ABSENCE_QUEUE: &str = "AbsenceQueue";
pub const OPERATOR_TOPIC: &str = "OperatorTopic";
/// The template's token key secrets (logical ids); the runner creates them in moto.
pub const USER_TOKEN_SECRET: &str = "UserTokenSecret";
pub const ADMIN_TOKEN_SECRET: &str = "AdminTokenSecret";
/// The key id the local stack's token keys carry.
pub const LOCAL_KID: &str = "local-1";
const LOCAL_RULES_CACHE_SECONDS: &str = "1";
/// Local ingest runs in-process and answers in milliseconds: a check need not wait AWS's 30 s.
const LOCAL_ABSENCE_SETTLE_SECONDS: &str = "1";

pub struct StackOptions {
    pub template_path: PathBuf,
    pub stack_name: String,
    pub token_secret: String,
    pub admin_token_secret: String,
    /// Overrides the built-in default rules, like `CUBA_RULES_FILE`.
    pub rules_file: Option<PathBuf>,
    pub http_addr: SocketAddr,
    pub clock: Arc<dyn Clock>,
    /// Off only in tests that drive the rules handler by hand (e.g. to race two invocations).
    pub poll_stream: bool,
    /// The sweeper's schedule, every [`LOCAL_SWEEP_INTERVAL`]. Off in the bench that times
    /// functions one at a time: each local sweep keeps moto busy for a fifth of a second, and
    /// the calls being timed would wait behind it.
    pub schedule_sweeps: bool,
    /// When set, the handlers' AWS calls fail by this plan, and stream handler invocations are
    /// cut off part-way at the same rate (the pollers, AWS's side of Lambda, stay fault-free).
    pub faults: Option<FaultPlan>,
    /// Meters every AWS request the handlers make (the cost bench).
    pub meter: Option<Arc<Meter>>,
    /// Records which actions each function performs on which resources (the least-privilege
    /// test).
    pub access: Option<Arc<AccessLog>>,
    /// Variables set in every function's environment over the template's (a test's listing
    /// shard count, say).
    pub env: BTreeMap<String, String>,
    /// Reports moto's sent SMS to the receipts handler as SNS's delivery status log would
    /// ([`sms_receipts`]), so sent SMS become `delivered` or `failed`. Off where a test counts
    /// alerts `sent`.
    pub sms_receipts: bool,
    /// Seeds the rule and schema stores before the functions start, as the template's
    /// store-seeding custom resource does when CloudFormation creates the stack. Off only in
    /// the test of that function itself, which seeds fresh tables.
    pub seed_stores: bool,
    /// In `oidc` mode, API Gateway's JWT authorizers check each token before the functions do,
    /// as with the template's `GatewayChecksTokens` `true` (its default); off, the functions
    /// alone check them (`false`, an ES256 provider's deployment). No effect in `hs256` mode.
    pub gateway_checks_tokens: bool,
}

impl StackOptions {
    /// A stack named `stack_name` from `template_path` with these token secrets: the default
    /// rules, the system clock, an HTTP port of the system's choosing, the stream polled, the
    /// sweeper on its schedule, no faults, no meter. Benches and tests change what they need with `..`.
    pub fn new(
        template_path: PathBuf,
        stack_name: String,
        token_secret: String,
        admin_token_secret: String,
    ) -> Self {
        StackOptions {
            template_path,
            stack_name,
            token_secret,
            admin_token_secret,
            rules_file: None,
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            clock: Arc::new(cuba_core::model::clock::SystemClock),
            poll_stream: true,
            schedule_sweeps: true,
            faults: None,
            meter: None,
            access: None,
            env: BTreeMap::new(),
            sms_receipts: false,
            seed_stores: true,
            gateway_checks_tokens: true,
        }
    }

    /// The options a bench runs its own stack with: secrets of its own, named for the process.
    pub fn for_bench(root: &std::path::Path, name: &str) -> Self {
        StackOptions::new(
            root.join("template.yaml"),
            format!("{name}{}", std::process::id()),
            "bench-secret-bench-secret-bench-secret".into(),
            "bench-admin-secret-bench-admin-secret".into(),
        )
    }
}

/// How far the event-driven handlers have got, for tests that must wait for them.
#[derive(Debug, Default)]
pub struct Progress {
    /// Stream records of events (new ones, and updates) the rules handler has finished with.
    pub stream_records: AtomicU64,
    /// Absence checks the rules handler has decided (posted into the stream once ripe).
    pub due_checks: AtomicU64,
    /// Delay-queue messages the absence handler has finished with (acknowledged).
    pub queue_messages: AtomicU64,
}

impl Progress {
    /// Counts stream records the rules handler is done with, events and checks apart (ids'
    /// lookup entries and migrated copies, which it passes over, are neither).
    fn finished(&self, records: &[EventRecord]) {
        let images = records
            .iter()
            .map(|r| &r.change.new_image)
            .filter(|image| !StreamItem::is_passed_over(image));
        let (checks, events) = images.fold((0, 0), |(checks, events), image| {
            if StreamItem::is_due_check(image) {
                (checks + 1, events)
            } else {
                (checks, events + 1)
            }
        });
        self.due_checks.fetch_add(checks, Ordering::SeqCst);
        self.stream_records.fetch_add(events, Ordering::SeqCst);
    }
}

pub struct RunningStack {
    pub http_addr: SocketAddr,
    pub provisioned: Provisioned,
    pub progress: Arc<Progress>,
    pub verifier: TokenVerifier,
    pub admin_verifier: AdminVerifier,
    /// A local stand-in for the ops team's subscription: a queue subscribed to the operator
    /// topic with raw delivery.
    pub ops_inbox_url: String,
    /// The same handlers the pollers call, for tests that replay or race deliveries.
    pub stream_handler: StreamHandler,
    /// What the rules function runs when invoked with `{"smoke_test": {...}}`, on its clients.
    pub smoke_test: SmokeTest,
    /// The rules function's redrive (what `{"redrive": {}}` runs), with its clients.
    pub rules_redrive: Option<StreamFailures>,
    pub absence_handler: AbsenceQueueHandler,
    pub stream_arn: String,
    /// What the fault plan injected, when there is one.
    pub fault_log: Option<Arc<FaultLog>>,
    /// The fault plan's injector, when there is one (a test may change its rate mid-run).
    pub faults: Option<Arc<Faults>>,
    /// Lambda's side of the stream mapping: its on-failure queue, and the client it sends with.
    failure_queue_url: Option<String>,
    platform_sqs: aws_sdk_sqs::Client,
    /// Each function's environment as the template gives it (by logical id), for running the
    /// real binaries against this stack.
    pub function_env: BTreeMap<&'static str, BTreeMap<String, String>>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningStack {
    /// Hands `records` of the stream's shard `shard_id` to the rules handler as Lambda's stream
    /// mapping does (for a stack started without polling the stream): retried from each
    /// reported failure up to `max_retries` times, then sent to the on-failure queue.
    pub async fn deliver_stream_records(
        &self,
        shard_id: &str,
        records: Vec<EventRecord>,
        max_retries: u32,
    ) {
        let mapping = StreamMapping {
            batch_size: i32::try_from(records.len()).unwrap_or(i32::MAX),
            max_retries,
            failure_queue_url: self.failure_queue_url.clone(),
            crashes: None,
            filters: RecordFilters::default(),
        };
        deliver_stream_batch(
            &self.stream_handler,
            &self.platform_sqs,
            &mapping,
            &self.stream_arn,
            shard_id,
            records,
            &self.progress,
        )
        .await;
    }
}

impl Drop for RunningStack {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

pub async fn start(sdk: &SdkConfig, options: StackOptions) -> Result<RunningStack> {
    let text = std::fs::read_to_string(&options.template_path)
        .with_context(|| format!("reading {}", options.template_path.display()))?;
    let template = Template::parse(&text)?;
    // The secrets the template declares, holding the keys this stack was given.
    let ring = |secret: &str| json!({"kid": LOCAL_KID, "secret": secret}).to_string();
    let secrets = BTreeMap::from([
        (USER_TOKEN_SECRET.to_owned(), ring(&options.token_secret)),
        (
            ADMIN_TOKEN_SECRET.to_owned(),
            ring(&options.admin_token_secret),
        ),
    ]);
    let provisioned = provision(
        sdk,
        &template,
        &options.stack_name,
        &BTreeMap::new(),
        &secrets,
    )
    .await?;
    let function_env = function_environments(&template, &provisioned, &options)?;
    let settings = |function: &str| {
        let vars = function_env.get(function).cloned().unwrap_or_default();
        Settings::new(move |name| vars.get(name).cloned())
    };

    let faults = options.faults.map(Faults::new);
    let clients = HandlerClients::new(
        sdk,
        faults.as_ref(),
        options.meter.as_ref(),
        options.access.as_ref(),
    );
    let clock = options.clock;
    if options.seed_stores {
        wiring::store_seeding(
            &StoreSeedingConfig::from_settings(&settings(STORE_SEEDING_FUNCTION))?,
            &clients.of(STORE_SEEDING_FUNCTION),
            clock.clone(),
        )?
        .seed()
        .await?;
    }
    let api = wiring::ingest_api(
        &IngestConfig::from_settings(&settings(INGEST_FUNCTION))?,
        &clients.of(INGEST_FUNCTION),
        clock.clone(),
    )
    .await?;
    // Tokens signed with the stack's key ring, for tests and tools (refused in `oidc` mode).
    let verifier = match &api.verifier {
        TokenCheck::Keys(keys) => (*keys.current().await).clone(),
        TokenCheck::Provider(_) => TokenVerifier::with_claims(
            &KeyRing::parse(&ring(&options.token_secret))?,
            TokenClaims::default(),
        ),
    };
    let admin_config = AdminConfig::from_settings(&settings(ADMIN_FUNCTION))?;
    let redrive = wiring::console_redrive(
        &admin_config.stream,
        &clients.of(ADMIN_FUNCTION),
        clients.streams(sdk, ADMIN_FUNCTION),
        clock.clone(),
    );
    let admin = wiring::admin_api(
        &admin_config,
        &clients.of(ADMIN_FUNCTION),
        redrive,
        clock.clone(),
    )
    .await?;
    let admin_verifier = match &admin.verifier {
        TokenCheck::Keys(keys) => (*keys.current().await).clone(),
        TokenCheck::Provider(_) => {
            AdminVerifier::from_ring(&KeyRing::parse(&ring(&options.admin_token_secret))?)
        }
    };
    let stream_config = StreamConfig::from_settings(&settings(RULES_FUNCTION))?;
    let stream_handler =
        wiring::stream_handler(&stream_config, &clients.of(RULES_FUNCTION), clock.clone());
    let smoke_test =
        wiring::smoke_test(&stream_config, &clients.of(RULES_FUNCTION), clock.clone())?;
    // What the rules function does when invoked with {"redrive": {}}.
    let rules_redrive = stream_config
        .failure_queue_url
        .clone()
        .map(|queue_url| StreamFailures {
            sqs: clients.of(RULES_FUNCTION).sqs,
            streams: clients.streams(sdk, RULES_FUNCTION),
            queue_url,
        });
    let absence_handler = wiring::absence_handler(
        &AbsenceConfig::from_settings(&settings(ABSENCE_FUNCTION))?,
        &clients.of(ABSENCE_FUNCTION),
        clock.clone(),
    );
    let sweeper_config = SweeperConfig::from_settings(&settings(SWEEPER_FUNCTION))?;
    // What the sweeper does at its first sweep: moto keeps the account's SMS attributes.
    wiring::turn_on_sms_delivery_status(&sweeper_config, &clients.of(SWEEPER_FUNCTION)).await;
    let receipts = wiring::receipts_handler(
        &ReceiptsConfig::from_settings(&settings(RECEIPTS_FUNCTION))?,
        &clients.of(RECEIPTS_FUNCTION),
        clock.clone(),
    );
    let sweeper = wiring::sweep_handler(&sweeper_config, &clients.of(SWEEPER_FUNCTION), clock);

    let (mapping, stream_arn) = stream_mapping(&template, &provisioned, faults.as_ref())?;
    let failure_queue_url = mapping.failure_queue_url.clone();
    let (queue_url, queue_batch) = queue_mapping(&template, &provisioned)?;
    let ops_inbox_url = subscribe_ops_inbox(sdk, &provisioned).await?;

    let listener = tokio::net::TcpListener::bind(options.http_addr)
        .await
        .with_context(|| format!("binding {}", options.http_addr))?;
    let http_addr = listener.local_addr()?;
    // API Gateway routes /api/v1 and /admin/api to two functions; locally one server takes both.
    let router = cuba_web::error::with_error_fallbacks(
        cuba_web::ingest::routes(api).merge(cuba_web::admin::routes(admin)),
    );
    let router = match gateway_authorizers(&function_env, options.gateway_checks_tokens) {
        Some(authorizers) => router.layer(axum::middleware::from_fn_with_state(
            Arc::new(authorizers),
            gateway::check_tokens,
        )),
        None => router,
    };
    let progress = Arc::new(Progress::default());
    // Lambda's pollers and queue deletes are AWS's side: never faulted.
    let platform = AwsClients::new(sdk);
    let mut tasks = vec![tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    })];
    if options.poll_stream {
        tasks.push(tokio::spawn(poll_stream(
            aws_sdk_dynamodbstreams::Client::new(sdk),
            platform.sqs.clone(),
            stream_arn.clone(),
            mapping,
            stream_handler.clone(),
            progress.clone(),
        )));
    }
    if options.schedule_sweeps {
        tasks.push(tokio::spawn(sweep_on_schedule(sweeper)));
    }
    if options.sms_receipts {
        let moto = sdk
            .endpoint_url()
            .ok_or_else(|| anyhow!("the local stack's SDK has no endpoint (moto's)"))?
            .to_owned();
        tasks.push(tokio::spawn(sms_receipts::relay_sms_receipts(
            moto, receipts,
        )));
    }
    tasks.push(tokio::spawn(poll_queue(
        platform.sqs.clone(),
        queue_url,
        queue_batch,
        absence_handler.clone(),
        progress.clone(),
    )));
    Ok(RunningStack {
        http_addr,
        provisioned,
        progress,
        verifier,
        admin_verifier,
        ops_inbox_url,
        stream_handler,
        smoke_test,
        rules_redrive,
        absence_handler,
        stream_arn,
        fault_log: faults.as_ref().map(|f| f.log.clone()),
        faults,
        failure_queue_url,
        platform_sqs: platform.sqs,
        function_env,
        tasks,
    })
}

/// The HTTP API's JWT authorizers, where the deployment has them: `oidc` mode (one parameter in
/// the template sets both functions' modes) with the gateway checking tokens. Each authorizer's
/// issuer and audience are the template parameters its function's environment carries too.
fn gateway_authorizers(
    function_env: &BTreeMap<&'static str, BTreeMap<String, String>>,
    gateway_checks_tokens: bool,
) -> Option<gateway::JwtAuthorizers> {
    let var = |function: &str, name: &str| function_env.get(function)?.get(name).cloned();
    let oidc = |function: &str, mode: &str| var(function, mode).as_deref() == Some("oidc");
    if !gateway_checks_tokens
        || !oidc(INGEST_FUNCTION, env::TOKEN_MODE)
        || !oidc(ADMIN_FUNCTION, env::ADMIN_TOKEN_MODE)
    {
        return None;
    }
    Some(gateway::JwtAuthorizers {
        user: gateway::JwtAuthorizer::new(
            var(INGEST_FUNCTION, env::TOKEN_ISSUER)?,
            var(INGEST_FUNCTION, env::TOKEN_AUDIENCE)?,
        ),
        admin: gateway::JwtAuthorizer::new(
            var(ADMIN_FUNCTION, env::ADMIN_TOKEN_ISSUER)?,
            var(ADMIN_FUNCTION, env::ADMIN_TOKEN_AUDIENCE)?,
        ),
    })
}

/// Each function's environment as the template gives it (by logical id), with the local
/// stack's shorter waits and the options' rules file.
fn function_environments(
    template: &Template,
    provisioned: &Provisioned,
    options: &StackOptions,
) -> Result<BTreeMap<&'static str, BTreeMap<String, String>>> {
    let mut environments = BTreeMap::new();
    for function in [
        INGEST_FUNCTION,
        RULES_FUNCTION,
        ABSENCE_FUNCTION,
        ADMIN_FUNCTION,
        SWEEPER_FUNCTION,
        RECEIPTS_FUNCTION,
        STORE_SEEDING_FUNCTION,
    ] {
        let mut vars = template.function_environment(function, &provisioned.known)?;
        // The local stack promises rule changes within 2 seconds, not AWS's 30.
        vars.insert(
            env::RULES_CACHE_SECONDS.to_owned(),
            LOCAL_RULES_CACHE_SECONDS.to_owned(),
        );
        if vars.contains_key(env::ABSENCE_SETTLE_SECONDS) {
            vars.insert(
                env::ABSENCE_SETTLE_SECONDS.to_owned(),
                LOCAL_ABSENCE_SETTLE_SECONDS.to_owned(),
            );
        }
        if let Some(rules) = &options.rules_file {
            vars.insert(env::RULES_FILE.to_owned(), rules.display().to_string());
        }
        // A local stack sends its SMS at once, whatever the hour it runs at (tests expect them);
        // a test or `make dev` that wants quiet hours sets them through the options.
        if vars.contains_key(env::QUIET_HOURS) {
            vars.insert(env::QUIET_HOURS.to_owned(), "off".to_owned());
        }
        vars.extend(options.env.clone());
        environments.insert(function, vars);
    }
    Ok(environments)
}

/// The clients the handlers reach AWS with.
struct HandlerClients {
    /// Through the fault plan and the meter, when the options have them.
    functions: AwsClients,
    /// The sweeper's: faulted, but never metered (it runs on a schedule whatever the traffic,
    /// a fixed cost kept out of the cost bench).
    sweeper: AwsClients,
    /// The admin function's: as `functions`, but their DynamoDB calls wait as long as the
    /// console's requests may take ([`MOTO_LISTING_TIMEOUT`]).
    admin: AwsClients,
    /// Each function's clients record what they do here, when set.
    access: Option<Arc<AccessLog>>,
}

impl HandlerClients {
    /// The clients of the function `logical_id` (the sweeper's for the sweeper).
    fn of(&self, logical_id: &str) -> AwsClients {
        let base = match logical_id {
            SWEEPER_FUNCTION => &self.sweeper,
            ADMIN_FUNCTION => &self.admin,
            _ => &self.functions,
        };
        match &self.access {
            Some(access) => intercepted(base, || access.interceptor(logical_id), true),
            None => base.clone(),
        }
    }

    /// A DynamoDB Streams client of the function `logical_id` (a redrive reads records back).
    fn streams(&self, sdk: &SdkConfig, logical_id: &str) -> aws_sdk_dynamodbstreams::Client {
        let config = aws_sdk_dynamodbstreams::config::Builder::from(sdk);
        match &self.access {
            Some(access) => aws_sdk_dynamodbstreams::Client::from_conf(
                config.interceptor(access.interceptor(logical_id)).build(),
            ),
            None => aws_sdk_dynamodbstreams::Client::from_conf(config.build()),
        }
    }

    fn new(
        sdk: &SdkConfig,
        faults: Option<&Arc<Faults>>,
        meter: Option<&Arc<Meter>>,
        access: Option<&Arc<AccessLog>>,
    ) -> Self {
        let access = access.cloned();
        let clients = match faults {
            None => AwsClients::new(sdk),
            // Retries back off from 20 ms instead of the SDK's 1 s: the same retries, in less time.
            Some(faults) => AwsClients::new(
                &sdk.to_builder()
                    .http_client(faults.http_client())
                    .retry_config(
                        aws_sdk_dynamodb::config::retry::RetryConfig::standard()
                            .with_initial_backoff(Duration::from_millis(20)),
                    )
                    .build(),
            ),
        };
        let Some(meter) = meter else {
            return HandlerClients {
                functions: clients.clone(),
                admin: patient(&clients),
                sweeper: clients,
                access,
            };
        };
        // Secrets are read once, at a cold start: not a cost of traffic.
        let functions = intercepted(&clients, || meter.interceptor(), false);
        HandlerClients {
            admin: patient(&functions),
            functions,
            sweeper: clients,
            access,
        }
    }
}

/// How long the local admin function's DynamoDB calls may take, retries included (the
/// deployed function's are bounded by [`cuba_aws::AWS_OPERATION_TIMEOUT`]). A listing across
/// users queries its 32 shards at once: DynamoDB answers each in milliseconds, but moto answers
/// one request at a time, and beside the whole suite on two cores the last of the 32 waited
/// past the deployed bound, so the console showed an error where AWS would not. Still under
/// the function's 29 s timeout, as API Gateway's limit requires.
const MOTO_LISTING_TIMEOUT: Duration = Duration::from_secs(25);

/// `clients` whose DynamoDB calls wait up to [`MOTO_LISTING_TIMEOUT`].
fn patient(clients: &AwsClients) -> AwsClients {
    let timeouts = aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
        .operation_timeout(MOTO_LISTING_TIMEOUT)
        .operation_attempt_timeout(MOTO_LISTING_TIMEOUT / 2)
        .build();
    AwsClients {
        dynamodb: aws_sdk_dynamodb::Client::from_conf(
            clients
                .dynamodb
                .config()
                .to_builder()
                .timeout_config(timeouts)
                .build(),
        ),
        ..clients.clone()
    }
}

/// `clients` with an interceptor from `make` on their DynamoDB, SQS and SNS clients, and on
/// Secrets Manager's when `secrets`.
fn intercepted<I: Intercept + 'static>(
    clients: &AwsClients,
    make: impl Fn() -> I,
    secrets: bool,
) -> AwsClients {
    AwsClients {
        dynamodb: aws_sdk_dynamodb::Client::from_conf(
            clients
                .dynamodb
                .config()
                .to_builder()
                .interceptor(make())
                .build(),
        ),
        sqs: aws_sdk_sqs::Client::from_conf(
            clients
                .sqs
                .config()
                .to_builder()
                .interceptor(make())
                .build(),
        ),
        sns: aws_sdk_sns::Client::from_conf(
            clients
                .sns
                .config()
                .to_builder()
                .interceptor(make())
                .build(),
        ),
        secrets: if secrets {
            aws_sdk_secretsmanager::Client::from_conf(
                clients
                    .secrets
                    .config()
                    .to_builder()
                    .interceptor(make())
                    .build(),
            )
        } else {
            clients.secrets.clone()
        },
    }
}

/// The rules function's DynamoDB event source as the template declares it, and its stream.
fn stream_mapping(
    template: &Template,
    provisioned: &Provisioned,
    faults: Option<&Arc<Faults>>,
) -> Result<(StreamMapping, String)> {
    let mapping = template.event_source(RULES_FUNCTION, "DynamoDB", &provisioned.known)?;
    let failure_queue_url = match mapping
        .pointer("/DestinationConfig/OnFailure/Destination")
        .and_then(Value::as_str)
    {
        None => None,
        Some(arn) => Some(queue_url_for_arn(provisioned, arn)?),
    };
    let stream_arn = mapping
        .get("Stream")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the rules function's DynamoDB event has no Stream"))?
        .to_owned();
    let stream = StreamMapping {
        batch_size: int_property(&mapping, "BatchSize").unwrap_or(100) as i32,
        max_retries: int_property(&mapping, "MaximumRetryAttempts").unwrap_or(10000) as u32,
        failure_queue_url,
        crashes: faults.cloned(),
        filters: RecordFilters::from_mapping(&mapping)?,
    };
    Ok((stream, stream_arn))
}

/// The absence function's SQS event source: the delay queue's URL and the batch size.
fn queue_mapping(template: &Template, provisioned: &Provisioned) -> Result<(String, i32)> {
    let mapping = template.event_source(ABSENCE_FUNCTION, "SQS", &provisioned.known)?;
    let batch = int_property(&mapping, "BatchSize").unwrap_or(10) as i32;
    let queue = mapping
        .get("Queue")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the absence function's SQS event has no Queue"))?;
    Ok((queue_url_for_arn(provisioned, queue)?, batch))
}

/// The sweeper's schedule, run locally every [`LOCAL_SWEEP_INTERVAL`], as Lambda runs it.
async fn sweep_on_schedule(sweeper: SweepHandler) {
    loop {
        tokio::time::sleep(LOCAL_SWEEP_INTERVAL).await;
        match sweeper.handle().await {
            Ok(report) if report.released > 0 || report.groups_sent > 0 => {
                tracing::info!(?report, "the sweeper sent held SMS or group messages");
            }
            Ok(_) => {}
            // Stuck alerts fail the invocation in Lambda: the error alarm's case.
            Err(e) => tracing::warn!(error = %e, "sweep failed"),
        }
    }
}

impl RunningStack {
    /// Prints each operator alert as it arrives, for `make dev`.
    pub fn print_operator_alerts(&mut self, sdk: &SdkConfig) {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let url = self.ops_inbox_url.clone();
        self.tasks.push(tokio::spawn(async move {
            loop {
                let received = sqs
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .send()
                    .await;
                let Ok(received) = received else {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                };
                for message in received.messages.unwrap_or_default() {
                    println!(
                        "OPERATOR ALERT  {}",
                        message.body.as_deref().unwrap_or_default()
                    );
                    if let Some(handle) = message.receipt_handle {
                        let _ = sqs
                            .delete_message()
                            .queue_url(&url)
                            .receipt_handle(handle)
                            .send()
                            .await;
                    }
                }
            }
        }));
    }
}

fn queue_url_for_arn(provisioned: &Provisioned, arn: &str) -> Result<String> {
    let name = arn.rsplit(':').next().unwrap_or_default();
    provisioned
        .queue_urls
        .values()
        .find(|url| url.rsplit('/').next() == Some(name))
        .cloned()
        .ok_or_else(|| anyhow!("no queue with ARN {arn} in the template"))
}

async fn subscribe_ops_inbox(sdk: &SdkConfig, provisioned: &Provisioned) -> Result<String> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let sns = aws_sdk_sns::Client::new(sdk);
    let name = format!("{}-ops-inbox", provisioned.stack_name);
    let (url, arn, _) = create_queue(&sqs, &json!({ "QueueName": name })).await?;
    sns.subscribe()
        .topic_arn(provisioned.topic_arn(OPERATOR_TOPIC)?)
        .protocol("sqs")
        .endpoint(arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "subscribing {name}: {}",
                aws_sdk_sns::error::DisplayErrorContext(e)
            )
        })?;
    Ok(url)
}
