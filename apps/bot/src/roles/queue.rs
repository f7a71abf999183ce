//! Role sync's work queue: each job waits at most once; live changes run before
//! reconciliation, and retries are queued when they fall due.

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    sync::Mutex,
};

use tokio::{sync::Notify, time::Instant};

/// One unit of work for the worker.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Job {
    /// Converge one `role_state` document.
    State(String),
    /// A customer's link changed: recompute their desired roles, then converge them.
    Link(String),
    /// Compare one member's managed roles in Discord with what they should hold, and repair.
    Member { discord: u64, why: Why },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Why {
    Joined,
    Reconcile,
}

/// Jobs waiting, each at most once: live changes first, then reconciliation, then retries
/// when they fall due.
#[derive(Default)]
pub(super) struct Queue {
    inner: Mutex<Pending>,
    notify: Notify,
}

#[derive(Default)]
struct Pending {
    urgent: VecDeque<Job>,
    background: VecDeque<Job>,
    queued: HashSet<Job>,
    /// Jobs to queue later, by when; `due` holds each one's current time (earlier wins).
    later: BTreeMap<(Instant, u64), Job>,
    due: HashMap<Job, Instant>,
    seq: u64,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn push(&self, job: Job, urgent: bool) {
        let mut q = self.lock();
        let fresh = q.queued.insert(job.clone());
        if urgent {
            q.urgent.push_back(job);
        } else if fresh {
            q.background.push_back(job);
        }
        drop(q);
        self.notify.notify_one();
    }

    /// Queues `job` at `at` (or earlier, if it is already due earlier).
    pub(super) fn push_at(&self, job: Job, at: Instant) {
        let mut q = self.lock();
        if q.due.get(&job).is_some_and(|d| *d <= at) {
            return;
        }
        q.seq += 1;
        let seq = q.seq;
        q.due.insert(job.clone(), at);
        q.later.insert((at, seq), job);
        drop(q);
        self.notify.notify_one();
    }

    pub(super) async fn pop(&self) -> Job {
        loop {
            let next_due = {
                let mut q = self.lock();
                let now = Instant::now();
                while let Some(entry) = q.later.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    let ((at, _), job) = entry.remove_entry();
                    if q.due.get(&job) == Some(&at) {
                        q.due.remove(&job);
                        if q.queued.insert(job.clone()) {
                            q.background.push_back(job);
                        }
                    }
                }
                while let Some(job) = q.urgent.pop_front().or_else(|| q.background.pop_front()) {
                    if q.queued.remove(&job) {
                        return job;
                    }
                }
                q.later.keys().next().map(|(at, _)| *at)
            };
            match next_due {
                Some(at) => {
                    tokio::select! {
                        _ = self.notify.notified() => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => self.notify.notified().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn the_queue_runs_live_changes_first_once_each_and_retries_when_due() {
        let q = Queue::default();
        q.push(Job::State("a".into()), false);
        q.push(Job::State("b".into()), true);
        q.push(Job::State("a".into()), false);
        q.push_at(
            Job::State("c".into()),
            Instant::now() + Duration::from_millis(50),
        );
        q.push_at(
            Job::State("c".into()),
            Instant::now() + Duration::from_secs(60),
        );
        assert_eq!(q.pop().await, Job::State("b".into()));
        assert_eq!(q.pop().await, Job::State("a".into()));
        let started = Instant::now();
        assert_eq!(q.pop().await, Job::State("c".into()));
        assert!(started.elapsed() >= Duration::from_millis(30));
        let pending = q.lock();
        assert!(pending.later.is_empty() && pending.due.is_empty());
    }
}
