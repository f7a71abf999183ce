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
    /// Which incoming attachment list `attachments` was made from, so that the lists of all
    /// events combine commutatively (see [`AttachmentsKey`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attachments_from: Option<AttachmentsKey>,
    /// The list made from `attachments_from` was cut to fit its attribute.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    attachments_cut: bool,
    /// Some embeds seen (of a version or an unfurl) were cut to fit this attribute.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    embeds_cut: bool,
}

/// Orders incoming attachment lists: the newest version first, then the longer list, then the
/// larger digest of the serialised list. The shown list is the largest seen, a join that any
/// arrival order reaches (an absent list is smaller than every list, even `[]`). The incoming
/// list is compared, not the refs stored, which carry over what earlier lists and the asset
/// copier knew.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
struct AttachmentsKey {
    /// `None` = as first posted; else the UTC stamp (fixed width, so it sorts by time).
    version: Option<String>,
    len: usize,
    digest: String,
}

impl AttachmentsKey {
    fn of(edited_at: Option<OffsetDateTime>, list: &[super::message::AttachmentIn]) -> Self {
        let fields: Vec<_> = list
            .iter()
            .map(|a| (&a.id, &a.filename, a.size, &a.content_type, &a.url))
            .collect();
        let text = serde_json::to_string(&fields).unwrap_or_default();
        Self {
            version: edited_at.map(g3_appwrite::format_datetime),
            len: list.len(),
            digest: hex::encode(Sha256::digest(text.as_bytes())),
        }
    }
}

/// The `edit_stamps` attribute holds 32,768 characters; stay well inside it.
const VERSIONS_MAX_CHARS: usize = 30_000;
/// Embeds kept in `edit_stamps`, as escaped JSON there: a version's own embeds, and each
/// unfurl. One of each plus a stamp fits in `VERSIONS_MAX_CHARS`, so `store` always fits.
const OWN_EMBEDS_MAX_CHARS: usize = 22_000;
const UNFURL_MAX_CHARS: usize = 6_000;
/// The size of the `edit_stamps` attribute (schema.rs).
const EDIT_STAMPS_MAX_CHARS: usize = 32_768;
const _: () = assert!(
    OWN_EMBEDS_MAX_CHARS + UNFURL_MAX_CHARS + 1_000 < VERSIONS_MAX_CHARS
        && VERSIONS_MAX_CHARS < EDIT_STAMPS_MAX_CHARS
);

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
            } else if !self.unfurls.is_empty() {
                // Only documents stored before embeds were fitted on arrival get here.
                self.unfurls.clear();
                self.embeds_cut = true;
            } else if let Some(own) = self.own_embeds.take() {
                let (fitted, cut) = fit_escaped(own, OWN_EMBEDS_MAX_CHARS);
                self.own_embeds = Some(fitted);
                self.embeds_cut |= cut;
                return serde_json::to_string(&self).ok();
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

/// Keeps the leading embeds whose JSON, escaped as a string inside `edit_stamps`, takes at most
/// `max` characters. A function of its input alone, so fitting before combining with
/// `richer_embeds` stays order-free.
fn fit_escaped(json: String, max: usize) -> (String, bool) {
    let escaped = |t: &str| serde_json::to_string(t).map_or(usize::MAX, |e| e.chars().count());
    if escaped(&json) <= max {
        return (json, false);
    }
    let mut list: Vec<Value> = serde_json::from_str(&json).unwrap_or_default();
    while !list.is_empty() {
        list.pop();
        let text = serde_json::to_string(&list).unwrap_or_default();
        if escaped(&text) <= max {
            return (text, true);
        }
    }
    ("[]".to_owned(), true)
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
            // Carried over only when storage learned something about it; an untouched pending
            // ref is rebuilt from the incoming list, so the chosen list alone decides it.
            existing
                .iter()
                .find(|e| {
                    e.id == a.id
                        && (e.state != AttachmentState::Pending
                            || e.file_id.is_some()
                            || e.note.is_some())
                })
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
        // The first event seen for this message: merged revisions count up from 0.
        revision: 0,
        ..Signal::live(
            (
                event.guild_id.as_deref().unwrap_or_default(),
                &event.channel_id,
                &event.id,
            ),
            route_key,
            snowflake_time(&event.id).unwrap_or(now),
        )
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
                    let (e, cut) = fit_escaped(e, UNFURL_MAX_CHARS);
                    v.embeds_cut |= cut;
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

    let incoming_embeds = embeds_json(&event.embeds).map(|e| {
        let (fitted, cut) = fit_escaped(e, OWN_EMBEDS_MAX_CHARS);
        v.embeds_cut |= cut;
        fitted
    });
    if !had_version || event.edited_at > s.edited_at {
        s.content = Some(content.to_owned());
        v.own_embeds = incoming_embeds;
        s.edited_at = event.edited_at;
    } else if event.edited_at == s.edited_at {
        // The same version twice (a duplicate, or create and update of one state): combine
        // commutatively so the order of the two does not matter.
        if s.content.as_deref().is_none_or(|c| content > c) {
            s.content = Some(content.to_owned());
        }
        v.own_embeds = richer_embeds(v.own_embeds.take(), incoming_embeds);
    }
    if let Some(list) = &event.attachments {
        let key = AttachmentsKey::of(event.edited_at, list);
        if v.attachments_from.as_ref().is_none_or(|k| key > *k) {
            let refs = attachment_refs(&s.attachment_refs(), list);
            let (fitted, cut) = fit_attachments(serde_json::to_string(&refs).unwrap_or_default());
            s.attachments = Some(fitted);
            v.attachments_from = Some(key);
            v.attachments_cut = cut;
        }
    }
    s.edit_stamps = v.store();
}

/// Parsed trade, content hash and pending-assets flag follow from the version shown.
/// Attribute sizes of `signals` (schema.rs): a message larger than these is stored shortened
/// and flagged rather than refused, so one odd message cannot block the collector's queue.
const CONTENT_MAX_CHARS: usize = 8_000;
const EMBEDS_MAX_CHARS: usize = 65_535;
const ATTACHMENTS_MAX_CHARS: usize = 16_384;

fn truncate_chars(s: &str, max: usize) -> Option<String> {
    (s.chars().count() > max).then(|| s.chars().take(max).collect())
}

/// Keeps the leading attachments that fit in the attribute.
fn fit_attachments(json: String) -> (String, bool) {
    if json.chars().count() <= ATTACHMENTS_MAX_CHARS {
        return (json, false);
    }
    let mut list: Vec<AttachmentRef> = serde_json::from_str(&json).unwrap_or_default();
    while !list.is_empty() {
        list.pop();
        let text = serde_json::to_string(&list).unwrap_or_default();
        if text.chars().count() <= ATTACHMENTS_MAX_CHARS {
            return (text, true);
        }
    }
    ("[]".to_owned(), true)
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
    shortened |= v.embeds_cut || v.attachments_cut;
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

    fn batch(v: Value) -> Vec<Incoming> {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| Incoming::parse(e).unwrap())
            .collect()
    }

    fn assert_order_free(events: &[Incoming]) -> Signal {
        let refs: Vec<&Incoming> = events.iter().collect();
        let expected = run(&refs);
        for order in permutations(&refs) {
            let got = run(&order);
            assert!(got == expected, "arrival order changed the document");
            let again = order
                .iter()
                .fold(got.clone(), |d, e| merge(Some(&d), e, "vip", d.posted_at));
            assert!(again == got, "applying the same events again changed it");
        }
        expected
    }

    #[test]
    fn attachment_lists_of_one_version_combine_in_any_order() {
        // fuzz/regressions/ingest_batch/attachment-order: absent vs empty list.
        let doc = assert_order_free(&batch(json!({"events":[
            {"type":"message.create","message":{"id":"1","channel_id":"2","content":"a"}},
            {"type":"message.create","message":{"id":"1","channel_id":"2","content":"a","attachments":[]}}]})));
        assert_eq!(doc.attachments.as_deref(), Some("[]"));
        // attachment-order-same-length: two different lists of one length.
        let doc = assert_order_free(&batch(json!({"events":[
            {"type":"message.create","message":{"id":"1","channel_id":"2","content":"a","attachments":[{"id":"10","filename":"x.png"}]}},
            {"type":"message.create","message":{"id":"1","channel_id":"2","content":"a","attachments":[{"id":"11","filename":"y.png"}]}}]})));
        assert_eq!(doc.attachment_refs().len(), 1);
        // A longer list wins, and lists of other versions combine too.
        let doc = assert_order_free(&batch(json!({"events":[
            {"type":"message.create","message":{"id":"1","channel_id":"2","content":"a","attachments":[{"id":"10","filename":"x.png"}]}},
            {"type":"message.update","message":{"id":"1","channel_id":"2","content":"a","attachments":[{"id":"10","filename":"x.png"},{"id":"11","filename":"y.png"}]}},
            {"type":"message.update","message":{"id":"1","channel_id":"2","content":"b","edited_timestamp":"2026-01-01T00:01:00+00:00"}},
            {"type":"message.create","message":{"id":"1","channel_id":"2","content":"a"}}]})));
        assert_eq!(doc.attachment_refs().len(), 2);
        assert_eq!(doc.content.as_deref(), Some("b"));
    }

    #[test]
    fn oversized_attachment_lists_and_edit_stamps_fit_their_attributes() {
        // Many attachments with long urls (fuzz/regressions/.../stored-sizes-attachments).
        let list = |n: usize, tag: &str| {
            (0..n)
                .map(|i| json!({"id": format!("{}", 10 + i), "filename": format!("{tag}{}.png", "f".repeat(180)),
                    "url": format!("https://cdn.discordapp.com/attachments/1/2/a.png?{}", tag.repeat(1_000))}))
                .collect::<Vec<_>>()
        };
        let doc = assert_order_free(&batch(json!({"events":[
            {"type":"message.create","message":{"id":"1","channel_id":"2","content":"a","attachments": list(20, "e")}},
            {"type":"message.update","message":{"id":"1","channel_id":"2","content":"a","attachments": list(20, "g")}},
            {"type":"message.update","message":{"id":"1","channel_id":"2","content":"b","edited_timestamp":"2026-01-01T00:01:00+00:00","attachments": list(25, "h")}}]})));
        let attachments = doc.attachments.as_deref().unwrap();
        assert!(
            attachments.chars().count() <= ATTACHMENTS_MAX_CHARS,
            "{}",
            attachments.chars().count()
        );
        assert!(!doc.attachment_refs().is_empty());
        assert!(doc.flags.contains(&"stored_shortened".to_owned()));

        // Large embeds in the version and its unfurls (stored-sizes-edit-stamps), with edits.
        let embeds = |n: usize, c: &str| {
            (0..n)
                .map(|_| json!({"description": c.repeat(3_300)}))
                .collect::<Vec<_>>()
        };
        let mut events = batch(json!({"events":[
            {"type":"message.create","message":{"id":"1","channel_id":"2","content":"a","embeds": embeds(10, "x"),"attachments":[]}},
            {"type":"message.update","message":{"id":"1","channel_id":"2","content":"a","embeds": embeds(10, "\"")}},
            {"type":"message.update","message":{"id":"1","channel_id":"2","embeds": embeds(10, "y")}},
            {"type":"message.update","message":{"id":"1","channel_id":"2","embeds": embeds(9, "z"),
                "edited_timestamp":"2026-01-01T00:01:00+00:00"}}]}));
        let doc = assert_order_free(&events);
        let stamps = doc.edit_stamps.as_deref().unwrap();
        assert!(
            stamps.chars().count() <= EDIT_STAMPS_MAX_CHARS,
            "{}",
            stamps.chars().count()
        );
        assert!(doc.flags.contains(&"stored_shortened".to_owned()));
        // Hundreds of edits with big embeds still fit, whatever arrives last.
        for i in 1..=150 {
            let t = time::macros::datetime!(2026-01-02 00:00 UTC) + time::Duration::seconds(i);
            events.push(
                Incoming::parse(
                    &json!({"type":"message.update","message":{"id":"1","channel_id":"2",
                "content": format!("v{i}"), "embeds": embeds(10, "w"),
                "edited_timestamp": g3_appwrite::format_datetime(t)}}),
                )
                .unwrap(),
            );
        }
        let refs: Vec<&Incoming> = events.iter().collect();
        let forward = run(&refs);
        let backward = run(&refs.iter().rev().copied().collect::<Vec<_>>());
        for doc in [&forward, &backward] {
            let stamps = doc.edit_stamps.as_deref().unwrap();
            assert!(
                stamps.chars().count() <= EDIT_STAMPS_MAX_CHARS,
                "{}",
                stamps.chars().count()
            );
            assert_eq!(
                doc.revision, 151,
                "the original and 150 edits; unfurls are not versions"
            );
        }
        assert_eq!(forward.content, backward.content);
        assert_eq!(forward.embeds, backward.embeds);
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
