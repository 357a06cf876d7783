//! The AWS SDK's configuration, as each function loads it once per cold start.
//!
//! The SDK's default HTTPS client trusts the system's certificate store, which it reads and
//! parses whole while the function starts: every root the operating system ships, and on a
//! Debian-like system every file of `/etc/ssl/certs` too (4.5 ms of each cold start on the
//! bench's machine). AWS's service endpoints present certificates of Amazon Trust Services, so
//! the functions' AWS calls trust exactly its roots, built in: nothing is read from disk, five
//! certificates are parsed, and no other authority can stand in for an AWS endpoint.
//! `CUBA_AWS_TRUST_STORE=system` gives the system's store back (a network whose proxy inspects
//! TLS with an authority of its own).

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, Connector, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::HttpConnectorSettings;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_types::sdk_config::SharedHttpClient;

use crate::settings::{ConfigError, Settings, env};

/// Amazon Trust Services' roots (Amazon Root CA 1 to 4, and the Starfield Services root that
/// cross-signs them), as PEM.
pub const AMAZON_TRUST_SERVICES: &str = include_str!("amazon-trust-services.pem");

/// The roots the functions' AWS calls trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsTrust {
    /// Amazon Trust Services' roots, built in (the default).
    AmazonRoots,
    /// The system's certificate store, as the SDK reads it by default.
    System,
}

impl AwsTrust {
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        match settings.optional(env::AWS_TRUST_STORE).as_deref() {
            None | Some("amazon") => Ok(AwsTrust::AmazonRoots),
            Some("system") => Ok(AwsTrust::System),
            Some(_) => Err(ConfigError::Invalid(
                env::AWS_TRUST_STORE,
                "`amazon` or `system`",
            )),
        }
    }
}

/// The SDK configuration: Region and credentials from the environment (as
/// `aws_config::load_from_env` reads them), its HTTPS client trusting what the settings say.
pub async fn load(settings: &Settings<'_>) -> Result<aws_types::SdkConfig, ConfigError> {
    Ok(loader(settings)?.load().await)
}

fn loader(settings: &Settings<'_>) -> Result<aws_config::ConfigLoader, ConfigError> {
    let loader = aws_config::from_env();
    Ok(match AwsTrust::from_settings(settings)? {
        AwsTrust::System => loader,
        AwsTrust::AmazonRoots => loader.http_client(https_client(AMAZON_TRUST_SERVICES)?),
    })
}

/// A TLS context trusting only `roots` (PEM).
fn trusting(roots: &str) -> Result<TlsContext, ConfigError> {
    TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(roots.as_bytes()))
        .build()
        .map_err(|e| ConfigError::AwsTls(e.to_string()))
}

/// A connector for requests to AWS made outside the SDK's clients (a custom resource's answer
/// to CloudFormation's S3 URL), trusting what the settings say.
#[cfg(feature = "store-seeding")]
pub fn https_connector(
    settings: &Settings,
) -> Result<aws_smithy_http_client::Connector, ConfigError> {
    let tls = match AwsTrust::from_settings(settings)? {
        AwsTrust::System => TlsContext::default(),
        AwsTrust::AmazonRoots => trusting(AMAZON_TRUST_SERVICES)?,
    };
    Ok(connector(tls, None, None))
}

/// The SDK's default HTTPS client, trusting only `roots` (PEM).
fn https_client(roots: &str) -> Result<SharedHttpClient, ConfigError> {
    let tls = trusting(roots)?;
    Ok(
        Builder::new().build_with_connector_fn(move |settings, components| {
            connector(tls.clone(), settings, components)
        }),
    )
}

/// A connector made as `aws-smithy-runtime`'s `default_https_client` makes the SDK's (rustls on
/// aws-lc, proxies from the environment), with the TLS context `tls`.
fn connector(
    tls: TlsContext,
    settings: Option<&HttpConnectorSettings>,
    components: Option<&RuntimeComponents>,
) -> Connector {
    let mut connector = ConnectorBuilder::default()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(tls);
    connector.set_connector_settings(settings.cloned());
    if let Some(components) = components {
        connector.set_sleep_impl(components.sleep_impl());
    }
    connector.set_proxy_config(Some(ProxyConfig::from_env()));
    connector.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn the_built_in_roots_are_amazon_trust_services_five_each_a_trust_anchor() {
        let roots = CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("PEM");
        assert_eq!(roots.len(), 5);
        let mut store = rustls::RootCertStore::empty();
        let (valid, invalid) = store.add_parsable_certificates(roots);
        assert_eq!((valid, invalid), (5, 0));
    }

    #[tokio::test]
    async fn aws_calls_are_made_over_tls_by_the_client_holding_the_built_in_roots() {
        // A server that is not AWS: it takes the first bytes of a call and hangs up.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let address = listener.local_addr().expect("its address");
        let first_byte = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let (mut socket, _) = listener.accept().await.expect("a connection");
            socket.read_u8().await.expect("a first byte")
        });
        let first_byte = tokio::time::timeout(std::time::Duration::from_secs(30), first_byte);
        let sdk = loader(&Settings::from_pairs(&[]))
            .expect("the loader")
            .region(aws_types::region::Region::new("us-east-1"))
            .test_credentials()
            .endpoint_url(format!("https://{address}"))
            .load()
            .await;
        let call = crate::AwsClients::new(&sdk)
            .dynamodb
            .list_tables()
            .send()
            .await;
        assert!(call.is_err(), "a server that hangs up answers nothing");
        // 0x16: a TLS handshake record, the client's hello.
        let first_byte = first_byte
            .await
            .expect("the call reached the server (not a proxy) within 30 s")
            .expect("the server");
        assert_eq!(first_byte, 0x16);
    }

    #[test]
    fn the_trust_store_setting_is_amazon_by_default_or_system_and_nothing_else() {
        let trust = |value: &str| {
            AwsTrust::from_settings(&Settings::from_pairs(&[(env::AWS_TRUST_STORE, value)]))
        };
        assert!(matches!(trust(""), Ok(AwsTrust::AmazonRoots)));
        assert!(matches!(trust("amazon"), Ok(AwsTrust::AmazonRoots)));
        assert!(matches!(trust("system"), Ok(AwsTrust::System)));
        assert!(matches!(
            trust("none"),
            Err(ConfigError::Invalid(env::AWS_TRUST_STORE, _))
        ));
    }
}
