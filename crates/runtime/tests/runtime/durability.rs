//! What survives: timers across restarts and nodes, and the audit trail against tampering.

use std::collections::BTreeMap;

use jiff::SignedDuration;
use machine::{Actor, Event};
use serde_json::json;

use crate::harness::*;

/// A task with a reminder after 1 hour that recurs hourly, and a wait of 2 hours after it.
const REMINDED: &str = r#"
process: reminded
version: 1
title: { zh: 提醒, en: Reminded }
roles: [advisor]
data:
  type: object
  properties:
    plate: { type: string }
start: hold
steps:
  hold:
    type: wait
    after: PT2H
    next: done
  done:
    type: end
"#;

runtime_test!(overdue_timers_fire_once_after_a_restart_and_are_marked_late, |env| {
    let rt = env.open().await;
    rt.deploy(&[process(REMINDED)], "", Actor::System).await.unwrap();
    for i in 0..5 {
        start(&rt, "reminded", &format!("r{i}"), "X").await;
    }
    rt.shutdown().await;

    // The engine is down while the timers fall due.
    env.clock.advance(SignedDuration::from_hours(5));
    let rt = env.open().await;
    for i in 0..5 {
        let id = format!("r{i}");
        eventually("the overdue timer fires", || async { ended(&rt, &id).await }).await;
        let chain = rt.audit(&id).await.unwrap();
        let fired: Vec<Event> = events(&chain).into_iter().filter(|e| matches!(e, Event::TimerFired { .. })).collect();
        assert_eq!(fired.len(), 1, "{fired:?}");
        let Event::TimerFired { late_secs, .. } = &fired[0] else { unreachable!() };
        assert_eq!(*late_secs, 3 * 3600);
        let entry: serde_json::Value = serde_json::from_str(&chain[1].entry).unwrap();
        assert_eq!(entry["late_secs"], json!(3 * 3600), "marked late in the audit entry");
        assert_eq!(chain[1].actor, r#"{"type":"timer"}"#);
    }
    rt.shutdown().await;
    // Reopening again fires nothing more.
    let rt = env.open().await;
    env.clock.advance(SignedDuration::from_hours(5));
    let stats = store::Store::stats(rt.store()).await.unwrap();
    assert_eq!(stats.timers, 0);
    assert_eq!(rt.audit("r0").await.unwrap().len(), 2);
    rt.shutdown().await;
});

/// Two engine nodes on one PostgreSQL database: every timer fires exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_the_timers_and_each_fires_exactly_once() {
    let Some(env) = Env::new(Backend::Postgres).await else { return };
    let a = env.open().await;
    let b = env.open().await;
    a.deploy(&[process(REMINDED)], "", Actor::System).await.unwrap();
    let n = 60;
    for i in 0..n {
        let node = if i % 2 == 0 { &a } else { &b };
        start(node, "reminded", &format!("n{i}"), "X").await;
    }
    env.clock.advance(SignedDuration::from_hours(3));
    eventually("every instance ended", || async { store::Store::stats(a.store()).await.unwrap().running == 0 }).await;
    let mut fired_per_timer: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..n {
        for e in events(&a.audit(&format!("n{i}")).await.unwrap()) {
            if let Event::TimerFired { timer, .. } = e {
                *fired_per_timer.entry(timer).or_default() += 1;
            }
        }
    }
    assert_eq!(fired_per_timer.len(), n);
    assert!(fired_per_timer.values().all(|&c| c == 1), "{fired_per_timer:?}");
    assert!(a.verify_audit().await.unwrap().broken.is_empty());
    a.shutdown().await;
    b.shutdown().await;
    env.cleanup().await;
}

/// Two engine nodes on one PostgreSQL database: of two completions of the same task, one on
/// each node, exactly one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_completing_one_task_at_once_exactly_one_wins() {
    let Some(env) = Env::new(Backend::Postgres).await else { return };
    let a = env.open().await;
    let b = env.open().await;
    a.deploy(&[process(SERVICE)], "", Actor::System).await.unwrap();
    for i in 0..20 {
        let id = format!("s{i}");
        start(&a, "service", &id, "X").await;
        // Both nodes know the instance (cached), so the race is decided by the database.
        let task = open_task(&a, &id).await;
        let _ = b.instance(&id).await.unwrap();
        let (x, y) = tokio::join!(
            a.complete(&task, advisor("u1"), json!({}), None),
            b.complete(&task, advisor("u2"), json!({}), None),
        );
        let results = [x.unwrap(), y.unwrap()];
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
        let completions = a.audit(&id).await.unwrap().iter().filter(|r| r.kind == "task_completed").count();
        assert_eq!(completions, 1);
    }
    a.shutdown().await;
    b.shutdown().await;
    env.cleanup().await;
}

/// A row edited behind the database's back (the trigger dropped, the file edited) is found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_the_first_entry_changed_behind_the_database() {
    let env = Env::new(Backend::Sqlite).await.unwrap();
    let rt = env.open().await;
    rt.deploy(&[process(SERVICE)], "", Actor::System).await.unwrap();
    start(&rt, "service", "s1", "A1").await;
    start(&rt, "service", "s2", "A2").await;
    let task = open_task(&rt, "s1").await;
    applied(rt.complete(&task, advisor("u1"), json!({}), None).await);
    assert!(rt.verify_audit().await.unwrap().broken.is_empty());
    rt.shutdown().await;

    // Through SQL the trail cannot be changed...
    let pool = sqlx::SqlitePool::connect(&env.url).await.unwrap();
    let refused = sqlx::query("UPDATE audit SET actor = 'x' WHERE chain = 's1'").execute(&pool).await.unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
    let refused = sqlx::query("DELETE FROM audit WHERE chain = 's1'").execute(&pool).await.unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
    // ...but someone with the file can drop the trigger and forge who completed the task.
    sqlx::query("DROP TRIGGER audit_no_update").execute(&pool).await.unwrap();
    sqlx::query(
        "UPDATE audit SET actor = '{\"id\":\"u9\",\"role\":\"advisor\",\"type\":\"user\"}' \
         WHERE chain = 's1' AND chain_seq = 2",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = store_sqlx::open(&env.url, &store_sqlx::Options::default()).await.unwrap();
    let report = runtime::verify(&store).await.unwrap();
    assert_eq!(report.chains, 3);
    assert_eq!(report.broken.len(), 1, "{:?}", report.broken);
    assert_eq!((report.broken[0].chain.as_str(), report.broken[0].chain_seq), ("s1", 2));
    assert!(report.broken[0].problem.starts_with("expected hash "), "{}", report.broken[0].problem);
    store.close().await;
    env.cleanup().await;
}
