//! The Discord sandbox: testkit's fake Discord set up as the customer's Discord. The bot mirrors
//! into its customer channels (serenity's rate limiter on, over the fake's TLS proxy) and keeps
//! paid roles in sync in its customer guild; web's "Link Discord" uses it as the OAuth2
//! provider (its authorize page asks for any username to act as). [`Sandbox::page`] shows what
//! the channels hold and who in the guild holds which role, so mirroring and role sync can be
//! watched without a Discord account.
//!
//! The fake keeps nothing across restarts while Appwrite does: at every start the accounts
//! customers linked are made again, with the ids they had, and join the guild with the roles
//! role sync had applied to them ([`Sandbox::restore`]), as a real guild would have kept them.

use std::{collections::HashMap, time::Duration};

use anyhow::Context as _;
use appwrite_emulator::util::escape_html as escape;
use g3_access::{Access, LinkOutcome};
use g3_core::{Snowflake, plans::PlanRoles};
use testkit::discord::{BOT_USER_ID, FakeDiscord, FakeRole, OAuthApp, permissions};

/// The name of the OAuth2 app web links with.
pub const APP_NAME: &str = "G3netic Signals (devstack)";
/// The customer guild.
pub const GUILD_ID: u64 = 1_400_000_000_000_000_001;
/// The bot's own role: Manage Roles, above every role it manages.
pub const BOT_ROLE: u64 = 1_400_000_000_000_000_011;
/// The role plan `vip` gives.
pub const VIP_ROLE: u64 = 1_400_000_000_000_000_012;
/// The role plan `basic` gives.
pub const BASIC_ROLE: u64 = 1_400_000_000_000_000_013;
/// A role the bot does not manage (above the bot's own, as moderators' roles often are).
pub const MODERATOR_ROLE: u64 = 1_400_000_000_000_000_014;
/// `PLAN_ROLES` in the sandbox.
pub const PLAN_ROLES: &str = "vip=1400000000000000012,basic=1400000000000000013";
/// The roles of the guild: id, name, position, permissions.
const ROLES: &[(u64, &str, u16, u64)] = &[
    (MODERATOR_ROLE, "Moderator", 4, 0),
    (BOT_ROLE, "G3 Bot", 3, permissions::MANAGE_ROLES),
    (VIP_ROLE, "VIP", 2, 0),
    (BASIC_ROLE, "Basic", 1, 0),
];

/// The demo customer's Discord account (linked at seed time, holds VIP through role sync).
pub const DEMO_DISCORD_ID: u64 = 1_400_000_000_000_000_101;
pub const DEMO_DISCORD_USERNAME: &str = "demo_customer";
/// A moderator who is no customer: role sync leaves them and their role alone.
pub const MODERATOR_ID: u64 = 1_400_000_000_000_000_102;
pub const MODERATOR_USERNAME: &str = "mod_mia";

/// The fake Discord and what devstack set up in it. Clones share the fake.
#[derive(Clone)]
pub struct Sandbox {
    pub fake: FakeDiscord,
    /// The OAuth2 app web links with (redirect URI: web's callback).
    pub oauth: OAuthApp,
    /// (route name, customer channel id)
    pub channels: Vec<(String, u64)>,
}

impl Sandbox {
    /// Starts the fake Discord and sets up the customer guild and the OAuth2 app whose only
    /// redirect URI is `redirect_uri`.
    pub async fn start(channels: Vec<(String, u64)>, redirect_uri: &str) -> Sandbox {
        let fake = FakeDiscord::spawn().await;
        let oauth = fake.register_app(APP_NAME, &[redirect_uri]);
        Self::set_up(fake, oauth, channels)
    }

    /// Sets up the customer guild in a fake the caller started (the standalone
    /// `discord-sandbox` binary starts it on a fixed address), with `oauth` as the app web
    /// links with.
    pub fn set_up(fake: FakeDiscord, oauth: OAuthApp, channels: Vec<(String, u64)>) -> Sandbox {
        for (id, name, position, perms) in ROLES {
            fake.add_guild_role(GUILD_ID, FakeRole::new(*id, name, *position, *perms));
        }
        // The bot is in the guild (READY lists it) with its role.
        fake.add_guild(GUILD_ID);
        join_guild(&fake, BOT_USER_ID, vec![BOT_ROLE]);
        fake.add_discord_user(MODERATOR_ID, MODERATOR_USERNAME);
        join_guild(&fake, MODERATOR_ID, vec![MODERATOR_ROLE]);
        fake.add_discord_user(DEMO_DISCORD_ID, DEMO_DISCORD_USERNAME);
        Sandbox {
            fake,
            oauth,
            channels,
        }
    }

    pub fn plan_roles() -> PlanRoles {
        PlanRoles::parse(PLAN_ROLES).expect("the sandbox's PLAN_ROLES parse")
    }

    /// web's Discord settings: the fake's REST API and authorize page.
    pub fn web_settings(&self) -> anyhow::Result<web::DiscordSettings> {
        let base = self.fake.base_url();
        Ok(web::DiscordSettings {
            client_id: self.oauth.client_id.clone(),
            client_secret: web::Secret::new(self.oauth.client_secret.clone()),
            bot_token: web::Secret::new(BOT_TOKEN),
            guild_id: GUILD_ID.to_string(),
            api_url: url::Url::parse(&format!("{base}/api"))?,
            authorize_url: url::Url::parse(&format!("{base}/oauth2/authorize"))?,
        })
    }

    /// The HTTP client the bot's serenity `Http` uses to reach the fake.
    pub fn discord_client(&self, timeout: Duration) -> reqwest::Client {
        self.fake.client(timeout)
    }

    /// Links the demo customer to the sandbox account [`DEMO_DISCORD_USERNAME`] unless they
    /// are linked already; role sync then gives that account the demo customer's roles.
    pub async fn link_demo_customer(
        access: &Access,
        user_id: &str,
        email: &str,
        progress: &mut dyn FnMut(&str),
    ) -> anyhow::Result<()> {
        if access.discord_link(user_id).await?.is_some() {
            return Ok(());
        }
        let outcome = access
            .link_discord(
                user_id,
                &DEMO_DISCORD_ID.to_string(),
                Some(DEMO_DISCORD_USERNAME),
                "devstack",
            )
            .await
            .context("linking the demo customer's sandbox Discord account")?;
        match outcome {
            LinkOutcome::TakenByOther { user_id: other } => progress(&format!(
                "seed: sandbox account {DEMO_DISCORD_USERNAME} is linked to {other}: {email} \
                 stays unlinked"
            )),
            _ => progress(&format!(
                "seed: {email} linked to sandbox Discord account {DEMO_DISCORD_USERNAME}"
            )),
        }
        Ok(())
    }

    /// Makes every linked account again (same id and username) as a member of the guild with
    /// the managed roles role sync had applied to it. Returns how many.
    pub async fn restore(&self, access: &Access) -> anyhow::Result<usize> {
        let managed = access.managed_roles();
        let mut restored = 0;
        for link in access.all_links().await? {
            let Ok(id) = Snowflake::parse(&link.data.discord_user_id).map(Snowflake::get) else {
                continue;
            };
            let username = link
                .data
                .discord_username
                .clone()
                .unwrap_or_else(|| format!("user{id}"));
            self.fake.add_discord_user(id, &username);
            let held: Vec<u64> = access
                .role_states(&link.id)
                .await?
                .into_iter()
                .filter(|d| {
                    d.data.applied == Some(true)
                        && d.data
                            .applied_discord_user_id
                            .as_deref()
                            .or(d.data.discord_user_id.as_deref())
                            == Some(link.data.discord_user_id.as_str())
                        && managed.contains(&d.data.role_id)
                })
                .filter_map(|d| d.data.role_id.parse().ok())
                .collect();
            join_guild(&self.fake, id, held);
            restored += 1;
        }
        Ok(restored)
    }

    /// The sandbox page: the customer guild's members and roles, then the customer channels.
    pub fn page(&self, links: &str) -> String {
        let mut out = String::from(
            "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"3\">\
             <title>Discord sandbox</title><style>body{font-family:sans-serif;max-width:60em;margin:auto}\
             .m{border:1px solid #ccc;border-radius:6px;padding:.5em;margin:.5em 0}\
             pre{white-space:pre-wrap;margin:0}.e{color:#555;font-size:.9em}\
             table{border-collapse:collapse}td,th{text-align:left;padding:.3em .8em;border-bottom:1px solid #ddd}\
             .role{display:inline-block;border:1px solid #aaa;border-radius:1em;padding:0 .6em;margin:0 .2em;font-size:.9em}\
             .role.managed{background:#fde68a;border-color:#d97706;font-weight:bold}</style></head><body>\
             <h1>Discord sandbox</h1><p>A fake Discord standing in for the customer's: the bot \
             mirrors signals into its channels and keeps the paid roles of the customer guild in \
             sync. Refreshes every 3 s.</p>",
        );
        out.push_str(links);
        out.push_str(&self.guild_html());
        for (name, channel) in &self.channels {
            out.push_str(&self.channel_html(name, *channel));
        }
        out.push_str("</body></html>");
        out
    }

    fn guild_html(&self) -> String {
        let roles = self.fake.guild_roles(GUILD_ID);
        let plan_roles = Self::plan_roles();
        let managed: HashMap<u64, Vec<&str>> = roles
            .iter()
            .map(|r| {
                let plans: Vec<&str> = ["vip", "basic"]
                    .into_iter()
                    .filter(|p| {
                        plan_roles
                            .roles_for([*p])
                            .contains(&r.id.to_string().as_str())
                    })
                    .collect();
                (r.id, plans)
            })
            .filter(|(_, plans)| !plans.is_empty())
            .collect();
        let role_badge = |id: u64| -> String {
            let Some(role) = roles.iter().find(|r| r.id == id) else {
                return format!("<span class=\"role\">unknown role {id}</span>");
            };
            match managed.get(&id) {
                Some(plans) => format!(
                    "<span class=\"role managed\" title=\"managed by role sync: plan {}\">{}</span>",
                    escape(&plans.join(", ")),
                    escape(&role.name)
                ),
                None => format!("<span class=\"role\">{}</span>", escape(&role.name)),
            }
        };
        let names: HashMap<u64, String> = self
            .fake
            .discord_users()
            .into_iter()
            .map(|u| (u.id, u.username))
            .collect();
        let members = self.fake.guild_members(GUILD_ID);
        let mut out = format!(
            "<h2>Customer guild <small>({GUILD_ID}, {} member(s))</small></h2><p>Roles, highest \
             first: {}. <span class=\"role managed\">Highlighted</span> roles are managed by the \
             bot (PLAN_ROLES {PLAN_ROLES}); it never touches the others.</p><table><tr>\
             <th>Member</th><th>Discord id</th><th>Roles</th></tr>",
            members.len(),
            roles
                .iter()
                .rev()
                .filter(|r| r.id != GUILD_ID)
                .map(|r| role_badge(r.id))
                .collect::<Vec<_>>()
                .join(" ")
        );
        for (id, held) in members {
            let name = if id == BOT_USER_ID {
                "G3 Bot (the bot)".to_owned()
            } else {
                names
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| format!("user{id}"))
            };
            let mut held: Vec<&FakeRole> = held
                .iter()
                .filter_map(|r| roles.iter().find(|x| x.id == *r))
                .collect();
            held.sort_by_key(|r| std::cmp::Reverse(r.position));
            let badges = if held.is_empty() {
                "<span class=\"e\">no roles</span>".to_owned()
            } else {
                held.iter()
                    .map(|r| role_badge(r.id))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            out.push_str(&format!(
                "<tr data-member=\"{id}\"><td>{}</td><td>{id}</td><td>{badges}</td></tr>",
                escape(&name)
            ));
        }
        out.push_str("</table>");
        out
    }

    fn channel_html(&self, name: &str, channel: u64) -> String {
        let messages = self.fake.messages(channel);
        let mut out = format!(
            "<h2>#{} <small>({channel}, {} message(s))</small></h2>",
            escape(name),
            messages.len()
        );
        for m in messages.iter().rev() {
            out.push_str("<div class=\"m\">");
            if !m.content.is_empty() {
                out.push_str(&format!("<pre>{}</pre>", escape(&m.content)));
            }
            for e in &m.embeds {
                let title = e.get("title").and_then(|v| v.as_str()).unwrap_or_default();
                let desc = e
                    .get("description")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
                let fields: Vec<String> = e
                    .get("fields")
                    .and_then(|v| v.as_array())
                    .map(|fs| {
                        fs.iter()
                            .map(|f| {
                                format!(
                                    "{}: {}",
                                    f.get("name").and_then(|v| v.as_str()).unwrap_or_default(),
                                    f.get("value").and_then(|v| v.as_str()).unwrap_or_default()
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push_str(&format!(
                    "<div class=\"e\"><b>{}</b> {}<br>{}</div>",
                    escape(title),
                    escape(desc),
                    escape(&fields.join(" · "))
                ));
            }
            for a in &m.attachments {
                out.push_str(&format!(
                    "<div class=\"e\">attachment {} ({} bytes)</div>",
                    escape(&a.filename),
                    a.bytes.len()
                ));
            }
            if m.edited_ms.is_some() {
                out.push_str("<div class=\"e\">(edited)</div>");
            }
            out.push_str("</div>");
        }
        out
    }
}

/// `user` is in the customer guild holding exactly `roles`.
fn join_guild(fake: &FakeDiscord, user: u64, roles: Vec<u64>) {
    fake.add_member(GUILD_ID, user);
    fake.set_member_roles(GUILD_ID, user, roles);
}

/// The bot token in the sandbox (the fake takes any).
pub const BOT_TOKEN: &str = "devstack-sandbox-token";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_roles_name_the_guilds_roles_below_the_bot() {
        let roles = Sandbox::plan_roles();
        assert_eq!(
            roles.roles_for(["vip"]),
            vec![VIP_ROLE.to_string().as_str()]
        );
        assert_eq!(
            roles.roles_for(["basic"]),
            vec![BASIC_ROLE.to_string().as_str()]
        );
        let position = |id: u64| ROLES.iter().find(|r| r.0 == id).unwrap().2;
        for managed in roles.managed() {
            assert!(position(managed.parse().unwrap()) < position(BOT_ROLE));
        }
    }

    #[tokio::test]
    async fn the_page_shows_members_with_managed_roles_highlighted() {
        let sandbox = Sandbox::start(
            vec![("VIP <Calls>".into(), 7)],
            "http://127.0.0.1:1/account/discord/callback",
        )
        .await;
        sandbox.fake.add_member(GUILD_ID, DEMO_DISCORD_ID);
        sandbox
            .fake
            .set_member_roles(GUILD_ID, DEMO_DISCORD_ID, vec![VIP_ROLE]);
        let page = sandbox.page("<p>links</p>");
        assert!(page.contains("#VIP &lt;Calls&gt;"), "{page}");
        assert!(page.contains("<p>links</p>"));
        let row = |id: u64| {
            let start = page.find(&format!("data-member=\"{id}\"")).unwrap();
            page[start..start + page[start..].find("</tr>").unwrap()].to_owned()
        };
        let demo = row(DEMO_DISCORD_ID);
        assert!(demo.contains(DEMO_DISCORD_USERNAME), "{demo}");
        assert!(
            demo.contains(
                "<span class=\"role managed\" title=\"managed by role sync: plan vip\">VIP</span>"
            ),
            "{demo}"
        );
        let moderator = row(MODERATOR_ID);
        assert!(
            moderator.contains(MODERATOR_USERNAME)
                && moderator.contains("<span class=\"role\">Moderator</span>"),
            "{moderator}"
        );
        assert!(row(BOT_USER_ID).contains("G3 Bot"));
    }
}
