//! What a phone is sent at each sync, as both stores build it: the basis its cursor carries (everything but
//! the events), how a held visit is sent (a finished visit's briefing withdrawn, a write-up's words left
//! out), and the bound on one answer's changes. The stores only read what these take.

use doorstep_core::domain::{Briefing, School, StaffMember, Visit};
use doorstep_core::lifecycle::VisitEvent;
use doorstep_core::policy::Policy;
use doorstep_core::protocol::{EventTime, HeldVisit};
use sha2::{Digest, Sha256};

use super::{StoreError, StoredEvent};

/// The part of a cursor that says what the phone held besides events: a hash of its school, policy, holder
/// and held visits as sent. Any change there and the phone is sent everything again.
pub(crate) fn basis(
    school: &School,
    policy: &Policy,
    member: &StaffMember,
    visits: &[Visit],
) -> Result<String, StoreError> {
    let mut hash = Sha256::new();
    hash.update(serde_json::to_vec(&(
        school,
        &policy,
        &member.id,
        &member.name,
        visits,
    ))?);
    Ok(hash.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A visit as a phone holds it in `phase` (the stored phase's name): a finished visit's briefing (risks,
/// family, needs, pets) leaves the phones, which no longer need it, and a lost phone should not carry it.
pub(crate) fn as_held(mut visit: Visit, phase: &str) -> Visit {
    if matches!(phase, "written_up" | "cancelled" | "declined") {
        visit.briefing = Briefing::withdrawn();
    }
    visit
}

/// A held visit with `events` as a phone is sent them: a write-up's words go to no phone (the writer's
/// own leave it once confirmed, and a partner has no need to know them); what a replay reads (who, the
/// concern) is kept.
pub(crate) fn held_visit(visit: Visit, stored: Vec<StoredEvent>) -> HeldVisit {
    let times = stored
        .iter()
        .map(|event| EventTime {
            id: event.envelope.id,
            at: event.trusted_at,
        })
        .collect();
    let events = stored
        .into_iter()
        .map(|event| {
            let mut envelope = event.envelope;
            if let VisitEvent::WrittenUp { .. } = envelope.event {
                if let Some(without) = envelope.event.without_free_text() {
                    envelope.event = without;
                }
            }
            envelope
        })
        .collect();
    HeldVisit {
        visit,
        events,
        times,
    }
}
