//! Directories: a classifier's union (EAEU) codes with their names, and each state's national
//! codes that correspond to them. Lookups go both ways through indexes built at load, compare
//! codes exactly, and a loaded directory never maps one national code to two union codes.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

/// One classifier.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    /// E.g. `P.CLS.019`.
    pub id: String,
    pub name: String,
    /// What the directory's content is based on.
    #[serde(default)]
    pub source: String,
    #[serde(rename = "entry")]
    pub entries: Vec<Entry>,
}

/// One union code.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub code: String,
    /// Language (`ru`, `kk`, `en`, …) → name.
    #[serde(default)]
    pub names: BTreeMap<String, String>,
    /// State (ISO 3166-1 alpha-2) → national codes corresponding to this union code; the first
    /// is the one written when translating into that state's form.
    #[serde(default)]
    pub national: BTreeMap<String, Vec<String>>,
}

/// A directory file that cannot be used. Nothing of such a file is added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// TOML syntax or shape; the message carries the toml crate's line and column.
    #[error("directory file: {0}")]
    Toml(String),
    #[error("directory file: the directory id is empty")]
    EmptyId,
    /// `index` counts entries from 1, in file order.
    #[error("{directory}: entry {index} has an empty code")]
    EmptyCode { directory: String, index: usize },
    #[error("{directory}: code {code:?} appears twice")]
    DuplicateCode { directory: String, code: String },
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
    #[error("unknown directory {0}")]
    UnknownDirectory(String),
    #[error("code {code:?} is not in directory {directory}")]
    UnknownCode { directory: String, code: String },
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

/// A directory with its indexes: union code → entry, and state → national code → entry.
#[derive(Debug, Clone)]
struct Indexed {
    directory: Directory,
    by_code: HashMap<String, usize>,
    by_national: HashMap<String, HashMap<String, usize>>,
}

impl Indexed {
    fn new(directory: Directory) -> Result<Self, DirectoryError> {
        let id = &directory.id;
        if id.trim().is_empty() {
            return Err(DirectoryError::EmptyId);
        }
        let mut by_code = HashMap::with_capacity(directory.entries.len());
        let mut by_national: HashMap<String, HashMap<String, usize>> = HashMap::new();
        for (i, e) in directory.entries.iter().enumerate() {
            if e.code.trim().is_empty() {
                return Err(DirectoryError::EmptyCode {
                    directory: id.clone(),
                    index: i + 1,
                });
            }
            if by_code.insert(e.code.clone(), i).is_some() {
                return Err(DirectoryError::DuplicateCode {
                    directory: id.clone(),
                    code: e.code.clone(),
                });
            }
            for (country, codes) in &e.national {
                let column = by_national.entry(country.clone()).or_default();
                for n in codes {
                    if n.trim().is_empty() {
                        return Err(DirectoryError::EmptyNational {
                            directory: id.clone(),
                            country: country.clone(),
                            code: e.code.clone(),
                        });
                    }
                    match column.insert(n.clone(), i) {
                        None => {}
                        Some(prev) if prev == i => {
                            return Err(DirectoryError::DuplicateNational {
                                directory: id.clone(),
                                country: country.clone(),
                                national: n.clone(),
                                code: e.code.clone(),
                            })
                        }
                        Some(prev) => {
                            return Err(DirectoryError::AmbiguousNational {
                                directory: id.clone(),
                                country: country.clone(),
                                national: n.clone(),
                                first: directory.entries[prev].code.clone(),
                                second: e.code.clone(),
                            })
                        }
                    }
                }
            }
        }
        Ok(Self {
            directory,
            by_code,
            by_national,
        })
    }
}

/// The directories a node knows, by id.
#[derive(Debug, Clone, Default)]
pub struct Directories {
    by_id: BTreeMap<String, Indexed>,
}

include!(concat!(env!("OUT_DIR"), "/builtin_directories.rs"));

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

    /// Parses one directory file and adds it, replacing one with the same id. On error nothing
    /// changes.
    pub fn add_toml(&mut self, text: &str) -> Result<(), DirectoryError> {
        let dir: Directory =
            toml::from_str(text).map_err(|e| DirectoryError::Toml(e.to_string()))?;
        let indexed = Indexed::new(dir)?;
        self.by_id.insert(indexed.directory.id.clone(), indexed);
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&Directory> {
        self.by_id.get(id).map(|i| &i.directory)
    }

    /// The ids of the loaded directories, in sorted order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.by_id.keys().map(String::as_str)
    }

    fn indexed(&self, id: &str) -> Result<&Indexed, LookupError> {
        self.by_id
            .get(id)
            .ok_or_else(|| LookupError::UnknownDirectory(id.to_owned()))
    }

    /// The union code a state's national code corresponds to.
    pub fn union_code(
        &self,
        directory: &str,
        country: &str,
        national: &str,
    ) -> Result<&str, LookupError> {
        let idx = self.indexed(directory)?;
        idx.by_national
            .get(country)
            .and_then(|column| column.get(national))
            .map(|i| idx.directory.entries[*i].code.as_str())
            .ok_or_else(|| LookupError::NoCorrespondence {
                directory: directory.to_owned(),
                country: country.to_owned(),
                code: national.to_owned(),
            })
    }

    /// The preferred (first listed) national code of a state for a union code. A union code that
    /// is not in the directory gives [`LookupError::UnknownCode`]; one that the state has no
    /// national code for gives [`LookupError::NoCorrespondence`] carrying the union code.
    pub fn national_code(
        &self,
        directory: &str,
        country: &str,
        union: &str,
    ) -> Result<&str, LookupError> {
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

    /// The entry of a union code, if `code` is one of the directory's.
    pub fn check(&self, directory: &str, code: &str) -> Result<&Entry, LookupError> {
        let idx = self.indexed(directory)?;
        idx.by_code
            .get(code)
            .map(|i| &idx.directory.entries[*i])
            .ok_or_else(|| LookupError::UnknownCode {
                directory: directory.to_owned(),
                code: code.to_owned(),
            })
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

    /// Each shipped file by name, with its id and the fewest entries it must have.
    const FILES: &[(&str, &str, usize)] = &[
        (
            include_str!("../data/directories/countries.toml"),
            COUNTRIES,
            18,
        ),
        (
            include_str!("../data/directories/currencies.toml"),
            CURRENCIES,
            12,
        ),
        (include_str!("../data/directories/units.toml"), UNITS, 9),
        (
            include_str!("../data/directories/customs-procedures.toml"),
            PROCEDURES,
            5,
        ),
        (
            include_str!("../data/directories/transport-modes.toml"),
            TRANSPORT,
            9,
        ),
        (
            include_str!("../data/directories/document-kinds.toml"),
            DOCUMENTS,
            7,
        ),
    ];

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
                        d.national_code(id, country, &e.code).is_ok(),
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
            assert_eq!(d.union_code(COUNTRIES, "KZ", kz), Ok(union));
            assert_eq!(d.national_code(COUNTRIES, "KZ", union), Ok(kz));
            assert_eq!(d.union_code(COUNTRIES, "RU", union), Ok(union));
            assert_eq!(d.national_code(COUNTRIES, "RU", union), Ok(union));
        }
        let kz = d.check(COUNTRIES, "KZ").expect("KZ");
        assert_eq!(kz.names["kk"], "Қазақстан");
        assert_eq!(
            d.check(COUNTRIES, "AM").map(|e| e.names["en"].as_str()),
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
            assert_eq!(d.union_code(CURRENCIES, "KZ", kz), Ok(union));
            assert_eq!(d.national_code(CURRENCIES, "KZ", union), Ok(kz));
            assert_eq!(d.union_code(CURRENCIES, "RU", union), Ok(union));
            assert_eq!(d.national_code(CURRENCIES, "RU", union), Ok(union));
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
            assert_eq!(d.union_code(UNITS, "KZ", kz), Ok(union));
            assert_eq!(d.national_code(UNITS, "KZ", union), Ok(kz));
            assert_eq!(d.union_code(UNITS, "RU", ru), Ok(union));
            assert_eq!(d.national_code(UNITS, "RU", union), Ok(ru));
        }
    }

    #[test]
    fn procedures_transport_and_documents_both_ways() {
        let d = Directories::builtin();
        assert_eq!(d.union_code(PROCEDURES, "KZ", "ЭК10"), Ok("10"));
        assert_eq!(d.union_code(PROCEDURES, "KZ", "ИМ40"), Ok("40"));
        assert_eq!(d.national_code(PROCEDURES, "KZ", "10"), Ok("ЭК10"));
        assert_eq!(d.national_code(PROCEDURES, "KZ", "53"), Ok("ИМ53"));
        assert_eq!(d.union_code(PROCEDURES, "RU", "80"), Ok("80"));
        assert_eq!(d.national_code(PROCEDURES, "RU", "31"), Ok("31"));

        assert_eq!(d.union_code(TRANSPORT, "KZ", "ЖД"), Ok("20"));
        assert_eq!(d.union_code(TRANSPORT, "KZ", "АВТО"), Ok("30"));
        assert_eq!(d.national_code(TRANSPORT, "KZ", "71"), Ok("ТРУБ"));
        assert_eq!(d.national_code(TRANSPORT, "KZ", "90"), Ok("ХОД"));
        assert_eq!(d.union_code(TRANSPORT, "RU", "10"), Ok("10"));
        assert_eq!(d.national_code(TRANSPORT, "RU", "40"), Ok("40"));

        assert_eq!(d.union_code(DOCUMENTS, "KZ", "PHYTO-KZ"), Ok("01011"));
        assert_eq!(d.union_code(DOCUMENTS, "RU", "ORIGIN-RU"), Ok("02013"));
        assert_eq!(d.national_code(DOCUMENTS, "RU", "01011"), Ok("PHYTO-RU"));
        assert_eq!(d.national_code(DOCUMENTS, "KZ", "02013"), Ok("ORIGIN-KZ"));
        // A national code of one state is not one of another's.
        assert_eq!(
            d.union_code(DOCUMENTS, "RU", "PHYTO-KZ"),
            Err(nc(DOCUMENTS, "RU", "PHYTO-KZ"))
        );
    }

    #[test]
    fn failed_lookups_say_what_is_missing() {
        let d = Directories::builtin();
        let unknown = Err(LookupError::UnknownDirectory("P.CLS.999".into()));
        assert_eq!(d.union_code("P.CLS.999", "KZ", "1").map(|_| ()), unknown);
        assert_eq!(d.national_code("P.CLS.999", "KZ", "1").map(|_| ()), unknown);
        assert_eq!(d.check("P.CLS.999", "1").map(|_| ()), unknown);
        assert!(d.get("P.CLS.999").is_none());

        let xx = Err(LookupError::UnknownCode {
            directory: COUNTRIES.into(),
            code: "XX".into(),
        });
        assert_eq!(d.check(COUNTRIES, "XX").map(|_| ()), xx);
        assert_eq!(d.national_code(COUNTRIES, "KZ", "XX").map(|_| ()), xx);

        assert_eq!(
            d.union_code(COUNTRIES, "KZ", "999"),
            Err(nc(COUNTRIES, "KZ", "999"))
        );
        // No BY column yet: both directions say so.
        assert_eq!(
            d.national_code(COUNTRIES, "BY", "KZ"),
            Err(LookupError::NoNationalCode {
                directory: COUNTRIES.into(),
                country: "BY".into(),
                code: "KZ".into()
            })
        );
        assert_eq!(d.union_code(UNITS, "BY", "кг"), Err(nc(UNITS, "BY", "кг")));
        // Exact comparison: no trimming, no case folding.
        assert_eq!(
            d.union_code(COUNTRIES, "KZ", " 398"),
            Err(nc(COUNTRIES, "KZ", " 398"))
        );
        assert_eq!(
            d.union_code(UNITS, "RU", "kgm"),
            Err(nc(UNITS, "RU", "kgm"))
        );
        assert!(d.check(COUNTRIES, "kz").is_err());
        assert!(d.union_code(COUNTRIES, "kz", "398").is_err());
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
                for (country, codes) in &e.national {
                    let n = d
                        .national_code(id, country, &e.code)
                        .expect("has a national code");
                    assert_eq!(n, codes[0], "{id} {country}: the first is preferred");
                    for n in codes {
                        assert_eq!(
                            d.union_code(id, country, n),
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
        assert_eq!(d.union_code("X", "KZ", "01"), Ok("A"));
        assert_eq!(d.union_code("X", "KZ", "1"), Ok("A"));
        assert_eq!(d.national_code("X", "KZ", "A"), Ok("1"));
    }

    #[test]
    fn adding_a_directory_with_the_same_id_replaces_it() {
        let mut d = Directories::builtin();
        d.add_toml(
            "id = \"P.CLS.019\"\nname = \"short\"\n[[entry]]\ncode = \"ZZ\"\nnational = { KZ = [\"398\"] }\n",
        )
        .expect("loads");
        assert_eq!(d.get(COUNTRIES).map(|x| x.name.as_str()), Some("short"));
        assert_eq!(d.union_code(COUNTRIES, "KZ", "398"), Ok("ZZ"));
        assert!(d.check(COUNTRIES, "KZ").is_err());
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
            Err(DirectoryError::DuplicateCode {
                directory: "X".into(),
                code: "A".into()
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
