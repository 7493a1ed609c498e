//! Contract tests of the storage port: each test body runs on the in-memory store, on SQLite
//! (a temporary file) and on PostgreSQL (when `DATABASE_URL` is set; a schema per test, dropped
//! after).

#[path = "store/harness.rs"]
mod harness;

#[path = "store/contract.rs"]
mod contract;

#[path = "store/packs.rs"]
mod packs;

#[path = "store/audit_hash.rs"]
mod audit_hash;
