//! Managers' reads with two dealers: the manager scope of the inbox, the workload with its SLA
//! breaches, the KPIs computed from runs of the runtime, and the graphs as SVG; each checked
//! for who may read what.

use serde_json::{Value, json};

use crate::harness::{Backend, Harness, SERVICE_VISIT, compile, reception_form};

/// A follow-up call reduced to what the KPIs read: it ends `completed` when the customer was
/// reached, `failed` with a `failure_reason` otherwise.
const FOLLOW_UP_CALL: &str = r#"
process: follow_up_call
version: 1
title: { zh: 回訪, en: Follow-up call }
roles: [service_advisor]
data:
  type: object
  properties:
    failure_reason: { type: string }
start: call_customer
steps:
  call_customer:
    type: task
    title: { zh: 電話回訪, en: Call the customer }
    roles: [service_advisor]
    form:
      type: object
      properties:
        reached: { type: boolean }
        reason: { type: string }
      required: [reached]
    set:
      failure_reason: '=if call_customer.reached { "" } else { call_customer.reason }'
    next: result
  result:
    type: decision
    branches:
      - { when: call_customer.reached, next: completed }
    default: failed
  completed:
    type: end
    outcome: completed
  failed:
    type: end
    outcome: failed
"#;

async fn harness() -> Harness {
    Harness::open(
        Backend::Memory,
        vec![compile(SERVICE_VISIT), compile(FOLLOW_UP_CALL)],
        server::Catalogue::new(),
        None,
    )
    .await
    .unwrap()
}

async fn advance(h: &Harness, by: &str) {
    h.call("POST", "/api/v1/test/clock", Some("a.admin"), Some(json!({ "advance": by }))).await.ok();
}

async fn complete(h: &Harness, user: &str, task: &str, form: Value) -> Value {
    h.call("POST", &format!("/api/v1/tasks/{task}/claim"), Some(user), None).await.ok();
    h.call("POST", &format!("/api/v1/tasks/{task}/complete"), Some(user), Some(json!({ "form": form })))
        .await
        .ok()
        .clone()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_reads_every_task_of_their_dealer_but_acts_only_in_their_roles() {
    let h = harness().await;
    let (instance, reception) = h.start_visit("a.advisor", "粤A10001").await;
    let after = complete(&h, "a.advisor", &reception, reception_form()["form"].clone()).await;
    let repair = after["tasks"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(after["tasks"][0]["roles"], json!(["technician"]));

    // The technician's task is visible to the manager, with the names of its roles...
    let task = h.call("GET", &format!("/api/v1/tasks/{repair}"), Some("a.manager"), None).await;
    assert_eq!(task.ok()["can_act"], json!(false));
    assert_eq!(task.body["task"]["role_names"], json!([{ "id": "technician", "zh": "維修技師", "en": "Technician" }]));
    assert!(task.body["now"].as_str().is_some_and(|n| n.starts_with("2026-")), "{}", task.body);
    // ...but not theirs to act on.
    h.call("POST", &format!("/api/v1/tasks/{repair}/claim"), Some("a.manager"), None).await.problem(403, "forbidden");
    // Their own inbox stays their own; the dealer scope lists it.
    assert!(ids(h.call("GET", "/api/v1/tasks", Some("a.manager"), None).await.ok()).is_empty());
    let dealer = h.call("GET", "/api/v1/tasks?scope=dealer", Some("a.manager"), None).await;
    assert_eq!(ids(dealer.ok()), vec![repair.clone()]);
    assert!(dealer.body["now"].is_string());
    // The instance carries the server's clock too.
    let inst = h.call("GET", &format!("/api/v1/instances/{instance}"), Some("a.manager"), None).await;
    assert_eq!(inst.ok()["now"], dealer.body["now"]);

    // Another dealer's manager sees nothing of it, and staff may not take the dealer scope.
    h.call("GET", &format!("/api/v1/tasks/{repair}"), Some("b.manager"), None).await.problem(404, "not-found");
    h.call("POST", &format!("/api/v1/tasks/{repair}/claim"), Some("b.manager"), None).await.problem(404, "not-found");
    assert!(ids(h.call("GET", "/api/v1/tasks?scope=dealer", Some("b.manager"), None).await.ok()).is_empty());
    h.call("GET", "/api/v1/tasks?scope=dealer&dealer=a", Some("b.manager"), None).await.problem(404, "not-found");
    h.call("GET", "/api/v1/tasks?scope=dealer", Some("a.tech"), None).await.problem(403, "forbidden");
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workload_counts_open_work_by_role_and_person_and_lists_breaches_oldest_first() {
    let h = harness().await;
    let (_, first) = h.start_visit("a.advisor", "粤A20001").await;
    advance(&h, "PT10M").await;
    let (_, second) = h.start_visit("a.advisor", "粤A20002").await;
    let (_, third) = h.start_visit("a.advisor", "粤A20003").await;
    h.start_visit("b.advisor", "粤B20001").await;
    h.call("POST", &format!("/api/v1/tasks/{third}/claim"), Some("a.advisor2"), None).await.ok();
    // Receptions are due 2 hours after they open: at 1h55m past the first, it is due soon
    // (within the hour) and so are the others; at 2h05m the first is overdue and the others
    // are due in 5 minutes; at 2h15m all are overdue.
    advance(&h, "PT1H45M").await;
    let w = h.call("GET", "/api/v1/workload", Some("a.manager"), None).await;
    let w = w.ok();
    assert_eq!(w["dealer"], "a");
    assert_eq!(w["total"], json!({ "open": 3, "overdue": 0, "due_soon": 3 }));
    assert_eq!(
        w["by_role"],
        json!([{ "role": "service_advisor", "title": { "zh": "服務顧問", "en": "Service advisor" }, "open": 2, "overdue": 0, "due_soon": 2 }])
    );
    assert_eq!(
        w["by_person"],
        json!([{ "user": "a.advisor2", "name": "a.advisor2", "open": 1, "overdue": 0, "due_soon": 1 }])
    );
    assert_eq!(w["breaches"], json!([]));

    advance(&h, "PT10M").await;
    let w = h.call("GET", "/api/v1/workload?due_soon_minutes=5", Some("a.admin"), None).await;
    let w = w.ok();
    assert_eq!(w["total"], json!({ "open": 3, "overdue": 1, "due_soon": 0 }));
    let breaches: Vec<&str> = w["breaches"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(breaches, vec![first.as_str()]);
    assert_eq!(w["breaches"][0]["sla"], "overdue");
    advance(&h, "PT10M").await;
    let w = h.call("GET", "/api/v1/workload", Some("a.manager"), None).await;
    let breaches: Vec<&str> =
        w.ok()["breaches"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(breaches, vec![first.as_str(), second.as_str(), third.as_str()]);

    // Dealer b's manager sees only b; naming a is as if it did not exist; staff may not read it.
    let b = h.call("GET", "/api/v1/workload", Some("b.manager"), None).await;
    assert_eq!(b.ok()["total"]["open"], 1);
    h.call("GET", "/api/v1/workload?dealer=a", Some("b.manager"), None).await.problem(404, "not-found");
    h.call("GET", "/api/v1/workload?dealer=a", Some("b.admin"), None).await.problem(404, "not-found");
    h.call("GET", "/api/v1/workload", Some("a.advisor"), None).await.problem(403, "forbidden");
    h.call("GET", "/api/v1/workload?due_soon_minutes=0", Some("a.manager"), None).await.problem(400, "bad-request");

    // Headquarters: every dealer summarised, or one dealer in full.
    let all = h.call("GET", "/api/v1/workload", Some("hq.viewer"), None).await;
    let all = all.ok();
    assert_eq!(all["dealer"], Value::Null);
    assert_eq!(
        all["by_dealer"],
        json!([
            { "dealer": "a", "open": 3, "overdue": 3, "due_soon": 0 },
            { "dealer": "b", "open": 1, "overdue": 1, "due_soon": 0 },
        ])
    );
    assert_eq!(all["breaches"].as_array().unwrap().len(), 4);
    let one = h.call("GET", "/api/v1/workload?dealer=b", Some("hq.viewer"), None).await;
    assert_eq!(one.ok()["by_role"][0]["open"], 1);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpis_come_from_the_runs_the_engine_recorded() {
    let h = harness().await;
    // Two receptions: one done on time, one after its 2-hour SLA.
    let (_, on_time) = h.start_visit("a.advisor", "粤A30001").await;
    let (_, late) = h.start_visit("a.advisor", "粤A30002").await;
    complete(&h, "a.advisor", &on_time, reception_form()["form"].clone()).await;
    advance(&h, "PT3H").await;
    complete(&h, "a.advisor", &late, reception_form()["form"].clone()).await;
    // Four follow-up calls: three reach the customer, one fails for a wrong number.
    for (n, reached) in [true, true, false, true].into_iter().enumerate() {
        let started = h
            .call(
                "POST",
                "/api/v1/instances",
                Some("a.advisor"),
                Some(json!({ "process": "follow_up_call", "data": {}, "business_key": format!("call-{n}") })),
            )
            .await;
        let task = started.ok()["tasks"][0]["id"].as_str().unwrap().to_string();
        let form =
            if reached { json!({ "reached": true }) } else { json!({ "reached": false, "reason": "wrong_number" }) };
        let ended = complete(&h, "a.advisor", &task, form).await;
        assert_eq!(ended["status"], "ended", "{ended}");
    }
    // The first repair (due 4 hours after the first reception) is overdue by now.
    advance(&h, "PT2H").await;

    let k = h.call("GET", "/api/v1/kpis?from=2026-01-01&to=2027-01-01", Some("a.manager"), None).await;
    let k = k.ok();
    assert_eq!(k["dealer"], "a");
    assert_eq!(k["followup_success_rate"]["numerator"], 3);
    assert_eq!(k["followup_success_rate"]["denominator"], 4);
    assert_eq!(k["followup_success_rate"]["value"], 0.75);
    assert_eq!(k["followup_success_rate"]["target"], json!({ "kind": "at_least", "value": 0.8 }));
    assert_eq!(k["followup_success_rate"]["met"], false);
    assert_eq!(k["followup_failure_reasons"], json!([{ "key": "wrong_number", "count": 1 }]));
    let reception = k["sla"].as_array().unwrap().iter().find(|s| s["step"] == "reception").unwrap();
    assert_eq!(reception["process"], "service_visit");
    assert_eq!(reception["on_time"]["numerator"], 1);
    assert_eq!(reception["on_time"]["denominator"], 2);
    assert_eq!(k["overdue_by_role"], json!([{ "key": "technician", "count": 1 }]));

    // The same period for dealer b, and for headquarters across every dealer.
    let b = h.call("GET", "/api/v1/kpis?from=2026-01-01&to=2027-01-01", Some("b.manager"), None).await;
    assert_eq!(b.ok()["followup_success_rate"]["denominator"], 0);
    let hq = h.call("GET", "/api/v1/kpis?from=2026-01-01&to=2027-01-01", Some("hq.viewer"), None).await;
    assert_eq!(hq.ok()["dealer"], Value::Null);
    assert_eq!(hq.body["followup_success_rate"]["denominator"], 4);
    let hq_a = h.call("GET", "/api/v1/kpis?dealer=a&from=2026-01-01&to=2027-01-01", Some("hq.admin"), None).await;
    assert_eq!(hq_a.ok()["followup_success_rate"], k["followup_success_rate"]);

    // Who may not read them, and periods that are not periods.
    h.call("GET", "/api/v1/kpis?dealer=a", Some("b.manager"), None).await.problem(404, "not-found");
    h.call("GET", "/api/v1/kpis", Some("a.advisor"), None).await.problem(403, "forbidden");
    for bad in ["from=yesterday", "to=2026-13-01", "from=2026-02-01&to=2026-01-01", "from=2020-01-01&to=2026-01-01"] {
        h.call("GET", &format!("/api/v1/kpis?{bad}"), Some("a.manager"), None).await.problem(400, "bad-request");
    }
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphs_answer_svg_when_asked_with_the_current_step_highlighted() {
    let h = harness().await;
    let (instance, reception) = h.start_visit("a.advisor", "粤A40001").await;
    complete(&h, "a.advisor", &reception, reception_form()["form"].clone()).await;
    let svg_request = |path: String, user: &str| {
        axum::http::Request::builder()
            .uri(path)
            .header("authorization", format!("Bearer {}", h.token(user)))
            .header("accept", "image/svg+xml, application/json;q=0.5")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let res = tower::ServiceExt::oneshot(
        h.app.clone(),
        svg_request(format!("/api/v1/instances/{instance}/graph"), "a.advisor"),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    let body = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
    let svg = String::from_utf8(body.to_vec()).unwrap();
    assert!(svg.starts_with("<svg"), "{svg}");
    let step_group = |id: &str| {
        let at = svg.find(&format!("data-step=\"{id}\"")).unwrap_or_else(|| panic!("no step {id}"));
        svg[..at].rsplit("<g").next().unwrap().to_string()
    };
    assert!(step_group("repair").contains("current"), "{}", step_group("repair"));
    assert!(step_group("reception").contains("visited"), "{}", step_group("reception"));
    assert!(!step_group("wait_parts").contains("current"));

    // Without the header, the Mermaid JSON as before; the process graph answers SVG too.
    let json = h.call("GET", &format!("/api/v1/instances/{instance}/graph"), Some("a.advisor"), None).await;
    assert!(json.ok()["mermaid"].as_str().unwrap().contains("repair"));
    let res = tower::ServiceExt::oneshot(
        h.app.clone(),
        svg_request("/api/v1/processes/service_visit/graph".into(), "a.advisor"),
    )
    .await
    .unwrap();
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    // Another dealer still gets 404, whatever it accepts.
    let res = tower::ServiceExt::oneshot(
        h.app.clone(),
        svg_request(format!("/api/v1/instances/{instance}/graph"), "b.manager"),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 404);
    h.cleanup().await;
}
