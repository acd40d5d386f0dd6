//! Durations on the command line, read as `chinwagd` reads its own
//! (`--frame-timeout 10s`): a number of seconds, whole or not, or with a
//! unit, `ms`, `s`, `m`, `h` or `d`; and shown back the same way.

use std::time::Duration;

/// `5`, `0.5`, `5s`, `500ms`, `10m`, `2h`, `30d`; above zero.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let units = [
        ("ms", 0.001),
        ("s", 1.0),
        ("m", 60.0),
        ("h", 3_600.0),
        ("d", 86_400.0),
    ];
    let (number, scale) = units
        .iter()
        .find_map(|&(unit, scale)| Some((text.strip_suffix(unit)?, scale)))
        .unwrap_or((text, 1.0));
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 5, 5s, 500ms, 10m or 2h"))?;
    let duration =
        Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{text:?}: {e}"))?;
    if duration.is_zero() {
        return Err(format!("{text:?}: a duration must be above zero"));
    }
    Ok(duration)
}

/// `10s`, `1.5s`, `300ms`: as a person would have typed it.
pub(crate) fn show(duration: Duration) -> String {
    if duration.subsec_millis() == 0 && duration.as_secs() > 0 {
        format!("{}s", duration.as_secs())
    } else if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_units_chinwagd_reads() {
        let ms = Duration::from_millis;
        assert_eq!(parse("10"), Ok(ms(10_000)));
        assert_eq!(parse("0.5"), Ok(ms(500)));
        assert_eq!(parse("10s"), Ok(ms(10_000)));
        assert_eq!(parse("300ms"), Ok(ms(300)));
        assert_eq!(parse("2m"), Ok(ms(120_000)));
        assert_eq!(parse("1h"), Ok(ms(3_600_000)));
        assert!(parse("0s").is_err());
        assert!(parse("soon").is_err());
        assert!(parse("-1s").is_err());
    }

    #[test]
    fn shows_them_back_as_typed() {
        assert_eq!(show(Duration::from_secs(10)), "10s");
        assert_eq!(show(Duration::from_millis(300)), "300ms");
        assert_eq!(show(Duration::from_millis(1_500)), "1.5s");
    }
}
