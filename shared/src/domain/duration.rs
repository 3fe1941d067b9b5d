//! Human durations for configuration: `5s`, `10m`, `2h`, `30d`, `250ms`.

use std::time::Duration;

pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{input}` has no unit: use ms, s, m, h or d (e.g. 30d)"))?;
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(format!("`{input}` must start with a number (e.g. 30d)"));
    }
    let n: u64 = digits.parse().map_err(|_| format!("`{input}` is too large"))?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!("`{input}` has unknown unit `{unit}`: use ms, s, m, h or d"));
        }
    };
    let ms = n
        .checked_mul(unit_ms)
        .filter(|ms| *ms <= 3_650 * 86_400_000)
        .ok_or_else(|| format!("`{input}` is longer than ten years"))?;
    if ms == 0 {
        return Err(format!("`{input}` must be longer than zero"));
    }
    Ok(Duration::from_millis(ms))
}

/// The inverse of `parse_duration`, in the largest unit that divides exactly.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [("d", 86_400_000u128), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration(" 30d "), Ok(Duration::from_secs(30 * 86_400)));
    }

    #[test]
    fn rejects_missing_or_unknown_units_zero_and_overflow() {
        for bad in [
            "",
            "30",
            "d",
            "5 s",
            "5x",
            "-5s",
            "0s",
            "99999999999999999999d",
            "4000d",
            "1.5h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn formats_in_largest_exact_unit() {
        assert_eq!(format_duration(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }
}
