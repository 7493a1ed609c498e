//! Repo invariants of the after-sales standard pack (`processes/standard`): every step, timer and
//! parameter cites its source; every quote is a verbatim substring of its seed file; every process
//! has a scenario; every notification template exists in Chinese and English and gets the data its
//! placeholders name; every named form carries its process's prefix.
//!
//! The seed files live outside the repository (`../shared/seeds` from its root). When they are
//! there, the quote check reads them and (re)writes `processes/standard/sources.lock`, which maps
//! each quote to its seed file and that file's SHA-256. When they are absent (a fresh clone), the
//! check falls back to the lock: every quote must be listed there, so a new quote cannot pass
//! without having been verified against the seeds once. `SOPFLOW_SEEDS` overrides the seeds
//! folder (`SOPFLOW_SEEDS=/nonexistent` checks against the lock alone).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

const PACK: &str = "processes/standard";
const SEEDS: &str = "../shared/seeds";
const LOCK: &str = "processes/standard/sources.lock";

#[test]
fn every_step_timer_and_parameter_of_the_standard_pack_cites_a_source() {
    let mut missing = Vec::new();
    for (file, doc) in processes() {
        if !has_source(&doc["source"]) {
            missing.push(format!("{file}: the process"));
        }
        for (id, step) in entries(&doc["steps"]) {
            if !has_source(&step["source"]) {
                missing.push(format!("{file}: step `{id}`"));
            }
            for timer in step["timers"].as_array().into_iter().flatten() {
                if !has_source(&timer["source"]) {
                    missing.push(format!("{file}: timer `{}` of step `{id}`", timer["id"].as_str().unwrap_or("?")));
                }
            }
        }
        for (name, p) in entries(&doc["parameters"]) {
            if !has_source(&p["source"]) {
                missing.push(format!("{file}: parameter `{name}` has no source"));
            }
            if p["rationale"].as_str().is_none_or(|r| r.trim().is_empty()) {
                missing.push(format!("{file}: parameter `{name}` has no rationale"));
            }
        }
    }
    assert!(missing.is_empty(), "without a source:\n{}", missing.join("\n"));
}

#[test]
fn every_source_quote_is_verbatim_in_its_seed_file() {
    let mut quotes: BTreeSet<(String, String)> = BTreeSet::new();
    let mut malformed = Vec::new();
    for (file, doc) in processes() {
        let mut refs = Vec::new();
        collect_sources(&doc, &mut refs);
        for r in refs {
            match parse_ref(&r) {
                Some(q) => {
                    quotes.insert(q);
                }
                None => malformed.push(format!("{file}: `{r}` is not written as <file id>「<quote>」")),
            }
        }
    }
    assert!(malformed.is_empty(), "{}", malformed.join("\n"));
    assert!(!quotes.is_empty(), "the standard pack cites no source at all");

    // `SOPFLOW_SEEDS` points elsewhere (or at nothing, to exercise the lock as a fresh clone would).
    let seeds = std::env::var_os("SOPFLOW_SEEDS").map_or_else(|| root().join(SEEDS), PathBuf::from);
    if seeds.is_dir() {
        let files = seed_files(&seeds);
        let mut wrong = Vec::new();
        let mut lock = String::from(
            "# The source quotes of the standard pack, each with the seed file it was found in and\n\
             # that file's SHA-256. Written by crates/cli/tests/cli/standard_pack.rs whenever the\n\
             # seeds are present (../shared/seeds); checked against when they are not. Do not edit.\n",
        );
        for (id, quote) in &quotes {
            match files.get(id) {
                None => wrong.push(format!("{id}「{quote}」: there is no seed file {id}_*.txt")),
                Some((name, text, sha)) if text.contains(quote.as_str()) => {
                    lock.push_str(&format!("{name}\t{sha}\t{id}「{quote}」\n"));
                }
                Some((name, ..)) => wrong.push(format!("{id}「{quote}」 is not a verbatim substring of {name}")),
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        let path = root().join(LOCK);
        if fs::read_to_string(&path).ok().as_deref() != Some(lock.as_str()) {
            fs::write(&path, lock).unwrap();
        }
    } else {
        let lock = fs::read_to_string(root().join(LOCK))
            .expect("the seeds are absent and so is processes/standard/sources.lock");
        let verified: BTreeSet<(String, String)> = lock
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let mut cols = l.splitn(3, '\t');
                let (name, sha, r) = (cols.next()?, cols.next()?, cols.next()?);
                let (id, quote) = parse_ref(r)?;
                (name.starts_with(&format!("{id}_")) && sha.len() == 64).then_some((id, quote))
            })
            .collect();
        let unverified: Vec<String> =
            quotes.iter().filter(|q| !verified.contains(*q)).map(|(id, q)| format!("{id}「{q}」")).collect();
        assert!(
            unverified.is_empty(),
            "these quotes were never checked against the seeds (run the tests once with the seeds at {SEEDS}):\n{}",
            unverified.join("\n")
        );
    }
}

#[test]
fn every_process_of_the_standard_pack_has_a_scenario() {
    let mut covered = BTreeSet::new();
    for path in files_in(&root().join(PACK).join("scenarios"), "yaml") {
        let doc = read_yaml(&path);
        if let Some(p) = doc["process"].as_str() {
            covered.insert(p.to_string());
        }
    }
    let untested: Vec<String> = processes()
        .into_iter()
        .filter_map(|(_, doc)| doc["process"].as_str().map(str::to_string))
        .filter(|id| !covered.contains(id))
        .collect();
    assert!(untested.is_empty(), "processes without a scenario: {untested:?}");
}

#[test]
fn every_notify_template_exists_in_chinese_and_english_with_its_data() {
    let mut problems = Vec::new();
    let mut uses = 0;
    for (file, doc) in processes() {
        let mut notifies = Vec::new();
        collect_notifies(&doc, &mut notifies);
        for input in notifies {
            uses += 1;
            let Some(name) = input["template"].as_str() else {
                problems.push(format!("{file}: a notify without a template"));
                continue;
            };
            let path = root().join(PACK).join("templates").join(format!("{name}.yaml"));
            if !path.is_file() {
                problems.push(format!("{file}: template `{name}` has no file {}", path.display()));
                continue;
            }
            let t = read_yaml(&path);
            if t["template"].as_str() != Some(name) {
                problems.push(format!("{}: `template:` should be `{name}`", path.display()));
            }
            let data: BTreeSet<String> =
                input["data"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
            for lang in ["zh", "en"] {
                match t[lang].as_str() {
                    Some(text) if !text.trim().is_empty() => {
                        for var in placeholders(text) {
                            if !data.contains(&var) {
                                problems.push(format!(
                                    "{file}: template `{name}` ({lang}) needs `{var}`, which the notify does not give"
                                ));
                            }
                        }
                    }
                    _ => problems.push(format!("{}: no `{lang}` text", path.display())),
                }
            }
        }
    }
    assert!(uses > 0, "the standard pack sends no notification at all");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_named_form_of_the_standard_pack_is_prefixed_by_its_process() {
    let mut wrong = Vec::new();
    for (file, doc) in processes() {
        let id = doc["process"].as_str().unwrap_or_default().to_string();
        let mut forms = Vec::new();
        collect_named_forms(&doc, &mut forms);
        for form in forms {
            if !form.starts_with(&format!("{id}_")) {
                wrong.push(format!("{file}: form `{form}` should start with `{id}_`"));
            }
            if !root().join("schemas/forms").join(format!("{form}.json")).is_file() {
                wrong.push(format!("{file}: form `{form}` has no schemas/forms/{form}.json"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ----- helpers ----------------------------------------------------------------------------

fn root() -> PathBuf {
    super::root()
}

/// The process files of the pack, parsed, with their file names.
fn processes() -> Vec<(String, Value)> {
    let out: Vec<(String, Value)> = files_in(&root().join(PACK), "yaml")
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "pack.yaml"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), read_yaml(&p)))
        .collect();
    assert!(!out.is_empty(), "no process files in {PACK}");
    out
}

fn files_in(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

fn read_yaml(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match model::yaml::parse(&text, &model::yaml::Limits::default()) {
        Ok((node, None)) => node.to_json(),
        Ok((_, Some(e))) | Err(e) => panic!("{}: {e}", path.display()),
    }
}

fn entries(v: &Value) -> Vec<(String, Value)> {
    v.as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
}

fn has_source(v: &Value) -> bool {
    match v {
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(items) => {
            !items.is_empty() && items.iter().all(|i| i.as_str().is_some_and(|s| !s.trim().is_empty()))
        }
        _ => false,
    }
}

/// Every source reference of a process: its own, its steps', its timers' and its parameters'.
fn collect_sources(doc: &Value, out: &mut Vec<String>) {
    let mut push = |v: &Value| match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => out.extend(items.iter().filter_map(|i| i.as_str().map(str::to_string))),
        _ => {}
    };
    push(&doc["source"]);
    for (_, step) in entries(&doc["steps"]) {
        push(&step["source"]);
        for timer in step["timers"].as_array().into_iter().flatten() {
            push(&timer["source"]);
        }
    }
    for (_, p) in entries(&doc["parameters"]) {
        push(&p["source"]);
    }
}

/// `001「quote」` -> ("001", "quote").
fn parse_ref(r: &str) -> Option<(String, String)> {
    let (id, rest) = r.split_once('「')?;
    let quote = rest.strip_suffix('」')?;
    let ok = id.len() == 3 && id.chars().all(|c| c.is_ascii_digit()) && !quote.is_empty() && !quote.contains('」');
    ok.then(|| (id.to_string(), quote.to_string()))
}

/// The seed files by id: file name, text, SHA-256.
fn seed_files(dir: &Path) -> BTreeMap<String, (String, String, String)> {
    files_in(dir, "txt")
        .into_iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_string_lossy().into_owned();
            let id = name.get(..3)?.to_string();
            let bytes = fs::read(&p).ok()?;
            let sha = hex(&sha256(&bytes));
            Some((id, (name, String::from_utf8_lossy(&bytes).into_owned(), sha)))
        })
        .collect()
}

/// The inputs of every notification: `notify` action steps and timers' `notify`.
fn collect_notifies(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(map) => {
            if map.get("action").and_then(Value::as_str) == Some("notify")
                && let Some(input) = map.get("input")
            {
                out.push(input.clone());
            }
            if let Some(n @ Value::Object(_)) = map.get("notify") {
                out.push(n.clone());
            }
            map.values().for_each(|v| collect_notifies(v, out));
        }
        Value::Array(items) => items.iter().for_each(|i| collect_notifies(i, out)),
        _ => {}
    }
}

fn collect_named_forms(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(f)) = map.get("form") {
                out.push(f.clone());
            }
            map.values().for_each(|v| collect_named_forms(v, out));
        }
        Value::Array(items) => items.iter().for_each(|i| collect_named_forms(i, out)),
        _ => {}
    }
}

/// The `{{name}}` placeholders of a template text.
fn placeholders(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.insert(after[..end].trim().to_string());
        rest = &after[end + 2..];
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 (FIPS 180-4), small enough to keep the test free of a hashing dependency.
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
        0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
        0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
        0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (i, word) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&word.to_be_bytes());
    }
    out
}

#[test]
fn the_test_sha256_matches_the_standard_vectors() {
    assert_eq!(hex(&sha256(b"")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_eq!(hex(&sha256(b"abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_eq!(hex(&sha256(long)), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}
