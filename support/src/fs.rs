//! Secret files: refused when group or others may read them, and operator or client tokens
//! read from them.

use std::path::Path;

/// Refuses a secret file (a private key, the operator token) that group or others may read or
/// write; `what` names the secret in the message, which never includes its content.
pub fn owner_only(path: &Path, what: &str) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| format!("cannot read: {e}"))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "mode {mode:o} lets group or others read {what}; chmod 600 it"
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what);
    Ok(())
}

/// The shortest token accepted.
pub const MIN_TOKEN: usize = 32;

/// Reads a token (`what`: the operator token, a national client's token), refusing a file
/// others may read or a short token.
pub fn read_token(path: &Path, what: &str) -> Result<String, String> {
    let shown = path.display();
    owner_only(path, what).map_err(|e| format!("{shown}: {e}"))?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: cannot read: {e}"))?;
    let token = text.trim().to_owned();
    if token.len() < MIN_TOKEN || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{shown}: the token must be one line of at least {MIN_TOKEN} non-space characters"
        ));
    }
    Ok(token)
}
