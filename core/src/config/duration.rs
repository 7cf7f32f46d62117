//! Durations are strings with units: "500ms", "5s", "4m", "1h", and
//! compounds of them from the largest unit down ("1h30m", "2m30s",
//! "1s500ms"), as systemd and Go write them.

use std::time::Duration;

const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)];

/// Parses "500ms", "5s", "4m", "1h" and compounds such as "1h30m": whole
/// numbers, each unit at most once, larger units first.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || {
        format!(
            "\"{s}\" is not a duration (whole numbers with units ms, s, m, h, largest first: \"90s\", \"1h30m\")"
        )
    };
    if s.is_empty() {
        return Err(bad());
    }
    let mut rest = s;
    let mut total: u64 = 0;
    // Index into UNITS of the last unit used: the next must be smaller.
    let mut last: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let letters = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let Some(u) = UNITS.iter().position(|(w, _)| *w == unit) else {
            return Err(if unit.is_empty() {
                format!("\"{s}\" has a number without a unit (ms, s, m, h)")
            } else {
                format!("\"{s}\": \"{unit}\" is not a unit (ms, s, m, h)")
            });
        };
        if last.is_some_and(|l| u <= l) {
            return Err(format!(
                "\"{s}\": units go from the largest down, each once (\"1h30m\")"
            ));
        }
        last = Some(u);
        total = total.saturating_add(n.saturating_mul(UNITS[u].1));
    }
    Ok(Duration::from_millis(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("4m"), Ok(Duration::from_secs(240)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1.5s").is_err());
        assert!(parse_duration("5 days").is_err());
    }

    #[test]
    fn compounds() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2m30s"), Ok(Duration::from_secs(150)));
        assert_eq!(parse_duration("1s500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(
            parse_duration("1h1m1s1ms"),
            Ok(Duration::from_millis(3_661_001))
        );
        // Smaller before larger, or a unit twice, is a typo, not a sum.
        assert!(parse_duration("30m1h").is_err());
        assert!(parse_duration("1m1m").is_err());
        assert!(parse_duration("1h30").is_err());
    }
}
