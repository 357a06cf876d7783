//! `cuba-local dev`: the whole stack on moto. `cuba-local token`: a bearer token for a user.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use cuba_core::clock::{Clock, SystemClock};
use cuba_core::domain::UserId;
use cuba_local::runner::{self, StackOptions};
use cuba_web::auth::{AdminVerifier, TokenSecret, TokenVerifier};

const USAGE: &str = "usage:
  cuba-local dev   [--endpoint URL] [--port N] [--stack NAME] [--template FILE] [--rules FILE]
  cuba-local token [--user N] [--hours N]
  cuba-local admin-token [--sub NAME] [--hours N]

The token secrets are CUBA_TOKEN_SECRET and CUBA_ADMIN_TOKEN_SECRET if set, else ones generated
once into .local/token-secret and .local/admin-token-secret.";

struct Args(Vec<String>);

impl Args {
    fn value(&self, flag: &str) -> Option<&str> {
        self.0
            .iter()
            .position(|a| a == flag)
            .and_then(|i| self.0.get(i + 1))
            .map(String::as_str)
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = raw.first().cloned() else {
        bail!("{USAGE}");
    };
    let args = Args(raw);
    match command.as_str() {
        "dev" => dev(&args).await,
        "token" => {
            let user: u64 = args
                .value("--user")
                .unwrap_or("1")
                .parse()
                .context("--user must be a number")?;
            let hours: u64 = args
                .value("--hours")
                .unwrap_or("24")
                .parse()
                .context("--hours must be a number")?;
            let verifier = TokenVerifier::new(&TokenSecret::new(user_secret()?.into_bytes())?);
            println!(
                "{}",
                verifier.issue(UserId(user), SystemClock.now(), hours * 3600)
            );
            Ok(())
        }
        "admin-token" => {
            let sub = args.value("--sub").unwrap_or("admin@localhost");
            let hours: u64 = args
                .value("--hours")
                .unwrap_or("24")
                .parse()
                .context("--hours must be a number")?;
            let verifier = AdminVerifier::new(&TokenSecret::new(admin_secret()?.into_bytes())?);
            println!(
                "{}",
                verifier.issue(sub, Some("admin"), SystemClock.now(), hours * 3600)
            );
            Ok(())
        }
        _ => bail!("{USAGE}"),
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

async fn dev(args: &Args) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,aws=warn,hyper=warn".into()),
        )
        .init();
    let endpoint = args
        .value("--endpoint")
        .unwrap_or("http://127.0.0.1:4566")
        .to_owned();
    let port: u16 = args
        .value("--port")
        .unwrap_or("3000")
        .parse()
        .context("--port must be a number")?;
    let sdk = cuba_local::moto_sdk_config(&endpoint).await;
    let options = StackOptions {
        template_path: PathBuf::from(args.value("--template").unwrap_or("template.yaml")),
        stack_name: args.value("--stack").unwrap_or("cuba").to_owned(),
        token_secret: user_secret()?,
        admin_token_secret: admin_secret()?,
        rules_file: args
            .value("--rules")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("CUBA_RULES_FILE").map(PathBuf::from)),
        http_addr: SocketAddr::from(([127, 0, 0, 1], port)),
        clock: Arc::new(SystemClock),
        poll_stream: true,
    };
    let mut stack = runner::start(&sdk, options).await?;
    stack.print_operator_alerts(&sdk);
    let token = stack
        .verifier
        .issue(UserId(1), SystemClock.now(), 24 * 3600);
    let admin_token = stack.admin_verifier.issue(
        "admin@localhost",
        Some("admin"),
        SystemClock.now(),
        24 * 3600,
    );
    println!(
        "\nCuba is running.
  API            http://{addr}/api/v1/event/   /api/v1/feedback/   /api/v1/user/
  moto (AWS)     {endpoint}   (sent SMS: {endpoint}/moto-api/data.json, under sns.SMS)
  operator alerts are printed below as they arrive

  token for user 1 (24 h):
  export TOKEN={token}
  more tokens:   cargo run -q -p cuba-local -- token --user 2

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
