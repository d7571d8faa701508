//! The pull parser both decoders walk: quick-xml over a [`Checked`] byte source, events in one
//! reusable buffer, and the small lexical rules (references, scalars, blank text) they share.

use std::io::{BufReader, Read};

use quick_xml::Reader;
use quick_xml::events::Event;

use super::{MAX_DEPTH, Value, WireError};
use crate::xapi::input::{Checked, Stop};

pub(super) enum Tag {
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

/// What ends a run of character data: the element's own end tag, or a child's start tag.
enum NextTag {
    End,
    Start(String),
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
pub(in crate::xapi) struct Parser<S: Read> {
    reader: Reader<BufReader<Checked<S>>>,
    buf: Vec<u8>,
    pub(in crate::xapi) depth: usize,
}

/// The block in which the parser reads its source.
const READ_BLOCK: usize = 64 * 1024;

impl<S: Read> Parser<S> {
    pub(in crate::xapi) fn new(source: S) -> Self {
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
    pub(in crate::xapi) fn value_limit(&self) -> usize {
        self.reader.get_ref().get_ref().limit()
    }

    /// An error for text that grew past [`Parser::value_limit`] across several events
    /// (references, CDATA sections).
    pub(in crate::xapi) fn too_long(&self) -> WireError {
        WireError::TooLong {
            position: self.position(),
            limit: self.value_limit(),
        }
    }

    pub(in crate::xapi) fn position(&self) -> u64 {
        self.reader.buffer_position()
    }

    pub(in crate::xapi) fn structure(&self, message: String) -> WireError {
        WireError::Structure {
            position: self.position(),
            message,
        }
    }

    /// The next event, borrowing the parser's buffer. Inlined: it runs once per tag, text
    /// and reference of a body.
    #[inline]
    pub(in crate::xapi) fn event(&mut self) -> Result<Event<'_>, WireError> {
        self.buf.clear();
        self.reader.get_mut().get_mut().mark();
        match self.reader.read_event_into(&mut self.buf) {
            Ok(event) => Ok(event),
            Err(e) => Err(read_error(&self.reader, e)),
        }
    }

    /// The next tag, skipping the prolog, comments and whitespace. Non-blank text between
    /// tags is structure the caller did not expect and is reported as [`Tag::Text`].
    pub(super) fn next_tag(&mut self) -> Result<Tag, WireError> {
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

    pub(in crate::xapi) fn next_start_name(&mut self) -> Result<String, WireError> {
        match self.next_tag()? {
            Tag::Start(name) => Ok(name),
            other => Err(self.structure(format!("expected a start tag, found {other}"))),
        }
    }

    pub(in crate::xapi) fn expect_start(&mut self, want: &str) -> Result<(), WireError> {
        match self.next_tag()? {
            Tag::Start(name) if name == want => Ok(()),
            other => Err(self.structure(format!("expected <{want}>, found {other}"))),
        }
    }

    pub(in crate::xapi) fn expect_end(&mut self, want: &str) -> Result<(), WireError> {
        match self.next_tag()? {
            Tag::End(name) if name == want => Ok(()),
            other => Err(self.structure(format!("expected </{want}>, found {other}"))),
        }
    }

    pub(in crate::xapi) fn expect_eof(&mut self) -> Result<(), WireError> {
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
    pub(super) fn text_until_end(&mut self, end: &str) -> Result<String, WireError> {
        let mut text = String::new();
        match self.text_until_tag(&mut text, end)? {
            NextTag::End => Ok(text),
            NextTag::Start(name) => {
                Err(self.structure(format!("unexpected <{name}> inside <{end}>")))
            }
        }
    }

    /// Adds the character data inside `<element>` (text, CDATA, resolved references; comments
    /// and processing instructions skipped) to `text` until the next tag: its own end tag, or
    /// a start tag, whose name is returned. Any other end, the end of the document or a
    /// declaration is an error, and so is text longer than a value may be.
    fn text_until_tag(&mut self, text: &mut String, element: &str) -> Result<NextTag, WireError> {
        loop {
            match self.event()? {
                Event::Text(t) => text.push_str(&t.xml10_content()),
                Event::CData(c) => text.push_str(&c.xml10_content()),
                Event::GeneralRef(r) => {
                    let c = reference_char(&r);
                    text.push(c.map_err(|m| self.bad_reference(m))?);
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::End(e) if e.name().as_ref() == element => return Ok(NextTag::End),
                Event::End(e) => {
                    let name = e.name().as_ref().to_owned();
                    return Err(self.structure(format!("expected </{element}>, found </{name}>")));
                }
                Event::Start(e) => return Ok(NextTag::Start(e.name().as_ref().to_owned())),
                Event::Eof => {
                    return Err(self.structure(format!("document ends inside <{element}>")));
                }
                Event::Decl(_) | Event::DocType(_) => {
                    return Err(self.structure(format!("declaration inside <{element}>")));
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
    pub(in crate::xapi) fn bad_reference(&self, message: String) -> WireError {
        WireError::Xml {
            position: self.position(),
            message,
        }
    }

    /// Expects `<value>` next and reads the value.
    pub(in crate::xapi) fn value_after_start_tag(&mut self) -> Result<Value, WireError> {
        self.expect_start("value")?;
        self.value_body()
    }

    /// Reads what follows `<value>` up to and including `</value>`: either a typed child
    /// element, or text (an untyped string, possibly empty).
    pub(in crate::xapi) fn value_body(&mut self) -> Result<Value, WireError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(WireError::TooDeep);
        }
        let mut text = String::new();
        let value = match self.text_until_tag(&mut text, "value")? {
            NextTag::End => Value::String(text),
            NextTag::Start(tag) => {
                if !is_blank(&text) {
                    return Err(self.structure("text mixed with a typed value".into()));
                }
                let value = self.typed(&tag)?;
                self.expect_end("value")?;
                value
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
pub(in crate::xapi) fn reference_char(r: &quick_xml::events::BytesRef<'_>) -> Result<char, String> {
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

pub(in crate::xapi) fn scalar(tag: &'static str, text: &str) -> WireError {
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
pub(in crate::xapi) fn is_blank(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------
