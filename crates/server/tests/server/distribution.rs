//! Pack distribution over HTTP: headquarters publishes signed archives, dealer administrators
//! install them with overlays, and what is refused leaves nothing behind. The archives are built
//! here from a small two-version pack and signed with a key made from a fixed seed.

use std::collections::BTreeMap;

use packs::archive::Archive;
use packs::{PublicKey, SecretKey};
use serde_json::{Value, json};
use server::Catalogue;
use store::Store;
use store::audit::verify_chain;

use crate::harness::{Backend, Harness, SERVICE_VISIT, compile};

fn publisher() -> SecretKey {
    SecretKey::from_seed([7; 32])
}

fn stranger() -> SecretKey {
    SecretKey::from_seed([9; 32])
}

fn trusted() -> Vec<PublicKey> {
    vec![publisher().public()]
}

/// The `visits` pack: version 1 receives the car at `reception`; version 2 renamed that step
/// `check_in` and says so in its migration map. Both then repair and end.
fn pack_files(version: &str) -> BTreeMap<String, Vec<u8>> {
    let v2 = version.starts_with('2');
    let first = if v2 { "check_in" } else { "reception" };
    let migrations =
        if v2 { "migrations:\n  - from: 1.x\n    map:\n      visit: { reception: check_in }\n" } else { "" };
    let manifest = format!(
        "pack: visits\nversion: {version}\ntitle: {{ zh: 接待, en: Visits }}\nroles:\n  \
         service_advisor: {{ zh: 服務顧問, en: Service advisor }}\n  technician: {{ zh: 維修技師, en: Technician }}\n\
         {migrations}"
    );
    let process = format!(
        "process: visit\nversion: {}\ntitle: {{ zh: 接待, en: Visit }}\nroles: [service_advisor, technician]\n\
         data:\n  type: object\n  properties:\n    plate: {{ type: string }}\n  required: [plate]\n\
         start: {first}\nsteps:\n  {first}:\n    type: task\n    title: {{ zh: 接車, en: Receive the car }}\n    \
         roles: [service_advisor]\n    due: {{ after: PT2H }}\n    next: repair\n  repair:\n    type: task\n    \
         title: {{ zh: 維修, en: Repair }}\n    roles: [technician]\n    due: {{ after: PT4H }}\n    next: done\n  \
         done:\n    type: end\n    outcome: completed\n",
        if v2 { 2 } else { 1 }
    );
    BTreeMap::from([("pack.yaml".to_string(), manifest.into_bytes()), ("visit.yaml".to_string(), process.into_bytes())])
}

fn signed(version: &str, key: &SecretKey) -> Archive {
    let mut archive = Archive::from_files("visits", version, pack_files(version));
    archive.sign(key).unwrap();
    archive
}

fn archive_bytes(version: &str) -> Vec<u8> {
    signed(version, &publisher()).to_bytes().unwrap()
}

/// An overlay of dealer `a` that shortens the due time of a step.
fn overlay(step: &str, due: &str) -> String {
    format!("overlay: a\npack: visits\nversion: \">=1.0, <3\"\nsla:\n  visit.{step}: {due}\n")
}

async fn publish(h: &Harness, version: &str) {
    h.call_bytes("POST", "/api/v1/packs", Some("hq.admin"), archive_bytes(version)).await.ok();
}

async fn install(h: &Harness, user: &str, body: Value) -> crate::harness::Answer {
    h.call("POST", "/api/v1/installations", Some(user), Some(body)).await
}

/// The kinds of the pack entries of a dealer's audit chain, with who made them.
async fn pack_entries(h: &Harness, dealer: &str) -> Vec<(String, String)> {
    let chain = h.state.runtime().audit(&format!("dealer:{dealer}")).await.unwrap();
    verify_chain(&chain).unwrap();
    chain
        .iter()
        .filter(|e| e.kind.starts_with("pack_"))
        .map(|e| {
            let actor: Value = serde_json::from_str(&e.actor).unwrap();
            (e.kind.clone(), actor["id"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

async fn on(backend: Backend) -> Option<Harness> {
    let processes = vec![compile(SERVICE_VISIT)];
    Harness::open_trusting(backend, processes, Catalogue::new(), None, trusted()).await
}

async fn publish_list_pull_and_install(backend: Backend) {
    let Some(h) = on(backend).await else { return };
    let bytes = archive_bytes("1.0.0");
    let first = h.call_bytes("POST", "/api/v1/packs", Some("hq.admin"), bytes.clone()).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["new"], true);
    assert_eq!(first.body["publication"]["signer"], publisher().public().to_string());
    let again = h.call_bytes("POST", "/api/v1/packs", Some("hq.admin"), bytes.clone()).await;
    assert_eq!((again.status.as_u16(), &again.body["new"]), (200, &json!(false)), "{}", again.body);

    // Every user reads what is published; the archive comes back byte for byte.
    let list = h.call("GET", "/api/v1/packs", Some("b.advisor"), None).await;
    assert_eq!(list.ok().as_array().unwrap().len(), 1);
    assert_eq!(list.body[0]["published_by"], "hq.admin");
    let version = h.call("GET", "/api/v1/packs/visits/1.0.0", Some("a.admin"), None).await;
    assert_eq!(version.ok()["processes"][0]["id"], "visit");
    assert_eq!(version.body["manifest"]["pack"], "visits");
    let pulled = h.call("GET", "/api/v1/packs/visits/1.0.0/archive", Some("a.admin"), None).await;
    assert_eq!(pulled.headers["content-type"], "application/octet-stream");
    assert_eq!(pulled.bytes, bytes);
    assert_eq!(Archive::parse(&pulled.bytes).unwrap().verify(&trusted()).unwrap(), publisher().public());
    h.call("GET", "/api/v1/packs/visits/9.9.9", Some("a.admin"), None).await.problem(404, "not-found");

    let installed = install(
        &h,
        "a.admin",
        json!({ "pack": "visits", "version": "1.0.0", "overlay": overlay("reception", "PT20M") }),
    )
    .await;
    assert_eq!(installed.status, 201, "{}", installed.body);
    assert_eq!(installed.body["installation"]["action"], "installed");
    assert_eq!(installed.body["deployed"][0]["process"], "visit");
    let hash = installed.body["deployed"][0]["hash"].as_str().unwrap().to_string();
    assert_eq!(h.state.runtime().store().current_deployment("a", "visit").await.unwrap(), Some(hash));
    assert_eq!(
        h.state.runtime().store().current_deployment("b", "visit").await.unwrap(),
        None,
        "only dealer a installed it"
    );
    // The catalogue learns the pack's processes, as the standard defines them.
    let processes = h.call("GET", "/api/v1/processes", Some("b.advisor"), None).await;
    assert!(processes.ok().as_array().unwrap().iter().any(|p| p["id"] == "visit"), "{}", processes.body);
    let started = h
        .call(
            "POST",
            "/api/v1/instances",
            Some("a.advisor"),
            Some(json!({ "process": "visit", "data": { "plate": "A1" } })),
        )
        .await;
    assert_eq!(started.status, 201, "{}", started.body);

    let mine = h.call("GET", "/api/v1/installations", Some("a.advisor"), None).await;
    assert_eq!(mine.ok()[0]["version"], "1.0.0");
    assert_eq!(pack_entries(&h, "a").await, [("pack_installed".to_string(), "a.admin".to_string())]);
    let hq_chain = h.state.runtime().audit("hq:hq").await.unwrap();
    assert_eq!(hq_chain.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["pack_published"]);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headquarters_publishes_and_a_dealer_administrator_installs_on_memory() {
    publish_list_pull_and_install(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headquarters_publishes_and_a_dealer_administrator_installs_on_sqlite() {
    publish_list_pull_and_install(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headquarters_publishes_and_a_dealer_administrator_installs_on_postgres() {
    publish_list_pull_and_install(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altered_unsigned_and_untrusted_archives_are_refused_and_nothing_is_stored() {
    let h = Harness::trusting(trusted()).await;
    let mut tampered = signed("1.0.0", &publisher());
    tampered.files.insert("visit.yaml".into(), b"process: visit\n".to_vec());
    let unsigned = Archive::from_files("visits", "1.0.0", pack_files("1.0.0"));
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("not an archive", b"hello".to_vec(), 400, "pack-unreadable"),
        ("empty", Vec::new(), 400, "pack-unreadable"),
        ("altered after signing", tampered.to_bytes().unwrap(), 422, "pack-tampered"),
        ("unsigned", unsigned.to_bytes().unwrap(), 422, "pack-bad-signature"),
        ("signed by an unknown key", signed("1.0.0", &stranger()).to_bytes().unwrap(), 422, "pack-untrusted"),
    ];
    for (what, bytes, status, kind) in cases {
        let answer = h.call_bytes("POST", "/api/v1/packs", Some("hq.admin"), bytes).await;
        assert_eq!(answer.status.as_u16(), status, "{what}: {}", answer.body);
        answer.problem(status, kind);
    }
    // Only headquarters administrators publish.
    for user in ["hq.viewer", "a.admin"] {
        h.call_bytes("POST", "/api/v1/packs", Some(user), archive_bytes("1.0.0")).await.problem(403, "forbidden");
    }
    h.call_bytes("POST", "/api/v1/packs", None, archive_bytes("1.0.0")).await.problem(401, "unauthorized");
    assert!(h.call("GET", "/api/v1/packs", Some("hq.admin"), None).await.ok().as_array().unwrap().is_empty());
    assert!(h.state.runtime().audit("hq:hq").await.unwrap().is_empty());

    // A server that trusts no key refuses every archive, and says why.
    let untrusting = Harness::memory().await;
    let answer = untrusting.call_bytes("POST", "/api/v1/packs", Some("hq.admin"), archive_bytes("1.0.0")).await;
    answer.problem(409, "pack-no-trusted-keys");
    assert!(answer.body["detail"].as_str().unwrap().contains("--trust"), "{}", answer.body);
    untrusting.cleanup().await;
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_is_published_once() {
    let h = Harness::trusting(trusted()).await;
    publish(&h, "1.0.0").await;
    // The same version with other contents is another archive: refused.
    let mut files = pack_files("1.0.0");
    files.insert("notes.md".into(), b"other contents".to_vec());
    let mut other = Archive::from_files("visits", "1.0.0", files);
    other.sign(&publisher()).unwrap();
    let answer = h.call_bytes("POST", "/api/v1/packs", Some("hq.admin"), other.to_bytes().unwrap()).await;
    answer.problem(409, "pack-version-taken");
    assert_eq!(h.state.runtime().audit("hq:hq").await.unwrap().len(), 1);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_whose_overlay_targets_a_removed_step_reports_the_conflict_and_deploys_nothing() {
    let h = Harness::trusting(trusted()).await;
    publish(&h, "1.0.0").await;
    publish(&h, "2.0.0").await;
    let body = json!({ "pack": "visits", "version": "1.0.0", "overlay": overlay("reception", "PT20M") });
    install(&h, "a.admin", body).await.ok();
    let store = h.state.runtime().store();
    let deployed_before = store.current_deployment("a", "visit").await.unwrap();
    let chain_before = h.state.runtime().audit("dealer:a").await.unwrap().len();

    let refused = install(&h, "a.admin", json!({ "pack": "visits", "version": "2.0.0" })).await;
    refused.problem(409, "overlay-conflicts");
    let errors = refused.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{}", refused.body);
    assert_eq!(errors[0]["path"], "overlays/a.yaml:5:3", "{}", refused.body);
    assert!(errors[0]["message"].as_str().unwrap().contains("`reception` of `visit` was removed"), "{}", refused.body);

    assert_eq!(store.current_deployment("a", "visit").await.unwrap(), deployed_before, "nothing was deployed");
    assert_eq!(h.state.runtime().audit("dealer:a").await.unwrap().len(), chain_before, "nothing was audited");
    let history = h.call("GET", "/api/v1/installations/a/visits", Some("a.admin"), None).await;
    assert_eq!(history.ok()["history"].as_array().unwrap().len(), 1, "nothing was recorded");
    assert_eq!(history.body["current"]["version"], "1.0.0");

    // The overlay rewritten for the new step upgrades cleanly.
    let fixed = json!({ "pack": "visits", "version": "2.0.0", "overlay": overlay("check_in", "PT20M") });
    let upgraded = install(&h, "a.admin", fixed).await;
    assert_eq!(upgraded.ok()["installation"]["action"], "upgraded");
    assert_eq!(upgraded.body["changes"], json!([{ "process": "visit", "change": "changed" }]));
    // Going back needs force.
    let back = json!({ "pack": "visits", "version": "1.0.0", "remove_overlay": true });
    install(&h, "a.admin", back).await.problem(409, "pack-downgrade");
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_started_before_an_upgrade_finish_on_the_old_version() {
    let h = Harness::trusting(trusted()).await;
    publish(&h, "1.0.0").await;
    publish(&h, "2.0.0").await;
    install(&h, "a.admin", json!({ "pack": "visits", "version": "1.0.0" })).await.ok();
    let start = || json!({ "process": "visit", "data": { "plate": "A1" } });
    let old = h.call("POST", "/api/v1/instances", Some("a.advisor"), Some(start())).await;
    assert_eq!(old.ok()["tasks"][0]["step"], "reception");
    let old_task = old.body["tasks"][0]["id"].as_str().unwrap().to_string();

    install(&h, "a.admin", json!({ "pack": "visits", "version": "2.0.0" })).await.ok();
    let new = h.call("POST", "/api/v1/instances", Some("a.advisor"), Some(start())).await;
    assert_eq!(new.ok()["tasks"][0]["step"], "check_in");

    // The old instance goes on through the step the new version no longer has.
    let done = h
        .call("POST", &format!("/api/v1/tasks/{old_task}/complete"), Some("a.advisor"), Some(json!({ "form": {} })))
        .await;
    assert!(done.status.is_success(), "{}", done.body);
    let id = old.body["id"].as_str().unwrap();
    let view = h.state.runtime().instance(id).await.unwrap().unwrap();
    assert_eq!(view.process.pack.as_ref().map(|p| p.version.as_str()), Some("1.0.0"));
    assert!(view.process.steps.iter().any(|s| s.id == "reception"));
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_moves_running_instances_onto_the_upgrade_along_the_migration_map() {
    let h = Harness::trusting(trusted()).await;
    publish(&h, "1.0.0").await;
    publish(&h, "2.0.0").await;
    install(&h, "a.admin", json!({ "pack": "visits", "version": "1.0.0" })).await.ok();
    let start = || json!({ "process": "visit", "data": { "plate": "A1" } });
    let old = h.call("POST", "/api/v1/instances", Some("a.advisor"), Some(start())).await;
    let id = old.ok()["id"].as_str().unwrap().to_string();
    install(&h, "a.admin", json!({ "pack": "visits", "version": "2.0.0" })).await.ok();

    // Only the dealer's administrator; not another dealer's, not headquarters.
    h.call("POST", "/api/v1/installations/visits/migrate", Some("a.advisor"), None).await.problem(403, "forbidden");
    h.call("POST", "/api/v1/installations/visits/migrate", Some("hq.admin"), None).await.problem(403, "forbidden");
    h.call("POST", "/api/v1/installations/visits/migrate", Some("b.admin"), None).await.problem(404, "not-found");

    let moved = h.call("POST", "/api/v1/installations/visits/migrate", Some("a.admin"), None).await;
    assert_eq!(moved.ok(), &json!([{ "instance": id, "process": "visit", "moved": true, "reason": null }]));
    // The renamed step holds the task now, on version 2, and the move is in the audit trail.
    let view = h.state.runtime().instance(&id).await.unwrap().unwrap();
    assert_eq!(view.process.pack.as_ref().map(|p| p.version.as_str()), Some("2.0.0"));
    let steps: Vec<&str> = view.instance.tasks.iter().map(|t| t.step.as_str()).collect();
    assert_eq!(steps, ["check_in"]);
    let chain = h.state.runtime().audit(&id).await.unwrap();
    let last = chain.last().unwrap();
    assert_eq!(last.kind, "migrated");
    assert!(last.actor.contains("a.admin"), "{}", last.actor);
    assert!(last.entry.contains("check_in"), "{}", last.entry);
    verify_chain(&chain).unwrap();
    // Again: nothing left on the old version.
    let again = h.call("POST", "/api/v1/installations/visits/migrate", Some("a.admin"), None).await;
    assert_eq!(again.ok(), &json!([]));
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_installation_and_overlay_change_is_in_the_dealers_audit_chain_with_the_user() {
    let h = Harness::trusting(trusted()).await;
    publish(&h, "1.0.0").await;
    publish(&h, "2.0.0").await;
    let steps = [
        (json!({ "pack": "visits", "version": "1.0.0" }), "installed"),
        (json!({ "pack": "visits", "version": "1.0.0", "overlay": overlay("repair", "PT3H") }), "overlay_changed"),
        (json!({ "pack": "visits", "version": "2.0.0" }), "upgraded"),
        (json!({ "pack": "visits", "version": "2.0.0" }), "reinstalled"),
        (json!({ "pack": "visits", "version": "2.0.0", "remove_overlay": true }), "overlay_changed"),
        (json!({ "pack": "visits", "version": "1.0.0", "force": true }), "downgraded"),
    ];
    for (body, action) in &steps {
        let answer = install(&h, "a.admin", body.clone()).await;
        assert_eq!(answer.ok()["installation"]["action"], *action, "{body}");
    }
    let expected: Vec<(String, String)> =
        steps.iter().map(|(_, action)| (format!("pack_{action}"), "a.admin".to_string())).collect();
    assert_eq!(pack_entries(&h, "a").await, expected);

    // The upgrade kept the overlay installed before it; removing it was its own change.
    let history = h.call("GET", "/api/v1/installations/a/visits", Some("a.admin"), None).await;
    let overlays: Vec<bool> =
        history.ok()["history"].as_array().unwrap().iter().map(|r| r["overlay"].is_string()).collect();
    assert_eq!(overlays, [false, true, true, true, false, false]);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dealer_never_sees_another_dealers_installation_and_headquarters_sees_all() {
    let h = Harness::trusting(trusted()).await;
    publish(&h, "1.0.0").await;
    install(&h, "a.admin", json!({ "pack": "visits", "version": "1.0.0", "overlay": overlay("repair", "PT3H") }))
        .await
        .ok();

    assert!(h.call("GET", "/api/v1/installations", Some("b.admin"), None).await.ok().as_array().unwrap().is_empty());
    h.call("GET", "/api/v1/installations?dealer=a", Some("b.admin"), None).await.problem(404, "not-found");
    h.call("GET", "/api/v1/installations/a/visits", Some("b.advisor"), None).await.problem(404, "not-found");
    let all = h.call("GET", "/api/v1/installations", Some("hq.viewer"), None).await;
    assert_eq!(all.ok().as_array().unwrap().len(), 1);
    h.call("GET", "/api/v1/installations/a/visits", Some("hq.viewer"), None).await.ok();

    // Who installs: a dealer's administrator, for their own dealer only.
    let body = json!({ "pack": "visits", "version": "1.0.0" });
    install(&h, "a.advisor", body.clone()).await.problem(403, "forbidden");
    install(&h, "hq.admin", body.clone()).await.problem(403, "forbidden");
    let foreign = json!({ "pack": "visits", "version": "1.0.0", "overlay": overlay("repair", "PT3H") });
    install(&h, "b.admin", foreign).await.problem(422, "overlay-invalid");
    install(&h, "b.admin", json!({ "pack": "visits", "version": "3.0.0" })).await.problem(422, "pack-not-published");

    // Headquarters sees each dealer's deviations from the standard.
    let report = h.call("GET", "/api/v1/compliance?pack=visits", Some("hq.viewer"), None).await;
    assert_eq!(
        report.ok()["dealers"],
        json!([{ "dealer": "a", "version": "1.0.0", "has_overlay": true, "n_deviations": 1 }])
    );
    let deviation = &report.body["deviations"][0];
    assert_eq!(
        (&deviation["dealer"], &deviation["kind"], &deviation["process"]),
        (&json!("a"), &json!("sla"), &json!("visit"))
    );
    h.call("GET", "/api/v1/compliance?pack=visits", Some("a.admin"), None).await.problem(403, "forbidden");
    h.cleanup().await;
}

/// A pack that brings a script plugin whose action its process uses.
fn plugin_pack(version: &str, script: &str) -> Vec<u8> {
    let plugin = "plugin: stamp\nversion: 1.0.0\ndescription: Stamps.\nactions:\n  stamp.make:\n    \
                  description: Makes a stamp.\n    script: stamp.rhai\n    function: make\n    \
                  input: { type: object }\n    output: { type: object, required: [stamp] }\n";
    let process = "process: stamped\nversion: 1\ntitle: { zh: 蓋章, en: Stamped }\nroles: [service_advisor]\n\
                   data: { type: object }\nstart: stamp\nsteps:\n  stamp:\n    type: action\n    title: { zh: 蓋章, en: Stamp }\n    \
                   action: stamp.make\n    input: {}\n    next: done\n  done:\n    type: end\n";
    let manifest = format!(
        "pack: stamps\nversion: {version}\ntitle: {{ zh: 蓋章, en: Stamps }}\nroles:\n  \
         service_advisor: {{ zh: 服務顧問, en: Service advisor }}\n"
    );
    let files = BTreeMap::from([
        ("pack.yaml".to_string(), manifest.into_bytes()),
        ("stamped.yaml".to_string(), process.as_bytes().to_vec()),
        ("plugins/stamp/plugin.yaml".to_string(), plugin.as_bytes().to_vec()),
        ("plugins/stamp/stamp.rhai".to_string(), script.as_bytes().to_vec()),
    ]);
    let mut archive = Archive::from_files("stamps", version, files);
    archive.sign(&publisher()).unwrap();
    archive.to_bytes().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_brings_a_script_plugin_and_a_broken_one_is_refused_where_it_is_broken() {
    let h = Harness::trusting(trusted()).await;
    let good = h
        .call_bytes(
            "POST",
            "/api/v1/packs",
            Some("hq.admin"),
            plugin_pack("1.0.0", "fn make(input) { #{ stamp: \"ok\" } }\n"),
        )
        .await;
    assert_eq!(good.status, 201, "{}", good.body);
    let installed = install(&h, "a.admin", json!({ "pack": "stamps", "version": "1.0.0" })).await;
    assert_eq!(installed.status, 201, "{}", installed.body);
    assert_eq!(installed.body["deployed"][0]["process"], "stamped");
    assert!(h.state.runtime().model_options().actions.as_ref().unwrap().contains("stamp.make"));

    // The script's second line does not parse: refused at its place in the archive.
    let broken = h
        .call_bytes("POST", "/api/v1/packs", Some("hq.admin"), plugin_pack("1.0.1", "fn make(input) {\n  #{ stamp: \n"))
        .await;
    broken.problem(422, "pack-invalid");
    let at = broken.body["errors"][0]["path"].as_str().unwrap();
    assert!(at.starts_with("stamps-1.0.1.sopack/plugins/stamp/stamp.rhai:"), "{}", broken.body);
    let listed = h.call("GET", "/api/v1/packs", Some("hq.admin"), None).await;
    assert_eq!(listed.ok().as_array().unwrap().len(), 1, "only 1.0.0 is published");
    h.cleanup().await;
}
