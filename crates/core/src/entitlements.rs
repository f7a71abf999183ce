//! The plan configuration and what it entitles a customer to. [`PlanConfig`] is the one source
//! of truth every service loads at start: per plan its display name, price, benefits, buy link,
//! the Sell.app products that sell it, the Discord roles it gives and the feed routes it
//! unlocks. [`Entitlement`] is what a viewer may see: the union of their active plans' routes.
//!
//! It is written as a TOML file (`PLANS_FILE`), plans in the order the paywall lists them:
//!
//! ```toml
//! [plans.basic]
//! name = "Basic"
//! price = "$19 / month"
//! benefits = ["Scalp calls", "Live web feed"]
//! buy_url = "https://example.sell.app/product/basic?email={email}"
//! products = ["3301"]            # Sell.app PRODUCT or PRODUCT:VARIANT
//! roles = ["1400000000000000013"] # Discord role ids
//! routes = ["scalps"]             # route keys, or ["*"] for every route
//! ```
//!
//! Without a file, `SELLAPP_PLANS` and `PLAN_ROLES` still work as they always did: then plans
//! have no description and every plan unlocks every route. Both at once are refused.
//!
//! Which plans a customer holds travels with their `paid` team membership: its roles are their
//! active plan keys ([`membership_roles`]), so a request that reads the membership (as every
//! feed request does) knows the plans without another read. Only team owners can change
//! membership roles, so a customer cannot grant themself a plan.

use std::{collections::BTreeSet, fmt};

use serde::{Deserialize, Deserializer, de};

use crate::{
    Snowflake,
    plans::{Plan, PlanCatalog, PlanError, PlanRoles},
};

/// The route "key" that stands for every route in `routes = ["*"]`.
pub const EVERY_ROUTE: &str = "*";
/// Longest Appwrite team role (1.8: 32 characters).
const MEMBERSHIP_ROLE_MAX: usize = 32;
/// The team role Appwrite gives team managers: never a plan.
const OWNER_ROLE: &str = "owner";

/// Why the plan configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanConfigError {
    #[error("not a valid plans file: {0}")]
    Syntax(String),
    #[error("the plans file defines no plan (add a [plans.KEY] table)")]
    NoPlans,
    #[error("plan `{plan}`: {problem}")]
    Plan { plan: String, problem: String },
    #[error("product {product} is sold by two plans (`{first}` and `{second}`)")]
    ProductTwice {
        product: String,
        first: String,
        second: String,
    },
    #[error("{0}")]
    Spec(#[from] PlanError),
    /// Two settings describe the plans at once.
    #[error(
        "is set together with PLANS_FILE: the plans file names each plan's {what}; \
         remove {setting} (or PLANS_FILE)"
    )]
    Conflict {
        setting: &'static str,
        what: &'static str,
    },
}

/// A problem with the plan settings, and the setting it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}")]
pub struct SettingError {
    /// `PLANS_FILE`, `SELLAPP_PLANS` or `PLAN_ROLES`.
    pub setting: &'static str,
    pub problem: PlanConfigError,
}

/// The plan settings as a service read them; `None` or blank means "not set".
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanSources<'a> {
    /// The contents of `PLANS_FILE`.
    pub file: Option<&'a str>,
    /// `SELLAPP_PLANS`.
    pub sellapp_plans: Option<&'a str>,
    /// `PLAN_ROLES`.
    pub plan_roles: Option<&'a str>,
}

/// The routes one plan unlocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlocks {
    /// Every route, present and future.
    Every,
    /// These route keys (sorted, each once); empty for none.
    Routes(Vec<String>),
}

static EVERY: Unlocks = Unlocks::Every;
static NOTHING: Unlocks = Unlocks::Routes(Vec::new());

impl fmt::Display for Unlocks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unlocks::Every => f.write_str("every route"),
            Unlocks::Routes(r) if r.is_empty() => f.write_str("no route"),
            Unlocks::Routes(r) => f.write_str(&r.join(", ")),
        }
    }
}

/// A buy link; `{email}` in it is replaced by the buyer's email, URL-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuyUrl(String);

impl BuyUrl {
    const PLACEHOLDER: &'static str = "{email}";

    /// An `http(s)` URL whose only placeholder is `{email}`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let sample = raw.replace(Self::PLACEHOLDER, "buyer%40example.com");
        if sample.contains(['{', '}']) {
            return Err(format!(
                "buy_url {raw:?} has a placeholder other than {}",
                Self::PLACEHOLDER
            ));
        }
        match url::Url::parse(&sample) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                Ok(Self(raw.to_owned()))
            }
            Ok(_) => Err(format!("buy_url {raw:?} is not an http(s) URL")),
            Err(e) => Err(format!("buy_url {raw:?} is not a URL: {e}")),
        }
    }

    /// Whether the link carries the buyer's email (has `{email}`).
    pub fn carries_email(&self) -> bool {
        self.0.contains(Self::PLACEHOLDER)
    }

    /// The link for a buyer: `{email}` replaced by `email`, URL-encoded (empty when unknown).
    pub fn for_email(&self, email: Option<&str>) -> String {
        let encoded: String = email
            .map(|e| url::form_urlencoded::byte_serialize(e.as_bytes()).collect())
            .unwrap_or_default();
        self.0.replace(Self::PLACEHOLDER, &encoded)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One plan as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanInfo {
    pub plan: Plan,
    /// What customers read, e.g. "VIP".
    pub name: String,
    /// Free text, e.g. "$49 / month".
    pub price: Option<String>,
    pub benefits: Vec<String>,
    pub buy_url: Option<BuyUrl>,
    /// Sell.app `PRODUCT` or `PRODUCT:VARIANT` ids that sell it.
    pub products: Vec<String>,
    /// Discord role ids it gives.
    pub roles: Vec<String>,
    pub unlocks: Unlocks,
}

/// What a viewer may see in the feed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Entitlement {
    /// Every route (staff, and paid customers when plans name no routes).
    Everything,
    /// Only these route keys; empty: nothing at all.
    Routes(BTreeSet<String>),
}

impl Entitlement {
    pub fn nothing() -> Self {
        Entitlement::Routes(BTreeSet::new())
    }

    pub fn allows(&self, route: &str) -> bool {
        match self {
            Entitlement::Everything => true,
            Entitlement::Routes(r) => r.contains(route),
        }
    }

    /// Whether nothing at all can be seen.
    pub fn is_nothing(&self) -> bool {
        matches!(self, Entitlement::Routes(r) if r.is_empty())
    }

    /// The routes to limit a query to, or `None` for no limit.
    pub fn routes(&self) -> Option<&BTreeSet<String>> {
        match self {
            Entitlement::Everything => None,
            Entitlement::Routes(r) => Some(r),
        }
    }
}

impl fmt::Display for Entitlement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entitlement::Everything => f.write_str("every route"),
            Entitlement::Routes(r) if r.is_empty() => f.write_str("nothing"),
            Entitlement::Routes(r) => {
                f.write_str(&r.iter().map(String::as_str).collect::<Vec<_>>().join(", "))
            }
        }
    }
}

/// The plans: who buys what (`catalog`), which roles each gives (`roles`), what each unlocks
/// and how it is sold. `Default` is the configuration of nothing set (no product, no role, and
/// every plan unlocks every route).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanConfig {
    /// Described plans in file order (none without a file).
    plans: Vec<PlanInfo>,
    catalog: PlanCatalog,
    roles: PlanRoles,
    /// From `SELLAPP_PLANS`/`PLAN_ROLES` alone: every plan unlocks every route.
    every_plan_unlocks_all: bool,
}

impl Default for PlanConfig {
    fn default() -> Self {
        Self {
            plans: Vec::new(),
            catalog: PlanCatalog::default(),
            roles: PlanRoles::default(),
            every_plan_unlocks_all: true,
        }
    }
}

/// One `[plans.KEY]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanSpec {
    name: String,
    price: Option<String>,
    #[serde(default)]
    benefits: Vec<String>,
    buy_url: Option<String>,
    #[serde(default)]
    products: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
    routes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    plans: Ordered,
}

/// The `[plans.*]` tables in the order they are written.
struct Ordered(Vec<(String, PlanSpec)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Tables;
        impl<'de> de::Visitor<'de> for Tables {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("one [plans.KEY] table per plan")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, PlanSpec>()? {
                    out.push(entry);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(Tables)
    }
}

/// A text field: trimmed, not empty, at most `max` characters.
fn text(plan: &str, field: &str, raw: &str, max: usize) -> Result<String, PlanConfigError> {
    let t = raw.trim();
    if t.is_empty() || t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(problem(
            plan,
            format!("{field} must be 1 to {max} characters of text on one line"),
        ));
    }
    Ok(t.to_owned())
}

fn problem(plan: &str, problem: impl Into<String>) -> PlanConfigError {
    PlanConfigError::Plan {
        plan: plan.to_owned(),
        problem: problem.into(),
    }
}

/// A route key as the `routes` collection names them (its document ids).
fn is_route_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 36
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Whether `plan` can travel as a `paid` membership role.
fn is_membership_role(plan: &str) -> bool {
    Plan::parse(plan).is_ok() && plan.len() <= MEMBERSHIP_ROLE_MAX && plan != OWNER_ROLE
}

/// The `paid` membership roles that record `active` plans: sorted, each once. A plan key that
/// cannot be a team role (longer than Appwrite allows, or `owner`) is left out.
pub fn membership_roles<'a>(active: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut roles: Vec<String> = active
        .into_iter()
        .filter(|p| is_membership_role(p))
        .map(str::to_owned)
        .collect();
    roles.sort_unstable();
    roles.dedup();
    roles
}

/// The plans recorded in `paid` membership roles (anything else is ignored).
pub fn plans_in_membership(roles: &[String]) -> impl Iterator<Item = &str> {
    roles
        .iter()
        .map(String::as_str)
        .filter(|r| is_membership_role(r))
}

impl PlanSpec {
    fn check(self, key: &str, catalog: &mut PlanCatalog) -> Result<PlanInfo, PlanConfigError> {
        let plan = Plan::parse(key)?;
        if !is_membership_role(key) {
            return Err(problem(
                key,
                format!(
                    "a plan key must be at most {MEMBERSHIP_ROLE_MAX} characters and not \
                     `{OWNER_ROLE}` (it is recorded as a team role)"
                ),
            ));
        }
        let name = text(key, "name", &self.name, 64)?;
        let price = self
            .price
            .as_deref()
            .map(|p| text(key, "price", p, 64))
            .transpose()?;
        if self.benefits.len() > 20 {
            return Err(problem(key, "at most 20 benefits"));
        }
        let benefits = self
            .benefits
            .iter()
            .map(|b| text(key, "a benefit", b, 200))
            .collect::<Result<_, _>>()?;
        let buy_url = self
            .buy_url
            .as_deref()
            .map(BuyUrl::parse)
            .transpose()
            .map_err(|p| problem(key, p))?;
        let mut products = Vec::new();
        for ids in &self.products {
            let ids = ids.trim();
            match catalog.insert(ids, plan.clone()) {
                Ok(()) => products.push(ids.to_owned()),
                Err(PlanError::Duplicate(product)) => {
                    return Err(PlanConfigError::ProductTwice {
                        first: catalog_owner(catalog, ids).unwrap_or_default(),
                        product,
                        second: key.to_owned(),
                    });
                }
                Err(_) => {
                    return Err(problem(
                        key,
                        format!("product {ids:?} is not PRODUCT or PRODUCT:VARIANT"),
                    ));
                }
            }
        }
        let mut roles = Vec::new();
        for role in &self.roles {
            let role = role.trim();
            if !Snowflake::is_valid(role) {
                return Err(problem(
                    key,
                    format!("role {role:?} is not a Discord role id"),
                ));
            }
            if !roles.iter().any(|r| r == role) {
                roles.push(role.to_owned());
            }
        }
        let unlocks = if self.routes.iter().any(|r| r.trim() == EVERY_ROUTE) {
            if self.routes.len() > 1 {
                return Err(problem(
                    key,
                    "routes: \"*\" (every route) cannot be listed with other routes",
                ));
            }
            Unlocks::Every
        } else {
            let mut routes = Vec::new();
            for route in &self.routes {
                let route = route.trim();
                if !is_route_key(route) {
                    return Err(problem(
                        key,
                        format!("route {route:?} is not a route key (or \"*\" for every route)"),
                    ));
                }
                routes.push(route.to_owned());
            }
            routes.sort_unstable();
            routes.dedup();
            Unlocks::Routes(routes)
        };
        Ok(PlanInfo {
            plan,
            name,
            price,
            benefits,
            buy_url,
            products,
            roles,
            unlocks,
        })
    }
}

/// The plan a product is already mapped to, for the error that names both.
fn catalog_owner(catalog: &PlanCatalog, ids: &str) -> Option<String> {
    let (product, variant) = match ids.split_once(':') {
        Some((p, v)) => (p.trim(), Some(v.trim())),
        None => (ids, None),
    };
    catalog
        .plan_for(&crate::sellapp::LineItem {
            product_id: product.to_owned(),
            variant_id: variant.map(str::to_owned),
            subscription_id: None,
        })
        .map(ToString::to_string)
}

impl PlanConfig {
    /// The plans file.
    pub fn from_toml(text: &str) -> Result<Self, PlanConfigError> {
        let file: FileSpec = toml::from_str(text)
            .map_err(|e| PlanConfigError::Syntax(e.to_string().trim_end().to_owned()))?;
        if file.plans.0.is_empty() {
            return Err(PlanConfigError::NoPlans);
        }
        let mut catalog = PlanCatalog::default();
        let mut roles = PlanRoles::default();
        let mut plans = Vec::new();
        for (key, spec) in file.plans.0 {
            let info = spec.check(&key, &mut catalog)?;
            if !info.roles.is_empty() {
                roles.push(info.plan.clone(), info.roles.clone());
            }
            plans.push(info);
        }
        Ok(Self {
            plans,
            catalog,
            roles,
            every_plan_unlocks_all: false,
        })
    }

    /// `SELLAPP_PLANS` and `PLAN_ROLES` without a file: no descriptions, every plan unlocks
    /// every route.
    pub fn from_specs(sellapp_plans: &str, plan_roles: &str) -> Result<Self, SettingError> {
        let catalog = PlanCatalog::parse(sellapp_plans).map_err(|e| SettingError {
            setting: "SELLAPP_PLANS",
            problem: e.into(),
        })?;
        let roles = PlanRoles::parse(plan_roles).map_err(|e| SettingError {
            setting: "PLAN_ROLES",
            problem: e.into(),
        })?;
        Ok(Self {
            catalog,
            roles,
            ..Self::default()
        })
    }

    /// The plan settings of a service: the file, or else `SELLAPP_PLANS` and `PLAN_ROLES`;
    /// the file together with either is refused.
    pub fn from_sources(sources: PlanSources<'_>) -> Result<Self, SettingError> {
        fn given(v: Option<&str>) -> Option<&str> {
            v.map(str::trim).filter(|v| !v.is_empty())
        }
        let (sellapp, roles) = (given(sources.sellapp_plans), given(sources.plan_roles));
        let Some(file) = sources.file else {
            return Self::from_specs(sellapp.unwrap_or(""), roles.unwrap_or(""));
        };
        let conflict = [
            (sellapp, "SELLAPP_PLANS", "products"),
            (roles, "PLAN_ROLES", "Discord roles"),
        ]
        .into_iter()
        .find_map(|(v, setting, what)| v.map(|_| (setting, what)));
        if let Some((setting, what)) = conflict {
            return Err(SettingError {
                setting,
                problem: PlanConfigError::Conflict { setting, what },
            });
        }
        Self::from_toml(file).map_err(|problem| SettingError {
            setting: "PLANS_FILE",
            problem,
        })
    }

    /// Sell.app products to plans.
    pub fn catalog(&self) -> &PlanCatalog {
        &self.catalog
    }

    /// The Discord roles each plan gives.
    pub fn roles(&self) -> &PlanRoles {
        &self.roles
    }

    /// The described plans, in the order to show them (none without a plans file).
    pub fn plans(&self) -> &[PlanInfo] {
        &self.plans
    }

    pub fn get(&self, plan: &str) -> Option<&PlanInfo> {
        self.plans.iter().find(|p| p.plan.as_str() == plan)
    }

    /// Whether plans name the routes they unlock (a plans file); otherwise any plan unlocks
    /// every route.
    pub fn has_routes(&self) -> bool {
        !self.every_plan_unlocks_all
    }

    /// What `plan` unlocks: a plan the file does not describe unlocks nothing.
    pub fn unlocks(&self, plan: &str) -> &Unlocks {
        if self.every_plan_unlocks_all {
            return &EVERY;
        }
        self.get(plan).map_or(&NOTHING, |p| &p.unlocks)
    }

    /// What a customer holding the `active` plans may see: the union of what they unlock.
    pub fn entitlement<'a>(&self, active: impl IntoIterator<Item = &'a str>) -> Entitlement {
        let mut routes = BTreeSet::new();
        for plan in active {
            match self.unlocks(plan) {
                Unlocks::Every => return Entitlement::Everything,
                Unlocks::Routes(r) => routes.extend(r.iter().cloned()),
            }
        }
        Entitlement::Routes(routes)
    }

    /// The display name of `plan`: the configured one, else the key.
    pub fn name_of<'a>(&'a self, plan: &'a str) -> &'a str {
        self.get(plan).map_or(plan, |p| p.name.as_str())
    }

    /// Gives the plans `roles` instead of their own (devstack pairs its demo plans with the
    /// roles of whichever Discord it runs against).
    pub fn with_roles(mut self, roles: PlanRoles) -> Self {
        for info in &mut self.plans {
            info.roles = roles
                .roles_for([info.plan.as_str()])
                .into_iter()
                .map(str::to_owned)
                .collect();
        }
        self.roles = roles;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sellapp::LineItem;

    const FILE: &str = r#"
# Cheapest first: the paywall keeps this order.
[plans.basic]
name = "Basic"
price = "$19 / month"
benefits = ["Scalp calls", "Live web feed"]
buy_url = "https://shop.example/basic?email={email}"
products = ["3301"]
roles = ["333"]
routes = ["scalps"]

[plans.vip]
name = "VIP"
price = "$49 / month"
benefits = ["Every call"]
buy_url = "https://shop.example/vip"
products = ["3301:9001", "42"]
roles = ["111", "222"]
routes = ["vip-calls", "scalps"]

[plans.all-access]
name = "All access"
routes = ["*"]
"#;

    fn item(product: &str, variant: Option<&str>) -> LineItem {
        LineItem {
            product_id: product.into(),
            variant_id: variant.map(Into::into),
            subscription_id: None,
        }
    }

    fn err(text: &str) -> String {
        PlanConfig::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn a_plans_file_describes_sells_gives_roles_and_unlocks_routes() {
        let c = PlanConfig::from_toml(FILE).unwrap();
        let keys: Vec<&str> = c.plans().iter().map(|p| p.plan.as_str()).collect();
        assert_eq!(keys, ["basic", "vip", "all-access"], "file order kept");
        let vip = c.get("vip").unwrap();
        assert_eq!(vip.name, "VIP");
        assert_eq!(vip.price.as_deref(), Some("$49 / month"));
        assert_eq!(vip.benefits, ["Every call"]);
        assert_eq!(
            vip.unlocks,
            Unlocks::Routes(vec!["scalps".into(), "vip-calls".into()])
        );
        assert!(c.has_routes());
        // Products: the variant wins over the product, as with SELLAPP_PLANS.
        let plan = |p, v| c.catalog().plan_for(&item(p, v)).map(Plan::as_str);
        assert_eq!(plan("3301", Some("9001")), Some("vip"));
        assert_eq!(plan("3301", Some("1")), Some("basic"));
        assert_eq!(plan("42", None), Some("vip"));
        assert_eq!(plan("7", None), None);
        // Roles come from the same file.
        assert_eq!(c.roles().managed(), vec!["111", "222", "333"]);
        assert_eq!(c.roles().roles_for(["basic"]), vec!["333"]);
        assert!(c.roles().roles_for(["all-access"]).is_empty());
    }

    #[test]
    fn entitlement_is_the_union_of_the_active_plans_routes() {
        let c = PlanConfig::from_toml(FILE).unwrap();
        let routes = |r: &[&str]| Entitlement::Routes(r.iter().map(|s| s.to_string()).collect());
        assert_eq!(c.entitlement([]), Entitlement::nothing());
        assert!(c.entitlement([]).is_nothing());
        assert_eq!(c.entitlement(["basic"]), routes(&["scalps"]));
        assert_eq!(
            c.entitlement(["basic", "vip"]),
            routes(&["scalps", "vip-calls"])
        );
        assert_eq!(
            c.entitlement(["vip", "all-access"]),
            Entitlement::Everything
        );
        assert_eq!(
            c.entitlement(["unknown"]),
            Entitlement::nothing(),
            "undescribed plan"
        );
        let basic = c.entitlement(["basic"]);
        assert!(basic.allows("scalps") && !basic.allows("vip-calls"));
        assert!(Entitlement::Everything.allows("anything"));
        assert_eq!(basic.to_string(), "scalps");
    }

    #[test]
    fn without_a_file_every_plan_unlocks_everything_as_before() {
        let c = PlanConfig::from_specs("3301:9001=vip,3301=basic", "vip=111|222").unwrap();
        assert!(!c.has_routes());
        assert!(c.plans().is_empty(), "nothing to describe");
        assert_eq!(c.entitlement(["basic"]), Entitlement::Everything);
        assert_eq!(c.entitlement(["pro"]), Entitlement::Everything);
        assert_eq!(c.entitlement([]), Entitlement::nothing());
        assert_eq!(c.roles().managed(), vec!["111", "222"]);
        assert_eq!(
            c.catalog().plan_for(&item("3301", None)).map(Plan::as_str),
            Some("basic")
        );
        assert_eq!(
            PlanConfig::default().entitlement(["x"]),
            Entitlement::Everything
        );
        assert_eq!(c.name_of("vip"), "vip");
    }

    #[test]
    fn sources_take_the_file_or_the_specs_and_refuse_both() {
        let file = PlanConfig::from_sources(PlanSources {
            file: Some(FILE),
            sellapp_plans: Some("  "),
            plan_roles: None,
        })
        .unwrap();
        assert!(file.has_routes());
        let specs = PlanConfig::from_sources(PlanSources {
            file: None,
            sellapp_plans: Some("1=vip"),
            plan_roles: Some("vip=5"),
        })
        .unwrap();
        assert!(!specs.has_routes());
        assert!(PlanConfig::from_sources(PlanSources::default()).unwrap() == PlanConfig::default());

        let both = PlanConfig::from_sources(PlanSources {
            file: Some(FILE),
            sellapp_plans: Some("1=vip"),
            plan_roles: None,
        })
        .unwrap_err();
        assert_eq!(both.setting, "SELLAPP_PLANS");
        assert!(
            both.to_string().contains("together with PLANS_FILE"),
            "{both}"
        );
        let roles = PlanConfig::from_sources(PlanSources {
            file: Some(FILE),
            sellapp_plans: None,
            plan_roles: Some("vip=1"),
        })
        .unwrap_err();
        assert_eq!(roles.setting, "PLAN_ROLES");
        assert!(roles.to_string().contains("Discord roles"), "{roles}");

        let bad_file = PlanConfig::from_sources(PlanSources {
            file: Some("plans = 3"),
            ..PlanSources::default()
        })
        .unwrap_err();
        assert_eq!(bad_file.setting, "PLANS_FILE");
        let bad_spec = PlanConfig::from_sources(PlanSources {
            plan_roles: Some("vip=abc"),
            ..PlanSources::default()
        })
        .unwrap_err();
        assert_eq!(bad_spec.setting, "PLAN_ROLES");
    }

    #[test]
    fn bad_files_are_refused_naming_the_plan_and_the_problem() {
        assert!(err("[plans.vip\nname=").starts_with("not a valid plans file"));
        assert_eq!(err("plans = {}"), PlanConfigError::NoPlans.to_string());
        assert!(
            err("").starts_with("not a valid plans file"),
            "plans is required"
        );
        // A typo in a field name is an error, not a silently ignored line.
        let e = err("[plans.vip]\nname = \"VIP\"\nroute = [\"a\"]");
        assert!(e.contains("route"), "{e}");
        let e = err("[plans.vip]\nname = \"VIP\"");
        assert!(e.contains("routes"), "routes are required: {e}");
        let e = err("[plans.VIP]\nname = \"VIP\"\nroutes = []");
        assert!(e.contains("VIP") && e.contains("plan key"), "{e}");
        let e = err("[plans.owner]\nname = \"O\"\nroutes = []");
        assert!(e.starts_with("plan `owner`"), "{e}");
        let e = err("[plans.vip]\nname = \"  \"\nroutes = []");
        assert_eq!(
            e,
            "plan `vip`: name must be 1 to 64 characters of text on one line"
        );
        let e = err("[plans.vip]\nname = \"V\"\nroles = [\"abc\"]\nroutes = []");
        assert_eq!(e, "plan `vip`: role \"abc\" is not a Discord role id");
        let e = err("[plans.vip]\nname = \"V\"\nroutes = [\"a b\"]");
        assert!(e.contains("\"a b\" is not a route key"), "{e}");
        let e = err("[plans.vip]\nname = \"V\"\nroutes = [\"*\", \"a\"]");
        assert!(e.contains("cannot be listed with other routes"), "{e}");
        let e = err("[plans.vip]\nname = \"V\"\nproducts = [\"1:\"]\nroutes = []");
        assert!(e.contains("PRODUCT:VARIANT"), "{e}");
        let e = err("[plans.vip]\nname = \"V\"\nbuy_url = \"ftp://x\"\nroutes = []");
        assert!(e.contains("not an http(s) URL"), "{e}");
        let e = err("[plans.vip]\nname = \"V\"\nbuy_url = \"https://x/{mail}\"\nroutes = []");
        assert!(e.contains("placeholder"), "{e}");
        let e = err("[plans.a]\nname = \"A\"\nproducts = [\"1\"]\nroutes = []\n\
             [plans.b]\nname = \"B\"\nproducts = [\"1\"]\nroutes = []");
        assert_eq!(e, "product 1 is sold by two plans (`a` and `b`)");
    }

    #[test]
    fn buy_links_carry_the_email_url_encoded() {
        let u = BuyUrl::parse("https://shop.example/p?email={email}&x=1").unwrap();
        assert!(u.carries_email());
        assert_eq!(
            u.for_email(Some("a+b@c.d")),
            "https://shop.example/p?email=a%2Bb%40c.d&x=1"
        );
        assert_eq!(u.for_email(None), "https://shop.example/p?email=&x=1");
        let plain = BuyUrl::parse(" https://shop.example/p ").unwrap();
        assert!(!plain.carries_email());
        assert_eq!(plain.for_email(Some("a@b.c")), "https://shop.example/p");
        assert!(BuyUrl::parse("javascript:alert(1)").is_err());
        assert!(BuyUrl::parse("not a url").is_err());
    }

    #[test]
    fn plans_travel_as_membership_roles() {
        let long = "a".repeat(33);
        let roles = membership_roles(["vip", "basic", "vip", "owner", long.as_str(), "Bad!"]);
        assert_eq!(roles, ["basic", "vip"]);
        let held = vec!["vip".to_owned(), "owner".to_owned(), "x y".to_owned()];
        assert_eq!(plans_in_membership(&held).collect::<Vec<_>>(), ["vip"]);
    }

    #[test]
    fn devstack_can_pair_the_plans_with_other_roles() {
        let c = PlanConfig::from_toml(FILE)
            .unwrap()
            .with_roles(PlanRoles::parse("vip=9").unwrap());
        assert_eq!(c.get("vip").unwrap().roles, ["9"]);
        assert!(c.get("basic").unwrap().roles.is_empty());
        assert_eq!(c.roles().managed(), vec!["9"]);
    }
}
