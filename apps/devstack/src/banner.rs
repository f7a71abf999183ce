//! The banner devstack prints once everything runs: where each service listens, the demo
//! accounts, and what to try first.

use crate::{
    BOT_SERVICE, DEMO_ACCOUNTS, DEMO_INGEST_SECRET, DEMO_METRICS_TOKEN, DEMO_PLANS,
    DEMO_SELLAPP_SECRET, DemoPurchase, DiscordMode, TRACKER_SERVICE, WEB_SERVICE, demo_collector,
    market::{DEMO_PAIRS, VENUE},
    sandbox,
    seed::DEMO_ROUTES,
    stack::Running,
};

impl Running {
    pub fn banner(&self, data_dir: &std::path::Path) -> String {
        let base = format!("http://{}", self.emulator.addr);
        let web = self.web_url();
        let mut out = String::new();
        out.push_str("\nG3netic Signals devstack is running\n\n");
        out.push_str(&format!(
            "  Web dashboard       {web}  (sign in as the demo customer for the feed; a new sign-up sees the paywall)\n"
        ));
        out.push_str(&format!(
            "                      admin console {web}/admin (demo staff); metrics {web}/metrics \
             (header `Authorization: Bearer {DEMO_METRICS_TOKEN}`)\n"
        ));
        out.push_str(&format!(
            "  Appwrite emulator   {}  (project {}, API key {})\n",
            self.emulator.endpoint, self.emulator.project_id, self.emulator.api_key
        ));
        out.push_str(&format!(
            "  Mailbox             {base}/mailbox  (verification links and sign-in codes)\n"
        ));
        out.push_str(&format!(
            "  Sell.app webhook    http://{}/webhooks/sellapp  (secret {DEMO_SELLAPP_SECRET}, plans {DEMO_PLANS})\n",
            self.webhook_addr
        ));
        out.push_str(&format!(
            "                      metrics http://{}/metrics (same bearer token)\n",
            self.webhook_addr
        ));
        out.push_str(&format!(
            "  Collector ingest    http://{}/ingest/v1/events  (secret {DEMO_INGEST_SECRET}, guild {}, channels {})\n",
            self.webhook_addr,
            demo_collector::DEMO_GUILD,
            DEMO_ROUTES.iter().map(|(_, _, c, _)| *c).collect::<Vec<_>>().join(", ")
        ));
        let market = self.market.addr();
        out.push_str(&format!(
            "  Simulated market    http://{market}  (SIMULATED prices, not a real exchange: a seeded random walk per pair, \
             about {:.2} % a minute, speaking {VENUE}'s API)\n",
            self.market.settings.volatility * 100.0
        ));
        out.push_str(&format!(
            "                      pairs {}; klines {}/api/v3/klines?symbol=BTCUSDT&interval=1m, trades {}\n",
            DEMO_PAIRS.iter().map(|p| p.symbol).collect::<Vec<_>>().join(", "),
            self.market.rest_url(),
            self.market.ws_url()
        ));
        out.push_str(&format!(
            "  Tracker             follows every signal on the simulated market into `signal_outcomes`: demo signals \
             enter and hit targets or stops within minutes\n                      \
             health http://{0}/healthz, metrics http://{0}/metrics (same bearer token)\n",
            self.tracker_addr
        ));
        out.push_str(&format!(
            "  Demo store          {}  (where the paywall's \"Buy a plan\" leads: a signed Sell.app order for any email)\n",
            self.pages.store_url()
        ));
        match (&self.discord, &self.sandbox) {
            (DiscordMode::Real(real), _) => {
                out.push_str(
                    "  Discord             REAL Discord (DISCORD_BOT_TOKEN is set): the bot posts into each route's customer channels\n",
                );
                if let Some(guild) = real.guild_id {
                    out.push_str(&format!("                      customer guild {guild}"));
                    if real.plan_roles.is_empty() {
                        out.push('\n');
                    } else {
                        out.push_str(&format!(
                            "; role sync for PLAN_ROLES {}\n",
                            real.plan_roles_spec
                        ));
                    }
                    out.push_str(
                        "                      (the bot needs Manage Roles with its role above the managed ones, and the Server Members intent: Developer Portal > Bot)\n",
                    );
                }
                if real.oauth.is_some() {
                    out.push_str(&format!(
                        "                      \"Link Discord\" is on: add {web}/account/discord/callback as a redirect (Developer Portal > OAuth2)\n"
                    ));
                }
                for note in &self.discord_notes {
                    out.push_str(&format!("                      missing: {note}\n"));
                }
                out.push_str(&format!(
                    "                      {}  (says the same)\n",
                    self.pages.url()
                ));
            }
            (DiscordMode::Sandbox, Some(sandbox)) => {
                out.push_str(
                    "  Discord             sandbox: a fake Discord in this process (set DISCORD_BOT_TOKEN for real Discord)\n",
                );
                out.push_str(&format!(
                    "  Discord sandbox     {}  (the bot's mirrors per customer channel; the customer guild's members and roles)\n",
                    self.pages.url()
                ));
                out.push_str(&format!(
                    "                      OAuth2 app {}: \"Link Discord\" authorizes at {}/oauth2/authorize as any username\n",
                    sandbox.oauth.client_id,
                    sandbox.fake.base_url()
                ));
                out.push_str(&format!(
                    "                      guild {}, PLAN_ROLES {} (VIP for plan vip, Basic for plan basic)\n",
                    sandbox::GUILD_ID,
                    sandbox::PLAN_ROLES
                ));
            }
            (DiscordMode::Sandbox, None) => {}
        }
        out.push_str("\n  Demo accounts (email / password):\n");
        for a in DEMO_ACCOUNTS {
            let role = if a.staff { "staff" } else { "customer" };
            out.push_str(&format!("    {role:<9} {} / {}", a.email, a.password));
            if a.staff {
                out.push_str(&format!("  (admin console {web}/admin)"));
            } else if self.sandbox.is_some() {
                out.push_str(&format!(
                    "  (linked to sandbox Discord account {}, holds VIP)",
                    sandbox::DEMO_DISCORD_USERNAME
                ));
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "    service   {} / {}  (web's Realtime subscription)\n",
            WEB_SERVICE.email, WEB_SERVICE.password
        ));
        out.push_str(&format!(
            "    service   {} / {}  (the bot's Realtime subscription)\n",
            BOT_SERVICE.email, BOT_SERVICE.password
        ));
        out.push_str(&format!(
            "    service   {} / {}  (the tracker's Realtime subscription)\n",
            TRACKER_SERVICE.email, TRACKER_SERVICE.password
        ));
        out.push_str("\n  Try it as a new customer:\n");
        out.push_str(&format!(
            "    1. Sign up at {web}/signup and enter the code the mailbox shows ({base}/mailbox).\n"
        ));
        out.push_str(&format!(
            "    2. Press \"Buy a plan\" on the paywall, or buy in the demo store ({}) with the same email.\n",
            self.pages.store_url()
        ));
        if self.sandbox.is_some() {
            out.push_str(&format!(
                "    3. On {web}/account press \"Link Discord\" and authorize on the sandbox's page as any username.\n"
            ));
            out.push_str(&format!(
                "    4. Watch {}: your account joins the customer guild and gets the VIP role within seconds.\n",
                self.pages.url()
            ));
        } else {
            out.push_str(&format!(
                "    3. On {web}/account press \"Link Discord\" and authorize on Discord (needs DISCORD_CLIENT_ID/SECRET).\n"
            ));
            out.push_str(
                "    4. Watch your guild: the account joins and gets the plan's roles (needs DISCORD_GUILD_ID and PLAN_ROLES).\n",
            );
        }
        out.push_str(&format!(
            "    5. Sign in as {} at {web}/admin: find your email, revoke the plan, and watch the role go;\n",
            DEMO_ACCOUNTS[0].email
        ));
        out.push_str(&format!(
            "       {web}/admin/failures lists failed deliveries and role syncs, each with a retry button.\n"
        ));
        out.push_str("\n  Send a signed demo purchase (buyer@g3.local gets plan vip):\n    ");
        out.push_str(&DemoPurchase::new(self.webhook_addr).curl());
        let ops_env = format!(
            "APPWRITE_ENDPOINT={} APPWRITE_API_KEY={} PLANS_FILE='{}'",
            self.emulator.endpoint,
            self.emulator.api_key,
            self.plans_file.display()
        );
        out.push_str(&format!(
            "\n\n  Look a customer up, or revoke their plan (the bot takes the role back):\n    \
             {ops_env} cargo run -p ops -- lookup --email buyer@g3.local\n    \
             {ops_env} cargo run -p ops -- revoke --email buyer@g3.local --reason 'trying devstack'\n"
        ));
        out.push_str(&format!(
            "\n  Data is kept in {} (delete it to start fresh).\n\nPress Ctrl-C to stop.\n",
            data_dir.display()
        ));
        out
    }
}
