//! Where in the file an error is: the line and column of the key an error
//! names, or of its object's header when the key is absent (a missing
//! field), from the spans `toml_edit` keeps while parsing.

use super::ConfigError;
use toml_edit::{ImDocument, Item, Table};

/// A 1-based line and column in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: u32,
    /// Column (characters), from 1.
    pub column: u32,
}

/// The document's spans, and where each line starts.
pub(super) struct Locator<'a> {
    text: &'a str,
    doc: Option<ImDocument<&'a str>>,
}

impl<'a> Locator<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Locator {
            text,
            doc: ImDocument::parse(text).ok(),
        }
    }

    /// Sets `e.at` from its object and field when both are found.
    pub(super) fn place(&self, e: &mut ConfigError) {
        if e.at.is_none() {
            e.at = self.find(&e.object, &e.field).map(|o| self.position(o));
        }
    }

    /// The byte offset of `field` in `object` (as errors name objects:
    /// `port "ext"`, `port[2]`, `[dpdk]`, `file` with a section as field).
    fn find(&self, object: &str, field: &str) -> Option<usize> {
        let root = self.doc.as_ref()?.as_table();
        if object == "file" {
            return root.key(field).and_then(|k| k.span()).map(|s| s.start);
        }
        let table =
            if let Some(section) = object.strip_prefix('[').and_then(|o| o.strip_suffix(']')) {
                root.get(section)?.as_table()?
            } else {
                let (section, pick) = split_object(object)?;
                let tables = root.get(section)?.as_array_of_tables()?;
                match pick {
                    Pick::Index(i) => tables.get(i)?,
                    Pick::Name(n) => tables
                        .iter()
                        .find(|t| t.get("name").and_then(Item::as_str) == Some(n))?,
                }
            };
        key_offset(table, field).or_else(|| table.span().map(|s| s.start))
    }

    pub(super) fn position(&self, offset: usize) -> Position {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[start..].chars().count() + 1;
        Position {
            line: line as u32,
            column: column as u32,
        }
    }
}

fn key_offset(table: &Table, field: &str) -> Option<usize> {
    table.key(field)?.span().map(|s| s.start)
}

enum Pick<'a> {
    Index(usize),
    Name(&'a str),
}

/// `lb_rule "http"` → (`lb_rule`, name `http`); `port[2]` → (`port`, 2).
fn split_object(object: &str) -> Option<(&str, Pick<'_>)> {
    if let Some((section, rest)) = object.split_once(" \"") {
        let name = rest.strip_suffix('"')?;
        return Some((section, Pick::Name(name)));
    }
    let (section, rest) = object.split_once('[')?;
    let i = rest.strip_suffix(']')?.parse().ok()?;
    Some((section, Pick::Index(i)))
}
