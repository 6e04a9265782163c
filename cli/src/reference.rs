//! `tereze ref`: the reference directories (docs/reference-data.md). Queries read the shipped
//! directories plus, with `--sets DIR`, the signed change sets in DIR (verified against the
//! trust space, as a node does), so an operator or a conformance tester can see exactly what a
//! node answers for a date. `import` turns a national file into a change-set draft, `publish`
//! signs one as its owning authority, `sync` copies a node's signed sets into a directory.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use tereze_reference_data::import::{self, Format as InputFormat, Mapping};
use tereze_reference_data::tariff::{self, Flow};
use tereze_reference_data::{diff, ChangeSet, Directories, Entry, LookupError};

use crate::common::Failure;
use tereze_trust::change_set as reference_document;
use tereze_trust::{read_anchor, TrustSpace};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    Table,
    Json,
}

/// Where the directories come from.
#[derive(Debug, Args)]
pub(crate) struct Source {
    /// A directory of signed change sets (`*.xml`, e.g. from `tereze ref sync`) to apply over
    /// the shipped directories, each verified first (needs --trust).
    #[arg(long, value_name = "DIR", requires = "trust")]
    sets: Option<PathBuf>,
    /// The trust space the change sets are verified under (signed XML with --anchor, or TOML).
    #[arg(long, value_name = "FILE")]
    trust: Option<PathBuf>,
    /// The Commission's anchor (PEM): signs the trust space and the Commission's directories.
    #[arg(long, value_name = "FILE")]
    anchor: Option<PathBuf>,
}

/// How to answer.
#[derive(Debug, Args)]
pub(crate) struct Output {
    /// The date the answer is valid for (YYYY-MM-DD); default today (UTC).
    #[arg(long, value_name = "DATE")]
    as_of: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
    /// Language of the names in tables (ru, kk, en…).
    #[arg(long, default_value = "en")]
    lang: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RefCommand {
    /// The directories and their versions; with DIRECTORY, its entries in force on --as-of.
    List {
        directory: Option<String>,
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        output: Output,
    },
    /// One code's entry in force on --as-of, and its history (exit 1 if not in force).
    Get {
        directory: String,
        code: String,
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        output: Output,
    },
    /// Entries in force on --as-of whose code or any name starts with PREFIX.
    Search {
        directory: String,
        prefix: String,
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        output: Output,
    },
    /// What changed in a directory between two dates or two versions.
    Diff {
        directory: String,
        /// Compare the entries in force on this date…
        #[arg(long, value_name = "DATE", requires = "to", conflicts_with_all = ["from_version", "to_version"])]
        from: Option<String>,
        /// …with those in force on this one.
        #[arg(long, value_name = "DATE")]
        to: Option<String>,
        /// Compare the directory at this version (0: as shipped)…
        #[arg(long, value_name = "N", requires = "to_version")]
        from_version: Option<u64>,
        /// …with this version (as of --as-of).
        #[arg(long, value_name = "N")]
        to_version: Option<u64>,
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        output: Output,
    },
    /// The integrated tariff of a commodity code: duty, non-tariff measures and who issues
    /// each document, on --as-of.
    Tariff {
        /// ТН ВЭД ЕАЭС code, 2 to 10 digits.
        code: String,
        /// Only the measures for this direction.
        #[arg(long, value_enum)]
        flow: Option<FlowArg>,
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        output: Output,
    },
    /// Turn a national file (CSV, JSON or XML) into a change-set draft (TOML) that brings the
    /// directory to what the file says; progress on stderr.
    Import {
        #[arg(long)]
        directory: String,
        /// The column mapping (TOML; docs/reference-data.md).
        #[arg(long, value_name = "FILE")]
        mapping: PathBuf,
        /// The file's format (default: by its extension).
        #[arg(long, value_enum)]
        input_format: Option<InputFormatArg>,
        /// The change set's number (default: the directory's version + 1).
        #[arg(long)]
        number: Option<u64>,
        /// The issuing authority (default: the directory's owner).
        #[arg(long)]
        authority: Option<String>,
        /// Write the draft here instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        source: Source,
        file: PathBuf,
    },
    /// Sign a change-set draft as its owning authority (enveloped XMLDSig, SHA-256); the
    /// signed document goes to stdout or --out. Checks first that the draft applies.
    Publish {
        #[command(flatten)]
        key: crate::keys::SigningKeyArgs,
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        source: Source,
        draft: PathBuf,
    },
    /// Verify a signed change set against the trust space: exit 0 and what it changes, or
    /// exit 1 and why not.
    Verify {
        /// The trust space (signed XML with --anchor, or TOML).
        #[arg(long, value_name = "FILE")]
        trust: PathBuf,
        #[arg(long, value_name = "FILE")]
        anchor: Option<PathBuf>,
        file: PathBuf,
    },
    /// Copy the signed change sets a node holds (its HTTP listener) into a directory, one file
    /// per set, for --sets.
    Sync {
        /// The node's HTTP base URL, e.g. http://127.0.0.1:7201
        #[arg(long, value_name = "URL")]
        node: String,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Only this directory.
        #[arg(long)]
        directory: Option<String>,
        #[command(flatten)]
        auth: crate::common::NationalAuth,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum FlowArg {
    Export,
    Import,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum InputFormatArg {
    Csv,
    Json,
    Xml,
}

fn input(e: impl std::fmt::Display) -> Failure {
    Failure::Input(e.to_string())
}

fn date(s: &Option<String>) -> Result<NaiveDate, Failure> {
    match s {
        None => Ok(Utc::now().date_naive()),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| Failure::Input(format!("{s:?} is not a date (YYYY-MM-DD)"))),
    }
}

/// The shipped directories with the verified sets of `--sets` applied in order.
fn directories(source: &Source) -> Result<Directories, Failure> {
    let Some(dir) = &source.sets else {
        return Ok(Directories::builtin());
    };
    let (trust, anchor) = trust_space(source.trust.as_deref(), source.anchor.as_deref())?;
    with_sets(dir, &trust, anchor.as_ref())
}

/// The shipped directories with the signed change sets in `dir` (`*.xml`), each verified
/// under `trust` (and the Commission's `anchor`), applied in (directory, number) order.
pub(crate) fn with_sets(
    dir: &Path,
    trust: &TrustSpace,
    anchor: Option<&tereze_codecs::dsig::TrustStore>,
) -> Result<Directories, Failure> {
    let mut dirs = Directories::builtin();
    let mut sets = Vec::new();
    for (path, bytes) in crate::common::xml_files(dir)? {
        let (set, _) = reference_document::verify(&bytes, trust, anchor)
            .map_err(|e| Failure::Verdict(format!("{}: {e}", path.display())))?;
        sets.push((path, set));
    }
    sets.sort_by(|a, b| (&a.1.directory, a.1.number).cmp(&(&b.1.directory, b.1.number)));
    for (path, set) in sets {
        dirs.apply(&set)
            .map_err(|e| Failure::Verdict(format!("{}: {e}", path.display())))?;
    }
    Ok(dirs)
}

fn trust_space(
    trust: Option<&Path>,
    anchor: Option<&Path>,
) -> Result<(TrustSpace, Option<tereze_codecs::dsig::TrustStore>), Failure> {
    let trust = trust.ok_or_else(|| Failure::Input("--trust is needed".into()))?;
    let anchor = anchor.map(read_anchor).transpose().map_err(input)?;
    let space = TrustSpace::load(trust, anchor.as_ref()).map_err(input)?;
    Ok((space, anchor))
}

fn print_json(v: &serde_json::Value) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(v).map_err(input)?;
    text.push('\n');
    crate::common::write_stdout(text.as_bytes())
}

fn attributes(e: &Entry) -> String {
    e.attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn entry_rows<'a>(entries: impl IntoIterator<Item = &'a Entry>, lang: &str) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "CODE".to_owned(),
        "NAME".to_owned(),
        "VALID".to_owned(),
        "ATTRIBUTES".to_owned(),
    ]];
    for e in entries {
        rows.push(vec![
            e.code.clone(),
            e.name(lang).to_owned(),
            e.interval(),
            attributes(e),
        ]);
    }
    rows
}

pub(crate) fn run(cmd: RefCommand) -> Result<(), Failure> {
    match cmd {
        RefCommand::List {
            directory,
            source,
            output,
        } => list(directory, source, output),
        RefCommand::Get {
            directory,
            code,
            source,
            output,
        } => get(directory, code, source, output),
        RefCommand::Search {
            directory,
            prefix,
            source,
            output,
        } => search(directory, prefix, source, output),
        RefCommand::Diff {
            directory,
            from,
            to,
            from_version,
            to_version,
            source,
            output,
        } => changes(
            directory,
            from,
            to,
            from_version,
            to_version,
            source,
            output,
        ),
        RefCommand::Tariff {
            code,
            flow,
            source,
            output,
        } => show_tariff(code, flow, source, output),
        RefCommand::Publish {
            key,
            out,
            source,
            draft,
        } => publish(key, out, source, draft),
        RefCommand::Verify {
            trust,
            anchor,
            file,
        } => verify(trust, anchor, file),
        RefCommand::Import {
            directory,
            mapping,
            input_format,
            number,
            authority,
            out,
            source,
            file,
        } => {
            let dirs = directories(&source)?;
            let draft = import(
                &dirs,
                directory,
                &mapping,
                input_format,
                &file,
                number,
                authority,
            )?;
            write_out(out.as_deref(), draft.as_bytes())
        }
        RefCommand::Sync {
            node,
            out,
            directory,
            auth,
        } => sync(&node, &out, directory.as_deref(), auth.header()?.as_deref()),
    }
}

/// The directories and their versions, or one directory's entries in force on `--as-of`.
fn list(directory: Option<String>, source: Source, output: Output) -> Result<(), Failure> {
    let dirs = directories(&source)?;
    let as_of = date(&output.as_of)?;
    match directory {
        None => {
            let list: Vec<_> = dirs.ids().filter_map(|id| dirs.get(id)).collect();
            if output.format == OutputFormat::Json {
                return print_json(&json!(list
                    .iter()
                    .map(|d| json!({"id": d.id, "name": d.name, "owner": d.owner,
                        "version": d.version, "entries": d.entries.len()}))
                    .collect::<Vec<_>>()));
            }
            let mut rows = vec![vec![
                "ID".to_owned(),
                "VERSION".to_owned(),
                "OWNER".to_owned(),
                "ENTRIES".to_owned(),
                "NAME".to_owned(),
            ]];
            for d in list {
                rows.push(vec![
                    d.id.clone(),
                    d.version.to_string(),
                    d.owner.clone(),
                    d.entries.len().to_string(),
                    d.name.clone(),
                ]);
            }
            crate::common::write_stdout(crate::common::table(&rows).as_bytes())
        }
        Some(id) => {
            let entries = dirs.list(&id, as_of).map_err(input)?;
            if output.format == OutputFormat::Json {
                return print_json(&json!({
                    "directory": id,
                    "version": dirs.get(&id).map_or(0, |d| d.version),
                    "as_of": as_of.to_string(),
                    "entries": entries,
                }));
            }
            crate::common::write_stdout(
                crate::common::table(&entry_rows(entries, &output.lang)).as_bytes(),
            )
        }
    }
}

/// One code's entry in force on `--as-of` and its history; a verdict when not in force.
fn get(directory: String, code: String, source: Source, output: Output) -> Result<(), Failure> {
    let dirs = directories(&source)?;
    let as_of = date(&output.as_of)?;
    let history = dirs.history(&directory, &code).map_err(|e| match e {
        LookupError::UnknownDirectory(_) => input(e),
        _ => Failure::Verdict(e.to_string()),
    })?;
    let current = dirs.entry(&directory, &code, as_of);
    if output.format == OutputFormat::Json {
        print_json(&json!({
            "directory": directory,
            "as_of": as_of.to_string(),
            "entry": current.as_ref().ok(),
            "history": history,
        }))?;
    } else {
        let mut text = String::new();
        if let Ok(e) = &current {
            text.push_str(&format!("{} {}\n", e.code, e.interval()));
            for (lang, name) in &e.names {
                text.push_str(&format!("  name[{lang}] {name}\n"));
            }
            for (k, v) in &e.attributes {
                text.push_str(&format!("  {k} {v}\n"));
            }
            for (state, codes) in &e.national {
                text.push_str(&format!("  national[{state}] {}\n", codes.join(", ")));
            }
        }
        text.push_str("history:\n");
        text.push_str(&crate::common::table(&entry_rows(history, &output.lang)));
        crate::common::write_stdout(text.as_bytes())?;
    }
    current
        .map(|_| ())
        .map_err(|e| Failure::Verdict(e.to_string()))
}

/// Entries in force whose code or a name starts with `prefix`.
fn search(
    directory: String,
    prefix: String,
    source: Source,
    output: Output,
) -> Result<(), Failure> {
    let dirs = directories(&source)?;
    let as_of = date(&output.as_of)?;
    let found = dirs.search(&directory, &prefix, as_of).map_err(input)?;
    if output.format == OutputFormat::Json {
        return print_json(&json!({ "as_of": as_of.to_string(), "entries": found }));
    }
    crate::common::write_stdout(crate::common::table(&entry_rows(found, &output.lang)).as_bytes())
}

/// What changed in a directory between two dates or two versions.
fn changes(
    directory: String,
    from: Option<String>,
    to: Option<String>,
    from_version: Option<u64>,
    to_version: Option<u64>,
    source: Source,
    output: Output,
) -> Result<(), Failure> {
    let dirs = directories(&source)?;
    let changes = match (from_version, to_version) {
        (Some(a), Some(b)) => {
            let as_of = date(&output.as_of)?;
            let old = dirs.at_version(&directory, a).map_err(input)?;
            let new = dirs.at_version(&directory, b).map_err(input)?;
            diff(
                &old.list(&directory, as_of).map_err(input)?,
                &new.list(&directory, as_of).map_err(input)?,
            )
        }
        _ => {
            let (Some(a), Some(b)) = (from.as_ref(), to.as_ref()) else {
                return Err(Failure::Input(
                    "give --from DATE --to DATE, or --from-version N --to-version M".into(),
                ));
            };
            let (a, b) = (date(&Some(a.clone()))?, date(&Some(b.clone()))?);
            diff(
                &dirs.list(&directory, a).map_err(input)?,
                &dirs.list(&directory, b).map_err(input)?,
            )
        }
    };
    if output.format == OutputFormat::Json {
        return print_json(&json!({ "directory": directory, "changes": changes }));
    }
    crate::common::write_stdout(
        crate::common::table(&change_rows(&changes, &output.lang)).as_bytes(),
    )
}

/// The table of a diff: each change with the entry before and after it.
fn change_rows(changes: &[tereze_reference_data::Difference], lang: &str) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "CHANGE".to_owned(),
        "CODE".to_owned(),
        "BEFORE".to_owned(),
        "AFTER".to_owned(),
    ]];
    let show = |e: &Entry| format!("{} {} {}", e.name(lang), e.interval(), attributes(e));
    for c in changes {
        let (kind, before, after) = match c {
            tereze_reference_data::Difference::Added { entry } => {
                ("added", String::new(), show(entry))
            }
            tereze_reference_data::Difference::Removed { entry } => {
                ("removed", show(entry), String::new())
            }
            tereze_reference_data::Difference::Changed { before, after } => {
                ("changed", show(before), show(after))
            }
        };
        rows.push(vec![kind.to_owned(), c.code().to_owned(), before, after]);
    }
    rows
}

/// The integrated tariff of a commodity code on `--as-of`.
fn show_tariff(
    code: String,
    flow: Option<FlowArg>,
    source: Source,
    output: Output,
) -> Result<(), Failure> {
    let dirs = directories(&source)?;
    let as_of = date(&output.as_of)?;
    let mut t = tariff::tariff(&dirs, &code, as_of).map_err(|e| Failure::Verdict(e.to_string()))?;
    if let Some(f) = flow {
        let f = match f {
            FlowArg::Export => Flow::Export,
            FlowArg::Import => Flow::Import,
        };
        t.measures.retain(|m| m.applies_to(f));
    }
    if output.format == OutputFormat::Json {
        return print_json(&json!(t));
    }
    crate::common::write_stdout(tariff_text(&t, &dirs, as_of, &output.lang).as_bytes())
}

/// A tariff as text: the code's path, the duty and a table of the measures.
fn tariff_text(t: &tariff::Tariff, dirs: &Directories, as_of: NaiveDate, lang: &str) -> String {
    let mut text = format!("{} as of {}\n", t.code, t.as_of);
    for e in &t.path {
        text.push_str(&format!("  {:<10}  {}\n", e.code, e.name(lang)));
    }
    text.push_str(&format!(
        "import duty: {}\n",
        t.duty
            .as_deref()
            .map_or("not stated".to_owned(), |d| format!("{d} %"))
    ));
    if t.measures.is_empty() {
        text.push_str("non-tariff measures: none\n");
    } else {
        text.push_str("non-tariff measures:\n");
        let mut rows = vec![vec![
            "MEASURE".to_owned(),
            "KIND".to_owned(),
            "FLOW".to_owned(),
            "DOCUMENT".to_owned(),
            "ISSUED BY".to_owned(),
        ]];
        for m in &t.measures {
            let doc = dirs
                .entry(tariff::DOCUMENT_KINDS, &m.document, as_of)
                .map(|e| format!("{} {}", m.document, e.name(lang)))
                .unwrap_or_else(|_| m.document.clone());
            rows.push(vec![
                m.id.clone(),
                m.kind.clone(),
                m.flow.clone(),
                doc,
                m.authorities
                    .iter()
                    .map(|(s, a)| format!("{s}: {a}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ]);
        }
        text.push_str(&crate::common::table(&rows));
    }
    text
}

/// Signs a draft that applies (or whose directory is not here) as its owning authority.
fn publish(
    key: crate::keys::SigningKeyArgs,
    out: Option<PathBuf>,
    source: Source,
    draft: PathBuf,
) -> Result<(), Failure> {
    let text = String::from_utf8(crate::common::read_input(&draft)?)
        .map_err(|_| Failure::Input(format!("{}: not UTF-8", draft.display())))?;
    let set = ChangeSet::from_toml(&text)
        .map_err(|e| Failure::Input(format!("{}: {e}", draft.display())))?;
    // What it applies to may not be here (a later set, without --sets): said, not
    // refused; anything else wrong with it is refused before it is signed.
    match directories(&source)?.apply(&set) {
        Ok(_) => {}
        Err(e @ tereze_reference_data::ChangeError::Gap { .. }) => {
            eprintln!(
                "{}: not checked against its directory: {e} (give --sets)",
                draft.display()
            )
        }
        Err(e) => {
            return Err(Failure::Input(format!(
                "{}: does not apply: {e}",
                draft.display()
            )))
        }
    }
    let signer = key.load()?;
    let signed = reference_document::sign(&set, &signer)
        .map_err(|e| Failure::Input(format!("{}: cannot sign: {e}", draft.display())))?;
    write_out(out.as_deref(), &signed)
}

/// A signed change set checked under the trust space, and what it changes.
fn verify(trust: PathBuf, anchor: Option<PathBuf>, file: PathBuf) -> Result<(), Failure> {
    let (space, anchor) = trust_space(Some(&trust), anchor.as_deref())?;
    let bytes = crate::common::read_input(&file)?;
    let (set, signer) = reference_document::verify(&bytes, &space, anchor.as_ref())
        .map_err(|e| Failure::Verdict(format!("{}: {e}", file.display())))?;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for op in &set.operations {
        let kind = match op {
            tereze_reference_data::Operation::Add { .. } => "add",
            tereze_reference_data::Operation::Supersede { .. } => "supersede",
            tereze_reference_data::Operation::Close { .. } => "close",
        };
        *counts.entry(kind).or_default() += 1;
    }
    let summary = counts
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    crate::common::write_stdout(
        format!(
            "valid: {} change set {} by {} ({signer}), issued {}: {summary}\n",
            set.directory, set.number, set.authority, set.issued_at
        )
        .as_bytes(),
    )
}

/// A change-set draft (TOML) that brings `directory` to what the national `file` says,
/// checked to apply to what it was made from.
fn import(
    dirs: &Directories,
    directory: String,
    mapping: &Path,
    input_format: Option<InputFormatArg>,
    file: &Path,
    number: Option<u64>,
    authority: Option<String>,
) -> Result<String, Failure> {
    let current = dirs.get(&directory).ok_or_else(|| {
        Failure::Input(format!(
            "{directory}: no such directory (a new one is created by a change set with [define])"
        ))
    })?;
    let m = Mapping::from_toml(&String::from_utf8_lossy(&crate::common::read_input(
        mapping,
    )?))
    .map_err(|e| Failure::Input(format!("{}: {e}", mapping.display())))?;
    let format = input_format_of(input_format, file)?;
    let rows = read_rows(format, file, &m)?;
    let operations = import::operations(Some(current), &rows)
        .map_err(|e| Failure::Input(format!("{}: {e}", file.display())))?;
    let set = ChangeSet {
        directory: directory.clone(),
        number: number.unwrap_or(current.version + 1),
        authority: authority.unwrap_or_else(|| current.owner.clone()),
        issued_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        define: None,
        operations,
    };
    // The draft must apply to what it was made from.
    dirs.clone().apply(&set).map_err(|e| {
        Failure::Input(format!("{}: the draft does not apply: {e}", file.display()))
    })?;
    eprintln!(
        "{}: {} rows read, {} operations in change set {} of {directory}",
        file.display(),
        rows.len(),
        set.operations.len(),
        set.number
    );
    set.to_toml().map_err(input)
}

/// The national file's format: as given, else by its extension.
fn input_format_of(given: Option<InputFormatArg>, file: &Path) -> Result<InputFormat, Failure> {
    Ok(match given {
        Some(InputFormatArg::Csv) => InputFormat::Csv,
        Some(InputFormatArg::Json) => InputFormat::Json,
        Some(InputFormatArg::Xml) => InputFormat::Xml,
        None => file
            .extension()
            .and_then(|e| e.to_str())
            .and_then(InputFormat::from_extension)
            .ok_or_else(|| {
                Failure::Input(format!(
                    "{}: cannot tell the format from the extension; give --input-format",
                    file.display()
                ))
            })?,
    })
}

/// The national file's records through the mapping, with progress on stderr; at least one.
fn read_rows(
    format: InputFormat,
    file: &Path,
    m: &Mapping,
) -> Result<Vec<tereze_reference_data::RawEntry>, Failure> {
    let bytes = crate::common::read_input(file)?;
    let bar = indicatif::ProgressBar::new(bytes.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} importing [{bar:30}] {bytes}/{total_bytes} {msg}",
        )
        .map_err(input)?
        .progress_chars("=> "),
    );
    let mut on_progress = |done: u64, rows: u64| {
        bar.set_position(done);
        bar.set_message(format!("{rows} rows"));
    };
    // XML is decoded by the one parser's decoder (any encoding it reads, its refusals in its
    // words); the import's own reader then reads UTF-8.
    let decoded = match format {
        InputFormat::Xml => {
            let limits = tereze_codecs::xml::Limits {
                max_bytes: usize::MAX,
                ..tereze_codecs::xml::Limits::default()
            };
            match tereze_codecs::xml::to_utf8(&bytes, &limits)
                .map_err(|e| Failure::Input(format!("{}:{e}", file.display())))?
            {
                std::borrow::Cow::Owned(text) => Some(text.into_bytes()),
                std::borrow::Cow::Borrowed(_) => None,
            }
        }
        _ => None,
    };
    let bytes = decoded.unwrap_or(bytes);
    let rows = import::read(format, &bytes, m, &mut on_progress)
        .map_err(|e| Failure::Input(format!("{}: {e}", file.display())))?;
    bar.finish_and_clear();
    // A file with no records is not a national directory (a wrong file, or a wrong
    // `record` in the mapping): say so rather than write an empty draft.
    if rows.is_empty() {
        let what = match format {
            InputFormat::Xml => format!(
                "no <{}> elements (the mapping's `record`)",
                m.record.as_deref().unwrap_or("row")
            ),
            _ => "no rows".to_owned(),
        };
        return Err(Failure::Input(format!(
            "{}: no records to import: {what}",
            file.display()
        )));
    }
    Ok(rows)
}

fn write_out(out: Option<&Path>, bytes: &[u8]) -> Result<(), Failure> {
    match out {
        None => crate::common::write_stdout(bytes),
        Some(p) => std::fs::write(p, bytes)
            .map_err(|e| Failure::Input(format!("{}: cannot write: {e}", p.display()))),
    }
}

fn get_json(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    authorization: Option<&str>,
) -> Result<serde_json::Value, Failure> {
    let body = runtime
        .block_on(tereze_support::http::exchange_as(
            url,
            None,
            std::time::Duration::from_secs(30),
            256 << 20,
            authorization,
        ))
        .map_err(|e| Failure::Input(format!("{url}: {e}")))?;
    serde_json::from_slice(&body).map_err(|e| Failure::Input(format!("{url}: not JSON: {e}")))
}

/// Copies a node's signed change sets into `out`, one directory at a time, asking again until
/// the node has no more; each file is synced to disk.
fn sync(
    node: &str,
    out: &Path,
    only: Option<&str>,
    authorization: Option<&str>,
) -> Result<(), Failure> {
    let base = node.trim_end_matches('/');
    std::fs::create_dir_all(out)
        .map_err(|e| Failure::Input(format!("{}: cannot create: {e}", out.display())))?;
    let runtime = crate::common::runtime()?;
    let listed = get_json(&runtime, &format!("{base}/v1/reference"), authorization)?;
    let mut ids: Vec<String> = listed["directories"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|d| d["version"].as_u64().unwrap_or(0) > 0)
                .filter_map(|d| d["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if let Some(d) = only {
        ids.retain(|x| x == d);
    }
    let mut written = 0usize;
    for d in ids {
        if d.is_empty() || d.contains(['/', '\\']) || d.starts_with('.') {
            return Err(Failure::Input(format!(
                "{base}: directory id {d:?} is not a file name"
            )));
        }
        let mut since = 0u64;
        loop {
            let url = format!("{base}/v1/reference/change-sets?directory={d}&since={since}");
            let v = get_json(&runtime, &url, authorization)?;
            let sets = v["change_sets"].as_array().cloned().unwrap_or_default();
            if sets.is_empty() {
                break;
            }
            for s in &sets {
                let (Some(n), Some(doc)) = (s["number"].as_u64(), s["document"].as_str()) else {
                    return Err(Failure::Input(format!(
                        "{url}: a change set without number or document"
                    )));
                };
                if n <= since {
                    return Err(Failure::Input(format!(
                        "{url}: set {n} is not after {since}"
                    )));
                }
                let path = out.join(format!("{d}-{n:06}.xml"));
                let mut f = std::fs::File::create(&path).map_err(|e| {
                    Failure::Input(format!("{}: cannot write: {e}", path.display()))
                })?;
                f.write_all(doc.as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|e| {
                        Failure::Input(format!("{}: cannot write: {e}", path.display()))
                    })?;
                since = n;
                written += 1;
            }
        }
    }
    eprintln!("{written} change sets written to {}", out.display());
    Ok(())
}
