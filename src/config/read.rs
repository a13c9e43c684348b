//! Reading the config file's TOML by key, collecting every error of the file.
//!
//! Each table is read by asking for its keys by name, so a key nobody asked for is a typo or
//! a misplaced key, reported with the nearest valid one. A value of the wrong type names its
//! key, what was expected with an example, and what was written (`server.workers: expected a
//! whole number, e.g. workers = 4, found the string "two"`). Errors carry the file position
//! and are all reported together, in file order, instead of stopping at the first.

use std::cell::{Cell, RefCell};
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::suggest::nearest;
use super::units::{DurationValue, SizeValue};

/// The document being read and the errors found so far.
pub struct Doc<'t> {
    text: &'t str,
    origin: &'t str,
    errors: RefCell<Vec<(usize, String)>>,
}

impl<'t> Doc<'t> {
    pub fn new(text: &'t str, origin: &'t str) -> Doc<'t> {
        Doc {
            text,
            origin,
            errors: RefCell::new(Vec::new()),
        }
    }

    /// Records an error at byte offset `at` of the text.
    pub fn error(&self, at: usize, msg: String) {
        self.errors.borrow_mut().push((at, msg));
    }

    /// Every error, in file order, each as `origin:line:col: message`.
    pub fn into_errors(self) -> Vec<String> {
        let mut errors = self.errors.into_inner();
        errors.sort_by_key(|(at, _)| *at);
        errors
            .into_iter()
            .map(|(at, msg)| {
                let (line, col) = line_col(self.text, at);
                format!("{}:{line}:{col}: {msg}", self.origin)
            })
            .collect()
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at.min(text.len())).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

struct Entry<'a, 't> {
    key: &'a str,
    at: usize,
    value: &'a Spanned<DeValue<'t>>,
    used: Cell<bool>,
}

/// One TOML table being read. Call `finish` after the last key: it reports the keys that
/// were never asked for.
pub struct Table<'a, 't> {
    doc: &'a Doc<'t>,
    /// How keys of this table are named in messages: "" (top level), "server",
    /// "route[0]", "upstream.api".
    path: String,
    entries: Vec<Entry<'a, 't>>,
    asked: RefCell<Vec<&'static str>>,
}

impl<'a, 't> Table<'a, 't> {
    pub fn new(doc: &'a Doc<'t>, path: String, t: &'a DeTable<'t>) -> Table<'a, 't> {
        let entries = t
            .iter()
            .map(|(k, v)| Entry {
                key: k.get_ref().as_ref(),
                at: k.span().start,
                value: v,
                used: Cell::new(false),
            })
            .collect();
        Table {
            doc,
            path,
            entries,
            asked: RefCell::new(Vec::new()),
        }
    }

    /// The full name of `key` in messages.
    pub fn name(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn lookup(&self, key: &'static str) -> Option<&Entry<'a, 't>> {
        self.asked.borrow_mut().push(key);
        let e = self.entries.iter().find(|e| e.key == key)?;
        e.used.set(true);
        Some(e)
    }

    /// The value of `key`, converted; a wrong type is recorded and reads as absent.
    pub fn get<T: FromValue>(&self, key: &'static str) -> Option<T> {
        let e = self.lookup(key)?;
        match T::from_value(e.value.get_ref(), key) {
            Ok(v) => Some(v),
            Err(msg) => {
                self.doc
                    .error(e.value.span().start, format!("{}: {msg}", self.name(key)));
                None
            }
        }
    }

    /// Records an error about `key` (at its value, or at the table when it is absent).
    pub fn error(&self, key: &str, msg: impl std::fmt::Display) {
        let at = self
            .entries
            .iter()
            .find(|e| e.key == key)
            .map_or_else(|| self.entries.first().map_or(0, |e| e.at), |e| e.at);
        self.doc.error(at, format!("{}: {msg}", self.name(key)));
    }

    /// A sub-table (`[server]`, or an inline `return = { ... }`).
    pub fn table(&self, key: &'static str) -> Option<Table<'a, 't>> {
        let e = self.lookup(key)?;
        match e.value.get_ref() {
            DeValue::Table(t) => Some(Table::new(self.doc, self.name(key), t)),
            other => {
                self.doc.error(
                    e.value.span().start,
                    format!(
                        "{}: expected a table ([{}] or {key} = {{ ... }}), found {}",
                        self.name(key),
                        self.name(key),
                        describe(other)
                    ),
                );
                None
            }
        }
    }

    /// An array of tables (`[[route]]`), each named `key[i]`.
    pub fn tables(&self, key: &'static str) -> Vec<Table<'a, 't>> {
        let Some(e) = self.lookup(key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = e.value.get_ref() else {
            self.doc.error(
                e.value.span().start,
                format!(
                    "{}: expected tables written [[{key}]], found {}",
                    self.name(key),
                    describe(e.value.get_ref())
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::Table(t) => {
                    out.push(Table::new(self.doc, format!("{}[{i}]", self.name(key)), t));
                }
                other => self.doc.error(
                    item.span().start,
                    format!(
                        "{}[{i}]: expected a table, found {}",
                        self.name(key),
                        describe(other)
                    ),
                ),
            }
        }
        out
    }

    /// A table of named tables (`[upstream.NAME]`), in name order.
    pub fn named_tables(&self, key: &'static str) -> Vec<(String, Table<'a, 't>)> {
        let Some(t) = self.table(key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in &t.entries {
            e.used.set(true);
            match e.value.get_ref() {
                DeValue::Table(inner) => out.push((
                    e.key.to_string(),
                    Table::new(self.doc, t.name(e.key), inner),
                )),
                other => self.doc.error(
                    e.at,
                    format!(
                        "{}: expected a table [{}], found {}",
                        t.name(e.key),
                        t.name(e.key),
                        describe(other)
                    ),
                ),
            }
        }
        out
    }

    /// Reports every key of this table that was never asked for.
    pub fn finish(self) {
        let asked = self.asked.borrow();
        for e in self.entries.iter().filter(|e| !e.used.get()) {
            let place = if self.path.is_empty() {
                String::new()
            } else {
                format!(" in [{}]", self.path)
            };
            let hint = match nearest(e.key, &asked) {
                Some(n) => format!("; did you mean `{n}`?"),
                None => format!("; valid keys here: {}", asked.join(", ")),
            };
            self.doc
                .error(e.at, format!("unknown key `{}`{place}{hint}", e.key));
        }
    }
}

/// What a value is, for "found ..." in messages.
fn describe(v: &DeValue) -> String {
    match v {
        DeValue::String(s) => format!("the string {:?}", s.as_ref()),
        DeValue::Integer(i) => format!("the number {}", i.as_str()),
        DeValue::Float(f) => format!("the number {}", f.as_str()),
        DeValue::Boolean(b) => format!("{b}"),
        DeValue::Datetime(d) => format!("the date {d}"),
        DeValue::Array(_) => "a list".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

fn expected(what: &str, key: &str, example: &str, v: &DeValue) -> String {
    format!(
        "expected {what}, e.g. {key} = {example}, found {}",
        describe(v)
    )
}

/// A config value read from TOML.
pub trait FromValue: Sized {
    fn from_value(v: &DeValue, key: &str) -> Result<Self, String>;
}

impl FromValue for bool {
    fn from_value(v: &DeValue, key: &str) -> Result<bool, String> {
        match v {
            DeValue::Boolean(b) => Ok(*b),
            _ => Err(expected("true or false", key, "true", v)),
        }
    }
}

fn whole(v: &DeValue, key: &str) -> Result<u64, String> {
    match v {
        DeValue::Integer(i) => {
            let s = i.as_str();
            if s.starts_with('-') {
                return Err(format!("must not be negative, found {s}"));
            }
            u64::from_str_radix(s.trim_start_matches('+'), i.radix())
                .map_err(|_| format!("{s} is too large"))
        }
        _ => Err(expected("a whole number", key, "4", v)),
    }
}

macro_rules! whole_number {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: &DeValue, key: &str) -> Result<$t, String> {
                let n = whole(v, key)?;
                <$t>::try_from(n).map_err(|_| format!("{n} is too large (at most {})", <$t>::MAX))
            }
        }
    )*};
}
whole_number!(u16, u32, u64, usize);

impl FromValue for String {
    fn from_value(v: &DeValue, key: &str) -> Result<String, String> {
        match v {
            DeValue::String(s) => Ok(s.to_string()),
            _ => Err(expected("a string", key, "\"...\"", v)),
        }
    }
}

/// A list of strings; a single string is taken as a list of one (`listen = "a:1"`).
impl FromValue for Vec<String> {
    fn from_value(v: &DeValue, key: &str) -> Result<Vec<String>, String> {
        match v {
            DeValue::String(s) => Ok(vec![s.to_string()]),
            DeValue::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item.get_ref() {
                    DeValue::String(s) => Ok(s.to_string()),
                    other => Err(format!(
                        "item {i} of the list: expected a string, found {}",
                        describe(other)
                    )),
                })
                .collect(),
            _ => Err(expected("a list of strings", key, "[\"...\"]", v)),
        }
    }
}

/// CPUs: a list of numbers, or the flag's own syntax as a string (`cpus = "0-3,6"`).
pub struct CpuList(pub Vec<usize>);

impl FromValue for CpuList {
    fn from_value(v: &DeValue, key: &str) -> Result<CpuList, String> {
        match v {
            DeValue::String(s) => super::parse_cpu_list(s).map(CpuList),
            DeValue::Array(items) => items
                .iter()
                .map(|item| usize::from_value(item.get_ref(), key))
                .collect::<Result<_, _>>()
                .map(CpuList),
            _ => Err(expected(
                "a list of CPU numbers",
                key,
                "[0, 1] or \"0-3\"",
                v,
            )),
        }
    }
}

impl FromValue for DurationValue {
    fn from_value(v: &DeValue, key: &str) -> Result<DurationValue, String> {
        match v {
            DeValue::String(s) => Ok(DurationValue::Text(s.to_string())),
            DeValue::Integer(_) => whole(v, key).map(DurationValue::Secs),
            _ => Err(expected("a duration", key, "\"10s\"", v)),
        }
    }
}

impl FromValue for SizeValue {
    fn from_value(v: &DeValue, key: &str) -> Result<SizeValue, String> {
        match v {
            DeValue::String(s) => Ok(SizeValue::Text(s.to_string())),
            DeValue::Integer(_) => whole(v, key).map(SizeValue::Bytes),
            _ => Err(expected("a size", key, "\"64KiB\"", v)),
        }
    }
}

/// Parses the text; syntax errors (all of them the parser can recover from) are recorded.
pub fn parse<'t>(doc: &Doc<'t>, text: &'t str) -> Option<Spanned<DeTable<'t>>> {
    let (table, errors) = DeTable::parse_recoverable(text);
    for e in &errors {
        let at = e.span().map_or(0, |s: Range<usize>| s.start);
        doc.error(at, e.message().trim().to_string());
    }
    errors.is_empty().then_some(table)
}

/// A table of string values (`headers = { "X-A" = "1" }`), as (key, value) pairs.
#[derive(Clone, Debug, Default)]
pub struct StringMap(pub Vec<(String, String)>);

impl FromValue for StringMap {
    fn from_value(v: &DeValue, key: &str) -> Result<StringMap, String> {
        let DeValue::Table(t) = v else {
            return Err(expected(
                "a table of strings",
                key,
                "{ \"X-Frame-Options\" = \"DENY\" }",
                v,
            ));
        };
        t.iter()
            .map(|(k, v)| match v.get_ref() {
                DeValue::String(s) => Ok((k.get_ref().to_string(), s.to_string())),
                other => Err(format!(
                    "`{}`: expected a string, found {}",
                    k.get_ref(),
                    describe(other)
                )),
            })
            .collect::<Result<_, _>>()
            .map(StringMap)
    }
}
