//! The one set of rules by which an XML-RPC value becomes a Rust value, shared by the two
//! decoders: the tree ([`typed::from_value`](super::typed::from_value) over a decoded
//! [`Value`](super::wire::Value)) and the stream ([`stream`](super::stream), straight from the
//! parser). Each decoder only says how to open the next value and how to walk its arrays and
//! structs ([`Source`]); [`Coerce`] is the serde `Deserializer` both use, so their leniency
//! cannot drift apart.
//!
//! The leniency is xapi's own unmarshaller's (xapi-notes.md §1.2): an `int` from a digit
//! string, a `double` from an int or a string, a boolean also from `"true"` / `"false"`, a
//! string from an int, `<dateTime.iso8601>` and `<base64>` as strings, `<nil/>` as `None` or
//! unit, and the empty string as unit (a `void` result).

use std::borrow::Cow;

use serde::de::{self, Visitor};

use super::wire::WireError;

/// One opened value: a scalar read in full, or an array or struct whose content the
/// [`Source`] walks (`A` and `S` are what it needs for that: the elements of a tree, nothing
/// for the stream).
pub enum Node<'a, A, S> {
    /// Untyped text or `<string>`.
    Str(Cow<'a, str>),
    /// `<int>`, `<i4>`, `<i8>`.
    Int(i64),
    /// `<boolean>`.
    Bool(bool),
    /// `<double>`.
    Double(f64),
    /// `<dateTime.iso8601>`, trimmed.
    DateTime(Cow<'a, str>),
    /// `<base64>`, trimmed, passed on as text.
    Base64(Cow<'a, str>),
    /// `<nil/>`.
    Nil,
    /// `<array>`, its elements still to walk.
    Array(A),
    /// `<struct>`, its members still to walk.
    Struct(S),
}

impl<A, S> Node<'_, A, S> {
    /// The XML-RPC type's name, as errors spell it.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Str(_) => "string",
            Node::Int(_) => "int",
            Node::Bool(_) => "boolean",
            Node::Double(_) => "double",
            Node::DateTime(_) => "dateTime.iso8601",
            Node::Base64(_) => "base64",
            Node::Nil => "nil",
            Node::Array(_) => "array",
            Node::Struct(_) => "struct",
        }
    }
}

/// Where values come from: a decoded tree or the parser.
pub trait Source<'de>: Sized {
    /// What walking an array's elements needs.
    type Array;
    /// What walking a struct's members needs.
    type Struct;

    /// Opens the value (scalars are read whole).
    fn open(&mut self) -> Result<Node<'de, Self::Array, Self::Struct>, WireError>;

    /// Hands an opened array's elements to `visitor`, each through a [`Coerce`].
    fn visit_array<V: Visitor<'de>>(
        self,
        array: Self::Array,
        visitor: V,
    ) -> Result<V::Value, WireError>;

    /// Hands an opened struct's members to `visitor`, each value through a [`Coerce`].
    fn visit_struct<V: Visitor<'de>>(
        self,
        members: Self::Struct,
        visitor: V,
    ) -> Result<V::Value, WireError>;

    /// Steps over the rest of a value nobody wants (`head`: what was opened of it already).
    fn skip(self, head: Option<Node<'de, Self::Array, Self::Struct>>) -> Result<(), WireError>;
}

/// The serde `Deserializer` over one value of a [`Source`].
pub struct Coerce<'de, S: Source<'de>> {
    source: S,
    /// The value's opening, when `deserialize_option` has looked at it already.
    head: Option<Node<'de, S::Array, S::Struct>>,
}

impl<'de, S: Source<'de>> Coerce<'de, S> {
    /// The deserializer of `source`'s next value.
    pub fn new(source: S) -> Self {
        Coerce { source, head: None }
    }

    fn take(&mut self) -> Result<Node<'de, S::Array, S::Struct>, WireError> {
        match self.head.take() {
            Some(node) => Ok(node),
            None => self.source.open(),
        }
    }

    fn int(mut self) -> Result<i64, WireError> {
        match self.take()? {
            Node::Int(i) => Ok(i),
            Node::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| WireError::Type(format!("expected an int, found {s:?}"))),
            other => Err(mismatch("an int", &other)),
        }
    }
}

fn mismatch<A, S>(expected: &str, got: &Node<'_, A, S>) -> WireError {
    WireError::Type(format!("expected {expected}, found {}", got.kind()))
}

/// Hands text to a visitor, borrowed when the source lent it.
fn visit_text<'de, V: Visitor<'de>>(
    visitor: V,
    text: Cow<'de, str>,
) -> Result<V::Value, WireError> {
    match text {
        Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
        Cow::Owned(s) => visitor.visit_string(s),
    }
}

macro_rules! deserialize_int {
    ($($method:ident => $visit:ident as $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
            let i = self.int()?;
            let narrowed = <$ty>::try_from(i)
                .map_err(|_| WireError::Type(format!("{i} is out of range for {}", stringify!($ty))))?;
            visitor.$visit(narrowed)
        }
    )*};
}

impl<'de, S: Source<'de>> de::Deserializer<'de> for Coerce<'de, S> {
    type Error = WireError;

    fn deserialize_any<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, WireError> {
        match self.take()? {
            Node::Str(s) | Node::DateTime(s) | Node::Base64(s) => visit_text(visitor, s),
            Node::Int(i) => visitor.visit_i64(i),
            Node::Bool(b) => visitor.visit_bool(b),
            Node::Double(d) => visitor.visit_f64(d),
            Node::Nil => visitor.visit_unit(),
            Node::Array(a) => self.source.visit_array(a, visitor),
            Node::Struct(s) => self.source.visit_struct(s, visitor),
        }
    }

    deserialize_int! {
        deserialize_i8 => visit_i8 as i8,
        deserialize_i16 => visit_i16 as i16,
        deserialize_i32 => visit_i32 as i32,
        deserialize_i64 => visit_i64 as i64,
        deserialize_u8 => visit_u8 as u8,
        deserialize_u16 => visit_u16 as u16,
        deserialize_u32 => visit_u32 as u32,
        deserialize_u64 => visit_u64 as u64,
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, WireError> {
        match self.take()? {
            Node::Double(d) => visitor.visit_f64(d),
            Node::Int(i) => visitor.visit_f64(i as f64),
            Node::Str(s) => match s.trim().parse() {
                Ok(d) => visitor.visit_f64(d),
                Err(_) => Err(WireError::Type(format!("expected a double, found {s:?}"))),
            },
            other => Err(mismatch("a double", &other)),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, WireError> {
        match self.take()? {
            Node::Bool(b) => visitor.visit_bool(b),
            Node::Str(s) if s == "true" || s == "false" => visitor.visit_bool(s == "true"),
            other => Err(mismatch("a boolean", &other)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, WireError> {
        match self.take()? {
            Node::Str(s) | Node::DateTime(s) | Node::Base64(s) => visit_text(visitor, s),
            Node::Int(i) => visitor.visit_string(i.to_string()),
            other => Err(mismatch("a string", &other)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, WireError> {
        match self.take()? {
            Node::Nil => visitor.visit_none(),
            other => {
                self.head = Some(other);
                visitor.visit_some(self)
            }
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, WireError> {
        match self.take()? {
            Node::Nil => visitor.visit_unit(),
            Node::Str(s) if s.is_empty() => visitor.visit_unit(),
            other => Err(mismatch("void", &other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, WireError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, WireError> {
        match self.take()? {
            Node::Array(a) => self.source.visit_array(a, visitor),
            other => Err(mismatch("an array", &other)),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, WireError> {
        match self.take()? {
            Node::Struct(s) => self.source.visit_struct(s, visitor),
            other => Err(mismatch("a struct", &other)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, WireError> {
        self.deserialize_map(visitor)
    }

    /// Enums are xapi's enum strings.
    fn deserialize_enum<V: Visitor<'de>>(
        mut self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, WireError> {
        match self.take()? {
            Node::Str(s) => visitor.visit_enum(de::value::CowStrDeserializer::new(s)),
            other => Err(mismatch("an enum string", &other)),
        }
    }

    /// Walks the value to its end, building nothing.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, WireError> {
        self.source.skip(self.head)?;
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        <W: Visitor<'de>>
        i128 u128 char bytes byte_buf unit_struct tuple tuple_struct identifier
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;

    use serde::Deserialize;
    use serde::de::DeserializeOwned;

    use crate::xapi::typed::from_value;
    use crate::xapi::wire::Value;

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    fn ok<T: DeserializeOwned + PartialEq + Debug>(value: Value, want: T) {
        assert_eq!(from_value::<T>(value.clone()), Ok(want), "{value:?}");
    }

    fn refused<T: DeserializeOwned + Debug>(value: Value, message: &str) {
        let got = from_value::<T>(value.clone());
        match got {
            Err(e) => assert!(e.to_string().contains(message), "{value:?}: {e}"),
            Ok(v) => panic!("{value:?} became {v:?}, wanted an error naming {message:?}"),
        }
    }

    #[derive(Debug, PartialEq, Deserialize)]
    enum Mode {
        #[serde(rename = "RW")]
        Rw,
    }

    /// Each rule once, and where it stops.
    #[test]
    fn the_rules() {
        ok::<i64>(s(" 137438953472 "), 137_438_953_472);
        ok::<i32>(Value::Int(-1), -1);
        refused::<u8>(Value::Int(300), "300 is out of range for u8");
        refused::<i64>(s("1.5"), "expected an int, found \"1.5\"");
        refused::<i64>(Value::Double(1.0), "expected an int, found double");
        ok::<f64>(Value::Int(2), 2.0);
        ok::<f64>(s(" 0.5 "), 0.5);
        refused::<f64>(Value::Bool(true), "expected a double, found boolean");
        ok::<bool>(s("true"), true);
        ok::<bool>(Value::Bool(false), false);
        refused::<bool>(s("True"), "expected a boolean, found string");
        refused::<bool>(Value::Int(1), "expected a boolean, found int");
        ok::<String>(Value::Int(7), "7".to_owned());
        ok::<String>(
            Value::DateTime("20250101T00:00:00Z".into()),
            "20250101T00:00:00Z".into(),
        );
        ok::<String>(Value::Base64("AAEC".into()), "AAEC".to_owned());
        refused::<String>(Value::Double(1.0), "expected a string, found double");
        ok::<Option<i64>>(Value::Nil, None);
        ok::<Option<i64>>(s("3"), Some(3));
        ok::<()>(s(""), ());
        ok::<()>(Value::Nil, ());
        refused::<()>(s("x"), "expected void, found string");
        ok::<Mode>(s("RW"), Mode::Rw);
        refused::<Mode>(Value::Int(1), "expected an enum string, found int");
        ok::<Vec<i64>>(Value::Array(vec![s("1"), Value::Int(2)]), vec![1, 2]);
        refused::<Vec<i64>>(s("1"), "expected an array, found string");
        refused::<std::collections::BTreeMap<String, i64>>(
            Value::Array(vec![]),
            "expected a struct, found array",
        );
    }
}
