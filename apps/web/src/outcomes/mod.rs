//! Signal outcomes in web: [`OutcomeBook`] holds every `signal_outcomes` document this process
//! has heard, fed by the live upstream ([`crate::live::Publisher`] follows `signal_outcomes`
//! next to `signals`, loads the whole collection on its first connect and catches up on every
//! reconnect), and answers the three readers of outcomes without a call to Appwrite: card
//! status fragments ([`status`]), the member performance page and the public results.
//!
//! Why a book and not a read per request: a report covers every signal ever posted (all time),
//! so reading the outcomes for each page view would cost one list of the whole collection per
//! request; the book costs one read per process start plus the changes Realtime pushes anyway.
//! Reports are still worked out from the outcomes themselves (windows roll with the clock, so a
//! running sum could not drop what leaves the 7-day window), and each is kept per set of
//! visible routes until an outcome changes in a way the numbers see ([`StatsKey`]) or
//! [`REPORT_MAX_AGE`] passes: progress alone (a new last price) never recomputes a report.
//! Memory: one parsed outcome per signal (its revision list dropped, the numbers never use it),
//! about a kilobyte each, plus its rendered status fragment.

pub mod status;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use g3_appwrite::Document;
use g3_core::entitlements::Entitlement;
use g3_outcomes::{
    Outcome,
    stats::{self, Report, Tracked},
};
use g3_store::models::SignalOutcome;
use time::OffsetDateTime;

/// A report is recomputed at least this often, so windows follow the clock.
pub const REPORT_MAX_AGE: Duration = Duration::from_secs(60);

/// Route sets whose report is kept at once (as many as distinct plan combinations).
const REPORT_SETS: usize = 32;

/// One signal's outcome as the book keeps it.
struct Entry {
    route: String,
    /// `$updatedAt` of the document: an older copy (a catch-up racing an event) never
    /// replaces a newer one.
    updated_at: OffsetDateTime,
    outcome: Outcome,
    /// The card's status fragment, rendered once per version.
    html: Arc<str>,
}

/// What in an outcome the numbers depend on; progress (last price, prices judged) is left out.
#[derive(PartialEq)]
struct StatsKey<'a> {
    status: g3_outcomes::Status,
    posted_at: OffsetDateTime,
    ended_at: Option<OffsetDateTime>,
    entry: bool,
    stop: Option<f64>,
    stop_at_entry: Option<f64>,
    targets: &'a [f64],
    hits: Vec<(usize, Option<f64>)>,
    realized: (Option<f64>, f64),
    edits: u32,
    deleted: bool,
    ambiguous: (u32, bool),
    lower_precision: bool,
}

impl<'a> StatsKey<'a> {
    fn of(o: &'a Outcome) -> Self {
        StatsKey {
            status: o.status,
            posted_at: o.posted_at,
            ended_at: o.ended_at,
            entry: o.entry.is_some(),
            stop: o.stop,
            stop_at_entry: o.stop_at_entry,
            targets: &o.targets,
            hits: o.targets_hit.iter().map(|h| (h.index, h.r)).collect(),
            realized: (o.realized_r, o.realized_pct),
            edits: o.edits,
            deleted: o.deleted_at.is_some(),
            ambiguous: (o.quality.ambiguous_bars, o.ambiguous()),
            lower_precision: o.lower_precision(),
        }
    }
}

#[derive(Default)]
struct Book {
    entries: HashMap<String, Entry>,
    /// Bumped when an outcome changes in a way [`StatsKey`] sees, or one comes or goes.
    stats_version: u64,
}

/// A report as computed for one set of routes.
struct Memo {
    version: u64,
    at: Instant,
    report: Arc<Report>,
}

/// An outcome taken into the book: what to tell browsers.
pub struct Applied {
    pub route: String,
    pub html: Arc<str>,
    /// Something a reader acts on changed (a new outcome, an entry, a target, an exit, an
    /// edit, a deletion), not only the last price.
    pub news: bool,
}

/// Every outcome heard, and reports made from them. See the module doc.
#[derive(Default)]
pub struct OutcomeBook {
    book: RwLock<Book>,
    /// The whole collection was loaded once: the book is complete from then on.
    ready: AtomicBool,
    reports: Mutex<HashMap<Entitlement, Memo>>,
}

/// Decodes the outcome a tracker stored, or says why not.
pub fn decode(doc: &SignalOutcome) -> Result<Outcome, serde_json::Error> {
    let mut outcome: Outcome = serde_json::from_str(&doc.outcome)?;
    // Not used by any number or by the card; the signal's history can be long.
    outcome.revisions = Vec::new();
    Ok(outcome)
}

impl OutcomeBook {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Book> {
        self.book.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Book> {
        self.book.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a document in unless the book already has this version or a newer one. Returns
    /// what changed for browsers, `None` when nothing did (or the outcome does not decode).
    pub fn apply(&self, doc: &Document<SignalOutcome>) -> Option<Applied> {
        if self
            .read()
            .entries
            .get(&doc.id)
            .is_some_and(|e| e.updated_at >= doc.updated_at)
        {
            return None;
        }
        let outcome = match decode(&doc.data) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(id = %doc.id, error = %e, "outcome skipped: does not decode");
                return None;
            }
        };
        let html: Arc<str> = match status::render(&doc.id, &outcome) {
            Ok(html) => html.into(),
            Err(e) => {
                tracing::error!(id = %doc.id, error = %e, "outcome status failed to render");
                return None;
            }
        };
        let mut book = self.write();
        let counts = match book.entries.get(&doc.id) {
            // Checked again under the write lock: another writer may have been first.
            Some(e) if e.updated_at >= doc.updated_at => return None,
            Some(e) => {
                StatsKey::of(&e.outcome) != StatsKey::of(&outcome) || e.route != doc.data.route_key
            }
            None => true,
        };
        if counts {
            book.stats_version += 1;
        }
        book.entries.insert(
            doc.id.clone(),
            Entry {
                route: doc.data.route_key.clone(),
                updated_at: doc.updated_at,
                outcome,
                html: html.clone(),
            },
        );
        Some(Applied {
            route: doc.data.route_key.clone(),
            html,
            news: counts,
        })
    }

    /// Forgets a removed document; returns its route when it was known.
    pub fn remove(&self, id: &str) -> Option<String> {
        let mut book = self.write();
        let entry = book.entries.remove(id)?;
        book.stats_version += 1;
        Some(entry.route)
    }

    /// The whole collection has been loaded: reports and cards may rely on the book alone.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Outcomes held.
    pub fn len(&self) -> usize {
        self.read().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The status fragment of each of `ids`, in order (`None`: no outcome known).
    pub fn statuses<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Vec<Option<Arc<str>>> {
        let book = self.read();
        ids.into_iter()
            .map(|id| book.entries.get(id).map(|e| e.html.clone()))
            .collect()
    }

    /// The status fragment of one signal.
    pub fn status(&self, id: &str) -> Option<Arc<str>> {
        self.statuses([id]).pop().flatten()
    }

    /// The time limits outcomes were judged with, the most recently posted signal's first:
    /// the rule in force, and any older one still in the numbers.
    pub fn time_limits(&self) -> Vec<time::Duration> {
        let book = self.read();
        let mut by_post: Vec<(OffsetDateTime, time::Duration)> = book
            .entries
            .values()
            .map(|e| {
                (
                    e.outcome.posted_at,
                    e.outcome.expires_at - e.outcome.posted_at,
                )
            })
            .collect();
        by_post.sort_by_key(|p| std::cmp::Reverse(p.0));
        let mut limits: Vec<time::Duration> = Vec::new();
        for (_, limit) in by_post {
            if !limits.contains(&limit) {
                limits.push(limit);
            }
        }
        limits
    }

    /// The report of the routes `sees` at `now`, made at most once per change that counts and
    /// per [`REPORT_MAX_AGE`].
    pub fn report(&self, sees: &Entitlement, now: OffsetDateTime) -> Arc<Report> {
        let version = self.read().stats_version;
        {
            let memo = self.reports.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(m) = memo.get(sees)
                && m.version == version
                && m.at.elapsed() < REPORT_MAX_AGE
            {
                return m.report.clone();
            }
        }
        let (version, report) = {
            let book = self.read();
            let items: Vec<Tracked<'_>> = book
                .entries
                .iter()
                .filter(|(_, e)| sees.allows(&e.route))
                .map(|(id, e)| Tracked {
                    signal_id: id,
                    route: &e.route,
                    outcome: &e.outcome,
                })
                .collect();
            (book.stats_version, Arc::new(stats::report(&items, now)))
        };
        let mut memo = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        memo.retain(|_, m| m.version == version);
        if memo.len() >= REPORT_SETS {
            memo.clear();
        }
        memo.insert(
            sees.clone(),
            Memo {
                version,
                at: Instant::now(),
                report: report.clone(),
            },
        );
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use g3_core::signal::Side;
    use g3_outcomes::{History, Market, Revision, Rules, Tick, Trade, evaluate};

    fn at(min: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000) + time::Duration::minutes(min)
    }

    /// The outcome of a long (entry 100, TP 110/120, stop 95) after `ticks` (minute, price),
    /// as the document stored at `updated` minutes.
    fn doc(ticks: &[(i64, f64)], updated: i64) -> Document<SignalOutcome> {
        let history = History::new(
            vec![Revision {
                revision: 1,
                effective_at: at(0),
                trade: Trade {
                    pair: "BTC/USDT".into(),
                    side: Side::Long,
                    entries: vec![100.0],
                    targets: vec![110.0, 120.0],
                    stop: Some(95.0),
                    leverage: None,
                },
            }],
            None,
        )
        .unwrap();
        let prices: Vec<Market> = ticks
            .iter()
            .map(|(m, p)| {
                Market::Tick(Tick {
                    time: at(*m),
                    price: *p,
                })
            })
            .collect();
        let outcome = evaluate(&history, Rules::default(), &prices, None).unwrap();
        let data = SignalOutcome {
            route_key: "r".into(),
            status: outcome.status.as_str().into(),
            posted_at: outcome.posted_at,
            venue: None,
            symbol: None,
            outcome: serde_json::to_string(&outcome).unwrap(),
            revisions: "[]".into(),
            deleted_at: None,
            updated: at(updated),
        };
        Document {
            id: "s1".into(),
            sequence: 1,
            collection_id: "signal_outcomes".into(),
            database_id: "g3".into(),
            created_at: at(0),
            updated_at: at(updated),
            permissions: Vec::new(),
            data,
        }
    }

    #[test]
    fn newer_versions_replace_and_only_events_count_as_news() {
        let book = OutcomeBook::default();
        let everything = Entitlement::Everything;
        let first = book.apply(&doc(&[(1, 100.0)], 1)).expect("new");
        assert!(first.news && first.html.contains("Entered at 100"));
        let report = book.report(&everything, at(10));
        // The last price moved: the card changes, the numbers do not.
        let progress = book.apply(&doc(&[(1, 100.0), (2, 104.0)], 2)).unwrap();
        assert!(!progress.news && progress.html.contains("Price 104"));
        assert!(Arc::ptr_eq(&report, &book.report(&everything, at(10))));
        // An older copy (a catch-up racing an event) never replaces a newer one.
        assert!(book.apply(&doc(&[(1, 100.0)], 1)).is_none());
        assert!(book.status("s1").unwrap().contains("Price 104"));
        // TP1: news, and the report is made again.
        let tp1 = book.apply(&doc(&[(1, 100.0), (3, 110.0)], 3)).unwrap();
        assert!(tp1.news && tp1.html.contains("TP1 hit +10%"));
        assert!(!Arc::ptr_eq(&report, &book.report(&everything, at(10))));
        assert_eq!(book.remove("s1").as_deref(), Some("r"));
        assert!(book.is_empty() && book.status("s1").is_none());
    }

    #[test]
    fn reports_cover_only_the_routes_seen() {
        let book = OutcomeBook::default();
        book.apply(&doc(&[(1, 100.0), (2, 95.0)], 2));
        let none = Entitlement::Routes(["other".to_owned()].into());
        let report = book.report(&none, at(10));
        assert!(report.windows.iter().all(|w| w.overall.signals == 0));
        let all = book.report(&Entitlement::Everything, at(10));
        let w = &all.windows[3];
        assert_eq!((w.overall.signals, w.overall.net_r), (1, -1.0));
        assert_eq!(book.time_limits(), vec![Rules::default().time_limit]);
    }
}
