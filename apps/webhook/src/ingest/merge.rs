//! How one message event changes a signal document, as a pure function, so that every arrival
//! order converges to the same document.
//!
//! - A *version* is the message's content, embeds and attachments as of one `edited_timestamp`
//!   (`None` = as first posted). The document shows the newest version seen; older ones that
//!   arrive late change nothing.
//! - `revision` is the number of distinct versions seen (`edit_stamps`), so duplicates and
//!   reordering cannot move it, and an embed unfurl (a partial update without content) is not
//!   a version: it only adds embeds to the version shown.
//! - A delete makes a tombstone (`status: deleted`) that stays deleted whatever arrives later;
//!   a delete that arrives first creates the tombstone, and later content fills it in.

use g3_store::models::{AttachmentRef, AttachmentState, Signal, SignalStatus};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::message::{Incoming, Kind, snowflake_time};
use super::parsing;

const ORIGINAL: &str = "o";

fn stamp_key(edited_at: Option<OffsetDateTime>) -> String {
    edited_at.map_or_else(|| ORIGINAL.to_owned(), g3_appwrite::format_datetime)
}

/// What `edit_stamps` holds: the versions seen, the current version's own embeds, and the
/// embeds that unfurls added to each version. Kept apart so that an unfurl and the version it
/// belongs to combine the same way whichever arrives first.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Versions {
    stamps: Vec<String>,
    own_embeds: Option<String>,
    #[serde(default)]
    unfurls: std::collections::BTreeMap<String, String>,
    /// Oldest stamps dropped to stay inside the attribute's size (counted, not remembered).
    #[serde(default)]
    dropped: u64,
}

/// The `edit_stamps` attribute holds 32,768 characters; stay well inside it.
const VERSIONS_MAX_CHARS: usize = 30_000;

impl Versions {
    fn revision(&self) -> i64 {
        (self.stamps.len() as u64 + self.dropped) as i64
    }

    /// Serialised, dropping the oldest stamps and unfurls if it would not fit.
    fn store(mut self) -> Option<String> {
        loop {
            let text = serde_json::to_string(&self).ok()?;
            if text.len() <= VERSIONS_MAX_CHARS {
                return Some(text);
            }
            if let Some(oldest) = self
                .unfurls
                .keys()
                .next()
                .cloned()
                .filter(|_| self.unfurls.len() > 1)
            {
                self.unfurls.remove(&oldest);
            } else if self.stamps.len() > 1 {
                // Stamps sort oldest first; the original ("o") sorts last and is kept.
                self.stamps.remove(0);
                self.dropped += 1;
            } else {
                return Some(text);
            }
        }
    }

    fn of(signal: &Signal) -> Self {
        signal
            .edit_stamps
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default()
    }
}

/// Larger of two optional embed arrays by (entries, text): commutative, so order-free.
fn richer_embeds(a: Option<String>, b: Option<String>) -> Option<String> {
    let weight = |e: &Option<String>| {
        e.as_deref().map(|s| {
            (
                serde_json::from_str::<Vec<Value>>(s)
                    .map(|v| v.len())
                    .unwrap_or(0),
                s.to_owned(),
            )
        })
    };
    if weight(&a) >= weight(&b) { a } else { b }
}

fn embeds_json(v: &Option<Value>) -> Option<String> {
    v.as_ref().and_then(|e| {
        e.as_array()
            .filter(|a| !a.is_empty())
            .map(|_| e.to_string())
    })
}

/// Carries over what we know of an attachment (stored file id) into the new list.
fn attachment_refs(
    existing: &[AttachmentRef],
    incoming: &[super::message::AttachmentIn],
) -> Vec<AttachmentRef> {
    incoming
        .iter()
        .map(|a| {
            existing
                .iter()
                .find(|e| e.id == a.id)
                .cloned()
                .unwrap_or_else(|| AttachmentRef {
                    id: a.id.clone(),
                    filename: a.filename.clone(),
                    content_type: a.content_type.clone(),
                    size: a.size,
                    file_id: None,
                    state: AttachmentState::Pending,
                    note: None,
                    source_url: a.url.clone(),
                })
        })
        .collect()
}

pub fn content_hash(
    content: Option<&str>,
    embeds: Option<&str>,
    attachments: Option<&str>,
) -> String {
    let mut h = Sha256::new();
    for part in [content, embeds, attachments] {
        let part = part.unwrap_or("");
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// The document after `event`, given the current one (`None` when there is none yet).
pub fn merge(
    existing: Option<&Signal>,
    event: &Incoming,
    route_key: &str,
    now: OffsetDateTime,
) -> Signal {
    let mut s = existing.cloned().unwrap_or_else(|| Signal {
        source_guild_id: event.guild_id.clone().unwrap_or_default(),
        source_channel_id: event.channel_id.clone(),
        source_message_id: event.id.clone(),
        route_key: route_key.to_owned(),
        author_id: None,
        author_name: None,
        content: None,
        embeds: None,
        content_hash: None,
        pair: None,
        side: None,
        entries: Vec::new(),
        targets: Vec::new(),
        stop: None,
        leverage: None,
        flags: Vec::new(),
        attachments: None,
        assets_pending: None,
        revision: 0,
        edit_stamps: None,
        status: SignalStatus::Live,
        posted_at: snowflake_time(&event.id).unwrap_or(now),
        edited_at: None,
        deleted_at: None,
    });
    if s.source_guild_id.is_empty()
        && let Some(g) = &event.guild_id
    {
        s.source_guild_id = g.clone();
    }
    if s.author_id.is_none() {
        s.author_id = event.author_id.clone();
    }
    if s.author_name.is_none() {
        s.author_name = event.author_name.clone();
    }

    match event.kind {
        Kind::Delete => {
            if s.status != SignalStatus::Deleted {
                s.status = SignalStatus::Deleted;
                s.deleted_at = Some(now);
            }
        }
        Kind::Create | Kind::Update => match &event.content {
            Some(content) => apply_version(&mut s, event, content),
            None => {
                // A partial update (embed unfurl) is never a new version: its embeds are kept
                // for the version its `edited_timestamp` names and shown while that version is.
                if let Some(e) = embeds_json(&event.embeds) {
                    let mut v = Versions::of(&s);
                    let key = stamp_key(event.edited_at);
                    let merged = richer_embeds(v.unfurls.remove(&key), Some(e));
                    if let Some(m) = merged {
                        v.unfurls.insert(key, m);
                    }
                    s.edit_stamps = v.store();
                }
            }
        },
    }
    refresh_derived(&mut s);
    s
}

fn apply_version(s: &mut Signal, event: &Incoming, content: &str) {
    let mut v = Versions::of(s);
    let key = stamp_key(event.edited_at);
    let had_version = !v.stamps.is_empty();
    if !v.stamps.contains(&key) {
        v.stamps.push(key);
        v.stamps.sort();
    }
    s.revision = v.revision();

    let incoming_embeds = embeds_json(&event.embeds);
    if !had_version || event.edited_at > s.edited_at {
        s.content = Some(content.to_owned());
        v.own_embeds = incoming_embeds;
        s.edited_at = event.edited_at;
        if let Some(list) = &event.attachments {
            s.attachments =
                serde_json::to_string(&attachment_refs(&s.attachment_refs(), list)).ok();
        }
    } else if event.edited_at == s.edited_at {
        // The same version twice (a duplicate, or create and update of one state): combine
        // commutatively so the order of the two does not matter.
        if s.content.as_deref().is_none_or(|c| content > c) {
            s.content = Some(content.to_owned());
        }
        v.own_embeds = richer_embeds(v.own_embeds.take(), incoming_embeds);
        if let Some(list) = &event.attachments {
            let refs = attachment_refs(&s.attachment_refs(), list);
            if refs.len() > s.attachment_refs().len() {
                s.attachments = serde_json::to_string(&refs).ok();
            }
        }
    }
    s.edit_stamps = v.store();
}

/// Parsed trade, content hash and pending-assets flag follow from the version shown.
/// Attribute sizes of `signals` (schema.rs): a message larger than these is stored shortened
/// and flagged rather than refused, so one odd message cannot block the collector's queue.
const CONTENT_MAX_CHARS: usize = 8_000;
const EMBEDS_MAX_CHARS: usize = 65_535;

fn truncate_chars(s: &str, max: usize) -> Option<String> {
    (s.chars().count() > max).then(|| s.chars().take(max).collect())
}

/// Keeps the leading embeds that fit in the attribute.
fn fit_embeds(json: String) -> (String, bool) {
    if json.chars().count() <= EMBEDS_MAX_CHARS {
        return (json, false);
    }
    let mut list: Vec<Value> = serde_json::from_str(&json).unwrap_or_default();
    while !list.is_empty() {
        list.pop();
        let text = serde_json::to_string(&list).unwrap_or_default();
        if text.chars().count() <= EMBEDS_MAX_CHARS {
            return (text, true);
        }
    }
    ("[]".to_owned(), true)
}

fn refresh_derived(s: &mut Signal) {
    let mut shortened = false;
    if let Some(short) = s
        .content
        .as_deref()
        .and_then(|c| truncate_chars(c, CONTENT_MAX_CHARS))
    {
        s.content = Some(short);
        shortened = true;
    }
    let v = Versions::of(s);
    s.embeds = richer_embeds(
        v.own_embeds.clone(),
        v.unfurls.get(&stamp_key(s.edited_at)).cloned(),
    );
    if let Some(e) = s.embeds.take() {
        let (fitted, cut) = fit_embeds(e);
        shortened |= cut;
        s.embeds = Some(fitted);
    }
    let parsed = parsing::extract(s.content.as_deref().unwrap_or(""), s.embeds.as_deref());
    s.pair = parsed.pair;
    s.side = parsed.side;
    s.entries = parsed.entries;
    s.targets = parsed.targets;
    s.stop = parsed.stop;
    s.leverage = parsed.leverage;
    s.flags = parsed.flags;
    if shortened {
        s.flags.push("stored_shortened".to_owned());
    }
    s.content_hash = (s.revision > 0).then(|| {
        content_hash(
            s.content.as_deref(),
            s.embeds.as_deref(),
            s.attachments.as_deref(),
        )
    });
    let pending = s
        .attachment_refs()
        .iter()
        .any(|a| a.state == AttachmentState::Pending);
    s.assets_pending = Some(pending);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ev(
        kind: &str,
        content: Option<&str>,
        edited: Option<&str>,
        embeds: Option<Value>,
    ) -> Incoming {
        let mut m = json!({"id": "175928847299117063", "channel_id": "42", "guild_id": "7",
            "author": {"id": "9", "username": "trader"}, "edited_timestamp": edited});
        if let Some(c) = content {
            m["content"] = json!(c);
            m["attachments"] = json!([]);
            m["embeds"] = json!([]);
        }
        if let Some(e) = embeds {
            m["embeds"] = e;
        }
        Incoming::parse(&json!({"type": kind, "message": m})).unwrap()
    }

    fn run(events: &[&Incoming]) -> Signal {
        let now = time::macros::datetime!(2026-01-01 00:00 UTC);
        let mut doc: Option<Signal> = None;
        for e in events {
            doc = Some(merge(doc.as_ref(), e, "vip", now));
        }
        doc.unwrap()
    }

    fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut out = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let first = rest.remove(i);
            for mut p in permutations(&rest) {
                p.insert(0, first.clone());
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn every_arrival_order_converges() {
        let create = ev(
            "message.create",
            Some("BTC/USDT long entry 100 tp 110 sl 95"),
            None,
            None,
        );
        let unfurl = ev(
            "message.update",
            None,
            None,
            Some(json!([{"title": "chart"}])),
        );
        let edit1 = ev(
            "message.update",
            Some("BTC/USDT long entry 101 tp 110 sl 95"),
            Some("2026-01-01T00:01:00+00:00"),
            None,
        );
        let edit2 = ev(
            "message.update",
            Some("BTC/USDT long entry 102 tp 111 sl 96"),
            Some("2026-01-01T00:02:00+00:00"),
            None,
        );
        let dup = create.clone();
        let events = [&create, &unfurl, &edit1, &edit2, &dup];
        let expected = run(&events);
        assert_eq!(expected.revision, 3, "original + two edits");
        assert_eq!(
            expected.content.as_deref(),
            Some("BTC/USDT long entry 102 tp 111 sl 96")
        );
        assert_eq!(expected.status, SignalStatus::Live);
        for order in permutations(&events) {
            assert_eq!(
                run(&order),
                expected,
                "order {:?}",
                order
                    .iter()
                    .map(|e| (e.kind, e.edited_at))
                    .collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn deletes_win_in_any_order_and_keep_content() {
        let create = ev("message.create", Some("hello"), None, None);
        let edit = ev(
            "message.update",
            Some("hello again"),
            Some("2026-01-01T00:01:00+00:00"),
            None,
        );
        let delete = ev("message.delete", None, None, None);
        let events = [&create, &edit, &delete];
        let expected = run(&events);
        assert_eq!(expected.status, SignalStatus::Deleted);
        assert_eq!(expected.content.as_deref(), Some("hello again"));
        for order in permutations(&events) {
            let got = run(&order);
            assert_eq!(got, expected);
        }
        let tombstone = run(&[&delete]);
        assert_eq!(
            (tombstone.revision, tombstone.status),
            (0, SignalStatus::Deleted)
        );
    }

    #[test]
    fn an_unfurl_is_not_an_edit_and_repeats_change_nothing() {
        let create = ev("message.create", Some("see chart"), None, None);
        let first = run(&[&create]);
        let unfurl = ev(
            "message.update",
            None,
            None,
            Some(json!([{"title": "chart"}])),
        );
        let after = merge(
            Some(&first),
            &unfurl,
            "vip",
            time::OffsetDateTime::now_utc(),
        );
        assert_eq!(after.revision, 1);
        assert!(after.embeds.as_deref().unwrap().contains("chart"));
        let again = merge(
            Some(&after),
            &create,
            "vip",
            time::OffsetDateTime::now_utc(),
        );
        assert_eq!(again, after, "a duplicate create changes nothing");
    }

    #[test]
    fn two_hundred_edits_end_at_the_right_revision_and_content() {
        let mut doc = run(&[&ev("message.create", Some("v0"), None, None)]);
        for i in 1..=200 {
            let t = time::macros::datetime!(2026-01-01 00:00 UTC) + time::Duration::seconds(i);
            let e = ev(
                "message.update",
                Some(&format!("v{i}")),
                Some(&g3_appwrite::format_datetime(t)),
                None,
            );
            doc = merge(Some(&doc), &e, "vip", time::OffsetDateTime::now_utc());
        }
        assert_eq!(doc.revision, 201);
        assert_eq!(doc.content.as_deref(), Some("v200"));
    }

    #[test]
    fn a_very_long_edit_history_stays_inside_the_attribute() {
        let mut doc = run(&[&ev("message.create", Some("v0"), None, None)]);
        for i in 1..=2_000 {
            let t = time::macros::datetime!(2026-01-01 00:00 UTC) + time::Duration::seconds(i);
            let e = ev(
                "message.update",
                Some(&format!("v{i}")),
                Some(&g3_appwrite::format_datetime(t)),
                None,
            );
            doc = merge(Some(&doc), &e, "vip", time::OffsetDateTime::now_utc());
        }
        assert_eq!(doc.revision, 2_001);
        assert!(doc.edit_stamps.as_deref().unwrap().len() <= VERSIONS_MAX_CHARS);
        assert_eq!(doc.content.as_deref(), Some("v2000"));
    }

    #[test]
    fn oversized_messages_are_shortened_and_flagged_not_refused() {
        let long = "x".repeat(CONTENT_MAX_CHARS + 500);
        let big_embed = json!({ "description": "y".repeat(40_000) });
        let doc = run(&[&ev(
            "message.create",
            Some(&long),
            None,
            Some(json!([big_embed.clone(), big_embed])),
        )]);
        assert_eq!(
            doc.content.as_deref().map(|c| c.chars().count()),
            Some(CONTENT_MAX_CHARS)
        );
        assert!(doc.embeds.as_deref().unwrap().chars().count() <= EMBEDS_MAX_CHARS);
        assert!(doc.flags.contains(&"stored_shortened".to_owned()));
    }

    #[test]
    fn posted_time_comes_from_the_snowflake() {
        let doc = run(&[&ev("message.create", Some("x"), None, None)]);
        assert_eq!(
            doc.posted_at,
            time::macros::datetime!(2016-04-30 11:18:25.796 UTC)
        );
    }
}
