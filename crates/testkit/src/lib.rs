//! Scenario tests for process owners, run on a virtual clock in an in-memory [`World`].
//!
//! A pack's scenarios live in `<pack>/scenarios/*.yaml`; each one's readable trace is kept
//! beside it as `<name>.trace` and compared on every run, so that any change in behaviour shows
//! up as a reviewed diff. [`run_pack`] runs them all and reports the transitions that no
//! scenario took.

pub mod coverage;
pub mod runner;
pub mod scenario;
pub mod world;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use model::diagnostic::{Code, Diagnostic};
use model::schema::Checker;
use model::validate::Files;

pub use scenario::Scenario;
pub use world::World;

/// The JSON Schema of scenario files.
pub fn scenario_schema() -> serde_json::Value {
    schemars::schema_for!(Scenario).to_value()
}

/// Reads a scenario file; problems are reported as diagnostics with positions.
pub fn load_scenario(path: &Path, text: &str) -> Result<Scenario, Vec<Diagnostic>> {
    static CHECKER: OnceLock<Checker> = OnceLock::new();
    let (node, duplicate) = model::yaml::parse(text, &model::yaml::Limits::default())
        .map_err(|e| vec![Diagnostic::new(Code::YamlSyntax, path, e.span(), e.to_string())])?;
    let mut out = Vec::new();
    if let Some(d) = duplicate {
        out.push(Diagnostic::new(Code::DuplicateId, path, d.span(), d.to_string()));
    }
    let json = node.to_json();
    for v in CHECKER.get_or_init(|| Checker::new(scenario_schema())).check(&json) {
        let span = if v.at_key { node.key_span_at(&v.path) } else { node.span_at(&v.path) };
        let mut d = Diagnostic::new(Code::Schema, path, span, v.message);
        d.hint = v.hint;
        out.push(d);
    }
    if !out.is_empty() {
        return Err(out);
    }
    serde_json::from_value(json).map_err(|e| vec![Diagnostic::new(Code::Schema, path, node.span, e.to_string())])
}

/// What to do with trace snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshots {
    /// Compare; a missing snapshot is written, unless `CI` is set, where it is a failure.
    Check,
    /// Write every trace as the new snapshot.
    Bless,
}

/// How a scenario went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// It passed and its trace matched.
    Passed,
    /// It passed and its trace was written as a new snapshot.
    Written,
    /// It failed: why.
    Failed(String),
}

/// One scenario's result.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// The scenario file.
    pub path: PathBuf,
    /// The scenario's sentence.
    pub name: String,
    /// How it went.
    pub status: Status,
}

/// The results of a pack's scenarios.
#[derive(Debug, Default)]
pub struct Report {
    /// Per scenario.
    pub results: Vec<ScenarioResult>,
    /// Problems reading the pack or the scenario files.
    pub diagnostics: Vec<Diagnostic>,
    /// Transitions no scenario took, for processes that have scenarios.
    pub uncovered: Vec<coverage::Transition>,
    /// Processes without any scenario.
    pub untested: Vec<String>,
}

impl Report {
    /// How many passed.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| !matches!(r.status, Status::Failed(_))).count()
    }

    /// How many failed (a file that could not be read counts as a failure).
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| matches!(r.status, Status::Failed(_))).count()
            + self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
}

/// The scenario files of a pack.
pub fn scenario_files(pack_dir: &Path, files: &dyn Files) -> Vec<PathBuf> {
    let dir = pack_dir.join("scenarios");
    files
        .list(&dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect()
}

/// Runs every scenario of a pack (or only `only`, if given).
pub fn run_pack(pack_dir: &Path, options: &model::Options, snapshots: Snapshots, only: Option<&[PathBuf]>) -> Report {
    let files = model::FsFiles;
    let pack = model::load_pack(pack_dir, &files, options);
    let mut report = Report::default();
    if pack.has_errors() {
        report.diagnostics = pack.diagnostics.into_iter().filter(Diagnostic::is_error).collect();
        return report;
    }
    let processes: Vec<Arc<model::Process>> = pack.processes.clone();
    let mut taken = BTreeSet::new();
    let mut tested = BTreeSet::new();
    for path in scenario_files(pack_dir, &files) {
        if only.is_some_and(|o| !o.iter().any(|p| same_file(p, &path))) {
            continue;
        }
        let text = match files.read(&path) {
            Ok(t) => t,
            Err(e) => {
                report.diagnostics.push(Diagnostic::new(Code::YamlSyntax, &path, Default::default(), e.to_string()));
                continue;
            }
        };
        let scenario = match load_scenario(&path, &text) {
            Ok(s) => s,
            Err(d) => {
                report.diagnostics.extend(d);
                continue;
            }
        };
        tested.insert(scenario.process.clone());
        let run = runner::run(&scenario, &processes);
        for s in &run.world.slots {
            tested.insert(s.process.id.clone());
        }
        taken.extend(coverage::taken(&run.world, &processes));
        let status = match run.failure {
            Some(f) => Status::Failed(f),
            None => compare_trace(&path.with_extension("trace"), &run.trace, snapshots),
        };
        report.results.push(ScenarioResult { path, name: scenario.scenario, status });
    }
    for p in &processes {
        if tested.contains(&p.id) {
            report.uncovered.extend(coverage::all(p).difference(&taken).cloned());
        } else {
            report.untested.push(p.id.clone());
        }
    }
    report
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn compare_trace(path: &Path, trace: &str, snapshots: Snapshots) -> Status {
    let existing = std::fs::read_to_string(path).ok();
    match (snapshots, existing) {
        (Snapshots::Check, Some(old)) if old == trace => Status::Passed,
        (Snapshots::Check, Some(old)) => Status::Failed(first_difference(&old, trace)),
        (Snapshots::Check, None) if std::env::var_os("CI").is_some() => Status::Failed(format!(
            "there is no trace snapshot {}; run `sopflow test --bless` and commit it",
            path.display()
        )),
        (_, _) => match std::fs::write(path, trace) {
            Ok(()) => Status::Written,
            Err(e) => Status::Failed(format!("cannot write {}: {e}", path.display())),
        },
    }
}

fn first_difference(old: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let i = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    format!(
        "the trace differs from its snapshot at line {}:\n    snapshot: {}\n    now:      {}\n  (run `sopflow test --bless` to accept the new trace after reviewing it)",
        i + 1,
        a.get(i).unwrap_or(&"<end>"),
        b.get(i).unwrap_or(&"<end>")
    )
}
