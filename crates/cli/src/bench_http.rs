//! `sopflow bench-http`: the HTTP server under load, on loopback only. It loads open tasks
//! across 1,000 dealers through the runtime (reused on a second run), gives each dealer a user
//! with three of the four roles (the inbox reader) and one with all four (the completer),
//! starts the server in this process on `127.0.0.1:0`, then measures:
//!
//! - the inbox page (50 tasks, three roles): in the database (`search_tasks`) and over HTTP,
//!   with and without the counts, as latency percentiles;
//! - the managers' workload (`ReportStore::workload`) of one dealer and of all of them;
//! - task completions over HTTP with `--clients` concurrent clients, as completions per
//!   second and latency percentiles.
//!
//! Every loop is bounded in count; nothing is sent anywhere but the loopback address.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use machine::{Actor, Event};
use runtime::{Config, Runtime, StartRequest};
use serde_json::{Map, Value, json};
use server::{AppState, Catalogue, Options};
use store::Store;
use store::org::{OrgStore, OrganisationRow, TokenRow, UserRow};
use store::report::{ReportStore, WorkloadQuery};
use store::search::{SearchStore, TaskSearch};
use store_sqlx::AnyOrgStore;

#[derive(Debug, Args)]
pub struct HttpBenchArgs {
    /// The database (a SQLite file is created; reused if it holds the open tasks already).
    #[arg(long = "db", default_value = "sqlite://data/bench-http.db")]
    db: String,
    /// PostgreSQL: the schema to work in.
    #[arg(long, default_value = "sopflow_bench_http")]
    pg_schema: String,
    /// Open tasks loaded before measuring, across 1,000 dealers.
    #[arg(long, default_value_t = 100_000)]
    open_tasks: u64,
    /// Concurrent HTTP clients completing tasks.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Instances of the 10-task process completed over HTTP while measuring.
    #[arg(long, default_value_t = 2_000)]
    instances: u64,
    /// Inbox pages to time (each way).
    #[arg(long, default_value_t = 2_000)]
    inbox_samples: u64,
    /// SQLite: `synchronous=NORMAL` instead of FULL (not durable against power loss).
    #[arg(long)]
    sqlite_normal: bool,
}

const DEALERS: u64 = 1_000;
const ROLES: [&str; 4] = ["advisor", "foreman", "technician", "cashier"];

fn dealer(i: u64) -> String {
    format!("dealer{:04}", i % DEALERS)
}

/// The 10-task process of `bench runtime`: 4-hour SLAs, roles rotating as work passes on.
fn process() -> anyhow::Result<Arc<model::Process>> {
    let mut steps = String::new();
    for i in 1..=10 {
        let next = if i == 10 { "done".to_string() } else { format!("s{}", i + 1) };
        steps.push_str(&format!(
            "  s{i}:\n    type: task\n    title: {{ zh: 第{i}步, en: Step {i} }}\n    roles: [{}]\n    due: {{ after: PT4H }}\n    next: {next}\n",
            ROLES[(i - 1) % ROLES.len()]
        ));
    }
    let yaml = format!(
        "process: bench10\nversion: 1\ntitle: {{ zh: 十步, en: Ten tasks }}\nroles: [advisor, foreman, technician, cashier]\ndata:\n  type: object\n  properties:\n    plate: {{ type: string }}\nstart: s1\nsteps:\n{steps}  done:\n    type: end\n"
    );
    let (node, _) = model::yaml::parse(&yaml, &model::yaml::Limits::default())?;
    let names: Map<String, Value> = ROLES.iter().map(|r| (r.to_string(), json!({ "zh": r, "en": r }))).collect();
    let doc = json!({ "process": node.to_json(), "forms": {}, "calendars": {}, "roles": names, "pack": null });
    let p = model::compile_document(&doc, &model::Options::default())
        .map_err(|d| anyhow!("{}", d.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))?;
    Ok(Arc::new(p))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)].as_secs_f64() * 1_000.0
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{what}: n={} p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 0.99),
        percentile(&samples, 1.0)
    );
}

pub fn run(args: &HttpBenchArgs) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(bench(args))
}

async fn bench(args: &HttpBenchArgs) -> anyhow::Result<ExitCode> {
    let process = process()?;
    let mut config = Config::new(args.db.clone());
    config.store.max_connections = 16;
    if args.db.starts_with("postgres") {
        config.store.pg_schema = Some(args.pg_schema.clone());
        config.lanes = Some(16);
    }
    if args.sqlite_normal {
        config.store.durability = store_sqlx::Durability::Normal;
    }
    let rt = Runtime::open(config).await?;
    rt.deploy(std::slice::from_ref(&process), "", Actor::System).await?;

    // Open tasks: one instance each, started through the runtime in concurrent batches.
    let running = rt.store().stats().await?.running as u64;
    if running < args.open_tasks {
        let started = Instant::now();
        let todo = args.open_tasks - running;
        let mut set = tokio::task::JoinSet::new();
        for i in running..args.open_tasks {
            let rt = rt.clone();
            set.spawn(async move {
                let req = StartRequest {
                    dealer: dealer(i),
                    process_id: "bench10".into(),
                    data: Map::new(),
                    business_key: Some(format!("BK{i}")),
                    by: Actor::System,
                    id: Some(format!("load{i:08}")),
                };
                match rt.start(req).await? {
                    Ok(_) | Err(runtime::Refused::AlreadyExists(_)) => anyhow::Ok(()),
                    Err(r) => bail!("loading was refused: {r}"),
                }
            });
            if set.len() >= 8_000 {
                set.join_next().await.transpose()?.transpose()?;
            }
        }
        while let Some(r) = set.join_next().await {
            r??;
        }
        let secs = started.elapsed().as_secs_f64();
        println!("loaded {todo} open tasks in {secs:.1} s ({:.0} instances/s)", todo as f64 / secs);
    }

    // Per dealer: a reader with three roles and a completer with all four, with fresh tokens.
    let org = AnyOrgStore::for_store(rt.store());
    let now = rt.clock().now().as_millisecond();
    let mut readers = Vec::new();
    let mut completers = Vec::new();
    for d in 0..DEALERS {
        let dealer = dealer(d);
        org.put_organisation(&OrganisationRow {
            id: dealer.clone(),
            kind: "dealer".into(),
            name: dealer.clone(),
            time_zone: "Asia/Shanghai".into(),
            created_at: now,
        })
        .await?;
        for (who, roles) in [("reader", &ROLES[..3]), ("completer", &ROLES[..])] {
            let id = format!("{dealer}.{who}");
            org.put_user(&UserRow {
                id: id.clone(),
                organisation: dealer.clone(),
                name: id.clone(),
                roles: roles.iter().map(|r| r.to_string()).collect(),
                admin: false,
                password_hash: None,
                lang: None,
                active: true,
                created_at: now,
            })
            .await?;
            let (token, hash, token_id) = server::auth::new_token()?;
            let row = TokenRow {
                id: token_id,
                hash,
                user_id: id.clone(),
                label: "bench".into(),
                created_at: now,
                expires_at: None,
                revoked_at: None,
            };
            org.put_token(&row).await?;
            if who == "reader" {
                readers.push((dealer.clone(), token))
            } else {
                completers.push((dealer.clone(), token))
            }
        }
    }

    let stats = rt.store().stats().await?;
    println!(
        "database: {} ({} instances, {} open tasks, {} pending timers)",
        rt.store().backend(),
        stats.instances,
        stats.tasks,
        stats.timers
    );

    // The inbox in the database: one range per role, merged. A first pass over every dealer
    // (not timed) warms the caches, so the figures are the steady state a running server sees.
    let inbox_query = |d: u64| TaskSearch {
        dealer: dealer(d),
        roles: ROLES[..3].iter().map(|r| r.to_string()).collect(),
        user: Some(format!("{}.reader", dealer(d))),
        limit: 50,
        ..TaskSearch::default()
    };
    for d in 0..DEALERS {
        rt.store().search_tasks(&inbox_query(d)).await?;
    }
    let mut db = Vec::new();
    for i in 0..args.inbox_samples {
        let q = inbox_query(i * 7);
        let t = Instant::now();
        let page = rt.store().search_tasks(&q).await?;
        db.push(t.elapsed());
        if page.len() < 50.min(args.open_tasks as usize / DEALERS as usize) {
            bail!("the inbox page has {} tasks", page.len());
        }
    }
    report("inbox page in the database (3 roles, 50 tasks)", db);

    // The managers' workload: one dealer's (by role, by assignee, the breaches), and the
    // headquarters summary of every dealer.
    let now = rt.clock().now().as_millisecond();
    let workload = |dealer: Option<String>| WorkloadQuery { dealer, now, soon: now + 4 * 3_600_000 };
    let mut one = Vec::new();
    for i in 0..args.inbox_samples.min(1_000) {
        let t = Instant::now();
        let w = ReportStore::workload(rt.store(), &workload(Some(dealer(i * 7)))).await?;
        one.push(t.elapsed());
        if w.by_role.is_empty() && args.open_tasks >= DEALERS {
            bail!("the workload of {} is empty", dealer(i * 7));
        }
    }
    report("workload of one dealer in the database", one);
    let mut all = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        ReportStore::workload(rt.store(), &workload(None)).await?;
        all.push(t.elapsed());
    }
    report(&format!("workload of all {DEALERS} dealers in the database"), all);

    let mut catalogue = Catalogue::new();
    catalogue.add_process(Arc::clone(&process));
    let state = AppState::new(rt.clone(), org, catalogue, Options::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(listener, state, async {
        let _ = stop_rx.await;
    }));
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;

    for (what, query) in [("without counts", "limit=50&counts=false"), ("with counts", "limit=50")] {
        let mut http = Vec::new();
        for i in 0..args.inbox_samples {
            let (_, token) = &readers[((i * 7) % DEALERS) as usize];
            let t = Instant::now();
            let r = client.get(format!("{base}/api/v1/tasks?{query}")).bearer_auth(token).send().await?;
            let status = r.status();
            let _ = r.bytes().await?;
            http.push(t.elapsed());
            if !status.is_success() {
                bail!("the inbox answered {status}");
            }
        }
        report(&format!("inbox page over HTTP, {what}"), http);
    }

    // Completions: start the measured instances (not timed), then 16 clients complete their
    // ten tasks each over HTTP.
    let mut work = Vec::new();
    let run = jiff::Timestamp::now().as_millisecond();
    for i in 0..args.instances {
        let req = StartRequest {
            dealer: dealer(i),
            process_id: "bench10".into(),
            data: Map::new(),
            business_key: None,
            by: Actor::System,
            id: Some(format!("h{run:x}x{i}")),
        };
        let applied = rt.start(req).await?.map_err(|r| anyhow!("{r}"))?;
        let task = applied
            .events
            .iter()
            .find_map(|e| match e {
                Event::TaskOpened { task, .. } => Some(task.clone()),
                _ => None,
            })
            .ok_or_else(|| anyhow!("no task opened"))?;
        work.push((completers[(i % DEALERS) as usize].1.clone(), task));
    }
    let work = Arc::new(std::sync::Mutex::new(work));
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..args.clients.max(1) {
        let client = client.clone();
        let base = base.clone();
        let work = Arc::clone(&work);
        clients.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let next = work.lock().map_err(|_| anyhow!("poisoned"))?.pop();
                let Some((token, mut task)) = next else { break };
                loop {
                    let t = Instant::now();
                    let r = client
                        .post(format!("{base}/api/v1/tasks/{task}/complete"))
                        .bearer_auth(&token)
                        .json(&json!({ "form": {} }))
                        .send()
                        .await?;
                    let status = r.status();
                    let body: Value = r.json().await?;
                    latencies.push(t.elapsed());
                    if !status.is_success() {
                        bail!("completing {task} answered {status}: {body}");
                    }
                    match body["tasks"][0]["id"].as_str() {
                        Some(next) => task = next.to_string(),
                        None => break,
                    }
                }
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(r) = clients.join_next().await {
        latencies.extend(r??);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} clients: {} task completions over HTTP in {secs:.2} s = {:.0} completions/s",
        args.clients,
        latencies.len(),
        latencies.len() as f64 / secs
    );
    report("completion over HTTP", latencies);

    let _ = stop_tx.send(());
    server.await.context("the server task failed")??;
    rt.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
