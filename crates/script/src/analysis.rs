//! What a compiled script reads, found by walking its syntax tree once at load time.
//!
//! Three things come out of the walk: the declared variables the script reads (so an
//! evaluation converts only those), for each of them whether only some fields are
//! read (so a guard on `quotation.total` converts one field, not the quotation), and
//! typos in field names of records whose shape is closed. Rhai's strict-variables
//! mode has already rejected undeclared names; this walk only adds what rhai cannot
//! know. It never guesses in the unsafe direction: anything unusual means "the whole
//! value is read" and "no field check".

use std::collections::BTreeMap;

use rhai::{AST, ASTNode, Expr as RhaiExpr, Position, Stmt};

use crate::NOW;
use crate::error::{CompileError, CompileErrorKind, position};
use crate::shape::{Shape, Vars};

/// How much of a variable an evaluation has to provide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Projection {
    Whole,
    /// Only these top-level fields are read, sorted and deduplicated.
    Fields(Vec<String>),
}

#[derive(Debug)]
pub(crate) struct Analysis {
    /// Declared variables read, sorted by name, with what is read of each.
    pub(crate) reads: Vec<(String, Projection)>,
    pub(crate) uses_now: bool,
}

pub(crate) fn analyse(ast: &AST, vars: &Vars) -> Result<Analysis, CompileError> {
    let mut reads: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
    let mut uses_now = false;
    let mut error: Option<CompileError> = None;

    let mut on_node = |path: &[ASTNode]| -> bool {
        let Some(ASTNode::Expr(expr)) = path.last() else {
            return true;
        };
        match expr {
            RhaiExpr::Variable(var, _, _) if var.0.is_none() => {
                let name = var.1.as_str();
                if name == NOW {
                    uses_now = true;
                } else if vars.get(name).is_some() {
                    let field = parent_field(path, expr);
                    let entry = reads.entry(name.to_owned()).or_insert_with(|| Some(Vec::new()));
                    match (entry.as_mut(), field) {
                        (Some(fields), Some(field)) => fields.push(field.to_owned()),
                        (Some(_), None) => *entry = None,
                        (None, _) => {}
                    }
                }
            }
            RhaiExpr::Dot(chain, _, _) | RhaiExpr::Index(chain, _, _) => {
                if let Some((name, shape)) = external_root(&chain.lhs, vars) {
                    let mut text = name.to_owned();
                    let result = if matches!(expr, RhaiExpr::Dot(..)) {
                        check_member(shape, &chain.rhs, &mut text)
                    } else {
                        text.push_str("[..]");
                        check_after_index(shape.item(), &chain.rhs, &mut text)
                    };
                    if let Err(err) = result {
                        error = Some(err);
                        return false;
                    }
                }
            }
            _ => {}
        }
        true
    };
    let mut path = Vec::new();
    for stmt in ast.statements() {
        if !stmt.walk(&mut path, &mut on_node) {
            break;
        }
        path.clear();
    }
    if let Some(err) = error {
        return Err(err);
    }
    check_functions(ast, vars)?;
    check_index_assignments(ast)?;

    let reads = reads
        .into_iter()
        .map(|(name, fields)| {
            let projection = match fields {
                Some(mut fields) => {
                    fields.sort();
                    fields.dedup();
                    Projection::Fields(fields)
                }
                None => Projection::Whole,
            };
            (name, projection)
        })
        .collect();
    Ok(Analysis { reads, uses_now })
}

/// The declared variable at the root of a chain, when it is the outside one (not a `let`).
fn external_root<'a>(expr: &RhaiExpr, vars: &'a Vars) -> Option<(&'a str, &'a Shape)> {
    match expr {
        RhaiExpr::Variable(var, _, _) if var.0.is_none() && var.1.as_str() != NOW => vars.entry(var.1.as_str()),
        _ => None,
    }
}

/// The first field read from the variable `var`, when its parent is `var.field...`.
fn parent_field<'a>(path: &[ASTNode<'a>], var: &RhaiExpr) -> Option<&'a str> {
    let parent = path.len().checked_sub(2).and_then(|i| path.get(i))?;
    let ASTNode::Expr(RhaiExpr::Dot(chain, _, _)) = parent else {
        return None;
    };
    if !std::ptr::eq(&chain.lhs, var) {
        return None;
    }
    let first = match &chain.rhs {
        RhaiExpr::Dot(inner, _, _) | RhaiExpr::Index(inner, _, _) => &inner.lhs,
        other => other,
    };
    match first {
        RhaiExpr::Property(property, _) => Some(property.2.as_str()),
        _ => None,
    }
}

/// Checks `expr`, which follows a `.` on a value of shape `shape`.
fn check_member(shape: &Shape, expr: &RhaiExpr, text: &mut String) -> Result<(), CompileError> {
    match expr {
        RhaiExpr::Property(property, pos) => field(shape, property.2.as_str(), *pos, text).map(|_| ()),
        RhaiExpr::Dot(chain, _, _) => match &chain.lhs {
            RhaiExpr::Property(property, pos) => {
                let next = field(shape, property.2.as_str(), *pos, text)?;
                check_member(next, &chain.rhs, text)
            }
            _ => Ok(()),
        },
        RhaiExpr::Index(chain, _, _) => match &chain.lhs {
            RhaiExpr::Property(property, pos) => {
                let next = field(shape, property.2.as_str(), *pos, text)?;
                text.push_str("[..]");
                check_after_index(next.item(), &chain.rhs, text)
            }
            _ => Ok(()),
        },
        // A method call ends what can be known statically.
        _ => Ok(()),
    }
}

/// Checks what follows an index `[...]` whose items have shape `item`.
fn check_after_index(item: &Shape, expr: &RhaiExpr, text: &mut String) -> Result<(), CompileError> {
    match expr {
        // `x[i].rest`: the index expression is on the left, the rest of the chain on the right.
        RhaiExpr::Dot(chain, _, _) => check_member(item, &chain.rhs, text),
        // `x[i][j]...`
        RhaiExpr::Index(chain, _, _) => {
            text.push_str("[..]");
            check_after_index(item.item(), &chain.rhs, text)
        }
        _ => Ok(()),
    }
}

fn field<'s>(shape: &'s Shape, name: &str, pos: Position, text: &mut String) -> Result<&'s Shape, CompileError> {
    let record = text.clone();
    text.push('.');
    text.push_str(name);
    match shape.field(name) {
        Some(next) => Ok(next),
        None => {
            let known: Vec<String> = match shape {
                Shape::Object { fields, .. } => fields.keys().cloned().collect(),
                _ => Vec::new(),
            };
            let hint = match crate::error::closest(name, known.iter().map(String::as_str)) {
                Some(near) => format!("did you mean `{near}`? "),
                None => String::new(),
            };
            let message = format!(
                "`{text}` is not a field of `{record}`; {hint}known fields: {}",
                crate::error::list_or_nothing(&known)
            );
            Err(CompileError::new(CompileErrorKind::UnknownField { path: text.clone(), known }, message, pos))
        }
    }
}

/// Functions defined in a script see only their parameters; reading a declared variable
/// there would fail at every run, so it is refused at load time.
///
/// Closures are the exception: rhai turns what they capture into extra parameters, and
/// their bodies have no reliable position range. So a variable is refused only when it
/// sits inside the `{ ... }` of a named function and no closure captures that name;
/// anything less certain is left to fail at run time rather than refused wrongly.
fn check_functions(ast: &AST, vars: &Vars) -> Result<(), CompileError> {
    if !ast.has_functions() {
        return Ok(());
    }
    let mut captured: Vec<&str> = Vec::new();
    let mut named = Vec::new();
    for def in ast.iter_fn_def() {
        if def.name.starts_with(ANONYMOUS_PREFIX) {
            captured.extend(def.params.iter().map(|p| p.as_str()));
        } else {
            named.push((position(def.body.start_position()), position(def.body.end_position()), def));
        }
    }
    let functions_only = ast.clone_functions_only();
    let mut error = None;
    functions_only.walk(&mut |path: &[ASTNode]| {
        let Some(ASTNode::Expr(RhaiExpr::Variable(var, _, pos))) = path.last() else {
            return true;
        };
        let name = var.1.as_str();
        if var.0.is_some() || (name != NOW && vars.get(name).is_none()) || captured.contains(&name) {
            return true;
        }
        let at = position(*pos);
        let owner = named
            .iter()
            .filter(|(start, end, _)| *start <= at && at <= *end)
            .max_by_key(|(start, _, _)| *start)
            .map(|(_, _, def)| def);
        match owner {
            Some(def) if !def.params.iter().any(|p| p.as_str() == name) => {
                let message = format!(
                    "`{name}` cannot be read inside function `{}`: functions only see their own parameters; \
                     pass `{name}` as an argument",
                    def.name
                );
                error = Some(CompileError::new(
                    CompileErrorKind::UndeclaredVariable { name: name.to_owned() },
                    message,
                    *pos,
                ));
                false
            }
            _ => true,
        }
    });
    error.map_or(Ok(()), Err)
}

/// The checks a script of function definitions gets beyond rhai's own (see
/// `Sandbox::compile_functions`): no `x[i] = v` anywhere.
pub(crate) fn check_functions_only(ast: &AST) -> Result<(), CompileError> {
    check_index_assignments(ast)
}

/// Refuses `x[i] = v` (and `x[i] += v`, `x.a[i] = v`, ...) anywhere in the script.
///
/// Rhai checks only the assigned item against the size limits, not the list or record
/// it goes into, so a loop of `m[key] = text` grows a record past every limit until the
/// operations run out (hundreds of megabytes with the default limits). `m.set(key, v)`
/// and `+=` are checked on the whole value, so they remain the ways to build data.
fn check_index_assignments(ast: &AST) -> Result<(), CompileError> {
    let mut error = None;
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Stmt(Stmt::Assignment(assignment))) = path.last()
            && let Some(pos) = index_in_chain(&assignment.1.lhs)
        {
            error = Some(crate::error::forbidden(crate::error::INDEX_ASSIGNMENT, pos));
            return false;
        }
        true
    });
    error.map_or(Ok(()), Err)
}

/// The position of the first `[` in an assignment target, if any.
fn index_in_chain(target: &RhaiExpr) -> Option<Position> {
    match target {
        RhaiExpr::Index(_, _, pos) => Some(*pos),
        RhaiExpr::Dot(chain, _, _) => index_in_chain(&chain.rhs),
        _ => None,
    }
}

/// How rhai names the functions it makes from closures.
pub(crate) const ANONYMOUS_PREFIX: &str = "anon$";
