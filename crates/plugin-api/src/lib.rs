//! The interface between the engine and its actions.
//!
//! An action is what an automatic step or a timer asks for: send a notification, call a
//! dealer's DMS, look up parts stock. The engine knows actions only through [`Action`]: a name,
//! a version, JSON Schemas of its input and output (the runtime validates both, compiled once),
//! the capabilities it needs (granted or refused by the dealer's configuration), and `invoke`.
//! Script plugins may also contribute guard helpers, described by [`HelperInfo`].
//!
//! This crate is deliberately tiny and depends on nothing but serde: a plugin depends on it
//! alone, and it changes only with a major version.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A boxed future, so that actions can live behind `dyn Action`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an action is and what it needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionInfo {
    /// The name process definitions use, e.g. `notify` or `inventory.check`.
    pub name: String,
    /// The action's version (semver).
    pub version: String,
    /// What it does, in a sentence.
    pub description: String,
    /// JSON Schema of the input.
    pub input_schema: Value,
    /// JSON Schema of the output.
    pub output_schema: Value,
    /// What it needs from the outside world.
    pub capabilities: Vec<Capability>,
}

/// A guard helper function a script plugin contributes, such as `is_vip(customer)`: guards and
/// computed values call it by name. Helpers are pure: they need no capabilities and compute from
/// their arguments alone, under the same limits as the guard that calls them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelperInfo {
    /// The name guards call it by.
    pub name: String,
    /// How many arguments it takes.
    pub arity: usize,
    /// What it gives, in a sentence, for the people writing guards.
    pub doc: String,
}

/// Something an action needs from the outside world; the dealer's configuration grants it or
/// not, and an action is refused what it was not granted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Capability {
    /// HTTP(S) requests to one host (`dms.example.com`, or `*.example.com`).
    Http {
        /// The host.
        host: String,
    },
    /// Sending e-mail through the configured SMTP server.
    Smtp,
    /// Sending text messages through the configured gateway.
    Sms,
    /// Reading and writing one of the engine's own tables (e.g. `inventory`).
    Table {
        /// The table.
        name: String,
    },
    /// Reading a secret from the configuration (never from the pack).
    Secret {
        /// The secret's name.
        name: String,
    },
}

/// One invocation of an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    /// The job (stable across tries).
    pub job: String,
    /// Unique per try: an action that receives the same key twice must act only once.
    pub idempotency_key: String,
    /// The instance that asked.
    pub instance: String,
    /// The dealer the instance belongs to.
    pub dealer: String,
    /// The try number, from 1.
    pub attempt: u32,
    /// The input, already validated against the input schema.
    pub input: Value,
}

/// Why an invocation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum Error {
    /// Trying again later may work (a timeout, a 503).
    #[error("{0}")]
    Retryable(String),
    /// Trying again will not help (a 400, a refused capability).
    #[error("{0}")]
    Permanent(String),
}

impl Error {
    /// Whether trying again may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Retryable(_))
    }
}

/// An action.
pub trait Action: Send + Sync {
    /// What it is.
    fn info(&self) -> &ActionInfo;

    /// Performs it. The output must match the output schema; the runtime checks.
    fn invoke(&self, invocation: Invocation) -> BoxFuture<'_, Result<Value, Error>>;
}
