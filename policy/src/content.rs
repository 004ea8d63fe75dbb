//! Keyword and pattern matching for `content_filter` policies.
//!
//! A [`ContentMatcher`] is compiled once, when the policy file is parsed, from the policy's
//! `keywords` and `patterns`:
//!
//! - keywords match ignoring case, as whole words or phrases: a keyword matches only where it
//!   is not glued to an ASCII letter, digit or `_` (`merge` matches "Merge!" but not
//!   "emergency"), and the words of a phrase match across any run of whitespace
//!   (`merger agreement` matches "Merger\n  Agreement"). Boundaries are ASCII on purpose: the
//!   search stays a single fast automaton pass on any text, a keyword next to a non-ASCII
//!   letter still matches (erring on the side of review), and keywords in scripts written
//!   without spaces between words (Chinese, Japanese, Thai) match inside running text;
//! - patterns are [`CustomPattern`]s (regular expressions with a name), matched as written
//!   (case-sensitive unless the pattern says `(?i)`).
//!
//! All keywords are searched together (one [`RegexSet`] pass tells which keywords occur); the
//! first keyword in text order is found with one alternation of all keywords.

use std::fmt;
use std::sync::Arc;

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use crate::pii::{CustomPattern, MAX_REGEX_SIZE, regex_error_text};

/// What a [`ContentMatcher`] found in a request's texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentMatch {
    /// The first match in text order (texts in order, then position; at the same position, a
    /// keyword before a pattern, then the order written): a keyword as written in the policy
    /// (trimmed), or a pattern's name.
    pub first: String,
    /// Every keyword and pattern name that matched, sorted, without duplicates.
    pub names: Vec<String>,
}

/// The compiled keyword search of a [`ContentMatcher`].
struct Keywords {
    /// One pattern per keyword: which keywords occur anywhere (overlaps included).
    any: RegexSet,
    /// Every keyword in one leftmost-first alternation: where the first keyword occurs.
    first: Regex,
    /// One anchored pattern per keyword, without boundaries: which keyword a match of
    /// `first` is.
    exact: RegexSet,
}

struct Inner {
    keywords: Vec<String>,
    patterns: Vec<CustomPattern>,
    /// `None` when there is no keyword.
    compiled: Option<Keywords>,
}

/// The compiled matcher of a `content_filter` policy: its keywords (case-insensitive whole
/// words and phrases) and its named regular-expression patterns. Cheap to clone (shared).
///
/// ```
/// use policy::ContentMatcher;
///
/// let m = ContentMatcher::new(&["merger agreement".into(), "merge".into()], &[]).unwrap();
/// let found = m.find(&["Draft the MERGER\n agreement", "emergency merge!"]).unwrap();
/// assert_eq!(found.first, "merger agreement");
/// assert_eq!(found.names, ["merge", "merger agreement"]);
/// assert!(m.find(&["an emergency"]).is_none());
/// ```
#[derive(Clone)]
pub struct ContentMatcher {
    inner: Arc<Inner>,
}

/// A keyword's words, escaped and joined by "any run of whitespace".
fn keyword_body(keyword: &str) -> String {
    keyword
        .split_whitespace()
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(r"\s+")
}

/// A keyword as a case-insensitive whole word or phrase.
fn keyword_pattern(keyword: &str) -> String {
    format!(
        r"(?i:(?-u:\b{{start-half}}){}(?-u:\b{{end-half}}))",
        keyword_body(keyword)
    )
}

fn build_set(patterns: impl IntoIterator<Item = String>) -> Result<RegexSet, String> {
    RegexSetBuilder::new(patterns)
        .size_limit(MAX_REGEX_SIZE)
        .dfa_size_limit(MAX_REGEX_SIZE)
        .build()
        .map_err(|e| regex_error_text(&e))
}

impl Keywords {
    fn new(keywords: &[String]) -> Result<Keywords, String> {
        let wrapped: Vec<String> = keywords.iter().map(|k| keyword_pattern(k)).collect();
        let alternation = wrapped
            .iter()
            .map(|w| format!("(?:{w})"))
            .collect::<Vec<_>>()
            .join("|");
        // The set is the largest of the three: when the keywords are too many, it fails first.
        let any = build_set(wrapped)?;
        let first = RegexBuilder::new(&alternation)
            .size_limit(MAX_REGEX_SIZE)
            .dfa_size_limit(MAX_REGEX_SIZE)
            .build()
            .map_err(|e| regex_error_text(&e))?;
        Ok(Keywords {
            any,
            first,
            exact: build_set(
                keywords
                    .iter()
                    .map(|k| format!("(?i:^(?:{})$)", keyword_body(k))),
            )?,
        })
    }

    /// The start and index of the first keyword in `text` (at one position, the first
    /// keyword written), given the indexes of the keywords that occur in it.
    fn first_in(&self, text: &str, occurring: &[usize]) -> Option<(usize, usize)> {
        let m = self.first.find(text)?;
        let index = self
            .exact
            .matches(m.as_str())
            .iter()
            .next()
            .or_else(|| occurring.first().copied())?;
        Some((m.start(), index))
    }
}

impl ContentMatcher {
    /// Compiles `keywords` (each trimmed; none may be blank) and `patterns`. Fails with a
    /// readable reason when a keyword is blank or when the keywords together are too large to
    /// compile (their compiled form is limited like a custom pattern's, see
    /// [`crate::pii::MAX_REGEX_SIZE`]; roughly 800 words or 300 phrases fit).
    pub fn new(keywords: &[String], patterns: &[CustomPattern]) -> Result<ContentMatcher, String> {
        let keywords: Vec<String> = keywords.iter().map(|k| k.trim().to_owned()).collect();
        if keywords.iter().any(String::is_empty) {
            return Err("a keyword must not be empty".to_owned());
        }
        let compiled = if keywords.is_empty() {
            None
        } else {
            Some(Keywords::new(&keywords)?)
        };
        Ok(ContentMatcher {
            inner: Arc::new(Inner {
                keywords,
                patterns: patterns.to_vec(),
                compiled,
            }),
        })
    }

    /// The keywords, trimmed, in the order written.
    pub fn keywords(&self) -> &[String] {
        &self.inner.keywords
    }

    /// The patterns, in the order written.
    pub fn patterns(&self) -> &[CustomPattern] {
        &self.inner.patterns
    }

    /// What matched in `texts` (the parts of one request, in order), or `None`. Allocates only
    /// when something matches.
    pub fn find(&self, texts: &[&str]) -> Option<ContentMatch> {
        let inner = &*self.inner;
        let mut keywords_found: Vec<usize> = Vec::new();
        let mut patterns_found: Vec<usize> = Vec::new();
        let mut first: Option<&str> = None;
        for text in texts {
            let mut here: Vec<usize> = Vec::new();
            if let Some(k) = &inner.compiled {
                here.extend(k.any.matches(text).iter());
            }
            // (start, name) of the earliest match in this text, while `first` is unknown.
            let mut earliest: Option<(usize, &str)> = None;
            if first.is_none()
                && let Some(k) = &inner.compiled
                && !here.is_empty()
                && let Some((start, i)) = k.first_in(text, &here)
            {
                earliest = Some((start, inner.keywords[i].as_str()));
            }
            for (i, p) in inner.patterns.iter().enumerate() {
                if let Some(start) = p.first_match(text) {
                    if !patterns_found.contains(&i) {
                        patterns_found.push(i);
                    }
                    if first.is_none() && earliest.is_none_or(|(s, _)| start < s) {
                        earliest = Some((start, p.name()));
                    }
                }
            }
            for i in here {
                if !keywords_found.contains(&i) {
                    keywords_found.push(i);
                }
            }
            if first.is_none() {
                first = earliest.map(|(_, name)| name);
            }
        }
        let first = first?.to_owned();
        let mut names: Vec<String> = keywords_found
            .iter()
            .map(|&i| inner.keywords[i].clone())
            .chain(
                patterns_found
                    .iter()
                    .map(|&i| inner.patterns[i].name().to_owned()),
            )
            .collect();
        names.sort();
        names.dedup();
        Some(ContentMatch { first, names })
    }

    /// Whether anything matches in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        let inner = &*self.inner;
        inner
            .compiled
            .as_ref()
            .is_some_and(|k| k.any.is_match(text))
            || inner.patterns.iter().any(|p| p.first_match(text).is_some())
    }
}

impl fmt::Debug for ContentMatcher {
    /// The number of keywords (they may name confidential matters) and the pattern names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.inner.patterns.iter().map(|p| p.name()).collect();
        f.debug_struct("ContentMatcher")
            .field("keywords_len", &self.inner.keywords.len())
            .field("patterns", &names)
            .finish()
    }
}

impl PartialEq for ContentMatcher {
    fn eq(&self, other: &ContentMatcher) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
            || (self.inner.keywords == other.inner.keywords
                && self.inner.patterns == other.inner.patterns)
    }
}

impl Default for ContentMatcher {
    /// No keyword and no pattern: matches nothing.
    fn default() -> ContentMatcher {
        ContentMatcher {
            inner: Arc::new(Inner {
                keywords: Vec::new(),
                patterns: Vec::new(),
                compiled: None,
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn matcher(keywords: &[&str], patterns: &[(&str, &str)]) -> ContentMatcher {
        let keywords: Vec<String> = keywords.iter().map(|k| k.to_string()).collect();
        let patterns: Vec<CustomPattern> = patterns
            .iter()
            .map(|(n, p)| CustomPattern::new(n, p).unwrap())
            .collect();
        ContentMatcher::new(&keywords, &patterns).unwrap()
    }

    fn found(m: &ContentMatcher, texts: &[&str]) -> Option<(String, Vec<String>)> {
        m.find(texts).map(|c| (c.first, c.names))
    }

    fn hit(first: &str, names: &[&str]) -> Option<(String, Vec<String>)> {
        Some((
            first.to_owned(),
            names.iter().map(|n| n.to_string()).collect(),
        ))
    }

    #[test]
    fn keywords_are_whole_words_ignoring_case() {
        let m = matcher(&["merger", "merge"], &[]);
        assert_eq!(found(&m, &["The Merger is on"]), hit("merger", &["merger"]));
        assert_eq!(found(&m, &["MERGE."]), hit("merge", &["merge"]));
        for text in [
            "an emergency",
            "mergers",
            "remerge",
            "merge_2",
            "merge2",
            "premerger",
            "",
        ] {
            assert_eq!(found(&m, &[text]), None, "{text}");
            assert!(!m.is_match(text), "{text}");
        }
        // Punctuation, line starts and ends are boundaries.
        for text in ["merge", "(merge)", "x\nmerge\n", "merge-ready", "«merge»"] {
            assert!(m.is_match(text), "{text}");
        }
        // Non-ASCII case folding.
        let m = matcher(&["Straße", "ÉTÉ"], &[]);
        assert_eq!(found(&m, &["die STRASSE"]), None);
        assert_eq!(
            found(&m, &["die straße, l'été"]),
            hit("Straße", &["Straße", "ÉTÉ"])
        );
    }

    #[test]
    fn phrases_match_across_whitespace_runs() {
        let m = matcher(&["  merger   agreement "], &[]);
        assert_eq!(m.keywords(), ["merger   agreement"]);
        for text in [
            "the merger agreement",
            "MERGER\n\t Agreement.",
            "merger\u{a0}agreement",
        ] {
            assert_eq!(
                found(&m, &[text]),
                hit("merger   agreement", &["merger   agreement"]),
                "{text}"
            );
        }
        for text in ["mergeragreement", "merger agreements", "merger, agreement"] {
            assert!(!m.is_match(text), "{text}");
        }
    }

    #[test]
    fn special_characters_are_literal() {
        let m = matcher(&["C++", "$AAPL", "a.b", "(draft)"], &[]);
        assert_eq!(found(&m, &["I like c++ a lot"]), hit("C++", &["C++"]));
        assert_eq!(found(&m, &["buy $aapl now"]), hit("$AAPL", &["$AAPL"]));
        assert_eq!(found(&m, &["see (Draft) v2"]), hit("(draft)", &["(draft)"]));
        for text in ["axb", "C++x", "x$AAPL", "C", "draft"] {
            assert!(!m.is_match(text), "{text}");
        }
        // Scripts without spaces between words: keywords match inside running text.
        let m = matcher(&["合并"], &[]);
        assert!(m.is_match("公司合并协议"));
    }

    #[test]
    fn first_is_in_text_order_and_names_are_sorted() {
        let m = matcher(
            &["zeta", "alpha", "merger", "merger agreement"],
            &[("project_code", "PRJ-[0-9]{4}")],
        );
        // First text with a match decides `first`; later texts add names.
        assert_eq!(
            found(&m, &["nothing", "see PRJ-1234 then ALPHA", "zeta"]),
            hit("project_code", &["alpha", "project_code", "zeta"])
        );
        assert_eq!(
            found(&m, &["alpha then PRJ-0001"]),
            hit("alpha", &["alpha", "project_code"])
        );
        // Overlapping keywords are all reported; at one position the first written wins.
        assert_eq!(
            found(&m, &["The merger agreement."]),
            hit("merger", &["merger", "merger agreement"])
        );
        let m = matcher(&["merger agreement", "merger"], &[]);
        assert_eq!(
            found(&m, &["The merger agreement."]),
            hit("merger agreement", &["merger", "merger agreement"])
        );
        assert_eq!(
            found(&m, &["The merger agreements"]),
            hit("merger", &["merger"])
        );
        // At one position, a keyword comes before a pattern.
        let m = matcher(&["prj"], &[("code", "(?i)prj-[0-9]+"), ("other", "PRJ")]);
        assert_eq!(
            found(&m, &["PRJ-12"]),
            hit("prj", &["code", "other", "prj"])
        );
        // Duplicates (ignoring case) are reported once each as written.
        let m = matcher(&["Merger", "merger"], &[]);
        assert_eq!(found(&m, &["merger"]), hit("Merger", &["Merger", "merger"]));
    }

    #[test]
    fn patterns_alone_and_empty_matches() {
        let m = matcher(&[], &[("ticket", r"\bT-[0-9]+"), ("edge", r"\b")]);
        assert_eq!(found(&m, &["see T-42"]), hit("ticket", &["ticket"]));
        // `\b` matches only empty strings: never a match.
        assert_eq!(found(&m, &["plain words"]), None);
        assert!(!m.is_match("plain words"));
        assert!(m.is_match("T-1"));
        assert_eq!(ContentMatcher::default().find(&["anything"]), None);
    }

    #[test]
    fn blank_and_oversized_keywords_are_refused() {
        assert_eq!(
            ContentMatcher::new(&["ok".into(), " ".into()], &[]).unwrap_err(),
            "a keyword must not be empty"
        );
        // (Hundreds of keywords hit the limit too, but take longer to compile in debug builds.)
        let huge = vec!["ks".repeat(60_000)];
        let err = ContentMatcher::new(&huge, &[]).unwrap_err();
        assert!(err.starts_with("the expression is too large"), "{err}");
    }

    #[test]
    fn equality_and_debug() {
        let a = matcher(&["secret project"], &[("x", "X-[0-9]")]);
        let b = matcher(&["secret project"], &[("x", "X-[0-9]")]);
        assert_eq!(a, b);
        assert_ne!(a, matcher(&["secret project"], &[]));
        let dbg = format!("{a:?}");
        assert_eq!(
            dbg,
            r#"ContentMatcher { keywords_len: 1, patterns: ["x"] }"#
        );
    }
}
