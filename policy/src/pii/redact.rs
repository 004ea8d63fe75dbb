//! Redaction with typed markers, restoring, and the answer side of both.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use super::scan::Span;
use super::{Finding, PiiEntity, Scanner};

/// Any marker-shaped text: `[LABEL_n]`.
const MARKER_RE: &str = r"\[[A-Z][A-Z0-9_]*_[1-9][0-9]*\]";

static MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(MARKER_RE)
        .unwrap_or_else(|_| Regex::new(r"[^\s\S]").unwrap_or_else(|_| unreachable!()))
});

/// Redacts the texts of one request consistently and remembers the values for restoring.
///
/// Findings of all its scanners (one per redacting policy) are replaced by typed markers:
/// `[EMAIL_1]`, `[EMAIL_2]`, `[PHONE_1]`, `[EMPLOYEE_ID_1]` for a custom pattern. The same value
/// always gets the same marker within one `Redactor` (one request).
#[derive(Clone, Default)]
pub struct Redactor {
    scanners: Vec<Scanner>,
    /// marker → value
    values: HashMap<String, String>,
    /// (label, value) → marker
    markers: HashMap<(String, String), String>,
    /// label → markers handed out
    counters: HashMap<String, usize>,
    /// entity names redacted so far, in order of first appearance
    entities: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("scanners", &self.scanners)
            .field("markers", &self.values.len())
            .field("entities", &self.entities)
            .finish()
    }
}

impl Redactor {
    /// A redactor for `entities` (empty = all built-in) that leaves `allowlist`ed values alone.
    pub fn new(entities: &[PiiEntity], allowlist: &[String]) -> Redactor {
        Redactor::from_scanners(vec![Scanner::new(entities, &[], allowlist)])
    }

    /// A redactor applying every one of `scanners` (their findings are merged).
    pub fn from_scanners(scanners: Vec<Scanner>) -> Redactor {
        Redactor {
            scanners,
            ..Redactor::default()
        }
    }

    /// Hands out marker numbers after those of `other` (so that markers of the two never
    /// collide, e.g. answer-side markers after request-side ones).
    pub fn continue_numbering_after(&mut self, other: &Redactor) {
        for (label, n) in &other.counters {
            let mine = self.counters.entry(label.clone()).or_insert(0);
            *mine = (*mine).max(*n);
        }
    }

    fn spans(&self, text: &str) -> Vec<(Span, usize)> {
        let mut all: Vec<(Span, usize)> = Vec::new();
        let mut buf = Vec::new();
        for (i, s) in self.scanners.iter().enumerate() {
            buf.clear();
            s.spans(text, &mut buf);
            all.extend(buf.iter().map(|sp| (*sp, i)));
        }
        if self.scanners.len() > 1 && all.len() > 1 {
            // Merge the scanners' findings: earliest first, longest first; drop overlaps.
            all.sort_by(|a, b| a.0.start.cmp(&b.0.start).then(b.0.end.cmp(&a.0.end)));
            let mut kept: Vec<(Span, usize)> = Vec::with_capacity(all.len());
            for x in all {
                match kept.last() {
                    Some(prev) if x.0.start < prev.0.end => {}
                    _ => kept.push(x),
                }
            }
            all = kept;
        }
        all
    }

    /// Replaces each finding with its marker; the same value always gets the same marker.
    pub fn redact(&mut self, text: &str) -> String {
        self.redact_with_findings(text).0
    }

    /// Like [`Redactor::redact`], but `None` (and no allocation) when there is nothing to
    /// redact.
    pub fn redact_if_needed(&mut self, text: &str) -> Option<String> {
        let spans = self.spans(text);
        if spans.is_empty() {
            return None;
        }
        Some(self.apply(text, &spans, 0, text.len(), &mut Vec::new()))
    }

    /// Like [`Redactor::redact`], also returning the findings (with their markers).
    pub fn redact_with_findings(&mut self, text: &str) -> (String, Vec<Finding>) {
        let spans = self.spans(text);
        let mut findings = Vec::with_capacity(spans.len());
        let out = self.apply(text, &spans, 0, text.len(), &mut findings);
        (out, findings)
    }

    /// Rewrites `text[from..to]`, replacing the spans inside it by markers.
    fn apply(
        &mut self,
        text: &str,
        spans: &[(Span, usize)],
        from: usize,
        to: usize,
        findings: &mut Vec<Finding>,
    ) -> String {
        let mut out = String::with_capacity(to - from + 16);
        let mut last = from;
        for (sp, scanner) in spans {
            // A value reaching into the range from before it (a stream cut that could not
            // see it whole) still has its remaining part replaced.
            if sp.end <= from || sp.end > to {
                continue;
            }
            let entity = self.scanners[*scanner].entity(sp.kind);
            let value = &text[sp.start..sp.end];
            let marker = self.marker_for(&entity.marker_label(), entity.name(), value);
            out.push_str(&text[last..sp.start.max(from)]);
            out.push_str(&marker);
            last = sp.end;
            findings.push(Finding {
                entity,
                start: sp.start,
                end: sp.end,
                value: value.to_owned(),
                marker: Some(marker),
            });
        }
        out.push_str(&text[last..to]);
        out
    }

    fn marker_for(&mut self, label: &str, name: &str, value: &str) -> String {
        let key = (label.to_owned(), value.to_owned());
        if let Some(m) = self.markers.get(&key) {
            return m.clone();
        }
        let n = self.counters.entry(label.to_owned()).or_insert(0);
        *n += 1;
        let m = format!("[{label}_{n}]");
        self.markers.insert(key, m.clone());
        self.values.insert(m.clone(), value.to_owned());
        if !self.entities.iter().any(|e| e == name) {
            self.entities.push(name.to_owned());
        }
        m
    }

    /// Whether nothing has been redacted yet.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The entity names redacted so far (names only, never values), in order of first
    /// appearance.
    pub fn entities(&self) -> &[String] {
        &self.entities
    }

    /// Puts the original values back wherever a known marker appears in `text`; unknown
    /// markers are left alone.
    pub fn restore(&self, text: &str) -> String {
        if self.values.is_empty() || !text.contains('[') {
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

    /// The longest marker this redactor can produce, with room for large counters.
    fn max_marker_len(&self) -> usize {
        let labels = self
            .scanners
            .iter()
            .map(Scanner::max_label_len)
            .chain(self.counters.keys().map(String::len))
            .max()
            .unwrap_or(0);
        labels.max(11) + 12
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

/// Splits `pending + chunk` into what can be restored now and a tail that may be the start of
/// a marker (kept in `pending`).
fn restorable_now(pending: &mut String, chunk: &str, max_marker: usize) -> String {
    pending.push_str(chunk);
    let text = std::mem::take(pending);
    let mut cut = text.len();
    if let Some(i) = text.rfind('[') {
        let tail = &text[i + 1..];
        if tail.len() < max_marker
            && tail
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            cut = i;
        }
    }
    *pending = text[cut..].to_owned();
    let mut text = text;
    text.truncate(cut);
    text
}

impl StreamRestorer<'_> {
    /// Takes the next chunk and returns the text that can be emitted now.
    pub fn push(&mut self, chunk: &str) -> String {
        let ready = restorable_now(&mut self.pending, chunk, self.redactor.max_marker_len());
        self.redactor.restore(&ready)
    }

    /// Returns whatever was held back (the stream ended inside something marker-like).
    pub fn finish(self) -> String {
        self.redactor.restore(&self.pending)
    }
}

/// How many bytes of a streamed answer are held back so that a value split across chunks is
/// seen whole: more than the longest built-in value that contains spaces (a grouped IBAN,
/// 42 bytes). Values without spaces are held back whole whatever their length.
const STREAM_HOLD: usize = 64;
/// A run without whitespace longer than this is let through in pieces.
const STREAM_MAX_TOKEN: usize = 16 * 1024;
/// Left context kept from text already emitted (for checks that look behind a value).
const STREAM_CONTEXT: usize = 64;

/// Filters one answer of the provider on its way to the caller: redacts the sensitive values
/// the model wrote (policies with `scan_responses: true`), then puts back the caller's own
/// values wherever the model repeated a request marker (`restore: true`).
///
/// Use [`AnswerFilter::filter`] for whole answers, or [`AnswerFilter::push`] and
/// [`AnswerFilter::finish`] for one streamed text (a value split across chunks is held back
/// until it is whole; at most about 64 bytes of text are delayed, plus any unfinished word).
/// Answer-side markers are numbered after the request's, and are never restored. Owned and
/// `Send`, so it can move into a response stream.
#[derive(Debug, Clone)]
pub struct AnswerFilter {
    scan: Option<Redactor>,
    restore: Option<Redactor>,
    /// Emitted text kept as left context for the scan (not emitted again).
    context: String,
    /// Text received but not emitted yet (redaction stage).
    pending: String,
    /// Text redacted but possibly ending inside a marker (restore stage).
    restore_pending: String,
}

impl AnswerFilter {
    /// A filter redacting with `scan` (if any) and restoring `restore`'s markers (if any).
    /// `scan` numbers its markers after `restore`'s.
    pub fn new(scan: Option<Redactor>, restore: Option<Redactor>) -> AnswerFilter {
        let scan = scan.map(|mut s| {
            if let Some(r) = &restore {
                s.continue_numbering_after(r);
            }
            s
        });
        AnswerFilter {
            scan,
            restore,
            context: String::new(),
            pending: String::new(),
            restore_pending: String::new(),
        }
    }

    /// Whether the filter redacts answers (`scan_responses`).
    pub fn redacts(&self) -> bool {
        self.scan.is_some()
    }

    /// Whether the filter restores request values (`restore`).
    pub fn restores(&self) -> bool {
        self.restore.as_ref().is_some_and(|r| !r.is_empty())
    }

    /// The entity names redacted from the answer so far (names only).
    pub fn entities(&self) -> &[String] {
        self.scan.as_ref().map_or(&[], |s| s.entities())
    }

    /// Filters a whole (non-streamed) text of the answer.
    pub fn filter(&mut self, text: &str) -> String {
        let redacted = match &mut self.scan {
            Some(s) => s.redact_if_needed(text),
            None => None,
        };
        let text = redacted.as_deref().unwrap_or(text);
        match &self.restore {
            Some(r) => r.restore(text),
            None => text.to_owned(),
        }
    }

    /// Takes the next chunk of a streamed text and returns what can be sent now.
    pub fn push(&mut self, chunk: &str) -> String {
        let redacted = if self.scan.is_some() {
            self.pending.push_str(chunk);
            self.redact_ready(false)
        } else {
            chunk.to_owned()
        };
        self.restore_stage(&redacted, false)
    }

    /// Ends a streamed text: returns everything still held back.
    pub fn finish(&mut self) -> String {
        let redacted = if self.scan.is_some() {
            self.redact_ready(true)
        } else {
            String::new()
        };
        let out = self.restore_stage(&redacted, true);
        self.context.clear();
        out
    }

    fn restore_stage(&mut self, text: &str, last: bool) -> String {
        let Some(r) = &self.restore else {
            return text.to_owned();
        };
        let mut ready = restorable_now(&mut self.restore_pending, text, r.max_marker_len());
        if last {
            ready.push_str(&std::mem::take(&mut self.restore_pending));
        }
        r.restore(&ready)
    }

    /// Redacts and returns the part of `pending` that is safe to emit.
    fn redact_ready(&mut self, all: bool) -> String {
        let Some(scan) = &mut self.scan else {
            return std::mem::take(&mut self.pending);
        };
        if self.pending.is_empty() {
            return String::new();
        }
        if !all
            && (self.pending.len() <= STREAM_HOLD
                || whitespace_cut(&self.pending, 0).is_none_or(|c| c == 0))
        {
            // Nothing can be let through yet (no word ends early enough): no need to scan.
            return String::new();
        }
        let ctx_len = self.context.len();
        let mut buf = std::mem::take(&mut self.context);
        buf.push_str(&self.pending);
        let spans = scan.spans(&buf);
        let mut cut = buf.len();
        if !all {
            cut = safe_cut(&buf, ctx_len, &spans);
        }
        // A value that begins in the context was emitted already: cut must not split one.
        for (sp, _) in &spans {
            if sp.start < cut && sp.end > cut {
                cut = sp.start.max(ctx_len);
            }
        }
        let out = if cut > ctx_len {
            scan.apply(&buf, &spans, ctx_len, cut, &mut Vec::new())
        } else {
            String::new()
        };
        // Keep the tail of what was emitted as context, and what was not as pending.
        let ctx_start = floor_boundary(&buf, cut.saturating_sub(STREAM_CONTEXT));
        self.context = buf[ctx_start.min(cut)..cut].to_owned();
        self.pending = buf[cut..].to_owned();
        out
    }
}

/// Where a streamed text can be cut: at whitespace at least [`STREAM_HOLD`] bytes before its
/// end, and before any unfinished private-key block.
fn safe_cut(buf: &str, from: usize, spans: &[(Span, usize)]) -> usize {
    let mut cut = whitespace_cut(buf, from).unwrap_or(from);
    // A private-key block is held back whole until its end line is in (64 KiB at most).
    if let Some(i) = buf[from..].rfind("-----BEGIN ") {
        let begin = from + i;
        let header = &buf[begin..];
        let private = header
            .find('\n')
            .is_none_or(|e| header[..e].contains("PRIVATE KEY"));
        let complete = spans
            .iter()
            .any(|(sp, _)| sp.start == begin && buf[begin..sp.end].contains("-----END "));
        if private && !complete && begin < cut && buf.len() - begin <= 64 * 1024 {
            cut = begin;
        }
    }
    cut
}

/// Just after the last whitespace of `buf[from..]` that is at least [`STREAM_HOLD`] bytes
/// before the end; for a run without whitespace longer than [`STREAM_MAX_TOKEN`], the hold
/// limit itself. `None` when nothing can be cut.
fn whitespace_cut(buf: &str, from: usize) -> Option<usize> {
    let limit = floor_boundary(buf, buf.len().saturating_sub(STREAM_HOLD));
    if limit <= from {
        return None;
    }
    match buf[from..limit].rfind(char::is_whitespace) {
        Some(i) => {
            let ws = buf[from + i..].chars().next().map_or(1, char::len_utf8);
            Some(from + i + ws)
        }
        None if buf.len() - from > STREAM_MAX_TOKEN => Some(limit),
        None => None,
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
