//! Diagnostics: what is wrong with a definition, where, and what to do about it.
//!
//! Every diagnostic has a stable code with a page under `docs/errors/` (a test keeps the pages
//! and this table in step). Messages are written for process owners, in the terms of their
//! YAML, not of this code.

use std::fmt;
use std::path::{Path as FsPath, PathBuf};

use crate::yaml::Span;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The definition cannot be deployed.
    Error,
    /// The definition works, but something is missing that a reader expects.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $severity:ident, $summary:literal;)*) => {
        /// A diagnostic code. Each has a page `docs/errors/<code>.md`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $(
                #[doc = $summary]
                $variant,
            )*
        }

        impl Code {
            /// Every code, in order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The code as written in messages and file names, e.g. `P0004`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $code,)*
                }
            }

            /// How serious the problem is.
            pub fn severity(self) -> Severity {
                match self {
                    $(Code::$variant => Severity::$severity,)*
                }
            }

            /// One line saying what the code is about.
            pub fn summary(self) -> &'static str {
                match self {
                    $(Code::$variant => $summary,)*
                }
            }
        }
    };
}

codes! {
    YamlSyntax = "P0001", Error, "The file is not well-formed YAML (or JSON).";
    ResourceLimit = "P0002", Error, "The file exceeds a size, nesting or alias limit and is refused.";
    Schema = "P0003", Error, "A field is unknown, missing, or has a value of the wrong kind.";
    UnknownStep = "P0004", Error, "A reference names a step that the process does not have.";
    UnknownRole = "P0005", Error, "A role is not declared by the process or not in the pack's role catalogue.";
    UnknownForm = "P0006", Error, "A form names a file that does not exist.";
    UnknownAction = "P0007", Error, "An action is neither built in nor provided by a plugin.";
    UnknownParameter = "P0008", Error, "An expression reads a parameter the process does not declare.";
    DuplicateId = "P0009", Error, "The same id is used twice.";
    UnreachableStep = "P0010", Error, "No path from the start leads to this step.";
    NoEnd = "P0011", Error, "No end can be reached from this step: an instance that gets here never finishes.";
    JoinMismatch = "P0012", Error, "A join does not match a parallel split, or a branch never reaches its join.";
    ExpressionSyntax = "P0013", Error, "A guard or expression does not compile.";
    UndeclaredVariable = "P0014", Error, "A guard or expression reads a variable or field that is not declared.";
    BadDuration = "P0015", Error, "A duration is not an ISO 8601 duration such as PT15M, PT2H or P1D.";
    BadCalendar = "P0016", Error, "A calendar is unknown or its definition is wrong.";
    BadSchema = "P0017", Error, "A form or the instance data is not a valid JSON Schema of an object.";
    MissingLabel = "P0018", Warning, "A title or description lacks its Chinese (zh) or English (en) text.";
    BadParameter = "P0019", Error, "A parameter's default is of the wrong type or outside its range.";
    BadSetTarget = "P0020", Error, "A `set:` writes a variable the instance data does not declare.";
    BadTimer = "P0021", Error, "A timer says neither or both of when and what, or is attached where it cannot run.";
    NameClash = "P0022", Error, "A data variable has the same name as a step, a timer or a reserved word.";
    UnknownProcess = "P0023", Error, "A subprocess names a process that is not in the pack.";
    BadId = "P0024", Error, "An id is not snake_case (lower-case letters, digits and underscores).";
    BadLiteral = "P0025", Error, "A priority, outcome or similar keyword is not one of the allowed words.";
    BadPack = "P0026", Error, "The pack manifest is wrong: version, role catalogue or calendars.";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem, with where it is and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What kind of problem.
    pub code: Code,
    /// The file.
    pub file: PathBuf,
    /// Where in the file.
    pub span: Span,
    /// What is wrong, in the terms of the YAML.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic without a hint.
    pub fn new(code: Code, file: &FsPath, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic { code, file: file.to_path_buf(), span, message: message.into(), hint: None }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// How serious it is.
    pub fn severity(&self) -> Severity {
        self.code.severity()
    }

    /// Whether it blocks deployment.
    pub fn is_error(&self) -> bool {
        self.severity() == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: error[P0004]: message`, then the hint on its own line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}[{}]: {}", self.file.display(), self.span, self.severity(), self.code, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  = hint: {hint}")?;
        }
        Ok(())
    }
}

/// Sorts diagnostics by file and position, so that output is stable and reads top to bottom.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| (&a.file, a.span, a.code).cmp(&(&b.file, b.span, b.code)));
}

/// The closest of `candidates` to `word`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = strsim::levenshtein(word, candidate);
        let limit = (word.chars().count().max(candidate.chars().count()) / 3).max(1);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}
