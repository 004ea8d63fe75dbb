//! A seeded, reproducible, labelled corpus of realistic prompts for measuring PII detection.
//!
//! Everything is generated here (no external data): support tickets, e-mails, code reviews,
//! log excerpts, JSON and CSV snippets, with and without each built-in entity, and with
//! look-alikes that must *not* be flagged: card numbers failing the Luhn check, SSNs with
//! never-issued areas (000, 666, 9xx), groups (00) or serials (0000), IBANs with a wrong
//! checksum, invalid IP addresses, version numbers, dates and times, order and tracking
//! numbers, UUIDs, hex hashes, prices, ISBNs, placeholder keys and public-key blocks.
//!
//! Each [`Sample`] lists the exact byte span and entity of every value it contains, so
//! [`score`] can count true positives (same entity, same span), false positives and false
//! negatives per entity. The same seed always gives the same corpus, on every platform
//! (a SplitMix64 generator, [`Rng`]).
//!
//! Used by `cargo run -p policy --example pii_quality` (precision and recall table), by a unit
//! test asserting the thresholds, and by `cargo run -p policy --release --example pii_bench`.

use std::fmt::Write as _;

use crate::pii::{PiiEntity, Scanner};

/// A small deterministic PRNG (SplitMix64): same seed, same numbers, everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `n` random characters from `alphabet`.
    pub fn chars(&mut self, alphabet: &str, n: usize) -> String {
        let a = alphabet.as_bytes();
        (0..n).map(|_| a[self.below(a.len())] as char).collect()
    }

    /// `n` random decimal digits.
    pub fn digits(&mut self, n: usize) -> String {
        self.chars(DIGITS, n)
    }
}

const DIGITS: &str = "0123456789";
const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_NUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const B64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const HEX: &str = "0123456789abcdef";

/// One labelled value in a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label {
    /// What the value is.
    pub entity: PiiEntity,
    /// Byte offset of the value.
    pub start: usize,
    /// Byte offset just past the value.
    pub end: usize,
}

/// One prompt and the values it contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The prompt.
    pub text: String,
    /// Every sensitive value in it (none for a clean prompt).
    pub labels: Vec<Label>,
}

/// Builds a text while recording labels.
struct Builder {
    text: String,
    labels: Vec<Label>,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            text: String::new(),
            labels: Vec::new(),
        }
    }

    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn value(&mut self, entity: PiiEntity, v: &str) {
        let start = self.text.len();
        self.text.push_str(v);
        self.labels.push(Label {
            entity,
            start,
            end: self.text.len(),
        });
    }

    /// Appends `template`, where `${}` is the sensitive value (if any) and `${word}` a
    /// generated harmless filler (see [`filler`]).
    fn template(&mut self, rng: &mut Rng, template: &str, value: Option<(PiiEntity, &str)>) {
        let mut rest = template;
        while let Some(open) = rest.find("${") {
            self.push(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                self.push(&rest[open..]);
                return;
            };
            let key = &rest[open + 2..open + close];
            if key.is_empty() {
                if let Some((e, v)) = value {
                    self.value(e, v);
                }
            } else {
                let f = filler(rng, key);
                self.push(&f);
            }
            rest = &rest[open + close + 1..];
        }
        self.push(rest);
    }
}

// ---------------------------------------------------------------------------------------------
// Harmless fillers (never PII, by construction).

const FIRST: &[&str] = &[
    "Alice", "Bob", "Carla", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemal",
    "Laura", "Mateo", "Nina", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tomás", "Ursula",
    "Viktor", "Wen", "Yara", "Zoë",
];
const LAST: &[&str] = &[
    "Smith", "Müller", "García", "Rossi", "Dubois", "Kowalski", "Nakamura", "Okafor", "Larsen",
    "Silva", "Novak", "Horvat", "Jensen", "O'Brien", "Patel", "Chen", "Moreau", "Schmidt", "Khan",
    "Ivanova",
];
const COMPANIES: &[&str] = &[
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Health",
    "Stark Logistics",
    "Wayne Finance",
    "Hooli",
    "Vandelay Imports",
    "Tyrell Systems",
    "Cyberdyne Labs",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "acme.io",
    "globex.co.uk",
    "mail.initech.org",
    "hooli.dev",
    "stark-logistics.de",
    "wayne.fr",
    "tyrell.ai",
    "cyberdyne.net",
    "umbrella-health.com",
];
const CITIES: &[&str] = &[
    "Berlin",
    "Lyon",
    "Austin",
    "Osaka",
    "Lagos",
    "Porto",
    "Krakow",
    "Toronto",
    "Melbourne",
    "São Paulo",
];
const PRODUCTS: &[&str] = &[
    "billing dashboard",
    "mobile app",
    "checkout service",
    "data pipeline",
    "search API",
    "admin console",
    "reporting job",
    "auth gateway",
    "recommendation model",
    "CRM export",
];
const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn name(rng: &mut Rng) -> String {
    format!("{} {}", rng.pick(FIRST), rng.pick(LAST))
}

/// A harmless value for a `{key}` in a template. Many are look-alikes of PII on purpose.
fn filler(rng: &mut Rng, key: &str) -> String {
    match key {
        "name" => name(rng),
        "first" => (*rng.pick(FIRST)).to_owned(),
        "company" => (*rng.pick(COMPANIES)).to_owned(),
        "city" => (*rng.pick(CITIES)).to_owned(),
        "product" => (*rng.pick(PRODUCTS)).to_owned(),
        "n" => rng.range(2, 250).to_string(),
        "pct" => format!("{}.{}%", rng.range(1, 99), rng.below(10)),
        "date" => date(rng),
        "time" => format!("{:02}:{:02}", rng.below(24), rng.below(60)),
        "ts" => format!(
            "2024-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            rng.range(1, 12),
            rng.range(1, 28),
            rng.below(24),
            rng.below(60),
            rng.below(60)
        ),
        "version" => version(rng),
        "order" => order_number(rng),
        "uuid" => uuid(rng),
        "hash" => {
            let n = if rng.chance(0.5) { 40 } else { 64 };
            rng.chars(HEX, n)
        }
        "short_hash" => rng.chars(HEX, 7),
        "amount" => amount(rng),
        "port" => rng
            .pick(&["8080", "443", "5432", "6379", "3000", "9090"])
            .to_string(),
        "handle" => format!("@{}", rng.pick(FIRST).to_ascii_lowercase()),
        "lookalike" => lookalike(rng),
        _ => key.to_owned(),
    }
}

fn date(rng: &mut Rng) -> String {
    let (y, m, d) = (rng.range(2019, 2026), rng.range(1, 12), rng.range(1, 28));
    match rng.below(5) {
        0 => format!("{y}-{m:02}-{d:02}"),
        1 => format!("{d:02}/{m:02}/{y}"),
        2 => format!("{m:02}/{d:02}/{y}"),
        3 => format!("{} {d}, {y}", MONTHS[m - 1]),
        _ => format!("{d}.{m}.{y}"),
    }
}

fn version(rng: &mut Rng) -> String {
    match rng.below(5) {
        0 => format!("{}.{}.{}", rng.below(20), rng.below(30), rng.below(40)),
        1 => format!("v{}.{}.{}", rng.below(10), rng.below(30), rng.below(40)),
        2 => format!(
            "{}.{}.{}.{}",
            rng.range(10, 12),
            rng.below(3),
            rng.range(19000, 22999),
            rng.below(900)
        ),
        3 => format!("{}.{}", rng.range(1, 4), rng.below(20)),
        _ => format!(
            "{}.{}.{}-rc.{}",
            rng.below(5),
            rng.below(20),
            rng.below(10),
            rng.range(1, 5)
        ),
    }
}

fn order_number(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => format!("ORD-{}-{}", rng.range(2019, 2026), rng.digits(6)),
        1 => format!("#{}", rng.range(10000, 999_999)),
        2 => format!("PO {}", rng.digits(8)),
        3 => format!("INV-{}", rng.digits(7)),
        4 => format!("1Z{}{}", rng.chars(UPPER_NUM, 6), rng.digits(10)),
        _ => format!(
            "ticket {}-{}",
            rng.pick(&["OPS", "SUP", "ENG"]),
            rng.range(100, 99999)
        ),
    }
}

fn uuid(rng: &mut Rng) -> String {
    format!(
        "{}-{}-4{}-{}{}-{}",
        rng.chars(HEX, 8),
        rng.chars(HEX, 4),
        rng.chars(HEX, 3),
        rng.pick(&["8", "9", "a", "b"]),
        rng.chars(HEX, 3),
        rng.chars(HEX, 12)
    )
}

fn amount(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => format!(
            "${},{:03}.{:02}",
            rng.range(1, 99),
            rng.below(1000),
            rng.below(100)
        ),
        1 => format!("€{}.{:02}", rng.range(1, 999), rng.below(100)),
        2 => format!(
            "{} {:03} {:03} USD",
            rng.range(1, 99),
            rng.below(1000),
            rng.below(1000)
        ),
        _ => format!("{} EUR", rng.range(5, 5000)),
    }
}

/// Values that look like PII but are not: each built-in check must reject them.
fn lookalike(rng: &mut Rng) -> String {
    match rng.below(22) {
        0 => bad_luhn_card(rng),
        1 => bad_ssn(rng),
        2 => bad_iban(rng),
        3 => format!(
            "{}.{}.{}.{}",
            rng.range(256, 999),
            rng.below(256),
            rng.below(256),
            rng.below(256)
        ),
        4 => version(rng),
        5 => date(rng),
        6 => order_number(rng),
        7 => uuid(rng),
        8 => rng.chars(HEX, 40),
        9 => format!(
            "ISBN 978-{}-{}-{}-{}",
            rng.below(10),
            rng.digits(2),
            rng.digits(6),
            rng.below(10)
        ),
        10 => format!("{}-{}", rng.range(200, 999), rng.digits(4)),
        11 => format!("icon@{}x.png", rng.range(2, 3)),
        12 => format!("lodash@{}", version(rng).trim_start_matches('v')),
        13 => (*rng.pick(&[
            "sk-...",
            "YOUR_API_KEY",
            "sk-your-key-here",
            "xoxb-your-bot-token",
            "ghp_XXXXXXXX",
            "sk-learn-compatible-estimators",
            "AKIA...",
            "Bearer <token>",
        ]))
        .to_owned(),
        14 => format!("user@{}", rng.pick(&["localhost", "host", "server01"])),
        15 => format!(
            "{}:{:02}:{:02}",
            rng.below(24),
            rng.below(60),
            rng.below(60)
        ),
        16 => format!(
            "{}:{}:{}:{}:{}:{}",
            rng.chars(HEX, 2),
            rng.chars(HEX, 2),
            rng.chars(HEX, 2),
            rng.chars(HEX, 2),
            rng.chars(HEX, 2),
            rng.chars(HEX, 2)
        ),
        17 => "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----".to_owned(),
        18 => public_key_block(rng),
        19 => format!("{} {} {}", rng.digits(3), rng.digits(3), rng.digits(3)),
        20 => format!("+{}%", rng.range(1, 99)),
        _ => format!("{} 000 000 000 people", rng.range(10, 99)),
    }
}

// ---------------------------------------------------------------------------------------------
// Sensitive values.

fn email(rng: &mut Rng) -> String {
    let (first, last) = (*rng.pick::<&str>(FIRST), *rng.pick::<&str>(LAST));
    let first = ascii(first).to_ascii_lowercase();
    let last = ascii(last).to_ascii_lowercase();
    let local = match rng.below(6) {
        0 => format!("{first}.{last}"),
        1 => format!("{first}{}", rng.range(1, 99)),
        2 => format!("{}{last}", &first[..1]),
        3 => format!("{first}.{last}+{}", rng.pick(&["news", "kt", "billing"])),
        4 => format!("{}_{}", first.to_ascii_uppercase(), last),
        _ => format!("{first}-{last}"),
    };
    format!("{local}@{}", rng.pick(DOMAINS))
}

/// ASCII-only (for e-mail local parts).
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'á' | 'à' | 'ã' => 'a',
            'é' | 'è' => 'e',
            'ó' | 'ö' | 'ô' => 'o',
            'ü' | 'ú' => 'u',
            'ë' => 'e',
            c if c.is_ascii_alphanumeric() => c,
            _ => 'x',
        })
        .collect()
}

fn nanp_parts(rng: &mut Rng) -> (String, String, String) {
    (
        format!("{}{}", rng.range(2, 9), rng.digits(2)),
        format!("{}{}", rng.range(2, 9), rng.digits(2)),
        rng.digits(4),
    )
}

fn phone(rng: &mut Rng) -> String {
    let (a, e, l) = nanp_parts(rng);
    match rng.below(20) {
        0 => format!("+1 {a} {e} {l}"),
        1 => format!("({a}) {e}-{l}"),
        2 => format!("{a}-{e}-{l}"),
        3 => format!("{a}.{e}.{l}"),
        4 => format!("1-{a}-{e}-{l}"),
        5 => format!("+1-{a}-{e}-{l}"),
        6 => format!("+1{a}{e}{l}"),
        7 => format!("+44 20 {} {}", rng.digits(4), rng.digits(4)),
        8 => format!("+44 7{} {}", rng.digits(3), rng.digits(6)),
        9 => format!("020 {} {}", rng.digits(4), rng.digits(4)),
        10 => format!("+49 30 {}", rng.digits(8)),
        11 => format!("+49 151 {}", rng.digits(8)),
        12 => format!(
            "+33 {} {} {} {} {}",
            rng.range(1, 9),
            rng.digits(2),
            rng.digits(2),
            rng.digits(2),
            rng.digits(2)
        ),
        13 => format!(
            "0{} {} {} {} {}",
            rng.range(1, 7),
            rng.digits(2),
            rng.digits(2),
            rng.digits(2),
            rng.digits(2)
        ),
        14 => format!(
            "+81 {}-{}-{}",
            rng.range(3, 9),
            rng.digits(4),
            rng.digits(4)
        ),
        15 => format!("+91 {}{} {}", rng.range(6, 9), rng.digits(4), rng.digits(5)),
        16 => format!(
            "+61 {} {} {}",
            rng.range(2, 8),
            rng.digits(4),
            rng.digits(4)
        ),
        17 => format!("(0{}) {} {}", rng.range(2, 8), rng.digits(4), rng.digits(4)),
        18 => format!("+55 11 9{}-{}", rng.digits(4), rng.digits(4)),
        _ => format!("0044 20 {} {}", rng.digits(4), rng.digits(4)),
    }
}

/// Luhn check digit for `body` (the digits before it).
fn luhn_digit(body: &str) -> u32 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = u32::from(c - b'0');
            if i % 2 == 0 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

/// Card digits: (prefix, length) of a real brand, Luhn-valid.
fn card_digits(rng: &mut Rng) -> String {
    let (prefix, len): (String, usize) = match rng.below(9) {
        0 | 1 => ("4".to_owned(), 16),
        2 => (format!("5{}", rng.range(1, 5)), 16),
        3 => (format!("{}", rng.range(2221, 2720)), 16),
        4 => (rng.pick(&["34", "37"]).to_string(), 15),
        5 => (rng.pick(&["6011", "65"]).to_string(), 16),
        6 => (format!("{}", rng.range(3528, 3589)), 16),
        7 => (rng.pick(&["36", "38"]).to_string(), 14),
        _ => ("62".to_owned(), 16),
    };
    let mut body = prefix;
    while body.len() < len - 1 {
        body.push_str(&rng.digits(1));
    }
    let check = luhn_digit(&body);
    let _ = write!(body, "{check}");
    body
}

/// Formats card digits as written by people.
fn format_card(rng: &mut Rng, digits: &str) -> String {
    let groups: Vec<usize> = match digits.len() {
        15 => vec![4, 6, 5],
        14 => vec![4, 6, 4],
        _ => vec![4; digits.len() / 4],
    };
    let sep = match rng.below(3) {
        0 => return digits.to_owned(),
        1 => " ",
        _ => "-",
    };
    let mut out = String::new();
    let mut i = 0;
    for g in groups {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(&digits[i..i + g]);
        i += g;
    }
    out
}

fn card(rng: &mut Rng) -> String {
    let d = card_digits(rng);
    format_card(rng, &d)
}

fn bad_luhn_card(rng: &mut Rng) -> String {
    let d = card_digits(rng);
    let last = u32::from(d.as_bytes()[d.len() - 1] - b'0');
    let wrong = (last + 1 + rng.below(9) as u32) % 10;
    let bad = format!("{}{wrong}", &d[..d.len() - 1]);
    format_card(rng, &bad)
}

fn ssn_parts(rng: &mut Rng) -> (String, String, String) {
    let mut area = rng.range(1, 899);
    if area == 666 {
        area = 665;
    }
    (
        format!("{area:03}"),
        format!("{:02}", rng.range(1, 99)),
        format!("{:04}", rng.range(1, 9999)),
    )
}

fn ssn(rng: &mut Rng) -> String {
    let (a, g, s) = ssn_parts(rng);
    if rng.chance(0.15) {
        format!("{a} {g} {s}")
    } else {
        format!("{a}-{g}-{s}")
    }
}

fn bad_ssn(rng: &mut Rng) -> String {
    let (a, g, s) = ssn_parts(rng);
    match rng.below(5) {
        0 => format!("000-{g}-{s}"),
        1 => format!("666-{g}-{s}"),
        2 => format!("9{}-{g}-{s}", rng.digits(2)),
        3 => format!("{a}-00-{s}"),
        _ => format!("{a}-{g}-0000"),
    }
}

/// (country, BBAN layout): `n` digits, `a` upper-case letters, `c` letters or digits.
const IBAN_LAYOUTS: &[(&str, &str)] = &[
    ("DE", "nnnnnnnnnnnnnnnnnn"),
    ("GB", "aaaannnnnnnnnnnnnn"),
    ("FR", "nnnnnnnnnncccccccccccnn"),
    ("NL", "aaaannnnnnnnnn"),
    ("ES", "nnnnnnnnnnnnnnnnnnnn"),
    ("IT", "annnnnnnnnncccccccccccc"),
    ("BE", "nnnnnnnnnnnn"),
    ("CH", "nnnnncccccccccccc"),
    ("AT", "nnnnnnnnnnnnnnnn"),
    ("PL", "nnnnnnnnnnnnnnnnnnnnnnnn"),
    ("SE", "nnnnnnnnnnnnnnnnnnnn"),
    ("NO", "nnnnnnnnnnn"),
    ("IE", "aaaannnnnnnnnnnnnn"),
    ("PT", "nnnnnnnnnnnnnnnnnnnnn"),
    ("DK", "nnnnnnnnnnnnnn"),
    ("FI", "nnnnnnnnnnnnnn"),
];

/// An IBAN with correct check digits (or, if `valid` is false, wrong ones), contiguous.
fn iban_raw(rng: &mut Rng, valid: bool) -> String {
    let (cc, layout) = *rng.pick(IBAN_LAYOUTS);
    let bban: String = layout
        .chars()
        .map(|k| match k {
            'n' => rng.chars(DIGITS, 1),
            'a' => rng.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 1),
            _ => rng.chars(UPPER_NUM, 1),
        })
        .collect();
    // check = 98 - (BBAN + CC + "00" as a number) mod 97
    let rearranged = format!("{bban}{cc}00");
    let mut r = 0u32;
    for c in rearranged.bytes() {
        r = match c {
            b'0'..=b'9' => (r * 10 + u32::from(c - b'0')) % 97,
            _ => (r * 100 + u32::from(c - b'A' + 10)) % 97,
        };
    }
    let mut check = 98 - r;
    if !valid {
        check = (check + 1 + rng.below(90) as u32) % 97;
        if check < 2 {
            check += 2;
        }
        if check == 98 - r {
            check = if check > 50 { check - 1 } else { check + 1 };
        }
    }
    format!("{cc}{check:02}{bban}")
}

fn group4(s: &str) -> String {
    s.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn iban(rng: &mut Rng) -> String {
    let raw = iban_raw(rng, true);
    if rng.chance(0.5) { group4(&raw) } else { raw }
}

fn bad_iban(rng: &mut Rng) -> String {
    let raw = iban_raw(rng, false);
    if rng.chance(0.5) { group4(&raw) } else { raw }
}

fn ip(rng: &mut Rng) -> String {
    match rng.below(7) {
        0 => format!(
            "10.{}.{}.{}",
            rng.below(256),
            rng.below(256),
            rng.range(1, 254)
        ),
        1 => format!("192.168.{}.{}", rng.below(256), rng.range(1, 254)),
        2 => format!(
            "172.{}.{}.{}",
            rng.range(16, 31),
            rng.below(256),
            rng.range(1, 254)
        ),
        3 => format!(
            "{}.{}.{}.{}",
            rng.range(1, 223),
            rng.below(256),
            rng.below(256),
            rng.range(1, 254)
        ),
        4 => {
            let g: Vec<String> = (0..8).map(|_| rng.chars(HEX, 4)).collect();
            g.join(":")
        }
        5 => format!(
            "2001:db8:{}::{}:{}",
            rng.chars(HEX, 4),
            rng.chars(HEX, 3),
            rng.chars(HEX, 4)
        ),
        _ => format!(
            "fe80::{}:{}ff:fe{}:{}",
            rng.chars(HEX, 3),
            rng.chars(HEX, 2),
            rng.chars(HEX, 2),
            rng.chars(HEX, 4)
        ),
    }
}

fn api_key(rng: &mut Rng) -> String {
    match rng.below(8) {
        0 => format!("sk-{}", rng.chars(ALNUM, 48)),
        1 => {
            let n = rng.range(100, 156);
            format!("sk-proj-{}", rng.chars(B64URL, n))
        }
        2 => format!("sk-ant-api03-{}AA", rng.chars(B64URL, 93)),
        3 => format!("AKIA{}", rng.chars(UPPER_NUM, 16)),
        4 => format!("ghp_{}", rng.chars(ALNUM, 36)),
        5 => format!(
            "github_pat_{}_{}",
            rng.chars(ALNUM, 22),
            rng.chars(ALNUM, 59)
        ),
        6 => format!(
            "xoxb-{}-{}-{}",
            rng.digits(12),
            rng.digits(13),
            rng.chars(ALNUM, 24)
        ),
        _ => format!("sk-svcacct-{}", rng.chars(B64URL, 80)),
    }
}

fn private_key(rng: &mut Rng) -> String {
    let kind = *rng.pick(&["RSA ", "EC ", "OPENSSH ", "", "ENCRYPTED "]);
    let mut s = format!("-----BEGIN {kind}PRIVATE KEY-----\n");
    for _ in 0..rng.range(3, 12) {
        s.push_str(&rng.chars(B64, 64));
        s.push('\n');
    }
    let n = rng.range(8, 60);
    s.push_str(&rng.chars(B64, n));
    s.push_str("==\n");
    let _ = write!(s, "-----END {kind}PRIVATE KEY-----");
    s
}

fn public_key_block(rng: &mut Rng) -> String {
    let kind = *rng.pick(&["PUBLIC KEY", "CERTIFICATE"]);
    let mut s = format!("-----BEGIN {kind}-----\n");
    for _ in 0..rng.range(2, 5) {
        s.push_str(&rng.chars(B64, 64));
        s.push('\n');
    }
    let _ = write!(s, "-----END {kind}-----");
    s
}

fn base64url(bytes: &[u8]) -> String {
    let a = B64URL.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(a[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn jwt(rng: &mut Rng) -> String {
    let alg = *rng.pick(&["HS256", "RS256", "ES256"]);
    let header = if rng.chance(0.5) {
        format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#)
    } else {
        format!(
            r#"{{"typ":"JWT","alg":"{alg}","kid":"{}"}}"#,
            rng.chars(HEX, 8)
        )
    };
    let payload = format!(
        r#"{{"sub":"{}","name":"{}","iat":{},"exp":{}}}"#,
        rng.digits(10),
        name(rng),
        1_700_000_000 + rng.below(50_000_000),
        1_760_000_000 + rng.below(50_000_000)
    );
    format!(
        "{}.{}.{}",
        base64url(header.as_bytes()),
        base64url(payload.as_bytes()),
        rng.chars(B64URL, if alg == "HS256" { 43 } else { 86 })
    )
}

/// A fresh value of `entity`.
pub fn value(rng: &mut Rng, entity: PiiEntity) -> String {
    match entity {
        PiiEntity::Email => email(rng),
        PiiEntity::Phone => phone(rng),
        PiiEntity::CreditCard => card(rng),
        PiiEntity::Ssn => ssn(rng),
        PiiEntity::Iban => iban(rng),
        PiiEntity::IpAddress => ip(rng),
        PiiEntity::ApiKey => api_key(rng),
        PiiEntity::PrivateKey => private_key(rng),
        PiiEntity::Jwt => jwt(rng),
    }
}

// ---------------------------------------------------------------------------------------------
// Templates.

/// Sentences carrying one value of `entity` at `{}`.
fn carriers(entity: PiiEntity) -> &'static [&'static str] {
    match entity {
        PiiEntity::Email => &[
            "Please send the signed contract to ${} before ${date}.",
            "From: ${name} <${}>\n",
            "Can you add ${} to the ${product} beta list?",
            "Contact: ${}, ${company}, ${city}.",
            "{\"user\": \"${first}\", \"email\": \"${}\", \"orders\": ${n}}",
            "mailto:${}",
            "The bounce came back from (${}) at ${time}.",
        ],
        PiiEntity::Phone => &[
            "You can reach me on ${} after ${time}.",
            "Phone: ${}\n",
            "The customer called from ${} about ${order}.",
            "Emergency contact (${first}): ${}.",
            "name,phone,city\n${name},${},${city}\n",
            "Her mobile is ${} but she prefers e-mail.",
        ],
        PiiEntity::CreditCard => &[
            "My card number is ${} and it was charged twice for ${order}.",
            "Card: ${} exp ${n}/29",
            "Refund ${amount} to card ${}, please.",
            "{\"pan\": \"${}\", \"amount\": \"${amount}\"}",
            "The payment with ${} failed at ${time} (${version} of the ${product}).",
        ],
        PiiEntity::Ssn => &[
            "My SSN is ${} and my date of birth is ${date}.",
            "Employee ${name}, SSN ${}, started on ${date}.",
            "social security number: ${}\n",
            "Verify the applicant (${}) against the ${company} records.",
        ],
        PiiEntity::Iban => &[
            "Please wire ${amount} to IBAN ${} by ${date}.",
            "Account holder: ${name}\nIBAN: ${}\nBIC: ${company}",
            "Update the payout account for ${company} to ${}.",
            "The transfer from ${} bounced (${order}).",
        ],
        PiiEntity::IpAddress => &[
            "The server at ${} keeps timing out on port ${port}.",
            "${ts} WARN login failed for ${first} from ${}\n",
            "Add ${} to the allowlist of the ${product}.",
            "ssh admin@${} -p ${port} hangs after the banner.",
            "Traffic from (${}) spiked by ${pct} after ${version}.",
        ],
        PiiEntity::ApiKey => &[
            "Here is my key ${} — why does the ${product} return 401?",
            "export OPENAI_API_KEY=${}\n",
            "config = {\"api_key\": \"${}\", \"timeout\": ${n}}",
            "Authorization: Bearer ${}\n",
            "The token ${} leaked in commit ${short_hash}.",
        ],
        PiiEntity::PrivateKey => &[
            "Why does ssh reject this key?\n${}\n",
            "Deploy key for the ${product}:\n\n${}\n\nThanks!",
            "```\n${}\n```\nis it the right format?",
        ],
        PiiEntity::Jwt => &[
            "Decode this token for me: ${}",
            "Authorization: Bearer ${}\n",
            "The cookie session=${} expires too early.",
            "{\"access_token\": \"${}\", \"expires_in\": ${n}}",
        ],
    }
}

/// Carriers for any single-line value: markup, punctuation, quotes, and text in languages
/// written without spaces.
const WRAPPERS: &[&str] = &[
    "**${}**",
    "`${}`",
    "[${}]",
    "<td>${}</td><td>${city}</td>",
    "'${}',",
    "\u{201c}${}\u{201d}",
    "\u{ab}${}\u{bb}",
    "value=${};",
    "${}\t${n}\t${city}\n",
    "请核对：${}。",
    "連絡先は${}です。",
    "— ${} —",
    "?ref=${}&lang=en",
    "- ${}\n",
];

/// Sentences without personal data (some with look-alikes).
const FILLERS: &[&str] = &[
    "Hi team, quick question about the ${product}.",
    "Can you summarise the attached report in three bullet points?",
    "We upgraded to ${version} on ${date} and latency went up by ${pct}.",
    "The build ${short_hash} failed at ${time}; the log mentions ${lookalike}.",
    "Order ${order} shipped on ${date} for ${amount}.",
    "Please translate the following paragraph into French, keeping the tone formal.",
    "Our ${company} office in ${city} will be closed on ${date}.",
    "The request id was ${uuid} and the checksum ${hash}.",
    "Write a SQL query that returns the top ${n} customers by revenue since ${date}.",
    "fn main() {\n    let total: u64 = items.iter().map(|i| i.price).sum();\n    println!(\"{}\", total);\n}\n",
    "Note that ${lookalike} is not valid here, see ${order}.",
    "I think ${lookalike} should be rejected by the validator.",
    "${ts} INFO worker-${n} processed ${n} jobs in ${n} ms\n",
    "Thanks ${first}, I'll ping ${handle} about it.",
    "The migration touched ${n} tables; rollback plan is in ${order}.",
    "Compare ${version} and ${version}: which one fixes the memory leak?",
    "Reply in JSON with fields `summary`, `sentiment` and `next_steps`.",
    "The invoice total is ${amount}, due on ${date}.",
    "Refactor this function to avoid the nested loops, and add tests.",
    "Meeting moved to ${time} on ${date} in room ${n}.",
    "${lookalike}",
    "Here is the diff:\n- timeout = 30\n+ timeout = ${n}\n",
    "The dashboard shows ${pct} errors for the ${product} since ${version}.",
    "Can you explain why `${lookalike}` looks suspicious?",
];

/// Frames a prompt: an opening, sentences, a closing.
const OPENINGS: &[&str] = &[
    "",
    "Hello,\n\n",
    "Context: support ticket ${order}\n\n",
    "System: you are a helpful assistant for ${company}.\n\n",
    "Subject: ${product} issue\n\n",
];
const CLOSINGS: &[&str] = &[
    "",
    "\n\nThanks,\n${name}",
    "\n\nBest regards\n${first}",
    "\n-- \n${company}",
];

fn sentence(rng: &mut Rng, b: &mut Builder, template: &str, value: Option<(PiiEntity, &str)>) {
    b.template(rng, template, value);
    if !b.text.ends_with('\n') {
        b.push(" ");
    }
}

/// One prompt: `entities` are the values it must contain (possibly none).
pub fn sample(rng: &mut Rng, entities: &[PiiEntity]) -> Sample {
    let mut b = Builder::new();
    let opening = *rng.pick(OPENINGS);
    b.template(rng, opening, None);
    let fillers = rng.range(1, 5);
    let mut slots: Vec<Option<PiiEntity>> = vec![None; fillers];
    for e in entities {
        let at = rng.below(slots.len() + 1);
        slots.insert(at, Some(*e));
    }
    for slot in slots {
        match slot {
            None => {
                let f = *rng.pick(FILLERS);
                sentence(rng, &mut b, f, None);
            }
            Some(e) => {
                let v = value(rng, e);
                let t = if e != PiiEntity::PrivateKey && rng.chance(0.3) {
                    *rng.pick(WRAPPERS)
                } else {
                    *rng.pick(carriers(e))
                };
                sentence(rng, &mut b, t, Some((e, &v)));
            }
        }
    }
    let closing = *rng.pick(CLOSINGS);
    b.template(rng, closing, None);
    Sample {
        text: b.text,
        labels: b.labels,
    }
}

/// `count` samples from `seed`: about a third without any value, the rest with one or two
/// values of entities chosen evenly, in realistic sentences among look-alikes.
pub fn generate(seed: u64, count: usize) -> Vec<Sample> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|i| {
            let entities: Vec<PiiEntity> = match i % 3 {
                0 => Vec::new(),
                1 => vec![PiiEntity::ALL[(i / 3) % PiiEntity::ALL.len()]],
                _ => vec![*rng.pick(&PiiEntity::ALL), *rng.pick(&PiiEntity::ALL)],
            };
            sample(&mut rng, &entities)
        })
        .collect()
}

/// Realistic prompts without any sensitive value (look-alikes included), about
/// `target_len` bytes each: the "clean traffic" of benchmarks.
pub fn clean_prompt(rng: &mut Rng, target_len: usize) -> String {
    let mut b = Builder::new();
    while b.text.len() < target_len {
        let f = *rng.pick(FILLERS);
        sentence(rng, &mut b, f, None);
    }
    b.text
}

/// Detection counts for one entity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Labelled values in the corpus.
    pub support: usize,
    /// Found with the right entity and the exact span.
    pub true_pos: usize,
    /// Found, but not a labelled value (or the wrong span or entity).
    pub false_pos: usize,
    /// Labelled, but not found exactly.
    pub false_neg: usize,
}

impl Counts {
    /// TP / (TP + FP); 1 when nothing was found.
    pub fn precision(&self) -> f64 {
        let found = self.true_pos + self.false_pos;
        if found == 0 {
            1.0
        } else {
            self.true_pos as f64 / found as f64
        }
    }

    /// TP / (TP + FN); 1 when there was nothing to find.
    pub fn recall(&self) -> f64 {
        let wanted = self.true_pos + self.false_neg;
        if wanted == 0 {
            1.0
        } else {
            self.true_pos as f64 / wanted as f64
        }
    }
}

/// Per-entity counts for `scanner` over `samples`, in [`PiiEntity::ALL`] order.
pub fn score(samples: &[Sample], scanner: &Scanner) -> Vec<(PiiEntity, Counts)> {
    let mut counts: Vec<(PiiEntity, Counts)> = PiiEntity::ALL
        .iter()
        .map(|e| (*e, Counts::default()))
        .collect();
    let slot = |e: PiiEntity| PiiEntity::ALL.iter().position(|x| *x == e).unwrap_or(0);
    for s in samples {
        let found = scanner.find(&s.text);
        for l in &s.labels {
            counts[slot(l.entity)].1.support += 1;
            let hit = found
                .iter()
                .any(|f| f.entity == l.entity && f.start == l.start && f.end == l.end);
            if hit {
                counts[slot(l.entity)].1.true_pos += 1;
            } else {
                counts[slot(l.entity)].1.false_neg += 1;
            }
        }
        for f in &found {
            let Some(e) = f.entity.builtin() else {
                continue;
            };
            let labelled = s
                .labels
                .iter()
                .any(|l| l.entity == e && l.start == f.start && l.end == f.end);
            if !labelled {
                counts[slot(e)].1.false_pos += 1;
            }
        }
    }
    counts
}

/// The misses of `scanner` on `samples`, for debugging: (kind, entity, value with context).
pub fn errors(samples: &[Sample], scanner: &Scanner) -> Vec<(&'static str, PiiEntity, String)> {
    let mut out = Vec::new();
    for s in samples {
        let found = scanner.find(&s.text);
        for l in &s.labels {
            if !found
                .iter()
                .any(|f| f.entity == l.entity && f.start == l.start && f.end == l.end)
            {
                out.push(("missed", l.entity, context(&s.text, l.start, l.end)));
            }
        }
        for f in &found {
            let Some(e) = f.entity.builtin() else {
                continue;
            };
            if !s
                .labels
                .iter()
                .any(|l| l.entity == e && l.start == f.start && l.end == f.end)
            {
                out.push(("false positive", e, context(&s.text, f.start, f.end)));
            }
        }
    }
    out
}

fn context(text: &str, start: usize, end: usize) -> String {
    let mut a = start.saturating_sub(30);
    while !text.is_char_boundary(a) {
        a -= 1;
    }
    let mut b = (end + 30).min(text.len());
    while !text.is_char_boundary(b) {
        b += 1;
    }
    format!(
        "{}⟦{}⟧{}",
        &text[a..start],
        &text[start..end],
        &text[end..b]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_values_are_well_formed() {
        let mut rng = Rng::new(7);
        for _ in 0..200 {
            let d = card_digits(&mut rng);
            assert!(crate::pii::luhn_valid(&d), "{d}");
            let raw = iban_raw(&mut rng, true);
            assert!(crate::pii::iban_valid(&raw), "{raw}");
            let bad = iban_raw(&mut rng, false);
            assert!(!crate::pii::iban_valid(&bad), "{bad}");
        }
        assert_eq!(base64url(br#"{"alg":"HS256"}"#), "eyJhbGciOiJIUzI1NiJ9");
    }

    #[test]
    fn same_seed_same_corpus() {
        assert_eq!(generate(42, 50), generate(42, 50));
        assert_ne!(generate(42, 50), generate(43, 50));
        for s in generate(1, 300) {
            for l in &s.labels {
                assert!(s.text.is_char_boundary(l.start) && s.text.is_char_boundary(l.end));
            }
        }
    }

    /// Regressions fail CI: precision and recall ≥ 0.98 for every built-in entity, on a
    /// smaller corpus than the `pii_quality` example's.
    #[test]
    fn detection_quality_thresholds() {
        let samples = generate(2024, 1500);
        let scanner = Scanner::default();
        let scores = score(&samples, &scanner);
        let mut failures = Vec::new();
        for (e, c) in &scores {
            assert!(c.support >= 20, "{e}: too few samples ({})", c.support);
            if c.precision() < 0.98 || c.recall() < 0.98 {
                failures.push(format!(
                    "{e}: precision {:.3}, recall {:.3} ({c:?})",
                    c.precision(),
                    c.recall()
                ));
            }
        }
        if !failures.is_empty() {
            let examples: Vec<String> = errors(&samples, &scanner)
                .into_iter()
                .take(20)
                .map(|(k, e, ctx)| format!("{k} {e}: {ctx:?}"))
                .collect();
            panic!("{}\n{}", failures.join("\n"), examples.join("\n"));
        }
    }
}
