//! `notify` through the registry: templates from a pack, channels, fallbacks.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use plugins::{PluginsConfig, Registry, Secrets};
use serde_json::json;

use super::server::{invocation, serve};

/// A pack folder of this test's own: tests run concurrently, and one writing the template
/// while another reads it would hand the reader an empty file.
fn pack_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sopflow-notify-{}-{n}", std::process::id()));
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

#[tokio::test]
async fn a_configured_webhook_gets_both_languages_and_the_chosen_text_with_the_secret_header() {
    let hook = serve(vec![(200, r#"{"id":"hook-7"}"#)]).await;
    let config = format!(
        "http: {{ allow: [127.0.0.1] }}\nsecrets: {{ hook_token: {{ value: unused }} }}\nnotify:\n  webhook:\n    url: {}/messages\n    secret_header: {{ name: Authorization, secret: hook_token }}\n",
        hook.base
    );
    let config = PluginsConfig::parse(std::path::Path::new("plugins.yaml"), &config).unwrap();
    let registry = Registry::builder(config)
        .secrets(Secrets::from_values([("hook_token".to_owned(), "Bearer t-9".to_owned())]))
        .build()
        .unwrap();
    assert_eq!(registry.install_templates("standard", &pack_dir()).unwrap(), 1);
    let input = json!({
        "template": "apt_reminder", "to": "13800000000", "channel": "webhook", "lang": "en",
        "data": { "plate_no": "粤A12345", "at": "09:00" }
    });
    registry.validate_input("notify", &input).unwrap();
    let out = registry.action("notify").unwrap().invoke(invocation(input)).await.unwrap();
    registry.validate_output("notify", &out).unwrap();
    assert_eq!((out["channel"].as_str(), out["delivered"].as_bool()), (Some("webhook"), Some(true)));
    assert_eq!(out["delivery_id"], "hook-7");
    let sent = &hook.received()[0];
    assert_eq!(sent.header("authorization"), Some("Bearer t-9"));
    let body: serde_json::Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(body["text"], "粤A12345: service tomorrow at 09:00, please be on time.");
    assert_eq!(body["zh"], "粤A12345 明天 09:00 保養，請準時到店。");
    assert_eq!((body["template"].as_str(), body["lang"].as_str()), (Some("apt_reminder"), Some("en")));
    assert_eq!(body["to"], json!(["13800000000"]));
}

/// A minimal SMTP peer on a loopback port: it answers the dialogue, refuses recipients at
/// `refused.example` with 550, and keeps what it was given after `DATA`.
async fn smtp_peer() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mails: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let kept = std::sync::Arc::clone(&mails);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let kept = std::sync::Arc::clone(&kept);
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 peer ESMTP\r\n").await.unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            kept.lock().unwrap().push(data.take().unwrap_or_default());
                            write.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 peer\r\n",
                        "RCPT" if line.contains("refused.example") => b"550 no such mailbox\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go on\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(answer).await.unwrap();
                }
            });
        }
    });
    (port, mails)
}

fn email_registry(port: u16) -> Registry {
    let config = format!(
        "notify:\n  smtp:\n    host: 127.0.0.1\n    port: {port}\n    tls: none\n    from: \"Service <service@dealer.example>\"\n"
    );
    let config = PluginsConfig::parse(std::path::Path::new("plugins.yaml"), &config).unwrap();
    let registry = Registry::builder(config).build().unwrap();
    assert_eq!(registry.install_templates("standard", &pack_dir()).unwrap(), 1);
    registry
}

#[tokio::test]
async fn a_configured_smtp_server_gets_the_mail_in_the_chosen_language() {
    let (port, mails) = smtp_peer().await;
    let registry = email_registry(port);
    let input = json!({
        "template": "apt_reminder", "to": "owner@example.com", "channel": "email",
        "data": { "plate_no": "粤A12345", "at": "09:00" }
    });
    let out = registry.action("notify").unwrap().invoke(invocation(input)).await.unwrap();
    registry.validate_output("notify", &out).unwrap();
    assert_eq!((out["channel"].as_str(), out["delivered"].as_bool()), (Some("email"), Some(true)));
    let mails = mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("To: owner@example.com"), "{}", mails[0]);
    assert!(mails[0].contains("From: Service <service@dealer.example>"), "{}", mails[0]);
    assert!(mails[0].contains("Subject: apt_reminder"), "the template has no subject: its name: {}", mails[0]);
    // The body is the Chinese text (the default language) in base64: 粤A12345 明天 09:00 保養，請準時到店。
    assert!(mails[0].contains("Content-Type: text/plain; charset=utf-8"), "{}", mails[0]);
    assert!(mails[0].contains("57KkQTEyMzQ1IOaYjuWkqSAwOTowMCDkv53ppIrvvIzoq4vmupbmmYLliLDlupfjgII="), "{}", mails[0]);
}

#[tokio::test]
async fn a_recipient_the_smtp_server_refuses_fails_the_notification_permanently() {
    let (port, mails) = smtp_peer().await;
    let registry = email_registry(port);
    let input = json!({
        "template": "apt_reminder", "to": "nobody@refused.example", "channel": "email",
        "data": { "plate_no": "粤A12345", "at": "09:00" }
    });
    let err = registry.action("notify").unwrap().invoke(invocation(input)).await.unwrap_err();
    assert!(matches!(&err, plugin_api::Error::Permanent(m) if m.contains("refused the e-mail")), "{err:?}");
    assert!(mails.lock().unwrap().is_empty());
}
