//! XML-RPC as xapi speaks it: the value model, a streaming decoder on quick-xml and an encoder
//! that writes exactly what xapi writes (reference: xapi-notes.md §1.2).
//!
//! The decoder is lenient exactly where xapi is: an untyped `<value>text</value>` is a string,
//! `<value/>` is the empty string, 64-bit ints arrive as digit strings, doubles may carry
//! exponents, struct member names are taken as written. It rejects malformed, truncated or
//! hostile input with a [`WireError`], never panics, and nests at most [`MAX_DEPTH`] values deep.
//!
//! The encoder is shared with the simulator: one line, no whitespace, strings as untyped
//! `<value>`, control characters other than TAB/LF/CR dropped, member names unescaped.
//!
//! [`decode_response`] builds a [`Value`] tree; [`super::stream::decode_response_into`] runs the
//! same `Parser` as a serde deserializer and decodes straight into typed records instead.

mod encode;
mod parser;

pub use encode::{encode_call, encode_failure, encode_success, encode_value};
use parser::Tag;
pub(super) use parser::{Parser, is_blank, reference_char, scalar};

/// Deepest value nesting accepted. Real answers nest about five levels (envelope, result map,
/// record, map field, value); anything near this limit is hostile.
pub const MAX_DEPTH: usize = 64;

/// One XML-RPC value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `<string>` or an untyped `<value>`; also how xapi sends 64-bit ints, refs and enums.
    String(String),
    /// `<int>`, `<i4>` or `<i8>`.
    Int(i64),
    /// `<boolean>`.
    Bool(bool),
    /// `<double>`.
    Double(f64),
    /// `<dateTime.iso8601>`, kept as written (`20250319T04:16:24Z`).
    DateTime(String),
    /// `<base64>`, kept as written.
    Base64(String),
    /// `<array><data>…</data></array>`.
    Array(Vec<Value>),
    /// `<struct>`; members in wire order (xapi writes `Status` first).
    Struct(Vec<(String, Value)>),
    /// `<nil/>`.
    Nil,
}

impl Value {
    /// A string value.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// The member `name` of a struct, if this is a struct that has it.
    pub fn member(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(members) => members.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A short name of the value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Int(_) => "int",
            Value::Bool(_) => "boolean",
            Value::Double(_) => "double",
            Value::DateTime(_) => "dateTime.iso8601",
            Value::Base64(_) => "base64",
            Value::Array(_) => "array",
            Value::Struct(_) => "struct",
            Value::Nil => "nil",
        }
    }
}

/// A decoded `<methodCall>`.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodCall {
    /// `CLASS.method`, `Async.CLASS.method`, …
    pub method: String,
    /// The parameters, session first for all but the `session.login*` family.
    pub params: Vec<Value>,
}

/// A decoded `<methodResponse>`: xapi's `Status` envelope, or a standard XML-RPC fault.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// `{Status: "Success", Value: v}`.
    Success(Value),
    /// `{Status: "Failure", ErrorDescription: [code, params…]}`.
    Failure(Vec<String>),
    /// A standard `<fault>` (xapi never sends one; other servers on the way might).
    Fault {
        /// `faultCode`.
        code: i64,
        /// `faultString`.
        message: String,
    },
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    /// The body is not UTF-8.
    #[error("body is not valid UTF-8 at byte {0}")]
    NotUtf8(usize),
    /// The XML itself is broken (unbalanced tags, bad entity, truncated…).
    #[error("malformed XML at byte {position}: {message}")]
    Xml {
        /// Byte offset where the reader stopped.
        position: u64,
        /// What quick-xml reported.
        message: String,
    },
    /// Well-formed XML that is not the XML-RPC shape expected here.
    #[error("unexpected XML-RPC structure at byte {position}: {message}")]
    Structure {
        /// Byte offset where the reader stopped.
        position: u64,
        /// What was expected and what was found.
        message: String,
    },
    /// A scalar whose text does not parse as its declared type.
    #[error("invalid <{tag}> value {text:?}")]
    Scalar {
        /// The type tag (`int`, `double`, `boolean`…).
        tag: &'static str,
        /// The offending text, truncated to 64 bytes.
        text: String,
    },
    /// Values nested deeper than [`MAX_DEPTH`].
    #[error("values nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// One value or token longer than the decoder accepts
    /// ([`MAX_VALUE_BYTES`](super::input::MAX_VALUE_BYTES)).
    #[error("a single value longer than {limit} bytes, at byte {position}")]
    TooLong {
        /// Byte offset where the reader stopped.
        position: u64,
        /// The limit.
        limit: usize,
    },
    /// The body is a standard XML-RPC `<fault>` (xapi never sends one; a proxy might).
    #[error("XML-RPC fault {code}: {message}")]
    Fault {
        /// `faultCode`.
        code: i64,
        /// `faultString`.
        message: String,
    },
    /// The byte source failed while the body was being read (the transport's error).
    #[error("reading the body failed: {0}")]
    Read(String),
    /// A decoded value does not have the shape or type the caller asked for.
    #[error("type mismatch: {0}")]
    Type(String),
}

/// Decodes a `<methodResponse>` body.
pub fn decode_response(body: &[u8]) -> Result<Response, WireError> {
    let mut p = Parser::new(body);
    p.expect_start("methodResponse")?;
    let response = match p.next_start_name()?.as_str() {
        "params" => {
            p.expect_start("param")?;
            let value = p.value_after_start_tag()?;
            p.expect_end("param")?;
            p.expect_end("params")?;
            envelope(value).map_err(|m| p.structure(m))?
        }
        "fault" => {
            let value = p.value_after_start_tag()?;
            p.expect_end("fault")?;
            let (code, message) = fault_parts(&value);
            Response::Fault { code, message }
        }
        other => return Err(p.structure(format!("expected <params> or <fault>, found <{other}>"))),
    };
    p.expect_end("methodResponse")?;
    p.expect_eof()?;
    Ok(response)
}

/// Decodes a `<methodCall>` body (the simulator's side of the wire).
pub fn decode_call(body: &[u8]) -> Result<MethodCall, WireError> {
    let mut p = Parser::new(body);
    p.expect_start("methodCall")?;
    p.expect_start("methodName")?;
    let method = p.text_until_end("methodName")?.trim().to_owned();
    if method.is_empty() {
        return Err(p.structure("empty <methodName>".into()));
    }
    p.expect_start("params")?;
    let mut params = Vec::new();
    loop {
        match p.next_tag()? {
            Tag::Start(name) if name == "param" => {
                params.push(p.value_after_start_tag()?);
                p.expect_end("param")?;
            }
            Tag::End(name) if name == "params" => break,
            other => {
                return Err(p.structure(format!("expected <param> or </params>, found {other}")));
            }
        }
    }
    p.expect_end("methodCall")?;
    p.expect_eof()?;
    Ok(MethodCall { method, params })
}

/// A `<fault>` value's `faultCode` and `faultString`.
pub(super) fn fault_parts(value: &Value) -> (i64, String) {
    let code = match value.member("faultCode") {
        Some(Value::Int(i)) => *i,
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    };
    let message = value
        .member("faultString")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    (code, message)
}

/// Splits xapi's `Status` struct into success or failure.
fn envelope(value: Value) -> Result<Response, String> {
    let Value::Struct(members) = value else {
        return Err(format!(
            "response is a {}, not a Status struct",
            value.kind()
        ));
    };
    let mut status = None;
    let mut result = None;
    let mut description = None;
    for (name, v) in members {
        match name.as_str() {
            "Status" => status = Some(v),
            "Value" => result = Some(v),
            "ErrorDescription" => description = Some(v),
            _ => {}
        }
    }
    match status.as_ref().and_then(Value::as_str) {
        Some("Success") => Ok(Response::Success(
            result.unwrap_or(Value::String(String::new())),
        )),
        _ => envelope_failure(status, description).map(Response::Failure),
    }
}

/// The description of an envelope whose `Status` is not `Success`, or why it has none.
pub(super) fn envelope_failure(
    status: Option<Value>,
    description: Option<Value>,
) -> Result<Vec<String>, String> {
    match status.as_ref().and_then(Value::as_str) {
        Some("Failure") => match description {
            Some(Value::Array(items)) if !items.is_empty() => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    Value::Int(i) => Ok(i.to_string()),
                    other => Err(format!("ErrorDescription holds a {}", other.kind())),
                })
                .collect(),
            _ => Err("Failure without a non-empty ErrorDescription array".into()),
        },
        Some(other) => Err(format!("unknown Status {other:?}")),
        None => Err("response struct has no Status string".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> Value {
        match decode_response(body.as_bytes()).unwrap() {
            Response::Success(v) => v,
            other => panic!("expected success, got {other:?}"),
        }
    }

    fn wrap(value_xml: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name>{value_xml}</member></struct></value></param></params></methodResponse>"
        )
    }

    #[test]
    fn untyped_and_empty_values_are_strings() {
        assert_eq!(ok(&wrap("<value>abc</value>")), Value::string("abc"));
        assert_eq!(ok(&wrap("<value/>")), Value::string(""));
        assert_eq!(ok(&wrap("<value></value>")), Value::string(""));
        assert_eq!(
            ok(&wrap("<value>  padded  </value>")),
            Value::string("  padded  ")
        );
    }

    #[test]
    fn typed_scalars_are_lenient_where_xapi_is() {
        assert_eq!(ok(&wrap("<value><i4> 12 </i4></value>")), Value::Int(12));
        assert_eq!(
            ok(&wrap("<value><i8>137438953472</i8></value>")),
            Value::Int(137438953472)
        );
        assert_eq!(
            ok(&wrap("<value><double>1e+20</double></value>")),
            Value::Double(1e20)
        );
        assert_eq!(
            ok(&wrap("<value><double>0</double></value>")),
            Value::Double(0.0)
        );
        assert_eq!(
            ok(&wrap("<value><boolean>1</boolean></value>")),
            Value::Bool(true)
        );
        assert_eq!(
            ok(&wrap("<value>\n  <boolean>0</boolean>\n</value>")),
            Value::Bool(false)
        );
    }

    #[test]
    fn entities_and_char_refs_are_resolved() {
        assert_eq!(
            ok(&wrap("<value>a&lt;b&amp;c&#x41;&#66;</value>")),
            Value::string("a<b&cAB")
        );
    }

    #[test]
    fn failure_parameters_come_back_as_strings() {
        let body = "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name><value><array><data><value>HOST_IS_SLAVE</value><value>192.0.2.10</value></data></array></value></member></struct></value></param></params></methodResponse>";
        assert_eq!(
            decode_response(body.as_bytes()).unwrap(),
            Response::Failure(vec!["HOST_IS_SLAVE".into(), "192.0.2.10".into()])
        );
    }

    #[test]
    fn encoder_output_decodes_to_the_same_value() {
        let value = Value::Struct(vec![
            ("name_label".into(), Value::string("a <b> & \"c\"")),
            ("memory".into(), Value::string("137438953472")),
            ("count".into(), Value::Int(3)),
            ("big".into(), Value::Int(1 << 40)),
            ("live".into(), Value::Bool(true)),
            ("ratio".into(), Value::Double(0.25)),
            ("when".into(), Value::DateTime("20250101T00:00:00Z".into())),
            ("empty".into(), Value::Array(vec![])),
            ("nil".into(), Value::Nil),
        ]);
        assert_eq!(ok(&encode_success(&value)), value);
    }

    #[test]
    fn encoder_drops_control_characters_like_xapi() {
        let body = encode_success(&Value::string("a\u{1}b\tc"));
        assert_eq!(ok(&body), Value::string("ab\tc"));
    }

    #[test]
    fn call_round_trip() {
        let params = vec![Value::string("root"), Value::string("pw")];
        let body = encode_call("session.login_with_password", &params);
        let call = decode_call(body.as_bytes()).unwrap();
        assert_eq!(call.method, "session.login_with_password");
        assert_eq!(call.params, params);
    }

    #[test]
    fn malformed_input_is_an_error() {
        for bad in [
            "",
            "<methodResponse>",
            "<methodResponse><params><param><value><struct></value></param></params></methodResponse>",
            "<methodResponse><params><param><value><i4>x</i4></value></param></params></methodResponse>",
            "<methodResponse><params><param><value>&bogus;</value></param></params></methodResponse>",
            "<methodResponse><params><param><value><struct><member><name>Status</name><value>Weird</value></member></struct></value></param></params></methodResponse>",
        ] {
            assert!(decode_response(bad.as_bytes()).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let depth = MAX_DEPTH + 1;
        let inner = "<value><array><data>".repeat(depth) + &"</data></array></value>".repeat(depth);
        assert_eq!(
            decode_response(wrap(&inner).as_bytes()),
            Err(WireError::TooDeep)
        );
    }
}
