//! Every error is problem+json with a stable `type`, whatever went wrong.

use axum::body::Body;
use axum::http::Request;
use serde_json::json;

use crate::harness::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_a_problem_document() {
    let h = Harness::memory().await;
    let a = h.call("GET", "/api/v1/tasks", None, None).await;
    a.problem(401, "unauthorized");
    assert_eq!(a.headers.get("www-authenticate").map(|v| v.as_bytes()), Some(&b"Bearer"[..]));
    let bad_token =
        Request::builder().uri("/api/v1/me").header("authorization", "Bearer sft_nope").body(Body::empty()).unwrap();
    h.send(bad_token).await.problem(401, "unauthorized");
    h.call("GET", "/api/v1/nowhere", Some("a.advisor"), None).await.problem(404, "no-route");
    h.call("DELETE", "/api/v1/tasks", Some("a.advisor"), None).await.problem(405, "method-not-allowed");
    h.call("GET", "/api/v1/tasks/nope-t1", Some("a.advisor"), None).await.problem(404, "not-found");
    h.call("GET", "/api/v1/tasks?limit=0", Some("a.advisor"), None).await.problem(400, "bad-request");
    h.call("GET", "/api/v1/tasks?limit=x", Some("a.advisor"), None).await.problem(400, "bad-request");
    h.call("GET", "/api/v1/tasks?cursor=zz", Some("a.advisor"), None).await.problem(400, "bad-request");
    h.call("GET", "/api/v1/tasks?due_before=yesterday", Some("a.advisor"), None).await.problem(400, "bad-request");
    h.call("GET", "/api/v1/tasks?colour=red", Some("a.advisor"), None).await.problem(400, "bad-request");
    let not_json = Request::builder()
        .method("POST")
        .uri("/api/v1/instances")
        .header("authorization", format!("Bearer {}", h.token("a.advisor")))
        .header("content-type", "application/json")
        .body(Body::from("{ not json"))
        .unwrap();
    h.send(not_json).await.problem(400, "bad-request");
    let no_type = Request::builder()
        .method("POST")
        .uri("/api/v1/instances")
        .header("authorization", format!("Bearer {}", h.token("a.advisor")))
        .body(Body::from("{}"))
        .unwrap();
    h.send(no_type).await.problem(400, "bad-request");
    let a = h.call("POST", "/api/v1/instances", Some("a.advisor"), Some(json!({ "process": 5 }))).await;
    a.problem(422, "validation-failed");
    assert_eq!(a.body["errors"][0]["path"], "/process");
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_endpoints_answer_without_a_token() {
    let h = Harness::memory().await;
    assert_eq!(h.call("GET", "/healthz", None, None).await.ok()["status"], "ok");
    assert_eq!(h.call("GET", "/readyz", None, None).await.ok()["status"], "ok");
    let (_, task) = h.start_visit("a.advisor", "粤C1").await;
    h.call(
        "POST",
        &format!("/api/v1/tasks/{task}/complete"),
        Some("a.advisor"),
        Some(crate::harness::reception_form()),
    )
    .await
    .ok();
    let m = h.call("GET", "/metrics", None, None).await;
    let text = m.body.as_str().unwrap().to_string();
    assert!(
        text.contains(
            "sopflow_http_requests_total{method=\"POST\",route=\"/api/v1/tasks/{id}/complete\",status=\"200\"} 1"
        ),
        "{text}"
    );
    for name in [
        "sopflow_task_completions_total",
        "sopflow_timers_fired_total",
        "sopflow_sla_breaches_total",
        "sopflow_incidents_total",
    ] {
        assert!(text.contains(&format!("# TYPE {name} counter")), "{text}");
    }
    h.cleanup().await;
}
