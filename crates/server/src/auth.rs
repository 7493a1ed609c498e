//! Who is calling: bearer tokens (32 random bytes, shown once, stored as SHA-256), passwords
//! (Argon2id, memory-hard), and the [`Principal`] extractor every authenticated handler takes.
//!
//! Deliberately absent: any rule about what the principal may do; that is [`crate::authz`].

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use crate::dto::{Lang, OrgKind};
use crate::error::Error;
use crate::state::AppState;

/// The prefix of every API token, so a leaked one is recognisable (e.g. by secret scanners).
pub const TOKEN_PREFIX: &str = "sft_";

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user id.
    pub user: String,
    /// The display name.
    pub name: String,
    /// The organisation id.
    pub organisation: String,
    /// Dealer or headquarters.
    pub kind: OrgKind,
    /// The roles held in the organisation.
    pub roles: Vec<String>,
    /// An administrator of the organisation.
    pub admin: bool,
    /// Holds one of the server's manager roles in a dealer (`Options::manager_roles`): reads
    /// every task of the dealer, acts only on those of their own roles.
    pub manager: bool,
    /// The preferred language.
    pub lang: Lang,
    /// The organisation's time zone.
    pub time_zone: String,
}

impl Principal {
    /// The core's view of the user.
    pub fn machine_user(&self) -> machine::User {
        machine::User::new(self.user.clone(), self.roles.clone())
    }

    /// Whether the caller belongs to headquarters.
    pub fn is_hq(&self) -> bool {
        self.kind == OrgKind::Hq
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Principal, Error> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Error::Unauthorized)?;
        let principal = state.authenticate(token).await?.ok_or(Error::Unauthorized)?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

/// A fresh token, its SHA-256 (hex) and its public id.
pub fn new_token() -> Result<(String, String, String), Error> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("no randomness for a token: {e}")))?;
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let hash = token_hash(&token);
    let id = hash[..16].to_string();
    Ok((token, hash, id))
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Why a password cannot be set.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too short.
    #[error("a password needs at least 8 characters")]
    TooShort,
    /// The hasher failed.
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// The password rule for passwords set through the API and the CLI.
pub fn check_policy(password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < 8 { Err(PasswordError::TooShort) } else { Ok(()) }
}

/// Hashes a password with Argon2id (default parameters: 19 MiB, 2 passes) into a PHC string.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether a password matches a PHC string (a malformed string matches nothing).
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, hash_a, id_a) = new_token().unwrap();
        let (b, _, _) = new_token().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert_eq!(token_hash(&a), hash_a);
        assert!(hash_a.starts_with(&id_a));
    }

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong horse", &phc));
        assert!(!verify_password("correct horse", "not a hash"));
        assert!(matches!(check_policy("short"), Err(PasswordError::TooShort)));
    }
}
