//! Plugins: the actions and guard helpers the engine calls out to, without a rebuild.
//!
//! - Built-in actions, each an ordinary [`plugin_api::Action`]: [`notify`] (a zh/en template
//!   delivered to a channel), [`http`] (a webhook call on an allowed host) and [`inventory`]
//!   (a parts stock table: `inventory.check`, `inventory.reserve`).
//! - [`script_plugin`]s: `plugins/<name>/plugin.yaml` with Rhai scripts defining actions and
//!   guard helpers, sandboxed like guards, with only the capabilities the manifest declares
//!   and the configuration grants.
//! - [`external`] task workers: actions named `topic:<t>` are fetched and locked by workers
//!   over HTTP; this crate has the pure locking state machine, the runtime and server store and
//!   expose it.
//! - The [`Registry`] assembles them, compiles every input and output schema once, and
//!   validates with field paths ([`schema`]). [`PluginsConfig`] says what is granted.
//!
//! *Architecture invariant:* actions never run inside the core or a database transaction:
//! the runtime invokes them from the outbox after commit, with a timeout, and feeds the result
//! back as an input. Nothing here retries by itself (the core's retry policy does), reads the
//! clock (external jobs take `now`), reads the environment, or logs.
//!
//! *API boundary:* [`Registry`], [`PluginsConfig`]/[`Secrets`], [`external::ExternalJobs`] with
//! [`external::JobStore`], [`inventory::InventoryStore`], and the actions' types.

pub mod config;
mod error;
pub mod external;
mod files;
pub mod http;
pub mod inventory;
pub mod notify;
mod registry;
pub mod schema;
pub mod script_plugin;
pub mod template;

pub use config::{PluginsConfig, Secrets};
pub use error::Error;
pub use registry::{BUILTIN_ACTIONS, PluginSummary, Registry, RegistryBuilder};
