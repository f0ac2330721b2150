//! A log of every request the app made of the platform, so tests (and the desktop window) can check what a
//! phone would have been asked to do: "a notification was shown, and it named nobody".

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use doorstep_core::ids::VisitId;

use super::{
    LeaseSet, Notice, Pattern, PhoneNumber, Platform, PlatformError, Urgency, VisitTimerLease,
};
use crate::vault::DataKey;

/// One request made of the platform, as the phone would have received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformCall {
    Notified(Notice),
    Vibrated(Pattern),
    PlayedAlertSound(Urgency),
    /// The `tel:` link handed to the dialler.
    OpenedDialler {
        uri: String,
    },
    /// The `sms:` link handed to the message composer, body included (percent-encoded).
    OpenedSms {
        uri: String,
    },
    KeptAlive(VisitTimerLease),
    Released(VisitId),
}

/// A shareable, append-only list of [`PlatformCall`]s, plus the leases they hold.
///
/// Clones share one log, so a test can keep a handle while the app owns the platform.
#[derive(Debug, Clone, Default)]
pub struct CallLog {
    inner: Arc<Mutex<LogState>>,
}

#[derive(Debug, Default)]
struct LogState {
    calls: Vec<PlatformCall>,
    leases: LeaseSet,
}

impl CallLog {
    /// Every call so far, oldest first.
    pub fn calls(&self) -> Vec<PlatformCall> {
        self.lock().calls.clone()
    }

    /// Every notice shown so far, oldest first.
    pub fn notices(&self) -> Vec<Notice> {
        self.lock()
            .calls
            .iter()
            .filter_map(|call| match call {
                PlatformCall::Notified(notice) => Some(*notice),
                _ => None,
            })
            .collect()
    }

    /// Whether a visit timer lease is held now.
    pub fn keeping_alive(&self) -> bool {
        !self.lock().leases.is_empty()
    }

    /// Forgets the calls so far (the leases stay held).
    pub fn clear(&self) {
        self.lock().calls.clear();
    }

    pub(crate) fn record(&self, call: PlatformCall) {
        let mut state = self.lock();
        match &call {
            PlatformCall::KeptAlive(lease) => {
                state.leases.hold(lease);
            }
            PlatformCall::Released(visit) => {
                state.leases.release(visit);
            }
            _ => {}
        }
        state.calls.push(call);
    }

    // A panic while the lock was held (only possible in a test's own assertion) must not hide the log from
    // the next reader: the data is a plain list and stays valid.
    fn lock(&self) -> MutexGuard<'_, LogState> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A platform that does nothing but record, with a data folder of the test's choosing. For the app's tests
/// and for screens rendered without a window. Its key store is in memory, shared by its clones.
#[derive(Debug, Clone)]
pub struct RecordingPlatform {
    data_dir: PathBuf,
    log: CallLog,
    keys: Arc<Mutex<HashMap<PathBuf, DataKey>>>,
}

impl RecordingPlatform {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            log: CallLog::default(),
            keys: Arc::default(),
        }
    }

    fn keys(&self) -> MutexGuard<'_, HashMap<PathBuf, DataKey>> {
        self.keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The log this platform writes to; clones share it.
    pub fn log(&self) -> CallLog {
        self.log.clone()
    }
}

impl Platform for RecordingPlatform {
    fn app_data_dir(&self) -> Result<PathBuf, PlatformError> {
        Ok(self.data_dir.clone())
    }

    fn notify(&self, notice: Notice) -> Result<(), PlatformError> {
        self.log.record(PlatformCall::Notified(notice));
        Ok(())
    }

    fn vibrate(&self, pattern: Pattern) -> Result<(), PlatformError> {
        self.log.record(PlatformCall::Vibrated(pattern));
        Ok(())
    }

    fn play_alert_sound(&self, urgency: Urgency) -> Result<(), PlatformError> {
        self.log.record(PlatformCall::PlayedAlertSound(urgency));
        Ok(())
    }

    fn open_dialler(&self, number: &PhoneNumber) -> Result<(), PlatformError> {
        self.log.record(PlatformCall::OpenedDialler {
            uri: number.tel_uri(),
        });
        Ok(())
    }

    fn open_sms(&self, number: &PhoneNumber, body: &str) -> Result<(), PlatformError> {
        self.log.record(PlatformCall::OpenedSms {
            uri: number.sms_uri(body),
        });
        Ok(())
    }

    fn keep_alive(&self, lease: &VisitTimerLease) -> Result<(), PlatformError> {
        self.log.record(PlatformCall::KeptAlive(lease.clone()));
        Ok(())
    }

    fn release_keep_alive(&self, visit: &VisitId) -> Result<(), PlatformError> {
        self.log.record(PlatformCall::Released(visit.clone()));
        Ok(())
    }

    fn load_data_key(&self, data_dir: &Path) -> Result<Option<DataKey>, PlatformError> {
        Ok(self.keys().get(data_dir).cloned())
    }

    fn create_data_key(&self, data_dir: &Path) -> Result<DataKey, PlatformError> {
        let key = DataKey::generate();
        self.keys().insert(data_dir.to_owned(), key.clone());
        Ok(key)
    }

    fn delete_data_key(&self, data_dir: &Path) -> Result<(), PlatformError> {
        self.keys().remove(data_dir);
        Ok(())
    }
}
