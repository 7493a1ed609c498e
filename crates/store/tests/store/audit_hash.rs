//! The audit hash is a stored format: entries sealed by earlier releases must keep verifying,
//! so these hashes were computed once and must never change.

use serde_json::json;
use store::AuditRow;
use store::audit::{Draft, GENESIS, hash_of, seal};

fn sealed() -> Vec<AuditRow> {
    let first = seal(
        Draft {
            chain: "inst-1".into(),
            actor: json!({ "type": "user", "id": "王芳", "role": "advisor" }),
            kind: "task_completed".into(),
            step: Some("reception".into()),
            entry: json!({
                "revision": 3,
                "diff": { "mileage": { "before": null, "after": 12_345.5 } },
                "form": { "remark": "客户说：\"刹车异响\"\n\ttab", "z": [1, -2, 3.25e-7, true, null], "a": {} },
                "Ä": "sorted by bytes", "B": "upper before lower",
            }),
            definition_hash: Some("ab".repeat(32)),
        },
        1_796_567_144_511,
        0,
        GENESIS,
    );
    let second = seal(
        Draft {
            chain: "inst-1".into(),
            actor: json!({ "type": "timer" }),
            kind: "timer_fired".into(),
            step: None,
            entry: json!([]),
            definition_hash: None,
        },
        1_796_567_144_999,
        first.chain_seq,
        &first.hash,
    );
    vec![first, second]
}

#[test]
fn sealed_entries_hash_as_they_always_did() {
    let rows = sealed();
    let hashes: Vec<&str> = rows.iter().map(|r| r.hash.as_str()).collect();
    assert_eq!(
        hashes,
        [
            "b0148071a645c6e33c96ea18ad110ba9783a818ecc2c2b51dfe9ad5a5235c6ae",
            "7fda16131a3cd4d7d5bcd7157ebc0d24cdefa08fbc1cebb7f8d75733ad4bbcdf"
        ]
    );
    for row in &rows {
        assert_eq!(hash_of(row), row.hash, "the check of entry {} disagrees with its seal", row.chain_seq);
    }
    assert_eq!(
        rows[0].entry,
        r#"{"B":"upper before lower","diff":{"mileage":{"after":12345.5,"before":null}},"form":{"a":{},"remark":"客户说：\"刹车异响\"\n\ttab","z":[1,-2,3.25e-7,true,null]},"revision":3,"Ä":"sorted by bytes"}"#
    );
}

#[test]
fn an_entry_stored_as_text_that_is_not_json_is_hashed_as_text() {
    let mut row = sealed().remove(1);
    row.entry = "not json {".into();
    let as_text = hash_of(&row);
    assert_ne!(as_text, sealed()[1].hash);
    assert_eq!(as_text, "c9b3eee67c7b2c533ea0c197c6d0a406fe2aa168e5d7ac3e7f27dc3bce3f3e36");
}
