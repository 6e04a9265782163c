//! Versioned directories: as-of queries at interval edges, overlaps refused, change sets
//! applied atomically and idempotently, gaps and conflicts detected, diffs between dates and
//! versions, imports from CSV, JSON and XML.

use tereze_reference_data::import::{self, Format, Mapping};
use tereze_reference_data::{
    diff, Applied, ChangeError, ChangeSet, Definition, Difference, Directories, DirectoryError,
    LookupError, Operation, RawEntry, RawValue, Value,
};

fn d(s: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

const RATES: &str = r#"
id = "T.RATES"
name = "Test rates"
owner = "KZ:KGD"
valid_from = "2020-01-01"
[attributes]
rate = "decimal"

[[entry]]
code = "A"
names = { en = "Apples", ru = "Яблоки" }
attributes = { rate = "5" }
national = { KZ = ["a1"] }
valid_to = "2020-12-31"

[[entry]]
code = "A"
names = { en = "Apples", ru = "Яблоки" }
attributes = { rate = "7.5" }
national = { KZ = ["a2"] }
valid_from = "2021-01-01"

[[entry]]
code = "B"
names = { en = "Barley" }
attributes = { rate = "0" }
national = { KZ = ["b"] }
"#;

fn rates() -> Directories {
    let mut dirs = Directories::default();
    dirs.add_toml(RATES).expect("loads");
    dirs
}

fn rate(dirs: &Directories, code: &str, on: &str) -> Result<String, LookupError> {
    dirs.entry("T.RATES", code, d(on))
        .map(|e| e.attributes["rate"].to_string())
}

#[test]
fn as_of_queries_at_the_edges_of_intervals() {
    let dirs = rates();
    assert!(matches!(
        rate(&dirs, "A", "2019-12-31"),
        Err(LookupError::NotValidOn { .. })
    ));
    assert_eq!(rate(&dirs, "A", "2020-01-01").as_deref(), Ok("5"));
    assert_eq!(rate(&dirs, "A", "2020-12-31").as_deref(), Ok("5"));
    assert_eq!(rate(&dirs, "A", "2021-01-01").as_deref(), Ok("7.5"));
    assert_eq!(rate(&dirs, "A", "2099-01-01").as_deref(), Ok("7.5"));
    let e = rate(&dirs, "A", "2019-12-31").expect_err("before");
    assert_eq!(
        e.to_string(),
        "code \"A\" of directory T.RATES is not valid on 2019-12-31 (valid 2020-01-01..2020-12-31, 2021-01-01..)"
    );
    assert!(matches!(
        rate(&dirs, "Z", "2021-01-01"),
        Err(LookupError::UnknownCode { .. })
    ));
    // National codes follow the dates too.
    assert_eq!(
        dirs.on(d("2020-06-01")).union_code("T.RATES", "KZ", "a1"),
        Ok("A")
    );
    assert!(dirs
        .on(d("2021-06-01"))
        .union_code("T.RATES", "KZ", "a1")
        .is_err());
    assert_eq!(
        dirs.on(d("2021-06-01")).national_code("T.RATES", "KZ", "A"),
        Ok("a2")
    );
    // Lists, search and history.
    let codes = |v: Vec<&tereze_reference_data::Entry>| {
        v.iter().map(|e| e.code.clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        codes(dirs.list("T.RATES", d("2019-06-01")).expect("list")),
        Vec::<String>::new()
    );
    assert_eq!(
        codes(dirs.list("T.RATES", d("2020-06-01")).expect("list")),
        ["A", "B"]
    );
    assert_eq!(
        codes(
            dirs.search("T.RATES", "ябл", d("2020-06-01"))
                .expect("search")
        ),
        ["A"]
    );
    assert_eq!(
        codes(
            dirs.search("T.RATES", "B", d("2020-06-01"))
                .expect("search")
        ),
        ["B"]
    );
    assert_eq!(dirs.history("T.RATES", "A").expect("history").len(), 2);
    assert!(dirs.valid("T.RATES", "B", d("2020-01-01")));
    assert!(!dirs.valid("T.RATES", "B", d("2019-12-31")));
}

#[test]
fn overlapping_or_inverted_intervals_are_refused_on_import() {
    let mut dirs = Directories::default();
    let overlapping = RATES.replace("valid_to = \"2020-12-31\"", "valid_to = \"2021-01-01\"");
    let e = dirs.add_toml(&overlapping).expect_err("overlap");
    assert_eq!(
        e,
        DirectoryError::Overlap {
            directory: "T.RATES".into(),
            code: "A".into(),
            first: "2020-01-01..2021-01-01".into(),
            second: "2021-01-01..".into()
        }
    );
    let inverted = RATES.replace("valid_to = \"2020-12-31\"", "valid_to = \"2019-12-31\"");
    let e = dirs.add_toml(&inverted).expect_err("to < from");
    assert!(e.to_string().contains("before valid_from"), "{e}");
    // One national code for two codes on the same day is ambiguous; on different days it is
    // not.
    let ambiguous = RATES.replace(
        "national = { KZ = [\"b\"] }",
        "national = { KZ = [\"a2\"] }",
    );
    assert!(matches!(
        dirs.add_toml(&ambiguous),
        Err(DirectoryError::AmbiguousNational { .. })
    ));
    let later = RATES.replace(
        "national = { KZ = [\"b\"] }",
        "national = { KZ = [\"a1\"] }\nvalid_from = \"2021-01-01\"",
    );
    dirs.add_toml(&later)
        .expect("a1 is A's until 2020 and B's from 2021");
    assert_eq!(
        dirs.on(d("2021-02-01")).union_code("T.RATES", "KZ", "a1"),
        Ok("B")
    );
    assert_eq!(
        dirs.on(d("2020-02-01")).union_code("T.RATES", "KZ", "a1"),
        Ok("A")
    );
}

fn entry(code: &str, rate: &str, from: &str) -> RawEntry {
    RawEntry {
        code: code.into(),
        names: [("en".to_owned(), format!("Goods {code}"))]
            .into_iter()
            .collect(),
        attributes: [("rate".to_owned(), RawValue::Text(rate.into()))]
            .into_iter()
            .collect(),
        valid_from: from.into(),
        ..RawEntry::default()
    }
}

fn set(number: u64, operations: Vec<Operation>) -> ChangeSet {
    ChangeSet {
        directory: "T.RATES".into(),
        number,
        authority: "KZ:KGD".into(),
        issued_at: "2026-11-25T10:00:00Z".into(),
        define: None,
        operations,
    }
}

#[test]
fn change_sets_apply_in_order_once_and_whole() {
    let mut dirs = rates();
    let one = set(
        1,
        vec![
            Operation::Add {
                entry: entry("C", "3", "2026-01-01"),
            },
            Operation::Supersede {
                entry: entry("B", "2", "2026-07-01"),
            },
        ],
    );
    assert_eq!(dirs.apply(&one), Ok(Applied::Now(1)));
    assert_eq!(dirs.get("T.RATES").map(|x| x.version), Some(1));
    assert_eq!(rate(&dirs, "B", "2026-06-30").as_deref(), Ok("0"));
    assert_eq!(rate(&dirs, "B", "2026-07-01").as_deref(), Ok("2"));
    assert_eq!(rate(&dirs, "C", "2026-01-01").as_deref(), Ok("3"));

    // Replaying it changes nothing.
    let before = dirs.get("T.RATES").cloned();
    assert_eq!(dirs.apply(&one), Ok(Applied::AlreadyApplied));
    assert_eq!(dirs.get("T.RATES").cloned(), before);
    // Another set under the same number is a conflict (a forged or forked history).
    let mut other = one.clone();
    other.operations.pop();
    assert_eq!(
        dirs.apply(&other),
        Err(ChangeError::Conflict {
            directory: "T.RATES".into(),
            number: 1
        })
    );
    // Set 3 before 2: a gap, named.
    let three = set(
        3,
        vec![Operation::Close {
            code: "C".into(),
            valid_to: "2026-12-31".into(),
        }],
    );
    let gap = dirs.apply(&three).expect_err("gap");
    assert_eq!(
        gap,
        ChangeError::Gap {
            directory: "T.RATES".into(),
            have: 1,
            got: 3
        }
    );
    assert!(gap.to_string().contains("sets 2 to 2 are missing"), "{gap}");

    // A set whose second operation fails leaves nothing of its first.
    let bad = set(
        2,
        vec![
            Operation::Add {
                entry: entry("D", "1", "2026-01-01"),
            },
            Operation::Add {
                entry: entry("C", "4", "2026-06-01"),
            },
        ],
    );
    let e = dirs.apply(&bad).expect_err("C overlaps");
    assert!(e.to_string().contains("is valid twice"), "{e}");
    assert!(dirs.entry("T.RATES", "D", d("2026-06-01")).is_err());
    assert_eq!(dirs.get("T.RATES").map(|x| x.version), Some(1));

    // Only the owner issues sets.
    let mut foreign = set(2, vec![]);
    foreign.authority = "RU".into();
    assert!(matches!(
        dirs.apply(&foreign),
        Err(ChangeError::NotOwner { .. })
    ));

    // Close, then the filled gap lets 3 through.
    let two = set(
        2,
        vec![Operation::Add {
            entry: entry("D", "1", "2026-01-01"),
        }],
    );
    assert_eq!(dirs.apply(&two), Ok(Applied::Now(2)));
    assert_eq!(dirs.apply(&three), Ok(Applied::Now(3)));
    assert!(dirs.entry("T.RATES", "C", d("2027-01-01")).is_err());
    assert_eq!(rate(&dirs, "C", "2026-12-31").as_deref(), Ok("3"));

    // Diffs between versions and between dates.
    let v1 = dirs.at_version("T.RATES", 1).expect("v1");
    let v3 = dirs.at_version("T.RATES", 3).expect("v3");
    let on = d("2026-08-01");
    let changes = diff(
        &v1.list("T.RATES", on).expect("v1"),
        &v3.list("T.RATES", on).expect("v3"),
    );
    // C got an end date (set 3), D was added (set 2).
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(matches!(&changes[0], Difference::Changed { before, after }
        if after.code == "C" && before.valid_to.is_none() && after.valid_to == Some(d("2026-12-31"))));
    assert!(matches!(&changes[1], Difference::Added { entry } if entry.code == "D"));
    let later = diff(
        &dirs.list("T.RATES", d("2026-08-01")).expect("list"),
        &dirs.list("T.RATES", d("2027-01-01")).expect("list"),
    );
    assert_eq!(
        later.iter().map(|c| c.code()).collect::<Vec<_>>(),
        ["C"],
        "C ends with 2026"
    );
    assert!(dirs.at_version("T.RATES", 4).is_err());
    assert_eq!(dirs.change_sets("T.RATES").map(|s| s.len()), Ok(3));
}

#[test]
fn a_first_change_set_can_create_a_directory() {
    let mut dirs = Directories::default();
    let mut s = set(
        1,
        vec![Operation::Add {
            entry: entry("X", "1", "2026-01-01"),
        }],
    );
    assert!(matches!(
        dirs.apply(&s),
        Err(ChangeError::UnknownDirectory { .. })
    ));
    // A later set of a directory never seen: the sets before it are missing.
    s.number = 4;
    assert_eq!(
        dirs.apply(&s),
        Err(ChangeError::Gap {
            directory: "T.RATES".into(),
            have: 0,
            got: 4
        })
    );
    s.number = 1;
    s.define = Some(Definition {
        name: "Test rates".into(),
        owner: "KZ:KGD".into(),
        source: "test".into(),
        attributes: [("rate".to_owned(), tereze_reference_data::Kind::Decimal)]
            .into_iter()
            .collect(),
    });
    assert_eq!(dirs.apply(&s), Ok(Applied::Now(1)));
    assert_eq!(
        dirs.entry("T.RATES", "X", d("2026-02-02"))
            .map(|e| e.attributes["rate"].clone()),
        Ok(Value::Decimal(1.into()))
    );
    // A change set reads back from its TOML form.
    let text = s.to_toml().expect("toml");
    assert_eq!(ChangeSet::from_toml(&text), Ok(s));
}

const CSV: &str = "code,en,ru,rate,kz,from\nA,Apples,Яблоки,5,a1;a1x,2020-01-01\n\"B\",\"Barley, feed\",Ячмень,0,b,2020-01-01\n";
const JSON: &str = r#"[{"code":"A","en":"Apples","ru":"Яблоки","rate":5,"kz":"a1;a1x","from":"2020-01-01"},
 {"code":"B","en":"Barley, feed","ru":"Ячмень","rate":"0","kz":"b","from":"2020-01-01"}]"#;
const XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rows><row code="A"><en>Apples</en><ru>Яблоки</ru><rate>5</rate><kz>a1;a1x</kz><from>2020-01-01</from></row>
<row code="B"><en>Barley, feed</en><ru>Ячмень</ru><rate>0</rate><kz>b</kz><from>2020-01-01</from></row></rows>"#;
const MAPPING: &str = r#"
code = "code"
names = { en = "en", ru = "ru" }
attributes = { rate = "rate" }
national = { KZ = "kz" }
valid_from = "from"
"#;

#[test]
fn csv_json_and_xml_imports_read_the_same_entries() {
    let m = Mapping::from_toml(MAPPING).expect("mapping");
    let mut calls = 0;
    let mut progress = |_: u64, _: u64| calls += 1;
    let csv = import::read(Format::Csv, CSV.as_bytes(), &m, &mut progress).expect("csv");
    let json = import::read(Format::Json, JSON.as_bytes(), &m, &mut progress).expect("json");
    let xml = import::read(Format::Xml, XML.as_bytes(), &m, &mut progress).expect("xml");
    assert!(calls >= 3);
    assert_eq!(csv.len(), 2);
    assert_eq!(csv, json);
    assert_eq!(csv, xml);
    assert_eq!(csv[0].national["KZ"], ["a1", "a1x"]);
    assert_eq!(csv[1].names["en"], "Barley, feed");

    // Against the shipped-like directory: A changes its rate from 2020 (same start: refused),
    // B is identical to nothing (its names differ) but starts with the directory: refused too;
    // with later starts they supersede.
    let dirs = rates();
    let current = dirs.get("T.RATES");
    assert!(import::operations(current, &csv).is_err());
    let later: Vec<RawEntry> = csv
        .iter()
        .cloned()
        .map(|mut e| {
            e.valid_from = "2027-01-01".into();
            e
        })
        .collect();
    let ops = import::operations(current, &later).expect("operations");
    assert_eq!(ops.len(), 2);
    assert!(ops.iter().all(|o| matches!(o, Operation::Supersede { .. })));
    // A new code is an addition; re-importing what is there is nothing.
    let mut fresh = later[0].clone();
    fresh.code = "N".into();
    let ops = import::operations(current, &[fresh]).expect("operations");
    assert!(matches!(ops.as_slice(), [Operation::Add { .. }]));
    let same: Vec<RawEntry> = dirs
        .history("T.RATES", "A")
        .expect("A")
        .iter()
        .map(|e| e.to_raw())
        .collect();
    assert_eq!(import::operations(current, &same), Ok(vec![]));
}

#[test]
fn bad_imports_say_where_and_why() {
    let m = Mapping::from_toml(MAPPING).expect("mapping");
    let mut p = |_: u64, _: u64| {};
    let e = import::read(Format::Csv, b"code,en\nA,Apples\n", &m, &mut p).expect_err("no ru");
    assert_eq!(e.to_string(), "line 2: no column \"ru\"");
    let e = import::read(
        Format::Csv,
        b"code,en,ru,rate,kz,from\n,x,y,1,k,2020-01-01\n",
        &m,
        &mut p,
    )
    .expect_err("empty code");
    assert!(e.to_string().starts_with("line 2: column \"code\""), "{e}");
    let e = import::read(Format::Json, b"[{\"code\": 1,", &m, &mut p).expect_err("syntax");
    assert!(e.to_string().starts_with("line 1 column"), "{e}");
    let doctype = "<!DOCTYPE rows [<!ENTITY x \"y\">]><rows/>";
    let e = import::read(Format::Xml, doctype.as_bytes(), &m, &mut p).expect_err("DTD");
    assert!(e.to_string().contains("DOCTYPE"), "{e}");
    let entity = "<rows><row code=\"A\"><en>&x;</en></row></rows>";
    let e = import::read(Format::Xml, entity.as_bytes(), &m, &mut p).expect_err("entity");
    assert!(e.to_string().contains("&x;"), "{e}");
    let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
    let e = import::read(Format::Xml, deep.as_bytes(), &m, &mut p).expect_err("deep");
    assert!(e.to_string().contains("deeply"), "{e}");
    assert!(import::read(Format::Xml, b"\xff\xfe", &m, &mut p).is_err());
}
