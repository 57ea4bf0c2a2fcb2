//! Verification, the fail-closed check after every splice: the new text must parse,
//! and its meaning must equal the old meaning with the planned operation applied,
//! document by document. Any other difference (a key swallowed by a comment, a
//! quote that changed a type, a shifted indent) refuses the edit.

use super::Working;
use super::plan::{NewValue, Op};
use crate::EditError;
use crate::tree::{self, Node, ParseError, Value};

impl Working<'_> {
    /// The documents parsed from `text` if they mean exactly the current documents
    /// with `op` applied.
    pub(super) fn verify(&self, op: &Op, text: &str) -> Result<Vec<Option<Node>>, EditError> {
        self.check(op, tree::parse(text))
    }

    /// `parsed`, read from the edited text (or from the part of it that `self.docs`
    /// was read from, see [`super::entry`]), if it means exactly `self.docs` with
    /// `op` applied.
    pub(super) fn check(
        &self,
        op: &Op,
        parsed: Result<Vec<Option<Node>>, ParseError>,
    ) -> Result<Vec<Option<Node>>, EditError> {
        let verify = |detail: String| EditError::VerifyFailed {
            file: self.file.to_owned(),
            path: self.label.clone(),
            detail,
        };
        let docs =
            parsed.map_err(|e| verify(format!("the result does not parse: {}", e.message)))?;
        let mut expected = tree::values(&self.docs);
        expected_after(&mut expected, op)
            .ok_or_else(|| verify("internal: the planned location vanished".into()))?;
        let got = tree::values(&docs);
        if got != expected {
            let doc = got
                .iter()
                .zip(&expected)
                .position(|(g, e)| g != e)
                .unwrap_or(got.len().min(expected.len()));
            return Err(verify(format!(
                "document {} would change beyond the edited value",
                doc + 1
            )));
        }
        Ok(docs)
    }
}

/// The meaning of the document after `op`, or `None` if its location does not exist.
fn expected_after(values: &mut [Option<Value>], op: &Op) -> Option<()> {
    match op {
        Op::Replace { at, value } => {
            *values.get_mut(at.doc)?.as_mut()?.at_mut(&at.steps)? = Value::string(value);
        }
        Op::Remove { map, entry } => match values.get_mut(map.doc)?.as_mut()?.at_mut(&map.steps)? {
            Value::Map(entries) if *entry < entries.len() => {
                entries.remove(*entry);
            }
            _ => return None,
        },
        Op::Insert { map, key, value } => {
            match values.get_mut(map.doc)?.as_mut()?.at_mut(&map.steps)? {
                Value::Map(entries) => entries.push((Value::string(key), meaning(value))),
                _ => return None,
            }
        }
        Op::Append { seq, fields } => {
            match values.get_mut(seq.doc)?.as_mut()?.at_mut(&seq.steps)? {
                Value::Seq(items) => items.push(map_value(fields)),
                _ => return None,
            }
        }
    }
    Some(())
}

/// What an inserted value means once parsed: every scalar a string.
fn meaning(value: &NewValue) -> Value {
    match value {
        NewValue::Scalar(s) => Value::string(s),
        NewValue::MapSeq(items) => {
            Value::Seq(items.iter().map(|fields| map_value(fields)).collect())
        }
    }
}

fn map_value(fields: &[(String, String)]) -> Value {
    Value::Map(
        fields
            .iter()
            .map(|(k, v)| (Value::string(k), Value::string(v)))
            .collect(),
    )
}
