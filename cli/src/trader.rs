//! `tereze trader`: trader identifiers (docs/traders.md): check them offline, import this
//! state's register into a node, and resolve another state's trader through a node (the owner
//! state's signed answer, kept as evidence).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use serde_json::Value;
use tereze_reference_data::trader;

use crate::common::Failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RegisterFormat {
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TraderCommand {
    /// Check identifiers (country code + national number, check digits): one line per id with
    /// the reason or what the number encodes; exit 0 when all are valid, 1 when any is not.
    Validate {
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
    /// Import the state's register of traders (CSV with the header
    /// id,name,address,status,status_from, or a JSON array of such objects; one row per status,
    /// rows of one id make its history) into a node; progress on stderr.
    Import {
        /// The node's HTTP base URL, e.g. http://127.0.0.1:7102
        #[arg(long, value_name = "URL")]
        node: String,
        /// Default: by the file's extension.
        #[arg(long, value_enum)]
        format: Option<RegisterFormat>,
        #[command(flatten)]
        auth: crate::common::NationalAuth,
        file: PathBuf,
    },
    /// What the trader's state says of it, through a node (its own register, a kept answer, or
    /// the owner state's node asked now): exit 0 when registered and active on --as-of, 1 when
    /// not.
    Resolve {
        id: String,
        /// The node to ask through (HTTP base URL).
        #[arg(long, value_name = "URL")]
        via: String,
        /// YYYY-MM-DD; default today.
        #[arg(long, value_name = "DATE")]
        as_of: Option<String>,
        /// Keep the owner's signed answer here (evidence: `tereze recognise --trader-answers`).
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
        #[command(flatten)]
        auth: crate::common::NationalAuth,
    },
}

/// Batches of records per upload.
const BATCH: usize = 1000;

/// What a number encodes, as `key=value` pairs.
fn describe(v: &Value) -> String {
    match v {
        Value::Object(m) => m
            .iter()
            // The notes explain the scheme; `--format json` has them.
            .filter(|(k, _)| k.as_str() != "notes")
            .filter(|(_, v)| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

pub(crate) fn run(cmd: TraderCommand) -> Result<(), Failure> {
    match cmd {
        TraderCommand::Validate { format, ids } => {
            let mut all_valid = true;
            let mut out = String::new();
            let mut json = Vec::new();
            for id in &ids {
                match trader::parse(id) {
                    Ok(t) => {
                        let decoded = serde_json::to_value(trader::decode(&t))
                            .map_err(|e| Failure::Input(e.to_string()))?;
                        out.push_str(&format!("{id}: valid {}\n", describe(&decoded)));
                        json.push(serde_json::json!({"id": id, "valid": true, "decoded": decoded}));
                    }
                    Err(e) => {
                        all_valid = false;
                        out.push_str(&format!("{id}: invalid: {e}\n"));
                        json.push(
                            serde_json::json!({"id": id, "valid": false, "reason": e.to_string()}),
                        );
                    }
                }
            }
            if format == OutputFormat::Json {
                out = serde_json::to_string_pretty(&json)
                    .map_err(|e| Failure::Input(e.to_string()))?;
                out.push('\n');
            }
            crate::common::write_stdout(out.as_bytes())?;
            if all_valid {
                Ok(())
            } else {
                Err(Failure::Verdict(
                    "some identifiers are invalid (see above)".into(),
                ))
            }
        }
        TraderCommand::Import {
            node,
            format,
            auth,
            file,
        } => {
            let authorization = auth.header()?;
            let json = match format {
                Some(f) => f == RegisterFormat::Json,
                None => file.extension().is_some_and(|e| e == "json"),
            };
            let bytes = crate::common::read_input(&file)?;
            let records = tereze_trust::traders::read_register(&bytes, json)
                .map_err(|e| Failure::Input(format!("{}: {e}", file.display())))?;
            let bar = indicatif::ProgressBar::new(records.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} importing [{bar:30}] {pos}/{len} traders",
                )
                .map_err(|e| Failure::Input(e.to_string()))?
                .progress_chars("=> "),
            );
            let rt = crate::common::runtime()?;
            let url = format!("{}/v1/traders", node.trim_end_matches('/'));
            let mut last = Value::Null;
            for chunk in records.chunks(BATCH) {
                let body = serde_json::to_vec(chunk).map_err(|e| Failure::Input(e.to_string()))?;
                let answer = rt
                    .block_on(tereze_support::http::exchange_as(
                        &url,
                        Some(("application/json", body)),
                        Duration::from_secs(60),
                        1 << 20,
                        authorization.as_deref(),
                    ))
                    .map_err(|e| Failure::Input(format!("{url}: {e}")))?;
                last = serde_json::from_slice(&answer).unwrap_or(Value::Null);
                bar.inc(chunk.len() as u64);
            }
            bar.finish_and_clear();
            eprintln!(
                "{}: {} traders imported; the register holds {}",
                file.display(),
                records.len(),
                last["register"]
            );
            Ok(())
        }
        TraderCommand::Resolve {
            id,
            via,
            as_of,
            out,
            format,
            auth,
        } => {
            trader::parse(&id).map_err(|e| Failure::Input(format!("{id}: {e}")))?;
            let mut url = format!("{}/v1/traders/{id}/resolve", via.trim_end_matches('/'));
            if let Some(d) = &as_of {
                url.push_str(&format!("?as_of={d}"));
            }
            let answer = crate::common::runtime()?
                .block_on(tereze_support::http::exchange_as(
                    &url,
                    None,
                    Duration::from_secs(30),
                    16 << 20,
                    auth.header()?.as_deref(),
                ))
                .map_err(|e| Failure::Input(format!("{url}: {e}")))?;
            let v: Value = serde_json::from_slice(&answer)
                .map_err(|e| Failure::Input(format!("{url}: not JSON: {e}")))?;
            if let Some(path) = &out {
                let doc = v["document"].as_str().unwrap_or_default();
                std::fs::write(path, doc).map_err(|e| {
                    Failure::Input(format!("{}: cannot write: {e}", path.display()))
                })?;
            }
            let registered = v["registered"].as_bool().unwrap_or(false);
            let status = v["status"].as_str().unwrap_or("not registered yet");
            if format == OutputFormat::Json {
                let mut text =
                    serde_json::to_string_pretty(&v).map_err(|e| Failure::Input(e.to_string()))?;
                text.push('\n');
                crate::common::write_stdout(text.as_bytes())?;
            } else {
                let t = &v["answer"]["trader"];
                let line = if registered {
                    format!(
                        "{id}: {} — {status} on {} ({}); answer signed by {} ({})\n",
                        t["name"].as_str().unwrap_or_default(),
                        v["as_of"].as_str().unwrap_or_default(),
                        t["address"].as_str().unwrap_or_default(),
                        v["answer"]["signer"].as_str().unwrap_or_default(),
                        v["source"].as_str().unwrap_or_default(),
                    )
                } else {
                    format!(
                        "{id}: not in {}'s register; answer signed by {} ({})\n",
                        v["answer"]["state"].as_str().unwrap_or_default(),
                        v["answer"]["signer"].as_str().unwrap_or_default(),
                        v["source"].as_str().unwrap_or_default(),
                    )
                };
                crate::common::write_stdout(line.as_bytes())?;
            }
            if registered && status == "active" {
                Ok(())
            } else {
                Err(Failure::Verdict(format!(
                    "{id} is not registered and active on {}",
                    v["as_of"].as_str().unwrap_or_default()
                )))
            }
        }
    }
}
