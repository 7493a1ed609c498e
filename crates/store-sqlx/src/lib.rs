//! The storage adapter: the [`store::Store`] port on SQLite and on PostgreSQL, through sqlx.
//!
//! - **SQLite** ([`SqliteStore`]): one file, WAL journal, `synchronous=FULL` by default (a
//!   commit is on disk before it returns), one write connection (SQLite has one writer; the
//!   runtime feeds it batches) and a small pool of readers. For one dealer, nothing to install.
//! - **PostgreSQL** ([`PgStore`]): a pool shared by the runtime's writer lanes; several engine
//!   nodes may share the database: timers and outbox rows are taken with
//!   `FOR UPDATE SKIP LOCKED` and a lease, and instance writes are checked by revision.
//!
//! [`open`] picks the backend from a URL (`sqlite://data/sopflow.db`, `postgres://...`, or
//! `memory:`), creates what is missing and runs the embedded migrations ([`migrate`]).
//! [`AnyStore`] holds whichever was opened; it also implements the pack port
//! ([`store::packs::PackStore`], in `packs`).
//!
//! Architecture invariant: the schema is owned by the migrations under `migrations/<backend>`
//! and embedded in the binary; the audit table refuses `UPDATE` and `DELETE` by trigger on both
//! backends.

mod inventory;
mod jobs;
mod org;
mod packs;
mod payload;
mod sql;
mod sqlite_commit;

pub use inventory::AnyInventory;
pub use jobs::AnyJobStore;
pub use org::AnyOrgStore;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgPool, SqliteConnection, SqlitePool};
use store::audit::Draft;
use store::{
    AuditRow, BufferedMessage, Change, DefinitionRow, Error, InboxQuery, InstanceRow, Lease, MemoryStore, Millis,
    OutboxRow, Result, Stats, Store, TaskRow, TimerRow,
};

mod sqlite_sql {
    crate::sql::backend!(sqlx::Sqlite, "");
}

mod pg_sql {
    crate::sql::backend!(sqlx::Postgres, " FOR UPDATE SKIP LOCKED");

    /// Applies a batch with one call of `sopflow_apply` (one round trip, its own transaction).
    pub(crate) async fn commit(pool: &Pool<sqlx::Postgres>, changes: &[store::Change]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let net = crate::payload::Net::of(changes);
        sqlx::query("SELECT sopflow_apply($1::jsonb)")
            .bind(crate::payload::document(changes, &net))
            .execute(pool)
            .await
            .map(|_| ())
            .map_err(|e| match e {
                // A refused revision or a taken audit position: the batch lost a race.
                sqlx::Error::Database(d)
                    if d.message().contains("sopflow: revision conflict") || d.is_unique_violation() =>
                {
                    Error::Conflict { instances: net.instance_ids() }
                }
                e => db(e),
            })
    }
}

/// The migrations for SQLite, embedded at build time.
pub static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
/// The migrations for PostgreSQL, embedded at build time.
pub static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The default database: a SQLite file under `./data/`, created on first run.
pub const DEFAULT_URL: &str = "sqlite://data/sopflow.db";

/// How SQLite makes commits durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: the WAL is synced at every commit; a commit that returned survives
    /// a power cut. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: the WAL is synced only at checkpoints; the database stays
    /// consistent, but the last commits before a power cut (not a process crash) may be lost.
    Normal,
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct Options {
    /// Connections in the pool (PostgreSQL), or readers (SQLite; the writer is one more).
    pub max_connections: u32,
    /// SQLite durability.
    pub durability: Durability,
    /// SQLite page cache of the writer connection, in KiB.
    pub sqlite_cache_kib: u32,
    /// SQLite page cache of each reader connection, in KiB. Kept small on purpose: a reader
    /// throws its whole cache away at the start of every read after the writer committed (WAL),
    /// and throwing away a large cache costs time in proportion to its size; the operating
    /// system's file cache keeps the pages anyway.
    pub sqlite_read_cache_kib: u32,
    /// SQLite memory-mapped I/O, in MiB (0: off). Reads then need no system call; an I/O error
    /// on the file shows up as a signal instead of an error, which is why it is off unless
    /// asked for.
    pub sqlite_mmap_mib: u32,
    /// PostgreSQL: the schema to use (created if missing), e.g. one per test run.
    pub pg_schema: Option<String>,
    /// Run the migrations on open.
    pub migrate: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_connections: 8,
            durability: Durability::Full,
            sqlite_cache_kib: 256 * 1024,
            sqlite_read_cache_kib: 2 * 1024,
            sqlite_mmap_mib: 0,
            pg_schema: None,
            migrate: true,
        }
    }
}

pub(crate) fn db(e: sqlx::Error) -> Error {
    Error::Database(Box::new(e))
}

pub(crate) fn corrupt(table: &'static str, e: impl std::fmt::Display) -> Error {
    Error::Corrupt { table, message: e.to_string() }
}

fn migrate_err(e: sqlx::migrate::MigrateError) -> Error {
    Error::Database(Box::new(e))
}

/// The store on a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The connection batches are committed on; its lock is also the turn every other write
    /// waits for, so that the two writing connections never meet in SQLite's busy handler
    /// (which sleeps a millisecond or more). Held apart from a pool because returning a
    /// connection to an sqlx pool pings it through its worker thread, which was about a fifth
    /// of a single commit's time.
    writer: Arc<tokio::sync::Mutex<Writer>>,
    /// Writes other than batches (definitions, leases, organisations, packs, ...), one at a
    /// time, each under the writer's turn ([`SqliteStore::write_turn`]).
    write: SqlitePool,
    /// Readers (WAL lets them read while the writer writes).
    read: SqlitePool,
    /// The connection that copies the WAL into the database file ([`checkpointer`]).
    checkpoint: SqlitePool,
}

/// The commit connection, opened again after a failure left it in doubt.
#[derive(Debug)]
struct Writer {
    options: SqliteConnectOptions,
    conn: Option<SqliteConnection>,
    closed: bool,
}

impl Writer {
    async fn conn(&mut self) -> Result<&mut SqliteConnection> {
        if self.closed {
            return Err(Error::Config("the store is closed".into()));
        }
        if self.conn.is_none() {
            self.conn = Some(self.options.connect().await.map_err(db)?);
        }
        Ok(self.conn.as_mut().expect("just opened"))
    }
}

/// A write's turn: the writer's lock, and the pool to write with.
pub(crate) struct WriteTurn<'a> {
    _turn: tokio::sync::MutexGuard<'a, Writer>,
    pool: &'a SqlitePool,
}

impl std::ops::Deref for WriteTurn<'_> {
    type Target = SqlitePool;
    fn deref(&self) -> &SqlitePool {
        self.pool
    }
}

/// WAL pages after which the writer checkpoints by itself, in case the checkpointer falls
/// behind (SQLite's default is 1,000; about 40 MiB here).
const WRITER_CHECKPOINT_PAGES: u32 = 10_000;

/// How often the checkpointer looks at the WAL.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Copies the WAL into the database file, in the background, until the store is closed.
///
/// With SQLite's default the writer does this itself inside the commit that crosses 1,000 WAL
/// pages: that commit reads back and writes every page and syncs the database file, so one
/// caller in a hundred waits several milliseconds. A `PASSIVE` checkpoint from another
/// connection copies the same pages without blocking the writer or the readers, and a page
/// written many times between two checkpoints is copied once. The WAL starts over at the
/// first commit after a checkpoint that caught up.
async fn checkpointer(pool: SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            Ok(_) => {}
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => tracing::warn!("background checkpoint failed: {e}"),
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) a SQLite database. `url` is `sqlite://path` or `sqlite:path`.
    pub async fn open(url: &str, options: &Options) -> Result<SqliteStore> {
        let base = SqliteConnectOptions::from_str(url).map_err(|e| Error::Config(format!("{url}: {e}")))?;
        if let Some(dir) = base.get_filename().parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            std::fs::create_dir_all(dir).map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let synchronous = match options.durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        };
        let common = base
            .synchronous(synchronous)
            .busy_timeout(Duration::from_secs(30))
            .pragma("temp_store", "memory")
            .pragma("mmap_size", (u64::from(options.sqlite_mmap_mib) * 1024 * 1024).to_string())
            .statement_cache_capacity(256);
        // The writer checkpoints only as a backstop: the checkpointer copies the WAL into the
        // database file beside it, so that copying is not on a commit's path.
        let writing = common
            .clone()
            .journal_mode(SqliteJournalMode::Wal)
            .create_if_missing(true)
            .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES.to_string());
        let committing = writing.clone().pragma("cache_size", format!("-{}", options.sqlite_cache_kib));
        let mut conn = committing.connect().await.map_err(db)?;
        if options.migrate {
            SQLITE_MIGRATIONS.run(&mut conn).await.map_err(migrate_err)?;
        }
        let writer = Writer { options: committing, conn: Some(conn), closed: false };
        let small = |o: SqliteConnectOptions| o.pragma("cache_size", format!("-{}", options.sqlite_read_cache_kib));
        let pool = || {
            SqlitePoolOptions::new()
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(600))
                .idle_timeout(None)
                .max_lifetime(None)
        };
        let write = pool().max_connections(1).connect_with(small(writing)).await.map_err(db)?;
        let read = pool()
            .max_connections(options.max_connections.max(1))
            .connect_with(small(common.clone().read_only(true)))
            .await
            .map_err(db)?;
        let checkpoint = pool().max_connections(1).connect_with(small(common)).await.map_err(db)?;
        tokio::spawn(checkpointer(checkpoint.clone()));
        Ok(SqliteStore { writer: Arc::new(tokio::sync::Mutex::new(writer)), write, read, checkpoint })
    }

    /// The pool for writes other than batches (one connection), for administration and
    /// tests; a write made through it does not wait for its turn.
    pub fn pool(&self) -> &SqlitePool {
        &self.write
    }

    /// Waits for the writer's turn, then gives the pool to write with.
    pub(crate) async fn write_turn(&self) -> WriteTurn<'_> {
        WriteTurn { _turn: self.writer.lock().await, pool: &self.write }
    }

    /// Commits a batch on the writer's connection.
    async fn commit_batch(&self, changes: &[Change]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut writer = self.writer.lock().await;
        let conn = writer.conn().await?;
        let outcome = sqlite_commit::commit(conn, changes).await;
        if let Err(sqlite_commit::Failed { error, in_doubt: true }) = outcome {
            // The transaction could not even be rolled back: open the connection again
            // rather than write the next batch into an unknown state.
            if let Some(conn) = writer.conn.take() {
                let _ = conn.close_hard().await;
            }
            return Err(error);
        }
        outcome.map_err(|f| f.error)
    }

    /// Closes the connections (the checkpointer stops).
    pub async fn close(&self) {
        self.checkpoint.close().await;
        self.read.close().await;
        self.write.close().await;
        let mut writer = self.writer.lock().await;
        writer.closed = true;
        if let Some(conn) = writer.conn.take() {
            let _ = conn.close().await;
        }
    }
}

/// The store on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to PostgreSQL. With [`Options::pg_schema`], every connection works in that
    /// schema (created if missing).
    pub async fn open(url: &str, options: &Options) -> Result<PgStore> {
        let mut connect = PgConnectOptions::from_str(url).map_err(|e| Error::Config(format!("{url}: {e}")))?;
        if let Some(schema) = &options.pg_schema {
            if !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(Error::Config(format!("bad schema name `{schema}`")));
            }
            let setup = PgPoolOptions::new().max_connections(1).connect_with(connect.clone()).await.map_err(db)?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"")).execute(&setup).await.map_err(db)?;
            setup.close().await;
            connect = connect.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .test_before_acquire(false)
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(600))
            .connect_with(connect)
            .await
            .map_err(db)?;
        if options.migrate {
            POSTGRES_MIGRATIONS.run(&pool).await.map_err(migrate_err)?;
        }
        Ok(PgStore { pool })
    }

    /// The pool, for administration and tests.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The pool to write with (PostgreSQL takes concurrent writers itself).
    pub(crate) async fn write_turn(&self) -> &PgPool {
        &self.pool
    }

    /// Commits a batch with one call of `sopflow_apply`.
    async fn commit_batch(&self, changes: &[Change]) -> Result<()> {
        pg_sql::commit(&self.pool, changes).await
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Whichever store was opened.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// In memory (nothing survives).
    Memory(MemoryStore),
    /// A SQLite file.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PgStore),
}

/// Opens the store a URL names: `memory:`, `sqlite:...`, or `postgres://...`.
pub async fn open(url: &str, options: &Options) -> Result<AnyStore> {
    if url == "memory:" || url == "memory" {
        Ok(AnyStore::Memory(MemoryStore::new()))
    } else if url.starts_with("sqlite:") {
        Ok(AnyStore::Sqlite(SqliteStore::open(url, options).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(AnyStore::Postgres(PgStore::open(url, options).await?))
    } else {
        Err(Error::Config(format!("`{url}` is not a database URL (sqlite://..., postgres://... or memory:)")))
    }
}

/// Runs the embedded migrations on the database a URL names (what `sopflow migrate` does).
pub async fn migrate(url: &str) -> Result<()> {
    open(url, &Options { max_connections: 1, ..Options::default() }).await?.close().await;
    Ok(())
}

/// The SQLite file a `sqlite:` URL names.
pub fn sqlite_path(url: &str) -> Result<std::path::PathBuf> {
    let o = SqliteConnectOptions::from_str(url).map_err(|e| Error::Config(format!("{url}: {e}")))?;
    Ok(Path::new(o.get_filename()).to_path_buf())
}

impl AnyStore {
    /// Whether several engine nodes may share this store (then timers and the outbox are
    /// leased; otherwise leases left by a previous process are released at start).
    pub fn is_shared(&self) -> bool {
        matches!(self, AnyStore::Postgres(_))
    }

    /// `memory`, `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            AnyStore::Memory(_) => "memory",
            AnyStore::Sqlite(_) => "sqlite",
            AnyStore::Postgres(_) => "postgres",
        }
    }

    /// Closes the connections.
    pub async fn close(&self) {
        match self {
            AnyStore::Memory(_) => {}
            AnyStore::Sqlite(s) => s.close().await,
            AnyStore::Postgres(s) => s.close().await,
        }
    }
}

/// Implements the port for a SQL store by calling the expanded shared queries, with reads on
/// `$read` and writes on `$write`.
macro_rules! sql_store {
    ($store:ty, $module:ident, $read:ident, $write:ident) => {
        impl Store for $store {
            async fn put_definition(&self, def: &DefinitionRow) -> Result<bool> {
                $module::put_definition(&*self.$write().await, def).await
            }
            async fn definition(&self, hash: &str) -> Result<Option<DefinitionRow>> {
                $module::definition(&self.$read, hash).await
            }
            async fn deploy(&self, dealer: &str, process_id: &str, hash: &str, at: Millis) -> Result<bool> {
                $module::deploy(&*self.$write().await, dealer, process_id, hash, at).await
            }
            async fn current_deployment(&self, dealer: &str, process_id: &str) -> Result<Option<String>> {
                $module::current_deployment(&self.$read, dealer, process_id).await
            }
            async fn instance(&self, id: &str) -> Result<Option<InstanceRow>> {
                $module::instance(&self.$read, id).await
            }
            async fn commit(&self, changes: &[Change]) -> Result<()> {
                self.commit_batch(changes).await
            }
            async fn take_due_timers(&self, lease: &Lease) -> Result<Vec<TimerRow>> {
                $module::take_due_timers(&*self.$write().await, lease).await
            }
            async fn next_timer_at(&self) -> Result<Option<Millis>> {
                $module::next_timer_at(&self.$read).await
            }
            async fn take_outbox(&self, lease: &Lease) -> Result<Vec<OutboxRow>> {
                $module::take_outbox(&*self.$write().await, lease).await
            }
            async fn defer_outbox(&self, seq: i64, available_at: Millis) -> Result<()> {
                $module::defer_outbox(&*self.$write().await, seq, available_at).await
            }
            async fn release_leases(&self) -> Result<()> {
                $module::release_leases(&*self.$write().await).await
            }
            async fn subscribers(&self, dealer: &str, name: &str, key: Option<&str>) -> Result<Vec<String>> {
                $module::subscribers(&self.$read, dealer, name, key).await
            }
            async fn buffered_message(
                &self,
                dealer: &str,
                name: &str,
                key: Option<&str>,
            ) -> Result<Option<BufferedMessage>> {
                $module::buffered_message(&self.$read, dealer, name, key).await
            }
            async fn task(&self, id: &str) -> Result<Option<TaskRow>> {
                $module::task(&self.$read, id).await
            }
            async fn inbox_page(&self, query: &InboxQuery) -> Result<Vec<TaskRow>> {
                $module::inbox_page(&self.$read, query).await
            }
            async fn append_audit(&self, entry: Draft, at: Millis) -> Result<AuditRow> {
                $module::append_audit(&*self.$write().await, entry, at).await
            }
            async fn audit_chain(&self, chain: &str) -> Result<Vec<AuditRow>> {
                $module::audit_chain(&self.$read, chain).await
            }
            async fn audit_since(&self, after: i64, limit: u32) -> Result<Vec<AuditRow>> {
                $module::audit_since(&self.$read, after, limit).await
            }
            async fn audit_scan(&self, after: Option<(String, i64)>, limit: u32) -> Result<Vec<AuditRow>> {
                $module::audit_scan(&self.$read, after, limit).await
            }
            async fn stats(&self) -> Result<Stats> {
                $module::stats(&self.$read).await
            }
        }
    };
}

sql_store!(SqliteStore, sqlite_sql, read, write_turn);
sql_store!(PgStore, pg_sql, pool, write_turn);

/// Forwards a port method to whichever store is inside.
macro_rules! any {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($s) => $call.await,
            AnyStore::Sqlite($s) => $call.await,
            AnyStore::Postgres($s) => $call.await,
        }
    };
}

impl Store for AnyStore {
    async fn put_definition(&self, def: &DefinitionRow) -> Result<bool> {
        any!(self, s => s.put_definition(def))
    }
    async fn definition(&self, hash: &str) -> Result<Option<DefinitionRow>> {
        any!(self, s => s.definition(hash))
    }
    async fn deploy(&self, dealer: &str, process_id: &str, hash: &str, at: Millis) -> Result<bool> {
        any!(self, s => s.deploy(dealer, process_id, hash, at))
    }
    async fn current_deployment(&self, dealer: &str, process_id: &str) -> Result<Option<String>> {
        any!(self, s => s.current_deployment(dealer, process_id))
    }
    async fn instance(&self, id: &str) -> Result<Option<InstanceRow>> {
        any!(self, s => s.instance(id))
    }
    async fn commit(&self, changes: &[Change]) -> Result<()> {
        any!(self, s => s.commit(changes))
    }
    async fn take_due_timers(&self, lease: &Lease) -> Result<Vec<TimerRow>> {
        any!(self, s => s.take_due_timers(lease))
    }
    async fn next_timer_at(&self) -> Result<Option<Millis>> {
        any!(self, s => s.next_timer_at())
    }
    async fn take_outbox(&self, lease: &Lease) -> Result<Vec<OutboxRow>> {
        any!(self, s => s.take_outbox(lease))
    }
    async fn defer_outbox(&self, seq: i64, available_at: Millis) -> Result<()> {
        any!(self, s => s.defer_outbox(seq, available_at))
    }
    async fn release_leases(&self) -> Result<()> {
        any!(self, s => s.release_leases())
    }
    async fn subscribers(&self, dealer: &str, name: &str, key: Option<&str>) -> Result<Vec<String>> {
        any!(self, s => s.subscribers(dealer, name, key))
    }
    async fn buffered_message(&self, dealer: &str, name: &str, key: Option<&str>) -> Result<Option<BufferedMessage>> {
        any!(self, s => s.buffered_message(dealer, name, key))
    }
    async fn task(&self, id: &str) -> Result<Option<TaskRow>> {
        any!(self, s => s.task(id))
    }
    async fn inbox_page(&self, query: &InboxQuery) -> Result<Vec<TaskRow>> {
        any!(self, s => s.inbox_page(query))
    }
    async fn append_audit(&self, entry: Draft, at: Millis) -> Result<AuditRow> {
        any!(self, s => s.append_audit(entry, at))
    }
    async fn audit_chain(&self, chain: &str) -> Result<Vec<AuditRow>> {
        any!(self, s => s.audit_chain(chain))
    }
    async fn audit_since(&self, after: i64, limit: u32) -> Result<Vec<AuditRow>> {
        any!(self, s => s.audit_since(after, limit))
    }
    async fn audit_scan(&self, after: Option<(String, i64)>, limit: u32) -> Result<Vec<AuditRow>> {
        any!(self, s => s.audit_scan(after, limit))
    }
    async fn stats(&self) -> Result<Stats> {
        any!(self, s => s.stats())
    }
}
