//! The dashboard's script and styles: files in the crate's `assets/` folder, compiled into the binary, and
//! served at `/assets/` under a name that carries a hash of their content (`board-1a2b3c4d5e6f7a8b.js`).
//!
//! A new build with a changed file has a new name, so a browser may keep a file for a year without ever
//! asking again (`Cache-Control: immutable`), and never runs an old script against a new page. Pages name
//! them with the page's CSP nonce and their SHA-256 as subresource integrity ([`super::pages::page`]).

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// One file served from `/assets/`.
#[derive(Debug)]
pub struct Asset {
    /// The name the page asks for, with the content's hash: `board-1a2b3c4d5e6f7a8b.js`.
    file_name: String,
    /// `sha256-…`, for the `integrity` attribute.
    integrity: String,
    content_type: &'static str,
    body: &'static str,
}

impl Asset {
    fn new(stem: &str, extension: &str, content_type: &'static str, body: &'static str) -> Self {
        let digest = Sha256::digest(body.as_bytes());
        let short: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Self {
            file_name: format!("{stem}-{short}.{extension}"),
            integrity: format!(
                "sha256-{}",
                base64::engine::general_purpose::STANDARD.encode(digest)
            ),
            content_type,
            body,
        }
    }

    /// Where a page finds it: `/assets/board-1a2b3c4d5e6f7a8b.js`.
    pub fn url(&self) -> String {
        format!("/assets/{}", self.file_name)
    }

    pub fn integrity(&self) -> &str {
        &self.integrity
    }
}

/// The live board's script: live updates, the "not live" banner, the alarm sound.
pub static BOARD_JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "board",
        "js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/board.js"),
    )
});

/// The styles of every dashboard page.
pub static OFFICE_CSS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "office",
        "css",
        "text/css; charset=utf-8",
        include_str!("../../assets/office.css"),
    )
});

/// `GET /assets/{file}`: the asset of that exact name, cached for a year; any other name is a 404 (a name
/// from an older build included: its content is gone).
pub async fn asset(Path(file): Path<String>) -> Response {
    let Some(asset) = [&*BOARD_JS, &*OFFICE_CSS]
        .into_iter()
        .find(|asset| asset.file_name == file)
    else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        asset.body,
    )
        .into_response()
}
