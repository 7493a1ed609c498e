//! Tests of the process language through its one boundary: files in, processes and
//! diagnostics out. Broken definitions live in `test_data/err*/`; their diagnostics are
//! snapshots, so a change in any message or position shows up as a reviewed diff.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use model::{Code, FsFiles, Options};

fn test_data(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data").join(dir)
}

fn options() -> Options {
    Options { actions: Some(["notify".to_string()].into_iter().collect()), ..Options::default() }
}

/// The diagnostics of a pack, rendered with paths relative to the pack.
fn render(dir: &Path) -> (String, Vec<model::Diagnostic>) {
    let pack = model::load_pack(dir, &FsFiles, &options());
    let mut out = String::new();
    for d in &pack.diagnostics {
        let shown = d.to_string().replace(&format!("{}/", dir.display()), "");
        out.push_str(&shown);
        out.push('\n');
    }
    (out, pack.diagnostics)
}

#[test]
fn broken_definitions_report_every_problem_with_code_and_position() {
    let dir = test_data("err");
    let (_, diagnostics) = render(&dir);
    let mut files: BTreeSet<PathBuf> = diagnostics.iter().map(|d| d.file.clone()).collect();
    files.insert(dir.join("pack.yaml"));
    for file in files {
        let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or("unknown").to_string();
        let mut text = String::new();
        for d in diagnostics.iter().filter(|d| d.file == file) {
            text.push_str(&d.to_string().replace(&format!("{}/", dir.display()), ""));
            text.push('\n');
        }
        insta::assert_snapshot!(format!("err_{name}"), text);
    }
}

#[test]
fn a_broken_manifest_is_reported() {
    let (text, _) = render(&test_data("err_pack"));
    insta::assert_snapshot!("err_pack_manifest", text);
}

#[test]
fn every_diagnostic_code_is_exercised_by_the_broken_examples() {
    let (_, mut all) = render(&test_data("err"));
    all.extend(render(&test_data("err_pack")).1);
    let seen: BTreeSet<Code> = all.iter().map(|d| d.code).collect();
    // Overlay and plugin codes need an overlay or a plugin; the `packs` and `plugins` crates'
    // broken examples exercise them.
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| c.area() == model::diagnostic::Area::Process && !seen.contains(c))
        .map(|c| c.as_str())
        .collect();
    assert!(missing.is_empty(), "no broken example produces {missing:?}");
}

#[test]
fn every_broken_file_yields_a_diagnostic() {
    let dir = test_data("err");
    let (_, diagnostics) = render(&dir);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") && !path.ends_with("pack.yaml") {
            assert!(diagnostics.iter().any(|d| d.file == path), "{} produced no diagnostic", path.display());
        }
    }
}

#[test]
fn an_alias_bomb_is_refused_quickly_with_bounded_memory() {
    let text = std::fs::read_to_string(test_data("err").join("alias_bomb.yaml")).unwrap();
    let started = Instant::now();
    let result = model::yaml::parse(&text, &model::yaml::Limits::default());
    // The bound is structural (the node budget), so no timing is asserted; the elapsed time is
    // printed for whoever reads the test output.
    println!("alias bomb refused in {:?}", started.elapsed());
    match result {
        Err(model::yaml::Error::Limit { message, .. }) => assert!(message.contains("refused"), "{message}"),
        other => panic!("expected a limit error, got {other:?}"),
    }
}

#[test]
fn an_oversized_file_is_refused_before_parsing() {
    let limits = model::yaml::Limits { max_file_bytes: 64, ..Default::default() };
    let text = format!("a: {}\n", "x".repeat(100));
    assert!(matches!(model::yaml::parse(&text, &limits), Err(model::yaml::Error::TooLarge { size: 104, limit: 64 })));
}

#[test]
fn deep_nesting_is_refused() {
    let text = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    assert!(matches!(
        model::yaml::parse(&text, &model::yaml::Limits::default()),
        Err(model::yaml::Error::Limit { .. })
    ));
}

#[test]
fn the_examples_validate_without_problems() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../processes");
    let packs = model::find_packs(&root, &FsFiles);
    assert!(!packs.is_empty());
    for dir in packs {
        let pack = model::load_pack(&dir, &FsFiles, &Options::default());
        let problems: Vec<String> = pack.diagnostics.iter().map(ToString::to_string).collect();
        assert!(problems.is_empty(), "{}:\n{}", dir.display(), problems.join("\n"));
    }
}

#[test]
fn a_process_rebuilt_from_its_stored_document_has_the_same_hash() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../processes/examples");
    let pack = model::load_pack(&dir, &FsFiles, &Options::default());
    for p in &pack.processes {
        let rebuilt = model::compile_document(&p.document, &Options::default()).unwrap();
        assert_eq!(rebuilt.hash, p.hash, "{}", p.id);
        assert_eq!(rebuilt.steps.len(), p.steps.len());
    }
}

#[test]
fn comments_and_layout_do_not_change_the_document() {
    let block = "# a comment\nsteps:\n  a:\n    next: b   # trailing\n  b: { type: end }\n";
    let flow = "steps: { a: { next: b }, b: { type: end } }";
    let parse = |t: &str| model::yaml::parse(t, &Default::default()).unwrap().0.to_json();
    assert_eq!(parse(block), parse(flow));
}

#[test]
fn the_hash_changes_with_the_content() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../processes/examples");
    let pack = model::load_pack(&dir, &FsFiles, &Options::default());
    let p = pack.process("repair_job").unwrap();
    let mut changed = p.document.clone();
    changed["process"]["steps"]["reception"]["due"] = serde_json::json!("PT20M");
    let other = model::compile_document(&changed, &Options::default()).unwrap();
    assert_ne!(other.hash, p.hash);
    let same = model::compile_document(&p.document.clone(), &Options::default()).unwrap();
    assert_eq!(same.hash, p.hash);
}

#[test]
fn the_checked_in_schemas_match_the_language_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    for (file, schema) in
        [("process.schema.json", model::schema::process_schema()), ("pack.schema.json", model::schema::pack_schema())]
    {
        let on_disk: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join(file)).unwrap()).unwrap();
        assert_eq!(on_disk, schema, "schemas/{file} is stale: run `sopflow schema --write schemas`");
    }
}

#[test]
fn every_code_has_a_documentation_page() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/errors");
    for code in Code::ALL {
        let page = docs.join(format!("{}.md", code.as_str()));
        let text = std::fs::read_to_string(&page).unwrap_or_default();
        assert!(
            text.starts_with(&format!("# {}", code.as_str())),
            "{} is missing or has no `# {}` title",
            page.display(),
            code
        );
    }
}
