//! HMAC, digests, strict signature decoding and constant-time comparison.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use subtle::ConstantTimeEq;

/// The hash under an HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HmacAlgorithm {
    Sha1,
    #[default]
    Sha256,
    Sha512,
}

impl HmacAlgorithm {
    /// Length of a MAC in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }
}

/// An HMAC key (the bytes a route's secret stands for after the scheme's decoding: Svix and
/// Teams base64-decode, most use the text as is). Redacted in `Debug` by `secrecy`.
#[derive(Debug, Clone)]
pub(crate) struct HmacKey(SecretSlice<u8>);

impl HmacKey {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        Self(SecretSlice::from(bytes))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// `HMAC(key, parts[0] + parts[1] + ...)`.
    pub(crate) fn mac(&self, algorithm: HmacAlgorithm, parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            // HMAC takes keys of any length; new_from_slice cannot fail for it.
            let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
                return Vec::new();
            };
            for part in parts {
                mac.update(part);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match algorithm {
            HmacAlgorithm::Sha1 => run::<Hmac<sha1::Sha1>>(self.bytes(), parts),
            HmacAlgorithm::Sha256 => run::<Hmac<sha2::Sha256>>(self.bytes(), parts),
            HmacAlgorithm::Sha512 => run::<Hmac<sha2::Sha512>>(self.bytes(), parts),
        }
    }
}

/// Whether any key's MAC over `parts` equals any of `signatures`. Every comparison is constant
/// time; the loops reveal only how many keys and signatures there are, which is no secret.
pub(crate) fn any_mac_matches(
    algorithm: HmacAlgorithm,
    keys: &[HmacKey],
    parts: &[&[u8]],
    signatures: &[Vec<u8>],
) -> bool {
    keys.iter().any(|key| {
        let expected = key.mac(algorithm, parts);
        signatures
            .iter()
            .any(|signature| constant_time_eq(&expected, signature))
    })
}

/// Constant time for equal lengths; lengths are public (every signature of a scheme has one).
pub(crate) fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len() && bool::from(left.ct_eq(right))
}

pub(crate) fn sha256(parts: &[&[u8]]) -> Vec<u8> {
    let mut digest = sha2::Sha256::new();
    for part in parts {
        digest.update(part);
    }
    digest.finalize().to_vec()
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha256(&[bytes]))
}

/// Lower-case hex of exactly `len` bytes. Upper case is refused: every provider sends lower
/// case, and accepting both would let a changed signature header still verify.
pub(crate) fn decode_lower_hex(text: &str, len: usize) -> Option<Vec<u8>> {
    let well_formed = text.len() == 2 * len
        && text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
    if well_formed {
        hex::decode(text).ok()
    } else {
        None
    }
}

/// Canonical padded base64 of exactly `len` bytes (non-zero trailing bits are refused).
pub(crate) fn decode_base64(text: &str, len: usize) -> Option<Vec<u8>> {
    BASE64.decode(text).ok().filter(|bytes| bytes.len() == len)
}

pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// Any-length base64 (secrets), strict like [`decode_base64`].
pub(crate) fn decode_base64_any(text: &str) -> Option<Vec<u8>> {
    BASE64.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_of_every_algorithm_matches_rfc_4231_and_2202() {
        // RFC 4231 test case 2 (key "Jefe") and RFC 2202 test case 2 for SHA-1.
        let key = HmacKey::new(b"Jefe".to_vec());
        let message: &[&[u8]] = &[b"what do ya want ", b"for nothing?"];
        assert_eq!(
            hex::encode(key.mac(HmacAlgorithm::Sha256, message)),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(key.mac(HmacAlgorithm::Sha512, message)),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
        assert_eq!(
            hex::encode(key.mac(HmacAlgorithm::Sha1, message)),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        for algorithm in [
            HmacAlgorithm::Sha1,
            HmacAlgorithm::Sha256,
            HmacAlgorithm::Sha512,
        ] {
            assert_eq!(key.mac(algorithm, message).len(), algorithm.output_len());
        }
    }

    #[test]
    fn signature_decoding_is_strict() {
        assert_eq!(decode_lower_hex("0aff", 2), Some(vec![0x0a, 0xff]));
        assert_eq!(decode_lower_hex("0AFF", 2), None);
        assert_eq!(decode_lower_hex("0af", 2), None);
        assert_eq!(decode_base64("AAE=", 2), Some(vec![0, 1]));
        assert_eq!(decode_base64("AAF=", 2), None, "non-zero trailing bits");
        assert_eq!(decode_base64("AAE", 2), None, "padding is required");
        assert_eq!(decode_base64("AAE=", 3), None);
    }

    #[test]
    fn several_keys_and_signatures() {
        let keys = [HmacKey::new(b"old".to_vec()), HmacKey::new(b"new".to_vec())];
        let by_new = keys[1].mac(HmacAlgorithm::Sha256, &[b"body"]);
        let other = vec![0u8; 32];
        assert!(any_mac_matches(
            HmacAlgorithm::Sha256,
            &keys,
            &[b"body"],
            &[other.clone(), by_new]
        ));
        assert!(!any_mac_matches(
            HmacAlgorithm::Sha256,
            &keys,
            &[b"body"],
            &[other]
        ));
    }
}
