//! The integrated tariff: per commodity code (ТН ВЭД ЕАЭС, directory `P.CLS.HS`), the import
//! duty and the non-tariff measures (directory `P.CLS.NTM`: licences, permits, certificates,
//! each with the document kind that proves it and the authority of each state that issues
//! it), as of a date. The node's recognition uses the same answer to check that a document
//! set is complete.

use serde::Serialize;

use crate::directory::{Directories, LookupError};
use crate::model::{Date, Entry, Value};

/// The commodity nomenclature.
pub const HS: &str = "P.CLS.HS";
/// The classifier of document kinds (what proves a measure).
pub const DOCUMENT_KINDS: &str = "P.CLS.009";
/// Non-tariff measures by commodity code.
pub const MEASURES: &str = "P.CLS.NTM";

/// Which way the goods move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    Export,
    Import,
}

impl Flow {
    fn covers(self, flow: &str) -> bool {
        flow == "both"
            || (flow == "export" && self == Flow::Export)
            || (flow == "import" && self == Flow::Import)
    }
}

/// One measure that applies to a code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Measure {
    /// The measure's id in `P.CLS.NTM`.
    pub id: String,
    /// licence, permit or certificate.
    pub kind: String,
    /// The commodity code prefix it applies to.
    pub hs: String,
    /// export, import or both.
    pub flow: String,
    /// The document kind (`P.CLS.009`) that proves it.
    pub document: String,
    /// Who issues that document, by state (`KZ` → the authority).
    pub authorities: std::collections::BTreeMap<String, String>,
    pub name: String,
}

impl Measure {
    /// Whether the measure applies to goods moving this way.
    pub fn applies_to(&self, flow: Flow) -> bool {
        flow.covers(&self.flow)
    }
}

/// The answer to "what does this good need, and who issues it".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tariff {
    pub code: String,
    pub as_of: Date,
    /// The known codes from the chapter down to the most specific one, in force that day.
    pub path: Vec<Entry>,
    /// The import duty (percent ad valorem) of the most specific code that states one.
    pub duty: Option<String>,
    pub measures: Vec<Measure>,
}

fn text<'a>(e: &'a Entry, name: &str) -> &'a str {
    match e.attributes.get(name) {
        Some(Value::Text(t)) => t,
        _ => "",
    }
}

fn measure(e: &Entry) -> Measure {
    Measure {
        id: e.code.clone(),
        kind: text(e, "kind").to_owned(),
        hs: text(e, "hs").to_owned(),
        flow: text(e, "flow").to_owned(),
        document: text(e, "document").to_owned(),
        authorities: e
            .attributes
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("authority_")?.to_owned(), v.to_string())))
            .collect(),
        name: e.name("en").to_owned(),
    }
}

/// The tariff of `code` on `as_of`. The code must be digits (2 to 10); it is answered down to
/// the most specific code the nomenclature holds; no known chapter is an error.
pub fn tariff(dirs: &Directories, code: &str, as_of: Date) -> Result<Tariff, LookupError> {
    if !(2..=10).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LookupError::UnknownCode {
            directory: HS.into(),
            code: code.into(),
        });
    }
    let mut path = Vec::new();
    for len in [2, 4, 6, 8, 10] {
        if len > code.len() {
            break;
        }
        if let Ok(e) = dirs.entry(HS, &code[..len], as_of) {
            path.push(e.clone());
        }
    }
    if path.is_empty() {
        // Say why: unknown, or not in force that day.
        dirs.entry(HS, &code[..2], as_of)?;
    }
    let duty = path
        .iter()
        .rev()
        .find_map(|e| e.attributes.get("duty").map(|v| v.to_string()));
    let measures = match dirs.list(MEASURES, as_of) {
        Ok(list) => list
            .into_iter()
            .filter(|m| {
                let hs = text(m, "hs");
                !hs.is_empty() && code.starts_with(hs)
            })
            .map(measure)
            .collect(),
        Err(LookupError::UnknownDirectory(_)) => Vec::new(),
        Err(e) => return Err(e),
    };
    Ok(Tariff {
        code: code.to_owned(),
        as_of,
        path,
        duty,
        measures,
    })
}

/// A document the goods need that the set does not contain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Missing {
    pub code: String,
    pub measure: String,
    pub document: String,
}

/// The measures for `flow` of every code in `codes` whose document kind is not among
/// `documents`. Codes the nomenclature does not know are left to the code checks.
pub fn missing_documents(
    dirs: &Directories,
    codes: &[&str],
    documents: &[&str],
    flow: Flow,
    as_of: Date,
) -> Vec<Missing> {
    let mut out = Vec::new();
    for code in codes {
        let Ok(t) = tariff(dirs, code, as_of) else {
            continue;
        };
        for m in t.measures {
            if m.applies_to(flow) && !documents.contains(&m.document.as_str()) {
                out.push(Missing {
                    code: (*code).to_owned(),
                    measure: m.id,
                    document: m.document,
                });
            }
        }
    }
    out
}
