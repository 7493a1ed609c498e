//! End-to-end tests of the `sopflow` binary: what a process owner types and what they see.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "cli/standard_pack.rs"]
mod standard_pack;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sopflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sopflow")).args(args).current_dir(root()).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_passes_on_the_processes_folder() {
    let out = sopflow(&["validate", "--deny-warnings", "processes"]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("0 error(s), 0 warning(s)"));
}

#[test]
fn validate_reports_every_problem_as_file_line_col_and_fails() {
    let out = sopflow(&["validate", "crates/model/test_data/err"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("references.yaml:14:13: error[P0005]: the process does not declare the role `advisr`"),
        "{err}"
    );
    assert!(err.contains("references.yaml:16:11: error[P0004]: there is no step `secnd`"), "{err}");
    assert!(err.lines().filter(|l| l.contains("error[P")).count() > 20, "{err}");
}

#[test]
fn test_runs_the_scenarios_and_prints_the_tally() {
    let out = sopflow(&["test", "--coverage", "processes/examples"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let tally = stdout.lines().last().unwrap_or_default();
    assert!(tally.ends_with(" passed, 0 failed"), "{tally}");
    assert!(stdout.contains("coverage: every transition was taken"), "{stdout}");
}

#[test]
fn graph_prints_a_mermaid_flowchart_with_decisions_loops_and_timers() {
    let out = sopflow(&["graph", "repair_job"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let g = text(&out.stdout);
    assert!(g.starts_with("flowchart TD\n"));
    assert!(g.contains("s_inspection_result{\"Did it pass?\"}"), "{g}");
    assert!(g.contains("s_inspection_result -->|\"rework\"| s_repair"), "{g}");
    assert!(g.contains("-.- s_repair__s_progress_call"), "{g}");
    assert!(g.contains("s_ready{{\"⋈ "), "{g}");
}

#[test]
fn graph_of_an_unknown_process_fails_with_a_message() {
    let out = sopflow(&["graph", "no_such_process"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no valid process `no_such_process`"));
}

#[test]
fn inventory_import_refuses_a_stock_file_with_errors_and_names_their_lines() {
    let dir = std::env::temp_dir().join(format!("sopflow-cli-stock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stock = dir.join("stock.csv");
    std::fs::write(&stock, "part_no,description,on_hand,location\nP-100,Brake pads,-1,A-01\n").unwrap();
    let db = format!("sqlite://{}", dir.join("sopflow.db").display());
    let out = sopflow(&["inventory", "import", stock.to_str().unwrap(), "--dealer", "d1", "--db", &db]);
    let good = dir.join("good.csv");
    std::fs::write(&good, "part_no,description,on_hand,location\nP-100,Brake pads,3,A-01\n").unwrap();
    let ok = sopflow(&["inventory", "import", good.to_str().unwrap(), "--dealer", "d1", "--db", &db]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("stock.csv: line 2: on_hand is `-1`"), "{err}");
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("1 part(s) imported into the stock of dealer `d1`"), "{}", text(&ok.stdout));
}

/// The pure crates must not depend, even indirectly, on an async runtime, a database driver,
/// an HTTP stack or a logging subscriber (docs/ARCHITECTURE.md, "Dependency direction").
#[test]
fn the_pure_crates_do_no_io() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = meta["resolve"]["nodes"].as_array().unwrap();
    let name_of = |id: &str| -> String {
        meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .map(|p| p["name"].as_str().unwrap().to_string())
            .unwrap()
    };
    let deps_of = |id: &str| -> Vec<String> {
        nodes
            .iter()
            .find(|n| n["id"] == id)
            .map(|n| {
                n["deps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    // Build-time and test-only dependencies do not ship in the crate.
                    .filter(|d| d["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null()))
                    .map(|d| d["pkg"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let forbidden = ["tokio", "sqlx", "axum", "hyper", "reqwest", "tracing-subscriber"];
    for pure in ["calendar", "script", "model", "machine", "packs", "store", "kpi"] {
        let root_id = meta["packages"].as_array().unwrap().iter().find(|p| p["name"] == pure).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![root_id];
        while let Some(id) = stack.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            let name = name_of(&id);
            assert!(!forbidden.contains(&name.as_str()), "`{pure}` depends on `{name}`");
            stack.extend(deps_of(&id));
        }
    }
}

#[test]
fn plugins_lists_the_example_plugin_with_its_declared_and_granted_capabilities() {
    let out = sopflow(&["plugins"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = text(&out.stdout);
    assert!(list.contains("  action notify: "), "{list}");
    assert!(list.contains("dms_example 1.0.0 (plugins/dms_example): "), "{list}");
    assert!(list.contains("  helper is_vip/1: "), "{list}");
    assert!(list.contains("  declares: http dms.example.com, secret dms_token\n  granted:  nothing"), "{list}");
}

#[test]
fn pack_build_sign_and_verify_round_trip_and_refuse_a_wrong_key() {
    let dir = std::env::temp_dir().join(format!("sopflow-cli-pack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (key, other, archive) = (dir.join("hq.key"), dir.join("other.key"), dir.join("examples.sopack"));
    let public =
        |out: &Output| text(&out.stdout).lines().find_map(|l| l.strip_prefix("public key: ").map(str::to_string));
    let hq = sopflow(&["pack", "keygen", "-o", key.to_str().unwrap()]);
    let stranger = sopflow(&["pack", "keygen", "-o", other.to_str().unwrap()]);
    let (hq, stranger) = (public(&hq).unwrap(), public(&stranger).unwrap());
    let built = sopflow(&[
        "pack",
        "build",
        "processes/examples",
        "--key",
        key.to_str().unwrap(),
        "-o",
        archive.to_str().unwrap(),
    ]);
    assert!(built.status.success(), "{}", text(&built.stderr));
    let ok = sopflow(&["pack", "verify", archive.to_str().unwrap(), "--trust", &hq]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("is examples 1.0.0, unaltered"), "{}", text(&ok.stdout));
    let refused = sopflow(&["pack", "verify", archive.to_str().unwrap(), "--trust", &stranger]);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("not one of the trusted publisher keys"), "{}", text(&refused.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pack_diff_prints_one_block_per_dealer() {
    let out = sopflow(&[
        "pack",
        "diff",
        "processes/examples",
        "--overlay",
        "processes/examples/dealers/faithful.yaml",
        "--overlay",
        "processes/examples/dealers/deviant.yaml",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with("dealer dealer_faithful: no deviations from examples 1.0.0\n"), "{table}");
    assert!(table.contains("dealer dealer_deviant: 10 deviation(s)"), "{table}");
}

#[test]
fn pack_install_records_and_deploys_into_the_database_and_refuses_an_overlay_of_another_dealer() {
    let dir = std::env::temp_dir().join(format!("sopflow-cli-install-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (key, archive) = (dir.join("hq.key"), dir.join("examples.sopack"));
    let database = format!("sqlite://{}", dir.join("dealer.db").display());
    let keygen = sopflow(&["pack", "keygen", "-o", key.to_str().unwrap()]);
    let public = text(&keygen.stdout).lines().find_map(|l| l.strip_prefix("public key: ").map(str::to_string)).unwrap();
    let built = sopflow(&[
        "pack",
        "build",
        "processes/examples",
        "--key",
        key.to_str().unwrap(),
        "-o",
        archive.to_str().unwrap(),
    ]);
    assert!(built.status.success(), "{}", text(&built.stderr));
    let install = |dealer: &str, extra: &[&str]| {
        let mut args =
            vec!["pack", "install", archive.to_str().unwrap(), "--dealer", dealer, "--trust", &public, "--database"];
        args.push(&database);
        args.extend_from_slice(extra);
        sopflow(&args)
    };

    let first = install("dealer_faithful", &["--by", "dealer.admin"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout).starts_with("installed examples 1.0.0 at dealer dealer_faithful"),
        "{}",
        text(&first.stdout)
    );
    let overlay = install("dealer_faithful", &["--overlay", "processes/examples/dealers/faithful.yaml"]);
    assert!(overlay.status.success(), "{}", text(&overlay.stderr));
    assert!(text(&overlay.stdout).starts_with("overlay_changed examples 1.0.0"), "{}", text(&overlay.stdout));

    let foreign = install("dealer_other", &["--overlay", "processes/examples/dealers/faithful.yaml"]);
    assert!(!foreign.status.success());
    assert!(text(&foreign.stderr).contains("written for dealer `dealer_faithful`"), "{}", text(&foreign.stderr));
    let other = sopflow(&["pack", "keygen", "-o", dir.join("other.key").to_str().unwrap()]);
    let stranger =
        text(&other.stdout).lines().find_map(|l| l.strip_prefix("public key: ").map(str::to_string)).unwrap();
    let untrusted = sopflow(&[
        "pack",
        "install",
        archive.to_str().unwrap(),
        "--dealer",
        "dealer_x",
        "--trust",
        &stranger,
        "--database",
        &database,
    ]);
    assert!(!untrusted.status.success());
    assert!(text(&untrusted.stderr).contains("not one of the trusted publisher keys"), "{}", text(&untrusted.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn kpi_prints_the_report_of_a_period_as_a_table_or_json_and_refuses_a_backwards_period() {
    let dir = std::env::temp_dir().join(format!("sopflow-kpi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("kpi.db").display());
    let period = ["--from", "2026-03-01", "--to", "2026-04-01"];
    let table = sopflow(&[&["kpi", "--database", &db, "--dealer", "d1"][..], &period[..]].concat());
    assert!(table.status.success(), "{}{}", text(&table.stdout), text(&table.stderr));
    let out = text(&table.stdout);
    assert!(out.contains("dealer d1") && out.contains("follow-up success rate"), "{out}");
    assert!(out.contains("period 2026-03-01T00:00:00Z .. 2026-04-01T00:00:00Z"), "{out}");

    let json = sopflow(&[&["kpi", "--db", &db, "--json"][..], &period[..]].concat());
    assert!(json.status.success(), "{}", text(&json.stderr));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["dealer"], serde_json::Value::Null);
    assert_eq!(report["followup_success_rate"]["denominator"], 0);

    let backwards = sopflow(&["kpi", "--db", &db, "--from", "2026-04-01", "--to", "2026-03-01"]);
    assert!(!backwards.status.success());
    assert!(text(&backwards.stderr).contains("`from` must come before `to`"), "{}", text(&backwards.stderr));
    std::fs::remove_dir_all(&dir).ok();
}
