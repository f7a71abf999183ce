//! The time the tracker closes bars and checks deadlines by: the system clock, or a clock a
//! test sets, so no test races the machine's speed.

use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

#[derive(Clone, Default)]
pub struct Clock(Option<Arc<Mutex<OffsetDateTime>>>);

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("Clock(system)"),
            Some(_) => write!(f, "Clock(manual {})", self.now()),
        }
    }
}

impl Clock {
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock that stands at `at` until [`Clock::set`].
    pub fn manual(at: OffsetDateTime) -> Clock {
        Clock(Some(Arc::new(Mutex::new(at))))
    }

    pub fn now(&self) -> OffsetDateTime {
        match &self.0 {
            None => OffsetDateTime::now_utc(),
            Some(t) => *t.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Moves a manual clock (never backwards); nothing for the system clock.
    pub fn set(&self, at: OffsetDateTime) {
        if let Some(t) = &self.0 {
            let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
            *t = (*t).max(at);
        }
    }
}
