//! Bearer tokens: HS256 JWTs whose `sub` is the user id.

use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use cuba_core::domain::{Millis, UserId};

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
    decoding: DecodingKey,
    encoding: EncodingKey,
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
        Self::with_claims(secret, TokenClaims::default())
    }

    /// A verifier that also requires the given issuer and audience.
    pub fn with_claims(secret: &TokenSecret, claims: TokenClaims) -> Self {
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
        TokenVerifier {
            decoding: DecodingKey::from_secret(&secret.0),
            encoding: EncodingKey::from_secret(&secret.0),
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

    fn decode<C: serde::de::DeserializeOwned>(&self, token: &str) -> Result<C, AuthError> {
        jsonwebtoken::decode::<C>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })
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
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default()
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
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.0.encoding)
            .unwrap_or_default()
    }
}

/// State whose routes take user tokens.
pub trait UserTokens {
    fn user_tokens(&self) -> &TokenVerifier;
}

/// State whose routes take admin tokens.
pub trait AdminTokens {
    fn admin_tokens(&self) -> &AdminVerifier;
}

impl<T: UserTokens> UserTokens for std::sync::Arc<T> {
    fn user_tokens(&self) -> &TokenVerifier {
        (**self).user_tokens()
    }
}

impl<T: AdminTokens> AdminTokens for std::sync::Arc<T> {
    fn admin_tokens(&self) -> &AdminVerifier {
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
        Ok(Authenticated(
            state.user_tokens().verify_header(authorization(parts)?)?,
        ))
    }
}

/// The admin a valid admin token names: the extractor of every admin API route.
pub struct Authorized(pub Admin);

impl<S: AdminTokens + Send + Sync> FromRequestParts<S> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Ok(Authorized(
            state.admin_tokens().verify_header(authorization(parts)?)?,
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

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let secret = TokenSecret::new(SECRET.as_bytes().to_vec()).unwrap();
        let strict = TokenVerifier::with_claims(
            &secret,
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
