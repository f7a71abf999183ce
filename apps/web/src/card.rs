//! A signal as a card: the trade laid out (pair, side, entry zone, targets, stop, leverage,
//! reward/risk), warnings in plain words, the author's text rendered once, charts from Storage.
//! Pages (`feed.rs`) and live fragments (`live.rs`) take their cards from [`CardCache`], which
//! renders each version of a signal once.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
};

use askama::Template;
use axum::http::{HeaderMap, HeaderValue};
use g3_appwrite::Document;
use g3_core::signal::{self as parsed, SIDE_INFERRED, Severity};
use g3_store::models::{AttachmentState, Side, Signal, SignalStatus};
use time::{
    OffsetDateTime, UtcOffset, format_description::well_known::Rfc3339, macros::format_description,
};

use crate::{
    cookies, markdown,
    templates::{AssetView, Card, CardFragment, EmbedView, Warning},
};

/// Embed texts are cut here; the full message text is always shown.
const EMBED_TEXT_MAX: usize = 4_000;

fn num(v: f64) -> String {
    format!("{v}")
}

fn when(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default()
}

fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The readable parts of Discord embeds; anything that is not text is left out.
fn embeds(list: &[serde_json::Value]) -> Vec<EmbedView> {
    let text = |v: &serde_json::Value, key: &str| {
        cut(
            v.get(key).and_then(|t| t.as_str()).unwrap_or(""),
            EMBED_TEXT_MAX,
        )
    };
    list.iter()
        .take(10)
        .map(|e| EmbedView {
            title: text(e, "title"),
            description_html: markdown::render(&text(e, "description")),
            fields: e
                .get("fields")
                .and_then(|f| f.as_array())
                .map(|fields| {
                    fields
                        .iter()
                        .take(25)
                        .map(|f| (text(f, "name"), markdown::render(&text(f, "value"))))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .filter(|e| !e.title.is_empty() || !e.description_html.is_empty() || !e.fields.is_empty())
        .collect()
}

/// The embeds' text as the parser reads it (title, description, fields), one block per line.
fn embed_text(list: &[serde_json::Value]) -> String {
    let mut out = String::new();
    for embed in parsed::Embed::from_discord_json(&serde_json::Value::Array(list.to_vec())) {
        for part in [&embed.title, &embed.description].into_iter().flatten() {
            out.push('\n');
            out.push_str(part);
        }
        for (name, value) in &embed.fields {
            out.push('\n');
            out.push_str(name);
            out.push('\n');
            out.push_str(value);
        }
    }
    out
}

/// Ids that may stand in a URL path as they are (Appwrite ids: letters, digits, `.`, `_`, `-`).
fn path_safe(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Types a browser shows as an `<img>` and never runs as a document (SVG would).
fn is_picture(content_type: Option<&str>) -> bool {
    matches!(
        content_type,
        Some("image/png" | "image/jpeg" | "image/gif" | "image/webp")
    )
}

/// Stored attachments as pictures and files served through web (`/signals/{id}/assets/{file}`,
/// which checks the reader's plan), and how many are still being copied.
fn assets(signal_id: &str, s: &Signal) -> (Vec<AssetView>, Vec<AssetView>, usize) {
    let (mut pictures, mut files, mut pending) = (Vec::new(), Vec::new(), 0);
    if s.attachments.is_none() || !path_safe(signal_id) {
        return (pictures, files, pending);
    }
    for a in s.attachment_refs() {
        match (a.state, a.file_id.as_deref()) {
            (AttachmentState::Stored, Some(file)) if path_safe(file) => {
                let view = AssetView {
                    url: format!("/signals/{signal_id}/assets/{file}"),
                    name: cut(&parsed::strip_invisible(&a.filename), 120),
                };
                if is_picture(a.content_type.as_deref()) {
                    pictures.push(view);
                } else {
                    files.push(view);
                }
            }
            (AttachmentState::Pending, _) => pending += 1,
            _ => {}
        }
    }
    (pictures, files, pending)
}

fn core_side(side: Side) -> parsed::Side {
    match side {
        Side::Long => parsed::Side::Long,
        Side::Short => parsed::Side::Short,
    }
}

/// Each stored warning code once, in words; "side read from the prices" is left out when the
/// stronger "side unclear" is there.
fn warnings(flags: &[String], side: Option<Side>) -> Vec<Warning> {
    let unclear = flags.iter().any(|f| f == "side_unclear");
    let mut out: Vec<Warning> = Vec::new();
    for code in flags {
        if unclear && code == SIDE_INFERRED {
            continue;
        }
        let (severity, text) = parsed::warning_text(code, side.map(core_side));
        if out.iter().all(|w| w.text != text) {
            out.push(Warning {
                text,
                note: severity == Severity::Note,
            });
        }
    }
    out
}

/// "TP1 1.5 · TP2 3.0" when at least one target has a reward/risk, else empty.
fn reward_risk(s: &Signal) -> String {
    let Some(side) = s.side else {
        return String::new();
    };
    let rr = parsed::reward_risk(core_side(side), &s.entries, &s.targets, s.stop);
    if rr.iter().all(Option::is_none) {
        return String::new();
    }
    rr.iter()
        .enumerate()
        .map(|(i, r)| match r {
            Some(r) => format!("TP{} {r:.1}", i + 1),
            None => format!("TP{} –", i + 1),
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// One signal as a card view.
pub fn card(doc: &Document<Signal>, routes: &HashMap<String, String>) -> Card {
    let s = &doc.data;
    let join = |v: &[f64], sep: &str| v.iter().map(|x| num(*x)).collect::<Vec<_>>().join(sep);
    let content = s.content.as_deref().unwrap_or_default();
    let raw_embeds: Vec<serde_json::Value> = s
        .embeds
        .as_deref()
        .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        .and_then(|v| match v {
            serde_json::Value::Array(list) => Some(list),
            _ => None,
        })
        .unwrap_or_default();
    let (pictures, files, pending) = assets(&doc.id, s);
    let pair = s
        .pair
        .as_deref()
        .map(parsed::pair_label)
        .filter(|p| !p.is_empty());
    let mut card = Card {
        id: doc.id.clone(),
        route: routes
            .get(&s.route_key)
            .cloned()
            .unwrap_or_else(|| s.route_key.clone()),
        author: s.author_name.clone().unwrap_or_else(|| "unknown".into()),
        posted: when(s.posted_at),
        posted_iso: s.posted_at.format(&Rfc3339).unwrap_or_default(),
        title: pair.clone().unwrap_or_else(|| {
            match pictures.len() {
                0 => "Message",
                1 => "Chart",
                _ => "Charts",
            }
            .to_owned()
        }),
        pair,
        side: s.side.map(|side| match side {
            Side::Long => "long",
            Side::Short => "short",
        }),
        entries: join(&s.entries, " – "),
        targets: join(&s.targets, ", "),
        stop: s.stop.map(num),
        leverage: s.leverage.map(num),
        reward_risk: reward_risk(s),
        warnings: warnings(&s.flags, s.side),
        text_html: markdown::render(content),
        embeds: embeds(&raw_embeds),
        collapsed: false,
        pictures,
        files,
        pending,
        edited: s.edited_at.map(when),
        deleted: s.status == SignalStatus::Deleted,
    };
    let has_text = !content.trim().is_empty() || !card.embeds.is_empty();
    card.collapsed = card.has_trade()
        && has_text
        && parsed::only_repeats_trade(&format!("{content}{}", embed_text(&raw_embeds)));
    card
}

/// A card rendered on its own (the partial pages include, and the live fragment).
pub fn render(doc: &Document<Signal>, routes: &HashMap<String, String>) -> askama::Result<String> {
    CardFragment {
        card: card(doc, routes),
    }
    .render()
}

/// Where a card's status fragment goes: one comment in `partials/signal.html`, after the header
/// and the trade. Only escaped text and numbers come before it, so no message can fake it.
pub const STATUS_SLOT: &str = "<!--outcome-->";

/// A rendered card, shared, with where its [`STATUS_SLOT`] is: found once when it is rendered,
/// not searched for in every page that shows it.
#[derive(Clone)]
pub struct CardHtml(Arc<Rendered>);

struct Rendered {
    html: Box<str>,
    slot: Option<usize>,
}

impl CardHtml {
    fn new(html: String) -> Self {
        let slot = html.find(STATUS_SLOT);
        CardHtml(Arc::new(Rendered {
            html: html.into_boxed_str(),
            slot,
        }))
    }

    /// Whether both are the same rendering (not merely equal text).
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl std::ops::Deref for CardHtml {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0.html
    }
}

/// A cached card with its signal's status fragment ([`crate::outcomes::status`]) in its slot,
/// written out without copying the card: outcomes change far more often than signals, and
/// each kind is rendered once per version of its own.
pub struct Placed {
    pub card: CardHtml,
    pub status: Option<Arc<str>>,
}

impl std::fmt::Display for Placed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let html = &*self.card.0.html;
        match self.card.0.slot {
            Some(at) => {
                f.write_str(&html[..at])?;
                if let Some(status) = &self.status {
                    f.write_str(status)?;
                }
                f.write_str(&html[at + STATUS_SLOT.len()..])
            }
            None => f.write_str(html),
        }
    }
}

/// Which version of a signal a rendered card shows: any write moves `$updatedAt` (an edit, a
/// delete, a chart stored later), and a renamed route changes the card too.
#[derive(Clone, PartialEq, Eq)]
struct Version {
    updated_at: OffsetDateTime,
    revision: i64,
    route: String,
}

impl Version {
    fn of(
        updated_at: OffsetDateTime,
        revision: i64,
        route_key: &str,
        routes: &HashMap<String, String>,
    ) -> Self {
        Version {
            updated_at,
            revision,
            route: routes
                .get(route_key)
                .map_or_else(|| route_key.to_owned(), Clone::clone),
        }
    }
}

/// Rendered cards, each version of a signal rendered once and shared by every page, filter and
/// live event. Bounded by CLOCK (second chance): every card used since the hand last passed
/// it is kept on this pass; the first one not used since is replaced. A working set up to the
/// capacity stays whole (two generations of half the capacity each, the earlier scheme, kept
/// only what was used within the last two halves: the 10,000 cards of 400 random filter pages
/// missed about one page in five with 16,384 slots).
pub struct CardCache {
    slots: Mutex<Clock>,
    capacity: usize,
    renders: AtomicU64,
    hits: AtomicU64,
}

#[derive(Default)]
struct Clock {
    /// Where each signal's card is in `slots`.
    index: HashMap<String, usize>,
    slots: Vec<Slot>,
    /// The next slot to look at for replacement.
    hand: usize,
}

struct Slot {
    id: String,
    version: Version,
    html: CardHtml,
    /// Used since the hand last passed.
    used: bool,
}

/// Cards kept by default: about 650 pages of 25, e.g. the first page of every route, pair and
/// side combination of 4 routes and 50 pairs (400 pages) with room to spare. devstack's demo
/// cards measure 0.6-1.1 KB of HTML each, so about 16 MB; long messages with embeds make
/// bigger cards. Readers who page through many filter combinations reuse them; fewer makes
/// every such page read and render its cards again (route+pair+side pages at 100,000 signals:
/// 1,666/s with 8,192 cards, where the 400 combinations' 10,000 cards did not fit).
pub const CARD_CACHE_DEFAULT: usize = 16_384;

impl Default for CardCache {
    fn default() -> Self {
        Self::new(CARD_CACHE_DEFAULT)
    }
}

impl CardCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: Mutex::new(Clock::default()),
            capacity: capacity.max(1),
            renders: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        }
    }

    /// The card of this version of `doc`, rendered now only if it was not before.
    pub fn html(
        &self,
        doc: &Document<Signal>,
        routes: &HashMap<String, String>,
    ) -> askama::Result<CardHtml> {
        let version = Version::of(
            doc.updated_at,
            doc.data.revision,
            &doc.data.route_key,
            routes,
        );
        if let Some(html) = self.get(&doc.id, &version) {
            self.hits.fetch_add(1, Relaxed);
            return Ok(html);
        }
        let html = CardHtml::new(render(doc, routes)?);
        self.renders.fetch_add(1, Relaxed);
        self.put(doc.id.clone(), version, html.clone());
        Ok(html)
    }

    /// The card of a signal known only by what identifies its version (a list that selected
    /// `revision` and `route_key`), if that version was rendered before.
    pub fn cached(
        &self,
        id: &str,
        updated_at: OffsetDateTime,
        revision: i64,
        route_key: &str,
        routes: &HashMap<String, String>,
    ) -> Option<CardHtml> {
        let html = self.get(id, &Version::of(updated_at, revision, route_key, routes))?;
        self.hits.fetch_add(1, Relaxed);
        Some(html)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Clock> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, id: &str, version: &Version) -> Option<CardHtml> {
        let mut clock = self.lock();
        let at = *clock.index.get(id)?;
        let slot = &mut clock.slots[at];
        if slot.version != *version {
            return None;
        }
        slot.used = true;
        Some(slot.html.clone())
    }

    fn put(&self, id: String, version: Version, html: CardHtml) {
        let mut clock = self.lock();
        if let Some(&at) = clock.index.get(&id) {
            let slot = &mut clock.slots[at];
            // An older version must not replace a newer one rendered meanwhile.
            if slot.version.updated_at <= version.updated_at {
                (slot.version, slot.html, slot.used) = (version, html, true);
            }
            return;
        }
        // Unmarked until read again: a card read once (a deep page) is the first to go, and
        // cards read over and over are not pushed out by a run of such cards.
        let slot = Slot {
            id: id.clone(),
            version,
            html,
            used: false,
        };
        if clock.slots.len() < self.capacity {
            let at = clock.slots.len();
            clock.slots.push(slot);
            clock.index.insert(id, at);
            return;
        }
        // Every slot is at most passed once with its mark cleared, so this ends within two
        // turns of the hand.
        loop {
            let at = clock.hand;
            clock.hand = (at + 1) % clock.slots.len();
            let old = &mut clock.slots[at];
            if old.used {
                old.used = false;
                continue;
            }
            let gone = std::mem::replace(old, slot);
            clock.index.remove(&gone.id);
            clock.index.insert(id, at);
            return;
        }
    }

    /// Cards rendered so far (each a miss).
    pub fn renders(&self) -> u64 {
        self.renders.load(Relaxed)
    }

    /// Cards served without rendering.
    pub fn hits(&self) -> u64 {
        self.hits.load(Relaxed)
    }

    /// Cards held now.
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How the feed lays signals out: full cards, or a compact list for scanning many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    #[default]
    Cards,
    List,
}

impl View {
    fn parse(v: &str) -> Option<View> {
        match v {
            "cards" => Some(View::Cards),
            "list" => Some(View::List),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            View::Cards => "cards",
            View::List => "list",
        }
    }

    fn cookie_name(secure: bool) -> &'static str {
        if secure { "__Host-g3_view" } else { "g3_view" }
    }

    /// The view asked for (`?view=`), else the one remembered in the cookie. With the first,
    /// also the `Set-Cookie` that remembers it for the next pages.
    pub fn choose(
        asked: Option<&str>,
        headers: &HeaderMap,
        secure: bool,
    ) -> (View, Option<HeaderValue>) {
        if let Some(view) = asked.and_then(View::parse) {
            let remember = cookies::set(
                View::cookie_name(secure),
                view.as_str(),
                cookies::SameSite::Lax,
                secure,
                Some(365 * 24 * 3600),
            );
            return (view, remember);
        }
        let remembered = cookies::get(headers, View::cookie_name(secure)).and_then(View::parse);
        (remembered.unwrap_or_default(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Document<Signal> {
        let now = g3_appwrite::format_datetime(OffsetDateTime::now_utc());
        let mut data = serde_json::json!({
            "source_guild_id": "1", "source_channel_id": "2", "source_message_id": id,
            "route_key": "vip-calls", "author_name": "Trader Joe",
            "content": "🟢 **#BTC/USDT LONG**\nEntry: 62000 - 61500\nTargets: 63000, 64000, 66000\n\
                        Stop: 60000\nLeverage: 10x\nchart: https://tradingview.com/x/abc/ good luck",
            "embeds": serde_json::json!([{"title": "Setup", "description": "Retest of **range low**",
                "fields": [{"name": "Risk", "value": "1% of the account"}]}]).to_string(),
            "pair": "BTCUSDT", "side": "long", "entries": [62000.0, 61500.0],
            "targets": [63000.0, 64000.0, 66000.0], "stop": 60000.0, "leverage": 10.0,
            "flags": ["side_inferred"],
            "attachments": serde_json::json!([{"id": "9", "filename": "chart.png",
                "content_type": "image/png", "size": 1000, "file_id": "f1", "state": "stored"}])
                .to_string(),
            "revision": 1, "status": "live", "posted_at": now,
        });
        edit(&mut data);
        for (k, v) in [
            ("$id", id.into()),
            ("$sequence", "1".into()),
            ("$collectionId", "signals".into()),
            ("$databaseId", "main".into()),
            ("$createdAt", now.clone().into()),
            ("$updatedAt", now.clone().into()),
            ("$permissions", serde_json::json!([])),
        ] {
            data[k] = v;
        }
        serde_json::from_value(data).expect("a signal document")
    }

    fn routes() -> HashMap<String, String> {
        HashMap::from([("vip-calls".to_owned(), "VIP Calls".to_owned())])
    }

    #[test]
    fn one_version_renders_once_and_the_cache_stays_bounded() {
        let cache = CardCache::new(4);
        let a = doc("a", |_| {});
        let first = cache.html(&a, &routes()).unwrap();
        let again = cache.html(&a, &routes()).unwrap();
        assert!(CardHtml::ptr_eq(&first, &again));
        assert_eq!((cache.renders(), cache.hits()), (1, 1));
        let mut edited = a.clone();
        edited.updated_at += time::Duration::seconds(1);
        edited.data.stop = Some(59000.0);
        let newer = cache.html(&edited, &routes()).unwrap();
        assert!(newer.contains("59000") && cache.renders() == 2);
        // The older version arriving late renders (it is asked for) but never replaces.
        cache.html(&a, &routes()).unwrap();
        assert!(cache.html(&edited, &routes()).unwrap().contains("59000"));
        assert_eq!(cache.renders(), 3);
        // A renamed route is a new card.
        let renamed = HashMap::from([("vip-calls".to_owned(), "VIP".to_owned())]);
        cache.html(&edited, &renamed).unwrap();
        assert_eq!(cache.renders(), 4);
        for i in 0..20 {
            cache
                .html(&doc(&format!("s{i}"), |_| {}), &routes())
                .unwrap();
            assert!(cache.len() <= 4, "bounded: {}", cache.len());
        }
    }

    #[test]
    fn cards_in_use_stay_while_one_off_cards_pass_through() {
        // 90 cards read over and over (pages readers keep opening) in a cache of 100, with
        // a card read once (a deep page, an old signal) after every 10 of them.
        let cache = CardCache::new(100);
        let routes = routes();
        let kept: Vec<_> = (0..90).map(|i| doc(&format!("k{i}"), |_| {})).collect();
        let mut once = (0..).map(|i| doc(&format!("o{i}"), |_| {}));
        let mut round = |cache: &CardCache| {
            for (i, d) in kept.iter().enumerate() {
                cache.html(d, &routes).unwrap();
                if i % 10 == 9 {
                    cache.html(&once.next().unwrap(), &routes).unwrap();
                }
            }
        };
        round(&cache);
        let warm = cache.renders();
        for _ in 0..20 {
            round(&cache);
        }
        // Each later round renders only its 9 one-off cards: none of the 90 again.
        assert_eq!(cache.renders() - warm, 20 * 9);
        assert_eq!(cache.len(), 100);
    }

    #[test]
    fn the_status_goes_in_its_slot_after_the_trade_and_nowhere_else() {
        // A message that spells the slot out is escaped, so only the template's slot counts.
        let d = doc("p", |s| {
            s["content"] = format!("text {STATUS_SLOT} more").into()
        });
        let card = CardCache::default().html(&d, &routes()).unwrap();
        assert_eq!(card.matches(STATUS_SLOT).count(), 1, "{}", &*card);
        let placed = Placed {
            card: card.clone(),
            status: Some("<div id=\"outcome-p\"></div>".into()),
        }
        .to_string();
        let (trade, status) = (
            placed.find("</dl>").unwrap(),
            placed.find("<div id=\"outcome-p\">").unwrap(),
        );
        assert!(trade < status && !placed.contains(STATUS_SLOT), "{placed}");
        let bare = Placed { card, status: None }.to_string();
        assert!(
            !bare.contains(STATUS_SLOT) && !bare.contains("outcome-p"),
            "{bare}"
        );
    }

    /// Not a timed assertion: prints what rendering 25 cards costs with and without the cache.
    #[test]
    fn rendering_25_cards_with_and_without_the_cache() {
        let docs: Vec<_> = (0..25).map(|i| doc(&format!("b{i}"), |_| {})).collect();
        let routes = routes();
        let rounds = 200u32;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            for d in &docs {
                std::hint::black_box(render(d, &routes).unwrap());
            }
        }
        let uncached = started.elapsed() / rounds;
        let cache = CardCache::default();
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            for d in &docs {
                std::hint::black_box(cache.html(d, &routes).unwrap());
            }
        }
        let cached = started.elapsed() / rounds;
        eprintln!(
            "25 cards: {uncached:?} rendered every time, {cached:?} through the cache \
             ({} renders, {} hits)",
            cache.renders(),
            cache.hits()
        );
        assert_eq!(cache.renders(), 25);
    }

    #[test]
    fn the_view_comes_from_the_query_then_the_cookie() {
        let mut headers = HeaderMap::new();
        assert_eq!(View::choose(None, &headers, false), (View::Cards, None));
        let (view, cookie) = View::choose(Some("list"), &headers, false);
        assert_eq!(view, View::List);
        let cookie = cookie.unwrap();
        assert!(cookie.to_str().unwrap().starts_with("g3_view=list;"));
        headers.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_static("g3_view=list"),
        );
        assert_eq!(View::choose(None, &headers, false), (View::List, None));
        assert_eq!(View::choose(Some("bogus"), &headers, false).0, View::List);
        assert_eq!(View::choose(Some("cards"), &headers, false).0, View::Cards);
    }
}
