//! `/feed`: signals newest first for paid and staff users, 25 a page with cursor paging, filtered
//! by route, pair and side; everyone else gets the paywall. A member sees only the routes their
//! plans unlock: the Appwrite query itself is limited to those routes (so every filter and every
//! page is), and asking for another route is refused (403). Signals are read with the user's
//! own session, so Appwrite's `team:paid`/`team:staff` read permission guards them a second time.
//! Each card carries its signal's outcome status, put in at render time ([`crate::card::Placed`])
//! from the outcome book, so an outcome update never renders a card again.

use std::{collections::HashMap, sync::Arc};

use askama::Template;
use axum::{
    Extension,
    extract::{Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use g3_appwrite::{Document, Query as Q};
use g3_core::entitlements::Entitlement;
use g3_store::{
    Collection, Model,
    models::{Route, Signal, SignalOutcome},
};
use serde::Deserialize;
use serde_json::Value;

use crate::{
    AppState,
    account::plan_rows,
    card::{CardHtml, Placed},
    cookies,
    error::AppError,
    outcomes::status,
    security::CsrfToken,
    session::{self, Entitled, Standing, Viewer},
    templates::{FeedPage, Layout, PaywallPage, RouteOption},
};

pub const PAGE: u32 = 25;

#[derive(Deserialize, Default)]
pub struct FeedQuery {
    route: Option<String>,
    pair: Option<String>,
    side: Option<String>,
    after: Option<String>,
    before: Option<String>,
    /// `cards` or `list`, remembered in a cookie (see [`crate::card::View`]).
    view: Option<String>,
}

/// The filters after parsing: anything malformed is dropped, never passed on.
#[derive(Default)]
struct Filters {
    route: Option<String>,
    pair: Option<String>,
    side: Option<&'static str>,
    /// The page is the one just older than this id (`cursorAfter`).
    after: Option<String>,
    /// The page is the one just newer than this id (`cursorBefore`); ignored with `after`.
    before: Option<String>,
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
        let after = token(&q.after, 36);
        let before = token(&q.before, 36).filter(|_| after.is_none());
        Self {
            route: token(&q.route, 64),
            pair,
            side,
            after,
            before,
        }
    }

    /// The page's queries, limited to the routes `sees` (a route filter is already checked).
    /// One document more than a page is asked for: its presence says whether there is a
    /// further page (older, or newer with `before`) without another round trip.
    fn queries(&self, sees: &Entitlement) -> Vec<Q> {
        let mut q = vec![Q::order_desc("posted_at"), Q::limit(PAGE + 1)];
        if let Some(r) = &self.route {
            q.push(Q::equal("route_key", r.as_str()));
        } else if let Some(routes) = sees.routes() {
            q.push(Q::equal(
                "route_key",
                routes.iter().cloned().collect::<Vec<String>>(),
            ));
        }
        if let Some(p) = &self.pair {
            // "btc", "btcusdt" and "BTC/USDT" all find the pair as the parser stores it.
            let stored = g3_core::signal::pairs_matching(p);
            if stored.is_empty() {
                q.push(Q::equal("pair", p.as_str()));
            } else {
                q.push(Q::equal("pair", stored));
            }
        }
        if let Some(s) = self.side {
            q.push(Q::equal("side", s));
        }
        if let Some(a) = &self.after {
            q.push(Q::cursor_after(a));
        } else if let Some(b) = &self.before {
            q.push(Q::cursor_before(b));
        }
        q
    }

    fn is_newest(&self) -> bool {
        self.after.is_none() && self.before.is_none()
    }

    fn is_filtered(&self) -> bool {
        self.route.is_some() || self.pair.is_some() || self.side.is_some()
    }

    /// Another page's link: these filters, and `cursor` (`after` or `before`) set to `id`.
    fn link(&self, cursor: &str, id: &str) -> String {
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
        s.append_pair(cursor, id);
        format!("/feed?{}", s.finish())
    }
}

/// The newest page (no filters, no cursor) per set of visible routes, as read at one
/// [`live::Hub`] version. Members who see the same routes are shown the same documents (read
/// permission is per team), so a read made for one serves the next until the upstream reports
/// any signal change or loses its connection: the page is never older than what the live
/// stream has already delivered. Access is still decided per request (`entitled`), exactly as
/// for the live stream.
#[derive(Default)]
pub struct NewestPage(std::sync::Mutex<HashMap<Entitlement, Newest>>);

/// A newest page: the hub version it was read at, when, and the page.
type Newest = (u64, std::time::Instant, Arc<Page>);

/// Route sets kept at once: there are as many as distinct plan combinations.
const NEWEST_PAGE_SETS: usize = 32;

/// Kept no longer than this even when nothing changed: a bound in case an event is lost.
const NEWEST_PAGE_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(10);

/// One page of signals as listed: which signals, in which version, not their content (the
/// cards come from [`crate::card::CardCache`]; only signals it lacks are read in full).
pub struct Page {
    signals: Vec<Listed>,
    /// The id to continue after (the last shown), when an older page exists.
    older_after: Option<String>,
    /// The id to go back before (the first shown), when a newer page exists.
    newer_before: Option<String>,
}

/// A listed signal: what names the version of its card.
struct Listed {
    id: String,
    updated_at: time::OffsetDateTime,
    revision: i64,
    route_key: String,
}

/// The attributes a page lists; Appwrite adds `$id`, `$updatedAt` and the other system
/// attributes to every selection.
const LISTED: [&str; 2] = ["revision", "route_key"];

/// Read straight from the list's JSON (no map of values in between); a document lacking one of
/// the fields is skipped with a warning, not a failed page.
#[derive(Deserialize)]
struct ListedData {
    revision: Option<i64>,
    route_key: Option<String>,
}

impl NewestPage {
    fn get(&self, version: u64, sees: &Entitlement) -> Option<Arc<Page>> {
        let slots = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match slots.get(sees) {
            Some((v, at, page)) if *v == version && at.elapsed() < NEWEST_PAGE_MAX_AGE => {
                Some(page.clone())
            }
            _ => None,
        }
    }

    fn put(&self, version: u64, sees: &Entitlement, page: Arc<Page>) {
        let mut slots = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slots.retain(|_, (v, _, _)| *v == version);
        if slots.len() >= NEWEST_PAGE_SETS {
            slots.clear();
        }
        slots.insert(sees.clone(), (version, std::time::Instant::now(), page));
    }
}

/// Lists one page with the member's own session (Appwrite checks the read permission),
/// selecting only what names each card's version. `queries` ask for one document more than a
/// page (see [`Filters::queries`]).
async fn read_page(
    viewer: &Viewer,
    queries: &[Q],
    filters: &Filters,
) -> Result<Page, g3_appwrite::Error> {
    let mut queries = queries.to_vec();
    queries.push(Q::select(LISTED));
    let list = Collection::<Signal>::new(&viewer.client)
        .raw()
        .list_page::<ListedData>(&queries)
        .await?;
    Ok(page_of(list.documents, filters))
}

/// Cuts the read (up to `PAGE + 1` documents, newest first) to a page and works out its links.
fn page_of(mut docs: Vec<Document<ListedData>>, filters: &Filters) -> Page {
    let more = docs.len() > PAGE as usize;
    if more {
        if filters.before.is_some() {
            // `cursorBefore` returns the documents just newer than the cursor, newest first:
            // the extra one is the newest, beyond this page.
            docs.remove(0);
        } else {
            docs.truncate(PAGE as usize);
        }
    }
    let first = docs.first().map(|d| d.id.clone());
    let last = docs.last().map(|d| d.id.clone());
    let (older_after, newer_before) = if let Some(before) = &filters.before {
        // The cursor itself is older than this page, so there is always an older page.
        (
            last.or_else(|| Some(before.clone())),
            more.then_some(first).flatten(),
        )
    } else if let Some(after) = &filters.after {
        // Likewise the cursor is newer than this page.
        (
            more.then_some(last).flatten(),
            first.or_else(|| Some(after.clone())),
        )
    } else {
        (more.then_some(last).flatten(), None)
    };
    Page {
        signals: docs
            .into_iter()
            .filter_map(|d| {
                let (Some(revision), Some(route_key)) = (d.data.revision, d.data.route_key) else {
                    tracing::warn!(id = %d.id, "signal skipped: listed without revision or route");
                    return None;
                };
                Some(Listed {
                    id: d.id,
                    updated_at: d.updated_at,
                    revision,
                    route_key,
                })
            })
            .collect(),
        older_after,
        newer_before,
    }
}

/// The cards of a page, in its order: from the cache, and the signals it lacks read in full
/// (one call, with the member's session) and rendered. A signal gone meanwhile is left out.
async fn cards_of(
    state: &AppState,
    viewer: &Viewer,
    page: &Page,
    names: &HashMap<String, String>,
) -> Result<Vec<Placed>, AppError> {
    let cache = state.cards();
    let mut cards: Vec<Option<CardHtml>> = page
        .signals
        .iter()
        .map(|s| cache.cached(&s.id, s.updated_at, s.revision, &s.route_key, names))
        .collect();
    let missing: Vec<&str> = page
        .signals
        .iter()
        .zip(&cards)
        .filter(|(_, card)| card.is_none())
        .map(|(s, _)| s.id.as_str())
        .collect();
    if !missing.is_empty() {
        let docs = Collection::<Signal>::new(&viewer.client)
            .raw()
            .list_page::<Value>(&[
                Q::equal("$id", missing.clone()),
                Q::limit(missing.len() as u32),
            ])
            .await?;
        for doc in docs.documents.into_iter().filter_map(decode::<Signal>) {
            let html = cache.html(&doc, names)?;
            if let Some(at) = page.signals.iter().position(|s| s.id == doc.id) {
                cards[at] = Some(html);
            }
        }
    }
    let shown: Vec<(&str, CardHtml)> = page
        .signals
        .iter()
        .zip(cards)
        .filter_map(|(s, card)| Some((s.id.as_str(), card?)))
        .collect();
    let statuses = statuses_of(state, viewer, shown.iter().map(|(id, _)| *id)).await;
    Ok(shown
        .into_iter()
        .zip(statuses)
        .map(|((_, card), status)| Placed { card, status })
        .collect())
}

/// The status fragments of `ids`, in order: from the outcome book once it holds every outcome,
/// else (the upstream not connected yet) read with the member's session. Outcomes are extra
/// information: when they cannot be read the cards are shown without them.
async fn statuses_of<'a>(
    state: &AppState,
    viewer: &Viewer,
    ids: impl Iterator<Item = &'a str> + Clone,
) -> Vec<Option<Arc<str>>> {
    let book = state.outcomes();
    if book.is_ready() {
        return book.statuses(ids);
    }
    let wanted: Vec<&str> = ids.clone().collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let read = Collection::<SignalOutcome>::new(&viewer.client)
        .raw()
        .list_page::<Value>(&[
            Q::equal("$id", wanted.clone()),
            Q::limit(wanted.len() as u32),
        ])
        .await;
    let docs = match read {
        Ok(list) => list.documents,
        Err(e) => {
            tracing::warn!(error = %e, "feed: outcomes could not be read; cards shown without");
            Vec::new()
        }
    };
    let mut found: HashMap<String, Arc<str>> = HashMap::new();
    for doc in docs.into_iter().filter_map(decode::<SignalOutcome>) {
        let rendered = crate::outcomes::decode(&doc.data)
            .map_err(|e| e.to_string())
            .and_then(|o| status::render(&doc.id, &o).map_err(|e| e.to_string()));
        match rendered {
            Ok(html) => {
                found.insert(doc.id, html.into());
            }
            Err(e) => tracing::warn!(id = %doc.id, error = %e, "outcome status skipped"),
        }
    }
    ids.map(|id| found.get(id).cloned()).collect()
}

pub async fn feed(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    viewer: Viewer,
    headers: axum::http::HeaderMap,
    Query(q): Query<FeedQuery>,
) -> Result<Response, AppError> {
    let entitled = session::entitled(&state, &viewer.user).await?;
    if !entitled.has_feed() {
        return paywall(&state, &csrf, &viewer, &entitled, None).await;
    }
    let filters = Filters::parse(&q);
    if let Some(route) = filters.route.as_deref()
        && !entitled.allows(route)
    {
        return paywall(&state, &csrf, &viewer, &entitled, Some(route)).await;
    }
    let newest = !filters.is_filtered() && filters.is_newest();
    // Read before the fetch: a change reported meanwhile makes what we store outdated.
    let version = newest.then(|| state.hub().version()).flatten();
    let cached = version.and_then(|v| state.newest_page().get(v, &entitled.sees));
    let signal_queries = filters.queries(&entitled.sees);
    let (page, names) = match cached {
        Some(page) => (Ok(page), state.route_names_cached(&viewer.client).await),
        None => {
            let (page, names) = tokio::join!(
                read_page(&viewer, &signal_queries, &filters),
                state.route_names_cached(&viewer.client)
            );
            let page = page.map(Arc::new);
            if let (Some(v), Ok(p)) = (version, &page) {
                state.newest_page().put(v, &entitled.sees, p.clone());
            }
            (page, names)
        }
    };
    let refused =
        |e: Option<&g3_appwrite::Error>| e.is_some_and(|e| matches!(e.status(), Some(401 | 403)));
    if refused(page.as_ref().err()) || refused(names.as_ref().err()) {
        // Appwrite checks the read permission itself: access ended between reading the
        // standing and the list. Ask again and show the paywall.
        let now = session::entitled(&state, &viewer.user).await?;
        if !now.has_feed() {
            return paywall(&state, &csrf, &viewer, &now, None).await;
        }
    }
    // The backend down or failing: the page says so (503) and keeps the filters, rather than a
    // bare error page. Anything else is a bug and goes to the error page.
    let unavailable = g3_appwrite::Error::is_retryable;
    let outage = |e: &g3_appwrite::Error| {
        tracing::warn!(error = %e, "feed: signals could not be read");
        let list = view_of(&q, &headers, &state);
        unavailable_page(&state, &csrf, &entitled, &filters, list)
    };
    let failed = page
        .as_ref()
        .err()
        .or(names.as_ref().err())
        .filter(|e| unavailable(e));
    if let Some(e) = failed {
        return outage(e);
    }
    let page = page?;
    let names = names?;
    let mut route_options: Vec<RouteOption> = names
        .iter()
        .filter(|(key, _)| entitled.sees.allows(key))
        .map(|(key, name)| RouteOption {
            key: key.clone(),
            name: name.clone(),
            selected: filters.route.as_deref() == Some(key),
        })
        .collect();
    route_options.sort_by(|a, b| a.name.cmp(&b.name));
    let older = page
        .older_after
        .as_deref()
        .map(|id| filters.link("after", id));
    let newer = page
        .newer_before
        .as_deref()
        .map(|id| filters.link("before", id));
    // A `before` page that reached the top is the newest page: it takes live cards too.
    let at_top = newer.is_none();
    let cards = match cards_of(&state, &viewer, &page, &names).await {
        Err(AppError::Backend(e)) if unavailable(&e) => return outage(&e),
        cards => cards?,
    };
    let (view, remember_view) =
        crate::card::View::choose(q.view.as_deref(), &headers, state.secure_cookies());
    let html = FeedPage {
        layout: Layout::new("Signals", &csrf.0, true).staff(entitled.standing == Standing::Staff),
        cards,
        list: view == crate::card::View::List,
        routes: route_options,
        pair: filters.pair.clone().unwrap_or_default(),
        side: filters.side.unwrap_or_default().to_owned(),
        // Only the unfiltered first page takes new cards; other pages update the ones they show.
        live_insert: !filters.is_filtered() && at_top,
        // Unfiltered older pages count new cards and offer the newest page instead.
        newest_link: (!filters.is_filtered() && !at_top).then(|| "/feed".to_owned()),
        stream: format!("/feed/stream?since={}", state.hub().last_seq()),
        at_end: older.is_none(),
        older,
        newer,
        filtered: filters.is_filtered(),
        pairs: state.pairs().visible(&entitled.sees),
        unavailable: false,
    }
    .render()?;
    let mut resp = Html(html).into_response();
    if let Some(cookie) = remember_view {
        resp.headers_mut()
            .append(axum::http::header::SET_COOKIE, cookie);
    }
    Ok(resp)
}

fn view_of(q: &FeedQuery, headers: &axum::http::HeaderMap, state: &AppState) -> bool {
    crate::card::View::choose(q.view.as_deref(), headers, state.secure_cookies()).0
        == crate::card::View::List
}

/// The feed with the form kept and no signals: the backend did not answer (503, retry soon).
fn unavailable_page(
    state: &AppState,
    csrf: &CsrfToken,
    entitled: &Entitled,
    filters: &Filters,
    list: bool,
) -> Result<Response, AppError> {
    let html = FeedPage {
        layout: Layout::new("Signals", &csrf.0, true).staff(entitled.standing == Standing::Staff),
        cards: Vec::new(),
        list,
        // Route names are not known: the filter keeps its key.
        routes: filters
            .route
            .iter()
            .map(|key| RouteOption {
                key: key.clone(),
                name: key.clone(),
                selected: true,
            })
            .collect(),
        pair: filters.pair.clone().unwrap_or_default(),
        side: filters.side.unwrap_or_default().to_owned(),
        live_insert: false,
        newest_link: None,
        stream: String::new(),
        older: None,
        newer: None,
        at_end: false,
        filtered: filters.is_filtered(),
        pairs: state.pairs().visible(&entitled.sees),
        unavailable: true,
    }
    .render()?;
    Ok((
        StatusCode::SERVICE_UNAVAILABLE,
        [(axum::http::header::RETRY_AFTER, "30")],
        Html(html),
    )
        .into_response())
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

/// Signed in but not allowed (or asking for a route their plans do not unlock): say what is
/// missing, show the subscription and the plans on sale, with buy links that carry the email.
pub(crate) async fn paywall(
    state: &AppState,
    csrf: &CsrfToken,
    viewer: &Viewer,
    entitled: &Entitled,
    route: Option<&str>,
) -> Result<Response, AppError> {
    let (plans, names) = tokio::join!(
        plan_rows(state, &viewer.user.email),
        // The server key: the viewer may not be allowed to read routes at all.
        state.route_names_cached(state.appwrite()),
    );
    let name_of = |key: &str| {
        names
            .as_ref()
            .ok()
            .and_then(|n| n.get(key).cloned())
            .unwrap_or_else(|| key.to_owned())
    };
    let locked = match (route, entitled.standing) {
        (Some(route), _) => Some(format!("Your plan does not include {}.", name_of(route))),
        (None, Standing::Paid) => {
            Some("Your plan does not include any channel of the feed.".into())
        }
        (None, _) => None,
    };
    let offers = crate::landing::offers(state, Some(&viewer.user.email), route);
    let html = PaywallPage {
        layout: Layout::new("Members only", &csrf.0, true),
        email: viewer.user.email.clone(),
        needs_verification: entitled.standing == Standing::Unverified,
        locked,
        plans: plans?,
        offers,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pair_queries(typed: &str) -> Vec<String> {
        let filters = Filters::parse(&FeedQuery {
            pair: Some(typed.into()),
            ..FeedQuery::default()
        });
        filters
            .queries(&Entitlement::Everything)
            .iter()
            .map(Q::to_json)
            .filter(|q| q.contains(r#""attribute":"pair""#))
            .collect()
    }

    /// One value: the database reads `by_pair_posted` in order and stops after a page, where
    /// several values make it read every match and sort them.
    #[test]
    fn a_pair_however_typed_is_one_value_of_the_filter() {
        for typed in ["btcusdt", "BTC/USDT", "btc-usdt", "BTCUSDTPERP"] {
            assert_eq!(
                pair_queries(typed),
                [r#"{"method":"equal","attribute":"pair","values":["BTC/USDT"]}"#],
                "{typed}"
            );
        }
        let base = pair_queries("eth");
        assert_eq!(base.len(), 1);
        assert!(
            base[0].contains(r#""ETH/USDT","ETH/USDC""#),
            "a bare base asks for each quote: {base:?}"
        );
    }
}
