//! `/feed`: signals newest first for paid and staff users, 25 a page with cursor paging, filtered
//! by route, pair and side; everyone else gets the paywall. Signals are read with the user's own
//! session, so Appwrite's `team:paid`/`team:staff` read permission guards them a second time.

use std::{collections::HashMap, sync::Arc};

use askama::Template;
use axum::{
    Extension,
    extract::{Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use g3_appwrite::{Document, Query as Q};
use g3_store::{
    Collection, Model,
    models::{Route, Side, Signal, SignalStatus},
};
use serde::Deserialize;
use serde_json::Value;
use time::{UtcOffset, format_description::well_known::Rfc3339, macros::format_description};

use crate::{
    AppState,
    account::plan_rows,
    cookies,
    error::AppError,
    markdown,
    security::CsrfToken,
    session::{self, Standing, Viewer, standing},
    templates::{Card, EmbedView, FeedPage, Layout, PaywallPage, RouteOption},
};

pub const PAGE: u32 = 25;
/// Embed texts are cut here; the full message text is always shown.
const EMBED_TEXT_MAX: usize = 4_000;

#[derive(Deserialize, Default)]
pub struct FeedQuery {
    route: Option<String>,
    pair: Option<String>,
    side: Option<String>,
    after: Option<String>,
}

/// The filters after parsing: anything malformed is dropped, never passed on.
#[derive(Default)]
struct Filters {
    route: Option<String>,
    pair: Option<String>,
    side: Option<&'static str>,
    after: Option<String>,
}

impl Filters {
    fn parse(q: &FeedQuery) -> Self {
        let token = |v: &Option<String>, max: usize| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| v.len() <= max && cookies::is_token(v))
                .map(str::to_owned)
        };
        let pair = q
            .pair
            .as_deref()
            .map(|p| p.trim().to_uppercase())
            .filter(|p| {
                !p.is_empty()
                    && p.len() <= 32
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '.'))
            });
        let side = match q.side.as_deref() {
            Some("long") => Some("long"),
            Some("short") => Some("short"),
            _ => None,
        };
        Self {
            route: token(&q.route, 64),
            pair,
            side,
            after: token(&q.after, 36),
        }
    }

    fn queries(&self) -> Vec<Q> {
        let mut q = vec![Q::order_desc("posted_at"), Q::limit(PAGE)];
        if let Some(r) = &self.route {
            q.push(Q::equal("route_key", r.as_str()));
        }
        if let Some(p) = &self.pair {
            q.push(Q::equal("pair", p.as_str()));
        }
        if let Some(s) = self.side {
            q.push(Q::equal("side", s));
        }
        if let Some(a) = &self.after {
            q.push(Q::cursor_after(a));
        }
        q
    }

    fn is_filtered(&self) -> bool {
        self.route.is_some() || self.pair.is_some() || self.side.is_some()
    }

    /// The next page's link: these filters, after `last`.
    fn next_link(&self, last: &str) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        if let Some(r) = &self.route {
            s.append_pair("route", r);
        }
        if let Some(p) = &self.pair {
            s.append_pair("pair", p);
        }
        if let Some(side) = self.side {
            s.append_pair("side", side);
        }
        s.append_pair("after", last);
        format!("/feed?{}", s.finish())
    }
}

/// The newest page (no filters, no cursor), as read at one [`live::Hub`] version. Every member
/// is shown the same documents (read permission is per team), so a read made for one serves
/// the next until the upstream reports any signal change or loses its connection: the page is
/// never older than what the live stream has already delivered. Access is still decided per
/// request (`standing`), exactly as for the live stream.
#[derive(Default)]
pub struct NewestPage(std::sync::Mutex<Option<(u64, std::time::Instant, Arc<Page>)>>);

/// Kept no longer than this even when nothing changed: a bound in case an event is lost.
const NEWEST_PAGE_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(10);

/// One decoded page of signals.
pub struct Page {
    signals: Vec<Document<Signal>>,
    /// The id to continue after, when the page was full.
    next_after: Option<String>,
}

impl NewestPage {
    fn get(&self, version: u64) -> Option<Arc<Page>> {
        let slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some((v, at, page)) if *v == version && at.elapsed() < NEWEST_PAGE_MAX_AGE => {
                Some(page.clone())
            }
            _ => None,
        }
    }

    fn put(&self, version: u64, page: Arc<Page>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((version, std::time::Instant::now(), page));
    }
}

/// Reads one page with the member's own session (Appwrite checks the read permission).
async fn read_page(viewer: &Viewer, queries: &[Q]) -> Result<Page, g3_appwrite::Error> {
    let list = Collection::<Signal>::new(&viewer.client)
        .raw()
        .list_page::<Value>(queries)
        .await?;
    let next_after = (list.documents.len() == PAGE as usize)
        .then(|| list.documents.last().map(|d| d.id.clone()))
        .flatten();
    Ok(Page {
        signals: list
            .documents
            .into_iter()
            .filter_map(decode::<Signal>)
            .collect(),
        next_after,
    })
}

pub async fn feed(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    viewer: Viewer,
    Query(q): Query<FeedQuery>,
) -> Result<Response, AppError> {
    let standing = standing(&state, &viewer.user).await?;
    if !standing.has_feed() {
        return paywall(&state, &csrf, &viewer, standing).await;
    }
    let filters = Filters::parse(&q);
    let newest = !filters.is_filtered() && filters.after.is_none();
    // Read before the fetch: a change reported meanwhile makes what we store outdated.
    let version = newest.then(|| state.hub().version()).flatten();
    let cached = version.and_then(|v| state.newest_page().get(v));
    let signal_queries = filters.queries();
    let (page, names) = match cached {
        Some(page) => (Ok(page), state.route_names_cached(&viewer.client).await),
        None => {
            let (page, names) = tokio::join!(
                read_page(&viewer, &signal_queries),
                state.route_names_cached(&viewer.client)
            );
            let page = page.map(Arc::new);
            if let (Some(v), Ok(p)) = (version, &page) {
                state.newest_page().put(v, p.clone());
            }
            (page, names)
        }
    };
    let refused =
        |e: Option<&g3_appwrite::Error>| e.is_some_and(|e| matches!(e.status(), Some(401 | 403)));
    if refused(page.as_ref().err()) || refused(names.as_ref().err()) {
        // Appwrite checks the read permission itself: access ended between reading the
        // standing and the list. Ask again and show the paywall.
        let now = session::standing(&state, &viewer.user).await?;
        if !now.has_feed() {
            return paywall(&state, &csrf, &viewer, now).await;
        }
    }
    let page = page?;
    let names = names?;
    let mut route_options: Vec<RouteOption> = names
        .iter()
        .map(|(key, name)| RouteOption {
            key: key.clone(),
            name: name.clone(),
            selected: filters.route.as_deref() == Some(key),
        })
        .collect();
    route_options.sort_by(|a, b| a.name.cmp(&b.name));
    let next = page.next_after.as_deref().map(|id| filters.next_link(id));
    let cards = page.signals.iter().map(|d| card(d, &names)).collect();
    let html = FeedPage {
        layout: Layout::new("Signals", &csrf.0, true),
        cards,
        routes: route_options,
        pair: filters.pair.clone().unwrap_or_default(),
        side: filters.side.unwrap_or_default().to_owned(),
        // Only the unfiltered first page takes new cards; other pages update the ones they show.
        live_insert: !filters.is_filtered() && filters.after.is_none(),
        stream: format!("/feed/stream?since={}", state.hub().last_seq()),
        next,
        filtered: filters.is_filtered(),
    }
    .render()?;
    Ok(Html(html).into_response())
}

/// Route key -> display name, read by `client` (the user's session or the server key).
pub async fn route_names(
    client: &g3_appwrite::Client,
) -> Result<HashMap<String, String>, g3_appwrite::Error> {
    let routes = Collection::<Route>::new(client)
        .raw()
        .list::<Value>(&[Q::limit(100)])
        .await?;
    Ok(routes
        .documents
        .into_iter()
        .filter_map(decode::<Route>)
        .map(|d| (d.id, d.data.name))
        .collect())
}

/// Signed in but not allowed: say what is missing, show the subscription, link the store.
async fn paywall(
    state: &AppState,
    csrf: &CsrfToken,
    viewer: &Viewer,
    standing: Standing,
) -> Result<Response, AppError> {
    let html = PaywallPage {
        layout: Layout::new("Members only", &csrf.0, true),
        email: viewer.user.email.clone(),
        needs_verification: standing == Standing::Unverified,
        plans: plan_rows(state, &viewer.user.email).await?,
        store_url: state.store_url().to_owned(),
    }
    .render()?;
    Ok((StatusCode::FORBIDDEN, Html(html)).into_response())
}

/// Decodes one document through its model (which owns the attribute rules, e.g. a `null` array
/// read as empty). A document that does not decode is skipped, not fatal: one bad signal must
/// not take the whole page down.
pub fn decode<M: Model>(doc: Document<Value>) -> Option<Document<M>> {
    let Document {
        id,
        sequence,
        collection_id,
        database_id,
        created_at,
        updated_at,
        permissions,
        data,
    } = doc;
    match serde_json::from_value(data) {
        Ok(data) => Some(Document {
            id,
            sequence,
            collection_id,
            database_id,
            created_at,
            updated_at,
            permissions,
            data,
        }),
        Err(e) => {
            tracing::warn!(id = %id, collection = %collection_id, error = %e, "document skipped: does not decode");
            None
        }
    }
}

fn num(v: f64) -> String {
    format!("{v}")
}

fn when(t: time::OffsetDateTime) -> String {
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
fn embeds(raw: Option<&str>) -> Vec<EmbedView> {
    let Some(list) = raw
        .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        .and_then(|v| v.as_array().cloned())
    else {
        return Vec::new();
    };
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

/// One signal as a card view; the same function will feed live fragments.
pub fn card(doc: &Document<Signal>, routes: &HashMap<String, String>) -> Card {
    let s = &doc.data;
    let join = |v: &[f64], sep: &str| v.iter().map(|x| num(*x)).collect::<Vec<_>>().join(sep);
    Card {
        id: doc.id.clone(),
        route: routes
            .get(&s.route_key)
            .cloned()
            .unwrap_or_else(|| s.route_key.clone()),
        author: s.author_name.clone().unwrap_or_else(|| "unknown".into()),
        posted: when(s.posted_at),
        posted_iso: s.posted_at.format(&Rfc3339).unwrap_or_default(),
        pair: s.pair.clone().filter(|p| !p.is_empty()),
        side: s.side.map(|side| match side {
            Side::Long => "long",
            Side::Short => "short",
        }),
        entries: join(&s.entries, " – "),
        targets: join(&s.targets, ", "),
        stop: s.stop.map(num),
        leverage: s.leverage.map(num),
        flags: s.flags.clone(),
        text_html: markdown::render(s.content.as_deref().unwrap_or_default()),
        embeds: embeds(s.embeds.as_deref()),
        edited: s.edited_at.map(when),
        deleted: s.status == SignalStatus::Deleted,
    }
}
