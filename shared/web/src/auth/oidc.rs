//! Tokens an identity provider issues (Cognito, Auth0, Firebase, Keycloak): RS256 or ES256,
//! checked against the keys the provider publishes (its JWKS). The keys are fetched at the
//! first token, kept for an hour, and fetched again when a token names a key not seen yet (the
//! provider rotated), at most once per [`KeyRefresh::unknown_key_after`] so that tokens with
//! made-up key ids cannot turn every request into a fetch.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

use super::tokens::{Admin, AuthError, bearer_token, canonical_user};
use cuba_core::model::domain::UserId;

/// The provider whose tokens a deployment accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcIssuer {
    /// Exactly as tokens carry it in `iss` (no trailing slash is added or removed).
    pub issuer: String,
    /// What `aud` (or, without one, `client_id`, as Cognito's access tokens carry it) must be.
    pub audience: String,
    /// Where the keys are; unset, read from the issuer's OpenID discovery document.
    pub jwks_url: Option<String>,
}

impl OidcIssuer {
    /// Whether the issuer's keys would be fetched over TLS. Plain HTTP is for a stand-in on
    /// this machine only: over a network, whoever answers the fetch would choose the keys.
    pub fn is_secure(&self) -> bool {
        secure_url(&self.issuer) && self.jwks_url.as_deref().is_none_or(secure_url)
    }
}

/// An `https://` URL, or plain HTTP to this machine.
fn secure_url(url: &str) -> bool {
    url.starts_with("https://")
        || ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
            .iter()
            .any(|local| url.starts_with(local))
}

/// Which claim makes a token an admin's: a group list (`cognito:groups`, say) holding `group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminGroup {
    pub claim: String,
    pub group: String,
}

/// How long fetched keys are trusted, and how often a token naming an unknown key may fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRefresh {
    pub max_age: Duration,
    pub unknown_key_after: Duration,
}

impl Default for KeyRefresh {
    fn default() -> Self {
        KeyRefresh {
            max_age: Duration::from_secs(3600),
            unknown_key_after: Duration::from_secs(10),
        }
    }
}

/// Why a document could not be fetched.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// Reads a small JSON document over HTTP(S): the port to the provider.
#[async_trait]
pub trait DocumentFetch: Send + Sync {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError>;
}

/// A published key, with the one algorithm Cuba accepts it for.
#[derive(Clone)]
struct PublishedKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

#[derive(Default)]
struct KeyState {
    keys: HashMap<String, PublishedKey>,
    /// When the keys were last fetched, or a fetch last failed.
    tried: Option<Instant>,
    loaded: Option<Instant>,
    jwks_url: Option<String>,
}

/// Checks identity-provider tokens.
pub struct OidcVerifier {
    issuer: OidcIssuer,
    /// The claim naming the user (`sub` unless the provider's `sub` is not the app's user id).
    user_claim: String,
    admin: Option<AdminGroup>,
    refresh: KeyRefresh,
    fetch: Arc<dyn DocumentFetch>,
    state: Mutex<KeyState>,
}

impl fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// The claims Cuba reads beyond those `jsonwebtoken` checks (`exp`, `nbf`, `iss`).
#[derive(Deserialize)]
struct ProviderClaims {
    sub: String,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl OidcVerifier {
    pub fn new(
        issuer: OidcIssuer,
        admin: Option<AdminGroup>,
        refresh: KeyRefresh,
        fetch: Arc<dyn DocumentFetch>,
    ) -> Self {
        OidcVerifier {
            issuer,
            user_claim: "sub".to_owned(),
            admin,
            refresh,
            fetch,
            state: Mutex::new(KeyState::default()),
        }
    }

    pub fn issuer(&self) -> &OidcIssuer {
        &self.issuer
    }

    /// Reads the user from `claim` instead of `sub` (Cognito's `sub` is a UUID of its own; a
    /// custom attribute such as `custom:user_id` can carry the app's id).
    pub fn reading_user_from(mut self, claim: impl Into<String>) -> Self {
        self.user_claim = claim.into();
        self
    }

    /// The user an `Authorization` header value authenticates: the user claim a canonical user
    /// id (a decimal string, or a whole number).
    pub async fn verify_user(&self, header: Option<&str>) -> Result<UserId, AuthError> {
        let claims = self.claims(bearer_token(header)?).await?;
        let user = if self.user_claim == "sub" {
            canonical_user(&claims.sub)
        } else {
            match claims.rest.get(&self.user_claim) {
                Some(Value::String(user)) => canonical_user(user),
                Some(Value::Number(user)) => user.as_u64().map(UserId),
                _ => None,
            }
        };
        user.ok_or(AuthError::Invalid)
    }

    /// The admin an `Authorization` header value authenticates: in the admin group.
    pub async fn verify_admin(&self, header: Option<&str>) -> Result<Admin, AuthError> {
        let claims = self.claims(bearer_token(header)?).await?;
        let admin = self.admin.as_ref().ok_or(AuthError::NotAdmin)?;
        let member = match claims.rest.get(&admin.claim) {
            Some(Value::String(group)) => *group == admin.group,
            Some(Value::Array(groups)) => groups.iter().any(|g| g.as_str() == Some(&admin.group)),
            _ => false,
        };
        if !member {
            return Err(AuthError::NotAdmin);
        }
        if claims.sub.trim().is_empty() || claims.sub.len() > 200 {
            return Err(AuthError::Invalid);
        }
        Ok(Admin(claims.sub))
    }

    async fn claims(&self, token: &str) -> Result<ProviderClaims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        // The header's algorithm only selects among those the key allows; `none` and the HMAC
        // family are never accepted, so no shared secret or public key can be used as one.
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(AuthError::Invalid);
        }
        let kid = header.kid.ok_or(AuthError::Invalid)?;
        let published = self.key(&kid).await?;
        if published.algorithm != header.alg {
            return Err(AuthError::Invalid);
        }
        let mut validation = Validation::new(published.algorithm);
        validation.set_issuer(&[&self.issuer.issuer]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        // Checked below: a Cognito access token names its audience in `client_id`.
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.leeway = 30;
        let claims = jsonwebtoken::decode::<ProviderClaims>(token, &published.key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })?
            .claims;
        let audience = &self.issuer.audience;
        let for_us = match (&claims.aud, &claims.client_id) {
            (Some(Audience::One(aud)), _) => aud == audience,
            (Some(Audience::Many(auds)), _) => auds.contains(audience),
            (None, Some(client)) => client == audience,
            (None, None) => false,
        };
        if !for_us {
            return Err(AuthError::Invalid);
        }
        Ok(claims)
    }

    /// The published key `kid`, fetching the keys when they are old or do not hold it.
    async fn key(&self, kid: &str) -> Result<PublishedKey, AuthError> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        let older_than = |at: Option<Instant>, age: Duration| {
            at.is_none_or(|at| now.saturating_duration_since(at) >= age)
        };
        let stale = older_than(state.loaded, self.refresh.max_age);
        let known = state.keys.get(kid).cloned();
        if let (Some(key), false) = (&known, stale) {
            return Ok(key.clone());
        }
        let may_fetch = older_than(state.tried, self.refresh.unknown_key_after)
            || (stale && older_than(state.tried, Duration::from_secs(1)));
        if may_fetch {
            state.tried = Some(now);
            match self.load(&mut state).await {
                Ok(()) => state.loaded = Some(now),
                Err(error) => {
                    // The keys in hand stay in force: a provider's outage must not lock every
                    // user out while their tokens are still good.
                    tracing::warn!(issuer = %self.issuer.issuer, %error, "cannot fetch the token keys");
                    if state.keys.is_empty() {
                        return Err(AuthError::KeysUnavailable);
                    }
                }
            }
        } else if state.keys.is_empty() {
            return Err(AuthError::KeysUnavailable);
        }
        state.keys.get(kid).cloned().ok_or(AuthError::Invalid)
    }

    async fn load(&self, state: &mut KeyState) -> Result<(), FetchError> {
        let url = match (&self.issuer.jwks_url, &state.jwks_url) {
            (Some(url), _) | (None, Some(url)) => url.clone(),
            (None, None) => {
                let discovery_url = format!(
                    "{}/.well-known/openid-configuration",
                    self.issuer.issuer.trim_end_matches('/')
                );
                let body = self.fetch.get(&discovery_url).await?;
                let discovery: Discovery = serde_json::from_slice(&body)
                    .map_err(|e| FetchError(format!("{discovery_url}: {e}")))?;
                if discovery.issuer != self.issuer.issuer {
                    return Err(FetchError(format!(
                        "{discovery_url} names the issuer {:?}",
                        discovery.issuer
                    )));
                }
                if !secure_url(&discovery.jwks_uri) {
                    return Err(FetchError(format!(
                        "{discovery_url} names keys without TLS: {}",
                        discovery.jwks_uri
                    )));
                }
                state.jwks_url = Some(discovery.jwks_uri.clone());
                discovery.jwks_uri
            }
        };
        let body = self.fetch.get(&url).await?;
        let set: JwkSet =
            serde_json::from_slice(&body).map_err(|e| FetchError(format!("{url}: {e}")))?;
        state.keys = signing_keys(&set);
        Ok(())
    }
}

/// The RS256 and ES256 signing keys of a key set, by id; keys of other kinds, for encryption,
/// or without an id are left out.
fn signing_keys(set: &JwkSet) -> HashMap<String, PublishedKey> {
    set.keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            if matches!(&jwk.common.public_key_use, Some(usage) if *usage != PublicKeyUse::Signature)
            {
                return None;
            }
            let algorithm = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                _ => return None,
            };
            if let Some(declared) = jwk.common.key_algorithm
                && declared != KeyAlgorithm::from(algorithm)
            {
                return None;
            }
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((kid, PublishedKey { algorithm, key }))
        })
        .collect()
}
