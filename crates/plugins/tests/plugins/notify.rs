//! `notify` through the registry: templates from a pack, channels, fallbacks.

use std::path::PathBuf;

use plugins::{PluginsConfig, Registry, Secrets};
use serde_json::json;

use super::server::{invocation, serve};

fn pack_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sopflow-notify-{}", std::process::id()));
    let templates = dir.join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("apt_reminder.yaml"),
        "template: apt_reminder\nchannel: sms\nzh: \"{{plate_no}} 明天 {{at}} 保養，請準時到店。\"\nen: \"{{plate_no}}: service tomorrow at {{at}}, please be on time.\"\n",
    )
    .unwrap();
    dir
}

fn registry(config: &str) -> Registry {
    let config = PluginsConfig::parse(std::path::Path::new("plugins.yaml"), config).unwrap();
    let registry = Registry::builder(config)
        .secrets(Secrets::from_values([("sms_key".to_owned(), "k-1".to_owned())]))
        .build()
        .unwrap();
    assert_eq!(registry.install_templates("standard", &pack_dir()).unwrap(), 1);
    registry
}

#[tokio::test]
async fn without_a_gateway_a_text_message_falls_back_to_the_log_and_says_so() {
    let registry = registry("{}");
    let input = json!({ "template": "apt_reminder", "to": "+86 138 0000 0000", "data": { "plate_no": "粤A12345", "at": "09:00" } });
    registry.validate_input("notify", &input).unwrap();
    let out = registry.action("notify").unwrap().invoke(invocation(input)).await.unwrap();
    registry.validate_output("notify", &out).unwrap();
    assert_eq!(
        out,
        json!({
            "channel": "log", "to": ["+86 138 0000 0000"], "lang": "zh",
            "zh": "粤A12345 明天 09:00 保養，請準時到店。",
            "en": "粤A12345: service tomorrow at 09:00, please be on time.",
            "delivered": false, "delivery_id": "log:i1-j1#1",
            "note": "no SMS gateway is configured; the message was logged instead"
        })
    );
}

#[tokio::test]
async fn a_configured_gateway_gets_the_text_in_the_chosen_language_with_its_key() {
    let gateway = serve(vec![(200, r#"{"id":"sms-991"}"#)]).await;
    let registry = registry(&format!(
        "http: {{ allow: [127.0.0.1] }}\nsecrets: {{ sms_key: {{ value: unused }} }}\nnotify:\n  sms:\n    url: {}/send\n    body: {{ phone: \"{{{{to}}}}\", message: \"{{{{text}}}}\" }}\n    secret_header: {{ name: X-Api-Key, secret: sms_key }}\n",
        gateway.base
    ));
    let input = json!({ "template": "apt_reminder", "to": ["13800000000"], "lang": "en", "data": { "plate_no": "粤A12345", "at": "09:00" } });
    let out = registry.action("notify").unwrap().invoke(invocation(input)).await.unwrap();
    assert_eq!(out["channel"], "sms");
    assert_eq!(out["delivered"], true);
    assert_eq!(out["delivery_id"], "sms-991");
    let sent = &gateway.received()[0];
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&sent.body).unwrap(),
        json!({ "phone": "13800000000", "message": "粤A12345: service tomorrow at 09:00, please be on time." })
    );
    assert_eq!(sent.header("x-api-key"), Some("k-1"));
}

#[tokio::test]
async fn a_missing_variable_fails_the_notification_permanently_naming_it() {
    let registry = registry("{}");
    let input = json!({ "template": "apt_reminder", "to": "13800000000", "channel": "log", "data": { "plate_no": "粤A12345" } });
    let err = registry.action("notify").unwrap().invoke(invocation(input)).await.unwrap_err();
    assert_eq!(
        err,
        plugin_api::Error::Permanent(
            "template `apt_reminder`: the template needs `at`, which is not in the notification's data".into()
        )
    );
}

#[test]
fn the_configuration_refuses_a_webhook_on_a_host_it_does_not_allow() {
    let err = PluginsConfig::parse(
        std::path::Path::new("plugins.yaml"),
        "http:\n  allow: [hooks.example.com]\nnotify:\n  webhook:\n    url: https://other.example.com/x\n    secret_header: { name: Authorization, secret: hook_token }\n",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugins.yaml:5:10: error[P0031]: the host `other.example.com` is not in `http.allow`; add it there to send to it\n\
         plugins.yaml:6:51: error[P0031]: there is no secret `hook_token` under `secrets`"
    );
}
