//! Import of a directory's entries from CSV, JSON or XML through a column mapping, and the
//! change-set operations that bring a directory to what was imported. Readers take bytes (this
//! crate reads no files) and report progress as they go.
//!
//! A mapping (TOML):
//! ```toml
//! code = "alpha2"                       # the column holding the code
//! names = { en = "name_en", ru = "name_ru" }
//! attributes = { numeric = "num" }
//! national = { KZ = "kz_code" }         # several codes in one cell: separated by ";"
//! valid_from = "from"                   # optional columns
//! valid_to = "to"
//! delimiter = ";"                       # CSV, default ","
//! record = "row"                        # XML: the element of one row, default "row"
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::change::Operation;
use crate::directory::Directory;
use crate::model::{Entry, RawEntry, RawValue};

/// Which columns hold what.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub code: String,
    #[serde(default)]
    pub names: BTreeMap<String, String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub national: BTreeMap<String, String>,
    #[serde(default)]
    pub valid_from: Option<String>,
    #[serde(default)]
    pub valid_to: Option<String>,
    #[serde(default)]
    pub delimiter: Option<String>,
    #[serde(default)]
    pub record: Option<String>,
}

impl Mapping {
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

/// The input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Xml,
}

impl Format {
    /// By file extension.
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "csv" | "tsv" | "txt" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "xml" => Some(Format::Xml),
            _ => None,
        }
    }
}

/// Why an import failed: where (row, counted from 1 after any header; or a line) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {reason}")]
pub struct ImportError {
    pub at: String,
    pub reason: String,
}

fn err(at: impl Into<String>, reason: impl Into<String>) -> ImportError {
    ImportError {
        at: at.into(),
        reason: reason.into(),
    }
}

/// Progress: bytes read so far and rows so far.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// Largest XML nesting an import accepts.
const MAX_XML_DEPTH: usize = 32;

/// Reads every row of `bytes` into entries.
pub fn read(
    format: Format,
    bytes: &[u8],
    mapping: &Mapping,
    progress: Progress<'_>,
) -> Result<Vec<RawEntry>, ImportError> {
    match format {
        Format::Csv => read_csv(bytes, mapping, progress),
        Format::Json => read_json(bytes, mapping, progress),
        Format::Xml => read_xml(bytes, mapping, progress),
    }
}

/// One row's cells by column name → an entry.
fn entry(
    at: &str,
    get: &dyn Fn(&str) -> Option<String>,
    m: &Mapping,
) -> Result<RawEntry, ImportError> {
    let need = |col: &str| {
        get(col)
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| err(at, format!("no column {col:?}")))
    };
    let code = need(&m.code)?;
    if code.is_empty() {
        return Err(err(at, format!("column {:?} (the code) is empty", m.code)));
    }
    let mut e = RawEntry {
        code,
        ..RawEntry::default()
    };
    for (lang, col) in &m.names {
        let v = need(col)?;
        if !v.is_empty() {
            e.names.insert(lang.clone(), v);
        }
    }
    for (name, col) in &m.attributes {
        let v = need(col)?;
        if !v.is_empty() {
            e.attributes.insert(name.clone(), RawValue::Text(v));
        }
    }
    for (state, col) in &m.national {
        let codes: Vec<String> = need(col)?
            .split(';')
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect();
        if !codes.is_empty() {
            e.national.insert(state.clone(), codes);
        }
    }
    if let Some(col) = &m.valid_from {
        e.valid_from = need(col)?;
    }
    if let Some(col) = &m.valid_to {
        e.valid_to = need(col)?;
    }
    Ok(e)
}

fn read_csv(
    bytes: &[u8],
    m: &Mapping,
    progress: Progress<'_>,
) -> Result<Vec<RawEntry>, ImportError> {
    let delimiter = match m.delimiter.as_deref() {
        None => b',',
        Some("\\t") | Some("\t") => b'\t',
        Some(d) if d.len() == 1 => d.as_bytes()[0],
        Some(d) => return Err(err("mapping", format!("delimiter {d:?} is not one byte"))),
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| err("line 1", e.to_string()))?
        .clone();
    let index: BTreeMap<String, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim().trim_start_matches('\u{feff}').to_owned(), i))
        .collect();
    let mut out = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            err(format!("line {line}"), e.to_string())
        })?;
        let line = row.position().map(|p| p.line()).unwrap_or(0);
        let get = |col: &str| index.get(col).and_then(|&i| row.get(i)).map(str::to_owned);
        out.push(entry(&format!("line {line}"), &get, m)?);
        if out.len() % 1000 == 0 {
            progress(
                row.position().map(|p| p.byte()).unwrap_or(0),
                out.len() as u64,
            );
        }
    }
    progress(bytes.len() as u64, out.len() as u64);
    Ok(out)
}

fn read_json(
    bytes: &[u8],
    m: &Mapping,
    progress: Progress<'_>,
) -> Result<Vec<RawEntry>, ImportError> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        err(
            format!("line {} column {}", e.line(), e.column()),
            e.to_string(),
        )
    })?;
    let rows = match &v {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(o) => match o.get("rows").or_else(|| o.get("entries")) {
            Some(serde_json::Value::Array(a)) => a,
            _ => {
                return Err(err(
                    "top level",
                    "expected an array of rows, or an object with \"rows\"",
                ))
            }
        },
        _ => return Err(err("top level", "expected an array of rows")),
    };
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let at = format!("row {}", i + 1);
        let obj = row
            .as_object()
            .ok_or_else(|| err(&at, "a row is not an object"))?;
        let get = |col: &str| {
            obj.get(col).and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                serde_json::Value::Bool(b) => Some(b.to_string()),
                serde_json::Value::Null => Some(String::new()),
                _ => None,
            })
        };
        out.push(entry(&at, &get, m)?);
        if out.len() % 1000 == 0 {
            progress(
                (bytes.len() as u64 * out.len() as u64) / rows.len().max(1) as u64,
                out.len() as u64,
            );
        }
    }
    progress(bytes.len() as u64, out.len() as u64);
    Ok(out)
}

/// Rows are `record` elements; a row's cells are its attributes and its child elements'
/// text, by local name. No DTD, no entities beyond the predefined ones.
fn read_xml(
    bytes: &[u8],
    m: &Mapping,
    progress: Progress<'_>,
) -> Result<Vec<RawEntry>, ImportError> {
    use quick_xml::events::Event;
    let record = m.record.as_deref().unwrap_or("row").to_owned();
    let text = std::str::from_utf8(bytes)
        .map_err(|e| err(format!("byte {}", e.valid_up_to()), "not UTF-8"))?;
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut row: Option<(usize, BTreeMap<String, String>)> = None;
    let mut field: Option<String> = None;
    let at = |reader: &quick_xml::Reader<&[u8]>| format!("byte {}", reader.buffer_position());
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| err(at(&reader), e.to_string()))?;
        match ev {
            Event::DocType(_) => {
                return Err(err(at(&reader), "a DOCTYPE is not accepted"));
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                if !empty {
                    depth += 1;
                    if depth > MAX_XML_DEPTH {
                        return Err(err(at(&reader), "nested too deeply"));
                    }
                }
                let local = e.local_name().as_ref().to_owned();
                if row.is_none() && local == record {
                    let mut cells = BTreeMap::new();
                    for a in e.attributes() {
                        let a = a.map_err(|x| err(at(&reader), x.to_string()))?;
                        let raw = a.value.to_string();
                        let v = unescape(&raw).map_err(|x| err(at(&reader), x))?;
                        cells.insert(a.key.local_name().as_ref().to_owned(), v);
                    }
                    if empty {
                        out.push(finish(&cells, out.len(), m)?);
                    } else {
                        row = Some((depth, cells));
                    }
                } else if let Some((_, cells)) = row.as_mut() {
                    let name = local;
                    if empty {
                        cells.entry(name).or_default();
                    } else {
                        field = Some(name);
                    }
                }
            }
            Event::Text(t) => {
                if let (Some((_, cells)), Some(f)) = (row.as_mut(), field.as_ref()) {
                    cells
                        .entry(f.clone())
                        .or_default()
                        .push_str(&t.into_inner());
                }
            }
            Event::GeneralRef(r) => {
                if let (Some((_, cells)), Some(f)) = (row.as_mut(), field.as_ref()) {
                    let name = r.into_inner();
                    let c = unescape(&format!("&{name};")).map_err(|x| err(at(&reader), x))?;
                    cells.entry(f.clone()).or_default().push_str(&c);
                }
            }
            Event::CData(t) => {
                if let (Some((_, cells)), Some(f)) = (row.as_mut(), field.as_ref()) {
                    cells
                        .entry(f.clone())
                        .or_default()
                        .push_str(&t.into_inner());
                }
            }
            Event::End(_) => {
                if row.as_ref().is_some_and(|(d, _)| *d == depth) {
                    let (_, cells) = row.take().unwrap_or_default();
                    out.push(finish(&cells, out.len(), m)?);
                    if out.len() % 1000 == 0 {
                        progress(reader.buffer_position(), out.len() as u64);
                    }
                }
                field = None;
                depth = depth.saturating_sub(1);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    progress(bytes.len() as u64, out.len() as u64);
    Ok(out)
}

/// Resolves the predefined entities and character references of XML; any other is refused.
fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after.find(';').ok_or("an & without its ;")?;
        let name = &after[..end];
        let c = match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            n if n.starts_with("#x") => u32::from_str_radix(&n[2..], 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| format!("&{n}; is not a character"))?,
            n if n.starts_with('#') => n[1..]
                .parse::<u32>()
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| format!("&{n}; is not a character"))?,
            other => return Err(format!("entity &{other}; is not accepted")),
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn finish(
    cells: &BTreeMap<String, String>,
    done: usize,
    m: &Mapping,
) -> Result<RawEntry, ImportError> {
    let get = |col: &str| cells.get(col).cloned();
    entry(&format!("row {}", done + 1), &get, m)
}

/// The operations that bring `current` (if the directory exists) to the imported entries:
/// a new code or interval is added; an entry equal to one in force is skipped; one that
/// differs from the entry in force on its start supersedes it from that day. Codes not in
/// the import are left as they are.
pub fn operations(
    current: Option<&Directory>,
    imported: &[RawEntry],
) -> Result<Vec<Operation>, ImportError> {
    let schema = current.map(|d| d.attributes.clone()).unwrap_or_default();
    let mut ops = Vec::new();
    for (i, raw) in imported.iter().enumerate() {
        let at = format!("row {}", i + 1);
        let e = Entry::from_raw(raw, &schema, None).map_err(|r| err(&at, r))?;
        let Some(dir) = current else {
            ops.push(Operation::Add { entry: raw.clone() });
            continue;
        };
        let history: Vec<&Entry> = dir.entries.iter().filter(|x| x.code == e.code).collect();
        if history.iter().any(|x| **x == e) {
            continue;
        }
        let start = e.valid_from;
        let in_force = history.iter().find(|x| match start {
            Some(d) => x.valid_on(d),
            None => x.valid_from.is_none(),
        });
        match in_force {
            None => ops.push(Operation::Add { entry: raw.clone() }),
            Some(x) if x.same_content(&e) && x.valid_from == e.valid_from => {
                // Only the end differs.
                match e.valid_to {
                    Some(to) if x.valid_to.is_none() => ops.push(Operation::Close {
                        code: e.code.clone(),
                        valid_to: to.to_string(),
                    }),
                    _ => {
                        return Err(err(
                            &at,
                            format!(
                                "{} changes the validity {} of an entry to {}: correct it with an explicit change set",
                                e.code,
                                x.interval(),
                                e.interval()
                            ),
                        ))
                    }
                }
            }
            Some(x) => match (x.valid_from, start) {
                (f, Some(s)) if f.is_none_or(|f| f < s) => {
                    ops.push(Operation::Supersede { entry: raw.clone() })
                }
                _ => {
                    return Err(err(
                        &at,
                        format!(
                            "{} differs from the entry in force ({}) but starts no later: give it a later valid_from",
                            e.code,
                            x.interval()
                        ),
                    ))
                }
            },
        }
    }
    Ok(ops)
}
