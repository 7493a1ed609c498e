//! The `http` action: allow-list, timeouts, status mapping and secrets.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use plugin_api::{Action, Error};
use plugins::config::{HostPattern, Secrets};
use plugins::http::{HttpAction, HttpCaller};
use serde_json::json;

use super::server::{hang, invocation, serve};

fn caller(allow: &[&str], granted_secrets: &[&str], timeout: Duration) -> HttpCaller {
    HttpCaller::new(
        allow.iter().map(|h| HostPattern::parse(h).unwrap()).collect(),
        Arc::new(Secrets::from_values([("dms_token".to_owned(), "s3cret".to_owned())])),
        granted_secrets.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>(),
        timeout,
        1 << 20,
    )
    .unwrap()
}

fn action(allow: &[&str], granted_secrets: &[&str]) -> HttpAction {
    HttpAction::new(caller(allow, granted_secrets, Duration::from_secs(5)))
}

#[tokio::test]
async fn a_host_outside_the_allow_list_is_refused_before_any_connection() {
    let http = action(&["dms.example.com", "*.dealer.example"], &[]);
    let cases = [
        (
            "https://evil.example.org/x",
            "the host `evil.example.org` is not granted: the configuration allows dms.example.com, *.dealer.example",
        ),
        (
            "https://dealer.example/x",
            "the host `dealer.example` is not granted: the configuration allows dms.example.com, *.dealer.example",
        ),
        ("ftp://dms.example.com/x", "`ftp://dms.example.com/x` is not an http or https URL"),
    ];
    for (url, message) in cases {
        let err = http.invoke(invocation(json!({ "method": "GET", "url": url }))).await.unwrap_err();
        assert_eq!(err, Error::Permanent(message.into()), "{url}");
    }
}

#[test]
fn host_patterns_cover_what_they_say() {
    let wildcard = HostPattern::parse("*.Example.com").unwrap();
    assert!(wildcard.matches("dms.example.com"));
    assert!(wildcard.matches("a.b.EXAMPLE.com"));
    assert!(!wildcard.matches("example.com"));
    assert!(!wildcard.matches("badexample.com"));
    assert!(HostPattern::parse("dms.*.com").is_err());
    assert!(HostPattern::parse("dms.example.com").unwrap().within(&wildcard));
    assert!(!wildcard.within(&HostPattern::parse("dms.example.com").unwrap()));
}

#[tokio::test]
async fn a_call_that_does_not_answer_in_time_is_retryable() {
    let base = hang().await;
    let http = HttpAction::new(caller(&["127.0.0.1"], &[], Duration::from_millis(200)));
    let err = http
        .invoke(invocation(json!({ "method": "POST", "url": format!("{base}/hook"), "body": {} })))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("did not answer within 0.2 s"), "{err}");
}

#[tokio::test]
async fn server_errors_are_retryable_and_client_errors_permanent() {
    let server =
        serve(vec![(503, r#"{"error":"busy"}"#), (429, "{}"), (404, "no such order"), (201, r#"{"id":"RO-7"}"#)]).await;
    let http = action(&["127.0.0.1"], &[]);
    let call = || {
        http.invoke(invocation(
            json!({ "method": "POST", "url": format!("{}/orders", server.base), "body": { "a": 1 } }),
        ))
    };
    let first = call().await.unwrap_err();
    assert!(matches!(&first, Error::Retryable(m) if m.contains("503")), "{first:?}");
    assert!(call().await.unwrap_err().is_retryable());
    let third = call().await.unwrap_err();
    assert!(matches!(&third, Error::Permanent(m) if m.contains("404") && m.contains("no such order")), "{third:?}");
    assert_eq!(call().await.unwrap(), json!({ "status": 201, "body": { "id": "RO-7" } }));
    let received = server.received();
    assert_eq!(received[0].method, "POST");
    assert_eq!(received[0].path, "/orders");
    assert_eq!(received[0].body, r#"{"a":1}"#);
    assert_eq!(received[0].header("idempotency-key"), Some("i1-j1#1"));
}

#[tokio::test]
async fn secrets_are_taken_from_the_configuration_by_name_and_only_when_granted() {
    let server = serve(vec![(200, "{}")]).await;
    let input = json!({
        "method": "GET", "url": format!("{}/me", server.base),
        "secret_header": { "name": "Authorization", "secret": "dms_token", "prefix": "Bearer " }
    });
    action(&["127.0.0.1"], &["dms_token"]).invoke(invocation(input.clone())).await.unwrap();
    assert_eq!(server.received()[0].header("authorization"), Some("Bearer s3cret"));

    let refused = action(&["127.0.0.1"], &[]).invoke(invocation(input)).await.unwrap_err();
    assert_eq!(refused, Error::Permanent("the secret `dms_token` is not granted".into()));
    assert_eq!(server.received().len(), 1, "a refused secret must not reach the network");
}
