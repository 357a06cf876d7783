//! Fetching an identity provider's discovery document and keys over HTTPS, with the TLS stack
//! the AWS SDK already links (rustls on aws-lc-rs, the system's roots): no second one.

use std::time::Duration;

use async_trait::async_trait;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::oidc::{DocumentFetch, FetchError};

/// A key set is a few kilobytes; a provider answering more is not one to trust.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// A fetch happens while a request waits; a provider that hangs must not hold it for long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<bytes::Bytes>>;

/// [`DocumentFetch`] over HTTPS (and plain HTTP, which the configuration allows for a stand-in
/// on this machine only: see [`super::oidc::OidcIssuer::is_secure`]).
#[derive(Clone)]
pub struct HttpsFetch {
    client: HttpsClient,
}

impl HttpsFetch {
    /// Fails only if the system's certificate roots cannot be read.
    pub fn new() -> std::io::Result<Self> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(HttpsFetch {
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }
}

#[async_trait]
impl DocumentFetch for HttpsFetch {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let failed = |what: &dyn std::fmt::Display| FetchError(format!("{url}: {what}"));
        let uri: http::Uri = url.parse().map_err(|e| failed(&e))?;
        let fetch = async {
            let response = self.client.get(uri).await.map_err(|e| failed(&e))?;
            if !response.status().is_success() {
                return Err(failed(&response.status()));
            }
            let body = Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
                .collect()
                .await
                .map_err(|e| failed(&e))?;
            Ok(body.to_bytes().to_vec())
        };
        tokio::time::timeout(FETCH_TIMEOUT, fetch)
            .await
            .map_err(|_| failed(&"no answer in 5 s"))?
    }
}
