//! The pairs the feed's pair filter suggests: every pair seen in a signal, per route, so a
//! member is only offered pairs from the routes their plans unlock. Filled by the live
//! publisher (the newest signals at its first connect, then every change it hears).

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use g3_core::entitlements::Entitlement;

/// Suggestions shown at most (the most common trading pairs fit many times over).
pub const SUGGESTIONS_MAX: usize = 300;

/// Pairs kept per route at most: a bound against a flood of junk pairs.
const PER_ROUTE_MAX: usize = 2_000;

#[derive(Default)]
pub struct KnownPairs(Mutex<Known>);

#[derive(Default)]
struct Known {
    routes: HashMap<String, BTreeSet<String>>,
    /// What [`KnownPairs::visible`] answered per set of routes, until a new pair arrives.
    answers: HashMap<Entitlement, Arc<[String]>>,
}

impl KnownPairs {
    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, route: &str, pair: &str) {
        let pair = pair.trim();
        if pair.is_empty() || pair.len() > 32 {
            return;
        }
        let mut known = self.lock();
        let pairs = known.routes.entry(route.to_owned()).or_default();
        if pairs.len() < PER_ROUTE_MAX && !pairs.contains(pair) {
            pairs.insert(pair.to_owned());
            known.answers.clear();
        }
    }

    /// The pairs of the routes `sees` allows, sorted, without repeats.
    pub fn visible(&self, sees: &Entitlement) -> Arc<[String]> {
        let mut known = self.lock();
        if let Some(answer) = known.answers.get(sees) {
            return answer.clone();
        }
        let all: BTreeSet<&String> = known
            .routes
            .iter()
            .filter(|(route, _)| sees.allows(route))
            .flat_map(|(_, pairs)| pairs)
            .collect();
        let answer: Arc<[String]> = all.into_iter().take(SUGGESTIONS_MAX).cloned().collect();
        known.answers.insert(sees.clone(), answer.clone());
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_only_the_pairs_of_visible_routes_once_each() {
        let known = KnownPairs::default();
        known.add("scalps", "BTC/USDT");
        known.add("scalps", "ETH/USDT");
        known.add("vip-calls", "BTC/USDT");
        known.add("vip-calls", "SOL/USDT");
        known.add("vip-calls", " ");
        let basic = Entitlement::Routes(["scalps".to_owned()].into());
        assert_eq!(*known.visible(&basic), ["BTC/USDT", "ETH/USDT"]);
        assert_eq!(
            *known.visible(&Entitlement::Everything),
            ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
        );
        known.add("scalps", "ADA/USDT");
        assert_eq!(
            *known.visible(&basic),
            ["ADA/USDT", "BTC/USDT", "ETH/USDT"],
            "a new pair is offered at once"
        );
        assert!(known.visible(&Entitlement::nothing()).is_empty());
    }
}
