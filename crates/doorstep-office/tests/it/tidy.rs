//! Tidiness checks over the whole repository (after rust-analyzer's `tidy` tests): every Rust file says
//! what lives in it on its first line, every path ARCHITECTURE.md names exists, and nothing a build or an
//! editor makes is committed. They read the files git knows; they need git and a checkout.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root: two folders above this crate.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// `git ls-files` with `args`, one path a line.
fn git_files(args: &[&str]) -> Vec<String> {
    let output = Command::new("git")
        .arg("ls-files")
        .args(args)
        .current_dir(root())
        .output()
        .expect("the tidy tests need git on the PATH");
    assert!(
        output.status.success(),
        "git ls-files failed (the tidy tests need a git checkout): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8 paths")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_rust_file_opens_with_a_line_saying_what_lives_there() {
    // Committed files and new ones not yet committed (but not ignored ones), as they are on disk.
    let files = git_files(&["--cached", "--others", "--exclude-standard", "--", "*.rs"]);
    assert!(files.len() > 50, "found the Rust files: {}", files.len());
    let bad: Vec<&String> = files
        .iter()
        .filter(|file| {
            // A file deleted but not yet committed is listed and absent: nothing to check.
            std::fs::read_to_string(root().join(file)).is_ok_and(|text| !text.starts_with("//! "))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "these files do not open with a `//! ` line saying what lives there: {bad:?}"
    );
}

/// What a build, a test run or an editor leaves behind, by path: none of it belongs in git.
fn generated(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    path.split('/').any(|part| {
        matches!(
            part,
            "__pycache__" | "target" | ".doorstep-demo" | "doorstep-office-data" | "node_modules"
        )
    }) || [".pyc", ".pyo", ".swp", ".swo", "~", ".orig", ".rej", ".tmp"]
        .iter()
        .any(|ending| name.ends_with(ending))
        || matches!(name, ".DS_Store" | "Thumbs.db")
        // What fuzzing grows and finds (scripts/fuzz).
        || ["fuzz/corpus/", "fuzz/artifacts/", "fuzz/coverage/"]
            .iter()
            .any(|dir| path.starts_with(dir))
}

#[test]
fn no_generated_file_is_committed() {
    let committed = git_files(&["--cached"]);
    let bad: Vec<&String> = committed.iter().filter(|path| generated(path)).collect();
    assert!(
        bad.is_empty(),
        "generated files are committed; remove them and ignore them in .gitignore: {bad:?}"
    );
    // The rule itself: each of these would be caught.
    for path in [
        "tests/desktop/__pycache__/atspi_driver.cpython-311.pyc",
        "target/debug/doorstep",
        ".doorstep-demo/office.sqlite3",
        "src/.app.rs.swp",
        "fuzz/artifacts/sync_request/crash-0a1b",
    ] {
        assert!(generated(path), "{path}");
    }
    assert!(!generated("crates/doorstep-office/src/store.rs"));
    assert!(!generated("fuzz/seeds/sync_request/batch.json"));
}

/// The backticked words of ARCHITECTURE.md that look like paths in the repository, each with the folders
/// it may be relative to: the root and its `src/`; under a `### \`crates/…\`` heading, that crate and its
/// `src/`; and any folder the same list item named before it (`web/` for `auth.rs`).
fn architecture_paths() -> Vec<(String, Vec<PathBuf>)> {
    let root = root();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut found = Vec::new();
    let mut section = root.clone();
    let mut item_folders: Vec<PathBuf> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            section = match line.strip_prefix("### ").and_then(|h| h.split('`').nth(1)) {
                Some(crate_dir) if crate_dir.starts_with("crates/") => root.join(crate_dir),
                _ => root.clone(),
            };
            item_folders.clear();
            continue;
        }
        if line.trim_start().starts_with("- ") || line.trim().is_empty() {
            item_folders.clear();
        }
        for (i, word) in line.split('`').enumerate() {
            // Odd pieces are inside backticks.
            if i % 2 == 0 || !looks_like_a_path(word) {
                continue;
            }
            let mut bases = vec![root.clone(), section.clone(), section.join("src")];
            bases.extend(item_folders.iter().cloned());
            found.push((word.to_owned(), bases.clone()));
            if word.ends_with('/') {
                for base in bases {
                    item_folders.push(base.join(word));
                }
            }
        }
    }
    found
}

/// A word that names a file or folder: no spaces or code, and a folder slash or a source file's ending. A
/// leading `/` is a URL path of the office, not a file.
fn looks_like_a_path(word: &str) -> bool {
    const ENDINGS: [&str; 12] = [
        ".rs", ".md", ".toml", ".sql", ".py", ".kt", ".swift", ".html", ".css", ".js", ".sh",
        ".pro",
    ];
    !word.is_empty()
        && !word.starts_with('/')
        && !word.contains(['(', ')', ' ', ':', '=', '<', '>', '{', '"', '*'])
        && (word.contains('/') || ENDINGS.iter().any(|ending| word.ends_with(ending)))
}

#[test]
fn every_path_architecture_md_names_exists() {
    let paths = architecture_paths();
    assert!(paths.len() > 40, "read the paths: {}", paths.len());
    let missing: Vec<&String> = paths
        .iter()
        .filter(|(word, bases)| !bases.iter().any(|base| base.join(word).exists()))
        .map(|(word, _)| word)
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that do not exist (moved? renamed?): {missing:?}"
    );
}

#[test]
fn what_looks_like_a_path_in_architecture_md() {
    for path in [
        "web/",
        "records/pdf.rs",
        ".ci/run",
        "smtp.rs",
        "scripts/demo",
    ] {
        assert!(looks_like_a_path(path), "{path}");
    }
    for not in [
        "/admin/staff",
        "AppStore::perform",
        "sms:",
        "router(state)",
        "Cargo",
    ] {
        assert!(!looks_like_a_path(not), "{not}");
    }
}
