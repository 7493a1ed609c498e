//! Test environments: an application on a runtime with a virtual clock, on the memory store
//! (for `oneshot` router tests) or on a SQLite file or a PostgreSQL schema (for the end-to-end
//! tests against a listening server); two dealers and headquarters with users and tokens;
//! helpers to call the API and read problem documents; and a listening server with the packs
//! of `processes/` and the demo users, as `sopflow serve --demo --virtual-clock` runs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use jiff::Timestamp;
use machine::Actor;
use runtime::{AnyStore, Config, Runtime, VirtualClock};
use serde_json::{Value, json};
use server::{AppState, Catalogue, Options};
use store::org::{OrgStore, OrganisationRow, TokenRow, UserRow};
use store_sqlx::AnyOrgStore;
use tower::ServiceExt;

/// A small service visit: a reception with a closed form and a 2-hour SLA, a repair, a wait
/// for the parts by plate number.
pub const SERVICE_VISIT: &str = r#"
process: service_visit
version: 1
title: { zh: 維修接待, en: Service visit }
roles: [service_advisor, technician]
data:
  type: object
  properties:
    plate: { type: string }
  required: [plate]
start: reception
steps:
  reception:
    type: task
    title: { zh: 接車, en: Receive the car }
    roles: [service_advisor]
    form:
      type: object
      properties:
        vin: { type: string, minLength: 17, maxLength: 17 }
        odometer_km: { type: integer, minimum: 0 }
      required: [vin, odometer_km]
    due: { after: PT2H }
    next: repair
  repair:
    type: task
    title: { zh: 維修, en: Repair }
    roles: [technician]
    due: { after: PT4H }
    next: wait_parts
  wait_parts:
    type: receive
    title: { zh: 等待到件, en: Wait for the parts }
    message: parts_arrived
    key: =plate
    next: done
  done:
    type: end
    outcome: completed
"#;

/// An action nobody installed: starting it raises an incident.
pub const SYNC_JOB: &str = r#"
process: sync_job
version: 1
title: { zh: 同步, en: Sync }
roles: [service_advisor]
data:
  type: object
  properties: {}
start: push
steps:
  push:
    type: action
    title: { zh: 推送, en: Push }
    action: dms.push
    next: done
  done:
    type: end
    outcome: completed
"#;

pub fn t0() -> Timestamp {
    "2026-03-02T01:00:00Z".parse().unwrap()
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn unique() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{}_{}_{nanos}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub fn compile(yaml: &str) -> Arc<model::Process> {
    let (node, _) = model::yaml::parse(yaml, &model::yaml::Limits::default()).unwrap();
    let doc = json!({
        "process": node.to_json(),
        "forms": {},
        "calendars": {},
        "roles": {
            "service_advisor": { "zh": "服務顧問", "en": "Service advisor" },
            "technician": { "zh": "維修技師", "en": "Technician" },
        },
        "pack": null,
    });
    Arc::new(model::compile_document(&doc, &model::Options::default()).unwrap())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Sqlite,
    Postgres,
}

/// An answer: status, headers, JSON body (or the text as a JSON string).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    /// The body as sent.
    pub bytes: Vec<u8>,
}

impl Answer {
    /// Asserts a problem+json document of this status and kind.
    #[track_caller]
    pub fn problem(&self, status: u16, kind: &str) -> &Answer {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(
            self.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{}",
            self.body
        );
        assert_eq!(self.body["type"], format!("{}{kind}", server::PROBLEM_BASE), "{}", self.body);
        assert_eq!(self.body["status"], status, "{}", self.body);
        assert!(self.body["title"].as_str().is_some_and(|t| !t.is_empty()), "{}", self.body);
        self
    }

    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert!(self.status.is_success(), "{} {}", self.status, self.body);
        &self.body
    }
}

/// An application with two dealers (`a`, `b`) and headquarters (`hq`).
pub struct Harness {
    pub state: AppState,
    pub app: Router,
    /// user id -> bearer token
    pub tokens: BTreeMap<String, String>,
    dir: Option<PathBuf>,
    schema: Option<(String, String)>,
}

/// The users: (id, organisation, roles, admin).
pub const USERS: &[(&str, &str, &[&str], bool)] = &[
    ("a.advisor", "a", &["service_advisor"], false),
    ("a.advisor2", "a", &["service_advisor"], false),
    ("a.tech", "a", &["technician"], false),
    ("a.admin", "a", &[], true),
    ("a.manager", "a", &["after_sales_manager"], false),
    ("b.advisor", "b", &["service_advisor"], false),
    ("b.tech", "b", &["technician"], false),
    ("b.admin", "b", &[], true),
    ("a.worker", "a", &["external_worker"], false),
    ("b.worker", "b", &["external_worker"], false),
    ("b.manager", "b", &["after_sales_manager"], false),
    ("hq.viewer", "hq", &[], false),
    ("hq.admin", "hq", &[], true),
];

impl Harness {
    /// On the memory store, with the two test processes.
    pub async fn memory() -> Harness {
        Harness::open(Backend::Memory, vec![compile(SERVICE_VISIT), compile(SYNC_JOB)], Catalogue::new(), None)
            .await
            .unwrap()
    }

    /// On a backend; `None` when it is PostgreSQL and `DATABASE_URL` is not set (under
    /// `CI=true` an unreachable server fails instead).
    pub async fn open(
        backend: Backend,
        processes: Vec<Arc<model::Process>>,
        catalogue: Catalogue,
        actions: Option<runtime::ActionRegistry>,
    ) -> Option<Harness> {
        Harness::open_with(backend, processes, catalogue, actions, runtime::TopicSchemas::new(), Vec::new()).await
    }

    /// As [`Harness::open`], with external task topics.
    pub async fn open_with_topics(
        backend: Backend,
        processes: Vec<Arc<model::Process>>,
        catalogue: Catalogue,
        actions: Option<runtime::ActionRegistry>,
        topics: runtime::TopicSchemas,
    ) -> Option<Harness> {
        Harness::open_with(backend, processes, catalogue, actions, topics, Vec::new()).await
    }

    /// On the memory store, with the two test processes, accepting archives signed by `keys`.
    pub async fn trusting(keys: Vec<packs::PublicKey>) -> Harness {
        let processes = vec![compile(SERVICE_VISIT), compile(SYNC_JOB)];
        Harness::open_trusting(Backend::Memory, processes, Catalogue::new(), None, keys).await.unwrap()
    }

    /// On a backend, accepting pack archives signed by `trusted_keys`.
    pub async fn open_trusting(
        backend: Backend,
        processes: Vec<Arc<model::Process>>,
        catalogue: Catalogue,
        actions: Option<runtime::ActionRegistry>,
        trusted_keys: Vec<packs::PublicKey>,
    ) -> Option<Harness> {
        Harness::open_with(backend, processes, catalogue, actions, runtime::TopicSchemas::new(), trusted_keys).await
    }

    /// On a backend, with external task topics and trusted pack keys.
    pub async fn open_with(
        backend: Backend,
        processes: Vec<Arc<model::Process>>,
        mut catalogue: Catalogue,
        actions: Option<runtime::ActionRegistry>,
        topics: runtime::TopicSchemas,
        trusted_keys: Vec<packs::PublicKey>,
    ) -> Option<Harness> {
        let clock = Arc::new(VirtualClock::new(t0()));
        let (url, dir, schema) = match backend {
            Backend::Memory => ("memory:".to_string(), None, None),
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("sopflow-server-{}", unique()));
                std::fs::create_dir_all(&dir).unwrap();
                (format!("sqlite://{}", dir.join("sopflow.db").display()), Some(dir), None)
            }
            Backend::Postgres => {
                let url = std::env::var("DATABASE_URL").ok().filter(|u| u.starts_with("postgres"))?;
                (url, None, Some(format!("t_{}", unique())))
            }
        };
        let mut config = Config::new(url.clone());
        config.store.pg_schema = schema.clone();
        config.store.max_connections = 4;
        config.clock = Arc::clone(&clock) as Arc<dyn runtime::Clock>;
        config.poll = Duration::from_millis(20);
        if let Some(a) = actions {
            config.actions = a;
        }
        config.topics = topics;
        // Packs may bring script plugins (with the built-ins only configured, nothing granted).
        config.pack_plugins = Some(Arc::new(runtime::PackPlugins::new(
            plugins::Registry::builder(plugins::PluginsConfig::default()),
            config.model.clone(),
        )));
        let runtime = match backend {
            Backend::Memory => Runtime::with_store(AnyStore::Memory(store::MemoryStore::new()), config).await.unwrap(),
            _ => match Runtime::open(config).await {
                Ok(rt) => rt,
                Err(e) if backend == Backend::Postgres && !std::env::var("CI").is_ok_and(|v| v == "true") => {
                    eprintln!("skipping the PostgreSQL variant: {e}");
                    return None;
                }
                Err(e) => panic!("cannot open {url}: {e}"),
            },
        };
        runtime.deploy(&processes, "", Actor::System).await.unwrap();
        for p in &processes {
            catalogue.add_process(Arc::clone(p));
        }
        let org = AnyOrgStore::for_store(runtime.store());
        let now = t0().as_millisecond();
        for (id, kind) in [("a", "dealer"), ("b", "dealer"), ("hq", "hq")] {
            org.put_organisation(&OrganisationRow {
                id: id.into(),
                kind: kind.into(),
                name: format!("Organisation {id}"),
                time_zone: "Asia/Shanghai".into(),
                created_at: now,
            })
            .await
            .unwrap();
        }
        let mut tokens = BTreeMap::new();
        for (id, organisation, roles, admin) in USERS {
            org.put_user(&UserRow {
                id: id.to_string(),
                organisation: organisation.to_string(),
                name: id.to_string(),
                roles: roles.iter().map(|r| r.to_string()).collect(),
                admin: *admin,
                password_hash: None,
                lang: None,
                active: true,
                created_at: now,
            })
            .await
            .unwrap();
            let (token, hash, token_id) = server::auth::new_token().unwrap();
            org.put_token(&TokenRow {
                id: token_id,
                hash,
                user_id: id.to_string(),
                label: "test".into(),
                created_at: now,
                expires_at: None,
                revoked_at: None,
            })
            .await
            .unwrap();
            tokens.insert(id.to_string(), token);
        }
        let options = Options { virtual_clock: Some(Arc::clone(&clock)), trusted_keys, ..Options::default() };
        let state = AppState::new(runtime, org, catalogue, options);
        let app = server::app(state.clone());
        Some(Harness { state, app, tokens, dir, schema: schema.map(|s| (url, s)) })
    }

    pub fn token(&self, user: &str) -> &str {
        self.tokens.get(user).map(String::as_str).unwrap_or_else(|| panic!("no user {user}"))
    }

    /// Calls the router as `user` (`None`: unauthenticated).
    pub async fn call(&self, method: &str, path: &str, user: Option<&str>, body: Option<Value>) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(u) = user {
            req = req.header("authorization", format!("Bearer {}", self.token(u)));
        }
        let req = match body {
            Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string())).unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        self.send(req).await
    }

    /// Sends raw bytes as `application/octet-stream` as `user`.
    pub async fn call_bytes(&self, method: &str, path: &str, user: Option<&str>, bytes: Vec<u8>) -> Answer {
        let mut req = Request::builder().method(method).uri(path).header("content-type", "application/octet-stream");
        if let Some(u) = user {
            req = req.header("authorization", format!("Bearer {}", self.token(u)));
        }
        self.send(req.body(Body::from(bytes)).unwrap()).await
    }

    pub async fn send(&self, req: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Answer { status, headers, body, bytes: bytes.to_vec() }
    }

    /// Starts a service visit in `user`'s dealer; answers (instance id, reception task id).
    pub async fn start_visit(&self, user: &str, plate: &str) -> (String, String) {
        let a = self
            .call(
                "POST",
                "/api/v1/instances",
                Some(user),
                Some(json!({ "process": "service_visit", "data": { "plate": plate }, "business_key": plate })),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        let id = a.body["id"].as_str().unwrap().to_string();
        let task = a.body["tasks"][0]["id"].as_str().unwrap().to_string();
        (id, task)
    }

    pub async fn cleanup(self) {
        self.state.runtime().shutdown().await;
        if let Some(dir) = self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((url, schema)) = self.schema {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE")).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

/// A valid reception form.
pub fn reception_form() -> Value {
    json!({ "form": { "vin": "LSVAA4182E2123456", "odometer_km": 42000 } })
}

/// Polls until `check` holds, failing after 60 s.
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

/// A listening server on a real port, called with `reqwest` as the demo users.
pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    /// demo user id -> bearer token, as `sopflow serve --demo` prints them
    pub tokens: BTreeMap<String, String>,
    /// the demo users, with their organisations and roles
    pub users: Vec<server::demo::DemoUser>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        user: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let token = self.tokens.get(user).unwrap_or_else(|| panic!("no demo user {user}"));
        let mut req = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let response = req.send().await.unwrap();
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn get(&self, path: &str, user: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, user, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path} as {user}: {body}");
        body
    }

    pub async fn post(&self, path: &str, user: &str, body: Value) -> Value {
        let (status, answer) = self.call(reqwest::Method::POST, path, user, Some(body)).await;
        assert!(status.is_success(), "POST {path} as {user}: {status} {answer}");
        answer
    }

    /// The first task of the user's inbox for an instance, once it is there.
    pub async fn task_for(&self, user: &str, instance: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let page = self.get("/api/v1/tasks?counts=false", user).await;
            if let Some(t) = page["items"].as_array().unwrap().iter().find(|t| t["instance"] == instance) {
                return t.clone();
            }
            assert!(std::time::Instant::now() < deadline, "gave up waiting for a task of {instance} for {user}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = self.handle.await;
    }
}

/// Serves the packs under `processes/` the way `sopflow serve --demo --virtual-clock` does:
/// the built-in actions, the demo directory of [`server::demo::ensure`], and the demo dealers'
/// stock table imported from `stock` (CSV; empty when `None`). `None` when the backend is not available
/// (see [`Harness::open`]).
pub async fn serve(backend: Backend, stock: Option<&str>) -> Option<(Harness, Server)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../processes");
    let registry = plugins::Registry::offline();
    if let Some(csv) = stock {
        for dealer in server::demo::DEALERS {
            plugins::inventory::import_csv(registry.inventory().as_ref(), dealer, csv).await.unwrap();
        }
    }
    let limits = script::Limits::default();
    let sandbox = registry.guard_sandbox(limits.clone()).unwrap_or_else(|_| script::Sandbox::new(limits));
    let options = model::Options {
        actions: Some(registry.action_names()),
        sandbox: Arc::new(sandbox),
        ..model::Options::default()
    };
    let loaded = server::packs::load(&[root], &options);
    assert!(loaded.processes.iter().any(|p| p.id == "repair_job"), "{:?}", loaded.problems);
    assert!(loaded.processes.iter().any(|p| p.id == "service_order"), "{:?}", loaded.problems);
    let mut actions = runtime::ActionRegistry::with_builtins();
    for (name, action) in registry.actions() {
        // The engine's own `notify` records messages without templates or channels.
        if name != "notify" {
            actions.register(Arc::clone(action)).unwrap();
        }
    }
    let h = Harness::open(backend, loaded.processes, loaded.catalogue, Some(actions)).await?;
    let users = server::demo::ensure(h.state.org(), &h.state.catalogue(), h.state.now_ms()).await.unwrap();
    let tokens = users.iter().map(|u| (u.id.clone(), u.token.clone())).collect();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = server::app(h.state.clone());
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let ready = format!("{base}/readyz");
    eventually("the server is ready", || {
        let client = client.clone();
        let ready = ready.clone();
        async move { client.get(&ready).send().await.is_ok_and(|r| r.status() == StatusCode::OK) }
    })
    .await;
    Some((h, Server { base, client, tokens, users, stop: Some(tx), handle }))
}
