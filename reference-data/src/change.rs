//! Change sets (DESIGN §6): numbered per directory, issued by the directory's owning
//! authority, applied whole or not at all. Applying number N needs the directory at N − 1: a
//! set already applied is a no-op if it is the same set and a conflict if it is another; a
//! set beyond the next one is a gap, which the caller fills by fetching the missing sets. The
//! signature over a set is checked by the node before it gets here (this crate reads no keys).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Kind, RawEntry};

/// Creates a directory (only in its change set number 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub name: String,
    pub owner: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, Kind>,
}

/// One change to one directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Operation {
    /// A new code, or a new interval of a code that overlaps none of its others.
    Add { entry: RawEntry },
    /// From `entry.valid_from` on, `entry` replaces the code's entry in force that day,
    /// which ends the day before.
    Supersede { entry: RawEntry },
    /// The code's open entry ends on `valid_to`.
    Close { code: String, valid_to: String },
}

impl Operation {
    pub fn code(&self) -> &str {
        match self {
            Operation::Add { entry } | Operation::Supersede { entry } => &entry.code,
            Operation::Close { code, .. } => code,
        }
    }
}

/// A numbered change set of one directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeSet {
    pub directory: String,
    /// 1, 2, 3… per directory.
    pub number: u64,
    /// The issuing authority: must be the directory's owner.
    pub authority: String,
    /// RFC 3339.
    pub issued_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub define: Option<Definition>,
    #[serde(default, rename = "operation")]
    pub operations: Vec<Operation>,
}

impl ChangeSet {
    /// Reads a change set from TOML (an unsigned draft, as `tereze ref import` writes).
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}
