//! A stand-in identity provider for the local stack's `oidc` token mode: an issuer that
//! publishes its keys (OpenID discovery and a JWKS) and mints RS256 or ES256 tokens on request.
//! It rotates keys as a provider does (a new key signs, the old one stays published until
//! retired) and counts the fetches of its keys, so tests see the functions' caching.
//!
//! Keys are generated at start and live in memory only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, anyhow};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::RwLock;
use tokio::task::JoinHandle;

/// The algorithms a provider signs with that Cuba accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    RS256,
    ES256,
}

impl SigningAlgorithm {
    fn algorithm(self) -> Algorithm {
        match self {
            SigningAlgorithm::RS256 => Algorithm::RS256,
            SigningAlgorithm::ES256 => Algorithm::ES256,
        }
    }
}

struct IssuerKey {
    kid: String,
    algorithm: SigningAlgorithm,
    encoding: EncodingKey,
    public: Jwk,
    published: bool,
}

impl IssuerKey {
    fn generate(kid: String, algorithm: SigningAlgorithm) -> Result<Self> {
        let encoding = match algorithm {
            SigningAlgorithm::ES256 => {
                use p256::pkcs8::EncodePrivateKey;
                let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
                let der = key.to_pkcs8_der().map_err(|e| anyhow!("P-256 key: {e}"))?;
                EncodingKey::from_ec_der(der.as_bytes())
            }
            SigningAlgorithm::RS256 => {
                use rsa::pkcs1::EncodeRsaPrivateKey;
                let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)?;
                EncodingKey::from_rsa_der(key.to_pkcs1_der()?.as_bytes())
            }
        };
        let mut public = Jwk::from_encoding_key(&encoding, algorithm.algorithm())?;
        public.common.key_id = Some(kid.clone());
        public.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        Ok(IssuerKey {
            kid,
            algorithm,
            encoding,
            public,
            published: true,
        })
    }
}

/// What a minted token says. `expires_in` may be negative (an expired token).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRequest {
    pub sub: String,
    pub audience: String,
    #[serde(default = "TokenRequest::default_lifetime")]
    pub expires_in: i64,
    /// Further claims (an admin group list, say).
    #[serde(default)]
    pub claims: Map<String, Value>,
    /// The key to sign with (default: the newest).
    #[serde(default)]
    pub kid: Option<String>,
}

impl TokenRequest {
    fn default_lifetime() -> i64 {
        3600
    }

    pub fn new(sub: impl Into<String>, audience: impl Into<String>) -> Self {
        TokenRequest {
            sub: sub.into(),
            audience: audience.into(),
            expires_in: Self::default_lifetime(),
            claims: Map::new(),
            kid: None,
        }
    }
}

struct Keys {
    /// Newest first.
    keys: RwLock<Vec<IssuerKey>>,
    fetches: AtomicU64,
    issuer: String,
    next: AtomicU64,
}

/// A running stand-in issuer.
pub struct LocalIssuer {
    state: Arc<Keys>,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl Drop for LocalIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl LocalIssuer {
    /// Serves an issuer on `addr` (port 0: any free port) with one key of `algorithm`.
    pub async fn start(addr: SocketAddr, algorithm: SigningAlgorithm) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the stand-in issuer to {addr}"))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Keys {
            keys: RwLock::new(Vec::new()),
            fetches: AtomicU64::new(0),
            issuer: format!("http://{addr}"),
            next: AtomicU64::new(1),
        });
        let issuer = LocalIssuer {
            server: tokio::spawn(serve(listener, state.clone())),
            state,
            addr,
        };
        issuer.rotate(algorithm)?;
        Ok(issuer)
    }

    /// The issuer URL tokens carry in `iss` (the functions discover the keys from it).
    pub fn url(&self) -> &str {
        &self.state.issuer
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many times the key set has been fetched.
    pub fn key_fetches(&self) -> u64 {
        self.state.fetches.load(Ordering::SeqCst)
    }

    /// Publishes a new key that signs from now on; the older keys stay published. Answers its id.
    pub fn rotate(&self, algorithm: SigningAlgorithm) -> Result<String> {
        self.state.add_key(algorithm, true)
    }

    /// A key that signs but is not published: its tokens name a `kid` the key set never holds.
    pub fn unpublished_key(&self, algorithm: SigningAlgorithm) -> Result<String> {
        self.state.add_key(algorithm, false)
    }

    /// Stops publishing the key `kid` (its tokens no longer verify once the keys are re-read).
    pub fn retire(&self, kid: &str) {
        if let Ok(mut keys) = self.state.keys.write() {
            keys.retain(|key| key.kid != kid);
        }
    }

    /// A signed token.
    pub fn mint(&self, request: &TokenRequest) -> Result<String> {
        self.state.mint(request)
    }
}

impl Keys {
    fn add_key(&self, algorithm: SigningAlgorithm, published: bool) -> Result<String> {
        let kid = format!("stand-in-{}", self.next.fetch_add(1, Ordering::SeqCst));
        let mut key = IssuerKey::generate(kid.clone(), algorithm)?;
        key.published = published;
        self.keys
            .write()
            .map_err(|_| anyhow!("the issuer's keys are poisoned"))?
            .insert(0, key);
        Ok(kid)
    }

    fn mint(&self, request: &TokenRequest) -> Result<String> {
        let keys = self
            .keys
            .read()
            .map_err(|_| anyhow!("the issuer's keys are poisoned"))?;
        let key = match &request.kid {
            Some(kid) => keys.iter().find(|key| key.kid == *kid),
            None => keys.iter().find(|key| key.published),
        }
        .ok_or_else(|| anyhow!("no such signing key"))?;
        let now = chrono::Utc::now().timestamp();
        let mut claims = request.claims.clone();
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("sub".into(), json!(request.sub));
        claims.insert("aud".into(), json!(request.audience));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + request.expires_in));
        let mut header = Header::new(key.algorithm.algorithm());
        header.kid = Some(key.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &key.encoding)?)
    }

    fn key_set(&self) -> JwkSet {
        let keys = self.keys.read().map(|keys| {
            keys.iter()
                .filter(|key| key.published)
                .map(|key| key.public.clone())
                .collect()
        });
        JwkSet {
            keys: keys.unwrap_or_default(),
        }
    }
}

async fn serve(listener: tokio::net::TcpListener, state: Arc<Keys>) {
    let router = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks.json", get(key_set))
        .route("/token", post(token))
        .with_state(state);
    if let Err(e) = axum::serve(listener, router).await {
        tracing::error!(error = %e, "the stand-in issuer stopped");
    }
}

async fn discovery(State(state): State<Arc<Keys>>) -> Json<Value> {
    Json(json!({
        "issuer": state.issuer,
        "jwks_uri": format!("{}/jwks.json", state.issuer),
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    }))
}

async fn key_set(State(state): State<Arc<Keys>>) -> Json<JwkSet> {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    Json(state.key_set())
}

/// Mints a token (`cuba-local oidc-token` asks here). Loopback only, as the whole stand-in.
async fn token(
    State(state): State<Arc<Keys>>,
    Json(request): Json<TokenRequest>,
) -> Result<String, (axum::http::StatusCode, String)> {
    state
        .mint(&request)
        .map_err(|e| (axum::http::StatusCode::BAD_REQUEST, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn publishes_discovery_and_keys_and_rotates() {
        let issuer = LocalIssuer::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            SigningAlgorithm::RS256,
        )
        .await
        .unwrap();
        let first = issuer.state.key_set();
        assert_eq!(first.keys.len(), 1);
        let kid = issuer.rotate(SigningAlgorithm::ES256).unwrap();
        let token = issuer.mint(&TokenRequest::new("7", "app")).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(
            (header.alg, header.kid.as_deref()),
            (Algorithm::ES256, Some(kid.as_str()))
        );
        assert_eq!(issuer.state.key_set().keys.len(), 2);
        let hidden = issuer.unpublished_key(SigningAlgorithm::ES256).unwrap();
        assert_eq!(
            issuer.state.key_set().keys.len(),
            2,
            "{hidden} is not published"
        );
        issuer.retire(&kid);
        assert_eq!(issuer.state.key_set().keys.len(), 1);
    }
}
