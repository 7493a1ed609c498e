//! A workload for the crash test: starts N instances of a small process on a database, works
//! their tasks until every one has ended, and exits 0. Killed at any moment and started again,
//! it carries on where the dead process stopped (ids are fixed, starting twice starts once).
//!
//! Usage: `chaos-driver <database-url> <n-instances>`. Not part of the engine's API; the
//! runtime's tests run it.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use machine::{Actor, User};
use runtime::{Config, Refused, Runtime, StartRequest};
use serde_json::{Map, Value, json};
use store::{InboxQuery, Store};

/// A task, a notification (outbox), a one-second wait (a timer), and a child that waits one
/// second too: every kind of durable work in a few seconds of real time.
const CHAOS: &str = r#"
process: chaos
version: 1
title: { zh: 混沌, en: Chaos }
roles: [clerk]
data: { type: object }
start: work
steps:
  work:
    type: task
    title: { zh: 辦理, en: Work }
    roles: [clerk]
    next: note
  note:
    type: action
    action: notify
    input: { text: done }
    next: pause
  pause:
    type: wait
    after: PT1S
    next: child
  child:
    type: subprocess
    process: chaos_child
    next: done
  done:
    type: end
"#;

const CHAOS_CHILD: &str = r#"
process: chaos_child
version: 1
title: { zh: 子, en: Child }
roles: [clerk]
data: { type: object }
start: hold
steps:
  hold:
    type: wait
    after: PT1S
    next: done
  done:
    type: end
"#;

fn compile(yaml: &str) -> Result<model::Process, String> {
    let (node, _) = model::yaml::parse(yaml, &model::yaml::Limits::default()).map_err(|e| e.to_string())?;
    let doc = json!({
        "process": node.to_json(),
        "forms": {},
        "calendars": {},
        "roles": { "clerk": { "zh": "文員", "en": "Clerk" } },
        "pack": null,
    });
    model::compile_document(&doc, &model::Options::default())
        .map_err(|d| d.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
}

async fn run(url: &str, n: usize) -> Result<(), String> {
    let mut config = Config::new(url);
    config.poll = Duration::from_millis(50);
    let rt = Runtime::open(config).await.map_err(|e| e.to_string())?;
    let processes = vec![Arc::new(compile(CHAOS)?), Arc::new(compile(CHAOS_CHILD)?)];
    rt.deploy(&processes, "", Actor::System).await.map_err(|e| e.to_string())?;

    // Start in parallel, so the kill can land anywhere.
    let mut starts = tokio::task::JoinSet::new();
    for i in 0..n {
        let rt = rt.clone();
        starts.spawn(async move {
            let req = StartRequest {
                dealer: "d1".into(),
                process_id: "chaos".into(),
                data: Map::new(),
                business_key: None,
                by: Actor::System,
                id: Some(format!("chaos{i:04}")),
            };
            match rt.start(req).await {
                Ok(Ok(_)) | Ok(Err(Refused::AlreadyExists(_))) => Ok(()),
                Ok(Err(r)) => Err(r.to_string()),
                Err(e) => Err(e.to_string()),
            }
        });
        if starts.len() >= 16 {
            starts.join_next().await.transpose().map_err(|e| e.to_string())?.transpose()?;
        }
    }
    while let Some(r) = starts.join_next().await {
        r.map_err(|e| e.to_string())??;
    }

    let clerk = User::new("clerk1", ["clerk"]);
    loop {
        let page = rt
            .inbox_page(&InboxQuery {
                dealer: "d1".into(),
                roles: vec!["clerk".into()],
                user: Some("clerk1".into()),
                limit: 64,
                ..InboxQuery::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let mut completions = tokio::task::JoinSet::new();
        for task in page {
            let rt = rt.clone();
            let clerk = clerk.clone();
            completions.spawn(async move { rt.complete(&task.id, clerk, Value::Null, None).await });
        }
        while let Some(r) = completions.join_next().await {
            match r.map_err(|e| e.to_string())? {
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        let stats = rt.store().stats().await.map_err(|e| e.to_string())?;
        if stats.instances >= 2 * n as i64 && stats.running == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rt.shutdown().await;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<usize>().ok())) else {
        eprintln!("usage: chaos-driver <database-url> <n-instances>");
        return ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chaos-driver: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(url, n)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chaos-driver: {e}");
            ExitCode::FAILURE
        }
    }
}
