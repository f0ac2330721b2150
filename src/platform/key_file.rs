//! The data key in a file beside the data: the desktop build's fallback when no secret service (GNOME
//! Keyring, KWallet) is running, as in tests and CI, and the tests' own key store.
//!
//! The file is created readable only by its owner and says at the top what it is and what it does not
//! protect against: anyone who can read it can read the phone's data. A real phone never uses it: Android
//! and iOS keep the key in their keystores.

use std::path::{Path, PathBuf};

use super::PlatformError;
use crate::vault::{write_replacing, DataKey, KEY_FILE};

/// The warning at the top of the key file.
pub const WARNING: &str = "\
# Doorstep's data key for this folder, kept in this file because no secret service (GNOME Keyring,
# KWallet) was running when this phone was set up. WARNING: anyone who can read this file can read the
# data Doorstep keeps here. It is for development and tests; a real phone keeps its key in the
# phone's keystore (Android Keystore, iOS Keychain). See docs/security.md.
";

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

/// The key in `data_dir`'s key file, if there is one.
pub fn load(data_dir: &Path) -> Result<Option<DataKey>, PlatformError> {
    let text = match std::fs::read_to_string(path(data_dir)) {
        Ok(text) => zeroize::Zeroizing::new(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(PlatformError::KeyStore(format!(
                "could not read the key file: {error}"
            )))
        }
    };
    let line = text
        .lines()
        .find(|line| !line.starts_with('#') && !line.trim().is_empty())
        .ok_or_else(|| PlatformError::KeyStore("the key file holds no key".into()))?;
    DataKey::from_text(line).map(Some)
}

/// Writes `key` to `data_dir`'s key file, readable only by its owner, with the warning above it.
pub fn store(data_dir: &Path, key: &DataKey) -> Result<(), PlatformError> {
    let text = zeroize::Zeroizing::new(format!("{WARNING}{}\n", key.to_text().as_str()));
    write_replacing(&path(data_dir), text.as_bytes())
        .map_err(|error| PlatformError::KeyStore(error.to_string()))?;
    tracing::warn!(
        file = %path(data_dir).display(),
        "no secret service: this phone's data key is in a file beside its data (development and tests only)"
    );
    Ok(())
}

/// Deletes `data_dir`'s key file, if there is one.
pub fn delete(data_dir: &Path) -> Result<(), PlatformError> {
    match std::fs::remove_file(path(data_dir)) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(PlatformError::KeyStore(format!(
            "could not delete the key file: {error}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_private_says_what_it_is_and_gives_the_key_back() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        let key = DataKey::generate();
        store(dir.path(), &key).unwrap();
        let text = std::fs::read_to_string(dir.path().join(KEY_FILE)).unwrap();
        assert!(text.starts_with(WARNING), "{text}");
        assert!(text.contains("anyone who can read this file can read the"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        assert_eq!(
            load(dir.path()).unwrap().unwrap().as_bytes(),
            key.as_bytes()
        );
        delete(dir.path()).unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        delete(dir.path()).unwrap();
        std::fs::write(dir.path().join(KEY_FILE), "# only a comment\n").unwrap();
        assert!(load(dir.path()).is_err(), "a damaged key file is an error");
    }
}
