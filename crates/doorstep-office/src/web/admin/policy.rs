//! `/admin/policy`: the school's policy, from a preset or edited field by field; validated as a whole
//! before it is stored, and sent to the phones at their next sync.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveTime;
use doorstep_core::domain::{Hazard, Role, SchoolTimeZone, VisitPurpose};
use doorstep_core::policy::{
    CodePhrases, EveningVisits, Policy, PolicyError, PolicyMinutes, Preset, SchoolHours,
    MAX_DAYS_OFFLINE,
};
use maud::html;

use super::{admin_page, refused, Admin};
use crate::logins::Session;
use crate::people::SettingsChange;
use crate::state::AppState;
use crate::store::StoreError;
use crate::web::extract::CsrfForm;
use crate::web::forms::{field_error, from_wire, nothing_saved, wire, Fields, Problems};
use crate::web::{checked_for_school, words, WebError};

const MINUTE_FIELDS: [(&str, &str); 5] = [
    (
        "first_check_in_after_start",
        "First check-in, minutes after the scheduled start",
    ),
    ("check_in_interval", "Then a check-in every (minutes)"),
    (
        "max_wait_for_family",
        "Longest wait at the door for the family (minutes)",
    ),
    (
        "overdue_grace",
        "Grace past a missed check-in before \"overdue\" (minutes)",
    ),
    (
        "escalate_to_authoriser_after",
        "Unacknowledged overdue goes to the authoriser after (minutes)",
    ),
];

const TICK_FIELDS: [(&str, &str); 4] = [
    (
        "pair_waits_outside_until_all_arrived",
        "A pair waits outside until everyone has arrived",
    ),
    (
        "out_of_hours_needs_responsible_contact",
        "Visits outside school hours need a named responsible contact",
    ),
    (
        "dbs_check_required",
        "Staff assigned must hold an enhanced DBS check",
    ),
    (
        "animals_secured_or_cancel",
        "Pets kept in another room or outside, or the visit is cancelled",
    ),
];

/// The policy form's values as text (so a refused form comes back as typed) and its purposes.
#[derive(Debug, Clone)]
struct PolicyDraft {
    values: BTreeMap<String, String>,
    purposes: Vec<String>,
    hazards: Vec<String>,
}

impl PolicyDraft {
    fn of(policy: &Policy) -> Self {
        let mut values = BTreeMap::new();
        let mut put = |key: &str, value: String| {
            values.insert(key.to_owned(), value);
        };
        put("authoriser", wire(policy.authoriser));
        put("lone_visit_approver", wire(policy.lone_visit_approver));
        put(
            "safeguarding_concerns_to",
            wire(policy.safeguarding_concerns_to),
        );
        put("staff_per_visit", policy.staff_per_visit.to_string());
        put(
            "first_check_in_after_start",
            policy.first_check_in_after_start.get().to_string(),
        );
        put(
            "check_in_interval",
            policy.check_in_interval.get().to_string(),
        );
        put(
            "max_wait_for_family",
            policy.max_wait_for_family.get().to_string(),
        );
        put("overdue_grace", policy.overdue_grace.get().to_string());
        put(
            "escalate_to_authoriser_after",
            policy.escalate_to_authoriser_after.get().to_string(),
        );
        put(
            "school_hours_start",
            policy.school_hours.start.format("%H:%M").to_string(),
        );
        put(
            "school_hours_end",
            policy.school_hours.end.format("%H:%M").to_string(),
        );
        put(
            "evening_starts",
            policy.evening_starts.format("%H:%M").to_string(),
        );
        put("evening_visits", wire(policy.evening_visits));
        put(
            "code_to_colleague",
            policy
                .code_phrases
                .as_ref()
                .map(|p| p.to_colleague.clone())
                .unwrap_or_default(),
        );
        put(
            "code_to_reception",
            policy
                .code_phrases
                .as_ref()
                .map(|p| p.to_reception.clone())
                .unwrap_or_default(),
        );
        put("absence_visit_day", policy.absence_visit_day.to_string());
        put(
            "absence_visit_day_with_concern",
            policy.absence_visit_day_with_concern.to_string(),
        );
        put("record_system", policy.record_system.clone());
        put(
            "delete_briefings_after_days_offline",
            policy.delete_briefings_after_days_offline.to_string(),
        );
        let ticks = [
            policy.pair_waits_outside_until_all_arrived,
            policy.out_of_hours_needs_responsible_contact,
            policy.dbs_check_required,
            policy.animals_secured_or_cancel,
        ];
        for ((key, _), on) in TICK_FIELDS.iter().zip(ticks) {
            if on {
                put(key, "yes".into());
            }
        }
        Self {
            values,
            purposes: policy.purposes.iter().map(|p| wire(*p)).collect(),
            hazards: policy.standard_hazards.iter().map(|h| wire(*h)).collect(),
        }
    }

    fn from_fields(fields: &Fields) -> Self {
        let mut values = BTreeMap::new();
        for (key, value) in fields.iter() {
            if key != "csrf" && key != "purpose" && key != "hazard" {
                values
                    .entry(key.to_owned())
                    .or_insert_with(|| value.to_owned());
            }
        }
        Self {
            values,
            purposes: fields
                .all("purpose")
                .into_iter()
                .map(str::to_owned)
                .collect(),
            hazards: fields
                .all("hazard")
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }
    }

    fn get(&self, key: &str) -> &str {
        self.values.get(key).map_or("", |v| v.trim())
    }

    /// The policy this draft describes, starting from `current` (for what the form does not edit), or each
    /// field's problem. Whole-policy rules ([`Policy::validate`]) are checked too, even when a field is
    /// wrong, so every problem shows at once.
    fn parse(&self, current: &Policy) -> Result<Policy, Problems> {
        let mut errors: Problems = Problems::new();
        let mut policy = current.clone();
        let role = |key: &'static str, errors: &mut Problems| {
            from_wire::<Role>(self.get(key)).or_else(|| {
                errors.insert(key, "choose a role".into());
                None
            })
        };
        if let Some(r) = role("authoriser", &mut errors) {
            policy.authoriser = r;
        }
        if let Some(r) = role("lone_visit_approver", &mut errors) {
            policy.lone_visit_approver = r;
        }
        if let Some(r) = role("safeguarding_concerns_to", &mut errors) {
            policy.safeguarding_concerns_to = r;
        }
        match self.get("staff_per_visit").parse::<u8>() {
            Ok(n) if (1..=4).contains(&n) => policy.staff_per_visit = n,
            _ => {
                errors.insert(
                    "staff_per_visit",
                    "staff per visit must be a whole number from 1 to 4".into(),
                );
            }
        }
        for (key, label) in MINUTE_FIELDS {
            let minutes = self
                .get(key)
                .parse::<u32>()
                .ok()
                .and_then(|m| PolicyMinutes::new(m).ok());
            match minutes {
                Some(m) => match key {
                    "first_check_in_after_start" => policy.first_check_in_after_start = m,
                    "check_in_interval" => policy.check_in_interval = m,
                    "max_wait_for_family" => policy.max_wait_for_family = m,
                    "overdue_grace" => policy.overdue_grace = m,
                    _ => policy.escalate_to_authoriser_after = m,
                },
                None => {
                    errors.insert(
                        key,
                        format!(
                            "{label}: must be a whole number of minutes from 1 to {}; got “{}”",
                            PolicyMinutes::MAX,
                            self.get(key)
                        ),
                    );
                }
            }
        }
        let time = |key: &'static str, errors: &mut Problems| {
            NaiveTime::parse_from_str(self.get(key), "%H:%M")
                .ok()
                .or_else(|| {
                    errors.insert(
                        key,
                        format!("enter a time as HH:MM; got “{}”", self.get(key)),
                    );
                    None
                })
        };
        let start = time("school_hours_start", &mut errors);
        let end = time("school_hours_end", &mut errors);
        let evening = time("evening_starts", &mut errors);
        if let (Some(start), Some(end)) = (start, end) {
            policy.school_hours = SchoolHours { start, end };
        }
        if let Some(evening) = evening {
            policy.evening_starts = evening;
        }
        match from_wire::<EveningVisits>(self.get("evening_visits")) {
            Some(v) => policy.evening_visits = v,
            None => {
                errors.insert(
                    "evening_visits",
                    "choose what the policy says about evening visits".into(),
                );
            }
        }
        // Both blank: not set yet (visits wait until they are); one blank is refused by `validate`.
        let (to_colleague, to_reception) = (
            self.get("code_to_colleague").trim(),
            self.get("code_to_reception").trim(),
        );
        policy.code_phrases =
            (!to_colleague.is_empty() || !to_reception.is_empty()).then(|| CodePhrases {
                to_colleague: to_colleague.to_owned(),
                to_reception: to_reception.to_owned(),
            });
        // A code phrase has to sound like an ordinary sentence and fit on the phone's alert button.
        for key in ["code_to_colleague", "code_to_reception"] {
            if self.get(key).chars().count() > 200 {
                errors.insert(
                    key,
                    "a code phrase is at most 200 characters: one ordinary sentence".into(),
                );
            }
        }
        for key in ["absence_visit_day", "absence_visit_day_with_concern"] {
            match self.get(key).parse::<u8>() {
                Ok(day) if key == "absence_visit_day" => policy.absence_visit_day = day,
                Ok(day) => policy.absence_visit_day_with_concern = day,
                Err(_) => {
                    errors.insert(key, "enter a day of absence from 1 to 30".into());
                }
            }
        }
        let record_system = self.get("record_system");
        if record_system.is_empty() || record_system.chars().count() > 60 {
            errors.insert(
                "record_system",
                "name the record system (for example CPOMS), at most 60 characters".into(),
            );
        } else {
            policy.record_system = record_system.to_owned();
        }
        let key = "delete_briefings_after_days_offline";
        match self.get(key).parse::<u16>() {
            Ok(days) if (1..=MAX_DAYS_OFFLINE).contains(&days) => {
                policy.delete_briefings_after_days_offline = days
            }
            _ => {
                errors.insert(
                    key,
                    format!(
                        "a phone out of touch with the office deletes its briefings after 1 to \
                         {MAX_DAYS_OFFLINE} days; got “{}”",
                        self.get(key)
                    ),
                );
            }
        }
        policy.pair_waits_outside_until_all_arrived = !self.get(TICK_FIELDS[0].0).is_empty();
        policy.out_of_hours_needs_responsible_contact = !self.get(TICK_FIELDS[1].0).is_empty();
        policy.dbs_check_required = !self.get(TICK_FIELDS[2].0).is_empty();
        policy.animals_secured_or_cancel = !self.get(TICK_FIELDS[3].0).is_empty();
        policy.purposes = ticked(&self.purposes, "purposes", "a visit purpose", &mut errors);
        let mut hazards: Vec<Hazard> = ticked(&self.hazards, "hazards", "a hazard", &mut errors);
        if hazards.is_empty() {
            errors.insert(
                "hazards",
                "choose at least one hazard every risk assessment must address".into(),
            );
        }
        // In Doorstep's order, whatever order the form sent them in.
        hazards.sort_by_key(|h| Hazard::ALL.iter().position(|s| s == h));
        policy.standard_hazards = hazards;
        // The whole-policy rules, placed beside the field a person would change.
        if let Err(error) = policy.validate() {
            let field = match &error {
                PolicyError::SchoolHoursBackwards => "school_hours_end",
                PolicyError::EveningBeforeSchoolEnds => "evening_starts",
                PolicyError::StaffPerVisit(_) => "staff_per_visit",
                PolicyError::EmptyCodePhrase("to a colleague") => "code_to_colleague",
                PolicyError::EmptyCodePhrase(_) | PolicyError::CodePhrasesNotSet => {
                    "code_to_reception"
                }
                PolicyError::AbsenceDays { .. } => "absence_visit_day",
                PolicyError::NoPurposes => "purposes",
                PolicyError::MinutesOutOfRange(_) => "first_check_in_after_start",
                PolicyError::DaysOffline(_) => "delete_briefings_after_days_offline",
            };
            let message = match &error {
                PolicyError::SchoolHoursBackwards => format!(
                    "school hours must start before they end (start {}, end {})",
                    self.get("school_hours_start"),
                    self.get("school_hours_end")
                ),
                other => other.to_string(),
            };
            errors.entry(field).or_insert(message);
        }
        if errors.is_empty() {
            Ok(policy)
        } else {
            Err(errors)
        }
    }
}

/// The ticked values of a repeated field (`purposes`, `hazards`), each once, in the order sent; a value
/// that is not `what` is a problem on the field.
fn ticked<T: serde::de::DeserializeOwned + PartialEq>(
    values: &[String],
    field: &'static str,
    what: &str,
    errors: &mut Problems,
) -> Vec<T> {
    let mut out = Vec::new();
    for value in values {
        match from_wire::<T>(value) {
            Some(v) if !out.contains(&v) => out.push(v),
            Some(_) => {}
            None => {
                errors.insert(field, format!("“{value}” is not {what}"));
            }
        }
    }
    out
}

/// The policy the admin's policy form describes (its posted fields, in order, as name/value pairs), starting
/// from `current` for what the form does not edit; or each field's problem, keyed by field name. This is
/// the handler's own reading of the form (the CSRF token is checked before it, and ignored here): an
/// accepted policy has passed [`Policy::validate`]. Public so the fuzz target
/// (`fuzz/fuzz_targets/policy_form.rs`) exercises it.
pub fn policy_from_form(fields: &Fields, current: &Policy) -> Result<Policy, Problems> {
    PolicyDraft::from_fields(fields).parse(current)
}

/// The form's fields for `policy` as the page fills them in: what an admin who changes nothing posts
/// back (without the CSRF token).
pub fn policy_form_fields(policy: &Policy) -> Fields {
    let draft = PolicyDraft::of(policy);
    let mut pairs: Vec<(String, String)> = draft.values.into_iter().collect();
    pairs.extend(
        draft
            .purposes
            .into_iter()
            .map(|p| ("purpose".to_owned(), p)),
    );
    pairs.extend(draft.hazards.into_iter().map(|h| ("hazard".to_owned(), h)));
    Fields::from(pairs)
}

/// What the form calls each setting, by its stored name.
fn setting_label(key: &str) -> String {
    let label = match key {
        "authoriser" => "who authorises every visit",
        "lone_visit_approver" => "who may approve a lone visit",
        "safeguarding_concerns_to" => "who safeguarding concerns go to",
        "staff_per_visit" => "staff per visit",
        "school_hours" => "school hours",
        "evening_starts" => "when evening starts",
        "evening_visits" => "evening visits",
        "code_phrases" => "the code phrases",
        "absence_visit_day" => "the unexplained-absence visit day",
        "absence_visit_day_with_concern" => "the visit day with a concern",
        "purposes" => "the visit purposes",
        "standard_hazards" => "the hazards every risk assessment addresses",
        "record_system" => "the record system",
        "write_up_due_after_leaving" => "when a missing write-up is flagged",
        "escalate_further_after" => "when an unacknowledged alarm goes further",
        other => {
            return MINUTE_FIELDS
                .iter()
                .chain(TICK_FIELDS.iter())
                .find(|(k, _)| *k == other)
                .map_or_else(|| other.replace('_', " "), |(_, label)| label.to_string())
        }
    };
    label.to_owned()
}

/// Each setting that differs from `preset`'s, in words: the preset's value and this school's, where they
/// are a single number, word or yes/no.
fn from_preset(policy: &Policy, preset: Preset) -> Vec<String> {
    let theirs = preset.policy();
    let (Ok(serde_json::Value::Object(ours)), Ok(serde_json::Value::Object(base))) =
        (serde_json::to_value(policy), serde_json::to_value(&theirs))
    else {
        return Vec::new();
    };
    crate::people::changed_settings(&theirs, policy)
        .into_iter()
        .filter(|key| key != "preset")
        .map(|key| {
            let simple = |v: Option<&serde_json::Value>| match v {
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                Some(serde_json::Value::Bool(b)) => Some(if *b { "yes" } else { "no" }.to_owned()),
                Some(serde_json::Value::String(s)) if key != "code_phrases" => {
                    Some(s.replace('_', " "))
                }
                _ => None,
            };
            match (simple(base.get(&key)), simple(ours.get(&key))) {
                (Some(was), Some(now)) => {
                    format!(
                        "{}: {now} (the preset says {was})",
                        words::capitalise(&setting_label(&key))
                    )
                }
                _ => words::capitalise(&setting_label(&key)),
            }
        })
        .collect()
}

fn preset_name(preset: Preset) -> &'static str {
    match preset {
        Preset::PrimaryHeadteacher => "Primary school: the headteacher authorises (seed 000)",
        Preset::AcademySafeguardingLead => "Academy: the safeguarding lead authorises (seed 001)",
    }
}

fn policy_page(
    session: &Session,
    zone: &str,
    current: &Policy,
    draft: &PolicyDraft,
    errors: &Problems,
    notice: Option<&str>,
    status: StatusCode,
) -> Response {
    let role_select = |key: &'static str| {
        html! {
            select id=(key) name=(key) {
                @for role in Role::ALL.iter().copied() {
                    @let value = wire(role);
                    option value=(value) selected[draft.get(key) == value] { (words::capitalise(role.label())) }
                }
            }
            (field_error(errors, key))
        }
    };
    let text_row = |key: &'static str, label: &str, kind: &str| {
        html! {
            tr { th { label for=(key) { (label) } } td { input id=(key) type=(kind) name=(key) value=(draft.get(key)); (field_error(errors, key)) } }
        }
    };
    let differences = current.preset.map(|preset| from_preset(current, preset));
    let body = html! {
        @if let Some(notice) = notice { p.codephrase #notice role="status" { (notice) } }
        @if current.code_phrases.is_none() {
            p.problem #set-code-phrases role="alert" {
                "Set the school's own code word or phrases below (what staff say to a colleague in the room, and to \
                 reception on the phone, when they need help; the two may be the same). Doorstep ships none: a code \
                 word printed in a product would be known to anyone. Until they are set, no visit can be authorised."
            }
        }
        p { "Started from: " strong #started-from { (current.preset.map_or("the school's own settings", preset_name)) } ". Phones get any change at their next sync." }
        @if let Some(differences) = &differences {
            section #from-preset {
                @if differences.is_empty() {
                    p { "Every setting is as the preset has it." }
                } @else {
                    p { "Changed from the preset:" }
                    ul { @for line in differences { li { (line) } } }
                }
            }
        }
        h2 { "Start from a preset" }
        form #preset-form method="post" action="/admin/policy" {
            input type="hidden" name="csrf" value=(session.csrf_token);
            select #preset name="apply_preset" {
                @for preset in Preset::ALL { option value=(wire(preset)) { (preset_name(preset)) } }
            }
            " "
            button #apply-preset type="submit" { "Use this preset (replaces every setting below)" }
        }
        h2 { "The school's clock" }
        form #time-zone-form method="post" action="/admin/time-zone" {
            input type="hidden" name="csrf" value=(session.csrf_token);
            label for="time_zone" { "Time zone (its IANA name, such as Europe/London)" }
            " "
            input #time_zone name="time_zone" value=(zone);
            (field_error(errors, "time_zone"))
            " "
            button #set-time-zone type="submit" { "Set the clock" }
        }
        p { "Every time the board, the records, the messages and the phones show is on this clock." }
        h2 { "Edit the settings" }
        (nothing_saved(errors))
        form #policy-form method="post" action="/admin/policy" {
            input type="hidden" name="csrf" value=(session.csrf_token);
            table {
                tr { th { label for="authoriser" { "Who authorises every visit" } } td { (role_select("authoriser")) } }
                tr { th { label for="lone_visit_approver" { "Who may approve a lone visit" } } td { (role_select("lone_visit_approver")) } }
                tr { th { label for="safeguarding_concerns_to" { "Safeguarding concerns go at once to" } } td { (role_select("safeguarding_concerns_to")) } }
                (text_row("staff_per_visit", "Staff per visit (1-4)", "number"))
                @for (key, label) in MINUTE_FIELDS { (text_row(key, label, "number")) }
                (text_row("school_hours_start", "School hours start (HH:MM)", "time"))
                (text_row("school_hours_end", "School hours end (HH:MM)", "time"))
                (text_row("evening_starts", "Evening starts (HH:MM)", "time"))
                tr { th { label for="evening_visits" { "Evening visits" } } td {
                    select #evening_visits name="evening_visits" {
                        option value="as_out_of_hours" selected[draft.get("evening_visits") == "as_out_of_hours"] { "Like any visit outside school hours" }
                        option value="advised_against" selected[draft.get("evening_visits") == "advised_against"] { "Advised against: the authoriser must override" }
                    }
                    (field_error(errors, "evening_visits")) } }
                tr #code-phrases { th colspan="2" { "The school's code word or phrases (both blank: not set yet, and no visit can be authorised)" } }
                (text_row("code_to_colleague", "Code phrase said to a colleague", "text"))
                (text_row("code_to_reception", "Code phrase said to reception", "text"))
                (text_row("absence_visit_day", "Unexplained absence, no contact: visit on day", "number"))
                (text_row("absence_visit_day_with_concern", "…or with a concern, on day", "number"))
                (text_row("record_system", "Write-ups go to (record system)", "text"))
                (text_row("delete_briefings_after_days_offline", "A phone out of touch with the office deletes its briefings after (days)", "number"))
                @for (key, label) in TICK_FIELDS {
                    tr { th { label for=(key) { (label) } } td { input id=(key) type="checkbox" name=(key) value="yes" checked[!draft.get(key).is_empty()]; } }
                }
                tr { th { "Visit purposes staff may choose" } td {
                    @for purpose in VisitPurpose::ALL.iter().copied() {
                        @let value = wire(purpose);
                        label { input type="checkbox" name="purpose" value=(value) checked[draft.purposes.contains(&value)]; " " (purpose.label()) } br;
                    }
                    (field_error(errors, "purposes")) } }
                tr { th { "Hazards every risk assessment must address" } td {
                    @for hazard in Hazard::ALL.iter().copied() {
                        @let value = wire(hazard);
                        label { input type="checkbox" name="hazard" value=(value) checked[draft.hazards.contains(&value)]; " " (hazard.label()) } br;
                    }
                    (field_error(errors, "hazards")) } }
            }
            button #save-policy type="submit" { "Save the policy" }
        }
    };
    admin_page("Policy", "/admin/policy", session, status, body)
}

/// The page showing `policy` as stored (the form filled from it, nothing refused) on the clock named
/// `zone`, with `notice` when a change was just made.
fn stored_policy_page(
    session: &Session,
    zone: &str,
    policy: &Policy,
    notice: Option<&str>,
) -> Response {
    let draft = PolicyDraft::of(policy);
    policy_page(
        session,
        zone,
        policy,
        &draft,
        &Problems::new(),
        notice,
        StatusCode::OK,
    )
}

/// `GET /admin/policy`.
pub async fn policy_get(Admin(session): Admin) -> Result<Response, WebError> {
    let zone = session.user.school.time_zone.name();
    Ok(stored_policy_page(
        &session,
        zone,
        &session.user.policy,
        None,
    ))
}

/// `POST /admin/time-zone`: puts the school on another clock (an IANA name, such as Europe/London). A name
/// that is not one changes nothing and comes back with the reason beside the field.
pub async fn time_zone_post(
    Admin(session): Admin,
    State(state): State<AppState>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let typed = fields.one("time_zone");
    let zone = match SchoolTimeZone::parse(typed) {
        Ok(zone) => zone,
        Err(error) => {
            let mut errors = Problems::new();
            errors.insert("time_zone", words::capitalise(&error.to_string()));
            return Ok(policy_page(
                &session,
                typed,
                &session.user.policy,
                &PolicyDraft::of(&session.user.policy),
                &errors,
                None,
                StatusCode::BAD_REQUEST,
            ));
        }
    };
    let by = session.user.staff.id.clone();
    let now = state.now();
    let change = SettingsChange::TimeZone(zone);
    match checked_for_school(&state, &session, move |store, school| {
        store.change_settings(school, change, &by, now)
    })
    .await?
    {
        Ok(()) => {
            tracing::info!(by = %session.user.staff.id, zone = zone.name(), "school time zone changed");
            let notice = format!(
                "The school's clock is now {}. The board, records and messages use it from now on; phones at their next sync.",
                zone.name()
            );
            Ok(stored_policy_page(
                &session,
                zone.name(),
                &session.user.policy,
                Some(&notice),
            ))
        }
        Err(message) => Err(refused(StoreError::Invalid(message))),
    }
}

/// `POST /admin/policy`: apply a preset (`apply_preset`), or save the edited settings.
pub async fn policy_post(
    Admin(session): Admin,
    State(state): State<AppState>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<Response, WebError> {
    let current = &session.user.policy;
    let (candidate, notice) = if fields.ticked("apply_preset") {
        let preset = from_wire::<Preset>(fields.one("apply_preset")).ok_or_else(|| {
            WebError::BadInput(format!(
                "“{}” is not one of the presets; nothing was changed",
                fields.one("apply_preset")
            ))
        })?;
        let mut policy = preset.policy();
        // A preset that ships no code phrases (the primary one) keeps the school's own: they are known to
        // staff and reception, and losing them would stop every authorisation.
        if policy.code_phrases.is_none() {
            policy.code_phrases = current.code_phrases.clone();
        }
        (
            Ok(policy),
            format!("Now using the preset: {}.", preset_name(preset)),
        )
    } else {
        let draft = PolicyDraft::from_fields(&fields);
        match draft.parse(current) {
            Ok(policy) => (Ok(policy), "The policy was saved.".to_owned()),
            Err(errors) => (Err((draft, errors)), String::new()),
        }
    };
    match candidate {
        Err((draft, errors)) => Ok(policy_page(
            &session,
            session.user.school.time_zone.name(),
            current,
            &draft,
            &errors,
            None,
            StatusCode::BAD_REQUEST,
        )),
        Ok(policy) => {
            let saved = policy.clone();
            let by = session.user.staff.id.clone();
            let how = if fields.ticked("apply_preset") {
                format!("applied the preset {}", fields.one("apply_preset"))
            } else {
                "saved the settings".to_owned()
            };
            let now = state.now();
            match checked_for_school(&state, &session, move |store, school| {
                store.change_settings(
                    school,
                    SettingsChange::Policy {
                        policy: &saved,
                        how: &how,
                    },
                    &by,
                    now,
                )
            })
            .await?
            {
                Ok(()) => {
                    tracing::info!(by = %session.user.staff.id, "school policy changed");
                    let zone = session.user.school.time_zone.name();
                    Ok(stored_policy_page(&session, zone, &policy, Some(&notice)))
                }
                Err(message) => Err(refused(StoreError::Invalid(message))),
            }
        }
    }
}
