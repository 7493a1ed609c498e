//! Diagnostics: what is wrong with a definition, where, and what to do about it.
//!
//! Every diagnostic has a stable code with a page under `docs/errors/` (a test keeps the pages
//! and this table in step). Messages are written for process owners, in the terms of their
//! YAML, not of this code.

use std::fmt;
use std::path::{Path as FsPath, PathBuf};

use crate::yaml::Span;

/// The kind of file a diagnostic code is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Area {
    /// Packs, processes, forms and calendars (`model`).
    Process,
    /// Plugin manifests, scripts, templates and configuration (`plugins`).
    Plugin,
    /// Dealer overlays (`packs`).
    Overlay,
}

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
    BadPack = "P0026", Error, "The pack manifest is wrong: version, role catalogue, calendars, scripts or migrations.";
    BadPolicy = "P0027", Error, "A process's policy locks a part that does not exist, or marks a step optional or extensible that cannot be.";
    BadPlugin = "P0028", Error, "A plugin manifest is wrong: a field, a name, a capability, a schema or a script reference.";
    PluginScript = "P0029", Error, "A plugin's Rhai script does not compile or does what a plugin script may not.";
    BadTemplate = "P0030", Error, "A notification template is wrong: a field, a language or a `{{placeholder}}`.";
    BadPluginConfig = "P0031", Error, "The plugin configuration is wrong: a field, a host, a URL or a secret.";
    OverlayPack = "O0001", Error, "The overlay is for another pack, or its `version` requirement does not match the pack's version.";
    OverlayUnknown = "O0002", Error, "The overlay names a process, step, parameter, calendar, role or extension point that the pack does not have.";
    OverlayLocked = "O0003", Error, "The overlay changes a part of the standard that headquarters has locked.";
    OverlayValue = "O0004", Error, "A value in the overlay is of the wrong kind or outside the range headquarters allows.";
    OverlayNotOptional = "O0005", Error, "The overlay disables a step that headquarters has not marked optional.";
    OverlayInsert = "O0006", Error, "Inserted steps clash with the standard's ids or lead outside their insertion.";
    OverlayBreaks = "O0007", Error, "With the overlay applied, a process of the pack no longer validates.";
}

impl Code {
    /// Whether the code is about a dealer's overlay (`O0001`..) rather than a process or pack
    /// file (`P0001`..). Overlay codes are exercised by the `packs` crate's broken overlays.
    pub fn is_overlay(self) -> bool {
        self.as_str().starts_with('O')
    }

    /// Which kind of file the code is reported for: each loader's tests exercise their own.
    pub fn area(self) -> Area {
        match self {
            Code::BadPlugin | Code::PluginScript | Code::BadTemplate | Code::BadPluginConfig => Area::Plugin,
            c if c.is_overlay() => Area::Overlay,
            _ => Area::Process,
        }
    }
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
