//! The Rhai sandbox: guards and computed values compiled once against declared variables,
//! evaluated under hard limits.
//!
//! A process version's scripts (`when:` guards, `set:` values, `=` action inputs, due
//! and timer times) are compiled once with [`Sandbox::compile`] against the variables
//! the process declares ([`Vars`]), then evaluated many times with the `eval_*`
//! methods. Compilation rejects syntax errors, undeclared variables and misspelt
//! fields of closed records, so a typo is a load-time diagnostic. Evaluation runs
//! under the [`Limits`], so a script from an untrusted pack cannot hang or exhaust
//! the process that evaluates it.
//!
//! *Architecture invariant:* this crate is pure. It does no I/O, reads no clock (the
//! time is the `now` argument), draws no random numbers, spawns nothing and logs
//! nothing: the same script with the same inputs gives the same result on every run
//! and every host. See [`library`](crate::library) for what scripts may call.
//!
//! Script plugins add functions written in Rhai: guard helpers through
//! [`Sandbox::with_helpers`] (pure, like everything else here), and action scripts, compiled
//! with [`Sandbox::compile_functions`] and called with [`Sandbox::call_fn`] in a sandbox whose
//! host registered functions of its own ([`Sandbox::with_host`]); see [`Functions`].
//!
//! *API boundary:* [`Sandbox`], [`Expr`], [`Vars`]/[`Shape`], [`Env`]/[`Binding`],
//! [`Functions`] and the error types. Rhai's types appear only as [`rhai::Dynamic`] in [`Binding::Value`]
//! and [`to_dynamic`], for callers that convert a value once and bind it many times.

mod analysis;
mod convert;
mod error;
mod functions;
pub mod library;
mod shape;

use std::fmt;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use rhai::{AST, Engine, ImmutableString, Scope};

use crate::analysis::Projection;
pub use crate::convert::{to_dynamic, to_json};
pub use crate::error::{CompileError, CompileErrorKind, Error, EvalError, Limit};
pub use crate::functions::{Functions, HelperError, Signature};
pub use crate::shape::{Shape, Vars};
/// Rhai's value type, re-exported for [`Binding::Value`] and [`to_dynamic`] so that
/// callers need no direct dependency on rhai.
pub use rhai::Dynamic;

/// The reserved variable that holds the evaluation time.
pub(crate) const NOW: &str = "now";

/// A configured script engine. Build one per set of limits and share it: it is
/// `Send + Sync` and evaluation takes `&self`.
pub struct Sandbox {
    engine: Engine,
    limits: Limits,
}

/// Hard limits on what one script may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Operations per evaluation (each expression step, loop turn and call counts).
    pub max_operations: u64,
    /// Depth of nested calls to functions defined in the script.
    pub max_call_levels: usize,
    /// Depth of nesting: of expressions in the script, checked when compiling, and of
    /// lists and records in values, checked while running.
    pub max_expr_depth: usize,
    /// Length of any text, in bytes.
    pub max_string_len: usize,
    /// Items of any list, counting nested lists.
    pub max_array_len: usize,
    /// Fields of any record, counting nested records.
    pub max_map_len: usize,
    /// Length of the script source, in bytes.
    pub max_source_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_operations: 50_000,
            max_call_levels: 16,
            max_expr_depth: 64,
            max_string_len: 64 * 1024,
            max_array_len: 10_000,
            max_map_len: 10_000,
            max_source_len: 16 * 1024,
        }
    }
}

/// A compiled script. Cheap to clone; share it between evaluations and threads.
#[derive(Clone)]
pub struct Expr {
    compiled: Arc<Compiled>,
}

impl Expr {
    /// The script as written.
    pub fn source(&self) -> &str {
        &self.compiled.source
    }

    /// The declared variables the script reads, sorted and without duplicates.
    /// `now` is not listed: it is always provided; see [`Expr::reads_now`].
    pub fn reads(&self) -> &[String] {
        &self.compiled.reads
    }

    /// Whether the script reads `now`, i.e. whether its value can change with time alone.
    pub fn reads_now(&self) -> bool {
        self.compiled.uses_now
    }
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expr")
            .field("source", &self.compiled.source)
            .field("reads", &self.compiled.reads)
            .field("reads_now", &self.compiled.uses_now)
            .finish()
    }
}

/// Supplies the values of the variables an expression reads. Only names listed in
/// [`Expr::reads`] are asked for; `None` binds the variable to `()` (no value), so
/// `x == "a"` is simply false when `x` is unset.
pub trait Env {
    fn lookup(&self, name: &str) -> Option<Binding<'_>>;
}

/// The value of one variable.
pub enum Binding<'a> {
    /// A JSON value, converted on each evaluation following its shape (see [`to_dynamic`]).
    Json(&'a serde_json::Value, &'a Shape),
    /// A value the caller converted once, e.g. a process parameter.
    Value(Dynamic),
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Sandbox {
    /// A sandbox enforcing `limits`. A limit of 0 is raised to 1, never read as "unlimited".
    pub fn new(limits: Limits) -> Self {
        let limits = limits.at_least_one();
        Self { engine: library::build_engine(&limits), limits }
    }

    /// The limits in force (after raising any 0 to 1).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Compiles `source` against the declared `vars` (and the reserved `now`).
    ///
    /// A declared variable named `now` is ignored: `now` is always the evaluation time.
    pub fn compile(&self, source: &str, vars: &Vars) -> Result<Expr, CompileError> {
        if source.len() > self.limits.max_source_len {
            return Err(CompileError {
                kind: CompileErrorKind::TooLong,
                message: format!(
                    "the script is {} bytes long; the limit is {} bytes",
                    source.len(),
                    self.limits.max_source_len
                ),
                line: 1,
                col: 1,
            });
        }

        let mut declared = Scope::new();
        declared.push_dynamic(NOW, Dynamic::UNIT);
        for name in vars.names().filter(|name| *name != NOW) {
            declared.push_dynamic(name, Dynamic::UNIT);
        }
        let ast = self.engine.compile_with_scope(&declared, source).map_err(|err| {
            let mut names: Vec<&str> = vars.names().filter(|name| *name != NOW).collect();
            names.push(NOW);
            error::from_parse_error(&err, &self.limits, &names)
        })?;

        let analysis = analysis::analyse(&ast, vars)?;
        let mut template = Scope::with_capacity(analysis.reads.len() + 1);
        if analysis.uses_now {
            template.push_dynamic(NOW, Dynamic::UNIT);
        }
        let (reads, projections): (Vec<String>, Vec<Projection>) = analysis.reads.into_iter().unzip();
        for name in &reads {
            template.push_dynamic(name.as_str(), Dynamic::UNIT);
        }
        Ok(Expr {
            compiled: Arc::new(Compiled {
                ast,
                source: source.to_owned(),
                reads,
                projections,
                uses_now: analysis.uses_now,
                template,
                spare: Default::default(),
            }),
        })
    }

    /// Evaluates a guard: the script must give `true` or `false`.
    pub fn eval_bool(&self, expr: &Expr, env: &dyn Env, now: Timestamp) -> Result<bool, EvalError> {
        let value = self.eval(expr, env, now)?;
        value.as_bool().map_err(|_| EvalError::WrongType { expected: "true or false", got: convert::describe(&value) })
    }

    /// Evaluates a computed value and converts it to JSON (timestamps and durations as text).
    pub fn eval_json(&self, expr: &Expr, env: &dyn Env, now: Timestamp) -> Result<serde_json::Value, EvalError> {
        to_json(&self.eval(expr, env, now)?)
    }

    /// Evaluates a point in time: a `Timestamp` or an RFC 3339 text.
    pub fn eval_timestamp(&self, expr: &Expr, env: &dyn Env, now: Timestamp) -> Result<Timestamp, EvalError> {
        const EXPECTED: &str = "a timestamp (or a text like 2026-03-02T09:00:00+08:00)";
        let value = self.eval(expr, env, now)?;
        if let Some(ts) = value.read_lock::<Timestamp>() {
            return Ok(*ts);
        }
        let parsed = value.read_lock::<ImmutableString>().and_then(|s| library::parse_timestamp(&s).ok());
        parsed.ok_or_else(|| EvalError::WrongType { expected: EXPECTED, got: convert::describe(&value) })
    }

    /// Evaluates a length of time: a `Duration` or an ISO 8601 text such as `PT15M`.
    pub fn eval_duration(&self, expr: &Expr, env: &dyn Env, now: Timestamp) -> Result<SignedDuration, EvalError> {
        const EXPECTED: &str = "a duration (or a text like PT15M)";
        let value = self.eval(expr, env, now)?;
        if let Some(d) = value.read_lock::<SignedDuration>() {
            return Ok(*d);
        }
        let parsed = value.read_lock::<ImmutableString>().and_then(|s| library::parse_duration(&s).ok());
        parsed.ok_or_else(|| EvalError::WrongType { expected: EXPECTED, got: convert::describe(&value) })
    }

    /// Evaluates a text.
    pub fn eval_string(&self, expr: &Expr, env: &dyn Env, now: Timestamp) -> Result<String, EvalError> {
        let value = self.eval(expr, env, now)?;
        if let Some(s) = value.read_lock::<ImmutableString>() {
            return Ok(s.to_string());
        }
        match value.as_char() {
            Ok(c) => Ok(c.to_string()),
            Err(_) => Err(EvalError::WrongType { expected: "a text", got: convert::describe(&value) }),
        }
    }

    fn eval(&self, expr: &Expr, env: &dyn Env, now: Timestamp) -> Result<Dynamic, EvalError> {
        let compiled = &*expr.compiled;
        let spare = compiled.spare.lock().ok().and_then(|mut spare| spare.pop());
        let mut scope = spare.unwrap_or_else(|| compiled.template.clone());
        if compiled.uses_now
            && let Some(slot) = scope.get_mut(NOW)
        {
            *slot = Dynamic::from(now);
        }
        for (name, projection) in compiled.reads.iter().zip(&compiled.projections) {
            let value = bind(env.lookup(name), projection);
            if let Some(slot) = scope.get_mut(name) {
                *slot = value;
            }
        }
        let value = self.engine.eval_ast_with_scope::<Dynamic>(&mut scope, &compiled.ast);
        compiled.give_back(scope);
        let value = value.map_err(|err| error::from_eval_error(*err, &self.limits))?;
        // Closures can leave a shared value behind; callers get a plain one.
        Ok(if value.is_shared() { value.flatten() } else { value })
    }
}

impl Limits {
    /// Rhai reads a limit of 0 as "unlimited"; a sandbox must never do that.
    fn at_least_one(self) -> Self {
        Self {
            max_operations: self.max_operations.max(1),
            max_call_levels: self.max_call_levels.max(1),
            max_expr_depth: self.max_expr_depth.max(1),
            max_string_len: self.max_string_len.max(1),
            max_array_len: self.max_array_len.max(1),
            max_map_len: self.max_map_len.max(1),
            max_source_len: self.max_source_len.max(1),
        }
    }
}

struct Compiled {
    ast: AST,
    source: String,
    reads: Vec<String>,
    /// Parallel to `reads`: how much of each variable the script reads.
    projections: Vec<Projection>,
    uses_now: bool,
    /// `now` (when read) and every read variable, bound to `()`. Cloning it
    /// reuses the shared names instead of allocating them again.
    template: Scope<'static>,
    /// Scopes of finished evaluations, shaped like `template`, ready for reuse.
    spare: Mutex<Vec<Scope<'static>>>,
}

/// How many evaluation scopes an expression keeps for reuse: one per thread that
/// evaluates it at the same moment, up to this many.
const MAX_SPARE_SCOPES: usize = 4;

impl Compiled {
    /// Keeps an evaluation's scope for the next evaluation, which saves allocating
    /// one (a third of the cost of a small guard). The script's own variables and the
    /// bound values are dropped first, so a kept scope holds no data of an instance.
    fn give_back(&self, mut scope: Scope<'static>) {
        scope.rewind(self.template.len());
        let now = self.uses_now.then_some(NOW);
        for name in now.into_iter().chain(self.reads.iter().map(String::as_str)) {
            if let Some(slot) = scope.get_mut(name) {
                *slot = Dynamic::UNIT;
            }
        }
        // A poisoned lock only means another evaluation panicked; the pool is then skipped.
        if let Ok(mut spare) = self.spare.lock()
            && spare.len() < MAX_SPARE_SCOPES
        {
            spare.push(scope);
        }
    }
}

fn bind(binding: Option<Binding<'_>>, projection: &Projection) -> Dynamic {
    match (binding, projection) {
        (None, _) => Dynamic::UNIT,
        (Some(Binding::Json(serde_json::Value::Object(object), shape)), Projection::Fields(fields)) => {
            convert::project_json(object, shape, fields)
        }
        (Some(Binding::Json(value, shape)), _) => to_dynamic(value, shape),
        (Some(Binding::Value(value)), Projection::Fields(fields)) => convert::project_dynamic(&value, fields),
        (Some(Binding::Value(value)), Projection::Whole) => value,
    }
}
