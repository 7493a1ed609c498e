//! The operator's commands: `migrate`, `audit verify|export`, `inventory import` (the reference
//! stock table), and `bench runtime` (durable task completions per second through the real
//! runtime and store).

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use machine::{Actor, Event, User};
use runtime::{Config, Runtime, StartRequest};
use serde_json::{Map, Value, json};
use store::{InboxQuery, Store};

/// Where the database is.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// The database: `sqlite://path` (created on first run) or `postgres://...`.
    #[arg(long = "db", visible_alias = "database", env = "DATABASE_URL", default_value = store_sqlx::DEFAULT_URL)]
    db: String,
}

#[derive(Debug, Args)]
pub struct KpiArgs {
    #[command(flatten)]
    db: DbArgs,
    /// The dealer (without it: every dealer together).
    #[arg(long)]
    dealer: Option<String>,
    /// The start of the period, included: a date (`2026-03-01`, midnight UTC) or an RFC 3339 time.
    #[arg(long)]
    from: String,
    /// The end of the period, excluded.
    #[arg(long)]
    to: String,
    /// Print the report as JSON (the shape of `GET /api/v1/kpis`) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    #[command(subcommand)]
    command: InventoryCommand,
}

#[derive(Debug, Subcommand)]
enum InventoryCommand {
    /// Import a dealer's parts stock from CSV (`part_no,description,on_hand,location`); parts
    /// already in the table are replaced. Nothing is imported unless every line is right.
    Import {
        /// The CSV file.
        file: std::path::PathBuf,
        /// The dealer whose stock it is.
        #[arg(long)]
        dealer: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// Imports the stock table.
pub fn inventory(args: &InventoryArgs) -> anyhow::Result<ExitCode> {
    let InventoryCommand::Import { file, dealer, db } = &args.command;
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    tokio()?.block_on(async {
        let store = open_store(&db.db).await?;
        let table = store_sqlx::AnyInventory::for_store(&store);
        let imported = plugins::inventory::import_csv(&table, dealer, &text)
            .await
            .map_err(|e| anyhow!("{}: {e}", file.display()))?;
        store.close().await;
        println!("{imported} part(s) imported into the stock of dealer `{dealer}`");
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check every audit chain and name the first broken entry of each broken one.
    Verify {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Write audit entries as JSON lines (for an external archive).
    Export {
        #[command(flatten)]
        db: DbArgs,
        /// Only this chain (an instance id, or `dealer:<id>`).
        #[arg(long)]
        chain: Option<String>,
        /// Only entries with a global sequence number above this one.
        #[arg(long, default_value_t = 0)]
        since: i64,
    },
}

fn tokio() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

async fn open_store(url: &str) -> anyhow::Result<runtime::AnyStore> {
    store_sqlx::open(url, &store_sqlx::Options { max_connections: 2, ..Default::default() })
        .await
        .with_context(|| format!("cannot open {url}"))
}

/// One audit entry as a JSON line, with its time also in ISO 8601 for people.
fn write_line(out: &mut impl Write, row: &store::AuditRow) -> anyhow::Result<()> {
    let mut v = serde_json::to_value(row)?;
    if let Ok(at) = jiff::Timestamp::from_millisecond(row.at) {
        v["at_iso"] = json!(at.to_string());
    }
    writeln!(out, "{v}")?;
    Ok(())
}

pub fn migrate(args: &MigrateArgs) -> anyhow::Result<ExitCode> {
    tokio()?.block_on(async {
        store_sqlx::migrate(&args.db.db).await.with_context(|| format!("cannot migrate {}", args.db.db))?;
        println!("{}: the schema is up to date", args.db.db);
        Ok(ExitCode::SUCCESS)
    })
}

/// The KPIs of a dealer over a period, from what the engine recorded: the same computation as
/// `GET /api/v1/kpis`, read straight from the database.
pub fn kpi(args: &KpiArgs) -> anyhow::Result<ExitCode> {
    let now = jiff::Timestamp::now();
    let period = server::reports::period(Some(&args.from), Some(&args.to), now).map_err(|e| anyhow!("{e}"))?;
    tokio()?.block_on(async {
        let store = open_store(&args.db.db).await?;
        let report = server::reports::kpi_report(&store, args.dealer.as_deref(), period, now).await;
        store.close().await;
        let report = report?;
        if args.json {
            let dto = server::reports::kpi_dto(args.dealer.clone(), &report, now);
            println!("{}", serde_json::to_string_pretty(&dto)?);
        } else {
            if let Some(d) = &args.dealer {
                println!("dealer {d}");
            }
            print!("{}", kpi::render(&report));
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn audit(args: &AuditArgs) -> anyhow::Result<ExitCode> {
    tokio()?.block_on(async {
        match &args.command {
            AuditCommand::Verify { db } => {
                let store = open_store(&db.db).await?;
                let report = runtime::verify(&store).await?;
                store.close().await;
                for b in &report.broken {
                    eprintln!("broken: {b}");
                }
                println!(
                    "{} chain(s), {} entr{} checked: {}",
                    report.chains,
                    report.entries,
                    if report.entries == 1 { "y" } else { "ies" },
                    if report.broken.is_empty() { "ok".to_string() } else { format!("{} broken", report.broken.len()) }
                );
                Ok(if report.broken.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
            }
            AuditCommand::Export { db, chain, since } => {
                let store = open_store(&db.db).await?;
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                match chain {
                    Some(chain) => {
                        for row in store.audit_chain(chain).await?.iter().filter(|r| r.seq > *since) {
                            write_line(&mut out, row)?;
                        }
                    }
                    None => {
                        // Page by the global sequence, so a large trail needs little memory.
                        let mut after = *since;
                        loop {
                            let rows = store.audit_since(after, 5_000).await?;
                            let Some(last) = rows.last() else { break };
                            after = last.seq;
                            for row in &rows {
                                write_line(&mut out, row)?;
                            }
                        }
                    }
                }
                out.flush()?;
                store.close().await;
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

/// How the runtime benchmark commits.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Commit {
    /// Group commit: many completions per transaction.
    Batch,
    /// One completion per transaction.
    Single,
}

/// Options of `sopflow bench runtime`.
#[derive(Debug, Args)]
pub struct RuntimeBenchArgs {
    /// The database for `bench runtime` (a SQLite file is created; reused if it holds the open
    /// tasks already).
    #[arg(long = "db", default_value = "sqlite://data/bench.db")]
    db: String,
    /// How the writer commits.
    #[arg(long, value_enum, default_value = "batch")]
    commit: Commit,
    /// Open tasks (and pending SLA timers) loaded before measuring, across 1,000 dealers.
    #[arg(long, default_value_t = 10_000)]
    open_tasks: u64,
    /// Concurrent clients completing tasks.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Instances of the 10-task process driven to their end while measuring.
    #[arg(long, default_value_t = 2_000)]
    bench_instances: u64,
    /// Writer lanes (default: 1 on SQLite, 2 on PostgreSQL); each commits its own batches.
    #[arg(long)]
    lanes: Option<usize>,
    /// PostgreSQL: the schema to work in.
    #[arg(long, default_value = "sopflow_bench")]
    pg_schema: String,
    /// SQLite: `synchronous=NORMAL` instead of FULL (not durable against power loss).
    #[arg(long)]
    sqlite_normal: bool,
    /// SQLite: memory-mapped I/O of this many MiB (0: off).
    #[arg(long, default_value_t = 0)]
    sqlite_mmap_mib: u32,
}

/// The 10-task process: each task has a 4-hour SLA (so a timer is armed and cancelled with
/// every task), and the roles rotate as work passes between people.
fn bench10() -> anyhow::Result<Arc<model::Process>> {
    let roles = ["advisor", "foreman", "technician", "cashier"];
    let mut steps = String::new();
    for i in 1..=10 {
        let next = if i == 10 { "done".to_string() } else { format!("s{}", i + 1) };
        steps.push_str(&format!(
            "  s{i}:\n    type: task\n    title: {{ zh: 第{i}步, en: Step {i} }}\n    roles: [{}]\n    due: {{ after: PT4H }}\n    next: {next}\n",
            roles[(i - 1) % roles.len()]
        ));
    }
    let yaml = format!(
        "process: bench10\nversion: 1\ntitle: {{ zh: 十步, en: Ten tasks }}\nroles: [advisor, foreman, technician, cashier]\ndata:\n  type: object\n  properties:\n    plate: {{ type: string }}\nstart: s1\nsteps:\n{steps}  done:\n    type: end\n"
    );
    let (node, _) = model::yaml::parse(&yaml, &model::yaml::Limits::default())?;
    let role_names: Map<String, Value> = roles.iter().map(|r| (r.to_string(), json!({ "zh": r, "en": r }))).collect();
    let doc = json!({ "process": node.to_json(), "forms": {}, "calendars": {}, "roles": role_names, "pack": null });
    let p = model::compile_document(&doc, &model::Options::default()).map_err(|d| {
        anyhow!(
            "the benchmark process does not compile: {}",
            d.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
        )
    })?;
    Ok(Arc::new(p))
}

fn dealer(i: u64) -> String {
    format!("dealer{:04}", i % 1_000)
}

fn config(args: &RuntimeBenchArgs, commit: runtime::CommitMode, batch_max: usize) -> Config {
    let mut c = Config::new(args.db.clone());
    c.commit = commit;
    c.batch_max = batch_max;
    c.store.max_connections = args.clients.clamp(1, 16) as u32;
    if args.db.starts_with("postgres") {
        c.store.pg_schema = Some(args.pg_schema.clone());
        c.lanes = Some(args.lanes.unwrap_or(2));
    } else {
        c.lanes = args.lanes;
    }
    c.store.sqlite_mmap_mib = args.sqlite_mmap_mib;
    if args.sqlite_normal {
        c.store.durability = store_sqlx::Durability::Normal;
    }
    c
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn first_task(events: &[Event]) -> Option<String> {
    events.iter().find_map(|e| match e {
        Event::TaskOpened { task, .. } => Some(task.clone()),
        _ => None,
    })
}

pub fn bench_runtime(args: &RuntimeBenchArgs) -> anyhow::Result<ExitCode> {
    tokio()?.block_on(bench_runtime_async(args))
}

async fn bench_runtime_async(args: &RuntimeBenchArgs) -> anyhow::Result<ExitCode> {
    let process = bench10()?;
    let roles = ["advisor", "foreman", "technician", "cashier"];

    // Load the open tasks through the runtime itself, in large group-committed batches.
    let rt = Runtime::open(config(args, runtime::CommitMode::Batch, 4_000)).await?;
    rt.deploy(std::slice::from_ref(&process), "", Actor::System).await?;
    let running = rt.store().stats().await?.running as u64;
    if running < args.open_tasks {
        let started = Instant::now();
        let todo = args.open_tasks - running;
        load(&rt, running, todo).await?;
        let secs = started.elapsed().as_secs_f64();
        println!("loaded {todo} open tasks in {secs:.1} s ({:.0} instances/s)", todo as f64 / secs);
    }
    rt.shutdown().await;

    let (mode, batch_max) = match args.commit {
        Commit::Batch => (runtime::CommitMode::Batch, 512),
        Commit::Single => (runtime::CommitMode::Single, 1),
    };
    let rt = Runtime::open(config(args, mode, batch_max)).await?;
    let stats = rt.store().stats().await?;
    println!(
        "database: {} ({} instances, {} open tasks, {} pending timers, {} audit entries)",
        rt.store().backend(),
        stats.instances,
        stats.tasks,
        stats.timers,
        stats.audit
    );

    // Start the measured instances (not timed), then complete their 10 tasks each.
    let run_id = run_id();
    let mut starts = tokio::task::JoinSet::new();
    let mut firsts = Vec::new();
    for i in 0..args.bench_instances {
        let rt = rt.clone();
        let req = StartRequest {
            dealer: dealer(i),
            process_id: "bench10".into(),
            data: Map::new(),
            business_key: None,
            by: Actor::System,
            id: Some(format!("b{run_id}x{i}")),
        };
        starts.spawn(async move { start_one(&rt, req).await });
        if starts.len() >= 512
            && let Some(r) = starts.join_next().await
        {
            firsts.push(r??);
        }
    }
    while let Some(r) = starts.join_next().await {
        firsts.push(r??);
    }
    let work = Arc::new(std::sync::Mutex::new(firsts));
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..args.clients.max(1) {
        let rt = rt.clone();
        let work = Arc::clone(&work);
        clients.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let next = work.lock().map_err(|_| anyhow!("poisoned"))?.pop();
                let Some(mut task) = next else { break };
                loop {
                    let user = User::new("bench", roles);
                    let t = Instant::now();
                    let applied = match rt.complete(&task, user, Value::Null, None).await? {
                        Ok(a) => a,
                        Err(refused) => bail!("the benchmark task was refused: {refused}"),
                    };
                    latencies.push(t.elapsed());
                    match first_task(&applied.events) {
                        Some(next) => task = next,
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
    latencies.sort();
    let n = latencies.len();
    println!(
        "{} commit, {} client(s): {n} durable task completions in {secs:.2} s = {:.0} completions/s",
        match args.commit {
            Commit::Batch => "batch",
            Commit::Single => "single",
        },
        args.clients,
        n as f64 / secs
    );
    println!(
        "latency: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.90)),
        ms(percentile(&latencies, 0.99)),
        ms(percentile(&latencies, 1.0))
    );

    // The inbox of a user with 3 roles: 50 tasks by due time, merged from one index range per
    // role plus their own.
    let mut inbox = Vec::new();
    for i in 0..200 {
        let q = InboxQuery {
            dealer: dealer(i * 7),
            roles: vec!["advisor".into(), "foreman".into(), "technician".into()],
            user: Some("bench".into()),
            process_id: None,
            after: None,
            limit: 50,
        };
        let t = Instant::now();
        let page = rt.inbox_page(&q).await?;
        inbox.push(t.elapsed());
        if page.windows(2).any(|w| w[0].sort_key() > w[1].sort_key()) {
            bail!("the inbox is not sorted by due time");
        }
    }
    inbox.sort();
    println!(
        "inbox (3 roles, 50 tasks): p50 {:.3} ms, p99 {:.3} ms",
        ms(percentile(&inbox, 0.5)),
        ms(percentile(&inbox, 0.99))
    );
    rt.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// A short id for this run, so runs on one database do not collide.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{:x}", nanos % 0xffff_ffff_ffff)
}

async fn start_one(rt: &Runtime, req: StartRequest) -> anyhow::Result<String> {
    match rt.start(req).await? {
        Ok(a) => first_task(&a.events).ok_or_else(|| anyhow!("the instance opened no task")),
        Err(r) => bail!("the start was refused: {r}"),
    }
}

async fn load(rt: &Runtime, from: u64, n: u64) -> anyhow::Result<()> {
    let mut set = tokio::task::JoinSet::new();
    for i in from..from + n {
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
    Ok(())
}
