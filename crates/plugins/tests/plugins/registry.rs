//! The registry: built-ins and plugins together, schemas compiled once, field-path errors.

use std::path::{Path, PathBuf};

use plugins::schema::Side;
use plugins::{PluginsConfig, Registry};
use serde_json::json;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn an_output_that_violates_the_schema_is_rejected_with_the_field_path() {
    let registry = Registry::offline();
    let err = registry.validate_output("inventory.check", &json!({ "available": "yes", "extra": 1 })).unwrap_err();
    assert_eq!(err.side, Side::Output);
    let paths: Vec<&str> = err.errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["/on_hand", "/available", ""], "{err}");
    assert!(
        err.to_string().starts_with("the output of `inventory.check` does not match its schema: /on_hand: "),
        "{err}"
    );

    let input = registry.validate_input("inventory.reserve", &json!({ "part_no": "P-1", "quantity": 0 })).unwrap_err();
    let paths: Vec<&str> = input.errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["/reference", "/quantity"], "{input}");
    assert!(registry.validate_input("no.such", &json!({})).is_err());
}

#[test]
fn the_example_plugin_loads_with_its_action_and_guard_helper() {
    let registry = Registry::builder(PluginsConfig::default()).plugins_dir(repo().join("plugins")).build().unwrap();
    let names: Vec<String> = registry.action_names().into_iter().collect();
    assert_eq!(names, ["dms.open_repair_order", "http", "inventory.check", "inventory.reserve", "notify"]);
    let dms = registry.plugins().iter().find(|p| p.name == "dms_example").unwrap();
    assert_eq!(dms.helpers[0].name, "is_vip");
    assert_eq!(dms.helpers[0].arity, 1);
    assert!(dms.granted.is_empty(), "nothing is granted by default");

    let sandbox = registry.guard_sandbox(script::Limits::default()).unwrap();
    let mut vars = script::Vars::new();
    vars.insert("customer", script::Shape::Any);
    let guard = sandbox.compile("is_vip(customer)", &vars).unwrap();
    struct Customer(serde_json::Value);
    impl script::Env for Customer {
        fn lookup(&self, _: &str) -> Option<script::Binding<'_>> {
            Some(script::Binding::Json(&self.0, &script::Shape::Any))
        }
    }
    let now = "2026-03-02T01:00:00Z".parse().unwrap();
    assert!(sandbox.eval_bool(&guard, &Customer(json!({ "visits": 12 })), now).unwrap());
    assert!(!sandbox.eval_bool(&guard, &Customer(json!({ "visits": 2 })), now).unwrap());
}

#[test]
fn broken_plugins_are_refused_with_every_problem_at_file_line_col() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/broken");
    let err = Registry::builder(PluginsConfig::default()).plugins_dir(&dir).build().unwrap_err();
    let text = err.to_string().replace(&format!("{}/", dir.display()), "");
    assert_eq!(
        text,
        "broken_helper/helpers.rhai:3:5: error[P0029]: a guard helper cannot call `http_request`: guards must give the same answer on every run\n\
         broken_helper/helpers.rhai:6:1: error[P0028]: `undeclared` is in a helper script but not declared under `helpers`; guards would see it, so declare it or move it to another script\n\
         broken_manifest/plugin.yaml:2:10: error[P0028]: `one` is not a version like 1.0.0\n\
         broken_manifest/plugin.yaml:5:25: error[P0028]: `dms.*.com` is not a host name or a pattern like `*.example.com`\n\
         broken_manifest/plugin.yaml:7:3: error[P0028]: `Bad Name` is not an action name; write lower-case words joined by `.` or `_`, like `dms.open_repair_order`\n\
         broken_manifest/plugin.yaml:9:13: error[P0028]: `../outside.rhai` must be the name of a `.rhai` file in the plugin's folder\n\
         broken_manifest/plugin.yaml:11:20: error[P0028]: the input schema: not a valid JSON Schema: \"objekt\" is not valid under any of the schemas listed in the 'anyOf' keyword\n\
         broken_script/act.rhai:3:30: error[P0029]: the script is not valid: Unexpected '*'"
    );
}

#[test]
fn topics_are_action_names_with_their_own_schemas() {
    let config = PluginsConfig::parse(
        Path::new("plugins.yaml"),
        "topics:\n  dms_sync:\n    description: Sync the order to the DMS.\n    output: { type: object, required: [synced], properties: { synced: { type: boolean } } }\n",
    )
    .unwrap();
    let registry = Registry::builder(config).build().unwrap();
    assert!(registry.action_names().contains("topic:dms_sync"));
    assert!(registry.action("topic:dms_sync").is_none(), "topics are never invoked in-process");
    let err = registry.validate_output("topic:dms_sync", &json!({ "synced": "yes" })).unwrap_err();
    assert_eq!(err.errors[0].path, "/synced");
}

#[tokio::test]
async fn every_pack_s_templates_install_and_the_appointment_confirmation_is_logged_in_both_languages() {
    let registry = Registry::offline();
    let mut n_templates = 0;
    for entry in std::fs::read_dir(repo().join("processes")).unwrap() {
        let pack = entry.unwrap().path();
        if pack.join("templates").is_dir() {
            let name = pack.file_name().unwrap().to_string_lossy().into_owned();
            n_templates += registry.install_templates(&name, &pack).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    assert_eq!(registry.templates().read().unwrap().names().count(), n_templates, "no template may shadow another");
    if registry.templates().read().unwrap().get("appointment_confirmation").is_none() {
        return;
    }
    // As the standard pack's appointment process sends it, on a dealer without an SMS gateway.
    let input = json!({
        "template": "appointment_confirmation", "to": "13800000000", "channel": "sms",
        "data": {
            "customer_name": "王先生", "appointment_at": "2026-03-03T09:00:00+08:00", "advisor_name": "李娜",
            "expected_duration": "2小時", "documents": "保修手冊"
        }
    });
    registry.validate_input("notify", &input).unwrap();
    let out = registry.action("notify").unwrap().invoke(super::server::invocation(input)).await.unwrap();
    registry.validate_output("notify", &out).unwrap();
    assert_eq!(out["channel"], "log");
    assert!(out["zh"].as_str().unwrap().starts_with("王先生您好，您的預約已確認：2026-03-03T09:00:00+08:00"), "{out}");
    assert!(out["en"].as_str().unwrap().starts_with("Dear 王先生, your appointment is confirmed"), "{out}");
}
