//! Secrets kept only as slow salted argon2 hashes (PHC strings, salt included): the phone's PINs and the
//! office's passwords are hashed and checked by the same two functions.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

pub use argon2::password_hash::Error as HashError;

/// `secret`'s argon2 hash with a fresh salt. Slow on purpose.
pub fn hash(secret: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|hash| hash.to_string())
}

/// Whether `secret` is the one `hash` was made from; a hash that cannot be read matches nothing. Slow on
/// purpose.
pub fn matches(hash: &str, secret: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_matches_its_own_salted_hash_only() {
        let first = hash("correct horse").unwrap();
        let second = hash("correct horse").unwrap();
        assert_ne!(first, second, "each hash has its own salt");
        assert!(first.starts_with("$argon2id$"), "{first}");
        assert!(matches(&first, "correct horse"));
        assert!(matches(&second, "correct horse"));
        assert!(!matches(&first, "correct horse "));
        assert!(
            !matches("not a hash", "correct horse"),
            "an unreadable hash matches nothing"
        );
    }
}
