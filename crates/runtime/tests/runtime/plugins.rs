//! Actions that reach outside the engine, on every backend: external task workers (fetch and
//! lock, a worker that dies, retries and incidents) and a webhook that times out.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::SignedDuration;
use machine::{Actor, User, Wait};
use runtime::{ActionRegistry, Clock, JobError, Runtime, WorkerFailure};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::harness::*;

/// An order that is synced to the dealer's DMS by an external worker, then approved.
const SYNC: &str = r#"
process: sync
version: 1
title: { zh: 同步, en: Sync }
roles: [advisor, foreman]
data:
  type: object
  properties:
    plate: { type: string }
start: push
steps:
  push:
    type: action
    action: topic:dms_sync
    input: { plate: =plate }
    retry: { max_attempts: 2, backoff: PT1M, max_backoff: PT1M }
    next: approve
  approve:
    type: task
    title: { zh: 批准, en: Approve }
    roles: [foreman]
    next: done
  done:
    type: end
"#;

/// The plugin configuration declaring the topic with its schemas.
const TOPICS: &str = r#"
topics:
  dms_sync:
    description: Open the repair order in the DMS.
    input:
      type: object
      required: [plate]
      properties: { plate: { type: string } }
    output:
      type: object
      required: [order_no]
      properties: { order_no: { type: string, pattern: "^RO-" } }
"#;

async fn open_with_topics(env: &Env) -> Runtime {
    let config = plugins::config::PluginsConfig::parse(Path::new("plugins.yaml"), TOPICS).unwrap();
    let registry = plugins::Registry::builder(config).build().unwrap();
    let mut c = env.config();
    c.topics = registry.topic_schemas();
    let rt = env.open_with(c).await;
    rt.deploy(&[process(SYNC)], "", Actor::System).await.unwrap();
    rt
}

fn topics() -> Vec<String> {
    vec!["dms_sync".into()]
}

/// Fetches until the outbox has enqueued the instance's job (the dispatcher runs on its own;
/// polling with a deadline waits for readiness, it does not let time pass).
async fn fetch_one(rt: &Runtime, worker: &str, dealer: Option<&str>) -> runtime::ExternalJob {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut got = rt.fetch_and_lock(worker, dealer, &topics(), 5, SignedDuration::from_mins(5)).await.unwrap();
        if !got.is_empty() {
            assert_eq!(got.len(), 1, "{got:?}");
            return got.remove(0);
        }
        assert!(std::time::Instant::now() < deadline, "gave up waiting for a job to fetch");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn admin() -> User {
    User::new("admin", ["admin"])
}

runtime_test!(an_external_worker_that_dies_loses_nothing, |env| {
    let rt = open_with_topics(&env).await;
    start(&rt, "sync", "x1", "粤B1").await;

    let job = fetch_one(&rt, "dms-1", Some("d1")).await;
    assert_eq!((job.topic.as_str(), job.input.clone(), job.attempt()), ("dms_sync", json!({ "plate": "粤B1" }), 1));
    assert_eq!(job.instance, "x1");
    // Another dealer's worker never sees it; while locked, nobody else gets it.
    let other = rt.fetch_and_lock("dms-9", Some("d2"), &topics(), 5, SignedDuration::from_mins(5)).await.unwrap();
    assert!(other.is_empty());
    let locked = rt.fetch_and_lock("dms-2", Some("d1"), &topics(), 5, SignedDuration::from_mins(5)).await.unwrap();
    assert!(locked.is_empty(), "a locked job is not handed out twice");

    // dms-1 dies. When its lock expires, the job goes to the next worker.
    env.clock.advance(SignedDuration::from_mins(6));
    let again = rt.fetch_and_lock("dms-2", Some("d1"), &topics(), 5, SignedDuration::from_mins(5)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, job.id, "the same job, not a new one");

    // The first worker comes back too late: the job is no longer its own.
    let late = rt.complete_external(&job.id, "dms-1", json!({ "order_no": "RO-1" })).await.unwrap();
    assert!(matches!(late, Err(JobError::NotLocked { .. })), "{late:?}");
    // Output that breaks the topic's schema is refused with the field path; the job stays locked.
    let bad = rt.complete_external(&job.id, "dms-2", json!({ "order_no": 7 })).await.unwrap();
    match bad {
        Err(JobError::Invalid(v)) => {
            let paths: Vec<&str> = v.errors.iter().map(|e| e.path.as_str()).collect();
            assert_eq!(paths, ["/order_no"], "{v}");
        }
        other => panic!("expected a schema violation, got {other:?}"),
    }
    rt.complete_external(&job.id, "dms-2", json!({ "order_no": "RO-1" })).await.unwrap().unwrap();
    // Completing twice is harmless.
    rt.complete_external(&job.id, "dms-2", json!({ "order_no": "RO-1" })).await.unwrap().unwrap();

    let view = rt.instance("x1").await.unwrap().unwrap();
    assert_eq!(view.instance.data["push"], json!({ "order_no": "RO-1" }));
    assert_eq!(view.instance.tasks.len(), 1, "at the approval");
    let kinds: Vec<String> = rt.audit("x1").await.unwrap().into_iter().map(|r| r.kind).collect();
    assert_eq!(kinds, ["started", "action_succeeded"]);
    rt.shutdown().await;
});

runtime_test!(a_failing_worker_is_retried_after_the_backoff_then_raises_an_incident_an_administrator_retries, |env| {
    let rt = open_with_topics(&env).await;
    start(&rt, "sync", "x2", "粤B2").await;

    let first = fetch_one(&rt, "dms-1", None).await;
    let failed = rt.fail_external(&first.id, "dms-1", "DMS down", true).await.unwrap().unwrap();
    let retry_at = env.clock.now() + SignedDuration::from_mins(1);
    assert_eq!(failed, WorkerFailure::Retry { at: retry_at });
    // Nothing to fetch before the backoff has passed.
    let early = rt.fetch_and_lock("dms-1", None, &topics(), 5, SignedDuration::from_mins(5)).await.unwrap();
    assert!(early.is_empty());

    env.clock.advance(SignedDuration::from_mins(2));
    let second = fetch_one(&rt, "dms-1", None).await;
    assert_ne!(second.id, first.id, "each try is a job of its own");
    assert_eq!(second.id, runtime::job_id(&first.job, 2));
    let gave_up = rt.fail_external(&second.id, "dms-1", "DMS still down", true).await.unwrap().unwrap();
    assert_eq!(gave_up, WorkerFailure::GaveUp);

    let view = rt.instance("x2").await.unwrap().unwrap();
    assert_eq!(view.instance.incidents.len(), 1);
    let incident = view.instance.incidents[0].clone();
    assert!(incident.message.contains("DMS still down"), "{}", incident.message);

    // The administrator retries: a third job, which a worker completes.
    applied(rt.retry_incident(&incident.id, admin()).await);
    let third = fetch_one(&rt, "dms-1", None).await;
    rt.complete_external(&third.id, "dms-1", json!({ "order_no": "RO-2" })).await.unwrap().unwrap();
    let view = rt.instance("x2").await.unwrap().unwrap();
    assert!(view.instance.incidents.is_empty());
    assert_eq!(view.instance.tasks.len(), 1, "at the approval");
    let kinds: Vec<String> = rt.audit("x2").await.unwrap().into_iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        ["started", "action_failed", "timer_fired", "action_failed", "incident_retried", "action_succeeded"]
    );
    rt.shutdown().await;
});

runtime_test!(an_administrator_skips_an_external_jobs_incident_and_the_order_moves_on_without_its_output, |env| {
    let rt = open_with_topics(&env).await;
    start(&rt, "sync", "x4", "粤B4").await;
    let job = fetch_one(&rt, "dms-1", None).await;
    // Not worth retrying: the incident comes at once.
    let gave_up = rt.fail_external(&job.id, "dms-1", "no such vehicle in the DMS", false).await.unwrap().unwrap();
    assert_eq!(gave_up, WorkerFailure::GaveUp);
    let incident = rt.instance("x4").await.unwrap().unwrap().instance.incidents[0].clone();

    applied(rt.skip_incident(&incident.id, admin()).await);
    let view = rt.instance("x4").await.unwrap().unwrap();
    assert!(view.instance.incidents.is_empty());
    assert_eq!(view.instance.tasks.len(), 1, "at the approval, without the DMS's answer");
    assert!(view.instance.data.get("push").is_none());
    // The skipped job is not handed out again.
    let after = rt.fetch_and_lock("dms-1", None, &topics(), 5, SignedDuration::from_mins(5)).await.unwrap();
    assert!(after.is_empty(), "{after:?}");
    let kinds: Vec<String> = rt.audit("x4").await.unwrap().into_iter().map(|r| r.kind).collect();
    assert_eq!(kinds, ["started", "action_failed", "incident_skipped"]);
    rt.shutdown().await;
});

/// A web service that accepts and never answers until `answer` is set, then answers 200.
async fn flaky_service(answer: Arc<AtomicBool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            if !answer.load(Ordering::SeqCst) {
                held.push(socket);
                continue;
            }
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let body = r#"{"ok":true}"#;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    base
}

runtime_test!(a_webhook_that_times_out_is_retried_then_raises_an_incident_an_administrator_resolves, |env| {
    let answer = Arc::new(AtomicBool::new(false));
    let base = flaky_service(Arc::clone(&answer)).await;
    // The call's own timeout is real time (a socket read), kept short; the backoff between
    // tries is a timer on the virtual clock.
    let caller = plugins::http::HttpCaller::new(
        vec![plugins::config::HostPattern::parse("127.0.0.1").unwrap()],
        Arc::new(plugins::config::Secrets::default()),
        Default::default(),
        Duration::from_millis(300),
        1 << 20,
    )
    .unwrap();
    let mut actions = ActionRegistry::with_builtins();
    actions.register(Arc::new(plugins::http::HttpAction::new(caller))).unwrap();
    let mut c = env.config();
    c.actions = actions;
    let rt = env.open_with(c).await;
    let yaml = SYNC.replace("action: topic:dms_sync", "action: http").replace(
        "input: { plate: =plate }",
        &format!("input: {{ method: POST, url: '{base}/orders', body: {{ plate: =plate }} }}"),
    );
    rt.deploy(&[process(&yaml)], "", Actor::System).await.unwrap();
    start(&rt, "sync", "x3", "粤B3").await;

    eventually("the first try timed out and a retry is planned", || async {
        let v = rt.instance("x3").await.unwrap().unwrap();
        !v.instance.timers.is_empty()
    })
    .await;
    env.clock.advance(SignedDuration::from_mins(2));
    eventually("the second try timed out and raised an incident", || async {
        !rt.instance("x3").await.unwrap().unwrap().instance.incidents.is_empty()
    })
    .await;
    let view = rt.instance("x3").await.unwrap().unwrap();
    let incident = view.instance.incidents[0].clone();
    assert!(incident.message.contains("after 2 tries"), "{}", incident.message);
    assert!(view.instance.tokens.iter().all(|t| !matches!(t.wait, Wait::Task { .. })), "not past the call");

    // The service is back; the administrator retries and the order moves on.
    answer.store(true, Ordering::SeqCst);
    applied(rt.retry_incident(&incident.id, admin()).await);
    eventually("the call succeeded and the approval opened", || async {
        rt.instance("x3").await.unwrap().unwrap().instance.tasks.len() == 1
    })
    .await;
    let view = rt.instance("x3").await.unwrap().unwrap();
    assert_eq!(view.instance.data["push"]["status"], json!(200));
    let kinds: Vec<String> = rt.audit("x3").await.unwrap().into_iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        ["started", "action_failed", "timer_fired", "action_failed", "incident_retried", "action_succeeded"]
    );
    let chain = rt.audit("x3").await.unwrap();
    assert!(chain[1].entry.contains("did not answer within 0.3 s"), "{}", chain[1].entry);
    rt.shutdown().await;
});

runtime_test!(the_stock_table_keeps_each_dealers_stock_and_takes_a_reservation_once, |env| {
    use plugins::inventory::{InventoryStore, Reservation, import_csv};
    let store = env.open_store().await;
    let table = store_sqlx::AnyInventory::for_store(&store);
    let csv = "part_no,description,on_hand,location\nP-100,Brake pad,4,A-01\nP-200,Oil filter,1,B-02\n";
    assert_eq!(import_csv(&table, "d1", csv).await.unwrap(), 2);
    assert_eq!(table.part("d1", "P-100").await.unwrap().unwrap().on_hand, 4);
    assert!(table.part("d2", "P-100").await.unwrap().is_none(), "another dealer's stock is its own");
    let broken = import_csv(&table, "d1", "part_no,description,on_hand,location\nP-100,Pad,9,A\nP-2,Disc,-1,A\n").await;
    assert!(broken.is_err());
    assert_eq!(table.part("d1", "P-100").await.unwrap().unwrap().on_hand, 4, "nothing imported from a broken file");

    let ask = |key: &str, quantity: u64| Reservation {
        key: key.into(),
        part_no: "P-100".into(),
        quantity,
        reference: "RO-1".into(),
    };
    let first = table.reserve("d1", ask("k1", 3)).await.unwrap();
    assert_eq!((first.reserved, first.on_hand), (true, 1));
    let again = table.reserve("d1", ask("k1", 3)).await.unwrap();
    assert_eq!(again, first, "the same key gives the first answer and takes nothing");
    let short = table.reserve("d1", ask("k2", 2)).await.unwrap();
    assert_eq!((short.reserved, short.on_hand), (false, 1));
    let elsewhere = table.reserve("d2", ask("k3", 1)).await.unwrap();
    assert_eq!((elsewhere.reserved, elsewhere.on_hand), (false, 0));
    // An import replaces what is on hand.
    import_csv(&table, "d1", "part_no,description,on_hand,location\nP-100,Brake pad,10,A-01\n").await.unwrap();
    assert_eq!(table.part("d1", "P-100").await.unwrap().unwrap().on_hand, 10);
    store.close().await;
});

/// The standard pack, compiled against the plugins' actions.
fn standard_pack(registry: &plugins::Registry) -> Vec<Arc<model::Process>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../processes/standard");
    let sandbox = registry.guard_sandbox(script::Limits::default()).unwrap();
    let options = model::Options {
        actions: Some(registry.action_names()),
        sandbox: Arc::new(sandbox),
        ..model::Options::default()
    };
    let pack = model::load_pack(&dir, &model::FsFiles, &options);
    assert!(!pack.has_errors(), "{:?}", pack.diagnostics);
    pack.processes
}

runtime_test!(the_standard_appointment_checks_stock_and_sends_its_messages_through_the_plugins, |env| {
    use plugins::inventory::import_csv;
    let store = env.open_store().await;
    let table = store_sqlx::AnyInventory::for_store(&store);
    import_csv(&table, "d1", "part_no,description,on_hand,location\nP-100,Front brake pads,6,A-01\n").await.unwrap();
    let registry = plugins::Registry::builder(plugins::config::PluginsConfig::default())
        .inventory(Arc::new(table) as Arc<dyn plugins::inventory::InventoryStore>)
        .build()
        .unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../processes/standard");
    registry.install_templates("standard", &dir).unwrap();
    let mut actions = ActionRegistry::with_builtins();
    for action in registry.actions().values() {
        actions.register(Arc::clone(action)).unwrap();
    }
    let mut c = env.config();
    c.actions = actions;
    let rt = env.open_with(c).await;
    rt.deploy(&standard_pack(&registry), "", Actor::System).await.unwrap();

    let req = runtime::StartRequest {
        dealer: "d1".into(),
        process_id: "appointment".into(),
        data: data(json!({ "order_no": "SO-0300", "source": "inbound", "phone": "13500000001" })),
        business_key: Some("SO-0300".into()),
        by: Actor::User { id: "cs1".into(), role: Some("customer_service_specialist".into()) },
        id: Some("ap1".into()),
    };
    applied(rt.start(req).await);
    let cs = User::new("cs1", ["customer_service_specialist"]);
    let sa = User::new("sa1", ["service_advisor"]);
    // Completes the open task of `step`, once the instance has reached it.
    let complete = |step: &'static str, by: User, form: serde_json::Value| {
        let rt = rt.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            let task = loop {
                let v = rt.instance("ap1").await.unwrap().unwrap();
                if let Some(t) = v.instance.tasks.iter().find(|t| t.step == step) {
                    break t.id.clone();
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the task `{step}` never opened: {:?}",
                    v.instance.tokens
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            applied(rt.complete(&task, by, form, None).await);
        }
    };
    complete(
        "capture",
        cs.clone(),
        json!({ "channel": "appointment_line", "owner_name": "錢先生", "phone": "13500000001",
                "model": "Zotye T600", "plate_no": "浙A11111", "request": "Squeak from the front brakes",
                "is_maintenance": false, "preferred_at": "2026-03-04T10:00:00+08:00", "new_customer": false,
                "warranty_warning": false, "emergency": false, "part_no": "P-100", "part_quantity": 1 }),
    )
    .await;
    complete(
        "estimate_repair",
        cs.clone(),
        json!({ "labour_hours": 1.5, "estimated_cost": 680, "preliminary_opinion": "Probably worn pads",
                "off_peak_suggested": true, "customer_told": true }),
    )
    .await;
    // The stock check runs through `inventory.check` on the dealer's table.
    complete("check_capacity", cs.clone(), json!({ "slot_at": "2026-03-04T10:00:00+08:00", "day_full": false })).await;
    complete(
        "fix_slot",
        sa.clone(),
        json!({ "appointment_at": "2026-03-04T10:00:00+08:00", "bay": "B3", "rough_cost": 680, "advisor_name": "Ma Jun",
                "expected_duration": "2 hours", "needs_reconfirmed": true, "documents_explained": true }),
    )
    .await;
    // The preparation in parallel; then the appointment waits for the visit, its reminders armed.
    let keeper = User::new("keeper", ["warehouse_keeper"]);
    let director = User::new("wd", ["workshop_director"]);
    complete("stage_parts", keeper, json!({ "prepicked": true, "shelf": "S1", "parts_board_updated": true })).await;
    complete("reserve_bay", director, json!({ "technician": "tech1", "bay": "B3", "workshop_board_updated": true }))
        .await;
    complete("update_board", sa.clone(), json!({})).await;
    eventually("the appointment waits for the visit", || async {
        let v = rt.instance("ap1").await.unwrap().unwrap();
        v.instance.tasks.iter().any(|t| t.step == "await_visit")
    })
    .await;
    // The reminders: a day and an hour before the appointment.
    for (at, text) in [("2026-03-03T10:00:00+08:00", "提醒您明天"), ("2026-03-04T09:00:00+08:00", "稍後會致電確認")]
    {
        env.clock.set(at.parse::<jiff::Timestamp>().unwrap());
        eventually(&format!("the reminder `{text}` is delivered"), || async {
            rt.audit("ap1").await.unwrap().iter().any(|r| r.kind == "action_succeeded" && r.entry.contains(text))
        })
        .await;
    }

    let chain = rt.audit("ap1").await.unwrap();
    let outputs: Vec<serde_json::Value> = chain
        .iter()
        .filter(|r| r.kind == "action_succeeded")
        .flat_map(|r| {
            let entry: serde_json::Value = serde_json::from_str(&r.entry).unwrap();
            let events: Vec<machine::Event> = serde_json::from_value(entry["events"].clone()).unwrap();
            events.into_iter().filter_map(|e| match e {
                machine::Event::ActionSucceeded { output, .. } => Some(output),
                _ => None,
            })
        })
        .collect();
    assert!(outputs.contains(&json!({ "available": true, "on_hand": 6 })), "{outputs:#?}");
    let sms = |needle: &str| outputs.iter().find(|o| o["zh"].as_str().is_some_and(|t| t.contains(needle))).cloned();
    let confirmation = sms("您的預約已確認").expect("the confirmation");
    assert_eq!(confirmation["to"], json!(["13500000001"]));
    assert!(confirmation["zh"].as_str().unwrap().starts_with("錢先生您好"), "{confirmation}");
    assert!(confirmation["en"].as_str().unwrap().contains("with service advisor Ma Jun"), "{confirmation}");
    let day = sms("提醒您明天").expect("the reminder a day before");
    assert!(day["en"].as_str().unwrap().contains("a reminder of your service appointment tomorrow"), "{day}");
    let hour = sms("稍後會致電確認").expect("the reminder an hour before");
    assert!(hour["en"].as_str().unwrap().contains("we will call shortly"), "{hour}");
    let report = rt.verify_audit().await.unwrap();
    assert!(report.broken.is_empty(), "{:?}", report.broken);
    rt.shutdown().await;
    store.close().await;
});

/// A DMS for the tests: one that hangs (only the runtime's timeout ends a try), or one that
/// answers at once.
enum Dms {
    Hangs { info: plugin_api::ActionInfo, calls: Arc<std::sync::atomic::AtomicUsize> },
    Answers { info: plugin_api::ActionInfo, answer: serde_json::Value },
}

fn info(name: &str, output: serde_json::Value) -> plugin_api::ActionInfo {
    plugin_api::ActionInfo {
        name: name.into(),
        version: "1.0.0".into(),
        description: format!("{name}, for the tests"),
        input_schema: json!({ "type": "object" }),
        output_schema: output,
        capabilities: vec![],
    }
}

impl plugin_api::Action for Dms {
    fn info(&self) -> &plugin_api::ActionInfo {
        match self {
            Dms::Hangs { info, .. } | Dms::Answers { info, .. } => info,
        }
    }
    fn invoke(
        &self,
        _: plugin_api::Invocation,
    ) -> plugin_api::BoxFuture<'_, Result<serde_json::Value, plugin_api::Error>> {
        match self {
            Dms::Hangs { calls, .. } => {
                calls.fetch_add(1, Ordering::SeqCst);
                Box::pin(std::future::pending())
            }
            Dms::Answers { answer, .. } => {
                let answer = answer.clone();
                Box::pin(async move { Ok(answer) })
            }
        }
    }
}

runtime_test!(a_hanging_action_delays_only_its_own_instance_until_the_runtime_gives_up_on_it, |env| {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let order =
        json!({ "type": "object", "required": ["order_no"], "properties": { "order_no": { "type": "string" } } });
    let mut actions = ActionRegistry::with_builtins();
    actions
        .register(Arc::new(Dms::Hangs { info: info("dms.hangs", order.clone()), calls: Arc::clone(&calls) }))
        .unwrap();
    actions
        .register(Arc::new(Dms::Answers { info: info("dms.answers", order), answer: json!({ "order_no": "RO-1" }) }))
        .unwrap();
    let mut c = env.config();
    c.actions = actions;
    // Real time, kept short: how long the dispatcher waits for one try.
    c.action_timeout = Duration::from_millis(300);
    let rt = env.open_with(c).await;
    rt.deploy(&[process(&SYNC.replace("topic:dms_sync", "dms.hangs"))], "", Actor::System).await.unwrap();
    rt.deploy(
        &[process(&SYNC.replace("process: sync", "process: sync2").replace("topic:dms_sync", "dms.answers"))],
        "",
        Actor::System,
    )
    .await
    .unwrap();

    start(&rt, "sync", "h1", "粤B1").await;
    eventually("the hanging action was called", || async { calls.load(Ordering::SeqCst) == 1 }).await;
    start(&rt, "sync2", "a1", "粤B2").await;
    eventually("the other order got its answer and moved on", || async {
        rt.instance("a1").await.unwrap().unwrap().instance.tasks.len() == 1
    })
    .await;
    assert_eq!(rt.instance("a1").await.unwrap().unwrap().instance.data["push"]["order_no"], json!("RO-1"));

    // The hanging try ends at the runtime's timeout, as a failure that may be retried.
    eventually("the hanging try timed out and a retry is planned", || async {
        let v = rt.instance("h1").await.unwrap().unwrap();
        !v.instance.timers.is_empty()
    })
    .await;
    let view = rt.instance("h1").await.unwrap().unwrap();
    assert!(view.instance.tasks.is_empty() && view.instance.incidents.is_empty(), "{view:?}");
    let chain = rt.audit("h1").await.unwrap();
    assert_eq!(chain.last().unwrap().kind, "action_failed");
    assert!(chain.last().unwrap().entry.contains("no answer within 0.3 s"), "{}", chain.last().unwrap().entry);
    rt.shutdown().await;
});

runtime_test!(an_answer_that_breaks_the_actions_schema_raises_an_incident_naming_the_field, |env| {
    let order =
        json!({ "type": "object", "required": ["order_no"], "properties": { "order_no": { "type": "string" } } });
    let mut actions = ActionRegistry::with_builtins();
    actions
        .register(Arc::new(Dms::Answers { info: info("dms.answers", order), answer: json!({ "order_no": 42 }) }))
        .unwrap();
    let mut c = env.config();
    c.actions = actions;
    let rt = env.open_with(c).await;
    rt.deploy(&[process(&SYNC.replace("topic:dms_sync", "dms.answers"))], "", Actor::System).await.unwrap();
    start(&rt, "sync", "b1", "粤B3").await;
    eventually("the answer was refused and an incident raised", || async {
        !rt.instance("b1").await.unwrap().unwrap().instance.incidents.is_empty()
    })
    .await;
    let view = rt.instance("b1").await.unwrap().unwrap();
    let message = &view.instance.incidents[0].message;
    assert!(message.contains("/order_no"), "{message}");
    assert!(view.instance.data.get("push").is_none(), "nothing of the refused answer was kept");
    rt.shutdown().await;
});
