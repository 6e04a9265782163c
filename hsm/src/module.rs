//! The PKCS#11 modules loaded by this process: one `Pkcs11` context per module library,
//! initialised once and shared by every key taken from it.
//!
//! **Why:** `C_Initialize` may be called once per process and module (a second call answers
//! `CKR_CRYPTOKI_ALREADY_INITIALIZED`), and SoftHSM2 reads `SOFTHSM2_CONF` at that call only.
//! Contexts are never finalised: keys live as long as the process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};

use crate::error::Pkcs11Error;

static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();

/// The context of the module at `path`, loading and initialising it on first use.
pub(crate) fn context(path: &Path) -> Result<Pkcs11, Pkcs11Error> {
    let modules = MODULES.get_or_init(Mutex::default);
    // A panic elsewhere while the map was held leaves it consistent (one insert), so a
    // poisoned lock is still usable.
    let mut modules = modules.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(ctx) = modules.get(path) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(path).map_err(|source| Pkcs11Error::ModuleMissing {
        module: path.to_owned(),
        source,
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Another library in this process initialised the module first: it is usable.
        Ok(()) | Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(source) => {
            let softhsm = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains("softhsm"));
            return Err(Pkcs11Error::Initialize {
                module: path.to_owned(),
                source,
                hint: if softhsm {
                    "; SoftHSM2 reads its token directory from the file SOFTHSM2_CONF names \
                     (default /etc/softhsm/softhsm2.conf): check that it exists and that its \
                     directories.tokendir is readable"
                } else {
                    ""
                },
            });
        }
    }
    modules.insert(path.to_owned(), ctx.clone());
    Ok(ctx)
}
