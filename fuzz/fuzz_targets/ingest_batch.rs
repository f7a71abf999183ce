//! The collector ingest body (`POST /ingest/v1/events`) from arbitrary bytes, through the real
//! signature, event and merge code of `apps/webhook`.
//!
//! The body is decoded by `webhook::ingest::decode_batch`, the function the handler calls: JSON,
//! then one event or `{"events": [...]}` of at most `MAX_BATCH`, each read by `Incoming::parse`,
//! the whole batch refused at the first bad event. Every accepted batch is then merged per
//! message with `merge::merge`, as `Ingest::apply` does, and checked against what the module
//! promises:
//!
//! - signing then verifying any body succeeds (`signing::standard_signature` / `verify_standard`);
//! - applying the same events again changes nothing;
//! - the reverse arrival order converges to the same document (for events that agree on the
//!   message's channel, guild and author, as the events of one real message do);
//! - the document fits the `signals` attributes that merge promises to shorten rather than
//!   have refused (content 8,000 chars, embeds 65,535), and the others the store declares
//!   (pair 32, author name 128, flags 64 each, attachments 16,384, edit_stamps 32,768).
#![no_main]

use std::collections::BTreeMap;

use g3_core::signing::{self, StandardHeaders};
use g3_store::models::Signal;
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;
use webhook::ingest::{decode_batch, merge, message::Incoming};

// Issues found by this target (issue #12), both fixed in merge.rs (2026-12-05); the names
// stay for `G3_FUZZ_KNOWN` (see known.rs) so older trees can still be fuzzed past them:
//
// - `attachment-order`: two events of one version (same `edited_timestamp`) whose attachment
//   lists differ, or where one has none, keep whichever list arrived first, so `attachments`
//   and `content_hash` depend on arrival order.
// - `stored-sizes`: `attachments` and `edit_stamps` are not shortened to their attributes
//   (16,384 and 32,768 chars), so Appwrite refuses oversized ones (embeds past Discord's own
//   limits, or more and longer attachments than Discord sends).
mod known;
use known::known;

const SECRET: &str = "whsec_ZnV6ei1pbmdlc3Qtc2VjcmV0";
const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn apply<'a>(
    mut doc: Option<Signal>,
    events: impl IntoIterator<Item = &'a Incoming>,
    now: OffsetDateTime,
) -> Option<Signal> {
    for e in events {
        doc = Some(merge::merge(doc.as_ref(), e, "route", now));
    }
    doc
}

/// At most one distinct value among the events that carry one.
fn agree<'a>(list: &[&'a Incoming], field: impl Fn(&'a Incoming) -> Option<&'a str>) -> bool {
    let mut values = list.iter().filter_map(|e| field(e));
    let first = values.next();
    values.all(|v| Some(v) == first)
}

/// Events of one Discord message agree on where it was posted and by whom: a message id is
/// unique across channels, and the document keeps the first value it sees of these. Batches
/// that mix them (only a forged or buggy collector sends those) are not an arrival order of
/// one message, so convergence is not checked for them.
fn one_source(list: &[&Incoming]) -> bool {
    agree(list, |e| Some(e.channel_id.as_str()))
        && agree(list, |e| e.guild_id.as_deref())
        && agree(list, |e| e.author_id.as_deref())
        && agree(list, |e| e.author_name.as_deref())
}

fn chars(s: Option<&str>) -> usize {
    s.map_or(0, |s| s.chars().count())
}

fn assert_fits(s: &Signal) {
    assert!(chars(s.content.as_deref()) <= 8_000, "content too long");
    assert!(chars(s.embeds.as_deref()) <= 65_535, "embeds too long");
    assert!(chars(s.pair.as_deref()) <= 32, "pair too long: {:?}", s.pair);
    assert!(chars(s.author_name.as_deref()) <= 128, "author name too long");
    assert!(chars(s.content_hash.as_deref()) <= 64);
    for f in &s.flags {
        assert!(f.chars().count() <= 64, "flag {f}");
    }
    assert!(s.revision >= 0);
    for n in s.entries.iter().chain(&s.targets).chain(&s.stop).chain(&s.leverage) {
        assert!(n.is_finite() && *n > 0.0, "bad number {n}");
    }
    if known("stored-sizes") {
        return;
    }
    assert!(
        chars(s.attachments.as_deref()) <= 16_384,
        "attachments JSON is {} chars, over the attribute's 16,384",
        chars(s.attachments.as_deref())
    );
    assert!(
        chars(s.edit_stamps.as_deref()) <= 32_768,
        "edit_stamps is {} chars, over the attribute's 32,768",
        chars(s.edit_stamps.as_deref())
    );
}

fuzz_target!(|data: &[u8]| {
    let sig = signing::standard_signature(SECRET, "msg_fuzz", NOW, data);
    let headers = StandardHeaders {
        id: "msg_fuzz",
        timestamp: &NOW.to_string(),
        signature: &sig,
    };
    assert!(signing::verify_standard(SECRET, headers, data, NOW).is_ok());

    let Ok(events) = decode_batch(data) else {
        return;
    };
    let now = OffsetDateTime::from_unix_timestamp(NOW).unwrap();
    // Documents are keyed by message id; each sees its own events in arrival order.
    let mut by_id: BTreeMap<&str, Vec<&Incoming>> = BTreeMap::new();
    for e in &events {
        by_id.entry(e.id.as_str()).or_default().push(e);
    }
    for list in by_id.values() {
        let doc = apply(None, list.iter().copied(), now).expect("at least one event");
        assert_fits(&doc);
        let again = apply(Some(doc.clone()), list.iter().copied(), now).unwrap();
        assert_eq!(again, doc, "applying the same events again changed the document");
        if !one_source(list) {
            continue;
        }
        let mut reversed = apply(None, list.iter().rev().copied(), now).unwrap();
        if known("attachment-order") && reversed != doc {
            let mut doc = doc.clone();
            for d in [&mut doc, &mut reversed] {
                d.attachments = None;
                d.content_hash = None;
                d.assets_pending = None;
            }
            assert_eq!(reversed, doc, "the reverse arrival order did not converge");
            continue;
        }
        assert_eq!(reversed, doc, "the reverse arrival order did not converge");
    }
});
