//! Tests of packs and overlays through their boundaries: archives in (built, signed, tampered),
//! overlays in (faithful, deviant, broken), effective processes, diffs, upgrade plans and
//! migrated instances out. Broken overlays live in `test_data/overlays/`; their diagnostics are
//! snapshots, like the process language's.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use jiff::{SignedDuration, Timestamp};
use machine::{Actor, Input, Start, User, Wait};
use model::validate::Files;
use model::{Code, FsFiles};
use packs::archive::{Archive, Tamper};
use packs::{Error, MemFiles, OverlayFile, Pack, SecretKey};
use serde_json::{Value, json};
use testkit::World;

// ----- fixtures ---------------------------------------------------------------------------

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn examples_dir() -> PathBuf {
    root().join("processes/examples")
}

fn options() -> model::Options {
    model::Options::default()
}

fn examples() -> Pack {
    Pack::load(&examples_dir(), &FsFiles, &options()).unwrap()
}

fn overlay_text(name: &str, text: &str) -> OverlayFile {
    OverlayFile::parse(Path::new(name), text).unwrap()
}

fn dealer(name: &str) -> OverlayFile {
    OverlayFile::read(&examples_dir().join("dealers").join(name)).unwrap()
}

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed([n; 32])
}

fn signed_examples() -> Archive {
    let mut archive = Archive::build(&examples_dir(), &FsFiles, &options()).unwrap();
    archive.sign(&key(1)).unwrap();
    archive
}

fn at(text: &str) -> Timestamp {
    text.parse::<Timestamp>().unwrap()
}

/// The examples pack with its text changed: the version, and each file by a function.
fn examples_changed(version: &str, edit: impl Fn(&str, String) -> String) -> Pack {
    let dir = examples_dir();
    let virtual_root = PathBuf::from("examples-next");
    let mut mem = MemFiles::default();
    for path in FsFiles.list(&dir).unwrap() {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let text =
            if name == "pack.yaml" { text.replace("version: 1.0.0", &format!("version: {version}")) } else { text };
        mem.insert(&virtual_root.join(&name), edit(&name, text).into_bytes());
    }
    for path in FsFiles.list(&root().join("schemas/forms")).unwrap() {
        let name = path.file_name().unwrap().to_owned();
        mem.insert(&virtual_root.join("schemas/forms").join(name), std::fs::read(&path).unwrap());
    }
    Pack::load(&virtual_root, &mem, &options()).unwrap()
}

/// Version 2.0.0 of the examples: repair_job's `reception` is now `check_in`, with a migration
/// map saying so.
fn examples_v2() -> Pack {
    let reception = regex_word("reception");
    examples_changed("2.0.0", |name, text| match name {
        "repair_job.yaml" => reception(&text, "check_in"),
        "pack.yaml" => {
            format!("{text}migrations:\n  - from: 1.x\n    map:\n      repair_job: {{ reception: check_in }}\n")
        }
        _ => text,
    })
}

/// Replaces a whole word (not inside `example_reception`).
fn regex_word(word: &'static str) -> impl Fn(&str, &str) -> String {
    move |text, to| {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find(word) {
            let before = rest[..i].chars().last();
            let after = rest[i + word.len()..].chars().next();
            let is_word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            out.push_str(&rest[..i]);
            out.push_str(if is_word(before) || is_word(after) { word } else { to });
            rest = &rest[i + word.len()..];
        }
        out.push_str(rest);
        out
    }
}

fn render(diagnostics: &[model::Diagnostic]) -> String {
    diagnostics.iter().map(|d| format!("{d}\n")).collect()
}

// ----- overlays: validation -----------------------------------------------------------------

#[test]
fn broken_overlays_report_every_problem_at_file_line_col() {
    let pack = examples();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/overlays");
    for path in FsFiles.list(&dir).unwrap() {
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let file = overlay_text(&format!("{name}.yaml"), &text);
        let r = packs::resolve(&pack, &file, &options());
        assert!(r.has_errors(), "{name} should not resolve");
        assert!(r.processes.is_empty(), "{name}: nothing may be deployable");
        insta::assert_snapshot!(format!("overlay_{name}"), render(&r.diagnostics));
    }
}

#[test]
fn every_overlay_code_is_exercised_by_the_broken_overlays() {
    let pack = examples();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/overlays");
    let mut seen = BTreeSet::new();
    for path in FsFiles.list(&dir).unwrap() {
        let file = OverlayFile::read(&path).unwrap();
        seen.extend(packs::resolve(&pack, &file, &options()).diagnostics.iter().map(|d| d.code));
    }
    let missing: Vec<&str> =
        Code::ALL.iter().filter(|c| c.is_overlay() && !seen.contains(c)).map(|c| c.as_str()).collect();
    assert!(missing.is_empty(), "no broken overlay produces {missing:?}");
}

#[test]
fn an_overlay_touching_a_locked_step_is_refused_with_its_position_and_reason() {
    let file = overlay_text(
        "dealer.yaml",
        "overlay: dealer_bold\npack: examples\nversion: \"^1.0\"\nsla:\n  repair_job.inspection: PT1H\n",
    );
    let r = packs::resolve(&examples(), &file, &options());
    assert_eq!(
        render(&r.diagnostics),
        "dealer.yaml:5:3: error[O0003]: the step `repair_job.inspection` is locked by headquarters: its due time cannot change\n  = hint: the brand requires it as the standard has it; remove this change (ask headquarters if it must differ)\n"
    );
    assert!(r.processes.is_empty());
}

#[test]
fn a_malformed_overlay_is_reported_with_positions() {
    let err = OverlayFile::parse(
        Path::new("dealer.yaml"),
        "overlay: d\npack: examples\nversion: \"^1\"\nparamters: { attempts: 4 }\n",
    )
    .unwrap_err();
    assert_eq!(
        render(&err),
        "dealer.yaml:4:1: error[P0003]: unknown field `paramters`\n  = hint: did you mean `parameters`?\n"
    );
}

#[test]
fn the_checked_in_overlay_schema_matches_the_overlay_types() {
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("schemas/overlay.schema.json")).unwrap()).unwrap();
    assert_eq!(
        on_disk,
        packs::overlay_schema(),
        "schemas/overlay.schema.json is stale: run `sopflow schema --write schemas`"
    );
}

#[test]
fn every_overlay_code_has_a_documentation_page() {
    for code in Code::ALL.iter().filter(|c| c.is_overlay()) {
        let page = root().join(format!("docs/errors/{}.md", code.as_str()));
        let text = std::fs::read_to_string(&page).unwrap_or_default();
        assert!(text.starts_with(&format!("# {}", code.as_str())), "{} is missing or untitled", page.display());
    }
}

// ----- overlays: resolution -----------------------------------------------------------------

#[test]
fn a_faithful_overlay_resolves_to_the_standard_definitions() {
    let pack = examples();
    let r = packs::resolve(&pack, &dealer("faithful.yaml"), &options());
    assert!(!r.has_errors(), "{}", render(&r.diagnostics));
    assert!(r.changed.is_empty());
    for p in &r.processes {
        assert_eq!(p.hash, pack.process(&p.id).unwrap().hash, "{}", p.id);
    }
}

#[test]
fn the_deviant_overlay_resolves_to_deployable_processes_with_their_own_hashes() {
    let pack = examples();
    let r = packs::resolve(&pack, &dealer("deviant.yaml"), &options());
    assert!(!r.has_errors(), "{}", render(&r.diagnostics));
    assert_eq!(r.processes.len(), pack.processes.len());
    assert!(r.changed.contains("repair_job") && r.changed.contains("follow_up_call"));
    let repair = r.process("repair_job").unwrap();
    assert_ne!(repair.hash, pack.process("repair_job").unwrap().hash);
    // The wash is gone and its branch goes straight to the join; the walk-around runs before
    // the end; the stock rule is stricter.
    assert!(repair.step_idx("wash").is_none());
    let doc = &repair.document["process"]["steps"];
    assert_eq!(doc["delivery"]["branches"], json!(["settle", "ready"]));
    assert_eq!(doc["ready"]["next"], "handover_walkaround");
    assert_eq!(doc["handover_walkaround"]["next"], "done");
    assert_eq!(
        doc["stock_decision"]["branches"][0]["when"],
        "(check_stock.available == true) && (check_stock.reserved != false)"
    );
    assert_eq!(repair.roles["service_advisor"].en.as_deref(), Some("Service consultant"));
    // The effective process is deployable like any other: it rebuilds from its document.
    let rebuilt = model::compile_document(&repair.document, &options()).unwrap();
    assert_eq!(rebuilt.hash, repair.hash);
}

#[test]
fn an_overlay_changing_the_follow_up_window_from_72_to_48_hours_moves_the_timer() {
    let pack = examples();
    let overlay = overlay_text(
        "dealer.yaml",
        "overlay: dealer_quick\npack: examples\nversion: \"^1.0\"\nparameters:\n  follow_up_window: PT48H\n",
    );
    let r = packs::resolve(&pack, &overlay, &options());
    assert!(!r.has_errors(), "{}", render(&r.diagnostics));
    let exit_at = "2026-03-02T17:00:00+08:00";
    let window_closes = |processes: Vec<Arc<model::Process>>| {
        let mut world = World::new(processes, at("2026-03-03T10:00:00+08:00"));
        let data = json!({ "exit_at": exit_at, "phone": "13800000000" });
        let start = World::start_args("i1", "d1", None, data.as_object().unwrap().clone(), Actor::System);
        world.start("follow_up_call", start).unwrap();
        let slot = world.slot("i1").unwrap();
        let timer = slot
            .instance
            .timers
            .iter()
            .find(|t| matches!(&t.kind, machine::TimerKind::Step { def, .. } if def == "window_closed"))
            .unwrap()
            .fire_at;
        // Nobody calls: the window closes and the follow-up fails at the timer's moment.
        world.advance(SignedDuration::from_hours(96));
        let ended = match &world.slot("i1").unwrap().instance.status {
            machine::Status::Ended { outcome, at } => (outcome.clone(), *at),
            other => panic!("still running: {other:?}"),
        };
        (timer, ended)
    };
    let (standard_timer, _) = window_closes(pack.processes.clone());
    let (dealer_timer, (outcome, ended_at)) = window_closes(r.processes.clone());
    assert_eq!(standard_timer, at("2026-03-05T17:00:00+08:00"));
    assert_eq!(dealer_timer, at("2026-03-04T17:00:00+08:00"));
    assert_eq!((outcome.as_str(), ended_at), ("failed", at("2026-03-04T17:00:00+08:00")));
}

#[test]
fn a_disabled_wash_and_an_inserted_walk_around_run_to_the_end() {
    let r = packs::resolve(&examples(), &dealer("deviant.yaml"), &options());
    let mut world = World::new(r.processes.clone(), at("2026-03-02T09:00:00+08:00"));
    world
        .replies
        .insert("inventory.check".into(), testkit::world::Reply::Ok(json!({ "available": true, "reserved": true })));
    let data = json!({ "plate_no": "粤A12345", "estimated_hours": 1, "promised_at": "2026-03-02T15:00:00+08:00" });
    world
        .start("repair_job", World::start_args("i1", "d1", None, data.as_object().unwrap().clone(), Actor::System))
        .unwrap();
    let sa = User::new("sa1", ["service_advisor"]);
    let tech = User::new("tech1", ["technician"]);
    let director = User::new("wd1", ["workshop_director"]);
    let mut complete = |step: &str, by: &User, form: Value| {
        let task = world.slot("i1").unwrap().instance.tasks.iter().find(|t| t.step == step).unwrap().id.clone();
        world.apply("i1", Input::Complete { task, by: by.clone(), form }).unwrap();
    };
    complete("reception", &sa, json!({ "vin": "LSVAA4182E2123456", "odometer_km": 42000, "part_no": "P-1" }));
    complete("repair", &tech, json!({ "work_done": "brakes", "self_check_passed": true }));
    complete("inspection", &director, json!({ "passed": true }));
    complete("settle", &sa, json!({}));
    complete("handover_walkaround", &sa, json!({}));
    let instance = &world.slot("i1").unwrap().instance;
    assert!(
        matches!(&instance.status, machine::Status::Ended { outcome, .. } if outcome == "completed"),
        "{instance:?}"
    );
    assert!(!world.log.iter().any(|l| matches!(&l.event, machine::Event::Entered { step, .. } if step == "wash")));
}

// ----- the compliance diff ------------------------------------------------------------------

#[test]
fn the_diff_of_the_example_dealers_gives_the_expected_table() {
    let pack = examples();
    let overlays = [dealer("faithful.yaml"), dealer("deviant.yaml")];
    let deviations = packs::diff(&pack, &overlays);
    let dealers: Vec<String> = overlays.iter().map(|o| o.dealer().to_string()).collect();
    insta::assert_snapshot!("diff_table", packs::diff::render_table(&pack, &dealers, &deviations));
    let as_json = serde_json::to_value(&deviations).unwrap();
    assert_eq!(
        as_json[0],
        json!({
            "dealer": "dealer_deviant", "process": "repair_job", "kind": "inserted_step",
            "path": "handover_walkaround", "standard": "(none)",
            "dealer_value": "task at before_handover: 交車前與客戶環車說明 / Walk around the car with the customer before handover",
            "severity": "major"
        })
    );
}

// ----- archives -----------------------------------------------------------------------------

#[test]
fn a_signed_archive_verifies_and_loads_like_the_folder() {
    let archive = signed_examples();
    let bytes = archive.to_bytes().unwrap();
    let read = Archive::read(&bytes).unwrap();
    assert_eq!(read.verify(&[key(1).public()]).unwrap(), key(1).public());
    assert!(read.files.contains_key("pack.yaml") && read.files.contains_key("forms/example_call.json"));
    let from_archive = read.load(Path::new("examples-1.0.0.sopack"), &options()).unwrap();
    let from_folder = examples();
    let hashes = |p: &Pack| p.processes.iter().map(|p| (p.id.clone(), p.hash.0.clone())).collect::<Vec<_>>();
    assert_eq!(hashes(&from_archive), hashes(&from_folder));
    // The same pack always builds to the same bytes.
    assert_eq!(signed_examples().to_bytes().unwrap(), bytes);
}

fn refusal(archive: &Archive) -> Error {
    let bytes = archive.to_bytes().unwrap();
    Archive::parse(&bytes).and_then(|a| a.verify(&[key(1).public()])).unwrap_err()
}

#[test]
fn an_archive_with_one_byte_changed_is_refused() {
    let mut archive = signed_examples();
    archive.files.get_mut("repair_job.yaml").unwrap()[200] ^= 0x01;
    let err = refusal(&archive);
    assert!(
        matches!(&err, Error::Tampered { problems } if problems == &[Tamper::Changed { path: "repair_job.yaml".into() }]),
        "{err}"
    );
    assert!(err.to_string().contains("`repair_job.yaml` differs from the file that was built and signed"), "{err}");
}

#[test]
fn an_archive_with_a_file_added_or_removed_is_refused() {
    let mut added = signed_examples();
    added.files.insert("sneaky.yaml".into(), b"process: sneaky\n".to_vec());
    assert!(
        matches!(refusal(&added), Error::Tampered { problems } if problems == [Tamper::Added { path: "sneaky.yaml".into() }])
    );
    let mut removed = signed_examples();
    removed.files.remove("follow_up_call.yaml");
    assert!(
        matches!(refusal(&removed), Error::Tampered { problems } if problems == [Tamper::Removed { path: "follow_up_call.yaml".into() }])
    );
}

#[test]
fn an_archive_whose_listing_was_rewritten_fails_its_signature() {
    let mut archive = signed_examples();
    archive.files.get_mut("repair_job.yaml").unwrap().extend_from_slice(b"# changed\n");
    let rebuilt = Archive::from_files("examples", "1.0.0", archive.files.clone());
    archive.listing = rebuilt.listing;
    assert!(matches!(refusal(&archive), Error::BadSignature));
}

#[test]
fn an_archive_signed_by_a_wrong_key_is_refused() {
    let mut archive = Archive::build(&examples_dir(), &FsFiles, &options()).unwrap();
    archive.sign(&key(2)).unwrap();
    let err = refusal(&archive);
    assert!(matches!(&err, Error::Untrusted { signer } if *signer == key(2).public()), "{err}");
    assert!(err.to_string().contains("which is not one of the trusted publisher keys"));
    // Unsigned archives are refused as well.
    let unsigned = Archive::build(&examples_dir(), &FsFiles, &options()).unwrap();
    assert!(matches!(refusal(&unsigned), Error::Unsigned));
}

#[test]
fn a_corrupted_archive_is_refused() {
    let mut bytes = signed_examples().to_bytes().unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    assert!(Archive::parse(&bytes).is_err());
    assert!(matches!(Archive::parse(b"not an archive"), Err(Error::Archive(_))));
}

/// A gzip'd tar with one entry written byte by byte, so that names the tar writer refuses
/// (`..`, absolute paths) and links can be tested.
fn hostile(name: &str, kind: tar::EntryType, link: Option<&str>) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    let bytes = name.as_bytes();
    header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
    header.set_entry_type(kind);
    header.set_size(if kind == tar::EntryType::Regular { 3 } else { 0 });
    header.set_mode(0o644);
    if let Some(target) = link {
        header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
    }
    header.set_cksum();
    let mut tar = tar::Builder::new(Vec::new());
    let data: &[u8] = if kind == tar::EntryType::Regular { b"abc" } else { b"" };
    tar.append(&header, data).unwrap();
    let raw = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    gz.finish().unwrap()
}

#[test]
fn unsafe_archive_entries_are_refused() {
    use packs::archive::Problem;
    let cases = [
        (hostile("pack/../../evil.yaml", tar::EntryType::Regular, None), "unsafe path"),
        (hostile("/etc/evil.yaml", tar::EntryType::Regular, None), "unsafe path"),
        (hostile("pack/link.yaml", tar::EntryType::Symlink, Some("/etc/passwd")), "not a plain file"),
        (hostile("pack/hard.yaml", tar::EntryType::Link, Some("pack/pack.yaml")), "not a plain file"),
        (hostile("elsewhere.txt", tar::EntryType::Regular, None), "does not belong"),
    ];
    for (bytes, expected) in cases {
        match Archive::parse(&bytes) {
            Err(Error::Archive(
                p @ (Problem::UnsafePath { .. } | Problem::NotAFile { .. } | Problem::Stray { .. }),
            )) => {
                assert!(p.to_string().contains(expected), "{p}")
            }
            other => panic!("expected a refusal ({expected}), got {other:?}"),
        }
    }
    let limits = packs::archive::Limits { max_entries: 3, ..Default::default() };
    let bytes = signed_examples().to_bytes().unwrap();
    assert!(matches!(Archive::parse_with(&bytes, &limits), Err(Error::Archive(Problem::TooManyEntries { limit: 3 }))));
    let limits = packs::archive::Limits { max_file_bytes: 100, ..Default::default() };
    assert!(matches!(Archive::parse_with(&bytes, &limits), Err(Error::Archive(Problem::FileTooLarge { .. }))));
}

#[test]
fn keys_round_trip_through_their_files_and_texts() {
    let k = key(7);
    let again = SecretKey::from_file_text(&k.to_file_text()).unwrap();
    assert_eq!(again.public(), k.public());
    let listed = packs::PublicKey::parse_list(&format!("# headquarters\n{}\n\n", k.public())).unwrap();
    assert_eq!(listed, vec![k.public()]);
    assert!("ed25519:zz".parse::<packs::PublicKey>().is_err());
    assert!(SecretKey::from_file_text("secret: 00").is_err());
}

#[test]
fn install_verifies_the_archive_then_resolves_the_overlay() {
    let bytes = signed_examples().to_bytes().unwrap();
    let overlay = dealer("deviant.yaml");
    let plan = packs::install(&bytes, &[key(1).public()], Some(&overlay), None, false, &options()).unwrap();
    assert_eq!(plan.signer, key(1).public());
    assert_eq!(plan.dealer.as_deref(), Some("dealer_deviant"));
    assert!(plan.processes.iter().any(|p| p.step_idx("handover_walkaround").is_some()));
    let untrusted = packs::install(&bytes, &[key(2).public()], Some(&overlay), None, false, &options());
    assert!(matches!(untrusted, Err(Error::Untrusted { .. })));
    let locked =
        overlay_text("d.yaml", "overlay: d\npack: examples\nversion: \"^1\"\ndisable: [repair_job.inspection]\n");
    let refused = packs::install(&bytes, &[key(1).public()], Some(&locked), None, false, &options());
    assert!(matches!(refused, Err(Error::Invalid { diagnostics }) if diagnostics[0].code == Code::OverlayLocked));
}

// ----- upgrades and migration ---------------------------------------------------------------

#[test]
fn an_upgrade_that_removes_the_overlays_target_step_reports_the_conflict_and_deploys_nothing() {
    let v1 = examples();
    let v2 = examples_v2();
    let overlay = overlay_text(
        "dealer.yaml",
        "overlay: dealer_x\npack: examples\nversion: \">=1.0, <3\"\nsla:\n  repair_job.reception: PT20M\n",
    );
    assert!(!packs::resolve(&v1, &overlay, &options()).has_errors());
    let plan = packs::upgrade(&v1, &v2, Some(&overlay), false, &options()).unwrap();
    assert!(!plan.is_deployable());
    assert!(plan.processes.is_empty());
    assert_eq!(
        render(&plan.conflicts),
        "dealer.yaml:5:3: error[O0002]: the step `reception` of `repair_job` was removed in version 2.0.0\n  = hint: the pack's migration map replaces it with `check_in`: name `repair_job.check_in` instead, or drop the change\n"
    );
    // The same overlay, fixed, upgrades cleanly; the migration map comes with the plan.
    let fixed = overlay_text(
        "dealer.yaml",
        "overlay: dealer_x\npack: examples\nversion: \">=1.0, <3\"\nsla:\n  repair_job.check_in: PT20M\n",
    );
    let plan = packs::upgrade(&v1, &v2, Some(&fixed), false, &options()).unwrap();
    assert!(plan.is_deployable(), "{}", render(&plan.conflicts));
    assert_eq!(plan.migrations["repair_job"]["reception"], "check_in");
    assert!(
        plan.changes
            .iter()
            .any(|c| matches!(c, packs::upgrade::ProcessChange::Changed { process, .. } if process == "repair_job"))
    );
}

#[test]
fn an_overlay_written_for_another_major_version_is_an_upgrade_conflict() {
    let plan = packs::upgrade(&examples(), &examples_v2(), Some(&dealer("faithful.yaml")), false, &options()).unwrap();
    assert_eq!(plan.conflicts.len(), 1);
    assert_eq!(plan.conflicts[0].code, Code::OverlayPack);
    assert!(plan.conflicts[0].message.contains("written for `^1.0`, and the pack is version 2.0.0"));
}

#[test]
fn a_narrowed_range_and_a_new_lock_are_explained_as_upgrade_conflicts() {
    let v1 = examples();
    let v2 = examples_changed("1.1.0", |name, text| match name {
        "follow_up_call.yaml" => text.replace(
            "default: PT72H\n    min: PT24H\n    max: PT168H",
            "default: PT36H\n    min: PT24H\n    max: PT36H",
        ),
        "repair_job.yaml" => text.replace(
            "locked: [inspection, inspection_result.guards]",
            "locked: [inspection, inspection_result.guards, reception.due]",
        ),
        _ => text,
    });
    let overlay = overlay_text(
        "dealer.yaml",
        "overlay: d\npack: examples\nversion: \"^1.0\"\nparameters:\n  follow_up_window: PT48H\nsla:\n  repair_job.reception: PT20M\n",
    );
    let plan = packs::upgrade(&v1, &v2, Some(&overlay), false, &options()).unwrap();
    insta::assert_snapshot!("upgrade_conflicts", render(&plan.conflicts));
}

#[test]
fn a_downgrade_is_refused_unless_forced() {
    let (v1, v2) = (examples(), examples_v2());
    let err = packs::upgrade(&v2, &v1, None, false, &options()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "version 1.0.0 is older than the installed version 2.0.0; a downgrade is refused unless forced"
    );
    assert!(packs::upgrade(&v2, &v1, None, true, &options()).unwrap().is_deployable());
}

#[test]
fn instances_started_before_an_upgrade_finish_on_the_old_version() {
    let v1 = examples();
    let v2 = examples_changed("1.1.0", |name, text| {
        if name == "follow_up_call.yaml" { text.replace("default: PT72H", "default: PT96H") } else { text }
    });
    let old_hash = v1.process("follow_up_call").unwrap().hash.clone();
    let mut world = World::new(v1.processes.clone(), at("2026-03-03T10:00:00+08:00"));
    let data = json!({ "exit_at": "2026-03-02T17:00:00+08:00", "phone": "13800000000" });
    let start = || World::start_args("i1", "d1", None, data.as_object().unwrap().clone(), Actor::System);
    world.start("follow_up_call", start()).unwrap();

    let plan = packs::upgrade(&v1, &v2, None, false, &options()).unwrap();
    let new = plan.processes.iter().find(|p| p.id == "follow_up_call").unwrap().clone();
    assert_ne!(new.hash, old_hash);

    // The running instance is untouched by the plan and finishes on its own version.
    let task = world.slot("i1").unwrap().instance.tasks[0].id.clone();
    let cs = User::new("cs1", ["customer_service_specialist"]);
    world.apply("i1", Input::Complete { task, by: cs, form: json!({ "reached": true }) }).unwrap();
    let done = &world.slot("i1").unwrap().instance;
    assert_eq!(done.process_hash, old_hash.0);
    assert!(done.is_ended());
    // A new instance starts on the new version.
    let t = machine::start(&new, Start { id: "i2".into(), ..start() }, at("2026-03-03T10:00:00+08:00")).unwrap();
    assert_eq!(t.instance.process_hash, new.hash.0);
}

#[test]
fn the_migration_moves_a_token_as_mapped_and_reopens_its_task() {
    let (v1, v2) = (examples(), examples_v2());
    let (old, new) = (v1.process("repair_job").unwrap(), v2.process("repair_job").unwrap());
    let data = json!({ "plate_no": "粤A12345", "estimated_hours": 1, "promised_at": "2026-03-02T15:00:00+08:00" });
    let start = Start {
        id: "i1".into(),
        dealer: "d1".into(),
        business_key: None,
        data: data.as_object().unwrap().clone(),
        by: Actor::System,
        parent: None,
    };
    let now = at("2026-03-02T09:00:00+08:00");
    let instance = machine::start(old, start, now).unwrap().instance;
    let map = v2.migration_map(&v1.version, "repair_job").unwrap().clone();
    let later = now + SignedDuration::from_mins(5);
    let migrated = packs::migrate(&instance, old, new, &map, "ops1", later).unwrap();

    let token = &migrated.instance.tokens[0];
    assert_eq!(new.step(token.step).id, "check_in");
    assert_eq!(migrated.instance.process_hash, new.hash.0);
    assert_eq!(migrated.instance.tasks.len(), 1);
    assert_eq!(migrated.instance.tasks[0].step, "check_in");
    assert!(matches!(&token.wait, Wait::Task { task } if *task == migrated.instance.tasks[0].id));
    assert!(migrated.instance.incidents.is_empty());
    let record = serde_json::to_value(&migrated.record).unwrap();
    assert_eq!(record["moves"], json!([{ "token": 1, "from": "reception", "to": "check_in", "reentered": true }]));
    let trace: Vec<String> =
        migrated.events.iter().map(|e| serde_json::to_value(e).unwrap()["event"].to_string()).collect();
    assert_eq!(trace.first().map(String::as_str), Some("\"task_cancelled\""), "{trace:?}");
    assert!(trace.iter().any(|e| e == "\"task_opened\""), "{trace:?}");
    assert!(!trace.iter().any(|e| e.contains("incident")), "{trace:?}");
    // The original snapshot is untouched, and the instance goes on on the new version.
    assert_eq!(instance.process_hash, old.hash.0);
    let task = migrated.instance.tasks[0].id.clone();
    let sa = User::new("sa1", ["service_advisor"]);
    let form = json!({ "vin": "LSVAA4182E2123456", "odometer_km": 42000, "part_no": "P-1" });
    machine::step(new, &migrated.instance, &Input::Complete { task, by: sa, form }, later).unwrap();
}

#[test]
fn the_migration_refuses_a_removed_step_that_the_map_does_not_cover() {
    let (v1, v2) = (examples(), examples_v2());
    let (old, new) = (v1.process("repair_job").unwrap(), v2.process("repair_job").unwrap());
    let data = json!({ "plate_no": "粤A12345", "estimated_hours": 1, "promised_at": "2026-03-02T15:00:00+08:00" });
    let start = World::start_args("i1", "d1", None, data.as_object().unwrap().clone(), Actor::System);
    let instance = machine::start(old, start, at("2026-03-02T09:00:00+08:00")).unwrap().instance;
    let refused =
        packs::migrate(&instance, old, new, &IndexMap::new(), "ops1", at("2026-03-02T09:05:00+08:00")).unwrap_err();
    assert_eq!(refused, vec![packs::migrate::Refusal::Unmapped { step: "reception".into() }]);
    // Migrating onto the definition the instance already runs moves nothing.
    let same = packs::migrate(&instance, old, old, &IndexMap::new(), "ops1", at("2026-03-02T09:05:00+08:00")).unwrap();
    assert_eq!(same.instance.tasks, instance.tasks);
    assert!(same.effects.is_empty());
}
