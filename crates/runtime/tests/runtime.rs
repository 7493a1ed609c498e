//! Tests of the durable runtime: flows through the real store on every backend (memory,
//! SQLite, and PostgreSQL when `DATABASE_URL` is set), concurrency, timers across restarts and
//! nodes, audit tamper evidence, and a crash test that kills the engine process mid-run.

#[path = "runtime/harness.rs"]
mod harness;

#[path = "runtime/flows.rs"]
mod flows;

#[path = "runtime/durability.rs"]
mod durability;

#[path = "runtime/plugins.rs"]
mod external_actions;

#[path = "runtime/crash.rs"]
mod crash;

#[path = "runtime/pack_plugins.rs"]
mod pack_plugins;
