//! The payload hash of a record and the digests inside dedup keys.
//!
//! The payload hash is the SHA-256 of the record's canonical JSON: members sorted by key (byte
//! order), no whitespace, strings escaped as serde_json escapes them, numbers as serde_json
//! writes the number it reads (`1.50` and `1.5` are the same; a number no machine type holds
//! keeps its digits). So the same record hashes the same whether it arrived as text or as a
//! `serde_json::Value`, and however the source spaced or ordered it.

use std::cell::RefCell;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::json::{MAX_DEPTH, Node, View};
use crate::value::Num;

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// [`payload_hash`] of text already in canonical form (`json::Parsed::canonical`).
pub(crate) fn payload_hash_of_canonical(text: &str) -> String {
    to_hex(&Sha256::digest(text.as_bytes()))
}

/// Lowercase hex, without `hex::encode`'s per-character iterator.
fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
    // Only ASCII hex digits were written.
    String::from_utf8(out).unwrap_or_default()
}

/// Whether a JSON number's text is how the canonical form writes it.
pub(crate) fn number_is_canonical(text: &str) -> bool {
    let mut buffer = [0u8; 48];
    let mut cursor = std::io::Cursor::new(&mut buffer[..]);
    if write_number(&Num::from_text(text), &mut cursor).is_err() {
        // Longer than the buffer: only `Big` numbers are, and they are written as read.
        return matches!(Num::from_text(text), Num::Big(_));
    }
    let written = cursor.position() as usize;
    &buffer[..written] == text.as_bytes()
}

/// Lowercase hex SHA-256 of the canonical JSON of `record`.
pub(crate) fn payload_hash(record: View<'_>) -> String {
    BUFFER.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        buffer.clear();
        write_canonical(record, &mut buffer, 0);
        let digest = Sha256::digest(buffer.as_slice());
        // A record's buffer can be large; do not keep more than a typical one alive.
        if buffer.capacity() > 1 << 20 {
            *buffer = Vec::new();
        }
        to_hex(&digest)
    })
}

/// The first 128 bits of the SHA-256 of `parts` joined by U+001F, in hex.
pub(crate) fn short_digest<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut hasher = Sha256::new();
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            hasher.update([0x1f]);
        }
        hasher.update(part.as_bytes());
    }
    to_hex(&hasher.finalize()[..16])
}

fn write_canonical(view: View<'_>, out: &mut Vec<u8>, depth: usize) {
    match view {
        View::Node(node) => match node {
            Node::Null => out.extend_from_slice(b"null"),
            Node::Bool(true) => out.extend_from_slice(b"true"),
            Node::Bool(false) => out.extend_from_slice(b"false"),
            Node::Number(text) => {
                let _ = write_number(&Num::from_text(text), out);
            }
            Node::String(s) => write_string(s, out),
            Node::Array(_) | Node::Object(_) if depth >= MAX_DEPTH => {
                out.extend_from_slice(b"null")
            }
            Node::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_canonical(View::Node(item), out, depth + 1);
                }
                out.push(b']');
            }
            Node::Object(members) => {
                // The parser keeps members sorted.
                out.push(b'{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_string(key, out);
                    out.push(b':');
                    write_canonical(View::Node(value), out, depth + 1);
                }
                out.push(b'}');
            }
        },
        View::Json(value) => match value {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            Value::Number(n) => {
                let _ = write_number(&Num::from_json(n), out);
            }
            Value::String(s) => write_string(s, out),
            Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => {
                out.extend_from_slice(b"null")
            }
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_canonical(View::Json(item), out, depth + 1);
                }
                out.push(b']');
            }
            Value::Object(map) => {
                // serde_json's map is sorted unless a crate turns on `preserve_order`.
                let mut members: Vec<_> = map.iter().collect();
                if !members.windows(2).all(|w| w[0].0 < w[1].0) {
                    members.sort_by(|a, b| a.0.cmp(b.0));
                }
                out.push(b'{');
                for (i, (key, value)) in members.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_string(key, out);
                    out.push(b':');
                    write_canonical(View::Json(value), out, depth + 1);
                }
                out.push(b'}');
            }
        },
    }
}

fn write_number(n: &Num, out: &mut impl std::io::Write) -> std::io::Result<()> {
    match n {
        Num::Int(i) => write!(out, "{i}"),
        Num::UInt(u) => write!(out, "{u}"),
        // serde_json's own float formatting (shortest round trip, `.0` on integers).
        Num::Float(f) => serde_json::to_writer(&mut *out, f).map_err(std::io::Error::other),
        Num::Big(text) => out.write_all(text.as_bytes()),
    }
}

/// serde_json's escaping: `"`, `\` and control characters; everything else as UTF-8.
fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let Some(first) = crate::json::find_string_special(bytes, 0) else {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    };
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().skip(first) {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    fn canonical(view: View<'_>) -> String {
        let mut out = Vec::new();
        write_canonical(view, &mut out, 0);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_and_values_hash_alike_whatever_the_layout() {
        let text = "{ \"b\": [1, 1.50, 1e2, -0], \"a\": \"q\\\"\\u0001é\\n\", \"c\": {\"z\": null, \"y\": true} }";
        let node = parse(text).unwrap().root;
        let value: Value = serde_json::from_str(text).unwrap();
        let expected = r#"{"a":"q\"\u0001é\n","b":[1,1.5,100.0,-0.0],"c":{"y":true,"z":null}}"#;
        assert_eq!(canonical(View::Node(&node)), expected);
        assert_eq!(canonical(View::Json(&value)), expected);
        assert_eq!(serde_json::to_string(&value).unwrap(), expected);
        let reordered =
            parse(r#"{"c":{"y":true,"z":null},"a":"q\"\u0001é\n","b":[1,1.5,100.0,-0]}"#)
                .unwrap()
                .root;
        assert_eq!(
            payload_hash(View::Node(&node)),
            payload_hash(View::Node(&reordered))
        );
        assert_eq!(
            payload_hash(View::Node(&node)),
            payload_hash(View::Json(&value))
        );
        assert_eq!(payload_hash(View::Node(&node)).len(), 64);
    }

    #[test]
    fn canonical_text_hashes_as_is() {
        let value = serde_json::json!({"z": [1, 2.5, -0.0, 1e300, "é\u{1}\n\"/"], "a": {"k": null, "b": true}});
        let text = serde_json::to_string(&value).unwrap();
        let parsed = parse(&text).unwrap();
        assert!(parsed.canonical, "{text}");
        assert_eq!(
            payload_hash_of_canonical(&text),
            payload_hash(View::Node(&parsed.root))
        );
        assert_eq!(
            payload_hash_of_canonical(&text),
            payload_hash(View::Json(&value))
        );
        assert!(number_is_canonical(
            "123456789012345678901234567890.123456789012345678901234567890"
        ));
        assert!(!number_is_canonical("1.0e2"));
    }

    #[test]
    fn big_numbers_keep_their_digits_in_the_hash() {
        let a = parse(r#"{"n": 123456789012345678901234567890}"#)
            .unwrap()
            .root;
        let b = parse(r#"{"n": 123456789012345678901234567891}"#)
            .unwrap()
            .root;
        assert_ne!(payload_hash(View::Node(&a)), payload_hash(View::Node(&b)));
        assert_eq!(
            canonical(View::Node(&a)),
            r#"{"n":123456789012345678901234567890}"#
        );
    }

    #[test]
    fn short_digests_are_stable() {
        assert_eq!(short_digest(["a", "b"]), short_digest(["a", "b"]));
        assert_ne!(short_digest(["a", "b"]), short_digest(["ab"]));
        assert_eq!(short_digest(["abc"]), "ba7816bf8f01cfea414140de5dae2223");
    }
}
