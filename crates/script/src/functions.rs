//! Functions written in Rhai that a host adds to a sandbox: the guard helpers of script
//! plugins (`is_vip(customer)`, callable from every guard) and the entry points of script
//! actions (called by name with JSON arguments).
//!
//! A [`Functions`] is a script made of `fn` definitions only, compiled once under the same
//! rules as guards (strict variables, no `eval`, no modules, no `x[i] = v`). Functions in Rhai
//! see only their parameters, so a helper cannot read an instance's data behind the guard's
//! back, and a sandbox built with [`Sandbox::with_helpers`] has no function that reads the
//! clock, draws random numbers or does I/O: guard helpers stay pure by construction.
//!
//! [`Sandbox::with_host`] is the one door for functions written in Rust by a host (a script
//! action's `http_request`): this crate still does no I/O itself, and guard sandboxes are never
//! built through it.

use std::collections::BTreeSet;
use std::sync::Arc;

use rhai::{AST, CallFnOptions, Dynamic, Engine, Scope};

use crate::error::{self, CompileError, CompileErrorKind, EvalError};
use crate::shape::Shape;
use crate::{Limits, Sandbox, convert, library};

/// A compiled script of function definitions. Cheap to clone.
#[derive(Clone)]
pub struct Functions {
    ast: Arc<AST>,
    signatures: Vec<Signature>,
}

/// A function's name and parameter names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Signature {
    /// The name scripts call it by.
    pub name: String,
    /// The parameter names, in order; their number is the arity.
    pub params: Vec<String>,
}

/// Why a set of helpers cannot be added to a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelperError {
    /// A helper has the name of a function the sandbox already has (`ts`, `len`, ...);
    /// it would change what existing guards mean, so it is refused.
    #[error("`{name}` is already a function of the sandbox; give the helper another name")]
    Clash {
        /// The helper's name.
        name: String,
    },
    /// Two helpers have the same name and number of parameters.
    #[error("the helper `{name}` with {arity} parameter(s) is defined twice")]
    Duplicate {
        /// The helper's name.
        name: String,
        /// Its number of parameters.
        arity: usize,
    },
}

impl Functions {
    /// The functions defined, sorted by name and arity. Closures are not listed.
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// The function called `name` with `arity` parameters, if defined.
    pub fn get(&self, name: &str, arity: usize) -> Option<&Signature> {
        self.signatures.iter().find(|s| s.name == name && s.params.len() == arity)
    }

    /// Where the functions first call a function named `name` (line, column), if they do: for
    /// refusing a host function in a script that must stay pure.
    pub fn calls(&self, name: &str) -> Option<(u32, u32)> {
        let mut found = None;
        self.ast.walk(&mut |path: &[rhai::ASTNode]| {
            // A call in statement position is a `Stmt::FnCall`, elsewhere an `Expr::FnCall`.
            let call = match path.last() {
                Some(rhai::ASTNode::Expr(rhai::Expr::FnCall(call, pos)))
                | Some(rhai::ASTNode::Stmt(rhai::Stmt::FnCall(call, pos))) => Some((call, pos)),
                _ => None,
            };
            if let Some((call, pos)) = call
                && call.name.as_str() == name
            {
                found = Some(error::position(*pos));
                return false;
            }
            true
        });
        found
    }
}

impl std::fmt::Debug for Functions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Functions").field("signatures", &self.signatures).finish()
    }
}

impl Sandbox {
    /// A sandbox whose scripts can also call the functions of `helpers`.
    ///
    /// The helpers run under the same limits as the scripts that call them (their operations
    /// count towards the caller's), and see only their parameters.
    pub fn with_helpers(limits: Limits, helpers: &[Functions]) -> Result<Sandbox, HelperError> {
        Sandbox::with_host(limits, helpers, |_| {})
    }

    /// A sandbox with `helpers` and the functions `register` adds to the engine, for hosts that
    /// run scripts which may act on the outside world (a script action's `http_request`).
    ///
    /// `register` should only register functions: the limits and the refused symbols are
    /// applied again after it returns, so it cannot loosen them.
    pub fn with_host(
        limits: Limits,
        helpers: &[Functions],
        register: impl FnOnce(&mut Engine),
    ) -> Result<Sandbox, HelperError> {
        let limits = limits.at_least_one();
        let mut engine = library::build_engine(&limits);
        register(&mut engine);
        library::apply_limits(&mut engine, &limits);

        let existing: BTreeSet<String> =
            engine.collect_fn_metadata(None, |info| Some(info.metadata.name.to_string()), true).into_iter().collect();
        let mut added: BTreeSet<(String, usize)> = BTreeSet::new();
        for helper in helpers {
            for signature in &helper.signatures {
                if existing.contains(&signature.name) {
                    return Err(HelperError::Clash { name: signature.name.clone() });
                }
                if !added.insert((signature.name.clone(), signature.params.len())) {
                    return Err(HelperError::Duplicate { name: signature.name.clone(), arity: signature.params.len() });
                }
            }
        }
        for helper in helpers {
            engine.register_global_module(helper.ast.shared_lib().clone());
        }
        Ok(Sandbox { engine, limits })
    }

    /// Compiles a script that defines functions and nothing else.
    ///
    /// Statements outside functions are refused (a plugin script is a library, not a program),
    /// and so is everything a guard may not do.
    pub fn compile_functions(&self, source: &str) -> Result<Functions, CompileError> {
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
        let ast = self.engine.compile(source).map_err(|err| {
            let mut compile = error::from_parse_error(&err, &self.limits, &[]);
            if let CompileErrorKind::UndeclaredVariable { name } = &compile.kind {
                compile.message = format!(
                    "`{name}` is not known here: a function sees only its own parameters and what it \
                     creates with `let`"
                );
            }
            compile
        })?;
        if let Some(first) = ast.statements().first() {
            return Err(CompileError::new(
                CompileErrorKind::Syntax,
                "a plugin script may only define functions (`fn name(...) { ... }`); move this statement \
                 into a function",
                first.position(),
            ));
        }
        crate::analysis::check_functions_only(&ast)?;
        let mut signatures: Vec<Signature> = ast
            .iter_functions()
            .filter(|f| !f.name.starts_with(crate::analysis::ANONYMOUS_PREFIX))
            .map(|f| Signature { name: f.name.to_owned(), params: f.params.iter().map(|p| (*p).to_owned()).collect() })
            .collect();
        signatures.sort();
        Ok(Functions { ast: Arc::new(ast), signatures })
    }

    /// Calls function `name` of `functions` with JSON arguments and returns its value as JSON.
    ///
    /// `tag` is handed to host functions (`NativeCallContext::tag`), so that a host can tell
    /// one call from another without shared state.
    pub fn call_fn(
        &self,
        functions: &Functions,
        name: &str,
        args: &[serde_json::Value],
        tag: Option<Dynamic>,
    ) -> Result<serde_json::Value, EvalError> {
        let args: Vec<Dynamic> = args.iter().map(|arg| convert::to_dynamic(arg, &Shape::Any)).collect();
        let mut options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        if let Some(tag) = tag {
            options = options.with_tag(tag);
        }
        let mut scope = Scope::new();
        let value = self
            .engine
            .call_fn_with_options::<Dynamic>(options, &mut scope, &functions.ast, name, args)
            .map_err(|err| error::from_eval_error(*err, &self.limits))?;
        convert::to_json(&if value.is_shared() { value.flatten() } else { value })
    }
}
