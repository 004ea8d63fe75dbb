//! Formatting shared by pages (runs on both sides).

/// `$12.3456` style: four decimals so that single demo requests are visible.
pub fn usd(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    format!("{sign}${}.{:04}", m / 1_000_000, (m % 1_000_000) / 100)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_counts() {
        assert_eq!(usd(0), "$0.0000");
        assert_eq!(usd(1_234), "$0.0012");
        assert_eq!(usd(12_345_678), "$12.3456");
        assert_eq!(count(0), "0");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(-1000), "-1,000");
    }
}
