//! Parser steps of the streaming decoder that allocate nothing on the way: element names told
//! apart without allocating, and values walked and validated without being built. Only text
//! the caller keeps is copied out of the parser's buffer.

use std::borrow::Cow;
use std::io::Read;

use quick_xml::events::{BytesStart, Event as Xml};

use super::super::coerce::Node;
use super::super::wire::{MAX_DEPTH, Parser, WireError, is_blank, reference_char, scalar};

/// The element names the decoder steps over, told apart without allocating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Elem {
    Value,
    Data,
    Array,
    Struct,
    Member,
    Name,
    Nil,
    /// Anything else (only ever reported in an error).
    Other(String),
}

impl Elem {
    fn of(local: &str) -> Elem {
        match local {
            "value" => Elem::Value,
            "data" => Elem::Data,
            "array" => Elem::Array,
            "struct" => Elem::Struct,
            "member" => Elem::Member,
            "name" => Elem::Name,
            "nil" => Elem::Nil,
            other => Elem::Other(other.to_owned()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Elem::Value => "value",
            Elem::Data => "data",
            Elem::Array => "array",
            Elem::Struct => "struct",
            Elem::Member => "member",
            Elem::Name => "name",
            Elem::Nil => "nil",
            Elem::Other(name) => name,
        }
    }
}

/// A structural step, as `wire`'s `next_tag` sees it.
pub(super) enum Tag {
    Start(Elem),
    End(Elem),
    Text,
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tag::Start(n) => write!(f, "<{}>", n.as_str()),
            Tag::End(n) => write!(f, "</{}>", n.as_str()),
            Tag::Text => f.write_str("text"),
        }
    }
}

/// `expand_empty_elements` is set on the reader, so this never happens; an error, not a panic.
pub(super) fn empty_element<S: Read>(p: &Parser<S>) -> WireError {
    p.structure("unexpected empty element".into())
}

pub(super) fn local(e: &BytesStart<'_>) -> String {
    e.name().as_ref().to_owned()
}

/// The next tag, skipping the prolog, comments and whitespace (as `wire`'s `next_tag`).
pub(super) fn next_tag<S: Read>(p: &mut Parser<S>) -> Result<Tag, WireError> {
    loop {
        match p.event()? {
            Xml::Start(e) => return Ok(Tag::Start(Elem::of(e.name().as_ref()))),
            Xml::End(e) => return Ok(Tag::End(Elem::of(e.name().as_ref()))),
            Xml::Text(t) if is_blank(&t) => {}
            Xml::Text(_) | Xml::CData(_) | Xml::GeneralRef(_) => return Ok(Tag::Text),
            Xml::Decl(_) | Xml::Comment(_) | Xml::PI(_) | Xml::DocType(_) => {}
            Xml::Empty(_) => return Err(empty_element(p)),
            Xml::Eof => return Err(p.structure("unexpected end of document".into())),
        }
    }
}

pub(super) fn expect_start<S: Read>(p: &mut Parser<S>, want: Elem) -> Result<(), WireError> {
    match next_tag(p)? {
        Tag::Start(name) if name == want => Ok(()),
        other => Err(p.structure(format!("expected <{}>, found {other}", want.as_str()))),
    }
}

pub(super) fn expect_end<S: Read>(p: &mut Parser<S>, want: Elem) -> Result<(), WireError> {
    match next_tag(p)? {
        Tag::End(name) if name == want => Ok(()),
        other => Err(p.structure(format!("expected </{}>, found {other}", want.as_str()))),
    }
}

/// Whether character data is collected or only checked (references must still resolve).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Keep {
    Text,
    Nothing,
}

/// Reads character data up to `</end>` as `wire`'s `text_until_end` does; with
/// [`Keep::Nothing`] it checks references and returns the empty string.
pub(super) fn text_until_end<S: Read>(
    p: &mut Parser<S>,
    end: &str,
    keep: Keep,
) -> Result<String, WireError> {
    let mut text = String::new();
    loop {
        match p.event()? {
            Xml::Text(t) if keep == Keep::Text => text.push_str(&t.xml10_content()),
            Xml::CData(c) if keep == Keep::Text => text.push_str(&c.xml10_content()),
            Xml::Text(_) | Xml::CData(_) | Xml::Comment(_) | Xml::PI(_) => {}
            Xml::GeneralRef(r) => {
                let c = reference_char(&r).map_err(|m| p.bad_reference(m))?;
                if keep == Keep::Text {
                    text.push(c);
                }
            }
            Xml::End(e) if e.name().as_ref() == end => return Ok(text),
            Xml::End(e) => {
                let name = e.name().as_ref().to_owned();
                return Err(p.structure(format!("expected </{end}>, found </{name}>")));
            }
            Xml::Start(e) => {
                let name = local(&e);
                return Err(p.structure(format!("unexpected <{name}> inside <{end}>")));
            }
            Xml::Eof => return Err(p.structure(format!("document ends inside <{end}>"))),
            Xml::Decl(_) | Xml::DocType(_) => {
                return Err(p.structure(format!("declaration inside <{end}>")));
            }
            Xml::Empty(_) => return Err(empty_element(p)),
        }
        if text.len() > p.value_limit() {
            return Err(p.too_long());
        }
    }
}

/// The content of a `<value>` once its opening has been read: a scalar (read in full, the
/// closing `</value>` included), or an array (after `<array><data>`) or struct (after
/// `<struct>`) whose elements are still to come.
pub(super) type Opened = Node<'static, (), ()>;

/// The typed children of `<value>`.
#[derive(Clone, Copy)]
pub(super) enum Typed {
    String,
    Int(&'static str),
    Boolean,
    Double,
    DateTime,
    Base64,
    Nil,
    Array,
    Struct,
}

pub(super) fn trimmed(text: String) -> Cow<'static, str> {
    if text.trim().len() == text.len() {
        Cow::Owned(text)
    } else {
        Cow::Owned(text.trim().to_owned())
    }
}

/// Reads what follows `<value>` up to the start of its content, as `wire`'s `value_body` does;
/// counts one level of depth. With [`Keep::Nothing`] string contents are checked, not kept.
pub(super) fn open<S: Read>(p: &mut Parser<S>, keep: Keep) -> Result<Opened, WireError> {
    p.depth += 1;
    if p.depth > MAX_DEPTH {
        return Err(WireError::TooDeep);
    }
    let mut text = String::new();
    let mut blank = true;
    let typed = loop {
        match p.event()? {
            Xml::Text(t) => {
                blank &= is_blank(&t);
                if keep == Keep::Text {
                    text.push_str(&t.xml10_content());
                }
            }
            Xml::CData(c) => {
                blank &= is_blank(&c);
                if keep == Keep::Text {
                    text.push_str(&c.xml10_content());
                }
            }
            Xml::GeneralRef(r) => {
                let c = reference_char(&r).map_err(|m| p.bad_reference(m))?;
                blank &= matches!(c, ' ' | '\t' | '\n' | '\r');
                if keep == Keep::Text {
                    text.push(c);
                }
            }
            Xml::Comment(_) | Xml::PI(_) => {}
            Xml::End(e) if e.name().as_ref() == "value" => {
                p.depth -= 1;
                return Ok(Opened::Str(Cow::Owned(text)));
            }
            Xml::End(e) => {
                let name = e.name().as_ref().to_owned();
                return Err(p.structure(format!("expected </value>, found </{name}>")));
            }
            Xml::Start(e) => {
                if !blank {
                    return Err(p.structure("text mixed with a typed value".into()));
                }
                break match e.name().as_ref() {
                    "string" => Typed::String,
                    "int" => Typed::Int("int"),
                    "i4" => Typed::Int("i4"),
                    "i8" => Typed::Int("i8"),
                    "boolean" => Typed::Boolean,
                    "double" => Typed::Double,
                    "dateTime.iso8601" => Typed::DateTime,
                    "base64" => Typed::Base64,
                    "nil" => Typed::Nil,
                    "array" => Typed::Array,
                    "struct" => Typed::Struct,
                    _ => {
                        let other = local(&e);
                        return Err(p.structure(format!("unknown value type <{other}>")));
                    }
                };
            }
            Xml::Eof => return Err(p.structure("document ends inside <value>".into())),
            Xml::Decl(_) | Xml::DocType(_) => {
                return Err(p.structure("declaration inside <value>".into()));
            }
            Xml::Empty(_) => return Err(empty_element(p)),
        }
        if text.len() > p.value_limit() {
            return Err(p.too_long());
        }
    };
    let opened = match typed {
        Typed::String => Opened::Str(Cow::Owned(text_until_end(p, "string", keep)?)),
        Typed::Int(tag) => {
            let text = text_until_end(p, tag, Keep::Text)?;
            Opened::Int(text.trim().parse().map_err(|_| scalar("int", &text))?)
        }
        Typed::Boolean => {
            let text = text_until_end(p, "boolean", Keep::Text)?;
            Opened::Bool(match text.trim() {
                "1" | "true" => true,
                "0" | "false" => false,
                _ => return Err(scalar("boolean", &text)),
            })
        }
        Typed::Double => {
            let text = text_until_end(p, "double", Keep::Text)?;
            Opened::Double(text.trim().parse().map_err(|_| scalar("double", &text))?)
        }
        Typed::DateTime => Opened::DateTime(trimmed(text_until_end(p, "dateTime.iso8601", keep)?)),
        Typed::Base64 => Opened::Base64(trimmed(text_until_end(p, "base64", keep)?)),
        Typed::Nil => {
            expect_end(p, Elem::Nil)?;
            Opened::Nil
        }
        Typed::Array => {
            expect_start(p, Elem::Data)?;
            return Ok(Opened::Array(()));
        }
        Typed::Struct => return Ok(Opened::Struct(())),
    };
    close_value(p)?;
    Ok(opened)
}

/// Reads `</value>` after a typed child and leaves its level of depth.
pub(super) fn close_value<S: Read>(p: &mut Parser<S>) -> Result<(), WireError> {
    expect_end(p, Elem::Value)?;
    p.depth -= 1;
    Ok(())
}

/// Walks a whole value after its `<value>`, checking it as the tree decoder would, building
/// nothing. Recursion is bounded by [`MAX_DEPTH`].
pub(super) fn skip_value<S: Read>(p: &mut Parser<S>) -> Result<(), WireError> {
    match open(p, Keep::Nothing)? {
        Opened::Array(()) => finish_array(p, false),
        Opened::Struct(()) => finish_struct(p, MemberState::Between),
        _ => Ok(()),
    }
}

/// Skips the rest of an array (unless `</data>` was already read), then closes it.
pub(super) fn finish_array<S: Read>(p: &mut Parser<S>, data_closed: bool) -> Result<(), WireError> {
    if !data_closed {
        loop {
            match next_tag(p)? {
                Tag::Start(Elem::Value) => skip_value(p)?,
                Tag::End(Elem::Data) => break,
                other => {
                    return Err(p.structure(format!("expected <value> or </data>, found {other}")));
                }
            }
        }
    }
    expect_end(p, Elem::Array)?;
    close_value(p)
}

/// Where a struct's reader stands.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum MemberState {
    /// Between members.
    Between,
    /// A name was read and `<value>` opened; the value is next.
    ValueNext,
    /// `</struct>` was read.
    Closed,
}

/// Skips the rest of a struct, then closes it.
pub(super) fn finish_struct<S: Read>(
    p: &mut Parser<S>,
    state: MemberState,
) -> Result<(), WireError> {
    if state == MemberState::ValueNext {
        skip_value(p)?;
        expect_end(p, Elem::Member)?;
    }
    if state != MemberState::Closed {
        loop {
            match next_tag(p)? {
                Tag::Start(Elem::Member) => {
                    expect_start(p, Elem::Name)?;
                    text_until_end(p, "name", Keep::Nothing)?;
                    expect_start(p, Elem::Value)?;
                    skip_value(p)?;
                    expect_end(p, Elem::Member)?;
                }
                Tag::End(Elem::Struct) => break,
                other => {
                    return Err(
                        p.structure(format!("expected <member> or </struct>, found {other}"))
                    );
                }
            }
        }
    }
    close_value(p)
}
