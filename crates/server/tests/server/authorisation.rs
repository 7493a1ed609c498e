//! The authorisation matrix: two dealers and headquarters against every endpoint. A dealer
//! user never sees or acts on another dealer's work (404 everywhere); headquarters reads
//! everything and acts on nothing (403); administrators act within their dealer.

use serde_json::json;

use crate::harness::{Harness, eventually, reception_form};

/// Every endpoint that names a task or instance of dealer `a`, with a body where one is needed.
fn endpoints(instance: &str, task: &str) -> Vec<(&'static str, String, Option<serde_json::Value>)> {
    vec![
        ("GET", format!("/api/v1/tasks/{task}"), None),
        ("POST", format!("/api/v1/tasks/{task}/claim"), None),
        ("POST", format!("/api/v1/tasks/{task}/unclaim"), None),
        ("POST", format!("/api/v1/tasks/{task}/delegate"), Some(json!({ "to": "b.advisor" }))),
        ("POST", format!("/api/v1/tasks/{task}/complete"), Some(reception_form())),
        ("GET", format!("/api/v1/instances/{instance}"), None),
        ("GET", format!("/api/v1/instances/{instance}/audit"), None),
        ("GET", format!("/api/v1/instances/{instance}/trace"), None),
        ("GET", format!("/api/v1/instances/{instance}/graph"), None),
        ("POST", format!("/api/v1/instances/{instance}/cancel"), Some(json!({ "reason": "no" }))),
        ("POST", format!("/api/v1/incidents/{instance}-x9/retry"), None),
        ("POST", format!("/api/v1/incidents/{instance}-x9/skip"), None),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_dealers_user_gets_404_from_every_endpoint_and_changes_nothing() {
    let h = Harness::memory().await;
    let (instance, task) = h.start_visit("a.advisor", "粤A12345").await;
    let before = h.call("GET", &format!("/api/v1/instances/{instance}"), Some("a.advisor"), None).await;
    for user in ["b.advisor", "b.admin"] {
        for (method, path, body) in endpoints(&instance, &task) {
            h.call(method, &path, Some(user), body).await.problem(404, "not-found");
        }
        // Lists never include it, and naming the dealer is refused as if it did not exist.
        let inbox = h.call("GET", "/api/v1/tasks", Some(user), None).await;
        assert_eq!(inbox.ok()["items"], json!([]));
        h.call("GET", "/api/v1/tasks?dealer=a", Some(user), None).await.problem(404, "not-found");
        let list = h.call("GET", "/api/v1/instances", Some(user), None).await;
        assert_eq!(list.ok()["items"], json!([]));
        h.call("GET", "/api/v1/instances?dealer=a", Some(user), None).await.problem(404, "not-found");
    }
    // A message from dealer b with a's key does not reach a's instance.
    let m = h
        .call(
            "POST",
            "/api/v1/messages",
            Some("b.advisor"),
            Some(json!({ "name": "parts_arrived", "key": "粤A12345" })),
        )
        .await;
    assert_eq!(m.ok()["delivered_to"], json!([]));
    let after = h.call("GET", &format!("/api/v1/instances/{instance}"), Some("a.advisor"), None).await;
    assert_eq!(before.body, after.body, "dealer b changed dealer a's instance");
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headquarters_reads_across_dealers_but_every_action_is_forbidden() {
    let h = Harness::memory().await;
    let (instance, task) = h.start_visit("a.advisor", "粤A12345").await;
    for user in ["hq.viewer", "hq.admin"] {
        for (method, path, body) in endpoints(&instance, &task) {
            let a = h.call(method, &path, Some(user), body).await;
            if method == "GET" {
                a.ok();
            } else {
                a.problem(403, "forbidden");
            }
        }
        let inbox = h.call("GET", "/api/v1/tasks?dealer=a", Some(user), None).await;
        assert_eq!(inbox.ok()["items"][0]["id"], task.as_str());
        assert_eq!(inbox.body["counts"]["total"], 1);
        // Headquarters must say which dealer it reads.
        h.call("GET", "/api/v1/tasks", Some(user), None).await.problem(400, "bad-request");
        let list = h.call("GET", "/api/v1/instances", Some(user), None).await;
        assert_eq!(list.ok()["items"][0]["id"], instance.as_str());
        h.call(
            "POST",
            "/api/v1/instances",
            Some(user),
            Some(json!({ "process": "service_visit", "data": { "plate": "x" } })),
        )
        .await
        .problem(403, "forbidden");
        h.call("POST", "/api/v1/messages", Some(user), Some(json!({ "name": "parts_arrived" })))
            .await
            .problem(403, "forbidden");
    }
    let a = h.call("GET", &format!("/api/v1/tasks/{task}"), Some("hq.viewer"), None).await;
    assert_eq!(a.ok()["can_act"], false);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dealer_user_sees_only_tasks_of_roles_they_hold_or_assigned_to_them() {
    let h = Harness::memory().await;
    let (_, task) = h.start_visit("a.advisor", "粤A12345").await;
    // The technician holds none of the reception's roles.
    h.call("GET", &format!("/api/v1/tasks/{task}"), Some("a.tech"), None).await.problem(404, "not-found");
    h.call("POST", &format!("/api/v1/tasks/{task}/claim"), Some("a.tech"), None).await.problem(404, "not-found");
    assert_eq!(h.call("GET", "/api/v1/tasks", Some("a.tech"), None).await.ok()["items"], json!([]));
    // The dealer's administrator reads it but may not act on it.
    assert_eq!(h.call("GET", &format!("/api/v1/tasks/{task}"), Some("a.admin"), None).await.ok()["can_act"], false);
    h.call("POST", &format!("/api/v1/tasks/{task}/claim"), Some("a.admin"), None).await.problem(403, "forbidden");
    // A colleague with the role sees it, and once claimed by the advisor it is theirs to ask for.
    let page = h.call("GET", "/api/v1/tasks", Some("a.advisor2"), None).await;
    assert_eq!(page.ok()["items"][0]["id"], task.as_str());
    let claimed = h.call("POST", &format!("/api/v1/tasks/{task}/claim"), Some("a.advisor"), None).await;
    assert_eq!(claimed.ok()["assignee"], "a.advisor");
    h.call("POST", &format!("/api/v1/tasks/{task}/claim"), Some("a.advisor2"), None).await.problem(409, "conflict");
    h.call("POST", &format!("/api/v1/tasks/{task}/complete"), Some("a.advisor2"), Some(reception_form()))
        .await
        .problem(409, "conflict");
    let mine = h.call("GET", "/api/v1/tasks?assignee=me", Some("a.advisor"), None).await;
    assert_eq!(mine.ok()["items"][0]["id"], task.as_str());
    assert_eq!(mine.body["counts"]["mine"], 1);
    assert_eq!(h.call("GET", "/api/v1/tasks?assignee=nobody", Some("a.advisor"), None).await.ok()["items"], json!([]));
    assert_eq!(h.call("GET", "/api/v1/tasks", Some("a.advisor2"), None).await.ok()["items"], json!([]));
    // Delegation goes to a user of the same dealer holding the role, and only there.
    h.call("POST", &format!("/api/v1/tasks/{task}/delegate"), Some("a.advisor"), Some(json!({ "to": "b.advisor" })))
        .await
        .problem(422, "validation-failed");
    h.call("POST", &format!("/api/v1/tasks/{task}/delegate"), Some("a.advisor"), Some(json!({ "to": "a.tech" })))
        .await
        .problem(422, "validation-failed");
    let d = h
        .call("POST", &format!("/api/v1/tasks/{task}/delegate"), Some("a.advisor"), Some(json!({ "to": "a.advisor2" })))
        .await;
    assert_eq!(d.ok()["assignee"], "a.advisor2");
    let u = h.call("POST", &format!("/api/v1/tasks/{task}/unclaim"), Some("a.advisor2"), None).await;
    assert_eq!(u.ok()["assignee"], serde_json::Value::Null);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_dealers_administrator_cancels_and_resolves_incidents() {
    let h = Harness::memory().await;
    let (instance, _) = h.start_visit("a.advisor", "粤A1").await;
    let cancel = format!("/api/v1/instances/{instance}/cancel");
    h.call("POST", &cancel, Some("a.advisor"), Some(json!({ "reason": "x" }))).await.problem(403, "forbidden");
    h.call("POST", &cancel, Some("b.admin"), Some(json!({ "reason": "x" }))).await.problem(404, "not-found");
    let c = h.call("POST", &cancel, Some("a.admin"), Some(json!({ "reason": "customer left" }))).await;
    assert_eq!(c.ok()["ended"], true);
    h.call("POST", &cancel, Some("a.admin"), Some(json!({ "reason": "again" }))).await.problem(409, "conflict");

    // An action nobody installed raises an incident; only a's administrator may skip it.
    let started = h.call("POST", "/api/v1/instances", Some("a.advisor"), Some(json!({ "process": "sync_job" }))).await;
    let id = started.ok()["id"].as_str().unwrap().to_string();
    let mut incident = String::new();
    eventually("an incident is raised", || {
        let h = &h;
        let id = id.clone();
        async move {
            let v = h.call("GET", &format!("/api/v1/instances/{id}"), Some("a.admin"), None).await;
            !v.body["incidents"].as_array().is_none_or(Vec::is_empty)
        }
    })
    .await;
    let v = h.call("GET", &format!("/api/v1/instances/{id}"), Some("a.admin"), None).await;
    incident.push_str(v.body["incidents"][0]["id"].as_str().unwrap());
    let skip = format!("/api/v1/incidents/{incident}/skip");
    h.call("POST", &skip, Some("a.advisor"), None).await.problem(403, "forbidden");
    h.call("POST", &skip, Some("b.admin"), None).await.problem(404, "not-found");
    h.call("POST", &skip, Some("hq.admin"), None).await.problem(403, "forbidden");
    assert_eq!(h.call("POST", &skip, Some("a.admin"), None).await.ok()["ended"], true);
    h.call("POST", &format!("/api/v1/incidents/{incident}/retry"), Some("a.admin"), None)
        .await
        .problem(409, "conflict");
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_manage_users_and_tokens_of_their_own_organisation_only() {
    let h = Harness::memory().await;
    let new_user = json!({ "id": "a.new", "roles": ["technician"], "password": "longenough" });
    h.call("POST", "/api/v1/users", Some("a.advisor"), Some(new_user.clone())).await.problem(403, "forbidden");
    let created = h.call("POST", "/api/v1/users", Some("a.admin"), Some(new_user.clone())).await;
    assert_eq!(created.ok()["organisation"], "a");
    h.call("POST", "/api/v1/users", Some("a.admin"), Some(new_user)).await.problem(409, "conflict");
    h.call("POST", "/api/v1/users", Some("a.admin"), Some(json!({ "id": "a.x", "roles": ["astronaut"] })))
        .await
        .problem(422, "validation-failed");
    h.call("POST", "/api/v1/users", Some("a.admin"), Some(json!({ "id": "b.x", "organisation": "b" })))
        .await
        .problem(404, "not-found");
    h.call("GET", "/api/v1/users/b.advisor", Some("a.admin"), None).await.problem(404, "not-found");
    h.call("PUT", "/api/v1/users/b.advisor/roles", Some("a.admin"), Some(json!({ "roles": [] })))
        .await
        .problem(404, "not-found");
    assert_eq!(
        h.call("GET", "/api/v1/users?organisation=b", Some("hq.admin"), None).await.ok().as_array().unwrap().len(),
        5
    );

    // A token made by the administrator works, and stops working once revoked.
    let t = h.call("POST", "/api/v1/tokens", Some("a.admin"), Some(json!({ "user": "a.new" }))).await;
    let token = t.ok()["token"].as_str().unwrap().to_string();
    let token_id = t.body["id"].as_str().unwrap().to_string();
    let me = |token: String| {
        axum::http::Request::builder()
            .uri("/api/v1/me")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    assert_eq!(h.send(me(token.clone())).await.ok()["id"], "a.new");
    h.call("DELETE", &format!("/api/v1/tokens/{token_id}"), Some("b.admin"), None).await.problem(404, "not-found");
    assert_eq!(h.call("DELETE", &format!("/api/v1/tokens/{token_id}"), Some("a.admin"), None).await.status, 204);
    h.send(me(token)).await.problem(401, "unauthorized");

    // Logging in with the password issues a token.
    let login = h
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({ "organisation": "a", "username": "a.new", "password": "longenough" })),
        )
        .await;
    assert!(login.ok()["token"].as_str().unwrap().starts_with("sft_"));
    h.call(
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({ "organisation": "b", "username": "a.new", "password": "longenough" })),
    )
    .await
    .problem(401, "unauthorized");
    h.call(
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({ "organisation": "a", "username": "a.new", "password": "wrong" })),
    )
    .await
    .problem(401, "unauthorized");
    h.cleanup().await;
}
