//! Applying change sets to the directories: atomically and idempotently (a set already
//! applied is a no-op if it is the same and a conflict if it is another; a set beyond the next
//! one is a gap). Kept apart from the change sets themselves so that `directory` (which keeps
//! the sets it applied) and this module do not depend on each other.

use crate::change::{ChangeSet, Operation};
use crate::directory::{Directories, Directory, DirectoryError};
use crate::model::{parse_date, Entry};

/// The outcome of applying a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The directory is now at this version.
    Now(u64),
    /// This very set was applied before: nothing changed.
    AlreadyApplied,
}

/// Why a change set was not applied. Nothing of it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("{directory}: no such directory (its first change set must define it)")]
    UnknownDirectory { directory: String },
    #[error("{directory}: change set {got} does not follow version {have}: sets {} to {} are missing", have + 1, got - 1)]
    Gap {
        directory: String,
        have: u64,
        got: u64,
    },
    #[error("{directory}: a different change set {number} was applied before")]
    Conflict { directory: String, number: u64 },
    #[error("{directory}: change set {number} is issued by {authority}, but the directory belongs to {owner}")]
    NotOwner {
        directory: String,
        number: u64,
        authority: String,
        owner: String,
    },
    #[error("{directory}: change set {number}: operation {index} ({code}): {reason}")]
    Operation {
        directory: String,
        number: u64,
        index: usize,
        code: String,
        reason: String,
    },
    #[error("{directory}: change set {number}: {source}")]
    Invalid {
        directory: String,
        number: u64,
        source: Box<DirectoryError>,
    },
    #[error("{directory}: change set {number}: {reason}")]
    Malformed {
        directory: String,
        number: u64,
        reason: String,
    },
}

impl Directories {
    /// Applies a change set atomically and idempotently (module docs).
    pub fn apply(&mut self, set: &ChangeSet) -> Result<Applied, ChangeError> {
        let dir_id = set.directory.clone();
        let malformed = |reason: String| ChangeError::Malformed {
            directory: dir_id.clone(),
            number: set.number,
            reason,
        };
        if set.number == 0 {
            return Err(malformed("change sets are numbered from 1".into()));
        }
        chrono::DateTime::parse_from_rfc3339(&set.issued_at)
            .map_err(|_| malformed(format!("issued_at {:?} is not RFC 3339", set.issued_at)))?;
        let (mut directory, mut applied, base) = match self.parts(&set.directory) {
            Some((d, a, b)) => (d.clone(), a.to_vec(), Some(b.to_vec())),
            None => match (&set.define, set.number) {
                (Some(def), 1) => (
                    Directory {
                        id: set.directory.clone(),
                        name: def.name.clone(),
                        owner: def.owner.clone(),
                        source: def.source.clone(),
                        attributes: def.attributes.clone(),
                        entries: Vec::new(),
                        version: 0,
                    },
                    Vec::new(),
                    Some(Vec::new()),
                ),
                // Sets 1.. of a directory this holder has never seen are missing.
                (_, n) if n > 1 => {
                    return Err(ChangeError::Gap {
                        directory: dir_id,
                        have: 0,
                        got: n,
                    })
                }
                _ => {
                    return Err(ChangeError::UnknownDirectory {
                        directory: set.directory.clone(),
                    })
                }
            },
        };
        let have = directory.version;
        if set.number <= have {
            let same = applied
                .get((set.number - 1) as usize)
                .is_some_and(|s| s == set);
            return if same {
                Ok(Applied::AlreadyApplied)
            } else {
                Err(ChangeError::Conflict {
                    directory: dir_id,
                    number: set.number,
                })
            };
        }
        if set.number > have + 1 {
            return Err(ChangeError::Gap {
                directory: dir_id,
                have,
                got: set.number,
            });
        }
        if set.authority != directory.owner {
            return Err(ChangeError::NotOwner {
                directory: dir_id,
                number: set.number,
                authority: set.authority.clone(),
                owner: directory.owner.clone(),
            });
        }
        if let Some(def) = &set.define {
            if set.number != 1 {
                return Err(malformed("only change set 1 may define a directory".into()));
            }
            // A shipped directory's first set may restate its definition (e.g. add an
            // attribute); the owner stays the one it has.
            if def.owner != directory.owner {
                return Err(malformed(format!(
                    "the definition names owner {}, the directory belongs to {}",
                    def.owner, directory.owner
                )));
            }
            directory.name = def.name.clone();
            directory.source = def.source.clone();
            directory.attributes = def.attributes.clone();
        }
        for (index, op) in set.operations.iter().enumerate() {
            apply_one(&mut directory, op).map_err(|reason| ChangeError::Operation {
                directory: dir_id.clone(),
                number: set.number,
                index: index + 1,
                code: op.code().to_owned(),
                reason,
            })?;
        }
        directory.version = set.number;
        applied.push(set.clone());
        self.replace(directory, applied, base)
            .map_err(|source| ChangeError::Invalid {
                directory: dir_id,
                number: set.number,
                source: Box::new(source),
            })?;
        Ok(Applied::Now(set.number))
    }
}

fn apply_one(d: &mut Directory, op: &Operation) -> Result<(), String> {
    match op {
        Operation::Add { entry } => {
            let e = Entry::from_raw(entry, &d.attributes, None)?;
            d.entries.push(e);
            Ok(())
        }
        Operation::Supersede { entry } => {
            let e = Entry::from_raw(entry, &d.attributes, None)?;
            let from = e
                .valid_from
                .ok_or("a superseding entry needs its valid_from")?;
            let current = d
                .entries
                .iter_mut()
                .find(|x| x.code == e.code && x.valid_on(from))
                .ok_or_else(|| format!("no entry of {} is in force on {from}", e.code))?;
            if current.valid_from.is_some_and(|f| f >= from) {
                return Err(format!(
                    "the entry in force on {from} starts that day or later ({}): nothing to end",
                    current.interval()
                ));
            }
            let until = from
                .pred_opt()
                .ok_or("valid_from is the first day there is")?;
            current.valid_to = Some(until);
            d.entries.push(e);
            Ok(())
        }
        Operation::Close { code, valid_to } => {
            let to = parse_date(valid_to)?;
            let open = d
                .entries
                .iter_mut()
                .find(|x| &x.code == code && x.valid_to.is_none())
                .ok_or_else(|| format!("{code} has no open entry to close"))?;
            if open.valid_from.is_some_and(|f| to < f) {
                return Err(format!(
                    "valid_to {to} is before the entry's start ({})",
                    open.interval()
                ));
            }
            open.valid_to = Some(to);
            Ok(())
        }
    }
}
