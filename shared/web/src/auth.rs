//! Bearer tokens: HS256 JWTs whose `sub` is the user id.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;
use cuba_core::domain::{Millis, UserId};
use cuba_core::ports::{PortError, SecretStore};
use cuba_core::source::TtlCache;

/// Shorter secrets make HS256 guessable offline; refuse them at start-up rather than run weak.
pub const MIN_SECRET_BYTES: usize = 32;

/// The HMAC key. Never printed: `Debug` is redacted so it cannot leak through logs.
#[derive(Clone)]
pub struct TokenSecret(Vec<u8>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token secret must be at least {MIN_SECRET_BYTES} bytes")]
pub struct WeakSecret;

impl TokenSecret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, WeakSecret> {
        let bytes = bytes.into();
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(WeakSecret);
        }
        Ok(TokenSecret(bytes))
    }
}

impl TokenSecret {
    /// A key for another purpose (`label`), derived from this secret so the secret itself only
    /// ever signs tokens.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

/// The longest key id a key ring accepts.
pub const MAX_KID_CHARS: usize = 64;

/// One key of a ring: the secret, and the id tokens name it by (`kid` in their header).
#[derive(Clone, Debug)]
pub struct RingKey {
    pub kid: Option<String>,
    pub secret: TokenSecret,
}

/// The keys tokens may be signed with. The first signs what Cuba issues; all of them verify, so
/// a secret is rotated without downtime: put the new key first, keep the old one second until
/// the tokens it signed have expired, then drop it.
#[derive(Clone, Debug)]
pub struct KeyRing {
    keys: Vec<RingKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    #[error(
        "must be a secret of at least {MIN_SECRET_BYTES} bytes, {{\"kid\", \"secret\"}}, or {{\"keys\": [{{\"kid\", \"secret\"}}, ...]}}"
    )]
    Shape,
    #[error("key {0}: the secret must be at least {MIN_SECRET_BYTES} bytes")]
    Weak(usize),
    #[error(
        "key {0}: `kid` must be 1 to {MAX_KID_CHARS} letters, digits, '-', '_' or '.', unique in the ring"
    )]
    Kid(usize),
}

impl KeyRing {
    pub fn single(secret: TokenSecret) -> Self {
        KeyRing {
            keys: vec![RingKey { kid: None, secret }],
        }
    }

    /// Reads a secret's text: a JSON `{"keys": [{"kid", "secret"}, ...]}` (the first signs), one
    /// `{"kid", "secret"}`, or (anything that is not a JSON object) the secret itself, without a
    /// key id.
    pub fn parse(text: &str) -> Result<Self, KeyRingError> {
        #[derive(Deserialize)]
        struct Key {
            kid: String,
            secret: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            Ring { keys: Vec<Key> },
            One(Key),
        }
        let keys = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => match serde_json::from_value(Value::Object(object)) {
                Ok(Shape::Ring { keys }) if !keys.is_empty() => keys,
                Ok(Shape::One(key)) => vec![key],
                _ => return Err(KeyRingError::Shape),
            },
            _ => {
                let secret =
                    TokenSecret::new(text.as_bytes().to_vec()).map_err(|_| KeyRingError::Shape)?;
                return Ok(KeyRing::single(secret));
            }
        };
        let mut ring = Vec::with_capacity(keys.len());
        for (i, key) in keys.into_iter().enumerate() {
            let valid_kid = !key.kid.is_empty()
                && key.kid.len() <= MAX_KID_CHARS
                && key
                    .kid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                && !ring
                    .iter()
                    .any(|k: &RingKey| k.kid.as_deref() == Some(key.kid.as_str()));
            if !valid_kid {
                return Err(KeyRingError::Kid(i));
            }
            let secret =
                TokenSecret::new(key.secret.into_bytes()).map_err(|_| KeyRingError::Weak(i))?;
            ring.push(RingKey {
                kid: Some(key.kid),
                secret,
            });
        }
        Ok(KeyRing { keys: ring })
    }

    /// The key that signs.
    pub fn signing(&self) -> &RingKey {
        &self.keys[0]
    }

    pub fn keys(&self) -> &[RingKey] {
        &self.keys
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
}

/// Which tokens a deployment accepts beyond a valid signature: those its sign-in service issued
/// (`iss`) for this API (`aud`). Unset, the claims are not checked (and not required).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenClaims {
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// A user id as `sub` must spell it: a canonical decimal (`7`, never `+7`, `007` or ` 7`), so one
/// user has exactly one spelling.
fn canonical_user(sub: &str) -> Option<UserId> {
    let canonical = sub == "0"
        || (!sub.starts_with('0') && !sub.is_empty() && sub.bytes().all(|b| b.is_ascii_digit()));
    if canonical {
        sub.parse::<u64>().ok().map(UserId)
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("an `Authorization: Bearer <token>` header is required")]
    Missing,
    #[error("the bearer token is not valid")]
    Invalid,
    #[error("the bearer token has expired")]
    Expired,
    #[error("the token does not carry the admin role")]
    NotAdmin,
}

impl AuthError {
    pub fn code(self) -> &'static str {
        match self {
            AuthError::Missing => "missing_token",
            AuthError::Invalid => "invalid_token",
            AuthError::Expired => "expired_token",
            AuthError::NotAdmin => "not_admin",
        }
    }
}

/// The token in an `Authorization: Bearer <token>` header value.
fn bearer_token(header: Option<&str>) -> Result<&str, AuthError> {
    let header = header.ok_or(AuthError::Missing)?;
    let (scheme, token) = header.trim().split_once(' ').ok_or(AuthError::Invalid)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Invalid);
    }
    Ok(token.trim())
}

/// Checks user tokens and, for local tooling, mints them.
#[derive(Clone)]
pub struct TokenVerifier {
    decoding: Vec<(Option<String>, DecodingKey)>,
    encoding: (Option<String>, EncodingKey),
    validation: Validation,
    claims: TokenClaims,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenVerifier")
    }
}

impl TokenVerifier {
    pub fn new(secret: &TokenSecret) -> Self {
        Self::with_claims(&KeyRing::single(secret.clone()), TokenClaims::default())
    }

    /// A verifier of tokens signed with any key of `ring` that also requires the given issuer
    /// and audience.
    pub fn with_claims(ring: &KeyRing, claims: TokenClaims) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &claims.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &claims.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation.validate_nbf = true;
        validation.leeway = 30;
        let signing = ring.signing();
        TokenVerifier {
            decoding: ring
                .keys()
                .iter()
                .map(|k| (k.kid.clone(), DecodingKey::from_secret(&k.secret.0)))
                .collect(),
            encoding: (
                signing.kid.clone(),
                EncodingKey::from_secret(&signing.secret.0),
            ),
            validation,
            claims,
        }
    }

    /// The user an `Authorization` header value authenticates.
    pub fn verify_header(&self, header: Option<&str>) -> Result<UserId, AuthError> {
        self.verify(bearer_token(header)?)
    }

    pub fn verify(&self, token: &str) -> Result<UserId, AuthError> {
        let claims: Claims = self.decode(token)?;
        canonical_user(&claims.sub).ok_or(AuthError::Invalid)
    }

    /// A token naming a `kid` is checked with that key only (an unknown `kid` is invalid); one
    /// without is tried against every key, so tokens minted before key ids keep working.
    fn decode<C: serde::de::DeserializeOwned>(&self, token: &str) -> Result<C, AuthError> {
        let kid = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid)?
            .kid;
        let mut outcome = Err(AuthError::Invalid);
        for (_, key) in self
            .decoding
            .iter()
            .filter(|(key_id, _)| kid.is_none() || *key_id == kid)
        {
            outcome = jsonwebtoken::decode::<C>(token, key, &self.validation)
                .map(|data| data.claims)
                .map_err(|e| match e.kind() {
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    _ => AuthError::Invalid,
                });
            if !matches!(outcome, Err(AuthError::Invalid)) {
                break;
            }
        }
        outcome
    }

    fn header(&self) -> Header {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = self.encoding.0.clone();
        header
    }

    /// A token for `user` valid for `ttl_seconds` from `now`.
    pub fn issue(&self, user: UserId, now: Millis, ttl_seconds: u64) -> String {
        let iat = now.0 / 1000;
        let claims = Claims {
            sub: user.to_string(),
            exp: iat + ttl_seconds,
            iat: Some(iat),
            iss: self.claims.issuer.clone(),
            aud: self.claims.audience.clone(),
        };
        // HS256 signing of a small struct has no failure mode in practice; an empty token would
        // simply be refused by the verifier.
        jsonwebtoken::encode(&self.header(), &claims, &self.encoding.1).unwrap_or_default()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct AdminClaims {
    sub: String,
    exp: u64,
    #[serde(default)]
    role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
}

/// Who made an admin change, from the admin token's `sub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin(pub String);

/// Checks admin tokens: HS256 JWTs with `"role": "admin"`, signed with a secret of their own so
/// that no user token can ever pass as one.
#[derive(Clone, Debug)]
pub struct AdminVerifier(TokenVerifier);

impl AdminVerifier {
    pub fn new(secret: &TokenSecret) -> Self {
        AdminVerifier(TokenVerifier::new(secret))
    }

    pub fn from_ring(ring: &KeyRing) -> Self {
        AdminVerifier(TokenVerifier::with_claims(ring, TokenClaims::default()))
    }

    pub fn verify_header(&self, header: Option<&str>) -> Result<Admin, AuthError> {
        let claims: AdminClaims = self.0.decode(bearer_token(header)?)?;
        if claims.role.as_deref() != Some("admin") {
            return Err(AuthError::NotAdmin);
        }
        if claims.sub.trim().is_empty() || claims.sub.len() > 200 {
            return Err(AuthError::Invalid);
        }
        Ok(Admin(claims.sub))
    }

    /// An admin token for `sub`, for local tooling and tests.
    pub fn issue(&self, sub: &str, role: Option<&str>, now: Millis, ttl_seconds: u64) -> String {
        let iat = now.0 / 1000;
        let claims = AdminClaims {
            sub: sub.to_owned(),
            exp: iat + ttl_seconds,
            role: role.map(str::to_owned),
            iat: Some(iat),
        };
        jsonwebtoken::encode(&self.0.header(), &claims, &self.0.encoding.1).unwrap_or_default()
    }
}

/// A verifier whose keys live in a [`SecretStore`]: read at cold start, then re-read at most
/// once per TTL (a rotated secret takes effect within it). A failed re-read keeps the keys in
/// use and logs a warning; a new secret that does not parse is a failed re-read.
pub struct Rotating<V>(Arc<Keys<V>>);

impl<V> Clone for Rotating<V> {
    fn clone(&self) -> Self {
        Rotating(self.0.clone())
    }
}

enum Keys<V> {
    Fixed(Arc<V>),
    Stored {
        cache: TtlCache<V>,
        /// What the cache answers while it has never been (re)loaded: the cold start's keys.
        first: Arc<V>,
        store: Arc<dyn SecretStore>,
        id: String,
        build: KeyBuilder<V>,
    },
}

/// Builds a verifier from a key ring (with whatever claims the deployment requires).
pub type KeyBuilder<V> = Box<dyn Fn(&KeyRing) -> V + Send + Sync>;

impl<V> Rotating<V> {
    /// Keys that never change (given in the configuration itself).
    pub fn fixed(verifier: V) -> Self {
        Rotating(Arc::new(Keys::Fixed(Arc::new(verifier))))
    }

    /// Reads the secret `id` once now, failing if it cannot be read or parsed; answers the ring
    /// too, for keys derived from it.
    pub async fn stored(
        store: Arc<dyn SecretStore>,
        id: &str,
        ttl: Duration,
        build: KeyBuilder<V>,
    ) -> Result<(Self, KeyRing), PortError> {
        let ring = read_ring(store.as_ref(), id).await?;
        let first = Arc::new(build(&ring));
        let rotating = Rotating(Arc::new(Keys::Stored {
            cache: TtlCache::loaded(ttl, first.clone()),
            first,
            store,
            id: id.to_owned(),
            build,
        }));
        Ok((rotating, ring))
    }

    /// The verifier for the keys in force.
    pub async fn current(&self) -> Arc<V> {
        match self.0.as_ref() {
            Keys::Fixed(verifier) => verifier.clone(),
            Keys::Stored {
                cache,
                first,
                store,
                id,
                build,
            } => {
                let load = || async {
                    let ring = read_ring(store.as_ref(), id).await?;
                    Ok(Arc::new(build(&ring)))
                };
                // A loaded cache answers its last value when a reload fails, so this falls
                // back to the cold start's keys only if it were ever empty.
                cache
                    .get("token key", load)
                    .await
                    .unwrap_or_else(|_| first.clone())
            }
        }
    }
}

async fn read_ring(store: &dyn SecretStore, id: &str) -> Result<KeyRing, PortError> {
    let text = store.secret(id).await?;
    KeyRing::parse(&text).map_err(|e| PortError::corrupt_from(format!("the secret {id}"), e))
}

/// State whose routes take user tokens.
pub trait UserTokens {
    fn user_tokens(&self) -> &Rotating<TokenVerifier>;
}

/// State whose routes take admin tokens.
pub trait AdminTokens {
    fn admin_tokens(&self) -> &Rotating<AdminVerifier>;
}

impl<T: UserTokens> UserTokens for std::sync::Arc<T> {
    fn user_tokens(&self) -> &Rotating<TokenVerifier> {
        (**self).user_tokens()
    }
}

impl<T: AdminTokens> AdminTokens for std::sync::Arc<T> {
    fn admin_tokens(&self) -> &Rotating<AdminVerifier> {
        (**self).admin_tokens()
    }
}

/// The `Authorization` header's value, if there is one.
fn authorization(parts: &Parts) -> Result<Option<&str>, AuthError> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|value| value.to_str().map_err(|_| AuthError::Invalid))
        .transpose()
}

/// The user a valid bearer token names: the extractor of every ingest route.
pub struct Authenticated(pub UserId);

impl<S: UserTokens + Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let header = authorization(parts)?;
        Ok(Authenticated(
            state.user_tokens().current().await.verify_header(header)?,
        ))
    }
}

/// The admin a valid admin token names: the extractor of every admin API route.
pub struct Authorized(pub Admin);

impl<S: AdminTokens + Send + Sync> FromRequestParts<S> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let header = authorization(parts)?;
        Ok(Authorized(
            state.admin_tokens().current().await.verify_header(header)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cuba_core::clock::{Clock, SystemClock};

    fn verifier(secret: &str) -> TokenVerifier {
        TokenVerifier::new(&TokenSecret::new(secret.as_bytes().to_vec()).unwrap())
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn round_trip_and_failures() {
        let v = verifier(SECRET);
        let now = SystemClock.now();
        let token = v.issue(UserId(42), now, 60);
        assert_eq!(
            v.verify_header(Some(&format!("Bearer {token}"))),
            Ok(UserId(42))
        );
        assert_eq!(
            v.verify_header(Some(&format!("bearer  {token}"))),
            Ok(UserId(42))
        );
        assert_eq!(v.verify_header(None), Err(AuthError::Missing));
        assert_eq!(
            v.verify_header(Some(&format!("Basic {token}"))),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            v.verify_header(Some("Bearer nope")),
            Err(AuthError::Invalid)
        );

        let forged = verifier("another-secret-another-secret-xx").issue(UserId(42), now, 60);
        assert_eq!(v.verify(&forged), Err(AuthError::Invalid));

        let expired = v.issue(UserId(42), now.minus_seconds(3600), 60);
        assert_eq!(v.verify(&expired), Err(AuthError::Expired));
    }

    #[test]
    fn admin_tokens_need_the_admin_role_and_their_own_secret() {
        let secret = TokenSecret::new(b"admin-secret-admin-secret-admin-secret".to_vec()).unwrap();
        let admins = AdminVerifier::new(&secret);
        let now = SystemClock.now();
        let good = admins.issue("ops@cube.example", Some("admin"), now, 60);
        assert_eq!(
            admins.verify_header(Some(&format!("Bearer {good}"))),
            Ok(Admin("ops@cube.example".into()))
        );
        let roleless = admins.issue("ops@cube.example", None, now, 60);
        assert_eq!(
            admins.verify_header(Some(&format!("Bearer {roleless}"))),
            Err(AuthError::NotAdmin)
        );
        let user_token = verifier(SECRET).issue(UserId(1), now, 60);
        assert_eq!(
            admins.verify_header(Some(&format!("Bearer {user_token}"))),
            Err(AuthError::Invalid)
        );
        assert_eq!(admins.verify_header(None), Err(AuthError::Missing));
    }

    /// A token with exactly these claims, signed with `secret`.
    fn signed(secret: &str, claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn the_subject_must_be_a_canonical_user_id() {
        let v = verifier(SECRET);
        let exp = SystemClock.now().0 / 1000 + 60;
        for (sub, expected) in [
            ("7", Ok(UserId(7))),
            ("0", Ok(UserId(0))),
            ("+7", Err(AuthError::Invalid)),
            ("007", Err(AuthError::Invalid)),
            (" 7", Err(AuthError::Invalid)),
            ("7.0", Err(AuthError::Invalid)),
            ("", Err(AuthError::Invalid)),
            ("99999999999999999999", Err(AuthError::Invalid)),
        ] {
            let token = signed(SECRET, serde_json::json!({"sub": sub, "exp": exp}));
            assert_eq!(v.verify(&token), expected, "sub {sub:?}");
        }
    }

    #[test]
    fn a_token_not_yet_valid_is_refused() {
        let v = verifier(SECRET);
        let now = SystemClock.now().0 / 1000;
        let later = signed(
            SECRET,
            serde_json::json!({"sub": "1", "exp": now + 7200, "nbf": now + 3600}),
        );
        assert_eq!(v.verify(&later), Err(AuthError::Invalid));
        let started = signed(
            SECRET,
            serde_json::json!({"sub": "1", "exp": now + 7200, "nbf": now - 10}),
        );
        assert_eq!(v.verify(&started), Ok(UserId(1)));
    }

    const OLD: &str = "old-old-old-old-old-old-old-old-old-old!";
    const NEW: &str = "new-new-new-new-new-new-new-new-new-new!";

    fn ring(text: serde_json::Value) -> KeyRing {
        KeyRing::parse(&text.to_string()).unwrap()
    }

    #[test]
    fn key_rings_parse_in_every_documented_shape_and_refuse_weak_keys() {
        assert_eq!(KeyRing::parse(SECRET).unwrap().signing().kid, None);
        let one = ring(serde_json::json!({"kid": "k1", "secret": NEW}));
        assert_eq!(one.signing().kid.as_deref(), Some("k1"));
        let two = ring(
            serde_json::json!({"keys": [{"kid": "k2", "secret": NEW}, {"kid": "k1", "secret": OLD}]}),
        );
        assert_eq!(two.keys().len(), 2);
        assert_eq!(two.signing().kid.as_deref(), Some("k2"));
        for (bad, error) in [
            (
                serde_json::json!({"kid": "k1", "secret": "short"}),
                KeyRingError::Weak(0),
            ),
            (
                serde_json::json!({"kid": "", "secret": NEW}),
                KeyRingError::Kid(0),
            ),
            (
                serde_json::json!({"kid": "a b", "secret": NEW}),
                KeyRingError::Kid(0),
            ),
            (
                serde_json::json!({"keys": [{"kid": "k", "secret": NEW}, {"kid": "k", "secret": OLD}]}),
                KeyRingError::Kid(1),
            ),
            (serde_json::json!({"keys": []}), KeyRingError::Shape),
            (serde_json::json!({"secret": NEW}), KeyRingError::Shape),
        ] {
            assert_eq!(
                KeyRing::parse(&bad.to_string()).unwrap_err(),
                error,
                "{bad}"
            );
        }
        assert_eq!(
            KeyRing::parse("too short").unwrap_err(),
            KeyRingError::Shape
        );
        assert!(!format!("{two:?}").contains("new-new"), "keys never print");
    }

    #[test]
    fn a_rotation_keeps_old_tokens_valid_until_their_key_is_dropped() {
        let now = SystemClock.now();
        let before = TokenVerifier::with_claims(
            &ring(serde_json::json!({"kid": "k1", "secret": OLD})),
            TokenClaims::default(),
        );
        let old_token = before.issue(UserId(1), now, 600);
        let header = jsonwebtoken::decode_header(&old_token).unwrap();
        assert_eq!(header.kid.as_deref(), Some("k1"));

        let during = TokenVerifier::with_claims(
            &ring(
                serde_json::json!({"keys": [{"kid": "k2", "secret": NEW}, {"kid": "k1", "secret": OLD}]}),
            ),
            TokenClaims::default(),
        );
        let new_token = during.issue(UserId(2), now, 600);
        assert_eq!(
            jsonwebtoken::decode_header(&new_token)
                .unwrap()
                .kid
                .as_deref(),
            Some("k2")
        );
        assert_eq!(during.verify(&old_token), Ok(UserId(1)));
        assert_eq!(during.verify(&new_token), Ok(UserId(2)));
        // A token without a kid (minted before key ids) is tried against every key.
        assert_eq!(
            during.verify(&signed(
                OLD,
                serde_json::json!({"sub": "3", "exp": now.0 / 1000 + 60})
            )),
            Ok(UserId(3))
        );

        let after = TokenVerifier::with_claims(
            &ring(serde_json::json!({"keys": [{"kid": "k2", "secret": NEW}]})),
            TokenClaims::default(),
        );
        assert_eq!(after.verify(&new_token), Ok(UserId(2)));
        assert_eq!(
            after.verify(&old_token),
            Err(AuthError::Invalid),
            "k1 is gone"
        );
        // Naming a key that signed nothing of the sort is invalid, not a fallback to others.
        let mislabelled = TokenVerifier::with_claims(
            &ring(serde_json::json!({"kid": "k2", "secret": OLD})),
            TokenClaims::default(),
        )
        .issue(UserId(4), now, 600);
        assert_eq!(during.verify(&mislabelled), Err(AuthError::Invalid));
    }

    struct Secrets(std::sync::Mutex<Result<String, PortError>>);

    #[async_trait::async_trait]
    impl SecretStore for Secrets {
        async fn secret(&self, _: &str) -> Result<String, PortError> {
            self.0.lock().unwrap().clone()
        }
    }

    #[tokio::test]
    async fn stored_keys_are_reread_after_their_ttl_and_kept_when_a_reread_fails() {
        let store = Arc::new(Secrets(std::sync::Mutex::new(Ok(
            serde_json::json!({"kid": "k1", "secret": OLD}).to_string(),
        ))));
        let (keys, ring) = Rotating::stored(
            store.clone(),
            "arn:secret",
            Duration::from_millis(50),
            Box::new(|ring| TokenVerifier::with_claims(ring, TokenClaims::default())),
        )
        .await
        .unwrap();
        assert_eq!(ring.signing().kid.as_deref(), Some("k1"));
        let now = SystemClock.now();
        let k2 = TokenVerifier::with_claims(&ring_of(NEW, "k2"), TokenClaims::default()).issue(
            UserId(9),
            now,
            600,
        );
        assert_eq!(keys.current().await.verify(&k2), Err(AuthError::Invalid));

        *store.0.lock().unwrap() = Ok(serde_json::json!({"keys": [{"kid": "k2", "secret": NEW}, {"kid": "k1", "secret": OLD}]}).to_string());
        assert_eq!(
            keys.current().await.verify(&k2),
            Err(AuthError::Invalid),
            "within the TTL"
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(
            keys.current().await.verify(&k2),
            Ok(UserId(9)),
            "after the TTL"
        );

        *store.0.lock().unwrap() = Ok("{\"keys\": []}".into());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(
            keys.current().await.verify(&k2),
            Ok(UserId(9)),
            "a broken secret keeps the keys in use"
        );
        *store.0.lock().unwrap() = Err(PortError::unavailable_because("secretsmanager", "down"));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(
            keys.current().await.verify(&k2),
            Ok(UserId(9)),
            "so does an outage"
        );

        *store.0.lock().unwrap() = Err(PortError::unavailable_because("secretsmanager", "down"));
        let cold = Rotating::stored(
            store,
            "arn:secret",
            Duration::from_secs(1),
            Box::new(|ring| TokenVerifier::with_claims(ring, TokenClaims::default())),
        )
        .await;
        assert!(cold.is_err(), "a cold start without its keys fails");
    }

    fn ring_of(secret: &str, kid: &str) -> KeyRing {
        ring(serde_json::json!({"kid": kid, "secret": secret}))
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let secret = TokenSecret::new(SECRET.as_bytes().to_vec()).unwrap();
        let strict = TokenVerifier::with_claims(
            &KeyRing::single(secret),
            TokenClaims {
                issuer: Some("https://signin.cube.example".into()),
                audience: Some("cuba".into()),
            },
        );
        let exp = SystemClock.now().0 / 1000 + 60;
        let token = |claims: serde_json::Value| signed(SECRET, claims);
        let right = token(serde_json::json!({"sub": "5", "exp": exp,
            "iss": "https://signin.cube.example", "aud": "cuba"}));
        assert_eq!(strict.verify(&right), Ok(UserId(5)));
        for wrong in [
            serde_json::json!({"sub": "5", "exp": exp}),
            serde_json::json!({"sub": "5", "exp": exp, "iss": "https://evil.example", "aud": "cuba"}),
            serde_json::json!({"sub": "5", "exp": exp, "iss": "https://signin.cube.example", "aud": "other"}),
            serde_json::json!({"sub": "5", "exp": exp, "iss": "https://signin.cube.example"}),
        ] {
            assert_eq!(
                strict.verify(&token(wrong.clone())),
                Err(AuthError::Invalid),
                "{wrong}"
            );
        }
        // What it mints for local tooling passes its own checks.
        assert_eq!(
            strict.verify(&strict.issue(UserId(9), SystemClock.now(), 60)),
            Ok(UserId(9))
        );
        // Unconfigured, the claims are neither required nor checked.
        assert_eq!(verifier(SECRET).verify(&right), Ok(UserId(5)));
    }

    #[test]
    fn weak_secrets_are_refused_and_never_printed() {
        assert!(TokenSecret::new(b"short".to_vec()).is_err());
        let s = TokenSecret::new(SECRET.as_bytes().to_vec()).unwrap();
        assert!(!format!("{s:?}").contains("0123"));
    }
}

/// Hashes phone verification codes with HMAC-SHA256 under a key derived from the user token
/// secret, bound to the user and number, so a stored hash reveals nothing without the secret.
#[derive(Clone)]
pub struct PhoneCodeHasher {
    key: [u8; 32],
}

impl PhoneCodeHasher {
    /// Keyed from the signing key of the user token ring (as read at cold start: a code texted
    /// just before a rotation and entered just after, on another instance, has to be resent).
    pub fn new(secret: &TokenSecret) -> Self {
        PhoneCodeHasher {
            key: secret.derive("phone verification codes"),
        }
    }
}

impl cuba_core::verification::CodeHasher for PhoneCodeHasher {
    fn hash(
        &self,
        user: UserId,
        phone: &cuba_core::domain::PhoneNumber,
        code: &cuba_core::domain::VerificationCode,
    ) -> String {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(format!("{user}\n{}\n{}", phone.as_str(), code.as_str()).as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
