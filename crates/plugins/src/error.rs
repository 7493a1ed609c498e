//! The errors of loading plugins and their configuration.

use model::Diagnostic;

/// Why plugins, templates or their configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The files are wrong; every problem, at `file:line:col`.
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
    /// The HTTP client could not be set up (its TLS backend did not start).
    #[error("the HTTP client cannot be set up: {0}")]
    Client(#[from] reqwest::Error),
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}
