//! Turning a path in a definition document back into `file:line:column`, and collecting the
//! diagnostics found along the way.
//!
//! A definition document joins several files (the process, its forms, the pack manifest with
//! calendars and roles). The compiler only knows document paths such as
//! `process.steps.reception.next` or `forms.reception.properties.vin`; the [`Locator`] knows
//! which file and node each prefix came from. A document loaded back from the store has no
//! files, and its diagnostics carry the document path alone.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};

use crate::diagnostic::{Code, Diagnostic};
use crate::yaml::{Node, Path, Seg, Span};

/// One source file with its parsed tree.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The file's path, as it should appear in diagnostics.
    pub path: PathBuf,
    /// Its text (to find where a quoted or block scalar's content starts).
    pub text: String,
    /// Its tree.
    pub node: Node,
}

/// Where each part of a definition document came from.
#[derive(Debug, Default)]
pub struct Locator<'a> {
    /// The process file (document prefix `process`).
    pub process: Option<&'a SourceFile>,
    /// The pack manifest (prefixes `calendars` and `roles`).
    pub pack: Option<&'a SourceFile>,
    /// Form files by name (prefix `forms.<name>`).
    pub forms: BTreeMap<String, &'a SourceFile>,
    /// Parts of the document that came from elsewhere (a dealer's overlay: an inserted step, a
    /// changed due time). They take precedence over the files above; the longest prefix wins.
    pub mounts: Vec<Mount<'a>>,
    /// The name used for diagnostics when no file is known.
    pub fallback: PathBuf,
}

/// A part of a definition document that came from a place in another file.
#[derive(Debug, Clone)]
pub struct Mount<'a> {
    /// The document path of the part, e.g. `process.steps.car_wash`.
    pub prefix: Path,
    /// The file it came from.
    pub file: &'a SourceFile,
    /// Where in that file, e.g. `insert[0].steps.car_wash`.
    pub at: Path,
}

/// A place to report.
#[derive(Debug, Clone)]
pub enum Where {
    /// The value at a path.
    Value(Path),
    /// The key of the last segment of a path.
    Key(Path),
    /// A position inside an expression (1-based line and column within the script) whose text
    /// is the scalar at a path.
    Inside(Path, u32, u32),
}

impl Locator<'_> {
    fn resolve(&self, path: &Path) -> Option<(&SourceFile, Path)> {
        let segs = path.segments();
        let mounted = self
            .mounts
            .iter()
            .filter(|m| segs.starts_with(m.prefix.segments()))
            .max_by_key(|m| m.prefix.segments().len());
        if let Some(m) = mounted {
            let rest = &segs[m.prefix.segments().len()..];
            let mut at = m.at.segments().to_vec();
            at.extend_from_slice(rest);
            return Some((m.file, Path::from_segments(&at)));
        }
        let first = match segs.first() {
            Some(Seg::Key(k)) => k.as_str(),
            _ => return None,
        };
        match first {
            "process" => self.process.map(|f| (f, Path::from_segments(&segs[1..]))),
            "calendars" | "roles" => self.pack.map(|f| (f, path.clone())),
            "forms" => {
                let Some(Seg::Key(name)) = segs.get(1) else { return None };
                self.forms.get(name).map(|f| (*f, Path::from_segments(&segs[2..])))
            }
            _ => None,
        }
    }

    /// The file and position of a place.
    pub fn locate(&self, place: &Where) -> (PathBuf, Span) {
        let path = match place {
            Where::Value(p) | Where::Key(p) | Where::Inside(p, _, _) => p,
        };
        let Some((file, rel)) = self.resolve(path) else { return (self.fallback.clone(), Span::default()) };
        let span = match place {
            Where::Value(_) => file.node.span_at(&rel),
            Where::Key(_) => file.node.key_span_at(&rel),
            Where::Inside(_, line, col) => {
                let start = file.node.span_at(&rel);
                inside_scalar(&file.text, start, *line, *col)
            }
        };
        (file.path.clone(), span)
    }
}

/// The position of `(line, col)` of a scalar's content, given where the scalar starts. Plain
/// and quoted scalars start on their own line (a quote adds one column); block scalars (`|`,
/// `>`) start on the next line at its indentation. An expression's leading `=` is part of the
/// content, which callers account for in `col`.
pub fn inside_scalar(text: &str, start: Span, line: u32, col: u32) -> Span {
    let Some(src_line) = text.lines().nth(start.line.saturating_sub(1) as usize) else { return start };
    let rest: String = src_line.chars().skip(start.col.saturating_sub(1) as usize).collect();
    let first = rest.chars().next();
    match first {
        Some('|') | Some('>') => {
            let Some(content_line) = text.lines().nth(start.line as usize + line.saturating_sub(1) as usize) else {
                return start;
            };
            let indent = content_line.chars().take_while(|c| *c == ' ').count() as u32;
            Span::new(start.line + line, indent + col)
        }
        Some('"') | Some('\'') => {
            if line <= 1 {
                Span::new(start.line, start.col + col)
            } else {
                Span::new(start.line + line - 1, col)
            }
        }
        _ => start.offset(line, col),
    }
}

/// Collects diagnostics.
#[derive(Debug)]
pub struct Sink<'a> {
    locator: &'a Locator<'a>,
    diagnostics: Vec<Diagnostic>,
}

impl<'a> Sink<'a> {
    /// A sink reporting through a locator.
    pub fn new(locator: &'a Locator<'a>) -> Sink<'a> {
        Sink { locator, diagnostics: Vec::new() }
    }

    /// Reports a problem.
    pub fn report(&mut self, code: Code, place: Where, message: impl Into<String>, hint: Option<String>) {
        let (file, span) = self.locator.locate(&place);
        let mut d = Diagnostic::new(code, FsPath::new(&file), span, message);
        d.hint = hint;
        self.diagnostics.push(d);
    }

    /// Whether any error (not warning) was reported.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The diagnostics.
    pub fn finish(self) -> Vec<Diagnostic> {
        self.diagnostics
    }
}
