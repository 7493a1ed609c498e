//! The OpenAPI document: valid OpenAPI 3.1, and in step with the router (every documented
//! operation is routed; what is routed is what is documented).

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::Request;
use server::{AppState, Catalogue, Options};
use tower::ServiceExt;

use crate::harness::Harness;

/// The operations of the API. Adding or removing a route changes the document, and this list
/// must change with it.
const OPERATIONS: &[&str] = &[
    "DELETE /api/v1/tokens/{id}",
    "GET /api/v1/compliance",
    "GET /api/v1/installations",
    "GET /api/v1/installations/{dealer}/{pack}",
    "GET /api/v1/instances",
    "POST /api/v1/external-tasks/fetch-and-lock",
    "POST /api/v1/installations/{pack}/migrate",
    "POST /api/v1/external-tasks/{id}/complete",
    "POST /api/v1/external-tasks/{id}/failure",
    "GET /api/v1/instances/{id}",
    "GET /api/v1/instances/{id}/audit",
    "GET /api/v1/instances/{id}/graph",
    "GET /api/v1/instances/{id}/trace",
    "GET /api/v1/kpis",
    "GET /api/v1/me",
    "GET /api/v1/organisations",
    "GET /api/v1/packs",
    "GET /api/v1/packs/{id}/{version}",
    "GET /api/v1/packs/{id}/{version}/archive",
    "GET /api/v1/processes",
    "GET /api/v1/processes/{id}/graph",
    "GET /api/v1/roles",
    "GET /api/v1/tasks",
    "GET /api/v1/tasks/{id}",
    "GET /api/v1/tokens",
    "GET /api/v1/users",
    "GET /api/v1/users/{id}",
    "GET /api/v1/workload",
    "GET /healthz",
    "GET /metrics",
    "GET /readyz",
    "POST /api/v1/auth/login",
    "POST /api/v1/incidents/{id}/retry",
    "POST /api/v1/incidents/{id}/skip",
    "POST /api/v1/installations",
    "POST /api/v1/instances",
    "POST /api/v1/instances/{id}/cancel",
    "POST /api/v1/messages",
    "POST /api/v1/organisations",
    "POST /api/v1/packs",
    "POST /api/v1/tasks/{id}/claim",
    "POST /api/v1/tasks/{id}/complete",
    "POST /api/v1/tasks/{id}/delegate",
    "POST /api/v1/tasks/{id}/unclaim",
    "POST /api/v1/test/clock",
    "POST /api/v1/tokens",
    "POST /api/v1/users",
    "PUT /api/v1/me/preferences",
    "PUT /api/v1/users/{id}/roles",
];

fn operations(doc: &serde_json::Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if item.get(method).is_some() {
                out.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    out
}

fn collect_refs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x.as_str()) {
                    ("$ref", Some(r)) => out.push(r.to_string()),
                    _ => collect_refs(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_valid_openapi_and_every_operation_is_routed() {
    let h = Harness::memory().await;
    let a = h.call("GET", "/openapi.json", None, None).await;
    let doc = a.ok().clone();
    let spec = oas3::from_json(doc.to_string()).expect("the document is not valid OpenAPI 3.1");
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    // Every reference resolves to a registered schema.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    for r in &refs {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected reference {r}"));
        assert!(doc["components"]["schemas"].get(name).is_some(), "{r} does not resolve");
    }

    let documented = operations(&doc);
    let expected: BTreeSet<String> = OPERATIONS.iter().map(|s| s.to_string()).collect();
    assert_eq!(documented, expected, "the routes changed: update OPERATIONS and docs/api.md");

    // Every documented operation reaches a handler: the router never answers it with its own
    // "no such endpoint" or "method not allowed".
    for op in &documented {
        let (method, path) = op.split_once(' ').unwrap();
        let concrete = path
            .split('/')
            .map(|segment| if segment.starts_with('{') { "x" } else { segment })
            .collect::<Vec<_>>()
            .join("/");
        let answer = h.call(method, &concrete, None, None).await;
        let kind = answer.body["type"].as_str().unwrap_or("");
        assert!(
            !kind.ends_with("/no-route") && !kind.ends_with("/method-not-allowed"),
            "{op} is not routed: {}",
            answer.body
        );
    }
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_clock_exists_only_on_a_server_with_a_virtual_clock() {
    let h = Harness::memory().await;
    let plain = AppState::new(h.state.runtime().clone(), h.state.org().clone(), Catalogue::new(), Options::default());
    assert!(!operations(&serde_json::to_value(server::openapi(&plain)).unwrap()).contains("POST /api/v1/test/clock"));
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/test/clock")
        .header("authorization", format!("Bearer {}", h.token("a.advisor")))
        .header("content-type", "application/json")
        .body(Body::from(r#"{"advance":"PT1H"}"#))
        .unwrap();
    let response = server::app(plain).oneshot(req).await.unwrap();
    assert_eq!(response.status(), 404);
    h.cleanup().await;
}
