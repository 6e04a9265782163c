//! Directories: a classifier's union (EAEU) codes with their names, and each state's national
//! codes that correspond to them. Lookups go both ways and are indexed at load; a national code
//! may not correspond to two union codes of one directory.

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

/// A directory file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory file: {0}")]
    Toml(String),
    #[error("{directory}: entry {index} has an empty code")]
    EmptyCode { directory: String, index: usize },
    #[error("{directory}: code {code:?} appears twice")]
    DuplicateCode { directory: String, code: String },
    #[error("{directory}: national code {national:?} of {country} corresponds to both {first:?} and {second:?}")]
    AmbiguousNational {
        directory: String,
        country: String,
        national: String,
        first: String,
        second: String,
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
}

#[derive(Debug, Clone, Default)]
struct Indexed {
    directory: Option<Directory>,
    by_code: HashMap<String, usize>,
    by_national: HashMap<(String, String), usize>,
}

/// The directories a node knows, by id.
#[derive(Debug, Clone, Default)]
pub struct Directories {
    by_id: BTreeMap<String, Indexed>,
}

include!(concat!(env!("OUT_DIR"), "/builtin_directories.rs"));

impl Directories {
    /// The directories shipped in `reference-data/data/directories/`.
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

    /// Adds a directory from its TOML text, replacing one with the same id.
    pub fn add_toml(&mut self, text: &str) -> Result<(), DirectoryError> {
        let dir: Directory =
            toml::from_str(text).map_err(|e| DirectoryError::Toml(e.to_string()))?;
        let mut idx = Indexed::default();
        for (i, e) in dir.entries.iter().enumerate() {
            if e.code.trim().is_empty() {
                return Err(DirectoryError::EmptyCode {
                    directory: dir.id.clone(),
                    index: i + 1,
                });
            }
            if idx.by_code.insert(e.code.clone(), i).is_some() {
                return Err(DirectoryError::DuplicateCode {
                    directory: dir.id.clone(),
                    code: e.code.clone(),
                });
            }
            for (country, codes) in &e.national {
                for n in codes {
                    if let Some(prev) = idx.by_national.insert((country.clone(), n.clone()), i) {
                        return Err(DirectoryError::AmbiguousNational {
                            directory: dir.id.clone(),
                            country: country.clone(),
                            national: n.clone(),
                            first: dir.entries[prev].code.clone(),
                            second: e.code.clone(),
                        });
                    }
                }
            }
        }
        let id = dir.id.clone();
        idx.directory = Some(dir);
        self.by_id.insert(id, idx);
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&Directory> {
        self.by_id.get(id).and_then(|i| i.directory.as_ref())
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.by_id.keys().map(String::as_str)
    }

    fn indexed(&self, id: &str) -> Result<(&Indexed, &Directory), LookupError> {
        self.by_id
            .get(id)
            .and_then(|i| i.directory.as_ref().map(|d| (i, d)))
            .ok_or_else(|| LookupError::UnknownDirectory(id.to_owned()))
    }

    /// The union code a state's national code corresponds to.
    pub fn union_code(
        &self,
        directory: &str,
        country: &str,
        national: &str,
    ) -> Result<&str, LookupError> {
        let (idx, dir) = self.indexed(directory)?;
        idx.by_national
            .get(&(country.to_owned(), national.to_owned()))
            .map(|i| dir.entries[*i].code.as_str())
            .ok_or_else(|| LookupError::NoCorrespondence {
                directory: directory.to_owned(),
                country: country.to_owned(),
                code: national.to_owned(),
            })
    }

    /// The preferred national code of a state for a union code.
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
            .ok_or_else(|| LookupError::NoCorrespondence {
                directory: directory.to_owned(),
                country: country.to_owned(),
                code: union.to_owned(),
            })
    }

    /// The entry of a union code.
    pub fn check(&self, directory: &str, code: &str) -> Result<&Entry, LookupError> {
        let (idx, dir) = self.indexed(directory)?;
        idx.by_code
            .get(code)
            .map(|i| &dir.entries[*i])
            .ok_or_else(|| LookupError::UnknownCode {
                directory: directory.to_owned(),
                code: code.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_directory_loads() {
        let d = Directories::builtin();
        let ids: Vec<&str> = d.ids().collect();
        assert_eq!(
            ids,
            [
                "P.CLS.009",
                "P.CLS.016",
                "P.CLS.019",
                "P.CLS.022",
                "P.CLS.024",
                "P.CLS.025"
            ]
        );
    }

    #[test]
    fn lookups_go_both_ways() {
        let d = Directories::builtin();
        assert_eq!(d.union_code("P.CLS.019", "KZ", "398"), Ok("KZ"));
        assert_eq!(d.union_code("P.CLS.019", "RU", "KZ"), Ok("KZ"));
        assert_eq!(d.national_code("P.CLS.019", "KZ", "RU"), Ok("643"));
        assert_eq!(d.union_code("P.CLS.022", "KZ", "840"), Ok("USD"));
        assert_eq!(d.union_code("P.CLS.025", "RU", "TNE"), Ok("168"));
        assert_eq!(d.national_code("P.CLS.025", "KZ", "168"), Ok("т"));
        assert_eq!(d.union_code("P.CLS.016", "KZ", "ЭК10"), Ok("10"));
        assert_eq!(d.union_code("P.CLS.024", "KZ", "ЖД"), Ok("20"));
        assert_eq!(
            d.check("P.CLS.019", "AM").map(|e| e.names["en"].as_str()),
            Ok("Armenia")
        );
    }

    #[test]
    fn failed_lookups_say_what_is_missing() {
        let d = Directories::builtin();
        assert_eq!(
            d.union_code("P.CLS.999", "KZ", "1"),
            Err(LookupError::UnknownDirectory("P.CLS.999".into()))
        );
        assert_eq!(
            d.check("P.CLS.019", "XX").map(|_| ()),
            Err(LookupError::UnknownCode {
                directory: "P.CLS.019".into(),
                code: "XX".into()
            })
        );
        assert_eq!(
            d.union_code("P.CLS.019", "KZ", "999"),
            Err(LookupError::NoCorrespondence {
                directory: "P.CLS.019".into(),
                country: "KZ".into(),
                code: "999".into()
            })
        );
        assert!(
            d.national_code("P.CLS.019", "BY", "KZ").is_err(),
            "no BY column yet"
        );
        assert_eq!(
            d.union_code("P.CLS.019", "KZ", " 398").map(|_| ()),
            Err(LookupError::NoCorrespondence {
                directory: "P.CLS.019".into(),
                country: "KZ".into(),
                code: " 398".into()
            })
        );
    }

    #[test]
    fn every_preferred_national_code_maps_back_to_its_union_code() {
        let d = Directories::builtin();
        for id in d.ids() {
            let dir = d.get(id).expect("listed");
            for e in &dir.entries {
                for country in e.national.keys() {
                    let n = d
                        .national_code(id, country, &e.code)
                        .expect("has a national code");
                    assert_eq!(
                        d.union_code(id, country, n),
                        Ok(e.code.as_str()),
                        "{id} {country} {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn bad_directory_files_are_refused() {
        let mut d = Directories::default();
        let e = d
            .add_toml("id = \"X\"\nname = \"x\"\n[[entry]]\ncode = ")
            .expect_err("syntax");
        assert!(
            matches!(&e, DirectoryError::Toml(m) if m.contains("line 4")),
            "{e}"
        );
        let dup = "id = \"X\"\nname = \"x\"\n[[entry]]\ncode = \"A\"\n[[entry]]\ncode = \"A\"\n";
        assert!(matches!(
            d.add_toml(dup),
            Err(DirectoryError::DuplicateCode { .. })
        ));
        let amb = "id = \"X\"\nname = \"x\"\n[[entry]]\ncode = \"A\"\nnational = { KZ = [\"1\"] }\n[[entry]]\ncode = \"B\"\nnational = { KZ = [\"1\"] }\n";
        assert!(matches!(
            d.add_toml(amb),
            Err(DirectoryError::AmbiguousNational { .. })
        ));
        let empty = "id = \"X\"\nname = \"x\"\n[[entry]]\ncode = \" \"\n";
        assert!(matches!(
            d.add_toml(empty),
            Err(DirectoryError::EmptyCode { index: 1, .. })
        ));
        let unknown = "id = \"X\"\nname = \"x\"\ncolour = \"red\"\n[[entry]]\ncode = \"A\"\n";
        assert!(matches!(d.add_toml(unknown), Err(DirectoryError::Toml(_))));
    }
}
