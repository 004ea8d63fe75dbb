#![allow(clippy::unwrap_used)]

use super::scan::{CREDENTIAL_RE, iban_checksum_ok};
use super::*;

fn found(text: &str, entity: PiiEntity) -> Vec<String> {
    detect(text, &[entity], &[])
        .into_iter()
        .map(|f| f.value)
        .collect()
}

fn entities_in(text: &str) -> Vec<String> {
    detect(text, &[], &[])
        .into_iter()
        .map(|f| f.entity.name().to_owned())
        .collect()
}

fn assert_found(entity: PiiEntity, values: &[&str]) {
    for v in values {
        for text in [
            v.to_string(),
            format!("value {v} here"),
            format!("({v})."),
            format!("\"{v}\","),
            format!("x:\n{v}\n"),
        ] {
            assert_eq!(found(&text, entity), [*v], "{entity}: {text:?}");
        }
    }
}

fn assert_clean(entity: PiiEntity, texts: &[&str]) {
    for t in texts {
        assert!(
            found(t, entity).is_empty(),
            "{entity} in {t:?}: {:?}",
            detect(t, &[entity], &[])
        );
    }
}

#[test]
fn credential_pattern_compiles() {
    assert!(regex::Regex::new(CREDENTIAL_RE).is_ok());
}

#[test]
fn email() {
    assert_found(
        PiiEntity::Email,
        &[
            "jane.doe+kt@mail.example.co.uk",
            "JOHN_SMITH@Example.COM",
            "a@b.io",
            "neil@x.ie",
            "user.name@sub-domain.example.org",
        ],
    );
    assert_eq!(
        found("mailto:bob@corp.io?subject=x", PiiEntity::Email),
        ["bob@corp.io"]
    );
    assert_clean(
        PiiEntity::Email,
        &[
            "use @decorator and a@b",
            "icon@2x.png and logo@3x.webp",
            "npm i lodash@4.17.21",
            "user@localhost",
            "@types/node",
            "ping @alice and @bob",
            "x@y.c",
            "a@-b.com",
        ],
    );
}

#[test]
fn phone() {
    assert_found(
        PiiEntity::Phone,
        &[
            "+1 415 555 0132",
            "(415) 555-0132",
            "415-555-0132",
            "415.555.0132",
            "1-800-555-0199",
            "+44 20 7946 0958",
            "+44 (0)20 7946 0958",
            "+14155550132",
            "+33 1 42 68 53 00",
            "+49 30 12345678",
            "+81 3-1234-5678",
            "+91 98765 43210",
            "+1 (415) 555-0132",
            "020 7946 0958",
            "06 12 34 56 78",
            "(02) 9374 4000",
            "0044 20 7946 0958",
            "030/12345678",
        ],
    );
    assert_clean(
        PiiEntity::Phone,
        &[
            "order 12345",
            "version 1.2.3",
            "timestamp 1700000000",
            "on 2024-01-15 at 10:30",
            "555-0132",
            "build 10.0.19041.1",
            "01-02-2024 10:30",
            "ISBN 978-3-16-148410-0 and 0-306-40615-2",
            "call 123-456-7890",
            "10 000 000 000 people",
            "ip 192.168.100.200",
            "2+14155550132",
            "+1 2",
            "f(415) 555-0132",
            "zip 94105-1234",
        ],
    );
}

#[test]
fn credit_card() {
    for c in [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111111",
        "5500000000000004",
        "340000000000009",
        "3782 822463 10005",
        "6011 0009 9013 9424",
        "3530 1113 3330 0000",
        "2223 0031 2200 3222",
        "4222222222222",
    ] {
        assert_found(PiiEntity::CreditCard, &[c]);
    }
    assert!(!luhn_valid("4111111111111112"));
    assert_clean(
        PiiEntity::CreditCard,
        &[
            "ref 4111111111111112",
            "id 1234567812345678",
            "order 12345",
            "0000 0000 0000 0000",
            "4444 4444 4444 4444",
            "9111 1111 1111 1111",
            "v4111111111111111",
            "41111111111111110000",
            "1 2 3 4111 1111 1111 1111",
            "ID-4111111111111111",
        ],
    );
    // A card followed by more digits (an expiry date) is still found.
    assert_eq!(
        found("card 4111 1111 1111 1111 12 25", PiiEntity::CreditCard),
        ["4111 1111 1111 1111"]
    );
}

#[test]
fn ssn() {
    assert_found(
        PiiEntity::Ssn,
        &["123-45-6789", "078-05-1120", "123 45 6789"],
    );
    assert_eq!(found("SSN: 123456789", PiiEntity::Ssn), ["123456789"]);
    assert_eq!(
        found("social security number 234567890", PiiEntity::Ssn),
        ["234567890"]
    );
    assert_clean(
        PiiEntity::Ssn,
        &[
            "000-12-3456",
            "666-12-3456",
            "912-34-5678",
            "123-00-4567",
            "123-45-0000",
            "1-123-45-6789-0",
            "order 123456789",
            "12 123 45 6789",
        ],
    );
}

#[test]
fn iban() {
    assert!(iban_checksum_ok(b"GB82WEST12345698765432"));
    assert!(!iban_checksum_ok(b"GB82WEST12345698765433"));
    assert_found(
        PiiEntity::Iban,
        &[
            "GB82WEST12345698765432",
            "GB82 WEST 1234 5698 7654 32",
            "DE89370400440532013000",
            "DE89 3704 0044 0532 0130 00",
            "FR1420041010050500013M02606",
            "NL91ABNA0417164300",
            "BE68539007547034",
            "CH9300762011623852957",
        ],
    );
    assert_clean(
        PiiEntity::Iban,
        &[
            "GB82WEST12345698765433",
            "DE89370400440532013001",
            "XX89370400440532013000",
            "DE8937040044053201300",
            "ABDE89370400440532013000",
            "GB82 WEST 1234 5698 7654 3",
        ],
    );
}

#[test]
fn ip_address() {
    assert_found(
        PiiEntity::IpAddress,
        &[
            "10.0.12.7",
            "192.168.1.1",
            "8.8.8.8",
            "255.255.255.255",
            "2001:db8::8a2e:370:7334",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "fe80::1ff:fe23:4567:890a",
            "::ffff:192.0.2.128",
            "fe80::1",
        ],
    );
    assert_eq!(
        found("[2001:db8::1]:8080", PiiEntity::IpAddress),
        ["2001:db8::1"]
    );
    assert_clean(
        PiiEntity::IpAddress,
        &[
            "version 1.2.3",
            "1.2.3.4.5",
            "999.1.1.1",
            "256.1.1.1",
            "v10.0.12.7",
            "01.02.03.04",
            "at 10:30:00",
            "mac 00:1a:2b:3c:4d:5e",
            "std::vector<int> and Vec::new()",
            "arr[1::2] and s[::2]",
            "dead::beef",
            "a::b",
            "::1",
            "2024-01-15T10:30:00Z",
        ],
    );
}

#[test]
fn api_key() {
    for k in [
        "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
        "sk-abcdefghijklmnopqrstuvwxyz123456",
        "sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345-AA",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
    ] {
        assert_found(PiiEntity::ApiKey, &[k]);
    }
    assert_clean(
        PiiEntity::ApiKey,
        &[
            "ask-me-anything and task-force",
            "sk-learn-compatible-estimators-and-more",
            "sk-...",
            "YOUR_API_KEY",
            "AKIAIOSFODNN7EXAMPLE2",
            "ghp_short",
            "risk-abcdefghijklmnopqrstuvwxyz123456",
        ],
    );
}

const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi3Rn6xMa1b2c3d4e5f6g7h8i9j\nk0l1m2n3o4p5q6r7s8t9u0v1w2x3y4z5A6B7C8D9E0F1G2H3I4J5K6L7M8N9O0P1\n-----END RSA PRIVATE KEY-----";

#[test]
fn private_key() {
    let text = format!("my key:\n{PEM}\nthanks");
    assert_eq!(found(&text, PiiEntity::PrivateKey), [PEM]);
    // Cut short (no END line): the base64 lines are still taken.
    let cut = &PEM[..PEM.find("-----END").unwrap()];
    let text = format!("{cut}\nthanks");
    assert_eq!(found(&text, PiiEntity::PrivateKey), [cut.trim_end()]);
    assert_clean(
        PiiEntity::PrivateKey,
        &[
            "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA3Tz2mr7SZiAMfQyuvBjM\n-----END PUBLIC KEY-----",
            "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n-----END CERTIFICATE-----",
        ],
    );
}

const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

#[test]
fn jwt() {
    assert_found(PiiEntity::Jwt, &[JWT]);
    assert_eq!(
        found(&format!("Authorization: Bearer {JWT}"), PiiEntity::Jwt),
        [JWT]
    );
    assert_clean(
        PiiEntity::Jwt,
        &[
            // Header that is not JSON with `alg`.
            "eyJub3RoaW5nIjoxfQxx.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc",
            "eyJhbGciOiJIUzI1NiJ9",
        ],
    );
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
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b",
        "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "color #ff0000 and rgb(255, 0, 0)",
        "python 3.11.4 on linux, numpy==1.26.0",
        "tracking 1Z999AA10123456784",
    ] {
        assert!(
            entities_in(text).is_empty(),
            "{text}: {:?}",
            entities_in(text)
        );
    }
}

#[test]
fn allowlist_suppresses_exact_values_globs_and_regexes() {
    let allow = vec![
        "support@example.com".to_owned(),
        "10.0.*".to_owned(),
        "regex:.*@corp\\.io".to_owned(),
        "regex:(".to_owned(),
    ];
    let text = "mail support@example.com, bob@corp.io or eve@evil.io from 10.0.0.1 or 192.168.1.1";
    let f = detect(text, &[], &allow);
    let values: Vec<&str> = f.iter().map(|f| f.value.as_str()).collect();
    assert_eq!(values, ["eve@evil.io", "192.168.1.1"]);
    assert!(detect("SUPPORT@example.com", &[], &allow).is_empty());
    // A regex entry must match the whole value.
    let allow = vec!["regex:corp".to_owned()];
    assert_eq!(detect("bob@corp.io", &[], &allow).len(), 1);
    assert!(check_allow_entry("regex:(").is_err());
    assert!(check_allow_entry("regex:a+").is_ok());
    assert!(check_allow_entry("*@x.io").is_ok());
}

#[test]
fn custom_patterns() {
    let emp = CustomPattern::new("employee_id", r"\bEMP-[0-9]{6}\b").unwrap();
    let s = Scanner::new(&[PiiEntity::Email], &[emp], &[]);
    let f = s.find("EMP-123456 wrote to a@b.io");
    let names: Vec<&str> = f.iter().map(|f| f.entity.name()).collect();
    assert_eq!(names, ["employee_id", "email"]);
    let mut r = Redactor::from_scanners(vec![s]);
    assert_eq!(
        r.redact("EMP-123456 and EMP-654321, EMP-123456"),
        "[EMPLOYEE_ID_1] and [EMPLOYEE_ID_2], [EMPLOYEE_ID_1]"
    );
    assert_eq!(r.restore("[EMPLOYEE_ID_2]"), "EMP-654321");
    assert!(
        CustomPattern::new("x", "(")
            .unwrap_err()
            .contains("unclosed group")
    );
    assert!(
        CustomPattern::new("x", "a*")
            .unwrap_err()
            .contains("empty string")
    );
    let huge = CustomPattern::new("x", r"\w{1000}\w{1000}\w{1000}");
    assert!(huge.unwrap_err().contains("too large"), "size limit");
}

#[test]
fn overlaps_resolve_to_the_specific_entity() {
    assert_eq!(entities_in("card 4111 1111 1111 1111"), ["credit_card"]);
    assert_eq!(entities_in("ip 192.168.100.200"), ["ip_address"]);
    assert_eq!(entities_in("v6 ::ffff:192.0.2.128"), ["ip_address"]);
    assert_eq!(entities_in("+1 (415) 555-0132"), ["phone"]);
    assert_eq!(
        detect("+1 (415) 555-0132", &[], &[])[0].value,
        "+1 (415) 555-0132"
    );
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
    assert_eq!(r.entities(), ["ssn", "email"]);
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
    assert_eq!(r.redact_if_needed("nothing here"), None);
}

/// Streams `answer` through `f` in chunks of `size` bytes (on char boundaries).
fn stream(f: &mut AnswerFilter, answer: &str, size: usize) -> String {
    let mut out = String::new();
    let mut rest = answer;
    while !rest.is_empty() {
        let mut cut = size.min(rest.len());
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        out.push_str(&f.push(&rest[..cut]));
        rest = &rest[cut..];
    }
    out.push_str(&f.finish());
    out
}

#[test]
fn answer_filter_redacts_and_restores() {
    let mut req = Redactor::new(&[], &[]);
    assert_eq!(req.redact("I am jo@ex.com"), "I am [EMAIL_1]");
    let answer = "Hello [EMAIL_1]! Contact our agent at agent@corp.io or +44 20 7946 0958. \
                  Your card 4111 1111 1111 1111 is on file. Regards, [EMAIL_1]";
    let expected = "Hello jo@ex.com! Contact our agent at [EMAIL_2] or [PHONE_1]. \
                    Your card [CREDIT_CARD_1] is on file. Regards, jo@ex.com";
    let whole = AnswerFilter::new(Some(Redactor::new(&[], &[])), Some(req.clone())).filter(answer);
    assert_eq!(whole, expected);
    for size in [1, 2, 3, 5, 7, 16, 64, 1000] {
        let mut f = AnswerFilter::new(Some(Redactor::new(&[], &[])), Some(req.clone()));
        assert_eq!(stream(&mut f, answer, size), expected, "chunks of {size}");
        assert_eq!(f.entities(), ["email", "phone", "credit_card"]);
    }
    // Only restoring, only redacting.
    let mut f = AnswerFilter::new(None, Some(req.clone()));
    assert_eq!(stream(&mut f, "x [EMAIL_1] y", 2), "x jo@ex.com y");
    let mut f = AnswerFilter::new(Some(Redactor::new(&[], &[])), None);
    assert_eq!(stream(&mut f, "mail a@b.io now", 3), "mail [EMAIL_1] now");
}

#[test]
fn answer_filter_holds_private_keys_whole() {
    let answer = format!(
        "Here is the key:\n{PEM}\nKeep it safe. {}",
        "word ".repeat(40)
    );
    for size in [1, 10, 33, 100] {
        let mut f = AnswerFilter::new(Some(Redactor::new(&[], &[])), None);
        let out = stream(&mut f, &answer, size);
        assert!(
            out.starts_with("Here is the key:\n[PRIVATE_KEY_1]\nKeep it safe."),
            "{size}: {out}"
        );
        assert!(!out.contains("MIIE"));
    }
}

#[test]
fn request_texts_cover_both_formats() {
    let openai = serde_json::json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "sys a@b.io"},
            {"role": "user", "content": [
                {"type": "text", "text": "part one"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                {"type": "text", "text": "part two"}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "1", "type": "function",
                 "function": {"name": "lookup", "arguments": "{\"email\":\"c@d.io\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "1", "content": "tool says 10.0.0.1"}
        ]
    });
    assert_eq!(
        request_texts(&openai),
        [
            "sys a@b.io",
            "part one",
            "part two",
            "{\"email\":\"c@d.io\"}",
            "tool says 10.0.0.1"
        ]
    );
    let anthropic = serde_json::json!({
        "model": "claude-sonnet-4-20250514",
        "system": [{"type": "text", "text": "be nice"}],
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "calling"},
                {"type": "tool_use", "id": "t", "name": "f",
                 "input": {"to": "e@f.io", "cc": ["g@h.io"], "n": 2}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t", "content": "result a@b.io"},
                {"type": "tool_result", "tool_use_id": "u", "content": [
                    {"type": "text", "text": "nested 123-45-6789"}
                ]},
                {"type": "text", "text": "thanks"}
            ]}
        ]
    });
    assert_eq!(
        request_texts(&anthropic),
        [
            "be nice",
            "hi",
            "calling",
            // object members in key order (cc, n, to)
            "g@h.io",
            "e@f.io",
            "result a@b.io",
            "nested 123-45-6789",
            "thanks"
        ]
    );
    let system_string = serde_json::json!({"system": "s", "messages": []});
    assert_eq!(request_texts(&system_string), ["s"]);
}

#[test]
fn redact_request_rewrites_exactly_the_texts() {
    let mut body = serde_json::json!({
        "model": "claude-x",
        "metadata": {"user_id": "a@b.io"},
        "system": "sys a@b.io",
        "messages": [
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t", "content": [
                    {"type": "text", "text": "nested 123-45-6789 and a@b.io"}
                ]},
                {"type": "text", "text": "clean"}
            ]},
            {"role": "user", "content": "call +1 415 555 0132"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "u", "name": "mail", "input": {"to": "x@y.io"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "v", "type": "function",
                 "function": {"name": "mail", "arguments": "{\"to\":\"a@b.io\"}"}}
            ]}
        ]
    });
    let mut r = Redactor::new(&[], &[]);
    redact_request(&mut body, &mut r);
    assert_eq!(
        request_texts(&body),
        [
            "sys [EMAIL_1]",
            "nested [SSN_1] and [EMAIL_1]",
            "clean",
            "call [PHONE_1]",
            "[EMAIL_2]",
            "{\"to\":\"[EMAIL_1]\"}"
        ]
    );
    // Redacted arguments are still the JSON the model expects.
    let args = body["messages"][3]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap();
    assert!(serde_json::from_str::<serde_json::Value>(args).is_ok());
    // Not a text part: left alone.
    assert_eq!(body["metadata"]["user_id"], "a@b.io");
    assert_eq!(body["model"], "claude-x");
}

#[test]
fn no_allocation_path_returns_empty() {
    let s = Scanner::default();
    let text =
        "The quarterly report for 2024 shows 12% growth across 3 regions: EMEA, APAC and NA.";
    assert!(s.find(text).is_empty());
    assert!(!s.is_match(text));
    let mut names = Vec::new();
    assert_eq!(s.entity_names(text, &mut names), None);
}

#[test]
fn trigger_search_matches_a_plain_scan() {
    let text = "abc\u{e9}d@x 12:é9 ZZZZZZZZZZZZZZZZZZZZZZZZZ0 \u{1F600}:;?@[/9";
    let b = text.as_bytes();
    let mut expected = Vec::new();
    let mut got = Vec::new();
    for (i, c) in b.iter().enumerate() {
        if c.is_ascii_digit() || *c == b':' || *c == b'@' {
            expected.push(i);
        }
    }
    let mut i = 0;
    loop {
        i = super::scan::next_trigger_for_tests(b, i);
        if i >= b.len() {
            break;
        }
        got.push(i);
        i += 1;
    }
    assert_eq!(got, expected);
}

#[test]
fn shareable_across_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Scanner>();
    send_sync::<Redactor>();
    send_sync::<AnswerFilter>();
    send_sync::<crate::PolicyConfig>();
}
