//! Bearer tokens whose `sub` is the user id: HS256 JWTs signed with a key ring Cuba shares with
//! the sign-in service (admin tokens carry an admin role and a ring of their own), or RS256 and
//! ES256 JWTs from an identity provider. Keys and their rotation ([`keys`]), checking and
//! minting HS256 tokens ([`tokens`]), provider tokens ([`oidc`], fetched over [`jwks_http`]),
//! the extractors routes take ([`extract`]), and the phone-code hasher keyed from the user ring's
//! secret ([`phone_code`]).

pub mod extract;
pub mod jwks_http;
pub mod keys;
pub mod oidc;
pub mod phone_code;
pub mod tokens;

pub use extract::{AdminTokens, Authenticated, Authorized, TokenCheck, UserTokens};
pub use jwks_http::HttpsFetch;
pub use keys::{
    KeyBuilder, KeyRing, KeyRingError, MAX_KID_CHARS, MIN_SECRET_BYTES, RingKey, Rotating,
    TokenSecret, WeakSecret,
};
pub use oidc::{AdminGroup, DocumentFetch, FetchError, KeyRefresh, OidcIssuer, OidcVerifier};
pub use phone_code::PhoneCodeHasher;
pub use tokens::{Admin, AdminVerifier, AuthError, TokenClaims, TokenVerifier};

#[cfg(test)]
mod oidc_tests;
#[cfg(test)]
mod tests;
