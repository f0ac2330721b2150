//! From launch to the app: the data folder opened with the platform's key ([`open`]), or the set-up
//! screen for a phone not set up yet, and [`Phone`], the root component that shows whichever applies and
//! starts the sync loop once there is something to sync.
//!
//! Opening waits for the platform's key store, which on Android answers on the UI thread, so it runs on a
//! blocking task while the screen says the app is opening.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use dioxus::prelude::*;

use crate::app::{App, MAIN_CSS};
use crate::config::AppConfig;
use crate::enrolment::{Credential, OfficeUrl};
use crate::platform::{Platform, SharedPlatform};
use crate::screens::SetUpScreen;
use crate::store::AppStore;
use crate::sync::{run_sync_loop, SyncClient};
use crate::vault::{self, Vault, CREDENTIAL_FILE};

/// A phone ready to use: its store, and the client to sync with (`None` when its office address is
/// refused; the status line then says why).
#[derive(Debug, Clone)]
pub struct Ready {
    pub store: AppStore,
    pub client: Option<SyncClient>,
}

/// What the data folder turned out to hold.
#[derive(Debug, Clone)]
pub enum Opened {
    /// Not set up: the set-up screen, with `notice` above it (what happened to earlier data, if anything).
    SetUp {
        notice: Option<String>,
    },
    Ready(Ready),
}

/// Why the app could not open its data. Nothing is deleted: the person is told, and may try again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("This phone's data could not be opened: {0}. Close Doorstep and open it again; if this keeps happening, tell the office.")]
pub struct OpenFailed(pub String);

/// Opens the phone's data in `data_dir`: the platform's key, the credential, the store, and a sync client
/// for an office address this phone will talk to.
pub fn open(data_dir: &Path, platform: Arc<dyn Platform>) -> Result<Opened, OpenFailed> {
    let failed = |error: &dyn std::fmt::Display| OpenFailed(error.to_string());
    let Some(vault) = Vault::open(data_dir, platform).map_err(|e| failed(&e))? else {
        let notice = if data_dir.join(CREDENTIAL_FILE).exists() {
            Some(
                "This phone's data can no longer be read: the key that sealed it is gone (was the phone reset?). \
                 Set it up again with a new code from an admin; what it held will be deleted."
                    .to_owned(),
            )
        } else {
            vault::wiped(data_dir).map(|(at, reason)| deleted_notice(at, reason))
        };
        return Ok(Opened::SetUp { notice });
    };
    let vault = Arc::new(vault);
    let Some(credential) = Credential::load(&vault).map_err(|e| failed(&e))? else {
        // A set-up that did not finish: the code was used, nothing else is there.
        return Ok(Opened::SetUp { notice: None });
    };
    let store = AppStore::open(vault, &credential.device_id).map_err(|e| failed(&e))?;
    Ok(Opened::Ready(ready(store, &credential)))
}

/// The store with a sync client for `credential`'s office, or without one if its address is refused.
pub fn ready(store: AppStore, credential: &Credential) -> Ready {
    let client = match OfficeUrl::parse(&credential.office_url) {
        Ok(url) => match SyncClient::new(url.as_str(), &credential.token) {
            Ok(client) => Some(client),
            Err(error) => {
                store.refuse_link(error.to_string());
                None
            }
        },
        Err(error) => {
            tracing::error!(%error, "not sending to the office");
            store.refuse_link(error.to_string());
            None
        }
    };
    Ready { store, client }
}

/// What the set-up screen says after this phone deleted its data.
fn deleted_notice(at: DateTime<Utc>, reason: vault::WipeReason) -> String {
    // The phone's own clock: the school's time zone went with everything else the phone kept.
    format!(
        "Everything Doorstep kept on this phone was deleted on {}: {}. To use Doorstep again, set it up with a new code from an admin.",
        at.with_timezone(&chrono::Local).format("%-d %b %Y at %H:%M"),
        reason.words()
    )
}

/// Starts syncing a phone that is ready (once: the loop runs until the phone is revoked).
fn start_syncing(ready: &Ready) {
    if let Some(client) = &ready.client {
        let store = ready.store.clone();
        tokio::spawn(run_sync_loop(
            client.clone(),
            store.clone(),
            store.wake_handle(),
        ));
    }
}

/// The root component: opening, the set-up screen, or the app. Needs an [`AppConfig`] and a
/// [`SharedPlatform`] as context.
#[component]
pub fn Phone() -> Element {
    let config = use_context::<AppConfig>();
    let platform = use_context::<SharedPlatform>();
    let mut opened = use_signal(|| None::<Result<Opened, OpenFailed>>);
    let dir = config.data_dir.clone();
    let opening = platform.clone();
    use_future(move || {
        let dir = dir.clone();
        let platform = opening.clone();
        async move {
            let result = tokio::task::spawn_blocking(move || open(&dir, platform))
                .await
                .unwrap_or_else(|error| Err(OpenFailed(error.to_string())));
            if let Ok(Opened::Ready(ready)) = &result {
                if let Err(error) = ready.store.forget_briefings_if_out_of_touch(Utc::now()) {
                    tracing::warn!(%error, "could not check how long the phone was out of touch");
                }
                start_syncing(ready);
            }
            opened.set(Some(result));
        }
    });
    let body = match &*opened.read() {
        None => rsx! { p { class: "notice", id: "opening", "Opening…" } },
        Some(Err(error)) => {
            rsx! { p { class: "error", role: "alert", id: "open-failed", "{error}" } }
        }
        Some(Ok(Opened::SetUp { notice })) => rsx! {
            SetUpScreen {
                notice: notice.clone(),
                prefill: config.enrol_link.clone(),
                data_dir: config.data_dir.clone(),
                on_ready: move |ready: Ready| {
                    start_syncing(&ready);
                    opened.set(Some(Ok(Opened::Ready(ready))));
                },
            }
        },
        Some(Ok(Opened::Ready(ready))) => rsx! { Enrolled { store: ready.store.clone() } },
    };
    let is_ready = matches!(&*opened.read(), Some(Ok(Opened::Ready(_))));
    if is_ready {
        // The app draws its own page.
        body
    } else {
        rsx! {
            style { {MAIN_CSS} }
            div { class: "app", {body} }
        }
    }
}

/// The app over a ready phone's store.
#[component]
fn Enrolled(store: AppStore) -> Element {
    use_context_provider(|| store.clone());
    rsx! { App {} }
}
