//! A venue's public REST API, as far as market data needs it: klines (to backfill what a stream
//! missed) and the list of instruments (to know what a venue lists). No API key.

use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use tracing::debug;
use url::Url;

use crate::error::MarketError;
use crate::model::{Bar, to_millis};
use crate::symbol::Symbol;
use crate::venue::{Interval, Venue};
use crate::{binance, bybit};

/// Pages one backfill may read: 50 pages of 1m bars cover more than a month.
const MAX_PAGES: usize = 50;
/// Pages one instrument list may read (Bybit linear pages by 1000).
const MAX_INSTRUMENT_PAGES: usize = 20;

/// One listed instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrument {
    pub symbol: Symbol,
    /// The venue's own word (`TRADING`, `BREAK`, `Trading`, `PreLaunch`, ...).
    pub status: String,
    /// Whether `status` means it trades now.
    pub trading: bool,
}

/// The REST API of one venue.
#[derive(Debug, Clone)]
pub struct Rest {
    http: reqwest::Client,
    venue: Venue,
    base: Url,
}

impl Rest {
    /// A client with a 10 s request timeout.
    pub fn new(venue: Venue, base: Url) -> Rest {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Rest::with_client(http, venue, base)
    }

    pub fn with_client(http: reqwest::Client, venue: Venue, base: Url) -> Rest {
        Rest { http, venue, base }
    }

    pub fn venue(&self) -> Venue {
        self.venue
    }

    /// The finest interval worth asking for over `span`: 1 s bars where the venue has them and
    /// the span is at most 30 minutes (two pages), else 1 m.
    pub fn backfill_interval(&self, span: time::Duration) -> Interval {
        if self.venue.finest_interval() == Interval::Second1 && span <= time::Duration::minutes(30)
        {
            Interval::Second1
        } else {
            Interval::Minute1
        }
    }

    /// Every bar of `interval` whose open time lies in `[from rounded down to the interval, to]`,
    /// oldest first, marked `backfilled`. Pages through the venue's `limit`.
    pub async fn klines(
        &self,
        symbol: &Symbol,
        interval: Interval,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<Bar>, MarketError> {
        const CALL: &str = "klines";
        let step = interval.millis();
        let end = to_millis(to);
        let mut start = to_millis(from).div_euclid(step) * step;
        let limit = self.venue.kline_page();
        let mut bars: Vec<Bar> = Vec::new();
        for _ in 0..MAX_PAGES {
            if start > end {
                break;
            }
            let page = if self.venue.is_binance() {
                let query = binance::klines_query(symbol, interval, start, end, limit);
                let body = self
                    .get(binance::klines_path(self.venue), &query, CALL)
                    .await?;
                binance::parse_klines(self.venue, symbol, interval, &body)
                    .map_err(|detail| self.decode(CALL, detail))?
            } else {
                let Some(code) = interval.bybit() else {
                    return Err(self.decode(CALL, format!("no {interval:?} klines")));
                };
                let query = bybit::klines_query(self.venue, symbol, code, start, end, limit);
                let body = self.get(bybit::KLINES_PATH, &query, CALL).await?;
                let result = self.bybit_result(body, CALL)?;
                bybit::parse_klines(self.venue, symbol, interval, &result)
                    .map_err(|detail| self.decode(CALL, detail))?
            };
            let full = page.len() >= limit as usize;
            let last = page.last().map(|b| to_millis(b.open_time));
            bars.extend(
                page.into_iter()
                    .filter(|b| (start..=end).contains(&to_millis(b.open_time))),
            );
            match last {
                Some(last) if full => start = last + step,
                _ => break,
            }
        }
        bars.dedup_by_key(|b| b.open_time);
        debug!(venue = %self.venue, %symbol, bars = bars.len(), "klines read");
        Ok(bars)
    }

    /// Every instrument the venue lists (Binance futures: perpetuals only).
    pub async fn instruments(&self) -> Result<Vec<Instrument>, MarketError> {
        const CALL: &str = "instruments";
        let rows: Vec<(String, String)> = if self.venue.is_binance() {
            let body = self
                .get(binance::exchange_info_path(self.venue), &[], CALL)
                .await?;
            binance::parse_exchange_info(self.venue, body)
                .map_err(|detail| self.decode(CALL, detail))?
        } else {
            let mut rows = Vec::new();
            let mut cursor: Option<String> = None;
            for _ in 0..MAX_INSTRUMENT_PAGES {
                let mut query = vec![
                    ("category", self.venue.bybit_category().to_owned()),
                    ("limit", "1000".to_owned()),
                ];
                if let Some(c) = cursor.take() {
                    query.push(("cursor", c));
                }
                let body = self.get(bybit::INSTRUMENTS_PATH, &query, CALL).await?;
                let result = self.bybit_result(body, CALL)?;
                let (page, next) =
                    bybit::parse_instruments(result).map_err(|detail| self.decode(CALL, detail))?;
                rows.extend(page);
                match next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            rows
        };
        let trading = if self.venue.is_binance() {
            binance::TRADING
        } else {
            bybit::TRADING
        };
        Ok(rows
            .into_iter()
            .filter_map(|(symbol, status)| {
                Some(Instrument {
                    symbol: Symbol::from_exchange(&symbol)?,
                    trading: status == trading,
                    status,
                })
            })
            .collect())
    }

    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        call: &'static str,
    ) -> Result<Value, MarketError> {
        let mut url = self.base.clone();
        let joined = format!("{}{}", self.base.path().trim_end_matches('/'), path);
        url.set_path(&joined);
        let http = |source| MarketError::Http {
            venue: self.venue,
            call,
            source,
        };
        let resp = self.http.get(url).query(query).send().await.map_err(http)?;
        let status = resp.status();
        let text = resp.text().await.map_err(http)?;
        let body: Option<Value> = serde_json::from_str(&text).ok();
        if status.is_success() {
            return body.ok_or_else(|| self.decode(call, format!("not JSON: {text:.200}")));
        }
        // Binance errors: `{"code": -1121, "msg": "Invalid symbol."}`.
        if let Some((code, msg)) = body
            .as_ref()
            .and_then(|b| Some((b.get("code")?.as_i64()?, b.get("msg")?.as_str()?.to_owned())))
        {
            return Err(MarketError::Exchange {
                venue: self.venue,
                call,
                code,
                message: msg,
            });
        }
        Err(MarketError::Status {
            venue: self.venue,
            call,
            status: status.as_u16(),
            body: text.chars().take(200).collect(),
        })
    }

    fn bybit_result(&self, body: Value, call: &'static str) -> Result<Value, MarketError> {
        match bybit::result(body).map_err(|detail| self.decode(call, detail))? {
            Ok(result) => Ok(result),
            Err((code, message)) => Err(MarketError::Exchange {
                venue: self.venue,
                call,
                code,
                message,
            }),
        }
    }

    fn decode(&self, call: &'static str, detail: String) -> MarketError {
        MarketError::Decode {
            venue: self.venue,
            call,
            detail,
        }
    }
}
