//! What a phone says once the office has revoked it and it has deleted everything Doorstep kept on it:
//! when, why, and how to use Doorstep again. Nothing else is shown (there is nothing left to show).

use chrono::{DateTime, Utc};
use dioxus::prelude::*;

use crate::vault::WipeReason;

#[component]
pub(crate) fn RemovedScreen(at: DateTime<Utc>, reason: WipeReason) -> Element {
    // The phone's own clock: the school's time zone went with everything else the phone kept.
    let when = at
        .with_timezone(&chrono::Local)
        .format("%-d %b %Y at %H:%M")
        .to_string();
    let why = reason.words();
    rsx! {
        header { class: "top", h1 { "Doorstep" } }
        main { class: "removed",
            p { class: "notice", role: "status", id: "removed",
                "Everything Doorstep kept on this phone was deleted on {when}: {why}."
            }
            p { "Nothing about any visit, pupil or family is left on it. To use Doorstep again, ask an admin for a new enrolment code, then close and open the app." }
        }
    }
}
