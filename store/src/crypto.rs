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
