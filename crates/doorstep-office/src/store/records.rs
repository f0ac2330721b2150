//! Visit records gathered from either store through its areas' methods: each visit's timeline, write-up
//! and month (see [`crate::records`] for how a record is worded and compiled).

use std::collections::BTreeMap;

use doorstep_core::ids::{SchoolId, StaffId, VisitId};
use doorstep_core::lifecycle::{self, VisitState};

use crate::notify::Delivery;
use crate::reach;
use crate::records::*;
use crate::store::{OfficeStore, StoreError};

impl OfficeStore {
    /// A visit's timeline, or `None` for an unknown visit.
    pub fn timeline(&self, visit: &VisitId) -> Result<Option<Timeline>, StoreError> {
        Ok(self.visit_record(visit)?.map(|record| record.timeline))
    }

    /// A visit with its state, timeline and alarms, or `None` for an unknown visit.
    ///
    /// The alarms and their log are read before the events: the office writes an alarm step only after the
    /// event it reacts to is stored, so every step read has its cause among the events read next. The state is
    /// replayed from exactly those events (as the store does) so it never says more than the timeline shows.
    pub fn visit_record(&self, visit: &VisitId) -> Result<Option<VisitRecord>, StoreError> {
        let Some((planned, _)) = self.visit(visit)? else {
            return Ok(None);
        };
        let log = self.alarm_log(visit)?;
        let alarms = self.alarms_for_visit(visit)?;
        let notices = self.notices_for_visit(visit)?;
        let deliveries: Vec<Delivery> = self.deliveries_for_visit(visit)?;
        let events = self.events_for_visit(visit)?;
        let names = self.staff_names(&planned.school)?;
        let zone = self.school(&planned.school)?.time_zone;
        let record_system = self.policy(&planned.school)?.record_system;
        let state = lifecycle::replay(
            VisitState::new(planned.staff_ids()),
            events.iter().map(|stored| &stored.envelope),
        );
        let timeline = Timeline::build(visit.clone(), zone, &events, &alarms, &log, &names);
        let context = self.reach_context(&planned.school, Some(visit))?;
        let mut alarms_told = Vec::new();
        let (mut alarms_not_reached, mut alarms_delivered) = (Vec::new(), Vec::new());
        for alarm in &alarms {
            let lines = context.alarm_lines(alarm, &log, &deliveries);
            if lines.iter().any(reach::needs_action) {
                alarms_not_reached.push(alarm.id);
            }
            if lines
                .iter()
                .any(|l| matches!(l, reach::Line::Told(t) if matches!(t.sent, reach::Sent::Delivered(_))))
            {
                alarms_delivered.push(alarm.id);
            }
            alarms_told.push((
                alarm.id,
                lines
                    .iter()
                    .map(|line| alarm_record_words(&zone, line))
                    .collect(),
            ));
        }
        let notices = notices
            .into_iter()
            .map(|notice| {
                let lines = context.notice_lines(&notice, &deliveries);
                NoticeRecord {
                    passed_on: lines.iter().any(|l| {
                        matches!(l, reach::Line::Told(t) if matches!(t.sent, reach::Sent::Delivered(_)))
                    }),
                    told: lines
                        .iter()
                        .map(|line| match line {
                            reach::Line::Told(_) => {
                                format!("Passed on: {}", notice_record_words(&zone, line))
                            }
                            _ => notice_record_words(&zone, line),
                        })
                        .collect(),
                    notice,
                }
            })
            .collect();
        Ok(Some(VisitRecord {
            visit: planned,
            state,
            timeline,
            alarms,
            alarms_told,
            alarms_not_reached,
            alarms_delivered,
            notices,
            time_zone: zone,
            record_system,
        }))
    }

    /// The visits of `school` whose agreed time falls in `month` (on the school's clock), in agreed-time
    /// order.
    pub fn visit_records_in_month(
        &self,
        school: &SchoolId,
        month: ReportMonth,
    ) -> Result<Vec<VisitRecord>, StoreError> {
        let ids = self.visit_ids_between(school, month.start(), month.end())?;
        let mut records = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(record) = self.visit_record(id)? {
                records.push(record);
            }
        }
        Ok(records)
    }

    /// The monthly report for `school`: visits agreed in that month (the school's month) and everything that happened to
    /// them. Refuses a month outside 1 to 12 or an unknown school.
    pub fn monthly_report(
        &self,
        school: &SchoolId,
        year: i32,
        month: u32,
    ) -> Result<MonthlyReport, StoreError> {
        let school = self.school(school)?;
        let month = ReportMonth::new(year, month, &school.time_zone)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let records = self.visit_records_in_month(&school.id, month)?;
        Ok(MonthlyReport::compile(&school, month, &records))
    }

    /// Every member of staff of a school by id, for putting names on a timeline.
    fn staff_names(&self, school: &SchoolId) -> Result<BTreeMap<StaffId, String>, StoreError> {
        Ok(self
            .school_staff(school)?
            .into_iter()
            .map(|member| (member.id, member.name))
            .collect())
    }
}
