//! Processes run through the runtime and the real store, on every backend.

use jiff::SignedDuration;
use machine::{Actor, Event, Rejection, Wait};
use runtime::Refused;
use serde_json::json;
use store::InboxQuery;

use crate::harness::*;

runtime_test!(a_service_order_runs_to_its_end_with_a_verified_audit_trail, |env| {
    let rt = env.open().await;
    let out = rt.deploy(&[process(SERVICE)], "", Actor::System).await.unwrap();
    assert!(out[0].new);
    let started = start(&rt, "service", "s1", "粤A12345").await;
    assert!(started.state.is_none(), "only a completion carries the instance");

    let inbox = rt
        .inbox_page(&InboxQuery {
            dealer: "d1".into(),
            roles: vec!["advisor".into()],
            user: Some("u1".into()),
            limit: 50,
            ..InboxQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].title_en, "Receive the car");
    assert_eq!(inbox[0].due_at, Some(t0().as_millisecond() + 3_600_000));

    let task = inbox[0].id.clone();
    let completed = applied(rt.complete(&task, advisor("u1"), json!({}), None).await);
    // A completion answers with the instance it left (the inbox renders it); other commands
    // do not carry the copy.
    let after = completed.state.as_deref().expect("a completion carries the instance");
    assert_eq!((after.revision, after.tasks.len()), (completed.revision, 0));
    // The notification runs from the outbox; then the instance waits for its cool-down timer.
    eventually("the instance waits at cool_down", || async {
        let v = rt.instance("s1").await.unwrap().unwrap();
        v.instance.tokens.iter().any(|t| matches!(t.wait, Wait::Timer { .. }))
    })
    .await;
    env.clock.advance(SignedDuration::from_hours(3));
    eventually("the approval task opens", || async {
        rt.instance("s1").await.unwrap().unwrap().instance.tasks.len() == 1
    })
    .await;
    let approve = open_task(&rt, "s1").await;
    let done = applied(rt.complete(&approve, foreman("u2"), json!({}), None).await);
    assert!(done.ended);

    let chain = rt.audit("s1").await.unwrap();
    let kinds: Vec<&str> = chain.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["started", "task_completed", "action_succeeded", "timer_fired", "task_completed"]);
    assert_eq!(chain[1].actor, r#"{"id":"u1","role":"advisor","type":"user"}"#);
    assert_eq!(chain[1].step.as_deref(), Some("receive_car"));
    assert!(chain.iter().all(|r| r.definition_hash.as_deref() == Some(out[0].hash.as_str())));
    let ends = events(&chain).into_iter().filter(|e| matches!(e, Event::Ended { .. })).count();
    assert_eq!(ends, 1);
    let report = rt.verify_audit().await.unwrap();
    assert!(report.broken.is_empty(), "{:?}", report.broken);
    assert_eq!(report.chains, 2, "the instance and the deployment chain");
    rt.shutdown().await;
});

runtime_test!(two_completions_of_one_task_at_the_same_moment_exactly_one_wins, |env| {
    let rt = env.open().await;
    rt.deploy(&[process(SERVICE)], "", Actor::System).await.unwrap();
    start(&rt, "service", "s1", "A1").await;
    let task = open_task(&rt, "s1").await;

    let (a, b) = tokio::join!(rt.claim(&task, advisor("u1")), rt.claim(&task, advisor("u2")),);
    let claims = [a.unwrap(), b.unwrap()];
    assert_eq!(claims.iter().filter(|r| r.is_ok()).count(), 1);
    let winner = if claims[0].is_ok() { "u1" } else { "u2" };
    let loser = claims.into_iter().find_map(Result::err).unwrap();
    assert!(matches!(loser, Refused::Rejected(Rejection::ClaimedByOther { .. })), "{loser:?}");
    applied(rt.unclaim(&task, advisor(winner)).await);

    let (a, b) = tokio::join!(
        rt.complete(&task, advisor("u1"), json!({}), None),
        rt.complete(&task, advisor("u2"), json!({}), None),
    );
    let results = [a.unwrap(), b.unwrap()];
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    let loser = results.into_iter().find_map(Result::err).unwrap();
    assert_eq!(loser, Refused::TaskGone { task: task.clone() });
    assert_eq!(loser.to_string(), format!("the task `{task}` was already completed or cancelled"));
    let completions = rt.audit("s1").await.unwrap().iter().filter(|r| r.kind == "task_completed").count();
    assert_eq!(completions, 1);
    rt.shutdown().await;
});

runtime_test!(a_completion_repeated_with_its_idempotency_key_answers_the_first_result, |env| {
    let rt = env.open().await;
    rt.deploy(&[process(SERVICE)], "", Actor::System).await.unwrap();
    start(&rt, "service", "s1", "A1").await;
    let task = open_task(&rt, "s1").await;
    let first = applied(rt.complete(&task, advisor("u1"), json!({}), Some("req-1".into())).await);
    assert!(!first.duplicate);
    let again = applied(rt.complete(&task, advisor("u1"), json!({}), Some("req-1".into())).await);
    assert!(again.duplicate);
    assert_eq!(again.revision, first.revision);
    // Without the key (or with another), the second completion is a conflict.
    let other = refused(rt.complete(&task, advisor("u1"), json!({}), Some("req-2".into())).await);
    assert!(matches!(other, Refused::TaskGone { .. }));
    rt.shutdown().await;
});

runtime_test!(redeploying_identical_content_is_a_no_op_and_instances_keep_their_version, |env| {
    let rt = env.open().await;
    let v1 = rt.deploy(&[process(SERVICE)], "", Actor::System).await.unwrap();
    let again = rt.deploy(&[process(SERVICE)], "", Actor::System).await.unwrap();
    assert!(v1[0].new);
    assert!(!again[0].new);
    assert_eq!(v1[0].hash, again[0].hash);
    start(&rt, "service", "old", "A1").await;

    let v2_yaml = SERVICE.replace("version: 1", "version: 2").replace("Receive the car", "Receive the vehicle");
    let v2 = rt.deploy(&[process(&v2_yaml)], "", Actor::System).await.unwrap();
    assert!(v2[0].new);
    assert_ne!(v2[0].hash, v1[0].hash);
    start(&rt, "service", "new", "A2").await;

    let old = rt.instance("old").await.unwrap().unwrap();
    let new = rt.instance("new").await.unwrap().unwrap();
    assert_eq!(old.instance.process_hash, v1[0].hash);
    assert_eq!(new.instance.process_hash, v2[0].hash);
    assert_eq!(old.process.version, 1);
    assert_eq!(new.process.version, 2);
    // The old instance goes on, on its own version.
    let task = open_task(&rt, "old").await;
    assert_eq!(rt.task(&task).await.unwrap().unwrap().title_en, "Receive the car");
    applied(rt.complete(&task, advisor("u1"), json!({}), None).await);
    let deployed = rt.audit("dealer:*").await.unwrap();
    assert_eq!(deployed.len(), 2, "one entry per deployment that changed something");
    rt.shutdown().await;
});

runtime_test!(a_child_runs_and_a_message_sent_before_anyone_listens_reaches_its_parent, |env| {
    let rt = env.open().await;
    rt.deploy(&[process(PARENT), process(CHILD)], "", Actor::System).await.unwrap();
    start(&rt, "parent", "p1", "B7").await;
    eventually("the parent ends", || async { ended(&rt, "p1").await }).await;
    let parent = rt.instance("p1").await.unwrap().unwrap();
    let child_id = &parent.instance.children[0].instance;
    assert_eq!(runtime::instance_of(child_id), "p1", "a child's id tells its parent");
    let child = rt.instance(child_id).await.unwrap().unwrap();
    assert!(child.instance.is_ended());
    assert_eq!(child.instance.parent.as_ref().unwrap().instance, "p1");
    let kinds: Vec<String> = rt.audit("p1").await.unwrap().into_iter().map(|r| r.kind).collect();
    assert_eq!(kinds, ["started", "child_ended", "message_received"]);
    let stats = store::Store::stats(rt.store()).await.unwrap();
    assert_eq!((stats.outbox, stats.timers, stats.running), (0, 0, 0));
    rt.shutdown().await;
});

runtime_test!(an_unknown_action_raises_an_incident_that_an_administrator_can_skip, |env| {
    let rt = env.open().await;
    let yaml = SERVICE.replace("action: notify", "action: dms.push");
    rt.deploy(&[process(&yaml)], "", Actor::System).await.unwrap();
    start(&rt, "service", "s1", "C3").await;
    let task = open_task(&rt, "s1").await;
    applied(rt.complete(&task, advisor("u1"), json!({}), None).await);
    eventually("an incident is raised", || async {
        !rt.instance("s1").await.unwrap().unwrap().instance.incidents.is_empty()
    })
    .await;
    let v = rt.instance("s1").await.unwrap().unwrap();
    let incident = &v.instance.incidents[0];
    assert!(incident.message.contains("no action named `dms.push` is installed"), "{}", incident.message);
    applied(rt.skip_incident(&incident.id, machine::User::new("admin", ["admin"])).await);
    let v = rt.instance("s1").await.unwrap().unwrap();
    assert!(v.instance.tokens.iter().any(|t| matches!(t.wait, Wait::Timer { .. })), "now at cool_down");
    rt.shutdown().await;
});
