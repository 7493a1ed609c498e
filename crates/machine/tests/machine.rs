//! Tests of the execution core through its boundary: a process (written inline as YAML), an
//! instance, an input and a time in; a transition or a rejection out.

use jiff::Timestamp;
use machine::{Actor, Effect, Event, IncidentKind, Input, Instance, Rejection, Start, Transition, User};
use serde_json::{Value, json};

/// Compiles a process written in YAML, with every role it names in the catalogue.
fn process(yaml: &str) -> model::Process {
    let (node, _) = model::yaml::parse(yaml, &Default::default()).unwrap();
    let json = node.to_json();
    let roles: serde_json::Map<String, Value> = json["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r.as_str().unwrap().to_string(), json!({ "zh": "角色", "en": "Role" })))
        .collect();
    let doc = json!({ "process": json, "forms": {}, "calendars": {}, "roles": roles, "pack": null });
    model::compile_document(&doc, &model::Options::default()).unwrap_or_else(|d| panic!("{d:?}"))
}

fn t0() -> Timestamp {
    "2026-03-02T01:00:00Z".parse().unwrap()
}

fn start(p: &model::Process, data: Value) -> Transition {
    let start = Start {
        id: "i1".into(),
        dealer: "d1".into(),
        business_key: None,
        data: data.as_object().cloned().unwrap_or_default(),
        by: Actor::System,
        parent: None,
    };
    machine::start(p, start, t0()).unwrap()
}

fn task_at<'a>(i: &'a Instance, step: &str) -> &'a str {
    &i.tasks.iter().find(|t| t.step == step).unwrap_or_else(|| panic!("no task at {step}: {:?}", i.tasks)).id
}

fn complete(p: &model::Process, i: &Instance, step: &str, form: Value) -> Transition {
    let input = Input::Complete { task: task_at(i, step).into(), by: User::new("u1", ["clerk"]), form };
    machine::step(p, i, &input, t0()).unwrap()
}

const GUARDED: &str = r#"
process: guarded
version: 1
title: { zh: 守衛, en: Guarded }
roles: [clerk]
data: { type: object, properties: { n: { type: integer } } }
start: check
steps:
  check:
    type: decision
    branches:
      - when: GUARD
        next: yes
    default: no
  yes: { type: end }
  no: { type: end, outcome: rejected }
"#;

fn incident_message(t: &Transition) -> String {
    t.instance.incidents.first().map(|i| i.message.clone()).unwrap_or_default()
}

#[test]
fn a_guard_that_loops_forever_is_stopped_and_raises_an_incident() {
    let p = process(&GUARDED.replace("GUARD", "loop { } ; true"));
    let t = start(&p, json!({}));
    assert_eq!(t.instance.incidents.len(), 1);
    assert_eq!(t.instance.incidents[0].kind, IncidentKind::Expression);
    assert!(incident_message(&t).contains("operations"), "{}", incident_message(&t));
    assert!(!t.instance.is_ended());
}

#[test]
fn a_guard_that_builds_a_huge_string_is_stopped_and_raises_an_incident() {
    let p = process(&GUARDED.replace("GUARD", r#"let s = "0123456789"; loop { s += s; } ; true"#));
    let t = start(&p, json!({}));
    let msg = incident_message(&t);
    assert!(msg.contains("text") || msg.contains("string"), "{msg}");
}

#[test]
fn a_guard_that_gives_no_boolean_is_an_incident_not_a_silent_false() {
    let p = process(&GUARDED.replace("GUARD", "n + 1"));
    let t = start(&p, json!({ "n": 1 }));
    assert_eq!(t.instance.incidents.len(), 1, "{:?}", t.events);
    assert!(!t.instance.is_ended());
}

#[test]
fn an_incident_can_be_retried_and_skipped() {
    let p = process(&GUARDED.replace("GUARD", "loop { } ; true"));
    let t = start(&p, json!({}));
    let admin = User::new("admin", ["clerk"]);
    let id = t.instance.incidents[0].id.clone();
    let retried =
        machine::step(&p, &t.instance, &Input::RetryIncident { incident: id, by: admin.clone() }, t0()).unwrap();
    assert_eq!(retried.instance.incidents.len(), 1, "the guard fails again on retry");
    let id = retried.instance.incidents[0].id.clone();
    let skipped = machine::step(&p, &retried.instance, &Input::SkipIncident { incident: id, by: admin }, t0()).unwrap();
    assert!(skipped.instance.is_ended());
    assert!(matches!(&skipped.instance.status, machine::Status::Ended { outcome, .. } if outcome == "rejected"));
}

const FORM: &str = r#"
process: formal
version: 1
title: { zh: 表單, en: Form }
roles: [clerk]
data: { type: object, properties: { n: { type: integer }, label: { type: string } } }
start: fill
steps:
  fill:
    type: task
    title: { zh: 填, en: Fill }
    roles: [clerk]
    form:
      type: object
      properties:
        vin: { type: string, minLength: 17 }
        km: { type: integer }
      required: [vin, km]
    set:
      n: =fill.km
      label: =fill.km
    next: done
  done: { type: end }
"#;

#[test]
fn a_form_is_refused_with_every_field_error_and_nothing_changes() {
    let p = process(FORM);
    let t = start(&p, json!({}));
    let input = Input::Complete {
        task: task_at(&t.instance, "fill").into(),
        by: User::new("u1", ["clerk"]),
        form: json!({ "vin": "SHORT", "colour": "red" }),
    };
    match machine::step(&p, &t.instance, &input, t0()) {
        Err(Rejection::InvalidForm(errors)) => {
            let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
            assert_eq!(paths, vec!["/colour", "/km", "/vin"]);
        }
        other => panic!("expected an invalid form, got {other:?}"),
    }
}

#[test]
fn an_output_mapping_that_breaks_the_data_schema_raises_a_data_incident() {
    let p = process(FORM);
    let t = start(&p, json!({}));
    let done = complete(&p, &t.instance, "fill", json!({ "vin": "LSVAA4182E2123456", "km": 5 }));
    let incident = &done.instance.incidents[0];
    assert_eq!(incident.kind, IncidentKind::Data);
    assert!(incident.message.contains("/label"), "{}", incident.message);
}

#[test]
fn an_undeclared_start_variable_is_refused() {
    let p = process(FORM);
    let start = Start {
        id: "i1".into(),
        dealer: "d1".into(),
        business_key: None,
        data: json!({ "colour": "red", "n": "five" }).as_object().cloned().unwrap(),
        by: Actor::System,
        parent: None,
    };
    match machine::start(&p, start, t0()) {
        Err(Rejection::InvalidData(errors)) => {
            let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
            assert_eq!(paths, vec!["/colour", "/n"]);
        }
        other => panic!("expected invalid data, got {other:?}"),
    }
}

const PARALLEL: &str = r#"
process: parallel
version: 1
title: { zh: 並行, en: Parallel }
roles: [clerk]
data: { type: object }
start: split
steps:
  split:
    type: parallel
    branches: [a, inner, c]
  a: { type: task, title: { zh: 甲, en: A }, roles: [clerk], next: joined }
  inner:
    type: parallel
    branches: [b1, b2]
  b1: { type: task, title: { zh: 乙一, en: B1 }, roles: [clerk], next: inner_joined }
  b2: { type: task, title: { zh: 乙二, en: B2 }, roles: [clerk], next: inner_joined }
  inner_joined: { type: join, of: inner, next: joined }
  c: { type: task, title: { zh: 丙, en: C }, roles: [clerk], next: joined }
  joined:
    type: join
    of: split
    wait_for: 2
    next: done
  done: { type: end }
"#;

#[test]
fn two_of_three_completes_the_join_and_cancels_the_rest_including_nested_branches() {
    let p = process(PARALLEL);
    let t = start(&p, json!({}));
    assert_eq!(t.instance.tasks.len(), 4);
    let t = complete(&p, &t.instance, "b1", json!({}));
    let t = complete(&p, &t.instance, "a", json!({}));
    assert_eq!(t.instance.tasks.len(), 2, "b2 and c still open: the inner split has not arrived");
    let t = complete(&p, &t.instance, "b2", json!({}));
    assert!(t.instance.is_ended(), "{:?}", t.events);
    assert!(t.effects.iter().any(|e| matches!(e, Effect::TaskClosed { completed: false, .. })), "c is cancelled");
    assert!(t.instance.joins.is_empty());
}

const TIMED: &str = r#"
process: timed
version: 1
title: { zh: 定時, en: Timed }
roles: [clerk]
data: { type: object, properties: { key: { type: string } } }
start: work
steps:
  work:
    type: task
    title: { zh: 工作, en: Work }
    roles: [clerk]
    due: PT1H
    timers:
      - { id: give_up, after: PT2H, goto: waiting }
    next: waiting
  waiting:
    type: receive
    message: go
    key: =key
    next: done
  done: { type: end }
"#;

#[test]
fn an_interrupting_timer_cancels_the_task_and_its_timers() {
    let p = process(TIMED);
    let t = start(&p, json!({ "key": "K1" }));
    let give_up = t
        .instance
        .timers
        .iter()
        .find(|x| matches!(&x.kind, machine::TimerKind::Step { def, .. } if def == "give_up"))
        .unwrap();
    let later = t0() + jiff::SignedDuration::from_hours(2);
    let fired = machine::step(&p, &t.instance, &Input::TimerFired { timer: give_up.id.clone() }, later).unwrap();
    assert!(fired.instance.tasks.is_empty());
    assert!(fired.instance.timers.is_empty(), "the due timer went with the task: {:?}", fired.instance.timers);
    assert!(
        fired
            .effects
            .iter()
            .any(|e| matches!(e, Effect::Subscribe { name, key } if name == "go" && key.as_deref() == Some("K1")))
    );
}

#[test]
fn a_message_with_another_key_is_refused_and_the_right_one_resumes() {
    let p = process(TIMED);
    let t = start(&p, json!({ "key": "K1" }));
    let t = complete(&p, &t.instance, "work", json!({}));
    let wrong = Input::Message { name: "go".into(), key: Some("K2".into()), payload: json!({}) };
    assert!(matches!(machine::step(&p, &t.instance, &wrong, t0()), Err(Rejection::NotWaiting(_))));
    let right = Input::Message { name: "go".into(), key: Some("K1".into()), payload: json!({ "ok": true }) };
    let done = machine::step(&p, &t.instance, &right, t0()).unwrap();
    assert!(done.instance.is_ended());
    assert_eq!(done.instance.data.get("waiting"), Some(&json!({ "ok": true })));
}

#[test]
fn stale_and_late_inputs_are_rejections() {
    let p = process(TIMED);
    let t = start(&p, json!({ "key": "K1" }));
    let stale = Input::TimerFired { timer: "i1-k999".into() };
    assert!(matches!(machine::step(&p, &t.instance, &stale, t0()), Err(Rejection::Stale(_))));
    let cancelled =
        machine::step(&p, &t.instance, &Input::Cancel { by: Actor::System, reason: "test".into() }, t0()).unwrap();
    assert!(matches!(machine::step(&p, &cancelled.instance, &stale, t0()), Err(Rejection::Ended)));
}

#[test]
fn claims_conflict_and_the_loser_learns_who_has_it() {
    let p = process(TIMED);
    let t = start(&p, json!({ "key": "K1" }));
    let task = task_at(&t.instance, "work").to_string();
    let a = machine::step(&p, &t.instance, &Input::Claim { task: task.clone(), by: User::new("a", ["clerk"]) }, t0())
        .unwrap();
    let b = machine::step(&p, &a.instance, &Input::Claim { task: task.clone(), by: User::new("b", ["clerk"]) }, t0());
    assert_eq!(b, Err(Rejection::ClaimedByOther { task: task.clone(), assignee: "a".into() }));
    let outsider = machine::step(&p, &t.instance, &Input::Claim { task, by: User::new("c", ["cashier"]) }, t0());
    assert!(matches!(outsider, Err(Rejection::NotCandidate { .. })));
}

#[test]
fn the_same_inputs_give_the_same_transition() {
    let run = || {
        let p = process(PARALLEL);
        let t = start(&p, json!({}));
        let t = complete(&p, &t.instance, "c", json!({}));
        complete(&p, &t.instance, "a", json!({}))
    };
    assert_eq!(run(), run());
}

#[test]
fn a_flow_that_loops_without_waiting_raises_a_loop_incident() {
    let p = process(
        r#"
process: spin
version: 1
title: { zh: 轉, en: Spin }
roles: [clerk]
data: { type: object, properties: { n: { type: integer } } }
start: a
steps:
  a:
    type: decision
    branches:
      - { when: n < 0, next: done }
    default: b
  b:
    type: decision
    branches:
      - { when: n < 0, next: done }
    default: a
  done: { type: end }
"#,
    );
    let t = start(&p, json!({ "n": 1 }));
    assert_eq!(t.instance.incidents.len(), 1);
    assert_eq!(t.instance.incidents[0].kind, IncidentKind::Loop);
    assert!(t.events.iter().filter(|e| matches!(e, Event::Decided { .. })).count() >= 999);
}
