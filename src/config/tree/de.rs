//! Step 2: a serde `Deserializer` over the located tree that reports every unknown key,
//! locates every error, and retries with the offending node hidden until the schema's
//! structs deserialize (the rounds of [`deserialize_all`]).

use std::cell::RefCell;
use std::collections::{BTreeSet, HashSet};
use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, Visitor,
};

use super::{Entry, Int, Kind, Node, Scalar};
use crate::config::diagnostics::{Pos, Problem};
use crate::config::raw::LOCATED;

/// Deserializes `T` from the tree, collecting every error (see the `config` module
/// documentation). `hidden` starts with the nodes step 1 found unusable. Returns the value
/// (when the root itself could be read), the problems, and the hidden nodes.
pub(in crate::config) fn deserialize_all<T: DeserializeOwned>(
    root: &Node,
    hidden: HashSet<usize>,
) -> (Option<T>, BTreeSet<Problem>, HashSet<usize>) {
    let mut context = Context {
        hidden,
        problems: RefCell::new(BTreeSet::new()),
        reported: RefCell::new(HashSet::new()),
    };
    // Each round hides one more node, so this ends after at most one round per node; past
    // MAX_ROUNDS errors the file is hopeless and the rest is not worth the time.
    for _ in 0..MAX_ROUNDS {
        let result = T::deserialize(De {
            node: root,
            context: &context,
        });
        let error = match result {
            Ok(value) => return context.finish(Some(value)),
            Err(error) => error,
        };
        let (id, pos) = error.at.unwrap_or((root.id, root.pos));
        if !is_consequence(root, &context.hidden, &error) {
            context
                .problems
                .get_mut()
                .insert(Problem::error(pos, plain_words(&error.message)));
        }
        if id == root.id || !context.hidden.insert(id) {
            return context.finish(None);
        }
    }
    context.problems.get_mut().insert(Problem::error(
        root.pos,
        format!("more than {MAX_ROUNDS} errors; stopped checking"),
    ));
    context.finish(None)
}

pub(in crate::config) const MAX_ROUNDS: usize = 500;

/// serde names Rust types in its messages; say what they mean instead.
fn plain_words(message: &str) -> String {
    const WORDS: [(&str, &str); 4] = [
        ("expected u16", "expected a whole number from 0 to 65535"),
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        ("expected u64", "expected a whole number, 0 or more"),
        ("expected path string", "expected a path"),
    ];
    for (rust, plain) in WORDS {
        if let Some(start) = message.strip_suffix(rust) {
            return format!("{start}{plain}");
        }
    }
    message.to_owned()
}

/// A "missing key" error for a key whose value was hidden (its error is already reported).
fn is_consequence(root: &Node, hidden: &HashSet<usize>, error: &DeError) -> bool {
    let (Some(field), Some((id, _))) = (error.missing, error.at) else {
        return false;
    };
    let Some(Kind::Map(entries)) = find(root, id).map(|node| &node.kind) else {
        return false;
    };
    entries.iter().any(|entry| {
        entry.name() == field
            && (hidden.contains(&entry.key.id) || hidden.contains(&entry.value.id))
    })
}

fn find(node: &Node, id: usize) -> Option<&Node> {
    if node.id == id {
        return Some(node);
    }
    if !(node.id..=node.last).contains(&id) {
        return None;
    }
    match &node.kind {
        Kind::Scalar(_) => None,
        Kind::Seq(items) => items.iter().find_map(|item| find(item, id)),
        Kind::Map(entries) => entries
            .iter()
            .find_map(|entry| find(&entry.key, id).or_else(|| find(&entry.value, id))),
    }
}

struct Context {
    hidden: HashSet<usize>,
    problems: RefCell<BTreeSet<Problem>>,
    /// Mappings whose unknown keys were reported (in an earlier round).
    reported: RefCell<HashSet<usize>>,
}

impl Context {
    fn finish<T>(self, value: Option<T>) -> (Option<T>, BTreeSet<Problem>, HashSet<usize>) {
        (value, self.problems.into_inner(), self.hidden)
    }

    fn is_hidden(&self, entry: &Entry) -> bool {
        self.hidden.contains(&entry.key.id) || self.hidden.contains(&entry.value.id)
    }
}

/// A serde error with the node it arose at.
#[derive(Debug)]
struct DeError {
    message: String,
    at: Option<(usize, Pos)>,
    /// Set by `missing_field`, so the retry loop can recognise consequences of hiding.
    missing: Option<&'static str>,
}

impl DeError {
    fn locate(mut self, node: &Node) -> DeError {
        if self.at.is_none() {
            self.at = Some((node.id, node.pos));
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        DeError {
            message: message.to_string(),
            at: None,
            missing: None,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError {
            message: format!("missing required key `{field}`"),
            at: None,
            missing: Some(field),
        }
    }
}

#[derive(Clone, Copy)]
struct De<'a> {
    node: &'a Node,
    context: &'a Context,
}

impl<'a> De<'a> {
    fn scalar(self) -> Option<&'a Scalar> {
        match &self.node.kind {
            Kind::Scalar(scalar) => Some(scalar),
            _ => None,
        }
    }

    fn is_null(self) -> bool {
        self.scalar().is_some_and(Scalar::is_null)
    }

    fn unexpected(self) -> Unexpected<'a> {
        match &self.node.kind {
            Kind::Seq(_) => Unexpected::Other("a list"),
            Kind::Map(_) => Unexpected::Other("a mapping"),
            Kind::Scalar(scalar) if scalar.is_null() => Unexpected::Other("nothing (null)"),
            Kind::Scalar(scalar) => match (scalar.as_bool(), scalar.as_int(), scalar.as_float()) {
                (Some(b), _, _) => Unexpected::Bool(b),
                (_, Some(Int::Unsigned(u)), _) => Unexpected::Unsigned(u),
                (_, Some(Int::Signed(i)), _) => Unexpected::Signed(i),
                (_, _, Some(f)) => Unexpected::Float(f),
                _ => Unexpected::Str(&scalar.text),
            },
        }
    }

    fn invalid<T>(self, expected: &dyn de::Expected) -> Result<T, DeError> {
        Err(de::Error::invalid_type(self.unexpected(), expected))
    }

    fn locate<T>(self, result: Result<T, DeError>) -> Result<T, DeError> {
        result.map_err(|error| error.locate(self.node))
    }

    fn seq<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.kind {
            Kind::Seq(items) => visitor.visit_seq(SeqAcc {
                items: items.iter(),
                context: self.context,
            }),
            _ if self.is_null() => visitor.visit_seq(SeqAcc {
                items: [].iter(),
                context: self.context,
            }),
            _ => self.invalid(&visitor),
        };
        self.locate(result)
    }

    fn map<'de, V: Visitor<'de>>(
        self,
        fields: Option<&'static [&'static str]>,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let result = match &self.node.kind {
            Kind::Map(entries) => visitor.visit_map(MapAcc {
                entries: entries.iter(),
                fields,
                context: self.context,
                value: None,
            }),
            _ if self.is_null() => visitor.visit_map(MapAcc {
                entries: [].iter(),
                fields,
                context: self.context,
                value: None,
            }),
            _ => self.invalid(&visitor),
        };
        self.locate(result)
    }

    fn int<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.scalar().and_then(Scalar::as_int) {
            Some(Int::Unsigned(u)) => visitor.visit_u64(u),
            Some(Int::Signed(i)) => visitor.visit_i64(i),
            None => self.invalid(&visitor),
        };
        self.locate(result)
    }

    fn string<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.scalar() {
            Some(scalar) if !scalar.is_null() => visitor.visit_str(&scalar.text),
            _ => self.invalid(&visitor),
        };
        self.locate(result)
    }

    /// Records every key `fields` does not declare (they are then skipped).
    fn report_unknown_keys(self, name: &str, fields: &'static [&'static str]) {
        let Kind::Map(entries) = &self.node.kind else {
            return;
        };
        if !self.context.reported.borrow_mut().insert(self.node.id) {
            return;
        }
        for entry in entries {
            if self.context.is_hidden(entry) || fields.contains(&entry.name()) {
                continue;
            }
            let problem = Problem::error(
                entry.key.pos,
                unknown_key_message(name, entry.name(), fields),
            );
            self.context.problems.borrow_mut().insert(problem);
        }
    }
}

fn unknown_key_message(context: &str, key: &str, fields: &[&str]) -> String {
    let place = if context == "the top level" {
        "at the top level".to_owned()
    } else {
        format!("in {context}")
    };
    if matches!(key, "password" | "passwd") && fields.contains(&"password_file") {
        let alternatives = if fields.contains(&"password_env") {
            "`password_file` or `password_env`"
        } else {
            "`password_file`"
        };
        return format!(
            "inline passwords are not allowed ({place}): put the password in a file or the \
             environment and use {alternatives}"
        );
    }
    match fields
        .iter()
        .filter(|field| edit_distance(key, field) <= 2)
        .min_by_key(|field| edit_distance(key, field))
    {
        Some(suggestion) => format!("unknown key `{key}` {place} (did you mean `{suggestion}`?)"),
        None => format!(
            "unknown key `{key}` {place}; expected one of {}",
            fields
                .iter()
                .map(|field| format!("`{field}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

impl<'de> Deserializer<'de> for De<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            Kind::Seq(_) => self.seq(visitor),
            Kind::Map(_) => self.map(None, visitor),
            Kind::Scalar(scalar) => {
                let result = if scalar.is_null() {
                    visitor.visit_unit()
                } else if let Some(b) = scalar.as_bool() {
                    visitor.visit_bool(b)
                } else if let Some(int) = scalar.as_int() {
                    match int {
                        Int::Unsigned(u) => visitor.visit_u64(u),
                        Int::Signed(i) => visitor.visit_i64(i),
                    }
                } else if let Some(f) = scalar.as_float() {
                    visitor.visit_f64(f)
                } else {
                    visitor.visit_str(&scalar.text)
                };
                self.locate(result)
            }
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.scalar().and_then(Scalar::as_bool) {
            Some(b) => visitor.visit_bool(b),
            None => self.invalid(&visitor),
        };
        self.locate(result)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.int(visitor)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.int(visitor)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.int(visitor)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.int(visitor)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.int(visitor)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.int(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.int(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.int(visitor)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.scalar().and_then(Scalar::as_float) {
            Some(f) => visitor.visit_f64(f),
            None => self.invalid(&visitor),
        };
        self.locate(result)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.is_null() {
            self.locate(visitor.visit_none())
        } else {
            self.locate(visitor.visit_some(self))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = if self.is_null() {
            visitor.visit_unit()
        } else {
            self.invalid(&visitor)
        };
        self.locate(result)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let result = if name == LOCATED {
            visitor.visit_seq(LocatedAcc { de: self, state: 0 })
        } else {
            visitor.visit_newtype_struct(self)
        };
        self.locate(result)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.seq(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.map(None, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.report_unknown_keys(name, fields);
        self.map(Some(fields), visitor).map_err(|mut error| {
            if let Some(field) = error.missing
                && error.at.is_some_and(|(id, _)| id == self.node.id)
            {
                error.message = format!("missing required key `{field}` in {name}");
            }
            error
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let result = match self.scalar() {
            Some(scalar) if !scalar.is_null() => visitor.visit_enum(
                IntoDeserializer::<DeError>::into_deserializer(scalar.text.as_str()),
            ),
            _ => self.invalid(&visitor),
        };
        self.locate(result)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct SeqAcc<'a> {
    items: std::slice::Iter<'a, Node>,
    context: &'a Context,
}

impl<'de> SeqAccess<'de> for SeqAcc<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let context = self.context;
        match self.items.find(|item| !context.hidden.contains(&item.id)) {
            Some(node) => seed.deserialize(De { node, context }).map(Some),
            None => Ok(None),
        }
    }
}

struct MapAcc<'a> {
    entries: std::slice::Iter<'a, Entry>,
    /// A struct's declared keys: other keys were reported and are skipped.
    fields: Option<&'static [&'static str]>,
    context: &'a Context,
    value: Option<&'a Node>,
}

impl<'de> MapAccess<'de> for MapAcc<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let context = self.context;
        let fields = self.fields;
        let next = self.entries.find(|entry| {
            !context.is_hidden(entry) && fields.is_none_or(|fields| fields.contains(&entry.name()))
        });
        match next {
            Some(entry) => {
                self.value = Some(&entry.value);
                seed.deserialize(De {
                    node: &entry.key,
                    context,
                })
                .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let node = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("a mapping value was read twice"))?;
        seed.deserialize(De {
            node,
            context: self.context,
        })
    }
}

/// What [`Located`](crate::config::raw::Located) receives from the tree: line, column, first id, last id, then the value.
struct LocatedAcc<'a> {
    de: De<'a>,
    state: u8,
}

impl<'de> SeqAccess<'de> for LocatedAcc<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let node = self.de.node;
        let number = match self.state {
            0 => node.pos.line,
            1 => node.pos.column,
            2 => node.id,
            3 => node.last,
            4 => {
                self.state += 1;
                return seed.deserialize(self.de).map(Some);
            }
            _ => return Ok(None),
        };
        self.state += 1;
        let number = u64::try_from(number).map_err(<DeError as de::Error>::custom)?;
        seed.deserialize(IntoDeserializer::<DeError>::into_deserializer(number))
            .map(Some)
    }
}
