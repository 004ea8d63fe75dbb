//! The built-in detectors.
//!
//! One pass over the bytes: a byte-class table sends digit runs to the numeric checks (phone,
//! card, SSN, IBAN, IPv4), `@` to the e-mail check and `:` to the IPv6 check; everything else
//! is skipped at table-lookup speed. Credentials are found by one regular expression (its
//! literal prefixes drive the `regex` crate's vectorised prefilter) and then checked in code.
//! Each check is bounded (it looks at most a few dozen bytes around its trigger), so a scan is
//! linear in the text. Nothing is allocated unless something is found.

use std::net::Ipv6Addr;
use std::sync::LazyLock;

use regex::Regex;

use super::PiiEntity;

/// What a span is: a built-in entity or the index of a custom pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Builtin(PiiEntity),
    Custom(u16),
}

/// A raw finding: byte offsets into the scanned text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

const C_DIGIT: u8 = 1;
const C_AT: u8 = 2;
const C_COLON: u8 = 3;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = b'0';
    while i <= b'9' {
        t[i as usize] = C_DIGIT;
        i += 1;
    }
    t[b'@' as usize] = C_AT;
    t[b':' as usize] = C_COLON;
    t
};

fn has(mask: u16, e: PiiEntity) -> bool {
    mask & e.bit() != 0
}

/// Scans `text` for the built-in entities in `mask`, appending spans (unsorted, possibly
/// overlapping) to `out`.
pub(crate) fn scan(text: &str, mask: u16, out: &mut Vec<Span>) {
    let creds_from = out.len();
    if PiiEntity::CREDENTIALS.iter().any(|e| has(mask, *e)) {
        credentials(text, mask, out);
    }
    let creds_to = out.len();
    let want_email = has(mask, PiiEntity::Email);
    let want_ip = has(mask, PiiEntity::IpAddress);
    let numeric_mask = PiiEntity::Phone.bit()
        | PiiEntity::CreditCard.bit()
        | PiiEntity::Ssn.bit()
        | PiiEntity::Iban.bit()
        | PiiEntity::IpAddress.bit();
    let want_num = mask & numeric_mask != 0;
    if !want_email && !want_num {
        return;
    }
    let b = text.as_bytes();
    let n = b.len();
    let mut i = 0;
    let mut email_done = 0;
    let mut v6_done = 0;
    // End of an IBAN-shaped run (valid or not): no other number starts inside it.
    let mut iban_until = 0;
    // Credentials found above (in text order): their bodies (base64, long runs of random
    // characters) hold nothing else, so the scan jumps over them.
    let mut cred = creds_from;
    while i < n {
        i = next_trigger(b, i);
        if i >= n {
            break;
        }
        while cred < creds_to && out[cred].end <= i {
            cred += 1;
        }
        if cred < creds_to && out[cred].start <= i {
            i = out[cred].end;
            continue;
        }
        match CLASS[b[i] as usize] {
            0 => i += 1,
            C_DIGIT => {
                let end = digits_end(b, i);
                if want_num {
                    numeric(text, i, end, mask, out, &mut iban_until);
                }
                i = end;
            }
            C_AT => {
                if want_email
                    && i >= email_done
                    && let Some((s, e)) = email_at(text, i)
                {
                    out.push(span(PiiEntity::Email, s, e));
                    email_done = e;
                }
                i += 1;
            }
            _ => {
                if want_ip && i >= v6_done {
                    v6_done = ipv6_at(text, i, out);
                }
                i += 1;
            }
        }
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;

/// The first index from `i` holding a digit, `:` or `@` (or `b.len()`). Eight bytes at a time
/// (SWAR: per-byte range tests in a `u64`), so text between triggers costs little.
#[inline]
fn next_trigger(b: &[u8], mut i: usize) -> usize {
    while i + 8 <= b.len() {
        let mut chunk = [0u8; 8];
        chunk.copy_from_slice(&b[i..i + 8]);
        let v = u64::from_le_bytes(chunk);
        let x = v & LOW7;
        // High bit set where x >= 0x30, and where x >= 0x3B: digits and `:` are 0x30..=0x3A.
        let ge_30 = (x + (0x80 - 0x30) * LO) & HI;
        let ge_3b = (x + (0x80 - 0x3B) * LO) & HI;
        // High bit set where x == 0x40 (`@`).
        let y = x ^ (0x40 * LO);
        let at = !(((y & LOW7) + LOW7) | y) & HI;
        // Bytes >= 0x80 (UTF-8) are never triggers.
        let hits = ((ge_30 & !ge_3b) | at) & !(v & HI);
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && CLASS[b[i] as usize] == 0 {
        i += 1;
    }
    i
}

#[cfg(test)]
pub(crate) fn next_trigger_for_tests(b: &[u8], i: usize) -> usize {
    next_trigger(b, i)
}

fn span(e: PiiEntity, start: usize, end: usize) -> Span {
    Span {
        kind: Kind::Builtin(e),
        start,
        end,
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers. Every position passed around is on an ASCII byte or at either end of the text,
// hence always a char boundary.

fn digits_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i
}

fn is_digit_at(b: &[u8], i: usize) -> bool {
    b.get(i).is_some_and(u8::is_ascii_digit)
}

fn prev_char(text: &str, i: usize) -> Option<char> {
    text.get(..i).and_then(|t| t.chars().next_back())
}

fn next_char(text: &str, i: usize) -> Option<char> {
    text.get(i..).and_then(|t| t.chars().next())
}

/// A character that glues onto a value (so the value is part of a longer token): ASCII
/// letters, digits and `_`, and letters of scripts written with spaces between words (Latin,
/// Greek, Cyrillic, Hebrew, Arabic, Indic, …). Letters of scripts written without spaces
/// (Thai, CJK, kana, …) are word boundaries: `連絡先はa@b.jpです` holds an e-mail address.
fn is_word(c: Option<char>) -> bool {
    c.is_some_and(|c| {
        c.is_ascii_alphanumeric()
            || c == '_'
            || (!c.is_ascii() && c < '\u{0E00}' && c.is_alphanumeric())
    })
}

#[inline]
fn word_before(text: &str, i: usize) -> bool {
    match i.checked_sub(1).map(|j| text.as_bytes()[j]) {
        None => false,
        Some(c) if c.is_ascii() => c.is_ascii_alphanumeric() || c == b'_',
        Some(_) => is_word(prev_char(text, i)),
    }
}

#[inline]
fn word_after(text: &str, i: usize) -> bool {
    match text.as_bytes().get(i) {
        None => false,
        Some(c) if c.is_ascii() => c.is_ascii_alphanumeric() || *c == b'_',
        Some(_) => is_word(next_char(text, i)),
    }
}

/// `x.` / `x-` right before `i`, where `x` is a letter or digit: `i` continues a longer token
/// (`v1.2`, `ID-123`).
fn joined_before(text: &str, i: usize, joiners: &[u8]) -> bool {
    let b = text.as_bytes();
    i >= 1 && joiners.contains(&b[i - 1]) && word_before(text, i - 1)
}

/// `.5` / `-12` right after `i`: the number goes on.
fn joined_after(text: &str, i: usize, joiners: &[u8]) -> bool {
    let b = text.as_bytes();
    b.get(i).is_some_and(|c| joiners.contains(c)) && is_digit_at(b, i + 1)
}

/// Whether the digits at `s` are the second group of a longer grouped number (`12 4111…`,
/// `555-0132`): a separator right before, and before it a group of digits that is a token of
/// its own (not the end of a version such as `0.8.18`, nor of a word).
fn follows_number_group(b: &[u8], s: usize) -> bool {
    if s < 2 || !matches!(b[s - 1], b' ' | b'-' | b'.') || !b[s - 2].is_ascii_digit() {
        return false;
    }
    let mut j = s - 2;
    while j > 0 && b[j - 1].is_ascii_digit() {
        j -= 1;
    }
    j == 0 || !(b[j - 1].is_ascii_alphanumeric() || matches!(b[j - 1], b'.' | b'_' | b'@'))
}

// ---------------------------------------------------------------------------------------------
// Numbers: phone, card, SSN, IBAN, IPv4. `s..run_end` is a maximal run of digits.

fn numeric(
    text: &str,
    s: usize,
    run_end: usize,
    mask: u16,
    out: &mut Vec<Span>,
    iban_until: &mut usize,
) {
    let b = text.as_bytes();
    if s >= 2
        && run_end - s >= 2
        && b[s - 1].is_ascii_uppercase()
        && b[s - 2].is_ascii_uppercase()
        && let Some((e, valid)) = iban_at(text, s - 2)
    {
        *iban_until = e;
        if valid && has(mask, PiiEntity::Iban) {
            out.push(span(PiiEntity::Iban, s - 2, e));
        }
    }
    if s < *iban_until || word_before(text, s) {
        return;
    }
    // Cheap shape checks first: most digit runs (counts, years, times, ids) stop here.
    let run = run_end - s;
    let next = b.get(run_end).copied();
    let then_digit = is_digit_at(b, run_end + 1);
    let grouped = matches!(next, Some(b' ' | b'-')) && then_digit;
    let prev = if s > 0 { b[s - 1] } else { b' ' };
    let phone_shape = prev == b'+'
        || prev == b'('
        || ((matches!(next, Some(b' ' | b'-' | b'.' | b'/')) && then_digit || next == Some(b')'))
            && (b[s] == b'0' || run == 3 || (run == 1 && b[s] == b'1')));
    if phone_shape
        && has(mask, PiiEntity::Phone)
        && let Some((ps, pe)) = phone_at(text, s)
    {
        out.push(span(PiiEntity::Phone, ps, pe));
    }
    if ((13..=19).contains(&run) || (run == 4 && grouped))
        && has(mask, PiiEntity::CreditCard)
        && let Some(e) = card_at(text, s)
    {
        out.push(span(PiiEntity::CreditCard, s, e));
    }
    if ((run == 3 && grouped) || run == 9)
        && has(mask, PiiEntity::Ssn)
        && let Some(e) = ssn_at(text, s, run_end)
    {
        out.push(span(PiiEntity::Ssn, s, e));
    }
    if run <= 3
        && next == Some(b'.')
        && has(mask, PiiEntity::IpAddress)
        && let Some(e) = ipv4_at(text, s)
    {
        out.push(span(PiiEntity::IpAddress, s, e));
    }
}

// --- phone -----------------------------------------------------------------------------------

fn phone_at(text: &str, s: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    match s.checked_sub(1).map(|j| b[j]) {
        Some(b'+') => {
            if word_before(text, s - 1) || b[s] == b'0' {
                return None;
            }
            international(text, s).map(|e| (s - 1, e))
        }
        Some(b'(') => {
            if word_before(text, s - 1) {
                return None;
            }
            national(text, s - 1)
                .map(|e| (s - 1, e))
                .or_else(|| national(text, s).map(|e| (s, e)))
        }
        _ => {
            if joined_before(text, s, b".-/") || follows_number_group(b, s) {
                return None;
            }
            national(text, s).map(|e| (s, e))
        }
    }
}

/// After `+`: the country code and number, in digit groups separated by single spaces, dashes
/// or dots, possibly with a parenthesised group (`(0)`, `(415)`). 9 to 15 digits (E.164).
fn international(text: &str, s: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut pos = s;
    let mut digits = 0usize;
    let mut best = None;
    loop {
        if b.get(pos) == Some(&b'(') {
            let ds = pos + 1;
            let de = digits_end(b, ds);
            if de == ds || de - ds > 4 || b.get(de) != Some(&b')') {
                break;
            }
            if &b[ds..de] != b"0" {
                digits += de - ds;
            }
            pos = de + 1;
            match b.get(pos) {
                Some(b' ' | b'-') if is_digit_at(b, pos + 1) => pos += 1,
                Some(c) if c.is_ascii_digit() => {}
                _ => break,
            }
            continue;
        }
        let de = digits_end(b, pos);
        if de == pos || (de - pos < 2 && b[pos - 1] == b'.') {
            break;
        }
        digits += de - pos;
        if digits > 15 {
            break;
        }
        if digits >= 9 && !word_after(text, de) && !joined_after(text, de, b".") {
            best = Some(de);
        }
        match b.get(de) {
            Some(b' ' | b'-' | b'.') if is_digit_at(b, de + 1) || b.get(de + 1) == Some(&b'(') => {
                pos = de + 1
            }
            _ => break,
        }
    }
    best
}

/// A national number starting at `start` (a digit or `(`): North American, or trunk-prefixed
/// (`0…`, `00…` for international calls).
fn national(text: &str, start: usize) -> Option<usize> {
    nanp(text, start).or_else(|| trunk(text, start))
}

/// `[1 ](NXX) NXX-XXXX`, `NXX-NXX-XXXX`, `NXX.NXX.XXXX`, `NXX NXX XXXX` (N = 2–9).
fn nanp(text: &str, start: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut pos = start;
    if b.get(pos) == Some(&b'1') && matches!(b.get(pos + 1), Some(b' ' | b'-' | b'.')) {
        pos += 2;
    }
    let paren = b.get(pos) == Some(&b'(');
    if paren {
        pos += 1;
    }
    let three = |p: usize| digits_end(b, p) == p + 3 && (b'2'..=b'9').contains(&b[p]);
    if !three(pos) {
        return None;
    }
    pos += 3;
    if paren {
        if b.get(pos) != Some(&b')') {
            return None;
        }
        pos += 1;
        if matches!(b.get(pos), Some(b' ' | b'-')) {
            pos += 1;
        }
    } else if matches!(b.get(pos), Some(b' ' | b'-' | b'.')) {
        pos += 1;
    } else {
        return None;
    }
    if !three(pos) {
        return None;
    }
    pos += 3;
    if !matches!(b.get(pos), Some(b' ' | b'-' | b'.')) {
        return None;
    }
    pos += 1;
    if digits_end(b, pos) != pos + 4 {
        return None;
    }
    let end = pos + 4;
    (!word_after(text, end) && !joined_after(text, end, b".-/:")).then_some(end)
}

/// `0` + area code (2–5 digits in all, optionally in parentheses), then groups of 2–8 digits
/// with one kind of separator: 10–11 digits in all (`020 7946 0958`, `06 12 34 56 78`,
/// `(02) 9374 4000`), or 11–17 for an international call (`0044 20 7946 0958`).
fn trunk(text: &str, start: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut pos = start;
    let paren = b.get(pos) == Some(&b'(');
    if paren {
        pos += 1;
    }
    if b.get(pos) != Some(&b'0') {
        return None;
    }
    let de = digits_end(b, pos);
    let first = de - pos;
    if !(2..=5).contains(&first) {
        return None;
    }
    let intl = b.get(pos + 1) == Some(&b'0');
    let (lo, hi) = if intl { (11, 17) } else { (10, 11) };
    let mut digits = first;
    pos = de;
    let mut after_paren = false;
    if paren {
        if b.get(pos) != Some(&b')') {
            return None;
        }
        pos += 1;
        after_paren = true;
    }
    let mut sep: Option<u8> = None;
    let mut best = None;
    loop {
        match b.get(pos) {
            Some(&c @ (b' ' | b'-' | b'/'))
                if is_digit_at(b, pos + 1) && (after_paren || sep.is_none_or(|s| s == c)) =>
            {
                if !after_paren {
                    sep = Some(c);
                }
                pos += 1;
            }
            Some(c) if after_paren && c.is_ascii_digit() => {}
            _ => break,
        }
        after_paren = false;
        let de = digits_end(b, pos);
        let len = de - pos;
        if !(2..=8).contains(&len) {
            break;
        }
        digits += len;
        pos = de;
        if digits > hi {
            break;
        }
        if digits >= lo && !word_after(text, de) && !joined_after(text, de, b".-/:") {
            best = Some(de);
        }
    }
    best
}

// --- payment cards ---------------------------------------------------------------------------

fn card_at(text: &str, s: usize) -> Option<usize> {
    let b = text.as_bytes();
    if !(b'2'..=b'6').contains(&b[s]) || joined_before(text, s, b".-") {
        return None;
    }
    if follows_number_group(b, s) {
        return None;
    }
    let mut ends = [0usize; 7];
    let mut lens = [0usize; 7];
    let mut k = 0;
    let mut sep = 0u8;
    let mut pos = s;
    let mut total = 0;
    loop {
        let de = digits_end(b, pos);
        let len = de - pos;
        if total + len > 19 {
            if k == 0 {
                return None;
            }
            break;
        }
        total += len;
        ends[k] = de;
        lens[k] = len;
        k += 1;
        if k == ends.len() {
            break;
        }
        match b.get(de) {
            Some(&c @ (b' ' | b'-')) if is_digit_at(b, de + 1) && (sep == 0 || sep == c) => {
                sep = c;
                pos = de + 1;
            }
            _ => break,
        }
    }
    for m in (1..=k).rev() {
        let digits: usize = lens[..m].iter().sum();
        if !(13..=19).contains(&digits) {
            continue;
        }
        if m > 1
            && (lens[0] != 4
                || lens[1..m - 1].iter().any(|l| !(4..=6).contains(l))
                || !(1..=6).contains(&lens[m - 1]))
        {
            continue;
        }
        let e = ends[m - 1];
        if word_after(text, e) || joined_after(text, e, b".") {
            continue;
        }
        let number = &b[s..e];
        if card_brand_ok(number, digits) && luhn_bytes(number) && !all_same_digit(number) {
            return Some(e);
        }
    }
    None
}

/// The first `n` digits of `number` (separators skipped) as an integer.
fn prefix(number: &[u8], n: usize) -> u32 {
    number
        .iter()
        .filter(|c| c.is_ascii_digit())
        .take(n)
        .fold(0, |acc, c| acc * 10 + u32::from(c - b'0'))
}

/// Issuer identification: a known prefix with one of its lengths.
fn card_brand_ok(number: &[u8], len: usize) -> bool {
    let (d1, d2, d3, d4) = (
        prefix(number, 1),
        prefix(number, 2),
        prefix(number, 3),
        prefix(number, 4),
    );
    match d1 {
        // Visa
        4 => matches!(len, 13 | 16 | 19),
        // Mastercard (2-series and 51–55), Maestro (50, 56–58)
        2 => (2221..=2720).contains(&d4) && len == 16,
        5 => {
            ((51..=55).contains(&d2) && len == 16)
                || ((d2 == 50 || (56..=58).contains(&d2)) && (13..=19).contains(&len))
        }
        // Amex, JCB, Diners
        3 => {
            ((d2 == 34 || d2 == 37) && len == 15)
                || ((3528..=3589).contains(&d4) && (16..=19).contains(&len))
                || (((300..=305).contains(&d3) || d4 == 3095 || matches!(d2, 36 | 38 | 39))
                    && (14..=19).contains(&len))
        }
        // Discover, UnionPay, Maestro
        6 => (13..=19).contains(&len),
        _ => false,
    }
}

fn all_same_digit(number: &[u8]) -> bool {
    let mut digits = number.iter().filter(|c| c.is_ascii_digit());
    let first = digits.next();
    digits.all(|d| Some(d) == first)
}

fn luhn_bytes(number: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut count = 0usize;
    for c in number.iter().rev().filter(|c| c.is_ascii_digit()) {
        let d = u32::from(c - b'0');
        sum += if count % 2 == 1 {
            let d2 = d * 2;
            if d2 > 9 { d2 - 9 } else { d2 }
        } else {
            d
        };
        count += 1;
    }
    count >= 2 && sum.is_multiple_of(10)
}

/// The Luhn checksum used by payment card numbers (non-digits are skipped).
pub fn luhn_valid(number: &str) -> bool {
    luhn_bytes(number.as_bytes())
}

// --- SSN -------------------------------------------------------------------------------------

fn ssn_at(text: &str, s: usize, run_end: usize) -> Option<usize> {
    let b = text.as_bytes();
    let (area, group, serial, end, sep) = match run_end - s {
        3 => {
            let sep = *b.get(s + 3)?;
            if !matches!(sep, b'-' | b' ')
                || digits_end(b, s + 4) != s + 6
                || b.get(s + 6) != Some(&sep)
                || digits_end(b, s + 7) != s + 11
            {
                return None;
            }
            (
                &b[s..s + 3],
                &b[s + 4..s + 6],
                &b[s + 7..s + 11],
                s + 11,
                sep,
            )
        }
        9 if ssn_keyword_before(b, s) => (
            &b[s..s + 3],
            &b[s + 3..s + 5],
            &b[s + 5..s + 9],
            s + 9,
            b'-',
        ),
        _ => return None,
    };
    if area == b"000" || area == b"666" || area[0] == b'9' || group == b"00" || serial == b"0000" {
        return None;
    }
    if joined_before(text, s, b".-")
        || (s >= 2 && b[s - 1] == b' ' && sep == b' ' && b[s - 2].is_ascii_digit())
        || word_after(text, end)
        || joined_after(text, end, &[sep, b'.'])
    {
        return None;
    }
    Some(end)
}

/// "SSN" or "social security" within the 40 bytes before `s` (for bare nine-digit numbers).
fn ssn_keyword_before(b: &[u8], s: usize) -> bool {
    let window = &b[s.saturating_sub(40)..s];
    let has = |needle: &[u8]| {
        window
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
    };
    has(b"ssn") || has(b"social security")
}

// --- IPv4 ------------------------------------------------------------------------------------

fn ipv4_at(text: &str, s: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut pos = s;
    for k in 0..4 {
        let de = digits_end(b, pos);
        let len = de - pos;
        if len == 0 || len > 3 || (len > 1 && b[pos] == b'0') {
            return None;
        }
        let value = b[pos..de]
            .iter()
            .fold(0u32, |a, c| a * 10 + u32::from(c - b'0'));
        if value > 255 {
            return None;
        }
        pos = de;
        if k < 3 {
            if b.get(pos) != Some(&b'.') {
                return None;
            }
            pos += 1;
        }
    }
    if joined_before(text, s, b".") || word_after(text, pos) || joined_after(text, pos, b".") {
        return None;
    }
    Some(pos)
}

// --- IBAN ------------------------------------------------------------------------------------

/// IBAN lengths by country (SWIFT IBAN registry).
fn iban_length(cc: [u8; 2]) -> Option<usize> {
    Some(match &cc {
        b"NO" => 15,
        b"BE" => 16,
        b"DK" | b"FI" | b"FO" | b"GL" | b"NL" | b"SD" | b"FK" => 18,
        b"MK" | b"SI" => 19,
        b"AT" | b"BA" | b"EE" | b"KZ" | b"LT" | b"LU" | b"XK" | b"MN" => 20,
        b"CH" | b"HR" | b"LI" | b"LV" => 21,
        b"BG" | b"BH" | b"CR" | b"DE" | b"GB" | b"GE" | b"IE" | b"ME" | b"RS" | b"VA" => 22,
        b"AE" | b"GI" | b"IL" | b"IQ" | b"TL" | b"SO" | b"OM" => 23,
        b"AD" | b"CZ" | b"ES" | b"MD" | b"PK" | b"RO" | b"SA" | b"SE" | b"SK" | b"TN" | b"VG" => 24,
        b"PT" | b"ST" | b"LY" => 25,
        b"IS" | b"TR" => 26,
        b"FR" | b"GR" | b"IT" | b"MC" | b"MR" | b"SM" | b"BI" | b"DJ" => 27,
        b"AL" | b"AZ" | b"CY" | b"DO" | b"GT" | b"HU" | b"LB" | b"PL" | b"SV" | b"NI" | b"HN" => 28,
        b"BR" | b"EG" | b"PS" | b"QA" | b"UA" => 29,
        b"JO" | b"KW" | b"MU" | b"YE" => 30,
        b"MT" | b"SC" => 31,
        b"LC" => 32,
        b"RU" => 33,
        _ => return None,
    })
}

/// An IBAN-shaped run starting at `p` (two upper-case letters of a known country, two check
/// digits, the country's length, contiguous or in groups of four separated by single spaces):
/// its end, and whether its checksum is right.
fn iban_at(text: &str, p: usize) -> Option<(usize, bool)> {
    let b = text.as_bytes();
    if word_before(text, p) {
        return None;
    }
    let len = iban_length([b[p], b[p + 1]])?;
    let mut buf = [0u8; 34];
    let mut count = 0;
    let mut i = p;
    while count < len {
        match b.get(i) {
            Some(&c) if c.is_ascii_uppercase() || c.is_ascii_digit() => {
                buf[count] = c;
                count += 1;
                i += 1;
            }
            Some(b' ')
                if count % 4 == 0
                    && b.get(i + 1)
                        .is_some_and(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) =>
            {
                i += 1
            }
            _ => break,
        }
    }
    if count != len || word_after(text, i) {
        return None;
    }
    Some((i, iban_checksum_ok(&buf[..len])))
}

/// Whether `iban` (spaces allowed) is a valid IBAN: a known country, its length, and the
/// mod-97 checksum.
pub fn iban_valid(iban: &str) -> bool {
    let compact: Vec<u8> = iban.bytes().filter(|c| *c != b' ').collect();
    compact.len() >= 5
        && iban_length([compact[0], compact[1]]) == Some(compact.len())
        && iban_checksum_ok(&compact)
}

/// The ISO 13616 mod-97 check: the first four characters moved to the end, letters as
/// 10–35, the number modulo 97 must be 1.
pub(crate) fn iban_checksum_ok(iban: &[u8]) -> bool {
    if iban.len() < 5 || !iban[2].is_ascii_digit() || !iban[3].is_ascii_digit() {
        return false;
    }
    let mut r = 0u32;
    for &c in iban[4..].iter().chain(&iban[..4]) {
        r = match c {
            b'0'..=b'9' => (r * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => (r * 100 + u32::from(c - b'A' + 10)) % 97,
            _ => return false,
        };
    }
    r == 1
}

// --- e-mail ----------------------------------------------------------------------------------

fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

/// File extensions that look like top-level domains in names like `icon@2x.png`.
const NOT_TLDS: &[&[u8]] = &[
    b"png", b"jpg", b"jpeg", b"gif", b"svg", b"webp", b"bmp", b"ico", b"tif", b"tiff", b"avif",
];

fn is_tld(label: &[u8]) -> bool {
    (2..=24).contains(&label.len())
        && label.iter().all(u8::is_ascii_alphabetic)
        && !NOT_TLDS.iter().any(|x| x.eq_ignore_ascii_case(label))
}

/// An e-mail address around the `@` at `at`.
fn email_at(text: &str, at: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let mut ls = at;
    while ls > 0 && is_local(b[ls - 1]) {
        if at - ls >= 64 {
            return None;
        }
        ls -= 1;
    }
    while ls < at && b[ls] == b'.' {
        ls += 1;
    }
    if ls == at || b[at - 1] == b'.' || word_before(text, ls) {
        return None;
    }
    let mut pos = at + 1;
    let mut labels = 0;
    let mut end = None;
    loop {
        let start = pos;
        let mut le = start;
        while le < b.len() && (b[le].is_ascii_alphanumeric() || b[le] == b'-') && le - start < 63 {
            le += 1;
        }
        if le == start || b[start] == b'-' || b[le - 1] == b'-' {
            break;
        }
        labels += 1;
        if labels >= 2 && is_tld(&b[start..le]) {
            end = Some(le);
        }
        if b.get(le) == Some(&b'.') && b.get(le + 1).is_some_and(u8::is_ascii_alphanumeric) {
            pos = le + 1;
        } else {
            break;
        }
    }
    let end = end?;
    match next_char(text, end) {
        Some(c) if is_word(Some(c)) || matches!(c, '-' | '@') => None,
        _ => Some((ls, end)),
    }
}

// --- IPv6 ------------------------------------------------------------------------------------

/// An IPv6 address around the `:` at `c`. Returns the index up to which colons need no more
/// checking (the end of the hex-and-colon run).
fn ipv6_at(text: &str, c: usize, out: &mut Vec<Span>) -> usize {
    let b = text.as_bytes();
    let is_v6 = |x: u8| x.is_ascii_hexdigit() || x == b':';
    let mut rs = c;
    while rs > 0 && c - rs < 40 && is_v6(b[rs - 1]) {
        rs -= 1;
    }
    let mut re = c + 1;
    while re < b.len() && re - rs < 46 && (is_v6(b[re]) || b[re] == b'.') {
        re += 1;
    }
    let done = re;
    while re > rs && b[re - 1] == b'.' {
        re -= 1;
    }
    if re >= rs + 2 && b[re - 1] == b':' && b[re - 2] != b':' {
        re -= 1;
    }
    let cand = &b[rs..re];
    if cand.iter().filter(|&&x| x == b':').count() < 2
        || word_before(text, rs)
        || b.get(rs.wrapping_sub(1)) == Some(&b':')
        || word_after(text, re)
        || b.get(re) == Some(&b':')
    {
        return done;
    }
    // Not every `a::b` is an address: ask for some hex digits, a digit, and a real group.
    let hex = cand.iter().filter(|x| x.is_ascii_hexdigit()).count();
    let groups = cand.split(|&x| x == b':').filter(|g| !g.is_empty());
    let (count, longest) = groups.fold((0, 0), |(n, l), g| (n + 1, l.max(g.len())));
    if hex < 5 || !cand.iter().any(u8::is_ascii_digit) || (count < 3 && longest < 3) {
        return done;
    }
    if text[rs..re].parse::<Ipv6Addr>().is_ok() {
        out.push(span(PiiEntity::IpAddress, rs, re));
    }
    done
}

// ---------------------------------------------------------------------------------------------
// Credentials.

/// The literal prefixes of credentials: one vectorised literal search finds candidates, and
/// each is then measured and checked in code.
pub(crate) const CREDENTIAL_RE: &str = concat!(
    r"sk-|AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|gh[pousr]_|github_pat_|xox[abposr]-|AIza",
    r"|kt_gk_|-----BEGIN |eyJ",
);

static CREDENTIAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(CREDENTIAL_RE).unwrap_or_else(|_| {
        // The pattern is a literal checked by the unit tests; should it ever be broken,
        // credentials are never matched rather than bringing the gateway down.
        Regex::new(r"[^\s\S]").unwrap_or_else(|_| unreachable!())
    })
});

fn is_b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// End of the run of bytes from `i` satisfying `f`.
fn take_while(b: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while i < b.len() && f(b[i]) {
        i += 1;
    }
    i
}

fn credentials(text: &str, mask: u16, out: &mut Vec<Span>) {
    let b = text.as_bytes();
    let mut pos = 0;
    while let Some(m) = CREDENTIAL.find_at(text, pos) {
        let (s, p) = (m.start(), m.end());
        pos = p;
        if s > 0 && (b[s - 1].is_ascii_alphanumeric() || matches!(b[s - 1], b'_' | b'-')) {
            continue;
        }
        let (entity, end) = match b[s] {
            b'-' => match pem_header_end(b, p).and_then(|h| pem_end(text, h)) {
                Some(e) => (PiiEntity::PrivateKey, e),
                None => continue,
            },
            b'e' => match jwt_end(b, s) {
                Some(e) => (PiiEntity::Jwt, e),
                None => continue,
            },
            _ => match key_end(b, s, p) {
                Some(e) => (PiiEntity::ApiKey, e),
                None => continue,
            },
        };
        pos = end.max(p);
        if has(mask, entity) {
            out.push(span(entity, s, end));
        }
    }
}

/// The end of an API key whose prefix is `b[s..p]`, if the body has the right alphabet,
/// length, and looks random.
fn key_end(b: &[u8], s: usize, p: usize) -> Option<usize> {
    let prefix = &b[s..p];
    let digits = |x: &[u8]| x.iter().filter(|c| c.is_ascii_digit()).count();
    let (end, ok) = if prefix == b"sk-" {
        let e = take_while(b, p, is_b64url);
        let body = &b[p..e];
        let d = digits(body);
        let upper = body.iter().any(u8::is_ascii_uppercase);
        let lower = body.iter().any(u8::is_ascii_lowercase);
        (
            e,
            body.len() >= 20 && (d >= 2 || (d >= 1 && upper && lower)),
        )
    } else if prefix.starts_with(b"github_pat_") {
        let e = take_while(b, p, |c| c.is_ascii_alphanumeric() || c == b'_');
        (e, (40..=255).contains(&(e - p)))
    } else if prefix.starts_with(b"gh") {
        let e = take_while(b, p, |c| c.is_ascii_alphanumeric());
        (e, (36..=255).contains(&(e - p)) && digits(&b[p..e]) >= 1)
    } else if prefix.starts_with(b"xox") {
        let e = take_while(b, p, |c| c.is_ascii_alphanumeric() || c == b'-');
        (e, e - p >= 10 && digits(&b[p..e]) >= 2)
    } else if prefix == b"AIza" {
        let e = take_while(b, p, is_b64url);
        (e, e - p == 35)
    } else if prefix == b"kt_gk_" {
        let e = take_while(b, p, is_b64url);
        (e, e - p >= 16)
    } else {
        // AWS access key ids: exactly 16 upper-case letters or digits after the prefix.
        let e = take_while(b, p, |c| c.is_ascii_uppercase() || c.is_ascii_digit());
        (
            e,
            e - p == 16 && !b.get(e).is_some_and(u8::is_ascii_alphanumeric),
        )
    };
    ok.then_some(end)
}

/// `eyJ<header>.eyJ<payload>.<signature>` starting at `s`, whose header decodes to a JSON
/// object naming `alg`: its end.
fn jwt_end(b: &[u8], s: usize) -> Option<usize> {
    let h_end = take_while(b, s, is_b64url);
    if h_end - s < 11 || b.get(h_end) != Some(&b'.') || !b[h_end + 1..].starts_with(b"eyJ") {
        return None;
    }
    let p_end = take_while(b, h_end + 1, is_b64url);
    if p_end - (h_end + 1) < 11 || b.get(p_end) != Some(&b'.') {
        return None;
    }
    let end = take_while(b, p_end + 1, is_b64url);
    let mut decoded = [0u8; 384];
    let n = base64url_decode(&b[s..h_end.min(s + 512)], &mut decoded);
    let json = &decoded[..n];
    (json.first() == Some(&b'{') && json.windows(5).any(|w| w == b"\"alg\"")).then_some(end)
}

/// After `-----BEGIN `: `[A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----`; the end of that header.
fn pem_header_end(b: &[u8], p: usize) -> Option<usize> {
    let label_end = take_while(b, p, |c| {
        c.is_ascii_uppercase() || c.is_ascii_digit() || c == b' '
    });
    let label = &b[p..label_end];
    if label.len() > 60
        || !(label.ends_with(b"PRIVATE KEY") || label.ends_with(b"PRIVATE KEY BLOCK"))
        || !b[label_end..].starts_with(b"-----")
    {
        return None;
    }
    Some(label_end + 5)
}

/// Decodes unpadded base64url into `out`, returning the byte count (stops at the first
/// character outside the alphabet or when `out` is full).
fn base64url_decode(input: &[u8], out: &mut [u8]) -> usize {
    let mut acc = 0u32;
    let mut bits = 0;
    let mut n = 0;
    for &c in input {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => break,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            if n == out.len() {
                break;
            }
            out[n] = (acc >> bits) as u8;
            n += 1;
        }
    }
    n
}

/// How far a PEM private-key block reaches, given the end of its `-----BEGIN …-----` line:
/// through its `-----END …-----` line, or (cut short) through its last base64 line. `None`
/// when there is no key material (a placeholder such as `...`).
fn pem_end(text: &str, header_end: usize) -> Option<usize> {
    const MAX_BLOCK: usize = 64 * 1024;
    let rest = &text[header_end..];
    let body_chars = |s: &str| {
        s.bytes()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
            .count()
    };
    if let Some(i) = rest.find("-----END ")
        && i <= MAX_BLOCK
    {
        let after = i + "-----END ".len();
        let close = rest[after..].find("-----").filter(|&j| j <= 60)?;
        if body_chars(&rest[..i]) < 40 {
            return None;
        }
        return Some(header_end + after + close + 5);
    }
    // No end line: take the base64 lines that follow.
    let mut end = header_end;
    let mut seen = 0;
    let mut lines = rest.split_inclusive('\n');
    if lines.next().is_some_and(|first| !first.trim().is_empty()) {
        return None;
    }
    end += rest.find('\n').map_or(rest.len(), |i| i + 1);
    for line in lines {
        let t = line.trim_end();
        let header = t.starts_with("Proc-Type:") || t.starts_with("DEK-Info:");
        if t.is_empty()
            || !(header
                || t.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=')))
        {
            break;
        }
        seen += body_chars(t);
        end += line.len();
        if end - header_end > MAX_BLOCK {
            break;
        }
    }
    // Do not swallow the final newline.
    let trimmed = text[..end].trim_end().len().max(header_end);
    (seen >= 40).then_some(trimmed)
}
