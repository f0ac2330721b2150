//! People and settings on PostgreSQL ([`People`]): the same rows as the SQLite store's, parsed, judged and
//! reported by the same functions ([`crate::people`]). An import's valid rows go in together in one
//! transaction; a school's settings change and its audit entry likewise.

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use doorstep_core::domain::{Pupil, School, SchoolTimeZone, StaffMember};
use doorstep_core::ids::{PupilId, SchoolId, StaffId};
use doorstep_core::policy::Policy;
use tokio_postgres::Row;

use super::audit::append_in;
use super::{
    columns, execute, query, query_one, query_opt, school_from, school_policy, text, PgStore,
};
use crate::people::{
    absence_from, another_schools_staff, checked_policy, import_report, ownership,
    parse_absences_csv, parse_pupils_csv, pupil_record, unknown_pupil, Absence, ImportKind,
    ImportReport, Ownership, ParsedCsv, Person, PupilRecord, Saved, SettingsChange, Stored,
    ANOTHER_SCHOOLS_PUPIL,
};
use crate::store::people::People;
use crate::store::{parse_id, StoreError};

/// The school `person` belongs to, if the id is known at all (as the SQLite store's `school_of`).
pub(super) async fn school_of(
    client: &impl GenericClient,
    person: Person<'_>,
) -> Result<Option<SchoolId>, StoreError> {
    let (sql, id) = match person {
        Person::Staff(staff) => ("SELECT school_id FROM staff WHERE id = $1", staff.as_str()),
        Person::Pupil(pupil) => ("SELECT school_id FROM pupils WHERE id = $1", pupil.as_str()),
    };
    match query_opt(client, sql, &[&id]).await? {
        Some(row) => Ok(Some(parse_id(&text(&row, "school_id")?)?)),
        None => Ok(None),
    }
}

/// A member of staff of `school`, if there is one with this id.
pub(super) async fn staff_of_school(
    client: &impl GenericClient,
    school: &SchoolId,
    staff: &StaffId,
) -> Result<Option<StaffMember>, StoreError> {
    query_opt(
        client,
        "SELECT body FROM staff WHERE id = $1 AND school_id = $2",
        &[&staff.as_str(), &school.as_str()],
    )
    .await?
    .as_ref()
    .map(staff_from)
    .transpose()
}

async fn store_pupil(
    tx: &impl GenericClient,
    school: &SchoolId,
    pupil: PupilRecord,
) -> Result<Stored, StoreError> {
    let (sql, stored) = match ownership(school_of(tx, Person::Pupil(&pupil.id)).await?, school) {
        Ownership::Theirs => return Ok(Stored::Refused(ANOTHER_SCHOOLS_PUPIL.into())),
        Ownership::New => (
            "INSERT INTO pupils (id, school_id, name, date_of_birth, address_line_1,
                 address_line_2, town, postcode, family_notes, medical_needs)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            Stored::Added,
        ),
        Ownership::Ours => (
            "UPDATE pupils SET name = $3, date_of_birth = $4, address_line_1 = $5,
                 address_line_2 = $6, town = $7, postcode = $8, family_notes = $9,
                 medical_needs = $10
             WHERE id = $1 AND school_id = $2",
            Stored::Updated,
        ),
    };
    execute(
        tx,
        sql,
        &[
            &pupil.id.as_str(),
            &school.as_str(),
            &pupil.name,
            &pupil.date_of_birth.to_string(),
            &pupil.address_line_1,
            &pupil.address_line_2,
            &pupil.town,
            &pupil.postcode.as_str(),
            &pupil.family_notes,
            &pupil.medical_needs,
        ],
    )
    .await?;
    Ok(stored)
}

async fn store_absence(
    tx: &impl GenericClient,
    school: &SchoolId,
    absence: Absence,
) -> Result<Stored, StoreError> {
    if school_of(tx, Person::Pupil(&absence.pupil)).await?.as_ref() != Some(school) {
        return Ok(unknown_pupil(&absence.pupil));
    }
    // `xmax = 0` on the returned row: the row was inserted, not updated.
    let row = query_one(
        tx,
        "INSERT INTO absences (pupil_id, date, reason_code, contact_made)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (pupil_id, date) DO UPDATE
         SET reason_code = excluded.reason_code, contact_made = excluded.contact_made
         RETURNING (xmax = 0) AS added",
        &[
            &absence.pupil.as_str(),
            &absence.date.to_string(),
            &absence.reason_code,
            &absence.contact_made,
        ],
    )
    .await?;
    Ok(if row.try_get("added")? {
        Stored::Added
    } else {
        Stored::Updated
    })
}

fn staff_from(row: &Row) -> Result<StaffMember, StoreError> {
    Ok(serde_json::from_str(&text(row, "body")?)?)
}

/// A parsed row of either import.
enum ImportRow {
    Pupil(PupilRecord),
    Absence(Absence),
}

/// A parsed import's rows as [`ImportRow`]s.
fn rows_of<T>(
    parsed: Result<ParsedCsv<T>, String>,
    row: fn(T) -> ImportRow,
) -> Result<ParsedCsv<ImportRow>, StoreError> {
    let ParsedCsv { rows, rejected } = parsed.map_err(StoreError::Invalid)?;
    Ok(ParsedCsv {
        rows: rows
            .into_iter()
            .map(|(line, id, value)| (line, id, row(value)))
            .collect(),
        rejected,
    })
}

/// Replaces the school's policy, after [`checked_policy`]; an unknown school is refused.
async fn store_policy(
    client: &impl GenericClient,
    school: &SchoolId,
    policy: &Policy,
) -> Result<(), StoreError> {
    checked_policy(policy)?;
    let changed = execute(
        client,
        "UPDATE schools SET policy = $2 WHERE id = $1",
        &[&school.as_str(), &serde_json::to_string(policy)?],
    )
    .await?;
    known_school(changed, school)
}

/// Moves the school to another time zone; an unknown school is refused.
async fn store_time_zone(
    client: &impl GenericClient,
    school: &SchoolId,
    zone: SchoolTimeZone,
) -> Result<(), StoreError> {
    let changed = execute(
        client,
        "UPDATE schools SET time_zone = $2 WHERE id = $1",
        &[&school.as_str(), &zone.name()],
    )
    .await?;
    known_school(changed, school)
}

fn known_school(changed: u64, school: &SchoolId) -> Result<(), StoreError> {
    if changed == 0 {
        return Err(StoreError::Invalid(format!("unknown school {school}")));
    }
    Ok(())
}

impl People for PgStore {
    async fn import_csv(
        &self,
        kind: ImportKind,
        school: &SchoolId,
        text: &str,
        today: NaiveDate,
    ) -> Result<ImportReport, StoreError> {
        let ParsedCsv { rows, rejected } = match kind {
            ImportKind::Pupils => rows_of(parse_pupils_csv(text, today), ImportRow::Pupil)?,
            ImportKind::Absences => rows_of(parse_absences_csv(text, today), ImportRow::Absence)?,
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut stored = Vec::with_capacity(rows.len());
        for (line, pupil_id, row) in rows {
            let outcome = match row {
                ImportRow::Pupil(pupil) => store_pupil(&tx, school, pupil).await?,
                ImportRow::Absence(day) => store_absence(&tx, school, day).await?,
            };
            stored.push((line, pupil_id, outcome));
        }
        tx.commit().await?;
        Ok(import_report(rejected, stored))
    }

    async fn pupil_records(&self, school: &SchoolId) -> Result<Vec<PupilRecord>, StoreError> {
        query(
            &self.client().await?,
            "SELECT id, name, date_of_birth, address_line_1, address_line_2, town, postcode,
                    family_notes, medical_needs
             FROM pupils WHERE school_id = $1 AND date_of_birth IS NOT NULL ORDER BY name, id",
            &[&school.as_str()],
        )
        .await?
        .iter()
        .map(|row| pupil_record(columns(row)?))
        .collect()
    }

    async fn school_pupils(&self, school: &SchoolId) -> Result<Vec<Pupil>, StoreError> {
        query(
            &self.client().await?,
            "SELECT id, name FROM pupils WHERE school_id = $1 ORDER BY name, id",
            &[&school.as_str()],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(Pupil {
                id: parse_id::<PupilId>(&text(row, "id")?)?,
                name: text(row, "name")?,
            })
        })
        .collect()
    }

    async fn absences_for(
        &self,
        school: &SchoolId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Absence>, StoreError> {
        query(
            &self.client().await?,
            "SELECT a.pupil_id, a.date, a.reason_code, a.contact_made
             FROM absences a JOIN pupils p ON p.id = a.pupil_id
             WHERE p.school_id = $1 AND a.date >= $2 AND a.date <= $3
             ORDER BY a.date, a.pupil_id",
            &[&school.as_str(), &from.to_string(), &to.to_string()],
        )
        .await?
        .iter()
        .map(|row| absence_from(columns(row)?))
        .collect()
    }

    async fn save_staff(
        &self,
        school: &SchoolId,
        member: &StaffMember,
    ) -> Result<Saved, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let body = serde_json::to_string(member)?;
        let saved = match ownership(school_of(&tx, Person::Staff(&member.id)).await?, school) {
            Ownership::New => {
                execute(
                    &tx,
                    "INSERT INTO staff (id, school_id, name, body) VALUES ($1, $2, $3, $4)",
                    &[&member.id.as_str(), &school.as_str(), &member.name, &body],
                )
                .await?;
                Saved::Added
            }
            Ownership::Ours => {
                execute(
                    &tx,
                    "UPDATE staff SET name = $2, body = $3 WHERE id = $1",
                    &[&member.id.as_str(), &member.name, &body],
                )
                .await?;
                Saved::Updated
            }
            Ownership::Theirs => return Err(another_schools_staff(member)),
        };
        tx.commit().await?;
        Ok(saved)
    }

    async fn school_staff_member(
        &self,
        school: &SchoolId,
        staff: &StaffId,
    ) -> Result<Option<StaffMember>, StoreError> {
        staff_of_school(&self.client().await?, school, staff).await
    }

    async fn school_staff(&self, school: &SchoolId) -> Result<Vec<StaffMember>, StoreError> {
        query(
            &self.client().await?,
            "SELECT body FROM staff WHERE school_id = $1 ORDER BY name",
            &[&school.as_str()],
        )
        .await?
        .iter()
        .map(staff_from)
        .collect()
    }

    async fn policy(&self, school: &SchoolId) -> Result<Policy, StoreError> {
        school_policy(&self.client().await?, school).await
    }

    async fn school(&self, school: &SchoolId) -> Result<School, StoreError> {
        let row = query_opt(
            &self.client().await?,
            "SELECT id, name, office_phone, policy, time_zone FROM schools WHERE id = $1",
            &[&school.as_str()],
        )
        .await?
        .ok_or_else(|| StoreError::Invalid(format!("unknown school {school}")))?;
        Ok(school_from(&row)?.0)
    }

    async fn set_policy(&self, school: &SchoolId, policy: &Policy) -> Result<(), StoreError> {
        store_policy(&self.client().await?, school, policy).await
    }

    async fn set_school_time_zone(
        &self,
        school: &SchoolId,
        zone: SchoolTimeZone,
    ) -> Result<(), StoreError> {
        store_time_zone(&self.client().await?, school, zone).await
    }

    async fn school_of_staff(&self, staff: &StaffId) -> Result<Option<SchoolId>, StoreError> {
        school_of(&self.client().await?, Person::Staff(staff)).await
    }

    async fn change_settings(
        &self,
        school: &SchoolId,
        change: SettingsChange<'_>,
        by: &StaffId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = query_opt(
            &tx,
            "SELECT id, name, office_phone, policy, time_zone FROM schools WHERE id = $1 FOR UPDATE",
            &[&school.as_str()],
        )
        .await?
        .ok_or_else(|| StoreError::Invalid(format!("unknown school {school}")))?;
        let (before, before_policy) = school_from(&row)?;
        match change {
            SettingsChange::Policy { policy, .. } => store_policy(&tx, school, policy).await?,
            SettingsChange::TimeZone(zone) => store_time_zone(&tx, school, zone).await?,
        }
        let entry = change.audit_entry(school, by, &before.time_zone, &before_policy);
        append_in(&tx, &entry, now).await?;
        tx.commit().await?;
        Ok(())
    }
}
