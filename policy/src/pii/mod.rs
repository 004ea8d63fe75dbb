//! Detection and redaction of personal data and secrets, in-process.
//!
//! # Entities
//!
//! Nine built-in [`PiiEntity`] kinds, each checked beyond its shape so that look-alikes are not
//! flagged: e-mail addresses (a real domain with an alphabetic top-level label), phone numbers
//! (international `+…`/`00…` numbers, North American and trunk-prefixed national formats),
//! payment cards (issuer prefix and length, Luhn checksum), US SSNs (never-issued areas, groups
//! and serials excluded), IBANs (country length and mod-97 checksum), IPv4 and IPv6 addresses,
//! API keys (OpenAI, Anthropic, AWS, GitHub, Slack, Google, kt), PEM private-key blocks and
//! JSON Web Tokens (the header must decode to JSON naming an `alg`). A policy can add its own
//! [`CustomPattern`]s (regular expressions with an entity name).
//!
//! # Speed
//!
//! A [`Scanner`] makes one pass over the bytes: only `@`, `:` and digit runs start a check, and
//! credentials are found by one regular expression whose literal prefixes (`sk-`, `AKIA`,
//! `ghp_`, `eyJ`, `-----BEGIN`, …) drive a vectorised prefilter. Text without personal data
//! costs no allocation. See `BENCHMARKS.md` for figures.
//!
//! # Redaction
//!
//! [`Redactor`] replaces findings with typed markers (`[EMAIL_1]`, stable within one request)
//! and can put the original values back into an answer ([`Redactor::restore`], or
//! [`StreamRestorer`] for streamed answers). [`AnswerFilter`] does both sides for answers:
//! redacting what the model wrote (`scan_responses`) and restoring markers (`restore`).
//! [`request_texts`] and [`redact_request`] find and rewrite the text parts of OpenAI and
//! Anthropic chat requests. Values are never shown by `Debug`.

mod redact;
mod request;
mod scan;

use std::fmt;
use std::sync::Arc;

use regex::{Regex, RegexBuilder};
use serde::{Serialize, Serializer};

use crate::glob::glob_match;

pub use redact::{AnswerFilter, Redactor, StreamRestorer};
pub use request::{redact_request, request_texts};
pub use scan::{iban_valid, luhn_valid};

use scan::Kind;
pub(crate) use scan::Span;

/// A kind of sensitive value built into kt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiEntity {
    /// E-mail addresses.
    Email,
    /// Phone numbers: international (`+44 20 7946 0958`, `0044…`), North American
    /// (`(415) 555-0132`, `415-555-0132`) and trunk-prefixed national (`020 7946 0958`).
    Phone,
    /// Payment card numbers: a known issuer prefix and length (13–19 digits), Luhn-valid,
    /// contiguous or in groups.
    CreditCard,
    /// US social security numbers (`ddd-dd-dddd`, `ddd dd dddd`, or nine digits after "SSN"),
    /// valid ranges only.
    Ssn,
    /// International bank account numbers: known country, its length, mod-97 checksum.
    Iban,
    /// IPv4 and IPv6 addresses.
    IpAddress,
    /// API keys and access tokens: OpenAI `sk-…`/`sk-proj-…`, Anthropic `sk-ant-…`, AWS
    /// `AKIA…`, GitHub `ghp_…`/`github_pat_…`, Slack `xox?-…`, Google `AIza…`, kt `kt_gk_…`.
    ApiKey,
    /// PEM private-key blocks (`-----BEGIN … PRIVATE KEY-----` … `-----END …-----`).
    PrivateKey,
    /// JSON Web Tokens (`eyJ….eyJ….…`).
    Jwt,
}

impl PiiEntity {
    /// Every built-in entity.
    pub const ALL: [PiiEntity; 9] = [
        PiiEntity::Email,
        PiiEntity::Phone,
        PiiEntity::CreditCard,
        PiiEntity::Ssn,
        PiiEntity::Iban,
        PiiEntity::IpAddress,
        PiiEntity::ApiKey,
        PiiEntity::PrivateKey,
        PiiEntity::Jwt,
    ];

    /// The credential entities: what the linter looks for in policy files.
    pub const CREDENTIALS: [PiiEntity; 3] =
        [PiiEntity::ApiKey, PiiEntity::PrivateKey, PiiEntity::Jwt];

    /// The name used in policy files and reason codes (`credit_card`).
    pub fn as_str(&self) -> &'static str {
        match self {
            PiiEntity::Email => "email",
            PiiEntity::Phone => "phone",
            PiiEntity::CreditCard => "credit_card",
            PiiEntity::Ssn => "ssn",
            PiiEntity::Iban => "iban",
            PiiEntity::IpAddress => "ip_address",
            PiiEntity::ApiKey => "api_key",
            PiiEntity::PrivateKey => "private_key",
            PiiEntity::Jwt => "jwt",
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
            PiiEntity::Iban => "IBAN",
            PiiEntity::IpAddress => "IP_ADDRESS",
            PiiEntity::ApiKey => "API_KEY",
            PiiEntity::PrivateKey => "PRIVATE_KEY",
            PiiEntity::Jwt => "JWT",
        }
    }

    /// Which entity wins when two findings overlap (lower wins): the most specific first.
    fn priority(&self) -> u8 {
        match self {
            PiiEntity::PrivateKey => 0,
            PiiEntity::Jwt => 1,
            PiiEntity::ApiKey => 2,
            PiiEntity::Email => 3,
            PiiEntity::Iban => 4,
            PiiEntity::CreditCard => 5,
            PiiEntity::Ssn => 6,
            PiiEntity::IpAddress => 7,
            PiiEntity::Phone => 8,
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for PiiEntity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The entity of a finding: built in, or a policy's custom pattern (by its name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entity {
    /// A built-in entity.
    Builtin(PiiEntity),
    /// A custom pattern's `name`.
    Custom(Arc<str>),
}

impl Entity {
    /// The name used in reason codes and events (`email`, `employee_id`).
    pub fn name(&self) -> &str {
        match self {
            Entity::Builtin(e) => e.as_str(),
            Entity::Custom(name) => name,
        }
    }

    /// The label used in markers: `EMAIL`, or the custom name in upper case (`EMPLOYEE_ID`).
    pub fn marker_label(&self) -> String {
        match self {
            Entity::Builtin(e) => e.marker_label().to_owned(),
            Entity::Custom(name) => name.to_ascii_uppercase(),
        }
    }

    /// The built-in entity, if this is one.
    pub fn builtin(&self) -> Option<PiiEntity> {
        match self {
            Entity::Builtin(e) => Some(*e),
            Entity::Custom(_) => None,
        }
    }
}

impl From<PiiEntity> for Entity {
    fn from(e: PiiEntity) -> Entity {
        Entity::Builtin(e)
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq<PiiEntity> for Entity {
    fn eq(&self, other: &PiiEntity) -> bool {
        self.builtin() == Some(*other)
    }
}

impl Serialize for Entity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A sensitive value found in a text.
#[derive(Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was found.
    pub entity: Entity,
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

/// Largest compiled size of one user-written regular expression (custom patterns and
/// `regex:` allowlist entries), so that a policy file cannot make the gateway build a huge
/// automaton.
pub const MAX_REGEX_SIZE: usize = 1 << 20;

fn compile_user_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(MAX_REGEX_SIZE)
        .dfa_size_limit(MAX_REGEX_SIZE)
        .build()
        .map_err(|e| regex_error_text(&e))
}

/// The useful line of a `regex` error ("unclosed group"), without the ASCII-art excerpt.
pub(crate) fn regex_error_text(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(s) => s
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("error: "))
            .unwrap_or(s.trim())
            .to_owned(),
        regex::Error::CompiledTooBig(limit) => {
            format!("the expression is too large (its compiled form exceeds {limit} bytes)")
        }
        other => other.to_string(),
    }
}

/// A policy's own entity: a name and a regular expression (`custom_patterns` in policy files).
#[derive(Clone)]
pub struct CustomPattern {
    name: Arc<str>,
    pattern: String,
    regex: Regex,
}

impl CustomPattern {
    /// Compiles a custom pattern. Fails with a readable reason when the regular expression is
    /// invalid, too large, or matches the empty string (it would match everywhere). The name is
    /// not checked here (validation does that).
    pub fn new(name: &str, pattern: &str) -> Result<CustomPattern, String> {
        let regex = compile_user_regex(pattern)?;
        if regex.is_match("") {
            return Err(
                "the pattern matches the empty string, so it would match everywhere".to_owned(),
            );
        }
        Ok(CustomPattern {
            name: Arc::from(name),
            pattern: pattern.to_owned(),
            regex,
        })
    }

    /// The entity name (`employee_id`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The regular expression as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The start of the first non-empty match in `text` (a pattern that does not match the
    /// empty string as a whole may still match empty at some positions, e.g. `\b`).
    pub(crate) fn first_match(&self, text: &str) -> Option<usize> {
        self.regex
            .find_iter(text)
            .find(|m| !m.is_empty())
            .map(|m| m.start())
    }
}

impl fmt::Debug for CustomPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomPattern")
            .field("name", &self.name)
            .field("pattern", &self.pattern)
            .finish()
    }
}

impl PartialEq for CustomPattern {
    fn eq(&self, other: &CustomPattern) -> bool {
        self.name == other.name && self.pattern == other.pattern
    }
}

impl Serialize for CustomPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("CustomPattern", 2)?;
        st.serialize_field("name", &*self.name)?;
        st.serialize_field("pattern", &self.pattern)?;
        st.end()
    }
}

/// Checks an allowlist entry: `regex:<pattern>` must compile. Exact values and `*` globs are
/// always valid. Returns the reason when it is not.
pub fn check_allow_entry(entry: &str) -> Result<(), String> {
    match entry.strip_prefix("regex:") {
        Some(p) => compile_user_regex(&anchored(p)).map(|_| ()),
        None => Ok(()),
    }
}

fn anchored(pattern: &str) -> String {
    format!("^(?:{pattern})$")
}

/// One compiled allowlist entry.
#[derive(Clone)]
enum Allow {
    /// Exact value or `*` glob (e-mail addresses compare ignoring case).
    Glob(String),
    /// `regex:<pattern>`: the whole value must match.
    Regex(Regex),
    /// `regex:` entry that does not compile: allows nothing (fail closed).
    Never,
}

impl Allow {
    fn new(entry: &str) -> Allow {
        match entry.strip_prefix("regex:") {
            Some(p) => compile_user_regex(&anchored(p)).map_or(Allow::Never, Allow::Regex),
            None => Allow::Glob(entry.trim().to_owned()),
        }
    }

    fn allows(&self, kind: Kind, value: &str) -> bool {
        match self {
            Allow::Glob(g) if kind == Kind::Builtin(PiiEntity::Email) => {
                glob_match(&g.to_ascii_lowercase(), &value.to_ascii_lowercase())
            }
            Allow::Glob(g) => glob_match(g, value),
            Allow::Regex(re) => re.is_match(value),
            Allow::Never => false,
        }
    }
}

struct ScannerInner {
    mask: u16,
    entities: Vec<PiiEntity>,
    custom: Vec<CustomPattern>,
    allow_src: Vec<String>,
    allow: Vec<Allow>,
}

/// A compiled detector: which entities to look for, custom patterns, and allowlisted values.
/// Cheap to clone (shared).
#[derive(Clone)]
pub struct Scanner {
    inner: Arc<ScannerInner>,
}

impl Scanner {
    /// A scanner for `entities` (empty = every built-in entity) plus `custom` patterns, that
    /// leaves values matching an `allowlist` entry alone: an exact value, a `*` glob (e-mail
    /// addresses ignoring case) or `regex:<pattern>` (the whole value must match; an entry that
    /// does not compile allows nothing).
    pub fn new(entities: &[PiiEntity], custom: &[CustomPattern], allowlist: &[String]) -> Scanner {
        let mut list: Vec<PiiEntity> = if entities.is_empty() {
            PiiEntity::ALL.to_vec()
        } else {
            entities.to_vec()
        };
        list.sort();
        list.dedup();
        Scanner {
            inner: Arc::new(ScannerInner {
                mask: list.iter().fold(0, |m, e| m | e.bit()),
                entities: list,
                custom: custom.to_vec(),
                allow_src: allowlist.to_vec(),
                allow: allowlist.iter().map(|a| Allow::new(a)).collect(),
            }),
        }
    }

    /// The built-in entities this scanner looks for.
    pub fn entities(&self) -> &[PiiEntity] {
        &self.inner.entities
    }

    /// The custom patterns this scanner looks for.
    pub fn custom_patterns(&self) -> &[CustomPattern] {
        &self.inner.custom
    }

    /// The longest marker label this scanner can produce (for stream hold-back).
    fn max_label_len(&self) -> usize {
        self.inner
            .custom
            .iter()
            .map(|c| c.name.len())
            .chain(self.inner.entities.iter().map(|e| e.marker_label().len()))
            .max()
            .unwrap_or(0)
    }

    /// The built-in entities this scanner looks for, as a bit mask.
    pub(crate) fn mask(&self) -> u16 {
        self.inner.mask
    }

    /// The overlap-resolved, allowlist-filtered spans of `text`, appended to `out`.
    fn spans(&self, text: &str, out: &mut Vec<Span>) {
        let start = out.len();
        scan::scan(text, self.inner.mask, out);
        self.finish_spans(text, out, start);
    }

    /// Like [`Scanner::spans`], from the built-in spans of a scan with a wider mask (several
    /// policies share one scan of each text; see [`raw_spans`]).
    fn spans_from(&self, text: &str, raw: &[Span], out: &mut Vec<Span>) {
        let start = out.len();
        let mask = self.inner.mask;
        out.extend(
            raw.iter()
                .filter(|s| matches!(s.kind, Kind::Builtin(e) if mask & e.bit() != 0)),
        );
        self.finish_spans(text, out, start);
    }

    /// Adds custom-pattern spans, drops allowlisted values and resolves overlaps in
    /// `out[start..]`.
    fn finish_spans(&self, text: &str, out: &mut Vec<Span>, start: usize) {
        for (i, c) in self.inner.custom.iter().enumerate() {
            for m in c.regex.find_iter(text) {
                if !m.is_empty() {
                    out.push(Span {
                        kind: Kind::Custom(i as u16),
                        start: m.start(),
                        end: m.end(),
                    });
                }
            }
        }
        if out.len() == start {
            return;
        }
        if !self.inner.allow.is_empty() {
            let mut i = start;
            while i < out.len() {
                let s = out[i];
                let value = &text[s.start..s.end];
                if self.inner.allow.iter().any(|a| a.allows(s.kind, value)) {
                    out.remove(i);
                } else {
                    i += 1;
                }
            }
        }
        resolve_overlaps(&mut out[start..]);
        out.retain(|s| s.end > s.start);
    }

    fn entity(&self, kind: Kind) -> Entity {
        match kind {
            Kind::Builtin(e) => Entity::Builtin(e),
            Kind::Custom(i) => self.inner.custom.get(i as usize).map_or_else(
                || Entity::Custom(Arc::from("custom")),
                |c| Entity::Custom(c.name.clone()),
            ),
        }
    }

    /// Finds the sensitive values in `text`: non-overlapping, in text order. Allocates only
    /// when something is found.
    pub fn find(&self, text: &str) -> Vec<Finding> {
        let mut spans = Vec::new();
        self.spans(text, &mut spans);
        spans
            .into_iter()
            .map(|s| Finding {
                entity: self.entity(s.kind),
                start: s.start,
                end: s.end,
                value: text[s.start..s.end].to_owned(),
                marker: None,
            })
            .collect()
    }

    /// Whether `text` holds anything this scanner looks for.
    pub fn is_match(&self, text: &str) -> bool {
        let mut spans = Vec::new();
        self.spans(text, &mut spans);
        !spans.is_empty()
    }

    /// The names of the entity kinds found in `text`, appended to `names` without duplicates;
    /// returns the name of the first finding in text order, if any.
    pub fn entity_names(&self, text: &str, names: &mut Vec<String>) -> Option<String> {
        let mut spans = Vec::new();
        self.spans(text, &mut spans);
        self.names_of(&spans, names)
    }

    /// [`Scanner::entity_names`] from a shared scan (`raw` = [`raw_spans`] of `text` with a
    /// mask covering this scanner's).
    pub(crate) fn entity_names_from(
        &self,
        text: &str,
        raw: &[Span],
        names: &mut Vec<String>,
    ) -> Option<String> {
        if raw.is_empty() && self.inner.custom.is_empty() {
            return None;
        }
        let mut spans = Vec::new();
        self.spans_from(text, raw, &mut spans);
        self.names_of(&spans, names)
    }

    fn names_of(&self, spans: &[Span], names: &mut Vec<String>) -> Option<String> {
        let first = spans.first().map(|s| self.entity(s.kind).name().to_owned());
        for s in spans {
            let e = self.entity(s.kind);
            if !names.iter().any(|n| n == e.name()) {
                names.push(e.name().to_owned());
            }
        }
        first
    }
}

impl fmt::Debug for Scanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scanner")
            .field("entities", &self.inner.entities)
            .field("custom", &self.inner.custom)
            .field("allowlist_len", &self.inner.allow_src.len())
            .finish()
    }
}

impl PartialEq for Scanner {
    fn eq(&self, other: &Scanner) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
            || (self.inner.entities == other.inner.entities
                && self.inner.custom == other.inner.custom
                && self.inner.allow_src == other.inner.allow_src)
    }
}

impl Default for Scanner {
    /// Every built-in entity, no custom pattern, no allowlist.
    fn default() -> Scanner {
        Scanner::new(&[], &[], &[])
    }
}

/// The built-in spans of `text` for the entities in `mask`: unsorted, possibly overlapping,
/// no allowlist applied. Empty (no allocation) when nothing is found.
pub(crate) fn raw_spans(text: &str, mask: u16) -> Vec<Span> {
    let mut out = Vec::new();
    scan::scan(text, mask, &mut out);
    out
}

fn priority(kind: Kind) -> u8 {
    match kind {
        Kind::Builtin(e) => e.priority(),
        Kind::Custom(_) => 20,
    }
}

/// Sorts spans and removes overlaps in place (removed spans are emptied: `end == start`).
/// Earliest first; at the same start the longest, then the most specific entity. A later span
/// overlapping a kept one replaces it only if it is more specific and reaches at least as far.
fn resolve_overlaps(spans: &mut [Span]) {
    spans.sort_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then(b.end.cmp(&a.end))
            .then(priority(a.kind).cmp(&priority(b.kind)))
    });
    let mut last: Option<usize> = None;
    for i in 0..spans.len() {
        let cur = spans[i];
        match last {
            Some(p) if cur.start < spans[p].end => {
                if priority(cur.kind) < priority(spans[p].kind) && cur.end >= spans[p].end {
                    spans[p].end = spans[p].start;
                    last = Some(i);
                } else {
                    spans[i].end = spans[i].start;
                }
            }
            _ => last = Some(i),
        }
    }
}

/// Finds the sensitive values in `text`: non-overlapping, in text order. `entities` empty means
/// all built-in entities; a value matching an `allowlist` entry (exactly, by `*` glob, or by
/// `regex:`; e-mail addresses ignoring case) is not reported. For repeated use, build a
/// [`Scanner`] once.
pub fn detect(text: &str, entities: &[PiiEntity], allowlist: &[String]) -> Vec<Finding> {
    Scanner::new(entities, &[], allowlist).find(text)
}

/// Replaces every finding in `text` with a typed marker (`[EMAIL_1]`, `[PHONE_1]`, …;
/// the same value gets the same marker). Returns the redacted text and the findings, each with
/// its `marker`. For several texts of one request, or to restore values later, use [`Redactor`].
pub fn redact(text: &str, entities: &[PiiEntity]) -> (String, Vec<Finding>) {
    let mut r = Redactor::new(entities, &[]);
    r.redact_with_findings(text)
}

#[cfg(test)]
mod tests;
