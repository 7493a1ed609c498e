//! `Idempotency-Key`: the same request twice acts once; the same key for another request is
//! refused.

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};

use crate::harness::{Harness, reception_form};

fn keyed(h: &Harness, user: &str, path: &str, key: &str, body: &Value) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(path)
        .header("authorization", format!("Bearer {}", h.token(user)))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_retried_with_the_same_key_starts_once() {
    let h = Harness::memory().await;
    let body = json!({ "process": "service_visit", "data": { "plate": "粤B1" }, "business_key": "粤B1" });
    let first = h.send(keyed(&h, "a.advisor", "/api/v1/instances", "k-1", &body)).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = h.send(keyed(&h, "a.advisor", "/api/v1/instances", "k-1", &body)).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.headers.get("idempotent-replayed").map(|v| v.as_bytes()), Some(&b"true"[..]));
    assert_eq!(first.body, again.body);
    let list = h.call("GET", "/api/v1/instances", Some("a.advisor"), None).await;
    assert_eq!(list.ok()["items"].as_array().unwrap().len(), 1);

    // The same key with another body is refused; another user's same key is theirs.
    let other = json!({ "process": "service_visit", "data": { "plate": "粤B2" } });
    h.send(keyed(&h, "a.advisor", "/api/v1/instances", "k-1", &other)).await.problem(422, "idempotency-mismatch");
    let theirs = h.send(keyed(&h, "a.advisor2", "/api/v1/instances", "k-1", &other)).await;
    assert_eq!(theirs.status, 201);
    assert_ne!(theirs.body["id"], first.body["id"]);

    // A refused request records nothing: fixing it under the same key works.
    let invalid = json!({ "process": "service_visit", "data": {} });
    h.send(keyed(&h, "a.advisor", "/api/v1/instances", "k-2", &invalid)).await.problem(422, "validation-failed");
    h.send(keyed(&h, "a.advisor", "/api/v1/instances", "k-2", &invalid)).await.problem(422, "validation-failed");
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_retried_with_the_same_key_completes_once() {
    let h = Harness::memory().await;
    let (instance, task) = h.start_visit("a.advisor", "粤B3").await;
    let path = format!("/api/v1/tasks/{task}/complete");
    let first = h.send(keyed(&h, "a.advisor", &path, "done-1", &reception_form())).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let again = h.send(keyed(&h, "a.advisor", &path, "done-1", &reception_form())).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(first.body, again.body);
    let different = json!({ "form": { "vin": "LSVAA4182E2999999", "odometer_km": 1 } });
    h.send(keyed(&h, "a.advisor", &path, "done-1", &different)).await.problem(422, "idempotency-mismatch");
    let audit = h.call("GET", &format!("/api/v1/instances/{instance}/audit"), Some("a.advisor"), None).await;
    let completions =
        audit.ok()["entries"].as_array().unwrap().iter().filter(|e| e["kind"] == "task_completed").count();
    assert_eq!(completions, 1);
    h.cleanup().await;
}
