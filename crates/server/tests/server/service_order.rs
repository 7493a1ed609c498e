//! The standard pack's service order, from the appointment to the follow-up call, driven only
//! through the HTTP inbox of a listening server by the demo users of `sopflow serve --demo`,
//! each step by the user holding the task's role, on a virtual clock moved through the API.
//!
//! The walk books the appointment (parts and capacity checks, confirmation, the reminders a day
//! and an hour before), receives the customer, diagnoses, quotes with one part out of stock (the
//! parts purchase it starts is driven to the shelf, and its `parts_arrived` message resumes the
//! order), repairs with one additional item and one rework, cleans, settles and delivers, and
//! makes the follow-up call in calling hours. Between the steps it checks where each instance
//! stands and that users without the role (and the other dealer) do not see the task; at the
//! end, every instance's outcome, and that each audit trail verifies and names the demo user
//! who completed every task. `docs/walkthrough.md` is the same walk with `curl`.
//!
//! It does not cover the other branches of the processes: the scenarios under
//! `processes/standard/scenarios/` do, in the pure core.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, Server, serve};

const ORDER_NO: &str = "SO-3003";
const REQUEST_NO: &str = "PR-SO-3003";

/// The demo dealers' stock that `sopflow serve --demo` imports too: the brake pads `P-100` and
/// the hose `P-120` are on the shelf; the brake disc `P-130` is not, so the quotation starts a
/// parts purchase for it.
const STOCK: &str = server::demo::STOCK_CSV;

/// The instances of one service order: the order and the processes it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Of {
    Order,
    Appointment,
    PartsPurchase,
    FollowUp,
}

impl Of {
    const ALL: [Of; 4] = [Of::Order, Of::Appointment, Of::PartsPurchase, Of::FollowUp];

    fn process(self) -> &'static str {
        match self {
            Of::Order => "service_order",
            Of::Appointment => "appointment",
            Of::PartsPurchase => "parts_purchase",
            Of::FollowUp => "follow_up_call",
        }
    }

    fn expected_outcome(self) -> &'static str {
        match self {
            Of::Appointment => "arrived",
            Of::Order | Of::PartsPurchase | Of::FollowUp => "completed",
        }
    }
}

/// One task the walk completes: the instance, the step, the role whose demo user completes it
/// (`demo.<role>`), and the form.
struct Step {
    of: Of,
    step: &'static str,
    role: &'static str,
    form: Value,
}

fn step(of: Of, step: &'static str, role: &'static str, form: Value) -> Step {
    Step { of, step, role, form }
}

/// A task completion, as the audit trail must show it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Completion {
    step: String,
    user: String,
    role: String,
}

/// A service order being walked: the server, the ids of its instances once they exist, and
/// every completion made so far.
struct Walk<'a> {
    server: &'a Server,
    ids: BTreeMap<Of, String>,
    completed: BTreeMap<Of, Vec<Completion>>,
}

/// How long an asynchronous effect (an action's answer, a message between instances, a child
/// starting) may take before the walk gives up.
const PATIENCE: Duration = Duration::from_secs(60);

impl<'a> Walk<'a> {
    /// Starts the service order as the customer-service specialist who takes the booking.
    async fn start(server: &'a Server) -> Walk<'a> {
        let started = server
            .post(
                "/api/v1/instances",
                "demo.customer_service_specialist",
                json!({
                    "process": "service_order",
                    "business_key": ORDER_NO,
                    "data": {
                        "order_no": ORDER_NO, "channel": "appointment", "customer_name": "Lin Hui",
                        "phone": "13700000007", "plate_no": "浙A30003"
                    }
                }),
            )
            .await;
        let id = started["id"].as_str().unwrap().to_string();
        Walk { server, ids: BTreeMap::from([(Of::Order, id)]), completed: BTreeMap::new() }
    }

    /// The id of an instance of the order; a child is looked up among the order's children,
    /// waiting until it has been started. The parent names a child as soon as it asks for it;
    /// the child itself is started after that, from the outbox.
    async fn id(&mut self, of: Of) -> String {
        if let Some(id) = self.ids.get(&of) {
            return id.clone();
        }
        let order = self.ids[&Of::Order].clone();
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let view = self.server.get(&format!("/api/v1/instances/{order}"), "demo.service_advisor").await;
            let child = view["children"].as_array().unwrap().iter().find(|c| c["process"] == of.process());
            if let Some(id) = child.and_then(|c| c["id"].as_str()) {
                let path = format!("/api/v1/instances/{id}");
                let (status, _) = self.server.call(Method::GET, &path, "demo.service_advisor", None).await;
                if status == StatusCode::OK {
                    self.ids.insert(of, id.to_string());
                    return id.to_string();
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the order never started a {} instance; it stands at {}",
                of.process(),
                summary(&view)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn view(&mut self, of: Of) -> Value {
        let id = self.id(of).await;
        self.server.get(&format!("/api/v1/instances/{id}"), "demo.service_advisor").await
    }

    /// Waits until the instance stands at exactly these steps (in any order), and answers its
    /// view; fails with where it stands instead.
    async fn expect_position(&mut self, of: Of, steps: &[&str]) -> Value {
        let mut wanted: Vec<&str> = steps.to_vec();
        wanted.sort_unstable();
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let view = self.view(of).await;
            let mut position: Vec<&str> =
                view["position"].as_array().unwrap().iter().map(|p| p["step"].as_str().unwrap()).collect();
            position.sort_unstable();
            if position == wanted {
                return view;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the {} instance should stand at {wanted:?}; it stands at {}",
                of.process(),
                summary(&view)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the instance has ended, and checks its outcome.
    async fn expect_outcome(&mut self, of: Of, outcome: &str) -> Value {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let view = self.view(of).await;
            if view["status"] == "ended" {
                assert_eq!(view["outcome"], outcome, "the {} instance ended otherwise: {view}", of.process());
                return view;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the {} instance should have ended with {outcome}; it stands at {}",
                of.process(),
                summary(&view)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Moves the virtual clock to a moment (Asia/Shanghai local time, as the dealer sees it);
    /// the server answers once the timers due by then have fired.
    async fn set_clock(&self, at: &str) {
        let now = self.server.post("/api/v1/test/clock", "demo.admin", json!({ "set": at })).await;
        let expected: jiff::Timestamp = at.parse().unwrap();
        assert_eq!(now["now"], expected.to_string());
    }

    async fn complete_all(&mut self, steps: Vec<Step>) {
        for s in steps {
            self.complete(s).await;
        }
    }

    /// Finds the task at `step` in the inbox of the demo user holding `role`, checks that
    /// users without the role do not see it, then claims and completes it with the form as
    /// that user.
    async fn complete(&mut self, s: Step) {
        let user = format!("demo.{}", s.role);
        let instance = self.id(s.of).await;
        let task = self.find_task(&user, &instance, s.of, s.step).await;
        let roles: Vec<&str> = task["roles"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
        assert!(
            roles.contains(&s.role) || task["assignee"] == user.as_str(),
            "{user} got a task at {} meant for {roles:?}",
            s.step
        );
        self.expect_hidden_from_others(&task, &user).await;

        let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
        let (status, body) = self.server.call(Method::POST, &format!("{path}/claim"), &user, None).await;
        assert!(status.is_success(), "{user} cannot claim {} of {}: {status} {body}", s.step, s.of.process());
        let (status, body) =
            self.server.call(Method::POST, &format!("{path}/complete"), &user, Some(json!({ "form": s.form }))).await;
        assert!(status.is_success(), "{user} cannot complete {} of {}: {status} {body}", s.step, s.of.process());
        self.completed.entry(s.of).or_default().push(Completion {
            step: s.step.to_string(),
            user,
            role: s.role.to_string(),
        });
    }

    /// The user's task at a step of an instance, once it is in their inbox.
    async fn find_task(&mut self, user: &str, instance: &str, of: Of, step: &str) -> Value {
        let role = user.trim_start_matches("demo.");
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let page = self.server.get("/api/v1/tasks?counts=false&limit=200", user).await;
            let found =
                page["items"].as_array().unwrap().iter().find(|t| t["instance"] == instance && t["step"] == step);
            if let Some(task) = found {
                return task.clone();
            }
            // A task that is open but not for this user will not come: say so at once.
            let view = self.view(of).await;
            let open = view["tasks"].as_array().unwrap().iter().find(|t| t["step"] == step);
            if let Some(task) = open {
                let roles = &task["roles"];
                assert!(
                    roles.as_array().unwrap().iter().any(|r| r == role) || task["assignee"] == user,
                    "the task at {step} of the {} instance is for {roles} (assigned to {}), not for {user}",
                    of.process(),
                    task["assignee"]
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{user} never saw a task at {step} of the {} instance {instance}; it stands at {}",
                of.process(),
                summary(&view)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A user of the same dealer holding none of the task's roles neither sees the task nor can
    /// claim it (managers, who read their whole dealer, are not outsiders); nor does the holder
    /// of the same role at the other dealer. The outsider changes
    /// from step to step, so the walk tries most of the demo users.
    async fn expect_hidden_from_others(&self, task: &Value, user: &str) {
        let roles: Vec<&str> = task["roles"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
        let outsiders: Vec<&str> = self
            .server
            .users
            .iter()
            .filter(|u| u.organisation == "demo" && !u.admin && u.roles.iter().all(|r| !roles.contains(&r.as_str())))
            .filter(|u| u.roles.iter().all(|r| !server::DEFAULT_MANAGER_ROLES.contains(&r.as_str())))
            .map(|u| u.id.as_str())
            .filter(|id| task["assignee"] != *id)
            .collect();
        let n_done: usize = self.completed.values().map(Vec::len).sum();
        let outsider = outsiders[n_done % outsiders.len()];
        let other_dealer = user.replacen("demo.", "demo2.", 1);
        for someone in [outsider, other_dealer.as_str()] {
            let page = self.server.get("/api/v1/tasks?counts=false&limit=200", someone).await;
            assert!(
                page["items"].as_array().unwrap().iter().all(|t| t["id"] != task["id"]),
                "{someone} sees the task at {} meant for {roles:?}",
                task["step"]
            );
        }
        let path = format!("/api/v1/tasks/{}/claim", task["id"].as_str().unwrap());
        let (status, body) = self.server.call(Method::POST, &path, outsider, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{outsider} claimed a task meant for {roles:?}: {body}");
    }

    /// The readable trace of an instance, one string per line.
    async fn trace(&mut self, of: Of) -> Vec<String> {
        let id = self.id(of).await;
        let trace = self.server.get(&format!("/api/v1/instances/{id}/trace"), "demo.service_advisor").await;
        trace["lines"].as_array().unwrap().iter().map(|l| l["text"].as_str().unwrap().to_string()).collect()
    }
}

/// Where an instance stands, for a failure message: its status, steps and open tasks.
fn summary(view: &Value) -> String {
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let list = |field: &str, line: &dyn Fn(&Value) -> String| -> String {
        let items: Vec<String> = view[field].as_array().map(|a| a.iter().map(line).collect()).unwrap_or_default();
        if items.is_empty() { "none".to_string() } else { items.join("; ") }
    };
    format!(
        "status {} {}; steps: {}; open tasks: {}; incidents: {}",
        text(&view["status"]),
        text(&view["outcome"]),
        list("position", &|p| format!("{} (waiting for {})", text(&p["step"]), text(&p["waiting_for"]))),
        list("tasks", &|t| format!("{} for {} (assigned to {})", text(&t["step"]), t["roles"], text(&t["assignee"]))),
        list("incidents", &|i| format!("{} at {}", text(&i["message"]), text(&i["step"]))),
    )
}

/// Whether the trace shows a step timer fired, followed by the notice it sends.
fn fired(trace: &[String], timer: &str) -> bool {
    let fire = format!("({timer})");
    trace
        .windows(2)
        .any(|w| w[0].starts_with("fire timer") && w[0].ends_with(&fire) && w[1].starts_with("invoke notify"))
}

fn step_names(view: &Value, field: &str, key: &str) -> Vec<String> {
    let mut names: Vec<String> =
        view[field].as_array().unwrap().iter().map(|x| x[key].as_str().unwrap().to_string()).collect();
    names.sort();
    names
}

async fn a_service_order_from_appointment_to_follow_up(backend: Backend) {
    use Of::{Appointment, FollowUp, Order, PartsPurchase};

    let Some((h, server)) = serve(backend, Some(STOCK)).await else { return };
    let mut walk = Walk::start(&server).await;

    // Monday 2 March, 09:00: the customer phones to book a repair for Wednesday at 10:00.
    // The order waits for its appointment, which checks the pads are in stock (they are) and
    // the workshop has room on the day.
    walk.expect_position(Order, &["book_appointment"]).await;
    walk.complete_all(vec![
        step(
            Appointment,
            "capture",
            "customer_service_specialist",
            json!({
                "channel": "appointment_line", "owner_name": "Lin Hui", "phone": "13700000007", "model": "Zotye T600",
                "plate_no": "浙A30003", "request": "Squeal and vibration when braking", "is_maintenance": false,
                "preferred_at": "2026-03-04T10:00:00+08:00", "new_customer": false, "warranty_warning": false,
                "emergency": false, "part_no": "P-100", "part_quantity": 1
            }),
        ),
        step(
            Appointment,
            "estimate_repair",
            "customer_service_specialist",
            json!({
                "labour_hours": 2.5, "estimated_cost": 1380, "preliminary_opinion": "Worn pads, perhaps a warped disc",
                "off_peak_suggested": true, "customer_told": true
            }),
        ),
        step(
            Appointment,
            "check_capacity",
            "customer_service_specialist",
            json!({
                "slot_at": "2026-03-04T10:00:00+08:00", "day_full": false
            }),
        ),
        step(
            Appointment,
            "fix_slot",
            "service_advisor",
            json!({
                "appointment_at": "2026-03-04T10:00:00+08:00", "bay": "B3", "rough_cost": 1380,
                "advisor_name": "demo.service_advisor", "expected_duration": "3 hours", "needs_reconfirmed": true,
                "documents_explained": true
            }),
        ),
    ])
    .await;
    let trace = walk.trace(Appointment).await;
    assert!(trace.iter().any(|l| l.contains("invoke inventory.check")), "{trace:#?}");
    let confirmation = trace.iter().position(|l| l == "enter confirm_booking (action)");
    assert!(confirmation.is_some_and(|at| trace[at + 1].starts_with("invoke notify")), "{trace:#?}");

    // The confirmation is sent; parts, workshop and front desk prepare in parallel.
    walk.expect_position(Appointment, &["stage_parts", "reserve_bay", "update_board"]).await;
    walk.complete_all(vec![
        step(
            Appointment,
            "stage_parts",
            "warehouse_keeper",
            json!({
                "prepicked": true, "shelf": "S1", "parts_board_updated": true
            }),
        ),
        step(
            Appointment,
            "reserve_bay",
            "workshop_director",
            json!({
                "technician": "demo.technician", "bay": "B3", "workshop_board_updated": true
            }),
        ),
        step(Appointment, "update_board", "service_advisor", json!({})),
    ])
    .await;
    let view = walk.expect_position(Appointment, &["await_visit"]).await;
    let timers = step_names(&view, "timers", "def");
    for timer in ["reminder_day_before", "reminder_hour_before", "welcome_board"] {
        assert!(timers.iter().any(|t| t == timer), "{timer} is not armed: {timers:?}");
    }

    // Tuesday 10:00, a day before: the first reminder goes out and the welcome boards are due.
    walk.set_clock("2026-03-03T10:00:00+08:00").await;
    let trace = walk.trace(Appointment).await;
    assert!(fired(&trace, "reminder_day_before"), "{trace:#?}");
    assert!(!fired(&trace, "reminder_hour_before"), "{trace:#?}");
    walk.complete(step(Appointment, "welcome_board", "service_advisor", json!({}))).await;

    // Wednesday 09:00, an hour before: the second reminder, and the advisor confirms the
    // customer is coming. They arrive five minutes early.
    walk.set_clock("2026-03-04T09:00:00+08:00").await;
    walk.expect_position(Appointment, &["confirm_attendance"]).await;
    let trace = walk.trace(Appointment).await;
    assert!(fired(&trace, "reminder_hour_before"), "{trace:#?}");
    walk.complete(step(
        Appointment,
        "confirm_attendance",
        "service_advisor",
        json!({ "reached": true, "can_attend": true }),
    ))
    .await;
    walk.set_clock("2026-03-04T09:55:00+08:00").await;
    walk.complete(step(Appointment, "await_arrival", "service_advisor", json!({}))).await;
    walk.expect_outcome(Appointment, "arrived").await;

    // The service order proper: reception, walk-around, diagnosis and the repair plan, whose
    // stock check finds the pads but not the disc.
    walk.expect_position(Order, &["greet"]).await;
    walk.complete_all(vec![
        step(Order, "greet", "service_advisor", json!({})),
        step(
            Order,
            "reception",
            "service_advisor",
            json!({
                "identity_verified": true, "covers_fitted": 3, "first_visit": false,
                "fault_description": "Squeal and steering-wheel shake when braking from speed",
                "needs_repeated_back": true, "extra_requests": ["tyre_pressure"], "warranty_items_told": true,
                "warranty_warning": false, "safety_related": false, "intake_sheet_confirmed": true
            }),
        ),
        step(
            Order,
            "walkaround",
            "service_advisor",
            json!({
                "hood_opened": true, "plate_no": "浙A30003", "vin": "LSVAA4182E2130003", "engine_oil_ok": true,
                "coolant_ok": true,
                "body_damage": [{ "location": "front bumper", "description": "2 cm chip", "customer_confirmed": true }],
                "spare_tire_ok": true, "fuel_level": "half", "odometer_km": 61000, "electrics_ok": true,
                "valuables_declared": false
            }),
        ),
        step(
            Order,
            "diagnosis",
            "technician",
            json!({
                "symptoms": "Squeal and steering-wheel shake when braking", "reproduced": true,
                "test_drive_with_customer": true, "instruments_used": ["brake tester"],
                "customer_told_before_instruments": true, "test_results": "Front pads at 2 mm; left disc warped",
                "possible_causes": "Worn pads and a warped disc",
                "repair_direction": "Replace the front pads and the left front disc"
            }),
        ),
        step(
            Order,
            "plan_repair",
            "service_advisor",
            json!({
                "items": [
                    { "item": "Replace the front brake pads", "mandatory": true },
                    { "item": "Replace the left front brake disc", "mandatory": true }
                ],
                "parts": [{ "part_no": "P-100", "quantity": 1 }, { "part_no": "P-130", "quantity": 1 }],
                "estimated_hours": 1.5
            }),
        ),
    ])
    .await;
    let view = walk.expect_position(Order, &["quote"]).await;
    assert_eq!(view["data"]["shortage"], json!([{ "part_no": "P-130", "quantity": 1 }]), "{view}");
    walk.expect_position(PartsPurchase, &["collect_shortage"]).await;

    // The customer accepts the quotation with the disc's arrival date and signs; the order then
    // waits for the parts.
    walk.complete_all(vec![
        step(
            Order,
            "quote",
            "service_advisor",
            json!({
                "lines": [
                    {
                        "item": "Replace the front brake pads",
                        "parts": [{ "part_no": "P-100", "quantity": 1, "unit_price": 380 }],
                        "parts_price": 380, "consumables_fee": 20, "labour_fee": 280, "price": 680,
                        "mandatory": true, "customer_decision": "accepted"
                    },
                    {
                        "item": "Replace the left front brake disc",
                        "parts": [{ "part_no": "P-130", "quantity": 1, "unit_price": 520 }],
                        "parts_price": 520, "consumables_fee": 0, "labour_fee": 180, "price": 700,
                        "mandatory": true, "customer_decision": "accepted"
                    }
                ],
                "total": 1380, "warranty_claim": false, "promised_completion_at": "2026-03-05T17:00:00+08:00",
                "explained": true, "customer_accepts": true, "parts_eta": "2026-03-05T12:00:00+08:00"
            }),
        ),
        step(
            Order,
            "authorise",
            "service_advisor",
            json!({
                "customer_signed": true, "signed_at": "2026-03-04T10:40:00+08:00", "waits_in_lounge": false
            }),
        ),
    ])
    .await;
    let view = walk.expect_position(Order, &["wait_for_parts"]).await;
    assert_eq!(view["position"][0]["waiting_for"], format!("message parts_arrived ({REQUEST_NO})"), "{view}");

    // The parts department buys the disc: plan, review, approval, purchase, and in the afternoon
    // the supplier's delivery is received, inspected, booked in and shelved.
    let lines = json!([{ "part_no": "P-130", "quantity": 1 }]);
    walk.complete_all(vec![
        step(
            PartsPurchase,
            "collect_shortage",
            "warehouse_keeper",
            json!({
                "lines": [{ "part_no": "P-130", "quantity": 1, "source": "purchase_request" }],
                "analysis": "Left front disc for SO-3003"
            }),
        ),
        step(PartsPurchase, "compile_plan", "warehouse_keeper", json!({ "plan_type": "temporary", "lines": lines })),
        step(PartsPurchase, "review", "parts_manager", json!({ "verdict": "approve" })),
        step(PartsPurchase, "approve_plan", "after_sales_manager", json!({ "verdict": "approve" })),
        step(
            PartsPurchase,
            "issue_plan_sheet",
            "warehouse_keeper",
            json!({
                "plan_sheet_no": "PS-0304", "copy_to_planner": true, "copy_to_buyer": true, "copy_to_finance": true
            }),
        ),
        step(
            PartsPurchase,
            "purchase",
            "parts_buyer",
            json!({
                "location": "local", "payment": "credit", "delivery": "supplier_delivery", "supplier": "Hengtong Parts"
            }),
        ),
    ])
    .await;
    walk.set_clock("2026-03-04T15:00:00+08:00").await;
    walk.complete_all(vec![
        step(
            PartsPurchase,
            "receive_delivery",
            "warehouse_keeper",
            json!({ "goods_receipt_no": "GR-0304", "lines": lines }),
        ),
        step(
            PartsPurchase,
            "second_inspection",
            "warehouse_keeper",
            json!({
                "actual_receipt_list_no": "AR-0304", "lines": lines, "ok": true
            }),
        ),
        step(PartsPurchase, "countersign_buyer", "parts_buyer", json!({ "signed": true })),
        step(
            PartsPurchase,
            "inbound_by_keeper",
            "warehouse_keeper",
            json!({
                "inbound_slip_no": "IN-0304", "lines": lines,
                "distribution": ["warehouse_keeper", "parts_buyer", "finance"], "invoice_received": true
            }),
        ),
    ])
    .await;
    walk.expect_position(Order, &["wait_for_parts"]).await;
    walk.complete(step(
        PartsPurchase,
        "shelve",
        "warehouse_keeper",
        json!({
            "third_inspection_ok": true,
            "locations": [{ "part_no": "P-130", "warehouse": "1", "rack": "A1", "level": "1", "slot": "02" }],
            "bin_card_updated": true
        }),
    ))
    .await;
    walk.expect_outcome(PartsPurchase, "completed").await;

    // The arrival message resumes the order: dispatch and pre-picking, then the repair, where
    // the technician finds a cracked hose the customer approves by phone.
    let view = walk.expect_position(Order, &["dispatch", "prepick"]).await;
    assert_eq!(view["data"]["wait_for_parts"]["request_no"], REQUEST_NO, "{view}");
    let repaired = json!({
        "status": "completed",
        "items_done": ["Front brake pads replaced", "Left front disc replaced", "Left front brake hose replaced"],
        "work_record": "Pads, disc and hose replaced; brakes bled", "old_parts": "bagged_for_customer",
        "order_signed": true, "photos_with_consent": true
    });
    walk.complete_all(vec![
        step(
            Order,
            "dispatch",
            "workshop_director",
            json!({
                "technician": "demo.technician", "bay": "B3", "briefing_given": true
            }),
        ),
        step(Order, "prepick", "warehouse_keeper", json!({ "prepicked": true, "basket": "K3" })),
        step(Order, "start_repair", "technician", json!({})),
        step(
            Order,
            "repair",
            "technician",
            json!({
                "status": "additional_item", "new_fault": "Left front brake hose cracked"
            }),
        ),
        step(
            Order,
            "additional_authorisation",
            "service_advisor",
            json!({
                "fault_confirmed": true,
                "items": [{
                    "item": "Replace the left front brake hose",
                    "parts": [{ "part_no": "P-120", "quantity": 1, "unit_price": 120 }],
                    "parts_price": 120, "consumables_fee": 10, "labour_fee": 80, "price": 210,
                    "customer_decision": "approved"
                }],
                "amount": 210, "explained": true, "customer_signed": true,
                "new_promised_at": "2026-03-05T17:30:00+08:00"
            }),
        ),
        step(
            Order,
            "replan",
            "workshop_director",
            json!({ "technician": "demo.technician", "on_time_promised": true }),
        ),
        step(Order, "repair", "technician", repaired.clone()),
        // The self-check finds a bolt not torqued: back to the repair, once.
        step(
            Order,
            "qc_self",
            "technician",
            json!({
                "passed": false, "record": "Checked", "findings": "Left caliper bolt not torqued"
            }),
        ),
    ])
    .await;
    let view = walk.expect_position(Order, &["repair"]).await;
    assert_eq!(view["data"]["rework_count"], 1, "{view}");
    assert_eq!(view["data"]["additional_rounds"], 1, "{view}");
    assert_eq!(view["data"]["promised_at"], "2026-03-05T09:30:00Z", "{view}");

    // Rework, the three inspections, cleaning, delivery, the old parts, settlement, payment and
    // the hand-over, where the customer asks to be called tomorrow at 15:00.
    let passed = json!({ "passed": true, "record": "Every item checked" });
    walk.complete_all(vec![
        step(Order, "repair", "technician", repaired),
        step(Order, "qc_self", "technician", passed.clone()),
        step(Order, "qc_team", "team_leader", passed),
        step(
            Order,
            "qc_final_by_director",
            "technical_director",
            json!({
                "passed": true, "checked_against_order": true, "function_test_ok": true, "appearance_ok": true,
                "road_test": "done", "fault_fixed": true, "fitting_secure": true, "clean": true
            }),
        ),
        step(Order, "cleaning", "technician", json!({ "washed": true, "items_restored": true })),
        step(
            Order,
            "clean_check",
            "service_advisor",
            json!({
                "wheels_ok": true, "interior_ok": true, "exterior_ok": true, "clean_ok": true,
                "documents_ready": ["work_order", "settlement_statement", "old_parts", "keys", "vehicle_license"],
                "charges_compared": true, "parked_nose_out": true
            }),
        ),
        step(
            Order,
            "deliver",
            "service_advisor",
            json!({
                "customer_notified": true, "items_explained": true, "functions_demonstrated": true,
                "free_service_results_shown": true, "old_parts": "shown_customer_leaves", "covers_removed": true
            }),
        ),
        step(
            Order,
            "dispose_old_parts",
            "old_parts_custodian",
            json!({
                "received": true, "ledger_entry": "OP-0304-03: pads, disc and hose of SO-3003"
            }),
        ),
        step(
            Order,
            "settlement",
            "service_advisor",
            json!({
                "statement_printed": true, "labour_total": 540, "parts_total": 1020, "actual_total": 1590,
                "difference_explained": "Brake hose added with your approval: 210 more", "customer_signed": true
            }),
        ),
        step(Order, "payment", "cashier", json!({ "method": "card", "amount": 1590, "charges_explained": true })),
        step(
            Order,
            "handover",
            "service_advisor",
            json!({
                "valuables_returned": true,
                "documents": ["repair_list", "invoice", "parts_warranty_card", "maintenance_advice"],
                "warranty_explained": true, "next_maintenance_date": "2026-09-01", "next_maintenance_km": 70000,
                "onsite_rating": 5, "farewell": true, "preferred_followup_at": "2026-03-05T15:00:00+08:00"
            }),
        ),
    ])
    .await;
    walk.expect_position(Order, &["follow_up"]).await;
    walk.expect_position(FollowUp, &["wait_first_day"]).await;

    // Thursday 15:00, in calling hours and within the 72-hour window: the follow-up call.
    walk.set_clock("2026-03-05T15:00:00+08:00").await;
    walk.complete(step(
        FollowUp,
        "call_customer",
        "customer_service_specialist",
        json!({
            "result": "reached", "introduced": true, "last_service_recapped": true,
            "repair_quality_satisfaction": 5, "service_satisfaction": 5, "opinions_confirmed": true,
            "issues_found": false, "complaint": false, "next_maintenance_reminded": true
        }),
    ))
    .await;

    // Every instance ended as it should; each audit trail verifies and shows every completion,
    // in order, by the demo user and in the role that did it.
    for of in Of::ALL {
        walk.expect_outcome(of, of.expected_outcome()).await;
        let id = walk.id(of).await;
        let audit = server.get(&format!("/api/v1/instances/{id}/audit"), "hq.viewer").await;
        assert_eq!(
            audit["verified"],
            true,
            "the audit trail of the {} instance does not verify: {audit}",
            of.process()
        );
        let recorded: Vec<Completion> = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "task_completed")
            .map(|e| Completion {
                step: e["step"].as_str().unwrap_or_default().to_string(),
                user: e["actor"]["id"].as_str().unwrap_or_default().to_string(),
                role: e["actor"]["role"].as_str().unwrap_or_default().to_string(),
            })
            .collect();
        assert_eq!(recorded, walk.completed[&of], "the audit trail of the {} instance", of.process());
    }
    let view = walk.view(Order).await;
    assert_eq!(view["data"]["rework_count"], 1, "{view}");
    let report = h.state.runtime().verify_audit().await.unwrap();
    assert!(report.broken.is_empty(), "{:?}", report.broken);
    assert!(report.chains >= 4, "{report:?}");

    server.stop().await;
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_service_order_from_appointment_to_follow_up_over_http() {
    a_service_order_from_appointment_to_follow_up(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_service_order_from_appointment_to_follow_up_over_http() {
    a_service_order_from_appointment_to_follow_up(Backend::Postgres).await;
}
