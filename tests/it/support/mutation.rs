//! Byte-level mutations of XML-RPC bodies for the codec's fuzz tests (shared by
//! `wire_fuzz.rs` and `stream_equivalence.rs`).

#![allow(dead_code)]

use proptest::prelude::*;
use proptest::sample::Index;

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
