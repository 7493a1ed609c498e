//! The storage contract, one behaviour per test, the same on every backend.

use store::audit::{self, Verifier};
use store::report::{Group, Load, OverdueQuery, PeriodQuery, ReportStore, WorkloadQuery};
use store::{Change, Error, InboxCursor, InboxQuery, Lease, NewOutbox, Store, Subscription};

use crate::harness::*;

fn lease(owner: &str, now: i64, limit: u32) -> Lease {
    Lease { owner: owner.into(), now, until: now + 1_000, limit }
}

store_test!(definitions_are_content_addressed_and_redeploying_is_a_no_op, |t| {
    let s = &t.store;
    let def = store::DefinitionRow {
        hash: "h1".into(),
        process_id: "repair".into(),
        version: 1,
        pack_id: Some("std".into()),
        pack_version: Some("1.0.0".into()),
        document: r#"{"process":{"id":"repair"}}"#.into(),
        deployed_at: 5,
    };
    assert!(s.put_definition(&def).await.unwrap());
    assert!(!s.put_definition(&def).await.unwrap());
    assert_eq!(s.definition("h1").await.unwrap(), Some(def.clone()));
    assert_eq!(s.definition("nope").await.unwrap(), None);

    assert!(s.deploy("", "repair", "h1", 10).await.unwrap());
    assert!(!s.deploy("", "repair", "h1", 11).await.unwrap());
    assert_eq!(s.current_deployment("d7", "repair").await.unwrap().as_deref(), Some("h1"));

    let v2 = store::DefinitionRow { hash: "h2".into(), version: 2, ..def };
    s.put_definition(&v2).await.unwrap();
    assert!(s.deploy("d7", "repair", "h2", 12).await.unwrap());
    assert_eq!(s.current_deployment("d7", "repair").await.unwrap().as_deref(), Some("h2"));
    assert_eq!(s.current_deployment("d8", "repair").await.unwrap().as_deref(), Some("h1"));
    assert_eq!(s.current_deployment("d8", "other").await.unwrap(), None);
});

store_test!(a_write_on_a_stale_revision_is_refused_and_writes_nothing, |t| {
    let s = &t.store;
    s.commit(&[write("i1", 1, None)]).await.unwrap();
    assert_eq!(s.instance("i1").await.unwrap().unwrap().revision, 1);

    let mut stale = write("i1", 2, Some(0));
    stale.tasks_upserted.push(task("i1-t1", "d1", &["a"], None, None));
    match s.commit(&[stale]).await {
        Err(Error::Conflict { instances }) => assert_eq!(instances, vec!["i1".to_string()]),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(s.instance("i1").await.unwrap().unwrap().revision, 1);
    assert_eq!(s.task("i1-t1").await.unwrap(), None);

    // Creating an instance that exists is a conflict too.
    assert!(matches!(s.commit(&[write("i1", 1, None)]).await, Err(Error::Conflict { .. })));

    s.commit(&[write("i1", 2, Some(1))]).await.unwrap();
    assert_eq!(s.instance("i1").await.unwrap().unwrap().revision, 2);
});

store_test!(a_batch_is_all_or_nothing, |t| {
    let s = &t.store;
    s.commit(&[write("i1", 1, None)]).await.unwrap();
    let mut good = write("i2", 1, None);
    good.timers_set.push(timer("i2-k1", 50));
    let bad = write("i1", 5, Some(3));
    assert!(matches!(s.commit(&[good, bad]).await, Err(Error::Conflict { .. })));
    assert_eq!(s.instance("i2").await.unwrap(), None);
    assert_eq!(s.next_timer_at().await.unwrap(), None);
});

store_test!(a_batch_with_several_transitions_of_one_instance_keeps_the_last_state, |t| {
    let s = &t.store;
    let mut first = write("i1", 1, None);
    first.tasks_upserted.push(task("i1-t1", "d1", &["a"], None, Some(100)));
    let mut second = write("i1", 2, Some(1));
    second.tasks_removed.push("i1-t1".into());
    second.tasks_upserted.push(task("i1-t2", "d1", &["a"], None, Some(200)));
    let mut third = write("i1", 3, Some(2));
    third.tasks_upserted.push(task("i1-t2", "d1", &["a"], Some("u1"), Some(200)));
    s.commit(&[first, second, third]).await.unwrap();
    assert_eq!(s.instance("i1").await.unwrap().unwrap().revision, 3);
    assert_eq!(s.task("i1-t1").await.unwrap(), None);
    assert_eq!(s.task("i1-t2").await.unwrap().unwrap().assignee.as_deref(), Some("u1"));
    assert_eq!(s.stats().await.unwrap().tasks, 1);
});

store_test!(the_inbox_merges_role_ranges_and_the_assignee_range_by_due_time, |t| {
    let s = &t.store;
    let mut c = write("i1", 1, None);
    c.tasks_upserted = vec![
        task("i1-t1", "d1", &["advisor"], None, Some(300)),
        task("i1-t2", "d1", &["advisor", "foreman"], None, Some(100)),
        task("i1-t3", "d1", &["foreman"], None, None),
        task("i1-t4", "d1", &["advisor"], Some("u1"), Some(250)),
        task("i1-t5", "d1", &["advisor"], Some("u2"), Some(50)),
        task("i1-t6", "d2", &["advisor"], None, Some(10)),
        task("i1-t7", "d1", &["cashier"], None, Some(1)),
    ];
    s.commit(&[c]).await.unwrap();
    let q = InboxQuery {
        dealer: "d1".into(),
        roles: vec!["advisor".into(), "foreman".into()],
        user: Some("u1".into()),
        process_id: None,
        after: None,
        limit: 3,
    };
    let ids = |rows: Vec<store::TaskRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let page = s.inbox_page(&q).await.unwrap();
    assert_eq!(ids(page.clone()), ["i1-t2", "i1-t4", "i1-t1"], "i1-t2 is offered to both roles, and counted once");
    let next = InboxQuery { after: page.last().map(InboxCursor::of), ..q.clone() };
    assert_eq!(ids(s.inbox_page(&next).await.unwrap()), ["i1-t3"]);
    // The inbox search reads the same ranges, keys first, and counts a task once too.
    let search = store::search::TaskSearch {
        dealer: "d1".into(),
        roles: vec!["advisor".into(), "foreman".into()],
        user: Some("u1".into()),
        limit: 3,
        ..Default::default()
    };
    let found = store::search::SearchStore::search_tasks(s, &search).await.unwrap();
    assert_eq!(ids(found.clone()), ["i1-t2", "i1-t4", "i1-t1"]);
    let more = store::search::TaskSearch { after: found.last().map(InboxCursor::of), ..search };
    assert_eq!(ids(store::search::SearchStore::search_tasks(s, &more).await.unwrap()), ["i1-t3"]);

    // Claiming moves a task out of the pool into the claimer's range.
    let mut claim = write("i1", 2, Some(1));
    claim.tasks_upserted.push(task("i1-t2", "d1", &["advisor", "foreman"], Some("u9"), Some(100)));
    s.commit(&[claim]).await.unwrap();
    assert_eq!(ids(s.inbox_page(&q).await.unwrap()), ["i1-t4", "i1-t1", "i1-t3"]);
    let other = InboxQuery { user: Some("u9".into()), roles: vec![], ..q.clone() };
    assert_eq!(ids(s.inbox_page(&other).await.unwrap()), ["i1-t2"]);

    let filtered = InboxQuery { process_id: Some("other".into()), ..q };
    assert!(s.inbox_page(&filtered).await.unwrap().is_empty());
});

store_test!(due_timers_are_taken_in_due_order_and_leased, |t| {
    let s = &t.store;
    let mut c = write("i1", 1, None);
    c.timers_set = vec![timer("i1-k1", 300), timer("i1-k2", 100), timer("i1-k3", 200), timer("i1-k4", 900)];
    s.commit(&[c]).await.unwrap();
    assert_eq!(s.next_timer_at().await.unwrap(), Some(100));

    let taken = s.take_due_timers(&lease("a", 500, 2)).await.unwrap();
    assert_eq!(taken.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["i1-k2", "i1-k3"]);
    // Leased: another node gets only the rest.
    let taken = s.take_due_timers(&lease("b", 500, 10)).await.unwrap();
    assert_eq!(taken.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["i1-k1"]);
    assert!(s.take_due_timers(&lease("b", 600, 10)).await.unwrap().is_empty());
    // After the lease ran out (the taker died), they can be taken again.
    assert_eq!(s.take_due_timers(&lease("b", 1_600, 10)).await.unwrap().len(), 4);
    s.release_leases().await.unwrap();
    assert_eq!(s.take_due_timers(&lease("c", 1_600, 10)).await.unwrap().len(), 4);

    let mut fired = write("i1", 2, Some(1));
    fired.timers_removed.push("i1-k2".into());
    s.commit(&[fired]).await.unwrap();
    assert_eq!(s.next_timer_at().await.unwrap(), Some(200));
});

store_test!(outbox_rows_are_queued_once_per_key_taken_deferred_and_settled, |t| {
    let s = &t.store;
    let row = |key: &str| NewOutbox {
        instance_id: "i1".into(),
        dealer: "d1".into(),
        effect: format!("{{\"k\":\"{key}\"}}"),
        idempotency_key: key.into(),
        available_at: 10,
    };
    let mut c = write("i1", 1, None);
    c.outbox = vec![row("j1#1"), row("j2#1")];
    s.commit(&[c]).await.unwrap();
    let mut again = write("i1", 2, Some(1));
    again.outbox = vec![row("j1#1")];
    s.commit(&[again]).await.unwrap();
    assert_eq!(s.stats().await.unwrap().outbox, 2);

    assert!(s.take_outbox(&lease("a", 5, 10)).await.unwrap().is_empty(), "not yet available");
    let taken = s.take_outbox(&lease("a", 20, 10)).await.unwrap();
    assert_eq!(taken.iter().map(|o| o.idempotency_key.as_str()).collect::<Vec<_>>(), ["j1#1", "j2#1"]);
    assert!(taken.iter().all(|o| o.attempts == 1));
    assert!(s.take_outbox(&lease("b", 20, 10)).await.unwrap().is_empty(), "leased");

    s.defer_outbox(taken[1].seq, 100).await.unwrap();
    let done = Change { outbox_done: vec![taken[0].seq], ..Change::default() };
    s.commit(&[done]).await.unwrap();
    assert!(s.take_outbox(&lease("b", 50, 10)).await.unwrap().is_empty());
    let retried = s.take_outbox(&lease("b", 100, 10)).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].attempts, 2);
});

store_test!(subscriptions_and_buffered_messages_match_by_dealer_name_and_key, |t| {
    let s = &t.store;
    let sub = |i: &str, key: Option<&str>| Subscription {
        dealer: "d1".into(),
        name: "parts_arrived".into(),
        key: key.map(str::to_string),
        instance_id: i.into(),
    };
    let mut c = write("i1", 1, None);
    c.subscribed = vec![sub("i1", Some("po-1")), sub("i2", None)];
    c.buffered = vec![store::BufferedMessage {
        id: 0,
        dealer: "d1".into(),
        name: "recall".into(),
        key: Some("vin-9".into()),
        payload: "{\"x\":1}".into(),
        at: 5,
    }];
    s.commit(&[c]).await.unwrap();
    assert_eq!(s.subscribers("d1", "parts_arrived", Some("po-1")).await.unwrap(), ["i1", "i2"]);
    assert_eq!(s.subscribers("d1", "parts_arrived", Some("po-2")).await.unwrap(), ["i2"]);
    assert!(s.subscribers("d2", "parts_arrived", Some("po-1")).await.unwrap().is_empty());

    assert!(s.buffered_message("d1", "recall", Some("vin-8")).await.unwrap().is_none());
    let b = s.buffered_message("d1", "recall", Some("vin-9")).await.unwrap().unwrap();
    assert_eq!(b.payload, "{\"x\":1}");
    assert!(s.buffered_message("d1", "recall", None).await.unwrap().is_some(), "no key takes any");

    let mut c = write("i1", 2, Some(1));
    c.unsubscribed = vec![sub("i1", Some("po-1"))];
    c.buffered_taken = vec![b.id];
    s.commit(&[c]).await.unwrap();
    assert_eq!(s.subscribers("d1", "parts_arrived", Some("po-1")).await.unwrap(), ["i2"]);
    assert!(s.buffered_message("d1", "recall", None).await.unwrap().is_none());
});

store_test!(audit_chains_append_in_order_and_verify, |t| {
    let s = &t.store;
    let e1 = entry("i1", None, "started");
    let e2 = entry("i1", Some(&e1), "task_completed");
    let mut c = write("i1", 1, None);
    c.audit = vec![e1.clone(), e2.clone()];
    s.commit(&[c]).await.unwrap();
    // A position is taken once.
    let mut dup = write("i1", 2, Some(1));
    dup.audit = vec![entry("i1", Some(&e1), "task_completed")];
    assert!(matches!(s.commit(&[dup]).await, Err(Error::Conflict { .. })));

    let d1 = s
        .append_audit(
            audit::Draft {
                chain: "dealer:d1".into(),
                actor: serde_json::json!({ "type": "user", "id": "admin", "role": null }),
                kind: "deployed".into(),
                step: None,
                entry: serde_json::json!({ "process": "p" }),
                definition_hash: None,
            },
            3_000,
        )
        .await
        .unwrap();
    assert_eq!(d1.chain_seq, 1);

    let chain = s.audit_chain("i1").await.unwrap();
    assert_eq!(chain.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(), ["started", "task_completed"]);
    assert!(chain[0].seq < chain[1].seq);
    audit::verify_chain(&chain).unwrap();
    assert_eq!(s.audit_since(chain[0].seq, 10).await.unwrap().len(), 2);

    let mut v = Verifier::new();
    let mut after = None;
    loop {
        let rows = s.audit_scan(after.clone(), 1).await.unwrap();
        let Some(last) = rows.last() else { break };
        after = Some((last.chain.clone(), last.chain_seq));
        rows.iter().for_each(|r| v.push(r));
    }
    assert_eq!((v.n_chains, v.n_entries, v.broken.len()), (2, 3, 0));

    // The same rows with one field changed do not verify, and the break is named.
    let mut forged = chain.clone();
    forged[1].entry = forged[1].entry.replace("task_completed", "task_cancelled");
    let broken = audit::verify_chain(&forged).unwrap_err();
    assert_eq!((broken.chain.as_str(), broken.chain_seq), ("i1", 2));
});

store_test!(the_database_refuses_to_edit_or_delete_audit_rows, |t| {
    let e1 = entry("i1", None, "started");
    let mut c = write("i1", 1, None);
    c.audit = vec![e1];
    t.store.commit(&[c]).await.unwrap();
    if let Some(r) = t.raw("UPDATE audit SET kind = 'forged'").await {
        assert!(r.unwrap_err().contains("append-only"));
    }
    if let Some(r) = t.raw("DELETE FROM audit").await {
        assert!(r.unwrap_err().contains("append-only"));
    }
    assert_eq!(t.store.audit_chain("i1").await.unwrap()[0].kind, "started");
});

store_test!(the_workload_counts_pools_by_role_holders_by_person_and_dealers_against_due_times, |t| {
    let s = &t.store;
    let mut c = write("i1", 1, None);
    c.tasks_upserted = vec![
        task("i1-t1", "d1", &["advisor"], None, Some(50)),
        task("i1-t2", "d1", &["advisor", "foreman"], None, Some(150)),
        task("i1-t3", "d1", &["foreman"], Some("u1"), Some(90)),
        task("i1-t4", "d1", &["foreman"], Some("u1"), None),
        task("i1-t5", "d2", &["advisor"], None, Some(10)),
    ];
    s.commit(&[c]).await.unwrap();
    let load = |open, overdue, due_soon| Load { open, overdue, due_soon };
    let group = |key: &str, l: Load| Group { key: key.into(), load: l };
    // Now is 100; due soon until 200.
    let w = s.workload(&WorkloadQuery { dealer: Some("d1".into()), now: 100, soon: 200 }).await.unwrap();
    assert_eq!(w.by_role, vec![group("advisor", load(2, 1, 1)), group("foreman", load(1, 0, 1))]);
    assert_eq!(w.by_assignee, vec![group("u1", load(2, 1, 0))]);
    assert_eq!(w.by_dealer, vec![]);
    assert_eq!(w.total, load(4, 2, 1));
    let all = s.workload(&WorkloadQuery { dealer: None, now: 100, soon: 200 }).await.unwrap();
    assert_eq!(all.by_dealer, vec![group("d1", load(4, 2, 1)), group("d2", load(1, 1, 0))]);
    assert_eq!(all.total, load(5, 3, 1));

    let ids = |rows: Vec<store::TaskRow>| rows.into_iter().map(|t| t.id).collect::<Vec<_>>();
    let overdue = |dealer: Option<&str>, after: Option<InboxCursor>| OverdueQuery {
        dealer: dealer.map(str::to_string),
        now: 100,
        after,
        limit: 10,
    };
    assert_eq!(ids(s.overdue_tasks(&overdue(Some("d1"), None)).await.unwrap()), ["i1-t1", "i1-t3"]);
    assert_eq!(ids(s.overdue_tasks(&overdue(None, None)).await.unwrap()), ["i1-t5", "i1-t1", "i1-t3"]);
    let after = InboxCursor { due_key: 50, task_id: "i1-t1".into() };
    assert_eq!(ids(s.overdue_tasks(&overdue(None, Some(after))).await.unwrap()), ["i1-t3"]);
});

store_test!(the_instances_of_a_period_come_in_pages_with_their_audit_trails, |t| {
    let s = &t.store;
    let mut changes = Vec::new();
    // Started at 1000; i1 ended at 1500, i2 at 5000, i3 runs; i4 is another dealer's.
    for (id, ended) in [("i1", Some(1_500)), ("i2", Some(5_000)), ("i3", None), ("i4", None)] {
        let mut c = write(id, 1, None);
        let row = &mut c.instance.as_mut().unwrap().0;
        row.ended_at = ended;
        if id == "i4" {
            row.dealer = "d2".into();
        }
        c.audit = vec![entry(id, None, "started")];
        changes.push(c);
    }
    s.commit(&changes).await.unwrap();
    let page = |after: Option<&str>, limit| PeriodQuery {
        dealer: Some("d1".into()),
        from: 2_000,
        to: 3_000,
        after: after.map(str::to_string),
        limit,
    };
    let ids = |rows: Vec<store::InstanceRow>| rows.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(ids(s.instances_in_period(&page(None, 1)).await.unwrap()), ["i2"]);
    assert_eq!(ids(s.instances_in_period(&page(Some("i2"), 10)).await.unwrap()), ["i3"]);
    let before_start = PeriodQuery { from: 0, to: 1_000, ..page(None, 10) };
    assert!(s.instances_in_period(&before_start).await.unwrap().is_empty());
    let everyone = PeriodQuery { dealer: None, ..page(None, 10) };
    assert_eq!(ids(s.instances_in_period(&everyone).await.unwrap()), ["i2", "i3", "i4"]);

    let audit = s.audit_of_chains(&["i3".into(), "i2".into()]).await.unwrap();
    assert_eq!(audit.iter().map(|a| a.chain.as_str()).collect::<Vec<_>>(), ["i2", "i3"]);
    assert!(s.audit_of_chains(&[]).await.unwrap().is_empty());
});
