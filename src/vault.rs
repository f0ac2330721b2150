//! The phone at rest: its data folder sealed with a key the platform's keystore holds.
//!
//! [`DataKey`] is 256 random bits, made when the phone is set up and held by the platform (the Android
//! Keystore, the iOS Keychain, the desktop's secret service or, failing that, a key file: see
//! `Platform::create_data_key`). [`Cipher`] seals with it: XChaCha20-Poly1305, a fresh random 192-bit nonce
//! for every seal, and the record's name as associated data, so a sealed record cannot be read, altered or
//! moved to another row without the key. The event log seals every event body and the holdings with it
//! (`EventLog::open_sealed`); [`Vault`] seals whole files the same way (the credential, the PINs).
//!
//! Why fields and not SQLCipher: SQLCipher's bundled builds link OpenSSL's libcrypto, which `cargo deny`
//! keeps out of the phone's mobile build (OpenSSL on Android is a known source of crashes at launch), and
//! the RustCrypto AEADs are pure Rust on every target. What a sealed row leaves readable is bookkeeping
//! (ids, sequence numbers, times, outbox states); docs/security.md says so.
//!
//! Deleting the phone's data ([`Vault::wipe`]) removes the files and then the key: on flash storage the old
//! blocks may linger until reused, but without the key they are noise.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use doorstep_core::event_log::{SealError, Sealer};
use zeroize::Zeroizing;

use crate::platform::{Platform, PlatformError};

/// The files a phone's data folder holds, all of which [`Vault::wipe`] deletes.
pub const DATABASE_FILE: &str = "doorstep.sqlite3";
/// The credential (office, device id, token), sealed.
pub const CREDENTIAL_FILE: &str = "credential.sealed";
/// The two PINs' argon2 hashes, sealed.
pub const PINS_FILE: &str = "pins.sealed";
/// This phone's own settings (nothing personal in them), plain JSON.
pub const SETTINGS_FILE: &str = "settings.json";
/// Written by [`Vault::wipe`]: when and why this phone's data was deleted, so the next start can say so.
/// Holds no data of anyone's.
pub const WIPED_FILE: &str = "deleted.txt";
/// Where the desktop keeps the data key when no secret service is running (see `platform::desktop`).
pub const KEY_FILE: &str = "data-key.txt";

/// The database's companions SQLite makes beside it.
const DATABASE_COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// The marker a sealed record starts with (version 1: XChaCha20-Poly1305, nonce then ciphertext and tag,
/// URL-safe base 64).
const SEALED_PREFIX: &str = "s1.";
const NONCE_LEN: usize = 24;

/// The phone's data key: 32 random bytes, wiped from memory when dropped.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// A new key from the system's random source.
    pub fn generate() -> Self {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&key);
        Self(Zeroizing::new(bytes))
    }

    /// A key from its 32 bytes (read back from a keystore).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PlatformError> {
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| PlatformError::KeyStore("the stored data key is not 32 bytes".into()))?;
        Ok(Self(Zeroizing::new(bytes)))
    }

    /// The key as text, for a keystore that keeps strings (the key file, the iOS bridge).
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(URL_SAFE_NO_PAD.encode(*self.0))
    }

    /// A key from [`DataKey::to_text`]'s text.
    pub fn from_text(text: &str) -> Result<Self, PlatformError> {
        let bytes =
            Zeroizing::new(URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| {
                PlatformError::KeyStore("the stored data key is not base 64".into())
            })?);
        Self::from_bytes(&bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

// The key never reaches a log.
impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<hidden>)")
    }
}

/// XChaCha20-Poly1305 with the phone's data key: the [`Sealer`] the event log and the sealed files use.
pub struct Cipher(XChaCha20Poly1305);

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(XChaCha20-Poly1305)")
    }
}

impl Cipher {
    pub fn new(key: &DataKey) -> Self {
        Self(XChaCha20Poly1305::new(Key::from_slice(key.as_bytes())))
    }
}

impl Sealer for Cipher {
    fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<String, SealError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .0
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| SealError("could not seal a record".into()))?;
        let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    fn open(&self, sealed: &str, context: &[u8]) -> Result<Vec<u8>, SealError> {
        let body = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or_else(|| SealError("the record is not sealed".into()))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError("the sealed record is damaged".into()))?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError("the sealed record is damaged".into()));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        self.0
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| {
                SealError(
                    "the sealed record is damaged, sealed for another record, or sealed with another key"
                        .into(),
                )
            })
    }
}

/// Why the data folder could not be used.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("could not use the data folder {}: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the phone's key store: {0}")]
    Keys(#[from] PlatformError),
    #[error("{name} could not be unsealed: {error}")]
    Sealed {
        name: &'static str,
        error: SealError,
    },
}

/// Why this phone deleted its data, as [`WIPED_FILE`] keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WipeReason {
    /// The office said an admin revoked this phone.
    Revoked,
}

impl WipeReason {
    /// What the phone says, after "Everything Doorstep kept on this phone was deleted".
    pub fn words(self) -> &'static str {
        match self {
            WipeReason::Revoked => "the school office removed this phone from Doorstep",
        }
    }

    fn name(self) -> &'static str {
        match self {
            WipeReason::Revoked => "revoked",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        (name == "revoked").then_some(WipeReason::Revoked)
    }
}

/// A phone's data folder and the key that seals it.
pub struct Vault {
    dir: PathBuf,
    key: DataKey,
    cipher: Arc<Cipher>,
    platform: Arc<dyn Platform>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// The folder's vault if the platform holds its key; `None` if it holds none (never set up, or
    /// deleted).
    pub fn open(dir: &Path, platform: Arc<dyn Platform>) -> Result<Option<Self>, VaultError> {
        let key = platform.load_data_key(dir)?;
        Ok(key.map(|key| Self::with_key(dir, key, platform)))
    }

    /// A fresh vault for a phone being set up: whatever Doorstep kept in the folder before (and the old
    /// key) is deleted first, then a new key is made and handed to the platform.
    pub fn create(dir: &Path, platform: Arc<dyn Platform>) -> Result<Self, VaultError> {
        std::fs::create_dir_all(dir).map_err(|error| VaultError::Io {
            path: dir.to_owned(),
            error,
        })?;
        restrict_to_owner(dir);
        delete_files(dir)?;
        platform.delete_data_key(dir)?;
        let key = platform.create_data_key(dir)?;
        Ok(Self::with_key(dir, key, platform))
    }

    fn with_key(dir: &Path, key: DataKey, platform: Arc<dyn Platform>) -> Self {
        Self {
            dir: dir.to_owned(),
            cipher: Arc::new(Cipher::new(&key)),
            key,
            platform,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The sealer for the event log.
    pub fn sealer(&self) -> Arc<dyn Sealer> {
        self.cipher.clone()
    }

    /// The data key (tests open a second store on the same files with it).
    pub fn key(&self) -> &DataKey {
        &self.key
    }

    /// Writes `contents` to `name`, sealed for that name: a new file, synced, then moved over the old, so
    /// a flat battery leaves the old file or the new one, never half of either.
    pub fn write_sealed(&self, name: &'static str, contents: &[u8]) -> Result<(), VaultError> {
        let sealed = self
            .cipher
            .seal(contents, name.as_bytes())
            .map_err(|error| VaultError::Sealed { name, error })?;
        write_replacing(&self.path(name), sealed.as_bytes())
    }

    /// The contents of sealed file `name`, or `None` if there is no such file. A file that will not open
    /// with this key for this name is an error, never read as something else.
    pub fn read_sealed(
        &self,
        name: &'static str,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        let path = self.path(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(VaultError::Io { path, error }),
        };
        self.cipher
            .open(text.trim(), name.as_bytes())
            .map(|plain| Some(Zeroizing::new(plain)))
            .map_err(|error| VaultError::Sealed { name, error })
    }

    /// Deletes everything Doorstep kept in the folder (the database and its companions, the credential,
    /// the PINs, the settings), then the key; then notes when and why, so the next start can say so.
    pub fn wipe(
        &self,
        reason: WipeReason,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), VaultError> {
        delete_files(&self.dir)?;
        self.platform.delete_data_key(&self.dir)?;
        write_replacing(
            &self.path(WIPED_FILE),
            format!("{} {}\n", at.to_rfc3339(), reason.name()).as_bytes(),
        )
    }
}

/// When and why this folder's data was deleted, if it was.
pub fn wiped(dir: &Path) -> Option<(chrono::DateTime<chrono::Utc>, WipeReason)> {
    let text = std::fs::read_to_string(dir.join(WIPED_FILE)).ok()?;
    let (at, reason) = text.trim().split_once(' ')?;
    let at = chrono::DateTime::parse_from_rfc3339(at).ok()?.to_utc();
    Some((at, WipeReason::from_name(reason)?))
}

/// Deletes every file Doorstep keeps in `dir` (not the desktop's key file: the platform deletes its key).
fn delete_files(dir: &Path) -> Result<(), VaultError> {
    let mut names: Vec<String> = vec![
        DATABASE_FILE.into(),
        CREDENTIAL_FILE.into(),
        PINS_FILE.into(),
        SETTINGS_FILE.into(),
        WIPED_FILE.into(),
        // From before the phone sealed its files.
        "pins.json".into(),
        "enrolment.json".into(),
    ];
    names.extend(
        DATABASE_COMPANIONS
            .iter()
            .map(|suffix| format!("{DATABASE_FILE}{suffix}")),
    );
    for name in names {
        let path = dir.join(&name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(VaultError::Io { path, error }),
        }
    }
    Ok(())
}

/// Writes `contents` over `path` by the one rule for secret files
/// ([`doorstep_core::private_file::write_replacing`]: owner-only, complete or not at all).
pub fn write_replacing(path: &Path, contents: &[u8]) -> Result<(), VaultError> {
    doorstep_core::private_file::write_replacing(path, contents).map_err(|error| VaultError::Io {
        path: path.to_owned(),
        error,
    })
}

/// Makes the data folder readable only by its owner (on Unix; phones' app folders already are).
fn restrict_to_owner(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(error) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
            tracing::warn!(%error, "could not make the data folder private");
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_record_opens_only_with_its_key_and_for_its_own_record() {
        let key = DataKey::generate();
        let cipher = Cipher::new(&key);
        let sealed = cipher.seal(b"Ava's asthma", b"event 1").unwrap();
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("asthma"));
        assert_eq!(cipher.open(&sealed, b"event 1").unwrap(), b"Ava's asthma");
        assert_ne!(
            cipher.seal(b"Ava's asthma", b"event 1").unwrap(),
            sealed,
            "a fresh nonce each time"
        );
        assert!(cipher.open(&sealed, b"event 2").is_err(), "another record");
        assert!(
            Cipher::new(&DataKey::generate())
                .open(&sealed, b"event 1")
                .is_err(),
            "another key"
        );
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(cipher.open(&tampered, b"event 1").is_err(), "altered");
        assert!(
            cipher.open("{\"plain\":1}", b"event 1").is_err(),
            "never sealed"
        );
        assert!(cipher.open("s1.", b"event 1").is_err(), "too short");
    }

    #[test]
    fn a_key_goes_to_text_and_back_and_hides_from_debug() {
        let key = DataKey::generate();
        let back = DataKey::from_text(&key.to_text()).unwrap();
        assert_eq!(back.as_bytes(), key.as_bytes());
        assert_eq!(format!("{key:?}"), "DataKey(<hidden>)");
        assert!(DataKey::from_text("short").is_err());
        assert!(DataKey::from_bytes(&[0; 31]).is_err());
    }
}
