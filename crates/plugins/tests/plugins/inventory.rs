//! The inventory plugin: CSV import with line numbers, checks, idempotent reservations.

use std::sync::Arc;

use plugin_api::Action;
use plugins::inventory::{CheckAction, InventoryStore, MemoryInventory, ReserveAction, import_csv, parse_csv};
use serde_json::json;

use super::server::invocation;

const STOCK: &str =
    "part_no,description,on_hand,location\nP-100,Brake pad,4,A-01\n\"P-200\",\"Oil filter, 5W-30\",1,B-02\n";

#[test]
fn a_broken_csv_is_refused_with_every_problem_and_its_line() {
    let text =
        "part_no,description,on_hand,location\nP-1,Pad,2,A\nP-2,Disc,-1,A\n,Nothing,1,A\nP-1,Again,1,A\nP-3,Short\n";
    let err = parse_csv(text).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 3: on_hand is `-1`; it must be a whole number of 0 or more\n\
         line 4: the part number is empty\n\
         line 5: the part `P-1` is already on line 2\n\
         line 6: the line has 2 field(s); it must have 4"
    );
    let header = parse_csv("part,desc,qty\nP-1,x,1\n").unwrap_err();
    assert_eq!(
        header.to_string(),
        "line 1: the header is `part,desc,qty`; it must be `part_no,description,on_hand,location`"
    );
}

#[tokio::test]
async fn check_tells_whether_the_quantity_is_on_hand() {
    let store = Arc::new(MemoryInventory::new());
    assert_eq!(import_csv(store.as_ref(), "d1", STOCK).await.unwrap(), 2);
    assert_eq!(store.part("d1", "P-200").await.unwrap().unwrap().description, "Oil filter, 5W-30");
    let check = CheckAction::new(store);
    let ask = |part: &str, quantity: u64| check.invoke(invocation(json!({ "part_no": part, "quantity": quantity })));
    assert_eq!(ask("P-100", 4).await.unwrap(), json!({ "available": true, "on_hand": 4 }));
    assert_eq!(ask("P-100", 5).await.unwrap(), json!({ "available": false, "on_hand": 4 }));
    assert_eq!(ask("P-999", 1).await.unwrap(), json!({ "available": false, "on_hand": 0 }));
}

#[tokio::test]
async fn a_reservation_delivered_twice_takes_the_parts_once() {
    let store = Arc::new(MemoryInventory::new());
    import_csv(store.as_ref(), "d1", STOCK).await.unwrap();
    let reserve = ReserveAction::new(store.clone());
    let input = json!({ "part_no": "P-100", "quantity": 3, "reference": "RO-1" });
    let first = reserve.invoke(invocation(input.clone())).await.unwrap();
    let again = reserve.invoke(invocation(input.clone())).await.unwrap();
    assert_eq!(first, json!({ "reserved": true, "on_hand": 1 }));
    assert_eq!(again, first, "the same idempotency key gives the first answer");
    assert_eq!(store.part("d1", "P-100").await.unwrap().unwrap().on_hand, 1);

    let mut next_try = invocation(input);
    next_try.idempotency_key = "i1-j1#2".into();
    assert_eq!(reserve.invoke(next_try).await.unwrap(), json!({ "reserved": false, "on_hand": 1 }));
}
