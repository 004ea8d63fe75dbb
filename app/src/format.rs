//! Formatting shared by pages (runs on both sides).

/// `$12.3456` style: four decimals so that single demo requests are visible.
pub fn usd(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    format!("{sign}${}.{:04}", m / 1_000_000, (m % 1_000_000) / 100)
}

/// Like [`usd`], with six decimals below one cent, so that a single small
/// request does not read as free.
pub fn usd_precise(micros: i64) -> String {
    if micros.unsigned_abs() >= 10_000 {
        return usd(micros);
    }
    let sign = if micros < 0 { "-" } else { "" };
    format!("{sign}$0.{:06}", micros.unsigned_abs())
}

/// `2026-11-27T23:05:19.37Z` → `2026-11-27 23:05:19` (UTC).
pub fn timestamp(rfc3339: &str) -> String {
    rfc3339
        .get(..19)
        .map_or_else(|| rfc3339.to_owned(), |s| s.replace('T', " "))
}

/// Thousands separators: `12,345`.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A duration as people read it: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub fn duration_ms(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// One CSV field (RFC 4180): quoted when it must be, and with a leading
/// `=`, `+`, `-` or `@` neutralised so a spreadsheet never runs it as a
/// formula (values such as names and emails come from users).
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field("@cmd,x"), "\"'@cmd,x\"");
    }

    #[test]
    fn money_and_counts() {
        assert_eq!(usd(0), "$0.0000");
        assert_eq!(usd(1_234), "$0.0012");
        assert_eq!(usd(12_345_678), "$12.3456");
        assert_eq!(usd_precise(36), "$0.000036");
        assert_eq!(usd_precise(12_345), "$0.0123");
        assert_eq!(timestamp("2026-11-27T23:05:19.37Z"), "2026-11-27 23:05:19");
        assert_eq!(timestamp("bad"), "bad");
        assert_eq!(count(0), "0");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(-1000), "-1,000");
    }
}
