//! Requesting visits on PostgreSQL ([`Requests`]): the same rows as the SQLite store's, built by the same
//! functions ([`crate::requests`]). A requested visit, its details and its contact's target go in
//! together; a concern and its audit entry likewise.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use doorstep_core::contact::PhoneNumber;
use doorstep_core::domain::{Address, Visit};
use doorstep_core::ids::{PupilId, SchoolId, StaffId, VisitId};

use super::audit::append_in;
use super::deliveries::insert_target_in;
use super::people::school_of;
use super::{add_visit_in, columns, execute, query, query_opt, text, PgStore};
use crate::people::{absence_from, Person};
use crate::requests::{
    concern_entry, concern_from, no_such_pupil, request_details_from, responsible_contact_target,
    Absence, Concern, RequestDetails,
};
use crate::store::requests::Requests;
use crate::store::{parse_id, StoreError};

impl Requests for PgStore {
    async fn add_requested_visit(
        &self,
        visit: &Visit,
        details: &RequestDetails,
    ) -> Result<(), StoreError> {
        let contact = responsible_contact_target(details)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        add_visit_in(
            &tx,
            visit,
            Some((&details.requested_by, details.requested_at)),
        )
        .await?;
        let (name, phone) = details
            .responsible_contact
            .as_ref()
            .map_or((None, None), |(n, p)| (Some(n.as_str()), Some(p.as_str())));
        execute(
            &tx,
            "INSERT INTO visit_requests (visit_id, requested_by, requested_at, out_of_hours, evening,
                 contact_name, contact_phone, authoriser_override, contact_email)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &visit.id.as_str(),
                &details.requested_by.as_str(),
                &details.requested_at.to_rfc3339(),
                &details.timing.out_of_hours,
                &details.timing.evening,
                &name,
                &phone,
                &details.authoriser_override,
                &details.contact_email,
            ],
        )
        .await?;
        if let Some(contact) = contact {
            insert_target_in(
                &tx,
                &visit.school,
                Some(&visit.id),
                &contact,
                details.requested_at,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn request_details(&self, visit: &VisitId) -> Result<Option<RequestDetails>, StoreError> {
        let Some(row) = query_opt(
            &self.client().await?,
            "SELECT requested_by, requested_at, out_of_hours, evening, contact_name, contact_phone,
                    authoriser_override, contact_email
             FROM visit_requests WHERE visit_id = $1",
            &[&visit.as_str()],
        )
        .await?
        else {
            return Ok(None);
        };
        let phone: Option<String> = row.try_get(5)?;
        request_details_from((
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
            phone.as_deref().map(PhoneNumber::from_stored),
            row.try_get(6)?,
            row.try_get(7)?,
        ))
        .map(Some)
    }

    async fn set_authoriser_override(
        &self,
        visit: &VisitId,
        reason: &str,
    ) -> Result<(), StoreError> {
        execute(
            &self.client().await?,
            "UPDATE visit_requests SET authoriser_override = $2 WHERE visit_id = $1",
            &[&visit.as_str(), &reason],
        )
        .await?;
        Ok(())
    }

    async fn last_known_address(&self, pupil: &PupilId) -> Result<Option<Address>, StoreError> {
        match query_opt(
            &self.client().await?,
            "SELECT body FROM visits WHERE pupil_id = $1 ORDER BY agreed_time DESC LIMIT 1",
            &[&pupil.as_str()],
        )
        .await?
        {
            Some(row) => Ok(Some(
                serde_json::from_str::<Visit>(&text(&row, "body")?)?.address,
            )),
            None => Ok(None),
        }
    }

    async fn absences(
        &self,
        school: &SchoolId,
    ) -> Result<(Vec<Absence>, BTreeSet<PupilId>), StoreError> {
        let client = self.client().await?;
        let absences = query(
            &client,
            "SELECT a.pupil_id, a.date, a.reason_code, a.contact_made
             FROM absences a JOIN pupils p ON p.id = a.pupil_id
             WHERE p.school_id = $1 ORDER BY a.date, a.pupil_id",
            &[&school.as_str()],
        )
        .await?
        .iter()
        .map(|row| absence_from(columns(row)?))
        .collect::<Result<Vec<_>, StoreError>>()?;
        let concerns = query(
            &client,
            "SELECT c.pupil_id FROM absence_concerns c JOIN pupils p ON p.id = c.pupil_id
             WHERE p.school_id = $1",
            &[&school.as_str()],
        )
        .await?
        .iter()
        .map(|row| parse_id(&text(row, "pupil_id")?))
        .collect::<Result<BTreeSet<_>, StoreError>>()?;
        Ok((absences, concerns))
    }

    async fn absence_concerns(&self, school: &SchoolId) -> Result<Vec<Concern>, StoreError> {
        query(
            &self.client().await?,
            "SELECT c.pupil_id, c.noted_at, c.noted_by FROM absence_concerns c
             JOIN pupils p ON p.id = c.pupil_id WHERE p.school_id = $1 ORDER BY c.noted_at",
            &[&school.as_str()],
        )
        .await?
        .iter()
        .map(|row| concern_from(columns(row)?))
        .collect()
    }

    async fn set_absence_concern(
        &self,
        school: &SchoolId,
        pupil: &PupilId,
        concern: bool,
        by: &StaffId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if school_of(&tx, Person::Pupil(pupil)).await?.as_ref() != Some(school) {
            return Err(no_such_pupil(pupil));
        }
        let changed = if concern {
            execute(
                &tx,
                "INSERT INTO absence_concerns (pupil_id, noted_at, noted_by) VALUES ($1, $2, $3)
                 ON CONFLICT (pupil_id) DO NOTHING",
                &[&pupil.as_str(), &now.to_rfc3339(), &by.as_str()],
            )
            .await?
        } else {
            execute(
                &tx,
                "DELETE FROM absence_concerns WHERE pupil_id = $1",
                &[&pupil.as_str()],
            )
            .await?
        };
        if changed > 0 {
            append_in(&tx, &concern_entry(school, pupil, concern, by), now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn visit_ids_between(
        &self,
        school: &SchoolId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<VisitId>, StoreError> {
        query(
            &self.client().await?,
            "SELECT id FROM visits WHERE school_id = $1
                 AND (agreed_time COLLATE \"C\") >= $2 AND (agreed_time COLLATE \"C\") < $3
             ORDER BY agreed_time COLLATE \"C\", id",
            &[&school.as_str(), &from.to_rfc3339(), &to.to_rfc3339()],
        )
        .await?
        .iter()
        .map(|row| parse_id(&text(row, "id")?))
        .collect()
    }
}
