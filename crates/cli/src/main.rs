//! The `sopflow` command line: one binary for process owners (validate, test, graph),
//! engineers (bench, schema) and operators.

mod bench;
mod design;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Measure guard evaluations and core steps per second.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => design::validate(&args),
        Command::Test(args) => design::test(&args),
        Command::Graph(args) => design::graph(&args),
        Command::Schema(args) => design::schema(&args),
        Command::Bench(args) => bench::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
