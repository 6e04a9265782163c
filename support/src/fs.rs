//! Secret files: refused when group or others may read them, and operator or client tokens
//! read from them. Errors name the file and the secret, never the content.

use std::path::Path;

/// Why a secret file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read: {0}")]
    Unreadable(#[source] std::io::Error),
    #[error("mode {mode:o} lets group or others read {what}; chmod 600 it")]
    TooOpen { mode: u32, what: String },
}

/// Why a token file was refused; the text starts with the file's path.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: SecretError,
    },
    #[error("{path}: the token must be one line of at least {MIN_TOKEN} non-space characters")]
    Malformed { path: String },
}

/// Refuses a secret file (a private key, the operator token) that group or others may read or
/// write; `what` names the secret in the message, which never includes its content.
pub fn owner_only(path: &Path, what: &str) -> Result<(), SecretError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(SecretError::Unreadable)?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretError::TooOpen {
                mode,
                what: what.to_owned(),
            });
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what);
    Ok(())
}

/// Reads a secret file refused by [`owner_only`] when others may read it.
pub fn read_secret(path: &Path, what: &str) -> Result<String, SecretError> {
    owner_only(path, what)?;
    std::fs::read_to_string(path).map_err(SecretError::Unreadable)
}

/// The shortest token accepted.
pub const MIN_TOKEN: usize = 32;

/// Reads a token (`what`: the operator token, a national client's token), refusing a file
/// others may read or a short token.
pub fn read_token(path: &Path, what: &str) -> Result<String, TokenError> {
    let shown = || path.display().to_string();
    let text = read_secret(path, what).map_err(|source| TokenError::File {
        path: shown(),
        source,
    })?;
    let token = text.trim().to_owned();
    if token.len() < MIN_TOKEN || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TokenError::Malformed { path: shown() });
    }
    Ok(token)
}
