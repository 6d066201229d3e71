//! Session ids and their log-safe tags.

use std::hash::{BuildHasher, Hasher};

use crate::{Result, SessionError};

/// Bytes of randomness in a session id the store creates (256 bits).
pub const ID_BYTES: usize = 32;

/// A new session id: 256 bits from the operating system's CSPRNG, base64url without padding
/// (43 characters).
pub(crate) fn new_id() -> Result<String> {
    let mut bytes = [0u8; ID_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| {
        SessionError::Databank(databank_core::Error::backend(
            "session-store",
            e.to_string(),
        ))
    })?;
    Ok(base64url(&bytes))
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// A short, stable tag standing for a session id in logs (never the id itself): 8 hex digits
/// of a keyed hash.
pub(crate) fn tag(sid: &str) -> String {
    static KEY: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let mut hasher = KEY.get_or_init(Default::default).build_hasher();
    hasher.write(sid.as_bytes());
    format!("{:08x}", hasher.finish() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_long_distinct_and_url_safe() -> Result<()> {
        let a = new_id()?;
        let b = new_id()?;
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        Ok(())
    }

    #[test]
    fn base64url_matches_known_vectors() {
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn tags_hide_the_id() {
        let sid = "a-very-secret-session-id";
        assert_eq!(tag(sid), tag(sid));
        assert!(!tag(sid).contains("secret"));
        assert_eq!(tag(sid).len(), 8);
    }
}
