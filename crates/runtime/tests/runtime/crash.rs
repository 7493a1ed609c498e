//! The crash test: the engine process is killed (SIGKILL) in the middle of a workload on a
//! SQLite file, restarted, and must finish it with nothing lost and nothing done twice.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use machine::Event;
use store::Store;

use crate::harness::*;

const N_INSTANCES: usize = 120;

fn driver(url: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_chaos-driver"))
        .args([url, &N_INSTANCES.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

async fn audit_rows(url: &str) -> i64 {
    let Ok(s) =
        store_sqlx::open(url, &store_sqlx::Options { migrate: false, max_connections: 1, ..Default::default() }).await
    else {
        return 0;
    };
    let n = s.stats().await.map_or(0, |st| st.audit);
    s.close().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_killed_mid_run_finishes_after_restart_with_nothing_lost_or_doubled() {
    let dir = temp_dir("crash");
    let url = format!("sqlite://{}", dir.join("chaos.db").display());

    // Run until a good part of the work is done (each instance makes about 10 entries), then
    // kill the process without warning.
    let mut first = driver(&url);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if audit_rows(&url).await >= (N_INSTANCES * 4) as i64 {
            break;
        }
        assert!(first.try_wait().unwrap().is_none(), "the driver finished before it was killed");
        assert!(Instant::now() < deadline, "the driver made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();

    // A fresh process picks up where the dead one stopped.
    let mut second = driver(&url);
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            panic!("the restarted driver did not finish");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "the restarted driver failed: {status}");

    let store = store_sqlx::open(&url, &store_sqlx::Options::default()).await.unwrap();
    let mut armed: BTreeMap<String, usize> = BTreeMap::new();
    let mut fired: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..N_INSTANCES {
        let parent = format!("chaos{i:04}");
        let row = store.instance(&parent).await.unwrap().unwrap_or_else(|| panic!("{parent} was lost"));
        let snapshot: machine::Instance = serde_json::from_str(&row.snapshot).unwrap();
        assert_eq!(snapshot.children.len(), 1, "{parent} started one child");
        let child = snapshot.children[0].instance.clone();
        for id in [parent.clone(), child.clone()] {
            let row = store.instance(&id).await.unwrap().unwrap_or_else(|| panic!("{id} was lost"));
            assert_eq!(row.status, "ended", "{id}");
            let chain = store.audit_chain(&id).await.unwrap();
            let evs = events(&chain);
            let n = |f: fn(&Event) -> bool| evs.iter().filter(|e| f(e)).count();
            assert_eq!(n(|e| matches!(e, Event::Started { .. })), 1, "{id} started once");
            assert_eq!(n(|e| matches!(e, Event::Ended { .. })), 1, "{id} ended once");
            for e in &evs {
                match e {
                    Event::TimerArmed { timer, .. } => *armed.entry(timer.clone()).or_default() += 1,
                    Event::TimerFired { timer, .. } => *fired.entry(timer.clone()).or_default() += 1,
                    _ => {}
                }
            }
            if id == parent {
                assert_eq!(n(|e| matches!(e, Event::TaskCompleted { .. })), 1, "{id} task once");
                assert_eq!(n(|e| matches!(e, Event::ActionSucceeded { .. })), 1, "{id} action once");
                assert_eq!(n(|e| matches!(e, Event::ChildEnded { .. })), 1, "{id} heard of its child once");
            }
        }
    }
    assert_eq!(armed.len(), 2 * N_INSTANCES, "one wait timer per instance and child");
    assert_eq!(armed, fired, "every timer fired exactly once");
    let report = runtime::verify(&store).await.unwrap();
    assert!(report.broken.is_empty(), "{:?}", report.broken);
    let stats = store.stats().await.unwrap();
    assert_eq!(
        (stats.instances, stats.running, stats.timers, stats.outbox, stats.tasks),
        (2 * N_INSTANCES as i64, 0, 0, 0, 0)
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}
