//! Token keys: secrets, key rings that rotate without downtime, and verifiers whose keys live
//! in a secret store.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use cuba_core::evaluation::source::TtlCache;
use cuba_core::model::ports::{PortError, SecretStore};

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

    /// The key itself, for signing and verifying tokens.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.0
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
