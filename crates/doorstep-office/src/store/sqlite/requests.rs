//! Requesting visits on SQLite: the rows behind [`crate::store::requests::Requests`] (a requested
//! visit's office-only details, concerns, the visits agreed in a period), built by the functions in
//! [`crate::requests`].

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use doorstep_core::domain::{Address, Pupil, Visit};
use doorstep_core::ids::{PupilId, SchoolId, StaffId, VisitId};
use rusqlite::{params, Connection, OptionalExtension};

use crate::audit;
use crate::people::Person;
use crate::requests::{
    concern_entry, concern_from, no_such_pupil, request_details_from, responsible_contact_target,
    Absence, Concern, RequestColumns, RequestDetails,
};
use crate::store::sqlite::people::{absences_in, school_of};
use crate::store::{parse_id, tuples, CachedSql, SqliteStore, StoreError};

fn insert_request_details(
    conn: &Connection,
    visit: &Visit,
    details: &RequestDetails,
) -> Result<(), StoreError> {
    let (name, phone) = details
        .responsible_contact
        .clone()
        .map_or((None, None), |(n, p)| (Some(n), Some(p)));
    conn.execute_cached(
        "INSERT INTO visit_requests (visit_id, requested_by, requested_at, out_of_hours, evening,
             contact_name, contact_phone, authoriser_override, contact_email)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            visit.id.as_str(),
            details.requested_by.as_str(),
            details.requested_at.to_rfc3339(),
            details.timing.out_of_hours,
            details.timing.evening,
            name,
            phone,
            details.authoriser_override,
            details.contact_email
        ],
    )?;
    Ok(())
}

/// [`responsible_contact_target`] stored on the caller's transaction, so the visit and its contact's
/// target go in together.
fn add_responsible_contact_target(
    conn: &Connection,
    visit: &Visit,
    details: &RequestDetails,
) -> Result<(), StoreError> {
    if let Some(contact) = responsible_contact_target(details)? {
        crate::notify::store::insert_target_in(
            conn,
            &visit.school,
            Some(&visit.id),
            &contact,
            details.requested_at,
        )?;
    }
    Ok(())
}

impl SqliteStore {
    /// Stores a requested visit (the store checks every assigned person's DBS) and its office-only details,
    /// in one transaction: a refused request leaves nothing behind.
    pub fn add_requested_visit(
        &self,
        visit: &Visit,
        details: &RequestDetails,
    ) -> Result<(), StoreError> {
        self.add_visit_with(
            visit,
            Some((&details.requested_by, details.requested_at)),
            |tx| {
                insert_request_details(tx, visit, details)?;
                add_responsible_contact_target(tx, visit, details)
            },
        )
    }

    /// The office-only details of a visit requested through the dashboard; `None` for other visits (the
    /// demo's, or ones made before requests existed).
    pub fn request_details(&self, visit: &VisitId) -> Result<Option<RequestDetails>, StoreError> {
        let row: Option<RequestColumns> = self
            .conn()
            .query_row_cached(
                "SELECT requested_by, requested_at, out_of_hours, evening, contact_name, contact_phone,
                     authoriser_override, contact_email
                 FROM visit_requests WHERE visit_id = ?1",
                [visit.as_str()],
                |row| row.try_into(),
            )
            .optional()?;
        row.map(request_details_from).transpose()
    }

    /// Keeps the authoriser's reason for overriding the policy's advice against an evening visit.
    pub fn set_authoriser_override(&self, visit: &VisitId, reason: &str) -> Result<(), StoreError> {
        self.conn().execute_cached(
            "UPDATE visit_requests SET authoriser_override = ?2 WHERE visit_id = ?1",
            params![visit.as_str(), reason],
        )?;
        Ok(())
    }

    /// The school's pupils, by name.
    pub fn school_pupils(&self, school: &SchoolId) -> Result<Vec<Pupil>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT id, name FROM pupils WHERE school_id = ?1 ORDER BY name, id")?;
        let rows = stmt.query_map([school.as_str()], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, name) = row?;
            out.push(Pupil {
                id: parse_id(&id)?,
                name,
            });
        }
        Ok(out)
    }

    /// The address of the pupil's latest visit, if any: the pupils table holds no address (yet), and the
    /// last one the office went to is the best guess to start from.
    pub fn last_known_address(&self, pupil: &PupilId) -> Result<Option<Address>, StoreError> {
        let body: Option<String> = self
            .conn()
            .query_row_cached(
                "SELECT body FROM visits WHERE pupil_id = ?1 ORDER BY agreed_time DESC LIMIT 1",
                [pupil.as_str()],
                |row| row.get(0),
            )
            .optional()?;
        Ok(match body {
            Some(body) => Some(serde_json::from_str::<Visit>(&body)?.address),
            None => None,
        })
    }

    /// The school's absences and the pupils with a concern noted, for the attendance view.
    pub fn absences(
        &self,
        school: &SchoolId,
    ) -> Result<(Vec<Absence>, BTreeSet<PupilId>), StoreError> {
        let conn = self.conn();
        let absences = absences_in(&conn, school, None)?;
        let mut stmt = conn.prepare_cached(
            "SELECT c.pupil_id FROM absence_concerns c JOIN pupils p ON p.id = c.pupil_id
             WHERE p.school_id = ?1",
        )?;
        let rows = stmt.query_map([school.as_str()], |row| row.get::<_, String>(0))?;
        let mut concerns = BTreeSet::new();
        for row in rows {
            concerns.insert(parse_id(&row?)?);
        }
        Ok((absences, concerns))
    }

    /// The pupils of the school with a concern noted: when, and by whom (when known).
    pub fn absence_concerns(&self, school: &SchoolId) -> Result<Vec<Concern>, StoreError> {
        let rows: Vec<(String, String, Option<String>)> = tuples(
            &self.conn(),
            "SELECT c.pupil_id, c.noted_at, c.noted_by FROM absence_concerns c
             JOIN pupils p ON p.id = c.pupil_id WHERE p.school_id = ?1 ORDER BY c.noted_at",
            [school.as_str()],
        )?;
        rows.into_iter().map(concern_from).collect()
    }

    /// Notes (`concern` true) or takes off a concern about a pupil of `school` as `by`, with its audit log
    /// entry, in one transaction. Noting one already noted, or taking off one not noted, changes nothing
    /// and is not an error.
    pub fn set_absence_concern(
        &self,
        school: &SchoolId,
        pupil: &PupilId,
        concern: bool,
        by: &StaffId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
            if school_of(tx, Person::Pupil(pupil))?.as_ref() != Some(school) {
                return Err(no_such_pupil(pupil));
            }
            let changed = if concern {
                tx.execute_cached(
                    "INSERT INTO absence_concerns (pupil_id, noted_at, noted_by) VALUES (?1, ?2, ?3)
                     ON CONFLICT (pupil_id) DO NOTHING",
                    params![pupil.as_str(), now.to_rfc3339(), by.as_str()],
                )?
            } else {
                tx.execute_cached(
                    "DELETE FROM absence_concerns WHERE pupil_id = ?1",
                    [pupil.as_str()],
                )?
            };
            if changed > 0 {
                audit::append(tx, &concern_entry(school, pupil, concern, by), now)?;
            }
            Ok(())
        })
    }

    /// The school's visits agreed in `[from, to)`, in agreed-time order, for the write-ups export.
    pub fn visit_ids_between(
        &self,
        school: &SchoolId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<VisitId>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id FROM visits WHERE school_id = ?1 AND agreed_time >= ?2 AND agreed_time < ?3
             ORDER BY agreed_time, id",
        )?;
        let rows = stmt.query_map(
            params![school.as_str(), from.to_rfc3339(), to.to_rfc3339()],
            |row| row.get::<_, String>(0),
        )?;
        let mut ids = Vec::new();
        for id in rows {
            ids.push(parse_id(&id?)?);
        }
        Ok(ids)
    }
}
