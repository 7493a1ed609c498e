//! Reading YAML (and JSON, which is YAML) into a tree that remembers where every node and key
//! stands, under hard resource limits.
//!
//! serde types lose positions, but a process owner must be told `file:line:column` for a
//! problem found long after parsing (an unknown step in a `next:`, a guard that reads an
//! undeclared variable). So a file is read once into [`Node`]s carrying spans; the validator
//! converts the tree to JSON for the schema check and the typed deserialisation, and keeps a
//! [`Path`] to every value it looks at, which [`Node::span_at`] turns back into a position.
//!
//! Hostile input is refused before it can cost much: the file size is checked first, and the
//! parser's budget bounds nodes, nesting depth, aliases and scalar bytes (an alias bomb stops at
//! the node limit instead of expanding).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

/// Resource limits for reading one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest file accepted, in bytes.
    pub max_file_bytes: usize,
    /// The most nodes (scalars, sequences, mappings), counting alias expansions.
    pub max_nodes: usize,
    /// The deepest nesting.
    pub max_depth: usize,
    /// The most aliases (`*name`).
    pub max_aliases: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // A large SOP (the service order) is about 60 KiB and 8,000 nodes; these leave ample room
        // while keeping a hostile file to a few megabytes of memory.
        Limits { max_file_bytes: 1 << 20, max_nodes: 100_000, max_depth: 48, max_aliases: 1_000 }
    }
}

/// A position in a file: 1-based line and column. Zero means "unknown".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// The line, from 1.
    pub line: u32,
    /// The column, from 1, counted in characters.
    pub col: u32,
}

impl Span {
    /// A span at a line and column.
    pub fn new(line: u32, col: u32) -> Span {
        Span { line, col }
    }

    /// Moves a span found inside a scalar (e.g. a position within a guard) by an offset of
    /// `line` lines and `col` columns within that scalar. A multi-line block scalar's content
    /// starts on the line after its key, indented; callers pass the offset they computed.
    pub fn offset(self, line: u32, col: u32) -> Span {
        if line <= 1 {
            Span::new(self.line, self.col + col.saturating_sub(1))
        } else {
            Span::new(self.line + line - 1, col)
        }
    }

    fn from_location(loc: serde_saphyr::Location) -> Span {
        Span {
            line: u32::try_from(loc.line()).unwrap_or(u32::MAX),
            col: u32::try_from(loc.column()).unwrap_or(u32::MAX),
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One segment of a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// Where a value stands in a document: `steps.reception.timers[0].after`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Path(Vec<Seg>);

impl Path {
    /// The document's root.
    pub fn root() -> Path {
        Path(Vec::new())
    }

    /// This path followed by a key.
    pub fn key(&self, key: impl Into<String>) -> Path {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.into()));
        Path(segs)
    }

    /// This path followed by an index.
    pub fn index(&self, idx: usize) -> Path {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(idx));
        Path(segs)
    }

    /// A path made of segments.
    pub fn from_segments(segs: &[Seg]) -> Path {
        Path(segs.to_vec())
    }

    /// The segments.
    pub fn segments(&self) -> &[Seg] {
        &self.0
    }

    /// Parses a JSON pointer (`/steps/reception/next`), as JSON Schema validators report them.
    pub fn from_pointer(pointer: &str) -> Path {
        let segs = pointer
            .split('/')
            .skip(1)
            .map(|raw| {
                let s = raw.replace("~1", "/").replace("~0", "~");
                // A pointer does not say whether `0` indexes a sequence or names a key; the
                // lookup in `Node::at` accepts either reading, so an index guess is harmless.
                match s.parse::<usize>() {
                    Ok(i) => Seg::Index(i),
                    Err(_) => Seg::Key(s),
                }
            })
            .collect();
        Path(segs)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// A mapping key and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key's text.
    pub name: String,
    /// Where the key stands.
    pub span: Span,
}

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node's value starts.
    pub span: Span,
    /// The value.
    pub value: NodeValue,
}

/// The value of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    /// `~`, `null` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number with a fraction or exponent (or an integer too large for 64 bits).
    Float(f64),
    /// A text.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in the order written.
    Map(Vec<(Key, Node)>),
}

/// Why a file could not be read into a tree.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The file is larger than the limit.
    #[error("the file is {size} bytes; the limit is {limit} bytes")]
    TooLarge {
        /// The file's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The YAML is not well formed.
    #[error("{message}")]
    Syntax {
        /// What is wrong.
        message: String,
        /// Where.
        span: Span,
    },
    /// A resource limit was reached (nesting, nodes, aliases): the file is refused as a whole.
    #[error("{message}")]
    Limit {
        /// Which limit, in words.
        message: String,
        /// Where it was reached.
        span: Span,
    },
    /// The same key appears twice in one mapping.
    #[error("`{key}` appears twice in the same mapping")]
    DuplicateKey {
        /// The key.
        key: String,
        /// Where the second one stands.
        span: Span,
    },
}

impl Error {
    /// Where the problem is.
    pub fn span(&self) -> Span {
        match self {
            Error::TooLarge { .. } => Span::new(1, 1),
            Error::Syntax { span, .. } | Error::Limit { span, .. } | Error::DuplicateKey { span, .. } => *span,
        }
    }
}

/// Reads a document. On a duplicate key the problem is reported and the first occurrence is
/// kept, so the rest of the file can still be checked: `(tree, Some(duplicate))`.
pub fn parse(source: &str, limits: &Limits) -> Result<(Node, Option<Error>), Error> {
    if source.len() > limits.max_file_bytes {
        return Err(Error::TooLarge { size: source.len(), limit: limits.max_file_bytes });
    }
    match parse_with(source, limits, serde_saphyr::options::DuplicateKeyPolicy::Error) {
        Ok(node) => Ok((node, None)),
        Err(dup @ Error::DuplicateKey { .. }) => {
            let node = parse_with(source, limits, serde_saphyr::options::DuplicateKeyPolicy::FirstWins)?;
            Ok((node, Some(dup)))
        }
        Err(e) => Err(e),
    }
}

fn parse_with(
    source: &str,
    limits: &Limits,
    duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy,
) -> Result<Node, Error> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_nodes: limits.max_nodes,
            max_depth: limits.max_depth,
            max_aliases: limits.max_aliases,
            max_anchors: limits.max_aliases,
            max_total_scalar_bytes: limits.max_file_bytes,
            max_documents: 1,
        },
        duplicate_keys: duplicate_keys,
        with_snippet: false,
        // YAML 1.2: only `true` and `false` are booleans, so a step called `yes` or a country
        // code `NO` stays a text.
        strict_booleans: true,
    };
    match serde_saphyr::from_str_with_options::<Spanned<Raw>>(source, options) {
        Ok(spanned) => Ok(spanned.into()),
        Err(err) => Err(classify(&err, limits)),
    }
}

fn classify(err: &serde_saphyr::Error, limits: &Limits) -> Error {
    let inner = err.without_snippet();
    let span = inner.location().map(Span::from_location).unwrap_or(Span::new(1, 1));
    let message = strip_location_prefix(&inner.to_string());
    if let serde_saphyr::Error::DuplicateMappingKey { key, .. } = inner {
        let key = key.clone().unwrap_or_default();
        return Error::DuplicateKey { key, span };
    }
    if message.contains("budget") || message.contains("depth") || message.contains("limit") {
        let what = if message.contains("Nodes") {
            format!("it expands to more than {} values (counting what its aliases repeat)", limits.max_nodes)
        } else if message.contains("Depth") || message.contains("depth") {
            format!("it nests deeper than {} levels", limits.max_depth)
        } else if message.contains("Alias") || message.contains("Anchor") {
            format!("it uses more than {} aliases or anchors", limits.max_aliases)
        } else {
            message
        };
        return Error::Limit {
            message: format!("the file is refused: {what}; this limit protects the engine from hostile input"),
            span,
        };
    }
    Error::Syntax { message, span }
}

/// serde-saphyr prefixes its messages with `error: line L column C: `; our diagnostics carry the
/// position separately.
fn strip_location_prefix(message: &str) -> String {
    let first_line = message.lines().next().unwrap_or(message);
    let rest = first_line.strip_prefix("error: ").unwrap_or(first_line);
    match rest.find(": ") {
        Some(idx) if rest.starts_with("line ") => rest[idx + 2..].to_string(),
        _ => rest.to_string(),
    }
}

impl Node {
    /// The node at a path, if there is one.
    pub fn at(&self, path: &Path) -> Option<&Node> {
        let mut node = self;
        for seg in path.segments() {
            node = node.child(seg)?;
        }
        Some(node)
    }

    fn child(&self, seg: &Seg) -> Option<&Node> {
        match (&self.value, seg) {
            (NodeValue::Map(entries), Seg::Key(k)) => entries.iter().find(|(key, _)| &key.name == k).map(|(_, n)| n),
            (NodeValue::Map(entries), Seg::Index(i)) => {
                let k = i.to_string();
                entries.iter().find(|(key, _)| key.name == k).map(|(_, n)| n)
            }
            (NodeValue::Seq(items), Seg::Index(i)) => items.get(*i),
            _ => None,
        }
    }

    /// Where the value at a path starts; the nearest existing ancestor's position when the path
    /// goes further than the document (e.g. a missing field is reported at its parent).
    pub fn span_at(&self, path: &Path) -> Span {
        let mut node = self;
        for seg in path.segments() {
            match node.child(seg) {
                Some(child) => node = child,
                None => break,
            }
        }
        node.span
    }

    /// Where the key of the last segment of a path stands (for "unknown field" or "duplicate
    /// id" reports, which point at the key rather than its value).
    pub fn key_span_at(&self, path: &Path) -> Span {
        let segs = path.segments();
        let Some((last, parent)) = segs.split_last() else { return self.span };
        let parent_path = Path(parent.to_vec());
        let Some(parent_node) = self.at(&parent_path) else { return self.span_at(path) };
        if let (NodeValue::Map(entries), Seg::Key(k)) = (&parent_node.value, last)
            && let Some((key, _)) = entries.iter().find(|(key, _)| &key.name == k)
        {
            return key.span;
        }
        self.span_at(path)
    }

    /// The tree as JSON, for schema validation and typed deserialisation.
    pub fn to_json(&self) -> Value {
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Int(i) => Value::from(*i),
            NodeValue::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            NodeValue::Str(s) => Value::String(s.clone()),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => {
                Value::Object(entries.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect())
            }
        }
    }
}

/// The intermediate value serde-saphyr fills in; each child is wrapped in `Spanned` so that its
/// position survives.
enum Raw {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<String>, Spanned<Raw>)>),
}

impl From<Spanned<Raw>> for Node {
    fn from(spanned: Spanned<Raw>) -> Node {
        let span = Span::from_location(spanned.referenced);
        let value = match spanned.value {
            Raw::Null => NodeValue::Null,
            Raw::Bool(b) => NodeValue::Bool(b),
            Raw::Int(i) => NodeValue::Int(i),
            Raw::Float(f) => NodeValue::Float(f),
            Raw::Str(s) => NodeValue::Str(s),
            Raw::Seq(items) => NodeValue::Seq(items.into_iter().map(Node::from).collect()),
            Raw::Map(entries) => NodeValue::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (Key { span: Span::from_location(k.referenced), name: k.value }, Node::from(v)))
                    .collect(),
            ),
        };
        Node { span, value }
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        // Beyond i64 the value cannot be an id, count or amount of ours; keep it as a float
        // rather than fail, and let the schema judge it.
        Ok(i64::try_from(v).map_or(Raw::Float(v as f64), Raw::Int))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Raw, E> {
        Ok(i64::try_from(v).map_or(Raw::Float(v as f64), Raw::Int))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Raw, E> {
        Ok(i64::try_from(v).map_or(Raw::Float(v as f64), Raw::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Raw>>()? {
            items.push(item);
        }
        Ok(Raw::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Spanned<Raw>>()?;
            entries.push((key, value));
        }
        Ok(Raw::Map(entries))
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _data: A) -> Result<Raw, A::Error> {
        Err(de::Error::custom("tagged values (`!tag`) are not supported here"))
    }
}
