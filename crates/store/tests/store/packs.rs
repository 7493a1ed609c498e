//! The pack port's contract ([`store::packs::PackStore`]), the same on every backend.

use serde_json::json;
use store::Store;
use store::audit::{Draft, verify_chain};
use store::packs::{ArchiveRow, InstallationRow, PackStore, PublicationRow, Published, Recorded};

use crate::harness::*;

fn archive(digest: &str, version: &str) -> ArchiveRow {
    ArchiveRow {
        digest: digest.into(),
        pack_id: "std".into(),
        version: version.into(),
        signer: "ed25519:00".into(),
        bytes: vec![0x1f, 0x8b, 0, 1, 2, 255],
        stored_at: 10,
    }
}

fn publication(digest: &str, version: &str, at: i64) -> PublicationRow {
    PublicationRow {
        pack_id: "std".into(),
        version: version.into(),
        digest: digest.into(),
        signer: "ed25519:00".into(),
        published_at: at,
        published_by: "hq.admin".into(),
    }
}

fn installation(dealer: &str, digest: &str, version: &str, replaces: i64, overlay: Option<&str>) -> InstallationRow {
    InstallationRow {
        seq: 0,
        dealer: dealer.into(),
        pack_id: "std".into(),
        version: version.into(),
        digest: digest.into(),
        signer: "ed25519:00".into(),
        overlay: overlay.map(str::to_string),
        action: "installed".into(),
        replaces,
        installed_at: 100 + replaces,
        installed_by: format!("{dealer}.admin"),
    }
}

fn draft(chain: &str, kind: &str, user: &str) -> Draft {
    Draft {
        chain: chain.into(),
        actor: json!({ "type": "user", "id": user }),
        kind: kind.into(),
        step: None,
        entry: json!({ "pack": "std" }),
        definition_hash: None,
    }
}

/// Publishes `std` `version` with the archive `digest`, by `user`.
async fn publish(s: &impl PackStore, digest: &str, version: &str, at: i64, user: &str) -> Published {
    let a = archive(digest, version);
    s.publish(&a, &publication(digest, version, at), draft("hq:hq", "pack_published", user)).await.unwrap()
}

/// Records an installation with its archive and an audit entry on the dealer's chain.
async fn record(s: &impl PackStore, row: InstallationRow) -> Recorded {
    let a = archive(&row.digest, &row.version);
    let d = draft(&format!("dealer:{}", row.dealer), "pack_installed", &row.installed_by);
    s.record_installation(&a, &row, d).await.unwrap()
}

store_test!(a_version_is_published_once_and_its_archive_kept_once, |t| {
    let s = &t.store;
    let Published::New(entry) = publish(s, "d1", "1.0.0", 20, "hq.admin").await else {
        panic!("the first publication must be new")
    };
    assert_eq!((entry.chain.as_str(), entry.kind.as_str(), entry.chain_seq), ("hq:hq", "pack_published", 1));

    // The same archive again changes nothing; another archive under the same version is refused.
    assert!(matches!(publish(s, "d1", "1.0.0", 30, "x").await, Published::Again(p) if p.published_at == 20));
    assert!(matches!(publish(s, "d2", "1.0.0", 30, "x").await, Published::Taken(p) if p.digest == "d1"));
    assert_eq!(s.audit_chain("hq:hq").await.unwrap().len(), 1);
    assert_eq!(s.archive("d2").await.unwrap(), None, "a refused archive is not kept");

    assert!(matches!(publish(s, "d3", "1.1.0", 40, "y").await, Published::New(_)));
    let versions: Vec<String> = s.publications(Some("std")).await.unwrap().into_iter().map(|p| p.version).collect();
    assert_eq!(versions, ["1.0.0", "1.1.0"]);
    assert!(s.publications(Some("other")).await.unwrap().is_empty());
    assert_eq!(s.publication("std", "1.1.0").await.unwrap().map(|p| p.digest).as_deref(), Some("d3"));
    assert_eq!(s.publication("std", "9.9.9").await.unwrap(), None);
    assert_eq!(s.archive("d1").await.unwrap(), Some(archive("d1", "1.0.0")));
    verify_chain(&s.audit_chain("hq:hq").await.unwrap()).unwrap();
});

store_test!(installations_keep_their_history_and_refuse_a_stale_replacement, |t| {
    let s = &t.store;
    let Recorded::New(first) = record(s, installation("da", "d1", "1.0.0", 0, None)).await else {
        panic!("the first installation must be recorded")
    };
    assert!(first.seq > 0);
    let chain = s.audit_chain("dealer:da").await.unwrap();
    assert_eq!(
        chain.iter().map(|e| (e.kind.as_str(), e.at)).collect::<Vec<_>>(),
        [("pack_installed", first.installed_at)]
    );
    assert_eq!(s.archive("d1").await.unwrap(), Some(archive("d1", "1.0.0")), "an installed archive is kept");

    // Another installation made from the state before `first` is refused, and writes nothing.
    assert_eq!(record(s, installation("da", "d9", "2.0.0", 0, None)).await, Recorded::Stale);
    assert_eq!(s.archive("d9").await.unwrap(), None);
    assert_eq!(s.audit_chain("dealer:da").await.unwrap().len(), 1);

    let overlay = "overlay: da\n";
    let Recorded::New(second) = record(s, installation("da", "d1", "1.0.0", first.seq, Some(overlay))).await else {
        panic!("the replacement must be recorded")
    };
    assert!(matches!(record(s, installation("db", "d1", "1.0.0", 0, None)).await, Recorded::New(..)));

    assert_eq!(s.installation("da", "std").await.unwrap().as_ref(), Some(&*second));
    assert_eq!(s.installation("da", "other").await.unwrap(), None);
    let history = s.installation_history("da", "std").await.unwrap();
    assert_eq!(history.iter().map(|r| r.overlay.as_deref()).collect::<Vec<_>>(), [None, Some(overlay)]);
    let current = s.installations(None, None).await.unwrap();
    let dealers: Vec<(&str, bool)> = current.iter().map(|r| (r.dealer.as_str(), r.seq == second.seq)).collect();
    assert_eq!(dealers, [("da", true), ("db", false)]);
    assert_eq!(s.installations(Some("db"), Some("std")).await.unwrap().len(), 1);
    assert!(s.installations(Some("da"), Some("other")).await.unwrap().is_empty());
    let chain = s.audit_chain("dealer:da").await.unwrap();
    assert_eq!(chain.len(), 2);
    verify_chain(&chain).unwrap();
});
