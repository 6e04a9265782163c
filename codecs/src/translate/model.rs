//! What the translation files say, as types: EAEU document models (the common forms and the
//! rules a document must meet before it is signed), national mappings (which national field
//! becomes which EAEU data element, and how its value converts), and submission sets (one
//! national submission, several EAEU messages).

use std::collections::BTreeMap;

use serde::Deserialize;

/// An EAEU common form: its identity, namespaces and data elements in document order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentModel {
    /// Format id, `eaeu.<name>`.
    pub id: String,
    pub title: String,
    /// `R.<area>.<nn>.<nnn>`.
    pub type_code: String,
    pub version: String,
    /// Common process and its message and transaction codes, for the envelope.
    pub process: String,
    pub message: String,
    pub transaction: String,
    /// The document element, `prefix:Local`.
    pub root: String,
    pub prefixes: BTreeMap<String, String>,
    /// Where the data elements come from (WCO Data Model / UN/CEFACT names).
    #[serde(default)]
    pub basis: String,
    #[serde(default, rename = "group")]
    pub groups: Vec<ModelGroup>,
    #[serde(rename = "element")]
    pub elements: Vec<ModelElement>,
    /// Which permits the goods need, by the integrated tariff (reference-data `tariff`).
    #[serde(default)]
    pub completeness: Option<Completeness>,
    /// Lookups computed once when the catalog loads the model.
    #[serde(skip)]
    pub(crate) index: ModelIndex,
}

/// For every element and group path: its position and the group it belongs to.
#[derive(Debug, Clone, Default)]
pub(crate) struct ModelIndex {
    pub(crate) element: std::collections::HashMap<String, usize>,
    pub(crate) group_of: std::collections::HashMap<String, Option<String>>,
}

impl DocumentModel {
    /// The group a full path belongs to: the longest group path that prefixes it.
    pub(crate) fn compute_group_of(&self, full: &str) -> Option<String> {
        self.groups
            .iter()
            .map(|g| g.path.as_str())
            .filter(|g| {
                full.len() > g.len() && full.starts_with(g) && full.as_bytes()[g.len()] == b'/'
            })
            .max_by_key(|g| g.len())
            .map(str::to_owned)
    }

    pub(crate) fn build_index(&mut self) {
        let mut index = ModelIndex::default();
        for (i, e) in self.elements.iter().enumerate() {
            index.element.insert(e.path.clone(), i);
            index
                .group_of
                .insert(e.path.clone(), self.compute_group_of(&e.path));
        }
        for g in &self.groups {
            index
                .group_of
                .insert(g.path.clone(), self.compute_group_of(&g.path));
        }
        self.index = index;
    }
}

/// How a document shows that its goods have the permits the integrated tariff asks for:
/// where the commodity codes are, where the kinds of the permits it lists are, and which way
/// the goods move.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Completeness {
    /// `export` or `import`.
    pub flow: String,
    /// Path of the commodity codes (ТН ВЭД ЕАЭС), usually inside the goods-item group.
    pub commodity: String,
    /// Path of the permit documents' kinds (classifier of document kinds).
    pub documents: String,
}

/// A repeated element (goods items, permit documents).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelGroup {
    pub path: String,
    #[serde(default)]
    pub min: usize,
    #[serde(default = "unbounded")]
    pub max: usize,
}

fn unbounded() -> usize {
    9_999
}

/// One data element: an element's text or an attribute (`…/@name`), by full path from the
/// document element.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelElement {
    pub path: String,
    #[serde(rename = "type")]
    pub value_type: ValueType,
    #[serde(default)]
    pub required: bool,
    /// `text`: most characters.
    pub max_length: Option<usize>,
    /// `digits`: exact length; `decimal`: digits after the point.
    pub length: Option<usize>,
    pub scale: Option<u32>,
    /// `code`: the directory its values come from.
    pub directory: Option<String>,
    /// `fixed`: the only value.
    pub value: Option<String>,
    /// WCO Data Model / UN/CEFACT name of the data element, where one exists.
    #[serde(default)]
    pub wco: String,
}

/// Value types a data element can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    /// Free text, trimmed, at most `max_length` characters.
    Text,
    /// ASCII digits, exactly `length` of them when given.
    Digits,
    /// A whole number.
    Integer,
    /// A decimal with exactly `scale` digits after the point.
    Decimal,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339, written in UTC (`…Z`).
    Datetime,
    /// A UUID, lower-case, hyphenated.
    Uuid,
    /// A union code of `directory`.
    Code,
    /// A unique trader identifier: country code + national number.
    Trader,
    /// Always `value`; written even when no national field maps to it.
    Fixed,
    /// An XML identifier (an `Id` attribute), kept as is.
    Id,
}

/// One national format and how it maps to an EAEU document, both ways.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Format id, `<cc>.<name>`.
    pub id: String,
    pub title: String,
    /// The state whose format this is (ISO 3166-1 alpha-2); national codes are this state's.
    pub country: String,
    /// The EAEU document model id.
    pub document: String,
    /// The national document element, `prefix:Local` or `Local`.
    pub root: String,
    /// The national namespace (unprefixed names are in it), if any.
    pub namespace: Option<String>,
    /// UTC offset of the national form's local times, e.g. `+05:00`.
    #[serde(default = "utc")]
    pub timezone: String,
    #[serde(default, rename = "group")]
    pub groups: Vec<MappingGroup>,
    #[serde(rename = "field")]
    pub fields: Vec<Field>,
}

fn utc() -> String {
    "+00:00".into()
}

/// A repeated national element and the EAEU group it becomes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingGroup {
    pub name: String,
    pub national: String,
    /// Must be a group path of the document model.
    pub eaeu: String,
}

/// One national field ↔ one EAEU data element.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// National path (relative to the root, or to the group element); absent for a
    /// constant.
    pub national: Option<String>,
    /// EAEU path (relative to the root, or to the group element).
    pub eaeu: String,
    /// The group both paths are relative to.
    pub group: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub convert: Conversion,
    /// `date`, `datetime`: the national format: `%Y` (four digits), `%m %d %H %M %S` (two
    /// digits each), `%%` and literal characters, read at exactly those widths.
    pub format: Option<String>,
    /// `decimal`: the national decimal separator (default `.`).
    pub decimal_separator: Option<String>,
    /// `decimal`: the national thousands separator (default none), accepted only between
    /// groups of three digits of the whole-number part.
    pub group_separator: Option<String>,
    /// `decimal`: EAEU value = national value × factor (units, e.g. `1000` for t → kg).
    pub factor: Option<String>,
    /// `decimal`: digits after the separator in the national form.
    pub national_scale: Option<u32>,
    /// `code`: the directory that maps national codes to union codes.
    pub directory: Option<String>,
    /// `trader`: national path (same scope) of the country code field; the mapping's
    /// country when absent.
    pub country_field: Option<String>,
    /// `constant`: the EAEU value.
    pub value: Option<String>,
}

/// How a value converts between the national form and the EAEU document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Conversion {
    /// The same text both ways.
    #[default]
    Copy,
    Date,
    Datetime,
    Decimal,
    /// National code ↔ union code through a reference directory.
    Code,
    /// National taxpayer number ↔ unique trader identifier.
    Trader,
    /// No national field: the EAEU value is `value`, and must be that value coming back.
    Constant,
}

/// One national submission that yields several EAEU messages ("submit once").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    pub id: String,
    pub title: String,
    pub country: String,
    pub root: String,
    pub namespace: Option<String>,
    #[serde(rename = "message")]
    pub messages: Vec<SubmissionMessage>,
}

/// One message a submission produces.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmissionMessage {
    /// The national mapping applied.
    pub format: String,
    /// The child of the submission's root that holds that national document.
    pub select: String,
    pub recipient_country: String,
    pub recipient_authority: String,
    /// When true, a submission without this part yields no message rather than an error.
    #[serde(default)]
    pub optional: bool,
}
