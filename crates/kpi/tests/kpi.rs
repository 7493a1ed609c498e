//! Tests of the KPI figures: records of instances in, a report out; and the same figures read
//! from real runs of the standard pack's follow-up process in the in-memory world.

use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;
use kpi::{Definitions, InstanceRecord, OpenTask, Period, compute};
use machine::{Actor, Event};
use serde_json::{Value, json};

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn march() -> Period {
    Period { from: at("2026-03-01T00:00:00Z"), to: at("2026-04-01T00:00:00Z") }
}

fn record(
    id: &str,
    process: &str,
    outcome: Option<&str>,
    data: Value,
    changes: Vec<(&str, Vec<Event>)>,
) -> InstanceRecord {
    InstanceRecord {
        id: id.into(),
        process: process.into(),
        outcome: outcome.map(str::to_string),
        started_at: at("2026-03-02T01:00:00Z"),
        ended_at: outcome.map(|_| at("2026-03-05T01:00:00Z")),
        data: data.as_object().cloned().unwrap_or_default(),
        changes: changes.into_iter().map(|(t, e)| (at(t), e)).collect(),
    }
}

fn completed(step: &str, due: Option<&str>) -> Event {
    Event::TaskCompleted {
        task: format!("x-{step}"),
        step: step.into(),
        by: Actor::User { id: "u".into(), role: None },
        form: json!({}),
        due_at: due.map(at),
        created_at: at("2026-03-02T01:00:00Z"),
    }
}

fn cleaning() -> Event {
    Event::Entered { step: "cleaning".into(), kind: "task".into(), from: Some("final_result".into()) }
}

#[test]
fn the_figures_count_what_the_records_show() {
    let exit_and_follow = vec![
        ("2026-03-03T01:00:00Z", vec![cleaning()]),
        ("2026-03-04T01:00:00Z", vec![completed("handover", None)]),
        ("2026-03-04T01:00:00Z", vec![Event::ChildStarted { child: "c".into(), process: "follow_up_call".into() }]),
    ];
    let records = vec![
        record("o1", "service_order", Some("completed"), json!({ "rework_count": 0 }), exit_and_follow.clone()),
        record("o2", "service_order", Some("completed"), json!({ "rework_count": 2 }), exit_and_follow),
        record(
            "o3",
            "service_order",
            Some("completed"),
            json!({ "rework_count": 0 }),
            vec![
                ("2026-03-03T01:00:00Z", vec![cleaning()]),
                ("2026-03-04T01:00:00Z", vec![completed("handover", None)]),
            ],
        ),
        record("o4", "service_order", None, json!({}), vec![]),
        record("f1", "follow_up_call", Some("completed"), json!({}), vec![]),
        record("f2", "follow_up_call", Some("failed"), json!({ "failure_reason": "wrong_number" }), vec![]),
        record("c1", "complaint", None, json!({ "level_rank": 4 }), vec![]),
        record(
            "a1",
            "appointment",
            Some("arrived"),
            json!({}),
            vec![
                ("2026-03-02T01:10:00Z", vec![completed("confirm", Some("2026-03-02T01:15:00Z"))]),
                ("2026-03-02T01:20:00Z", vec![completed("confirm", Some("2026-03-02T01:15:00Z"))]),
                (
                    "2026-03-02T01:15:00Z",
                    vec![Event::SlaBreached {
                        task: "t".into(),
                        step: "confirm".into(),
                        due_at: at("2026-03-02T01:15:00Z"),
                    }],
                ),
            ],
        ),
    ];
    let open = vec![
        OpenTask {
            roles: vec!["service_advisor".into(), "claims_specialist".into()],
            due_at: Some(at("2026-03-01T00:00:00Z")),
        },
        OpenTask { roles: vec!["service_advisor".into()], due_at: Some(at("2026-04-09T00:00:00Z")) },
        OpenTask { roles: vec!["technician".into()], due_at: None },
    ];
    let r = compute(&Definitions::default(), march(), &records, &open, at("2026-03-10T00:00:00Z"));

    assert_eq!((r.followup_coverage.numerator, r.followup_coverage.denominator), (2, 3));
    assert_eq!(r.followup_coverage.met, Some(false));
    assert_eq!((r.followup_success_rate.numerator, r.followup_success_rate.denominator), (1, 2));
    assert_eq!(r.followup_success_rate.met, Some(false), "50% is below the 80% target");
    assert_eq!(r.followup_failure_reasons.get("wrong_number"), Some(&1));
    assert_eq!((r.complaint_rate.numerator, r.complaint_rate.denominator), (1, 4));
    assert_eq!(r.major_complaint_rate.met, Some(false));
    assert_eq!((r.first_time_fix_rate.numerator, r.first_time_fix_rate.denominator), (2, 3));
    let confirm = r.sla.iter().find(|s| s.step == "confirm").unwrap();
    assert_eq!((confirm.on_time.numerator, confirm.on_time.denominator, confirm.breaches), (1, 2, 1));
    assert_eq!(r.overdue_by_role.get("service_advisor"), Some(&1));
    assert_eq!(r.overdue_by_role.get("claims_specialist"), Some(&1));
    assert_eq!(r.overdue_by_role.get("technician"), None);
}

#[test]
fn nothing_to_divide_by_gives_no_value_and_no_verdict() {
    let r = compute(&Definitions::default(), march(), &[], &[], at("2026-03-10T00:00:00Z"));
    assert_eq!(r.followup_success_rate.value, None);
    assert_eq!(r.followup_success_rate.met, None);
}

/// Runs standard-pack scenarios in the in-memory world and turns every instance they left into
/// a record, as the runtime does from the store.
fn records_of(scenarios: &[&str]) -> Vec<InstanceRecord> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../processes/standard");
    let pack = model::load_pack(&dir, &model::FsFiles, &model::Options::default());
    assert!(!pack.has_errors(), "{:?}", pack.diagnostics);
    let processes: Vec<Arc<model::Process>> = pack.processes.clone();
    let mut out = Vec::new();
    for (n, name) in scenarios.iter().enumerate() {
        let path = dir.join("scenarios").join(format!("{name}.yaml"));
        let text = std::fs::read_to_string(&path).unwrap();
        let scenario = testkit::load_scenario(&path, &text).unwrap();
        let run = testkit::runner::run(&scenario, &processes);
        assert!(run.failure.is_none(), "{name}: {:?}", run.failure);
        for slot in &run.world.slots {
            let (outcome, ended_at) = match &slot.instance.status {
                machine::Status::Ended { outcome, at } => (Some(outcome.clone()), Some(*at)),
                machine::Status::Running => (None, None),
            };
            out.push(InstanceRecord {
                id: format!("{n}:{}", slot.instance.id),
                process: slot.process.id.clone(),
                outcome,
                started_at: slot.instance.started_at,
                ended_at,
                data: slot.instance.data.clone(),
                changes: run
                    .world
                    .log
                    .iter()
                    .filter(|l| l.instance == slot.instance.id)
                    .map(|l| (l.at, vec![l.event.clone()]))
                    .collect(),
            });
        }
    }
    out
}

#[test]
fn the_standard_packs_runs_feed_the_follow_up_figures() {
    let records = records_of(&[
        "follow_up_reached_first_call",
        "follow_up_three_attempts_then_failure",
        "follow_up_wrong_number_corrected",
        "service_order_walk_in_to_follow_up",
    ]);
    let period = Period { from: at("2026-01-01T00:00:00Z"), to: at("2027-01-01T00:00:00Z") };
    let r = compute(&Definitions::default(), period, &records, &[], at("2026-12-31T00:00:00Z"));
    let calls: Vec<&InstanceRecord> = records.iter().filter(|r| r.process == "follow_up_call").collect();
    let reached = calls.iter().filter(|c| c.outcome.as_deref() == Some("completed")).count() as u64;
    let failed = calls.iter().filter(|c| c.outcome.as_deref() == Some("failed")).count() as u64;
    assert!(failed >= 1 && reached >= 1, "the scenarios end both ways: {reached} reached, {failed} failed");
    assert_eq!((r.followup_success_rate.numerator, r.followup_success_rate.denominator), (reached, reached + failed));
    assert_eq!(r.followup_failure_reasons.values().sum::<u64>(), failed);
    assert!(!r.followup_failure_reasons.contains_key("unknown"), "{:?}", r.followup_failure_reasons);
    assert_eq!(
        (r.followup_coverage.numerator, r.followup_coverage.denominator),
        (1, 1),
        "the walk-in order left and was followed up"
    );
}

#[test]
fn a_rework_in_the_standard_pack_lowers_the_first_time_fix_rate() {
    let records = records_of(&["service_order_walk_in_to_follow_up", "service_order_rework_twice"]);
    let period = Period { from: at("2026-01-01T00:00:00Z"), to: at("2027-01-01T00:00:00Z") };
    let r = compute(&Definitions::default(), period, &records, &[], at("2026-12-31T00:00:00Z"));
    assert_eq!(
        (r.first_time_fix_rate.numerator, r.first_time_fix_rate.denominator),
        (1, 2),
        "one of the two orders was reworked"
    );
    assert!(r.sla.iter().any(|s| s.process == "service_order"), "service order tasks with due times are measured");
}
