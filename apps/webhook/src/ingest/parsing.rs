//! The parsed trade of a signal document, from its content and raw embeds, through the pure
//! parser in `g3_core::signal`. Text that is not a trade leaves every field empty.

use g3_core::signal::{self, Embed, Parsed};
use g3_store::models::Side;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Extracted {
    pub pair: Option<String>,
    pub side: Option<Side>,
    pub entries: Vec<f64>,
    pub targets: Vec<f64>,
    pub stop: Option<f64>,
    pub leverage: Option<f64>,
    pub flags: Vec<String>,
}

pub fn extract(content: &str, embeds_json: Option<&str>) -> Extracted {
    let embeds = embeds_json
        .and_then(|e| serde_json::from_str::<serde_json::Value>(e).ok())
        .map(|v| Embed::from_discord_json(&v))
        .unwrap_or_default();
    match signal::parse(content, &embeds) {
        Parsed::Post => Extracted::default(),
        Parsed::Signal(p) => {
            let mut flags: Vec<String> = p.flags.iter().map(|f| f.as_str().to_owned()).collect();
            if p.side_inferred {
                flags.push("side_inferred".to_owned());
            }
            Extracted {
                pair: Some(p.pair),
                side: Some(match p.side {
                    signal::Side::Long => Side::Long,
                    signal::Side::Short => Side::Short,
                }),
                entries: p.entries,
                targets: p.targets,
                stop: p.stop,
                leverage: p.leverage,
                flags,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trades_and_posts() {
        let t = extract(
            "#BTC/USDT LONG\nEntry: 100 - 105\nTargets: 110, 120\nStop: 95\nLeverage: 10x",
            None,
        );
        assert_eq!(t.pair.as_deref(), Some("BTC/USDT"));
        assert_eq!(t.side, Some(Side::Long));
        assert_eq!(t.stop, Some(95.0));
        assert_eq!(extract("good morning traders", None), Extracted::default());
    }
}
