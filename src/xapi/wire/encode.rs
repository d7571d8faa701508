//! The encoder, shared with the simulator: one line, no whitespace, strings as untyped
//! `<value>`, control characters other than TAB/LF/CR dropped, member names unescaped, exactly
//! as xapi writes (xapi-notes.md §1.2).

use std::fmt::Write as _;

use super::Value;

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
}
