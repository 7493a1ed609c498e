//! Form validation: an invalid form is refused with every field error listed, and nothing
//! changes (the task, the instance and its audit trail are as before).

use serde_json::json;

use crate::harness::{Harness, reception_form};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_completion_listing_every_field_error_and_changes_nothing() {
    let h = Harness::memory().await;
    let (instance, task) = h.start_visit("a.advisor", "粤A12345").await;
    h.call("POST", &format!("/api/v1/tasks/{task}/claim"), Some("a.advisor"), None).await.ok();
    let task_before = h.call("GET", &format!("/api/v1/tasks/{task}"), Some("a.advisor"), None).await;
    let instance_before = h.call("GET", &format!("/api/v1/instances/{instance}"), Some("a.advisor"), None).await;
    let audit_before = h.call("GET", &format!("/api/v1/instances/{instance}/audit"), Some("a.advisor"), None).await;

    // Missing `vin`, `odometer_km` of the wrong type, and a field the form does not declare.
    let bad = json!({ "form": { "odometer_km": "five", "colour": "red" } });
    let a = h.call("POST", &format!("/api/v1/tasks/{task}/complete"), Some("a.advisor"), Some(bad)).await;
    a.problem(422, "validation-failed");
    let errors = a.body["errors"].as_array().unwrap();
    let paths: Vec<&str> = errors.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/colour", "/odometer_km", "/vin"], "{}", a.body);
    assert!(errors.iter().all(|e| e["message"].as_str().is_some_and(|m| !m.is_empty())));

    // The same with a wrong type only.
    let a = h
        .call(
            "POST",
            &format!("/api/v1/tasks/{task}/complete"),
            Some("a.advisor"),
            Some(json!({ "form": { "vin": 17, "odometer_km": -1 } })),
        )
        .await;
    a.problem(422, "validation-failed");
    assert_eq!(a.body["errors"].as_array().unwrap().len(), 2, "{}", a.body);

    // An unknown field of the request itself is refused too.
    let a = h
        .call(
            "POST",
            &format!("/api/v1/tasks/{task}/complete"),
            Some("a.advisor"),
            Some(json!({ "form": {}, "extra": 1 })),
        )
        .await;
    a.problem(422, "validation-failed");
    assert_eq!(a.body["errors"][0]["path"], "/extra");

    let task_after = h.call("GET", &format!("/api/v1/tasks/{task}"), Some("a.advisor"), None).await;
    let instance_after = h.call("GET", &format!("/api/v1/instances/{instance}"), Some("a.advisor"), None).await;
    let audit_after = h.call("GET", &format!("/api/v1/instances/{instance}/audit"), Some("a.advisor"), None).await;
    assert_eq!(task_before.body, task_after.body);
    assert_eq!(instance_before.body, instance_after.body);
    assert_eq!(audit_before.body, audit_after.body);

    // The form schema the inbox shows is the one that judged.
    assert_eq!(task_after.body["form_schema"]["required"], json!(["vin", "odometer_km"]));
    let done =
        h.call("POST", &format!("/api/v1/tasks/{task}/complete"), Some("a.advisor"), Some(reception_form())).await;
    assert_eq!(done.ok()["position"][0]["step"], "repair");
    h.call("POST", &format!("/api/v1/tasks/{task}/complete"), Some("a.advisor"), Some(reception_form()))
        .await
        .problem(409, "conflict");
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_start_data_listing_every_field_error() {
    let h = Harness::memory().await;
    let a = h
        .call(
            "POST",
            "/api/v1/instances",
            Some("a.advisor"),
            Some(json!({ "process": "service_visit", "data": { "plate": 5, "colour": "red" } })),
        )
        .await;
    a.problem(422, "validation-failed");
    assert_eq!(a.body["errors"].as_array().unwrap().len(), 2, "{}", a.body);
    h.call("POST", "/api/v1/instances", Some("a.advisor"), Some(json!({ "process": "no_such_process" })))
        .await
        .problem(422, "validation-failed");
    assert_eq!(h.call("GET", "/api/v1/instances", Some("a.advisor"), None).await.ok()["items"], json!([]));
    h.cleanup().await;
}
