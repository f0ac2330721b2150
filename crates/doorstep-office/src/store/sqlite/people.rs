//! People and settings on SQLite: the rows behind [`crate::store::people::People`] (staff, pupils and
//! absences, the school's policy and clock), parsed, judged and reported by the functions in
//! [`crate::people`]. An import's valid rows go in together in one transaction.

use chrono::{DateTime, NaiveDate, Utc};
use doorstep_core::domain::StaffMember;
use doorstep_core::ids::{SchoolId, StaffId};
use doorstep_core::policy::Policy;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::audit;
use crate::people::{
    absence_from, another_schools_staff, checked_policy, import_report, ownership,
    parse_absences_csv, parse_pupils_csv, pupil_record, unknown_pupil, Absence, ImportKind,
    ImportReport, Ownership, ParsedCsv, Person, PupilColumns, PupilRecord, Saved, SettingsChange,
    Stored, ANOTHER_SCHOOLS_PUPIL,
};
use crate::store::{parse_id, staff_member, tuples, CachedSql, SqliteStore, StoreError};

/// Stores the rows of a parsed import together, each by `store`, and reports what happened to every row
/// in file order, whichever check refused it. A file refused whole ([`StoreError::Invalid`]) stores
/// nothing.
fn import<T>(
    conn: &mut Connection,
    parsed: Result<ParsedCsv<T>, String>,
    mut store: impl FnMut(&Transaction<'_>, T) -> Result<Stored, StoreError>,
) -> Result<ImportReport, StoreError> {
    let ParsedCsv { rows, rejected } = parsed.map_err(StoreError::Invalid)?;
    let tx = conn.transaction()?;
    let mut stored = Vec::with_capacity(rows.len());
    for (line, pupil_id, row) in rows {
        stored.push((line, pupil_id, store(&tx, row)?));
    }
    tx.commit()?;
    Ok(import_report(rejected, stored))
}

/// Adds `pupil` to `school`, or updates the school's record of them; a pupil of another school is refused.
fn store_pupil(
    tx: &Transaction<'_>,
    school: &SchoolId,
    pupil: PupilRecord,
) -> Result<Stored, StoreError> {
    let owner = school_of(tx, Person::Pupil(&pupil.id))?;
    let born = pupil.date_of_birth.to_string();
    let values = params![
        pupil.id.as_str(),
        school.as_str(),
        pupil.name,
        born,
        pupil.address_line_1,
        pupil.address_line_2,
        pupil.town,
        pupil.postcode.as_str(),
        pupil.family_notes,
        pupil.medical_needs
    ];
    Ok(match ownership(owner, school) {
        Ownership::New => {
            tx.execute_cached(
                "INSERT INTO pupils (id, school_id, name, date_of_birth, address_line_1,
                     address_line_2, town, postcode, family_notes, medical_needs)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                values,
            )?;
            Stored::Added
        }
        Ownership::Ours => {
            tx.execute_cached(
                "UPDATE pupils SET name = ?3, date_of_birth = ?4, address_line_1 = ?5,
                     address_line_2 = ?6, town = ?7, postcode = ?8, family_notes = ?9,
                     medical_needs = ?10
                 WHERE id = ?1 AND school_id = ?2",
                values,
            )?;
            Stored::Updated
        }
        Ownership::Theirs => Stored::Refused(ANOTHER_SCHOOLS_PUPIL.into()),
    })
}

/// The school `person` belongs to, if the id is known at all. An id belongs to one school: another
/// school's form, import or concern naming it is refused.
pub(crate) fn school_of(
    conn: &Connection,
    person: Person<'_>,
) -> Result<Option<SchoolId>, StoreError> {
    let (sql, id) = match person {
        Person::Staff(staff) => ("SELECT school_id FROM staff WHERE id = ?1", staff.as_str()),
        Person::Pupil(pupil) => ("SELECT school_id FROM pupils WHERE id = ?1", pupil.as_str()),
    };
    let school: Option<String> = conn
        .query_row_cached(sql, [id], |row| row.get(0))
        .optional()?;
    school.as_deref().map(parse_id).transpose()
}

/// Adds or updates a day of absence of a pupil of `school`; a pupil not (yet) at the school is refused.
fn store_absence(
    tx: &Transaction<'_>,
    school: &SchoolId,
    absence: Absence,
) -> Result<Stored, StoreError> {
    let known: bool = tx.query_row_cached(
        "SELECT EXISTS (SELECT 1 FROM pupils WHERE id = ?1 AND school_id = ?2)",
        params![absence.pupil.as_str(), school.as_str()],
        |row| row.get(0),
    )?;
    if !known {
        return Ok(unknown_pupil(&absence.pupil));
    }
    let date = absence.date.to_string();
    let existed: bool = tx.query_row_cached(
        "SELECT EXISTS (SELECT 1 FROM absences WHERE pupil_id = ?1 AND date = ?2)",
        params![absence.pupil.as_str(), date],
        |row| row.get(0),
    )?;
    tx.execute_cached(
        "INSERT INTO absences (pupil_id, date, reason_code, contact_made)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (pupil_id, date) DO UPDATE
         SET reason_code = excluded.reason_code, contact_made = excluded.contact_made",
        params![
            absence.pupil.as_str(),
            date,
            absence.reason_code,
            absence.contact_made
        ],
    )?;
    Ok(if existed {
        Stored::Updated
    } else {
        Stored::Added
    })
}

impl SqliteStore {
    /// Imports pupils (see [`PUPIL_CSV_COLUMNS`]) into `school`, or absences of its pupils (see
    /// [`ABSENCE_CSV_COLUMNS`]), from the MIS's CSV. A file without the right header is refused whole
    /// ([`StoreError::Invalid`]); otherwise valid rows are stored together and invalid ones reported.
    pub fn import_csv(
        &self,
        kind: ImportKind,
        school: &SchoolId,
        text: &str,
        today: NaiveDate,
    ) -> Result<ImportReport, StoreError> {
        let mut conn = self.conn();
        match kind {
            ImportKind::Pupils => import(&mut conn, parse_pupils_csv(text, today), |tx, pupil| {
                store_pupil(tx, school, pupil)
            }),
            ImportKind::Absences => {
                import(&mut conn, parse_absences_csv(text, today), |tx, day| {
                    store_absence(tx, school, day)
                })
            }
        }
    }

    /// The school's pupils with their details, by name.
    pub fn pupil_records(&self, school: &SchoolId) -> Result<Vec<PupilRecord>, StoreError> {
        let rows: Vec<PupilColumns> = tuples(
            &self.conn(),
            "SELECT id, name, date_of_birth, address_line_1, address_line_2, town, postcode,
                        family_notes, medical_needs
                 FROM pupils WHERE school_id = ?1 AND date_of_birth IS NOT NULL ORDER BY name, id",
            [school.as_str()],
        )?;
        rows.into_iter().map(pupil_record).collect()
    }

    /// The school's absences on days `from` to `to` (both included), by date then pupil.
    pub fn absences_for(
        &self,
        school: &SchoolId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Absence>, StoreError> {
        absences_in(&self.conn(), school, Some((from, to)))
    }

    /// Adds a member of staff to `school`, or replaces the record of one already there. An id that belongs
    /// to another school's staff is refused.
    pub fn save_staff(&self, school: &SchoolId, member: &StaffMember) -> Result<Saved, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let saved = match ownership(school_of(&tx, Person::Staff(&member.id))?, school) {
            Ownership::New => {
                tx.execute_cached(
                    "INSERT INTO staff (id, school_id, name, body) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        member.id.as_str(),
                        school.as_str(),
                        member.name,
                        serde_json::to_string(member)?
                    ],
                )?;
                Saved::Added
            }
            Ownership::Ours => {
                tx.execute_cached(
                    "UPDATE staff SET name = ?2, body = ?3 WHERE id = ?1",
                    params![
                        member.id.as_str(),
                        member.name,
                        serde_json::to_string(member)?
                    ],
                )?;
                Saved::Updated
            }
            Ownership::Theirs => return Err(another_schools_staff(member)),
        };
        tx.commit()?;
        Ok(saved)
    }

    /// A member of staff of `school`, if there is one with this id.
    pub fn school_staff_member(
        &self,
        school: &SchoolId,
        staff: &doorstep_core::ids::StaffId,
    ) -> Result<Option<StaffMember>, StoreError> {
        // A member of staff never moves school ([`SqliteStore::save_staff`] refuses another school's id).
        if self.school_of_staff(staff)?.as_ref() != Some(school) {
            return Ok(None);
        }
        staff_member(&self.conn(), staff)
    }

    /// The school's policy.
    pub fn policy(&self, school: &SchoolId) -> Result<Policy, StoreError> {
        Ok(crate::store::school_and_policy(&self.conn(), school)?.1)
    }

    /// Replaces the school's policy, after [`Policy::validate`]: an invalid policy is never stored. Phones
    /// get it at their next sync.
    pub fn set_policy(&self, school: &SchoolId, policy: &Policy) -> Result<(), StoreError> {
        store_policy(&self.conn(), school, policy)
    }

    /// Makes an admin's `change` to the school's settings (from the policy page) as `by` at `now`, with its
    /// audit log entry, in one transaction. Phones get it at their next sync.
    pub fn change_settings(
        &self,
        school: &SchoolId,
        change: SettingsChange<'_>,
        by: &StaffId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
            let (before, before_policy) = crate::store::school_and_policy(tx, school)?;
            match change {
                SettingsChange::Policy { policy, .. } => store_policy(tx, school, policy)?,
                SettingsChange::TimeZone(zone) => crate::store::set_time_zone_in(tx, school, zone)?,
            }
            let entry = change.audit_entry(school, by, &before.time_zone, &before_policy);
            audit::append(tx, &entry, now)?;
            Ok(())
        })
    }
}

/// Stores `policy` as the school's, after [`Policy::validate`]: an invalid policy is never stored.
fn store_policy(conn: &Connection, school: &SchoolId, policy: &Policy) -> Result<(), StoreError> {
    checked_policy(policy)?;
    let changed = conn.execute_cached(
        "UPDATE schools SET policy = ?2 WHERE id = ?1",
        params![school.as_str(), serde_json::to_string(policy)?],
    )?;
    if changed == 0 {
        return Err(StoreError::Invalid(format!("unknown school {school}")));
    }
    Ok(())
}

/// The school's absences, by date then pupil: all of them, or those on the days `days` spans (both
/// included).
pub(crate) fn absences_in(
    conn: &Connection,
    school: &SchoolId,
    days: Option<(NaiveDate, NaiveDate)>,
) -> Result<Vec<Absence>, StoreError> {
    let (from, to) = days
        .map(|(from, to)| (from.to_string(), to.to_string()))
        .unzip();
    let rows: Vec<(String, String, String, bool)> = tuples(
        conn,
        "SELECT a.pupil_id, a.date, a.reason_code, a.contact_made
         FROM absences a JOIN pupils p ON p.id = a.pupil_id
         WHERE p.school_id = ?1 AND (?2 IS NULL OR a.date >= ?2) AND (?3 IS NULL OR a.date <= ?3)
         ORDER BY a.date, a.pupil_id",
        params![school.as_str(), from, to],
    )?;
    rows.into_iter().map(absence_from).collect()
}
