//! National-document translation, driven by declarative mappings.
//!
//! The [`Catalog`] holds EAEU document models, national mappings and submission sets, all read
//! from TOML files (`codecs/mappings/`, embedded at build time; more can be added at run time).
//! [`Catalog::translate`] turns a national document into EAEU documents (one, or several for a
//! submission set), an EAEU document into a state's national form, or one national form into
//! another through the EAEU document. Every result is validated against the document model
//! before it is returned; a failure returns nothing.

mod engine;
mod model;

use std::collections::BTreeMap;

use tereze_reference_data::tariff::{self, Flow, Missing};
use tereze_reference_data::On;

pub use engine::{Record, COUNTRY_DIRECTORY};
pub use model::{
    Completeness, Conversion, DocumentModel, Field, Mapping, MappingGroup, ModelElement,
    ModelGroup, Submission, SubmissionMessage, ValueType,
};

use crate::envelope::Participant;
use crate::xml::{Document, NodeId};

include!(concat!(env!("OUT_DIR"), "/builtin_mappings.rs"));

/// Why a translation failed. Nothing was produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The format id asked for.
    #[error("unknown format {0:?} (see tereze translate --list)")]
    UnknownFormat(String),
    #[error("no translation from {from} to {to}")]
    UnsupportedPair { from: String, to: String },
    /// A source field could not be read or converted.
    #[error("{format}: {path}: {rule}: {reason}")]
    Field {
        format: String,
        path: String,
        rule: String,
        reason: String,
    },
    /// The result does not satisfy the EAEU document model.
    #[error("{document}: {path}: {reason}")]
    Model {
        document: String,
        path: String,
        reason: String,
    },
}

/// A mapping file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct CatalogError {
    pub file: String,
    pub reason: String,
}

/// What a format is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatKind {
    Eaeu,
    National,
    Submission,
}

/// One line of `tereze translate --list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatInfo {
    pub id: String,
    pub kind: FormatKind,
    /// The state, for national formats and submissions.
    pub country: Option<String>,
    /// The EAEU document a national format maps to.
    pub document: Option<String>,
    pub title: String,
}

/// One translated document, and what the envelope carrying it needs.
#[derive(Debug, Clone)]
pub struct Translated {
    /// The format of `document`.
    pub format: String,
    pub document: Document,
    /// For EAEU results: the document model (type code, version, process codes).
    pub model: Option<DocumentModel>,
    /// For submission sets: who the message goes to.
    pub recipient: Option<Participant>,
}

fn model_info(m: &DocumentModel) -> FormatInfo {
    FormatInfo {
        id: m.id.clone(),
        kind: FormatKind::Eaeu,
        country: None,
        document: None,
        title: m.title.clone(),
    }
}

fn mapping_info(m: &Mapping) -> FormatInfo {
    FormatInfo {
        id: m.id.clone(),
        kind: FormatKind::National,
        country: Some(m.country.clone()),
        document: Some(m.document.clone()),
        title: m.title.clone(),
    }
}

fn submission_info(s: &Submission) -> FormatInfo {
    FormatInfo {
        id: s.id.clone(),
        kind: FormatKind::Submission,
        country: Some(s.country.clone()),
        document: None,
        title: s.title.clone(),
    }
}

/// Document models, mappings and submission sets, by id.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    models: BTreeMap<String, DocumentModel>,
    mappings: BTreeMap<String, Mapping>,
    submissions: BTreeMap<String, Submission>,
}

impl Catalog {
    /// The files shipped in `codecs/mappings/`.
    pub fn builtin() -> Result<Self, CatalogError> {
        let mut c = Self::default();
        c.add_files(
            BUILTIN
                .iter()
                .map(|(name, text)| (name.to_string(), text.to_string())),
        )?;
        Ok(c)
    }

    /// Adds files (name for errors, TOML text). Document models are taken first, so a mapping
    /// can name a model from the same batch; every mapping is checked against its model.
    pub fn add_files(
        &mut self,
        files: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), CatalogError> {
        let mut mappings = Vec::new();
        let mut submissions = Vec::new();
        for (name, text) in files {
            let err = |reason: String| CatalogError {
                file: name.clone(),
                reason,
            };
            let table: toml::Table = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
            if table.contains_key("type_code") {
                let mut m: DocumentModel = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
                check_model(&m).map_err(err)?;
                m.build_index();
                self.models.insert(m.id.clone(), m);
            } else if table.contains_key("message") {
                let s: Submission = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
                submissions.push((name, s));
            } else if table.contains_key("field") {
                let m: Mapping = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
                mappings.push((name, m));
            } else {
                return Err(err(
                    "neither a document model (type_code), a mapping (field) nor a submission set (message)".into(),
                ));
            }
        }
        for (name, m) in mappings {
            let model = self.models.get(&m.document).ok_or_else(|| CatalogError {
                file: name.clone(),
                reason: format!("document model {} is not known", m.document),
            })?;
            engine::check_mapping(&m, model).map_err(|reason| CatalogError {
                file: name.clone(),
                reason,
            })?;
            self.mappings.insert(m.id.clone(), m);
        }
        for (name, s) in submissions {
            for msg in &s.messages {
                if !self.mappings.contains_key(&msg.format) {
                    return Err(CatalogError {
                        file: name,
                        reason: format!("message format {} is not a known mapping", msg.format),
                    });
                }
            }
            self.submissions.insert(s.id.clone(), s);
        }
        Ok(())
    }

    /// Every format, sorted by id.
    pub fn formats(&self) -> Vec<FormatInfo> {
        let mut v: Vec<FormatInfo> = self
            .models
            .values()
            .map(model_info)
            .chain(self.mappings.values().map(mapping_info))
            .chain(self.submissions.values().map(submission_info))
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// One format by id, without listing them all.
    pub fn format(&self, id: &str) -> Option<FormatInfo> {
        self.models
            .get(id)
            .map(model_info)
            .or_else(|| self.mappings.get(id).map(mapping_info))
            .or_else(|| self.submissions.get(id).map(submission_info))
    }

    /// The EAEU document model with this type code (`R.CC.01.001`).
    pub fn model_for_type(&self, type_code: &str) -> Option<&DocumentModel> {
        self.models.values().find(|m| m.type_code == type_code)
    }

    pub fn model(&self, id: &str) -> Option<&DocumentModel> {
        self.models.get(id)
    }

    pub fn mapping(&self, id: &str) -> Option<&Mapping> {
        self.mappings.get(id)
    }

    /// Translates `input` from format `from` to format `to`. `to = "eaeu"` picks the EAEU
    /// document of a national format (or of each message of a submission set); from an EAEU
    /// format to itself re-emits the document checked and normalised (element order, fixed
    /// values, times in UTC).
    pub fn translate(
        &self,
        dirs: &On<'_>,
        from: &str,
        to: &str,
        input: &Document,
    ) -> Result<Vec<Translated>, TranslateError> {
        let unsupported = || TranslateError::UnsupportedPair {
            from: from.to_owned(),
            to: to.to_owned(),
        };
        if let Some(s) = self.submissions.get(from) {
            if to != "eaeu" {
                return Err(unsupported());
            }
            return self.submission(dirs, s, input);
        }
        if let Some(src) = self.mappings.get(from) {
            let model = self.model_of(src)?;
            let record = engine::read_national(src, model, dirs, input, input.root())?;
            engine::validate(model, dirs, &record)?;
            if to == "eaeu" || to == model.id {
                return Ok(vec![eaeu_result(model, &record, None)]);
            }
            let dst = self.mappings.get(to).ok_or_else(|| self.unknown(to))?;
            if dst.document != src.document {
                return Err(unsupported());
            }
            return Ok(vec![national_result(dst, model, dirs, &record)?]);
        }
        if let Some(model) = self.models.get(from) {
            let record = engine::read_eaeu(model, input)?;
            engine::validate(model, dirs, &record)?;
            if to == "eaeu" || to == model.id {
                return Ok(vec![eaeu_result(model, &record, None)]);
            }
            let dst = self.mappings.get(to).ok_or_else(|| self.unknown(to))?;
            if dst.document != model.id {
                return Err(unsupported());
            }
            return Ok(vec![national_result(dst, model, dirs, &record)?]);
        }
        Err(self.unknown(from))
    }

    fn unknown(&self, id: &str) -> TranslateError {
        TranslateError::UnknownFormat(id.to_owned())
    }

    fn model_of(&self, m: &Mapping) -> Result<&DocumentModel, TranslateError> {
        self.models
            .get(&m.document)
            .ok_or_else(|| self.unknown(&m.document))
    }

    fn submission(
        &self,
        dirs: &On<'_>,
        s: &Submission,
        input: &Document,
    ) -> Result<Vec<Translated>, TranslateError> {
        let root = input.root();
        let names_ok = input.element(root).is_some_and(|e| {
            let (_, local) = s.root.split_once(':').unwrap_or(("", &s.root));
            e.name.local == local && e.namespace.as_deref() == s.namespace.as_deref()
        });
        if !names_ok {
            return Err(TranslateError::Field {
                format: s.id.clone(),
                path: s.root.clone(),
                rule: "submission".into(),
                reason: "the document element is not this submission's".into(),
            });
        }
        let mut known: Vec<NodeId> = Vec::new();
        let mut out = Vec::new();
        for msg in &s.messages {
            let parts: Vec<NodeId> = input
                .child_elements(root)
                .filter(|c| {
                    input
                        .element(*c)
                        .is_some_and(|e| e.name.local == msg.select)
                })
                .collect();
            known.extend(&parts);
            let part = match parts.as_slice() {
                [] if msg.optional => continue,
                [] => {
                    return Err(TranslateError::Field {
                        format: s.id.clone(),
                        path: msg.select.clone(),
                        rule: "submission".into(),
                        reason: "required part is missing".into(),
                    })
                }
                [one] => *one,
                _ => {
                    return Err(TranslateError::Field {
                        format: s.id.clone(),
                        path: msg.select.clone(),
                        rule: "submission".into(),
                        reason: "appears more than once".into(),
                    })
                }
            };
            let mapping = self
                .mappings
                .get(&msg.format)
                .ok_or_else(|| self.unknown(&msg.format))?;
            let model = self.model_of(mapping)?;
            let record = engine::read_national(mapping, model, dirs, input, part)?;
            engine::validate(model, dirs, &record)?;
            out.push(eaeu_result(
                model,
                &record,
                Some(Participant {
                    country: msg.recipient_country.clone(),
                    authority: msg.recipient_authority.clone(),
                }),
            ));
        }
        if let Some(extra) = input.child_elements(root).find(|c| !known.contains(c)) {
            return Err(TranslateError::Field {
                format: s.id.clone(),
                path: input.path(extra),
                rule: "submission".into(),
                reason: "not a part of this submission: it would be lost".into(),
            });
        }
        Ok(out)
    }

    /// Reads an EAEU document of model `id` and checks it against the model.
    pub fn check_eaeu(
        &self,
        dirs: &On<'_>,
        id: &str,
        doc: &Document,
    ) -> Result<Record, TranslateError> {
        let model = self.models.get(id).ok_or_else(|| self.unknown(id))?;
        let record = engine::read_eaeu(model, doc)?;
        engine::validate(model, dirs, &record)?;
        Ok(record)
    }
}

impl Catalog {
    /// The permits the goods of an EAEU document of model `id` need on `dirs`' date (the
    /// integrated tariff) that the document does not list; empty when the model states no
    /// completeness rule. Commodity codes the nomenclature does not know are left to the code
    /// checks.
    pub fn missing_documents(&self, dirs: &On<'_>, id: &str, record: &Record) -> Vec<Missing> {
        let Some(rule) = self.models.get(id).and_then(|m| m.completeness.as_ref()) else {
            return Vec::new();
        };
        let flow = if rule.flow == "import" {
            Flow::Import
        } else {
            Flow::Export
        };
        let codes = record.values_at(&rule.commodity);
        let documents = record.values_at(&rule.documents);
        tariff::missing_documents(dirs.directories(), &codes, &documents, flow, dirs.date())
    }
}

/// What [`Catalog::missing_documents`] found missing, as one line.
pub fn describe_missing(missing: &[Missing], dirs: &On<'_>) -> String {
    missing
        .iter()
        .map(|m| {
            let kind = dirs
                .check(tariff::DOCUMENT_KINDS, &m.document)
                .map(|e| format!("{} ({})", m.document, e.name("en")))
                .unwrap_or_else(|_| m.document.clone());
            format!("{} needs {kind} under measure {}", m.code, m.measure)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn eaeu_result(
    model: &DocumentModel,
    record: &engine::Record,
    recipient: Option<Participant>,
) -> Translated {
    Translated {
        format: model.id.clone(),
        document: engine::write_eaeu(model, record),
        model: Some(model.clone()),
        recipient,
    }
}

fn national_result(
    mapping: &Mapping,
    model: &DocumentModel,
    dirs: &On<'_>,
    record: &engine::Record,
) -> Result<Translated, TranslateError> {
    Ok(Translated {
        format: mapping.id.clone(),
        document: engine::write_national(mapping, model, dirs, record)?,
        model: None,
        recipient: None,
    })
}

fn check_model(m: &DocumentModel) -> Result<(), String> {
    let (prefix, _) = m
        .root
        .split_once(':')
        .ok_or_else(|| format!("root {} needs a prefix", m.root))?;
    if !m.prefixes.contains_key(prefix) {
        return Err(format!("root prefix {prefix} is not in [prefixes]"));
    }
    for (i, e) in m.elements.iter().enumerate() {
        let at = format!("element {} ({})", i + 1, e.path);
        for step in e.path.split('/') {
            let name = step.trim_start_matches('@');
            if let Some((p, _)) = name.split_once(':') {
                if !m.prefixes.contains_key(p) {
                    return Err(format!("{at}: prefix {p} is not in [prefixes]"));
                }
            }
        }
        match e.value_type {
            ValueType::Code if e.directory.is_none() => {
                return Err(format!("{at}: type code needs directory"))
            }
            ValueType::Fixed if e.value.is_none() => {
                return Err(format!("{at}: type fixed needs value"))
            }
            ValueType::Decimal if e.scale.is_none() => {
                return Err(format!("{at}: type decimal needs scale"))
            }
            _ => {}
        }
        if m.elements[..i].iter().any(|o| o.path == e.path) {
            return Err(format!("{at}: defined twice"));
        }
    }
    Ok(())
}
