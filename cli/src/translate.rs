//! `tereze translate`: national documents to EAEU documents and back, by the mapping catalog.

use std::path::{Path, PathBuf};

use clap::Args;
use tereze_codecs::translate::{Catalog, FormatKind};
use tereze_codecs::xml;
use tereze_reference_data::Directories;

use crate::common::Failure;

/// Translate a document between a national format and an EAEU document.
///
/// National → EAEU: `--to eaeu` (or the EAEU format id). EAEU → national: `--from` the EAEU
/// format id. National → another state's national form goes through the EAEU document. A
/// submission set yields one EAEU document per recipient and needs --out-dir.
#[derive(Debug, Args)]
pub(crate) struct TranslateArgs {
    /// List the formats (id, kind, state, EAEU document, title) and exit.
    #[arg(long, conflicts_with_all = ["from", "to", "file"])]
    list: bool,
    /// The input's format id.
    #[arg(long, value_name = "FORMAT", required_unless_present = "list")]
    from: Option<String>,
    /// The output's format id, or "eaeu".
    #[arg(long, value_name = "FORMAT", required_unless_present = "list")]
    to: Option<String>,
    /// Also load the document models, mappings and submission sets (*.toml) in this directory.
    #[arg(long, value_name = "DIR")]
    mappings: Option<PathBuf>,
    /// Write each result to this directory (needed when there are several) and print the paths.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// The input document ("-" for stdin).
    #[arg(required_unless_present = "list")]
    file: Option<PathBuf>,
}

pub(crate) fn run(args: TranslateArgs) -> Result<(), Failure> {
    let mut catalog =
        Catalog::builtin().map_err(|e| Failure::Input(format!("built-in mappings: {e}")))?;
    if let Some(dir) = &args.mappings {
        catalog
            .add_files(read_mapping_dir(dir)?)
            .map_err(|e| Failure::Input(e.to_string()))?;
    }
    if args.list {
        let mut out = String::new();
        for f in catalog.formats() {
            let kind = match f.kind {
                FormatKind::Eaeu => "eaeu",
                FormatKind::National => "national",
                FormatKind::Submission => "submission",
            };
            out.push_str(&format!(
                "{:<32} {:<10} {:<3} {:<32} {}\n",
                f.id,
                kind,
                f.country.as_deref().unwrap_or("-"),
                f.document.as_deref().unwrap_or("-"),
                f.title
            ));
        }
        return crate::common::write_stdout(out.as_bytes());
    }
    let (Some(from), Some(to), Some(file)) = (&args.from, &args.to, &args.file) else {
        return Err(Failure::Input("--from, --to and FILE are required".into()));
    };
    let doc = crate::common::load(file, &xml::Limits::default())?;
    let results = catalog
        .translate(&Directories::builtin().today(), from, to, &doc)
        .map_err(|e| Failure::Input(format!("{}: cannot translate: {e}", file.display())))?;
    match (&args.out_dir, results.as_slice()) {
        (None, [one]) => crate::common::write_stdout(one.document.to_xml_pretty().as_bytes()),
        (None, many) => Err(Failure::Input(format!(
            "{}: {from} yields {} documents; give --out-dir",
            file.display(),
            many.len()
        ))),
        (Some(dir), results) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::Input(format!("{}: cannot create: {e}", dir.display())))?;
            let mut listing = String::new();
            for (i, r) in results.iter().enumerate() {
                let to_whom = r
                    .recipient
                    .as_ref()
                    .map(|p| format!("-{}-{}", p.country, p.authority))
                    .unwrap_or_default();
                let path = dir.join(format!("{:02}-{}{to_whom}.xml", i + 1, r.format));
                std::fs::write(&path, r.document.to_xml_pretty()).map_err(|e| {
                    Failure::Input(format!("{}: cannot write: {e}", path.display()))
                })?;
                listing.push_str(&format!("{}\n", path.display()));
            }
            crate::common::write_stdout(listing.as_bytes())
        }
    }
}

fn read_mapping_dir(dir: &Path) -> Result<Vec<(String, String)>, Failure> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Failure::Input(format!("{}: cannot read: {e}", dir.display())))?;
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Failure::Input(format!("{}: cannot read: {e}", path.display())))?;
            files.push((path.display().to_string(), text));
        }
    }
    files.sort();
    Ok(files)
}
