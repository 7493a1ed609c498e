//! End to end, against a listening server on a real database: the packs of `processes/`, the
//! demo users, and a repair job from reception to delivery driven only through HTTP, with the
//! virtual clock moving the reception's SLA into `overdue`, the other dealer kept out, and the
//! audit trail verified at the end. Runs on SQLite, and on PostgreSQL when `DATABASE_URL` is
//! set.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Backend, Harness, eventually};

struct Server {
    base: String,
    client: reqwest::Client,
    tokens: BTreeMap<String, String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn call(&self, method: reqwest::Method, path: &str, user: &str, body: Option<Value>) -> (StatusCode, Value) {
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

    async fn get(&self, path: &str, user: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, user, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    async fn post(&self, path: &str, user: &str, body: Value) -> Value {
        let (status, answer) = self.call(reqwest::Method::POST, path, user, Some(body)).await;
        assert!(status.is_success(), "POST {path}: {status} {answer}");
        answer
    }

    /// The first task of the user's inbox for an instance, once it is there.
    async fn task_for(&self, user: &str, instance: &str) -> Value {
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

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = self.handle.await;
    }
}

/// Loads the packs under `processes/` the way `sopflow serve` does, with the built-in actions.
async fn serve(backend: Backend) -> Option<(Harness, Server)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../processes");
    let registry = plugins::Registry::offline();
    let limits = script::Limits::default();
    let sandbox = registry.guard_sandbox(limits.clone()).unwrap_or_else(|_| script::Sandbox::new(limits));
    let options = model::Options {
        actions: Some(registry.action_names()),
        sandbox: Arc::new(sandbox),
        ..model::Options::default()
    };
    let loaded = server::packs::load(&[root], &options);
    assert!(loaded.processes.iter().any(|p| p.id == "repair_job"), "{:?}", loaded.problems);
    let mut actions = runtime::ActionRegistry::with_builtins();
    for (name, action) in registry.actions() {
        // The engine's own `notify` records messages without templates or channels.
        if name != "notify" {
            actions.register(Arc::clone(action)).unwrap();
        }
    }
    let h = Harness::open(backend, loaded.processes, loaded.catalogue, Some(actions)).await?;
    let demo = server::demo::ensure(h.state.org(), &h.state.catalogue(), h.state.now_ms()).await.unwrap();
    let tokens = demo.into_iter().map(|u| (u.id, u.token)).collect();

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
    Some((h, Server { base, client, tokens, stop: Some(tx), handle }))
}

async fn a_repair_job_from_reception_to_delivery(backend: Backend) {
    let Some((h, s)) = serve(backend).await else { return };
    let advisor = "demo.service_advisor";
    let plate = "粤A12345";

    // The advisor opens a repair job; a colleague of the other dealer sees nothing of it.
    let started = s
        .post(
            "/api/v1/instances",
            advisor,
            json!({
                "process": "repair_job",
                "business_key": plate,
                "data": { "plate_no": plate, "estimated_hours": 1, "promised_at": "2026-03-02T09:00:00Z" }
            }),
        )
        .await;
    let id = started["id"].as_str().unwrap().to_string();
    let reception = s.task_for(advisor, &id).await;
    assert_eq!(reception["step"], "reception");
    assert_ne!(reception["sla"], "overdue");
    let other = s.get("/api/v1/tasks", "demo2.service_advisor").await;
    assert!(other["items"].as_array().unwrap().iter().all(|t| t["instance"] != id.as_str()));
    let (status, _) =
        s.call(reqwest::Method::GET, &format!("/api/v1/instances/{id}"), "demo2.service_advisor", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let task_path = format!("/api/v1/tasks/{}", reception["id"].as_str().unwrap());
    let (status, _) = s.call(reqwest::Method::POST, &format!("{task_path}/claim"), "demo2.service_advisor", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An hour later (virtual time) the 30-minute reception is overdue, and the inbox says so.
    s.post("/api/v1/test/clock", advisor, json!({ "advance": "PT1H" })).await;
    let page = s.get(&format!("/api/v1/tasks?q={}", "A12345"), advisor).await;
    let item = page["items"].as_array().unwrap().iter().find(|t| t["instance"] == id.as_str()).unwrap().clone();
    assert_eq!(item["sla"], "overdue");
    assert!(page["counts"]["overdue"].as_i64().unwrap() >= 1, "{page}");
    let overdue = s.get("/api/v1/tasks?overdue=true", advisor).await;
    assert!(overdue["items"].as_array().unwrap().iter().any(|t| t["instance"] == id.as_str()));

    // Reception: claim, then a form with an error (refused), then the right one.
    s.post(&format!("{task_path}/claim"), advisor, json!({})).await;
    let (status, problem) = s
        .call(
            reqwest::Method::POST,
            &format!("{task_path}/complete"),
            advisor,
            Some(json!({ "form": { "vin": "short" } })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    s.post(
        &format!("{task_path}/complete"),
        advisor,
        json!({ "form": { "vin": "LSVAA4182E2123456", "odometer_km": 42000, "part_no": "P-100" } }),
    )
    .await;

    // Nothing is in stock, so the parts manager orders by hand; then the repair, the inspection,
    // and settling and washing in parallel.
    let steps: [(&str, &str, Value); 5] = [
        ("demo.parts_manager", "order_parts_manually", json!({})),
        ("demo.technician", "repair", json!({ "work_done": "replaced the brake pads", "self_check_passed": true })),
        ("demo.workshop_director", "inspection", json!({ "passed": true })),
        ("demo.service_advisor", "settle", json!({})),
        ("demo.technician", "wash", json!({})),
    ];
    for (user, step, form) in steps {
        let task = s.task_for(user, &id).await;
        assert_eq!(task["step"], step, "{task}");
        let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
        let detail = s.get(&path, user).await;
        assert_eq!(detail["can_act"], true);
        // Completed with an Idempotency-Key, twice: the retry is answered from the record.
        let send = || {
            s.client
                .post(format!("{}{path}/complete", s.base))
                .bearer_auth(&s.tokens[user])
                .header("idempotency-key", format!("{id}-{step}"))
                .json(&json!({ "form": form }))
                .send()
        };
        let first = send().await.unwrap();
        assert_eq!(first.status(), StatusCode::OK, "{step}");
        let first: Value = first.json().await.unwrap();
        let again = send().await.unwrap();
        assert_eq!(again.headers().get("idempotent-replayed").map(|v| v.as_bytes()), Some(&b"true"[..]));
        assert_eq!(again.json::<Value>().await.unwrap(), first);
    }

    let view = s.get(&format!("/api/v1/instances/{id}"), advisor).await;
    assert_eq!(view["status"], "ended", "{view}");
    assert_eq!(view["outcome"], "completed");
    let audit = s.get(&format!("/api/v1/instances/{id}/audit"), "hq.viewer").await;
    assert_eq!(audit["verified"], true, "{audit}");
    assert!(audit["entries"].as_array().unwrap().iter().any(|e| e["kind"] == "task_completed"));
    let trace = s.get(&format!("/api/v1/instances/{id}/trace"), advisor).await;
    let text: Vec<&str> = trace["lines"].as_array().unwrap().iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert!(text.iter().any(|l| l.contains("stock_decision")), "{text:#?}");
    let graph = s.get(&format!("/api/v1/instances/{id}/graph?lang=zh"), advisor).await;
    assert!(graph["mermaid"].as_str().unwrap().starts_with("flowchart"));

    s.stop().await;
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_repair_job_from_reception_to_delivery_over_http() {
    a_repair_job_from_reception_to_delivery(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_repair_job_from_reception_to_delivery_over_http() {
    a_repair_job_from_reception_to_delivery(Backend::Postgres).await;
}
