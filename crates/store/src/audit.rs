//! The tamper-evident audit chain: canonical JSON, entry hashing and chain verification.
//!
//! Each entry's hash is `sha256(prev_hash || canonical content)`, where the content is every
//! stored column except `seq` and the hashes, as JSON with object keys sorted at every level.
//! The first entry of a chain has [`GENESIS`] as its previous hash. Changing any stored field
//! of any entry, removing an entry or reordering entries breaks the chain from that entry on,
//! and [`verify_chain`] names the first entry that does not fit.
//!
//! The content is hashed from the stored values, so the check needs nothing but the rows: an
//! external archive of the JSON-lines export can be verified with the same function.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{AuditRow, Millis};

/// The previous hash of a chain's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An entry before it is chained: everything but the position and the hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// The chain.
    pub chain: String,
    /// Who, as JSON.
    pub actor: Value,
    /// What happened.
    pub kind: String,
    /// The step concerned.
    pub step: Option<String>,
    /// The details.
    pub entry: Value,
    /// The definition the change ran on.
    pub definition_hash: Option<String>,
}

/// Chains a draft after the entry `(prev_seq, prev_hash)` of its chain.
pub fn seal(draft: Draft, at: Millis, prev_seq: i64, prev_hash: &str) -> AuditRow {
    let mut row = AuditRow {
        seq: 0,
        chain: draft.chain,
        chain_seq: prev_seq + 1,
        at,
        actor: canonical(&draft.actor),
        kind: draft.kind,
        step: draft.step,
        entry: canonical(&draft.entry),
        definition_hash: draft.definition_hash,
        prev_hash: prev_hash.to_string(),
        hash: String::new(),
    };
    // The actor and entry were just written canonically: hashed as they are, not parsed back.
    row.hash = hash_content(&row, &row.actor, &row.entry);
    row
}

/// The hash an entry must carry, from its stored fields and its `prev_hash`. Fields stored as
/// JSON text are parsed first, so a backend that re-formats JSON does not break the chain; one
/// that cannot be parsed is hashed as text, so the chain breaks at that entry.
pub fn hash_of(row: &AuditRow) -> String {
    let canonical_or_text = |s: &str| match serde_json::from_str::<Value>(s) {
        Ok(v) => canonical(&v),
        Err(_) => canonical(&Value::String(s.to_string())),
    };
    hash_content(row, &canonical_or_text(&row.actor), &canonical_or_text(&row.entry))
}

/// A field of the hashed content.
enum Field<'a> {
    /// Canonical JSON text, written as it is.
    Canonical(&'a str),
    Text(Option<&'a str>),
    Int(i64),
}

/// `sha256(prev_hash || content)`, the content being the entry's stored fields (with `actor`
/// and `entry` given as canonical JSON text) as canonical JSON: one object, its keys in sorted
/// order.
fn hash_content(row: &AuditRow, actor: &str, entry: &str) -> String {
    let fields = [
        ("actor", Field::Canonical(actor)),
        ("at", Field::Int(row.at)),
        ("chain", Field::Text(Some(&row.chain))),
        ("chain_seq", Field::Int(row.chain_seq)),
        ("definition_hash", Field::Text(row.definition_hash.as_deref())),
        ("entry", Field::Canonical(entry)),
        ("kind", Field::Text(Some(&row.kind))),
        ("step", Field::Text(row.step.as_deref())),
    ];
    let mut content = Vec::with_capacity(entry.len() + actor.len() + 256);
    for (i, (key, field)) in fields.iter().enumerate() {
        content.push(if i == 0 { b'{' } else { b',' });
        write_json(&mut content, key);
        content.push(b':');
        match field {
            Field::Canonical(text) => content.extend_from_slice(text.as_bytes()),
            Field::Text(t) => write_json(&mut content, t),
            Field::Int(n) => write_json(&mut content, n),
        }
    }
    content.push(b'}');
    let mut hasher = Sha256::new();
    hasher.update(row.prev_hash.as_bytes());
    hasher.update(&content);
    hex::encode(hasher.finalize())
}

/// JSON text with object keys sorted at every level and no insignificant whitespace.
pub fn canonical(value: &Value) -> String {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    // Only JSON was written, and JSON text is UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(m) => {
            let mut fields: Vec<(&String, &Value)> = m.iter().collect();
            fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in fields.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, k);
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        scalar => write_json(out, scalar),
    }
}

/// Appends a string, number, boolean or null (or an option of one) as compact JSON. Neither
/// serializing such a value nor writing to memory can fail, so there is no error to return.
fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let _ = serde_json::to_writer(out, value);
}

/// Where a chain stops verifying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chain `{chain}` breaks at entry {chain_seq} (seq {seq}): {problem}")]
pub struct Broken {
    /// The chain.
    pub chain: String,
    /// The first entry that does not fit.
    pub chain_seq: i64,
    /// Its global sequence number.
    pub seq: i64,
    /// What does not fit: expected vs found.
    pub problem: String,
}

/// Checks one chain's entries (in `chain_seq` order): positions count from 1 without gaps,
/// each entry links to its predecessor's hash, and each hash matches the entry's content.
pub fn verify_chain(rows: &[AuditRow]) -> Result<(), Broken> {
    let mut v = Verifier::new();
    for row in rows {
        v.push(row);
        if let Some(b) = v.broken.pop() {
            return Err(b);
        }
    }
    Ok(())
}

/// Verifies chains from a stream of rows ordered by chain, then position (as
/// [`crate::Store::audit_scan`] gives them), one row at a time, so a large trail needs no
/// memory beyond one entry.
#[derive(Debug, Default)]
pub struct Verifier {
    chain: Option<String>,
    expected_seq: i64,
    prev_hash: String,
    /// Whether the current chain already broke (later entries of it are not reported).
    failed: bool,
    /// Chains seen.
    pub n_chains: u64,
    /// Entries seen.
    pub n_entries: u64,
    /// The first broken entry of every broken chain.
    pub broken: Vec<Broken>,
}

impl Verifier {
    /// A verifier that has seen nothing.
    pub fn new() -> Verifier {
        Verifier::default()
    }

    /// Checks the next row.
    pub fn push(&mut self, row: &AuditRow) {
        self.n_entries += 1;
        if self.chain.as_deref() != Some(row.chain.as_str()) {
            self.chain = Some(row.chain.clone());
            self.expected_seq = 1;
            self.prev_hash = GENESIS.to_string();
            self.failed = false;
            self.n_chains += 1;
        }
        if self.failed {
            return;
        }
        let problem = if row.chain_seq != self.expected_seq {
            Some(format!("expected position {}, found {}", self.expected_seq, row.chain_seq))
        } else if row.prev_hash != self.prev_hash {
            Some(format!("expected previous hash {}, found {}", self.prev_hash, row.prev_hash))
        } else {
            let expected = hash_of(row);
            (row.hash != expected).then(|| format!("expected hash {expected}, found {}", row.hash))
        };
        match problem {
            Some(problem) => {
                self.failed = true;
                self.broken.push(Broken { chain: row.chain.clone(), chain_seq: row.chain_seq, seq: row.seq, problem });
            }
            None => {
                self.expected_seq += 1;
                self.prev_hash = row.hash.clone();
            }
        }
    }
}
