//! Script plugins: capabilities, secrets, settings and output checks.

use std::path::Path;

use plugin_api::Error;
use plugins::{PluginsConfig, Registry, Secrets};
use serde_json::json;

use super::registry::repo;
use super::server::{invocation, serve};

fn registry(dir: &Path, config: &str) -> Registry {
    Registry::builder(PluginsConfig::parse(Path::new("plugins.yaml"), config).unwrap())
        .secrets(Secrets::from_values([("dms_token".to_owned(), "t-42".to_owned())]))
        .plugins_dir(dir)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_calling_a_host_it_was_not_granted_is_refused_naming_the_host() {
    let dms = serve(vec![(201, r#"{"order_no":"RO-1"}"#)]).await;
    // The example plugin declares dms.example.com; the dealer points it at another host.
    let config = format!(
        "secrets: {{ dms_token: {{ value: x }} }}\nplugins:\n  dms_example:\n    grant:\n      - {{ kind: http, host: dms.example.com }}\n      - {{ kind: secret, name: dms_token }}\n    settings: {{ base_url: \"{}\" }}\n",
        dms.base
    );
    let registry = registry(&repo().join("plugins"), &config);
    let input = json!({ "plate_no": "粤A12345", "vin": "LSVAA4182E2123456" });
    registry.validate_input("dms.open_repair_order", &input).unwrap();
    let err = registry.action("dms.open_repair_order").unwrap().invoke(invocation(input)).await.unwrap_err();
    assert_eq!(
        err,
        Error::Permanent("the host `127.0.0.1` is not granted: the configuration allows dms.example.com".into())
    );
    assert!(dms.received().is_empty(), "nothing may reach a host that was not granted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_capability_the_dealer_did_not_grant_is_refused() {
    let config = "plugins:\n  dms_example:\n    settings: { base_url: \"https://dms.example.com\" }\n";
    let registry = registry(&repo().join("plugins"), config);
    let input = json!({ "plate_no": "粤A12345", "vin": "LSVAA4182E2123456" });
    let err = registry.action("dms.open_repair_order").unwrap().invoke(invocation(input)).await.unwrap_err();
    assert_eq!(
        err,
        Error::Permanent("the host `dms.example.com` is not granted: the configuration allows no host".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_plugin_calls_its_host_with_the_secret_and_its_output_is_checked() {
    let dms = serve(vec![(201, r#"{"order_no":"RO-77"}"#)]).await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/local");
    let config = format!(
        "secrets: {{ dms_token: {{ value: x }} }}\nplugins:\n  local_dms:\n    grant: [{{ kind: http, host: 127.0.0.1 }}, {{ kind: secret, name: dms_token }}]\n    settings: {{ base_url: \"{}\" }}\n",
        dms.base
    );
    let registry = registry(&dir, &config);
    let out =
        registry.action("local.open_order").unwrap().invoke(invocation(json!({ "plate_no": "粤A1" }))).await.unwrap();
    assert_eq!(out, json!({ "order_no": "RO-77" }));
    registry.validate_output("local.open_order", &out).unwrap();
    let sent = &dms.received()[0];
    assert_eq!(sent.header("authorization"), Some("Bearer t-42"));
    assert_eq!(sent.header("idempotency-key"), Some("i1-j1#1"));
    assert_eq!(serde_json::from_str::<serde_json::Value>(&sent.body).unwrap(), json!({ "plate": "粤A1" }));

    let wrong = registry.action("local.wrong_output").unwrap().invoke(invocation(json!({}))).await.unwrap();
    let err = registry.validate_output("local.wrong_output", &wrong).unwrap_err();
    assert_eq!(err.errors.len(), 1);
    assert_eq!(err.errors[0].path, "/order_no");
    assert_eq!(
        err.to_string(),
        "the output of `local.wrong_output` does not match its schema: /order_no: 42 is not of type \"string\""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dms_that_fails_makes_the_script_action_fail_retryably() {
    let dms = serve(vec![(502, "bad gateway")]).await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/local");
    let config = format!(
        "secrets: {{ dms_token: {{ value: x }} }}\nplugins:\n  local_dms:\n    grant: [{{ kind: http, host: 127.0.0.1 }}, {{ kind: secret, name: dms_token }}]\n    settings: {{ base_url: \"{}\" }}\n",
        dms.base
    );
    let registry = registry(&dir, &config);
    let err = registry
        .action("local.open_order")
        .unwrap()
        .invoke(invocation(json!({ "plate_no": "粤A1" })))
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Retryable(m) if m.contains("502")), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_error_fails_the_action_permanently_with_its_file_line_col() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/local");
    let registry = registry(&dir, "{}");
    let err =
        registry.action("local.refuses").unwrap().invoke(invocation(json!({ "plate_no": "" }))).await.unwrap_err();
    let Error::Permanent(message) = err else { panic!("expected a permanent failure, got {err:?}") };
    let message = message.replace(&format!("{}/", dir.display()), "");
    assert_eq!(message, "the script of `local.refuses` failed at local_dms/act.rhai:18:9: the plate number is empty");
}
