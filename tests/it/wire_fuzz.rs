//! Property tests of the XML-RPC codec (`xenguard::xapi::wire`): hostile or broken input never
//! panics, truncated answers are errors, encoder output decodes to the same value, and deep or
//! huge bodies are handled without stack overflow or quadratic work.

use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Instant;

use crate::mutation;
use crate::xapi_fixtures::RESPONSES;

use mutation::{TOKENS, apply, mutation, proptest_config};
use proptest::prelude::*;
use proptest::sample::Index;
use xenguard::xapi::wire::{
    MAX_DEPTH, Response, Value, WireError, decode_call, decode_response, encode_call,
    encode_failure, encode_success,
};

/// The fixtures of `tests/fixtures/xapi/`, read once.
static FIXTURES: LazyLock<Vec<(&'static str, Vec<u8>)>> = LazyLock::new(|| {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xapi");
    std::iter::once(&"login_request.xml")
        .chain(RESPONSES)
        .map(|name| {
            let path = dir.join(name);
            let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (*name, body)
        })
        .collect()
});

/// Decodes `body` both ways; the only requirement is returning (no panic).
fn decode_both(body: &[u8]) {
    let _ = decode_response(body);
    let _ = decode_call(body);
}

/// Decodes a fixture with the decoder matching its kind.
fn decode_fixture(name: &str, body: &[u8]) -> Result<(), WireError> {
    if name == "login_request.xml" {
        decode_call(body).map(drop)
    } else {
        decode_response(body).map(drop)
    }
}

/// A cut point that leaves the document element unclosed: before the last `>`.
fn truncation_limit(body: &[u8]) -> usize {
    body.iter()
        .rposition(|&b| b == b'>')
        .expect("fixture has tags")
}

// ------------------------------------------------------------------------------------------
// (a) random bytes
// ------------------------------------------------------------------------------------------

fn token_soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..200)
        .prop_map(|tokens| tokens.concat().into_bytes())
}

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..4096)) {
        decode_both(&body);
    }

    #[test]
    fn random_token_sequences_never_panic(body in token_soup()) {
        decode_both(&body);
    }
}

// ------------------------------------------------------------------------------------------
// (b) mutated fixtures
// ------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn mutated_fixtures_decode_or_fail_cleanly(
        which in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let (_, original) = &FIXTURES[which.index(FIXTURES.len())];
        let mut body = original.clone();
        for m in &mutations {
            apply(&mut body, m);
        }
        decode_both(&body);
    }

    #[test]
    fn truncated_fixtures_are_errors(which in any::<Index>(), cut in any::<Index>()) {
        let (name, original) = &FIXTURES[which.index(FIXTURES.len())];
        let cut = cut.index(truncation_limit(original) + 1);
        let body = &original[..cut];
        prop_assert!(decode_fixture(name, body).is_err(), "{} cut at {} decoded", name, cut);
        decode_both(body);
    }

    #[test]
    fn truncated_then_mutated_fixtures_never_panic(
        which in any::<Index>(),
        cut in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 0..3),
    ) {
        let (_, original) = &FIXTURES[which.index(FIXTURES.len())];
        let mut body = original[..cut.index(original.len() + 1)].to_vec();
        for m in &mutations {
            apply(&mut body, m);
        }
        decode_both(&body);
    }
}

/// Every prefix of the small fixtures (all cut points, not a sample) is an error.
#[test]
fn every_prefix_of_small_fixtures_is_an_error() {
    for (name, body) in FIXTURES.iter().filter(|(_, b)| b.len() <= 4096) {
        decode_fixture(name, body).unwrap_or_else(|e| panic!("{name} itself fails: {e}"));
        for cut in 0..=truncation_limit(body) {
            assert!(
                decode_fixture(name, &body[..cut]).is_err(),
                "{name} cut at {cut} decoded: {:?}",
                String::from_utf8_lossy(&body[..cut])
            );
        }
    }
}

// ------------------------------------------------------------------------------------------
// (c) encode -> decode round trips of arbitrary values
// ------------------------------------------------------------------------------------------

/// Text the encoder passes through unchanged: `<>&"` and any Unicode, TAB and LF, but no other
/// control characters (the encoder drops them, as xapi does) and no CR (XML normalises it).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        r#"[<>&"' \t\na-z0-9;#éß€😀]{0,24}"#,
        r"[^\x00-\x08\x0B-\x1F]{0,24}",
        Just(String::new()),
        Just("  ".to_owned()),
    ]
}

/// Struct member names: xapi writes them unescaped, so they cannot hold `<` or `&`.
fn member_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z_][A-Za-z0-9_-]{0,20}",
        r"OpaqueRef:[0-9a-f-]{36}",
        r#"[^\x00-\x1F<&]{0,16}"#,
    ]
}

/// dateTime / base64 text is trimmed on decode: generate it without surrounding whitespace.
fn trimmed() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{8}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z",
        "[A-Za-z0-9+/]{0,40}={0,2}",
        text().prop_map(|s| s.trim().to_owned()),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => text().prop_map(Value::String),
        1 => any::<i64>().prop_map(Value::Int),
        1 => any::<i32>().prop_map(|i| Value::Int(i.into())),
        1 => any::<bool>().prop_map(Value::Bool),
        // xapi writes doubles with %.16g, which keeps 16 significant digits (xapi-notes.md §1.2);
        // values needing 17 do not survive the wire, on xapi either.
        1 => any::<f64>()
            .prop_filter("NaN never compares equal", |d| !d.is_nan())
            .prop_map(|d| Value::Double(format!("{d:.15e}").parse().unwrap_or(d))),
        1 => trimmed().prop_map(Value::DateTime),
        1 => trimmed().prop_map(Value::Base64),
        1 => Just(Value::Nil),
    ]
}

/// Arbitrary value trees, at most 6 levels deep.
fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((member_name(), inner), 0..6).prop_map(Value::Struct),
        ]
    })
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Struct(members) => 1 + members.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
        _ => 1,
    }
}

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn encoded_success_decodes_to_the_same_value(v in value()) {
        prop_assert!(depth(&v) <= 6);
        let body = encode_success(&v);
        let decoded = decode_response(body.as_bytes());
        prop_assert_eq!(decoded, Ok(Response::Success(v)), "body: {}", body);
    }

    #[test]
    fn encoded_call_decodes_to_the_same_call(
        method in "[A-Za-z][A-Za-z0-9_.]{0,30}",
        params in prop::collection::vec(value(), 0..4),
    ) {
        let body = encode_call(&method, &params);
        let call = decode_call(body.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}: {body}")))?;
        prop_assert_eq!(call.method, method);
        prop_assert_eq!(call.params, params);
    }

    #[test]
    fn encoded_failure_decodes_to_the_same_description(
        code in text(),
        params in prop::collection::vec(text(), 0..5),
    ) {
        let body = encode_failure(&code, &params);
        let mut expected = vec![code];
        expected.extend(params);
        prop_assert_eq!(decode_response(body.as_bytes()), Ok(Response::Failure(expected)));
    }
}

// ------------------------------------------------------------------------------------------
// (d) deep nesting, (e) huge values
// ------------------------------------------------------------------------------------------

fn wrap_success(value_xml: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name>{value_xml}</member></struct></value></param></params></methodResponse>"
    )
}

/// Runs `f` on a thread with a deliberately small stack (half the default), so recursion
/// proportional to the input's nesting would crash: 10,000 levels need tens of MB. The
/// decoder's bounded recursion to [`MAX_DEPTH`] needs 256–512 KiB in a debug build (about 4–8
/// KiB per level) and under 64 KiB in release.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn ten_thousand_nested_arrays_are_too_deep() {
    on_small_stack(|| {
        const N: usize = 10_000;
        let closed = "<value><array><data>".repeat(N) + &"</data></array></value>".repeat(N);
        assert_eq!(
            decode_response(wrap_success(&closed).as_bytes()),
            Err(WireError::TooDeep)
        );
        // Never closed: refused on the way down too.
        let open = wrap_success(&"<value><array><data>".repeat(N));
        assert_eq!(decode_response(open.as_bytes()), Err(WireError::TooDeep));
        // The same through a methodCall parameter.
        let call = format!(
            "<methodCall><methodName>VM.get_record</methodName><params><param>{closed}</param></params></methodCall>"
        );
        assert_eq!(decode_call(call.as_bytes()), Err(WireError::TooDeep));
    });
}

#[test]
fn ten_thousand_nested_structs_are_too_deep() {
    on_small_stack(|| {
        const N: usize = 10_000;
        let body = "<value><struct><member><name>m</name>".repeat(N)
            + "<value>leaf</value>"
            + &"</member></struct></value>".repeat(N);
        assert_eq!(
            decode_response(wrap_success(&body).as_bytes()),
            Err(WireError::TooDeep)
        );
    });
}

#[test]
fn nesting_up_to_the_limit_is_accepted() {
    on_small_stack(|| {
        // The envelope struct is one level; the result may use the rest.
        let n = MAX_DEPTH - 1;
        let body = "<value><array><data>".repeat(n - 1)
            + "<value>x</value>"
            + &"</data></array></value>".repeat(n - 1);
        let Ok(Response::Success(mut v)) = decode_response(wrap_success(&body).as_bytes()) else {
            panic!("nesting of {n} refused");
        };
        let mut levels = 1;
        while let Value::Array(mut items) = v {
            v = items.pop().unwrap();
            levels += 1;
        }
        assert_eq!(levels, n);
        assert_eq!(v, Value::string("x"));
    });
}

/// No XAPI field is megabytes long, and a hostile peer must not make the client hold one:
/// a value up to `MAX_VALUE_BYTES` decodes whole, a longer one is refused as `TooLong` by the
/// tree and streaming decoders alike, however it is spelt (one text run, or text split by
/// references into many small pieces).
#[test]
fn values_up_to_the_limit_decode_and_longer_ones_are_refused() {
    use xenguard::xapi::input::MAX_VALUE_BYTES;
    // Mostly plain text, with an escaped character and a multi-byte one every 4 KiB.
    let chunk = "x".repeat(4090) + "&" + "é" + "<";
    let mut fits = String::new();
    while fits.len() + chunk.len() <= MAX_VALUE_BYTES {
        fits.push_str(&chunk);
    }
    let body = encode_success(&Value::String(fits.clone()));
    let started = Instant::now();
    let decoded = decode_response(body.as_bytes());
    eprintln!(
        "decoded a {} byte string value in {:?}",
        fits.len(),
        started.elapsed()
    );
    match decoded {
        Ok(Response::Success(Value::String(s))) => assert!(s == fits, "content differs"),
        other => panic!("unexpected {:?}", other.map(|_| ())),
    }
    let streamed = xenguard::xapi::stream::decode_response_into::<String>(body.as_bytes());
    assert!(matches!(streamed, Ok(Ok(s)) if s == fits));

    let plain = wrap_success(&format!(
        "<value>{}</value>",
        "y".repeat(MAX_VALUE_BYTES + 1)
    ));
    let references = wrap_success(&format!(
        "<value><string>{}</string></value>",
        "&amp;".repeat(MAX_VALUE_BYTES + 1)
    ));
    for body in [&plain, &references] {
        assert!(matches!(
            decode_response(body.as_bytes()),
            Err(WireError::TooLong {
                limit: MAX_VALUE_BYTES,
                ..
            })
        ));
        assert!(matches!(
            xenguard::xapi::stream::decode_response_into::<String>(body.as_bytes()),
            Err(WireError::TooLong {
                limit: MAX_VALUE_BYTES,
                ..
            })
        ));
    }
    // A value nobody asked for is walked, not kept: one giant token is still refused before
    // it is buffered whole (the count starts at the reader's block, so give it room), while
    // text split into small pieces costs nothing and passes.
    let skip = xenguard::xapi::stream::decode_response_into::<serde::de::IgnoredAny>;
    let giant = wrap_success(&format!(
        "<value>{}</value>",
        "y".repeat(2 * MAX_VALUE_BYTES)
    ));
    assert!(matches!(
        skip(giant.as_bytes()),
        Err(WireError::TooLong { .. })
    ));
    assert!(matches!(skip(references.as_bytes()), Ok(Ok(_))));
}

/// Every end tag must name the element it closes, in both decoders, wherever it stands.
#[test]
fn mismatched_end_tags_are_errors() {
    let good = "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value><array><data><value><string>a</string></value><value><int>1</int></value><value><boolean>1</boolean></value><value><double>1.5</double></value><value><dateTime.iso8601>20250101T00:00:00Z</dateTime.iso8601></value><value><base64>AA==</base64></value><value><nil></nil></value><value>plain</value></data></array></value></member></struct></value></param></params></methodResponse>";
    assert!(xenguard::xapi::wire::decode_response(good.as_bytes()).is_ok());
    let mut closings: Vec<usize> = good.match_indices("</").map(|(i, _)| i).collect();
    closings.dedup();
    for at in closings {
        let end = at + good[at..].find('>').unwrap();
        for wrong in ["</x", "</valuex", "</value"] {
            let name = &good[at + 2..end];
            if wrong == "</value" && name == "value" {
                continue;
            }
            let body = format!("{}{wrong}{}", &good[..at], &good[end..]);
            assert!(
                xenguard::xapi::wire::decode_response(body.as_bytes()).is_err(),
                "tree decoder accepted </{name}> written as {wrong}>: {body}"
            );
            let streamed =
                xenguard::xapi::stream::decode_response_into::<serde_json::Value>(body.as_bytes());
            assert!(
                !matches!(streamed, Ok(Ok(_))),
                "streaming decoder accepted </{name}> written as {wrong}>: {body}"
            );
        }
    }
    let call = "<?xml version=\"1.0\"?><methodCall><methodName>VM.start</methodName><params><param><value><string>OpaqueRef:a</string></value></param><param><value><boolean>0</boolean></value></param></params></methodCall>";
    assert!(decode_call(call.as_bytes()).is_ok());
    for (at, _) in call.match_indices("</") {
        let end = at + call[at..].find('>').unwrap();
        let body = format!("{}</x{}", &call[..at], &call[end..]);
        assert!(
            decode_call(body.as_bytes()).is_err(),
            "call decoder accepted {body}"
        );
    }
}

/// The decoders make no separate UTF-8 pass over the body: quick-xml checks each piece it hands
/// out. A bad byte anywhere (prolog, tag, name, text, CDATA, comment, PI, trailing comment) must
/// still be reported as `NotUtf8` at that byte, by the tree, streaming and call decoders.
#[test]
fn invalid_utf8_anywhere_is_an_error() {
    let good = "<?xml version=\"1.0\"?>\n<!-- pool -->\n<methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value><struct><member><name>na&amp;me é</name><value kind=\"x\">caf\u{e9} &#233; \u{20ac}\u{1f600}<!-- c --><![CDATA[<raw>]]><?pi data?></value></member><member><name>n</name><value><array><data><value><int>7</int></value><value><double>1e3</double></value><value><nil/></value></data></array></value></member></struct></value></member></struct></value></param></params></methodResponse>\n<!-- end -->\n";
    assert!(decode_response(good.as_bytes()).is_ok());
    let streamed =
        |body: &[u8]| xenguard::xapi::stream::decode_response_into::<serde_json::Value>(body);
    assert!(matches!(streamed(good.as_bytes()), Ok(Ok(_))));
    let call = "<?xml version=\"1.0\"?><methodCall><methodName>VM.set_name_label</methodName><params><param><value>OpaqueRef:a</value></param><param><value><string>caf\u{e9} &lt;x&gt;</string></value></param></params></methodCall>";
    assert!(decode_call(call.as_bytes()).is_ok());

    // Refused as not UTF-8 at the first bad byte, or as broken markup when the byte lands
    // where quick-xml's syntax check meets it first (`<!\xFF--`).
    fn refused<T>(result: &Result<T, WireError>, first_bad: usize) -> bool {
        match result {
            Err(WireError::NotUtf8(at)) => *at == first_bad,
            Err(WireError::Xml { position, .. }) => *position as usize <= first_bad,
            _ => false,
        }
    }
    // A lone 0xFF, a lead byte with no continuation, a stray continuation byte.
    for bad in [&[0xFF_u8][..], &[0xC3, b'x'], &[0x80]] {
        for at in 0..=good.len() {
            let mut body = good.as_bytes()[..at].to_vec();
            body.extend_from_slice(bad);
            body.extend_from_slice(&good.as_bytes()[at..]);
            let Err(e) = std::str::from_utf8(&body) else {
                continue;
            };
            let first_bad = e.valid_up_to();
            let tree = decode_response(&body);
            assert!(
                refused(&tree, first_bad),
                "tree decoder, {bad:02x?} at {at}: {tree:?}"
            );
            let stream = streamed(&body);
            assert!(
                refused(&stream, first_bad),
                "streaming decoder, {bad:02x?} at {at}: {stream:?}"
            );
        }
        for at in 0..=call.len() {
            let mut body = call.as_bytes()[..at].to_vec();
            body.extend_from_slice(bad);
            body.extend_from_slice(&call.as_bytes()[at..]);
            if let Err(e) = std::str::from_utf8(&body) {
                let decoded = decode_call(&body);
                assert!(
                    refused(&decoded, e.valid_up_to()),
                    "call decoder, {bad:02x?} at {at}: {decoded:?}"
                );
            }
        }
    }
}
