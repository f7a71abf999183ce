//! Every page as an askama template struct. Templates live in `templates/`; signal cards come
//! from one partial (`partials/signal.html`), rendered once per version by `card::CardCache`
//! for pages and live fragments alike, and each card's outcome status from `outcome.html`,
//! rendered once per outcome version by `outcomes::OutcomeBook`. Escaping is on everywhere; the
//! only `|safe` output is `*_html` fields made by `markdown` (and the rules page's, converted
//! from our own document), the cached cards and statuses, themselves rendered here, and the
//! equity curves from `g3_outcomes::svg`, which escapes every text it writes.

use askama::Template;

/// What the base layout needs: the title, the CSRF token for the sign-out form, who is in.
pub struct Layout {
    pub title: String,
    pub csrf: String,
    pub signed_in: bool,
    /// The navigation offers the admin console.
    pub staff: bool,
}

impl Layout {
    pub fn new(title: &str, csrf: &str, signed_in: bool) -> Self {
        Self {
            title: title.to_owned(),
            csrf: csrf.to_owned(),
            signed_in,
            staff: false,
        }
    }

    /// For a viewer who is staff: the navigation links the admin console.
    pub fn staff(mut self, staff: bool) -> Self {
        self.staff = staff;
        self
    }

    /// For error pages, which know nothing of the visitor.
    pub fn bare(title: &str) -> Self {
        Self::new(title, "", false)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub layout: Layout,
    pub status: u16,
    pub heading: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "signup.html")]
pub struct SignUpPage {
    pub layout: Layout,
    pub email: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "signin.html")]
pub struct SignInPage {
    pub layout: Layout,
    pub email: String,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "code_request.html")]
pub struct CodeRequestPage {
    pub layout: Layout,
    pub email: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "code_enter.html")]
pub struct CodeEnterPage {
    pub layout: Layout,
    pub email: String,
    pub user_id: String,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "verify.html")]
pub struct VerifyPage {
    pub layout: Layout,
    pub ok: bool,
    /// The link was opened without the account's session: offer the emailed-code sign-in.
    pub needs_code: bool,
}

/// One subscription as shown on the paywall and account pages.
pub struct PlanRow {
    /// The plan's configured name.
    pub plan: String,
    /// In words: "Active", "Cancelled, active until 2026-…", "Expired", "Revoked".
    pub status: String,
    /// How the status looks: `active`, `ending` (cancelled, still running) or `ended`.
    pub state: &'static str,
    pub since: String,
    /// The period end: "Renews 2026-…", "Until 2026-…", "Ended 2026-…" or "No end date".
    pub period: String,
}

#[derive(Template)]
#[template(path = "paywall.html")]
pub struct PaywallPage {
    pub layout: Layout,
    pub email: String,
    pub needs_verification: bool,
    /// Why a member is refused: their plans do not unlock what they asked for.
    pub locked: Option<String>,
    pub plans: Vec<PlanRow>,
    /// The configured plans on sale, in order.
    pub offers: Vec<OfferView>,
    pub store_url: String,
}

/// The public home page: what the product is, the plans on sale and where to go next.
#[derive(Template)]
#[template(path = "landing.html")]
pub struct LandingPage {
    pub layout: Layout,
    /// The configured plans on sale, in order; buy links carry a signed-in visitor's email.
    pub offers: Vec<OfferView>,
    /// Where to buy when no plan is described (no plans file).
    pub store_url: String,
    /// The signed-in visitor's email, to say which address to pay with.
    pub email: Option<String>,
    /// The last 30 days over every signal, once there are outcomes to show.
    pub results: Option<Headline>,
}

/// The landing page's results in three numbers, linking `/results`.
pub struct Headline {
    pub win_rate: String,
    pub net_r: String,
    pub signals: u32,
    pub closed: u32,
}

/// One window as a tab of a results page.
pub struct WindowTab {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

/// A count in one of the columns every signal falls in.
pub struct Count {
    pub label: &'static str,
    pub n: u32,
}

impl Count {
    pub fn new(label: &'static str, n: u32) -> Self {
        Self { label, n }
    }
}

/// How often one target was hit by the closed trades that had it.
pub struct TargetRow {
    pub label: String,
    pub rate: String,
    pub of: String,
}

/// The numbers of one group of signals, written out (`partials/stats.html`).
pub struct StatsView {
    pub signals: u32,
    pub closed: u32,
    pub win_rate: String,
    /// "2 of 3".
    pub wins: String,
    pub net_r: String,
    pub average_r: String,
    /// Closed trades with a result in R (a stop on the losing side of the fill).
    pub with_r: u32,
    pub net_pct: String,
    pub average_pct: String,
    pub max_drawdown: String,
    pub targets: Vec<TargetRow>,
    pub columns: Vec<Count>,
    pub edit_rate: String,
    pub edited: String,
    pub delete_rate: String,
    pub deleted: String,
    pub deleted_after_entry: u32,
    pub no_stop_share: String,
    pub no_stop: String,
    pub ambiguous_bars: u32,
    pub ambiguous_signals: u32,
    pub lower_precision: u32,
    /// From `g3_outcomes::svg`, which escapes every text it writes.
    pub curve_svg: String,
}

/// One route's numbers on the performance page.
pub struct RouteStats {
    pub name: String,
    pub stats: StatsView,
}

/// One window's headline numbers in the comparison table.
pub struct SummaryRow {
    pub label: &'static str,
    pub signals: u32,
    pub closed: u32,
    pub win_rate: String,
    pub net_r: String,
    pub max_drawdown: String,
}

/// `/performance`: a member's results, overall and per route.
#[derive(Template)]
#[template(path = "performance.html")]
pub struct PerformancePage {
    pub layout: Layout,
    pub tabs: Vec<WindowTab>,
    pub window: &'static str,
    /// "All channels" (staff) or "All your channels".
    pub scope: &'static str,
    pub overall: Option<StatsView>,
    pub routes: Vec<RouteStats>,
    pub summary: Vec<SummaryRow>,
    pub time_limit: String,
    pub as_of: String,
    /// Outcomes are still being loaded: the numbers would be incomplete.
    pub loading: bool,
}

/// `/results`: the overall numbers for anyone.
#[derive(Template)]
#[template(path = "results.html")]
pub struct ResultsPage {
    pub layout: Layout,
    pub tabs: Vec<WindowTab>,
    pub window: &'static str,
    pub overall: Option<StatsView>,
    pub summary: Vec<SummaryRow>,
    pub time_limit: String,
    pub as_of: String,
    pub loading: bool,
}

/// `/rules`: the outcome rules from `docs/outcomes.md`.
#[derive(Template)]
#[template(path = "rules.html")]
pub struct RulesPage {
    pub layout: Layout,
    pub time_limit: String,
    /// Converted from our own document, escaped first (`performance::markdown_doc`).
    pub rules_html: &'static str,
}

/// One plan on sale as the landing page and the paywall show it (`partials/offers.html`).
pub struct OfferView {
    pub name: String,
    /// Empty when not configured.
    pub price: String,
    pub benefits: Vec<String>,
    /// With the viewer's email when the store takes it.
    pub buy_url: String,
    /// It unlocks the route the viewer asked for.
    pub includes_route: bool,
}

/// One signal as its card shows it, every number already formatted (see `card::card`).
pub struct Card {
    pub id: String,
    pub route: String,
    pub author: String,
    /// UTC, for readers without scripts; `app.js` shows relative and local time.
    pub posted: String,
    pub posted_iso: String,
    /// The pair, or what the message is ("Chart", "Message") when it names none.
    pub title: String,
    /// Invisible characters removed, written `BASE/QUOTE`.
    pub pair: Option<String>,
    pub side: Option<&'static str>,
    pub entries: String,
    pub targets: String,
    pub stop: Option<String>,
    pub leverage: Option<String>,
    /// Reward over risk per target ("TP1 1.5 · TP2 3.0"), or empty.
    pub reward_risk: String,
    /// The parser's warnings in plain words; codes never reach the page.
    pub warnings: Vec<Warning>,
    /// The message rendered by [`crate::markdown::render`]: escaped first, our tags only.
    pub text_html: String,
    pub embeds: Vec<EmbedView>,
    /// The text and embeds only repeat the numbers above: shown folded.
    pub collapsed: bool,
    /// Stored images, shown inline.
    pub pictures: Vec<AssetView>,
    /// Other stored attachments, linked.
    pub files: Vec<AssetView>,
    /// Attachments still being copied to Storage.
    pub pending: usize,
    pub edited: Option<String>,
    pub deleted: bool,
}

/// A parser warning as a customer reads it.
pub struct Warning {
    pub text: &'static str,
    /// Worth knowing, nothing wrong (e.g. the side was read from the prices).
    pub note: bool,
}

/// An attachment served through web, which checks the reader's plan.
pub struct AssetView {
    pub url: String,
    pub name: String,
}

impl Card {
    pub fn has_trade(&self) -> bool {
        self.pair.is_some()
            || self.side.is_some()
            || !self.entries.is_empty()
            || !self.targets.is_empty()
            || self.stop.is_some()
            || self.leverage.is_some()
    }
}

/// The text parts of a Discord embed; links are shown as text, never followed.
pub struct EmbedView {
    pub title: String,
    /// Rendered by [`crate::markdown::render`].
    pub description_html: String,
    /// Name as text, value rendered by [`crate::markdown::render`].
    pub fields: Vec<(String, String)>,
}

pub struct RouteOption {
    pub key: String,
    pub name: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "feed.html")]
pub struct FeedPage {
    pub layout: Layout,
    /// Cards as rendered by `card::CardCache` with their status fragments (our own escaped
    /// HTML).
    pub cards: Vec<crate::card::Placed>,
    /// The compact list view instead of full cards.
    pub list: bool,
    pub routes: Vec<RouteOption>,
    pub pair: String,
    pub side: String,
    /// New live cards go on top only on the unfiltered first page.
    pub live_insert: bool,
    /// The live stream's URL, resuming after the newest event this page has seen.
    pub stream: String,
    /// Link to the older page, with the filters kept.
    pub older: Option<String>,
    /// Link to the newer page (not on the newest), with the filters kept.
    pub newer: Option<String>,
    /// No older page: the end marker shows instead of the link.
    pub at_end: bool,
    /// On unfiltered older pages: where the "N new signals" notice leads.
    pub newest_link: Option<String>,
    pub filtered: bool,
    /// Known pairs of the routes the viewer sees: the pair filter's suggestions.
    pub pairs: std::sync::Arc<[String]>,
    /// The signals could not be read (the backend did not answer): say so, keep the form.
    pub unavailable: bool,
}

/// One card alone: the live feed's fragment, from the same partial as the page.
#[derive(Template)]
#[template(path = "card.html")]
pub struct CardFragment {
    pub card: Card,
}

/// A signal's outcome on its card (`outcomes::status`): in pages and live `outcome` events.
#[derive(Template)]
#[template(path = "outcome.html")]
pub struct OutcomeFragment {
    pub s: crate::outcomes::status::StatusView,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub layout: Layout,
    pub email: String,
    pub name: String,
    pub verified: bool,
    /// Changing the password asks for the current one.
    pub knows_password: bool,
    pub standing: &'static str,
    pub plans: Vec<PlanRow>,
    pub store_url: String,
    /// Where the customer manages their subscription (`MANAGE_SUBSCRIPTION_URL`, with their
    /// email), when configured and they have one.
    pub manage_url: Option<String>,
    pub notice: Option<&'static str>,
    /// The linked Discord account, if any.
    pub discord: Option<DiscordView>,
    /// Discord linking is configured on this site.
    pub discord_enabled: bool,
    /// The customer server's invite (`DISCORD_INVITE_URL`), shown once linked.
    pub discord_invite: Option<String>,
}

/// A linked Discord account as the account page shows it.
pub struct DiscordView {
    pub id: String,
    pub name: String,
    pub since: String,
}

/// Why a Discord link did not happen.
#[derive(Template)]
#[template(path = "discord_link_problem.html")]
pub struct LinkProblemPage {
    pub layout: Layout,
    pub heading: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "recover.html")]
pub struct RecoverPage {
    pub layout: Layout,
    pub email: String,
    /// The link was requested: say so without telling whether the account exists.
    pub sent: bool,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "recover_confirm.html")]
pub struct RecoverConfirmPage {
    pub layout: Layout,
    pub user_id: String,
    pub secret: String,
    pub error: Option<String>,
}
