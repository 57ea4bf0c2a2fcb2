//! The root entries of a large YAML file, found by scanning lines instead of parsing.
//!
//! Parsing 1 MB with saphyr takes tens of milliseconds, and an edit touches one root
//! entry. When every root entry starts on a line that begins, in the first column, a
//! key of the root mapping, and no quoted scalar, flow collection or block scalar is
//! open across that line, each entry parses on its own exactly as it does in place
//! (saphyr is then back in the root mapping, expecting a key). The edit can then
//! parse, splice and verify just that entry.
//!
//! The scanner accepts only a common subset of block YAML and checks its structure
//! while it goes: indentation of mappings and sequences (including sequences at
//! their key's indentation), keys, single-line quoted scalars and their escapes,
//! single-line flow collections, block scalars and their indentation, comments.
//! Anything else gives `None`: quoted scalars or flow collections over several
//! lines, plain scalars continued on the next line, anchors, aliases, tags, complex
//! keys, directives, more than one document, tabs outside block scalars, control
//! characters, a byte order mark. `None` only means the caller parses the whole
//! file; the scanner never has to understand all of YAML, it must only never accept
//! what saphyr reads differently (tested against saphyr in `crate::edit::tests`).

use std::borrow::Cow;

/// One entry of the root mapping: its key and the bytes from the first byte of its
/// key line to the first byte of the next entry's key line (or the end of the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry<'t> {
    pub key: Cow<'t, str>,
    pub start: usize,
    pub end: usize,
}

/// The root entries of `text` in order, or `None` when `text` is not a single
/// document whose root is a block mapping in the subset described above.
pub(crate) fn root_entries(text: &str) -> Option<Vec<Entry<'_>>> {
    let bytes = text.as_bytes();
    // A lone CR is a line break to YAML, and saphyr stops at NUL; the byte order mark
    // is allowed only where the scanner would have to know about documents.
    let mut prev = 0u8;
    for &b in bytes {
        if (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
            || b == 0x7f
            || prev == b'\r' && b != b'\n'
        {
            return None;
        }
        prev = b;
    }
    if prev == b'\r' || text.contains('\u{feff}') {
        return None;
    }
    let mut scan = Scan::default();
    let mut entries: Vec<Entry<'_>> = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let next = text[pos..].find('\n').map_or(bytes.len(), |i| pos + i + 1);
        let mut line = &bytes[pos..next];
        line = line.strip_suffix(b"\n").unwrap_or(line);
        line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(key) = scan.line(line)? {
            if let Some(last) = entries.last_mut() {
                last.end = pos;
            }
            entries.push(Entry {
                key: key.text(&text[pos..pos + line.len()])?,
                start: pos,
                end: bytes.len(),
            });
        }
        pos = next;
    }
    (!entries.is_empty()).then_some(entries)
}

/// An open block collection: the column of its keys or dashes.
#[derive(Debug, Clone, Copy)]
struct Level {
    indent: usize,
    seq: bool,
    /// A sequence written at its parent key's indentation (`key:` then `- item`).
    indentless: bool,
}

/// A block scalar being skipped: the column of the key or dash that owns it, and
/// the indentation of its content once known.
#[derive(Debug, Clone, Copy)]
struct Block {
    owner: usize,
    content: Option<usize>,
    /// The longest all-space line before the first content line.
    blank: usize,
}

#[derive(Default)]
struct Scan {
    stack: Vec<Level>,
    /// The column of the key or dash whose value is on the following lines.
    pending: Option<usize>,
    block: Option<Block>,
    /// Whether anything but blank lines and comments has been seen.
    started: bool,
}

/// A root key as written on its line: the byte range of its text and how it is quoted.
#[derive(Debug, Clone, Copy)]
struct RootKey {
    start: usize,
    end: usize,
    quote: Option<u8>,
}

impl RootKey {
    /// The key's value, as saphyr would read it.
    fn text<'t>(&self, line: &'t str) -> Option<Cow<'t, str>> {
        let raw = line.get(self.start..self.end)?;
        Some(match self.quote {
            None => Cow::Borrowed(raw),
            Some(b'\'') if raw.contains("''") => Cow::Owned(raw.replace("''", "'")),
            // Escapes in a root key are rare; not worth decoding here.
            Some(b'"') if raw.contains('\\') => return None,
            Some(_) => Cow::Borrowed(raw),
        })
    }
}

/// What follows the last key or dash of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// Nothing (or a comment): the value is on the following lines, or null.
    Empty,
    /// A complete value on this line.
    Inline,
    /// A block scalar header; its content follows.
    Block,
}

/// At most this many keys and dashes on one line (`- - - key:`).
const MAX_EVENTS: usize = 8;

/// saphyr refuses a simple key longer than 1024 characters.
const MAX_KEY: usize = 1000;

impl Scan {
    /// Takes one line (without its line break). `Some(Some(key))` when the line
    /// starts a root entry, `Some(None)` for any other accepted line.
    fn line(&mut self, line: &[u8]) -> Option<Option<RootKey>> {
        let indent = line.iter().take_while(|&&b| b == b' ').count();
        let blank = indent == line.len();
        if let Some(block) = &mut self.block {
            match block.content {
                _ if blank => {
                    if block.content.is_none() {
                        block.blank = block.blank.max(indent);
                    }
                    return Some(None);
                }
                Some(c) if indent >= c => return Some(None),
                None if indent > block.owner => {
                    // saphyr takes the deepest leading blank line as the indentation
                    // and refuses a less indented first line.
                    if block.blank > indent {
                        return None;
                    }
                    block.content = Some(indent);
                    return Some(None);
                }
                _ => self.block = None,
            }
        }
        if line.contains(&b'\t') {
            return None;
        }
        if blank || line[indent] == b'#' {
            return Some(None);
        }
        if indent == 0 && (line.starts_with(b"---") || line.starts_with(b"...")) {
            // Only a document start before the root mapping, alone on its line.
            let rest = &line[3..];
            let alone = rest.is_empty() || rest[0] == b' ' && after_value(rest, 0).is_some();
            if line.starts_with(b"---") && !self.started && alone {
                self.started = true;
                return Some(None);
            }
            return None;
        }
        self.started = true;

        let mut events = [(0usize, false); MAX_EVENTS];
        let mut count = 0;
        let mut push = |col: usize, dash: bool| -> Option<()> {
            *events.get_mut(count)? = (col, dash);
            count += 1;
            Some(())
        };
        let mut i = indent;
        let mut tail = Tail::Empty;
        let mut root_key = None;
        loop {
            if line[i] == b'-' && line.get(i + 1).is_none_or(|&b| b == b' ') {
                push(i, true)?;
                i = skip_spaces(line, i + 1);
                if i == line.len() || line[i] == b'#' {
                    break;
                }
                continue;
            }
            if let Some(key) = key_at(line, i) {
                push(i, false)?;
                if i == 0 {
                    root_key = Some(key.0);
                }
                i = skip_spaces(line, key.1);
                if i < line.len() && line[i] != b'#' {
                    tail = value_at(line, i)?;
                }
            } else if count > 0 {
                tail = value_at(line, i)?;
            } else {
                // A scalar or collection alone on its line: legal after `key:`, but
                // rare; a continued plain scalar or an error otherwise.
                return None;
            }
            break;
        }

        let (first, first_dash) = events[0];
        self.open(first, first_dash)?;
        for &(col, dash) in &events[1..count] {
            self.stack.push(Level {
                indent: col,
                seq: dash,
                indentless: false,
            });
        }
        let (last, _) = events[count - 1];
        self.pending = (tail == Tail::Empty).then_some(last);
        if tail == Tail::Block {
            self.block = Some(Block {
                owner: last,
                content: None,
                blank: 0,
            });
        }
        Some(root_key)
    }

    /// The line's first key or dash, at column `col`: it must continue an open
    /// collection or open the value of the pending key or dash above it.
    fn open(&mut self, col: usize, dash: bool) -> Option<()> {
        while self.stack.last().is_some_and(|l| l.indent > col) {
            self.stack.pop();
        }
        let pending = self.pending.take();
        let nested = pending.is_some_and(|p| p < col);
        if !dash
            && self
                .stack
                .last()
                .is_some_and(|l| l.indent == col && l.indentless)
        {
            self.stack.pop();
        }
        let level = |seq, indentless| Level {
            indent: col,
            seq,
            indentless,
        };
        match self.stack.last() {
            None if !dash && col == 0 => self.stack.push(level(false, false)),
            Some(top) if top.indent == col && top.seq == dash => {}
            Some(top) if top.indent == col && dash && pending == Some(col) => {
                self.stack.push(level(true, true));
            }
            Some(top) if top.indent < col && nested => self.stack.push(level(dash, false)),
            _ => return None,
        }
        Some(())
    }
}

fn skip_spaces(line: &[u8], mut i: usize) -> usize {
    while line.get(i) == Some(&b' ') {
        i += 1;
    }
    i
}

/// After a value ending at `i`: only spaces, then the end or a comment.
fn after_value(line: &[u8], i: usize) -> Option<()> {
    let j = skip_spaces(line, i);
    (j == line.len() || j > i && line[j] == b'#').then_some(())
}

/// A key starting at `i` (`key:` or `key: value`): its text and the index after `:`.
fn key_at(line: &[u8], i: usize) -> Option<(RootKey, usize)> {
    let colon_ok =
        |j: usize| line.get(j) == Some(&b':') && line.get(j + 1).is_none_or(|&b| b == b' ');
    let (key, colon) = match line[i] {
        q @ (b'"' | b'\'') => {
            let end = quoted_end(line, i)?;
            let key = RootKey {
                start: i + 1,
                end: end - 1,
                quote: Some(q),
            };
            (key, end)
        }
        _ if plain_start(line, i, false) => {
            let mut j = i;
            loop {
                match line.get(j) {
                    None => return None,
                    Some(b':') if colon_ok(j) => break,
                    Some(b' ') if line.get(j + 1) == Some(&b'#') => return None,
                    Some(_) => j += 1,
                }
            }
            let end = i + line[i..j].trim_ascii_end().len();
            let key = RootKey {
                start: i,
                end,
                quote: None,
            };
            (key, j)
        }
        _ => return None,
    };
    (colon_ok(colon) && colon - i <= MAX_KEY).then_some((key, colon + 1))
}

/// A value starting at `i` (not a comment): what kind, if this line holds all of it.
fn value_at(line: &[u8], i: usize) -> Option<Tail> {
    match line[i] {
        b'"' | b'\'' => {
            after_value(line, quoted_end(line, i)?)?;
            Some(Tail::Inline)
        }
        b'[' | b'{' => {
            after_value(line, flow_end(line, i, 0)?)?;
            Some(Tail::Inline)
        }
        b'|' | b'>' => {
            let mut j = i + 1;
            if matches!(line.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            // An explicit indentation indicator: rare, and its base is saphyr's own.
            if line.get(j).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            after_value(line, j)?;
            Some(Tail::Block)
        }
        _ if plain_start(line, i, false) => {
            let mut j = i;
            while j < line.len() {
                match line[j] {
                    // `a: b: c` is an error; `a: b:` too.
                    b':' if line.get(j + 1).is_none_or(|&b| b == b' ') => return None,
                    b' ' if line.get(j + 1) == Some(&b'#') => break,
                    _ => j += 1,
                }
            }
            Some(Tail::Inline)
        }
        _ => None,
    }
}

/// Whether a plain scalar may start at `i`: not an indicator, and `-` only before
/// something that cannot make it one (`-1`, `-foo`).
fn plain_start(line: &[u8], i: usize, flow: bool) -> bool {
    match line[i] {
        b'-' => line
            .get(i + 1)
            .is_some_and(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/')),
        b'?' | b':' | b'[' | b']' | b'{' | b'}' | b',' | b'#' | b'&' | b'*' | b'!' | b'|'
        | b'>' | b'\'' | b'"' | b'%' | b'@' | b'`' | b' ' => false,
        _ => !flow || !matches!(line[i], b',' | b'[' | b']' | b'{' | b'}'),
    }
}

/// The index just past the closing quote of the quoted scalar at `i`, if it closes on
/// this line and its escapes are ones saphyr reads without further checks.
fn quoted_end(line: &[u8], i: usize) -> Option<usize> {
    let quote = line[i];
    let mut j = i + 1;
    while j < line.len() {
        match line[j] {
            b'\'' if quote == b'\'' => {
                if line.get(j + 1) == Some(&b'\'') {
                    j += 2;
                } else {
                    return Some(j + 1);
                }
            }
            b'"' if quote == b'"' => return Some(j + 1),
            b'\\' if quote == b'"' => {
                // \x, \u and \U need their digits checked; a trailing \ continues the line.
                let escaped = *line.get(j + 1)?;
                if !b"0abtnvfre \"/\\N_LP".contains(&escaped) {
                    return None;
                }
                j += 2;
            }
            _ => j += 1,
        }
    }
    None
}

/// The index just past the flow collection at `i`, if it closes on this line and
/// is in the subset: non-empty scalar entries, `key: value` pairs in mappings only,
/// no trailing commas, no comments.
fn flow_end(line: &[u8], i: usize, depth: usize) -> Option<usize> {
    if depth > 16 {
        return None;
    }
    let (close, map) = match line[i] {
        b'[' => (b']', false),
        b'{' => (b'}', true),
        _ => return None,
    };
    let mut j = skip_spaces(line, i + 1);
    if line.get(j) == Some(&close) {
        return Some(j + 1);
    }
    loop {
        if map {
            j = match *line.get(j)? {
                b'"' | b'\'' => quoted_end(line, j)?,
                _ => flow_plain_end(line, j)?,
            };
            if line.get(j) != Some(&b':') || line.get(j + 1) != Some(&b' ') {
                return None;
            }
            j = skip_spaces(line, j + 1);
        }
        j = match *line.get(j)? {
            b'"' | b'\'' => quoted_end(line, j)?,
            b'[' | b'{' => flow_end(line, j, depth + 1)?,
            _ => flow_plain_end(line, j)?,
        };
        j = skip_spaces(line, j);
        match *line.get(j)? {
            b',' => {
                j = skip_spaces(line, j + 1);
                if line.get(j) == Some(&close) {
                    return None;
                }
            }
            b if b == close => return Some(j + 1),
            _ => return None,
        }
    }
}

/// The end of a plain scalar in a flow collection starting at `j` (trailing spaces
/// included): at `,[]{}`, at `:` before a space or one of those, or at the line end.
fn flow_plain_end(line: &[u8], i: usize) -> Option<usize> {
    if !plain_start(line, i, true) {
        return None;
    }
    let mut j = i;
    while let Some(&b) = line.get(j) {
        match b {
            b',' | b'[' | b']' | b'{' | b'}' => break,
            b':' if line
                .get(j + 1)
                .is_none_or(|&n| matches!(n, b' ' | b',' | b'[' | b']' | b'{' | b'}')) =>
            {
                break;
            }
            // A comment inside a flow collection: it continues on the next line.
            b' ' if line.get(j + 1) == Some(&b'#') => return None,
            _ => j += 1,
        }
    }
    Some(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Option<Vec<(String, usize, usize)>> {
        root_entries(text).map(|es| {
            es.into_iter()
                .map(|e| (e.key.into_owned(), e.start, e.end))
                .collect()
        })
    }

    #[test]
    fn entries_run_from_key_line_to_key_line() {
        let text = "# head\n---\na: 1\n# about b\nb:\n  c: [x, {y: z}]\n  d: |\n    text: \"[\n\n    more\n  e:\n  - f\n  - g: h\n    i: 'j''k'\n'q': 2\n";
        let got = keys(text).expect("outline");
        let names: Vec<&str> = got.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(names, ["a", "b", "q"]);
        assert_eq!(&text[got[0].1..got[0].2], "a: 1\n# about b\n");
        assert!(text[got[1].1..got[1].2].starts_with("b:\n"));
        assert_eq!(&text[got[2].1..], "'q': 2\n");
    }

    #[test]
    fn sequences_at_key_indentation_and_nested() {
        assert!(keys("a:\n- b\n- c: d\n  e: f\n- - g\nh: i\n").is_some());
        assert!(keys("a:\n  - b\n  -\n    c: d\nh: i\n").is_some());
    }

    #[test]
    fn gives_up_on_what_it_does_not_prove() {
        for text in [
            "a: \"multi\nline\"\n",
            "a: [1,\n2]\n",
            "a: plain\n  continued\n",
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "? a\n: b\n",
            "a: 1\n---\nb: 2\n",
            "%YAML 1.2\n---\na: 1\n",
            "- a\n",
            "  a: 1\n",
            "a:\n\tb: 1\n",
            "a: b: c\n",
            "a:\n  - b\n  c: d\n",
            "a: |2\n   x\n",
            "a: \"\\x41\"\n",
            "a: 1\rb: 2\n",
            "\u{feff}a: 1\n",
            "a: [b, ]\n",
            "a: {b}\n",
            "a: [b # c\n",
            "a:\n  b\n",
            "a: |\n    \n  x\n",
            "",
            "# only a comment\n",
        ] {
            assert_eq!(keys(text), None, "{text:?}");
        }
    }

    #[test]
    fn block_scalar_content_is_not_structure() {
        let text = "a: |\n  \"open [ {\n  - x\n  b: : :\n\n # less indented: ends it\nd: >-\n  # not a comment\ne: 2\n";
        let got = keys(text).expect("outline");
        let names: Vec<&str> = got.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(names, ["a", "d", "e"]);
    }
}
