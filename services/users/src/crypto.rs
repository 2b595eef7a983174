//! Password hashing, token-signing keys and opaque secrets.
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{EncodingKey, Header};
use platform::auth::Claims;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// argon2id with the parameters of OWASP's recommendation (m = 19456 KiB, t = 2, p = 1).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes and verifies passwords on blocking threads, a bounded number at a time, so that a flood
/// of logins queues here instead of starving every other request of the async runtime.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    /// A hash to verify against when the user does not exist, so both cases cost the same.
    dummy: Arc<String>,
}

impl Hasher {
    pub fn new() -> anyhow::Result<Self> {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let dummy = argon2()
            .hash_password(random_token().as_bytes(), &salt)
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
            .to_string();
        Ok(Self {
            permits: Arc::new(Semaphore::new(cpus.max(2))),
            dummy: Arc::new(dummy),
        })
    }

    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("argon2: {e}"))
        })
        .await?
    }

    /// Whether `password` matches `hash`; with no hash (unknown user) it checks a dummy one and
    /// answers false, at the same cost.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let known = hash.is_some();
        let hash = hash.map_or_else(|| self.dummy.as_str().to_owned(), str::to_owned);
        let password = password.to_owned();
        let matched = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    argon2()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        known && matched
    }
}

/// 256 random bits, URL-safe: refresh tokens and client secrets.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// How secrets are stored: their SHA-256. They are random and long, so a fast hash suffices.
pub fn sha256(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time comparison of two stored hashes.
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A signing key as stored: the private key (PKCS#8 DER, base64, optionally AES-256-GCM
/// encrypted as nonce ‖ ciphertext) and the public key (base64url, the JWK `x`).
pub struct StoredKey {
    pub kid: String,
    pub private_key: String,
    pub encrypted: bool,
    pub public_key: String,
}

/// The issuer's keys in memory: the newest signs, all are published.
pub struct Keys {
    signing_kid: String,
    signing: EncodingKey,
    public: Vec<(String, String)>,
}

impl Keys {
    /// A fresh key, ready to store (encrypted when `kek` is given).
    pub fn generate(kek: Option<&[u8; 32]>) -> anyhow::Result<StoredKey> {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let der = key
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("encoding the signing key: {e}"))?;
        let (private_key, encrypted) = match kek {
            Some(kek) => (encrypt(kek, der.as_bytes())?, true),
            None => (STANDARD.encode(der.as_bytes()), false),
        };
        Ok(StoredKey {
            kid: uuid::Uuid::now_v7().to_string(),
            private_key,
            encrypted,
            public_key: URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
        })
    }

    /// Loads stored keys, newest last. Fails with a clear message when a key is encrypted and the
    /// key-encryption key is missing or wrong.
    pub fn load(stored: &[StoredKey], kek: Option<&[u8; 32]>) -> anyhow::Result<Self> {
        let newest = stored
            .last()
            .ok_or_else(|| anyhow::anyhow!("no signing key"))?;
        let der = if newest.encrypted {
            let kek = kek.ok_or_else(|| {
                anyhow::anyhow!(
                    "invalid configuration: the signing key is encrypted; set its key-encryption key (AGORA_KEY_ENCRYPTION_KEY or AGORA_KEY_ENCRYPTION_KEY_FILE)"
                )
            })?;
            decrypt(kek, &newest.private_key)?
        } else {
            STANDARD.decode(&newest.private_key)?
        };
        // Prove the key is whole before signing with it.
        SigningKey::from_pkcs8_der(&der).map_err(|e| {
            anyhow::anyhow!("the stored signing key is not a valid Ed25519 key: {e}")
        })?;
        Ok(Self {
            signing_kid: newest.kid.clone(),
            signing: EncodingKey::from_ed_der(&der),
            public: stored
                .iter()
                .map(|k| (k.kid.clone(), k.public_key.clone()))
                .collect(),
        })
    }

    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let mut header = Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.signing_kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.signing)?)
    }

    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self
                .public
                .iter()
                .map(|(kid, x)| Jwk {
                    common: CommonParameters {
                        public_key_use: Some(PublicKeyUse::Signature),
                        key_algorithm: Some(KeyAlgorithm::EdDSA),
                        key_id: Some(kid.clone()),
                        ..Default::default()
                    },
                    algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                        key_type: OctetKeyPairType::OctetKeyPair,
                        curve: EllipticCurve::Ed25519,
                        x: x.clone(),
                    }),
                })
                .collect(),
        }
    }
}

/// The key-encryption key from its base64 form (32 bytes).
pub fn parse_kek(text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = STANDARD.decode(text.trim()).map_err(|_| {
        anyhow::anyhow!(
            "invalid configuration: the key-encryption key (AGORA_KEY_ENCRYPTION_KEY or AGORA_KEY_ENCRYPTION_KEY_FILE) is not base64"
        )
    })?;
    bytes.try_into().map_err(|_| {
        anyhow::anyhow!("invalid configuration: the key-encryption key (AGORA_KEY_ENCRYPTION_KEY or AGORA_KEY_ENCRYPTION_KEY_FILE) must be 32 bytes")
    })
}

/// A plaintext stored private key (base64 PKCS#8) in its encrypted stored form.
pub fn encrypt_stored(kek: &[u8; 32], stored: &str) -> anyhow::Result<String> {
    let der = STANDARD.decode(stored)?;
    SigningKey::from_pkcs8_der(&der)
        .map_err(|e| anyhow::anyhow!("the stored signing key is not a valid Ed25519 key: {e}"))?;
    encrypt(kek, &der)
}

fn encrypt(kek: &[u8; 32], plain: &[u8]) -> anyhow::Result<String> {
    let cipher = Aes256Gcm::new(kek.into());
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(&Nonce::from(nonce), plain)
        .map_err(|_| anyhow::anyhow!("encrypting the signing key failed"))?;
    let mut out = nonce.to_vec();
    out.extend(sealed);
    Ok(STANDARD.encode(out))
}

fn decrypt(kek: &[u8; 32], stored: &str) -> anyhow::Result<Vec<u8>> {
    let bytes = STANDARD.decode(stored)?;
    if bytes.len() < 13 {
        anyhow::bail!("the stored signing key is damaged");
    }
    let (nonce, sealed) = bytes.split_at(12);
    let nonce: [u8; 12] = nonce.try_into()?;
    Aes256Gcm::new(kek.into())
        .decrypt(&Nonce::from(nonce), sealed)
        .map_err(|_| {
            anyhow::anyhow!(
                "invalid configuration: the key-encryption key (AGORA_KEY_ENCRYPTION_KEY or AGORA_KEY_ENCRYPTION_KEY_FILE) does not decrypt the stored signing key"
            )
        })
}
