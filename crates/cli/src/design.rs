//! The process owner's commands: validate, test, graph, schema.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use model::validate::Files;
use model::{Diagnostic, FsFiles};

/// Load options for the design-time commands: the actions and guard helpers of the built-ins
/// and the script plugins (see `crate::plugins::design_registry`).
pub fn load_options() -> model::Options {
    load_options_for(None)
}

/// As [`load_options`], with the plugins the pack in `pack` brings (`<pack>/plugins/`); their
/// problems are printed.
pub fn load_options_for(pack: Option<&Path>) -> model::Options {
    let (options, problems) = load_options_checked(pack);
    print_diagnostics(&problems);
    options
}

/// As [`load_options_for`], answering the problems of the pack's plugins (which are then left
/// out) instead of printing them.
pub fn load_options_checked(pack: Option<&Path>) -> (model::Options, Vec<Diagnostic>) {
    let (registry, problems) = crate::plugins::design_registry(pack);
    let limits = script::Limits::default();
    let sandbox = registry.guard_sandbox(limits.clone()).unwrap_or_else(|_| script::Sandbox::new(limits));
    let options = model::Options {
        actions: Some(registry.action_names()),
        sandbox: std::sync::Arc::new(sandbox),
        ..model::Options::default()
    };
    (options, problems)
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Pack directories, process files, or folders holding packs (default: processes/).
    paths: Vec<PathBuf>,
    /// Treat warnings (such as a missing zh or en label) as errors.
    #[arg(long)]
    deny_warnings: bool,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Packs, folders holding packs, or scenario files (default: processes/).
    paths: Vec<PathBuf>,
    /// List the transitions and branches that no scenario took.
    #[arg(long)]
    coverage: bool,
    /// Fail if any transition is untaken (implies --coverage).
    #[arg(long)]
    require_full_coverage: bool,
    /// Accept the current traces as the new snapshots.
    #[arg(long)]
    bless: bool,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The process id (searched in the packs under --packs) or a process file.
    process: String,
    /// Where to look for packs.
    #[arg(long, default_value = "processes")]
    packs: PathBuf,
    /// The language of the labels: en or zh.
    #[arg(long, default_value = "en")]
    lang: String,
    /// Steps to highlight.
    #[arg(long)]
    highlight: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Write process.schema.json, pack.schema.json, scenario.schema.json and
    /// overlay.schema.json into this folder instead of printing the process schema.
    #[arg(long)]
    write: Option<PathBuf>,
}

/// The pack directories meant by command-line paths, and the scenario files named directly.
fn resolve(paths: &[PathBuf]) -> anyhow::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let files = FsFiles;
    let paths = if paths.is_empty() { vec![PathBuf::from("processes")] } else { paths.to_vec() };
    let mut packs = BTreeSet::new();
    let mut scenarios = Vec::new();
    for p in &paths {
        if !p.exists() {
            bail!("{} does not exist", p.display());
        }
        if p.is_dir() {
            let found = model::find_packs(p, &files);
            if found.is_empty() {
                match model::pack_dir_of(p, &files) {
                    Some(dir) => {
                        packs.insert(dir);
                    }
                    None => bail!("{} holds no pack (a folder with a pack.yaml)", p.display()),
                }
            }
            packs.extend(found);
        } else {
            let dir = model::pack_dir_of(p, &files)
                .with_context(|| format!("{} is not inside a pack (no pack.yaml above it)", p.display()))?;
            if p.parent().and_then(Path::file_name).is_some_and(|n| n == "scenarios") {
                scenarios.push(p.clone());
            }
            packs.insert(dir);
        }
    }
    Ok((packs.into_iter().collect(), scenarios))
}

fn print_diagnostics(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        eprintln!("{d}");
    }
}

pub fn validate(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let (packs, _) = resolve(&args.paths)?;
    let (mut errors, mut warnings, mut processes) = (0, 0, 0);
    for dir in &packs {
        let (options, plugin_problems) = load_options_checked(Some(dir));
        print_diagnostics(&plugin_problems);
        errors += plugin_problems.len();
        let pack = model::load_pack(dir, &FsFiles, &options);
        print_diagnostics(&pack.diagnostics);
        errors += pack.diagnostics.iter().filter(|d| d.is_error()).count();
        warnings += pack.diagnostics.iter().filter(|d| !d.is_error()).count();
        processes += pack.processes.len();
    }
    println!("{} pack(s), {processes} valid process(es): {errors} error(s), {warnings} warning(s)", packs.len());
    let failed = errors > 0 || (args.deny_warnings && warnings > 0);
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

pub fn test(args: &TestArgs) -> anyhow::Result<ExitCode> {
    let (packs, scenarios) = resolve(&args.paths)?;
    let snapshots = if args.bless { testkit::Snapshots::Bless } else { testkit::Snapshots::Check };
    let (mut passed, mut failed) = (0, 0);
    let mut uncovered = Vec::new();
    let mut untested = Vec::new();
    for dir in &packs {
        let only: Vec<PathBuf> = scenarios.iter().filter(|s| s.starts_with(dir)).cloned().collect();
        let only = if only.is_empty() { None } else { Some(only.as_slice()) };
        let report = testkit::run_pack(dir, &load_options_for(Some(dir)), snapshots, only);
        print_diagnostics(&report.diagnostics);
        for r in &report.results {
            match &r.status {
                testkit::Status::Passed => println!("ok      {}  {}", r.path.display(), r.name),
                testkit::Status::Written => println!("written {}  {} (new trace snapshot)", r.path.display(), r.name),
                testkit::Status::Failed(why) => println!("FAILED  {}  {}\n        {why}", r.path.display(), r.name),
            }
        }
        passed += report.passed();
        failed += report.failed();
        uncovered.extend(report.uncovered);
        untested.extend(report.untested);
    }
    let coverage = args.coverage || args.require_full_coverage;
    if coverage {
        if uncovered.is_empty() && untested.is_empty() {
            println!("coverage: every transition was taken");
        } else {
            for t in &uncovered {
                println!("untaken: {}", t.describe());
            }
            for p in &untested {
                println!("untested: process {p} has no scenario");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    let incomplete = args.require_full_coverage && (!uncovered.is_empty() || !untested.is_empty());
    Ok(if failed > 0 || incomplete { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

pub fn graph(args: &GraphArgs) -> anyhow::Result<ExitCode> {
    let files = FsFiles;
    let as_path = PathBuf::from(&args.process);
    let (dirs, wanted) = if as_path.is_file() {
        let dir = model::pack_dir_of(&as_path, &files).context("the file is not inside a pack")?;
        let text = files.read(&as_path)?;
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("process:").map(|v| v.trim().trim_matches('"').to_string()))
            .context("the file has no `process:` id")?;
        (vec![dir], id)
    } else {
        (model::find_packs(&args.packs, &files), args.process.clone())
    };
    for dir in dirs {
        let pack = model::load_pack(&dir, &files, &load_options_for(Some(&dir)));
        if let Some(p) = pack.process(&wanted) {
            let opts = model::mermaid::Options { lang: args.lang.clone(), highlight: args.highlight.clone() };
            print!("{}", model::mermaid::flowchart(p, &opts));
            return Ok(ExitCode::SUCCESS);
        }
        if pack.diagnostics.iter().any(|d| d.is_error()) {
            print_diagnostics(&pack.diagnostics);
        }
    }
    bail!("no valid process `{wanted}` found (run `sopflow validate` to see problems)")
}

pub fn schema(args: &SchemaArgs) -> anyhow::Result<ExitCode> {
    let schemas = [
        ("process.schema.json", model::schema::process_schema()),
        ("pack.schema.json", model::schema::pack_schema()),
        ("scenario.schema.json", testkit::scenario_schema()),
        ("overlay.schema.json", packs::overlay_schema()),
    ];
    match &args.write {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            for (name, schema) in schemas {
                let path = dir.join(name);
                std::fs::write(&path, format!("{}\n", serde_json::to_string_pretty(&schema)?))?;
                println!("wrote {}", path.display());
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&schemas[0].1)?),
    }
    Ok(ExitCode::SUCCESS)
}
