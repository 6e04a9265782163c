//! Unique identifiers of foreign-trade participants: an ISO 3166-1 alpha-2 code of a member
//! state followed by that state's taxpayer number (`KZ940140000385`, `RU7707083893`). Checks the
//! exact form, the length, the structure and, where the state publishes one, the check-digit
//! rule; decodes what a number says about its holder.
//!
//! Guarantees: `validate` allocates nothing; a refusal names the position and the rule broken
//! (and the state, once the code is one of the five); nothing is trimmed, folded or guessed (`kz…`, ` RU…`, `RU 77…` are refused, each with its own reason). What is checked
//! for each state, and where each rule comes from, is in `docs/traders.md` and [`rule`].

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Serialize, Serializer};

/// The member states whose identifiers this module knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Country {
    /// Armenia: TIN (ՀՎՀՀ), 8 digits.
    AM,
    /// Belarus: UNP (УНП), 9 characters.
    BY,
    /// Kyrgyzstan: INN (ИНН), 14 digits.
    KG,
    /// Kazakhstan: BIN or IIN (БИН/ИИН), 12 digits.
    KZ,
    /// Russia: INN (ИНН), 10 digits for organisations, 12 for individuals.
    RU,
}

impl Country {
    /// All five, in alphabetical order of their codes.
    pub const ALL: [Country; 5] = [
        Country::AM,
        Country::BY,
        Country::KG,
        Country::KZ,
        Country::RU,
    ];

    /// The ISO 3166-1 alpha-2 code.
    pub fn as_str(self) -> &'static str {
        match self {
            Country::AM => "AM",
            Country::BY => "BY",
            Country::KG => "KG",
            Country::KZ => "KZ",
            Country::RU => "RU",
        }
    }

    /// The English short name.
    pub fn name(self) -> &'static str {
        match self {
            Country::AM => "Armenia",
            Country::BY => "Belarus",
            Country::KG => "Kyrgyzstan",
            Country::KZ => "Kazakhstan",
            Country::RU => "Russia",
        }
    }

    /// What the national number is called.
    pub fn scheme(self) -> &'static str {
        match self {
            Country::AM => "TIN (ՀՎՀՀ)",
            Country::BY => "UNP",
            Country::KG => "INN",
            Country::KZ => "BIN/IIN",
            Country::RU => "INN",
        }
    }

    /// The lengths the national number may have, in characters.
    pub fn lengths(self) -> &'static [usize] {
        match self {
            Country::AM => &[8],
            Country::BY => &[9],
            Country::KG => &[14],
            Country::KZ => &[12],
            Country::RU => &[10, 12],
        }
    }

    fn from_bytes(code: [u8; 2]) -> Option<Country> {
        match &code {
            b"AM" => Some(Country::AM),
            b"BY" => Some(Country::BY),
            b"KG" => Some(Country::KG),
            b"KZ" => Some(Country::KZ),
            b"RU" => Some(Country::RU),
            _ => None,
        }
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not the code of one of the five states.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?} is not the code of a member state (AM, BY, KG, KZ, RU)")]
pub struct UnknownCountryError {
    pub code: String,
}

impl FromStr for Country {
    type Err = UnknownCountryError;

    /// Exactly `AM`, `BY`, `KG`, `KZ` or `RU`; nothing else, not even `kz`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.as_bytes() {
            &[a, b] => Country::from_bytes([a, b]),
            _ => None,
        }
        .ok_or_else(|| UnknownCountryError { code: s.to_owned() })
    }
}

/// Why an identifier is refused. Cheap to build and to copy: no strings are allocated, the
/// identifier itself is not kept (see [`TraderError::with_id`] to attach it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraderError {
    /// Fewer than two characters: not even a country code.
    #[error("{len} character(s): too short for a trader identifier (a member state's two-letter code followed by its taxpayer number)")]
    TooShort { len: usize },
    /// The first two characters are not the code of one of the five states.
    #[error("{}", UnknownCountryText(.code))]
    UnknownCountry { code: [char; 2] },
    /// The national number has the wrong number of characters.
    #[error("{} has {}, this one has {got}", .country.scheme_article(), LengthText(.country))]
    Length {
        country: Country,
        expected: &'static [usize],
        got: usize,
    },
    /// A character that must be a digit is not (position counted from 1 within the national
    /// number, i.e. after the country code).
    #[error("character {position} of the {} {} is {found:?}, not a digit", .country.adjective(), .country.scheme())]
    NotDigits {
        country: Country,
        position: usize,
        found: char,
    },
    /// A check digit differs from the one the state's algorithm computes.
    #[error("check digit {position} is {got}, expected {expected} ({scheme})")]
    CheckDigit {
        country: Country,
        position: u8,
        expected: u8,
        got: u8,
        /// The number and algorithm, e.g. "INN of an organisation, FTS algorithm".
        scheme: &'static str,
    },
    /// No check digit exists for these leading digits, so the state never issues the number.
    #[error("{reason}")]
    NotIssuable {
        country: Country,
        reason: &'static str,
    },
    /// A part of the number that encodes something holds a value it cannot have.
    #[error("character {position} of the {} {}: {reason}", .country.adjective(), .country.scheme())]
    Structure {
        country: Country,
        position: u8,
        reason: &'static str,
    },
}

impl TraderError {
    /// The state, once the country code has been recognised.
    pub fn country(&self) -> Option<Country> {
        match self {
            TraderError::TooShort { .. } | TraderError::UnknownCountry { .. } => None,
            TraderError::Length { country, .. }
            | TraderError::NotDigits { country, .. }
            | TraderError::CheckDigit { country, .. }
            | TraderError::NotIssuable { country, .. }
            | TraderError::Structure { country, .. } => Some(*country),
        }
    }

    /// The error with the refused identifier attached, for messages such as
    /// `RU7707083894: check digit 10 is 4, expected 3 (INN of an organisation, FTS algorithm)`.
    pub fn with_id(self, id: &str) -> InvalidTraderId {
        InvalidTraderId {
            id: id.to_owned(),
            error: self,
        }
    }
}

/// An identifier and why it was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {error}", .id.escape_debug())]
pub struct InvalidTraderId {
    pub id: String,
    #[source]
    pub error: TraderError,
}

impl Country {
    fn scheme_article(self) -> &'static str {
        match self {
            Country::AM => "an Armenian TIN (ՀՎՀՀ)",
            Country::BY => "a Belarusian UNP",
            Country::KG => "a Kyrgyz INN",
            Country::KZ => "a Kazakh BIN/IIN",
            Country::RU => "a Russian INN",
        }
    }

    /// "Kazakh", "Russian"…, for messages.
    pub fn adjective(self) -> &'static str {
        match self {
            Country::AM => "Armenian",
            Country::BY => "Belarusian",
            Country::KG => "Kyrgyz",
            Country::KZ => "Kazakh",
            Country::RU => "Russian",
        }
    }
}

struct LengthText<'a>(&'a Country);

impl fmt::Display for LengthText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match *self.0 {
            Country::AM => "8 digits",
            Country::BY => "9 characters",
            Country::KG => "14 digits",
            Country::KZ => "12 digits",
            Country::RU => "10 digits (organisation) or 12 (individual)",
        })
    }
}

struct UnknownCountryText<'a>(&'a [char; 2]);

impl fmt::Display for UnknownCountryText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b] = *self.0;
        write!(f, "\"{}{}\" ", a.escape_debug(), b.escape_debug())?;
        if a.is_ascii() && b.is_ascii() {
            let upper = [a.to_ascii_uppercase() as u8, b.to_ascii_uppercase() as u8];
            if let Some(c) = Country::from_bytes(upper) {
                return write!(f, "is not a country code: write it in capitals, {c}");
            }
        }
        if let Some(c) = [a, b].into_iter().find(|c| !c.is_ascii()) {
            return write!(
                f,
                "is not an ISO 3166-1 alpha-2 code: {:?} (U+{:04X}) is not a Latin capital letter",
                c, c as u32
            );
        }
        f.write_str("is not the code of a member state (AM, BY, KG, KZ, RU)")
    }
}

/// A valid identifier: the state and its national number (digits, and for Belarusian
/// individuals two leading Latin capitals).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraderId {
    pub country: Country,
    pub number: String,
}

impl TraderId {
    /// Checks a state and national number as [`parse`] checks the joined identifier.
    pub fn new(country: Country, number: &str) -> Result<TraderId, TraderError> {
        check_number(country, number)?;
        Ok(TraderId {
            country,
            number: number.to_owned(),
        })
    }

    /// What the number says about its holder.
    pub fn decode(&self) -> Decoded {
        decode(self)
    }
}

impl fmt::Display for TraderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.country, self.number)
    }
}

impl FromStr for TraderId {
    type Err = TraderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

impl Serialize for TraderId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Checks an identifier in its exact form and returns its parts. Allocates only the returned
/// number.
pub fn parse(id: &str) -> Result<TraderId, TraderError> {
    let country = check(id)?;
    Ok(TraderId {
        country,
        number: id[2..].to_owned(),
    })
}

/// Checks an identifier in its exact form: a member state's code in capitals, then the
/// national number with no separators. Allocates nothing.
pub fn validate(id: &str) -> Result<(), TraderError> {
    check(id).map(|_| ())
}

fn check(id: &str) -> Result<Country, TraderError> {
    let b = id.as_bytes();
    let country = match b {
        [x, y, ..] => Country::from_bytes([*x, *y]),
        _ => {
            return Err(TraderError::TooShort {
                len: id.chars().count(),
            })
        }
    };
    let Some(country) = country else {
        return Err(unknown_country(id));
    };
    // The code is two ASCII bytes, so byte 2 starts a character.
    check_number(country, &id[2..])?;
    Ok(country)
}

#[cold]
fn unknown_country(id: &str) -> TraderError {
    let mut chars = id.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) => TraderError::UnknownCountry { code: [a, b] },
        _ => TraderError::TooShort {
            len: id.chars().count(),
        },
    }
}

fn check_number(country: Country, number: &str) -> Result<(), TraderError> {
    match country {
        Country::KZ => kz(number),
        Country::RU => ru(number),
        Country::BY => by(number),
        Country::AM => digits::<8>(country, number).map(|_| ()),
        Country::KG => digits::<14>(country, number).map(|_| ()),
    }
}

/// The digit values of a number of exactly `N` ASCII digits.
#[inline]
fn digits<const N: usize>(country: Country, number: &str) -> Result<[u8; N], TraderError> {
    let b = number.as_bytes();
    let mut d = [0u8; N];
    if b.len() == N {
        let mut bad = false;
        for (v, &c) in d.iter_mut().zip(b) {
            *v = c.wrapping_sub(b'0');
            bad |= *v > 9;
        }
        if !bad {
            return Ok(d);
        }
    }
    Err(shape_error(country, number, 0))
}

/// Why `number` is not made of digits of an allowed length: the first non-digit (from
/// character `from`, 0-based) within one character past the longest length, else the length.
#[cold]
fn shape_error(country: Country, number: &str, from: usize) -> TraderError {
    let longest = country.lengths().iter().copied().max().unwrap_or(0);
    for (i, c) in number
        .chars()
        .enumerate()
        .skip(from)
        .take(longest + 1 - from.min(longest))
    {
        if !c.is_ascii_digit() {
            return TraderError::NotDigits {
                country,
                position: i + 1,
                found: c,
            };
        }
    }
    TraderError::Length {
        country,
        expected: country.lengths(),
        got: number.chars().count(),
    }
}

fn structure(country: Country, position: u8, reason: &'static str) -> TraderError {
    TraderError::Structure {
        country,
        position,
        reason,
    }
}

// ---------------------------------------------------------------------------------------------
// Kazakhstan: BIN and IIN.

const KZ_W1: [u8; 11] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const KZ_W2: [u8; 11] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2];
const KZ_FIRST: &str = "BIN/IIN, weights 1–11 mod 11, Rules for forming the identification number";
const KZ_SECOND: &str =
    "BIN/IIN, the first sum being 10, weights 3–11, 1, 2 mod 11, Rules for forming the identification number";

fn weighted(d: &[u8], w: &[u8]) -> u32 {
    d.iter()
        .zip(w)
        .map(|(&d, &w)| u32::from(d) * u32::from(w))
        .sum()
}

/// The KZ check digit of 11 leading digits, and which weights gave it; `None` when both sums
/// are 10 (the number is not issued).
fn kz_check(d: &[u8]) -> Option<(u8, &'static str)> {
    let s1 = weighted(d, &KZ_W1) % 11;
    if s1 != 10 {
        return Some((s1 as u8, KZ_FIRST));
    }
    let s2 = weighted(d, &KZ_W2) % 11;
    (s2 != 10).then_some((s2 as u8, KZ_SECOND))
}

fn kz(number: &str) -> Result<(), TraderError> {
    let c = Country::KZ;
    let d = digits::<12>(c, number)?;
    kz_structure(&d)?;
    let Some((expected, scheme)) = kz_check(&d[..11]) else {
        return Err(TraderError::NotIssuable {
            country: c,
            reason: "no Kazakh BIN/IIN starts with these 11 digits: both weighted sums are 10 mod 11, so no check digit exists (Rules for forming the identification number)",
        });
    };
    if expected != d[11] {
        return Err(TraderError::CheckDigit {
            country: c,
            position: 12,
            expected,
            got: d[11],
            scheme,
        });
    }
    Ok(())
}

fn kz_structure(d: &[u8; 12]) -> Result<(), TraderError> {
    let c = Country::KZ;
    let month = d[2] * 10 + d[3];
    match d[4] {
        // An IIN: YYMMDD, then the century-and-sex digit.
        0..=3 => {
            if !(1..=12).contains(&month) {
                return Err(structure(c, 3, "digits 3–4 of an IIN are the month of birth, 01–12"));
            }
            let day = d[4] * 10 + d[5];
            if !(1..=31).contains(&day) {
                return Err(structure(c, 5, "digits 5–6 of an IIN are the day of birth, 01–31"));
            }
            if !(1..=6).contains(&d[6]) {
                return Err(structure(
                    c,
                    7,
                    "digit 7 of an IIN is the century of birth and sex, 1–6",
                ));
            }
        }
        // A BIN: YYMM of registration, the kind of entity, the kind of unit.
        4..=6 => {
            if !(1..=12).contains(&month) {
                return Err(structure(c, 3, "digits 3–4 of a BIN are the month of registration, 01–12"));
            }
            if d[5] > 3 {
                return Err(structure(
                    c,
                    6,
                    "digit 6 of a BIN is the kind of unit: 0 head office, 1 branch, 2 representative office, 3 joint peasant farm",
                ));
            }
        }
        _ => {
            return Err(structure(
                c,
                5,
                "digit 5 is 0–3 in an IIN (the day of birth) or 4–6 in a BIN (the kind of entity), never 7–9",
            ))
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Russia: INN.

const RU_W10: [u8; 9] = [2, 4, 10, 3, 5, 9, 4, 6, 8];
const RU_W11: [u8; 10] = [7, 2, 4, 10, 3, 5, 9, 4, 6, 8];
const RU_W12: [u8; 11] = [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8];
const RU_ORG: &str = "INN of an organisation, FTS algorithm";
const RU_IND1: &str = "INN of an individual, first check digit, FTS algorithm";
const RU_IND2: &str = "INN of an individual, second check digit, FTS algorithm";

fn ru_digit(d: &[u8], w: &[u8]) -> u8 {
    (weighted(d, w) % 11 % 10) as u8
}

fn ru(number: &str) -> Result<(), TraderError> {
    let c = Country::RU;
    let b = number.as_bytes();
    let mut d = [0u8; 12];
    let ok = (b.len() == 10 || b.len() == 12)
        && b.iter().zip(d.iter_mut()).fold(true, |ok, (&ch, v)| {
            *v = ch.wrapping_sub(b'0');
            ok & (*v <= 9)
        });
    if !ok {
        return Err(shape_error(c, number, 0));
    }
    if d[0] == 0 && d[1] == 0 {
        return Err(structure(
            c,
            1,
            "digits 1–2 are the code of a subject of the Russian Federation, which is never 00",
        ));
    }
    let mismatch = |position: u8, expected: u8, got: u8, scheme| TraderError::CheckDigit {
        country: c,
        position,
        expected,
        got,
        scheme,
    };
    if b.len() == 10 {
        let e = ru_digit(&d[..9], &RU_W10);
        if e != d[9] {
            return Err(mismatch(10, e, d[9], RU_ORG));
        }
    } else {
        let e1 = ru_digit(&d[..10], &RU_W11);
        if e1 != d[10] {
            return Err(mismatch(11, e1, d[10], RU_IND1));
        }
        let e2 = ru_digit(&d[..11], &RU_W12);
        if e2 != d[11] {
            return Err(mismatch(12, e2, d[11], RU_IND2));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Belarus: UNP.

const BY_W: [u8; 8] = [29, 23, 19, 17, 13, 7, 5, 3];
const BY_SCHEME: &str = "UNP, weights 29 23 19 17 13 7 5 3 mod 11, MNS";
/// Letters an individual's UNP may start with, and the value each counts for in the sum (its
/// place in the digits-then-Latin-letters alphabet).
const BY_FIRST_LETTERS: &[u8] = b"ABCEHKM";
/// Letters that may follow in the second place, counting 0–9 in this order.
const BY_SECOND_LETTERS: &[u8] = b"ABCEHKMOPT";

/// The values of a UNP's first 8 characters, or the reason they cannot start a UNP.
fn by_values(b: &[u8]) -> Result<[u8; 8], (u8, &'static str)> {
    let mut v = [0u8; 8];
    match (b[0], b[1]) {
        (b'1'..=b'7', b'0'..=b'9') => {
            v[0] = b[0] - b'0';
            v[1] = b[1] - b'0';
        }
        (b'1'..=b'7', _) => {
            return Err((
                2,
                "a UNP that starts with a digit has a digit in place 2 as well",
            ));
        }
        (f, s) if BY_FIRST_LETTERS.contains(&f) => {
            let Some(i) = BY_SECOND_LETTERS.iter().position(|&x| x == s) else {
                return Err((
                    2,
                    "a UNP that starts with a letter has one of A B C E H K M O P T in place 2",
                ));
            };
            v[0] = f - b'A' + 10;
            v[1] = i as u8;
        }
        _ => {
            return Err((
                1,
                "place 1 of a UNP is the region: a digit 1–7, or for individuals one of A B C E H K M",
            ));
        }
    }
    for (k, &ch) in b[2..8].iter().enumerate() {
        v[k + 2] = ch.wrapping_sub(b'0');
    }
    Ok(v)
}

fn by(number: &str) -> Result<(), TraderError> {
    let c = Country::BY;
    let b = number.as_bytes();
    if b.len() != 9 || !b[2..].iter().all(u8::is_ascii_digit) {
        // Report the first two places by their own rule before digits and length.
        if b.len() >= 2 && b[..2].iter().all(u8::is_ascii) {
            if let Err((position, reason)) = by_values_prefix(b) {
                return Err(structure(c, position, reason));
            }
            return Err(shape_error(c, number, 2));
        }
        return Err(by_prefix_error(number));
    }
    let v = by_values(b).map_err(|(position, reason)| structure(c, position, reason))?;
    let s = weighted(&v, &BY_W) % 11;
    if s == 10 {
        return Err(TraderError::NotIssuable {
            country: c,
            reason: "no Belarusian UNP starts with these 8 characters: their weighted sum is 10 mod 11, so no check digit exists",
        });
    }
    let got = b[8] - b'0';
    if s as u8 != got {
        return Err(TraderError::CheckDigit {
            country: c,
            position: 9,
            expected: s as u8,
            got,
            scheme: BY_SCHEME,
        });
    }
    Ok(())
}

/// The first two places of a too short, too long or non-digit UNP, judged by themselves.
fn by_values_prefix(b: &[u8]) -> Result<(), (u8, &'static str)> {
    let mut first = [b'0'; 8];
    first[..2].copy_from_slice(&b[..2]);
    by_values(&first).map(|_| ())
}

#[cold]
fn by_prefix_error(number: &str) -> TraderError {
    let c = Country::BY;
    let mut chars = number.chars();
    let Some(first) = chars.next() else {
        return shape_error(c, number, 0);
    };
    let first_ok = matches!(first, '1'..='7')
        || (first.is_ascii() && BY_FIRST_LETTERS.contains(&(first as u8)));
    if !first_ok {
        return structure(
            c,
            1,
            "place 1 of a UNP is the region: a digit 1–7, or for individuals one of the Latin letters A B C E H K M",
        );
    }
    match chars.next() {
        None => shape_error(c, number, 0),
        Some(_) => structure(
            c,
            2,
            "place 2 of a UNP is a digit, or for individuals one of the Latin letters A B C E H K M O P T",
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Check digits for fixtures and demos.

/// Appends the check digit(s) a state's rule computes to the leading part of a national
/// number and returns the whole national number (without the country code):
/// `complete(Country::RU, "770708389") == Some("7707083893")`.
///
/// `None` when the body does not have the form the rule reads (length, digits, BY letters) or
/// when no check digit exists for it (KZ: both sums 10; BY: sum 10). For AM and KG, which have
/// no published check digit, the body is the whole number and is returned if it is 8 or 14
/// digits. Only the check digits are computed: whether the result meets the structure rules
/// (a KZ month, a RU subject code) depends on the body.
pub fn complete(country: Country, body: &str) -> Option<String> {
    let b = body.as_bytes();
    let digit = |d: u8| char::from(b'0' + d);
    let all_digits = b.iter().all(u8::is_ascii_digit);
    let vals = || b.iter().map(|c| c - b'0').collect::<Vec<u8>>();
    let mut out = body.to_owned();
    match country {
        Country::KZ if b.len() == 11 && all_digits => out.push(digit(kz_check(&vals())?.0)),
        Country::RU if b.len() == 9 && all_digits => out.push(digit(ru_digit(&vals(), &RU_W10))),
        Country::RU if b.len() == 10 && all_digits => {
            let mut d = vals();
            d.push(ru_digit(&d, &RU_W11));
            let second = ru_digit(&d, &RU_W12);
            out.push(digit(d[10]));
            out.push(digit(second));
        }
        Country::BY if b.len() == 8 && b[2..].iter().all(u8::is_ascii_digit) => {
            let s = weighted(&by_values(b).ok()?, &BY_W) % 11;
            if s == 10 {
                return None;
            }
            out.push(digit(s as u8));
        }
        Country::AM if b.len() == 8 && all_digits => {}
        Country::KG if b.len() == 14 && all_digits => {}
        _ => return None,
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Rules, for the documentation and the CLI.

/// Whether a state's numbers carry a check digit this module verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Checks {
    CheckDigits,
    StructureOnly,
}

/// What is checked for one state's numbers, and on what authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub country: Country,
    pub scheme: &'static str,
    pub lengths: &'static [usize],
    pub checks: Checks,
    /// The structure and check-digit rules as applied here.
    pub algorithm: &'static str,
    /// Where the rules come from (details and links in docs/traders.md).
    pub source: &'static str,
}

/// The rule applied to a state's numbers.
pub fn rule(country: Country) -> Rule {
    let (checks, algorithm, source) = match country {
        Country::KZ => (
            Checks::CheckDigits,
            "12 digits. IIN (digit 5 is 0–3): YYMMDD of birth (month 01–12, day 01–31), digit 7 \
             century and sex 1–6. BIN (digit 5 is 4–6): YYMM of registration (month 01–12), digit 5 \
             kind of entity 4–6, digit 6 kind of unit 0–3. Digit 12 = sum of digits 1–11 times \
             1..11 mod 11; if that is 10, times 3..11,1,2 mod 11; if that is 10 too, the number is \
             never issued.",
            "Law of the Republic of Kazakhstan No. 223 of 12 January 2007 \"On national registers of \
             identification numbers\"; Rules for forming the identification number (Government \
             Resolution No. 406 of 22 May 2007, amended by No. 853 of 26 August 2013; replaced in \
             2023); egov.kz BIN and IIN pages",
        ),
        Country::RU => (
            Checks::CheckDigits,
            "10 digits (organisation) or 12 (individual); digits 1–2 the subject of the Russian \
             Federation (not 00), 1–4 the tax office. Check digit = weighted sum mod 11 mod 10: \
             weights 2 4 10 3 5 9 4 6 8 for digit 10 of 10; 7 2 4 10 3 5 9 4 6 8 for digit 11 and \
             3 7 2 4 10 3 5 9 4 6 8 for digit 12 of 12.",
            "FTS Order No. ММВ-7-6/435@ of 29 June 2012 (structure); the FTS check-number \
             algorithm as published in the practitioners' descriptions cited in docs/traders.md",
        ),
        Country::BY => (
            Checks::CheckDigits,
            "9 characters: place 1 the region (1–7, or A B C E H K M for individuals, then place 2 \
             one of A B C E H K M O P T counting 0–9), places 3–9 digits. Check digit 9 = sum of \
             places 1–8 times 29 23 19 17 13 7 5 3 mod 11 (a first letter counts 10 + its place in \
             the Latin alphabet after the digits: A 10, B 11, C 12, E 14, H 17, K 20, M 22); a sum \
             of 10 is never issued.",
            "MNS of the Republic of Belarus, Resolution No. 127 of 31 December 2003 (as cited by \
             implementations; not read in the original); python-stdnum by.unp",
        ),
        Country::AM => (
            Checks::StructureOnly,
            "8 digits. No check-digit algorithm is published, so none is checked.",
            "State Revenue Committee of Armenia: the taxpayer registration number (ՀՎՀՀ) is an \
             eight-digit number (petekamutner.am)",
        ),
        Country::KG => (
            Checks::StructureOnly,
            "14 digits. No official description of the structure or of a check digit was found, so \
             only the length and the digits are checked.",
            "Tax Code of the Kyrgyz Republic (14-digit INN; the PIN of an individual is the INN); \
             State Registration Service, PIN page (grs.gov.kg)",
        ),
    };
    Rule {
        country,
        scheme: country.scheme(),
        lengths: country.lengths(),
        checks,
        algorithm,
        source,
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding.

/// Who holds a number, as far as the number says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A natural person (who may also trade as an individual entrepreneur on this number).
    Individual,
    /// An individual entrepreneur as such (KZ: joint entrepreneurship, ИП(С)).
    IndividualEntrepreneur,
    /// An organisation, or its head office.
    LegalEntity,
    Branch,
    RepresentativeOffice,
    /// KZ: a peasant (farm) enterprise run as joint entrepreneurship.
    PeasantFarm,
    /// The number does not say.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    Male,
    Female,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Birth,
    Registration,
}

/// A date a number encodes: a day (birth) or a month (registration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dated {
    Day(Event, NaiveDate),
    Month(Event, i32, u32),
}

impl Dated {
    pub fn event(self) -> Event {
        match self {
            Dated::Day(e, _) | Dated::Month(e, _, _) => e,
        }
    }
}

impl fmt::Display for Dated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dated::Day(_, d) => write!(f, "{}", d.format("%Y-%m-%d")),
            Dated::Month(_, y, m) => write!(f, "{y:04}-{m:02}"),
        }
    }
}

impl Serialize for Dated {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Dated", 2)?;
        st.serialize_field("event", &self.event())?;
        st.serialize_field("date", &self.to_string())?;
        st.end()
    }
}

/// What a number says about its holder. Every field is what the digits say under the state's
/// published layout; `notes` say how far that can be trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decoded {
    pub country: Country,
    pub scheme: &'static str,
    pub kind: Kind,
    pub registered_or_born: Option<Dated>,
    /// A region code as the number carries it (RU: subject of the federation; BY: the first
    /// character), not a name.
    pub region: Option<String>,
    /// RU: the code of the tax office that issued the number.
    pub tax_office: Option<String>,
    pub sex: Option<Sex>,
    /// KZ BIN: whether the legal entity is resident.
    pub resident: Option<bool>,
    pub notes: Vec<&'static str>,
}

/// What the number of a (valid) identifier says about its holder. Never panics: an identifier
/// built by hand with an invalid number decodes to `Kind::Unknown` with a note.
pub fn decode(id: &TraderId) -> Decoded {
    let mut out = Decoded {
        country: id.country,
        scheme: id.country.scheme(),
        kind: Kind::Unknown,
        registered_or_born: None,
        region: None,
        tax_office: None,
        sex: None,
        resident: None,
        notes: Vec::new(),
    };
    if check_number(id.country, &id.number).is_err() {
        out.notes
            .push("the number is not valid, so nothing is decoded from it");
        return out;
    }
    let d: Vec<u8> = id.number.bytes().map(|b| b.wrapping_sub(b'0')).collect();
    let two = |i: usize| u32::from(d[i]) * 10 + u32::from(d[i + 1]);
    match id.country {
        Country::KZ if d[4] <= 3 => {
            out.kind = Kind::Individual;
            let century = match d[6] {
                1 | 2 => 1800,
                3 | 4 => 1900,
                _ => 2000,
            };
            out.sex = Some(if d[6] % 2 == 1 { Sex::Male } else { Sex::Female });
            match NaiveDate::from_ymd_opt(century + two(0) as i32, two(2), two(4)) {
                Some(date) => out.registered_or_born = Some(Dated::Day(Event::Birth, date)),
                None => out.notes.push("digits 1–6 are not a calendar date, so no date of birth is given"),
            }
            out.notes.push("IIN: digits 1–6 the date of birth (YYMMDD), digit 7 century and sex (odd male, even female), 8–11 a serial number, 12 the check digit");
            out.notes.push("since Government Resolution No. 853 of 26 August 2013 the Rules no longer tie an IIN's digits to its holder's data: the date and sex read here may differ from the person's");
            out.notes.push("an individual entrepreneur in personal entrepreneurship trades under the IIN");
        }
        Country::KZ => {
            let yy = two(0) as i32;
            let year = if yy <= 50 { 2000 + yy } else { 1900 + yy };
            out.registered_or_born = Some(Dated::Month(Event::Registration, year, two(2)));
            out.resident = match d[4] {
                4 => Some(true),
                5 => Some(false),
                _ => None,
            };
            out.kind = match (d[4], d[5]) {
                (_, 1) => Kind::Branch,
                (_, 2) => Kind::RepresentativeOffice,
                (_, 3) => Kind::PeasantFarm,
                (6, _) => Kind::IndividualEntrepreneur,
                _ => Kind::LegalEntity,
            };
            out.notes.push("BIN: digits 1–4 year and month of (re-)registration, 5 the kind of entity (4 resident legal entity, 5 non-resident, 6 individual entrepreneur in joint entrepreneurship), 6 the unit (0 head office, 1 branch, 2 representative office, 3 peasant farm in joint entrepreneurship), 7–11 a serial number, 12 the check digit");
            out.notes.push("the century of a BIN's year is not written: years 51–99 are read as 19xx, 00–50 as 20xx");
        }
        Country::RU => {
            out.region = Some(id.number[..2].to_owned());
            out.tax_office = Some(id.number[..4].to_owned());
            if d.len() == 10 {
                out.kind = Kind::LegalEntity;
                out.notes.push("a 10-digit INN belongs to an organisation (Russian or foreign)");
            } else {
                out.kind = Kind::Individual;
                out.notes.push("a 12-digit INN belongs to a natural person, who may be an individual entrepreneur; the number does not say which");
            }
            out.notes.push("digits 1–2 are the subject of the Russian Federation and 1–4 the tax office that issued the number, not necessarily where the holder is now");
        }
        Country::BY => {
            out.region = Some(id.number[..1].to_owned());
            if id.number.as_bytes()[0].is_ascii_digit() {
                out.notes.push("an all-digit UNP belongs to an organisation or an individual entrepreneur; the number does not say which");
            } else {
                out.kind = Kind::Individual;
                out.notes.push("a UNP starting with two letters belongs to an individual");
            }
            out.notes.push("the first character codes the region of registration; no official table of the codes was found, so it is not named");
        }
        Country::AM => {
            out.notes.push("the TIN is a registration number that encodes nothing about its holder that is published; some guides call digit 8 a check digit, but no algorithm is published");
        }
        Country::KG => {
            match d[0] {
                1 | 2 => {
                    out.kind = Kind::Individual;
                    if let Some(date) = NaiveDate::from_ymd_opt(
                        (two(5) * 100 + two(7)) as i32,
                        two(3),
                        two(1),
                    ) {
                        out.registered_or_born = Some(Dated::Day(Event::Birth, date));
                    }
                    out.notes.push("read by the layout commonly reported, not an official one: digit 1 the sex of an individual, digits 2–9 the date of birth DDMMYYYY");
                    out.notes.push("sources disagree on whether 1 or 2 means female, so the sex is not decoded");
                }
                0 => {
                    out.kind = Kind::LegalEntity;
                    out.notes.push("numbers starting with 0 are commonly reported to belong to organisations; no official layout was found");
                }
                _ => out.notes.push("no official layout was found; numbers are commonly reported to start with 0 (organisations) or 1–2 (individuals)"),
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn err(id: &str) -> TraderError {
        validate(id).expect_err(id)
    }

    #[test]
    fn published_identifiers_of_large_organisations_are_valid() {
        for id in [
            "RU7707083893",   // Sberbank
            "RU7736050003",   // Gazprom
            "RU7706107510",   // Rosneft
            "KZ940140000385", // Halyk Bank
            "BY100325912",    // Belarusbank
        ] {
            assert_eq!(validate(id), Ok(()), "{id}");
        }
    }

    #[test]
    fn a_wrong_check_digit_names_position_expected_and_rule() {
        let e = err("RU7707083894");
        assert_eq!(
            e,
            TraderError::CheckDigit {
                country: Country::RU,
                position: 10,
                expected: 3,
                got: 4,
                scheme: RU_ORG
            }
        );
        assert_eq!(
            e.with_id("RU7707083894").to_string(),
            "RU7707083894: check digit 10 is 4, expected 3 (INN of an organisation, FTS algorithm)"
        );
    }

    #[test]
    fn complete_gives_the_digits_validate_accepts() {
        assert_eq!(
            complete(Country::RU, "770708389").as_deref(),
            Some("7707083893")
        );
        assert_eq!(
            complete(Country::KZ, "94014000038").as_deref(),
            Some("940140000385")
        );
        assert_eq!(
            complete(Country::BY, "10032591").as_deref(),
            Some("100325912")
        );
        assert_eq!(
            complete(Country::BY, "MA195368").as_deref(),
            Some("MA1953684")
        );
        assert_eq!(
            complete(Country::AM, "02500342").as_deref(),
            Some("02500342")
        );
        assert_eq!(complete(Country::RU, "77070838").as_deref(), None);
        assert_eq!(complete(Country::KZ, "9401400003x").as_deref(), None);
    }

    #[test]
    fn kazakh_numbers_with_both_sums_ten_are_not_issuable() {
        let body = (0..10_000u32)
            .map(|n| format!("8501013{n:04}"))
            .find(|b| complete(Country::KZ, b).is_none())
            .expect("about one body in 121 has both sums 10");
        let e = err(&format!("KZ{body}0"));
        assert!(
            matches!(
                e,
                TraderError::NotIssuable {
                    country: Country::KZ,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn validate_does_not_trim_or_fold_case() {
        assert!(matches!(
            err("kz940140000385"),
            TraderError::UnknownCountry { code: ['k', 'z'] }
        ));
        assert!(matches!(
            err(" KZ940140000385"),
            TraderError::UnknownCountry { .. }
        ));
        assert_eq!(
            err("KZ940140000385 "),
            TraderError::NotDigits {
                country: Country::KZ,
                position: 13,
                found: ' '
            }
        );
    }

    #[test]
    fn decoding_a_halyk_bank_bin_gives_a_resident_head_office_registered_in_january_1994() {
        let d = decode(&parse("KZ940140000385").expect("valid"));
        assert_eq!(d.kind, Kind::LegalEntity);
        assert_eq!(d.resident, Some(true));
        assert_eq!(
            d.registered_or_born,
            Some(Dated::Month(Event::Registration, 1994, 1))
        );
    }

    #[test]
    fn decoding_a_hand_built_invalid_id_does_not_panic() {
        let id = TraderId {
            country: Country::KZ,
            number: "12".into(),
        };
        assert_eq!(decode(&id).kind, Kind::Unknown);
    }
}
