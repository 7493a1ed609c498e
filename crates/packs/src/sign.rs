//! Publisher keys and signatures (Ed25519).
//!
//! A public key is written `ed25519:<64 hex digits>`, so that a key pasted into a dealer's
//! trust list says what it is. A signing key file holds the 32-byte secret seed in hex under a
//! header line; the CLI writes it readable by its owner only. What is signed is the archive's
//! digest under a fixed prefix ([`message`]), so a signature can never be replayed as a
//! signature of something else.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

/// The first line of a signing key file.
pub const SECRET_HEADER: &str = "sopflow pack signing key (ed25519); keep this file secret";

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    /// The text does not start with `ed25519:` (public) or lacks the header (secret).
    #[error("expected {expected}")]
    Form {
        /// What was expected, in words.
        expected: &'static str,
    },
    /// The hex part is not 32 bytes of hex.
    #[error("the key is not 64 hexadecimal digits")]
    Hex,
    /// The bytes are not a valid Ed25519 public key.
    #[error("the bytes are not an Ed25519 public key")]
    Invalid,
    /// The operating system gave no randomness for a new key.
    #[error("no randomness was available to make a key")]
    NoRandomness,
}

/// The message signed for an archive digest.
pub fn message(digest: &str) -> String {
    format!("sopflow-pack-signature/1\n{digest}\n")
}

/// A publisher's public key: its 32 bytes, checked to be a valid Ed25519 point when made.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Whether `signature` is this key's signature of `message` (strict verification: no
    /// malleable or small-order forms).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(bytes) = <[u8; 64]>::try_from(signature) else { return false };
        let Ok(key) = VerifyingKey::from_bytes(&self.0) else { return false };
        key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&bytes)).is_ok()
    }

    /// The key's 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// Parses every key in a trust list: one `ed25519:<hex>` a line; blank lines and `#`
    /// comments are skipped.
    pub fn parse_list(text: &str) -> Result<Vec<PublicKey>, KeyProblem> {
        text.lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .map(str::parse)
            .collect()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = KeyProblem;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex_part =
            s.trim().strip_prefix("ed25519:").ok_or(KeyProblem::Form { expected: "`ed25519:` and 64 hex digits" })?;
        let bytes: [u8; 32] = hex::decode(hex_part).ok().and_then(|b| b.try_into().ok()).ok_or(KeyProblem::Hex)?;
        VerifyingKey::from_bytes(&bytes).map(|k| PublicKey(k.to_bytes())).map_err(|_| KeyProblem::Invalid)
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A publisher's signing key. Its `Debug` does not show the secret.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A new key from the operating system's randomness.
    pub fn generate() -> Result<SecretKey, KeyProblem> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|_| KeyProblem::NoRandomness)?;
        Ok(SecretKey::from_seed(seed))
    }

    /// The key made from a 32-byte seed (for tests and for keys kept elsewhere).
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(&seed))
    }

    /// Its public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs a message.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// The key file's text: the header, the secret seed, and the public key as a reminder.
    pub fn to_file_text(&self) -> String {
        format!("# {SECRET_HEADER}\nsecret: {}\npublic: {}\n", hex::encode(self.0.to_bytes()), self.public())
    }

    /// Reads a key file written by [`SecretKey::to_file_text`].
    pub fn from_file_text(text: &str) -> Result<SecretKey, KeyProblem> {
        if text.lines().next().is_none_or(|l| l.trim_start_matches('#').trim() != SECRET_HEADER) {
            return Err(KeyProblem::Form { expected: "a key file written by `sopflow pack keygen`" });
        }
        let secret = text
            .lines()
            .find_map(|l| l.strip_prefix("secret:"))
            .ok_or(KeyProblem::Form { expected: "a `secret:` line" })?;
        let seed: [u8; 32] = hex::decode(secret.trim()).ok().and_then(|b| b.try_into().ok()).ok_or(KeyProblem::Hex)?;
        Ok(SecretKey::from_seed(seed))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public {})", self.public())
    }
}
