//! Tests of the scenario runner and its in-memory world, through scenario files and worlds.

use std::path::Path;
use std::sync::Arc;

use machine::{Actor, Input, User};
use model::FsFiles;
use testkit::world::World;

fn examples() -> Vec<Arc<model::Process>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../processes/examples");
    let pack = model::load_pack(&dir, &FsFiles, &model::Options::default());
    assert!(!pack.has_errors(), "{:?}", pack.diagnostics);
    pack.processes
}

fn at(s: &str) -> jiff::Timestamp {
    s.parse::<jiff::Timestamp>().unwrap()
}

#[test]
fn the_example_scenarios_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../processes/examples");
    let report = testkit::run_pack(&dir, &model::Options::default(), testkit::Snapshots::Check, None);
    assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
    let failed: Vec<String> = report
        .results
        .iter()
        .filter_map(|r| match &r.status {
            testkit::Status::Failed(why) => Some(format!("{}: {why}", r.path.display())),
            _ => None,
        })
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    assert!(report.passed() >= 1);
}

#[test]
fn the_example_scenarios_take_every_transition() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../processes/examples");
    let report = testkit::run_pack(&dir, &model::Options::default(), testkit::Snapshots::Check, None);
    let untaken: Vec<String> = report.uncovered.iter().map(|t| t.describe()).collect();
    assert!(untaken.is_empty(), "untaken transitions:\n{}", untaken.join("\n"));
    assert!(report.untested.is_empty(), "processes without scenarios: {:?}", report.untested);
}

#[test]
fn a_message_sent_before_anyone_waits_is_kept_for_the_receiver() {
    let mut world = World::new(examples(), at("2026-03-02T09:00:00+08:00"));
    let data = serde_json::json!({ "request_no": "PR-1", "part_no": "P-9" });
    let start = World::start_args("i1", "d1", None, data.as_object().unwrap().clone(), Actor::System);
    world.start("parts_shortage", start).unwrap();
    let child = world.latest_of("parts_request").unwrap().instance.id.clone();
    let task = world.slot(&child).unwrap().instance.tasks[0].id.clone();
    let keeper = User::new("k1", ["parts_manager"]);
    world.apply(&child, Input::Complete { task, by: keeper, form: serde_json::json!({ "quantity": 2 }) }).unwrap();
    let parent = &world.slot("i1").unwrap().instance;
    assert_eq!(parent.data.get("wait_for_parts"), Some(&serde_json::json!({ "quantity": 2 })));
    assert!(world.buffered.is_empty());
}

#[test]
fn messages_do_not_cross_dealers() {
    let mut world = World::new(examples(), at("2026-03-02T09:00:00+08:00"));
    let data = serde_json::json!({ "request_no": "PR-1", "part_no": "P-9" });
    let start = World::start_args("i1", "dealer_a", None, data.as_object().unwrap().clone(), Actor::System);
    world.start("parts_shortage", start).unwrap();
    let start = World::start_args("i2", "dealer_b", None, data.as_object().unwrap().clone(), Actor::System);
    world.start("parts_request", start).unwrap();
    let task = world.slot("i2").unwrap().instance.tasks[0].id.clone();
    let keeper = User::new("k1", ["parts_manager"]);
    world.apply("i2", Input::Complete { task, by: keeper, form: serde_json::json!({ "quantity": 1 }) }).unwrap();
    let parent = &world.slot("i1").unwrap().instance;
    assert!(parent.data.get("wait_for_parts").is_none(), "dealer B's message reached dealer A");
    assert_eq!(world.buffered.len(), 1);
}

#[test]
fn timers_fire_in_due_order_at_their_own_time() {
    let mut world = World::new(examples(), at("2026-03-02T09:00:00+08:00"));
    let data = serde_json::json!({ "request_no": "PR-1", "part_no": "P-9" });
    let start = World::start_args("i1", "d1", None, data.as_object().unwrap().clone(), Actor::System);
    world.start("parts_shortage", start).unwrap();
    world.advance(jiff::SignedDuration::from_hours(24 * 8));
    let fired: Vec<(jiff::Timestamp, String)> = world
        .log
        .iter()
        .filter(|l| l.instance == "i1")
        .filter_map(|l| match &l.event {
            machine::Event::TimerFired { def, .. } => Some((l.at, def.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        fired,
        vec![
            (at("2026-03-04T09:00:00+08:00"), "chase_supplier".to_string()),
            (at("2026-03-09T09:00:00+08:00"), "give_up".to_string()),
        ]
    );
    assert!(world.slot("i1").unwrap().instance.is_ended());
}

#[test]
fn a_scenario_file_with_a_typo_is_reported_with_its_position() {
    let text = "scenario: x\nprocess: repair_job\nstart_at: 2026-03-02T09:00:00Z\nsteps:\n  - complet: reception\n";
    let errors = testkit::load_scenario(Path::new("s.yaml"), text).unwrap_err();
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        vec!["s.yaml:5:5: error[P0003]: unknown field `complet`\n  = hint: did you mean `complete`?".to_string()]
    );
}

#[test]
fn the_checked_in_scenario_schema_matches_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/scenario.schema.json");
    let on_disk: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(on_disk, testkit::scenario_schema(), "run `sopflow schema --write schemas`");
}
