//! The end of an admin grant ("until"), as staff type it in `/admin` and `ops grant --until`:
//! a date is the last day of access (it ends at 23:59:59 UTC that day), an RFC 3339 time is
//! taken as it is, and either must lie ahead of the caller's clock.

use time::{
    Date, OffsetDateTime, format_description::well_known::Rfc3339, macros::format_description,
    macros::time,
};

/// Why a text is not a usable end of a grant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UntilError {
    #[error("`{0}` is neither a date (2026-12-31) nor an RFC 3339 time")]
    Malformed(String),
    #[error("`{0}` is in the past")]
    Past(String),
}

/// Parses `raw` (a date such as `2026-12-31`, or an RFC 3339 time) into the moment access
/// ends; refused unless that moment is after `now`.
pub fn parse_until(raw: &str, now: OffsetDateTime) -> Result<OffsetDateTime, UntilError> {
    let raw = raw.trim();
    let end = match OffsetDateTime::parse(raw, &Rfc3339) {
        Ok(t) => t,
        Err(_) => Date::parse(raw, format_description!("[year]-[month]-[day]"))
            .map(|d| d.with_time(time!(23:59:59)).assume_utc())
            .map_err(|_| UntilError::Malformed(raw.to_owned()))?,
    };
    if end <= now {
        return Err(UntilError::Past(raw.to_owned()));
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-15 12:00 UTC);

    #[test]
    fn a_date_is_the_last_day_of_access() {
        assert_eq!(
            parse_until("2026-12-31", NOW),
            Ok(datetime!(2026-12-31 23:59:59 UTC))
        );
        assert_eq!(
            parse_until(" 2026-12-31 ", NOW),
            Ok(datetime!(2026-12-31 23:59:59 UTC))
        );
        // Today still has hours left.
        assert_eq!(
            parse_until("2026-06-15", NOW),
            Ok(datetime!(2026-06-15 23:59:59 UTC))
        );
    }

    #[test]
    fn an_rfc_3339_time_is_taken_as_it_is() {
        assert_eq!(
            parse_until("2026-12-31T10:00:00Z", NOW),
            Ok(datetime!(2026-12-31 10:00 UTC))
        );
        assert_eq!(
            parse_until("2026-12-31T10:00:00+02:00", NOW),
            Ok(datetime!(2026-12-31 08:00 UTC))
        );
    }

    #[test]
    fn the_past_is_refused() {
        for raw in ["2026-06-14", "2026-06-15T12:00:00Z", "2020-01-01T00:00:00Z"] {
            assert_eq!(
                parse_until(raw, NOW),
                Err(UntilError::Past(raw.into())),
                "{raw}"
            );
        }
    }

    #[test]
    fn anything_else_is_explained() {
        for raw in [
            "next tuesday",
            "",
            "2026-13-01",
            "31/12/2026",
            "2026-12-31 10:00",
        ] {
            let err = parse_until(raw, NOW).unwrap_err();
            assert_eq!(err, UntilError::Malformed(raw.into()));
            assert!(err.to_string().contains("neither a date"), "{err}");
        }
    }
}
