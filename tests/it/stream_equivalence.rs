//! The streaming decoder (`xenguard::xapi::stream::decode_response_into`) against the tree
//! path (`wire::decode_response` + `typed::from_value`): the same results for encoder output,
//! for hand-varied encodings, for every response fixture and for mutated ones; errors for
//! truncated bodies; `TooDeep` without stack overflow; failures as `Ok(Err(description))`.

use std::collections::BTreeMap;
use std::fmt::{Debug, Write as _};
use std::path::PathBuf;
use std::sync::LazyLock;

use crate::mutation;

use mutation::{TOKENS, apply, mutation, proptest_config};
use proptest::prelude::*;
use proptest::sample::Index;
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use xenguard::xapi::records::{EventBatch, Host, HostMetrics, Ref, Vdi, Vm};
use xenguard::xapi::stream::{decode_response_from, decode_response_into};
use xenguard::xapi::typed::from_value;
use xenguard::xapi::wire::{
    MAX_DEPTH, Response, Value, WireError, decode_response, encode_failure, encode_success,
};

type Decoded<T> = Result<Result<T, Vec<String>>, WireError>;

/// The tree path, shaped like `decode_response_into`'s result.
fn tree<T: DeserializeOwned>(body: &[u8]) -> Decoded<T> {
    match decode_response(body)? {
        Response::Success(value) => from_value(value).map(Ok),
        Response::Failure(description) => Ok(Err(description)),
        Response::Fault { code, message } => Err(WireError::Fault { code, message }),
    }
}

/// Both paths succeed with the same value (compared through `Debug`, so a NaN equals itself),
/// or both fail.
///
/// The streaming decoder must also give exactly the same result, error included, when its
/// bytes arrive one at a time (as an HTTP body may): nothing it decides may depend on where
/// the pieces end.
fn agree<T: DeserializeOwned + Debug>(body: &[u8]) -> Result<(), String> {
    let streamed = decode_response_into::<T>(body);
    let trickled = decode_response_from::<T, _>(OneByte(body));
    if format!("{streamed:?}") != format!("{trickled:?}") {
        return Err(format!(
            "{}: whole {streamed:?}, one byte at a time {trickled:?}\nbody: {}",
            std::any::type_name::<T>(),
            String::from_utf8_lossy(&body[..body.len().min(2000)])
        ));
    }
    let built = tree::<T>(body);
    match (&streamed, &built) {
        (Ok(a), Ok(b)) if format!("{a:?}") == format!("{b:?}") => Ok(()),
        (Err(_), Err(_)) => Ok(()),
        _ => Err(format!(
            "{}: streamed {streamed:?}, tree {built:?}\nbody: {}",
            std::any::type_name::<T>(),
            String::from_utf8_lossy(&body[..body.len().min(2000)])
        )),
    }
}

/// A body that hands out one byte per read.
struct OneByte<'a>(&'a [u8]);

impl std::io::Read for OneByte<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let Some((first, rest)) = self.0.split_first() else {
            return Ok(0);
        };
        match out.first_mut() {
            Some(slot) => *slot = *first,
            None => return Ok(0),
        }
        self.0 = rest;
        Ok(1)
    }
}

/// A struct without `#[serde(default)]`: missing and duplicate fields are errors.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Strict {
    uuid: String,
    live: bool,
    #[serde(default)]
    note: Option<i64>,
}

/// The target types through which the two paths can still differ. Both hand every value to the
/// same conversion rules (`xenguard::xapi::coerce`), so a scalar target (`i32`, `bool`, an enum)
/// adds nothing once the parsed value agrees: what is left is the parsing itself (`Value`
/// rebuilds it whole), skipping (`IgnoredAny`: the stream walks and checks what the tree had
/// built), an opened value handed back after `deserialize_option`, and member order and
/// duplicates in structs (`Strict`, records).
fn agree_all(body: &[u8]) -> Result<(), String> {
    agree::<Value>(body)?;
    agree::<IgnoredAny>(body)?;
    agree::<Option<Value>>(body)?;
    agree::<Option<String>>(body)?;
    agree::<Vec<Option<f64>>>(body)?;
    agree::<BTreeMap<String, IgnoredAny>>(body)?;
    agree::<Strict>(body)?;
    agree::<Vm>(body)?;
    agree::<EventBatch>(body)?;
    agree::<BTreeMap<Ref<Vm>, Strict>>(body)?;
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Fixtures
// ------------------------------------------------------------------------------------------

/// Every `methodResponse` fixture of `tests/fixtures/xapi/`, read once.
static FIXTURES: LazyLock<Vec<(String, Vec<u8>)>> = LazyLock::new(|| {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xapi");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "xml"))
        .map(|path| {
            let body = std::fs::read(&path).unwrap();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                body,
            )
        })
        .filter(|(_, body)| String::from_utf8_lossy(body).contains("<methodResponse>"))
        .collect();
    out.sort();
    assert!(out.len() >= 14, "only {} response fixtures", out.len());
    out
});

fn fixture(name: &str) -> &'static [u8] {
    &FIXTURES
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
        .1
}

#[test]
fn every_response_fixture_decodes_the_same_through_both_paths() {
    for (name, body) in FIXTURES.iter() {
        agree_all(body).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn get_all_records_and_event_batch_fixtures_stream() {
    fn records<T: DeserializeOwned + PartialEq + Debug>(name: &str, count: usize) {
        let body = fixture(name);
        let streamed = decode_response_into::<BTreeMap<String, T>>(body)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .unwrap_or_else(|d| panic!("{name}: failure {d:?}"));
        assert_eq!(streamed.len(), count, "{name}");
        assert_eq!(
            Ok(Ok(streamed)),
            tree::<BTreeMap<String, T>>(body),
            "{name}"
        );
    }
    records::<Host>("host_get_all_records.xml", 3);
    records::<HostMetrics>("host_metrics_get_all_records.xml", 3);
    records::<Vm>("vm_get_all_records.xml", 5);
    records::<Vdi>("vdi_get_all_records.xml", 1);

    let body = fixture("event_from.xml");
    let batch = decode_response_into::<EventBatch>(body).unwrap().unwrap();
    assert_eq!(batch.token, "00000000000000004713,00000000000000000003");
    assert_eq!(batch.events.len(), 3);
    assert!(batch.events.iter().filter(|e| e.snapshot.is_some()).count() == 2);
    assert_eq!(batch.valid_ref_counts.len(), 68);
    assert_eq!(Ok(Ok(batch.clone())), tree::<EventBatch>(body));
    // A snapshot decodes into its record exactly as through the tree.
    let vm = batch
        .events
        .iter()
        .find(|e| e.class == "vm" && e.snapshot.is_some());
    let snapshot = vm.unwrap().snapshot.clone().unwrap();
    let Ok(Response::Success(Value::Struct(members))) = decode_response(body) else {
        panic!("event_from.xml");
    };
    let Value::Array(events) = &members.iter().find(|(k, _)| k == "events").unwrap().1 else {
        panic!("events is not an array");
    };
    let original = events
        .iter()
        .filter_map(|e| e.member("snapshot"))
        .find(|s| s.member("power_state").is_some())
        .unwrap();
    assert_eq!(
        from_value::<Vm>(snapshot).unwrap(),
        from_value::<Vm>(original.clone()).unwrap()
    );
}

#[test]
fn failure_fixtures_are_descriptions() {
    let mut failures = 0;
    for (name, body) in FIXTURES.iter() {
        if let Ok(Response::Failure(description)) = decode_response(body) {
            failures += 1;
            assert_eq!(
                decode_response_into::<Vm>(body),
                Ok(Err(description.clone())),
                "{name}"
            );
            assert_eq!(
                decode_response_into::<Value>(body),
                Ok(Err(description)),
                "{name}"
            );
        }
    }
    assert!(failures >= 7, "only {failures} failure fixtures");
    assert_eq!(
        decode_response_into::<String>(fixture("host_is_slave.xml")),
        Ok(Err(vec!["HOST_IS_SLAVE".into(), "192.0.2.10".into()]))
    );
}

/// A cut point that leaves the document element unclosed: before the last `>`.
fn truncation_limit(body: &[u8]) -> usize {
    body.iter()
        .rposition(|&b| b == b'>')
        .expect("fixture has tags")
}

fn truncated_is_error(name: &str, body: &[u8]) {
    assert!(
        decode_response_into::<Value>(body).is_err(),
        "{name}: {:?} decoded",
        String::from_utf8_lossy(body)
    );
    assert!(decode_response_into::<IgnoredAny>(body).is_err(), "{name}");
    assert!(
        decode_response_into::<BTreeMap<String, Vm>>(body).is_err(),
        "{name}"
    );
    assert!(decode_response_into::<EventBatch>(body).is_err(), "{name}");
}

/// Every prefix of the small fixtures (all cut points) is an error.
#[test]
fn every_prefix_of_small_fixtures_is_an_error() {
    for (name, body) in FIXTURES.iter().filter(|(_, b)| b.len() <= 4096) {
        for cut in 0..=truncation_limit(body) {
            truncated_is_error(name, &body[..cut]);
        }
    }
}

#[test]
fn fault_is_an_error() {
    let fault = "<?xml version=\"1.0\"?><methodResponse><fault><value><struct><member><name>faultCode</name><value><int>4</int></value></member><member><name>faultString</name><value>Too many parameters.</value></member></struct></value></fault></methodResponse>";
    assert_eq!(
        decode_response_into::<Value>(fault.as_bytes()),
        Err(WireError::Fault {
            code: 4,
            message: "Too many parameters.".into()
        })
    );
    assert!(decode_response_into::<Value>(&fault.as_bytes()[..fault.len() - 3]).is_err());
}

#[test]
fn value_before_status_is_taken_in_any_order() {
    let body = "<methodResponse><params><param><value><struct><member><name>Value</name><value><struct><member><name>uuid</name><value>u</value></member></struct></value></member><member><name>Status</name><value><string>Success</string></value></member></struct></value></param></params></methodResponse>";
    let vm = decode_response_into::<Vm>(body.as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(vm.uuid, "u");
    let failure = "<methodResponse><params><param><value><struct><member><name>ErrorDescription</name><value><array><data><value>X</value></data></array></value></member><member><name>Status</name><value>Failure</value></member></struct></value></param></params></methodResponse>";
    assert_eq!(
        decode_response_into::<Vm>(failure.as_bytes()),
        Ok(Err(vec!["X".into()]))
    );
}

/// Value spellings that sit on the edges of the coercions.
const SNIPPETS: &[&str] = &[
    "<value/>",
    "<value></value>",
    "<value>  </value>",
    "<value>x</value>",
    "<value>1</value>",
    "<value>0</value>",
    "<value>-1</value>",
    "<value> 12 </value>",
    "<value>300</value>",
    "<value>4294967296</value>",
    "<value>99999999999999999999</value>",
    "<value>1.5</value>",
    "<value>1e3</value>",
    "<value>nan</value>",
    "<value>inf</value>",
    "<value>true</value>",
    "<value>false</value>",
    "<value>True</value>",
    "<value> true</value>",
    "<value>RW</value>",
    "<value>rw</value>",
    "<value>Running</value>",
    "<value>é</value>",
    "<value>ab</value>",
    "<value>a&amp;b</value>",
    "<value><string>7</string></value>",
    "<value><string></string></value>",
    "<value><i4>1</i4></value>",
    "<value><i4>-1</i4></value>",
    "<value><i4>300</i4></value>",
    "<value><int>0</int></value>",
    "<value><i8>4294967296</i8></value>",
    "<value><boolean>1</boolean></value>",
    "<value><boolean>0</boolean></value>",
    "<value><boolean>true</boolean></value>",
    "<value><double>1.5</double></value>",
    "<value><double>-0</double></value>",
    "<value><double>2</double></value>",
    "<value><dateTime.iso8601>20250101T00:00:00Z</dateTime.iso8601></value>",
    "<value><dateTime.iso8601></dateTime.iso8601></value>",
    "<value><base64>AAEC</base64></value>",
    "<value><nil/></value>",
    "<value><array><data></data></array></value>",
    "<value><array><data><value>a</value></data></array></value>",
    "<value><array><data><value>a</value><value><i4>2</i4></value></data></array></value>",
    "<value><array><data><value>a</value><value>2</value><value><nil/></value></data></array></value>",
    "<value><array><data><value><array><data></data></array></value></data></array></value>",
    "<value><struct></struct></value>",
    "<value><struct><member><name>uuid</name><value>u</value></member></struct></value>",
    "<value><struct><member><name>uuid</name><value>u</value></member><member><name>live</name><value>true</value></member></struct></value>",
    "<value><struct><member><name>uuid</name><value>u</value></member><member><name>uuid</name><value>v</value></member><member><name>live</name><value><boolean>1</boolean></value></member></struct></value>",
    "<value><struct><member><name>k</name><value><i4>1</i4></value></member><member><name>k</name><value>2</value></member></struct></value>",
    "<value><struct><member><name>note</name><value><nil/></value></member><member><name>x</name><value><struct></struct></value></member></struct></value>",
    "<value><struct><member><name>a&amp;&#x41;</name><value>1</value></member></struct></value>",
    "<value>&#32;<i4>1</i4>\n</value>",
    "<value><![CDATA[ ]]><i4>1</i4><!-- c --></value>",
    "<value>a<!-- c -->b<![CDATA[<c>]]>&#x41;</value>",
    // Malformed: refused by both paths, also where the target skips the value.
    "<value>x<i4>1</i4></value>",
    "<value><i4>1</i4>x</value>",
    "<value><i4>1</i4><i4>2</i4></value>",
    "<value><i4>x</i4></value>",
    "<value><i4>1.5</i4></value>",
    "<value><boolean>2</boolean></value>",
    "<value><double>x</double></value>",
    "<value>&bogus;</value>",
    "<value>&#0;</value>",
    "<value><foo>1</foo></value>",
    "<value><nil>x</nil></value>",
    "<value><string><b/></string></value>",
    "<value><array><value>a</value></array></value>",
    "<value><array><data>x</data></array></value>",
    "<value><array><data></data>x</array></value>",
    "<value><struct><name>a</name></struct></value>",
    "<value><struct>x</struct></value>",
    "<value><struct><member><value>a</value></member></struct></value>",
    "<value><struct><member><name>a</name><value>a</value>junk</member></struct></value>",
    "<value><struct><member><name>a<b/></name><value>a</value></member></struct></value>",
    "<value><struct><member><name>a</name></member></struct></value>",
];

/// Every snippet as the result, as a record field of every known name, as an array element
/// and inside a map of records: both paths agree for every target type.
#[test]
fn coercion_matrix_agrees() {
    let mut bodies = Vec::new();
    for snippet in SNIPPETS {
        bodies.push(wrap_success(snippet));
        bodies.push(wrap_success(&format!(
            "<value><array><data>{snippet}{snippet}</data></array></value>"
        )));
        for field in FIELDS {
            let record = format!(
                "<value><struct><member><name>{field}</name>{snippet}</member></struct></value>"
            );
            bodies.push(wrap_success(&record));
            bodies.push(wrap_success(&format!(
                "<value><struct><member><name>OpaqueRef:a</name>{record}</member></struct></value>"
            )));
        }
    }
    for body in &bodies {
        agree_all(body.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    }
}

// ------------------------------------------------------------------------------------------
// Deep nesting
// ------------------------------------------------------------------------------------------

fn wrap_success(value_xml: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name>{value_xml}</member></struct></value></param></params></methodResponse>"
    )
}

/// Runs `f` on a thread with a 1 MiB stack, so recursion proportional to the input would crash.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn ten_thousand_deep_nesting_is_too_deep() {
    on_small_stack(|| {
        const N: usize = 10_000;
        let arrays = "<value><array><data>".repeat(N) + &"</data></array></value>".repeat(N);
        let structs = "<value><struct><member><name>m</name>".repeat(N)
            + "<value>leaf</value>"
            + &"</member></struct></value>".repeat(N);
        let open = "<value><array><data>".repeat(N);
        for inner in [&arrays, &structs, &open] {
            let body = wrap_success(inner);
            let body = body.as_bytes();
            assert_eq!(decode_response_into::<Value>(body), Err(WireError::TooDeep));
            assert_eq!(
                decode_response_into::<IgnoredAny>(body),
                Err(WireError::TooDeep)
            );
            assert_eq!(
                decode_response_into::<Option<Value>>(body),
                Err(WireError::TooDeep)
            );
        }
        // Deep inside a field the record does not know: skipped, but still refused.
        let record = wrap_success(&format!(
            "<value><struct><member><name>uuid</name><value>u</value></member><member><name>future</name>{structs}</member></struct></value>"
        ));
        assert_eq!(
            decode_response_into::<Vm>(record.as_bytes()),
            Err(WireError::TooDeep)
        );
        let records = wrap_success(&format!(
            "<value><struct><member><name>OpaqueRef:x</name>{arrays}</member></struct></value>"
        ));
        assert_eq!(
            decode_response_into::<BTreeMap<String, Value>>(records.as_bytes()),
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
        let body = wrap_success(&body);
        let streamed = decode_response_into::<Value>(body.as_bytes()).unwrap();
        assert_eq!(Ok(streamed), tree::<Value>(body.as_bytes()));
        assert!(decode_response_into::<IgnoredAny>(body.as_bytes()).is_ok());
    });
}

// ------------------------------------------------------------------------------------------
// Random values
// ------------------------------------------------------------------------------------------

/// Text the encoder passes through unchanged (no control characters but TAB and LF, no CR).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        r#"[<>&"' \t\na-z0-9;#éß€😀]{0,24}"#,
        r"[^\x00-\x08\x0B-\x1F]{0,24}",
        "-?[0-9]{1,20}",
        "[ ]?-?[0-9]{1,3}(\\.[0-9]{1,3})?(e[+-]?[0-9]{1,2})?[ ]?",
        prop::sample::select(vec!["true", "false", "1", "0", "Running", "RW", "RO", "x"])
            .prop_map(str::to_owned),
        Just(String::new()),
        Just("  ".to_owned()),
    ]
}

/// Field names of the records, so random structs hit real fields with random types.
const FIELDS: &[&str] = &[
    "uuid",
    "name_label",
    "power_state",
    "resident_on",
    "domid",
    "is_a_template",
    "memory_static_max",
    "VCPUs_at_startup",
    "VBDs",
    "other_config",
    "allowed_operations",
    "current_operations",
    "live",
    "memory_total",
    "last_updated",
    "enabled",
    "metrics",
    "resident_VMs",
    "API_version_major",
    "software_version",
    "sm_config",
    "virtual_size",
    "read_only",
    "SR",
    "mode",
    "type",
    "progress",
    "error_info",
    "events",
    "token",
    "valid_ref_counts",
    "id",
    "class",
    "operation",
    "ref",
    "snapshot",
    "note",
];

/// Struct member names: xapi writes them unescaped, so they cannot hold `<` or `&`.
fn member_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(FIELDS).prop_map(str::to_owned),
        1 => "[A-Za-z_][A-Za-z0-9_-]{0,20}",
        1 => r"OpaqueRef:[0-9a-f-]{36}",
        1 => r#"[^\x00-\x1F<&]{0,16}"#,
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
        4 => text().prop_map(Value::String),
        1 => any::<i64>().prop_map(Value::Int),
        2 => (-300..300_i64).prop_map(Value::Int),
        1 => any::<bool>().prop_map(Value::Bool),
        // Doubles keep the 16 significant digits xapi's %.16g writes (xapi-notes.md §1.2).
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
            prop::collection::vec((member_name(), inner), 0..8).prop_map(Value::Struct),
        ]
    })
}

/// A struct of records, as `get_all_records` answers.
fn records() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (
            r"OpaqueRef:[0-9a-f]{4}",
            prop::collection::vec((member_name(), value()), 0..10).prop_map(Value::Struct),
        ),
        0..4,
    )
    .prop_map(Value::Struct)
}

/// What the values become through `Value`'s own deserializer: datetimes and base64 as strings.
fn normalise(v: Value) -> Value {
    match v {
        Value::DateTime(s) | Value::Base64(s) => Value::String(s),
        Value::Array(items) => Value::Array(items.into_iter().map(normalise).collect()),
        Value::Struct(members) => Value::Struct(
            members
                .into_iter()
                .map(|(k, v)| (k, normalise(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Deterministic choices for the varied encoder.
struct Choices(u64);

impl Choices {
    fn pick(&mut self, n: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn escape_varied(out: &mut String, s: &str, c: &mut Choices) {
    for ch in s.chars() {
        match ch {
            '<' if c.pick(2) == 0 => out.push_str("&lt;"),
            '<' => out.push_str("&#60;"),
            '&' if c.pick(2) == 0 => out.push_str("&amp;"),
            '&' => out.push_str("&#x26;"),
            '>' if c.pick(3) == 0 => out.push_str("&gt;"),
            '"' if c.pick(3) == 0 => out.push_str("&quot;"),
            '\'' if c.pick(3) == 0 => out.push_str("&apos;"),
            ' ' if c.pick(8) == 0 => out.push_str("&#32;"),
            ch => out.push(ch),
        }
    }
}

/// Formatting xapi does not write but the decoders accept: whitespace and comments between
/// elements.
fn gap(out: &mut String, c: &mut Choices) {
    match c.pick(8) {
        0 => out.push_str("\n  "),
        1 => out.push_str("<!-- c -->"),
        2 => out.push(' '),
        _ => {}
    }
}

/// Encodes `v` with randomly chosen, equivalent-to-a-standard-parser spellings: `<string>`,
/// CDATA, character references, `<int>`/`<i4>`/`<i8>`, padded numbers, `<value/>`,
/// `<nil></nil>`, whitespace and comments between elements.
fn encode_varied(out: &mut String, v: &Value, c: &mut Choices) {
    match v {
        Value::String(s) if s.is_empty() && c.pick(3) == 0 => {
            out.push_str(
                ["<value/>", "<value><string/></value>", "<value></value>"][c.pick(3) as usize],
            );
            return;
        }
        _ => {}
    }
    out.push_str("<value>");
    let typed = !matches!(v, Value::String(_));
    if typed {
        gap(out, c);
    }
    match v {
        Value::String(s) => match c.pick(4) {
            0 => {
                out.push_str("<string>");
                escape_varied(out, s, c);
                out.push_str("</string>");
            }
            1 if !s.contains("]]>") => {
                let _ = write!(out, "<![CDATA[{s}]]>");
            }
            2 if s.len() > 1 => {
                let mid = s.char_indices().nth(s.chars().count() / 2).unwrap().0;
                escape_varied(out, &s[..mid], c);
                out.push_str("<!-- split -->");
                escape_varied(out, &s[mid..], c);
            }
            _ => escape_varied(out, s, c),
        },
        Value::Int(i) => {
            let tag = match c.pick(3) {
                0 if i32::try_from(*i).is_ok() => "i4",
                1 => "int",
                _ => "i8",
            };
            let pad = if c.pick(4) == 0 { " " } else { "" };
            let _ = write!(out, "<{tag}>{pad}{i}{pad}</{tag}>");
        }
        Value::Bool(b) => {
            let text = match (c.pick(2), b) {
                (0, true) => "1",
                (0, false) => "0",
                (_, true) => "true",
                (_, false) => "false",
            };
            let _ = write!(out, "<boolean>{text}</boolean>");
        }
        Value::Double(d) => {
            let _ = match c.pick(3) {
                0 => write!(out, "<double>{d:e}</double>"),
                1 => write!(out, "<double> {d:?} </double>"),
                _ => write!(out, "<double>{d}</double>"),
            };
        }
        Value::DateTime(s) => {
            out.push_str("<dateTime.iso8601>");
            escape_varied(out, s, c);
            out.push_str("</dateTime.iso8601>");
        }
        Value::Base64(s) => {
            out.push_str("<base64>");
            escape_varied(out, s, c);
            out.push_str("</base64>");
        }
        Value::Array(items) => {
            out.push_str("<array>");
            gap(out, c);
            out.push_str("<data>");
            for item in items {
                gap(out, c);
                encode_varied(out, item, c);
            }
            gap(out, c);
            out.push_str("</data>");
            gap(out, c);
            out.push_str("</array>");
        }
        Value::Struct(members) => {
            out.push_str("<struct>");
            for (name, v) in members {
                gap(out, c);
                out.push_str("<member>");
                gap(out, c);
                out.push_str("<name>");
                escape_varied(out, name, c);
                out.push_str("</name>");
                gap(out, c);
                encode_varied(out, v, c);
                gap(out, c);
                out.push_str("</member>");
            }
            gap(out, c);
            out.push_str("</struct>");
        }
        Value::Nil => out.push_str(if c.pick(2) == 0 {
            "<nil/>"
        } else {
            "<nil></nil>"
        }),
    }
    if typed {
        gap(out, c);
    }
    out.push_str("</value>");
}

/// A whole response around a varied value, with extra envelope members (an unknown member,
/// an `ErrorDescription`) and sometimes `Value` before `Status`.
fn varied_body(v: &Value, seed: u64) -> String {
    let mut c = Choices(seed | 1);
    let mut value = String::new();
    encode_varied(&mut value, v, &mut c);
    let mut members = vec![
        "<member><name>Status</name><value>Success</value></member>".to_owned(),
        format!("<member><name>Value</name>{value}</member>"),
    ];
    if c.pick(3) == 0 {
        members.push("<member><name>ErrorDescription</name><value><array><data><value>X</value></data></array></value></member>".into());
    }
    if c.pick(3) == 0 {
        members.insert(1, "<member><name>extra</name><value><struct><member><name>a</name><value><i4>1</i4></value></member></struct></value></member>".into());
    }
    if c.pick(6) == 0 {
        members.swap(0, 1);
    }
    format!(
        "<?xml version=\"1.0\"?>\n<methodResponse><params><param><value><struct>{}</struct></value></param></params></methodResponse>\n",
        members.concat()
    )
}

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn encoded_values_stream_to_the_same_value(v in value()) {
        let body = encode_success(&v);
        let expected = Ok(Ok(normalise(v)));
        prop_assert_eq!(&decode_response_into::<Value>(body.as_bytes()), &expected, "body: {}", body);
        prop_assert_eq!(&tree::<Value>(body.as_bytes()), &expected);
    }

    #[test]
    fn encoded_values_agree_for_every_target_type(v in value()) {
        let body = encode_success(&v);
        agree_all(body.as_bytes()).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn encoded_records_agree(v in records()) {
        let body = encode_success(&v);
        agree_all(body.as_bytes()).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn varied_encodings_agree(v in value(), seed in any::<u64>()) {
        let body = varied_body(&v, seed);
        prop_assert_eq!(
            decode_response_into::<Value>(body.as_bytes()),
            tree::<Value>(body.as_bytes()),
            "body: {}", body
        );
        prop_assert!(tree::<Value>(body.as_bytes()).is_ok(), "varied body refused: {}", body);
        agree_all(body.as_bytes()).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn varied_records_agree(v in records(), seed in any::<u64>()) {
        let body = varied_body(&v, seed);
        agree_all(body.as_bytes()).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn failures_are_descriptions(
        code in text(),
        params in prop::collection::vec(text(), 0..5),
    ) {
        let body = encode_failure(&code, &params);
        let mut expected = vec![code];
        expected.extend(params);
        prop_assert_eq!(decode_response_into::<Vm>(body.as_bytes()), Ok(Err(expected.clone())));
        prop_assert_eq!(decode_response_into::<Value>(body.as_bytes()), Ok(Err(expected)));
    }
}

// ------------------------------------------------------------------------------------------
// Truncated, mutated and random bodies
// ------------------------------------------------------------------------------------------

/// Token soup, half the time inside a correct envelope prefix so the streaming path is reached.
fn token_soup() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        prop::collection::vec(prop::sample::select(TOKENS), 0..120),
    )
        .prop_map(|(envelope, tokens)| {
            let mut body = String::new();
            if envelope {
                body.push_str("<methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name>");
            }
            body.push_str(&tokens.concat());
            body.into_bytes()
        })
}

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn mutated_fixtures_never_panic_and_agree(
        which in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let (_, original) = &FIXTURES[which.index(FIXTURES.len())];
        let mut body = original.clone();
        for m in &mutations {
            apply(&mut body, m);
        }
        agree_all(&body).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn truncated_fixtures_are_errors(which in any::<Index>(), cut in any::<Index>()) {
        let (name, original) = &FIXTURES[which.index(FIXTURES.len())];
        let cut = cut.index(truncation_limit(original) + 1);
        truncated_is_error(name, &original[..cut]);
    }

    #[test]
    fn truncated_then_mutated_fixtures_never_panic_and_agree(
        which in any::<Index>(),
        cut in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 0..3),
    ) {
        let (_, original) = &FIXTURES[which.index(FIXTURES.len())];
        let mut body = original[..cut.index(original.len() + 1)].to_vec();
        for m in &mutations {
            apply(&mut body, m);
        }
        agree_all(&body).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn random_token_sequences_agree(body in token_soup()) {
        agree_all(&body).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        agree_all(&body).map_err(TestCaseError::fail)?;
    }
}
