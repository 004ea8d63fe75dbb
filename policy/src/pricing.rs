//! Model prices (USD per million tokens) used to turn provider-reported usage
//! into cost. Prefixes match dated variants (`gpt-4o-2024-08-06`).
//!
//! Pure data, shared by the gateway (cost of each request) and the linter (a warning for
//! models without a known price).

/// `(model prefix, input $/Mtok, output $/Mtok)`, most specific first.
const PRICES: &[(&str, f64, f64)] = &[
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1", 2.00, 8.00),
    ("o4-mini", 1.10, 4.40),
    ("o3", 2.00, 8.00),
    ("claude-opus-4", 15.00, 75.00),
    ("claude-sonnet-4", 3.00, 15.00),
    ("claude-3-7-sonnet", 3.00, 15.00),
    ("claude-3-5-haiku", 0.80, 4.00),
    ("demo-", 0.15, 0.60),
];

/// Price for models kt does not know: deliberately that of a large model, so
/// that unknown traffic is never under-counted against a budget.
const FALLBACK: (f64, f64) = (3.00, 15.00);

/// The price of `model` as (input, output) USD per million tokens, if kt knows it.
pub fn price(model: &str) -> Option<(f64, f64)> {
    PRICES
        .iter()
        .find(|(prefix, _, _)| model.starts_with(prefix))
        .map(|&(_, i, o)| (i, o))
}

/// Whether kt knows the price of `model` (otherwise its usage is charged at the fallback
/// price of a large model).
pub fn known_price(model: &str) -> bool {
    price(model).is_some()
}

/// Cost of a request in micro-USD (rounded up, so any non-empty usage costs
/// something).
pub fn cost_micros(model: &str, input_tokens: i64, output_tokens: i64) -> i64 {
    let (input, output) = price(model).unwrap_or(FALLBACK);
    // $/Mtok equals micro-USD per token.
    let micros = input * input_tokens.max(0) as f64 + output * output_tokens.max(0) as f64;
    micros.ceil() as i64
}

#[cfg(test)]
mod tests {
    use super::{cost_micros, known_price};

    #[test]
    fn known_prices() {
        assert!(known_price("gpt-4o"));
        assert!(known_price("claude-sonnet-4-20250514"));
        assert!(known_price("demo-echo"));
        assert!(!known_price("some-new-model"));
        assert!(!known_price("llama-3.1-8b"));
    }

    #[test]
    fn prices_by_prefix() {
        // 1000 in + 500 out on gpt-4o: 1000*2.5 + 500*10 = 7500 micro-USD.
        assert_eq!(cost_micros("gpt-4o", 1000, 500), 7_500);
        assert_eq!(cost_micros("gpt-4o-2024-08-06", 1000, 500), 7_500);
        assert_eq!(cost_micros("gpt-4o-mini", 1000, 500), 450);
        assert_eq!(cost_micros("claude-sonnet-4-20250514", 1000, 500), 10_500);
        assert_eq!(cost_micros("some-new-model", 1000, 0), 3_000);
        assert_eq!(cost_micros("gpt-4o", 0, 0), 0);
        assert_eq!(cost_micros("demo-1", 1, 0), 1);
    }
}
