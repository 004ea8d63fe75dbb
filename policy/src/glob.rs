//! `*` globs for model names and allowlists.

/// Whether `text` matches `pattern`, where `*` matches any run of characters (including none)
/// and every other character matches itself. A pattern without `*` is an exact comparison.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    let mut parts: Vec<&str> = rest.split('*').collect();
    // `rest` always yields at least one part; the last part must match the end of the text.
    let last = parts.pop().unwrap_or("");
    for part in parts {
        if part.is_empty() {
            continue;
        }
        match remaining.find(part) {
            Some(i) => remaining = &remaining[i + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("gpt-4o", "gpt-4o"));
        assert!(!glob_match("gpt-4o", "gpt-4o-mini"));
        assert!(glob_match("gpt-4o*", "gpt-4o-mini"));
        assert!(glob_match("gpt-4o*", "gpt-4o"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("claude-*-4*", "claude-sonnet-4-20250514"));
        assert!(!glob_match("claude-*-4*", "claude-3-haiku"));
        assert!(glob_match("*-mini", "gpt-4o-mini"));
        assert!(!glob_match("*-mini", "gpt-4o"));
        assert!(glob_match("a*a", "aa"));
        assert!(!glob_match("a*a", "a"));
        assert!(glob_match("*@example.com", "bob@example.com"));
        assert!(glob_match("a**b", "ab"));
    }
}
