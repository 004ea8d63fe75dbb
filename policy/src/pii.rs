//! Detection and redaction of personal data and secrets.
//!
//! Each [`PiiEntity`] has a compiled pattern (built once) plus, where a pattern alone would
//! flag ordinary text, a check in code: phone numbers need 10–15 digits and some formatting,
//! card numbers must pass the Luhn check, SSNs exclude the never-issued areas, and numbers that
//! run on into more digits are not taken apart.
//!
//! [`Redactor`] replaces findings with typed markers (`[EMAIL_1]`) and can put the original
//! values back into an answer ([`Redactor::restore`], or [`StreamRestorer`] for streamed
//! answers whose chunks may split a marker). Values are never shown by `Debug`.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use crate::glob::glob_match;

/// A kind of sensitive value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiEntity {
    /// E-mail addresses.
    Email,
    /// Phone numbers (international `+…` or formatted national numbers, 10–15 digits).
    Phone,
    /// Payment card numbers (13–19 digits, Luhn-valid).
    CreditCard,
    /// US social security numbers (`ddd-dd-dddd`).
    Ssn,
    /// IPv4 addresses.
    IpAddress,
    /// API keys and access tokens (OpenAI/Anthropic `sk-…`, AWS `AKIA…`, GitHub `ghp_…`, …).
    ApiKey,
}

impl PiiEntity {
    /// Every built-in entity.
    pub const ALL: [PiiEntity; 6] = [
        PiiEntity::Email,
        PiiEntity::Phone,
        PiiEntity::CreditCard,
        PiiEntity::Ssn,
        PiiEntity::IpAddress,
        PiiEntity::ApiKey,
    ];

    /// The name used in policy files and reason codes (`credit_card`).
    pub fn as_str(&self) -> &'static str {
        match self {
            PiiEntity::Email => "email",
            PiiEntity::Phone => "phone",
            PiiEntity::CreditCard => "credit_card",
            PiiEntity::Ssn => "ssn",
            PiiEntity::IpAddress => "ip_address",
            PiiEntity::ApiKey => "api_key",
        }
    }

    /// Parses a name used in policy files.
    pub fn from_name(name: &str) -> Option<PiiEntity> {
        PiiEntity::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// The label used in markers (`CREDIT_CARD` in `[CREDIT_CARD_1]`).
    pub fn marker_label(&self) -> &'static str {
        match self {
            PiiEntity::Email => "EMAIL",
            PiiEntity::Phone => "PHONE",
            PiiEntity::CreditCard => "CREDIT_CARD",
            PiiEntity::Ssn => "SSN",
            PiiEntity::IpAddress => "IP_ADDRESS",
            PiiEntity::ApiKey => "API_KEY",
        }
    }

    /// Which entity wins when two findings overlap (lower wins).
    fn priority(&self) -> u8 {
        match self {
            PiiEntity::ApiKey => 0,
            PiiEntity::Email => 1,
            PiiEntity::CreditCard => 2,
            PiiEntity::Ssn => 3,
            PiiEntity::IpAddress => 4,
            PiiEntity::Phone => 5,
        }
    }
}

impl fmt::Display for PiiEntity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sensitive value found in a text.
#[derive(Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was found.
    pub entity: PiiEntity,
    /// Byte offset of the value in the scanned text.
    pub start: usize,
    /// Byte offset just past the value.
    pub end: usize,
    /// The value itself. Never log it.
    pub value: String,
    /// The marker that replaced the value (`[EMAIL_1]`), for findings returned by redaction.
    pub marker: Option<String>,
}

impl fmt::Debug for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Finding")
            .field("entity", &self.entity)
            .field("span", &(self.start..self.end))
            .field("value", &"<hidden>")
            .field("marker", &self.marker)
            .finish()
    }
}

/// Compiles a pattern that is a literal in this file; a typo is caught by the unit tests.
fn compile(pattern: &str) -> Regex {
    match Regex::new(pattern) {
        Ok(re) => re,
        // The patterns are literals checked by the `patterns_compile` test; should one ever
        // be broken, its entity never matches rather than bringing the gateway down.
        Err(_) => Regex::new(r"[^\s\S]").unwrap_or_else(|_| unreachable!()),
    }
}

const EMAIL_RE: &str = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}";
const PHONE_RE: &str =
    r"(?:\+[0-9]{1,3}[ .-]?)?(?:\([0-9]{1,4}\)[ .-]?)?[0-9]{1,4}(?:[ .-]?[0-9]{2,4}){1,5}";
const CARD_RE: &str = r"[0-9](?:[ -]?[0-9]){12,22}";
const SSN_RE: &str = r"([0-9]{3})-([0-9]{2})-([0-9]{4})";
const IPV4_RE: &str = r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const API_KEY_RE: &str = r"(?:sk-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_-]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|kt_gk_[A-Za-z0-9_-]{16,})";
const MARKER_RE: &str = r"\[(?:EMAIL|PHONE|CREDIT_CARD|SSN|IP_ADDRESS|API_KEY)_[1-9][0-9]*\]";

static EMAIL: LazyLock<Regex> = LazyLock::new(|| compile(EMAIL_RE));
static PHONE: LazyLock<Regex> = LazyLock::new(|| compile(PHONE_RE));
static CARD: LazyLock<Regex> = LazyLock::new(|| compile(CARD_RE));
static SSN: LazyLock<Regex> = LazyLock::new(|| compile(SSN_RE));
static IPV4: LazyLock<Regex> = LazyLock::new(|| compile(IPV4_RE));
static API_KEY: LazyLock<Regex> = LazyLock::new(|| compile(API_KEY_RE));
static MARKER: LazyLock<Regex> = LazyLock::new(|| compile(MARKER_RE));

fn char_before(text: &str, i: usize) -> Option<char> {
    text[..i].chars().next_back()
}

fn char_after(text: &str, i: usize) -> Option<char> {
    text[i..].chars().next()
}

fn is_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// The match stands alone: no letter or digit glued to either side, and (for numbers) no
/// `1.`/`-1` run-on that would make it part of a longer number, version or identifier.
fn isolated(text: &str, start: usize, end: usize, joiners: &[char]) -> bool {
    if is_word(char_before(text, start)) || is_word(char_after(text, end)) {
        return false;
    }
    let before = char_before(text, start);
    if before.is_some_and(|c| joiners.contains(&c)) && is_word(char_before(text, start - 1)) {
        return false;
    }
    let after = char_after(text, end);
    if after.is_some_and(|c| joiners.contains(&c))
        && char_after(text, end + 1).is_some_and(|c| c.is_ascii_digit())
    {
        return false;
    }
    true
}

fn digit_count(s: &str) -> usize {
    s.bytes().filter(u8::is_ascii_digit).count()
}

/// The Luhn checksum used by payment card numbers (non-digits are skipped).
pub fn luhn_valid(number: &str) -> bool {
    let digits: Vec<u32> = number.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() < 2 {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Where a card number starting at `start` ends, if the digit run `start..end` begins with one.
/// A run may carry more digit groups than the card (an expiry date, an order number), so
/// shorter group-aligned prefixes are tried too.
fn card_end(text: &str, start: usize, end: usize) -> Option<usize> {
    let run = &text[start..end];
    if !(b'2'..=b'6').contains(&run.as_bytes().first().copied().unwrap_or(b'0')) {
        return None;
    }
    // Candidate ends: the run's end, then every separator position, longest first.
    let mut ends: Vec<usize> = vec![run.len()];
    ends.extend(
        run.char_indices()
            .filter(|(_, c)| matches!(c, ' ' | '-'))
            .map(|(i, _)| i)
            .rev(),
    );
    ends.into_iter().find_map(|e| {
        let candidate = &run[..e];
        let digits = digit_count(candidate);
        ((13..=19).contains(&digits)
            && luhn_valid(candidate)
            && isolated(text, start, start + e, &['.', '-'])
            // Not a card's digits when all are the same (`0000 0000 …`).
            && candidate.bytes().filter(u8::is_ascii_digit).any(|b| b != candidate.as_bytes()[0]))
        .then_some(start + e)
    })
}

fn find_entity(text: &str, entity: PiiEntity, out: &mut Vec<Finding>) {
    let mut push = |start: usize, end: usize| {
        out.push(Finding {
            entity,
            start,
            end,
            value: text[start..end].to_owned(),
            marker: None,
        });
    };
    match entity {
        PiiEntity::Email => {
            for m in EMAIL.find_iter(text) {
                if !is_word(char_after(text, m.end())) {
                    push(m.start(), m.end());
                }
            }
        }
        PiiEntity::Phone => {
            for m in PHONE.find_iter(text) {
                let s = m.as_str();
                let digits = digit_count(s);
                let formatted = s.starts_with('+')
                    || s.contains('(')
                    || s.chars().filter(|c| matches!(c, ' ' | '.' | '-')).count() >= 2;
                let looks_like_ip = IPV4.find(s).is_some_and(|ip| ip.as_str() == s);
                // Dates and versions use dots or dashes with short groups; phones have 10+ digits.
                if (10..=15).contains(&digits)
                    && formatted
                    && !looks_like_ip
                    && isolated(text, m.start(), m.end(), &['.', '-', '+'])
                {
                    push(m.start(), m.end());
                }
            }
        }
        PiiEntity::CreditCard => {
            for m in CARD.find_iter(text) {
                if let Some(end) = card_end(text, m.start(), m.end()) {
                    push(m.start(), end);
                }
            }
        }
        PiiEntity::Ssn => {
            for c in SSN.captures_iter(text) {
                let (Some(all), Some(area), Some(group), Some(serial)) =
                    (c.get(0), c.get(1), c.get(2), c.get(3))
                else {
                    continue;
                };
                let area = area.as_str();
                if area != "000"
                    && area != "666"
                    && !area.starts_with('9')
                    && group.as_str() != "00"
                    && serial.as_str() != "0000"
                    && isolated(text, all.start(), all.end(), &['.', '-'])
                {
                    push(all.start(), all.end());
                }
            }
        }
        PiiEntity::IpAddress => {
            for m in IPV4.find_iter(text) {
                if isolated(text, m.start(), m.end(), &['.']) {
                    push(m.start(), m.end());
                }
            }
        }
        PiiEntity::ApiKey => {
            for m in API_KEY.find_iter(text) {
                if !is_word(char_before(text, m.start()))
                    && char_before(text, m.start()) != Some('-')
                {
                    push(m.start(), m.end());
                }
            }
        }
    }
}

/// `entities`, or every built-in entity when empty.
fn effective(entities: &[PiiEntity]) -> &[PiiEntity] {
    if entities.is_empty() {
        &PiiEntity::ALL
    } else {
        entities
    }
}

fn allowlisted(value: &str, entity: PiiEntity, allowlist: &[String]) -> bool {
    allowlist.iter().any(|a| {
        let a = a.trim();
        if entity == PiiEntity::Email {
            glob_match(&a.to_ascii_lowercase(), &value.to_ascii_lowercase())
        } else {
            glob_match(a, value)
        }
    })
}

/// Finds the sensitive values in `text`: non-overlapping, in text order. `entities` empty means
/// all built-in entities; a value matching an `allowlist` entry (exactly, or by `*` glob;
/// e-mail addresses ignoring case) is not reported.
pub fn detect(text: &str, entities: &[PiiEntity], allowlist: &[String]) -> Vec<Finding> {
    let mut all = Vec::new();
    for &entity in effective(entities) {
        find_entity(text, entity, &mut all);
    }
    all.retain(|f| !allowlisted(&f.value, f.entity, allowlist));
    // Earliest first; at the same start the longest, then the most specific entity.
    all.sort_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then(b.end.cmp(&a.end))
            .then(a.entity.priority().cmp(&b.entity.priority()))
    });
    let mut out: Vec<Finding> = Vec::with_capacity(all.len());
    for f in all {
        match out.last_mut() {
            Some(prev) if f.start < prev.end => {
                // Overlap: keep the more specific entity if it covers at least as much.
                if f.entity.priority() < prev.entity.priority() && f.end >= prev.end {
                    *prev = f;
                }
            }
            _ => out.push(f),
        }
    }
    out
}

/// Replaces every finding in `text` with a typed marker (`[EMAIL_1]`, `[PHONE_1]`, …;
/// the same value gets the same marker). Returns the redacted text and the findings, each with
/// its `marker`. For several texts of one request, or to restore values later, use [`Redactor`].
pub fn redact(text: &str, entities: &[PiiEntity]) -> (String, Vec<Finding>) {
    let mut r = Redactor::new(entities, &[]);
    r.redact_with_findings(text)
}

/// Redacts the texts of one request consistently and remembers the values for restoring.
#[derive(Clone, Default)]
pub struct Redactor {
    entities: Vec<PiiEntity>,
    allowlist: Vec<String>,
    /// marker → value
    values: HashMap<String, String>,
    /// (entity, value) → marker
    markers: HashMap<(PiiEntity, String), String>,
    counters: HashMap<PiiEntity, usize>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("entities", &self.entities)
            .field("allowlist_len", &self.allowlist.len())
            .field("markers", &self.values.len())
            .finish()
    }
}

impl Redactor {
    /// A redactor for `entities` (empty = all built-in) that leaves `allowlist`ed values alone.
    pub fn new(entities: &[PiiEntity], allowlist: &[String]) -> Redactor {
        Redactor {
            entities: entities.to_vec(),
            allowlist: allowlist.to_vec(),
            ..Redactor::default()
        }
    }

    /// Replaces each finding with its marker; the same value always gets the same marker.
    pub fn redact(&mut self, text: &str) -> String {
        self.redact_with_findings(text).0
    }

    /// Like [`Redactor::redact`], also returning the findings (with their markers).
    pub fn redact_with_findings(&mut self, text: &str) -> (String, Vec<Finding>) {
        let mut findings = detect(text, &self.entities, &self.allowlist);
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for f in &mut findings {
            let key = (f.entity, f.value.clone());
            let marker = match self.markers.get(&key) {
                Some(m) => m.clone(),
                None => {
                    let n = self.counters.entry(f.entity).or_insert(0);
                    *n += 1;
                    let m = format!("[{}_{}]", f.entity.marker_label(), n);
                    self.markers.insert(key, m.clone());
                    self.values.insert(m.clone(), f.value.clone());
                    m
                }
            };
            out.push_str(&text[last..f.start]);
            out.push_str(&marker);
            last = f.end;
            f.marker = Some(marker);
        }
        out.push_str(&text[last..]);
        (out, findings)
    }

    /// Whether nothing has been redacted yet.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Puts the original values back wherever a known marker appears in `text`.
    pub fn restore(&self, text: &str) -> String {
        if self.values.is_empty() {
            return text.to_owned();
        }
        MARKER
            .replace_all(text, |c: &regex::Captures<'_>| {
                let m = c.get(0).map_or("", |m| m.as_str());
                self.values.get(m).cloned().unwrap_or_else(|| m.to_owned())
            })
            .into_owned()
    }

    /// A restorer for a streamed answer, holding back chunk ends that may be a split marker.
    pub fn stream_restorer(&self) -> StreamRestorer<'_> {
        StreamRestorer {
            redactor: self,
            pending: String::new(),
        }
    }
}

/// Restores values in a streamed answer: feed chunks to [`StreamRestorer::push`], then call
/// [`StreamRestorer::finish`]. A marker split across chunks (`[EMA` + `IL_1]`) is held back
/// until it is complete.
#[derive(Debug)]
pub struct StreamRestorer<'a> {
    redactor: &'a Redactor,
    pending: String,
}

/// Longest marker text (`[CREDIT_CARD_` + digits + `]`), with room for large counters.
const MAX_MARKER_LEN: usize = 24;

impl StreamRestorer<'_> {
    /// Takes the next chunk and returns the text that can be emitted now.
    pub fn push(&mut self, chunk: &str) -> String {
        self.pending.push_str(chunk);
        let text = std::mem::take(&mut self.pending);
        let mut cut = text.len();
        if let Some(i) = text.rfind('[') {
            let tail = &text[i + 1..];
            if tail.len() < MAX_MARKER_LEN
                && tail
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            {
                cut = i;
            }
        }
        self.pending = text[cut..].to_owned();
        self.redactor.restore(&text[..cut])
    }

    /// Returns whatever was held back (the stream ended inside something marker-like).
    pub fn finish(self) -> String {
        self.redactor.restore(&self.pending)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn found(text: &str, entity: PiiEntity) -> Vec<String> {
        detect(text, &[entity], &[])
            .into_iter()
            .map(|f| f.value)
            .collect()
    }

    fn entities_in(text: &str) -> Vec<PiiEntity> {
        detect(text, &[], &[])
            .into_iter()
            .map(|f| f.entity)
            .collect()
    }

    #[test]
    fn patterns_compile() {
        for re in [
            EMAIL_RE, PHONE_RE, CARD_RE, SSN_RE, IPV4_RE, API_KEY_RE, MARKER_RE,
        ] {
            assert!(Regex::new(re).is_ok(), "{re}");
        }
    }

    #[test]
    fn email() {
        assert_eq!(
            found(
                "write to jane.doe+kt@mail.example.co.uk today",
                PiiEntity::Email
            ),
            ["jane.doe+kt@mail.example.co.uk"]
        );
        assert!(found("use @decorator and a@b", PiiEntity::Email).is_empty());
    }

    #[test]
    fn phone() {
        for p in [
            "+1 415 555 0132",
            "(415) 555-0132",
            "415-555-0132",
            "415.555.0132",
            "+44 20 7946 0958",
            "+14155550132",
        ] {
            assert_eq!(
                found(&format!("call {p} now"), PiiEntity::Phone),
                [p],
                "{p}"
            );
        }
        for not in [
            "order 12345",
            "version 1.2.3",
            "timestamp 1700000000",
            "on 2024-01-15 at 10:30",
            "555-0132",
            "build 10.0.19041.1",
        ] {
            assert!(found(not, PiiEntity::Phone).is_empty(), "{not}");
        }
    }

    #[test]
    fn credit_card() {
        for c in [
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "5500000000000004",
            "340000000000009",
        ] {
            assert_eq!(
                found(&format!("card {c}."), PiiEntity::CreditCard),
                [c],
                "{c}"
            );
        }
        // A random 16-digit number fails the Luhn check.
        assert!(!luhn_valid("4111111111111112"));
        assert!(found("ref 4111111111111112", PiiEntity::CreditCard).is_empty());
        assert!(found("id 1234567812345678", PiiEntity::CreditCard).is_empty());
        assert!(found("order 12345", PiiEntity::CreditCard).is_empty());
        assert!(found("0000 0000 0000 0000", PiiEntity::CreditCard).is_empty());
        // A card followed by more digits (an expiry date) is still found.
        assert_eq!(
            found("card 4111 1111 1111 1111 12 25", PiiEntity::CreditCard),
            ["4111 1111 1111 1111"]
        );
    }

    #[test]
    fn ssn() {
        assert_eq!(found("ssn 123-45-6789", PiiEntity::Ssn), ["123-45-6789"]);
        for not in [
            "000-12-3456",
            "666-12-3456",
            "912-34-5678",
            "123-00-4567",
            "1-123-45-6789-0",
        ] {
            assert!(found(not, PiiEntity::Ssn).is_empty(), "{not}");
        }
    }

    #[test]
    fn ip_address() {
        assert_eq!(
            found("host 10.0.12.7 is down", PiiEntity::IpAddress),
            ["10.0.12.7"]
        );
        for not in ["version 1.2.3", "1.2.3.4.5", "999.1.1.1", "v10.0.12.7"] {
            assert!(found(not, PiiEntity::IpAddress).is_empty(), "{not}");
        }
    }

    #[test]
    fn api_key() {
        for k in [
            "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
            "sk-ant-api03-abcdefghijklmnopqrstuvwxyz",
            "AKIAIOSFODNN7EXAMPLE",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        ] {
            assert_eq!(found(&format!("key={k} ok"), PiiEntity::ApiKey), [k], "{k}");
        }
        assert!(found("ask-me-anything and task-force", PiiEntity::ApiKey).is_empty());
    }

    #[test]
    fn ordinary_text_is_clean() {
        for text in [
            "version 1.2.3",
            "order 12345",
            "Please summarise the Q3 report, pages 4-12.",
            "The meeting is on 2024-01-15 at 10:30 in room 101.",
            "fn main() { let x = vec![1, 2, 3]; }",
            "Call me maybe.",
            "Total: $1,234.56 for 3 items",
        ] {
            assert!(
                entities_in(text).is_empty(),
                "{text}: {:?}",
                entities_in(text)
            );
        }
    }

    #[test]
    fn allowlist_suppresses_exact_values_and_globs() {
        let allow = vec!["support@example.com".to_owned(), "10.0.*".to_owned()];
        let text = "mail support@example.com or bob@corp.io from 10.0.0.1 or 192.168.1.1";
        let f = detect(text, &[], &allow);
        let values: Vec<&str> = f.iter().map(|f| f.value.as_str()).collect();
        assert_eq!(values, ["bob@corp.io", "192.168.1.1"]);
        assert!(detect("SUPPORT@example.com", &[], &allow).is_empty());
    }

    #[test]
    fn overlaps_resolve_to_the_specific_entity() {
        assert_eq!(
            entities_in("card 4111 1111 1111 1111"),
            [PiiEntity::CreditCard]
        );
        assert_eq!(entities_in("ip 192.168.100.200"), [PiiEntity::IpAddress]);
    }

    #[test]
    fn redact_uses_typed_markers() {
        let (text, findings) = redact(
            "a@x.io, b@y.io, a@x.io; call +1 415 555 0132",
            &[PiiEntity::Email, PiiEntity::Phone],
        );
        assert_eq!(text, "[EMAIL_1], [EMAIL_2], [EMAIL_1]; call [PHONE_1]");
        assert_eq!(findings.len(), 4);
        assert_eq!(findings[1].marker.as_deref(), Some("[EMAIL_2]"));
        assert!(!format!("{findings:?}").contains("a@x.io"));
    }

    #[test]
    fn redactor_restores_whole_and_streamed_answers() {
        let mut r = Redactor::new(&[], &[]);
        let red = r.redact("my ssn is 123-45-6789 and mail jo@ex.com");
        assert_eq!(red, "my ssn is [SSN_1] and mail [EMAIL_1]");
        assert_eq!(r.redact("again jo@ex.com"), "again [EMAIL_1]");
        assert_eq!(
            r.restore("ok [EMAIL_1], [SSN_1], [EMAIL_9]"),
            "ok jo@ex.com, 123-45-6789, [EMAIL_9]"
        );
        let mut s = r.stream_restorer();
        let mut out = String::new();
        for chunk in ["Sure, [", "EMA", "IL_1] is [S", "SN_1", "] [not a marker"] {
            out.push_str(&s.push(chunk));
        }
        out.push_str(&s.finish());
        assert_eq!(out, "Sure, jo@ex.com is 123-45-6789 [not a marker");
        assert!(!format!("{r:?}").contains("jo@ex.com"));
    }
}
