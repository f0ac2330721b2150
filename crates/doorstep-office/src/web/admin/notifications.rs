//! `/admin/notifications`: where the school's alarms and safeguarding notices are sent beyond the board.
//! Each target is an email address or a signed webhook, with the alarm levels it wants (the board, the
//! authoriser's level, the deputy and further contacts) and the roles whose contact it is (safeguarding
//! notices go to the targets of the policy's `safeguarding_concerns_to`). Admins add and remove them here;
//! a removed target is kept, so its past deliveries stay readable. The command line's `add-target` does the
//! same.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use doorstep_core::domain::Role;
use maud::{html, Markup};

use super::{admin_page, Admin};
use crate::logins::Session;
use crate::notify::{NewTarget, NotificationTarget, WantedLevels};
use crate::state::AppState;
use crate::web::extract::CsrfForm;
use crate::web::forms::{from_wire, wire, Fields};
use crate::web::{checked_for_school, for_school, id_in_path, WebError};

/// The levels a target may want, with the form's names and the page's words.
fn level_choices(session: &Session) -> [(&'static str, String); 3] {
    let authoriser = session.user.policy.authoriser.label();
    [
        (
            "wants_board",
            "Alarms as they are raised on the board (the office)".to_owned(),
        ),
        (
            "wants_authoriser",
            format!("Alarms that reach the {authoriser}'s level (escalations and duress)"),
        ),
        (
            "wants_further",
            format!(
                "Alarms the {authoriser}'s level has not acknowledged in time (a deputy, the Principal or senior leaders)"
            ),
        ),
    ]
}

fn levels_words(wants: WantedLevels) -> String {
    let mut words = Vec::new();
    if wants.board {
        words.push("board");
    }
    if wants.authoriser {
        words.push("authoriser's level");
    }
    if wants.further {
        words.push("further contacts");
    }
    if words.is_empty() {
        "no alarms".into()
    } else {
        words.join(", ")
    }
}

fn roles_words(roles: &[Role]) -> String {
    if roles.is_empty() {
        "—".into()
    } else {
        roles
            .iter()
            .map(|r| r.label())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn page(
    session: &Session,
    targets: &[NotificationTarget],
    form: &Fields,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let zone = &session.user.school.time_zone;
    let live: Vec<&NotificationTarget> = targets
        .iter()
        .filter(|t| t.is_live() && t.visit.is_none())
        .collect();
    let contacts = targets
        .iter()
        .filter(|t| t.is_live() && t.visit.is_some())
        .count();
    let removed: Vec<&NotificationTarget> = targets
        .iter()
        .filter(|t| !t.is_live() && t.visit.is_none())
        .collect();
    let safeguarding = session.user.policy.safeguarding_concerns_to;
    let covers_safeguarding = live.iter().any(|t| t.roles.contains(&safeguarding));
    let body = html! {
        p {
            "Alarms always show on the board. These targets are who else is told, by email or by a signed webhook \
             (an SMS gateway, a pager). Each delivery is recorded and shown with its alarm: delivered only when the \
             receiving server accepted it."
        }
        p {
            "Safeguarding concerns, incidents and \"felt unsafe\" notes go at once to the targets of the "
            strong { (safeguarding.label()) } " (the policy's choice), never with their words."
            @if !covers_safeguarding {
                " " span.problem #no-safeguarding-target { "No target is set up for the " (safeguarding.label()) ": nobody outside the board can be sent them." }
            }
        }
        section #targets {
            h2 { "Where alarms and notices are sent" }
            @if live.is_empty() {
                p.problem { "None yet." }
            } @else {
                table {
                    thead { tr { th { "How" } th { "Where" } th { "Whose" } th { "Alarms" } th { "Roles" } th { "Added" } th { "" } } }
                    tbody {
                        @for target in &live {
                            tr id={ "target-" (target.id) } {
                                td { (target.kind.as_str()) }
                                td { (target.shown_address()) }
                                td { (target.name) }
                                td { (levels_words(target.wants)) }
                                td { (roles_words(&target.roles)) }
                                td.small { (zone.format(target.created_at, "%Y-%m-%d %H:%M")) }
                                td {
                                    form method="post" action={ "/admin/notifications/" (target.id) "/remove" } {
                                        input type="hidden" name="csrf" value=(session.csrf_token);
                                        button type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if contacts > 0 {
                p.small { (contacts) " visit(s) also have their own out-of-hours responsible contact, told of that visit's alarms." }
            }
        }
        (add_form(session, form, problem))
        @if !removed.is_empty() {
            section #removed-targets {
                h2 { "Removed" }
                ul {
                    @for target in &removed {
                        li { (target.kind.as_str()) " " (target.shown_address())
                            @if let Some(at) = target.removed_at { " — removed " (zone.format(at, "%Y-%m-%d %H:%M")) } }
                    }
                }
            }
        }
    };
    admin_page(
        "Notifications",
        "/admin/notifications",
        session,
        status,
        body,
    )
}

fn add_form(session: &Session, form: &Fields, problem: Option<&str>) -> Markup {
    let kind = match form.one("kind") {
        "" => "email",
        other => other,
    };
    html! {
        section #add-target {
            h2 { "Add a target" }
            form method="post" action="/admin/notifications" {
                @if let Some(problem) = problem {
                    p.problem #problem role="alert" { (problem) }
                }
                input type="hidden" name="csrf" value=(session.csrf_token);
                p {
                    label { input type="radio" name="kind" value="email" checked[kind == "email"]; " Email" } " "
                    label { input type="radio" name="kind" value="webhook" checked[kind == "webhook"]; " Webhook" }
                }
                p { label for="address" { "Email address or webhook URL " } input #address name="address" size="50" value=(form.one("address")); }
                p { label for="secret" { "Webhook signing secret (16 to 256 characters; not for email) " }
                    input #secret name="secret" type="password" autocomplete="off"; }
                p { label for="name" { "Whose is it (a name or a post, optional) " } input #name name="name" value=(form.one("name")); }
                fieldset {
                    legend { "Which alarms" }
                    @for (name, words) in level_choices(session) {
                        div { label { input type="checkbox" name=(name) value="on" checked[form.ticked(name)]; " " (words) } }
                    }
                }
                fieldset {
                    legend { "Whose contact it is (for safeguarding notices)" }
                    @for role in Role::ALL.iter().copied() {
                        @let value = wire(role);
                        label { input type="checkbox" name="role" value=(value) checked[form.all("role").contains(&value.as_str())]; " " (role.label()) } " "
                    }
                }
                button #add-target-submit type="submit" { "Add target" }
            }
        }
    }
}

async fn load_targets(
    state: &AppState,
    session: &Session,
) -> Result<Vec<NotificationTarget>, WebError> {
    for_school(state, session, |store, school| {
        store.school_notification_targets(school)
    })
    .await
}

/// `GET /admin/notifications`.
pub async fn notifications_page(
    Admin(session): Admin,
    State(state): State<AppState>,
) -> Result<Response, WebError> {
    let targets = load_targets(&state, &session).await?;
    Ok(page(
        &session,
        &targets,
        &Fields::default(),
        None,
        StatusCode::OK,
    ))
}

/// The target a form describes, or what is wrong with it.
fn target_from(form: &Fields) -> Result<NewTarget, String> {
    let wants = WantedLevels {
        board: form.ticked("wants_board"),
        authoriser: form.ticked("wants_authoriser"),
        further: form.ticked("wants_further"),
    };
    let mut roles = Vec::new();
    for text in form.all("role") {
        roles.push(from_wire::<Role>(text).ok_or_else(|| format!("{text:?} is not a role"))?);
    }
    let address = form.one("address");
    let target = match form.one("kind") {
        "email" => NewTarget::email(address, wants),
        "webhook" => NewTarget::webhook(address, form.raw("secret"), wants),
        _ => return Err("choose email or webhook".into()),
    }
    .and_then(|t| t.named(form.one("name")))
    .map_err(|e| e.to_string())?;
    Ok(target.for_roles(&roles))
}

/// `POST /admin/notifications`: adds a target; a refused form comes back as typed (never the secret), and
/// nothing is saved.
pub async fn add_target(
    Admin(session): Admin,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let refused_with = |problem: String, targets: Vec<NotificationTarget>| {
        page(
            &session,
            &targets,
            &form,
            Some(&problem),
            StatusCode::BAD_REQUEST,
        )
    };
    let target = match target_from(&form) {
        Ok(target) => target,
        Err(problem) => {
            let targets = load_targets(&state, &session).await?;
            return Ok(refused_with(
                format!("{}; nothing was saved.", problem.trim_end_matches('.')),
                targets,
            ));
        }
    };
    let now = state.now();
    let added = checked_for_school(&state, &session, move |store, school| {
        store.add_notification_target(school, &target, now)
    })
    .await?;
    match added {
        Ok(added) => {
            tracing::info!(id = added.id, target = %added.label(), by = %session.user.staff.id, "notification target added");
            if let Some(escalation) = &state.escalation {
                escalation.targets_changed(session.user.school.id.clone());
            }
            Ok(Redirect::to("/admin/notifications").into_response())
        }
        Err(problem) => {
            let targets = load_targets(&state, &session).await?;
            Ok(refused_with(
                format!("{}; nothing was saved.", problem.trim_end_matches('.')),
                targets,
            ))
        }
    }
}

/// `POST /admin/notifications/{id}/remove`: nothing more is sent to it; its deliveries stay on record.
pub async fn remove_target(
    Admin(session): Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    _: CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let id: i64 = id_in_path(path, "notification target")?;
    let by = session.user.staff.name.clone();
    let now = state.now();
    // Another school's target, or one already removed, is "there is no target", as a missing one.
    let target = checked_for_school(&state, &session, move |store, school| {
        store.remove_notification_target(school, id, &by, now)
    })
    .await?
    .map_err(WebError::NotFound)?;
    tracing::info!(id, target = %target.label(), by = %session.user.staff.id, "notification target removed");
    if let Some(escalation) = &state.escalation {
        escalation.targets_changed(session.user.school.id.clone());
    }
    Ok(Redirect::to("/admin/notifications").into_response())
}
