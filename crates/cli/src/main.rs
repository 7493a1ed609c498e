//! The `sopflow` command line: one binary for process owners (validate, test, graph),
//! engineers (bench, schema) and operators.

mod admin;
mod bench;
mod bench_http;
mod design;
mod distribute;
mod ops;
mod pack;
mod plugins;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// glibc malloc was about a third of the CPU under the runtime benchmark (fragmented small
// allocations: snapshots, audit entries, bound SQL arguments); see docs/PERFORMANCE.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// sopflow: after-sales SOPs as executable, auditable processes.
#[derive(Debug, Parser)]
#[command(name = "sopflow", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check process definitions and report every problem as file:line:col.
    Validate(design::ValidateArgs),
    /// Run the scenario tests of packs on a virtual clock.
    Test(design::TestArgs),
    /// Print a process as a Mermaid flowchart.
    Graph(design::GraphArgs),
    /// Print (or write) the JSON Schemas of the file formats, for editors.
    Schema(design::SchemaArgs),
    /// Measure guard evaluations and core steps per second, or durable task completions.
    Bench(bench::BenchArgs),
    /// Create or update the database schema (SQLite or PostgreSQL).
    Migrate(ops::MigrateArgs),
    /// Verify the audit chains, or export the audit trail as JSON lines.
    Audit(ops::AuditArgs),
    /// Import a dealer's parts stock (the reference inventory plugin's table) from CSV.
    Inventory(ops::InventoryArgs),
    /// The KPIs of a dealer over a period, computed from the audit trail.
    Kpi(ops::KpiArgs),
    /// List the loaded plugins, their actions, schemas and granted capabilities.
    Plugins(plugins::PluginsArgs),
    /// Build, sign and verify pack archives; resolve, diff and upgrade dealer overlays.
    Pack(pack::PackArgs),
    /// Serve the HTTP API (the task inbox, instances, administration) on the database.
    Serve(serve::ServeArgs),
    /// Add and list organisations (dealers, headquarters).
    Org(admin::OrgArgs),
    /// Add users, set their roles, list them.
    User(admin::UserArgs),
    /// Create, revoke and list API tokens.
    Token(admin::TokenArgs),
    /// Measure the HTTP server: inbox latency and task completions per second, on loopback.
    BenchHttp(bench_http::HttpBenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => design::validate(&args),
        Command::Test(args) => design::test(&args),
        Command::Graph(args) => design::graph(&args),
        Command::Schema(args) => design::schema(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Migrate(args) => ops::migrate(&args),
        Command::Audit(args) => ops::audit(&args),
        Command::Inventory(args) => ops::inventory(&args),
        Command::Kpi(args) => ops::kpi(&args),
        Command::Plugins(args) => plugins::run(&args),
        Command::Pack(args) => pack::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Org(args) => admin::org(&args),
        Command::User(args) => admin::user(&args),
        Command::Token(args) => admin::token(&args),
        Command::BenchHttp(args) => bench_http::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
