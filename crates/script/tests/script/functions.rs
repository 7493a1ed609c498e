//! Functions written in Rhai that a host adds: guard helpers and action entry points.

use script::{CompileErrorKind, EvalError, HelperError, Limit, Limits, Sandbox};
use serde_json::json;

use super::harness::{World, now};

const HELPERS: &str = r#"
// A customer is a VIP when the brand says so or after ten visits.
fn is_vip(customer) {
    customer.vip == true || default(customer.visits, 0) >= 10
}

fn spin(n) {
    let i = 0;
    while true { i += 1; }
    i
}
"#;

fn helpers(source: &str) -> script::Functions {
    Sandbox::new(Limits::default()).compile_functions(source).unwrap()
}

#[test]
fn a_guard_calls_a_helper_registered_with_the_sandbox() {
    let sandbox = Sandbox::with_helpers(Limits::default(), &[helpers(HELPERS)]).unwrap();
    let world = World::new();
    let guard = sandbox.compile("is_vip(extra) && mileage > 1000", &world.vars).unwrap();
    assert!(sandbox.eval_bool(&guard, &world, now()).unwrap());
    let not_vip = sandbox.compile(r#"is_vip(#{ visits: 3 })"#, &world.vars).unwrap();
    assert!(!sandbox.eval_bool(&not_vip, &world, now()).unwrap());
}

#[test]
fn a_plain_sandbox_does_not_know_the_helpers() {
    let sandbox = Sandbox::new(Limits::default());
    let world = World::new();
    let guard = sandbox.compile("is_vip(extra)", &world.vars).unwrap();
    let err = sandbox.eval_bool(&guard, &world, now()).unwrap_err();
    assert!(err.to_string().contains("there is no function `is_vip`"), "{err}");
}

#[test]
fn helpers_run_under_the_callers_limits() {
    let limits = Limits { max_operations: 500, ..Limits::default() };
    let sandbox = Sandbox::with_helpers(limits, &[helpers(HELPERS)]).unwrap();
    let world = World::new();
    let guard = sandbox.compile("spin(1) > 0", &world.vars).unwrap();
    match sandbox.eval_bool(&guard, &world, now()).unwrap_err() {
        EvalError::LimitExceeded { limit: Limit::Operations, max: 500, .. } => {}
        other => panic!("expected the operations limit, got {other:?}"),
    }
}

#[test]
fn lists_the_functions_defined_with_their_parameters() {
    let fns = helpers(HELPERS);
    let listed: Vec<String> = fns.signatures().iter().map(|s| format!("{}({})", s.name, s.params.join(", "))).collect();
    assert_eq!(listed, ["is_vip(customer)", "spin(n)"]);
    assert!(fns.get("is_vip", 1).is_some());
    assert!(fns.get("is_vip", 2).is_none());
}

#[test]
fn refuses_helpers_that_would_shadow_the_library_or_each_other() {
    let clash = helpers("fn ts(x) { x }");
    assert_eq!(
        Sandbox::with_helpers(Limits::default(), &[clash]).unwrap_err(),
        HelperError::Clash { name: "ts".into() }
    );
    let twice = Sandbox::with_helpers(Limits::default(), &[helpers("fn a(x) { x }"), helpers("fn a(y) { y }")]);
    assert_eq!(twice.unwrap_err(), HelperError::Duplicate { name: "a".into(), arity: 1 });
}

#[test]
fn a_function_script_is_refused_with_the_line_and_column_of_the_problem() {
    let sandbox = Sandbox::new(Limits::default());
    let cases: &[(&str, &str)] = &[
        ("fn ok(x) { x }\nlet y = 1;", "Syntax at 2:1"),
        ("fn broken(x) {\n  x +* 2\n}", "Syntax at 2:6"),
        ("fn reads_outside(x) {\n  x + mileage\n}", "UndeclaredVariable at 2:7"),
        ("fn grows(m) {\n  m[\"a\"] = 1;\n  m\n}", "Forbidden at 2:4"),
        ("fn e(x) { eval(x) }", "Forbidden at 1:11"),
    ];
    let mut failures = Vec::new();
    for (source, expected) in cases {
        let actual = match sandbox.compile_functions(source) {
            Ok(_) => "compiled".to_owned(),
            Err(err) => {
                let kind = match err.kind {
                    CompileErrorKind::Syntax => "Syntax",
                    CompileErrorKind::UndeclaredVariable { .. } => "UndeclaredVariable",
                    CompileErrorKind::Forbidden { .. } => "Forbidden",
                    CompileErrorKind::TooLong => "TooLong",
                    CompileErrorKind::UnknownField { .. } => "UnknownField",
                };
                format!("{kind} at {}:{}", err.line, err.col)
            }
        };
        if actual != *expected {
            failures.push(format!("{source:?}: expected {expected}, got {actual}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn call_fn_passes_json_in_and_gives_json_back() {
    let sandbox = Sandbox::new(Limits::default());
    let fns =
        sandbox.compile_functions("fn order(input) { #{ lines: input.parts.len(), first: input.parts[0] } }").unwrap();
    let out = sandbox.call_fn(&fns, "order", &[json!({"parts": ["P-1", "P-2"]})], None).unwrap();
    assert_eq!(out, json!({"lines": 2, "first": "P-1"}));
    let missing = sandbox.call_fn(&fns, "nothing", &[json!(1)], None).unwrap_err();
    assert!(missing.to_string().contains("there is no function `nothing`"), "{missing}");
}

#[test]
fn host_functions_see_the_tag_of_the_call_and_cannot_loosen_the_limits() {
    let limits = Limits { max_operations: 300, ..Limits::default() };
    let sandbox = Sandbox::with_host(limits, &[], |engine| {
        engine.set_max_operations(0);
        engine.register_fn("whoami", |ctx: rhai::NativeCallContext| -> String {
            ctx.tag().map(|t| t.to_string()).unwrap_or_default()
        });
    })
    .unwrap();
    let fns = sandbox.compile_functions("fn f() { whoami() }\nfn spin() { loop {} }").unwrap();
    let tagged = sandbox.call_fn(&fns, "f", &[], Some(rhai::Dynamic::from("call-7".to_owned()))).unwrap();
    assert_eq!(tagged, json!("call-7"));
    assert!(matches!(
        sandbox.call_fn(&fns, "spin", &[], None),
        Err(EvalError::LimitExceeded { limit: Limit::Operations, max: 300, .. })
    ));
    assert_eq!(fns.calls("whoami"), Some((1, 10)));
    assert_eq!(fns.calls("http_request"), None);
}
