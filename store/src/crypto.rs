//! Secrets at rest: API/gateway tokens (random, stored as SHA-256 digests) and
//! console passwords (argon2id).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;
use rand::distributions::Alphanumeric;
use sha2::{Digest, Sha256};

use crate::StoreError;

/// Random characters after a token's type prefix (62^40 ≈ 2^238).
const TOKEN_RANDOM_LEN: usize = 40;
/// Characters of a token kept in clear for display (`kt_gk_AbCd…`).
const DISPLAY_PREFIX_LEN: usize = 10;

/// The two kinds of bearer token kt issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Control-plane API token (`kt_ak_…`).
    Access,
    /// Gateway key used by applications (`kt_gk_…`).
    Gateway,
}

impl TokenKind {
    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::Access => "kt_ak_",
            TokenKind::Gateway => "kt_gk_",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Gateway => "gateway",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "access" => Some(TokenKind::Access),
            "gateway" => Some(TokenKind::Gateway),
            _ => None,
        }
    }
}

/// A freshly generated token: the secret (shown once) and what is stored.
pub struct GeneratedToken {
    pub secret: String,
    pub display_prefix: String,
    pub hash: String,
}

impl std::fmt::Debug for GeneratedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedToken")
            .field("secret", &"***")
            .field("display_prefix", &self.display_prefix)
            .finish()
    }
}

pub fn generate_token(kind: TokenKind) -> GeneratedToken {
    let random: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(TOKEN_RANDOM_LEN)
        .map(char::from)
        .collect();
    let secret = format!("{}{random}", kind.prefix());
    let display_prefix = secret.chars().take(DISPLAY_PREFIX_LEN).collect();
    let hash = hash_token(&secret);
    GeneratedToken {
        secret,
        display_prefix,
        hash,
    }
}

/// The stored digest of a token. Tokens carry ~238 bits of entropy, so a fast
/// hash is enough (no salt or stretching needed) and lookups stay O(1).
pub fn hash_token(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Hashes a password with argon2id and a random salt (PHC string). CPU-heavy:
/// call it from `spawn_blocking` on async paths.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Crypto(e.to_string()))
}

/// Checks `password` against a PHC hash; false for a malformed hash.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A random password for generated accounts (the quick-start's admin).
pub fn random_password() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_their_prefix_and_hash_to_what_is_stored() {
        let t = generate_token(TokenKind::Gateway);
        assert!(t.secret.starts_with("kt_gk_"));
        assert_eq!(t.secret.len(), 6 + TOKEN_RANDOM_LEN);
        assert!(t.secret.starts_with(&t.display_prefix));
        assert_eq!(hash_token(&t.secret), t.hash);
        assert_ne!(generate_token(TokenKind::Gateway).secret, t.secret);
        assert!(!format!("{t:?}").contains(&t.secret));
    }

    #[test]
    fn passwords_use_argon2id_and_verify() -> Result<(), StoreError> {
        let phc = hash_password("correct horse")?;
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong", &phc));
        assert!(!verify_password("correct horse", "not-a-hash"));
        Ok(())
    }
}

/// The master key: AES-256-GCM-SIV over provider secrets at rest
/// (`KT_MASTER_KEY`, base64 of 32 bytes). Never printed.
#[derive(Clone)]
pub struct MasterKey(aes_gcm_siv::Aes256GcmSiv);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

/// Bytes of a GCM-SIV nonce.
const NONCE_LEN: usize = 12;

impl MasterKey {
    /// Parses base64 of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        use aes_gcm_siv::KeyInit;
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("not base64 ({e})"))?;
        if bytes.len() != 32 {
            return Err(format!(
                "{} bytes after base64 decoding; a master key is 32 bytes (generate one with `openssl rand -base64 32`)",
                bytes.len()
            ));
        }
        aes_gcm_siv::Aes256GcmSiv::new_from_slice(&bytes)
            .map(MasterKey)
            .map_err(|e| e.to_string())
    }

    /// A new random key and its base64 form.
    pub fn generate() -> (Self, String) {
        use base64::Engine;
        let bytes: [u8; 32] = rand::random();
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        match Self::from_base64(&text) {
            Ok(key) => (key, text),
            // 32 random bytes always make a key.
            Err(_) => unreachable!("32 bytes are a valid AES-256 key"),
        }
    }

    /// Encrypts `plaintext`, bound to `context` (e.g. the secret's name and
    /// team): base64 of nonce ‖ ciphertext.
    pub fn encrypt(&self, plaintext: &[u8], context: &[u8]) -> Result<String, StoreError> {
        use aes_gcm_siv::aead::{Aead, Payload};
        use base64::Engine;
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .0
            .encrypt(
                aes_gcm_siv::Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| StoreError::Crypto("encryption failed".to_owned()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    /// Decrypts what [`MasterKey::encrypt`] produced with the same `context`;
    /// fails when the key or the context differ.
    pub fn decrypt(&self, sealed: &str, context: &[u8]) -> Result<Vec<u8>, StoreError> {
        use aes_gcm_siv::aead::{Aead, Payload};
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| StoreError::Crypto("a stored secret is not valid base64".to_owned()))?;
        if bytes.len() < NONCE_LEN {
            return Err(StoreError::Crypto(
                "a stored secret is truncated".to_owned(),
            ));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        self.0
            .decrypt(
                aes_gcm_siv::Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| {
                StoreError::Crypto(
                    "cannot decrypt a stored secret: KT_MASTER_KEY is not the key it was encrypted with".to_owned(),
                )
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod master_key_tests {
    use super::*;

    #[test]
    fn secrets_round_trip_only_with_the_same_key_and_context() {
        let (key, text) = MasterKey::generate();
        let sealed = key.encrypt(b"sk-live-123", b"openai-key/team-a").unwrap();
        assert!(!sealed.contains("sk-live"));
        assert_eq!(
            key.decrypt(&sealed, b"openai-key/team-a").unwrap(),
            b"sk-live-123"
        );
        assert!(key.decrypt(&sealed, b"openai-key/team-b").is_err());
        let (other, _) = MasterKey::generate();
        assert!(other.decrypt(&sealed, b"openai-key/team-a").is_err());
        let again = MasterKey::from_base64(&text).unwrap();
        assert_eq!(
            again.decrypt(&sealed, b"openai-key/team-a").unwrap(),
            b"sk-live-123"
        );
        assert!(
            MasterKey::from_base64("c2hvcnQ=")
                .unwrap_err()
                .contains("32 bytes")
        );
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(!format!("{key:?}").contains(&text));
    }
}
