//! The one strict reader of an ISO 8601 calendar date, `YYYY-MM-DD`, for every value that
//! comes from outside (config files, directory files, query strings, gRPC fields, signed
//! answers, command-line flags).
//!
//! Guarantee: [`parse`] accepts exactly four ASCII digits, `-`, two, `-`, two, nothing before
//! or after, naming a day that exists. chrono's `parse_from_str(s, "%Y-%m-%d")` is lenient
//! where outside input must not be: it takes `2026-1-5`, `+2026-01-05`, `26-01-05` and
//! ` 2026-01-05`, so two spellings of one date (or a year 26) could pass a check that compares
//! text or signs it. It lives here, the lowest crate that every reader of dates depends on
//! (codecs, trust, node, the CLI), so there is one copy.

use chrono::NaiveDate;
use thiserror::Error;

/// Why a text is not a `YYYY-MM-DD` date. Callers prefix the field and the value:
/// `recognition[0].valid_from: "2026-1-5" is not a date (YYYY-MM-DD): the month (MM) takes
/// exactly 2 digits, found "1"`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DateError {
    /// A number is not exactly its width in ASCII digits (`found` is the run of digits seen,
    /// or the character or end found instead).
    #[error("{part} takes exactly {width} digits, found {found}")]
    Width {
        part: &'static str,
        width: usize,
        found: String,
    },
    /// Something other than `-` between the numbers (`position` counts characters from 1).
    #[error("character {position} is {found:?} where '-' is expected")]
    Separator { position: usize, found: char },
    /// The text ends before a `-`.
    #[error("it ends where '-' is expected")]
    Truncated,
    /// Text follows the day.
    #[error("{0:?} follows the end of the date")]
    Trailing(String),
    /// The numbers name no day of the calendar (`2026-02-30`, month 13, day 00).
    #[error("there is no day {day:02} in month {month:02} of {year:04}")]
    NoSuchDay { year: u32, month: u32, day: u32 },
}

/// The three numbers of the form, in order, with their widths and names in errors.
const PARTS: [(usize, &str); 3] = [
    (4, "the year (YYYY)"),
    (2, "the month (MM)"),
    (2, "the day (DD)"),
];

/// Reads `s` as `YYYY-MM-DD` exactly (see the module comment).
pub fn parse(s: &str) -> Result<NaiveDate, DateError> {
    let mut numbers = [0u32; 3];
    let mut rest = s;
    for (i, (width, part)) in PARTS.iter().copied().enumerate() {
        if i > 0 {
            match rest.chars().next() {
                Some('-') => rest = &rest[1..],
                Some(found) => {
                    return Err(DateError::Separator {
                        position: s[..s.len() - rest.len()].chars().count() + 1,
                        found,
                    })
                }
                None => return Err(DateError::Truncated),
            }
        }
        let run = rest.bytes().take_while(u8::is_ascii_digit).count();
        if run != width {
            let found = found_instead(rest, run);
            return Err(DateError::Width { part, width, found });
        }
        // At most four ASCII digits: always a u32.
        numbers[i] = rest[..width]
            .bytes()
            .fold(0, |n, b| n * 10 + u32::from(b - b'0'));
        rest = &rest[width..];
    }
    if !rest.is_empty() {
        return Err(DateError::Trailing(rest.to_owned()));
    }
    let [year, month, day] = numbers;
    // A year of four digits always fits an i32.
    NaiveDate::from_ymd_opt(year as i32, month, day).ok_or(DateError::NoSuchDay {
        year,
        month,
        day,
    })
}

/// What stands at the start of `rest` where a number was expected, for an error: its `run`
/// leading ASCII digits quoted, or else the character found (quoted) or `the end`. The date
/// formats of the mappings (codecs' translation engine) word their errors the same way.
pub fn found_instead(rest: &str, run: usize) -> String {
    if run == 0 {
        match rest.chars().next() {
            Some(c) => format!("{c:?}"),
            None => "the end".into(),
        }
    } else {
        format!("{:?}", &rest[..run])
    }
}

/// [`parse`] for serde (`#[serde(deserialize_with = "tereze_reference_data::date::deserialize")]`):
/// chrono's own `Deserialize` for `NaiveDate` is as lenient as its `parse_from_str`.
pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    let s = <String as serde::Deserialize>::deserialize(d)?;
    parse(&s).map_err(|e| {
        serde::de::Error::custom(format_args!("{s:?} is not a date (YYYY-MM-DD): {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_date_is_read() {
        assert_eq!(
            parse("2026-01-05"),
            Ok(NaiveDate::from_ymd_opt(2026, 1, 5).unwrap())
        );
        assert_eq!(
            parse("0026-12-31"),
            Ok(NaiveDate::from_ymd_opt(26, 12, 31).unwrap())
        );
        assert_eq!(
            parse("2024-02-29"),
            Ok(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap())
        );
    }

    #[test]
    fn every_form_chrono_reads_leniently_is_refused() {
        let lenient = [
            "2026-1-05",    // an unpadded month
            "2026-01-5",    // an unpadded day
            "2026-1-5",     // both
            "+2026-01-05",  // a signed year
            "-2026-01-05",  // a negative year
            "+12026-01-05", // five digits, signed
            "26-01-05",     // a year of two digits
            "026-01-05",    // of three
            " 2026-01-05",  // whitespace before the year
            "2026- 01-05",  // before the month
            "2026-01- 5",   // before the day
        ];
        for s in lenient {
            assert!(
                NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
                "chrono refuses {s:?} already; the case is moot"
            );
            assert!(parse(s).is_err(), "{s:?} was accepted");
        }
    }

    #[test]
    fn errors_say_what_was_found_where() {
        let width = |part, width, found: &str| DateError::Width {
            part,
            width,
            found: found.into(),
        };
        assert_eq!(parse("2026-1-5"), Err(width("the month (MM)", 2, "\"1\"")));
        assert_eq!(parse("2026-01-5"), Err(width("the day (DD)", 2, "\"5\"")));
        assert_eq!(
            parse("+2026-01-05"),
            Err(width("the year (YYYY)", 4, "'+'"))
        );
        assert_eq!(
            parse("20261-01-05"),
            Err(width("the year (YYYY)", 4, "\"20261\""))
        );
        assert_eq!(parse(""), Err(width("the year (YYYY)", 4, "the end")));
        assert_eq!(parse("2026-01-"), Err(width("the day (DD)", 2, "the end")));
        assert_eq!(
            parse("2026/01/05"),
            Err(DateError::Separator {
                position: 5,
                found: '/'
            })
        );
        assert_eq!(parse("2026"), Err(DateError::Truncated));
        assert_eq!(parse("2026-01-05 "), Err(DateError::Trailing(" ".into())));
        assert_eq!(
            parse("2026-01-05T00:00:00Z"),
            Err(DateError::Trailing("T00:00:00Z".into()))
        );
        assert_eq!(
            parse("2026-02-29").map_err(|e| e.to_string()),
            Err("there is no day 29 in month 02 of 2026".into())
        );
        assert!(matches!(
            parse("2026-13-01"),
            Err(DateError::NoSuchDay { .. })
        ));
        assert!(matches!(
            parse("2026-01-00"),
            Err(DateError::NoSuchDay { .. })
        ));
        assert_eq!(
            parse("2026-1-5").map_err(|e| e.to_string()),
            Err("the month (MM) takes exactly 2 digits, found \"1\"".into())
        );
    }

    #[test]
    fn deserialize_is_as_strict_as_parse() {
        #[derive(Debug, serde::Deserialize)]
        struct Row {
            #[serde(deserialize_with = "deserialize")]
            from: NaiveDate,
        }
        let row: Row = serde_json::from_str(r#"{"from":"2026-01-05"}"#).expect("reads");
        assert_eq!(row.from, NaiveDate::from_ymd_opt(2026, 1, 5).unwrap());
        // chrono's own Deserialize takes this one.
        assert!(serde_json::from_str::<NaiveDate>(r#""2026-1-05""#).is_ok());
        let e = serde_json::from_str::<Row>(r#"{"from":"2026-1-05"}"#).expect_err("refused");
        assert!(
            e.to_string()
                .contains("\"2026-1-05\" is not a date (YYYY-MM-DD): the month (MM)"),
            "{e}"
        );
    }

    #[test]
    fn digits_beyond_ascii_are_refused() {
        // Arabic-Indic and full-width digits are digits to Unicode, not to the form.
        assert!(parse("٢٠٢٦-01-05").is_err());
        assert!(parse("２０２６-01-05").is_err());
    }
}
