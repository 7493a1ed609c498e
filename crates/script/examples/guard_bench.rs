//! Measures compiled-guard evaluations per second for a typical guard; run with `--release`.
//!
//! `cargo run --release -p script --example guard_bench [evaluations]`

use std::hint::black_box;
use std::time::Instant;

use script::{Binding, Env, Limits, Sandbox, Shape, Vars};

const GUARD: &str = "quotation.total > 1000 && parts_available";

/// Two small form values, bound as JSON the way the machine binds step forms.
struct Forms {
    quotation: (serde_json::Value, Shape),
    parts_available: (serde_json::Value, Shape),
}

impl Env for Forms {
    fn lookup(&self, name: &str) -> Option<Binding<'_>> {
        let (value, shape) = match name {
            "quotation" => &self.quotation,
            "parts_available" => &self.parts_available,
            _ => return None,
        };
        Some(Binding::Json(value, shape))
    }
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|arg| arg.parse().ok()).unwrap_or(2_000_000);

    let quotation_shape = Shape::from_json_schema(&serde_json::json!({
        "type": "object", "additionalProperties": false,
        "properties": {"total": {"type": "number"}, "currency": {"type": "string"}, "version": {"type": "integer"}}
    }));
    let mut vars = Vars::new();
    vars.insert("quotation", quotation_shape.clone());
    vars.insert("parts_available", Shape::Bool);
    let forms = Forms {
        quotation: (serde_json::json!({"total": 1500.0, "currency": "CNY", "version": 2}), quotation_shape),
        parts_available: (serde_json::json!(true), Shape::Bool),
    };

    let sandbox = Sandbox::new(Limits::default());
    let guard = match sandbox.compile(GUARD, &vars) {
        Ok(guard) => guard,
        Err(err) => panic!("the benchmark guard does not compile: {err}"),
    };
    let now = jiff::Timestamp::UNIX_EPOCH;

    // Warm up caches and the allocator before measuring.
    for _ in 0..n / 10 {
        black_box(sandbox.eval_bool(&guard, &forms, now).ok());
    }
    let started = Instant::now();
    let mut n_true = 0_u64;
    for _ in 0..n {
        if black_box(sandbox.eval_bool(black_box(&guard), &forms, now)) == Ok(true) {
            n_true += 1;
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(n_true, n, "the guard should hold on every evaluation");
    #[allow(clippy::cast_precision_loss)] // Display only.
    let per_second = n as f64 / elapsed.as_secs_f64();
    println!("{GUARD}");
    println!("{n} evaluations in {elapsed:.2?}: {per_second:.0} evaluations/s on one thread");
}
