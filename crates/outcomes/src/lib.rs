//! Signal outcomes, the pure part: judge a signal's revisions against a time-ordered price
//! stream ([`Tracker`], [`evaluate`]), sum outcomes into per-route performance ([`stats`]) and
//! draw the equity curve as SVG ([`svg`]). No I/O: callers read the signal and prices and store
//! what comes out. The rules, in words for customers, are in `docs/outcomes.md`.

mod engine;
mod history;
mod market;
mod outcome;
pub mod stats;
pub mod svg;

pub use engine::{Band, Replay, Rules, Tracker, evaluate};
pub use history::{History, HistoryError, Revision, Trade};
pub use market::{Bar, Market, StreamError, Tick};
pub use outcome::{
    Exit, ExitReason, Judged, Outcome, Quality, RevisionUse, Source, Status, TargetHit, Touch,
};
