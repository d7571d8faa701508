//! Streaming decoding of a `<methodResponse>` straight into typed values: a serde
//! [`Deserializer`](serde::Deserializer) over the same quick-xml pull parser as
//! [`wire::decode_response`], with no [`Value`] tree in between.
//!
//! A 5,000-VM `VM.get_all_records` or a full `event.from` dump is tens of megabytes; building
//! the whole tree first and converting it afterwards holds several times the body in memory.
//! Here each record is decoded field by field as the parser reaches it, and members the target
//! type does not know (most of a VM record's hundred fields) are walked and dropped without
//! being built.
//!
//! The decoder accepts exactly the bodies [`wire::decode_response`] accepts (same grammar,
//! same scalar checks, same [`MAX_DEPTH`](wire::MAX_DEPTH); skipped values are validated, not
//! just counted), and converts values by the rules the tree path uses too: both are a
//! [`Source`] under [`coerce`](super::coerce)'s one `Deserializer`. `deserialize_any` works, so
//! a `Value` field (`Event::snapshot`) is rebuilt for that subtree only, with datetimes and
//! base64 becoming strings exactly as through `from_value`.

use std::io::Read;

use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};

mod steps;

use steps::*;

use super::coerce::{Coerce, Node, Source};
use super::typed::from_value;
use super::wire::{self, Parser, Value, WireError};

/// Decodes a `<methodResponse>` body held in memory straight into `T`; see
/// [`decode_response_from`].
pub fn decode_response_into<T: DeserializeOwned>(
    body: &[u8],
) -> Result<Result<T, Vec<String>>, WireError> {
    decode_response_from(body)
}

/// Decodes a `<methodResponse>` straight into `T` as its bytes are read from `source` (an HTTP
/// body as it arrives): neither the body nor a [`Value`] tree of it is ever held whole.
///
/// * `Ok(Ok(t))`: `Status` is `Success` and the `Value` member decoded as `T` (a missing
///   `Value` decodes from the empty string, as a `void` result does).
/// * `Ok(Err(description))`: `Status` is `Failure`; the `ErrorDescription`, code first.
/// * `Err(WireError::Fault { .. })`: a standard XML-RPC `<fault>` (xapi never sends one).
/// * `Err(_)` otherwise: the body is not UTF-8, not well-formed XML, not the XML-RPC shape,
///   nests deeper than [`MAX_DEPTH`](wire::MAX_DEPTH), holds a value longer than
///   [`MAX_VALUE_BYTES`](super::input::MAX_VALUE_BYTES), does not fit `T`, or `source` failed.
///
/// The envelope's members are taken in any order, the last of a repeated one winning, as
/// [`wire::decode_response`] takes them. xapi writes `Status` first; then the `Value` streams
/// into `T`. The small members (`Status`, `ErrorDescription`) are read as trees.
///
/// The result agrees with the tree path ([`wire::decode_response`] then [`from_value`]):
/// equal when both succeed, an error when either fails (`tests/it/stream_equivalence.rs`
/// checks it on encoder output, hand-varied spellings, fixtures, mutated and random bodies).
/// Only which error can differ: streaming stops at the first problem it meets, so a type
/// mismatch early in a body that is also truncated later is reported as the mismatch, where
/// the tree path reports the truncation. Envelopes xapi never writes can differ in outcome:
/// a `Value` that does not fit `T` is an error here even when a second `Value` follows or the
/// `Status` that follows it says `Failure` (the tree path keeps the last `Value`, or ignores
/// it); a `Value` after a non-`Success` `Status` that a later `Status` turns into a success is
/// an error here (it was stepped over, not kept).
pub fn decode_response_from<T: DeserializeOwned, S: Read>(
    source: S,
) -> Result<Result<T, Vec<String>>, WireError> {
    let mut p = Parser::new(source);
    p.expect_start("methodResponse")?;
    match p.next_start_name()?.as_str() {
        "params" => {}
        "fault" => {
            let fault = p.value_after_start_tag()?;
            p.expect_end("fault")?;
            p.expect_end("methodResponse")?;
            p.expect_eof()?;
            let (code, message) = wire::fault_parts(&fault);
            return Err(WireError::Fault { code, message });
        }
        other => {
            return Err(p.structure(format!("expected <params> or <fault>, found <{other}>")));
        }
    }
    p.expect_start("param")?;
    p.expect_start("value")?;
    match open(&mut p, Keep::Text)? {
        Opened::Struct(()) => {}
        other => {
            return Err(p.structure(format!(
                "response is a {}, not a Status struct",
                other.kind()
            )));
        }
    }
    let mut status: Option<Value> = None;
    let mut result: Option<T> = None;
    let mut description: Option<Value> = None;
    let mut stepped_over_value = false;
    loop {
        match next_tag(&mut p)? {
            Tag::Start(Elem::Member) => {
                expect_start(&mut p, Elem::Name)?;
                let name = text_until_end(&mut p, "name", Keep::Text)?;
                expect_start(&mut p, Elem::Value)?;
                match name.as_str() {
                    "Status" => status = Some(p.value_body()?),
                    "ErrorDescription" => description = Some(p.value_body()?),
                    "Value" => match status.as_ref().map(Value::as_str) {
                        None | Some(Some("Success")) => {
                            result = Some(T::deserialize(value(&mut p))?);
                        }
                        Some(_) => {
                            stepped_over_value = true;
                            skip_value(&mut p)?;
                        }
                    },
                    _ => skip_value(&mut p)?,
                }
                expect_end(&mut p, Elem::Member)?;
            }
            Tag::End(Elem::Struct) => break,
            other => {
                return Err(p.structure(format!("expected <member> or </struct>, found {other}")));
            }
        }
    }
    close_value(&mut p)?;
    p.expect_end("param")?;
    p.expect_end("params")?;
    p.expect_end("methodResponse")?;
    p.expect_eof()?;
    match status.as_ref().and_then(Value::as_str) {
        Some("Success") if stepped_over_value => {
            Err(p.structure("a Value member came before the Status that accepts it".into()))
        }
        Some("Success") => match result {
            Some(value) => Ok(Ok(value)),
            None => from_value(Value::String(String::new())).map(Ok),
        },
        _ => match wire::envelope_failure(status, description) {
            Ok(description) => Ok(Err(description)),
            Err(message) => Err(p.structure(message)),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// The serde side
// ---------------------------------------------------------------------------------------------

/// The parser as a [`Source`]: one `<value>`, its start tag already read.
struct Stream<'p, S: Read> {
    p: &'p mut Parser<S>,
}

/// The deserializer of the next `<value>` the parser reaches.
fn value<'de, 'p, S: Read>(p: &'p mut Parser<S>) -> Coerce<'de, Stream<'p, S>> {
    Coerce::new(Stream { p })
}

impl<'a, S: Read> Source<'a> for Stream<'_, S> {
    type Array = ();
    type Struct = ();

    fn open(&mut self) -> Result<Node<'a, (), ()>, WireError> {
        open(self.p, Keep::Text)
    }

    fn visit_array<V: Visitor<'a>>(self, _: (), visitor: V) -> Result<V::Value, WireError> {
        let mut seq = Seq {
            p: self.p,
            data_closed: false,
        };
        let value = visitor.visit_seq(&mut seq)?;
        finish_array(seq.p, seq.data_closed).map(|()| value)
    }

    fn visit_struct<V: Visitor<'a>>(self, _: (), visitor: V) -> Result<V::Value, WireError> {
        let mut map = Map {
            p: self.p,
            state: MemberState::Between,
        };
        let value = visitor.visit_map(&mut map)?;
        finish_struct(map.p, map.state).map(|()| value)
    }

    /// Walks the rest of the value, checking but building nothing.
    fn skip(self, head: Option<Node<'a, (), ()>>) -> Result<(), WireError> {
        match head {
            None => skip_value(self.p),
            Some(Node::Array(())) => finish_array(self.p, false),
            Some(Node::Struct(())) => finish_struct(self.p, MemberState::Between),
            Some(_) => Ok(()),
        }
    }
}

/// The elements of an `<array>`, read as the visitor asks for them.
struct Seq<'p, S: Read> {
    p: &'p mut Parser<S>,
    data_closed: bool,
}

impl<'a, S: Read> de::SeqAccess<'a> for Seq<'_, S> {
    type Error = WireError;

    fn next_element_seed<E: DeserializeSeed<'a>>(
        &mut self,
        seed: E,
    ) -> Result<Option<E::Value>, WireError> {
        if self.data_closed {
            return Ok(None);
        }
        match next_tag(self.p)? {
            Tag::Start(Elem::Value) => seed.deserialize(value(self.p)).map(Some),
            Tag::End(Elem::Data) => {
                self.data_closed = true;
                Ok(None)
            }
            other => Err(self
                .p
                .structure(format!("expected <value> or </data>, found {other}"))),
        }
    }
}

/// The members of a `<struct>`, read as the visitor asks for them.
struct Map<'p, S: Read> {
    p: &'p mut Parser<S>,
    state: MemberState,
}

impl<'a, S: Read> de::MapAccess<'a> for Map<'_, S> {
    type Error = WireError;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, WireError> {
        match self.state {
            MemberState::Closed => return Ok(None),
            // The visitor skipped a value: step over it.
            MemberState::ValueNext => {
                skip_value(self.p)?;
                expect_end(self.p, Elem::Member)?;
                self.state = MemberState::Between;
            }
            MemberState::Between => {}
        }
        match next_tag(self.p)? {
            Tag::Start(Elem::Member) => {
                expect_start(self.p, Elem::Name)?;
                let name = text_until_end(self.p, "name", Keep::Text)?;
                expect_start(self.p, Elem::Value)?;
                self.state = MemberState::ValueNext;
                seed.deserialize(de::value::StringDeserializer::new(name))
                    .map(Some)
            }
            Tag::End(Elem::Struct) => {
                self.state = MemberState::Closed;
                Ok(None)
            }
            other => Err(self
                .p
                .structure(format!("expected <member> or </struct>, found {other}"))),
        }
    }

    fn next_value_seed<E: DeserializeSeed<'a>>(&mut self, seed: E) -> Result<E::Value, WireError> {
        if self.state != MemberState::ValueNext {
            return Err(WireError::Type(
                "struct value asked for before its name".into(),
            ));
        }
        let value = seed.deserialize(value(self.p))?;
        expect_end(self.p, Elem::Member)?;
        self.state = MemberState::Between;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::xapi::records::{EventBatch, Vm};
    use crate::xapi::wire::MAX_DEPTH;

    fn wrap(value_xml: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name>{value_xml}</member></struct></value></param></params></methodResponse>"
        )
    }

    fn ok<T: DeserializeOwned>(value_xml: &str) -> T {
        decode_response_into::<T>(wrap(value_xml).as_bytes())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn lenient_scalars() {
        assert_eq!(ok::<i64>("<value>137438953472</value>"), 137_438_953_472);
        assert_eq!(ok::<i64>("<value><i4> 12 </i4></value>"), 12);
        assert_eq!(ok::<f64>("<value><double>1e+20</double></value>"), 1e20);
        assert_eq!(ok::<f64>("<value><i4>2</i4></value>"), 2.0);
        assert_eq!(ok::<f64>("<value> 0.5 </value>"), 0.5);
        assert!(ok::<bool>("<value><boolean>1</boolean></value>"));
        assert!(!ok::<bool>("<value>false</value>"));
        assert_eq!(ok::<String>("<value><i8>7</i8></value>"), "7");
        assert_eq!(ok::<String>("<value/>"), "");
        assert_eq!(
            ok::<String>("<value>a&lt;b&#x41;<![CDATA[<c>]]></value>"),
            "a<bA<c>"
        );
        assert_eq!(
            ok::<String>(
                "<value><dateTime.iso8601> 20250101T00:00:00Z </dateTime.iso8601></value>"
            ),
            "20250101T00:00:00Z"
        );
        assert_eq!(ok::<Option<String>>("<value><nil/></value>"), None);
        ok::<()>("<value/>");
        assert_eq!(
            ok::<Value>("<value><array><data><value><nil/></value></data></array></value>"),
            Value::Array(vec![Value::Nil])
        );
    }

    #[test]
    fn unknown_members_are_skipped_but_still_checked() {
        let vm: Vm = ok(
            "<value><struct><member><name>uuid</name><value>u</value></member><member><name>future</name><value><array><data><value><struct><member><name>x</name><value><double>1</double></value></member></struct></value></data></array></value></member><member><name>domid</name><value>3</value></member></struct></value>",
        );
        assert_eq!((vm.uuid.as_str(), vm.domid), ("u", 3));
        let bad = wrap(
            "<value><struct><member><name>future</name><value><i4>x</i4></value></member></struct></value>",
        );
        assert!(decode_response_into::<Vm>(bad.as_bytes()).is_err());
    }

    #[test]
    fn envelope_variants() {
        let failure = wire::encode_failure("HOST_IS_SLAVE", &["192.0.2.10".into()]);
        assert_eq!(
            decode_response_into::<String>(failure.as_bytes()).unwrap(),
            Err(vec!["HOST_IS_SLAVE".into(), "192.0.2.10".into()])
        );
        let reversed = "<methodResponse><params><param><value><struct><member><name>Value</name><value><i4>5</i4></value></member><member><name>Status</name><value>Success</value></member></struct></value></param></params></methodResponse>";
        assert_eq!(decode_response_into::<i32>(reversed.as_bytes()), Ok(Ok(5)));
        let fault = "<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>4</int></value></member><member><name>faultString</name><value>Too many</value></member></struct></value></fault></methodResponse>";
        assert_eq!(
            decode_response_into::<String>(fault.as_bytes()),
            Err(WireError::Fault {
                code: 4,
                message: "Too many".into()
            })
        );
        let void = "<methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member></struct></value></param></params></methodResponse>";
        assert_eq!(decode_response_into::<()>(void.as_bytes()), Ok(Ok(())));
    }

    #[test]
    fn event_batch_snapshots_become_values() {
        let batch: EventBatch = ok(
            "<value><struct><member><name>events</name><value><array><data><value><struct><member><name>class</name><value>vm</value></member><member><name>snapshot</name><value><struct><member><name>when</name><value><dateTime.iso8601>20250101T00:00:00Z</dateTime.iso8601></value></member></struct></value></member></struct></value></data></array></value></member><member><name>valid_ref_counts</name><value><struct><member><name>vm</name><value><i4>1</i4></value></member></struct></value></member><member><name>token</name><value>t</value></member></struct></value>",
        );
        assert_eq!(batch.token, "t");
        assert_eq!(batch.valid_ref_counts, BTreeMap::from([("vm".into(), 1)]));
        assert_eq!(
            batch.events[0].snapshot,
            Some(Value::Struct(vec![(
                "when".into(),
                Value::string("20250101T00:00:00Z")
            )]))
        );
    }

    #[test]
    fn too_deep_is_refused() {
        let n = MAX_DEPTH + 1;
        let inner = "<value><array><data>".repeat(n) + &"</data></array></value>".repeat(n);
        assert_eq!(
            decode_response_into::<Value>(wrap(&inner).as_bytes()),
            Err(WireError::TooDeep)
        );
        assert_eq!(
            decode_response_into::<de::IgnoredAny>(wrap(&inner).as_bytes()),
            Err(WireError::TooDeep)
        );
    }
}
