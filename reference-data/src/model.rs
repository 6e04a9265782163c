//! What a directory holds: entries with names by language, typed attributes, national
//! correspondences and a validity interval; and their textual form (`RawEntry`) as files,
//! change sets and imports carry them.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A calendar date (validity is by day, both ends inclusive).
pub type Date = NaiveDate;

/// The type of an attribute, declared by its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Text,
    Integer,
    Decimal,
    Bool,
    Date,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Text => "text",
            Kind::Integer => "integer",
            Kind::Decimal => "decimal",
            Kind::Bool => "bool",
            Kind::Date => "date",
        })
    }
}

/// A typed attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Integer(i64),
    Decimal(Decimal),
    Bool(bool),
    Date(Date),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Text(s) => f.write_str(s),
            Value::Integer(i) => write!(f, "{i}"),
            Value::Decimal(d) => write!(f, "{d}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Date(d) => write!(f, "{d}"),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Integer(i) => s.serialize_i64(*i),
            Value::Bool(b) => s.serialize_bool(*b),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

/// An attribute value as written: TOML/JSON natives or text, typed by the directory's schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RawValue {
    Bool(bool),
    Integer(i64),
    Text(String),
}

impl RawValue {
    fn typed(&self, kind: Kind) -> Result<Value, String> {
        let text = match self {
            RawValue::Text(t) => t.trim(),
            RawValue::Integer(i) => {
                return match kind {
                    Kind::Integer => Ok(Value::Integer(*i)),
                    Kind::Decimal => Ok(Value::Decimal(Decimal::from(*i))),
                    Kind::Text => Ok(Value::Text(i.to_string())),
                    other => Err(format!("{i} is not a {other}")),
                }
            }
            RawValue::Bool(b) => {
                return match kind {
                    Kind::Bool => Ok(Value::Bool(*b)),
                    other => Err(format!("{b} is not a {other}")),
                }
            }
        };
        match kind {
            Kind::Text => Ok(Value::Text(text.to_owned())),
            Kind::Integer => text
                .parse()
                .map(Value::Integer)
                .map_err(|_| format!("{text:?} is not an integer")),
            Kind::Decimal => Decimal::from_str(text)
                .map(Value::Decimal)
                .map_err(|_| format!("{text:?} is not a decimal number")),
            Kind::Bool => match text {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(format!("{text:?} is not true or false")),
            },
            Kind::Date => parse_date(text).map(Value::Date),
        }
    }
}

impl From<&Value> for RawValue {
    fn from(v: &Value) -> Self {
        match v {
            Value::Integer(i) => RawValue::Integer(*i),
            Value::Bool(b) => RawValue::Bool(*b),
            other => RawValue::Text(other.to_string()),
        }
    }
}

pub(crate) fn parse_date(s: &str) -> Result<Date, String> {
    crate::date::parse(s).map_err(|e| format!("{s:?} is not a date (YYYY-MM-DD): {e}"))
}

/// One entry as written in a directory file, a change set or an import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEntry {
    pub code: String,
    /// Language (`ru`, `kk`, `en`, …) → name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub names: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, RawValue>,
    /// State → national codes corresponding to this code; the first is the one written.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub national: BTreeMap<String, Vec<String>>,
    /// `YYYY-MM-DD`, inclusive; empty: the directory's default (or since always).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub valid_from: String,
    /// `YYYY-MM-DD`, inclusive; empty: open.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub valid_to: String,
}

/// One code over one validity interval. A code may have several entries (its history), whose
/// intervals never overlap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub code: String,
    pub names: BTreeMap<String, String>,
    pub attributes: BTreeMap<String, Value>,
    pub national: BTreeMap<String, Vec<String>>,
    /// `None`: since always.
    pub valid_from: Option<Date>,
    /// `None`: open.
    pub valid_to: Option<Date>,
}

impl Entry {
    /// Whether this entry is in force on `date`.
    #[inline]
    pub fn valid_on(&self, date: Date) -> bool {
        self.valid_from.is_none_or(|f| f <= date) && self.valid_to.is_none_or(|t| date <= t)
    }

    /// The interval as text: `2020-01-01..2024-12-31`, `..` for an open end.
    pub fn interval(&self) -> String {
        let d = |x: Option<Date>| x.map(|d| d.to_string()).unwrap_or_default();
        format!("{}..{}", d(self.valid_from), d(self.valid_to))
    }

    /// The name in `lang`, else English, else any.
    pub fn name(&self, lang: &str) -> &str {
        self.names
            .get(lang)
            .or_else(|| self.names.get("en"))
            .or_else(|| self.names.values().next())
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// Reads a written entry with `schema`'s attribute types; `default_from` fills an empty
    /// `valid_from`.
    pub fn from_raw(
        raw: &RawEntry,
        schema: &BTreeMap<String, Kind>,
        default_from: Option<Date>,
    ) -> Result<Self, String> {
        if raw.code.trim().is_empty() || raw.code.trim() != raw.code {
            return Err(format!(
                "code {:?}: empty or with surrounding spaces",
                raw.code
            ));
        }
        let mut attributes = BTreeMap::new();
        for (name, v) in &raw.attributes {
            let kind = schema.get(name).ok_or_else(|| {
                format!(
                    "{}: attribute {name:?} is not declared by the directory",
                    raw.code
                )
            })?;
            let value = v
                .typed(*kind)
                .map_err(|e| format!("{}: attribute {name}: {e}", raw.code))?;
            attributes.insert(name.clone(), value);
        }
        for (lang, n) in &raw.names {
            if lang.is_empty() || n.trim().is_empty() {
                return Err(format!("{}: an empty name or language", raw.code));
            }
        }
        let date = |field: &str, s: &str| -> Result<Option<Date>, String> {
            if s.is_empty() {
                Ok(None)
            } else {
                parse_date(s)
                    .map(Some)
                    .map_err(|e| format!("{}: {field}: {e}", raw.code))
            }
        };
        let valid_from = date("valid_from", &raw.valid_from)?.or(default_from);
        let valid_to = date("valid_to", &raw.valid_to)?;
        if let (Some(f), Some(t)) = (valid_from, valid_to) {
            if t < f {
                return Err(format!(
                    "{}: valid_to {t} is before valid_from {f}",
                    raw.code
                ));
            }
        }
        Ok(Self {
            code: raw.code.clone(),
            names: raw.names.clone(),
            attributes,
            national: raw.national.clone(),
            valid_from,
            valid_to,
        })
    }

    /// The written form (dates in full, never defaulted).
    pub fn to_raw(&self) -> RawEntry {
        let d = |x: Option<Date>| x.map(|d| d.to_string()).unwrap_or_default();
        RawEntry {
            code: self.code.clone(),
            names: self.names.clone(),
            attributes: self
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), RawValue::from(v)))
                .collect(),
            national: self.national.clone(),
            valid_from: d(self.valid_from),
            valid_to: d(self.valid_to),
        }
    }

    /// Whether two entries say the same apart from their validity.
    pub fn same_content(&self, other: &Entry) -> bool {
        self.code == other.code
            && self.names == other.names
            && self.attributes == other.attributes
            && self.national == other.national
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> BTreeMap<String, Kind> {
        [
            ("rate", Kind::Decimal),
            ("n", Kind::Integer),
            ("flag", Kind::Bool),
            ("since", Kind::Date),
            ("note", Kind::Text),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    fn raw(attrs: &[(&str, RawValue)]) -> RawEntry {
        RawEntry {
            code: "A".into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            ..RawEntry::default()
        }
    }

    #[test]
    fn attributes_are_typed_by_the_schema() {
        let t = |s: &str| RawValue::Text(s.into());
        let e = Entry::from_raw(
            &raw(&[
                ("rate", t("12.50")),
                ("n", RawValue::Integer(3)),
                ("flag", t("true")),
                ("since", t("2024-02-29")),
                ("note", RawValue::Integer(7)),
            ]),
            &schema(),
            None,
        )
        .expect("typed");
        assert_eq!(
            e.attributes["rate"],
            Value::Decimal(Decimal::from_str("12.50").expect("d"))
        );
        assert_eq!(e.attributes["n"], Value::Integer(3));
        assert_eq!(e.attributes["flag"], Value::Bool(true));
        assert_eq!(
            e.attributes["since"],
            Value::Date(NaiveDate::from_ymd_opt(2024, 2, 29).expect("date"))
        );
        assert_eq!(e.attributes["note"], Value::Text("7".into()));
        // The written form reads back the same.
        assert_eq!(Entry::from_raw(&e.to_raw(), &schema(), None), Ok(e));
    }

    #[test]
    fn a_wrong_type_or_an_undeclared_attribute_is_named() {
        let t = |s: &str| RawValue::Text(s.into());
        for (attrs, says) in [
            (
                vec![("rate", t("5%"))],
                "attribute rate: \"5%\" is not a decimal",
            ),
            (
                vec![("n", t("1.5"))],
                "attribute n: \"1.5\" is not an integer",
            ),
            (vec![("flag", RawValue::Integer(1))], "1 is not a bool"),
            (vec![("since", t("2023-02-29"))], "is not a date"),
            // chrono's `%Y-%m-%d` takes an unpadded month; the directories do not.
            (
                vec![("since", t("2023-2-1"))],
                "attribute since: \"2023-2-1\" is not a date (YYYY-MM-DD): the month (MM) \
                 takes exactly 2 digits",
            ),
            (vec![("colour", t("red"))], "\"colour\" is not declared"),
        ] {
            let e = Entry::from_raw(&raw(&attrs), &schema(), None).expect_err("refused");
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn intervals_are_inclusive_and_checked() {
        let mut r = raw(&[]);
        r.valid_from = "2024-01-01".into();
        r.valid_to = "2024-12-31".into();
        let e = Entry::from_raw(&r, &schema(), None).expect("ok");
        let d = |s: &str| parse_date(s).expect("date");
        assert!(!e.valid_on(d("2023-12-31")));
        assert!(e.valid_on(d("2024-01-01")));
        assert!(e.valid_on(d("2024-12-31")));
        assert!(!e.valid_on(d("2025-01-01")));
        r.valid_to = "2023-12-31".into();
        let err = Entry::from_raw(&r, &schema(), None).expect_err("to < from");
        assert!(err.contains("before valid_from"), "{err}");
        // A default start applies only where none is written.
        let mut open = raw(&[]);
        let e = Entry::from_raw(&open, &schema(), Some(d("2015-01-01"))).expect("ok");
        assert_eq!(e.valid_from, Some(d("2015-01-01")));
        open.valid_from = "2020-05-05".into();
        let e = Entry::from_raw(&open, &schema(), Some(d("2015-01-01"))).expect("ok");
        assert_eq!(e.valid_from, Some(d("2020-05-05")));
        assert_eq!(e.interval(), "2020-05-05..");
    }
}
