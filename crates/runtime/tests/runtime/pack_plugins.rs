//! Script plugins that packs bring: installing a pack with `plugins/` loads them into the
//! running engine (its processes can use their actions and guard helpers at once), a broken
//! plugin refuses the installation at `file:line:col` and changes nothing, and a restarted
//! engine loads the plugins of the packs installed in its database.

use std::collections::BTreeMap;
use std::sync::Arc;

use machine::{Actor, Status};
use packs::archive::Archive;
use packs::{PublicKey, SecretKey};
use runtime::distribution::{InstallRequest, OverlayChoice, Refusal, Source};
use runtime::{Config, PackPlugins, Runtime};
use store::packs::PackStore;

use crate::harness::*;

fn publisher() -> SecretKey {
    SecretKey::from_seed([3; 32])
}

fn trusted() -> Vec<PublicKey> {
    vec![publisher().public()]
}

const MANIFEST: &str = "pack: greetings\nversion: VERSION\ntitle: { zh: 問候, en: Greetings }\nroles:\n  \
                        advisor: { zh: 服務顧問, en: Service advisor }\n";

/// Greets the plate with the pack's own action, then branches on the pack's own guard helper.
const PROCESS: &str = r#"
process: greeting
version: 1
title: { zh: 問候, en: Greeting }
roles: [advisor]
data:
  type: object
  properties:
    plate: { type: string }
start: say
steps:
  say:
    type: action
    title: { zh: 問候, en: Say hello }
    action: greet.say
    input: { name: =plate }
    next: long_or_short
  long_or_short:
    type: decision
    title: { zh: 長嗎？, en: Is it long? }
    branches:
      - when: is_long(say.text)
        next: long
        label: { zh: 長, en: long }
    default: short
  long:
    type: end
    outcome: long
  short:
    type: end
    outcome: short
"#;

const PLUGIN: &str = r#"
plugin: greeter
version: 1.0.0
description: Greets.
actions:
  greet.say:
    description: Says hello.
    script: greet.rhai
    function: say
    input:
      type: object
      required: [name]
      properties: { name: { type: string } }
    output:
      type: object
      required: [text]
      properties: { text: { type: string } }
helpers:
  is_long:
    script: helpers.rhai
    doc: True for a text of more than twelve characters.
"#;

const HELPERS: &str = "fn is_long(text) {\n    text.len() > 12\n}\n";

fn archive(version: &str, greet: &str) -> Vec<u8> {
    let files = BTreeMap::from([
        ("pack.yaml".to_string(), MANIFEST.replace("VERSION", version).into_bytes()),
        ("greeting.yaml".to_string(), PROCESS.as_bytes().to_vec()),
        ("plugins/greeter/plugin.yaml".to_string(), PLUGIN.as_bytes().to_vec()),
        ("plugins/greeter/greet.rhai".to_string(), greet.as_bytes().to_vec()),
        ("plugins/greeter/helpers.rhai".to_string(), HELPERS.as_bytes().to_vec()),
    ]);
    let mut a = Archive::from_files("greetings", version, files);
    a.sign(&publisher()).unwrap();
    a.to_bytes().unwrap()
}

const GREET: &str = "fn say(input) {\n    #{ text: `hello ${input.name}` }\n}\n";
const GREET_V2: &str = "fn say(input) {\n    #{ text: `good morning, ${input.name}` }\n}\n";
/// Line 2 does not parse.
const BROKEN: &str = "fn say(input) {\n    #{ text: `hello ${input.name}` \n";

/// A runtime that keeps the plugins packs bring, with only the built-in plugins configured,
/// restoring those of the packs already installed (as `serve` does).
async fn open(env: &Env) -> Runtime {
    let host = Arc::new(PackPlugins::new(
        plugins::Registry::builder(plugins::PluginsConfig::default()),
        model::Options::default(),
    ));
    let store = env.open_store().await;
    assert_eq!(host.restore(&store).await.unwrap(), Vec::<String>::new());
    let set = host.current().unwrap();
    let mut config: Config = env.config();
    config.actions = (*set.actions).clone();
    config.model = (*set.model).clone();
    config.pack_plugins = Some(host);
    env.open_with(config).await
}

async fn install(rt: &Runtime, bytes: Vec<u8>) -> Result<runtime::distribution::Installed, Refusal> {
    let req = InstallRequest {
        dealer: "d1".into(),
        source: Source::Archive(bytes),
        overlay: OverlayChoice::Keep,
        force: false,
        by: Actor::User { id: "d1.admin".into(), role: None },
    };
    rt.install_pack(req, &trusted()).await.unwrap()
}

async fn outcome(rt: &Runtime, id: &str) -> (String, String) {
    eventually("the greeting ends", || ended(rt, id)).await;
    let view = rt.instance(id).await.unwrap().unwrap();
    let Status::Ended { outcome, .. } = &view.instance.status else { unreachable!() };
    (view.instance.data["say"]["text"].as_str().unwrap().to_string(), outcome.clone())
}

runtime_test!(a_pack_brings_its_plugins_into_the_running_engine, |env| {
    let rt = open(&env).await;
    assert!(!rt.model_options().actions.as_ref().unwrap().contains("greet.say"), "not known before the install");

    let installed = install(&rt, archive("1.0.0", GREET)).await.expect("installed");
    assert_eq!(installed.deployed[0].process_id, "greeting");
    start(&rt, "greeting", "g1", "粤B123").await;
    // The pack's action ran in the engine, and its guard helper decided.
    assert_eq!(outcome(&rt, "g1").await, ("hello 粤B123".to_string(), "short".to_string()));

    // A plugin that does not compile refuses the upgrade where it is broken; nothing changes.
    let refused = install(&rt, archive("1.0.1", BROKEN)).await.expect_err("refused");
    let Refusal::Pack(packs::Error::Invalid { diagnostics }) = &refused else { panic!("{refused:?}") };
    let d = &diagnostics[0];
    assert_eq!(d.file, std::path::Path::new("greetings-1.0.1.sopack/plugins/greeter/greet.rhai"), "{d}");
    assert_eq!((d.span.line, d.code), (3, model::Code::PluginScript), "{d}");
    let installation = rt.store().installation("d1", "greetings").await.unwrap().unwrap();
    assert_eq!(installation.version, "1.0.0");
    start(&rt, "greeting", "g2", "粤B1").await;
    assert_eq!(outcome(&rt, "g2").await, ("hello 粤B1".to_string(), "short".to_string()));

    // An upgrade replaces the pack's plugins at once.
    install(&rt, archive("1.1.0", GREET_V2)).await.expect("upgraded");
    start(&rt, "greeting", "g3", "粤B1").await;
    assert_eq!(outcome(&rt, "g3").await, ("good morning, 粤B1".to_string(), "long".to_string()));
    rt.shutdown().await;

    // After a restart the engine loads the installed version's plugins from its database.
    let rt = open(&env).await;
    start(&rt, "greeting", "g4", "粤B2").await;
    assert_eq!(outcome(&rt, "g4").await, ("good morning, 粤B2".to_string(), "long".to_string()));
    rt.shutdown().await;
});

runtime_test!(an_engine_that_does_not_keep_pack_plugins_refuses_such_a_pack, |env| {
    let rt = env.open().await;
    let refused = install(&rt, archive("1.0.0", GREET)).await.expect_err("refused");
    let Refusal::Pack(packs::Error::Invalid { diagnostics }) = &refused else { panic!("{refused:?}") };
    assert!(diagnostics[0].message.contains("does not load plugins"), "{}", diagnostics[0]);
    assert!(rt.store().installation("d1", "greetings").await.unwrap().is_none());
    rt.shutdown().await;
});
