//! The records routes: a visit's full timeline, its write-up for CPOMS as text and PDF, the write-ups of a
//! date range as CSV, and the monthly report. The content comes from [`crate::records`]; this file only
//! checks who is asking (need to know: [`RecordsReader`], never reception), enters each opening in the
//! audit log before anything is shown, reads the parameters and sets the content types.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, NaiveDate, TimeDelta};
use doorstep_core::ids::VisitId;
use maud::html;

use super::extract::{RecordsReader, VisitInPath};
use super::words;
use super::{blocking, pages, school_visit, WebError};
use crate::audit::{Action, NewEntry};
use crate::logins::Session;
use crate::records::{cpoms_pdf, cpoms_text, write_ups_csv, ReportMonth, VisitRecord};
use crate::state::AppState;

/// The longest range one CSV export covers: a school year and a bit, so a mistyped year cannot ask for
/// every visit ever made.
const MAX_EXPORT_DAYS: i64 = 400;

/// The visit's record, if it belongs to the signed-in person's school, with this opening of it entered in
/// the audit log first (if it cannot be entered, nothing is shown).
async fn record(
    state: &AppState,
    session: &Session,
    id: VisitId,
    action: Action,
) -> Result<VisitRecord, WebError> {
    let missing = WebError::NotFound(format!("there is no visit “{id}”"));
    let opened = NewEntry::new(&session.user.school.id, &session.user.staff.id, action).visit(&id);
    let now = state.now();
    school_visit(state, session, id, move |store, visit, _| {
        let record = store.visit_record(&visit.id)?;
        if record.is_some() {
            store.audit(&opened, now)?;
        }
        Ok(record)
    })
    .await?
    .ok_or(missing)
}

/// `GET /visits/{id}/timeline`.
pub async fn timeline_page(
    RecordsReader(session): RecordsReader,
    State(state): State<AppState>,
    VisitInPath(id): VisitInPath,
) -> Result<Response, WebError> {
    let record = record(&state, &session, id, Action::OpenedTimeline).await?;
    let visit = &record.visit;
    let zone = &session.user.school.time_zone;
    let body = html! {
        main {
            p { a href={ "/visits/" (visit.id) } { "← Back to the visit" } }
            h1 { "Timeline: " (zone.hm(visit.agreed_time)) " · " (visit.purpose.label()) " · " (visit.pupil.name) }
            p {
                a href={ "/visits/" (visit.id) "/cpoms.txt" } { "Write-up for " (session.user.policy.record_system) " (text)" } " · "
                a href={ "/visits/" (visit.id) "/cpoms.pdf" } { "(PDF)" }
            }
            @if record.timeline.entries.is_empty() {
                p { "Nothing recorded yet." }
            } @else {
                table #full-timeline {
                    thead { tr { th { "Office time" } th { "Phone's time" } th { "What" } th { "Note" } } }
                    tbody {
                        @for entry in &record.timeline.entries {
                            tr {
                                td { (zone.hms(entry.office_time)) }
                                td.small { @if let Some(at) = entry.device_time { (zone.hms(at)) } }
                                td { (words::capitalise(&entry.sentence())) }
                                td { @if let Some(note) = &entry.note { (note) } }
                            }
                        }
                    }
                }
            }
            @if !record.alarms_told.is_empty() || !record.notices.is_empty() {
                section #timeline-told {
                    h2 { "Who was told" }
                    p.small { "From the deliveries alone." }
                    @for (alarm, lines) in &record.alarms_told {
                        h3 { "Alarm #" (alarm) }
                        @if lines.is_empty() { p.small { "Nothing was sent outside the board for it." } }
                        ul { @for line in lines { li { (line) } } }
                    }
                    @for notice in &record.notices {
                        h3 { (notice.notice.kind.label()) " (for the " (notice.notice.role.label()) ")" }
                        ul { @for line in &notice.told { li { (line) } } }
                    }
                }
            }
            p.small { (words::times_note(zone, state.now())) }
        }
    };
    Ok(pages::page("Timeline", Some(&session), body, None))
}

/// The record system's name as part of a file name: lower-case letters and digits, words joined by `-`
/// ("records" if nothing is left), so the `Content-Disposition` header is always valid.
fn file_name_part(record_system: &str) -> String {
    let words: Vec<String> = record_system
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    if words.is_empty() {
        "records".to_owned()
    } else {
        words.join("-")
    }
}

/// A download that is never cached (it holds a child's record) and names its file.
fn download(content_type: &'static str, filename: &str, body: Vec<u8>) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // File names are built from ids, dates and `file_name_part` only (letters, digits, '-', '_', '.'), so
    // always valid.
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// `GET /visits/{id}/cpoms.txt`.
pub async fn cpoms_txt(
    RecordsReader(session): RecordsReader,
    State(state): State<AppState>,
    VisitInPath(id): VisitInPath,
) -> Result<Response, WebError> {
    let record = record(&state, &session, id, Action::OpenedWriteUp).await?;
    let system = &session.user.policy.record_system;
    let text = cpoms_text(&record);
    let mut response = download(
        "text/plain; charset=utf-8",
        &format!("{}-{}.txt", record.visit.id, file_name_part(system)),
        text.into_bytes(),
    );
    // Shown in the browser rather than saved: it is read and pasted into CPOMS.
    response.headers_mut().remove(header::CONTENT_DISPOSITION);
    Ok(response)
}

/// `GET /visits/{id}/cpoms.pdf`.
pub async fn cpoms_pdf_route(
    RecordsReader(session): RecordsReader,
    State(state): State<AppState>,
    VisitInPath(id): VisitInPath,
) -> Result<Response, WebError> {
    let record = record(&state, &session, id, Action::ExportedWriteUpPdf).await?;
    let system = session.user.policy.record_system.clone();
    // Shaping and font subsetting take a moment of CPU: off the threads that serve the board.
    let pdf =
        tokio::task::spawn_blocking(move || cpoms_pdf(&record).map(|pdf| (record, pdf))).await;
    let (record, pdf) = match pdf {
        Ok(Ok(made)) => made,
        Ok(Err(error)) => {
            tracing::error!(%error, "could not make a CPOMS PDF");
            return Err(WebError::Internal);
        }
        Err(error) => {
            tracing::error!(%error, "making a CPOMS PDF did not finish");
            return Err(WebError::Internal);
        }
    };
    Ok(download(
        "application/pdf",
        &format!("{}-{}.pdf", record.visit.id, file_name_part(&system)),
        pdf,
    ))
}

/// The date in parameter `name`; the example in the refusal is `today`.
fn date_param(
    query: &HashMap<String, String>,
    name: &str,
    today: NaiveDate,
) -> Result<NaiveDate, WebError> {
    let text = query.get(name).map_or("", |v| v.trim());
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        WebError::BadInput(format!(
            "“{name}” must be a date written YYYY-MM-DD (for example {}); got “{text}”",
            today.format("%Y-%m-%d")
        ))
    })
}

/// `GET /reports/write-ups.csv?from=YYYY-MM-DD&to=YYYY-MM-DD`: visits agreed on those days (the school's
/// days, midnight to midnight on its clock), both included.
pub async fn write_ups(
    RecordsReader(session): RecordsReader,
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let zone = session.user.school.time_zone;
    let today = zone.date(state.now());
    let from = date_param(&query, "from", today)?;
    let to = date_param(&query, "to", today)?;
    if to < from {
        return Err(WebError::BadInput(format!(
            "“to” ({to}) is before “from” ({from})"
        )));
    }
    if (to - from).num_days() >= MAX_EXPORT_DAYS {
        return Err(WebError::BadInput(format!(
            "one export covers at most {MAX_EXPORT_DAYS} days; choose a shorter range"
        )));
    }
    let start = zone.start_of(from);
    let end = zone.start_of(to + TimeDelta::days(1));
    let store = state.store.clone();
    let school = session.user.school.id.clone();
    let exported = NewEntry::new(&school, &session.user.staff.id, Action::ExportedWriteUpsCsv)
        .record(format!("write-ups of visits agreed {from} to {to}"));
    let now = state.now();
    let records = blocking(move || {
        let mut records = Vec::new();
        for id in store.visit_ids_between(&school, start, end)? {
            if let Some(record) = store.visit_record(&id)? {
                records.push(record);
            }
        }
        store.audit(&exported, now)?;
        Ok(records)
    })
    .await?;
    let csv = write_ups_csv(&records);
    Ok(download(
        "text/csv; charset=utf-8",
        &format!(
            "{}-write-ups-{from}-to-{to}.csv",
            file_name_part(&session.user.policy.record_system)
        ),
        csv.into_bytes(),
    ))
}

/// `GET /reports/monthly?year=&month=`: this month when neither is given.
pub async fn monthly(
    RecordsReader(session): RecordsReader,
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let today = session.user.school.time_zone.date(state.now());
    let number = |name: &str, default: i64| -> Result<i64, WebError> {
        match query.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|_| {
                WebError::BadInput(format!("“{name}” must be a number; got “{text}”"))
            }),
        }
    };
    let year = number("year", i64::from(today.year()))?;
    let month = number("month", i64::from(today.month()))?;
    let (Ok(year), Ok(month)) = (i32::try_from(year), u32::try_from(month)) else {
        return Err(WebError::BadInput(format!(
            "there is no month {month} of year {year}: months run from 1 to 12"
        )));
    };
    if !(2000..=2200).contains(&year) {
        return Err(WebError::BadInput(format!(
            "year {year} is outside the years the office keeps records for (2000 to 2200)"
        )));
    }
    let month = ReportMonth::new(year, month, &session.user.school.time_zone)
        .map_err(|e| WebError::BadInput(e.to_string()))?;
    let store = state.store.clone();
    let school = session.user.school.id.clone();
    let opened = NewEntry::new(&school, &session.user.staff.id, Action::OpenedMonthlyReport)
        .record(format!("monthly report {}", month.label()));
    let now = state.now();
    let report = blocking(move || {
        let report = store.monthly_report(&school, month.year(), month.month())?;
        store.audit(&opened, now)?;
        Ok(report)
    })
    .await?;
    let body = html! {
        main {
            p { a href="/" { "← Back to the board" } }
            h1 { "Monthly report: " (month.label()) }
            pre #monthly-report { (report.to_text()) }
            h2 { "Write-ups for " (session.user.policy.record_system) " as CSV" }
            form method="get" action="/reports/write-ups.csv" #write-ups-form {
                label for="from" { "From " } input type="date" name="from" id="from" value=(month.start().format("%Y-%m-%d"));
                " " label for="to" { "to " }
                input type="date" name="to" id="to" value=((month.end() - TimeDelta::days(1)).format("%Y-%m-%d"));
                " " button type="submit" { "Download" }
            }
        }
    };
    Ok(pages::page("Monthly report", Some(&session), body, None))
}
