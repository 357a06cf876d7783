//! `cuba-local dev`: the whole stack on moto. `cuba-local token`: a bearer token for a user
//! (`oidc-token`: one from the stand-in identity provider of `dev --tokens oidc`).
//! `cuba-local migrate-events`: the events table's copy to its time-sorted successor.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser};
use cuba_core::model::clock::{Clock, SystemClock};
use cuba_core::model::domain::UserId;
use cuba_lambda::settings::env;
use cuba_lambda::settings::env::{DEFAULT_LOCALE, DEFAULT_TIME_ZONE, QUIET_HOURS};
use cuba_local::oidc::{LocalIssuer, SigningAlgorithm, TokenRequest};
use cuba_local::runner::{self, StackOptions};
use cuba_web::auth::{AdminVerifier, KeyRing, TokenClaims, TokenVerifier};

/// The local stack on moto, and tokens for it.
///
/// The token secrets are CUBA_TOKEN_SECRET and CUBA_ADMIN_TOKEN_SECRET if set, else ones
/// generated once into .local/token-secret and .local/admin-token-secret.
#[derive(Parser)]
#[command(name = "cuba-local")]
enum Command {
    /// Provision moto from the template and run the whole stack.
    Dev(DevArgs),
    /// Print a bearer token for a user.
    Token {
        #[arg(long, default_value_t = 1)]
        user: u64,
        /// How long the token is valid.
        #[arg(long, default_value_t = 24)]
        hours: u64,
    },
    /// Print a token from the stand-in identity provider of a stack started with `dev --tokens
    /// oidc`.
    OidcToken {
        /// The user the token names (its `sub`).
        #[arg(long, default_value_t = 1)]
        user: u64,
        /// An admin token for the console instead (in the admin group, named by --sub).
        #[arg(long)]
        admin: bool,
        #[arg(long, default_value = "admin@localhost")]
        sub: String,
        #[arg(long, default_value_t = 24)]
        hours: u64,
        /// The stand-in issuer (`dev` prints it).
        #[arg(long, default_value = "http://127.0.0.1:3001")]
        issuer: String,
    },
    /// Print an admin token.
    AdminToken {
        /// Who the token names; recorded as the editor of every change.
        #[arg(long, default_value = "admin@localhost")]
        sub: String,
        #[arg(long, default_value_t = 24)]
        hours: u64,
    },
    /// Copy the events of the table before the time-sorted key (`<stack>-events`) into today's
    /// (`<stack>-events-v2`), listing them in the event pages table (`<stack>-event-pages`);
    /// safe to run again. Uses the AWS credentials and region of the environment, or moto with
    /// --endpoint.
    MigrateEvents {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        pages: String,
        /// The stack's EventRetentionDays: when the listing pages expire.
        #[arg(long, default_value_t = 400)]
        retention_days: u32,
        /// The stack's ListingShards.
        #[arg(long, default_value_t = 32)]
        listing_shards: u16,
        /// An endpoint to use instead of AWS (moto, for a local stack).
        #[arg(long)]
        endpoint: Option<String>,
    },
}

#[derive(Args)]
struct DevArgs {
    /// moto's endpoint.
    #[arg(long, default_value = "http://127.0.0.1:4566")]
    endpoint: String,
    /// The port the API and the admin UI listen on.
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// The stack name: resource names derive from it.
    #[arg(long, default_value = "cuba")]
    stack: String,
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// The initial rules (default: CUBA_RULES_FILE, else the built-in seed rules).
    #[arg(long)]
    rules: Option<PathBuf>,
    /// `hs256` (tokens signed with the local key rings) or `oidc` (tokens from a stand-in
    /// identity provider on the next port, as with Cognito or Auth0 in AWS).
    #[arg(long, default_value = "hs256")]
    tokens: TokenModeArg,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TokenModeArg {
    Hs256,
    Oidc,
}

/// The audiences and admin group of the local `oidc` mode.
const LOCAL_APP_AUDIENCE: &str = "cube-app";
const LOCAL_CONSOLE_AUDIENCE: &str = "cuba-console";
const LOCAL_ADMIN_GROUP_CLAIM: &str = "groups";
const LOCAL_ADMIN_GROUP: &str = "admin";

/// A token from the stand-in issuer at `issuer`.
async fn oidc_token(issuer: &str, request: &TokenRequest) -> Result<String> {
    let response = reqwest::Client::new()
        .post(format!("{}/token", issuer.trim_end_matches('/')))
        .json(request)
        .send()
        .await
        .with_context(|| {
            format!(
                "asking the stand-in issuer at {issuer} (is `make dev` running with --tokens oidc?)"
            )
        })?;
    let status = response.status();
    let text = response.text().await?;
    anyhow::ensure!(
        status.is_success(),
        "the stand-in issuer answered {status}: {text}"
    );
    Ok(text)
}

fn oidc_request(user: Option<u64>, sub: &str, hours: u64) -> TokenRequest {
    let lifetime = i64::try_from(hours * 3600).unwrap_or(i64::MAX);
    match user {
        Some(user) => TokenRequest {
            expires_in: lifetime,
            ..TokenRequest::new(user.to_string(), LOCAL_APP_AUDIENCE)
        },
        None => {
            let mut request = TokenRequest::new(sub, LOCAL_CONSOLE_AUDIENCE);
            request.expires_in = lifetime;
            request.claims.insert(
                LOCAL_ADMIN_GROUP_CLAIM.into(),
                serde_json::json!([LOCAL_ADMIN_GROUP]),
            );
            request
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    match Command::parse() {
        Command::Dev(args) => dev(args).await,
        Command::Token { user, hours } => {
            let verifier = TokenVerifier::with_claims(
                &KeyRing::parse(&user_secret()?)?,
                TokenClaims::default(),
            );
            println!(
                "{}",
                verifier.issue(UserId(user), SystemClock.now(), hours * 3600)
            );
            Ok(())
        }
        Command::OidcToken {
            user,
            admin,
            sub,
            hours,
            issuer,
        } => {
            let request = oidc_request((!admin).then_some(user), &sub, hours);
            println!("{}", oidc_token(&issuer, &request).await?);
            Ok(())
        }
        Command::MigrateEvents {
            from,
            to,
            pages,
            retention_days,
            listing_shards,
            endpoint,
        } => {
            let sdk = match endpoint {
                Some(endpoint) => cuba_local::moto_sdk_config(&endpoint).await,
                None => aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
            };
            let client = aws_sdk_dynamodb::Client::new(&sdk);
            let pages = cuba_aws::DynamoListingPages::new(client.clone(), pages)
                .retained_for(cuba_aws::Retention {
                    days: retention_days,
                })
                .sharded(
                    cuba_aws::partition_keys::ListingShards::new(listing_shards)
                        .ok_or_else(|| anyhow::anyhow!("--listing-shards: 1 to 256"))?,
                );
            let report = cuba_aws::migrate_events(&client, &from, &to, &pages).await?;
            println!(
                "copied {} events ({} id entries); {} were there already; {} other items left",
                report.copied, report.present, report.id_entries, report.skipped
            );
            Ok(())
        }
        Command::AdminToken { sub, hours } => {
            let verifier = AdminVerifier::from_ring(&KeyRing::parse(&admin_secret()?)?);
            println!(
                "{}",
                verifier.issue(&sub, Some("admin"), SystemClock.now(), hours * 3600)
            );
            Ok(())
        }
    }
}

fn user_secret() -> Result<String> {
    local_secret("CUBA_TOKEN_SECRET", "token-secret")
}

fn admin_secret() -> Result<String> {
    local_secret("CUBA_ADMIN_TOKEN_SECRET", "admin-token-secret")
}

/// A secret the local stack signs and checks tokens with: the environment's, else one generated
/// once into `.local/` (git-ignored), never committed.
fn local_secret(variable: &str, file: &str) -> Result<String> {
    if let Ok(secret) = std::env::var(variable) {
        return Ok(secret);
    }
    let path = Path::new(".local").join(file);
    if let Ok(secret) = std::fs::read_to_string(&path) {
        return Ok(secret.trim().to_owned());
    }
    std::fs::create_dir_all(".local")?;
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    std::fs::write(&path, &secret)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(secret)
}

async fn dev(args: DevArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,aws=warn,hyper=warn".into()),
        )
        .init();
    let DevArgs {
        endpoint,
        port,
        stack,
        template,
        rules,
        tokens,
    } = args;
    // The handlers count through the same facade as in Lambda; locally the metric documents
    // (CloudWatch EMF) are printed every 10 seconds.
    let metrics = cuba_lambda::embedded_metrics::FunctionMetrics::install();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
            metrics.flush();
        }
    });
    let sdk = cuba_local::moto_sdk_config(&endpoint).await;
    // The quiet-hours variables, set in `make dev`'s environment, try them (a window around now
    // sees an SMS held and leaving at its end); the local stack runs with them off otherwise.
    let mut vars: std::collections::BTreeMap<String, String> =
        [QUIET_HOURS, DEFAULT_TIME_ZONE, DEFAULT_LOCALE]
            .into_iter()
            .filter_map(|name| {
                std::env::var(name)
                    .ok()
                    .map(|value| (name.to_owned(), value))
            })
            .collect();
    let issuer = match tokens {
        TokenModeArg::Hs256 => None,
        TokenModeArg::Oidc => {
            let issuer = LocalIssuer::start(
                SocketAddr::from(([127, 0, 0, 1], port.saturating_add(1))),
                SigningAlgorithm::RS256,
            )
            .await?;
            let url = issuer.url().to_owned();
            vars.extend(
                [
                    (env::TOKEN_MODE, "oidc"),
                    (env::TOKEN_ISSUER, &url),
                    (env::TOKEN_AUDIENCE, LOCAL_APP_AUDIENCE),
                    (env::ADMIN_TOKEN_MODE, "oidc"),
                    (env::ADMIN_TOKEN_ISSUER, &url),
                    (env::ADMIN_TOKEN_AUDIENCE, LOCAL_CONSOLE_AUDIENCE),
                    (env::ADMIN_GROUP_CLAIM, LOCAL_ADMIN_GROUP_CLAIM),
                    (env::ADMIN_GROUP, LOCAL_ADMIN_GROUP),
                ]
                .map(|(name, value)| (name.to_owned(), value.to_owned())),
            );
            Some(issuer)
        }
    };
    let options = StackOptions {
        template_path: template,
        stack_name: stack,
        token_secret: user_secret()?,
        admin_token_secret: admin_secret()?,
        rules_file: rules.or_else(|| std::env::var_os("CUBA_RULES_FILE").map(PathBuf::from)),
        http_addr: SocketAddr::from(([127, 0, 0, 1], port)),
        clock: Arc::new(SystemClock),
        poll_stream: true,
        schedule_sweeps: true,
        seed_stores: true,
        faults: None,
        meter: None,
        access: None,
        env: vars,
        // Sent SMS get a (stand-in) carrier receipt, as in AWS.
        sms_receipts: true,
        // In `oidc` mode, as the template deploys by default.
        gateway_checks_tokens: true,
    };
    let mut stack = runner::start(&sdk, options).await?;
    stack.print_operator_alerts(&sdk);
    let (token, admin_token, more) = match &issuer {
        None => (
            stack
                .verifier
                .issue(UserId(1), SystemClock.now(), 24 * 3600),
            stack.admin_verifier.issue(
                "admin@localhost",
                Some("admin"),
                SystemClock.now(),
                24 * 3600,
            ),
            "cargo run -q -p cuba-local -- token --user 2".to_owned(),
        ),
        Some(issuer) => (
            issuer.mint(&oidc_request(Some(1), "", 24))?,
            issuer.mint(&oidc_request(None, "admin@localhost", 24))?,
            format!(
                "cargo run -q -p cuba-local -- oidc-token --issuer {} --user 2   (--admin for the console)\n  identity provider (stand-in)   {}/.well-known/openid-configuration",
                issuer.url(),
                issuer.url()
            ),
        ),
    };
    println!(
        "\nCuba is running.
  API            http://{addr}/api/v1/event/   /api/v1/feedback/   /api/v1/user/
  moto (AWS)     {endpoint}   (sent SMS: {endpoint}/moto-api/data.json, under sns.SMS)
  operator alerts are printed below as they arrive

  token for user 1 (24 h):
  export TOKEN={token}
  more tokens:   {more}

  admin UI       http://{addr}/admin/   (sign in with the admin token below)
  admin API      http://{addr}/admin/api/rules
  admin token (24 h):
  export ADMIN_TOKEN={admin_token}

Ctrl-C stops everything.\n",
        addr = stack.http_addr,
    );
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    Ok(())
}
