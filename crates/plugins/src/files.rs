//! Reading the YAML files of plugins (manifests, templates, the configuration) into typed values,
//! with every problem as a [`Diagnostic`] at `file:line:col`.
//!
//! Files are read with `model::yaml` (the same resource limits as packs), converted to JSON,
//! and deserialised with the path of any error kept, which the spanned tree turns back into a
//! position.

use std::path::Path as FsPath;

use model::yaml::{self, Node, Path};
use model::{Code, Diagnostic};
use serde::de::DeserializeOwned;

/// A parsed file: its tree (for positions) and where it came from.
#[derive(Debug, Clone)]
pub struct YamlFile {
    /// The file, as it appears in diagnostics.
    pub path: std::path::PathBuf,
    /// The spanned tree.
    pub node: Node,
}

impl YamlFile {
    /// Parses `text`; YAML errors become `P0001`/`P0002` diagnostics.
    pub fn parse(path: &FsPath, text: &str) -> Result<YamlFile, Diagnostic> {
        match yaml::parse(text, &yaml::Limits::default()) {
            Ok((node, None)) => Ok(YamlFile { path: path.to_path_buf(), node }),
            Ok((_, Some(dup))) => Err(Diagnostic::new(Code::DuplicateId, path, dup.span(), dup.to_string())),
            Err(err) => {
                let code = match err {
                    yaml::Error::TooLarge { .. } | yaml::Error::Limit { .. } => Code::ResourceLimit,
                    _ => Code::YamlSyntax,
                };
                Err(Diagnostic::new(code, path, err.span(), err.to_string()))
            }
        }
    }

    /// Deserialises the whole file; an error is reported at the field it concerns with `code`.
    pub fn typed<T: DeserializeOwned>(&self, code: Code) -> Result<T, Diagnostic> {
        let json = self.node.to_json();
        serde_path_to_error::deserialize::<_, T>(json).map_err(|err| {
            let path = to_path(err.path());
            let inner = err.into_inner().to_string();
            // An unknown field's path ends with the field: point at its key, which says it all.
            let unknown = inner.starts_with("unknown field");
            let span = if unknown { self.node.key_span_at(&path) } else { self.node.span_at(&path) };
            let at = if unknown || path.segments().is_empty() { String::new() } else { format!("`{path}`: ") };
            Diagnostic::new(code, &self.path, span, format!("{at}{inner}"))
        })
    }

    /// A diagnostic at the value under `path`.
    pub fn at(&self, code: Code, path: &Path, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(code, &self.path, self.node.span_at(path), message)
    }

    /// A diagnostic at the key of the last segment of `path`.
    pub fn at_key(&self, code: Code, path: &Path, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(code, &self.path, self.node.key_span_at(path), message)
    }
}

fn to_path(path: &serde_path_to_error::Path) -> Path {
    let mut out = Path::root();
    for segment in path.iter() {
        out = match segment {
            serde_path_to_error::Segment::Seq { index } => out.index(*index),
            serde_path_to_error::Segment::Map { key } => out.key(key.clone()),
            serde_path_to_error::Segment::Enum { variant } => out.key(variant.clone()),
            serde_path_to_error::Segment::Unknown => break,
        };
    }
    out
}
