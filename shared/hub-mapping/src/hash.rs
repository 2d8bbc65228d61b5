//! The payload hash of a mapped entity and the digests inside dedup keys.
//!
//! The payload hash is the XXH3-128 of the entity's JSON text, which the mapper writes in a
//! canonical form (members sorted by key, no whitespace, serde_json's escapes and number
//! forms), so equal entities hash alike however their records were laid out. The writer skips
//! an item whose hash equals the stored one, so what it compares is exactly what it would
//! write: a change to a field no mapping reads writes nothing, and a new schema version that
//! maps a record differently rewrites it. It detects change, it authenticates nothing: a
//! tenant's records are compared only with that tenant's stored versions of themselves, and
//! 128 bits make an accidental collision out of reach, so a non-cryptographic hash does, at a
//! tenth of SHA-256's cost (measured in BENCHMARKS.md, "Conversion engine").
//!
//! Dedup keys identify records and do use SHA-256: two external ids whose keys collided would
//! merge two records, and ids may come from anyone who can create a record upstream.

use sha2::{Digest, Sha256};
use xxhash_rust::xxh3::xxh3_128;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends the lowercase hex of `bytes`.
fn push_hex(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// Lowercase hex XXH3-128 (big-endian, as the reference `XXH128_canonicalFromHash` writes
/// it) of an entity's canonical JSON text.
pub(crate) fn payload_hash(entity: &str) -> String {
    let mut out = String::with_capacity(32);
    push_hex(&mut out, &xxh3_128(entity.as_bytes()).to_be_bytes());
    out
}

/// `prefix` (its pieces joined) then the first 128 bits of the SHA-256 of `parts` joined by
/// U+001F, in hex: a dedup key.
pub(crate) fn short_digest<'a>(
    prefix: &[&str],
    parts: impl IntoIterator<Item = &'a str>,
) -> String {
    let mut hasher = Sha256::new();
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            hasher.update([0x1f]);
        }
        hasher.update(part.as_bytes());
    }
    let length: usize = prefix.iter().map(|p| p.len()).sum();
    let mut out = String::with_capacity(length + 32);
    for piece in prefix {
        out.push_str(piece);
    }
    push_hex(&mut out, &hasher.finalize()[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_hashes_are_hex_xxh3_128_of_the_text() {
        // The reference implementation's vector (xxhsum -H2 of empty input).
        assert_eq!(payload_hash(""), "99aa06d3014798d86001c324468d497f");
        let text = r#"{"a":"q\"\u0001é\n","b":[1,1.5,100.0,-0.0]}"#;
        assert_eq!(
            payload_hash(text),
            format!("{:032x}", xxh3_128(text.as_bytes()))
        );
        assert_ne!(payload_hash(text), payload_hash(&text.replace('1', "2")));
    }

    #[test]
    fn short_digests_are_stable() {
        assert_eq!(short_digest(&[], ["a", "b"]), short_digest(&[], ["a", "b"]));
        assert_ne!(short_digest(&[], ["a", "b"]), short_digest(&[], ["ab"]));
        assert_eq!(
            short_digest(&[], ["abc"]),
            "ba7816bf8f01cfea414140de5dae2223"
        );
        assert_eq!(
            short_digest(&["x:", "y:"], ["abc"]),
            "x:y:ba7816bf8f01cfea414140de5dae2223"
        );
    }
}
