//! How a scalar reads, and how to write a string so it reads back as that string.
//!
//! Resolution is the union of YAML 1.1 (what Helm's and kustomize's Go parsers use:
//! `yes`, `on`, `0777`, `1:20`) and YAML 1.2 core: a value is written plain only when
//! neither would read it as anything but a string.

use saphyr_parser::ScalarStyle;

/// Whether a scalar with this text, style and tag reads as a string.
pub fn reads_as_string(value: &str, style: ScalarStyle, tag: Option<&str>) -> bool {
    if let Some(tag) = tag {
        return tag.ends_with("str");
    }
    style != ScalarStyle::Plain || !plain_is_non_string(value)
}

/// Whether a plain scalar reads as null, a boolean, a number, a timestamp or a YAML
/// 1.1 merge/value key.
pub fn plain_is_non_string(v: &str) -> bool {
    const WORDS: [&str; 31] = [
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        "<<", "=", ".inf", ".nan",
    ];
    WORDS.contains(&v) || looks_numeric(v) || looks_like_timestamp(v)
}

fn looks_numeric(v: &str) -> bool {
    let s = v.strip_prefix(['+', '-']).unwrap_or(v);
    if s.is_empty() {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    if lower == ".inf" || lower == ".nan" {
        return true;
    }
    let digits_in =
        |r: &str, ok: fn(char) -> bool| !r.is_empty() && r.chars().all(|c| ok(c) || c == '_');
    if let Some(r) = lower.strip_prefix("0x") {
        return digits_in(r, |c| c.is_ascii_hexdigit());
    }
    if let Some(r) = lower.strip_prefix("0o") {
        return digits_in(r, |c| ('0'..='7').contains(&c));
    }
    if let Some(r) = lower.strip_prefix("0b") {
        return digits_in(r, |c| c == '0' || c == '1');
    }
    if s.contains(':') {
        // YAML 1.1 sexagesimal: 1:20, 190:20:30.15
        let parts: Vec<&str> = s.split(':').collect();
        let last = parts.len() - 1;
        return parts.iter().enumerate().all(|(i, p)| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_digit() || c == '_' || (i == last && c == '.'))
        });
    }
    decimal(&lower)
}

/// `[0-9_]*(\.[0-9_]*)?([e][-+]?[0-9]+)?` with at least one mantissa digit.
fn decimal(s: &str) -> bool {
    let (mantissa, exponent) = match s.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    let digits = |p: &str| p.chars().all(|c| c.is_ascii_digit() || c == '_');
    let has_digit = mantissa.chars().any(|c| c.is_ascii_digit());
    let exp_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
    });
    has_digit && digits(int) && digits(frac) && exp_ok
}

/// `2001-12-14`, `2001-12-14t21:59:43.10-05:00`: YAML 1.1 timestamps.
fn looks_like_timestamp(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() >= 8 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[5].is_ascii_digit()
}

/// Whether `v` can be written plain in a block (or, with `flow`, a flow) collection
/// and read back as exactly that string.
pub fn plain_safe(v: &str, flow: bool) -> bool {
    const INDICATORS: &[char] = &[
        '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@',
        '`',
    ];
    let Some(first) = v.chars().next() else {
        return false;
    };
    !plain_is_non_string(v)
        && !INDICATORS.contains(&first)
        && !v.starts_with(char::is_whitespace)
        && !v.ends_with(char::is_whitespace)
        && !v.contains(": ")
        && !v.contains(" #")
        && !v.ends_with(':')
        && !v.starts_with("...")
        && !v.chars().any(|c| c.is_control())
        && !(flow && v.contains([',', '[', ']', '{', '}']))
}

/// The scalar style a value is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Single,
    Double,
}

/// The style to write `v` in, keeping `preferred` when it can represent `v`.
pub fn choose_style(v: &str, preferred: Style, flow: bool) -> Style {
    let needs_escapes = v.chars().any(|c| c.is_control());
    match preferred {
        _ if needs_escapes => Style::Double,
        Style::Plain if plain_safe(v, flow) => Style::Plain,
        Style::Plain => Style::Single,
        other => other,
    }
}

/// `v` written in `style`.
pub fn render(v: &str, style: Style) -> String {
    match style {
        Style::Plain => v.to_owned(),
        Style::Single => format!("'{}'", v.replace('\'', "''")),
        Style::Double => {
            let mut out = String::with_capacity(v.len() + 2);
            out.push('"');
            for c in v.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    '\r' => out.push_str("\\r"),
                    c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_strings_under_yaml_1_1_or_1_2() {
        for v in [
            "1.10",
            "10",
            "-3",
            "+4.5",
            ".5",
            "1e3",
            "1_000",
            "0x1F",
            "0o17",
            "0b101",
            "0777",
            "1:20",
            "190:20:30.15",
            "yes",
            "No",
            "on",
            "OFF",
            "y",
            "null",
            "~",
            "",
            "true",
            ".inf",
            "-.INF",
            ".NaN",
            "2001-12-14",
            "<<",
        ] {
            assert!(plain_is_non_string(v), "{v:?} must not be written plain");
        }
    }

    #[test]
    fn ordinary_versions_are_strings() {
        for v in [
            "v1.2.3",
            "1.2.3",
            "api-v9.1.1",
            "api-v8.21.0",
            "latest",
            "sha256:abc",
            "release-2026.11",
            "1.2.3-rc.1+build.5",
            "yesterday",
        ] {
            assert!(!plain_is_non_string(v), "{v:?} is a string");
        }
    }

    #[test]
    fn plain_safety_covers_indicators_and_comments() {
        assert!(plain_safe("v1.2.3", false));
        assert!(plain_safe("sha256:9b2a", false));
        for v in [
            "a: b", "a #b", "-x", "*ref", "&a", "!tag", "'q", "\"q", "@x", "%x", "x:", " x", "x ",
            "a\nb",
        ] {
            assert!(!plain_safe(v, false), "{v:?}");
        }
        assert!(plain_safe("a,b", false));
        assert!(!plain_safe("a,b", true));
    }

    #[test]
    fn keeps_quote_style_and_quotes_only_when_needed() {
        assert_eq!(
            render("1.10", choose_style("1.10", Style::Plain, false)),
            "'1.10'"
        );
        assert_eq!(render("v1", choose_style("v1", Style::Plain, false)), "v1");
        assert_eq!(
            render("v1", choose_style("v1", Style::Double, false)),
            "\"v1\""
        );
        assert_eq!(
            render("it's", choose_style("it's", Style::Single, false)),
            "'it''s'"
        );
        assert_eq!(render("a\"b\\", Style::Double), "\"a\\\"b\\\\\"");
        assert_eq!(choose_style("a\tb", Style::Single, false), Style::Double);
    }
}
