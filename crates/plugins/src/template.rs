//! Notification templates: `<pack>/templates/<name>.yaml`, a Chinese and an English text with
//! `{{var}}` and `{{var.field}}` placeholders filled from the notification's data.
//!
//! The substitution is written here rather than taken from a template engine: all a template
//! needs is placeholders, and the one property that matters (a missing value is an error that
//! names it, never a silent empty fill) is the opposite of most engines' default and takes
//! fewer lines to write than to configure. There are no loops, conditions or filters on
//! purpose: a text that needs logic gets its values computed in the process (`=` expressions)
//! and passed in `data`. Placeholders are checked when a pack is loaded, so a broken `{{` is a
//! diagnostic at `file:line:col`, not a failed delivery.

use std::collections::BTreeMap;
use std::path::Path as FsPath;

use model::yaml::Path;
use model::{Code, Diagnostic};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::files::YamlFile;

/// The channel a template is meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A text message.
    Sms,
    /// An e-mail.
    Email,
    /// A JSON POST to the configured webhook.
    Webhook,
    /// The audit trail only.
    Log,
}

impl Channel {
    /// The channel's name as written in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
            Channel::Webhook => "webhook",
            Channel::Log => "log",
        }
    }
}

/// A template file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    template: String,
    channel: Channel,
    #[serde(default)]
    subject: Option<Texts>,
    zh: String,
    en: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Texts {
    zh: String,
    en: String,
}

/// A checked template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Its name (the file name without `.yaml`).
    pub name: String,
    /// The channel it is meant for (the input may choose another).
    pub channel: Channel,
    /// The e-mail subject, if any.
    pub subject: Option<(Text, Text)>,
    /// The Chinese text.
    pub zh: Text,
    /// The English text.
    pub en: Text,
}

/// A text split into literal pieces and placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Literal(String),
    /// `{{a.b}}` as `["a", "b"]`.
    Var(Vec<String>),
}

/// A placeholder without a value in the data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the template needs `{name}`, which is not in the notification's data")]
pub struct MissingVariable {
    /// The placeholder, e.g. `customer.name`.
    pub name: String,
}

impl Text {
    /// Splits `source` into pieces; an error gives the message and the byte offset.
    pub fn parse(source: &str) -> Result<Text, (String, usize)> {
        let mut pieces = Vec::new();
        let mut rest = source;
        let mut offset = 0;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                pieces.push(Piece::Literal(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                return Err(("`{{` is not closed with `}}`".to_owned(), offset + start));
            };
            let name = after[..end].trim();
            let path: Vec<String> = name.split('.').map(str::to_owned).collect();
            let valid = path.iter().all(|seg| {
                !seg.is_empty()
                    && seg.chars().all(|c| c.is_alphanumeric() || c == '_')
                    && !seg.starts_with(char::is_numeric)
            });
            if !valid {
                return Err((
                    format!(
                        "`{{{{{name}}}}}` is not a placeholder; write a name such as `{{{{plate_no}}}}` or `{{{{customer.name}}}}`"
                    ),
                    offset + start,
                ));
            }
            pieces.push(Piece::Var(path));
            let consumed = start + 2 + end + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Literal(rest.to_owned()));
        }
        Ok(Text { pieces })
    }

    /// The placeholders, in order, as written (`customer.name`).
    pub fn placeholders(&self) -> Vec<String> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Var(path) => Some(path.join(".")),
                Piece::Literal(_) => None,
            })
            .collect()
    }

    /// Fills the placeholders from `data`. A missing or `null` value is an error naming it;
    /// texts are inserted as they are, numbers and yes/no as written, lists and records as JSON.
    pub fn render(&self, data: &Value) -> Result<String, MissingVariable> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Var(path) => {
                    let value = path.iter().try_fold(data, |value, seg| value.get(seg.as_str()));
                    match value {
                        None | Some(Value::Null) => return Err(MissingVariable { name: path.join(".") }),
                        Some(Value::String(s)) => out.push_str(s),
                        Some(other) => out.push_str(&other.to_string()),
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The templates of the installed packs, by name.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    by_name: BTreeMap<String, (String, Template)>,
}

/// Two packs define a template of the same name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the template `{name}` of pack `{pack}` is already defined by pack `{other}`")]
pub struct TemplateClash {
    /// The template.
    pub name: String,
    /// The pack being installed.
    pub pack: String,
    /// The pack that has it already.
    pub other: String,
}

impl Templates {
    /// No templates.
    pub fn new() -> Templates {
        Templates::default()
    }

    /// Adds a pack's templates, replacing those the same pack had before. A name another pack
    /// already uses is refused, and nothing is added.
    pub fn install(&mut self, pack: &str, templates: Vec<Template>) -> Result<(), TemplateClash> {
        for t in &templates {
            if let Some((other, _)) = self.by_name.get(&t.name)
                && other != pack
            {
                return Err(TemplateClash { name: t.name.clone(), pack: pack.to_owned(), other: other.clone() });
            }
        }
        self.by_name.retain(|_, (owner, _)| owner != pack);
        for t in templates {
            self.by_name.insert(t.name.clone(), (pack.to_owned(), t));
        }
        Ok(())
    }

    /// A template by name.
    pub fn get(&self, name: &str) -> Option<&Template> {
        self.by_name.get(name).map(|(_, t)| t)
    }

    /// The names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

/// The templates folder of a pack.
pub const TEMPLATES_DIR: &str = "templates";

/// Reads every `*.yaml` in `<pack>/templates/`. A pack without the folder has no templates.
pub fn load_templates(pack_dir: &FsPath) -> (Vec<Template>, Vec<Diagnostic>) {
    let dir = pack_dir.join(TEMPLATES_DIR);
    let mut templates = Vec::new();
    let mut diagnostics = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else { return (templates, diagnostics) };
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    paths.sort();
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => match parse_template(&path, &text) {
                Ok(t) => templates.push(t),
                Err(mut d) => diagnostics.append(&mut d),
            },
            Err(e) => diagnostics.push(Diagnostic::new(
                Code::BadTemplate,
                &path,
                model::yaml::Span::new(1, 1),
                format!("cannot read the file: {e}"),
            )),
        }
    }
    (templates, diagnostics)
}

/// Parses and checks one template file.
pub fn parse_template(path: &FsPath, text: &str) -> Result<Template, Vec<Diagnostic>> {
    let file = YamlFile::parse(path, text).map_err(|d| vec![d])?;
    let raw: RawTemplate = file.typed(Code::BadTemplate).map_err(|d| vec![d])?;
    let mut problems = Vec::new();
    let root = Path::root();
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    if raw.template != stem {
        problems.push(file.at(
            Code::BadTemplate,
            &root.key("template"),
            format!("the template is called `{}` but its file is `{stem}.yaml`; the two must match", raw.template),
        ));
    }
    let mut text = |source: &str, at: Path| match Text::parse(source) {
        Ok(t) => Some(t),
        Err((message, _offset)) => {
            problems.push(file.at(Code::BadTemplate, &at, message));
            None
        }
    };
    let zh = text(&raw.zh, root.key("zh"));
    let en = text(&raw.en, root.key("en"));
    let subject = raw
        .subject
        .as_ref()
        .map(|s| (text(&s.zh, root.key("subject").key("zh")), text(&s.en, root.key("subject").key("en"))));
    for (lang, t) in [("zh", &zh), ("en", &en)] {
        if t.as_ref().is_some_and(|t| t.pieces.is_empty()) {
            problems.push(file.at(Code::BadTemplate, &root.key(lang), format!("the `{lang}` text is empty")));
        }
    }
    match (zh, en, subject, problems.is_empty()) {
        (Some(zh), Some(en), subject, true) => {
            let subject = match subject {
                Some((Some(z), Some(e))) => Some((z, e)),
                _ => None,
            };
            Ok(Template { name: raw.template, channel: raw.channel, subject, zh, en })
        }
        _ => Err(problems),
    }
}
