//! The one-entry path for large files ([`super::entry`]) against the whole-file path,
//! and the outline scanner ([`crate::outline`]) against saphyr.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a panic is the failure report

use proptest::prelude::*;
use proptest::strategy::ValueTree;

use super::entry::{self, current_in_entry, set_in_entry};
use super::plan::Op;
use super::splice::Splice;
use super::{Edit, apply_whole, current_whole};
use crate::EditError;
use crate::outline::root_entries;
use crate::path::{self, Step};
use crate::tree::{self, Kind, Node};

/// The benchmark's file: `service{i}` entries, then `target.image.tag` at the end.
fn values_file(target_bytes: usize) -> String {
    let mut out = String::from("# generated values\nglobal:\n  registry: ghcr.io/acme\n");
    let mut i = 0;
    while out.len() < target_bytes {
        out.push_str(&format!(
            "service{i}:\n  # service {i}\n  image:\n    repository: ghcr.io/acme/service{i}\n    tag: v1.{i}.0\n  resources:\n    limits: {{cpu: 500m, memory: 256Mi}}\n  env:\n    - name: LOG_LEVEL\n      value: info\n"
        ));
        i += 1;
    }
    out.push_str("target:\n  image:\n    tag: v0.0.1\n");
    out
}

fn set(path: &str, value: &str) -> Edit {
    Edit::Set {
        path: path.into(),
        value: value.into(),
    }
}

/// Paths to every scalar of the first document that the path syntax can name.
fn leaf_paths(text: &str) -> Vec<String> {
    fn walk(node: &Node, path: String, out: &mut Vec<String>) {
        match &node.kind {
            Kind::Scalar { .. } | Kind::Alias => out.push(path),
            Kind::Map { entries, .. } => {
                for (k, v) in entries {
                    let Some(key) = k.scalar() else { continue };
                    if key.is_empty() || key.contains(['.', '[', ']', '"', '=']) {
                        continue;
                    }
                    let p = if path.is_empty() {
                        key.to_owned()
                    } else {
                        format!("{path}.{key}")
                    };
                    walk(v, p, out);
                }
            }
            Kind::Seq { items, .. } => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, format!("{path}[{i}]"), out);
                }
            }
        }
    }
    let mut out = Vec::new();
    if let Ok(docs) = tree::parse(text)
        && let Some(Some(root)) = docs.first()
    {
        walk(root, String::new(), &mut out);
    }
    out
}

/// Wherever the one-entry path answers, it answers exactly as the whole-file path.
/// Returns how many of the edits it answered.
fn same_as_whole(text: &str, paths: &[String]) -> usize {
    same_as_whole_with(text, paths, &["v9.9.9", "1.10", "it's \"x\"", "a: b", ""])
}

fn same_as_whole_with(text: &str, paths: &[String], values: &[&str]) -> usize {
    let mut answered = 0;
    for p in paths {
        for &value in values {
            if let Some(fast) = set_in_entry("f.yaml", text, p, value) {
                assert_eq!(
                    fast,
                    apply_whole("f.yaml", text, &set(p, value)),
                    "set {p} = {value:?} in:\n{text}"
                );
                answered += 1;
            }
        }
        if let Some(fast) = current_in_entry("f.yaml", text, p) {
            assert_eq!(
                fast,
                current_whole("f.yaml", text, &set(p, "x")),
                "current {p} in:\n{text}"
            );
        }
    }
    answered
}

#[test]
fn one_entry_edits_match_whole_file_edits_on_every_golden_input() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut answered = 0;
    for f in std::fs::read_dir(dir).expect("golden dir") {
        let f = f.expect("entry").path();
        if !f.to_string_lossy().ends_with(".in.yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read");
        let mut paths = leaf_paths(&text);
        paths.extend(
            [
                "nope",
                "nope.deeper",
                "images[0]",
                "images[name=none].newTag",
                "a..b",
            ]
            .map(String::from),
        );
        if let Some(first) = paths
            .first()
            .and_then(|p| p.split(['.', '[']).next())
            .map(str::to_owned)
        {
            paths.push(format!("{first}.missing"));
            paths.push(format!("{first}[7]"));
            paths.push(first);
        }
        answered += same_as_whole(&text, &paths);
    }
    assert!(
        answered > 100,
        "the one-entry path answered only {answered} edits"
    );
}

#[test]
fn a_one_megabyte_values_file_is_edited_within_one_entry() {
    let big = values_file(1 << 20);
    let edit = set("target.image.tag", "v0.0.2");
    let Some(fast) = entry::set("values.yaml", &big, "target.image.tag", "v0.0.2") else {
        panic!("the 1 MB file was not outlined");
    };
    let out = fast.expect("edit");
    assert_eq!(out, apply_whole("values.yaml", &big, &edit).expect("edit"));
    assert_eq!(out, big.replace("tag: v0.0.1", "tag: v0.0.2"));
    assert_eq!(
        entry::current("values.yaml", &big, "target.image.tag"),
        Some(Ok(Some("v0.0.1".to_owned())))
    );
    // Another service's values, and the errors, as on the whole file (which takes a
    // while in a debug build: a few paths only).
    let paths: Vec<String> = [
        "service17.resources.limits.cpu",
        "service17.image",
        "nope.tag",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(same_as_whole_with(&big, &paths, &["1.10"]), 3);
}

/// Splices that break the file in one way or another, against the edit of
/// `target.image.tag` to `v0.0.2`: none may come back as a verified edit.
#[test]
fn a_corrupting_splice_in_a_large_file_is_caught() {
    let big = values_file(1 << 20);
    let steps = path::parse("target.image.tag").expect("path");
    let (doc, entry) =
        super::Working::parse_entry("values.yaml", &big, "target.image.tag".into(), &steps)
            .expect("outlined");
    let at = doc.resolve(&steps).expect("resolves");
    let op = Op::Replace {
        at,
        value: "v0.0.2".into(),
    };
    let good = doc.splice(&op).expect("splice");
    let r = good.range();
    assert!(matches!(doc.check_entry(&op, &good, &entry), Some(Ok(_))));

    let value_at = r.start;
    let other_tag = big.find("tag: v1.17.0").expect("service17") + 5;
    let key_at = big.rfind("target:").expect("target");
    let bad = [
        // Another value than planned.
        (Splice::new(r.start, r.end, "v0.0.3".into()), true),
        // A sibling key smuggled in with the value.
        (
            Splice::new(r.start, r.end, "v0.0.2\n    extra: 1".into()),
            true,
        ),
        // The value's bytes, but a quote left open.
        (Splice::new(r.start, r.end, "\"v0.0.2".into()), false),
        // A new root entry.
        (
            Splice::new(r.start, r.end, "v0.0.2\nother: 1".into()),
            false,
        ),
        // Outside the entry.
        (
            Splice::new(other_tag, other_tag + 7, "v0.0.2".into()),
            false,
        ),
        // The key renamed.
        (Splice::new(key_at, key_at + 6, "targe".into()), false),
        // Before the value: its indentation.
        (Splice::new(value_at - 5, value_at - 5, " ".into()), true),
    ];
    for (splice, refused_here) in bad {
        match doc.check_entry(&op, &splice, &entry) {
            Some(Ok(_)) => panic!("{splice:?} was accepted"),
            Some(Err(e)) => {
                assert!(matches!(e, EditError::VerifyFailed { .. }), "{e:?}");
                assert!(
                    refused_here,
                    "{splice:?}: refused, expected a whole-file check"
                );
            }
            // The whole-file path takes over and re-plans the edit.
            None => assert!(
                !refused_here,
                "{splice:?}: expected a refusal, got a fallback"
            ),
        }
    }
}

#[test]
fn small_files_and_other_edits_take_the_whole_file_path() {
    let small = "a:\n  b: 1\n";
    assert_eq!(entry::set("f", small, "a.b", "2"), None);
    assert_eq!(entry::current("f", small, "a.b"), None);
    // A large file the scanner cannot outline: several documents.
    let two = format!("{}---\nx: 1\n", values_file(entry::MIN_LEN));
    assert_eq!(entry::set("f", &two, "target.image.tag", "v2"), None);
    assert!(super::apply("f", &two, &set("target.image.tag", "v2")).is_ok());
}

// The outline scanner against saphyr: whenever the scanner outlines a text, saphyr
// parses the whole text, its root mapping has exactly the scanner's entries, and
// each entry parsed alone is the entry parsed in place (values, styles, tags, and
// the positions of everything but block scalars, whose spans saphyr ends
// differently at the end of the text; no edit splices into a block scalar). Texts
// come from valid documents written in varied layouts, some with a line from the
// fragments below added or re-indented, and from fragment lines alone.

const KEYS: &[&str] = &[
    "a", "b", "image", "tag", "'q''k'", "\"dq\"", "a b", "-k", "x",
];

const VALUES: &[&str] = &[
    "v1",
    "1.10",
    "\"q # x\"",
    "'it''s'",
    "[a, b]",
    "{a: b, c: [d, {e: f}]}",
    "[]",
    "{}",
    "~",
    "http://x:1/y",
    "a,b",
    "a#b",
    "-1",
    "\"a\\\"b\\\\\"",
    "\"\"",
    "''",
    "[-1, x y]",
    "x # c",
    "\"t\" # c",
    "[a, b] # c",
    "caf\u{e9}",
    "a b  ",
    "{a: 'b', \"c\": d}",
];

const ODD_VALUES: &[&str] = &[
    "{\"k\": v}",
    "!!str x",
    "&a x",
    "*a",
    "- x",
    "a: b",
    "x:",
    "@x",
    "%x",
    "`x`",
    "]",
    "{a}",
    "{a: }",
    "[a, ]",
    "[a # c",
    "\"open",
    "'open",
    "[a,",
    "\"\\x41\"",
    "\"a\"x",
    "\"a\"#c",
    "? x",
    "-",
    "|2",
    "[a]: b",
    "\"k\": v",
    "a\tb",
];

const HEADERS: &[&str] = &["|", "|-", ">", ">+", "|+ # c", "|2"];

const BLOCK_LINES: &[&str] = &[
    "text",
    "  more",
    "",
    "# not a comment",
    "\"open [ {",
    "- x",
    "k: v",
    "   ",
    "a\tb",
];

const RAW_LINES: &[&str] = &[
    "# comment",
    "",
    "   ",
    "---",
    "...",
    "--- # start",
    "%YAML 1.2",
    "close\"",
    "b]",
    "text line",
    "-",
    "- - x",
    "? k",
    ": v",
    "\tk: v",
    "k:\tv",
    "k #c: v",
    "k:x",
    "\"k\" : v",
    "\u{feff}k: v",
    "k: v\r",
];

#[derive(Debug, Clone)]
enum Y {
    Scalar(&'static str),
    Block(&'static str, Vec<&'static str>),
    Map(Vec<(&'static str, Y)>),
    Seq(Vec<Y>),
}

fn tree() -> impl Strategy<Value = Y> {
    let leaf = prop_oneof![
        12 => proptest::sample::select(VALUES).prop_map(Y::Scalar),
        1 => proptest::sample::select(ODD_VALUES).prop_map(Y::Scalar),
        2 => (
            proptest::sample::select(HEADERS),
            proptest::collection::vec(proptest::sample::select(BLOCK_LINES), 0..4)
        )
            .prop_map(|(h, l)| Y::Block(h, l)),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            proptest::collection::vec((proptest::sample::select(KEYS), inner.clone()), 0..5)
                .prop_map(Y::Map),
            proptest::collection::vec(inner, 0..4).prop_map(Y::Seq),
        ]
    })
}

/// Writes YAML in block style, choosing layouts (indentation step, sequences at
/// their key's indentation or not) from `flags`.
struct Writer {
    lines: Vec<String>,
    step: usize,
    flags: Vec<bool>,
    next: usize,
}

impl Writer {
    fn flag(&mut self) -> bool {
        self.next += 1;
        self.flags
            .get(self.next % self.flags.len().max(1))
            .copied()
            .unwrap_or(false)
    }

    /// `node` as the value after `prefix` (`key:` or `- `, already indented); nested
    /// block content goes at `indent`.
    fn value(&mut self, prefix: String, node: &Y, indent: usize, after_key: bool) {
        let sep = if after_key { " " } else { "" };
        match node {
            Y::Scalar(v) => self.lines.push(format!("{prefix}{sep}{v}")),
            Y::Block(h, content) => {
                self.lines.push(format!("{prefix}{sep}{h}"));
                for l in content {
                    self.lines.push(if l.is_empty() {
                        String::new()
                    } else {
                        format!("{}{l}", " ".repeat(indent))
                    });
                }
            }
            Y::Map(entries) if entries.is_empty() => self.lines.push(format!("{prefix}{sep}{{}}")),
            Y::Seq(items) if items.is_empty() => self.lines.push(format!("{prefix}{sep}[]")),
            Y::Map(entries) => {
                if after_key {
                    self.lines.push(prefix);
                    self.map(entries, indent, None);
                } else {
                    // `- key: value`, the next keys under the first.
                    self.map(entries, prefix.len(), Some(prefix));
                }
            }
            Y::Seq(items) => {
                if after_key {
                    let at = if self.flag() {
                        indent - self.step
                    } else {
                        indent
                    };
                    self.lines.push(prefix);
                    self.seq(items, at, None);
                } else {
                    self.seq(items, prefix.len(), Some(prefix));
                }
            }
        }
    }

    fn map(&mut self, entries: &[(&'static str, Y)], indent: usize, mut first: Option<String>) {
        for (k, v) in entries {
            let lead = first.take().unwrap_or_else(|| " ".repeat(indent));
            self.value(format!("{lead}{k}:"), v, indent + self.step, true);
        }
    }

    fn seq(&mut self, items: &[Y], indent: usize, mut first: Option<String>) {
        for item in items {
            let lead = first.take().unwrap_or_else(|| " ".repeat(indent));
            self.value(format!("{lead}- "), item, indent + 2, false);
        }
    }
}

fn line() -> impl Strategy<Value = String> {
    let indent = prop_oneof![4 => Just(0usize), 4 => Just(2), 2 => Just(4), 1 => Just(1), 1 => Just(3), 1 => Just(6)];
    let key = proptest::sample::select(KEYS);
    let value = proptest::sample::select(VALUES);
    let odd = proptest::sample::select(ODD_VALUES);
    let raw = proptest::sample::select(RAW_LINES);
    let body = prop_oneof![
        6 => (key.clone(), value.clone()).prop_map(|(k, v)| format!("{k}: {v}")),
        2 => (key.clone(), odd).prop_map(|(k, v)| format!("{k}: {v}")),
        3 => key.clone().prop_map(|k| format!("{k}:")),
        3 => value.clone().prop_map(|v| format!("- {v}")),
        2 => (key.clone(), value).prop_map(|(k, v)| format!("- {k}: {v}")),
        1 => key.prop_map(|k| format!("- {k}:")),
        2 => raw.prop_map(str::to_owned),
    ];
    (indent, body).prop_map(|(n, b)| format!("{}{b}", " ".repeat(n)))
}

/// A change to a written document: a line added, or one re-indented by a column.
#[derive(Debug, Clone)]
enum Change {
    Insert(usize, String),
    Indent(usize, bool),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (any::<usize>(), line()).prop_map(|(i, l)| Change::Insert(i, l)),
        (any::<usize>(), any::<bool>()).prop_map(|(i, more)| Change::Indent(i, more)),
    ]
}

fn document() -> impl Strategy<Value = String> {
    let written = (
        proptest::collection::vec((proptest::sample::select(KEYS), tree()), 1..6),
        prop_oneof![Just(2usize), Just(4)],
        proptest::collection::vec(any::<bool>(), 1..8),
        proptest::collection::vec(change(), 0..2),
        any::<bool>(),
    )
        .prop_map(|(entries, step, flags, changes, marker)| {
            let mut w = Writer {
                lines: Vec::new(),
                step,
                flags,
                next: 0,
            };
            w.map(&entries, 0, None);
            let mut lines = w.lines;
            if marker {
                lines.insert(0, "---".into());
            }
            for c in changes {
                match c {
                    Change::Insert(i, l) => lines.insert(i % (lines.len() + 1), l),
                    Change::Indent(i, more) => {
                        let i = i % lines.len();
                        if more {
                            lines[i].insert(0, ' ');
                        } else if lines[i].starts_with(' ') {
                            lines[i].remove(0);
                        }
                    }
                }
            }
            lines
        });
    let loose = proptest::collection::vec(line(), 1..16);
    (
        prop_oneof![4 => written, 1 => loose],
        prop_oneof![3 => Just("\n"), 1 => Just("\r\n")],
        any::<bool>(),
    )
        .prop_map(|(lines, eol, last)| {
            let mut text = lines.join(eol);
            if last {
                text.push_str(eol);
            }
            text
        })
}

/// What an entry means and where its parts are, block scalars' spans aside.
fn fingerprint(node: &Node, out: &mut Vec<String>) {
    match &node.kind {
        Kind::Scalar { value, style, tag } => match style {
            saphyr_parser::ScalarStyle::Literal | saphyr_parser::ScalarStyle::Folded => {
                out.push(format!("block {style:?} {tag:?} {value:?}"));
            }
            _ => out.push(format!(
                "scalar {}..{} {style:?} {tag:?} {value:?}",
                node.start, node.end
            )),
        },
        Kind::Alias => out.push(format!("alias {}..{}", node.start, node.end)),
        Kind::Map { entries, flow } => {
            out.push(format!("map {flow} {}", node.start));
            for (k, v) in entries {
                fingerprint(k, out);
                fingerprint(v, out);
            }
        }
        Kind::Seq { items, flow } => {
            out.push(format!("seq {flow} {}", node.start));
            items.iter().for_each(|n| fingerprint(n, out));
        }
    }
}

fn entry_fingerprint((k, v): &(Node, Node)) -> Vec<String> {
    let mut out = Vec::new();
    fingerprint(k, &mut out);
    fingerprint(v, &mut out);
    out
}

fn check_outline(text: &str) -> Result<bool, TestCaseError> {
    let Some(entries) = root_entries(text) else {
        return Ok(false);
    };
    let docs = tree::parse(text)
        .map_err(|e| TestCaseError::fail(format!("outlined, but saphyr: {e:?}\n{text:?}")))?;
    prop_assert_eq!(docs.len(), 1, "{:?}", text);
    let Some(Node {
        kind: Kind::Map {
            entries: whole,
            flow: false,
        },
        ..
    }) = &docs[0]
    else {
        return Err(TestCaseError::fail(format!(
            "root is not a block mapping: {text:?}"
        )));
    };
    prop_assert_eq!(whole.len(), entries.len(), "{:?}", text);
    for (e, in_place) in entries.iter().zip(whole) {
        prop_assert_eq!(in_place.0.scalar(), Some(e.key.as_ref()), "{:?}", text);
        let alone = tree::parse_at(&text[e.start..e.end], e.start)
            .map_err(|err| TestCaseError::fail(format!("entry alone: {err:?}\n{text:?}")))?;
        let Some(Some(Node {
            kind: Kind::Map { entries: one, .. },
            ..
        })) = alone.first()
        else {
            return Err(TestCaseError::fail(format!("entry alone: {alone:?}")));
        };
        prop_assert_eq!(one.len(), 1, "{:?}", text);
        prop_assert_eq!(
            entry_fingerprint(&one[0]),
            entry_fingerprint(in_place),
            "{:?}",
            text
        );
    }
    Ok(true)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn outlined_entries_parse_alone_as_in_place(text in document()) {
        check_outline(&text)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn one_entry_edits_match_whole_file_edits(text in document()) {
        if check_outline(&text)? {
            same_as_whole(&text, &leaf_paths(&text));
        }
    }
}

#[test]
fn the_generated_texts_are_mostly_outlined() {
    // The properties above only mean something if the scanner accepts a fair share,
    // and refuses a fair share too.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = document();
    let mut accepted = 0;
    for _ in 0..2000 {
        let text = strategy.new_tree(&mut runner).expect("generate").current();
        if root_entries(&text).is_some() {
            accepted += 1;
        }
    }
    assert!(
        (300..1900).contains(&accepted),
        "{accepted} of 2000 texts outlined"
    );
}

#[test]
fn path_steps_other_than_a_key_take_the_whole_file_path() {
    let text = "a: 1\n";
    assert!(matches!(
        path::parse("[0]").expect("path").first(),
        Some(Step::Index(0))
    ));
    assert_eq!(set_in_entry("f", text, "[0]", "x"), None);
}
