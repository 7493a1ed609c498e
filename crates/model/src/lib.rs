//! The process language: YAML files in, validated [`Process`]es and coded diagnostics out.
//!
//! Pure: no clock, no network, no database. Files are read through the [`validate::Files`]
//! port. The path is `yaml` (spanned tree, resource limits) -> `schema` (structural check
//! against the generated language schema) -> `raw` (serde types) -> `validate` (references,
//! expressions, forms, calendars, flow) -> [`Process`].

pub mod diagnostic;
pub mod mermaid;
pub mod process;
pub mod raw;
pub mod schema;
pub mod validate;
pub mod yaml;

pub use diagnostic::{Code, Diagnostic, Severity};
pub use process::*;
pub use raw::{Label, ParameterKind, Source};
pub use validate::{FsFiles, LoadedPack, Options, compile_document, find_packs, load_pack, pack_dir_of};
