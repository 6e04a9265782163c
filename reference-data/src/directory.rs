//! Directories: a classifier's union (EAEU) codes, each with names, typed attributes, each
//! state's corresponding national codes, and a validity interval; a code's history is its
//! entries over time, whose intervals never overlap. Queries are "as of date D". Lookups go
//! through indexes built at load (code → entries, state → national code → entries), compare
//! codes exactly, and a loaded directory never maps one national code to two union codes on
//! one day.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::change::ChangeSet;
use crate::model::{parse_date, Date, Entry, Kind, RawEntry};

/// One classifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directory {
    /// E.g. `P.CLS.019`.
    pub id: String,
    pub name: String,
    /// The authority that owns it and signs its change sets: `EEC`, a state (`KZ`) or a
    /// state's authority (`KZ:KGD`).
    pub owner: String,
    /// What the directory's content is based on.
    pub source: String,
    /// Declared attributes and their types.
    pub attributes: BTreeMap<String, Kind>,
    /// Every entry, current and past, sorted by code and then start.
    pub entries: Vec<Entry>,
    /// The number of the last change set applied (0: as shipped or imported).
    pub version: u64,
}

/// A directory file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirectory {
    id: String,
    name: String,
    #[serde(default = "default_owner")]
    owner: String,
    #[serde(default)]
    source: String,
    /// Default start of every entry's validity.
    #[serde(default)]
    valid_from: String,
    #[serde(default)]
    attributes: BTreeMap<String, Kind>,
    #[serde(rename = "entry", default)]
    entries: Vec<RawEntry>,
}

fn default_owner() -> String {
    "EEC".into()
}

/// A directory that cannot be used. Nothing of it is added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// TOML syntax or shape; the message carries the toml crate's line and column. Kept as
    /// text so the error stays comparable (`PartialEq`), as callers and tests compare it.
    #[error("directory file: {0}")]
    Toml(String),
    #[error("directory file: the directory id is empty")]
    EmptyId,
    /// `index` counts entries from 1, in file order.
    #[error("{directory}: entry {index} has an empty code")]
    EmptyCode { directory: String, index: usize },
    #[error("{directory}: entry {index}: {reason}")]
    InvalidEntry {
        directory: String,
        index: usize,
        reason: String,
    },
    #[error("{directory}: code {code:?} is valid twice on some days: {first} overlaps {second}")]
    Overlap {
        directory: String,
        code: String,
        first: String,
        second: String,
    },
    #[error("{directory}: code {code:?} has an empty national code of {country}")]
    EmptyNational {
        directory: String,
        country: String,
        code: String,
    },
    #[error("{directory}: national code {national:?} of {country} corresponds to both {first:?} and {second:?}")]
    AmbiguousNational {
        directory: String,
        country: String,
        national: String,
        first: String,
        second: String,
    },
    #[error("{directory}: national code {national:?} of {country} is listed twice for {code:?}")]
    DuplicateNational {
        directory: String,
        country: String,
        national: String,
        code: String,
    },
}

/// A failed lookup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The directory id asked for.
    #[error("unknown directory {0}")]
    UnknownDirectory(String),
    #[error("code {code:?} is not in directory {directory}")]
    UnknownCode { directory: String, code: String },
    #[error("code {code:?} of directory {directory} is not valid on {date} (valid {intervals})")]
    NotValidOn {
        directory: String,
        code: String,
        date: Date,
        intervals: String,
    },
    #[error("national code {code:?} of {country} has no correspondence in directory {directory}")]
    NoCorrespondence {
        directory: String,
        country: String,
        code: String,
    },
    #[error("union code {code:?} of directory {directory} has no national code for {country}")]
    NoNationalCode {
        directory: String,
        country: String,
        code: String,
    },
}

/// Hash maps keyed by codes: foldhash, seeded per process (codes come from outside, so the
/// seed keeps collisions unpredictable), several times faster than SipHash on short keys.
type CodeMap<V> = HashMap<Box<str>, V, foldhash::fast::RandomState>;

/// A day as a number (days from the common era); open ends are the extremes.
#[inline]
fn day(d: Date) -> i32 {
    chrono::Datelike::num_days_from_ce(&d)
}

/// A directory with its indexes, the state it started from and the change sets since.
#[derive(Debug, Clone)]
struct Indexed {
    directory: Directory,
    /// Code → the range (start, length) of `entries` holding its history: entries are sorted
    /// by code, then start, so a code's entries are contiguous.
    by_code: CodeMap<(u32, u32)>,
    /// Each entry's validity as (first day, last day), parallel to `entries`: an as-of lookup
    /// reads these few bytes, not the entries.
    spans: Vec<(i32, i32)>,
    /// State → national code → indexes into `entries`.
    by_national: HashMap<String, CodeMap<Vec<u32>>>,
    /// As loaded (version 0), for answers "as of version N"; `None` while no change set was
    /// applied (then it is `entries`).
    base: Option<Vec<Entry>>,
    /// Change sets applied, in order (`applied[i].number == i + 1`).
    applied: Vec<ChangeSet>,
}

fn overlaps(a: &Entry, b: &Entry) -> bool {
    let starts_before_end = |x: &Entry, y: &Entry| match (x.valid_from, y.valid_to) {
        (Some(f), Some(t)) => f <= t,
        _ => true,
    };
    starts_before_end(a, b) && starts_before_end(b, a)
}

impl Indexed {
    /// Sorts, validates and indexes `directory`.
    fn new(mut directory: Directory) -> Result<Self, DirectoryError> {
        let id = directory.id.clone();
        if id.trim().is_empty() {
            return Err(DirectoryError::EmptyId);
        }
        directory
            .entries
            .sort_by(|a, b| (&a.code, a.valid_from).cmp(&(&b.code, b.valid_from)));
        let entries = &directory.entries;
        let mut by_code: CodeMap<(u32, u32)> =
            CodeMap::with_capacity_and_hasher(entries.len(), Default::default());
        let mut by_national: HashMap<String, CodeMap<Vec<u32>>> = HashMap::new();
        let mut start = 0usize;
        for (i, e) in entries.iter().enumerate() {
            if i > start && entries[i - 1].code == e.code {
                let p = &entries[i - 1];
                if overlaps(p, e) {
                    return Err(DirectoryError::Overlap {
                        directory: id,
                        code: e.code.clone(),
                        first: p.interval(),
                        second: e.interval(),
                    });
                }
            } else {
                start = i;
            }
            by_code.insert(
                e.code.as_str().into(),
                (start as u32, (i + 1 - start) as u32),
            );
            for (country, codes) in &e.national {
                let column = by_national.entry(country.clone()).or_default();
                for (k, n) in codes.iter().enumerate() {
                    if n.trim().is_empty() {
                        return Err(DirectoryError::EmptyNational {
                            directory: id,
                            country: country.clone(),
                            code: e.code.clone(),
                        });
                    }
                    if codes[..k].contains(n) {
                        return Err(DirectoryError::DuplicateNational {
                            directory: id,
                            country: country.clone(),
                            national: n.clone(),
                            code: e.code.clone(),
                        });
                    }
                    let users = column.entry(n.as_str().into()).or_default();
                    if let Some(other) = users
                        .iter()
                        .map(|&j| &entries[j as usize])
                        .find(|o| o.code != e.code && overlaps(o, e))
                    {
                        return Err(DirectoryError::AmbiguousNational {
                            directory: id,
                            country: country.clone(),
                            national: n.clone(),
                            first: other.code.clone(),
                            second: e.code.clone(),
                        });
                    }
                    users.push(i as u32);
                }
            }
        }
        let spans = entries
            .iter()
            .map(|e| {
                (
                    e.valid_from.map_or(i32::MIN, day),
                    e.valid_to.map_or(i32::MAX, day),
                )
            })
            .collect();
        Ok(Self {
            directory,
            by_code,
            spans,
            by_national,
            base: None,
            applied: Vec::new(),
        })
    }

    /// The entries of `code`, oldest first (empty: unknown code).
    #[inline]
    fn range(&self, code: &str) -> Option<std::ops::Range<usize>> {
        let &(start, len) = self.by_code.get(code)?;
        Some(start as usize..(start + len) as usize)
    }

    /// The index of the entry in force on `date` among `range`.
    #[inline]
    fn in_force(&self, range: std::ops::Range<usize>, date: Date) -> Option<usize> {
        let d = day(date);
        let start = range.start;
        self.spans[range]
            .iter()
            .rposition(|&(from, to)| from <= d && d <= to)
            .map(|k| start + k)
    }

    /// The entry of `code` in force on `date`.
    #[inline]
    fn at(&self, code: &str, date: Date) -> Option<&Entry> {
        let i = self.in_force(self.range(code)?, date)?;
        Some(&self.directory.entries[i])
    }

    fn lookup(&self, code: &str, date: Date) -> Result<&Entry, LookupError> {
        let Some(r) = self.range(code) else {
            return Err(LookupError::UnknownCode {
                directory: self.directory.id.clone(),
                code: code.to_owned(),
            });
        };
        match self.in_force(r.clone(), date) {
            Some(i) => Ok(&self.directory.entries[i]),
            None => Err(LookupError::NotValidOn {
                directory: self.directory.id.clone(),
                code: code.to_owned(),
                date,
                intervals: self.directory.entries[r]
                    .iter()
                    .map(Entry::interval)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The entries as loaded (version 0).
    fn base(&self) -> &[Entry] {
        self.base.as_deref().unwrap_or(&self.directory.entries)
    }
}

/// The directories a node knows, by id.
#[derive(Debug, Clone, Default)]
pub struct Directories {
    by_id: BTreeMap<String, Indexed>,
}

include!(concat!(env!("OUT_DIR"), "/builtin_directories.rs"));

/// A change between two states of a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "lowercase")]
pub enum Difference {
    Added { entry: Entry },
    Removed { entry: Entry },
    Changed { before: Entry, after: Entry },
}

impl Difference {
    pub fn code(&self) -> &str {
        match self {
            Difference::Added { entry } | Difference::Removed { entry } => &entry.code,
            Difference::Changed { after, .. } => &after.code,
        }
    }
}

/// What differs between two lists of entries of one directory (each code at most once per
/// list, as `list` answers).
pub fn diff(before: &[&Entry], after: &[&Entry]) -> Vec<Difference> {
    let a: BTreeMap<&str, &Entry> = before.iter().map(|e| (e.code.as_str(), *e)).collect();
    let b: BTreeMap<&str, &Entry> = after.iter().map(|e| (e.code.as_str(), *e)).collect();
    let mut out = Vec::new();
    for (code, x) in &a {
        match b.get(code) {
            None => out.push(Difference::Removed {
                entry: (*x).clone(),
            }),
            Some(y) if *x != *y => out.push(Difference::Changed {
                before: (*x).clone(),
                after: (*y).clone(),
            }),
            Some(_) => {}
        }
    }
    for (code, y) in &b {
        if !a.contains_key(code) {
            out.push(Difference::Added {
                entry: (*y).clone(),
            });
        }
    }
    out.sort_by(|x, y| x.code().cmp(y.code()));
    out
}

impl Directories {
    /// The directories shipped in `reference-data/data/directories/*.toml`, embedded at build
    /// time with `include_str!` (see build.rs), so nothing is read at run time.
    ///
    /// # Panics
    /// Never for the shipped files: a unit test loads every one of them.
    pub fn builtin() -> Self {
        let mut d = Self::default();
        for text in BUILTIN {
            if let Err(e) = d.add_toml(text) {
                panic!("shipped directory does not load: {e}");
            }
        }
        d
    }

    /// Parses one directory file and adds it (version 0), replacing one with the same id. On
    /// error nothing changes.
    pub fn add_toml(&mut self, text: &str) -> Result<(), DirectoryError> {
        let raw: RawDirectory =
            toml::from_str(text).map_err(|e| DirectoryError::Toml(e.to_string()))?;
        let directory = Self::read(raw)?;
        self.add(directory)
    }

    fn read(raw: RawDirectory) -> Result<Directory, DirectoryError> {
        let id = raw.id.clone();
        let default_from = if raw.valid_from.is_empty() {
            None
        } else {
            Some(
                parse_date(&raw.valid_from)
                    .map_err(|e| DirectoryError::Toml(format!("{id}: valid_from: {e}")))?,
            )
        };
        let mut entries = Vec::with_capacity(raw.entries.len());
        for (i, r) in raw.entries.iter().enumerate() {
            if r.code.trim().is_empty() {
                return Err(DirectoryError::EmptyCode {
                    directory: id,
                    index: i + 1,
                });
            }
            entries.push(
                Entry::from_raw(r, &raw.attributes, default_from).map_err(|reason| {
                    DirectoryError::InvalidEntry {
                        directory: id.clone(),
                        index: i + 1,
                        reason,
                    }
                })?,
            );
        }
        Ok(Directory {
            id: raw.id,
            name: raw.name,
            owner: raw.owner,
            source: raw.source,
            attributes: raw.attributes,
            entries,
            version: 0,
        })
    }

    /// Adds a directory (replacing one with the same id) after checking it.
    pub fn add(&mut self, directory: Directory) -> Result<(), DirectoryError> {
        let indexed = Indexed::new(directory)?;
        self.by_id.insert(indexed.directory.id.clone(), indexed);
        Ok(())
    }

    /// The ids of the loaded directories, in sorted order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.by_id.keys().map(String::as_str)
    }

    pub fn get(&self, id: &str) -> Option<&Directory> {
        self.by_id.get(id).map(|i| &i.directory)
    }

    fn indexed(&self, id: &str) -> Result<&Indexed, LookupError> {
        self.by_id
            .get(id)
            .ok_or_else(|| LookupError::UnknownDirectory(id.to_owned()))
    }

    /// The entry of `code` in force on `as_of`.
    #[inline]
    pub fn entry(&self, directory: &str, code: &str, as_of: Date) -> Result<&Entry, LookupError> {
        self.indexed(directory)?.lookup(code, as_of)
    }

    /// Whether `code` is in force on `as_of` (the fast path of `entry`).
    #[inline]
    pub fn valid(&self, directory: &str, code: &str, as_of: Date) -> bool {
        self.by_id
            .get(directory)
            .is_some_and(|d| d.at(code, as_of).is_some())
    }

    /// Every entry in force on `as_of`, by code.
    pub fn list(&self, directory: &str, as_of: Date) -> Result<Vec<&Entry>, LookupError> {
        let d = self.indexed(directory)?;
        Ok(d.directory
            .entries
            .iter()
            .filter(|e| e.valid_on(as_of))
            .collect())
    }

    /// Entries in force on `as_of` whose code, or name in any language, starts with `prefix`
    /// (names compared without regard to case).
    pub fn search(
        &self,
        directory: &str,
        prefix: &str,
        as_of: Date,
    ) -> Result<Vec<&Entry>, LookupError> {
        let p = prefix.to_lowercase();
        Ok(self
            .list(directory, as_of)?
            .into_iter()
            .filter(|e| {
                e.code.starts_with(prefix)
                    || e.names.values().any(|n| n.to_lowercase().starts_with(&p))
            })
            .collect())
    }

    /// Every entry a code has had, oldest first.
    pub fn history(&self, directory: &str, code: &str) -> Result<Vec<&Entry>, LookupError> {
        let d = self.indexed(directory)?;
        let r = d.range(code).ok_or_else(|| LookupError::UnknownCode {
            directory: directory.to_owned(),
            code: code.to_owned(),
        })?;
        Ok(d.directory.entries[r].iter().collect())
    }

    /// The change sets applied to a directory, in order.
    pub fn change_sets(&self, directory: &str) -> Result<&[ChangeSet], LookupError> {
        Ok(&self.indexed(directory)?.applied)
    }

    /// The directory as it was at `version` (0: as loaded).
    pub fn at_version(&self, directory: &str, version: u64) -> Result<Directories, String> {
        let d = self.indexed(directory).map_err(|e| e.to_string())?;
        if version > d.directory.version {
            return Err(format!(
                "{directory} is at version {}, not {version}",
                d.directory.version
            ));
        }
        let mut base = d.directory.clone();
        base.entries = d.base().to_vec();
        base.version = 0;
        let mut out = Directories::default();
        out.add(base).map_err(|e| e.to_string())?;
        for set in d.applied.iter().take(version as usize) {
            out.apply(set).map_err(|e| e.to_string())?;
        }
        Ok(out)
    }

    /// A view for lookups as of one date (what the translation engine uses).
    pub fn on(&self, date: Date) -> On<'_> {
        On { dirs: self, date }
    }

    /// A view as of today (UTC).
    pub fn today(&self) -> On<'_> {
        self.on(chrono::Utc::now().date_naive())
    }

    pub(crate) fn replace(
        &mut self,
        directory: Directory,
        applied: Vec<ChangeSet>,
        base: Option<Vec<Entry>>,
    ) -> Result<(), DirectoryError> {
        let mut indexed = Indexed::new(directory)?;
        indexed.base = base;
        indexed.applied = applied;
        self.by_id.insert(indexed.directory.id.clone(), indexed);
        Ok(())
    }

    pub(crate) fn parts(&self, id: &str) -> Option<(&Directory, &[ChangeSet], &[Entry])> {
        self.by_id
            .get(id)
            .map(|i| (&i.directory, i.applied.as_slice(), i.base()))
    }
}

/// Lookups as of one date.
#[derive(Debug, Clone, Copy)]
pub struct On<'a> {
    dirs: &'a Directories,
    date: Date,
}

impl<'a> On<'a> {
    pub fn date(&self) -> Date {
        self.date
    }

    pub fn directories(&self) -> &'a Directories {
        self.dirs
    }

    /// The union code a state's national code corresponds to on this date.
    pub fn union_code(
        &self,
        directory: &str,
        country: &str,
        national: &str,
    ) -> Result<&'a str, LookupError> {
        let idx = self.dirs.indexed(directory)?;
        idx.by_national
            .get(country)
            .and_then(|column| column.get(national))
            .and_then(|slots| {
                let d = day(self.date);
                slots
                    .iter()
                    .find(|&&i| {
                        let (from, to) = idx.spans[i as usize];
                        from <= d && d <= to
                    })
                    .map(|&i| &idx.directory.entries[i as usize])
            })
            .map(|e| e.code.as_str())
            .ok_or_else(|| LookupError::NoCorrespondence {
                directory: directory.to_owned(),
                country: country.to_owned(),
                code: national.to_owned(),
            })
    }

    /// The preferred (first listed) national code of a state for a union code. A union code that
    /// is not in the directory gives [`LookupError::UnknownCode`] (not in force that day:
    /// [`LookupError::NotValidOn`]); one that the state has no national code for gives
    /// [`LookupError::NoNationalCode`].
    pub fn national_code(
        &self,
        directory: &str,
        country: &str,
        union: &str,
    ) -> Result<&'a str, LookupError> {
        let entry = self.check(directory, union)?;
        entry
            .national
            .get(country)
            .and_then(|codes| codes.first())
            .map(String::as_str)
            .ok_or_else(|| LookupError::NoNationalCode {
                directory: directory.to_owned(),
                country: country.to_owned(),
                code: union.to_owned(),
            })
    }

    /// The entry of a union code, if `code` is one of the directory's and in force this day.
    pub fn check(&self, directory: &str, code: &str) -> Result<&'a Entry, LookupError> {
        self.dirs.entry(directory, code, self.date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COUNTRIES: &str = "P.CLS.019";
    const CURRENCIES: &str = "P.CLS.022";
    const UNITS: &str = "P.CLS.025";
    const PROCEDURES: &str = "P.CLS.016";
    const TRANSPORT: &str = "P.CLS.024";
    const DOCUMENTS: &str = "P.CLS.009";
    const HS: &str = "P.CLS.HS";
    const MEASURES: &str = "P.CLS.NTM";

    /// Each shipped file by name, with its id and the fewest entries it must have.
    const FILES: &[(&str, &str, usize)] = &[
        (
            include_str!("../data/directories/countries.toml"),
            COUNTRIES,
            249,
        ),
        (
            include_str!("../data/directories/currencies.toml"),
            CURRENCIES,
            170,
        ),
        (include_str!("../data/directories/units.toml"), UNITS, 36),
        (
            include_str!("../data/directories/customs-procedures.toml"),
            PROCEDURES,
            17,
        ),
        (
            include_str!("../data/directories/transport-modes.toml"),
            TRANSPORT,
            11,
        ),
        (
            include_str!("../data/directories/document-kinds.toml"),
            DOCUMENTS,
            12,
        ),
        (include_str!("../data/directories/hs.toml"), HS, 300),
        (
            include_str!("../data/directories/measures.toml"),
            MEASURES,
            20,
        ),
    ];

    /// A day `e` is in force: its first, else its last, else today.
    fn a_day_in_force(e: &Entry) -> Date {
        e.valid_from
            .or(e.valid_to)
            .unwrap_or_else(|| chrono::Utc::now().date_naive())
    }

    fn nc(directory: &str, country: &str, code: &str) -> LookupError {
        LookupError::NoCorrespondence {
            directory: directory.into(),
            country: country.into(),
            code: code.into(),
        }
    }

    #[test]
    fn each_shipped_file_loads_on_its_own() {
        for (text, id, min) in FILES {
            let mut d = Directories::default();
            d.add_toml(text)
                .unwrap_or_else(|e| panic!("{id} does not load: {e}"));
            assert_eq!(d.ids().collect::<Vec<_>>(), [*id]);
            let dir = d.get(id).expect("loaded");
            assert!(dir.entries.len() >= *min, "{id}: {}", dir.entries.len());
            assert!(
                dir.source.contains("placeholder"),
                "{id}: the source line must say the id is a placeholder"
            );
            for e in &dir.entries {
                for lang in ["ru", "en"] {
                    assert!(
                        e.names.get(lang).is_some_and(|n| !n.is_empty()),
                        "{id} {}: no {lang} name",
                        e.code
                    );
                }
                for country in ["KZ", "RU"] {
                    assert!(
                        // On a day the entry is in force (a code that has ended ships too).
                        d.on(a_day_in_force(e))
                            .national_code(id, country, &e.code)
                            .is_ok(),
                        "{id} {}: no {country} code",
                        e.code
                    );
                }
            }
        }
    }

    #[test]
    fn builtin_holds_every_shipped_file() {
        let d = Directories::builtin();
        let mut want: Vec<&str> = FILES.iter().map(|(_, id, _)| *id).collect();
        want.sort_unstable();
        assert_eq!(d.ids().collect::<Vec<_>>(), want);
    }

    #[test]
    fn countries_both_ways() {
        let d = Directories::builtin();
        for (union, kz) in [
            ("AM", "051"),
            ("BY", "112"),
            ("KZ", "398"),
            ("KG", "417"),
            ("RU", "643"),
            ("CN", "156"),
            ("UZ", "860"),
            ("AZ", "031"),
            ("US", "840"),
        ] {
            assert_eq!(d.today().union_code(COUNTRIES, "KZ", kz), Ok(union));
            assert_eq!(d.today().national_code(COUNTRIES, "KZ", union), Ok(kz));
            assert_eq!(d.today().union_code(COUNTRIES, "RU", union), Ok(union));
            assert_eq!(d.today().national_code(COUNTRIES, "RU", union), Ok(union));
        }
        let kz = d.today().check(COUNTRIES, "KZ").expect("KZ");
        assert_eq!(kz.names["kk"], "Қазақстан");
        assert_eq!(
            d.today()
                .check(COUNTRIES, "AM")
                .map(|e| e.names["en"].as_str()),
            Ok("Armenia")
        );
    }

    #[test]
    fn currencies_both_ways() {
        let d = Directories::builtin();
        for (union, kz) in [
            ("KZT", "398"),
            ("RUB", "643"),
            ("BYN", "933"),
            ("AMD", "051"),
            ("KGS", "417"),
            ("USD", "840"),
            ("EUR", "978"),
            ("CNY", "156"),
        ] {
            assert_eq!(d.today().union_code(CURRENCIES, "KZ", kz), Ok(union));
            assert_eq!(d.today().national_code(CURRENCIES, "KZ", union), Ok(kz));
            assert_eq!(d.today().union_code(CURRENCIES, "RU", union), Ok(union));
            assert_eq!(d.today().national_code(CURRENCIES, "RU", union), Ok(union));
        }
    }

    #[test]
    fn units_both_ways() {
        let d = Directories::builtin();
        for (union, kz, ru) in [
            ("166", "кг", "KGM"),
            ("168", "т", "TNE"),
            ("163", "г", "GRM"),
            ("112", "л", "LTR"),
            ("113", "м3", "MTQ"),
            ("796", "шт", "H87"),
            ("006", "м", "MTR"),
            ("055", "м2", "MTK"),
            ("715", "пар", "PR"),
        ] {
            assert_eq!(d.today().union_code(UNITS, "KZ", kz), Ok(union));
            assert_eq!(d.today().national_code(UNITS, "KZ", union), Ok(kz));
            assert_eq!(d.today().union_code(UNITS, "RU", ru), Ok(union));
            assert_eq!(d.today().national_code(UNITS, "RU", union), Ok(ru));
        }
    }

    /// The columns of the Armenian, Belarusian and Kyrgyz forms and of the partner state Viet Nam
    /// (data/SOURCES.md): each state's own code list where it differs from the union's.
    #[test]
    fn member_and_partner_columns_both_ways() {
        let d = Directories::builtin();
        let on = d.today();
        for (dir, country, national, union) in [
            (COUNTRIES, "AM", "RUS", "RU"),
            (COUNTRIES, "AM", "ARM", "AM"),
            (COUNTRIES, "BY", "RU", "RU"),
            (COUNTRIES, "KG", "398", "KZ"),
            (COUNTRIES, "VN", "VN", "VN"),
            (CURRENCIES, "AM", "USD", "USD"),
            (CURRENCIES, "BY", "933", "BYN"),
            (CURRENCIES, "KG", "417", "KGS"),
            (UNITS, "AM", "KGM", "166"),
            (UNITS, "BY", "166", "166"),
            (UNITS, "KG", "кг", "166"),
            (UNITS, "VN", "TNE", "168"),
            (TRANSPORT, "AM", "30", "30"),
            (TRANSPORT, "KG", "АВТО-П", "31"),
            (TRANSPORT, "VN", "1", "10"),
            (TRANSPORT, "VN", "7", "71"),
            (PROCEDURES, "BY", "10", "10"),
            (PROCEDURES, "KG", "ЭК10", "10"),
            (DOCUMENTS, "AM", "PHYTO-AM", "01011"),
        ] {
            assert_eq!(
                on.union_code(dir, country, national),
                Ok(union),
                "{dir} {country}"
            );
            assert_eq!(
                on.national_code(dir, country, union),
                Ok(national),
                "{dir} {country}"
            );
        }
        // UN/ECE Rec. 19 has one code for road: the union's tractor-and-trailer codes have no
        // Vietnamese code, and saying so is the answer, never a guess.
        assert_eq!(
            on.national_code(TRANSPORT, "VN", "31"),
            Err(LookupError::NoNationalCode {
                directory: TRANSPORT.into(),
                country: "VN".into(),
                code: "31".into()
            })
        );
    }

    #[test]
    fn procedures_transport_and_documents_both_ways() {
        let d = Directories::builtin();
        assert_eq!(d.today().union_code(PROCEDURES, "KZ", "ЭК10"), Ok("10"));
        assert_eq!(d.today().union_code(PROCEDURES, "KZ", "ИМ40"), Ok("40"));
        assert_eq!(d.today().national_code(PROCEDURES, "KZ", "10"), Ok("ЭК10"));
        assert_eq!(d.today().national_code(PROCEDURES, "KZ", "53"), Ok("ИМ53"));
        assert_eq!(d.today().union_code(PROCEDURES, "RU", "80"), Ok("80"));
        assert_eq!(d.today().national_code(PROCEDURES, "RU", "31"), Ok("31"));

        assert_eq!(d.today().union_code(TRANSPORT, "KZ", "ЖД"), Ok("20"));
        assert_eq!(d.today().union_code(TRANSPORT, "KZ", "АВТО"), Ok("30"));
        assert_eq!(d.today().national_code(TRANSPORT, "KZ", "71"), Ok("ТРУБ"));
        assert_eq!(d.today().national_code(TRANSPORT, "KZ", "90"), Ok("ХОД"));
        assert_eq!(d.today().union_code(TRANSPORT, "RU", "10"), Ok("10"));
        assert_eq!(d.today().national_code(TRANSPORT, "RU", "40"), Ok("40"));

        assert_eq!(
            d.today().union_code(DOCUMENTS, "KZ", "PHYTO-KZ"),
            Ok("01011")
        );
        assert_eq!(
            d.today().union_code(DOCUMENTS, "RU", "ORIGIN-RU"),
            Ok("02013")
        );
        assert_eq!(
            d.today().national_code(DOCUMENTS, "RU", "01011"),
            Ok("PHYTO-RU")
        );
        assert_eq!(
            d.today().national_code(DOCUMENTS, "KZ", "02013"),
            Ok("ORIGIN-KZ")
        );
        // A national code of one state is not one of another's.
        assert_eq!(
            d.today().union_code(DOCUMENTS, "RU", "PHYTO-KZ"),
            Err(nc(DOCUMENTS, "RU", "PHYTO-KZ"))
        );
    }

    #[test]
    fn failed_lookups_say_what_is_missing() {
        let d = Directories::builtin();
        let unknown = Err(LookupError::UnknownDirectory("P.CLS.999".into()));
        assert_eq!(
            d.today().union_code("P.CLS.999", "KZ", "1").map(|_| ()),
            unknown
        );
        assert_eq!(
            d.today().national_code("P.CLS.999", "KZ", "1").map(|_| ()),
            unknown
        );
        assert_eq!(d.today().check("P.CLS.999", "1").map(|_| ()), unknown);
        assert!(d.get("P.CLS.999").is_none());

        let xx = Err(LookupError::UnknownCode {
            directory: COUNTRIES.into(),
            code: "XX".into(),
        });
        assert_eq!(d.today().check(COUNTRIES, "XX").map(|_| ()), xx);
        assert_eq!(
            d.today().national_code(COUNTRIES, "KZ", "XX").map(|_| ()),
            xx
        );

        assert_eq!(
            d.today().union_code(COUNTRIES, "KZ", "999"),
            Err(nc(COUNTRIES, "KZ", "999"))
        );
        // A state without a column (Uzbekistan has no form here): both directions say so.
        assert_eq!(
            d.today().national_code(COUNTRIES, "UZ", "KZ"),
            Err(LookupError::NoNationalCode {
                directory: COUNTRIES.into(),
                country: "UZ".into(),
                code: "KZ".into()
            })
        );
        assert_eq!(
            d.today().union_code(UNITS, "UZ", "кг"),
            Err(nc(UNITS, "UZ", "кг"))
        );
        // A code of another state's column is not one of this state's.
        assert_eq!(
            d.today().union_code(UNITS, "BY", "кг"),
            Err(nc(UNITS, "BY", "кг"))
        );
        // Exact comparison: no trimming, no case folding.
        assert_eq!(
            d.today().union_code(COUNTRIES, "KZ", " 398"),
            Err(nc(COUNTRIES, "KZ", " 398"))
        );
        assert_eq!(
            d.today().union_code(UNITS, "RU", "kgm"),
            Err(nc(UNITS, "RU", "kgm"))
        );
        assert!(d.today().check(COUNTRIES, "kz").is_err());
        assert!(d.today().union_code(COUNTRIES, "kz", "398").is_err());
        assert_eq!(
            nc(COUNTRIES, "KZ", "999").to_string(),
            "national code \"999\" of KZ has no correspondence in directory P.CLS.019"
        );
    }

    #[test]
    fn every_preferred_national_code_maps_back_to_its_union_code() {
        let d = Directories::builtin();
        let mut checked = 0;
        for id in d.ids() {
            let dir = d.get(id).expect("listed");
            for e in &dir.entries {
                // On a day the entry is in force.
                let on = d.on(a_day_in_force(e));
                for (country, codes) in &e.national {
                    let n = on
                        .national_code(id, country, &e.code)
                        .expect("has a national code");
                    assert_eq!(n, codes[0], "{id} {country}: the first is preferred");
                    for n in codes {
                        assert_eq!(
                            on.union_code(id, country, n),
                            Ok(e.code.as_str()),
                            "{id} {country} {n}"
                        );
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "{checked}");
    }

    #[test]
    fn later_national_codes_map_in_but_the_first_is_written() {
        let mut d = Directories::default();
        d.add_toml(
            "id = \"X\"\nname = \"x\"\n[[entry]]\ncode = \"A\"\nnational = { KZ = [\"1\", \"01\"] }\n",
        )
        .expect("loads");
        assert_eq!(d.today().union_code("X", "KZ", "01"), Ok("A"));
        assert_eq!(d.today().union_code("X", "KZ", "1"), Ok("A"));
        assert_eq!(d.today().national_code("X", "KZ", "A"), Ok("1"));
    }

    #[test]
    fn adding_a_directory_with_the_same_id_replaces_it() {
        let mut d = Directories::builtin();
        d.add_toml(
            "id = \"P.CLS.019\"\nname = \"short\"\n[[entry]]\ncode = \"ZZ\"\nnational = { KZ = [\"398\"] }\n",
        )
        .expect("loads");
        assert_eq!(d.get(COUNTRIES).map(|x| x.name.as_str()), Some("short"));
        assert_eq!(d.today().union_code(COUNTRIES, "KZ", "398"), Ok("ZZ"));
        assert!(d.today().check(COUNTRIES, "KZ").is_err());
        assert_eq!(d.ids().count(), FILES.len());
    }

    #[test]
    fn malformed_toml_names_the_line() {
        let mut d = Directories::default();
        let e = d
            .add_toml("id = \"X\"\nname = \"x\"\n[[entry]]\ncode = ")
            .expect_err("syntax");
        assert!(
            matches!(&e, DirectoryError::Toml(m) if m.contains("line 4")),
            "{e}"
        );
        assert!(e.to_string().contains("line 4"), "{e}");
        let e = d
            .add_toml("id = \"X\"\nname = \"x\"\n\n[[entry]]\ncode = 7\n")
            .expect_err("wrong type");
        assert!(
            matches!(&e, DirectoryError::Toml(m) if m.contains("line 5")),
            "{e}"
        );
        let unknown = "id = \"X\"\nname = \"x\"\ncolour = \"red\"\n[[entry]]\ncode = \"A\"\n";
        assert!(matches!(d.add_toml(unknown), Err(DirectoryError::Toml(_))));
        assert!(matches!(
            d.add_toml("name = \"x\"\n[[entry]]\ncode = \"A\"\n"),
            Err(DirectoryError::Toml(m)) if m.contains("id")
        ));
        assert_eq!(d.ids().count(), 0, "nothing of a refused file is added");
    }

    #[test]
    fn inconsistent_directories_are_refused() {
        let mut d = Directories::default();
        let dup = "id = \"X\"\nname = \"x\"\n[[entry]]\ncode = \"A\"\n[[entry]]\ncode = \"A\"\n";
        assert_eq!(
            d.add_toml(dup),
            Err(DirectoryError::Overlap {
                directory: "X".into(),
                code: "A".into(),
                first: "..".into(),
                second: "..".into(),
            })
        );
        let amb = "id = \"X\"\nname = \"x\"\n[[entry]]\ncode = \"A\"\nnational = { KZ = [\"1\"] }\n[[entry]]\ncode = \"B\"\nnational = { KZ = [\"1\"] }\n";
        let e = d.add_toml(amb).expect_err("ambiguous");
        assert_eq!(
            e,
            DirectoryError::AmbiguousNational {
                directory: "X".into(),
                country: "KZ".into(),
                national: "1".into(),
                first: "A".into(),
                second: "B".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "X: national code \"1\" of KZ corresponds to both \"A\" and \"B\""
        );
        // The same national code in two states' columns is fine.
        let two_states = "id = \"X\"\nname = \"x\"\n[[entry]]\ncode = \"A\"\nnational = { KZ = [\"1\"] }\n[[entry]]\ncode = \"B\"\nnational = { RU = [\"1\"] }\n";
        d.add_toml(two_states).expect("distinct states");
        let twice = "id = \"Y\"\nname = \"x\"\n[[entry]]\ncode = \"A\"\nnational = { KZ = [\"1\", \"1\"] }\n";
        assert!(matches!(
            d.add_toml(twice),
            Err(DirectoryError::DuplicateNational { .. })
        ));
        let empty = "id = \"Y\"\nname = \"x\"\n[[entry]]\ncode = \"A\"\n[[entry]]\ncode = \" \"\n";
        assert_eq!(
            d.add_toml(empty),
            Err(DirectoryError::EmptyCode {
                directory: "Y".into(),
                index: 2
            })
        );
        let empty_national =
            "id = \"Y\"\nname = \"x\"\n[[entry]]\ncode = \"A\"\nnational = { KZ = [\"\"] }\n";
        assert!(matches!(
            d.add_toml(empty_national),
            Err(DirectoryError::EmptyNational { .. })
        ));
        let empty_id = "id = \"\"\nname = \"x\"\n[[entry]]\ncode = \"A\"\n";
        assert_eq!(d.add_toml(empty_id), Err(DirectoryError::EmptyId));
        assert_eq!(d.ids().collect::<Vec<_>>(), ["X"], "only the good one");
    }
}
