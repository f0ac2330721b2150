//! Writing a file that holds a secret (the phone's sealed files and key, the office's demo sign-ins): readable
//! only by its owner, and on disk complete or not at all. The phone and the office write such files by this
//! one rule.

use std::io::Write;
use std::path::Path;

/// Writes `contents` to a new file beside `path` (readable only by its owner on Unix, from the moment it
/// exists), syncs it, and renames it over `path`, so a reader sees the old file or the new one, never half of
/// one; then syncs the folder, since the rename itself is on disk only once the folder is.
pub fn write_replacing(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let fresh = path.with_extension("new");
    let _ = std::fs::remove_file(&fresh);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&fresh)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&fresh, path)?;
    if let Some(parent) = path.parent() {
        if let Ok(folder) = std::fs::File::open(parent) {
            let _ = folder.sync_all();
        }
    }
    Ok(())
}
