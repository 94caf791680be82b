//! A calendar date as licence terms, consent and withdrawals write it:
//! `YYYY-MM-DD`, RFC 3339's full-date, a day that exists.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A calendar date, written `YYYY-MM-DD` (RFC 3339's full-date).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CalendarDate(pub time::Date);

const FULL_DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

impl FromStr for CalendarDate {
    type Err = String;

    fn from_str(text: &str) -> Result<CalendarDate, String> {
        let shaped = text.len() == 10
            && text.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        let date = shaped
            .then(|| time::Date::parse(text, FULL_DATE).ok())
            .flatten();
        date.map(CalendarDate).ok_or_else(|| {
            format!("{text:?} is not a calendar date: use YYYY-MM-DD, e.g. 2027-12-31")
        })
    }
}

impl fmt::Display for CalendarDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.format(FULL_DATE).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl Serialize for CalendarDate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CalendarDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<CalendarDate, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_full_dates_that_exist() {
        for good in ["2026-01-01", "2028-02-29", "2027-12-31"] {
            assert_eq!(good.parse::<CalendarDate>().unwrap().to_string(), good);
        }
        for bad in [
            "2027-02-29",
            "2027-13-01",
            "2027-1-01",
            "27-01-01",
            "2027-01-01T00:00:00Z",
            " 2027-01-01",
            "+2027-01-01",
        ] {
            assert!(bad.parse::<CalendarDate>().is_err(), "{bad}");
        }
        assert!(serde_json::from_value::<CalendarDate>(serde_json::json!(20271231)).is_err());
    }
}
