//! `sopflow bench core`: compiled-guard evaluations per second and pure core steps per second,
//! in memory on one thread. Figures are printed, never asserted; docs/PERFORMANCE.md records
//! them with the machine they were measured on.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, anyhow};
use clap::{Args, ValueEnum};
use machine::{Actor, Input, Start, User};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Suite {
    /// Guards and the pure core, in memory.
    Core,
    /// Durable task completions through the runtime and the store (see `--db`).
    Runtime,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum, default_value = "core")]
    suite: Suite,
    /// Guard evaluations to time.
    #[arg(long, default_value_t = 2_000_000)]
    evals: u64,
    /// Instances to drive through the 10-step process.
    #[arg(long, default_value_t = 20_000)]
    instances: u64,
    #[command(flatten)]
    runtime: crate::ops::RuntimeBenchArgs,
}

/// A 10-step process with a decision: 8 tasks, a decision and an end.
const BENCH_PROCESS: &str = r#"
process: bench
version: 1
title: { zh: 基準, en: Benchmark }
roles: [clerk]
data:
  type: object
  properties:
    amount: { type: integer }
start: s1
steps:
  s1: { type: task, title: { zh: 一, en: One }, roles: [clerk], next: s2 }
  s2: { type: task, title: { zh: 二, en: Two }, roles: [clerk], next: s3 }
  s3: { type: task, title: { zh: 三, en: Three }, roles: [clerk], next: s4 }
  s4: { type: task, title: { zh: 四, en: Four }, roles: [clerk], next: check }
  check:
    type: decision
    branches:
      - when: amount > 1000 && instance.dealer == "d1"
        next: s5
    default: s5
  s5: { type: task, title: { zh: 五, en: Five }, roles: [clerk], next: s6 }
  s6: { type: task, title: { zh: 六, en: Six }, roles: [clerk], next: s7 }
  s7: { type: task, title: { zh: 七, en: Seven }, roles: [clerk], next: s8 }
  s8: { type: task, title: { zh: 八, en: Eight }, roles: [clerk], next: done }
  done: { type: end }
"#;

/// Compiles the benchmark process.
pub fn bench_process() -> anyhow::Result<model::Process> {
    let (node, _) = model::yaml::parse(BENCH_PROCESS, &model::yaml::Limits::default())?;
    let doc = json!({
        "process": node.to_json(),
        "forms": {},
        "calendars": {},
        "roles": { "clerk": { "zh": "文員", "en": "Clerk" } },
        "pack": null,
    });
    model::compile_document(&doc, &model::Options::default()).map_err(|d| {
        anyhow!(
            "the benchmark process does not compile: {}",
            d.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
        )
    })
}

pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    match args.suite {
        Suite::Core => core(args),
        Suite::Runtime => crate::ops::bench_runtime(&args.runtime),
    }
}

fn core(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let sandbox = script::Sandbox::new(script::Limits::default());
    let mut vars = script::Vars::new();
    vars.insert(
        "quotation",
        script::Shape::Object {
            fields: [("total".to_string(), script::Shape::Number)].into_iter().collect(),
            open: false,
        },
    );
    vars.insert("parts_available", script::Shape::Bool);
    let guard = sandbox.compile("quotation.total > 1000 && parts_available", &vars).map_err(|e| anyhow!("{e}"))?;
    let quotation = json!({ "total": 1520.5 });
    let available = json!(true);
    let env = BenchEnv { quotation: &quotation, available: &available, vars: &vars };
    let now = jiff::Timestamp::UNIX_EPOCH;
    let started = Instant::now();
    let mut trues = 0_u64;
    for _ in 0..args.evals {
        if sandbox.eval_bool(&guard, &env, now).map_err(|e| anyhow!("{e}"))? {
            trues += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("guard: `{}`", guard.source());
    println!(
        "  {} evaluations in {secs:.3} s = {:.0} evaluations/s ({trues} true)",
        args.evals,
        args.evals as f64 / secs
    );

    let process = bench_process()?;
    let clerk = User::new("u1", ["clerk"]);
    let mut steps = 0_u64;
    let started = Instant::now();
    for i in 0..args.instances {
        let mut data = serde_json::Map::new();
        data.insert("amount".into(), json!(1500));
        let start = Start {
            id: format!("b{i}"),
            dealer: "d1".into(),
            business_key: None,
            data,
            by: Actor::System,
            parent: None,
        };
        let mut t = machine::start(&process, start, now).map_err(|r| anyhow!("{r}"))?;
        steps += 1;
        while let Some(task) = t.instance.tasks.first().map(|t| t.id.clone()) {
            let form = Value::Object(serde_json::Map::new());
            let input = Input::Complete { task, by: clerk.clone(), form };
            t = machine::step(&process, &t.instance, &input, now).map_err(|r| anyhow!("{r}"))?;
            steps += 1;
        }
        if !t.instance.is_ended() {
            return Err(anyhow!("the benchmark instance did not end")).context("core bench");
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("core: 10-step process with a decision (8 tasks), {} instances", args.instances);
    println!("  {steps} step() calls in {secs:.3} s = {:.0} core steps/s", steps as f64 / secs);
    Ok(ExitCode::SUCCESS)
}

struct BenchEnv<'a> {
    quotation: &'a Value,
    available: &'a Value,
    vars: &'a script::Vars,
}

impl script::Env for BenchEnv<'_> {
    fn lookup(&self, name: &str) -> Option<script::Binding<'_>> {
        let shape = self.vars.get(name)?;
        match name {
            "quotation" => Some(script::Binding::Json(self.quotation, shape)),
            "parts_available" => Some(script::Binding::Json(self.available, shape)),
            _ => None,
        }
    }
}
