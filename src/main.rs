//! Starts the phone app: read the enrolment, open the store, start the sync loop, open the window.

use std::process::ExitCode;

use anyhow::Context;
use doorstep::app::App;
use doorstep::config::AppConfig;
use doorstep::platform::SharedPlatform;
use doorstep::store::AppStore;
use doorstep::sync::{run_sync_loop, SyncClient};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("doorstep: {}", explain(&error));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes in one line, skipping causes whose words the message already repeats (many
/// error types print their source in their own message).
fn explain(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
    }
    message
}

fn run() -> anyhow::Result<()> {
    // Shared with the screens as Dioxus context: `use_context::<SharedPlatform>()`.
    let platform: SharedPlatform = doorstep::platform::current().into();
    let config = AppConfig::from_env(platform.as_ref()).context("cannot start Doorstep")?;
    let store = AppStore::open_in(&config.data_dir, &config.device_id).with_context(|| {
        format!(
            "cannot open the phone's database in {}",
            config.data_dir.display()
        )
    })?;
    tracing::info!(office = %config.office_url, device = %config.device_id, data = %config.data_dir.display(), "starting");
    let client = SyncClient::new(&config.office_url, &config.device_token)?;
    // For the alert screen's "Text the office": the text carries the alert, signed with this key.
    let sms_key = config.sms_key();

    // Our own runtime runs the sync loop; entering it lets the window's event loop reuse it for the
    // screens' timers rather than start a second one.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.spawn(run_sync_loop(client, store.clone(), store.wake_handle()));
    let _entered = runtime.enter();

    dioxus::LaunchBuilder::new()
        .with_cfg(launch_config())
        .with_context(store)
        .with_context(platform)
        .with_context(sms_key)
        .launch(App);
    Ok(())
}

/// The page the app draws into: titled "Doorstep" (what a screen reader announces, on every screen) and in
/// British English.
const INDEX_HTML: &str = include_str!("../assets/index.html");

/// A phone-sized window titled "Doorstep", without the desktop menu bar.
#[cfg(feature = "desktop")]
fn launch_config() -> dioxus::desktop::Config {
    use dioxus::desktop::{Config, LogicalSize, WindowBuilder};
    Config::new()
        .with_custom_index(INDEX_HTML.to_owned())
        .with_menu(None)
        .with_window(
            WindowBuilder::new()
                .with_title("Doorstep")
                .with_inner_size(LogicalSize::new(390.0, 844.0))
                .with_resizable(true),
        )
}

/// On a phone the system decides the window; only the title is ours.
#[cfg(all(feature = "mobile", not(feature = "desktop")))]
fn launch_config() -> dioxus::mobile::Config {
    use dioxus::mobile::{Config, WindowBuilder};
    Config::new()
        .with_custom_index(INDEX_HTML.to_owned())
        .with_window(WindowBuilder::new().with_title("Doorstep"))
}

#[cfg(not(any(feature = "desktop", feature = "mobile")))]
compile_error!("build Doorstep with the `desktop` or the `mobile` feature");
