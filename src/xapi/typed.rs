//! Conversions between wire [`Value`]s and Rust types through serde.
//!
//! Decoding ([`from_value`]) follows the conversion rules of [`coerce`](super::coerce), which the
//! streaming decoder shares: xapi's own unmarshaller's leniency (xapi-notes.md §1.2). Records derive `Deserialize` with `#[serde(default)]`, so unknown fields are ignored
//! and missing ones defaulted.
//!
//! Encoding ([`to_value`]) writes what xapi writes: `i64` as an untyped digit string, `i32` as
//! `<i4>` (only `valid_ref_counts` uses it), `None` fields omitted, [`DateTime`] as
//! `<dateTime.iso8601>`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};

use super::coerce::{Coerce, Node, Source};
use super::wire::{Value, WireError};

/// A `datetime` field: `YYYYMMDDTHH:MM:SSZ` as xapi writes it (xapi-notes.md §1.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime(pub String);

/// Newtype-struct name by which the value serializer recognises a [`DateTime`].
const DATETIME_MARKER: &str = "$xenguard::DateTime";

impl Serialize for DateTime {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(DATETIME_MARKER, &self.0)
    }
}

impl<'de> de::Deserialize<'de> for DateTime {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(DateTime)
    }
}

impl DateTime {
    /// The Unix epoch, xapi's "never".
    pub fn epoch() -> DateTime {
        DateTime("19700101T00:00:00Z".into())
    }

    /// Formats seconds since the Unix epoch (UTC).
    pub fn from_unix(secs: i64) -> DateTime {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        DateTime(format!(
            "{y:04}{m:02}{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        ))
    }
}

impl DateTime {
    /// Seconds since the Unix epoch (UTC), if it reads `YYYYMMDDTHH:MM:SSZ` (the `Z` and the
    /// dashes and colons of the extended form optional, as xapi's own parser allows).
    pub fn to_unix(&self) -> Option<i64> {
        let digits: String = self.0.chars().filter(char::is_ascii_digit).collect();
        let compact = self.0.trim().trim_end_matches('Z');
        if digits.len() != 14 || compact.get(8..9)? != "T" && compact.get(10..11)? != "T" {
            return None;
        }
        let number = |range: std::ops::Range<usize>| digits.get(range)?.parse::<i64>().ok();
        let (y, m, d) = (number(0..4)?, number(4..6)?, number(6..8)?);
        let (hh, mm, ss) = (number(8..10)?, number(10..12)?, number(12..14)?);
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
            return None;
        }
        Some(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss)
    }
}

/// Day count since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl Serialize for Value {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use ser::{SerializeMap, SerializeSeq};
        match self {
            Value::String(v) | Value::Base64(v) => s.serialize_str(v),
            Value::Int(i) => match i32::try_from(*i) {
                Ok(small) => s.serialize_i32(small),
                Err(_) => s.serialize_i64(*i),
            },
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Double(d) => s.serialize_f64(*d),
            Value::DateTime(v) => s.serialize_newtype_struct(DATETIME_MARKER, v),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Struct(members) => {
                let mut map = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::Nil => s.serialize_none(),
        }
    }
}

impl<'de> de::Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnyValue)
    }
}

/// Rebuilds a [`Value`] from whatever a deserializer holds.
struct AnyValue;

impl<'de> Visitor<'de> for AnyValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an XML-RPC value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v).map(Value::Int).map_err(E::custom)
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Double(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Vec::new();
        while let Some((k, v)) = map.next_entry()? {
            members.push((k, v));
        }
        Ok(Value::Struct(members))
    }
}

/// Converts a decoded value into `T`.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, WireError> {
    T::deserialize(Coerce::new(value))
}

/// Converts `T` into a wire value.
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, WireError> {
    value.serialize(ValueSerializer)
}

impl de::Error for WireError {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        WireError::Type(msg.to_string())
    }
}

impl ser::Error for WireError {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        WireError::Type(msg.to_string())
    }
}

/// A decoded tree as a [`Source`]: its values are opened by taking them apart.
impl<'de> Source<'de> for Value {
    type Array = Vec<Value>;
    type Struct = Vec<(String, Value)>;

    fn open(&mut self) -> Result<Node<'de, Vec<Value>, Vec<(String, Value)>>, WireError> {
        Ok(match std::mem::replace(self, Value::Nil) {
            Value::String(s) => Node::Str(Cow::Owned(s)),
            Value::Int(i) => Node::Int(i),
            Value::Bool(b) => Node::Bool(b),
            Value::Double(d) => Node::Double(d),
            Value::DateTime(s) => Node::DateTime(Cow::Owned(s)),
            Value::Base64(s) => Node::Base64(Cow::Owned(s)),
            Value::Nil => Node::Nil,
            Value::Array(items) => Node::Array(items),
            Value::Struct(members) => Node::Struct(members),
        })
    }

    fn visit_array<V: Visitor<'de>>(
        self,
        items: Vec<Value>,
        visitor: V,
    ) -> Result<V::Value, WireError> {
        visitor.visit_seq(de::value::SeqDeserializer::new(items.into_iter()))
    }

    fn visit_struct<V: Visitor<'de>>(
        self,
        members: Vec<(String, Value)>,
        visitor: V,
    ) -> Result<V::Value, WireError> {
        visitor.visit_map(de::value::MapDeserializer::new(members.into_iter()))
    }

    fn skip(
        self,
        _head: Option<Node<'de, Vec<Value>, Vec<(String, Value)>>>,
    ) -> Result<(), WireError> {
        Ok(())
    }
}

impl<'de> IntoDeserializer<'de, WireError> for Value {
    type Deserializer = Coerce<'de, Value>;
    fn into_deserializer(self) -> Coerce<'de, Value> {
        Coerce::new(self)
    }
}

/// Serializes Rust values into wire [`Value`]s the way xapi encodes them.
struct ValueSerializer;

/// Collects array elements.
struct SeqCollector(Vec<Value>);

/// Collects struct members; a `None` field is omitted, as ppx_deriving_rpc omits it.
struct StructCollector {
    members: Vec<(String, Value)>,
    pending_key: Option<String>,
}

/// Recognises the serialization of an absent optional field, so it can be left out.
fn is_absent(v: &Value) -> bool {
    matches!(v, Value::Nil)
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = WireError;
    type SerializeSeq = SeqCollector;
    type SerializeTuple = SeqCollector;
    type SerializeTupleStruct = SeqCollector;
    type SerializeTupleVariant = ser::Impossible<Value, WireError>;
    type SerializeMap = StructCollector;
    type SerializeStruct = StructCollector;
    type SerializeStructVariant = ser::Impossible<Value, WireError>;

    fn serialize_bool(self, v: bool) -> Result<Value, WireError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, WireError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, WireError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, WireError> {
        Ok(Value::Int(v.into()))
    }
    /// XAPI's `int` is 64-bit and travels as an untyped digit string (xapi-notes.md §1.2).
    fn serialize_i64(self, v: i64) -> Result<Value, WireError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_u8(self, v: u8) -> Result<Value, WireError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, WireError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, WireError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, WireError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_f32(self, v: f32) -> Result<Value, WireError> {
        Ok(Value::Double(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, WireError> {
        Ok(Value::Double(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, WireError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, WireError> {
        Ok(Value::String(v.to_owned()))
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<Value, WireError> {
        Err(WireError::Type("raw bytes have no XAPI encoding".into()))
    }
    fn serialize_none(self) -> Result<Value, WireError> {
        Ok(Value::Nil)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, WireError> {
        value.serialize(self)
    }
    /// `void` results are the empty string (xapi-notes.md §1.2).
    fn serialize_unit(self) -> Result<Value, WireError> {
        Ok(Value::String(String::new()))
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, WireError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, WireError> {
        Ok(Value::String(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Value, WireError> {
        match value.serialize(self)? {
            Value::String(s) if name == DATETIME_MARKER => Ok(Value::DateTime(s)),
            other => Ok(other),
        }
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<Value, WireError> {
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqCollector, WireError> {
        Ok(SeqCollector(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqCollector, WireError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqCollector, WireError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, WireError> {
        Err(WireError::Type(format!(
            "{name}: tuple variants have no XAPI encoding"
        )))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<StructCollector, WireError> {
        Ok(StructCollector {
            members: Vec::with_capacity(len.unwrap_or(0)),
            pending_key: None,
        })
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<StructCollector, WireError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, WireError> {
        Err(WireError::Type(format!(
            "{name}: struct variants have no XAPI encoding"
        )))
    }
}

impl ser::SerializeSeq for SeqCollector {
    type Ok = Value;
    type Error = WireError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WireError> {
        self.0.push(value.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value, WireError> {
        Ok(Value::Array(self.0))
    }
}

impl ser::SerializeTuple for SeqCollector {
    type Ok = Value;
    type Error = WireError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WireError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, WireError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for SeqCollector {
    type Ok = Value;
    type Error = WireError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WireError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, WireError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeMap for StructCollector {
    type Ok = Value;
    type Error = WireError;
    /// Map keys are stringified, refs and ints included (xapi-notes.md §1.2).
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), WireError> {
        self.pending_key = Some(match key.serialize(ValueSerializer)? {
            Value::String(s) => s,
            Value::Int(i) => i.to_string(),
            other => {
                return Err(WireError::Type(format!(
                    "expected a string map key, found {}",
                    other.kind()
                )));
            }
        });
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WireError> {
        let key = self
            .pending_key
            .take()
            .ok_or_else(|| WireError::Type("map value without a key".into()))?;
        self.members.push((key, value.serialize(ValueSerializer)?));
        Ok(())
    }
    fn end(self) -> Result<Value, WireError> {
        Ok(Value::Struct(self.members))
    }
}

impl ser::SerializeStruct for StructCollector {
    type Ok = Value;
    type Error = WireError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), WireError> {
        let value = value.serialize(ValueSerializer)?;
        if !is_absent(&value) {
            self.members.push((key.to_owned(), value));
        }
        Ok(())
    }
    fn end(self) -> Result<Value, WireError> {
        Ok(Value::Struct(self.members))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    struct Sample {
        memory_total: i64,
        live: bool,
        ratio: f64,
        name_label: String,
        tags: Vec<String>,
        other_config: BTreeMap<String, String>,
        last_updated: DateTime,
        note: Option<String>,
    }

    #[test]
    fn ints_arrive_as_strings_and_unknown_fields_are_ignored() {
        let value = Value::Struct(vec![
            ("memory_total".into(), Value::string("137438953472")),
            ("live".into(), Value::Bool(true)),
            ("ratio".into(), Value::Int(1)),
            ("name_label".into(), Value::string("h1")),
            ("tags".into(), Value::Array(vec![Value::string("a")])),
            (
                "other_config".into(),
                Value::Struct(vec![("k".into(), Value::string("v"))]),
            ),
            (
                "last_updated".into(),
                Value::DateTime("20240611T08:15:02Z".into()),
            ),
            ("field_from_a_newer_xapi".into(), Value::Struct(vec![])),
        ]);
        let sample: Sample = from_value(value).unwrap();
        assert_eq!(sample.memory_total, 137_438_953_472);
        assert!(sample.live);
        assert_eq!(sample.ratio, 1.0);
        assert_eq!(sample.other_config["k"], "v");
        assert_eq!(sample.last_updated.0, "20240611T08:15:02Z");
        assert_eq!(sample.note, None);
    }

    #[test]
    fn missing_fields_take_defaults() {
        let sample: Sample = from_value(Value::Struct(vec![])).unwrap();
        assert_eq!(sample, Sample::default());
    }

    #[test]
    fn wrong_types_are_errors_not_panics() {
        let value = Value::Struct(vec![("live".into(), Value::string("yes"))]);
        assert!(from_value::<Sample>(value).is_err());
        let value = Value::Struct(vec![("memory_total".into(), Value::string("lots"))]);
        assert!(from_value::<Sample>(value).is_err());
    }

    #[test]
    fn encoding_matches_xapi() {
        let sample = Sample {
            memory_total: 42,
            live: true,
            ..Sample::default()
        };
        let value = to_value(&sample).unwrap();
        assert_eq!(value.member("memory_total"), Some(&Value::string("42")));
        assert_eq!(value.member("live"), Some(&Value::Bool(true)));
        assert_eq!(
            value.member("last_updated"),
            Some(&Value::DateTime(String::new()))
        );
        assert_eq!(value.member("note"), None);
        assert_eq!(from_value::<Sample>(value).unwrap(), sample);
    }

    #[test]
    fn datetime_from_unix() {
        assert_eq!(DateTime::from_unix(0), DateTime::epoch());
        assert_eq!(DateTime::from_unix(1_718_093_702).0, "20240611T08:15:02Z");
    }

    #[test]
    fn datetime_to_unix() {
        for secs in [0, 59, 86_399, 951_782_400, 1_718_093_702, 4_102_444_800] {
            assert_eq!(DateTime::from_unix(secs).to_unix(), Some(secs), "{secs}");
        }
        let read = |s: &str| DateTime(s.into()).to_unix();
        assert_eq!(read("2024-06-11T08:15:02Z"), Some(1_718_093_702));
        assert_eq!(read("20240611T08:15:02"), Some(1_718_093_702));
        assert_eq!(read(""), None);
        assert_eq!(read("20241311T08:15:02Z"), None);
        assert_eq!(read("2024061108:15:02Z"), None);
    }
}
