//! Test environments: a database per test on each backend, runtimes on a virtual clock that
//! can be closed and reopened on the same data, and the processes the tests run.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use machine::{Actor, Event, User};
use model::Process;
use runtime::{AnyStore, Applied, Config, Refused, Reply, Runtime, StartRequest, VirtualClock};
use serde_json::{Map, Value, json};
use store::AuditRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Sqlite,
    Postgres,
}

/// One database for one test, on which runtimes can be opened and reopened.
pub struct Env {
    pub url: String,
    pub clock: Arc<VirtualClock>,
    memory: Option<AnyStore>,
    dir: Option<PathBuf>,
    schema: Option<String>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn unique() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{}_{}_{nanos}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub fn t0() -> Timestamp {
    "2026-03-02T01:00:00Z".parse().unwrap()
}

pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sopflow-{prefix}-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Env {
    pub async fn new(backend: Backend) -> Option<Env> {
        let clock = Arc::new(VirtualClock::new(t0()));
        match backend {
            Backend::Memory => Some(Env {
                url: "memory:".into(),
                clock,
                memory: Some(AnyStore::Memory(store::MemoryStore::new())),
                dir: None,
                schema: None,
            }),
            Backend::Sqlite => {
                let dir = temp_dir("runtime");
                let url = format!("sqlite://{}", dir.join("sopflow.db").display());
                Some(Env { url, clock, memory: None, dir: Some(dir), schema: None })
            }
            Backend::Postgres => {
                let url = std::env::var("DATABASE_URL").ok().filter(|u| u.starts_with("postgres"))?;
                let schema = format!("t_{}", unique());
                let env = Env { url, clock, memory: None, dir: None, schema: Some(schema) };
                // Probe once so an unreachable server is reported clearly (and fails under CI).
                match store_sqlx::open(&env.url, &env.store_options()).await {
                    Ok(s) => s.close().await,
                    Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                        panic!("DATABASE_URL is set but PostgreSQL cannot be used: {e}")
                    }
                    Err(e) => {
                        eprintln!("skipping the PostgreSQL variant: {e}");
                        return None;
                    }
                }
                Some(env)
            }
        }
    }

    fn store_options(&self) -> store_sqlx::Options {
        store_sqlx::Options { pg_schema: self.schema.clone(), max_connections: 4, ..store_sqlx::Options::default() }
    }

    pub fn config(&self) -> Config {
        let mut c = Config::new(self.url.clone());
        c.store = self.store_options();
        c.clock = Arc::clone(&self.clock) as Arc<dyn runtime::Clock>;
        c.poll = Duration::from_millis(20);
        c
    }

    /// Opens the store of this test's database on its own (the memory store is shared).
    pub async fn open_store(&self) -> AnyStore {
        match &self.memory {
            Some(store) => store.clone(),
            None => store_sqlx::open(&self.url, &self.store_options()).await.unwrap(),
        }
    }

    /// Opens a runtime (a node) on this test's database.
    pub async fn open(&self) -> Runtime {
        self.open_with(self.config()).await
    }

    pub async fn open_with(&self, config: Config) -> Runtime {
        match &self.memory {
            Some(store) => Runtime::with_store(store.clone(), config).await.unwrap(),
            None => Runtime::open(config).await.unwrap(),
        }
    }

    pub async fn cleanup(mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(schema) = self.schema.take() {
            drop_schema(&self.url, &schema).await;
        }
    }
}

async fn drop_schema(url: &str, schema: &str) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")).execute(&pool).await.unwrap();
    pool.close().await;
}

/// A test that failed before `cleanup` still removes its file and its schema.
impl Drop for Env {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(schema) = self.schema.take() {
            let url = self.url.clone();
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
macro_rules! runtime_test {
    ($name:ident, |$env:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                let $env = crate::harness::Env::new(crate::harness::Backend::Memory).await.unwrap();
                $body
                $env.cleanup().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $env = crate::harness::Env::new(crate::harness::Backend::Sqlite).await.unwrap();
                $body
                $env.cleanup().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($env) = crate::harness::Env::new(crate::harness::Backend::Postgres).await else { return };
                $body
                $env.cleanup().await;
            }
        }
    };
}
pub(crate) use runtime_test;

/// Compiles a process from YAML the way a pack would, with the roles it names.
pub fn process(yaml: &str) -> Arc<Process> {
    let (node, _) = model::yaml::parse(yaml, &model::yaml::Limits::default()).unwrap();
    let process = node.to_json();
    let roles: Map<String, Value> = process["roles"]
        .as_array()
        .map(|rs| rs.iter().filter_map(|r| r.as_str()).map(|r| (r.to_string(), json!({ "zh": r, "en": r }))).collect())
        .unwrap_or_default();
    let doc = json!({ "process": process, "forms": {}, "calendars": {}, "roles": roles, "pack": null });
    match model::compile_document(&doc, &model::Options::default()) {
        Ok(p) => Arc::new(p),
        Err(d) => panic!("{}", d.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")),
    }
}

/// A service order: a task with an SLA, a notification, a cool-down wait, an approval.
pub const SERVICE: &str = r#"
process: service
version: 1
title: { zh: 服務, en: Service }
roles: [advisor, foreman]
data:
  type: object
  properties:
    plate: { type: string }
start: receive_car
steps:
  receive_car:
    type: task
    title: { zh: 接車, en: Receive the car }
    roles: [advisor]
    due: { after: PT1H }
    next: tell
  tell:
    type: action
    action: notify
    input: { text: =plate }
    next: cool_down
  cool_down:
    type: wait
    after: PT2H
    next: approve
  approve:
    type: task
    title: { zh: 批准, en: Approve }
    roles: [foreman]
    next: done
  done:
    type: end
"#;

/// A parent that starts a child, waits for it, then waits for the message the child sent
/// before anyone listened (so it is buffered).
pub const PARENT: &str = r#"
process: parent
version: 1
title: { zh: 父, en: Parent }
roles: [advisor]
data:
  type: object
  properties:
    plate: { type: string }
start: start_child
steps:
  start_child:
    type: subprocess
    process: child
    input: { plate: =plate }
    next: listen
  listen:
    type: receive
    message: ping
    key: =plate
    next: done
  done:
    type: end
"#;

pub const CHILD: &str = r#"
process: child
version: 1
title: { zh: 子, en: Child }
roles: [advisor]
data:
  type: object
  properties:
    plate: { type: string }
start: say
steps:
  say:
    type: send
    message: ping
    key: =plate
    next: done
  done:
    type: end
"#;

pub fn advisor(id: &str) -> User {
    User::new(id, ["advisor"])
}

pub fn foreman(id: &str) -> User {
    User::new(id, ["foreman"])
}

pub fn data(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

pub async fn start(rt: &Runtime, process: &str, id: &str, plate: &str) -> Applied {
    let req = StartRequest {
        dealer: "d1".into(),
        process_id: process.into(),
        data: data(json!({ "plate": plate })),
        business_key: Some(plate.into()),
        by: Actor::User { id: "u1".into(), role: Some("advisor".into()) },
        id: Some(id.into()),
    };
    applied(rt.start(req).await)
}

pub fn applied(r: Reply) -> Applied {
    match r {
        Ok(Ok(a)) => a,
        Ok(Err(refused)) => panic!("refused: {refused}"),
        Err(e) => panic!("failed: {e}"),
    }
}

pub fn refused(r: Reply) -> Refused {
    match r {
        Ok(Err(refused)) => refused,
        Ok(Ok(a)) => panic!("expected a refusal, got {a:?}"),
        Err(e) => panic!("failed: {e}"),
    }
}

/// The one open task of an instance.
pub async fn open_task(rt: &Runtime, instance: &str) -> String {
    let view = rt.instance(instance).await.unwrap().unwrap();
    assert_eq!(view.instance.tasks.len(), 1, "{:?}", view.instance.tasks);
    view.instance.tasks[0].id.clone()
}

/// Polls until `check` holds, failing after a generous deadline (readiness, not timing).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "gave up waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn ended(rt: &Runtime, id: &str) -> bool {
    rt.instance(id).await.unwrap().is_some_and(|v| v.instance.is_ended())
}

/// The events recorded in an audit chain, in order.
pub fn events(chain: &[AuditRow]) -> Vec<Event> {
    chain
        .iter()
        .flat_map(|row| {
            let entry: Value = serde_json::from_str(&row.entry).unwrap();
            serde_json::from_value::<Vec<Event>>(entry["events"].clone()).unwrap()
        })
        .collect()
}
