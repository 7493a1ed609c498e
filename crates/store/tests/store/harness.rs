//! Runs one test body on every backend: [`store_test!`] expands a body into one test per
//! backend, like ripgrep's `rgtest!` runs a search on each regex engine.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use store::{AuditRow, Change, InstanceRow, TaskRow, TimerRow};
use store_sqlx::{AnyStore, Options};

/// A store under test, and what to clean up after.
pub struct TestStore {
    pub store: AnyStore,
    dir: Option<PathBuf>,
    schema: Option<(String, String)>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{}_{}_{nanos}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

impl TestStore {
    pub fn memory() -> TestStore {
        TestStore { store: AnyStore::Memory(store::MemoryStore::new()), dir: None, schema: None }
    }

    pub async fn sqlite() -> TestStore {
        let dir = std::env::temp_dir().join(format!("sopflow-store-{}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("test.db").display());
        let store = store_sqlx::open(&url, &Options::default()).await.unwrap();
        TestStore { store, dir: Some(dir), schema: None }
    }

    /// PostgreSQL in a fresh schema, or `None` when `DATABASE_URL` is not set. Under `CI=true`
    /// an unreachable server fails the test instead of skipping it.
    pub async fn postgres() -> Option<TestStore> {
        let url = std::env::var("DATABASE_URL").ok().filter(|u| u.starts_with("postgres"))?;
        let schema = format!("t_{}", unique());
        let options = Options { pg_schema: Some(schema.clone()), max_connections: 4, ..Options::default() };
        match store_sqlx::open(&url, &options).await {
            Ok(store) => Some(TestStore { store, dir: None, schema: Some((url, schema)) }),
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("DATABASE_URL is set but PostgreSQL cannot be used: {e}")
            }
            Err(e) => {
                eprintln!("skipping the PostgreSQL variant: {e}");
                None
            }
        }
    }

    pub async fn cleanup(mut self) {
        self.store.close().await;
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((url, schema)) = self.schema.take() {
            drop_schema(&url, &schema).await;
        }
    }

    /// Runs raw SQL as an administrator would; `None` on the memory store.
    pub async fn raw(&self, sql: &str) -> Option<Result<u64, String>> {
        match &self.store {
            AnyStore::Memory(_) => None,
            AnyStore::Sqlite(s) => {
                Some(sqlx::query(sql).execute(s.pool()).await.map(|r| r.rows_affected()).map_err(|e| e.to_string()))
            }
            AnyStore::Postgres(s) => {
                Some(sqlx::query(sql).execute(s.pool()).await.map(|r| r.rows_affected()).map_err(|e| e.to_string()))
            }
        }
    }
}

async fn drop_schema(url: &str, schema: &str) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")).execute(&pool).await.unwrap();
    pool.close().await;
}

/// A test that failed before `cleanup` still removes its file and its schema.
impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((url, schema)) = self.schema.take() {
            // Drop runs outside any async context we could use: clean up on a thread of its own.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    rt.block_on(drop_schema(&url, &schema));
                }
            })
            .join();
        }
    }
}

/// Expands a test body into one `#[tokio::test]` per backend.
macro_rules! store_test {
    ($name:ident, |$t:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                let $t = crate::harness::TestStore::memory();
                $body
                $t.cleanup().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $t = crate::harness::TestStore::sqlite().await;
                $body
                $t.cleanup().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($t) = crate::harness::TestStore::postgres().await else { return };
                $body
                $t.cleanup().await;
            }
        }
    };
}
pub(crate) use store_test;

// ----- row builders ---------------------------------------------------------------------

pub fn instance(id: &str, revision: i64) -> InstanceRow {
    InstanceRow {
        id: id.into(),
        dealer: "d1".into(),
        process_id: "p".into(),
        hash: "h".into(),
        business_key: Some(format!("bk-{id}")),
        parent_id: None,
        status: "running".into(),
        outcome: None,
        revision,
        snapshot: format!("{{\"id\":\"{id}\",\"revision\":{revision}}}"),
        started_at: 1_000,
        ended_at: None,
        audit_seq: 0,
        audit_hash: store::audit::GENESIS.into(),
    }
}

pub fn task(id: &str, dealer: &str, roles: &[&str], assignee: Option<&str>, due_at: Option<i64>) -> TaskRow {
    TaskRow {
        id: id.into(),
        instance_id: id.rsplit_once('-').map_or(id, |(i, _)| i).into(),
        dealer: dealer.into(),
        process_id: "p".into(),
        step: "s".into(),
        title_zh: "任務".into(),
        title_en: "Task".into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        assignee: assignee.map(str::to_string),
        priority: "normal".into(),
        due_at,
        created_at: 1_000,
        business_key: None,
        form: None,
    }
}

pub fn timer(id: &str, fire_at: i64) -> TimerRow {
    TimerRow {
        id: id.into(),
        instance_id: id.rsplit_once('-').map_or(id, |(i, _)| i).into(),
        dealer: "d1".into(),
        fire_at,
    }
}

/// A change that creates (`expected: None`) or updates an instance to `revision`.
pub fn write(id: &str, revision: i64, expected: Option<i64>) -> Change {
    Change { instance: Some((instance(id, revision), expected)), ..Change::default() }
}

pub fn entry(chain: &str, prev: Option<&AuditRow>, kind: &str) -> AuditRow {
    let draft = store::audit::Draft {
        chain: chain.into(),
        actor: serde_json::json!({ "type": "system" }),
        kind: kind.into(),
        step: Some("s".into()),
        entry: serde_json::json!({ "events": [{ "event": kind }], "b": 1, "a": [1.5, "x"] }),
        definition_hash: Some("h".into()),
    };
    match prev {
        Some(p) => store::audit::seal(draft, 2_000, p.chain_seq, &p.hash),
        None => store::audit::seal(draft, 2_000, 0, store::audit::GENESIS),
    }
}
