//! Tables of scripts and what they must give: values, compile errors, limits and runtime errors.

use script::Limits;

use super::harness::{Mode::*, check};

#[test]
fn guards_read_declared_variables() {
    check(
        Limits::default(),
        &[
            (Bool, "quotation.total > 1000 && parts_available", "true"),
            (Bool, "quotation.total > 2000 || !parts_available", "false"),
            (Bool, "mileage >= 40000 && reception.vin.starts_with(\"LVS\")", "true"),
            (Bool, "quotation.items[0].qty * quotation.items[0].price > 600.0", "true"),
            (Bool, "quotation.items.len() == 2", "true"),
            (Json, "let q = quotation; q.items.len()", "2"),
            (Json, "extra.channel", "\"phone\""),
            // An open record accepts any field; a key that is absent reads as nothing.
            (Json, "extra.vip", "true"),
            (Json, "extra.not_there", "null"),
            (Json, "anything.x", "[1,2]"),
            // A `let` that shadows a declared variable is the script's own value.
            (Json, "let reception = #{ vn: 1 }; reception.vn", "1"),
            (Json, "let over = |limit| mileage > limit; over.call(5)", "true"),
            (Json, "fn double(x) { x * 2 } double(mileage)", "84000"),
        ],
    );
}

#[test]
fn unset_variables_read_as_nothing() {
    check(
        Limits::default(),
        &[
            (Bool, "note == \"a\"", "false"),
            (Bool, "note != \"a\"", "true"),
            (Json, "note", "null"),
            (Bool, "is_set(note)", "false"),
            (Bool, "is_set(reception.vin)", "true"),
            (Bool, "is_set(\"\")", "false"),
            (Json, "default(note, \"none\")", "\"none\""),
            (Json, "default(mileage, 0)", "42000"),
            (Json, "missing_obj?.total", "null"),
            (
                Json,
                "missing_obj.total",
                "runtime at 1:13 — `.total` was read from something that has no value; \
                 check it with `is_set(...)` first, or write `?.total` to get nothing instead",
            ),
            // A string where the shape wants a timestamp stays a string.
            (Json, "type_of(bad_time)", "\"string\""),
            (Json, "type_of(promised_at)", "\"Timestamp\""),
        ],
    );
}

#[test]
fn compile_errors_point_into_the_script() {
    check(
        Limits::default(),
        &[
            (
                Bool,
                "quotation.total > 1000 && parts_availble",
                "compile UndeclaredVariable(parts_availble) at 1:27 — `parts_availble` is not a variable this \
                 script can read; did you mean `parts_available`?",
            ),
            (
                Bool,
                "quotation.total > 1 && xyz",
                "compile UndeclaredVariable(xyz) at 1:24 — `xyz` is not a variable this script can read; it can \
                 read anything, bad_time, estimate, extra, mileage, missing_obj, note, parts_available, promised_at, \
                 quotation, reception, tags, now",
            ),
            (Bool, "let a = 1;\nb > a", "compile UndeclaredVariable(b) at 2:1"),
            (
                Bool,
                "reception.vn == \"x\"",
                "compile UnknownField(reception.vn; known: arrived_at, plate_no, vin) at 1:11 — \
                 `reception.vn` is not a field of `reception`; did you mean `vin`? known fields: arrived_at, plate_no, \
                 vin",
            ),
            (
                Bool,
                "reception.plate == \"x\"",
                "compile UnknownField(reception.plate; known: arrived_at, plate_no, vin) at 1:11 — \
                 `reception.plate` is not a field of `reception`; did you mean `plate_no`? known fields: \
                 arrived_at, plate_no, vin",
            ),
            (
                Json,
                "quotation.items[1].prize",
                "compile UnknownField(quotation.items[..].prize; known: part, price, qty) at 1:20",
            ),
            (Json, "quotation.items[0].price.len()", "runtime at 1:26"),
            (
                Json,
                "is_set(reception?.vn)",
                "compile UnknownField(reception.vn; known: arrived_at, plate_no, vin) at 1:19",
            ),
            (Bool, "quotation.total >", "compile Syntax at 1:18"),
            (Bool, "if parts_available { 1 ", "compile Syntax at 1:24"),
            (
                Json,
                "eval(\"1 + 1\")",
                "compile Forbidden(eval) at 1:1 — `eval` is not allowed in process scripts: a script cannot run \
                 other scripts",
            ),
            (Json, "import \"x\" as y; 1", "compile Forbidden(import) at 1:1"),
            (
                Json,
                "let m = #{}; m[\"k\"] = 1; m",
                "compile Forbidden([...] =) at 1:15 — changing an item with `[...] =` is not allowed in process \
                 scripts, because it could grow a list or record past the limits unnoticed; for a record write \
                 `m.set(key, value)`, for a list build a new one (for example with `map`)",
            ),
            (Json, "let a = [1]; a[0] += 1; a", "compile Forbidden([...] =) at 1:15"),
            (Json, "let m = #{ a: [1] }; m.a[0] = 2; m", "compile Forbidden([...] =) at 1:25"),
            (Json, "fn f(m) { m[\"k\"] = 1; m } f(#{})", "compile Forbidden([...] =) at 1:12"),
            (Json, "let m = #{}; m.set(\"k\", 1); m.k = 2; m", r#"{"k":2}"#),
            (
                Json,
                "fn total() { quotation.total } total()",
                "compile UndeclaredVariable(quotation) at 1:14 — `quotation` cannot be read inside function \
                 `total`: functions only see their own parameters; pass `quotation` as an argument",
            ),
            (Json, "fn later() { now } later()", "compile UndeclaredVariable(now) at 1:14"),
            (Json, "fn total(quotation) { quotation.total } total(quotation)", "1500.0"),
        ],
    );
}

#[test]
fn size_of_the_script_is_limited_at_compile_time() {
    let long = format!("{}1", "1 + ".repeat(5_000));
    let deep = format!("{}1{}", "(".repeat(100), ")".repeat(100));
    let long_text = format!("\"{}\"", "x".repeat(200));
    let small = Limits { max_source_len: 1_000_000, max_string_len: 100, ..Limits::default() };
    check(
        Limits::default(),
        &[
            (Json, &long, "compile TooLong at 1:1 — the script is 20001 bytes long; the limit is 16384 bytes"),
            (
                Json,
                &deep,
                "compile TooLong at 1:32 — the script nests expressions more than 64 levels deep; split it into smaller steps",
            ),
        ],
    );
    check(small, &[(Json, &long_text, "compile TooLong at 1:1")]);
}

#[test]
fn limits_stop_runaway_scripts() {
    check(
        Limits::default(),
        &[
            (
                Bool,
                "loop {}",
                "limit Operations(50000) at 1:6 — the script was stopped after 50000 operations; \
                 does it loop forever?",
            ),
            (Bool, "let n = 0; while true { n += 1 } n > 0", "limit Operations(50000) at 1:25"),
            (
                Json,
                "let s = \"x\"; loop { s += s }",
                "limit StringSize(65536) at 1:23 — the script was stopped because a text grew longer than 65536 bytes",
            ),
            (Json, "let s = \"x\"; while s.len() < 10_000_000 { s += s } s.len()", "limit StringSize(65536) at 1:45"),
            (Json, "\"x\".pad(10_000_000, \"y\")", "limit StringSize(65536) at 1:5"),
            (Json, "let a = [1]; loop { a += a }", "limit ArraySize(10000) at 1:23"),
            (
                Json,
                "fn f(n) { f(n + 1) } f(0)",
                "limit CallDepth(16) at 1:22 — the script was stopped because its functions called each other more \
                 than 16 levels deep; does a function call itself without end?",
            ),
        ],
    );
    let small = Limits { max_array_len: 100, max_map_len: 100, ..Limits::default() };
    check(
        small,
        &[
            (Json, "let a = []; for i in 0..1000 { a.push(i) } a.len()", "limit ArraySize(100) at 1:34"),
            (Json, "let a = []; for i in 0..100 { a.push(i) } a.len()", "100"),
            (
                Json,
                "let m = #{}; for i in 0..1000 { m.set(`k${i}`, i) } m.len()",
                "limit MapSize(100) at 1:35 — the script was stopped because its records grew beyond 100 fields",
            ),
            (Json, "let m = #{}; for i in 0..50 { m.set(`k${i}`, [i]) } m.len()", "50"),
            (Json, "let m = #{}; m += #{ a: [1, 2] }; for i in 0..200 { m += #{ b: i } } m", r#"{"a":[1,2],"b":199}"#),
            (Json, "let m = #{}; for i in 0..200 { m.set(`k${i}`, i) } m.len()", "limit MapSize(100) at 1:34"),
        ],
    );
}

#[test]
fn results_must_have_the_kind_the_caller_needs() {
    check(
        Limits::default(),
        &[
            (
                Bool,
                "mileage + 1",
                "wrong type — the script should give true or false, but it gave the whole number 42001",
            ),
            (Bool, "note", "wrong type — the script should give true or false, but it gave nothing (no value)"),
            (Bool, "\"true\"", "wrong type"),
            (Timestamp, "mileage", "wrong type"),
            (Timestamp, "\"tomorrow\"", "wrong type"),
            (Duration, "\"2 weeks-ish\"", "wrong type"),
            (Str, "mileage", "wrong type — the script should give a text, but it gave the whole number 42000"),
            (Json, "0.0 / 0.0", "wrong type — the script should give a finite number, but it gave the number NaN"),
            (Json, "Fn(\"abs\")", "wrong type"),
            (Json, "[1, Fn(\"abs\")]", "wrong type"),
        ],
    );
}

#[test]
fn runtime_errors_are_worded_for_process_owners() {
    check(
        Limits::default(),
        &[
            (Json, "throw \"parts are missing\"", "runtime at 1:1 — parts are missing"),
            (Json, "1 / 0", "runtime at 1:3 — a calculation failed: Division by zero: 1 / 0"),
            (Json, "tags[5]", "runtime at 1:6 — there is no item 5 in a list of 2 item(s) (the first item is 0)"),
            (
                Json,
                "frobnicate(mileage, \"x\")",
                "runtime at 1:1 — there is no function `frobnicate` that accepts (a whole number, a text); \
                 check the name and the values passed",
            ),
            (
                Json,
                "fn f(x) { x / 0 } f(1)",
                "runtime at 1:13 — a calculation failed: Division by zero: 1 / 0 (in function `f`)",
            ),
            // Rhai compares values of different kinds as unequal instead of failing.
            (Json, "mileage > \"a lot\"", "false"),
            (Json, "note < 3", "false"),
        ],
    );
}

#[test]
fn nothing_reaches_outside_the_sandbox() {
    check(
        Limits::default(),
        &[
            // `eval` through a function pointer is not a function either.
            (
                Json,
                "Fn(\"eval\").call(\"1\")",
                "runtime at 1:4 — `eval` is not allowed in process scripts: a script cannot run other scripts",
            ),
            (Json, "sleep(10)", "runtime at 1:1"),
            (Json, "timestamp()", "runtime at 1:1"),
            (Json, "exit(1)", "runtime at 1:1"),
            (Json, "parse_json(\"{}\")", "runtime at 1:1"),
            (Json, "get_fn_metadata_list()", "runtime at 1:1"),
            (Json, "print(\"hello\"); debug(\"hello\"); 1", "1"),
        ],
    );
}

#[test]
fn time_helpers_compute_with_timestamps_and_durations() {
    check(
        Limits::default(),
        &[
            (Json, "now", "\"2026-03-02T01:00:00Z\""),
            (Timestamp, "now + hours(2)", "2026-03-02T03:00:00Z"),
            (Timestamp, "hours(2) + now", "2026-03-02T03:00:00Z"),
            (Timestamp, "promised_at - minutes(30)", "2026-03-02T08:30:00Z"),
            (Timestamp, "\"2026-03-02T09:00:00+08:00\"", "2026-03-02T01:00:00Z"),
            (Timestamp, "ts(\"2026-03-02T09:00:00+08:00\") + duration(\"P1D\")", "2026-03-03T01:00:00Z"),
            (Timestamp, "let t = now; t += days(1); t", "2026-03-03T01:00:00Z"),
            (Duration, "promised_at - reception.arrived_at", "PT8H30M"),
            (Duration, "reception.arrived_at - promised_at", "-PT8H30M"),
            (Duration, "\"PT15M\"", "PT15M"),
            (Duration, "duration(\"P1D\") + minutes(30)", "PT24H30M"),
            (Duration, "estimate * 2", "PT5H"),
            (Duration, "3 * minutes(20) - seconds(1)", "PT59M59S"),
            (Duration, "-hours(1)", "-PT1H"),
            (Duration, "hours(1.5)", "PT1H30M"),
            (Duration, "duration(\"P1W\")", "PT168H"),
            (Json, "estimate.hours", "2.5"),
            (Json, "minutes(90).minutes", "90.0"),
            (Json, "#{ due: promised_at, wait: estimate }", r#"{"due":"2026-03-02T09:00:00Z","wait":"PT2H30M"}"#),
            (Bool, "promised_at > now && estimate < hours(3)", "true"),
            (Bool, "promised_at - now > hours(8)", "false"),
            (Bool, "ts(\"2026-03-02T09:00:00+08:00\") == now", "true"),
            (Bool, "minutes(60) == hours(1) && minutes(60) != hours(2) && hours(1) <= hours(1)", "true"),
            (Json, "hour_of_day(now, \"Asia/Shanghai\")", "9"),
            (Json, "hour_of_day(\"2026-03-02T23:30:00Z\", \"Asia/Shanghai\")", "7"),
            (Json, "weekday(now, \"Asia/Shanghai\")", "1"),
            (Json, "weekday(now, \"America/New_York\")", "7"),
            (Json, "date(now, \"America/New_York\")", "\"2026-03-01\""),
            (Json, "`due ${promised_at}`", "\"due 2026-03-02T09:00:00Z\""),
            (Json, "to_string(estimate)", "\"PT2H30M\""),
            (
                Json,
                "date(now, \"Mars/Olympus\")",
                "runtime at 1:1 — \"Mars/Olympus\" is not a known time zone; use a name like Asia/Shanghai",
            ),
            (
                Json,
                "duration(\"P1M\")",
                "runtime at 1:1 — \"P1M\" uses months or years, which have no fixed length; use days instead",
            ),
            (
                Json,
                "ts(\"soon\")",
                "runtime at 1:1 — \"soon\" is not a timestamp; write it like 2026-03-02T09:00:00+08:00",
            ),
            (Json, "ts(bad_time)", "runtime at 1:1"),
            (Json, "now + days(10_000_000)", "runtime at 1:5"),
            (Json, "estimate * 10_000_000_000", "runtime at 1:10"),
        ],
    );
}

#[test]
fn value_helpers_and_membership() {
    check(
        Limits::default(),
        &[
            (Bool, "\"A\" in tags", "true"),
            (Bool, "\"B\" in tags", "false"),
            (Bool, "\"vin\" in reception", "true"),
            (Bool, "\"channel\" in extra && !(\"vn\" in extra)", "true"),
            (Bool, "\"A123\" in reception.plate_no", "true"),
            (Bool, "2 in [1, 2, 3]", "true"),
            (Bool, "now in [now, promised_at]", "true"),
            (Json, "len(tags) + len(\"abc\") + len(reception)", "8"),
            (Bool, "is_empty([]) && !is_empty(tags) && is_empty(\"\")", "true"),
            (Json, "sum([1, 2, 3])", "6"),
            (Json, "sum([1, 2.5])", "3.5"),
            (Json, "sum([])", "0"),
            (Json, "sum(quotation.items.map(|i| i.price * i.qty))", "700.0"),
            (Json, "sum([1, \"2\"])", "runtime at 1:1 — sum() adds numbers only, but item 1 is the text \"2\""),
            (Json, "[min(1, 2), max(1, 2), min(1, 2.5), max(3, 2.5)]", "[1,2,1.0,3.0]"),
            (
                Json,
                "[abs(-3), abs(-2.5), round(2.5), round(2), floor(2.7), floor(2), ceil(2.1), ceil(2)]",
                "[3,2.5,3.0,2,2.0,2,3.0,2]",
            ),
            (Json, "[lower(\"AbC\"), upper(\"AbC\"), trim(\"  x \"), \"  y \".trim()]", r#"["abc","ABC","x","y"]"#),
            (Json, "let s = \" z \"; s.trim(); s", "\" z \""),
            (Bool, "starts_with(\"abc\", \"ab\") && ends_with(\"abc\", \"bc\")", "true"),
            (
                Json,
                "[to_string(1), to_string(2.5), to_string(true), mileage.to_string()]",
                r#"["1","2.5","true","42000"]"#,
            ),
            (Json, "1 + 2.5", "3.5"),
            (Bool, "quotation.total > 1000 && 3 < 3.5 && 2.0 == 2", "true"),
            (Json, "mileage / 1000", "42"),
            (Json, "quotation.total / 1000", "1.5"),
            (Json, "\"RO-\" + reception.plate_no", "\"RO-沪A12345\""),
            (Str, "\"RO-\" + reception.plate_no", "\"RO-沪A12345\""),
            (Str, "reception.vin[0]", "\"L\""),
            (Json, "#{ b: [1, 2.5, true, ()], a: \"x\" }", r#"{"a":"x","b":[1,2.5,true,null]}"#),
            (Json, "if parts_available { \"go\" } else { \"wait\" }", "\"go\""),
            (Json, "switch mileage { 42000 => \"exact\", _ => \"other\" }", "\"exact\""),
            (Json, "let n = 0; for t in tags { n += t.len() } n", "9"),
        ],
    );
}

#[test]
fn deeply_nested_values_are_refused_not_crashed() {
    check(
        Limits::default(),
        &[
            (
                Json,
                "let a = []; loop { a = [a] }",
                "limit ExprDepth(64) at 1:25 — the script was stopped because its lists or records are nested more \
                 than 64 levels deep",
            ),
            (Json, "let m = #{}; loop { m = #{ m: m } }", "limit ExprDepth(64) at 1:31"),
            // Each push doubles the list, so its size stops it first.
            (Json, "let a = []; loop { a.push(a) }", "limit ArraySize(10000) at 1:22"),
            (Json, "let m = #{}; loop { m.set(\"m\", m) }", "limit ExprDepth(64) at 1:32"),
            (Json, "fn wrap(x) { [x] } let a = []; loop { a = wrap(a) }", "limit ExprDepth(64) at 1:48"),
            (Json, "let a = []; for i in 0..60 { a = [a] } len(a)", "1"),
        ],
    );
    // A shallower limit applies the same way.
    let shallow = Limits { max_expr_depth: 8, ..Limits::default() };
    check(
        shallow,
        &[
            (Json, "let a = []; for i in 0..7 { a = [a] } a", "[[[[[[[[]]]]]]]]"),
            (Json, "let a = []; for i in 0..9 { a = [a] } a", "limit ExprDepth(8) at 1:34"),
        ],
    );
}
