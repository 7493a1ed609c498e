//! What can go wrong in the runtime (as opposed to what the core refuses, which is a
//! [`crate::Refused`] value).

/// A failure of the engine or its database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// A stored definition no longer compiles (the engine's rules changed since it was
    /// deployed) or does not match its hash.
    #[error("the stored definition {hash} cannot be used: {message}")]
    Definition {
        /// The definition hash.
        hash: String,
        /// What is wrong.
        message: String,
    },
    /// A stored snapshot or outbox row could not be read.
    #[error("cannot read the stored {what}: {source}")]
    Decode {
        /// What was being read.
        what: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The external task jobs' store failed.
    #[error("the external task store failed: {0}")]
    JobStore(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Other writers kept changing the instance; the command was given up.
    #[error("instance {0} kept changing under concurrent writes; try again")]
    Contention(String),
    /// The runtime is shutting down and takes no more commands.
    #[error("the runtime is shutting down")]
    ShuttingDown,
    /// The configuration is not usable.
    #[error("bad configuration: {0}")]
    Config(String),
}
