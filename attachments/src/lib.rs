//! Attachments on disk (docs/attachments.md): files sent beside an envelope, bound to it by the
//! SHA-256 and size its signed header declares. Never in the key-value store and never whole in
//! memory: bytes go to a file in the data directory as they arrive, the digest is computed while
//! they stream, and a transfer is acknowledged only after `fsync`.
//!
//! Layout under `<data_dir>/attachments/`:
//!
//! ```text
//! <message-uuid>/<id>.want   what the transfer promised (SHA-256, size, who sends), fsynced
//! <message-uuid>/<id>.data   the bytes; while `.done` is absent, a prefix of them
//! <message-uuid>/<id>.done   the commit point: the digest and size computed from the bytes
//! uploads/<upload-uuid>.data / .done   the national system's uploads, before a Submit names them
//! uploads/<upload-uuid>.want   a resumable upload's declared size (and SHA-256), while incomplete
//! ```
//!
//! **Invariant:** a `.done` file exists only beside a fsynced `.data` whose SHA-256 and size it
//! records; a partial `.data` holds only bytes that passed their chunk digest, in order, so an
//! interrupted transfer resumes from its length. The crate depends on `support` only
//! (ARCHITECTURE.md, "Dependency rules").
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openssl::sha::Sha256;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod limits;

pub use limits::Limits;

/// Bytes written between two `fdatasync`s of a growing file, so little is left to write back
/// when a transfer is acknowledged.
const SYNC_EVERY: u64 = 64 << 20;

/// Largest chunk a receiver takes in one message.
pub const MAX_CHUNK_BYTES: usize = 4 << 20;

/// Block size for reading a file back (hashing a prefix on resume, sending).
const READ_BLOCK: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "attachment id {0:?} is not 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit"
    )]
    /// The id as given.
    BadId(String),
    #[error("the attachment is {size} bytes, over this node's limit of {limit} (attachments.max_attachment_bytes)")]
    TooLarge { size: u64, limit: u64 },
    #[error("the chunk at offset {offset} does not match its SHA-256: send it again")]
    ChunkDigest { offset: u64 },
    #[error("the chunk is {len} bytes, over the limit of {limit}")]
    ChunkTooLarge { len: usize, limit: usize },
    #[error(
        "a chunk at offset {offered} was sent, but {have} bytes are held: continue from {have}"
    )]
    Offset { offered: u64, have: u64 },
    #[error("{written} bytes would pass the declared size of {size}")]
    Overrun { written: u64, size: u64 },
    #[error("the transfer ended after {written} of {size} bytes")]
    Short { written: u64, size: u64 },
    #[error("the bytes received have SHA-256 {actual}, not the declared {declared}; they were discarded")]
    DigestMismatch { declared: String, actual: String },
    #[error("attachment {id} of message {message} is held (or being received) with another size, digest or sender than this transfer declares")]
    Conflict { message: Uuid, id: String },
    /// The upload id as given (it may not even be a UUID).
    #[error("upload {0} is not held here (unknown, incomplete, or collected)")]
    UnknownUpload(String),
    #[error("upload {upload} holds {have} of its {size} bytes: send the rest (from offset {have}) before a submission names it")]
    UploadIncomplete { upload: Uuid, have: u64, size: u64 },
    #[error("upload {0} is being written by another request; retry when it ends")]
    UploadBusy(Uuid),
    #[error("attachment {id} of message {message} is not held here")]
    NotHeld { message: Uuid, id: String },
    #[error("{path}: unreadable record: {reason}")]
    Record { path: String, reason: String },
}

impl AttachmentError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// What is known of a complete attachment: computed from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    #[serde(with = "hex32")]
    pub sha256: [u8; 32],
    pub size: u64,
}

/// What a transfer declared when it began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Want {
    #[serde(with = "hex32")]
    sha256: [u8; 32],
    size: u64,
    /// The state whose node sends it.
    from: String,
}

/// What a resumable upload declared when it began (`uploads/<id>.want`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadWant {
    pub size: u64,
    /// The SHA-256 the client says the bytes have, if it said: checked at the end.
    #[serde(default, with = "opt_hex32")]
    pub sha256: Option<[u8; 32]>,
}

/// Where a national system's upload stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadState {
    /// Begun with a declared size; `have` bytes are held durably: continue from there.
    Partial {
        have: u64,
        want: UploadWant,
    },
    Complete(Held),
}

mod opt_hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(&tereze_support::hex::hex(v)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<[u8; 32]>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => tereze_support::hex::unhex(&s)
                .and_then(|v| <[u8; 32]>::try_from(v).ok())
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom("not 64 hex digits")),
        }
    }
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&tereze_support::hex::hex(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        tereze_support::hex::unhex(&s)
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .ok_or_else(|| serde::de::Error::custom("not 64 hex digits"))
    }
}

/// Where a transfer stands at the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Nothing held.
    Absent,
    /// This many bytes are held durably; continue from there.
    Partial(u64),
    Complete(Held),
}

/// `1-64` of `[A-Za-z0-9._-]`, the first alphanumeric: safe as a file name.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn check_id(id: &str) -> Result<(), AttachmentError> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(AttachmentError::BadId(id.to_owned()))
    }
}

fn sync_dir(dir: &Path) -> Result<(), AttachmentError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AttachmentError::io(dir, e))
}

/// Writes `value` as JSON to `path` atomically and durably (temporary file, fsync, rename,
/// fsync of the directory).
fn write_record<T: Serialize>(path: &Path, value: &T) -> Result<(), AttachmentError> {
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec(value).map_err(|e| AttachmentError::Record {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut f = File::create(&tmp).map_err(|e| AttachmentError::io(&tmp, e))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| AttachmentError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| AttachmentError::io(path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn read_record<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, AttachmentError> {
    match fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| AttachmentError::Record {
                path: path.display().to_string(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AttachmentError::io(path, e)),
    }
}

/// SHA-256 of the first `len` bytes of `file`, read in blocks.
fn hash_prefix(file: &mut File, path: &Path, len: u64) -> Result<Sha256, AttachmentError> {
    let mut h = Sha256::new();
    file.seek(SeekFrom::Start(0))
        .map_err(|e| AttachmentError::io(path, e))?;
    let mut buf = vec![0u8; READ_BLOCK];
    let mut left = len;
    while left > 0 {
        let want = left.min(READ_BLOCK as u64) as usize;
        file.read_exact(&mut buf[..want])
            .map_err(|e| AttachmentError::io(path, e))?;
        h.update(&buf[..want]);
        left -= want as u64;
    }
    Ok(h)
}

/// The attachments directory of one node.
pub struct Attachments {
    root: PathBuf,
    pub limits: Limits,
    /// Uploads a request is writing now ([`UploadHold`]).
    writing: Arc<Mutex<HashSet<Uuid>>>,
}

/// A request's hold on one upload while it writes it: no other request writes it, and
/// collection leaves its files alone. Released when dropped.
pub struct UploadHold {
    writing: Arc<Mutex<HashSet<Uuid>>>,
    upload: Uuid,
}

impl Drop for UploadHold {
    fn drop(&mut self) {
        self.writing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.upload);
    }
}

impl Attachments {
    /// Creates `<data_dir>/attachments` (and `uploads/`) if needed.
    pub fn open(data_dir: &Path, limits: Limits) -> Result<Self, AttachmentError> {
        let root = data_dir.join("attachments");
        let uploads = root.join("uploads");
        fs::create_dir_all(&uploads).map_err(|e| AttachmentError::io(&uploads, e))?;
        Ok(Self {
            root,
            limits,
            writing: Arc::default(),
        })
    }

    /// A file of `size` bytes is within `attachments.max_attachment_bytes`.
    pub fn check_size(&self, size: u64) -> Result<(), AttachmentError> {
        if size > self.limits.max_attachment_bytes {
            return Err(AttachmentError::TooLarge {
                size,
                limit: self.limits.max_attachment_bytes,
            });
        }
        Ok(())
    }

    /// Creates a message's directory if it is not there, durably (the parent is synced too,
    /// so that the directory survives a crash of the machine with the files in it).
    fn make_dir(&self, dir: &Path) -> Result<(), AttachmentError> {
        if dir.is_dir() {
            return Ok(());
        }
        fs::create_dir_all(dir).map_err(|e| AttachmentError::io(dir, e))?;
        sync_dir(&self.root)
    }

    /// The files of upload `upload`: `.data`, `.want`, `.done`.
    fn upload_paths(&self, upload: Uuid) -> (PathBuf, PathBuf, PathBuf) {
        let d = self.root.join("uploads");
        (
            d.join(format!("{upload}.data")),
            d.join(format!("{upload}.want")),
            d.join(format!("{upload}.done")),
        )
    }

    /// Holds `upload` for one writer; [`AttachmentError::UploadBusy`] while another has it.
    fn hold_upload(&self, upload: Uuid) -> Result<UploadHold, AttachmentError> {
        let mut w = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        if !w.insert(upload) {
            return Err(AttachmentError::UploadBusy(upload));
        }
        Ok(UploadHold {
            writing: self.writing.clone(),
            upload,
        })
    }

    fn dir(&self, message: Uuid) -> PathBuf {
        self.root.join(message.hyphenated().to_string())
    }

    fn paths(&self, message: Uuid, id: &str) -> (PathBuf, PathBuf, PathBuf) {
        let d = self.dir(message);
        (
            d.join(format!("{id}.data")),
            d.join(format!("{id}.want")),
            d.join(format!("{id}.done")),
        )
    }

    /// The complete attachment's digest and size, if held.
    pub fn held(&self, message: Uuid, id: &str) -> Result<Option<Held>, AttachmentError> {
        check_id(id)?;
        let (_, _, done) = self.paths(message, id);
        read_record(&done)
    }

    /// Where a transfer of (`message`, `id`) stands. A partial file is synced first, so the
    /// length answered is durable.
    pub fn progress(&self, message: Uuid, id: &str) -> Result<Progress, AttachmentError> {
        if let Some(h) = self.held(message, id)? {
            return Ok(Progress::Complete(h));
        }
        let (data, _, _) = self.paths(message, id);
        match OpenOptions::new().write(true).open(&data) {
            Ok(f) => {
                f.sync_data().map_err(|e| AttachmentError::io(&data, e))?;
                let len = f
                    .metadata()
                    .map_err(|e| AttachmentError::io(&data, e))?
                    .len();
                Ok(Progress::Partial(len))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Progress::Absent),
            Err(e) => Err(AttachmentError::io(&data, e)),
        }
    }

    /// The progress of a transfer from `from` that declares `sha256` and `size`. What is held
    /// under another declaration is a conflict: a message's attachments never change (the
    /// envelope that declares them is signed once).
    pub fn progress_of(
        &self,
        message: Uuid,
        id: &str,
        sha256: &[u8; 32],
        size: u64,
        from: &str,
    ) -> Result<Progress, AttachmentError> {
        let conflict = || AttachmentError::Conflict {
            message,
            id: id.to_owned(),
        };
        match self.progress(message, id)? {
            Progress::Partial(n) => {
                let (_, want, _) = self.paths(message, id);
                // An unreadable or missing record (a crash while it was written): start over.
                let w: Option<Want> = read_record(&want).unwrap_or(None);
                match w {
                    Some(w) if w.sha256 == *sha256 && w.size == size && w.from == from => {
                        Ok(if n <= size {
                            Progress::Partial(n)
                        } else {
                            Progress::Absent
                        })
                    }
                    Some(_) => Err(conflict()),
                    None => Ok(Progress::Absent),
                }
            }
            Progress::Complete(h) if h.sha256 != *sha256 || h.size != size => Err(conflict()),
            p => Ok(p),
        }
    }

    /// Begins or resumes receiving (`message`, `id`) at `offset`, which must be what
    /// [`Attachments::progress_of`] answers. Blocking (it hashes the bytes already held).
    pub fn receive(
        &self,
        message: Uuid,
        id: &str,
        sha256: [u8; 32],
        size: u64,
        from: &str,
        offset: u64,
    ) -> Result<Sink, AttachmentError> {
        check_id(id)?;
        self.check_size(size)?;
        let have = match self.progress_of(message, id, &sha256, size, from)? {
            Progress::Partial(n) => n,
            Progress::Absent => 0,
            Progress::Complete(h) => {
                return Ok(Sink::complete(h));
            }
        };
        if offset != have {
            return Err(AttachmentError::Offset {
                offered: offset,
                have,
            });
        }
        let dir = self.dir(message);
        self.make_dir(&dir)?;
        let (data, want, done) = self.paths(message, id);
        if have == 0 {
            write_record(
                &want,
                &Want {
                    sha256,
                    size,
                    from: from.to_owned(),
                },
            )?;
        }
        // Created only for a transfer from zero: a prefix that went meanwhile is not made up.
        let mut file = match OpenOptions::new()
            .create(have == 0)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&data)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(AttachmentError::Offset {
                    offered: offset,
                    have: 0,
                })
            }
            Err(e) => return Err(AttachmentError::io(&data, e)),
        };
        let len = file
            .metadata()
            .map_err(|e| AttachmentError::io(&data, e))?
            .len();
        if len < have {
            return Err(AttachmentError::Offset {
                offered: offset,
                have: len,
            });
        }
        file.set_len(have)
            .map_err(|e| AttachmentError::io(&data, e))?;
        let hasher = hash_prefix(&mut file, &data, have)?;
        file.seek(SeekFrom::Start(have))
            .map_err(|e| AttachmentError::io(&data, e))?;
        if have == 0 {
            sync_dir(&dir)?;
        }
        Ok(Sink {
            open: Some(OpenSink {
                file,
                data,
                want: Some(want),
                done,
                hasher,
                expected: Some(sha256),
            }),
            written: have,
            synced: have,
            size: Some(size),
            limit: self.limits.max_attachment_bytes,
            complete: None,
            _hold: None,
        })
    }

    /// A new upload from the national system, sent whole in one request; its digest is computed
    /// from what arrives.
    pub fn upload(&self) -> Result<(Uuid, Sink), AttachmentError> {
        let id = Uuid::new_v4();
        let hold = self.hold_upload(id)?;
        let (data, _, done) = self.upload_paths(id);
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&data)
            .map_err(|e| AttachmentError::io(&data, e))?;
        Ok((
            id,
            Sink {
                open: Some(OpenSink {
                    file,
                    data,
                    want: None,
                    done,
                    hasher: Sha256::new(),
                    expected: None,
                }),
                written: 0,
                synced: 0,
                size: None,
                limit: self.limits.max_attachment_bytes,
                complete: None,
                _hold: Some(hold),
            },
        ))
    }

    /// Begins a resumable upload of `want.size` bytes (sent by one or more requests, each
    /// continuing from the bytes held); its id. Durable on return.
    pub fn begin_upload(&self, want: &UploadWant) -> Result<Uuid, AttachmentError> {
        self.check_size(want.size)?;
        let id = Uuid::new_v4();
        let _hold = self.hold_upload(id)?;
        let (data, want_path, _) = self.upload_paths(id);
        OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&data)
            .map_err(|e| AttachmentError::io(&data, e))?;
        // Also makes the new `.data` entry durable (the directory is synced).
        write_record(&want_path, want)?;
        Ok(id)
    }

    /// Where `upload` stands. The bytes of a partial upload are synced first, so `have` is
    /// durable. An upload sent whole in one request has no state until it is complete.
    pub fn upload_state(&self, upload: Uuid) -> Result<UploadState, AttachmentError> {
        let (data, want, done) = self.upload_paths(upload);
        if let Some(h) = read_record::<Held>(&done)? {
            return Ok(UploadState::Complete(h));
        }
        let Some(want) = read_record::<UploadWant>(&want)? else {
            return Err(AttachmentError::UnknownUpload(upload.to_string()));
        };
        let f = match OpenOptions::new().write(true).open(&data) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(AttachmentError::UnknownUpload(upload.to_string()))
            }
            Err(e) => return Err(AttachmentError::io(&data, e)),
        };
        f.sync_data().map_err(|e| AttachmentError::io(&data, e))?;
        let len = f
            .metadata()
            .map_err(|e| AttachmentError::io(&data, e))?
            .len();
        Ok(UploadState::Partial {
            have: len.min(want.size),
            want,
        })
    }

    /// Continues a resumable upload at `offset`, which must be the bytes held
    /// ([`Attachments::upload_state`]). Blocking (it hashes the bytes already held). The sink
    /// holds the upload: a second writer is refused [`AttachmentError::UploadBusy`].
    pub fn resume_upload(&self, upload: Uuid, offset: u64) -> Result<Sink, AttachmentError> {
        let hold = self.hold_upload(upload)?;
        let (have, want) = match self.upload_state(upload)? {
            UploadState::Complete(h) => return Ok(Sink::complete(h)),
            UploadState::Partial { have, want } => (have, want),
        };
        if offset != have {
            return Err(AttachmentError::Offset {
                offered: offset,
                have,
            });
        }
        let (data, want_path, done) = self.upload_paths(upload);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&data)
            .map_err(|e| AttachmentError::io(&data, e))?;
        file.set_len(have)
            .map_err(|e| AttachmentError::io(&data, e))?;
        let hasher = hash_prefix(&mut file, &data, have)?;
        file.seek(SeekFrom::Start(have))
            .map_err(|e| AttachmentError::io(&data, e))?;
        Ok(Sink {
            open: Some(OpenSink {
                file,
                data,
                want: Some(want_path),
                done,
                hasher,
                expected: want.sha256,
            }),
            written: have,
            synced: have,
            size: Some(want.size),
            limit: self.limits.max_attachment_bytes,
            complete: None,
            _hold: Some(hold),
        })
    }

    /// A complete upload's digest and size.
    pub fn upload_held(&self, upload: Uuid) -> Result<Held, AttachmentError> {
        match self.upload_state(upload)? {
            UploadState::Complete(h) => Ok(h),
            UploadState::Partial { have, want } => Err(AttachmentError::UploadIncomplete {
                upload,
                have,
                size: want.size,
            }),
        }
    }

    /// Makes a complete upload attachment `id` of `message` (a hard link: one upload can go to
    /// several recipients). Idempotent.
    pub fn adopt(&self, upload: Uuid, message: Uuid, id: &str) -> Result<Held, AttachmentError> {
        check_id(id)?;
        let held = self.upload_held(upload)?;
        let dir = self.dir(message);
        self.make_dir(&dir)?;
        let (data, _, done) = self.paths(message, id);
        let (src, _, _) = self.upload_paths(upload);
        match fs::hard_link(&src, &data) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            // Collected since its record was read.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(AttachmentError::UnknownUpload(upload.to_string()))
            }
            Err(e) => return Err(AttachmentError::io(&data, e)),
        }
        sync_dir(&dir)?;
        write_record(&done, &held)?;
        Ok(held)
    }

    /// Opens a complete attachment for reading.
    pub fn open_held(&self, message: Uuid, id: &str) -> Result<(File, Held), AttachmentError> {
        let held = self
            .held(message, id)?
            .ok_or_else(|| AttachmentError::NotHeld {
                message,
                id: id.to_owned(),
            })?;
        let (data, _, _) = self.paths(message, id);
        let f = File::open(&data).map_err(|e| AttachmentError::io(&data, e))?;
        Ok((f, held))
    }

    /// A complete upload's bytes, if it is at most `max` bytes (a body by reference, to check).
    pub fn read_upload(&self, upload: Uuid, max: u64) -> Result<Option<Vec<u8>>, AttachmentError> {
        let held = self.upload_held(upload)?;
        if held.size > max {
            return Ok(None);
        }
        let (data, _, _) = self.upload_paths(upload);
        fs::read(&data)
            .map(Some)
            .map_err(|e| AttachmentError::io(&data, e))
    }

    /// A complete attachment's bytes, if it is at most `max` bytes (a body by reference).
    pub fn read_small(
        &self,
        message: Uuid,
        id: &str,
        max: u64,
    ) -> Result<Option<Vec<u8>>, AttachmentError> {
        let (mut f, held) = self.open_held(message, id)?;
        if held.size > max {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(held.size as usize);
        f.read_to_end(&mut out)
            .map_err(|e| AttachmentError::io(&self.paths(message, id).0, e))?;
        Ok(Some(out))
    }

    /// Opens the data file of (`message`, `id`), complete or still growing (a hub forwarding
    /// while it receives reads the bytes already written: each passed its chunk digest).
    pub fn open_data(&self, message: Uuid, id: &str) -> Result<File, AttachmentError> {
        check_id(id)?;
        let (data, _, _) = self.paths(message, id);
        File::open(&data).map_err(|e| AttachmentError::io(&data, e))
    }

    /// The messages that have an attachment directory here.
    pub fn messages(&self) -> Result<Vec<Uuid>, AttachmentError> {
        let mut out = Vec::new();
        let rd = fs::read_dir(&self.root).map_err(|e| AttachmentError::io(&self.root, e))?;
        for e in rd.flatten() {
            if let Some(id) = e.file_name().to_str().and_then(|n| Uuid::parse_str(n).ok()) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Newest modification time (Unix ms) of anything in the message's directory.
    pub fn touched_at(&self, message: Uuid) -> i64 {
        let dir = self.dir(message);
        let mut newest = modified_ms(&dir);
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd.flatten() {
                newest = newest.max(modified_ms(&e.path()));
            }
        }
        newest
    }

    /// Deletes everything held for `message`; the bytes freed.
    pub fn remove(&self, message: Uuid) -> Result<u64, AttachmentError> {
        let dir = self.dir(message);
        let freed = dir_bytes(&dir);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(freed),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(AttachmentError::io(&dir, e)),
        }
    }

    /// Deletes uploads (complete or not) whose files were all last touched before `before`
    /// (Unix ms), the files of an upload together, except uploads a request is writing now;
    /// how many uploads.
    pub fn remove_uploads_before(&self, before: i64) -> usize {
        let uploads = self.root.join("uploads");
        let mut newest: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        if let Ok(rd) = fs::read_dir(&uploads) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let stem = name.split('.').next().unwrap_or_default().to_owned();
                let t = modified_ms(&e.path());
                let slot = newest.entry(stem).or_insert(t);
                *slot = (*slot).max(t);
            }
        }
        let mut n = 0;
        for (stem, t) in newest {
            if t >= before {
                continue;
            }
            // Held while its files go, so that no request begins writing it meanwhile.
            let _hold = match Uuid::parse_str(&stem) {
                Ok(id) => match self.hold_upload(id) {
                    Ok(h) => Some(h),
                    Err(_) => continue,
                },
                Err(_) => None,
            };
            // The records first: a Submit racing the sweep then finds no upload (a clear 400)
            // rather than a record without its bytes.
            for ext in ["done", "want", "tmp", "data"] {
                let _ = fs::remove_file(uploads.join(format!("{stem}.{ext}")));
            }
            n += 1;
        }
        n
    }
}

impl Attachments {
    /// Deletes abandoned partial uploads, oldest first, until `enough` says so: a whole-file
    /// upload whose request broke off (it cannot be resumed) as soon as no request writes it,
    /// a resumable one once untouched since `idle_before` (Unix ms), whatever its retention
    /// time. Complete uploads stay (a Submit may still name them). How many uploads, and
    /// their bytes.
    pub fn remove_partial_uploads(
        &self,
        idle_before: i64,
        mut enough: impl FnMut() -> bool,
    ) -> (usize, u64) {
        let uploads = self.root.join("uploads");
        // stem → (newest touch, bytes, complete, resumable)
        let mut seen: std::collections::HashMap<String, (i64, u64, bool, bool)> =
            std::collections::HashMap::new();
        if let Ok(rd) = fs::read_dir(&uploads) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some((stem, ext)) = name.split_once('.') else {
                    continue;
                };
                let path = e.path();
                let slot = seen.entry(stem.to_owned()).or_default();
                slot.0 = slot.0.max(modified_ms(&path));
                slot.1 += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                slot.2 |= ext == "done";
                slot.3 |= ext == "want";
            }
        }
        let mut partial: Vec<(i64, u64, Uuid)> = seen
            .into_iter()
            .filter(|(_, (t, _, done, resumable))| !done && (!resumable || *t < idle_before))
            .filter_map(|(stem, (t, bytes, _, _))| {
                Uuid::parse_str(&stem).ok().map(|id| (t, bytes, id))
            })
            .collect();
        partial.sort();
        let (mut n, mut freed) = (0, 0);
        for (_, bytes, id) in partial {
            // Not one a request is writing now (skipped before asking whether there is room,
            // so that it does not use up a question); held while its files go.
            let Ok(_hold) = self.hold_upload(id) else {
                continue;
            };
            if enough() {
                break;
            }
            for ext in ["want", "tmp", "data"] {
                let _ = fs::remove_file(uploads.join(format!("{id}.{ext}")));
            }
            n += 1;
            freed += bytes;
        }
        (n, freed)
    }
}

fn modified_ms(p: &Path) -> i64 {
    fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn dir_bytes(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = fs::read_dir(p) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_bytes(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

struct OpenSink {
    file: File,
    data: PathBuf,
    want: Option<PathBuf>,
    done: PathBuf,
    hasher: Sha256,
    /// The declared digest (none for an upload, whose digest is what arrives).
    expected: Option<[u8; 32]>,
}

/// A file being received: chunks are checked, written and hashed in order; blocking I/O, for
/// `spawn_blocking`.
pub struct Sink {
    open: Option<OpenSink>,
    written: u64,
    synced: u64,
    size: Option<u64>,
    limit: u64,
    complete: Option<Held>,
    /// An upload's hold, for as long as the sink writes it.
    _hold: Option<UploadHold>,
}

impl Sink {
    fn complete(h: Held) -> Self {
        Self {
            open: None,
            written: h.size,
            synced: h.size,
            size: Some(h.size),
            limit: h.size,
            complete: Some(h),
            _hold: None,
        }
    }

    /// The size the transfer declared (none for an upload sent whole in one request).
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// The SHA-256 the bytes must have, if one was declared.
    pub fn expected(&self) -> Option<[u8; 32]> {
        self.open.as_ref().and_then(|s| s.expected)
    }

    /// Already complete before this transfer began.
    pub fn already(&self) -> Option<Held> {
        self.complete
    }

    /// Bytes held so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Takes one chunk at `offset`, refusing it (and writing nothing) if its SHA-256 is not
    /// `chunk_sha256` (when given) or it does not continue the file.
    pub fn write(
        &mut self,
        offset: u64,
        data: &[u8],
        chunk_sha256: Option<&[u8]>,
    ) -> Result<(), AttachmentError> {
        if data.len() > MAX_CHUNK_BYTES {
            return Err(AttachmentError::ChunkTooLarge {
                len: data.len(),
                limit: MAX_CHUNK_BYTES,
            });
        }
        if offset != self.written {
            return Err(AttachmentError::Offset {
                offered: offset,
                have: self.written,
            });
        }
        if let Some(want) = chunk_sha256 {
            if openssl::sha::sha256(data).as_slice() != want {
                return Err(AttachmentError::ChunkDigest { offset });
            }
        }
        let end = self.written + data.len() as u64;
        if let Some(size) = self.size {
            if end > size {
                return Err(AttachmentError::Overrun { written: end, size });
            }
        }
        if end > self.limit {
            return Err(AttachmentError::TooLarge {
                size: end,
                limit: self.limit,
            });
        }
        let Some(s) = self.open.as_mut() else {
            return Err(AttachmentError::Overrun {
                written: end,
                size: self.written,
            });
        };
        s.file
            .write_all(data)
            .map_err(|e| AttachmentError::io(&s.data, e))?;
        s.hasher.update(data);
        self.written = end;
        if self.written - self.synced >= SYNC_EVERY {
            s.file
                .sync_data()
                .map_err(|e| AttachmentError::io(&s.data, e))?;
            self.synced = self.written;
        }
        Ok(())
    }

    /// Makes what arrived durable (the transfer stopped early and resumes later).
    pub fn pause(&mut self) -> Result<u64, AttachmentError> {
        if let Some(s) = self.open.as_mut() {
            s.file
                .sync_data()
                .map_err(|e| AttachmentError::io(&s.data, e))?;
            self.synced = self.written;
        }
        Ok(self.written)
    }

    /// Ends the transfer: the size must be reached and the digest match the declared one (a
    /// mismatch discards the bytes: the transfer starts again from zero). Durable on return.
    pub fn finish(mut self) -> Result<Held, AttachmentError> {
        if let Some(h) = self.complete {
            return Ok(h);
        }
        let Some(s) = self.open.take() else {
            return Err(AttachmentError::Short {
                written: self.written,
                size: self.size.unwrap_or(0),
            });
        };
        if let Some(size) = self.size {
            if self.written != size {
                s.file
                    .sync_data()
                    .map_err(|e| AttachmentError::io(&s.data, e))?;
                return Err(AttachmentError::Short {
                    written: self.written,
                    size,
                });
            }
        }
        let held = Held {
            sha256: s.hasher.finish(),
            size: self.written,
        };
        if let Some(expected) = s.expected {
            if expected != held.sha256 {
                let _ = fs::remove_file(&s.data);
                if let Some(w) = &s.want {
                    let _ = fs::remove_file(w);
                }
                return Err(AttachmentError::DigestMismatch {
                    declared: tereze_support::hex::hex(&expected),
                    actual: tereze_support::hex::hex(&held.sha256),
                });
            }
        }
        s.file
            .sync_all()
            .map_err(|e| AttachmentError::io(&s.data, e))?;
        write_record(&s.done, &held)?;
        if let Some(w) = &s.want {
            let _ = fs::remove_file(w);
        }
        Ok(held)
    }
}

/// Reads a held file from `offset` in chunks of `chunk` bytes; blocking.
pub struct Source {
    file: File,
    path: PathBuf,
    offset: u64,
    size: u64,
    chunk: usize,
}

impl Source {
    pub fn open(
        store: &Attachments,
        message: Uuid,
        id: &str,
        offset: u64,
        chunk: usize,
    ) -> Result<(Self, Held), AttachmentError> {
        let (mut file, held) = store.open_held(message, id)?;
        let path = store.paths(message, id).0;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| AttachmentError::io(&path, e))?;
        Ok((
            Self {
                file,
                path,
                offset,
                size: held.size,
                chunk: chunk.clamp(1, MAX_CHUNK_BYTES),
            },
            held,
        ))
    }

    /// The next chunk and its offset; `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<(u64, Vec<u8>)>, AttachmentError> {
        if self.offset >= self.size {
            return Ok(None);
        }
        let n = (self.size - self.offset).min(self.chunk as u64) as usize;
        let mut buf = vec![0u8; n];
        self.file
            .read_exact(&mut buf)
            .map_err(|e| AttachmentError::io(&self.path, e))?;
        let at = self.offset;
        self.offset += n as u64;
        Ok(Some((at, buf)))
    }
}

/// Whose fault a failure of the attachment files is, for the doors' answers.
impl tereze_support::class::Classify for AttachmentError {
    fn class(&self) -> tereze_support::class::Class {
        use tereze_support::class::Class;
        use AttachmentError as A;
        match self {
            // The node's own files failed: retry once the disk is mended.
            A::Io { .. } | A::Record { .. } => Class::Unavailable,
            A::TooLarge { .. } | A::Overrun { .. } => Class::TooLarge,
            A::DigestMismatch { .. } => Class::Mismatch,
            A::UnknownUpload(_) | A::NotHeld { .. } => Class::NotFound,
            A::Offset { .. } | A::UploadIncomplete { .. } => Class::Conflict,
            A::UploadBusy(_) => Class::Contended,
            A::BadId(_)
            | A::ChunkDigest { .. }
            | A::ChunkTooLarge { .. }
            | A::Short { .. }
            | A::Conflict { .. } => Class::Invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> Attachments {
        Attachments::open(dir, Limits::default()).expect("open")
    }

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn a_transfer_in_chunks_completes_with_the_digest_of_its_bytes() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = store(dir.path());
        let data = bytes(3_000_000);
        let digest = openssl::sha::sha256(&data);
        let m = Uuid::new_v4();
        let mut sink = s
            .receive(m, "scan.pdf", digest, data.len() as u64, "KZ", 0)
            .expect("begin");
        for (i, c) in data.chunks(1 << 20).enumerate() {
            let sha = openssl::sha::sha256(c);
            sink.write((i << 20) as u64, c, Some(&sha)).expect("chunk");
        }
        let held = sink.finish().expect("finish");
        assert_eq!(held.sha256, digest);
        assert_eq!(
            s.progress(m, "scan.pdf").expect("p"),
            Progress::Complete(held)
        );
        let (mut f, _) = s.open_held(m, "scan.pdf").expect("open");
        let mut back = Vec::new();
        f.read_to_end(&mut back).expect("read");
        assert_eq!(back, data);
    }

    #[test]
    fn an_interrupted_transfer_resumes_from_the_bytes_held() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = store(dir.path());
        let data = bytes(2_500_000);
        let digest = openssl::sha::sha256(&data);
        let m = Uuid::new_v4();
        let size = data.len() as u64;
        {
            let mut sink = s.receive(m, "a", digest, size, "KZ", 0).expect("begin");
            sink.write(0, &data[..1_000_000], None).expect("chunk");
            // Dropped without finishing: the process died.
        }
        let Progress::Partial(have) = s.progress_of(m, "a", &digest, size, "KZ").expect("p") else {
            panic!("expected a partial transfer");
        };
        assert_eq!(have, 1_000_000);
        let err = s
            .receive(m, "a", digest, size, "KZ", 0)
            .err()
            .expect("offset refused");
        assert!(
            matches!(
                err,
                AttachmentError::Offset {
                    offered: 0,
                    have: 1_000_000
                }
            ),
            "{err}"
        );
        let mut sink = s.receive(m, "a", digest, size, "KZ", have).expect("resume");
        sink.write(have, &data[have as usize..], None)
            .expect("rest");
        assert_eq!(sink.finish().expect("finish").sha256, digest);
    }

    #[test]
    fn a_tampered_chunk_is_refused_and_nothing_of_it_is_written() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = store(dir.path());
        let data = bytes(2 << 20);
        let digest = openssl::sha::sha256(&data);
        let m = Uuid::new_v4();
        let mut sink = s
            .receive(m, "a", digest, data.len() as u64, "KZ", 0)
            .expect("begin");
        let first = &data[..1 << 20];
        sink.write(0, first, Some(&openssl::sha::sha256(first)))
            .expect("first");
        let mut tampered = data[1 << 20..].to_vec();
        tampered[10] ^= 1;
        let sha_of_original = openssl::sha::sha256(&data[1 << 20..]);
        let err = sink
            .write(1 << 20, &tampered, Some(&sha_of_original))
            .expect_err("tampered");
        assert!(matches!(err, AttachmentError::ChunkDigest { offset } if offset == 1 << 20));
        assert_eq!(sink.written(), 1 << 20);
        sink.write(1 << 20, &data[1 << 20..], Some(&sha_of_original))
            .expect("resent");
        assert_eq!(sink.finish().expect("finish").sha256, digest);
    }

    #[test]
    fn bytes_of_another_digest_are_discarded_at_the_end() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = store(dir.path());
        let data = bytes(1000);
        let m = Uuid::new_v4();
        let mut sink = s.receive(m, "a", [7u8; 32], 1000, "KZ", 0).expect("begin");
        sink.write(0, &data, None).expect("chunk");
        let err = sink.finish().expect_err("mismatch");
        assert!(
            matches!(err, AttachmentError::DigestMismatch { .. }),
            "{err}"
        );
        assert_eq!(s.progress(m, "a").expect("p"), Progress::Absent);
    }

    #[test]
    fn limits_and_bad_ids_are_refused_with_what_was_wrong() {
        let dir = tempfile::tempdir().expect("tmp");
        let limits = Limits {
            max_attachment_bytes: 100,
            ..Limits::default()
        };
        let s = Attachments::open(dir.path(), limits).expect("open");
        let m = Uuid::new_v4();
        let err = s
            .receive(m, "a", [0; 32], 101, "KZ", 0)
            .err()
            .expect("too large");
        assert!(
            err.to_string().contains("over this node's limit of 100"),
            "{err}"
        );
        for bad in ["", "..", ".hidden", "a/b", "a b", &"x".repeat(65)] {
            assert!(
                matches!(
                    s.receive(m, bad, [0; 32], 1, "KZ", 0).err(),
                    Some(AttachmentError::BadId(_))
                ),
                "{bad:?}"
            );
        }
        let mut sink = s.receive(m, "a", [0; 32], 10, "KZ", 0).expect("begin");
        let err = sink.write(0, &[0u8; 11], None).expect_err("overrun");
        assert!(matches!(err, AttachmentError::Overrun { .. }), "{err}");
        let (_, mut up) = s.upload().expect("upload");
        let err = up
            .write(0, &[0u8; 101], None)
            .expect_err("upload too large");
        assert!(matches!(err, AttachmentError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn an_upload_becomes_an_attachment_of_each_message_that_names_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = store(dir.path());
        let (up, mut sink) = s.upload().expect("upload");
        sink.write(0, b"hello", None).expect("write");
        let held = sink.finish().expect("finish");
        assert_eq!(held.sha256, openssl::sha::sha256(b"hello"));
        let (m1, m2) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(s.adopt(up, m1, "a").expect("adopt"), held);
        assert_eq!(s.adopt(up, m2, "a").expect("adopt"), held);
        assert_eq!(s.adopt(up, m2, "a").expect("again"), held);
        let (mut f, _) = s.open_held(m2, "a").expect("open");
        let mut back = Vec::new();
        f.read_to_end(&mut back).expect("read");
        assert_eq!(back, b"hello");
        assert_eq!(s.messages().expect("list").len(), 2);
        assert!(s.remove(m1).expect("remove") > 0);
        assert_eq!(s.held(m1, "a").expect("held"), None);
        assert_eq!(s.held(m2, "a").expect("held"), Some(held));
        assert!(matches!(
            s.adopt(Uuid::new_v4(), m1, "a"),
            Err(AttachmentError::UnknownUpload(_))
        ));
    }

    #[test]
    fn a_resumable_upload_continues_from_the_bytes_held_after_a_restart() {
        let dir = tempfile::tempdir().expect("tmp");
        let data = bytes(3_000_000);
        let digest = openssl::sha::sha256(&data);
        let want = UploadWant {
            size: data.len() as u64,
            sha256: Some(digest),
        };
        let id = {
            let s = store(dir.path());
            let id = s.begin_upload(&want).expect("begin");
            assert_eq!(
                s.upload_state(id).expect("state"),
                UploadState::Partial {
                    have: 0,
                    want: want.clone()
                }
            );
            let mut sink = s.resume_upload(id, 0).expect("resume at 0");
            sink.write(0, &data[..1_200_000], None).expect("first part");
            // A second writer is refused while the first holds the upload.
            assert!(matches!(
                s.resume_upload(id, 1_200_000),
                Err(AttachmentError::UploadBusy(u)) if u == id
            ));
            // Not nameable by a submission yet, and the error says how far it is.
            let e = s.upload_held(id).expect_err("incomplete");
            assert!(
                matches!(
                    e,
                    AttachmentError::UploadIncomplete {
                        have: 1_200_000,
                        size: 3_000_000,
                        ..
                    }
                ),
                "{e}"
            );
            id
            // Dropped without finishing or pausing: the process died.
        };
        let s = store(dir.path());
        let UploadState::Partial { have, .. } = s.upload_state(id).expect("state") else {
            panic!("expected a partial upload");
        };
        assert_eq!(have, 1_200_000);
        assert!(matches!(
            s.resume_upload(id, 0),
            Err(AttachmentError::Offset {
                offered: 0,
                have: 1_200_000
            })
        ));
        let mut sink = s.resume_upload(id, have).expect("resume");
        sink.write(have, &data[have as usize..2_000_000], None)
            .expect("second part");
        assert_eq!(sink.pause().expect("pause"), 2_000_000);
        drop(sink);
        let mut sink = s.resume_upload(id, 2_000_000).expect("resume again");
        // Bytes past the declared size are refused and nothing of them is written.
        let mut over = data[2_000_000..].to_vec();
        over.push(0);
        assert!(matches!(
            sink.write(2_000_000, &over, None),
            Err(AttachmentError::Overrun { .. })
        ));
        sink.write(2_000_000, &data[2_000_000..], None)
            .expect("last part");
        let held = sink.finish().expect("finish");
        assert_eq!(held.sha256, digest);
        assert_eq!(s.upload_held(id).expect("held"), held);
        // The declaration is gone once complete; a resume of a complete upload answers it.
        assert!(!dir
            .path()
            .join(format!("attachments/uploads/{id}.want"))
            .exists());
        assert_eq!(
            s.resume_upload(id, 0).expect("complete").already(),
            Some(held)
        );
        let m = Uuid::new_v4();
        assert_eq!(s.adopt(id, m, "scan").expect("adopt"), held);
    }

    #[test]
    fn an_upload_of_another_digest_than_declared_is_discarded() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = store(dir.path());
        let data = bytes(1000);
        let id = s
            .begin_upload(&UploadWant {
                size: 1000,
                sha256: Some([7; 32]),
            })
            .expect("begin");
        let mut sink = s.resume_upload(id, 0).expect("resume");
        sink.write(0, &data, None).expect("bytes");
        let e = sink.finish().expect_err("digest");
        assert!(matches!(e, AttachmentError::DigestMismatch { .. }), "{e}");
        assert!(matches!(
            s.upload_state(id),
            Err(AttachmentError::UnknownUpload(_))
        ));
        // Over the limit at the start, and unknown ids, are refused with what was wrong.
        let limit = Limits::default().max_attachment_bytes;
        assert!(matches!(
            s.begin_upload(&UploadWant {
                size: limit + 1,
                sha256: None
            }),
            Err(AttachmentError::TooLarge { .. })
        ));
        assert!(matches!(
            s.resume_upload(Uuid::new_v4(), 0),
            Err(AttachmentError::UnknownUpload(_))
        ));
    }

    #[test]
    fn collection_takes_every_file_of_an_old_upload_but_not_one_being_written() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = store(dir.path());
        let want = UploadWant {
            size: 10,
            sha256: None,
        };
        let idle = s.begin_upload(&want).expect("begin");
        let busy = s.begin_upload(&want).expect("begin");
        let (whole, mut sink) = s.upload().expect("upload");
        sink.write(0, b"abc", None).expect("bytes");
        let writing = s.resume_upload(busy, 0).expect("resume");
        assert_eq!(s.remove_uploads_before(i64::MAX), 1);
        let uploads = dir.path().join("attachments/uploads");
        for ext in ["data", "want", "done"] {
            assert!(
                !uploads.join(format!("{idle}.{ext}")).exists(),
                "{ext} left"
            );
        }
        assert!(uploads.join(format!("{busy}.want")).exists());
        assert!(uploads.join(format!("{whole}.data")).exists());
        drop(writing);
        drop(sink);
        assert_eq!(s.remove_uploads_before(i64::MAX), 2);
        assert_eq!(fs::read_dir(&uploads).expect("dir").count(), 0);
    }

    #[test]
    fn under_the_reserve_abandoned_partial_uploads_go_oldest_first_and_complete_ones_stay() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(dir.path());
        // A whole-file upload whose request broke off: its sink dropped unfinished.
        let (broken, mut sink) = s.upload().expect("upload");
        sink.write(0, &bytes(1000), None).expect("write");
        drop(sink);
        // A resumable upload left half-way, and one being written now.
        let want = UploadWant {
            size: 4000,
            sha256: None,
        };
        let idle = s.begin_upload(&want).expect("begin");
        let mut sink = s.resume_upload(idle, 0).expect("resume");
        sink.write(0, &bytes(2000), None).expect("write");
        sink.pause().expect("pause");
        drop(sink);
        let busy = s.begin_upload(&want).expect("begin");
        let writing = s.resume_upload(busy, 0).expect("resume");
        // A complete upload.
        let (done, mut sink) = s.upload().expect("upload");
        sink.write(0, &bytes(10), None).expect("write");
        sink.finish().expect("finish");
        let exists = |id: Uuid| {
            dir.path()
                .join(format!("attachments/uploads/{id}.data"))
                .exists()
        };

        // Resumable uploads touched after `idle_before` are not abandoned yet.
        assert_eq!(s.remove_partial_uploads(0, || false), (1, 1000));
        assert!(!exists(broken) && exists(idle) && exists(busy) && exists(done));
        // Once idle long enough, and only until there is enough room.
        let mut asked = 0;
        let (n, _) = s.remove_partial_uploads(i64::MAX, || {
            asked += 1;
            asked > 1
        });
        assert_eq!(n, 1);
        assert!(!exists(idle), "the idle partial upload went");
        assert!(exists(busy), "not the one being written");
        assert!(exists(done), "never a complete one");
        drop(writing);
        assert_eq!(s.remove_partial_uploads(i64::MAX, || false).0, 1);
        assert!(exists(done));
    }
}
