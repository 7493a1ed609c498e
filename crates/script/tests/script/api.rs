//! The API around evaluation: what an expression reads, how values are bound, and what never leaves the sandbox.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use script::{Binding, Env, Expr, Limits, Sandbox, Shape, Vars, to_dynamic};

use super::harness::{World, compile, now};

#[test]
fn reads_lists_declared_variables_once_in_order() {
    let sandbox = Sandbox::new(Limits::default());
    let cases: &[(&str, &[&str], bool)] = &[
        ("quotation.total > 1000 && parts_available", &["parts_available", "quotation"], false),
        ("mileage > 1 && mileage < 9 || reception.vin == reception.plate_no", &["mileage", "reception"], false),
        ("now > promised_at", &["promised_at"], true),
        ("let mileage = 3; mileage", &[], false),
        ("1 + 1", &[], false),
        ("let f = |x| x > mileage; f.call(1)", &["mileage"], false),
        ("`${note}`", &["note"], false),
        ("fn f(tags) { tags.len() } f(1)", &[], false),
    ];
    for (source, reads, reads_now) in cases {
        let expr = compile(&sandbox, source);
        assert_eq!(expr.reads(), *reads, "reads of `{source}`");
        assert_eq!(expr.reads_now(), *reads_now, "reads_now of `{source}`");
        assert_eq!(expr.source(), *source);
    }
}

/// Counts the lookups so that a test can see which variables an evaluation asked for.
struct CountingEnv {
    world: World,
    asked: std::cell::RefCell<Vec<String>>,
}

impl Env for CountingEnv {
    fn lookup(&self, name: &str) -> Option<Binding<'_>> {
        self.asked.borrow_mut().push(name.to_owned());
        self.world.lookup(name)
    }
}

#[test]
fn evaluation_asks_only_for_the_variables_read() {
    let sandbox = Sandbox::new(Limits::default());
    let expr = compile(&sandbox, "quotation.total > 1000 && parts_available");
    let env = CountingEnv { world: World::new(), asked: Default::default() };
    assert!(sandbox.eval_bool(&expr, &env, now()).unwrap());
    assert_eq!(*env.asked.borrow(), ["parts_available", "quotation"]);
}

/// Parameters converted once by the caller, bound as values.
struct Params(BTreeMap<&'static str, rhai::Dynamic>);

impl Env for Params {
    fn lookup(&self, name: &str) -> Option<Binding<'_>> {
        self.0.get(name).map(|value| Binding::Value(value.clone()))
    }
}

#[test]
fn preconverted_values_bind_like_json() {
    let sandbox = Sandbox::new(Limits::default());
    let mut vars = Vars::new();
    let follow_up = Shape::Object {
        fields: [("due".to_owned(), Shape::Duration), ("attempts".to_owned(), Shape::Int)].into(),
        open: false,
    };
    vars.insert("follow_up", follow_up.clone());
    let json = serde_json::json!({"due": "PT72H", "attempts": 3});
    let params = Params([("follow_up", to_dynamic(&json, &follow_up))].into());

    let whole = sandbox.compile("let p = follow_up; p.attempts", &vars).unwrap();
    assert_eq!(sandbox.eval_json(&whole, &params, now()).unwrap(), serde_json::json!(3));
    let field = sandbox.compile("now + follow_up.due", &vars).unwrap();
    assert_eq!(sandbox.eval_timestamp(&field, &params, now()).unwrap().to_string(), "2026-03-05T01:00:00Z");
    let typo = sandbox.compile("follow_up.atempts", &vars).unwrap_err();
    assert_eq!(
        typo.message,
        "`follow_up.atempts` is not a field of `follow_up`; did you mean `attempts`? known fields: attempts, due"
    );
}

#[test]
fn timestamps_and_durations_survive_a_json_round_trip() {
    let sandbox = Sandbox::new(Limits::default());
    let world = World::new();
    let expr = compile(&sandbox, "#{ due: now + minutes(90) + seconds(1.25), wait: promised_at - now }");
    let json = sandbox.eval_json(&expr, &world, now()).unwrap();
    assert_eq!(json, serde_json::json!({"due": "2026-03-02T02:30:01.25Z", "wait": "PT8H"}));

    let shape = Shape::Object {
        fields: [("due".to_owned(), Shape::Timestamp), ("wait".to_owned(), Shape::Duration)].into(),
        open: false,
    };
    let back = to_dynamic(&json, &shape);
    let map = back.cast::<rhai::Map>();
    let due: Timestamp = map["due"].clone().cast();
    let wait: SignedDuration = map["wait"].clone().cast();
    assert_eq!(due, "2026-03-02T02:30:01.25Z".parse::<Timestamp>().unwrap());
    assert_eq!(wait, SignedDuration::from_hours(8));
}

#[test]
fn json_converts_following_the_shape() {
    let durations = Shape::Array(Box::new(Shape::Duration));
    let cases: &[(serde_json::Value, &Shape, &str)] = &[
        (serde_json::json!(3), &Shape::Number, "f64 3.0"),
        (serde_json::json!(3), &Shape::Int, "i64 3"),
        (serde_json::json!(3), &Shape::Any, "i64 3"),
        (serde_json::json!(3.5), &Shape::Int, "f64 3.5"),
        (serde_json::json!(u64::MAX), &Shape::Any, "f64 1.8446744073709552e19"),
        (serde_json::json!(null), &Shape::String, "()"),
        (serde_json::json!("PT1H"), &Shape::Duration, "duration PT1H"),
        (serde_json::json!("PT1H"), &Shape::String, "string PT1H"),
        (serde_json::json!("soon"), &Shape::Duration, "string soon"),
        (serde_json::json!("2026-03-02T09:00:00+08:00"), &Shape::Timestamp, "timestamp 2026-03-02T01:00:00Z"),
        (serde_json::json!("2026-03-02T09:00:00+08:00"), &Shape::Any, "string 2026-03-02T09:00:00+08:00"),
        (serde_json::json!(["PT1M", "x"]), &durations, "array [duration PT1M, string x]"),
    ];
    for (json, shape, expected) in cases {
        assert_eq!(show(&to_dynamic(json, shape)), *expected, "{json} as {shape:?}");
    }
}

/// A converted value with its type, so that a test sees what the conversion chose.
fn show(value: &rhai::Dynamic) -> String {
    if let Some(d) = value.clone().try_cast::<SignedDuration>() {
        format!("duration {d}")
    } else if let Some(t) = value.clone().try_cast::<Timestamp>() {
        format!("timestamp {t}")
    } else if let Some(items) = value.clone().try_cast::<rhai::Array>() {
        let items: Vec<String> = items.iter().map(show).collect();
        format!("array [{}]", items.join(", "))
    } else if value.is_unit() {
        "()".to_owned()
    } else {
        format!("{} {value}", value.type_name())
    }
}

#[test]
fn sandbox_and_expressions_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Sandbox>();
    assert_send_sync::<Expr>();

    let sandbox = Sandbox::new(Limits::default());
    let expr = compile(&sandbox, "quotation.total > 1000");
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| assert!(sandbox.eval_bool(&expr.clone(), &World::new(), now()).unwrap()));
        }
    });
}

#[test]
fn default_limits_are_the_documented_ones() {
    let limits = Limits::default();
    assert_eq!(
        limits,
        Limits {
            max_operations: 50_000,
            max_call_levels: 16,
            max_expr_depth: 64,
            max_string_len: 65_536,
            max_array_len: 10_000,
            max_map_len: 10_000,
            max_source_len: 16_384,
        }
    );
    assert_eq!(Sandbox::new(limits.clone()).limits(), &limits);
}

#[test]
fn a_zero_limit_is_not_unlimited() {
    let sandbox = Sandbox::new(Limits { max_operations: 0, ..Limits::default() });
    let expr = compile(&sandbox, "loop {}");
    let err = sandbox.eval_json(&expr, &World::new(), now()).unwrap_err();
    assert_eq!(err.to_string(), "the script was stopped after 1 operations; does it loop forever?");
}

/// Set in the child process of `print_and_debug_write_nothing`.
const CHILD: &str = "SCRIPT_TEST_PRINT_CHILD";

#[test]
fn print_and_debug_write_nothing() {
    let marker = ["sandbox", "leak", "marker"].join("-");
    if std::env::var_os(CHILD).is_some() {
        let sandbox = Sandbox::new(Limits::default());
        let expr = compile(&sandbox, &format!("print(\"{marker}\"); debug(\"{marker}\"); 7"));
        assert_eq!(sandbox.eval_json(&expr, &World::new(), now()).unwrap(), serde_json::json!(7));
        return;
    }
    // Run this same test in a child process with output not captured, and look at
    // what it wrote: an in-process test cannot see its own stdout.
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "script::api::print_and_debug_write_nothing", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the child did not run the test:\n{stdout}");
    assert!(!stdout.contains(&marker) && !stderr.contains(&marker), "output leaked:\n{stdout}\n{stderr}");
}

#[test]
fn each_evaluation_starts_from_its_own_values() {
    let sandbox = Sandbox::new(Limits::default());
    // The script overwrites a declared variable, captures one in a closure and adds its own.
    let expr = compile(
        &sandbox,
        "let before = is_set(note); note = \"changed\"; let f = || mileage; let own = 1; [before, f.call(), own]",
    );
    let mut world = World::new();
    for round in 0..6 {
        let mileage = 1000 * round;
        world.values.insert("mileage".to_owned(), (serde_json::json!(mileage), Shape::Int));
        let result = sandbox.eval_json(&expr, &world, now()).unwrap();
        assert_eq!(result, serde_json::json!([false, mileage, 1]), "round {round}");
    }
}
