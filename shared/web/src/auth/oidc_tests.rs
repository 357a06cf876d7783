//! The identity-provider token check against a key set served from memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::oidc::{AdminGroup, DocumentFetch, FetchError, KeyRefresh, OidcIssuer, OidcVerifier};
use super::tokens::AuthError;
use cuba_core::model::domain::UserId;

const ISSUER: &str = "https://id.example.com/pool";
const AUDIENCE: &str = "cube-app";
const JWKS: &str = "https://id.example.com/pool/keys";

/// A provider in memory: its documents by URL (absent: the fetch fails), and what was fetched.
#[derive(Default)]
struct Provider {
    documents: Mutex<HashMap<String, Vec<u8>>>,
    fetched: Mutex<Vec<String>>,
}

#[async_trait]
impl DocumentFetch for Provider {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        self.fetched.lock().unwrap().push(url.to_owned());
        self.documents
            .lock()
            .unwrap()
            .get(url)
            .cloned()
            .ok_or_else(|| FetchError(format!("{url}: 503")))
    }
}

impl Provider {
    fn serve(&self, url: &str, document: Value) {
        self.documents
            .lock()
            .unwrap()
            .insert(url.to_owned(), document.to_string().into_bytes());
    }

    fn publish(&self, keys: &[&SigningKey]) {
        let set = JwkSet {
            keys: keys.iter().map(|k| k.public.clone()).collect(),
        };
        self.serve(JWKS, serde_json::to_value(set).unwrap());
    }

    fn fetches(&self) -> usize {
        self.fetched.lock().unwrap().len()
    }
}

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    public: Jwk,
}

fn es256_key(kid: &str) -> SigningKey {
    use p256::pkcs8::EncodePrivateKey;
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let encoding = EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes());
    let mut public = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
    public.common.key_id = Some(kid.to_owned());
    public.common.public_key_use = Some(PublicKeyUse::Signature);
    SigningKey {
        kid: kid.to_owned(),
        encoding,
        public,
    }
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn claims(sub: &str) -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "exp": now() + 600, "iat": now()})
}

fn sign(key: &SigningKey, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    let token = jsonwebtoken::encode(&header, claims, &key.encoding).unwrap();
    format!("Bearer {token}")
}

fn verifier(provider: &Arc<Provider>, unknown_key_after: Duration) -> OidcVerifier {
    OidcVerifier::new(
        OidcIssuer {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            jwks_url: None,
        },
        Some(AdminGroup {
            claim: "cognito:groups".into(),
            group: "admin".into(),
        }),
        KeyRefresh {
            max_age: Duration::from_secs(3600),
            unknown_key_after,
        },
        provider.clone(),
    )
}

fn provider_with(keys: &[&SigningKey]) -> Arc<Provider> {
    let provider = Arc::new(Provider::default());
    provider.serve(
        &format!("{ISSUER}/.well-known/openid-configuration"),
        json!({"issuer": ISSUER, "jwks_uri": JWKS}),
    );
    provider.publish(keys);
    provider
}

#[tokio::test]
async fn a_valid_token_names_its_user_and_the_keys_are_fetched_once() {
    let key = es256_key("k1");
    let provider = provider_with(&[&key]);
    let check = verifier(&provider, Duration::ZERO);
    let token = sign(&key, &claims("7"));
    assert_eq!(check.verify_user(Some(&token)).await, Ok(UserId(7)));
    assert_eq!(check.verify_user(Some(&token)).await, Ok(UserId(7)));
    assert_eq!(provider.fetches(), 2, "discovery and key set, once");
}

#[tokio::test]
async fn expired_foreign_and_non_canonical_tokens_are_refused() {
    let key = es256_key("k1");
    let provider = provider_with(&[&key]);
    let check = verifier(&provider, Duration::ZERO);
    let mut expired = claims("7");
    expired["exp"] = json!(now() - 120);
    assert_eq!(
        check.verify_user(Some(&sign(&key, &expired))).await,
        Err(AuthError::Expired)
    );
    let mut other_app = claims("7");
    other_app["aud"] = json!("another-app");
    assert_eq!(
        check.verify_user(Some(&sign(&key, &other_app))).await,
        Err(AuthError::Invalid)
    );
    let mut other_issuer = claims("7");
    other_issuer["iss"] = json!("https://evil.example.com");
    assert_eq!(
        check.verify_user(Some(&sign(&key, &other_issuer))).await,
        Err(AuthError::Invalid)
    );
    assert_eq!(
        check.verify_user(Some(&sign(&key, &claims("007")))).await,
        Err(AuthError::Invalid)
    );
    assert_eq!(check.verify_user(None).await, Err(AuthError::Missing));
}

#[tokio::test]
async fn an_audience_list_or_a_cognito_client_id_names_the_app() {
    let key = es256_key("k1");
    let provider = provider_with(&[&key]);
    let check = verifier(&provider, Duration::ZERO);
    let mut listed = claims("7");
    listed["aud"] = json!(["other", AUDIENCE]);
    assert_eq!(
        check.verify_user(Some(&sign(&key, &listed))).await,
        Ok(UserId(7))
    );
    let mut access_token = claims("8");
    access_token.as_object_mut().unwrap().remove("aud");
    access_token["client_id"] = json!(AUDIENCE);
    assert_eq!(
        check.verify_user(Some(&sign(&key, &access_token))).await,
        Ok(UserId(8))
    );
    access_token["client_id"] = json!("other");
    assert_eq!(
        check.verify_user(Some(&sign(&key, &access_token))).await,
        Err(AuthError::Invalid)
    );
}

#[tokio::test]
async fn a_rotated_key_is_fetched_and_unknown_ones_fetch_at_most_once_a_period() {
    let period = Duration::from_millis(300);
    let old = es256_key("k1");
    let provider = provider_with(&[&old]);
    let check = verifier(&provider, period);
    assert!(
        check
            .verify_user(Some(&sign(&old, &claims("1"))))
            .await
            .is_ok()
    );
    let new = es256_key("k2");
    provider.publish(&[&new, &old]);
    let fetched = provider.fetches();
    let rotated = sign(&new, &claims("2"));
    assert_eq!(
        check.verify_user(Some(&rotated)).await,
        Err(AuthError::Invalid),
        "within the period of the last fetch, an unknown key is not looked for"
    );
    assert_eq!(provider.fetches(), fetched);
    tokio::time::sleep(period).await;
    assert_eq!(check.verify_user(Some(&rotated)).await, Ok(UserId(2)));
    assert_eq!(provider.fetches(), fetched + 1, "the key set only");
    let stranger = sign(&es256_key("k3"), &claims("3"));
    for _ in 0..3 {
        assert_eq!(
            check.verify_user(Some(&stranger)).await,
            Err(AuthError::Invalid)
        );
    }
    assert_eq!(
        provider.fetches(),
        fetched + 1,
        "made-up key ids fetch nothing more"
    );
    assert!(
        check
            .verify_user(Some(&sign(&old, &claims("1"))))
            .await
            .is_ok()
    );
    tokio::time::sleep(period).await;
    assert_eq!(
        check.verify_user(Some(&stranger)).await,
        Err(AuthError::Invalid)
    );
    assert_eq!(
        provider.fetches(),
        fetched + 2,
        "looked for once the period is over"
    );
}

#[tokio::test]
async fn hmac_and_unsigned_tokens_are_refused() {
    let key = es256_key("k1");
    let provider = provider_with(&[&key]);
    let check = verifier(&provider, Duration::ZERO);
    // Signed with the published key's text as an HMAC secret: the classic confusion.
    let secret = serde_json::to_vec(&key.public).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let hmac =
        jsonwebtoken::encode(&header, &claims("7"), &EncodingKey::from_secret(&secret)).unwrap();
    assert_eq!(
        check.verify_user(Some(&format!("Bearer {hmac}"))).await,
        Err(AuthError::Invalid)
    );
    use base64::Engine;
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    let unsigned = format!(
        "Bearer {}.{}.",
        b64(&json!({"alg": "none", "kid": "k1"})),
        b64(&claims("7"))
    );
    assert_eq!(
        check.verify_user(Some(&unsigned)).await,
        Err(AuthError::Invalid)
    );
}

#[tokio::test]
async fn the_user_may_be_read_from_a_claim_other_than_sub() {
    let key = es256_key("k1");
    let provider = provider_with(&[&key]);
    let check = verifier(&provider, Duration::ZERO).reading_user_from("custom:user_id");
    let mut cognito = claims("0f1e2d3c-uuid-of-the-pool");
    cognito["custom:user_id"] = json!("42");
    assert_eq!(
        check.verify_user(Some(&sign(&key, &cognito))).await,
        Ok(UserId(42))
    );
    cognito["custom:user_id"] = json!(43);
    assert_eq!(
        check.verify_user(Some(&sign(&key, &cognito))).await,
        Ok(UserId(43))
    );
    for wrong in [json!("042"), json!(-1), json!(4.5), json!(null)] {
        cognito["custom:user_id"] = wrong.clone();
        assert_eq!(
            check.verify_user(Some(&sign(&key, &cognito))).await,
            Err(AuthError::Invalid),
            "{wrong}"
        );
    }
    assert_eq!(
        check.verify_user(Some(&sign(&key, &claims("7")))).await,
        Err(AuthError::Invalid),
        "sub is not read in its place"
    );
}

#[tokio::test]
async fn admins_are_the_members_of_the_admin_group() {
    let key = es256_key("k1");
    let provider = provider_with(&[&key]);
    let check = verifier(&provider, Duration::ZERO);
    let mut member = claims("ops@cube.example");
    member["cognito:groups"] = json!(["readers", "admin"]);
    assert_eq!(
        check
            .verify_admin(Some(&sign(&key, &member)))
            .await
            .map(|a| a.0),
        Ok("ops@cube.example".to_owned())
    );
    member["cognito:groups"] = json!("admin");
    assert!(check.verify_admin(Some(&sign(&key, &member))).await.is_ok());
    member["cognito:groups"] = json!(["readers"]);
    assert_eq!(
        check.verify_admin(Some(&sign(&key, &member))).await,
        Err(AuthError::NotAdmin)
    );
    assert_eq!(
        check.verify_admin(Some(&sign(&key, &claims("ops")))).await,
        Err(AuthError::NotAdmin)
    );
}

#[tokio::test]
async fn keys_that_cannot_be_read_answer_unavailable_until_they_can() {
    let key = es256_key("k1");
    let provider = Arc::new(Provider::default());
    let check = verifier(&provider, Duration::ZERO);
    let token = sign(&key, &claims("7"));
    assert_eq!(
        check.verify_user(Some(&token)).await,
        Err(AuthError::KeysUnavailable)
    );
    // A discovery document naming another issuer, or keys without TLS, is not followed.
    provider.serve(
        &format!("{ISSUER}/.well-known/openid-configuration"),
        json!({"issuer": "https://evil.example.com", "jwks_uri": JWKS}),
    );
    provider.publish(&[&key]);
    assert_eq!(
        check.verify_user(Some(&token)).await,
        Err(AuthError::KeysUnavailable)
    );
    let plain = "http://id.example.com/keys";
    provider.serve(
        &format!("{ISSUER}/.well-known/openid-configuration"),
        json!({"issuer": ISSUER, "jwks_uri": plain}),
    );
    provider.serve(
        plain,
        serde_json::to_value(JwkSet {
            keys: vec![key.public.clone()],
        })
        .unwrap(),
    );
    assert_eq!(
        check.verify_user(Some(&token)).await,
        Err(AuthError::KeysUnavailable)
    );
    assert!(
        !provider
            .fetched
            .lock()
            .unwrap()
            .iter()
            .any(|url| url == plain)
    );
    provider.serve(
        &format!("{ISSUER}/.well-known/openid-configuration"),
        json!({"issuer": ISSUER, "jwks_uri": JWKS}),
    );
    assert_eq!(check.verify_user(Some(&token)).await, Ok(UserId(7)));
    // Once read, an outage keeps the keys in hand.
    provider.documents.lock().unwrap().clear();
    let other = sign(&es256_key("k9"), &claims("9"));
    assert_eq!(
        check.verify_user(Some(&other)).await,
        Err(AuthError::Invalid)
    );
    assert_eq!(check.verify_user(Some(&token)).await, Ok(UserId(7)));
}

#[test]
fn plain_http_issuers_are_for_this_machine_only() {
    let issuer = |url: &str, jwks: Option<&str>| OidcIssuer {
        issuer: url.into(),
        audience: AUDIENCE.into(),
        jwks_url: jwks.map(str::to_owned),
    };
    assert!(issuer(ISSUER, None).is_secure());
    assert!(issuer("http://127.0.0.1:3001", None).is_secure());
    assert!(!issuer("http://id.example.com", None).is_secure());
    assert!(!issuer(ISSUER, Some("http://id.example.com/keys")).is_secure());
    assert!(!issuer("http://127.0.0.1.evil.com", None).is_secure());
}
