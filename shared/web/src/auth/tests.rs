use super::*;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use cuba_core::model::clock::{Clock, SystemClock};
use cuba_core::model::domain::UserId;
use cuba_core::model::ports::{PortError, SecretStore};

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

    *store.0.lock().unwrap() = Ok(
        serde_json::json!({"keys": [{"kid": "k2", "secret": NEW}, {"kid": "k1", "secret": OLD}]})
            .to_string(),
    );
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
