//! The pack archive: one gzip-compressed tar file that carries a pack from headquarters to
//! dealers, with a listing of every file's SHA-256, a digest over that listing, and an Ed25519
//! signature over the digest.
//!
//! Layout (see `docs/decisions/0004-pack-archive.md`):
//!
//! ```text
//! sopflow-pack.json      the listing: format, pack id and version, every file's path, size and
//!                        SHA-256, and the digest (SHA-256 of the canonical listing)
//! signature.json         the publisher's public key and signature over the digest (optional
//!                        until `sopflow pack sign`)
//! pack/pack.yaml         the manifest
//! pack/<process>.yaml    the processes
//! pack/forms/<name>.json the forms the processes use
//! pack/templates/...     notification templates, if the pack has them
//! pack/<script path>     plugin scripts the manifest names
//! ```
//!
//! An archive is untrusted input. Reading it is bounded (entries, bytes per file, bytes in all)
//! and refuses anything but plain files at plain relative paths: no absolute paths, no `..`, no
//! links, no devices, no duplicates. The contents are then compared with the listing, so a
//! file changed, added or removed after the build is named in the refusal. The pack is loaded
//! from memory through [`MemFiles`], so validation is the same as for a folder.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use model::validate::{Files, MANIFEST};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::sign::{self, PublicKey, SecretKey};
use crate::{Error, Pack};

/// The name of the listing entry.
pub const LISTING: &str = "sopflow-pack.json";
/// The name of the signature entry.
pub const SIGNATURE: &str = "signature.json";
/// The folder of a pack's script plugins (`plugins/<name>/plugin.yaml` and its scripts).
pub const PLUGINS_DIR: &str = "plugins";

/// The folder of the pack's files inside the archive.
pub const CONTENT: &str = "pack";
/// The format written into every listing.
pub const FORMAT: &str = "sopflow-pack/1";
/// The file extension of pack archives.
pub const EXTENSION: &str = "sopack";

/// Bounds on reading an archive, so that a hostile file costs little.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most entries.
    pub max_entries: usize,
    /// The largest single file, in bytes.
    pub max_file_bytes: u64,
    /// The most bytes in all files together (after decompression).
    pub max_total_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        // The standard pack is a few dozen files of tens of KiB; these leave a wide margin.
        Limits { max_entries: 2_000, max_file_bytes: 4 << 20, max_total_bytes: 32 << 20 }
    }
}

/// Why an archive could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// Not a gzip-compressed tar file, or truncated.
    #[error("it is not a readable sopflow pack archive (a gzip-compressed tar file): {source}")]
    Corrupt {
        /// What the reader said.
        #[source]
        source: io::Error,
    },
    /// More entries than allowed.
    #[error("it has more than {limit} entries")]
    TooManyEntries {
        /// The limit.
        limit: usize,
    },
    /// A file is larger than allowed.
    #[error("`{path}` is larger than {limit} bytes")]
    FileTooLarge {
        /// The entry.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// The files are larger than allowed in all.
    #[error("its files hold more than {limit} bytes in all")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// An entry's path is absolute, climbs out with `..`, or is not UTF-8.
    #[error("the entry `{path}` has an unsafe path (absolute, with `..`, or not plain text)")]
    UnsafePath {
        /// The path, as far as it could be read.
        path: String,
    },
    /// An entry is a link, a device or anything else but a plain file or folder.
    #[error("the entry `{path}` is not a plain file (links and devices are refused)")]
    NotAFile {
        /// The entry.
        path: String,
    },
    /// Two entries have the same path.
    #[error("the entry `{path}` appears twice")]
    Duplicate {
        /// The entry.
        path: String,
    },
    /// An entry outside `pack/` other than the listing and the signature.
    #[error("the entry `{path}` does not belong in a pack archive")]
    Stray {
        /// The entry.
        path: String,
    },
    /// The listing is missing.
    #[error("it has no `{LISTING}`")]
    NoListing,
    /// The listing or the signature cannot be read.
    #[error("`{entry}` is not valid: {source}")]
    BadMetadata {
        /// `sopflow-pack.json` or `signature.json`.
        entry: &'static str,
        /// What the JSON reader said.
        #[source]
        source: serde_json::Error,
    },
    /// The listing is of another format.
    #[error("it is of the format `{found}`; this engine reads `{FORMAT}`")]
    Format {
        /// The format found.
        found: String,
    },
}

/// A difference between an archive's contents and its listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Tamper {
    /// A listed file's content changed.
    Changed {
        /// The file.
        path: String,
    },
    /// A file is present that the listing does not name.
    Added {
        /// The file.
        path: String,
    },
    /// A listed file is missing.
    Removed {
        /// The file.
        path: String,
    },
    /// The recorded digest is not the digest of the listing.
    Digest,
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tamper::Changed { path } => write!(f, "`{path}` differs from the file that was built and signed"),
            Tamper::Added { path } => write!(f, "`{path}` was added: it is not in the signed listing"),
            Tamper::Removed { path } => write!(f, "`{path}` is listed but missing"),
            Tamper::Digest => f.write_str("the recorded digest does not match the listing"),
        }
    }
}

/// The listing: what was built, and the digest that the signature covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    /// Always [`FORMAT`].
    pub format: String,
    /// The pack id.
    pub pack: String,
    /// The pack version.
    pub version: String,
    /// Every file of the pack, sorted by path.
    pub files: Vec<Entry>,
    /// The SHA-256 (hex) of [`canonical_listing`] of `files`.
    pub digest: String,
}

/// One file in the listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The path inside the pack, `/`-separated.
    pub path: String,
    /// The size in bytes.
    pub size: u64,
    /// The SHA-256 of the content, hex.
    pub sha256: String,
}

/// A signature over an archive's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Always `ed25519`.
    pub algorithm: String,
    /// The signer's public key, `ed25519:<hex>`.
    pub public_key: String,
    /// The signature, hex.
    pub signature: String,
}

/// An archive in memory: the pack's files, the listing and the signature.
#[derive(Debug, Clone)]
pub struct Archive {
    /// The pack's files by path inside the pack.
    pub files: BTreeMap<String, Vec<u8>>,
    /// The listing as stored.
    pub listing: Listing,
    /// The signature, if signed.
    pub signature: Option<Signature>,
}

/// The canonical listing the digest is computed over: one line per file, sorted by path,
/// `<sha256>  <size>  <path>`.
pub fn canonical_listing(files: &[Entry]) -> String {
    let mut sorted: Vec<&Entry> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    sorted.iter().map(|e| format!("{}  {}  {}\n", e.sha256, e.size, e.path)).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn entries_of(files: &BTreeMap<String, Vec<u8>>) -> Vec<Entry> {
    files
        .iter()
        .map(|(path, content)| Entry { path: path.clone(), size: content.len() as u64, sha256: sha256_hex(content) })
        .collect()
}

impl Archive {
    /// Builds an archive from a pack folder. The pack must validate without errors (warnings are
    /// allowed); it then holds the manifest, every process file, the forms the processes use,
    /// the templates under `templates/`, the script plugins under `plugins/` and the scripts
    /// the manifest names.
    pub fn build(dir: &Path, files: &dyn Files, options: &model::Options) -> Result<Archive, Error> {
        let pack = Pack::load(dir, files, options)?;
        let read = |path: &Path| files.read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source });
        let mut content: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        content.insert(MANIFEST.into(), read(&dir.join(MANIFEST))?.into_bytes());
        for path in files.list(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })? {
            let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            if is_yaml && name != MANIFEST {
                content.insert(name.to_string(), read(&path)?.into_bytes());
            }
        }
        let forms_dir = model::validate::forms_dir(dir, Some(&pack.manifest), files);
        for name in pack.used_forms() {
            let Some(forms_dir) = &forms_dir else { break };
            let path = forms_dir.join(format!("{name}.json"));
            content.insert(format!("forms/{name}.json"), read(&path)?.into_bytes());
        }
        let templates = dir.join("templates");
        if files.exists(&templates) {
            for path in files.list(&templates).map_err(|source| Error::Io { path: templates.clone(), source })? {
                let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
                if let (true, Some(name)) = (is_yaml, path.file_name().and_then(|n| n.to_str())) {
                    content.insert(format!("templates/{name}"), read(&path)?.into_bytes());
                }
            }
        }
        // Script plugins the pack brings: `plugins/<name>/plugin.yaml` and the scripts beside it.
        let plugins = dir.join(PLUGINS_DIR);
        if files.exists(&plugins) {
            for folder in files.subdirs(&plugins).map_err(|source| Error::Io { path: plugins.clone(), source })? {
                let Some(plugin) = folder.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { continue };
                for path in files.list(&folder).map_err(|source| Error::Io { path: folder.clone(), source })? {
                    let wanted = path.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "rhai");
                    if let (true, Some(name)) = (wanted, path.file_name().and_then(|n| n.to_str())) {
                        content.insert(format!("{PLUGINS_DIR}/{plugin}/{name}"), read(&path)?.into_bytes());
                    }
                }
            }
        }
        for script in &pack.manifest.scripts {
            // The validator has refused scripts outside the pack; normalise the separators.
            let rel = clean_relative(script).ok_or_else(|| Problem::UnsafePath { path: script.clone() })?;
            content.insert(rel.clone(), read(&dir.join(&rel))?.into_bytes());
        }
        Ok(Archive::from_files(&pack.manifest.pack, &pack.manifest.version, content))
    }

    /// An unsigned archive of the given files.
    pub fn from_files(pack: &str, version: &str, files: BTreeMap<String, Vec<u8>>) -> Archive {
        let entries = entries_of(&files);
        let digest = sha256_hex(canonical_listing(&entries).as_bytes());
        let listing =
            Listing { format: FORMAT.into(), pack: pack.into(), version: version.into(), files: entries, digest };
        Archive { files, listing, signature: None }
    }

    /// The digest the signature covers.
    pub fn digest(&self) -> &str {
        &self.listing.digest
    }

    /// Signs the archive (replacing any earlier signature). The contents must match the
    /// listing: signing a tampered archive would bless the tampering.
    pub fn sign(&mut self, key: &SecretKey) -> Result<(), Error> {
        self.check_integrity()?;
        self.signature = Some(Signature {
            algorithm: "ed25519".into(),
            public_key: key.public().to_string(),
            signature: hex::encode(key.sign(sign::message(&self.listing.digest).as_bytes())),
        });
        Ok(())
    }

    /// Compares the contents with the listing and the listing with its digest; every difference
    /// is named.
    pub fn check_integrity(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        let listed: BTreeMap<&str, &Entry> = self.listing.files.iter().map(|e| (e.path.as_str(), e)).collect();
        for (path, content) in &self.files {
            match listed.get(path.as_str()) {
                None => problems.push(Tamper::Added { path: path.clone() }),
                Some(e) if e.size != content.len() as u64 || e.sha256 != sha256_hex(content) => {
                    problems.push(Tamper::Changed { path: path.clone() })
                }
                Some(_) => {}
            }
        }
        for path in listed.keys() {
            if !self.files.contains_key(*path) {
                problems.push(Tamper::Removed { path: (*path).to_string() });
            }
        }
        if sha256_hex(canonical_listing(&self.listing.files).as_bytes()) != self.listing.digest {
            problems.push(Tamper::Digest);
        }
        if problems.is_empty() { Ok(()) } else { Err(Error::Tampered { problems }) }
    }

    /// The key that signed the archive, if the signature is valid for its digest. Says nothing
    /// about whether the key is trusted, nor whether the contents match the digest.
    pub fn signer(&self) -> Result<PublicKey, Error> {
        let Some(sig) = &self.signature else { return Err(Error::Unsigned) };
        if sig.algorithm != "ed25519" {
            return Err(Error::BadSignature);
        }
        let key: PublicKey = sig.public_key.parse().map_err(|reason| Error::BadKey { what: "public", reason })?;
        let bytes = hex::decode(&sig.signature).map_err(|_| Error::BadSignature)?;
        if key.verify(sign::message(&self.listing.digest).as_bytes(), &bytes) {
            Ok(key)
        } else {
            Err(Error::BadSignature)
        }
    }

    /// Verifies the archive completely: the contents match the listing, the listing matches its
    /// digest, the signature is valid, and its key is one of `trusted`. Returns the signer.
    pub fn verify(&self, trusted: &[PublicKey]) -> Result<PublicKey, Error> {
        self.check_integrity()?;
        let signer = self.signer()?;
        if trusted.contains(&signer) { Ok(signer) } else { Err(Error::Untrusted { signer }) }
    }

    /// The archive as bytes: a deterministic gzip-compressed tar (sorted entries, no times, no
    /// owners), so the same pack always builds to the same bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let io = |source| Error::Io { path: PathBuf::from("<archive>"), source };
        let encoder = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(encoder);
        let listing = serde_json::to_vec_pretty(&self.listing).map_err(|e| io(io::Error::other(e)))?;
        append(&mut tar, LISTING, &listing).map_err(io)?;
        if let Some(sig) = &self.signature {
            let bytes = serde_json::to_vec_pretty(sig).map_err(|e| io(io::Error::other(e)))?;
            append(&mut tar, SIGNATURE, &bytes).map_err(io)?;
        }
        for (path, content) in &self.files {
            append(&mut tar, &format!("{CONTENT}/{path}"), content).map_err(io)?;
        }
        let encoder = tar.into_inner().map_err(io)?;
        let mut bytes = encoder.finish().map_err(io)?;
        bytes.flush().map_err(io)?;
        Ok(bytes)
    }

    /// Reads an archive's structure under the default limits, without checking its integrity
    /// or signature (see [`Archive::check_integrity`] and [`Archive::verify`]).
    pub fn parse(bytes: &[u8]) -> Result<Archive, Error> {
        Archive::parse_with(bytes, &Limits::default())
    }

    /// Reads an archive's structure under the given limits.
    pub fn parse_with(bytes: &[u8], limits: &Limits) -> Result<Archive, Error> {
        // The decompressed stream is bounded as a whole, so a small file that inflates without
        // end stops at the limit (tar headers and padding need a little room beyond the files).
        let bound = limits.max_total_bytes + (limits.max_entries as u64 + 2) * 1024;
        let decoder = flate2::read::GzDecoder::new(bytes).take(bound);
        let mut tar = tar::Archive::new(decoder);
        let corrupt = |source| Problem::Corrupt { source };
        let mut files = BTreeMap::new();
        let mut listing = None;
        let mut signature = None;
        let mut seen = BTreeSet::new();
        let (mut n_entries, mut total) = (0usize, 0u64);
        for entry in tar.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            n_entries += 1;
            if n_entries > limits.max_entries {
                return Err(Problem::TooManyEntries { limit: limits.max_entries }.into());
            }
            let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let kind = entry.header().entry_type();
            if kind.is_dir() {
                continue;
            }
            if !kind.is_file() {
                return Err(Problem::NotAFile { path: raw_path }.into());
            }
            let path = std::str::from_utf8(&entry.path_bytes())
                .ok()
                .and_then(clean_relative)
                .ok_or_else(|| Problem::UnsafePath { path: raw_path.clone() })?;
            if !seen.insert(path.clone()) {
                return Err(Problem::Duplicate { path }.into());
            }
            let size = entry.header().size().map_err(corrupt)?;
            if size > limits.max_file_bytes {
                return Err(Problem::FileTooLarge { path, limit: limits.max_file_bytes }.into());
            }
            total += size;
            if total > limits.max_total_bytes {
                return Err(Problem::TooLarge { limit: limits.max_total_bytes }.into());
            }
            let mut content = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            // A header that understates its size cannot make us read more than the limit.
            (&mut entry).take(limits.max_file_bytes + 1).read_to_end(&mut content).map_err(corrupt)?;
            if content.len() as u64 > limits.max_file_bytes {
                return Err(Problem::FileTooLarge { path, limit: limits.max_file_bytes }.into());
            }
            match path.as_str() {
                LISTING => {
                    listing = Some(
                        serde_json::from_slice::<Listing>(&content)
                            .map_err(|source| Problem::BadMetadata { entry: LISTING, source })?,
                    )
                }
                SIGNATURE => {
                    signature = Some(
                        serde_json::from_slice::<Signature>(&content)
                            .map_err(|source| Problem::BadMetadata { entry: SIGNATURE, source })?,
                    )
                }
                other => match other.strip_prefix(&format!("{CONTENT}/")) {
                    Some(rel) => {
                        files.insert(rel.to_string(), content);
                    }
                    None => return Err(Problem::Stray { path }.into()),
                },
            }
        }
        let listing = listing.ok_or(Problem::NoListing)?;
        if listing.format != FORMAT {
            return Err(Problem::Format { found: listing.format }.into());
        }
        Ok(Archive { files, listing, signature })
    }

    /// Reads an archive and checks that its contents match its listing (but not who signed it).
    pub fn read(bytes: &[u8]) -> Result<Archive, Error> {
        let archive = Archive::parse(bytes)?;
        archive.check_integrity()?;
        Ok(archive)
    }

    /// The pack's files as a read-only file system rooted at `root`, for [`Pack::load`]: the
    /// same loader as for a folder. `root` is what diagnostics show as the pack's folder (e.g.
    /// the archive's file name). Forms are placed where the manifest says they are.
    pub fn mem_files(&self, root: &Path) -> MemFiles {
        let manifest: Option<model::raw::Pack> = self
            .files
            .get(MANIFEST)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|text| model::yaml::parse(text, &model::yaml::Limits::default()).ok())
            .and_then(|(node, _)| serde_json::from_value(node.to_json()).ok());
        let forms_dir = match manifest.as_ref().and_then(|m| m.forms.as_deref()) {
            Some(f) => root.join(f),
            None => root.join("schemas").join("forms"),
        };
        let mut mem = MemFiles::default();
        for (path, content) in &self.files {
            let at = match path.strip_prefix("forms/") {
                Some(name) => forms_dir.join(name),
                None => root.join(path),
            };
            mem.insert(&at, content.clone());
        }
        mem
    }

    /// Loads the archive's pack (after [`Archive::verify`] or [`Archive::check_integrity`]).
    pub fn load(&self, root: &Path, options: &model::Options) -> Result<Pack, Error> {
        Pack::load(root, &self.mem_files(root), options)
    }
}

fn append<W: Write>(tar: &mut tar::Builder<W>, path: &str, content: &[u8]) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    tar.append_data(&mut header, path, content)
}

/// A path made only of plain components, joined with `/`; `None` for absolute paths, `..`,
/// empty paths or Windows prefixes.
fn clean_relative(path: &str) -> Option<String> {
    let mut parts = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    if parts.is_empty() || parts.iter().any(|p| p.contains('\\') || p.contains('\n')) {
        return None;
    }
    Some(parts.join("/"))
}

/// A read-only, in-memory implementation of the [`Files`] port. Paths are compared after
/// resolving `.` and `..` lexically, as the loader joins relative paths from the manifest.
#[derive(Debug, Clone, Default)]
pub struct MemFiles {
    files: BTreeMap<PathBuf, Vec<u8>>,
}

impl MemFiles {
    /// Adds a file.
    pub fn insert(&mut self, path: &Path, content: Vec<u8>) {
        self.files.insert(normalise(path), content);
    }
}

impl Files for MemFiles {
    fn read(&self, path: &Path) -> io::Result<String> {
        let bytes = self
            .files
            .get(&normalise(path))
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file in the archive"))?;
        String::from_utf8(bytes.clone()).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let dir = normalise(dir);
        Ok(self.files.keys().filter(|p| p.parent() == Some(dir.as_path())).cloned().collect())
    }

    fn subdirs(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let dir = normalise(dir);
        let mut out = BTreeSet::new();
        for p in self.files.keys() {
            if let Ok(rest) = p.strip_prefix(&dir)
                && let Some(Component::Normal(first)) = rest.components().next()
                && rest.components().count() > 1
            {
                out.insert(dir.join(first));
            }
        }
        Ok(out.into_iter().collect())
    }

    fn exists(&self, path: &Path) -> bool {
        let path = normalise(path);
        self.files.keys().any(|p| p.starts_with(&path))
    }
}

/// Resolves `.` and `..` without touching a file system; leading `..` of a relative path stay.
fn normalise(path: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) | Some(Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    out.iter().collect()
}
