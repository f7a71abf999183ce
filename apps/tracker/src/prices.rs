//! `price_minutes`: the items a tape emitted, one document per venue, symbol and minute, and
//! reading them back in order for a replay or a recompute.

use g3_appwrite::{Client, Query, Upserted};
use g3_market::{Symbol, Venue};
use g3_outcomes::Market;
use g3_store::{Collection, models::PriceMinute};
use time::OffsetDateTime;

use crate::tape::{Minute, append_after, decode, encode};

pub fn minute_id(venue: Venue, symbol: &Symbol, minute: OffsetDateTime) -> String {
    g3_core::ids::derive(
        "price_minute",
        &[
            venue.as_str(),
            symbol.as_str(),
            &minute.unix_timestamp().to_string(),
        ],
    )
}

fn stats(items: &[Market]) -> (bool, i64) {
    let backfilled = items
        .iter()
        .any(|i| matches!(i, Market::Bar(b) if b.backfilled));
    let gaps = items
        .iter()
        .filter(|i| matches!(i, Market::Gap { .. }))
        .count();
    (backfilled, gaps as i64)
}

/// Stores a minute. A minute already stored (the tape stopped and started again within it, or
/// another run wrote it) keeps its items and gets the later ones after them.
pub async fn store(
    client: &Client,
    venue: Venue,
    symbol: &Symbol,
    minute: &Minute,
) -> anyhow::Result<()> {
    let docs = Collection::<PriceMinute>::new(client);
    let id = minute_id(venue, symbol, minute.start);
    let (backfilled, gaps) = stats(&minute.items);
    let doc = PriceMinute {
        venue: venue.as_str().to_owned(),
        symbol: symbol.as_str().to_owned(),
        minute: minute.start,
        until: minute.until,
        items: encode(minute.start, &minute.items),
        backfilled: Some(backfilled),
        gaps: Some(gaps),
    };
    let existing = match docs.create_if_absent(&id, &doc, None).await? {
        Upserted::Created(_) => return Ok(()),
        Upserted::Existed(existing) => existing.data,
    };
    let mut items = decode(existing.minute, &existing.items).map_err(anyhow::Error::msg)?;
    append_after(&mut items, minute.items.iter().copied());
    let (backfilled, gaps) = stats(&items);
    let merged = PriceMinute {
        until: existing.until.max(minute.until),
        items: encode(minute.start, &items),
        backfilled: Some(backfilled),
        gaps: Some(gaps),
        ..doc
    };
    if merged != existing {
        docs.upsert(&id, &merged, None).await?;
    }
    Ok(())
}

/// One stored minute, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMinute {
    pub start: OffsetDateTime,
    pub until: OffsetDateTime,
    pub items: Vec<Market>,
}

/// The stored minutes in `[from, before)`, in order.
pub async fn load_minutes(
    client: &Client,
    venue: Venue,
    symbol: &Symbol,
    from: OffsetDateTime,
    before: OffsetDateTime,
) -> anyhow::Result<Vec<StoredMinute>> {
    let docs = Collection::<PriceMinute>::new(client)
        .list_all(
            &[
                Query::equal("venue", venue.as_str()),
                Query::equal("symbol", symbol.as_str()),
                Query::greater_than_equal("minute", g3_appwrite::format_datetime(from).as_str()),
                Query::less_than("minute", g3_appwrite::format_datetime(before).as_str()),
                Query::order_asc("minute"),
            ],
            100,
        )
        .await?;
    docs.into_iter()
        .map(|doc| {
            Ok(StoredMinute {
                start: doc.data.minute,
                until: doc.data.until,
                items: decode(doc.data.minute, &doc.data.items).map_err(anyhow::Error::msg)?,
            })
        })
        .collect()
}

/// The items of `minutes` (in order) whose minute is in `[from, before)`, one after the
/// other, and how far they are known complete (the last such minute's `until`).
pub fn items_between(
    minutes: &[StoredMinute],
    from: OffsetDateTime,
    before: OffsetDateTime,
) -> (Vec<Market>, Option<OffsetDateTime>) {
    let first = minutes.partition_point(|m| m.start < from);
    let end = minutes.partition_point(|m| m.start < before);
    let mut items = Vec::new();
    let mut until = None;
    for minute in minutes.get(first..end).unwrap_or_default() {
        append_after(&mut items, minute.items.iter().copied());
        until = Some(minute.until);
    }
    (items, until)
}

/// Stored items of the minutes in `[from, before)`, in order, and how far they are known
/// complete (the last minute's `until`).
pub async fn load(
    client: &Client,
    venue: Venue,
    symbol: &Symbol,
    from: OffsetDateTime,
    before: OffsetDateTime,
) -> anyhow::Result<(Vec<Market>, Option<OffsetDateTime>)> {
    let minutes = load_minutes(client, venue, symbol, from, before).await?;
    Ok(items_between(&minutes, from, before))
}
