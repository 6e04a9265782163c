//! The translation engine. National documents are read into a [`Record`] keyed by EAEU paths
//! (every value already converted to its EAEU form), the record is validated against the
//! document model, and only then written out: as the EAEU document, in the model's element
//! order, or as another state's national form. A failure names the format, the field (with
//! item numbers), the rule and the reason, and produces nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use tereze_reference_data::On;

use super::model::{Conversion, DocumentModel, Field, Mapping, ModelElement, ValueType};
use super::TranslateError;
use crate::xml::{Document, Element, NamespaceDecl, NodeId};

/// The directory of countries, used to turn a national country field into the two letters of
/// a trader identifier.
pub const COUNTRY_DIRECTORY: &str = "P.CLS.019";

/// Values keyed by EAEU path relative to the document element (or to a group element), and
/// the items of each group keyed by the group's path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub values: BTreeMap<String, String>,
    pub groups: BTreeMap<String, Vec<Record>>,
}

impl Record {
    /// Every value at the EAEU path `path`, through the groups it lies in, in document order.
    pub fn values_at(&self, path: &str) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect(path, None, &mut out);
        out
    }

    fn collect<'a>(&'a self, path: &str, scope: Option<&str>, out: &mut Vec<&'a str>) {
        let rel = match scope {
            Some(g) => path.strip_prefix(g).and_then(|r| r.strip_prefix('/')),
            None => Some(path),
        };
        if let Some(v) = rel.and_then(|r| self.values.get(r)) {
            out.push(v);
        }
        for (g, items) in &self.groups {
            if path
                .strip_prefix(g.as_str())
                .is_some_and(|r| r.starts_with('/'))
            {
                for item in items {
                    item.collect(path, Some(g), out);
                }
            }
        }
    }
}

/// A path split into element steps and an optional final attribute.
#[derive(Debug, Clone)]
struct Path<'a> {
    steps: Vec<&'a str>,
    attribute: Option<&'a str>,
}

fn split_path(path: &str) -> Path<'_> {
    let mut steps: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let attribute = match steps.last() {
        Some(last) if last.starts_with('@') => {
            let a = &last[1..];
            steps.pop();
            Some(a)
        }
        _ => None,
    };
    Path { steps, attribute }
}

/// Resolves `prefix:Local` (or `Local`) names of one side of a translation.
#[derive(Debug, Clone)]
struct Names<'a> {
    prefixes: &'a BTreeMap<String, String>,
    default: Option<&'a str>,
}

impl Names<'_> {
    fn resolve<'n>(&self, qname: &'n str) -> (Option<String>, Option<&'n str>, &'n str) {
        match qname.split_once(':') {
            Some((p, l)) => (self.prefixes.get(p).cloned(), Some(p), l),
            None => (self.default.map(str::to_owned), None, qname),
        }
    }

    fn matches(&self, e: &Element, qname: &str) -> bool {
        let (ns, _, local) = self.resolve(qname);
        e.name.local == local && e.namespace == ns
    }

    fn element(&self, qname: &str) -> Element {
        let (ns, prefix, local) = self.resolve(qname);
        Element::new(prefix, local, ns.as_deref())
    }
}

fn children_named(doc: &Document, parent: NodeId, names: &Names<'_>, q: &str) -> Vec<NodeId> {
    doc.child_elements(parent)
        .filter(|c| doc.element(*c).is_some_and(|e| names.matches(e, q)))
        .collect()
}

/// Finds the single element at `steps` under `scope`, marking every element on the way as
/// visited. More than one match is an error (a repeated element the mapping does not know).
fn find(
    doc: &Document,
    scope: NodeId,
    steps: &[&str],
    names: &Names<'_>,
    visited: &mut BTreeSet<NodeId>,
) -> Result<Option<NodeId>, String> {
    let mut cur = scope;
    for step in steps {
        let found = children_named(doc, cur, names, step);
        match found.as_slice() {
            [] => return Ok(None),
            [one] => {
                visited.insert(*one);
                cur = *one;
            }
            many => {
                return Err(format!(
                    "{step} appears {} times; once is expected",
                    many.len()
                ))
            }
        }
    }
    Ok(Some(cur))
}

/// Reads the value at `path` under `scope`: text of an element (which must hold no elements)
/// or an attribute.
fn read_value(
    doc: &Document,
    scope: NodeId,
    path: &str,
    names: &Names<'_>,
    visited: &mut BTreeSet<NodeId>,
    seen_attributes: &mut BTreeSet<(NodeId, String)>,
) -> Result<Option<String>, String> {
    let p = split_path(path);
    let Some(node) = find(doc, scope, &p.steps, names, visited)? else {
        return Ok(None);
    };
    match p.attribute {
        Some(a) => {
            let value = doc
                .element(node)
                .and_then(|e| e.attribute(a))
                .map(str::to_owned);
            if value.is_some() {
                seen_attributes.insert((node, a.to_owned()));
            }
            Ok(value)
        }
        None => {
            if doc.child_elements(node).next().is_some() {
                return Err("holds elements where a value is expected".into());
            }
            let t = doc.text_content(node);
            Ok(Some(t.trim().to_owned()))
        }
    }
}

/// Creates (or reuses the last same-named child, since output is written in order) the
/// elements of `steps` under `scope`.
fn ensure(doc: &mut Document, scope: NodeId, steps: &[&str], names: &Names<'_>) -> NodeId {
    let mut cur = scope;
    for step in steps {
        let last = doc
            .child_elements(cur)
            .last()
            .filter(|c| doc.element(*c).is_some_and(|e| names.matches(e, step)));
        cur = match last {
            Some(c) => c,
            None => doc.append_element(cur, names.element(step)),
        };
    }
    cur
}

fn write_value(doc: &mut Document, scope: NodeId, path: &str, value: &str, names: &Names<'_>) {
    let p = split_path(path);
    let node = ensure(doc, scope, &p.steps, names);
    match p.attribute {
        Some(a) => {
            if let Some(e) = doc.element_mut(node) {
                e.set_attribute(a, value);
            }
        }
        None => {
            doc.append_text(node, value);
        }
    }
}

/// Every element and attribute in `scope` must have been read: nothing is dropped silently.
fn check_all_read(
    doc: &Document,
    scope: NodeId,
    visited: &BTreeSet<NodeId>,
    seen_attributes: &BTreeSet<(NodeId, String)>,
    allowed_attributes: &[&str],
) -> Result<(), (String, String)> {
    for n in doc.descendants_or_self(scope) {
        let Some(e) = doc.element(n) else { continue };
        if n != scope && !visited.contains(&n) {
            return Err((relative_path(doc, scope, n), "element is not mapped".into()));
        }
        for a in &e.attributes {
            let name = a.name.to_string();
            if !seen_attributes.contains(&(n, name.clone()))
                && !allowed_attributes.contains(&name.as_str())
            {
                return Err((
                    format!("{}/@{name}", relative_path(doc, scope, n)),
                    "attribute is not mapped".into(),
                ));
            }
        }
    }
    Ok(())
}

fn relative_path(doc: &Document, scope: NodeId, node: NodeId) -> String {
    let full = doc.path(node);
    let base = doc.path(scope);
    full.strip_prefix(&base)
        .map(|r| r.trim_start_matches('/').to_owned())
        .filter(|r| !r.is_empty())
        .unwrap_or(full)
}

fn join(group: Option<&str>, path: &str) -> String {
    match group {
        Some(g) => format!("{g}/{path}"),
        None => path.to_owned(),
    }
}

/// The model element for a full EAEU path.
fn model_element<'m>(model: &'m DocumentModel, full: &str) -> Option<&'m ModelElement> {
    match model.index.element.get(full) {
        Some(i) => model.elements.get(*i),
        None if model.index.element.is_empty() => model.elements.iter().find(|e| e.path == full),
        None => None,
    }
}

/// The group of the model a full path belongs to: the longest group path that prefixes it.
fn group_of<'m>(model: &'m DocumentModel, full: &str) -> Option<&'m str> {
    match model.index.group_of.get(full) {
        Some(g) => g.as_deref(),
        None => model
            .groups
            .iter()
            .map(|g| g.path.as_str())
            .filter(|g| {
                full.len() > g.len() && full.starts_with(g) && full.as_bytes()[g.len()] == b'/'
            })
            .max_by_key(|g| g.len()),
    }
}

// ---------------------------------------------------------------------------------------
// Dates and times, read exactly as the mapping's format writes them.
//
// chrono's parser is lenient where a national form must not be: `%Y` takes one to four
// digits (`22.11.26` is the year 26) or, signed, any number of them (`+12026`); `%d`, `%m`,
// `%H`, `%M` and `%S` take one or two (`1.2.2026`); whitespace is skipped before every number
// and a space in the format matches any run of whitespace, or none; `%S` takes 60 at any
// minute. So the engine reads a value against its format itself: every number has exactly
// its width in ASCII digits, every other character of the format is matched as written, and
// only then is the date or time checked to exist. Writing is the inverse, and refuses what
// the reading would refuse (a year beyond four digits, seconds the format has no place for),
// so whatever the engine writes in a national form, it reads back.

/// One piece of a national date or time format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Literal(char),
}

impl Piece {
    /// Exactly how many digits the number takes, and its name in errors.
    fn number(self) -> Option<(usize, &'static str)> {
        match self {
            Piece::Year => Some((4, "the year (%Y)")),
            Piece::Month => Some((2, "the month (%m)")),
            Piece::Day => Some((2, "the day (%d)")),
            Piece::Hour => Some((2, "the hour (%H)")),
            Piece::Minute => Some((2, "the minute (%M)")),
            Piece::Second => Some((2, "the second (%S)")),
            Piece::Literal(_) => None,
        }
    }
}

/// What a date or time format must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StampKind {
    Date,
    Datetime,
}

/// Splits a `format` into pieces. Only `%Y %m %d %H %M %S %%` are read (the ones whose width
/// is fixed); each number at most once; a date needs `%Y %m %d` and no time; a time also needs
/// `%H %M`.
fn pieces(format: &str, kind: StampKind) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(Piece::Literal(c));
            continue;
        }
        let piece = match chars.next() {
            Some('Y') => Piece::Year,
            Some('m') => Piece::Month,
            Some('d') => Piece::Day,
            Some('H') => Piece::Hour,
            Some('M') => Piece::Minute,
            Some('S') => Piece::Second,
            Some('%') => Piece::Literal('%'),
            Some(other) => {
                return Err(format!(
                    "format {format:?}: %{other} is not supported; only %Y %m %d %H %M %S \
                     and %% are, each with a fixed number of digits"
                ))
            }
            None => return Err(format!("format {format:?} ends with a lone %")),
        };
        if piece.number().is_some() && out.contains(&piece) {
            return Err(format!("format {format:?} has a number twice"));
        }
        out.push(piece);
    }
    let has = |p: Piece| out.contains(&p);
    let date = has(Piece::Year) && has(Piece::Month) && has(Piece::Day);
    let time = has(Piece::Hour) || has(Piece::Minute) || has(Piece::Second);
    match kind {
        StampKind::Date if !date || time => Err(format!(
            "format {format:?} must have %Y, %m and %d and no time, for a date"
        )),
        StampKind::Datetime if !date || !has(Piece::Hour) || !has(Piece::Minute) => Err(format!(
            "format {format:?} must have %Y, %m, %d, %H and %M, for a time"
        )),
        _ => Ok(out),
    }
}

/// A calendar date and a time of day, as numbers, before they are checked to exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Stamp {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl Stamp {
    fn date(&self) -> Result<NaiveDate, String> {
        NaiveDate::from_ymd_opt(self.year as i32, self.month, self.day).ok_or_else(|| {
            format!(
                "there is no day {:02} in month {:02} of {:04}",
                self.day, self.month, self.year
            )
        })
    }

    fn datetime(&self) -> Result<NaiveDateTime, String> {
        let time = chrono::NaiveTime::from_hms_opt(self.hour, self.minute, self.second)
            .ok_or_else(|| {
                format!(
                    "there is no time {:02}:{:02}:{:02} (hours run 00 to 23, minutes and \
                     seconds 00 to 59)",
                    self.hour, self.minute, self.second
                )
            })?;
        Ok(self.date()?.and_time(time))
    }
}

/// Reads `raw` exactly as `pieces` lay it out (see the section comment).
fn read_stamp(raw: &str, pieces: &[Piece]) -> Result<Stamp, String> {
    let mut stamp = Stamp::default();
    let mut rest = raw;
    for (i, piece) in pieces.iter().enumerate() {
        match piece.number() {
            None => {
                let Piece::Literal(want) = *piece else {
                    continue;
                };
                match rest.chars().next() {
                    Some(c) if c == want => rest = &rest[c.len_utf8()..],
                    Some(c) => {
                        return Err(format!(
                            "character {} is {c:?} where {want:?} is expected",
                            raw[..raw.len() - rest.len()].chars().count() + 1
                        ))
                    }
                    None => return Err(format!("it ends where {want:?} is expected")),
                }
            }
            Some((width, name)) => {
                let run = rest.bytes().take_while(u8::is_ascii_digit).count();
                // A number directly followed by another (`%Y%m%d`) takes its width from a
                // longer run; otherwise the run must be exactly the width.
                let next_is_number = pieces.get(i + 1).is_some_and(|p| p.number().is_some());
                if run < width || (run > width && !next_is_number) {
                    let found = tereze_reference_data::date::found_instead(rest, run);
                    return Err(format!(
                        "{name} takes exactly {width} digits, found {found}"
                    ));
                }
                let n: u32 = rest[..width]
                    .parse()
                    .map_err(|_| format!("{name} is not a number"))?;
                rest = &rest[width..];
                match piece {
                    Piece::Year => stamp.year = n,
                    Piece::Month => stamp.month = n,
                    Piece::Day => stamp.day = n,
                    Piece::Hour => stamp.hour = n,
                    Piece::Minute => stamp.minute = n,
                    Piece::Second => stamp.second = n,
                    Piece::Literal(_) => {}
                }
            }
        }
    }
    if !rest.is_empty() {
        return Err(format!("{rest:?} follows the end of the form"));
    }
    Ok(stamp)
}

/// Writes a stamp as `pieces` lay it out; refuses what [`read_stamp`] could not read back or
/// what the format has no place for.
fn write_stamp(stamp: &Stamp, pieces: &[Piece]) -> Result<String, String> {
    if stamp.year > 9999 {
        return Err(format!(
            "the year {} does not fit the national form's four digits",
            stamp.year
        ));
    }
    if stamp.second != 0 && !pieces.contains(&Piece::Second) {
        return Err(format!(
            "the time has {} seconds; the national form has no place for seconds",
            stamp.second
        ));
    }
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Year => out.push_str(&format!("{:04}", stamp.year)),
            Piece::Month => out.push_str(&format!("{:02}", stamp.month)),
            Piece::Day => out.push_str(&format!("{:02}", stamp.day)),
            Piece::Hour => out.push_str(&format!("{:02}", stamp.hour)),
            Piece::Minute => out.push_str(&format!("{:02}", stamp.minute)),
            Piece::Second => out.push_str(&format!("{:02}", stamp.second)),
            Piece::Literal(c) => out.push(*c),
        }
    }
    Ok(out)
}

/// The year of a chrono date as a stamp's, refusing years before 0 (which no four-digit form
/// can write).
fn stamp_of(t: &NaiveDateTime) -> Result<Stamp, String> {
    use chrono::{Datelike, Timelike};
    let year = u32::try_from(t.year())
        .map_err(|_| format!("the year {} is before the year 0000", t.year()))?;
    Ok(Stamp {
        year,
        month: t.month(),
        day: t.day(),
        hour: t.hour(),
        minute: t.minute(),
        second: t.second(),
    })
}

/// The EAEU form of a date, `YYYY-MM-DD`, read strictly.
const EAEU_DATE: &str = "%Y-%m-%d";

/// Read by the workspace's one strict `YYYY-MM-DD` reader, which every other door uses too,
/// so a date the engine takes is one the node, the trust space and the CLI take.
fn read_eaeu_date(v: &str) -> Result<NaiveDate, String> {
    tereze_reference_data::date::parse(v).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------
// Value conversions.

fn parse_offset(tz: &str) -> Option<FixedOffset> {
    DateTime::parse_from_rfc3339(&format!("2000-01-01T00:00:00{tz}"))
        .ok()
        .map(|d| *d.offset())
}

/// The characters a field's `group_separator` stands for: an ordinary space also stands for
/// the no-break spaces (U+00A0, U+202F) word processors put between groups; any other
/// separator only for itself.
fn group_separators(field: &Field) -> Vec<&str> {
    match field.group_separator.as_deref() {
        None | Some("") => Vec::new(),
        Some(" ") => vec![" ", "\u{A0}", "\u{202F}"],
        Some(g) => vec![g],
    }
}

/// How a field's numbers are written, for errors: `1 234 567,5`.
fn decimal_example(field: &Field) -> String {
    format_national_decimal(Decimal::new(12_345_675, 1), field)
}

/// Reads a national decimal. The decimal separator appears at most once; a group separator
/// only between groups of exactly three digits of the whole-number part (`1 234 567,5`, the
/// first group one to three digits), never in the fraction. A number written without any
/// group separator is read too. Anything else is refused rather than guessed at: a group
/// separator stripped wherever it falls would read `40000,5`, a decimal comma typed where a
/// point belongs, as 400005.
fn parse_national_decimal(raw: &str, field: &Field) -> Result<Decimal, String> {
    let dec = field.decimal_separator.as_deref().unwrap_or(".");
    let seps = group_separators(field);
    let s = raw.trim();
    let (sign, body) = match s.strip_prefix('-') {
        Some(b) => ("-", b),
        None => ("", s),
    };
    if dec != "." && body.contains('.') && !seps.contains(&".") {
        return Err(format!(
            "{raw:?}: '.' is not the decimal separator here ({dec:?} is)"
        ));
    }
    let (int, frac) = match body.split_once(dec) {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let rules = || match field.group_separator.as_deref() {
        Some(g) if !g.is_empty() => format!(
            "the group separator {g:?}{} may only stand between groups of three digits of \
             the whole-number part, never in the fraction (like {})",
            if g == " " { " (or U+00A0, U+202F)" } else { "" },
            decimal_example(field)
        ),
        _ => format!(
            "digits are not grouped here (like {})",
            decimal_example(field)
        ),
    };
    if let Some(f) = frac {
        if seps.iter().any(|g| f.contains(g)) {
            return Err(format!("{raw:?}: {}", rules()));
        }
    }
    let plain_int = if seps.iter().any(|g| int.contains(g)) {
        let mut groups = vec![int];
        for g in &seps {
            groups = groups.into_iter().flat_map(|p| p.split(g)).collect();
        }
        let three = |p: &str| p.len() == 3 && p.bytes().all(|b| b.is_ascii_digit());
        let first = groups.first().copied().unwrap_or_default();
        let first_ok = (1..=3).contains(&first.len()) && first.bytes().all(|b| b.is_ascii_digit());
        if !first_ok || !groups[1..].iter().all(|p| three(p)) {
            return Err(format!("{raw:?}: {}", rules()));
        }
        groups.concat()
    } else {
        int.to_owned()
    };
    let plain = match frac {
        Some(f) => format!("{sign}{plain_int}.{f}"),
        None => format!("{sign}{plain_int}"),
    };
    strict_decimal(&plain).ok_or_else(|| {
        // Whitespace where no separator may stand is most likely a separator of another
        // convention (an ordinary space where U+202F groups): say what groups here.
        if plain.chars().any(char::is_whitespace) {
            format!("{raw:?} is not a number: {}", rules())
        } else {
            format!("{raw:?} is not a number")
        }
    })
}

/// Digits with at most one point and an optional leading minus; nothing else.
fn strict_decimal(s: &str) -> Option<Decimal> {
    let body = s.strip_prefix('-').unwrap_or(s);
    let mut parts = body.splitn(2, '.');
    let int = parts.next()?;
    let frac = parts.next();
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    Decimal::from_str(s).ok()
}

fn with_scale(d: Decimal, scale: u32) -> Result<Decimal, String> {
    let mut r = d.round_dp(scale);
    if r != d {
        return Err(format!("{d} has more than {scale} digits after the point"));
    }
    r.rescale(scale);
    Ok(r)
}

fn format_national_decimal(d: Decimal, field: &Field) -> String {
    let s = d.to_string();
    let (sign, body) = match s.strip_prefix('-') {
        Some(b) => ("-", b),
        None => ("", s.as_str()),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let int = match field.group_separator.as_deref() {
        Some(g) => {
            let digits: Vec<char> = int.chars().collect();
            let mut out = String::new();
            for (i, c) in digits.iter().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) {
                    out.push_str(g);
                }
                out.push(*c);
            }
            out
        }
        None => int.to_owned(),
    };
    let dec = field.decimal_separator.as_deref().unwrap_or(".");
    match frac {
        Some(f) => format!("{sign}{int}{dec}{f}"),
        None => format!("{sign}{int}"),
    }
}

/// A decimal's separators must each be one character that is neither a digit nor a minus,
/// and differ from each other: otherwise a number could be read two ways.
fn check_separators(field: &Field) -> Result<(), String> {
    let dec = field.decimal_separator.as_deref().unwrap_or(".");
    let one = |name: &str, v: &str| {
        let mut cs = v.chars();
        match (cs.next(), cs.next()) {
            (Some(c), None) if !c.is_ascii_digit() && c != '-' => Ok(()),
            _ => Err(format!(
                "{name} {v:?} must be one character, neither a digit nor '-'"
            )),
        }
    };
    one("decimal_separator", dec)?;
    if let Some(g) = field.group_separator.as_deref() {
        one("group_separator", g)?;
        if group_separators(field).contains(&dec) {
            return Err(format!(
                "group_separator {g:?} and decimal_separator {dec:?} must differ"
            ));
        }
    }
    Ok(())
}

fn factor(field: &Field) -> Result<Decimal, String> {
    match &field.factor {
        Some(f) => strict_decimal(f)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("factor {f:?} is not a non-zero number")),
        None => Ok(Decimal::ONE),
    }
}

fn rule_name(c: Conversion) -> &'static str {
    match c {
        Conversion::Copy => "copy",
        Conversion::Date => "date",
        Conversion::Datetime => "datetime",
        Conversion::Decimal => "decimal",
        Conversion::Code => "code",
        Conversion::Trader => "trader",
        Conversion::Constant => "constant",
    }
}

/// Context a conversion needs besides the value.
struct Side<'a> {
    mapping: &'a Mapping,
    model: &'a DocumentModel,
    dirs: &'a On<'a>,
}

impl Side<'_> {
    fn model_element(&self, field: &Field) -> Option<&ModelElement> {
        model_element(self.model, &join(self.group_eaeu(field), &field.eaeu))
    }

    fn group_eaeu(&self, field: &Field) -> Option<&str> {
        field.group.as_deref().and_then(|g| {
            self.mapping
                .groups
                .iter()
                .find(|mg| mg.name == g)
                .map(|mg| mg.eaeu.as_str())
        })
    }

    fn offset(&self) -> Result<FixedOffset, String> {
        parse_offset(&self.mapping.timezone).ok_or_else(|| {
            format!(
                "timezone {:?} is not an offset like +05:00",
                self.mapping.timezone
            )
        })
    }

    /// National value → EAEU value. `country` is the national country field's value, for
    /// traders.
    fn to_eaeu(&self, field: &Field, raw: &str, country: Option<&str>) -> Result<String, String> {
        match field.convert {
            Conversion::Copy => Ok(raw.trim().to_owned()),
            Conversion::Constant => Ok(field.value.clone().unwrap_or_default()),
            Conversion::Date => {
                let f = field.format.as_deref().unwrap_or(EAEU_DATE);
                pieces(f, StampKind::Date)
                    .and_then(|p| read_stamp(raw.trim(), &p))
                    .and_then(|s| s.date())
                    .map(|d| d.format(EAEU_DATE).to_string())
                    .map_err(|e| format!("{raw:?} is not a date in the form {f:?}: {e}"))
            }
            Conversion::Datetime => {
                let f = field.format.as_deref().unwrap_or("%Y-%m-%dT%H:%M:%S");
                let naive = pieces(f, StampKind::Datetime)
                    .and_then(|p| read_stamp(raw.trim(), &p))
                    .and_then(|s| s.datetime())
                    .map_err(|e| format!("{raw:?} is not a time in the form {f:?}: {e}"))?;
                let local = naive
                    .and_local_timezone(self.offset()?)
                    .single()
                    .ok_or_else(|| format!("{raw:?} is not a single instant"))?;
                Ok(local
                    .with_timezone(&Utc)
                    .to_rfc3339_opts(SecondsFormat::AutoSi, true))
            }
            Conversion::Decimal => {
                let d = parse_national_decimal(raw, field)? * factor(field)?;
                let scale = self.model_element(field).and_then(|m| m.scale).unwrap_or(0);
                Ok(with_scale(d, scale)?.to_string())
            }
            Conversion::Code => {
                let dir = field.directory.as_deref().unwrap_or_default();
                self.dirs
                    .union_code(dir, &self.mapping.country, raw.trim())
                    .map(str::to_owned)
                    .map_err(|e| e.to_string())
            }
            Conversion::Trader => {
                let number = raw.trim();
                if number.is_empty() || !number.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(format!("{raw:?} is not a taxpayer number"));
                }
                let cc = match (&field.country_field, country) {
                    (Some(_), Some(c)) => self
                        .dirs
                        .union_code(COUNTRY_DIRECTORY, &self.mapping.country, c)
                        .map_err(|e| e.to_string())?
                        .to_owned(),
                    (Some(cf), None) => return Err(format!("its country field {cf} is missing")),
                    (None, _) => self.mapping.country.clone(),
                };
                Ok(format!("{cc}{}", number.to_ascii_uppercase()))
            }
        }
    }

    /// EAEU value → national value.
    fn to_national(&self, field: &Field, value: &str) -> Result<String, String> {
        match field.convert {
            Conversion::Copy => Ok(value.to_owned()),
            Conversion::Constant => Ok(String::new()),
            Conversion::Date => {
                let f = field.format.as_deref().unwrap_or(EAEU_DATE);
                let p = pieces(f, StampKind::Date)?;
                let d = read_eaeu_date(value)
                    .map_err(|e| format!("{value:?} is not a date YYYY-MM-DD: {e}"))?;
                write_stamp(&stamp_of(&d.and_time(chrono::NaiveTime::MIN))?, &p)
            }
            Conversion::Datetime => {
                let f = field.format.as_deref().unwrap_or("%Y-%m-%dT%H:%M:%S");
                let p = pieces(f, StampKind::Datetime)?;
                let t = DateTime::parse_from_rfc3339(value)
                    .map_err(|e| format!("{value:?} is not an RFC 3339 time: {e}"))?;
                let local = t.with_timezone(&self.offset()?).naive_local();
                match chrono::Timelike::nanosecond(&local) {
                    0 => {}
                    n if n >= 1_000_000_000 => {
                        return Err(format!(
                            "{value:?} is a leap second, which the national form cannot write"
                        ))
                    }
                    _ => {
                        return Err(format!(
                            "{value:?} has fractions of a second; the national form has no \
                             place for them"
                        ))
                    }
                }
                write_stamp(&stamp_of(&local)?, &p)
            }
            Conversion::Decimal => {
                let d =
                    strict_decimal(value).ok_or_else(|| format!("{value:?} is not a number"))?;
                let n = d / factor(field)?;
                let scale = field.national_scale.unwrap_or(0);
                Ok(format_national_decimal(
                    with_scale(n.normalize(), scale)?,
                    field,
                ))
            }
            Conversion::Code => {
                let dir = field.directory.as_deref().unwrap_or_default();
                self.dirs
                    .national_code(dir, &self.mapping.country, value)
                    .map(str::to_owned)
                    .map_err(|e| e.to_string())
            }
            Conversion::Trader => value
                .get(2..)
                .filter(|n| !n.is_empty() && value.is_char_boundary(2))
                .map(str::to_owned)
                .ok_or_else(|| format!("{value:?} is not a trader identifier")),
        }
    }
}

// ---------------------------------------------------------------------------------------
// National → record → EAEU.

fn national_names(mapping: &Mapping) -> (BTreeMap<String, String>, Option<&str>) {
    (BTreeMap::new(), mapping.namespace.as_deref())
}

fn field_error(format: &str, path: String, field: &Field, reason: String) -> TranslateError {
    TranslateError::Field {
        format: format.to_owned(),
        path,
        rule: rule_name(field.convert).to_owned(),
        reason,
    }
}

/// Reads a national document into a record in EAEU terms.
pub(crate) fn read_national(
    mapping: &Mapping,
    model: &DocumentModel,
    dirs: &On<'_>,
    doc: &Document,
    scope: NodeId,
) -> Result<Record, TranslateError> {
    let (prefixes, default) = national_names(mapping);
    let names = Names {
        prefixes: &prefixes,
        default,
    };
    let root_ok = doc
        .element(scope)
        .is_some_and(|e| names.matches(e, &mapping.root));
    if !root_ok {
        let found = doc
            .element(scope)
            .map(|e| e.name.to_string())
            .unwrap_or_default();
        return Err(TranslateError::Field {
            format: mapping.id.clone(),
            path: mapping.root.clone(),
            rule: "document".into(),
            reason: format!(
                "the document element is {found}{}, not {}{}",
                doc.element(scope)
                    .and_then(|e| e.namespace.as_deref())
                    .map(|n| format!(" in {n}"))
                    .unwrap_or_default(),
                mapping.root,
                mapping
                    .namespace
                    .as_deref()
                    .map(|n| format!(" in {n}"))
                    .unwrap_or_default()
            ),
        });
    }
    let side = Side {
        mapping,
        model,
        dirs,
    };
    let mut visited = BTreeSet::new();
    let mut seen_attributes = BTreeSet::new();
    let mut record = Record::default();
    read_fields(
        &side,
        doc,
        scope,
        None,
        "",
        &names,
        &mut visited,
        &mut seen_attributes,
        &mut record,
    )?;
    for g in &mapping.groups {
        let p = split_path(&g.national);
        let (parent_steps, last) = p.steps.split_at(p.steps.len().saturating_sub(1));
        let Some(parent) =
            find(doc, scope, parent_steps, &names, &mut visited).map_err(|reason| {
                TranslateError::Field {
                    format: mapping.id.clone(),
                    path: g.national.clone(),
                    rule: "group".into(),
                    reason,
                }
            })?
        else {
            continue;
        };
        let Some(item_name) = last.first() else {
            continue;
        };
        let items = children_named(doc, parent, &names, item_name);
        let mut records = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            visited.insert(*item);
            let mut r = Record::default();
            let label = format!("{}[{}]/", g.national, i + 1);
            read_fields(
                &side,
                doc,
                *item,
                Some(&g.name),
                &label,
                &names,
                &mut visited,
                &mut seen_attributes,
                &mut r,
            )?;
            records.push(r);
        }
        record.groups.insert(g.eaeu.clone(), records);
    }
    check_all_read(doc, scope, &visited, &seen_attributes, &[]).map_err(|(path, reason)| {
        TranslateError::Field {
            format: mapping.id.clone(),
            path,
            rule: "mapping".into(),
            reason: format!("{reason}: no field of this mapping reads it, so it would be lost"),
        }
    })?;
    Ok(record)
}

#[allow(clippy::too_many_arguments)]
fn read_fields(
    side: &Side<'_>,
    doc: &Document,
    scope: NodeId,
    group: Option<&str>,
    label: &str,
    names: &Names<'_>,
    visited: &mut BTreeSet<NodeId>,
    seen_attributes: &mut BTreeSet<(NodeId, String)>,
    record: &mut Record,
) -> Result<(), TranslateError> {
    let format = &side.mapping.id;
    for field in side
        .mapping
        .fields
        .iter()
        .filter(|f| f.group.as_deref() == group)
    {
        let Some(national) = &field.national else {
            if field.convert == Conversion::Constant {
                record
                    .values
                    .insert(field.eaeu.clone(), field.value.clone().unwrap_or_default());
            }
            continue;
        };
        let path = format!("{label}{national}");
        let raw = read_value(doc, scope, national, names, visited, seen_attributes)
            .map_err(|reason| field_error(format, path.clone(), field, reason))?;
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            if field.required {
                return Err(field_error(
                    format,
                    path,
                    field,
                    "required field is missing or empty".into(),
                ));
            }
            continue;
        };
        let country = match &field.country_field {
            Some(cf) => read_value(doc, scope, cf, names, visited, seen_attributes)
                .map_err(|reason| field_error(format, format!("{label}{cf}"), field, reason))?,
            None => None,
        };
        let value = side
            .to_eaeu(field, &raw, country.as_deref())
            .map_err(|reason| field_error(format, path, field, reason))?;
        record.values.insert(field.eaeu.clone(), value);
    }
    Ok(())
}

fn model_error(model: &DocumentModel, path: String, reason: String) -> TranslateError {
    TranslateError::Model {
        document: model.id.clone(),
        path,
        reason,
    }
}

/// Checks a record against the document model: required elements, value types, codes in
/// their directories, group sizes, and no value the model does not define.
pub(crate) fn validate(
    model: &DocumentModel,
    dirs: &On<'_>,
    record: &Record,
) -> Result<(), TranslateError> {
    validate_scope(model, dirs, record, None, "")
}

fn validate_scope(
    model: &DocumentModel,
    dirs: &On<'_>,
    record: &Record,
    group: Option<&str>,
    label: &str,
) -> Result<(), TranslateError> {
    for key in record.values.keys() {
        let full = join(group, key);
        if model_element(model, &full).is_none() || group_of(model, &full) != group {
            return Err(model_error(
                model,
                format!("{label}{key}"),
                "the document model has no such element".into(),
            ));
        }
    }
    for e in model
        .elements
        .iter()
        .filter(|e| group_of(model, &e.path) == group)
    {
        let rel = match group {
            Some(g) => e.path[g.len() + 1..].to_owned(),
            None => e.path.clone(),
        };
        let shown = format!("{label}{rel}");
        match record.values.get(&rel) {
            None if e.required && e.value_type != ValueType::Fixed => {
                return Err(model_error(
                    model,
                    shown,
                    "required element is missing".into(),
                ));
            }
            None => {}
            Some(v) => {
                check_value(e, v, dirs).map_err(|reason| model_error(model, shown, reason))?
            }
        }
    }
    for key in record.groups.keys() {
        if !model
            .groups
            .iter()
            .any(|g| &g.path == key && group_of(model, &g.path) == group)
        {
            return Err(model_error(
                model,
                key.clone(),
                "the document model has no such group here".into(),
            ));
        }
    }
    for g in model
        .groups
        .iter()
        .filter(|g| group_of(model, &g.path) == group)
    {
        let items = record.groups.get(&g.path).map(Vec::as_slice).unwrap_or(&[]);
        let rel = match group {
            Some(cur) => &g.path[cur.len() + 1..],
            None => g.path.as_str(),
        };
        for (i, item) in items.iter().enumerate() {
            validate_scope(
                model,
                dirs,
                item,
                Some(&g.path),
                &format!("{label}{rel}[{}]/", i + 1),
            )?;
        }
        if items.len() < g.min || items.len() > g.max {
            return Err(model_error(
                model,
                format!("{label}{rel}"),
                format!(
                    "{} items; between {} and {} are allowed",
                    items.len(),
                    g.min,
                    g.max
                ),
            ));
        }
    }
    Ok(())
}

fn check_value(e: &ModelElement, v: &str, dirs: &On<'_>) -> Result<(), String> {
    if v.trim() != v || v.is_empty() {
        return Err(format!("{v:?}: empty or surrounded by whitespace"));
    }
    match e.value_type {
        ValueType::Text => match e.max_length {
            Some(max) if v.chars().count() > max => Err(format!(
                "{} characters; at most {max} are allowed",
                v.chars().count()
            )),
            _ => Ok(()),
        },
        ValueType::Digits => {
            if !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{v:?} is not all digits"));
            }
            match e.length {
                Some(n) if v.len() != n => {
                    Err(format!("{v:?} has {} digits; {n} are required", v.len()))
                }
                _ => Ok(()),
            }
        }
        ValueType::Integer => v
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| format!("{v:?} is not a whole number")),
        ValueType::Decimal => {
            let d = strict_decimal(v).ok_or_else(|| format!("{v:?} is not a decimal number"))?;
            let scale = e.scale.unwrap_or(0);
            if d.scale() != scale {
                return Err(format!(
                    "{v:?} must have exactly {scale} digits after the point"
                ));
            }
            Ok(())
        }
        ValueType::Date => read_eaeu_date(v)
            .map(|_| ())
            .map_err(|e| format!("{v:?} is not a date YYYY-MM-DD: {e}")),
        ValueType::Datetime => DateTime::parse_from_rfc3339(v)
            .map(|_| ())
            .map_err(|e| format!("{v:?} is not an RFC 3339 time: {e}")),
        ValueType::Uuid => uuid::Uuid::try_parse(v)
            .ok()
            .filter(|u| u.hyphenated().to_string() == v)
            .map(|_| ())
            .ok_or_else(|| format!("{v:?} is not a lower-case hyphenated UUID")),
        ValueType::Code => dirs
            .check(e.directory.as_deref().unwrap_or_default(), v)
            .map(|_| ())
            .map_err(|err| err.to_string()),
        // An EAEU state's identifier is checked in full (check digits); a third country's
        // number (a consignee in China) only by its form: no rule for it is known here.
        ValueType::Trader => match tereze_reference_data::trader::parse(v) {
            Ok(_) => Ok(()),
            Err(tereze_reference_data::trader::TraderError::UnknownCountry { .. })
                if crate::envelope::is_trader_identifier(v) =>
            {
                Ok(())
            }
            Err(e) => Err(format!("{v:?} is not a valid trader identifier: {e}")),
        },
        ValueType::Fixed => match &e.value {
            Some(f) if f == v => Ok(()),
            Some(f) => Err(format!("{v:?}: only {f:?} is allowed")),
            None => Ok(()),
        },
        ValueType::Id => Ok(()),
    }
}

fn eaeu_names(model: &DocumentModel) -> Names<'_> {
    Names {
        prefixes: &model.prefixes,
        default: None,
    }
}

/// Writes a validated record as the EAEU document, elements in the model's order.
pub(crate) fn write_eaeu(model: &DocumentModel, record: &Record) -> Document {
    let names = eaeu_names(model);
    let mut root = names.element(&model.root);
    for (p, uri) in &model.prefixes {
        root.namespace_decls.push(NamespaceDecl {
            prefix: Some(p.clone()),
            uri: uri.clone(),
        });
    }
    let mut doc = Document::with_root(root);
    let r = doc.root();
    write_scope(model, &names, &mut doc, r, record, None);
    doc
}

fn write_scope(
    model: &DocumentModel,
    names: &Names<'_>,
    doc: &mut Document,
    scope: NodeId,
    record: &Record,
    group: Option<&str>,
) {
    let mut written_groups: BTreeSet<&str> = BTreeSet::new();
    for e in &model.elements {
        let owner = group_of(model, &e.path);
        if owner == group {
            let rel = match group {
                Some(g) => &e.path[g.len() + 1..],
                None => e.path.as_str(),
            };
            let value = match (record.values.get(rel), e.value_type) {
                (Some(v), _) => Some(v.clone()),
                (None, ValueType::Fixed) => {
                    // A fixed attribute goes with its element; a fixed element always.
                    let p = split_path(rel);
                    let carrier_written =
                        p.attribute.is_none() || record.values.contains_key(&p.steps.join("/"));
                    carrier_written.then(|| e.value.clone().unwrap_or_default())
                }
                (None, _) => None,
            };
            if let Some(v) = value {
                write_value(doc, scope, rel, &v, names);
            }
            continue;
        }
        // The first element of a group directly in this scope writes all of its items.
        let Some(g) = owner else { continue };
        let direct = match group {
            Some(cur) => group_of(model, g) == Some(cur),
            None => group_of(model, g).is_none(),
        };
        if !direct || !written_groups.insert(g) {
            continue;
        }
        let Some(items) = record.groups.get(g) else {
            continue;
        };
        let rel = match group {
            Some(cur) => &g[cur.len() + 1..],
            None => g,
        };
        let p = split_path(rel);
        let (parents, last) = p.steps.split_at(p.steps.len().saturating_sub(1));
        for item in items {
            let parent = ensure(doc, scope, parents, names);
            let Some(item_name) = last.first() else {
                continue;
            };
            let node = doc.append_element(parent, names.element(item_name));
            write_scope(model, names, doc, node, item, Some(g));
        }
    }
}

/// Reads an EAEU document into a record, strictly: elements the model does not define are
/// refused, fixed values must match.
pub(crate) fn read_eaeu(model: &DocumentModel, doc: &Document) -> Result<Record, TranslateError> {
    let names = eaeu_names(model);
    let root = doc.root();
    if !doc
        .element(root)
        .is_some_and(|e| names.matches(e, &model.root))
    {
        return Err(model_error(
            model,
            model.root.clone(),
            format!(
                "the document element is {}, not {}",
                doc.element(root)
                    .map(|e| e.name.to_string())
                    .unwrap_or_default(),
                model.root
            ),
        ));
    }
    let mut visited = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let record = read_eaeu_scope(model, &names, doc, root, None, "", &mut visited, &mut seen)?;
    check_all_read(doc, root, &visited, &seen, &[]).map_err(|(path, reason)| {
        model_error(
            model,
            path,
            format!("{reason}: the document model has no such element"),
        )
    })?;
    Ok(record)
}

#[allow(clippy::too_many_arguments)]
fn read_eaeu_scope(
    model: &DocumentModel,
    names: &Names<'_>,
    doc: &Document,
    scope: NodeId,
    group: Option<&str>,
    label: &str,
    visited: &mut BTreeSet<NodeId>,
    seen: &mut BTreeSet<(NodeId, String)>,
) -> Result<Record, TranslateError> {
    let mut record = Record::default();
    for e in model
        .elements
        .iter()
        .filter(|e| group_of(model, &e.path) == group)
    {
        let rel = match group {
            Some(g) => &e.path[g.len() + 1..],
            None => e.path.as_str(),
        };
        let v = read_value(doc, scope, rel, names, visited, seen)
            .map_err(|reason| model_error(model, format!("{label}{rel}"), reason))?;
        if let Some(mut v) = v {
            // Times are kept in UTC, whatever offset the sender wrote.
            if e.value_type == ValueType::Datetime {
                if let Ok(t) = DateTime::parse_from_rfc3339(&v) {
                    v = t
                        .with_timezone(&Utc)
                        .to_rfc3339_opts(SecondsFormat::AutoSi, true);
                }
            }
            record.values.insert(rel.to_owned(), v);
        }
    }
    for g in model.groups.iter().filter(|g| match group {
        Some(cur) => group_of(model, &g.path) == Some(cur),
        None => group_of(model, &g.path).is_none(),
    }) {
        let rel = match group {
            Some(cur) => &g.path[cur.len() + 1..],
            None => g.path.as_str(),
        };
        let p = split_path(rel);
        let (parents, last) = p.steps.split_at(p.steps.len().saturating_sub(1));
        let Some(parent) = find(doc, scope, parents, names, visited)
            .map_err(|reason| model_error(model, format!("{label}{rel}"), reason))?
        else {
            continue;
        };
        let Some(item_name) = last.first() else {
            continue;
        };
        let mut items = Vec::new();
        for (i, item) in children_named(doc, parent, names, item_name)
            .into_iter()
            .enumerate()
        {
            visited.insert(item);
            items.push(read_eaeu_scope(
                model,
                names,
                doc,
                item,
                Some(&g.path),
                &format!("{label}{rel}[{}]/", i + 1),
                visited,
                seen,
            )?);
        }
        record.groups.insert(g.path.clone(), items);
    }
    Ok(record)
}

// ---------------------------------------------------------------------------------------
// Record → national.

/// Writes a validated record as a national document.
pub(crate) fn write_national(
    mapping: &Mapping,
    model: &DocumentModel,
    dirs: &On<'_>,
    record: &Record,
) -> Result<Document, TranslateError> {
    let (prefixes, default) = national_names(mapping);
    let names = Names {
        prefixes: &prefixes,
        default,
    };
    let mut root = names.element(&mapping.root);
    if let Some(ns) = &mapping.namespace {
        root.namespace_decls.push(NamespaceDecl {
            prefix: None,
            uri: ns.clone(),
        });
    }
    let mut doc = Document::with_root(root);
    let r = doc.root();
    let side = Side {
        mapping,
        model,
        dirs,
    };
    let mut written_groups = BTreeSet::new();
    for field in &mapping.fields {
        match &field.group {
            None => write_national_field(&side, &names, &mut doc, r, record, field, "")?,
            Some(gname) => {
                if !written_groups.insert(gname.clone()) {
                    continue;
                }
                let Some(g) = mapping.groups.iter().find(|g| &g.name == gname) else {
                    continue;
                };
                let Some(items) = record.groups.get(&g.eaeu) else {
                    continue;
                };
                let p = split_path(&g.national);
                let (parents, last) = p.steps.split_at(p.steps.len().saturating_sub(1));
                for (i, item) in items.iter().enumerate() {
                    let parent = ensure(&mut doc, r, parents, &names);
                    let Some(item_name) = last.first() else {
                        continue;
                    };
                    let node = doc.append_element(parent, names.element(item_name));
                    let label = format!("{}[{}]/", g.eaeu, i + 1);
                    for f in mapping
                        .fields
                        .iter()
                        .filter(|f| f.group.as_deref() == Some(gname))
                    {
                        write_national_field(&side, &names, &mut doc, node, item, f, &label)?;
                    }
                }
            }
        }
    }
    Ok(doc)
}

fn write_national_field(
    side: &Side<'_>,
    names: &Names<'_>,
    doc: &mut Document,
    scope: NodeId,
    record: &Record,
    field: &Field,
    label: &str,
) -> Result<(), TranslateError> {
    let format = &side.mapping.id;
    let path = format!("{label}{}", field.eaeu);
    let value = record.values.get(&field.eaeu);
    if field.convert == Conversion::Constant {
        let expected = field.value.as_deref().unwrap_or_default();
        return match value {
            Some(v) if v == expected => Ok(()),
            found => Err(field_error(
                format,
                path,
                field,
                format!(
                    "this national form can only carry {expected:?}, the document has {}",
                    found
                        .map(|v| format!("{v:?}"))
                        .unwrap_or_else(|| "none".into())
                ),
            )),
        };
    }
    let Some(national) = &field.national else {
        return Ok(());
    };
    let Some(value) = value else {
        if field.required {
            return Err(field_error(
                format,
                path,
                field,
                "the national form requires it, the document does not have it".into(),
            ));
        }
        return Ok(());
    };
    let out = side
        .to_national(field, value)
        .map_err(|reason| field_error(format, path, field, reason))?;
    write_value(doc, scope, national, &out, names);
    Ok(())
}

/// Checks a mapping against its document model when the catalog loads it.
pub(crate) fn check_mapping(mapping: &Mapping, model: &DocumentModel) -> Result<(), String> {
    if parse_offset(&mapping.timezone).is_none() {
        return Err(format!(
            "timezone {:?} is not an offset like +05:00",
            mapping.timezone
        ));
    }
    for g in &mapping.groups {
        if !model.groups.iter().any(|mg| mg.path == g.eaeu) {
            return Err(format!(
                "group {}: {} is not a group of {}",
                g.name, g.eaeu, model.id
            ));
        }
    }
    for (i, f) in mapping.fields.iter().enumerate() {
        let at = format!("field {} ({})", i + 1, f.eaeu);
        let group_eaeu = match &f.group {
            Some(name) => Some(
                mapping
                    .groups
                    .iter()
                    .find(|g| &g.name == name)
                    .map(|g| g.eaeu.as_str())
                    .ok_or_else(|| format!("{at}: no group named {name}"))?,
            ),
            None => None,
        };
        let full = join(group_eaeu, &f.eaeu);
        let element = model_element(model, &full)
            .ok_or_else(|| format!("{at}: {full} is not an element of {}", model.id))?;
        if group_of(model, &full) != group_eaeu {
            return Err(format!(
                "{at}: {full} belongs to another group of the model"
            ));
        }
        let needs = |what: bool, name: &str| {
            if what {
                Ok(())
            } else {
                Err(format!(
                    "{at}: convert = {:?} needs {name}",
                    rule_name(f.convert)
                ))
            }
        };
        match f.convert {
            Conversion::Date | Conversion::Datetime => {
                needs(f.format.is_some(), "format")?;
                let kind = match f.convert {
                    Conversion::Date => StampKind::Date,
                    _ => StampKind::Datetime,
                };
                pieces(f.format.as_deref().unwrap_or_default(), kind)
                    .map_err(|e| format!("{at}: {e}"))?;
            }
            Conversion::Code => needs(f.directory.is_some(), "directory")?,
            Conversion::Constant => needs(
                f.value.is_some() && f.national.is_none(),
                "value and no national path",
            )?,
            Conversion::Decimal => {
                needs(
                    element.value_type == ValueType::Decimal,
                    "a decimal model element",
                )?;
                factor(f).map_err(|e| format!("{at}: {e}"))?;
                check_separators(f).map_err(|e| format!("{at}: {e}"))?;
            }
            Conversion::Copy | Conversion::Trader => {}
        }
        if f.convert != Conversion::Constant && f.national.is_none() {
            return Err(format!("{at}: a national path is required"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decimal_field(dec: &str, group: Option<&str>, scale: u32) -> Field {
        Field {
            national: Some("x".into()),
            eaeu: "y".into(),
            group: None,
            required: false,
            convert: Conversion::Decimal,
            format: None,
            decimal_separator: Some(dec.into()),
            group_separator: group.map(str::to_owned),
            factor: None,
            national_scale: Some(scale),
            directory: None,
            country_field: None,
            value: None,
        }
    }

    fn date_field(format: &str, convert: Conversion) -> Field {
        Field {
            format: Some(format.into()),
            convert,
            decimal_separator: None,
            national_scale: None,
            ..decimal_field(".", None, 0)
        }
    }

    fn read_date(format: &str, raw: &str) -> Result<String, String> {
        pieces(format, StampKind::Date)
            .and_then(|p| read_stamp(raw, &p))
            .and_then(|s| s.date())
            .map(|d| d.format(EAEU_DATE).to_string())
    }

    fn read_time(format: &str, raw: &str) -> Result<NaiveDateTime, String> {
        pieces(format, StampKind::Datetime)
            .and_then(|p| read_stamp(raw, &p))
            .and_then(|s| s.datetime())
    }

    #[test]
    fn a_two_digit_year_is_refused_for_every_date_format_the_mappings_use() {
        for (format, two_digit) in [
            ("%d.%m.%Y", "22.11.26"),
            ("%d/%m/%Y", "22/11/26"),
            ("%Y-%m-%d", "26-11-22"),
        ] {
            let e = read_date(format, two_digit).expect_err(two_digit);
            assert!(
                e.contains("the year (%Y) takes exactly 4 digits"),
                "{format} {two_digit}: {e}"
            );
        }
        assert_eq!(read_date("%d.%m.%Y", "22.11.2026"), Ok("2026-11-22".into()));
        assert_eq!(read_date("%d/%m/%Y", "01/02/0026"), Ok("0026-02-01".into()));
        assert_eq!(read_date("%Y-%m-%d", "2026-11-22"), Ok("2026-11-22".into()));
    }

    #[test]
    fn what_chrono_reads_loosely_is_refused() {
        // Each of these chrono's `parse_from_str` accepts for the format beside it.
        let loose = [
            ("%d.%m.%Y", "22.11.26"),     // a year of two digits
            ("%d.%m.%Y", "22.11.026"),    // of three
            ("%d.%m.%Y", "22.11.+2026"),  // signed
            ("%d.%m.%Y", "22.11.-2026"),  // negative
            ("%d.%m.%Y", "22.11.+12026"), // five digits, signed
            ("%d.%m.%Y", "1.2.2026"),     // unpadded day and month
            ("%d.%m.%Y", "22. 11.2026"),  // whitespace before a number
            ("%Y-%m-%d", "2026-1-05"),
            ("%d/%m/%Y", "01/02/ 2026"),
        ];
        for (format, raw) in loose {
            assert!(
                chrono::NaiveDate::parse_from_str(raw, format).is_ok(),
                "chrono refuses {raw:?} already; the case is moot"
            );
            assert!(read_date(format, raw).is_err(), "{format} {raw:?}");
        }
        let loose_times = [
            ("%d.%m.%Y %H:%M", "24.11.2026 9:30"),        // unpadded hour
            ("%d.%m.%Y %H:%M", "24.11.2026   09:30"),     // a run of spaces for one
            ("%d.%m.%Y %H:%M", "24.11.202609:30"),        // no space at all
            ("%d.%m.%Y %H:%M", "24.11.2026\t09:30"),      // a tab for the space
            ("%d.%m.%Y %H:%M:%S", "24.11.2026 10:15:60"), // a leap second at any minute
            ("%Y-%m-%d %H:%M:%S", "2026-11-24 07:30:5"),
        ];
        for (format, raw) in loose_times {
            assert!(
                NaiveDateTime::parse_from_str(raw, format).is_ok(),
                "chrono refuses {raw:?} already; the case is moot"
            );
            assert!(read_time(format, raw).is_err(), "{format} {raw:?}");
        }
    }

    #[test]
    fn date_errors_say_what_was_found_where() {
        assert_eq!(
            read_date("%d.%m.%Y", "22-11-2026"),
            Err("character 3 is '-' where '.' is expected".into())
        );
        assert_eq!(
            read_date("%d.%m.%Y", "22.11."),
            Err("the year (%Y) takes exactly 4 digits, found the end".into())
        );
        assert_eq!(
            read_date("%d.%m.%Y", "22.11.2026x"),
            Err("\"x\" follows the end of the form".into())
        );
        assert_eq!(
            read_date("%d.%m.%Y", "31.02.2026"),
            Err("there is no day 31 in month 02 of 2026".into())
        );
        assert!(read_time("%d.%m.%Y %H:%M", "24.11.2026 24:00")
            .is_err_and(|e| e.starts_with("there is no time 24:00:00")));
    }

    #[test]
    fn adjacent_numbers_take_their_widths() {
        assert_eq!(read_date("%Y%m%d", "20261122"), Ok("2026-11-22".into()));
        assert!(read_date("%Y%m%d", "2026112").is_err());
        assert!(read_date("%Y%m%d", "202611222").is_err());
    }

    #[test]
    fn formats_outside_the_fixed_width_set_are_refused() {
        for bad in [
            "%y-%m-%d",
            "%e.%m.%Y",
            "%d %b %Y",
            "%d.%m.%Y %",
            "%d.%m.%Y.%Y",
        ] {
            assert!(pieces(bad, StampKind::Date).is_err(), "{bad}");
        }
        assert!(
            pieces("%d.%m.%Y %H:%M", StampKind::Date).is_err(),
            "a time in a date"
        );
        assert!(pieces("%d.%m.%Y", StampKind::Datetime).is_err(), "no time");
        assert!(pieces("%d.%m.%Y %H:%M", StampKind::Datetime).is_ok());
        assert!(pieces("%d%%%m%%%Y", StampKind::Date).is_ok());
    }

    #[test]
    fn what_is_written_reads_back() {
        let p = pieces("%d.%m.%Y %H:%M", StampKind::Datetime).expect("format");
        let early = Stamp {
            year: 26,
            month: 1,
            day: 2,
            hour: 3,
            minute: 4,
            second: 0,
        };
        let written = write_stamp(&early, &p).expect("writes");
        assert_eq!(written, "02.01.0026 03:04");
        assert_eq!(read_stamp(&written, &p), Ok(early));
        let with_seconds = Stamp { second: 5, ..early };
        assert!(
            write_stamp(&with_seconds, &p).is_err(),
            "seconds would be lost"
        );
        let far = Stamp {
            year: 10_000,
            ..early
        };
        assert!(
            write_stamp(&far, &p).is_err(),
            "five digits cannot be read back"
        );
    }

    #[test]
    fn eaeu_dates_and_times_convert_to_national_forms_the_reader_accepts() {
        let model: DocumentModel = toml::from_str(
            r#"
id = "eaeu.t"
title = "t"
type_code = "R.000"
version = "1"
process = "P"
message = "M"
transaction = "T"
root = "t:T"
prefixes = { t = "urn:t" }
[[element]]
path = "t:D"
type = "date"
"#,
        )
        .expect("model");
        let mapping: Mapping = toml::from_str(
            r#"
id = "kz.t"
title = "t"
country = "KZ"
document = "eaeu.t"
root = "T"
timezone = "+05:00"
[[field]]
national = "D"
eaeu = "t:D"
"#,
        )
        .expect("mapping");
        let dirs = tereze_reference_data::Directories::builtin();
        let on = dirs.today();
        let side = Side {
            mapping: &mapping,
            model: &model,
            dirs: &on,
        };
        let date = date_field("%d.%m.%Y", Conversion::Date);
        for eaeu in ["2026-11-22", "0026-01-02", "9999-12-31"] {
            let national = side.to_national(&date, eaeu).expect(eaeu);
            assert_eq!(side.to_eaeu(&date, &national, None).as_deref(), Ok(eaeu));
        }
        assert!(
            side.to_national(&date, "26-11-22").is_err(),
            "EAEU dates too"
        );
        let time = date_field("%d.%m.%Y %H:%M", Conversion::Datetime);
        assert_eq!(
            side.to_national(&time, "2026-11-24T04:30:00Z").as_deref(),
            Ok("24.11.2026 09:30")
        );
        assert_eq!(
            side.to_eaeu(&time, "24.11.2026 09:30", None).as_deref(),
            Ok("2026-11-24T04:30:00Z")
        );
        for lossy in [
            "2026-11-24T04:30:15Z",
            "2026-11-24T04:30:00.5Z",
            "9999-12-31T23:00:00Z",
        ] {
            assert!(side.to_national(&time, lossy).is_err(), "{lossy}");
        }
    }

    /// Item 3 of the engine's contract: for every date, time and decimal field of every
    /// built-in national form, what the engine writes from an EAEU value it reads back as that
    /// same value, or it refuses to write it; it never writes what its reader would refuse or
    /// read differently.
    #[test]
    fn every_built_in_form_reads_back_what_it_writes() {
        let catalog = super::super::Catalog::builtin().expect("built-in mappings");
        let dirs = tereze_reference_data::Directories::builtin();
        let on = dirs.today();
        let mut checked = 0;
        for info in catalog.formats() {
            let Some(mapping) = catalog.mapping(&info.id) else {
                continue;
            };
            let model = catalog.model(&mapping.document).expect("its model");
            let side = Side {
                mapping,
                model,
                dirs: &on,
            };
            for field in &mapping.fields {
                let values: Vec<String> = match field.convert {
                    Conversion::Date => ["2026-11-22", "0026-01-02", "2024-02-29", "9999-12-31"]
                        .map(String::from)
                        .to_vec(),
                    Conversion::Datetime => [
                        "2026-11-24T04:30:00Z",
                        "2026-12-31T23:00:00Z",
                        "0001-01-01T00:00:00Z",
                        "2026-11-24T04:30:15Z",
                        "2026-11-24T04:30:00.250Z",
                        "9999-12-31T23:00:00Z",
                    ]
                    .map(String::from)
                    .to_vec(),
                    Conversion::Decimal => {
                        let scale = side.model_element(field).and_then(|m| m.scale).unwrap_or(0);
                        [
                            0i64,
                            5,
                            999,
                            1_000,
                            400_005,
                            -1_234_567,
                            1_234_567_891,
                            98_765_432_100_000,
                        ]
                        .iter()
                        .map(|m| Decimal::new(*m, scale).to_string())
                        .collect()
                    }
                    _ => continue,
                };
                let mut written = 0;
                for v in &values {
                    let Ok(national) = side.to_national(field, v) else {
                        continue;
                    };
                    let back = side.to_eaeu(field, &national, None);
                    assert_eq!(
                        back.as_deref(),
                        Ok(v.as_str()),
                        "{}: {}: {v} was written as {national:?}",
                        mapping.id,
                        field.eaeu
                    );
                    written += 1;
                }
                assert!(
                    written > 0,
                    "{}: {}: nothing written",
                    mapping.id,
                    field.eaeu
                );
                checked += 1;
            }
        }
        assert!(checked > 50, "only {checked} fields checked");
    }

    #[test]
    fn strict_decimals_accept_only_plain_notation() {
        for ok in ["0", "12", "-3.50", "125000.000"] {
            assert!(strict_decimal(ok).is_some(), "{ok}");
        }
        for bad in [
            "", "1e5", "+1", " 1", "1.", ".5", "1.2.3", "1,5", "--1", "NaN", "٣",
        ] {
            assert!(strict_decimal(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn national_decimals_parse_with_their_separators() {
        let kz = decimal_field(",", Some(" "), 3);
        assert_eq!(
            parse_national_decimal("125 000,500", &kz),
            Ok(Decimal::new(125_000_500, 3))
        );
        assert_eq!(
            parse_national_decimal("125\u{A0}000,5", &kz),
            Ok(Decimal::new(1_250_005, 1))
        );
        assert!(
            parse_national_decimal("125.5", &kz).is_err(),
            "a point is not a KZ separator"
        );
        assert!(parse_national_decimal("12a", &kz).is_err());
    }

    #[test]
    fn group_separators_stand_only_between_groups_of_three() {
        let space = decimal_field(",", Some(" "), 3);
        let nnbsp = decimal_field(",", Some("\u{202F}"), 3);
        let comma = decimal_field(".", Some(","), 3);
        let ok = |f: &Field, raw: &str, want: i64, scale: u32| {
            assert_eq!(
                parse_national_decimal(raw, f),
                Ok(Decimal::new(want, scale)),
                "{raw:?}"
            );
        };
        ok(&space, "1 234 567,5", 12_345_675, 1);
        ok(&space, "1\u{A0}234\u{A0}567,5", 12_345_675, 1);
        ok(&space, "1\u{202F}234\u{202F}567,5", 12_345_675, 1);
        ok(&space, "-40 000,5", -400_005, 1);
        ok(&space, "999,25", 99_925, 2);
        ok(&space, "1234567,5", 12_345_675, 1); // not grouped at all
        ok(&nnbsp, "40\u{202F}000,500", 40_000_500, 3);
        ok(&comma, "1,234,567.5", 12_345_675, 1);
        ok(&comma, "40000.5", 400_005, 1);
        let refused = [
            (&comma, "40000,5"), // the bug: a decimal comma read as a group separator
            (&comma, "4,0000.5"),
            (&comma, "1,23.5"),
            (&comma, ",123.5"),
            (&comma, "1,234.567,8"), // in the fraction
            (&comma, "1,,234.5"),
            (&space, "4 0000,5"),
            (&space, "1234 567,5"),
            (&space, "1 23,5"),
            (&space, "1  234,5"),
            (&space, "1 234,567 8"),
            (&space, "1 234,5\u{A0}67"),
            (&space, "-1 2345,5"),
            (&nnbsp, "40\u{202F}00,5"),
            (&nnbsp, "40 000,5"), // an ordinary space is not this form's separator
        ];
        for (f, raw) in refused {
            assert!(parse_national_decimal(raw, f).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn a_misplaced_group_separator_is_refused_with_the_rules() {
        let comma = decimal_field(".", Some(","), 3);
        assert_eq!(
            parse_national_decimal("40000,5", &comma),
            Err(
                "\"40000,5\": the group separator \",\" may only stand between groups of \
                 three digits of the whole-number part, never in the fraction \
                 (like 1,234,567.5)"
                    .into()
            )
        );
        let space = decimal_field(",", Some(" "), 3);
        let e = parse_national_decimal("1 234,567 8", &space).expect_err("fraction");
        assert!(e.ends_with("(like 1 234 567,5)"), "{e}");
    }

    #[test]
    fn separators_that_make_numbers_ambiguous_are_refused() {
        for (dec, group) in [
            (",", Some(",")),
            (".", Some(" ")),
            (",", Some("\u{A0}")),
            (",", Some("5")),
            ("-", None),
            (",", Some("")),
            (",", Some("  ")),
        ] {
            let f = decimal_field(dec, group, 2);
            let ok = check_separators(&f).is_ok();
            // A space group separator also stands for U+00A0, so "." with " " is fine, and a
            // U+00A0 group separator with a decimal comma too.
            let expected_ok = matches!((dec, group), (".", Some(" ")) | (",", Some("\u{A0}")));
            assert_eq!(ok, expected_ok, "{dec:?} {group:?}");
        }
    }

    #[test]
    fn written_decimals_read_back_with_every_separator() {
        for (dec, group) in [
            (",", Some(" ")),
            (",", Some("\u{A0}")),
            (",", Some("\u{202F}")),
            (".", Some(",")),
            (",", None),
            (".", None),
        ] {
            let f = decimal_field(dec, group, 3);
            for d in [
                Decimal::new(0, 3),
                Decimal::new(999_999, 3),
                Decimal::new(1_000_000, 3),
                Decimal::new(-123_456_789_012, 3),
                Decimal::new(40_000_500, 3),
            ] {
                let written = format_national_decimal(d, &f);
                assert_eq!(parse_national_decimal(&written, &f), Ok(d), "{written:?}");
            }
        }
    }

    #[test]
    fn national_decimals_format_with_grouping() {
        let kz = decimal_field(",", Some(" "), 2);
        assert_eq!(
            format_national_decimal(Decimal::new(4_825_000, 2), &kz),
            "48 250,00"
        );
        assert_eq!(
            format_national_decimal(Decimal::new(-123_456_789, 2), &kz),
            "-1 234 567,89"
        );
        assert_eq!(format_national_decimal(Decimal::new(999, 0), &kz), "999");
        let ru = decimal_field(".", None, 2);
        assert_eq!(
            format_national_decimal(Decimal::new(4_825_000, 2), &ru),
            "48250.00"
        );
    }

    #[test]
    fn scale_is_exact_never_rounded() {
        assert_eq!(
            with_scale(Decimal::new(15, 1), 3).map(|d| d.to_string()),
            Ok("1.500".into())
        );
        assert!(with_scale(Decimal::new(150_005, 4), 3).is_err());
    }

    #[test]
    fn paths_split_into_steps_and_attribute() {
        let p = split_path("a:B/c:D/@e");
        assert_eq!(p.steps, ["a:B", "c:D"]);
        assert_eq!(p.attribute, Some("e"));
        assert!(split_path("@Id").steps.is_empty());
    }

    #[test]
    fn offsets_parse() {
        assert_eq!(
            parse_offset("+05:00").map(|o| o.local_minus_utc()),
            Some(5 * 3600)
        );
        assert!(parse_offset("Asia/Almaty").is_none());
    }
}
