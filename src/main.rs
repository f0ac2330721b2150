//! Starts the phone app: read where its data lives, then open the window with `startup::Phone`, which
//! opens the sealed data (or shows the set-up screen) and starts the sync loop.

use std::process::ExitCode;

use anyhow::Context;
use doorstep::config::AppConfig;
use doorstep::platform::SharedPlatform;
use doorstep::startup::Phone;
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
    tracing::info!(data = %config.data_dir.display(), "starting");

    // Our own runtime runs the sync loop and the set-up's request; entering it lets the window's event
    // loop reuse it for the screens' timers rather than start a second one.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let _entered = runtime.enter();

    dioxus::LaunchBuilder::new()
        .with_cfg(launch_config())
        .with_context(config)
        .with_context(platform)
        .launch(Phone);
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
