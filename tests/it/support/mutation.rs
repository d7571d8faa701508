//! Byte-level mutations of XML-RPC bodies for the codec's fuzz tests (shared by
//! `wire_fuzz.rs` and `stream_equivalence.rs`).

#![allow(dead_code)]

use proptest::prelude::*;
use proptest::sample::Index;

/// Modest (256 cases, or `PROPTEST_CASES` for a longer hunt), so the suite stays fast in debug
/// builds; no regression files are written into the source tree.
pub fn proptest_config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Fragments of XML-RPC bodies, well- and ill-formed, so random sequences reach deep into the
/// parsers.
pub const TOKENS: &[&str] = &[
    "<?xml version=\"1.0\"?>",
    "<methodResponse>",
    "</methodResponse>",
    "<methodCall>",
    "</methodCall>",
    "<methodName>",
    "</methodName>",
    "<params>",
    "</params>",
    "<param>",
    "</param>",
    "<fault>",
    "</fault>",
    "<value>",
    "</value>",
    "<value/>",
    "<struct>",
    "</struct>",
    "<member>",
    "</member>",
    "<name>",
    "</name>",
    "<array>",
    "</array>",
    "<data>",
    "</data>",
    "<string>",
    "</string>",
    "<i4>",
    "</i4>",
    "<i8>",
    "</i8>",
    "<int>",
    "</int>",
    "<boolean>",
    "</boolean>",
    "<double>",
    "</double>",
    "<dateTime.iso8601>",
    "</dateTime.iso8601>",
    "<base64>",
    "</base64>",
    "<nil/>",
    "<nil>",
    "</nil>",
    "Status",
    "Success",
    "Failure",
    "Value",
    "ErrorDescription",
    "faultCode",
    "faultString",
    "1",
    "0",
    "-1",
    "1e+20",
    "nan",
    "99999999999999999999",
    "&amp;",
    "&lt;",
    "&#x41;",
    "&#0;",
    "&#xD800;",
    "&#1114112;",
    "&bogus;",
    "&",
    "<",
    ">",
    "<!-- c -->",
    "<![CDATA[x]]>",
    "<?pi x?>",
    "<!DOCTYPE x [<!ENTITY e \"v\">]>",
    " ",
    "\n",
    "\r\n",
    "é",
    "\u{FFFF}",
    "<value",
    "</",
    "<a b=\"c\">",
    "</a>",
    // Member names of the records, so random structs hit real fields.
    "uuid",
    "live",
    "events",
    "token",
    "true",
];

#[derive(Debug, Clone)]
pub enum Mutation {
    FlipBit(Index, u8),
    Overwrite(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    /// Copies `len` bytes starting at `from` and inserts them at `at`.
    Duplicate {
        from: Index,
        len: Index,
        at: Index,
    },
}

pub fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        prop::sample::select(b"<>&;/\"'=!?[]-#x0123456789 \n\r\t".to_vec()),
        prop::sample::select(vec![0x00_u8, 0x80, 0xC3, 0xE2, 0xF0, 0xFF]),
    ]
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0..8_u8).prop_map(|(i, bit)| Mutation::FlipBit(i, bit)),
        (any::<Index>(), interesting_byte()).prop_map(|(i, b)| Mutation::Overwrite(i, b)),
        (any::<Index>(), interesting_byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Delete),
        (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(from, len, at)| Mutation::Duplicate { from, len, at }),
    ]
}

pub fn apply(body: &mut Vec<u8>, m: &Mutation) {
    if body.is_empty() {
        return;
    }
    match m {
        Mutation::FlipBit(i, bit) => {
            let i = i.index(body.len());
            body[i] ^= 1 << bit;
        }
        Mutation::Overwrite(i, b) => {
            let i = i.index(body.len());
            body[i] = *b;
        }
        Mutation::Insert(i, b) => {
            let i = i.index(body.len() + 1);
            body.insert(i, *b);
        }
        Mutation::Delete(i) => {
            let i = i.index(body.len());
            body.remove(i);
        }
        Mutation::Duplicate { from, len, at } => {
            let from = from.index(body.len());
            let len = len.index((body.len() - from).min(512)) + 1;
            let slice = body[from..from + len].to_vec();
            let at = at.index(body.len() + 1);
            body.splice(at..at, slice);
        }
    }
}
