//! Recomputing outcomes from what is stored: each `signal_outcomes` document's revisions and
//! the `price_minutes` of its market, through `g3_outcomes::evaluate`. The live tracker judges
//! exactly the stored items, so a recompute of a settled outcome writes the same document.

use g3_appwrite::{Client, Document};
use g3_market::{Symbol, Venue};
use g3_outcomes::{History, Outcome, Rules, evaluate};
use g3_store::{Collection, models::SignalOutcome};
use time::{Duration, OffsetDateTime};

use crate::prices;
use crate::signals::{self, Heard, Market};
use crate::tape::floor_min;

/// One signal recomputed.
#[derive(Debug, Clone, PartialEq)]
pub struct Recomputed {
    pub id: String,
    pub before: SignalOutcome,
    pub after: SignalOutcome,
}

impl Recomputed {
    pub fn changed(&self) -> bool {
        self.before != self.after
    }
}

/// The rules an outcome was judged with: its own time limit.
pub fn rules_of(outcome: &Outcome) -> Rules {
    Rules {
        time_limit: outcome.expires_at - outcome.posted_at,
    }
}

/// The stored items a signal posted at `history`'s time is judged on, in order, and how far
/// they are known complete (the last stored minute's `until`).
pub async fn stored_items(
    client: &Client,
    venue: Venue,
    symbol: &Symbol,
    history: &History,
    rules: Rules,
) -> anyhow::Result<(Vec<g3_outcomes::Market>, Option<OffsetDateTime>)> {
    let posted = history.posted_at();
    let before = posted + rules.time_limit + Duration::MINUTE;
    prices::load(client, venue, symbol, floor_min(posted), before).await
}

/// Judges `history` on `market` from the stored prices with `g3_outcomes::evaluate`, time
/// complete up to the last stored minute.
pub async fn judge(
    client: &Client,
    history: &History,
    rules: Rules,
    market: &Market,
) -> anyhow::Result<Outcome> {
    match market {
        Market::Untrackable(reason) => Ok(Outcome::untrackable(history, rules.time_limit, reason)),
        Market::On(venue, symbol) => {
            let (items, until) = stored_items(client, *venue, symbol, history, rules).await?;
            Ok(evaluate(history, rules, &items, until)?)
        }
    }
}

/// Recomputes one stored outcome; writes it when `write` and it changed.
pub async fn one(
    client: &Client,
    doc: &Document<SignalOutcome>,
    write: bool,
) -> anyhow::Result<Recomputed> {
    let before = doc.data.clone();
    let heard = Heard::stored(&before)
        .ok_or_else(|| anyhow::anyhow!("{}: revisions unreadable", doc.id))?;
    let history = heard.history()?;
    let stored: Option<Outcome> = serde_json::from_str(&before.outcome).ok();
    let rules = stored.as_ref().map(rules_of).unwrap_or_default();
    let market = signals::stored_market(&before)
        .ok_or_else(|| anyhow::anyhow!("{}: venue or symbol unreadable", doc.id))?;
    let outcome = judge(client, &history, rules, &market).await?;
    let after = signals::document(&before.route_key, &market, &heard, &outcome);
    if write && after != before {
        Collection::<SignalOutcome>::new(client)
            .upsert(&doc.id, &after, None)
            .await?;
    }
    Ok(Recomputed {
        id: doc.id.clone(),
        before,
        after,
    })
}

/// Recomputes the outcome of signal `id`.
pub async fn signal(client: &Client, id: &str, write: bool) -> anyhow::Result<Recomputed> {
    let doc = Collection::<SignalOutcome>::new(client)
        .get_optional(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("signal {id} has no outcome"))?;
    one(client, &doc, write).await
}

/// Recomputes every stored outcome.
pub async fn all(client: &Client, write: bool) -> anyhow::Result<Vec<Recomputed>> {
    let docs = Collection::<SignalOutcome>::new(client)
        .list_all(&[], 100)
        .await?;
    let mut out = Vec::with_capacity(docs.len());
    for doc in &docs {
        out.push(one(client, doc, write).await?);
    }
    Ok(out)
}
