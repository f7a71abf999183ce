//! Deterministic document ids. Appwrite's documents API has no transactions, so every write is
//! made idempotent by deriving its id from what it is about: the same fact always lands on the
//! same document, and a repeat is a 409 or an upsert, never a duplicate.

use sha2::{Digest, Sha256};

/// A valid Appwrite custom id (`[a-z0-9]`, 32 chars) derived from the given parts. Parts are
/// length-prefixed so `("ab", "c")` and `("a", "bc")` differ.
pub fn derive(kind: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for part in std::iter::once(kind).chain(parts.iter().copied()) {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_distinct_and_valid() {
        let a = derive("subscription", &["a@b.c", "pro"]);
        assert_eq!(a, derive("subscription", &["a@b.c", "pro"]));
        assert_ne!(a, derive("subscription", &["a@b.c", "vip"]));
        assert_ne!(derive("x", &["ab", "c"]), derive("x", &["a", "bc"]));
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
