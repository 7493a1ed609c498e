//! The storage port of sopflow: what the runtime needs from a database, as one small trait
//! ([`Store`]) over plain row types, plus an in-memory implementation ([`MemoryStore`]) and
//! the audit-chain arithmetic ([`audit`]) every backend shares. Beside it: the directory of the
//! HTTP server ([`org`]), its searches ([`search`]) and pack distribution ([`packs`]).
//!
//! The rows are the store's own types (not the machine's): the runtime converts an
//! `Instance` to an [`InstanceRow`] with its snapshot as JSON text, so the core can change
//! without a migration and the store never needs to understand a process.
//!
//! A transition is written as one [`Change`]; [`Store::commit`] applies a batch of changes in
//! one transaction, all or nothing. Optimistic concurrency is part of the contract: an
//! instance write names the revision it expects, and a batch with any stale write is refused
//! whole with [`Error::Conflict`].
//!
//! Architecture invariant: no async runtime, no database driver; times are milliseconds since
//! the Unix epoch passed in by the caller (the store never reads a clock).

pub mod audit;
mod memory;
pub mod org;
pub mod packs;
pub mod report;
pub mod search;

use std::future::Future;

use serde::{Deserialize, Serialize};

pub use memory::MemoryStore;

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An instance changed since it was read (another writer, another node), or an instance
    /// to be created already exists. Nothing of the batch was written.
    #[error("conflicting write to instance(s) {}", .instances.join(", "))]
    Conflict {
        /// The instances whose expected revision did not match.
        instances: Vec<String>,
    },
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored value could not be read back (a corrupt row, a newer schema).
    #[error("bad stored value in {table}: {message}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The database URL or settings are not usable.
    #[error("bad configuration: {0}")]
    Config(String),
}

/// The result of store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A deployed definition, stored by content hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DefinitionRow {
    /// SHA-256 of the definition document (hex).
    pub hash: String,
    /// The process id.
    pub process_id: String,
    /// The owner's version number.
    pub version: i64,
    /// The pack it came from.
    pub pack_id: Option<String>,
    /// The pack's version.
    pub pack_version: Option<String>,
    /// The definition document (JSON text): what rebuilds the process after a restart.
    pub document: String,
    /// When it was first stored.
    pub deployed_at: Millis,
}

/// An instance as stored: columns for the indexes plus the whole machine snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRow {
    /// The id.
    pub id: String,
    /// The dealer.
    pub dealer: String,
    /// The process id.
    pub process_id: String,
    /// The definition hash it runs on.
    pub hash: String,
    /// The business key.
    pub business_key: Option<String>,
    /// The parent instance.
    pub parent_id: Option<String>,
    /// `running`, `incident` (running, stopped by an open incident) or `ended`.
    pub status: String,
    /// The outcome, once ended.
    pub outcome: Option<String>,
    /// The machine's revision; bumped by every transition.
    pub revision: i64,
    /// The machine instance, JSON text.
    pub snapshot: String,
    /// When it started.
    pub started_at: Millis,
    /// When it ended.
    pub ended_at: Option<Millis>,
    /// The last entry of the instance's audit chain (`chain_seq`, 0 before the first).
    pub audit_seq: i64,
    /// That entry's hash ([`audit::GENESIS`] before the first).
    pub audit_hash: String,
}

/// A task in the inbox projection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRow {
    /// The task id (`<instance>-t<n>`).
    pub id: String,
    /// The instance.
    pub instance_id: String,
    /// The dealer.
    pub dealer: String,
    /// The process id.
    pub process_id: String,
    /// The step (or timer, for a side task).
    pub step: String,
    /// Title in Chinese.
    pub title_zh: String,
    /// Title in English.
    pub title_en: String,
    /// Candidate roles.
    pub roles: Vec<String>,
    /// Who has it.
    pub assignee: Option<String>,
    /// `low`, `normal`, `high`, `urgent`.
    pub priority: String,
    /// When it is due.
    pub due_at: Option<Millis>,
    /// When it opened.
    pub created_at: Millis,
    /// The instance's business key.
    pub business_key: Option<String>,
    /// The named form, if any.
    pub form: Option<String>,
}

impl TaskRow {
    /// The sort key of the inbox: due time (no due time sorts last), then id.
    pub fn sort_key(&self) -> (Millis, &str) {
        (self.due_at.unwrap_or(Millis::MAX), &self.id)
    }
}

/// An armed timer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerRow {
    /// The timer id (`<instance>-k<n>`).
    pub id: String,
    /// The instance.
    pub instance_id: String,
    /// The dealer.
    pub dealer: String,
    /// When it is due.
    pub fire_at: Millis,
}

/// An instance waiting for a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// The dealer.
    pub dealer: String,
    /// The message name.
    pub name: String,
    /// The correlation key (`None`: any key).
    pub key: Option<String>,
    /// The waiting instance.
    pub instance_id: String,
}

/// A message that arrived before anyone waited for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BufferedMessage {
    /// Assigned by the store.
    pub id: i64,
    /// The dealer.
    pub dealer: String,
    /// The name.
    pub name: String,
    /// The key.
    pub key: Option<String>,
    /// The payload, JSON text.
    pub payload: String,
    /// When it was buffered.
    pub at: Millis,
}

/// An effect to perform after commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewOutbox {
    /// The instance that asked.
    pub instance_id: String,
    /// The dealer.
    pub dealer: String,
    /// The effect, JSON text.
    pub effect: String,
    /// Unique: the same effect is never queued twice.
    pub idempotency_key: String,
    /// Not before.
    pub available_at: Millis,
}

/// A queued effect, as taken by a dispatcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxRow {
    /// Queue order.
    pub seq: i64,
    /// The instance that asked.
    pub instance_id: String,
    /// The dealer.
    pub dealer: String,
    /// The effect, JSON text.
    pub effect: String,
    /// The idempotency key.
    pub idempotency_key: String,
    /// How often a dispatcher has taken it.
    pub attempts: i64,
}

/// One audit entry as stored. `seq` is assigned by the store on insert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    /// Global order (assigned by the store; 0 before insert).
    pub seq: i64,
    /// The chain (an instance id, or e.g. `dealer:<id>`).
    pub chain: String,
    /// Position in the chain, from 1.
    pub chain_seq: i64,
    /// When.
    pub at: Millis,
    /// Who, JSON text.
    pub actor: String,
    /// What happened (`started`, `task_completed`, `timer_fired`, ...).
    pub kind: String,
    /// The step concerned.
    pub step: Option<String>,
    /// The details (events, diff, guards), canonical JSON text.
    pub entry: String,
    /// The definition the change ran on.
    pub definition_hash: Option<String>,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// `sha256(prev_hash || canonical content)`.
    pub hash: String,
}

/// Everything one transition writes, applied atomically with the rest of its batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    /// The instance row to write, and the revision it must have now (`None`: it must not
    /// exist yet).
    pub instance: Option<(InstanceRow, Option<i64>)>,
    /// Tasks opened or changed (whole rows).
    pub tasks_upserted: Vec<TaskRow>,
    /// Tasks closed.
    pub tasks_removed: Vec<String>,
    /// Timers armed.
    pub timers_set: Vec<TimerRow>,
    /// Timers fired or disarmed.
    pub timers_removed: Vec<String>,
    /// Message subscriptions added.
    pub subscribed: Vec<Subscription>,
    /// Message subscriptions removed.
    pub unsubscribed: Vec<Subscription>,
    /// Effects to perform after commit.
    pub outbox: Vec<NewOutbox>,
    /// Outbox rows this change completes (their result is in this change).
    pub outbox_done: Vec<i64>,
    /// Messages to keep for a later receiver.
    pub buffered: Vec<BufferedMessage>,
    /// Buffered messages delivered by this change.
    pub buffered_taken: Vec<i64>,
    /// Audit entries (hashes computed by the caller).
    pub audit: Vec<AuditRow>,
}

/// Which tasks a user sees in the inbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxQuery {
    /// The dealer.
    pub dealer: String,
    /// The roles the user holds there: unclaimed tasks for any of them are listed.
    pub roles: Vec<String>,
    /// The user: tasks assigned to them are listed.
    pub user: Option<String>,
    /// Only tasks of this process.
    pub process_id: Option<String>,
    /// Start after this position (the last row of the previous page).
    pub after: Option<InboxCursor>,
    /// Page size.
    pub limit: u32,
}

/// A position in the inbox order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InboxCursor {
    /// The due time of the last row (`Millis::MAX` for none).
    pub due_key: Millis,
    /// Its task id.
    pub task_id: String,
}

impl InboxCursor {
    /// The cursor positioned at a row.
    pub fn of(task: &TaskRow) -> InboxCursor {
        InboxCursor { due_key: task.due_at.unwrap_or(Millis::MAX), task_id: task.id.clone() }
    }
}

/// Who takes timers and outbox rows, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The taker (an engine node's id).
    pub owner: String,
    /// Now, by the caller's clock.
    pub now: Millis,
    /// Others may take the rows again after this.
    pub until: Millis,
    /// At most this many rows.
    pub limit: u32,
}

/// Counts for monitoring and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Instances.
    pub instances: i64,
    /// Running instances.
    pub running: i64,
    /// Open tasks.
    pub tasks: i64,
    /// Armed timers.
    pub timers: i64,
    /// Pending outbox rows.
    pub outbox: i64,
    /// Audit entries.
    pub audit: i64,
}

/// The storage port.
///
/// Every method is one short transaction (or a read). Implementations must be cheap to clone
/// (a handle to a pool) and safe to share between tasks.
pub trait Store: Clone + Send + Sync + 'static {
    /// Stores a definition unless one with its hash exists; `true` if it was new.
    fn put_definition(&self, def: &DefinitionRow) -> impl Future<Output = Result<bool>> + Send;

    /// A definition by hash.
    fn definition(&self, hash: &str) -> impl Future<Output = Result<Option<DefinitionRow>>> + Send;

    /// Makes `hash` the newest deployment of its process for `dealer` (`""`: every dealer),
    /// unless it already is; `true` if a deployment was recorded.
    fn deploy(
        &self,
        dealer: &str,
        process_id: &str,
        hash: &str,
        at: Millis,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// The hash new instances of `process_id` for `dealer` use: the dealer's own newest
    /// deployment, else the newest for every dealer.
    fn current_deployment(&self, dealer: &str, process_id: &str)
    -> impl Future<Output = Result<Option<String>>> + Send;

    /// An instance by id.
    fn instance(&self, id: &str) -> impl Future<Output = Result<Option<InstanceRow>>> + Send;

    /// Applies a batch of changes in one transaction. On [`Error::Conflict`] nothing was
    /// written.
    fn commit(&self, changes: &[Change]) -> impl Future<Output = Result<()>> + Send;

    /// Takes due timers (`fire_at <= lease.now`, not leased by someone else) in due order.
    fn take_due_timers(&self, lease: &Lease) -> impl Future<Output = Result<Vec<TimerRow>>> + Send;

    /// The earliest `fire_at` of any armed timer.
    fn next_timer_at(&self) -> impl Future<Output = Result<Option<Millis>>> + Send;

    /// Takes available outbox rows in queue order, counting the attempt.
    fn take_outbox(&self, lease: &Lease) -> impl Future<Output = Result<Vec<OutboxRow>>> + Send;

    /// Puts an outbox row back for a later try (a failure of the engine, not of the effect).
    fn defer_outbox(&self, seq: i64, available_at: Millis) -> impl Future<Output = Result<()>> + Send;

    /// Forgets every lease (a single-node store at start: the previous process is gone).
    fn release_leases(&self) -> impl Future<Output = Result<()>> + Send;

    /// The instances of a dealer waiting for a message with this name and key.
    fn subscribers(
        &self,
        dealer: &str,
        name: &str,
        key: Option<&str>,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// The oldest buffered message of a dealer that fits a subscription.
    fn buffered_message(
        &self,
        dealer: &str,
        name: &str,
        key: Option<&str>,
    ) -> impl Future<Output = Result<Option<BufferedMessage>>> + Send;

    /// A task by id.
    fn task(&self, id: &str) -> impl Future<Output = Result<Option<TaskRow>>> + Send;

    /// One page of a user's inbox: unclaimed tasks of their roles and tasks assigned to them,
    /// by due time, merged from one index range per role plus the assignee range.
    fn inbox_page(&self, query: &InboxQuery) -> impl Future<Output = Result<Vec<TaskRow>>> + Send;

    /// Appends an entry to a chain that no instance row carries (e.g. `dealer:<id>`), reading
    /// the chain's head in the same transaction. The hash is computed here.
    fn append_audit(&self, entry: audit::Draft, at: Millis) -> impl Future<Output = Result<AuditRow>> + Send;

    /// A chain, in order.
    fn audit_chain(&self, chain: &str) -> impl Future<Output = Result<Vec<AuditRow>>> + Send;

    /// Entries with `seq > after`, in `seq` order, at most `limit` (for export).
    fn audit_since(&self, after: i64, limit: u32) -> impl Future<Output = Result<Vec<AuditRow>>> + Send;

    /// Entries after position `after` (chain, chain_seq), ordered by chain then position, at
    /// most `limit` (for verifying every chain page by page).
    fn audit_scan(
        &self,
        after: Option<(String, i64)>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AuditRow>>> + Send;

    /// Counts.
    fn stats(&self) -> impl Future<Output = Result<Stats>> + Send;
}

/// Merges per-range inbox results (each sorted by [`TaskRow::sort_key`]) into one page:
/// sorted, without duplicates (a task visible through two roles), after the cursor, at most
/// `limit` rows. Shared by every backend so they order identically.
pub fn merge_inbox(ranges: Vec<Vec<TaskRow>>, query: &InboxQuery) -> Vec<TaskRow> {
    let mut all: Vec<TaskRow> = ranges.into_iter().flatten().collect();
    all.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    all.dedup_by(|a, b| a.id == b.id);
    if let Some(after) = &query.after {
        all.retain(|t| (t.due_at.unwrap_or(Millis::MAX), t.id.as_str()) > (after.due_key, after.task_id.as_str()));
    }
    all.truncate(query.limit as usize);
    all
}
