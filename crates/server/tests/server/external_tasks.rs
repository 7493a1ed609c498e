//! External task workers over HTTP: fetch and lock, complete with a checked output, fail into an
//! incident that the dealer's administrator finds and retries; a worker stays inside its dealer.

use std::path::Path;

use serde_json::{Value, json};
use server::Catalogue;

use crate::harness::*;

/// An order opened in the DMS by an external worker, once.
const DMS_ORDER: &str = r#"
process: dms_order
version: 1
title: { zh: 開單, en: Open the order }
roles: [service_advisor]
data:
  type: object
  properties:
    plate: { type: string }
start: open_order
steps:
  open_order:
    type: action
    title: { zh: 在DMS開單, en: Open the order in the DMS }
    action: topic:dms_sync
    input: { plate: =plate }
    retry: { max_attempts: 1 }
    next: done
  done:
    type: end
    outcome: completed
"#;

const TOPICS: &str = r#"
topics:
  dms_sync:
    input:
      type: object
      required: [plate]
      properties: { plate: { type: string } }
    output:
      type: object
      required: [order_no]
      properties: { order_no: { type: string } }
"#;

async fn harness() -> Harness {
    let config = plugins::config::PluginsConfig::parse(Path::new("plugins.yaml"), TOPICS).unwrap();
    let registry = plugins::Registry::builder(config).build().unwrap();
    Harness::open_with_topics(
        Backend::Memory,
        vec![compile(DMS_ORDER)],
        Catalogue::new(),
        None,
        registry.topic_schemas(),
    )
    .await
    .unwrap()
}

async fn start(h: &Harness, plate: &str) -> String {
    let body = json!({ "process": "dms_order", "data": { "plate": plate }, "business_key": plate });
    h.call("POST", "/api/v1/instances", Some("a.advisor"), Some(body)).await.ok()["id"].as_str().unwrap().to_string()
}

/// Fetches as `user` until the outbox has enqueued a job (polling for readiness, with a deadline).
async fn fetch(h: &Harness, user: &str, worker: &str) -> Vec<Value> {
    let body = json!({ "worker": worker, "topics": ["dms_sync"], "max": 5, "lock_secs": 60 });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let a = h.call("POST", "/api/v1/external-tasks/fetch-and-lock", Some(user), Some(body.clone())).await;
        let got = a.ok().as_array().unwrap().clone();
        if !got.is_empty() {
            return got;
        }
        assert!(std::time::Instant::now() < deadline, "gave up waiting for a job to fetch");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_worker_fetches_and_completes_its_dealers_jobs_only() {
    let h = harness().await;
    let instance = start(&h, "粤A1").await;
    let jobs = fetch(&h, "a.worker", "dms-1").await;
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job["topic"], "dms_sync");
    assert_eq!(job["input"], json!({ "plate": "粤A1" }));
    assert_eq!(job["instance"], instance.as_str());
    assert_eq!(job["attempt"], 1);
    assert!(job["lock_expires_at"].as_str().is_some());
    let id = job["id"].as_str().unwrap().to_string();
    let complete = format!("/api/v1/external-tasks/{id}/complete");

    // Who may not: another dealer's worker (not found), a dealer user without the worker role,
    // headquarters.
    let body = json!({ "worker": "dms-1", "topics": ["dms_sync"] });
    let b = h.call("POST", "/api/v1/external-tasks/fetch-and-lock", Some("b.worker"), Some(body.clone())).await;
    assert_eq!(b.ok(), &json!([]));
    let done = json!({ "worker": "dms-1", "output": { "order_no": "RO-1" } });
    h.call("POST", &complete, Some("b.worker"), Some(done.clone())).await.problem(404, "not-found");
    h.call("POST", "/api/v1/external-tasks/fetch-and-lock", Some("a.advisor"), Some(body.clone()))
        .await
        .problem(403, "forbidden");
    h.call("POST", "/api/v1/external-tasks/fetch-and-lock", Some("hq.admin"), Some(body))
        .await
        .problem(403, "forbidden");
    // Another worker name under the same account does not hold the lock.
    let other = json!({ "worker": "dms-2", "output": { "order_no": "RO-1" } });
    h.call("POST", &complete, Some("a.worker"), Some(other)).await.problem(409, "conflict");

    // An output that breaks the topic's schema: every error with its path; the job stays locked.
    let bad = json!({ "worker": "dms-1", "output": { "order_no": 7, "extra": true } });
    let a = h.call("POST", &complete, Some("a.worker"), Some(bad)).await;
    a.problem(422, "validation-failed");
    assert_eq!(a.body["errors"][0]["path"], "/order_no", "{}", a.body);

    let a = h.call("POST", &complete, Some("a.worker"), Some(done.clone())).await;
    assert_eq!(a.ok()["outcome"], "completed");
    // Again: harmless.
    h.call("POST", &complete, Some("a.worker"), Some(done)).await.ok();
    let view = h.call("GET", &format!("/api/v1/instances/{instance}"), Some("a.advisor"), None).await;
    assert_eq!(view.ok()["status"], "ended", "{}", view.body);
    assert_eq!(view.body["data"]["open_order"], json!({ "order_no": "RO-1" }));
    h.cleanup().await;
}

#[tokio::test]
async fn a_failed_job_becomes_an_incident_the_administrator_finds_and_retries() {
    let h = harness().await;
    let instance = start(&h, "粤A2").await;
    let jobs = fetch(&h, "a.worker", "dms-1").await;
    let id = jobs[0]["id"].as_str().unwrap().to_string();
    let failed = json!({ "worker": "dms-1", "error": "the DMS refused the VIN", "retryable": false });
    let a = h.call("POST", &format!("/api/v1/external-tasks/{id}/failure"), Some("a.worker"), Some(failed)).await;
    assert_eq!(a.ok()["outcome"], "incident", "{}", a.body);

    // The administrator's list of what waits for them.
    let list = h.call("GET", "/api/v1/instances?status=incident", Some("a.admin"), None).await;
    let items = list.ok()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{}", list.body);
    assert_eq!(items[0]["id"], instance.as_str());
    assert_eq!(items[0]["status"], "incident");
    let running = h.call("GET", "/api/v1/instances?status=running", Some("a.admin"), None).await;
    assert_eq!(running.ok()["items"].as_array().unwrap().len(), 1, "an instance with an incident is still running");
    let b = h.call("GET", "/api/v1/instances?status=incident", Some("b.admin"), None).await;
    assert_eq!(b.ok()["items"], json!([]));

    let view = h.call("GET", &format!("/api/v1/instances/{instance}"), Some("a.admin"), None).await;
    let incident = view.ok()["incidents"][0].clone();
    assert!(incident["message"].as_str().unwrap().contains("the DMS refused the VIN"), "{incident}");
    let retry = format!("/api/v1/incidents/{}/retry", incident["id"].as_str().unwrap());
    h.call("POST", &retry, Some("a.admin"), None).await.ok();

    // A new job for the next try, which a worker completes.
    let jobs = fetch(&h, "a.worker", "dms-1").await;
    assert_eq!(jobs[0]["attempt"], 2);
    let id = jobs[0]["id"].as_str().unwrap();
    let done = json!({ "worker": "dms-1", "output": { "order_no": "RO-2" } });
    h.call("POST", &format!("/api/v1/external-tasks/{id}/complete"), Some("a.worker"), Some(done)).await.ok();
    let view = h.call("GET", &format!("/api/v1/instances/{instance}"), Some("a.admin"), None).await;
    assert_eq!(view.ok()["status"], "ended", "{}", view.body);
    h.cleanup().await;
}

#[tokio::test]
async fn bad_fetch_requests_are_refused_with_the_field() {
    let h = harness().await;
    let cases = [
        (json!({ "worker": "", "topics": ["dms_sync"] }), "/worker"),
        (json!({ "worker": "w", "topics": [] }), "/topics"),
        (json!({ "worker": "w", "topics": ["dms_sync"], "max": 0 }), "/max"),
        (json!({ "worker": "w", "topics": ["dms_sync"], "lock_secs": 0 }), "/lock_secs"),
        (json!({ "worker": "w", "topics": ["dms_sync"], "extra": 1 }), "/extra"),
    ];
    for (body, path) in cases {
        let a = h.call("POST", "/api/v1/external-tasks/fetch-and-lock", Some("a.worker"), Some(body.clone())).await;
        a.problem(422, "validation-failed");
        assert_eq!(a.body["errors"][0]["path"], path, "{body}: {}", a.body);
    }
    h.call("POST", "/api/v1/external-tasks/nope/complete", Some("a.worker"), Some(json!({ "worker": "w" })))
        .await
        .problem(404, "not-found");
    h.cleanup().await;
}
