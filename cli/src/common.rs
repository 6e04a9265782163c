//! What every subcommand shares: the outcome a command ends with ([`Failure`], which
//! `cli::run` maps to the exit code), reading inputs and writing stdout, aligned tables, the
//! national door's authentication and a small runtime. Depends on no subcommand, so the
//! subcommands and the dispatcher form no cycle.

/// The outcome of a command, mapped to the process exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A check said no (exit 1).
    Verdict(String),
    /// The input or the invocation was wrong (exit 2).
    Input(String),
    /// A running node met a condition a restart mends, e.g. a disk that refused a write
    /// (exit 75, EX_TEMPFAIL; systemd's `Restart=on-failure` restarts it).
    Unavailable(String),
}

/// Reads a file, or stdin for "-".
pub(crate) fn read_input(path: &std::path::Path) -> Result<Vec<u8>, Failure> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| Failure::Input(format!("stdin: cannot read: {e}")))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| Failure::Input(format!("{}: cannot read: {e}", path.display())))
}

/// Aligned columns, the first line a header.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let mut widths = Vec::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            let w = c.chars().count();
            if widths.len() <= i {
                widths.push(w);
            } else if widths[i] < w {
                widths[i] = w;
            }
        }
    }
    let mut out = String::new();
    for r in rows {
        let last = r.len().saturating_sub(1);
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i < last {
                let pad = widths[i] - c.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

/// How a command authenticates to a node's national door (HTTP).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct NationalAuth {
    /// A national client's token file (a `token_file` of node.toml's `[[national.client]]`;
    /// `tereze pki init-dev` writes `national.token`), sent as `Authorization: Bearer …`.
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<std::path::PathBuf>,
}

impl NationalAuth {
    /// The `Authorization` header's value, if a token file was given.
    pub(crate) fn header(&self) -> Result<Option<String>, Failure> {
        self.token_file
            .as_deref()
            .map(|p| {
                tereze_support::fs::read_token(p, "a national client token")
                    .map(|t| format!("Bearer {t}"))
                    .map_err(|e| Failure::Input(format!("--token-file {e}")))
            })
            .transpose()
    }
}

/// A single-threaded runtime for a command that makes a few network calls.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Input(format!("cannot start the runtime: {e}")))
}

/// The `*.xml` files of a directory with their bytes, in no particular order.
pub(crate) fn xml_files(
    dir: &std::path::Path,
) -> Result<Vec<(std::path::PathBuf, Vec<u8>)>, Failure> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Failure::Input(format!("{}: cannot read: {e}", dir.display())))?;
    let mut out = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_some_and(|e| e == "xml") {
            let bytes = read_input(&path)?;
            out.push((path, bytes));
        }
    }
    Ok(out)
}

/// Reads and parses an XML file; errors name the file, line and column.
pub(crate) fn load(
    path: &std::path::Path,
    limits: &tereze_codecs::xml::Limits,
) -> Result<tereze_codecs::xml::Document, Failure> {
    let bytes = read_input(path)?;
    tereze_codecs::xml::parse_with_limits(&bytes, limits)
        .map_err(|e| Failure::Input(format!("{}:{e}", path.display())))
}

pub(crate) fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Input(format!("cannot write to stdout: {e}")))
}
