//! Which Discord devstack talks to, chosen from the environment: the sandbox (a fake Discord in
//! this process, the default) or real Discord, when `DISCORD_BOT_TOKEN` is set.
//!
//! Real mode reads what the services themselves read: `DISCORD_BOT_TOKEN` (the bot, and web to
//! add linked users to the guild), `DISCORD_GUILD_ID` (the customer guild: role sync and
//! linking), `PLAN_ROLES` (the roles each plan gives there) and `DISCORD_CLIENT_ID` with
//! `DISCORD_CLIENT_SECRET` (the OAuth2 client behind "Link Discord"). Everything but the token
//! is optional; what is left out is switched off and listed by [`RealDiscord::missing`].
//! Combinations that cannot be what was meant are refused with the fix in the message.

use anyhow::{Context as _, bail};
use g3_core::{Snowflake, plans::PlanRoles};

/// The Discord devstack runs against.
#[derive(Clone, Debug)]
pub enum DiscordMode {
    /// testkit's fake Discord, set up by devstack: customer channels, a customer guild with
    /// roles, an OAuth2 app ([`crate::sandbox`]).
    Sandbox,
    /// discord.com, with the operator's bot, guild and application.
    Real(RealDiscord),
}

/// An OAuth2 client of the Developer Portal (for "Link Discord").
#[derive(Clone, Debug)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: web::Secret,
}

/// Real Discord's settings, as given.
#[derive(Clone, Debug)]
pub struct RealDiscord {
    pub bot_token: web::Secret,
    /// The customer guild: role sync and linking need it.
    pub guild_id: Option<u64>,
    /// The roles each plan gives in the customer guild; empty turns role sync off.
    pub plan_roles: PlanRoles,
    /// `PLAN_ROLES` as given (for the `ops` lines the banner prints).
    pub plan_roles_spec: String,
    /// Linking is on with a client (which then needs the guild).
    pub oauth: Option<OAuthClient>,
}

impl DiscordMode {
    /// Reads the mode from the environment through `var` (unset and blank are the same).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<DiscordMode> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let Some(bot_token) = get("DISCORD_BOT_TOKEN") else {
            if get("DISCORD_TOKEN").is_some() {
                bail!(
                    "DISCORD_TOKEN is set, but devstack reads the bot's token from \
                     DISCORD_BOT_TOKEN (as the bot and web do): rename it to run against real \
                     Discord, or unset it to use the sandbox"
                );
            }
            let stray: Vec<&str> = [
                "DISCORD_GUILD_ID",
                "PLAN_ROLES",
                "DISCORD_CLIENT_ID",
                "DISCORD_CLIENT_SECRET",
            ]
            .into_iter()
            .filter(|name| get(name).is_some())
            .collect();
            if !stray.is_empty() {
                let names = stray.join(", ");
                bail!(
                    "{names} {} set, but DISCORD_BOT_TOKEN is not: real Discord mode needs the \
                     bot's token (set DISCORD_BOT_TOKEN); the sandbox makes its own guild, roles \
                     and OAuth2 app (unset {names} to use it)",
                    if stray.len() == 1 { "is" } else { "are" }
                );
            }
            return Ok(DiscordMode::Sandbox);
        };
        let guild_id = match get("DISCORD_GUILD_ID") {
            Some(raw) => Some(
                Snowflake::parse(&raw)
                    .ok()
                    .map(Snowflake::get)
                    .filter(|g| *g != 0)
                    .with_context(|| {
                        format!("DISCORD_GUILD_ID must be a Discord id (digits), not {raw:?}")
                    })?,
            ),
            None => None,
        };
        let plan_roles_spec = get("PLAN_ROLES").unwrap_or_default();
        let plan_roles = PlanRoles::parse(&plan_roles_spec)
            .context("PLAN_ROLES (plan=role id, several with |, e.g. vip=123|456,basic=789)")?;
        if !plan_roles.is_empty() && guild_id.is_none() {
            bail!(
                "PLAN_ROLES is set but DISCORD_GUILD_ID is not: the roles are given in the \
                 customer guild, set DISCORD_GUILD_ID (or unset PLAN_ROLES)"
            );
        }
        let oauth = match (get("DISCORD_CLIENT_ID"), get("DISCORD_CLIENT_SECRET")) {
            (Some(client_id), Some(secret)) => {
                if guild_id.is_none() {
                    bail!(
                        "DISCORD_CLIENT_ID and DISCORD_CLIENT_SECRET are set but \
                         DISCORD_GUILD_ID is not: linked users join the customer guild, set \
                         DISCORD_GUILD_ID (or unset the client id and secret to turn linking off)"
                    );
                }
                if !Snowflake::is_valid(&client_id) {
                    bail!(
                        "DISCORD_CLIENT_ID must be the application's id (digits), not {client_id:?}"
                    );
                }
                Some(OAuthClient {
                    client_id,
                    client_secret: web::Secret::new(secret),
                })
            }
            (Some(_), None) => bail!(
                "DISCORD_CLIENT_ID is set but DISCORD_CLIENT_SECRET is not: linking needs both \
                 (Developer Portal > OAuth2), or neither to turn it off"
            ),
            (None, Some(_)) => bail!(
                "DISCORD_CLIENT_SECRET is set but DISCORD_CLIENT_ID is not: linking needs both \
                 (Developer Portal > OAuth2), or neither to turn it off"
            ),
            (None, None) => None,
        };
        Ok(DiscordMode::Real(RealDiscord {
            bot_token: web::Secret::new(bot_token),
            guild_id,
            plan_roles,
            plan_roles_spec,
            oauth,
        }))
    }

    pub fn is_sandbox(&self) -> bool {
        matches!(self, DiscordMode::Sandbox)
    }
}

impl RealDiscord {
    /// What is switched off for want of a setting, in words (empty: everything is on).
    pub fn missing(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.guild_id.is_none() {
            out.push(
                "DISCORD_GUILD_ID is not set: role sync and Discord linking are off (the bot \
                 only mirrors)"
                    .to_owned(),
            );
        } else if self.plan_roles.is_empty() {
            out.push(
                "PLAN_ROLES is not set: role sync is off and linked users join without roles"
                    .to_owned(),
            );
        }
        if self.oauth.is_none() {
            out.push(
                "DISCORD_CLIENT_ID / DISCORD_CLIENT_SECRET are not set: \"Link Discord\" is off \
                 on /account"
                    .to_owned(),
            );
        }
        out
    }

    /// web's Discord settings (real Discord's URLs), when linking is configured.
    pub fn web_settings(&self) -> Option<web::DiscordSettings> {
        let oauth = self.oauth.as_ref()?;
        let guild = self.guild_id?;
        Some(web::DiscordSettings {
            client_id: oauth.client_id.clone(),
            client_secret: oauth.client_secret.clone(),
            bot_token: self.bot_token.clone(),
            guild_id: guild.to_string(),
            api_url: url::Url::parse(web::DiscordSettings::DEFAULT_API_URL)
                .expect("Discord's API URL parses"),
            authorize_url: url::Url::parse(web::DiscordSettings::DEFAULT_AUTHORIZE_URL)
                .expect("Discord's authorize URL parses"),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn mode(vars: &[(&str, &str)]) -> anyhow::Result<DiscordMode> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        DiscordMode::from_env(|name| map.get(name).cloned())
    }

    fn real(vars: &[(&str, &str)]) -> RealDiscord {
        match mode(vars).unwrap() {
            DiscordMode::Real(r) => r,
            DiscordMode::Sandbox => panic!("sandbox for {vars:?}"),
        }
    }

    fn error(vars: &[(&str, &str)]) -> String {
        format!("{:#}", mode(vars).expect_err("refused"))
    }

    #[test]
    fn no_token_is_the_sandbox() {
        assert!(mode(&[]).unwrap().is_sandbox());
        // Blank is unset.
        assert!(
            mode(&[("DISCORD_BOT_TOKEN", "  "), ("PLAN_ROLES", "")])
                .unwrap()
                .is_sandbox()
        );
    }

    #[test]
    fn the_token_alone_mirrors_and_says_what_is_off() {
        let r = real(&[("DISCORD_BOT_TOKEN", " bot-token ")]);
        assert_eq!(r.bot_token.expose(), "bot-token");
        assert_eq!(r.guild_id, None);
        assert!(r.plan_roles.is_empty() && r.oauth.is_none());
        assert!(r.web_settings().is_none());
        let missing = r.missing();
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert!(missing[0].starts_with("DISCORD_GUILD_ID is not set"));
        assert!(missing[1].contains("\"Link Discord\" is off"));
        // The token never prints.
        assert!(!format!("{r:?}").contains("bot-token"));
    }

    #[test]
    fn a_full_configuration_turns_everything_on_with_real_urls() {
        let r = real(&[
            ("DISCORD_BOT_TOKEN", "bot-token"),
            ("DISCORD_GUILD_ID", "123456789012345678"),
            ("PLAN_ROLES", "vip=111|222,basic=333"),
            ("DISCORD_CLIENT_ID", "987654321"),
            ("DISCORD_CLIENT_SECRET", "client-secret"),
        ]);
        assert_eq!(r.guild_id, Some(123_456_789_012_345_678));
        assert_eq!(r.plan_roles.managed(), vec!["111", "222", "333"]);
        assert!(r.missing().is_empty(), "{:?}", r.missing());
        let web = r.web_settings().expect("linking on");
        assert_eq!(web.client_id, "987654321");
        assert_eq!(web.client_secret.expose(), "client-secret");
        assert_eq!(web.bot_token.expose(), "bot-token");
        assert_eq!(web.guild_id, "123456789012345678");
        assert_eq!(web.api_url.as_str(), "https://discord.com/api");
        assert_eq!(
            web.authorize_url.as_str(),
            "https://discord.com/oauth2/authorize"
        );
        let dbg = format!("{r:?}");
        assert!(!dbg.contains("bot-token") && !dbg.contains("client-secret"));
    }

    #[test]
    fn a_guild_without_roles_or_client_says_so() {
        let r = real(&[("DISCORD_BOT_TOKEN", "t"), ("DISCORD_GUILD_ID", "42")]);
        let missing = r.missing();
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert!(missing[0].starts_with("PLAN_ROLES is not set"));
        assert!(missing[1].starts_with("DISCORD_CLIENT_ID / DISCORD_CLIENT_SECRET"));
    }

    #[test]
    fn partial_configurations_are_refused_with_the_fix() {
        let e = error(&[("DISCORD_TOKEN", "t")]);
        assert!(
            e.contains("rename it") && e.contains("DISCORD_BOT_TOKEN"),
            "{e}"
        );
        // With the right name set too, the old one is ignored.
        assert!(
            !mode(&[("DISCORD_TOKEN", "t"), ("DISCORD_BOT_TOKEN", "t")])
                .unwrap()
                .is_sandbox()
        );

        let e = error(&[("DISCORD_GUILD_ID", "42"), ("PLAN_ROLES", "vip=1")]);
        assert!(
            e.starts_with("DISCORD_GUILD_ID, PLAN_ROLES are set, but DISCORD_BOT_TOKEN is not"),
            "{e}"
        );
        let e = error(&[("DISCORD_CLIENT_ID", "1")]);
        assert!(
            e.starts_with("DISCORD_CLIENT_ID is set, but DISCORD_BOT_TOKEN is not"),
            "{e}"
        );

        let token = ("DISCORD_BOT_TOKEN", "t");
        let e = error(&[token, ("DISCORD_GUILD_ID", "my-guild")]);
        assert!(e.contains("DISCORD_GUILD_ID must be a Discord id"), "{e}");
        let e = error(&[token, ("DISCORD_GUILD_ID", "0")]);
        assert!(e.contains("DISCORD_GUILD_ID must be a Discord id"), "{e}");
        let e = error(&[token, ("DISCORD_GUILD_ID", "42"), ("PLAN_ROLES", "vip=VIP")]);
        assert!(e.starts_with("PLAN_ROLES"), "{e}");
        let e = error(&[token, ("PLAN_ROLES", "vip=1")]);
        assert!(
            e.starts_with("PLAN_ROLES is set but DISCORD_GUILD_ID is not"),
            "{e}"
        );
        let e = error(&[token, ("DISCORD_CLIENT_ID", "1")]);
        assert!(
            e.starts_with("DISCORD_CLIENT_ID is set but DISCORD_CLIENT_SECRET is not"),
            "{e}"
        );
        let e = error(&[token, ("DISCORD_CLIENT_SECRET", "s")]);
        assert!(
            e.starts_with("DISCORD_CLIENT_SECRET is set but DISCORD_CLIENT_ID is not"),
            "{e}"
        );
        let e = error(&[
            token,
            ("DISCORD_CLIENT_ID", "1"),
            ("DISCORD_CLIENT_SECRET", "s"),
        ]);
        assert!(
            e.starts_with(
                "DISCORD_CLIENT_ID and DISCORD_CLIENT_SECRET are set but DISCORD_GUILD_ID is not"
            ),
            "{e}"
        );
        let e = error(&[
            token,
            ("DISCORD_GUILD_ID", "42"),
            ("DISCORD_CLIENT_ID", "my-app"),
            ("DISCORD_CLIENT_SECRET", "s"),
        ]);
        assert!(
            e.contains("DISCORD_CLIENT_ID must be the application's id"),
            "{e}"
        );
    }
}
