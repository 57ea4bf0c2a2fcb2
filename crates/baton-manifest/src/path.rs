//! Paths into a YAML document: `service.chartTag`, `spec.containers[0].image`,
//! `images[name=api].newTag`.

use crate::EditError;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
    /// The one sequence item that is a mapping with `key: value`.
    Select { key: String, value: String },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Key(k) => write!(f, "key `{k}`"),
            Step::Index(i) => write!(f, "index [{i}]"),
            Step::Select { key, value } => write!(f, "entry [{key}={value}]"),
        }
    }
}

/// Parses a path. Keys are separated by `.`; `[N]` indexes a sequence and `[k=v]`
/// selects the item whose `k` is `v`. A key containing `.` or `[` can be written in
/// double quotes: `annotations."example.com/tag"`.
pub fn parse(path: &str) -> Result<Vec<Step>, EditError> {
    let err = |reason: &str| EditError::InvalidPath {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let mut steps = Vec::new();
    let mut chars = path.chars().peekable();
    let mut expect_key = true;
    while let Some(&c) = chars.peek() {
        match c {
            '.' if !expect_key => {
                chars.next();
                expect_key = true;
            }
            '[' => {
                chars.next();
                let mut inner = String::new();
                loop {
                    match chars.next() {
                        Some(']') => break,
                        Some(ch) => inner.push(ch),
                        None => return Err(err("unclosed `[`")),
                    }
                }
                if let Some((k, v)) = inner.split_once('=') {
                    if k.is_empty() || v.is_empty() {
                        return Err(err("a selector needs `[key=value]`"));
                    }
                    steps.push(Step::Select {
                        key: k.trim().to_owned(),
                        value: v.trim().to_owned(),
                    });
                } else {
                    let i = inner
                        .trim()
                        .parse()
                        .map_err(|_| err("`[...]` needs an index or key=value"))?;
                    steps.push(Step::Index(i));
                }
                expect_key = false;
            }
            '"' if expect_key => {
                chars.next();
                let mut key = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(ch) => key.push(ch),
                        None => return Err(err("unclosed `\"`")),
                    }
                }
                steps.push(Step::Key(key));
                expect_key = false;
            }
            _ if expect_key => {
                let mut key = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch == '.' || ch == '[' {
                        break;
                    }
                    key.push(ch);
                    chars.next();
                }
                if key.is_empty() {
                    return Err(err("empty key"));
                }
                steps.push(Step::Key(key));
                expect_key = false;
            }
            _ => return Err(err("expected `.` or `[` between steps")),
        }
    }
    if steps.is_empty() || expect_key {
        return Err(err("the path is empty or ends with `.`"));
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_indices_and_selectors() {
        assert_eq!(
            parse("images[name=api].newTag").unwrap(),
            vec![
                Step::Key("images".into()),
                Step::Select {
                    key: "name".into(),
                    value: "api".into()
                },
                Step::Key("newTag".into())
            ]
        );
        assert_eq!(
            parse("spec.containers[0].image").unwrap(),
            vec![
                Step::Key("spec".into()),
                Step::Key("containers".into()),
                Step::Index(0),
                Step::Key("image".into())
            ]
        );
        assert_eq!(
            parse(r#"metadata.annotations."example.com/tag""#).unwrap(),
            vec![
                Step::Key("metadata".into()),
                Step::Key("annotations".into()),
                Step::Key("example.com/tag".into())
            ]
        );
    }

    #[test]
    fn rejects_malformed_paths_with_a_reason() {
        for bad in [
            "", "a.", ".a", "a..b", "a[", "a[x]", "a[=v]", "a[0]b", "\"a",
        ] {
            assert!(
                matches!(parse(bad), Err(EditError::InvalidPath { .. })),
                "{bad:?} should be rejected"
            );
        }
    }
}
