//! `ops signals normalize-pairs`: rewrites pairs stored in another spelling ("BTCUSDT", as
//! other tools or an import wrote them) in the form the parser stores (`BTC/USDT`). The feed's
//! pair filter then asks for one value, which Appwrite reads from its index in order, and the
//! tracker can follow those signals (it reads pairs in the parser's form only).
//!
//! Only `pair` changes: `revision` stays, so the bot edits no mirror. Safe to run again, and
//! to stop half-way: it reads every signal each time.

use std::fmt::Write as _;

use anyhow::Context as _;
use g3_appwrite::{Client, Query};
use g3_store::{Collection, models::Signal};
use serde::Deserialize;
use serde_json::json;

/// Signals read per request.
const PAGE: u32 = 500;

#[derive(Deserialize)]
struct StoredPair {
    pair: Option<String>,
}

/// Reads every signal's pair and (unless `dry_run`) rewrites the ones spelled another way.
/// `progress` is called after each page with the number of signals read so far. Returns the
/// text to print: a line per pair changed or left alone, and a total.
pub async fn normalize_pairs(
    client: &Client,
    dry_run: bool,
    mut progress: impl FnMut(usize),
) -> anyhow::Result<String> {
    let signals = Collection::<Signal>::new(client);
    let mut out = String::new();
    let (mut read, mut changed, mut unknown) = (0usize, 0usize, 0usize);
    let mut last: Option<String> = None;
    loop {
        let mut queries = vec![Query::select(["pair"]), Query::limit(PAGE)];
        if let Some(id) = &last {
            queries.push(Query::cursor_after(id));
        }
        let page = signals
            .raw()
            .list_page::<StoredPair>(&queries)
            .await
            .with_context(|| format!("reading signals after {read} (run again to go on)"))?;
        let len = page.documents.len();
        for doc in page.documents {
            read += 1;
            last = Some(doc.id.clone());
            let Some(written) = doc.data.pair.as_deref() else {
                continue;
            };
            match g3_core::signal::stored_pair(written) {
                Some(stored) if stored == written => {}
                Some(stored) => {
                    if !dry_run {
                        signals
                            .raw()
                            .update::<_, StoredPair>(&doc.id, &json!({ "pair": stored }), None)
                            .await
                            .with_context(|| {
                                format!(
                                    "rewriting signal {}'s pair after {changed} rewritten (run again to go on)",
                                    doc.id
                                )
                            })?;
                    }
                    changed += 1;
                    let verb = if dry_run { "would change" } else { "rewritten" };
                    let _ = writeln!(out, "{}: {verb} ({written} -> {stored})", doc.id);
                }
                None => {
                    unknown += 1;
                    let _ = writeln!(
                        out,
                        "{}: {written:?} left as it is (not a pair the parser knows)",
                        doc.id
                    );
                }
            }
        }
        progress(read);
        if len < PAGE as usize {
            break;
        }
    }
    let _ = write!(
        out,
        "{read} signal(s) read, {changed} pair(s) {}, {unknown} left as written",
        if dry_run {
            "would be rewritten"
        } else {
            "rewritten"
        }
    );
    Ok(out)
}
