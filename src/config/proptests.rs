//! Property tests of the config parser: every key of a full configuration
//! given random values of every TOML type, keys removed and added, several
//! changes at once, random documents of the keys it knows, and random
//! text. The parser must never panic; when it
//! refuses, every error names the file and says something, and a value of
//! the wrong type gets an error at its own key.

use std::path::Path;

use proptest::prelude::*;
use toml_edit::{Array, DocumentMut, InlineTable, Item, TableLike, Value};

use super::{Config, ConfigErrors};

const FILE: &str = "/etc/custos/custos.toml";

/// Every key the parser reads, each set to a valid value.
const FULL: &str = r#"timezone = "Europe/Vilnius"
secrets = "secrets.toml"

[daemon]
state_dir = "/var/lib/custos"
socket = "/run/custos/api.sock"
stall_timeout = "10s"
retry_max = "60s"
shutdown_timeout = "10s"
max_retention_days = 30

[controller]
name = "Mokykla"
registration_code = "190000000"
address = "Santarvės g. 1, Klaipėda"
phone = "+370 46 000000"
email = "rastine@santarve.example"
website = "https://santarve.example"
dpo = { name = "DAP", email = "dap@santarve.example", phone = "+370 46 000001" }

[[storage]]
id = "main"
path = "/srv/custos/recordings"
create = true
min_free = "1 GiB"
budget = "100 GiB"
destruction = "unlink"

[evidence]
path = "/srv/custos/evidence"
create = true
review_days_default = 30
review_days_max = 90

[retention]
interval = "10min"

[api]
max_body_bytes = 65536
metrics_listen = "127.0.0.1:9100"

[audit]
retention_years = 3

[[zone]]
id = "school-indoor"
name = "Mokyklos patalpos"
storage = "main"
retention_days = 10
purposes = ["Saugumas"]
legal_basis = "BDAR 6 str. 1 d. e p."
processor = "Mokykla"
audio = "allowed"

[zone.controller]
name = "Kitas valdytojas"
registration_code = "190000001"
address = "Kita g. 2, Klaipėda"
email = "kitas@example.org"
dpo = { email = "dap@example.org" }

[[camera]]
id = "cam1"
name = "Fojė"
zone = "school-indoor"
url = "rtsp://127.0.0.1:8554/cam1"
credentials = "cam1"
transport = "tcp"
rtsp_client = "retina"
audio = true
segment = "60s"
area = "Pirmo aukšto fojė"
enabled = true

[[access.grant]]
user = "anna"
roles = ["viewer"]
zones = ["school-indoor"]

[[access.grant]]
group = "staff"
roles = ["operator", "dpo"]

[[access.grant]]
user = 1001
roles = ["admin"]
"#;

/// What a key holds, for telling a wrong type from a wrong value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
    Bool,
    StrArray,
    Table,
    /// `user`: a name or a uid.
    StrOrInt,
}

/// A key of [`FULL`] as a path of table keys and array indices.
#[derive(Debug, Clone, Copy)]
enum Step {
    Key(&'static str),
    At(usize),
}

use Kind::*;
use Step::{At, Key};

const KEYS: &[(&[Step], Kind)] = &[
    (&[Key("timezone")], Str),
    (&[Key("secrets")], Str),
    (&[Key("daemon")], Table),
    (&[Key("daemon"), Key("state_dir")], Str),
    (&[Key("daemon"), Key("socket")], Str),
    (&[Key("daemon"), Key("stall_timeout")], Str),
    (&[Key("daemon"), Key("retry_max")], Str),
    (&[Key("daemon"), Key("shutdown_timeout")], Str),
    (&[Key("daemon"), Key("max_retention_days")], Int),
    (&[Key("controller")], Table),
    (&[Key("controller"), Key("name")], Str),
    (&[Key("controller"), Key("registration_code")], Str),
    (&[Key("controller"), Key("address")], Str),
    (&[Key("controller"), Key("phone")], Str),
    (&[Key("controller"), Key("email")], Str),
    (&[Key("controller"), Key("website")], Str),
    (&[Key("controller"), Key("dpo")], Table),
    (&[Key("controller"), Key("dpo"), Key("name")], Str),
    (&[Key("controller"), Key("dpo"), Key("email")], Str),
    (&[Key("controller"), Key("dpo"), Key("phone")], Str),
    (&[Key("storage"), At(0), Key("id")], Str),
    (&[Key("storage"), At(0), Key("path")], Str),
    (&[Key("storage"), At(0), Key("create")], Bool),
    (&[Key("storage"), At(0), Key("min_free")], Str),
    (&[Key("storage"), At(0), Key("budget")], Str),
    (&[Key("storage"), At(0), Key("destruction")], Str),
    (&[Key("evidence")], Table),
    (&[Key("evidence"), Key("path")], Str),
    (&[Key("evidence"), Key("create")], Bool),
    (&[Key("evidence"), Key("review_days_default")], Int),
    (&[Key("evidence"), Key("review_days_max")], Int),
    (&[Key("retention"), Key("interval")], Str),
    (&[Key("api"), Key("max_body_bytes")], Int),
    (&[Key("api"), Key("metrics_listen")], Str),
    (&[Key("audit"), Key("retention_years")], Int),
    (&[Key("zone"), At(0), Key("id")], Str),
    (&[Key("zone"), At(0), Key("name")], Str),
    (&[Key("zone"), At(0), Key("storage")], Str),
    (&[Key("zone"), At(0), Key("retention_days")], Int),
    (&[Key("zone"), At(0), Key("purposes")], StrArray),
    (&[Key("zone"), At(0), Key("legal_basis")], Str),
    (&[Key("zone"), At(0), Key("processor")], Str),
    (&[Key("zone"), At(0), Key("audio")], Str),
    (&[Key("zone"), At(0), Key("controller")], Table),
    (&[Key("zone"), At(0), Key("controller"), Key("email")], Str),
    (&[Key("camera"), At(0), Key("id")], Str),
    (&[Key("camera"), At(0), Key("name")], Str),
    (&[Key("camera"), At(0), Key("zone")], Str),
    (&[Key("camera"), At(0), Key("url")], Str),
    (&[Key("camera"), At(0), Key("credentials")], Str),
    (&[Key("camera"), At(0), Key("transport")], Str),
    (&[Key("camera"), At(0), Key("rtsp_client")], Str),
    (&[Key("camera"), At(0), Key("audio")], Bool),
    (&[Key("camera"), At(0), Key("segment")], Str),
    (&[Key("camera"), At(0), Key("area")], Str),
    (&[Key("camera"), At(0), Key("enabled")], Bool),
    (&[Key("access"), Key("grant"), At(0), Key("user")], StrOrInt),
    (
        &[Key("access"), Key("grant"), At(0), Key("roles")],
        StrArray,
    ),
    (
        &[Key("access"), Key("grant"), At(0), Key("zones")],
        StrArray,
    ),
    (&[Key("access"), Key("grant"), At(1), Key("group")], Str),
];

/// The key path as the parser names it: `camera[0].zone`.
fn key_name(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Key(k) if s.is_empty() => s.push_str(k),
            Key(k) => s.push_str(&format!(".{k}")),
            At(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Strings a parser of durations, sizes, paths, URLs and names may trip on.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" ".to_owned()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("-5s".to_owned()),
        Just("0s".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("99999999999999999999 GiB".to_owned()),
        Just("1e309 TB".to_owned()),
        Just("1.5e300 TiB".to_owned()),
        Just("NaN GiB".to_owned()),
        Just(". GiB".to_owned()),
        Just("1.2.3 MB".to_owned()),
        Just("inf".to_owned()),
        Just("584942417356y".to_owned()),
        Just("18446744073709551615s".to_owned()),
        Just("1ns".to_owned()),
        Just("/".to_owned()),
        Just("..".to_owned()),
        Just("credential:".to_owned()),
        Just("credential:a/b".to_owned()),
        Just("rtsp://".to_owned()),
        Just("rtsp://[::1".to_owned()),
        Just("rtsp://u:p@h:99999/x".to_owned()),
        Just("rtsps://h/x?y#z".to_owned()),
        Just("\0".to_owned()),
        Just("a\nb".to_owned()),
        Just("x".repeat(10_000)),
        Just("127.0.0.1:99999".to_owned()),
        Just("[::1]:0".to_owned()),
        Just("ünïcödé".to_owned()),
        "[0-9]{1,25} ?[a-zA-Z]{0,4}",
        "[ -~]{0,40}",
        "\\PC{0,40}",
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => tricky_string().prop_map(Value::from),
        2 => prop_oneof![
            Just(0i64),
            Just(-1),
            Just(1),
            Just(i64::from(u32::MAX)),
            Just(i64::from(u32::MAX) + 1),
            Just(i64::MIN),
            Just(i64::MAX),
            any::<i64>(),
        ]
        .prop_map(Value::from),
        1 => any::<f64>().prop_map(Value::from),
        1 => prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(-0.0)].prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::from),
        1 => Just("1979-05-27T07:32:00Z".parse::<toml_edit::Datetime>().unwrap()).prop_map(Value::from),
    ]
}

/// Any TOML value, up to two levels of arrays and inline tables.
fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|v| {
                let mut a = Array::new();
                for x in v {
                    a.push(x);
                }
                Value::Array(a)
            }),
            proptest::collection::vec(("[a-z_]{1,8}", inner), 0..3).prop_map(|kv| {
                let mut t = InlineTable::new();
                for (k, v) in kv {
                    t.insert(&k, v);
                }
                Value::InlineTable(t)
            }),
        ]
    })
}

fn kind_of(v: &Value) -> Option<Kind> {
    match v {
        Value::String(_) => Some(Str),
        Value::Integer(_) => Some(Int),
        Value::Boolean(_) => Some(Bool),
        Value::Array(a) if a.iter().all(Value::is_str) => Some(StrArray),
        Value::InlineTable(_) => Some(Table),
        _ => None,
    }
}

fn fits(expected: Kind, v: &Value) -> bool {
    match (expected, kind_of(v)) {
        (StrOrInt, Some(Str | Int)) => true,
        (e, Some(k)) => e == k,
        (_, None) => false,
    }
}

/// The table at `path` (the root for an empty one), if it is there.
fn table_mut<'d>(doc: &'d mut DocumentMut, path: &[Step]) -> Option<&'d mut dyn TableLike> {
    let mut table: &mut dyn TableLike = doc.as_table_mut();
    let mut i = 0;
    while i < path.len() {
        let Key(k) = path[i] else { return None };
        let item = table.get_mut(k)?;
        if let Some(At(n)) = path.get(i + 1) {
            table = item.as_array_of_tables_mut()?.get_mut(*n)?;
            i += 2;
        } else {
            table = item.as_table_like_mut()?;
            i += 1;
        }
    }
    Some(table)
}

/// The item at `path`, if it is there.
fn item_mut<'d>(doc: &'d mut DocumentMut, path: &[Step]) -> Option<&'d mut Item> {
    let (Key(last), parent) = path.split_last()? else {
        return None;
    };
    table_mut(doc, parent)?.get_mut(last)
}

/// A change to [`FULL`].
#[derive(Debug, Clone)]
enum Change {
    Set(usize, Value),
    Remove(usize),
    /// An unknown key in the table that holds key n.
    Add(usize, String, Value),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        6 => (0..KEYS.len(), value()).prop_map(|(k, v)| Change::Set(k, v)),
        2 => (0..KEYS.len()).prop_map(Change::Remove),
        1 => (0..KEYS.len(), "[a-z_]{1,10}", value()).prop_map(|(k, n, v)| Change::Add(k, n, v)),
    ]
}

fn apply(doc: &mut DocumentMut, c: &Change) {
    match c {
        Change::Set(k, v) => {
            if let Some(item) = item_mut(doc, KEYS[*k].0) {
                *item = Item::Value(v.clone());
            }
        }
        Change::Remove(k) => {
            let path = KEYS[*k].0;
            if let (Some(Key(last)), Some(t)) =
                (path.last(), table_mut(doc, &path[..path.len() - 1]))
            {
                t.remove(last);
            }
        }
        Change::Add(k, name, v) => {
            let path = KEYS[*k].0;
            if let Some(t) = table_mut(doc, &path[..path.len() - 1]) {
                t.insert(name, Item::Value(v.clone()));
            }
        }
    }
}

/// Every key name the parser knows, and a few it does not.
fn key_name_strategy() -> impl Strategy<Value = String> {
    let mut names: Vec<&'static str> = KEYS
        .iter()
        .flat_map(|(path, _)| path.iter())
        .filter_map(|s| match s {
            Key(k) => Some(*k),
            At(_) => None,
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    prop_oneof![
        8 => proptest::sample::select(names).prop_map(str::to_owned),
        1 => "[a-z_]{1,8}",
    ]
}

/// A table of up to `n` keys, each a value, a table or an array of tables
/// (up to `depth` levels down).
fn random_table(depth: u32) -> BoxedStrategy<toml_edit::Table> {
    let entry = if depth == 0 {
        (key_name_strategy(), value().prop_map(Item::Value)).boxed()
    } else {
        let sub = random_table(depth - 1);
        (
            key_name_strategy(),
            prop_oneof![
                3 => value().prop_map(Item::Value),
                2 => sub.clone().prop_map(Item::Table),
                1 => proptest::collection::vec(sub, 1..3).prop_map(|ts| {
                    let mut a = toml_edit::ArrayOfTables::new();
                    for t in ts {
                        a.push(t);
                    }
                    Item::ArrayOfTables(a)
                }),
            ],
        )
            .boxed()
    };
    proptest::collection::vec(entry, 0..8)
        .prop_map(|entries| {
            let mut t = toml_edit::Table::new();
            for (k, item) in entries {
                t.insert(&k, item);
            }
            t
        })
        .boxed()
}

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse_str(text, Path::new(FILE))
}

/// Every refusal is a list of errors, each naming the file and saying what.
fn check_errors(errors: &ConfigErrors, text: &str) -> Result<(), TestCaseError> {
    prop_assert!(!errors.is_empty(), "refused without an error:\n{}", text);
    for e in errors.iter() {
        prop_assert_eq!(&e.file, Path::new(FILE));
        prop_assert!(!e.message.trim().is_empty(), "empty message for {}", e.key);
    }
    Ok(())
}

#[test]
fn the_full_config_is_valid() {
    if let Err(e) = parse(FULL) {
        panic!("{e}");
    }
    // Every listed key is there to be changed.
    let mut doc: DocumentMut = FULL.parse().unwrap();
    for (path, _) in KEYS {
        assert!(item_mut(&mut doc, path).is_some(), "{}", key_name(path));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_value_of_any_key_is_taken_or_refused_at_that_key(k in 0..KEYS.len(), v in value()) {
        let (path, kind) = KEYS[k];
        let mut doc: DocumentMut = FULL.parse().unwrap();
        apply(&mut doc, &Change::Set(k, v.clone()));
        let text = doc.to_string();
        match parse(&text) {
            Ok(_) => prop_assert!(fits(kind, &v), "{} = {} accepted", key_name(path), v),
            Err(errors) => {
                check_errors(&errors, &text)?;
                if !fits(kind, &v) {
                    let key = key_name(path);
                    prop_assert!(
                        errors.iter().any(|e| e.key == key
                            || e.key.starts_with(&format!("{key}."))
                            || e.key.starts_with(&format!("{key}["))),
                        "{} = {}: no error at that key:\n{}", key, v, errors
                    );
                }
            }
        }
    }

    #[test]
    fn several_changes_at_once_are_taken_or_refused(
        changes in proptest::collection::vec(change(), 1..6),
    ) {
        let mut doc: DocumentMut = FULL.parse().unwrap();
        for c in &changes {
            apply(&mut doc, c);
        }
        let text = doc.to_string();
        if let Err(errors) = parse(&text) {
            check_errors(&errors, &text)?;
        }
    }

    #[test]
    fn random_documents_of_known_keys_are_taken_or_refused(table in random_table(2)) {
        let mut doc = DocumentMut::new();
        *doc.as_table_mut() = table;
        let text = doc.to_string();
        if let Err(errors) = parse(&text) {
            check_errors(&errors, &text)?;
        }
    }

    #[test]
    fn random_text_is_refused_with_errors(text in "\\PC{0,300}") {
        if let Err(errors) = parse(&text) {
            check_errors(&errors, &text)?;
        }
    }

    #[test]
    fn the_full_config_cut_anywhere_is_taken_or_refused(cut in 0..FULL.len()) {
        let cut = (0..=cut).rev().find(|&i| FULL.is_char_boundary(i)).unwrap();
        if let Err(errors) = parse(&FULL[..cut]) {
            check_errors(&errors, &FULL[..cut])?;
        }
    }
}
