//! Recomputing outcomes from what is stored: each `signal_outcomes` document's revisions and
//! the `price_minutes` of its market, through `g3_outcomes::evaluate`. The live tracker judges
//! exactly the stored items, so a recompute of a settled outcome writes the same document.
//! [`all`] reads each market's minutes once for all of its signals.

use std::collections::BTreeMap;

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
    let (from, before) = window(history, rules);
    prices::load(client, venue, symbol, from, before).await
}

/// The minutes a signal is judged on: from its post's minute to a minute past its time limit.
fn window(history: &History, rules: Rules) -> (OffsetDateTime, OffsetDateTime) {
    let posted = history.posted_at();
    (
        floor_min(posted),
        posted + rules.time_limit + Duration::MINUTE,
    )
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

/// What a stored outcome is recomputed from.
struct Inputs {
    heard: Heard,
    history: History,
    rules: Rules,
    market: Market,
}

fn inputs(doc: &Document<SignalOutcome>) -> anyhow::Result<Inputs> {
    let heard = Heard::stored(&doc.data)
        .ok_or_else(|| anyhow::anyhow!("{}: revisions unreadable", doc.id))?;
    let history = heard.history()?;
    let stored: Option<Outcome> = serde_json::from_str(&doc.data.outcome).ok();
    let rules = stored.as_ref().map(rules_of).unwrap_or_default();
    let market = signals::stored_market(&doc.data)
        .ok_or_else(|| anyhow::anyhow!("{}: venue or symbol unreadable", doc.id))?;
    Ok(Inputs {
        heard,
        history,
        rules,
        market,
    })
}

/// The document of `outcome`, written when `write` and it differs from the stored one.
async fn finish(
    client: &Client,
    doc: &Document<SignalOutcome>,
    inputs: &Inputs,
    outcome: &Outcome,
    write: bool,
) -> anyhow::Result<Recomputed> {
    let before = doc.data.clone();
    let after = signals::document(&before.route_key, &inputs.market, &inputs.heard, outcome);
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

/// Recomputes one stored outcome; writes it when `write` and it changed.
pub async fn one(
    client: &Client,
    doc: &Document<SignalOutcome>,
    write: bool,
) -> anyhow::Result<Recomputed> {
    let inputs = inputs(doc)?;
    let outcome = judge(client, &inputs.history, inputs.rules, &inputs.market).await?;
    finish(client, doc, &inputs, &outcome, write).await
}

/// Recomputes the outcome of signal `id`.
pub async fn signal(client: &Client, id: &str, write: bool) -> anyhow::Result<Recomputed> {
    let doc = Collection::<SignalOutcome>::new(client)
        .get_optional(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("signal {id} has no outcome"))?;
    one(client, &doc, write).await
}

/// Recomputes every stored outcome, in the order listed. The minutes of each market are read
/// once, over the windows of all its signals, and each signal is judged on exactly the minutes
/// of its own window, as [`one`] would.
pub async fn all(client: &Client, write: bool) -> anyhow::Result<Vec<Recomputed>> {
    let docs = Collection::<SignalOutcome>::new(client)
        .list_all(&[], 100)
        .await?;
    let mut by_market: BTreeMap<(Venue, String), Vec<(usize, Inputs)>> = BTreeMap::new();
    let mut out: Vec<Option<Recomputed>> = vec![None; docs.len()];
    for (i, doc) in docs.iter().enumerate() {
        let inputs = inputs(doc)?;
        match &inputs.market {
            Market::On(venue, symbol) => by_market
                .entry((*venue, symbol.as_str().to_owned()))
                .or_default()
                .push((i, inputs)),
            Market::Untrackable(reason) => {
                let outcome =
                    Outcome::untrackable(&inputs.history, inputs.rules.time_limit, reason);
                out[i] = Some(finish(client, &docs[i], &inputs, &outcome, write).await?);
            }
        }
    }
    for ((venue, _), signals) in by_market {
        let Some((_, first)) = signals.first() else {
            continue;
        };
        let Market::On(_, symbol) = &first.market else {
            continue;
        };
        let windows = signals.iter().map(|(_, s)| window(&s.history, s.rules));
        let from = windows.clone().map(|w| w.0).min();
        let before = windows.map(|w| w.1).max();
        let (Some(from), Some(before)) = (from, before) else {
            continue;
        };
        let minutes = prices::load_minutes(client, venue, symbol, from, before).await?;
        for (i, inputs) in &signals {
            let (from, before) = window(&inputs.history, inputs.rules);
            let (items, until) = prices::items_between(&minutes, from, before);
            let outcome = evaluate(&inputs.history, inputs.rules, &items, until)?;
            out[*i] = Some(finish(client, &docs[*i], inputs, &outcome, write).await?);
        }
    }
    Ok(out.into_iter().flatten().collect())
}
