//! Page rows: concurrent signed-in clients requesting `/healthz`, the newest feed page, filtered
//! pages (as the filter form submits them) and deeper pages (as reached by following each
//! page's "Older signals" link), each request timed from send to the whole body read.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use rand::seq::IndexedRandom as _;

use super::seed::{PAIRS, ROUTES};
use crate::stats::Samples;

/// Where every signal card starts in the feed's HTML.
pub const CARD: &str = "<article class=\"card";
/// The feed's page size.
pub const PAGE: usize = 25;

/// How much load a page row puts on the server.
#[derive(Clone, Copy)]
pub struct Load {
    pub requests: usize,
    pub concurrency: usize,
    /// No new request starts after this long (a slow row still ends, with fewer samples).
    pub budget: Duration,
}

/// What a response must hold to count as served (always a 200 and its whole body).
#[derive(Clone, Copy)]
pub enum Expect {
    /// Exactly this body.
    Body(&'static str),
    /// At least this many signal cards.
    Cards(usize),
    /// Any page: a rare filter combination may match nothing in a small run (checked
    /// beforehand with [`cards_on`]).
    AnyPage,
}

impl Expect {
    /// Looks at the raw body once (no UTF-8 decoding, no copy): the clients stand for
    /// browsers on other machines, so what they spend per page should stay small beside the
    /// server they share the cores with.
    fn holds(self, body: &[u8]) -> bool {
        match self {
            Expect::Body(want) => body == want.as_bytes(),
            Expect::Cards(min) => cards_in(body) >= min,
            Expect::AnyPage => true,
        }
    }
}

/// The signal cards in a page's HTML.
fn cards_in(body: &[u8]) -> usize {
    memchr::memmem::find_iter(body, CARD.as_bytes()).count()
}

/// The cards on each of `urls`, fetched one by one.
pub async fn cards_on(
    http: &reqwest::Client,
    cookie: &str,
    urls: &[String],
) -> anyhow::Result<Vec<usize>> {
    let mut counts = Vec::with_capacity(urls.len());
    for url in urls {
        let r = http.get(url).header("cookie", cookie).send().await?;
        if r.status() != 200 {
            bail!("{url} answered {}", r.status());
        }
        counts.push(cards_in(&r.bytes().await?));
    }
    Ok(counts)
}

/// The first page of each route alone.
pub fn route_urls(base: &str) -> Vec<String> {
    ROUTES
        .iter()
        .map(|(key, _, _)| format!("{base}/feed?route={key}&pair=&side="))
        .collect()
}

/// Browser-like client: keeps connections, follows no redirects (a redirect is a failure).
pub fn client(concurrency: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(concurrency)
        .build()?)
}

/// GETs `urls` round-robin from `load.concurrency` clients, each sending `cookie`.
pub async fn hammer(
    http: &reqwest::Client,
    cookie: &str,
    urls: Vec<String>,
    load: Load,
    expect: Expect,
) -> anyhow::Result<Samples> {
    anyhow::ensure!(!urls.is_empty(), "no URL to request");
    let urls = Arc::new(urls);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + load.budget;
    let mut tasks = Vec::new();
    for _ in 0..load.concurrency.max(1) {
        let (http, urls, next, cookie) =
            (http.clone(), urls.clone(), next.clone(), cookie.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::with_capacity(load.requests / load.concurrency.max(1) + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= load.requests || Instant::now() >= deadline {
                    return samples;
                }
                let url = &urls[i % urls.len()];
                let t = Instant::now();
                let ok = match http.get(url).header("cookie", &cookie).send().await {
                    Ok(r) if r.status() == 200 => r.bytes().await.is_ok_and(|b| expect.holds(&b)),
                    _ => false,
                };
                if ok {
                    samples.record(t.elapsed());
                } else {
                    samples.errors += 1;
                }
            }
        }));
    }
    let mut all = Samples::with_capacity(load.requests);
    for task in tasks {
        all.merge(task.await.context("page worker panicked")?);
    }
    all.wall = started.elapsed();
    Ok(all)
}

/// One filter of the feed's form.
#[derive(Clone, Copy, Debug)]
pub enum Filter {
    Route,
    Pair,
    Side,
    RoutePairSide,
}

impl Filter {
    pub const ALL: [Filter; 4] = [
        Filter::Route,
        Filter::Pair,
        Filter::Side,
        Filter::RoutePairSide,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Filter::Route => "route",
            Filter::Pair => "pair",
            Filter::Side => "side",
            Filter::RoutePairSide => "route+pair+side",
        }
    }

    /// `count` first-page URLs with values picked at random, every field present (empty when
    /// unused) as the form submits them.
    pub fn urls(self, base: &str, count: usize) -> Vec<String> {
        let mut rng = rand::rng();
        let routes: Vec<&str> = ROUTES.iter().map(|r| r.0).collect();
        (0..count)
            .map(|_| {
                let mut pick = |values: &[&'static str], used: bool| {
                    if used {
                        values.choose(&mut rng).copied().unwrap_or_default()
                    } else {
                        ""
                    }
                };
                let (r, p, s) = match self {
                    Filter::Route => (true, false, false),
                    Filter::Pair => (false, true, false),
                    Filter::Side => (false, false, true),
                    Filter::RoutePairSide => (true, true, true),
                };
                let route = pick(&routes, r);
                let pair = pick(&PAIRS, p);
                let side = pick(&["long", "short"], s);
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("route", route)
                    .append_pair("pair", pair)
                    .append_pair("side", side)
                    .finish();
                format!("{base}/feed?{query}")
            })
            .collect()
    }
}

/// Follows "Older signals" from the newest page as a browser would and returns the URL of each
/// page in `depths` (page 1 is `/feed`) that exists.
pub async fn page_urls(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    depths: &[usize],
) -> anyhow::Result<Vec<(usize, String)>> {
    let deepest = depths.iter().copied().max().unwrap_or(1);
    let mut found = Vec::new();
    let mut url = format!("{base}/feed");
    for page in 1..=deepest {
        if depths.contains(&page) {
            found.push((page, url.clone()));
        }
        if page == deepest {
            break;
        }
        let r = http.get(&url).header("cookie", cookie).send().await?;
        if r.status() != 200 {
            bail!("page {page} ({url}) answered {}", r.status());
        }
        let body = r.text().await?;
        let Some(link) = older_link(&body) else {
            eprintln!("web: the feed ends at page {page}; deeper pages are skipped");
            break;
        };
        url = format!("{base}{link}");
    }
    Ok(found)
}

/// The `href` of the page's `rel="next"` link, HTML entities decoded.
pub fn older_link(html: &str) -> Option<String> {
    let rel = html.find("rel=\"next\"")?;
    let tag_start = html[..rel].rfind('<')?;
    let tag_end = rel + html[rel..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let href = tag.find("href=\"")? + "href=\"".len();
    let value = &tag[href..href + tag[href..].find('"')?];
    Some(unescape(value))
}

/// Decodes the entities an HTML escaper writes into an attribute (`&amp;`, `&#x2f;`, `&#38;`…).
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_older_link_is_read_as_a_browser_reads_it() {
        let html = r#"<nav aria-label="Pages"><a class="button" href="&#x2f;feed?route=vip-calls&amp;after=s000123" rel="next">Older signals</a></nav>"#;
        assert_eq!(
            older_link(html).as_deref(),
            Some("/feed?route=vip-calls&after=s000123")
        );
        assert_eq!(older_link("<p>No more</p>"), None);
        assert_eq!(unescape("a &b &#38; &bogus; c"), "a &b & &bogus; c");
    }

    #[test]
    fn filter_urls_carry_every_form_field() {
        let url = &Filter::Side.urls("http://x", 1)[0];
        assert!(url.starts_with("http://x/feed?route=&pair=&side="), "{url}");
        let url = &Filter::RoutePairSide.urls("http://x", 1)[0];
        assert!(!url.contains("route=&") && url.contains("%2FUSDT"), "{url}");
    }
}
