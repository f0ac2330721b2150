//! Keeping the visit timer alive while the phone is in a pocket: leases, one per visit in progress.
//!
//! The office holds the real deadlines; the phone only needs to keep reminding its user. While at least
//! one lease is held the platform keeps the app able to do that (Android: a foreground service; iOS:
//! reminders scheduled ahead with the system). [`LeaseSet`] is the bookkeeping every platform shares, so
//! "start on the first lease, stop after the last" is written and tested once.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use doorstep_core::ids::VisitId;

/// A request to keep the visit timer running for one visit in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitTimerLease {
    /// Which visit; never shown to anyone, only used to match the release.
    pub visit: VisitId,
    /// When the next check-in is due, if known, as this phone's own clock will read it (the office's due
    /// time moved by the phone's measured offset): iOS schedules a [`super::Notice::CheckInDue`] for then,
    /// by the phone's clock, because it may not let the app run until that moment.
    pub next_check_in: Option<DateTime<Utc>>,
}

/// What the platform has to do after a lease changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseChange {
    /// The first lease: start keeping the app alive.
    Start,
    /// Already alive; a lease was added, renewed or released but others remain.
    Update,
    /// The last lease went: stop.
    Stop,
    /// A release for a visit that held no lease: nothing to do.
    Nothing,
}

/// The leases a platform currently holds.
#[derive(Debug, Default)]
pub struct LeaseSet {
    leases: BTreeMap<VisitId, Option<DateTime<Utc>>>,
}

impl LeaseSet {
    /// Adds or renews a lease.
    pub fn hold(&mut self, lease: &VisitTimerLease) -> LeaseChange {
        let was_empty = self.leases.is_empty();
        self.leases.insert(lease.visit.clone(), lease.next_check_in);
        if was_empty {
            LeaseChange::Start
        } else {
            LeaseChange::Update
        }
    }

    /// Releases a visit's lease, if it had one.
    pub fn release(&mut self, visit: &VisitId) -> LeaseChange {
        match self.leases.remove(visit) {
            None => LeaseChange::Nothing,
            Some(_) if self.leases.is_empty() => LeaseChange::Stop,
            Some(_) => LeaseChange::Update,
        }
    }

    /// The earliest check-in due among the held leases.
    pub fn next_check_in(&self) -> Option<DateTime<Utc>> {
        self.leases.values().flatten().min().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn lease(visit: &str, minute: Option<u32>) -> VisitTimerLease {
        VisitTimerLease {
            visit: VisitId::parse(visit).unwrap(),
            next_check_in: minute.map(|m| Utc.with_ymd_and_hms(2026, 3, 2, 10, m, 0).unwrap()),
        }
    }

    #[test]
    fn the_first_lease_starts_and_the_last_release_stops() {
        let mut set = LeaseSet::default();
        assert_eq!(set.hold(&lease("v1", Some(30))), LeaseChange::Start);
        assert_eq!(set.hold(&lease("v2", Some(10))), LeaseChange::Update);
        assert_eq!(set.hold(&lease("v1", None)), LeaseChange::Update);
        assert_eq!(set.next_check_in(), lease("v", Some(10)).next_check_in);
        assert_eq!(
            set.release(&VisitId::parse("v9").unwrap()),
            LeaseChange::Nothing
        );
        assert_eq!(
            set.release(&VisitId::parse("v2").unwrap()),
            LeaseChange::Update
        );
        assert_eq!(set.next_check_in(), None);
        assert_eq!(
            set.release(&VisitId::parse("v1").unwrap()),
            LeaseChange::Stop
        );
        assert!(set.is_empty());
        assert_eq!(
            set.release(&VisitId::parse("v1").unwrap()),
            LeaseChange::Nothing
        );
    }
}
