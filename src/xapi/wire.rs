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

use std::fmt::Write as _;

use std::io::{BufReader, Read};

use quick_xml::Reader;
use quick_xml::events::Event;

use super::input::{Checked, Stop};

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

enum Tag {
    Start(String),
    End(String),
    Text,
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tag::Start(n) => write!(f, "<{n}>"),
            Tag::End(n) => write!(f, "</{n}>"),
            Tag::Text => f.write_str("text"),
        }
    }
}

/// A pull parser over one body, read through [`Checked`] from any byte source: a body in
/// memory or an HTTP body as it arrives. Empty elements are expanded (`<value/>` reads as
/// `<value></value>`), so only Start, End, text and references need handling.
///
/// Events borrow the parser's one reusable buffer, so the body is never held whole: memory is
/// the buffered reader's block, the largest single token (at most
/// [`MAX_VALUE_BYTES`](super::input::MAX_VALUE_BYTES)) and what the caller builds.
///
/// Shared with [`super::stream`], which walks the same events without building a tree; both
/// count `depth` the same way (one per `<value>` entered).
pub(super) struct Parser<S: Read> {
    reader: Reader<BufReader<Checked<S>>>,
    buf: Vec<u8>,
    pub(super) depth: usize,
}

/// The block in which the parser reads its source.
const READ_BLOCK: usize = 64 * 1024;

impl<S: Read> Parser<S> {
    pub(super) fn new(source: S) -> Self {
        // No separate UTF-8 pass: `Checked` validates every byte once, as it passes (test
        // `invalid_utf8_anywhere_is_an_error`).
        let mut reader =
            Reader::from_reader(BufReader::with_capacity(READ_BLOCK, Checked::new(source)));
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        // Every caller compares each end tag with the element it closes (test
        // `mismatched_end_tags_are_errors`), so quick-xml's own check is done twice: off.
        config.check_end_names = false;
        config.trim_text(false);
        Parser {
            reader,
            buf: Vec::new(),
            depth: 0,
        }
    }

    /// The longest text one value may have.
    pub(super) fn value_limit(&self) -> usize {
        self.reader.get_ref().get_ref().limit()
    }

    /// An error for text that grew past [`Parser::value_limit`] across several events
    /// (references, CDATA sections).
    pub(super) fn too_long(&self) -> WireError {
        WireError::TooLong {
            position: self.position(),
            limit: self.value_limit(),
        }
    }

    pub(super) fn position(&self) -> u64 {
        self.reader.buffer_position()
    }

    pub(super) fn structure(&self, message: String) -> WireError {
        WireError::Structure {
            position: self.position(),
            message,
        }
    }

    /// The next event, borrowing the parser's buffer. Inlined: it runs once per tag, text
    /// and reference of a body.
    #[inline]
    pub(super) fn event(&mut self) -> Result<Event<'_>, WireError> {
        self.buf.clear();
        self.reader.get_mut().get_mut().mark();
        match self.reader.read_event_into(&mut self.buf) {
            Ok(event) => Ok(event),
            Err(e) => Err(read_error(&self.reader, e)),
        }
    }

    /// The next tag, skipping the prolog, comments and whitespace. Non-blank text between
    /// tags is structure the caller did not expect and is reported as [`Tag::Text`].
    fn next_tag(&mut self) -> Result<Tag, WireError> {
        loop {
            match self.event()? {
                Event::Start(e) => return Ok(Tag::Start(e.name().as_ref().to_owned())),
                Event::End(e) => return Ok(Tag::End(e.name().as_ref().to_owned())),
                Event::Text(t) if is_blank(&t) => {}
                Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => return Ok(Tag::Text),
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
                Event::Empty(_) => unreachable_expanded(),
                Event::Eof => return Err(self.structure("unexpected end of document".into())),
            }
        }
    }

    pub(super) fn next_start_name(&mut self) -> Result<String, WireError> {
        match self.next_tag()? {
            Tag::Start(name) => Ok(name),
            other => Err(self.structure(format!("expected a start tag, found {other}"))),
        }
    }

    pub(super) fn expect_start(&mut self, want: &str) -> Result<(), WireError> {
        match self.next_tag()? {
            Tag::Start(name) if name == want => Ok(()),
            other => Err(self.structure(format!("expected <{want}>, found {other}"))),
        }
    }

    pub(super) fn expect_end(&mut self, want: &str) -> Result<(), WireError> {
        match self.next_tag()? {
            Tag::End(name) if name == want => Ok(()),
            other => Err(self.structure(format!("expected </{want}>, found {other}"))),
        }
    }

    pub(super) fn expect_eof(&mut self) -> Result<(), WireError> {
        loop {
            match self.event()? {
                Event::Eof => return Ok(()),
                Event::Text(t) if is_blank(&t) => {}
                Event::Comment(_) | Event::PI(_) => {}
                _ => return Err(self.structure("content after the document element".into())),
            }
        }
    }

    /// Reads character data up to `</end>`, resolving entity and character references.
    fn text_until_end(&mut self, end: &str) -> Result<String, WireError> {
        let mut text = String::new();
        loop {
            match self.event()? {
                Event::Text(t) => text.push_str(&t.xml10_content()),
                Event::CData(c) => text.push_str(&c.xml10_content()),
                Event::GeneralRef(r) => {
                    let c = reference_char(&r);
                    text.push(c.map_err(|m| self.bad_reference(m))?);
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::End(e) if e.name().as_ref() == end => return Ok(text),
                Event::End(e) => {
                    let name = e.name().as_ref().to_owned();
                    return Err(self.structure(format!("expected </{end}>, found </{name}>")));
                }
                Event::Start(e) => {
                    let name = e.name().as_ref().to_owned();
                    return Err(self.structure(format!("unexpected <{name}> inside <{end}>")));
                }
                Event::Eof => return Err(self.structure(format!("document ends inside <{end}>"))),
                Event::Decl(_) | Event::DocType(_) => {
                    return Err(self.structure(format!("declaration inside <{end}>")));
                }
                Event::Empty(_) => unreachable_expanded(),
            }
            if text.len() > self.value_limit() {
                return Err(self.too_long());
            }
        }
    }

    /// An unknown or invalid entity or character reference (`message` from
    /// [`reference_char`]).
    pub(super) fn bad_reference(&self, message: String) -> WireError {
        WireError::Xml {
            position: self.position(),
            message,
        }
    }

    /// Expects `<value>` next and reads the value.
    pub(super) fn value_after_start_tag(&mut self) -> Result<Value, WireError> {
        self.expect_start("value")?;
        self.value_body()
    }

    /// Reads what follows `<value>` up to and including `</value>`: either a typed child
    /// element, or text (an untyped string, possibly empty).
    pub(super) fn value_body(&mut self) -> Result<Value, WireError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(WireError::TooDeep);
        }
        let mut text = String::new();
        let value = loop {
            match self.event()? {
                Event::Text(t) => text.push_str(&t.xml10_content()),
                Event::CData(c) => text.push_str(&c.xml10_content()),
                Event::GeneralRef(r) => {
                    let c = reference_char(&r);
                    text.push(c.map_err(|m| self.bad_reference(m))?);
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::End(e) if e.name().as_ref() == "value" => {
                    break Value::String(text);
                }
                Event::Start(e) => {
                    if !is_blank(&text) {
                        return Err(self.structure("text mixed with a typed value".into()));
                    }
                    let tag = e.name().as_ref().to_owned();
                    let value = self.typed(&tag)?;
                    self.expect_end("value")?;
                    break value;
                }
                Event::End(e) => {
                    let name = e.name().as_ref().to_owned();
                    return Err(self.structure(format!("expected </value>, found </{name}>")));
                }
                Event::Eof => return Err(self.structure("document ends inside <value>".into())),
                Event::Decl(_) | Event::DocType(_) => {
                    return Err(self.structure("declaration inside <value>".into()));
                }
                Event::Empty(_) => unreachable_expanded(),
            }
            if text.len() > self.value_limit() {
                return Err(self.too_long());
            }
        };
        self.depth -= 1;
        Ok(value)
    }

    /// Reads a typed child of `<value>`, its start tag already consumed.
    fn typed(&mut self, tag: &str) -> Result<Value, WireError> {
        Ok(match tag {
            "string" => Value::String(self.text_until_end("string")?),
            "int" | "i4" | "i8" => {
                let text = self.text_until_end(tag)?;
                Value::Int(text.trim().parse().map_err(|_| scalar("int", &text))?)
            }
            "boolean" => {
                let text = self.text_until_end("boolean")?;
                Value::Bool(match text.trim() {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(scalar("boolean", &text)),
                })
            }
            "double" => {
                let text = self.text_until_end("double")?;
                Value::Double(text.trim().parse().map_err(|_| scalar("double", &text))?)
            }
            "dateTime.iso8601" => Value::DateTime(self.text_until_end(tag)?.trim().to_owned()),
            "base64" => Value::Base64(self.text_until_end("base64")?.trim().to_owned()),
            "nil" => {
                self.expect_end("nil")?;
                Value::Nil
            }
            "array" => {
                self.expect_start("data")?;
                let mut items = Vec::new();
                loop {
                    match self.next_tag()? {
                        Tag::Start(name) if name == "value" => items.push(self.value_body()?),
                        Tag::End(name) if name == "data" => break,
                        other => {
                            return Err(self
                                .structure(format!("expected <value> or </data>, found {other}")));
                        }
                    }
                }
                self.expect_end("array")?;
                Value::Array(items)
            }
            "struct" => {
                let mut members = Vec::new();
                loop {
                    match self.next_tag()? {
                        Tag::Start(name) if name == "member" => {
                            self.expect_start("name")?;
                            let name = self.text_until_end("name")?;
                            let value = self.value_after_start_tag()?;
                            self.expect_end("member")?;
                            members.push((name, value));
                        }
                        Tag::End(name) if name == "struct" => break,
                        other => {
                            return Err(self.structure(format!(
                                "expected <member> or </struct>, found {other}"
                            )));
                        }
                    }
                }
                Value::Struct(members)
            }
            other => return Err(self.structure(format!("unknown value type <{other}>"))),
        })
    }
}

/// The character an entity or character reference stands for: the five predefined entities
/// and `&#N;` / `&#xN;` only.
pub(super) fn reference_char(r: &quick_xml::events::BytesRef<'_>) -> Result<char, String> {
    let bad = || format!("unknown or invalid reference &{};", &**r);
    if r.is_char_ref() {
        return r.resolve_char_ref().map_err(|_| bad())?.ok_or_else(bad);
    }
    Ok(match &**r {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        "apos" => '\'',
        _ => return Err(bad()),
    })
}

#[cold]
fn read_error<S: Read>(reader: &Reader<BufReader<Checked<S>>>, e: quick_xml::Error) -> WireError {
    match (reader.get_ref().get_ref().stop(), e) {
        (Some(Stop::NotUtf8(at)), _) => WireError::NotUtf8(*at as usize),
        (Some(Stop::TooLong(_)), _) => WireError::TooLong {
            position: reader.buffer_position(),
            limit: reader.get_ref().get_ref().limit(),
        },
        (Some(Stop::Source(message)), _) => WireError::Read(message.clone()),
        // `Checked` lets only UTF-8 through; should quick-xml still object, say where.
        (None, quick_xml::Error::Encoding(_)) => {
            WireError::NotUtf8(reader.error_position() as usize)
        }
        (None, e) => WireError::Xml {
            position: reader.error_position(),
            message: e.to_string(),
        },
    }
}

pub(super) fn scalar(tag: &'static str, text: &str) -> WireError {
    let mut text = text.to_owned();
    if text.len() > 64 {
        let mut cut = 64;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    WireError::Scalar { tag, text }
}

/// `expand_empty_elements` is set on every reader, so quick-xml never yields `Event::Empty`.
fn unreachable_expanded() -> ! {
    unreachable!("quick-xml yields no Empty events when expand_empty_elements is set")
}

/// XML whitespace only (the formatting between elements).
pub(super) fn is_blank(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// Encodes a `<methodCall>`; strings are sent untyped, as xapi's own clients do.
pub fn encode_call(method: &str, params: &[Value]) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("<?xml version=\"1.0\"?><methodCall><methodName>");
    escape_into(&mut out, method);
    out.push_str("</methodName><params>");
    for p in params {
        out.push_str("<param>");
        encode_value(&mut out, p);
        out.push_str("</param>");
    }
    out.push_str("</params></methodCall>");
    out
}

/// Encodes a success answer exactly as xapi does.
pub fn encode_success(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(RESPONSE_HEAD);
    out.push_str("<struct><member><name>Status</name><value>Success</value></member><member><name>Value</name>");
    encode_value(&mut out, value);
    out.push_str("</member></struct>");
    out.push_str(RESPONSE_TAIL);
    out
}

/// Encodes a failure answer exactly as xapi does: every element of `ErrorDescription` a string.
pub fn encode_failure(code: &str, params: &[String]) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(RESPONSE_HEAD);
    out.push_str("<struct><member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name><value><array><data>");
    for item in std::iter::once(code).chain(params.iter().map(String::as_str)) {
        out.push_str("<value>");
        escape_into(&mut out, item);
        out.push_str("</value>");
    }
    out.push_str("</data></array></value></member></struct>");
    out.push_str(RESPONSE_TAIL);
    out
}

const RESPONSE_HEAD: &str = "<?xml version=\"1.0\"?><methodResponse><params><param><value>";
const RESPONSE_TAIL: &str = "</value></param></params></methodResponse>";

/// Appends `<value>…</value>` for `value`, as xapi's encoder writes it.
pub fn encode_value(out: &mut String, value: &Value) {
    out.push_str("<value>");
    match value {
        Value::String(s) => escape_into(out, s),
        Value::Int(i) if i32::try_from(*i).is_ok() => {
            let _ = write!(out, "<i4>{i}</i4>");
        }
        Value::Int(i) => {
            let _ = write!(out, "<i8>{i}</i8>");
        }
        Value::Bool(b) => out.push_str(if *b {
            "<boolean>1</boolean>"
        } else {
            "<boolean>0</boolean>"
        }),
        Value::Double(d) => {
            out.push_str("<double>");
            write_double(out, *d);
            out.push_str("</double>");
        }
        Value::DateTime(s) => {
            out.push_str("<dateTime.iso8601>");
            escape_into(out, s);
            out.push_str("</dateTime.iso8601>");
        }
        Value::Base64(s) => {
            out.push_str("<base64>");
            escape_into(out, s);
            out.push_str("</base64>");
        }
        Value::Array(items) => {
            out.push_str("<array><data>");
            for item in items {
                encode_value(out, item);
            }
            out.push_str("</data></array>");
        }
        Value::Struct(members) => {
            out.push_str("<struct>");
            for (name, v) in members {
                // xapi writes member names unescaped (xapi-notes.md §1.2); so does this encoder.
                out.push_str("<member><name>");
                out.push_str(name);
                out.push_str("</name>");
                encode_value(out, v);
                out.push_str("</member>");
            }
            out.push_str("</struct>");
        }
        Value::Nil => out.push_str("<nil/>"),
    }
    out.push_str("</value>");
}

/// C's `%.16g`-like rendering: integral values without a fraction, others shortest round-trip.
fn write_double(out: &mut String, d: f64) {
    if d.is_nan() {
        out.push_str("nan");
        return;
    }
    if d.is_infinite() {
        out.push_str(if d > 0.0 { "inf" } else { "-inf" });
        return;
    }
    // C's %.16g: 16 significant digits; fixed notation when the exponent is in [-4, 16),
    // else exponential with a signed, at least two-digit exponent; trailing zeros removed.
    let scientific = format!("{d:.15e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..16).contains(&exponent) {
        let fixed = format!("{d:.*}", (15 - exponent) as usize);
        out.push_str(trim_fraction(&fixed));
    } else {
        out.push_str(trim_fraction(mantissa));
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exponent.abs());
    }
}

/// Drops trailing zeros of a fraction, and the point if nothing is left after it.
fn trim_fraction(number: &str) -> &str {
    if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    }
}

/// Escapes `< > & "` and drops control characters other than TAB, LF and CR, as xapi does.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
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
    fn doubles_are_written_like_printf_16g() {
        for (d, want) in [
            (0.0, "0"),
            (1e20, "1e+20"),
            (-2.5e-7, "-2.5e-07"),
            (0.5, "0.5"),
            (0.1, "0.1"),
            (123456789.125, "123456789.125"),
            (30.0, "30"),
            (1e15, "1000000000000000"),
            (1e16, "1e+16"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
        ] {
            let mut out = String::new();
            write_double(&mut out, d);
            assert_eq!(out, want, "{d}");
        }
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
