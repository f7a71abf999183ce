//! Plans: what a Sell.app product (or one of its variants) sells, and the Discord roles each
//! plan gives. Both come from the plan configuration ([`crate::entitlements::PlanConfig`]: the
//! plans file, or `SELLAPP_PLANS="3301:9001=vip,3301=basic"` and `PLAN_ROLES` without one). A
//! variant-specific entry wins over the product's; an unknown product grants nothing (the
//! caller records it as a failure).

use std::{
    collections::{HashMap, hash_map::Entry},
    fmt,
};

use crate::sellapp::LineItem;

/// A plan key such as `vip`: lower-case letters, digits, `-` and `_`, at most 64 chars.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Plan(String);

impl Plan {
    pub fn parse(raw: &str) -> Result<Self, PlanError> {
        let s = raw.trim();
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(PlanError::BadKey(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("`{0}` is not a plan key (use lower-case letters, digits, - and _)")]
    BadKey(String),
    #[error("`{0}` is not a plan mapping; expected PRODUCT[:VARIANT]=PLAN")]
    BadEntry(String),
    #[error("product {0} is mapped twice")]
    Duplicate(String),
}

/// Maps Sell.app product and variant ids to plans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanCatalog {
    by_variant: HashMap<(String, String), Plan>,
    by_product: HashMap<String, Plan>,
}

impl PlanCatalog {
    /// Parses `PRODUCT[:VARIANT]=PLAN` entries separated by commas (whitespace ignored).
    pub fn parse(spec: &str) -> Result<Self, PlanError> {
        let mut catalog = Self::default();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (ids, plan) = entry
                .split_once('=')
                .ok_or_else(|| PlanError::BadEntry(entry.to_owned()))?;
            let plan = Plan::parse(plan)?;
            catalog.insert(ids, plan).map_err(|e| match e {
                PlanError::BadEntry(_) => PlanError::BadEntry(entry.to_owned()),
                other => other,
            })?;
        }
        Ok(catalog)
    }

    /// Maps `ids` (`PRODUCT` or `PRODUCT:VARIANT`) to `plan`; refused when already mapped.
    pub(crate) fn insert(&mut self, ids: &str, plan: Plan) -> Result<(), PlanError> {
        let ids = ids.trim();
        let (product, variant) = match ids.split_once(':') {
            Some((p, v)) => (p.trim(), Some(v.trim())),
            None => (ids, None),
        };
        if product.is_empty() || variant.is_some_and(str::is_empty) {
            return Err(PlanError::BadEntry(ids.to_owned()));
        }
        let vacant = match variant {
            Some(v) => match self.by_variant.entry((product.to_owned(), v.to_owned())) {
                Entry::Vacant(e) => Some(e.insert(plan)),
                Entry::Occupied(_) => None,
            },
            None => match self.by_product.entry(product.to_owned()) {
                Entry::Vacant(e) => Some(e.insert(plan)),
                Entry::Occupied(_) => None,
            },
        };
        match vacant {
            Some(_) => Ok(()),
            None => Err(PlanError::Duplicate(ids.to_owned())),
        }
    }

    /// The plans some product sells, each once.
    pub fn plans(&self) -> Vec<&Plan> {
        let mut all: Vec<&Plan> = self
            .by_product
            .values()
            .chain(self.by_variant.values())
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    pub fn is_empty(&self) -> bool {
        self.by_variant.is_empty() && self.by_product.is_empty()
    }

    /// The plan one line item buys, if it is one of ours.
    pub fn plan_for(&self, item: &LineItem) -> Option<&Plan> {
        item.variant_id
            .as_ref()
            .and_then(|v| self.by_variant.get(&(item.product_id.clone(), v.clone())))
            .or_else(|| self.by_product.get(&item.product_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(product: &str, variant: Option<&str>) -> LineItem {
        LineItem {
            product_id: product.into(),
            variant_id: variant.map(Into::into),
            subscription_id: None,
        }
    }

    #[test]
    fn variant_wins_over_product() {
        let c = PlanCatalog::parse(" 3301:9001=vip , 3301=basic,42=pro").unwrap();
        assert_eq!(
            c.plan_for(&item("3301", Some("9001"))).map(Plan::as_str),
            Some("vip")
        );
        assert_eq!(
            c.plan_for(&item("3301", Some("9002"))).map(Plan::as_str),
            Some("basic")
        );
        assert_eq!(
            c.plan_for(&item("3301", None)).map(Plan::as_str),
            Some("basic")
        );
        assert_eq!(c.plan_for(&item("7", None)), None);
    }

    #[test]
    fn bad_configuration_is_refused_with_the_offending_entry() {
        assert_eq!(
            PlanCatalog::parse("3301"),
            Err(PlanError::BadEntry("3301".into()))
        );
        assert_eq!(
            PlanCatalog::parse("3301=VIP!"),
            Err(PlanError::BadKey("VIP!".into()))
        );
        assert_eq!(
            PlanCatalog::parse("1=a,1=b"),
            Err(PlanError::Duplicate("1".into()))
        );
        assert_eq!(
            PlanCatalog::parse(":5=a"),
            Err(PlanError::BadEntry(":5=a".into()))
        );
        assert!(PlanCatalog::parse("").unwrap().is_empty());
    }
}

/// Which Discord roles each plan gives, configured as `PLAN_ROLES="vip=111|222,basic=333"`.
/// The bot manages exactly the roles named here and never touches any other.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanRoles {
    roles: Vec<(Plan, Vec<String>)>,
}

impl PlanRoles {
    pub fn parse(spec: &str) -> Result<Self, PlanError> {
        let mut out = Self::default();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (plan, roles) = entry
                .split_once('=')
                .ok_or_else(|| PlanError::BadEntry(entry.to_owned()))?;
            let plan = Plan::parse(plan)?;
            let roles: Vec<String> = roles.split('|').map(|r| r.trim().to_owned()).collect();
            if roles.is_empty() || !roles.iter().all(|r| crate::Snowflake::is_valid(r)) {
                return Err(PlanError::BadEntry(entry.to_owned()));
            }
            if out.roles.iter().any(|(p, _)| *p == plan) {
                return Err(PlanError::Duplicate(plan.to_string()));
            }
            out.roles.push((plan, roles));
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }

    /// Adds the roles of one plan (not already present; `roles` already checked).
    pub(crate) fn push(&mut self, plan: Plan, roles: Vec<String>) {
        self.roles.push((plan, roles));
    }

    /// The plans that give roles, in configuration order.
    pub fn plans(&self) -> impl Iterator<Item = &Plan> {
        self.roles.iter().map(|(p, _)| p)
    }

    /// Every role we manage, each once.
    pub fn managed(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .roles
            .iter()
            .flat_map(|(_, r)| r.iter().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The roles that the given active plans give.
    pub fn roles_for<'a>(&self, plans: impl IntoIterator<Item = &'a str>) -> Vec<&str> {
        let plans: Vec<&str> = plans.into_iter().collect();
        let mut out: Vec<&str> = self
            .roles
            .iter()
            .filter(|(p, _)| plans.contains(&p.as_str()))
            .flat_map(|(_, r)| r.iter().map(String::as_str))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod role_tests {
    use super::*;

    #[test]
    fn roles_parse_and_resolve() {
        let r = PlanRoles::parse("vip=111|222, basic=333").unwrap();
        assert_eq!(r.managed(), vec!["111", "222", "333"]);
        assert_eq!(r.roles_for(["vip"]), vec!["111", "222"]);
        assert_eq!(r.roles_for(["basic", "vip"]), vec!["111", "222", "333"]);
        assert!(r.roles_for(["pro"]).is_empty());
        assert!(PlanRoles::parse("vip=abc").is_err());
        assert!(PlanRoles::parse("vip=1,vip=2").is_err());
        assert!(PlanRoles::parse("").unwrap().is_empty());
    }
}
