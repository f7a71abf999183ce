//! Whether the bot can manage the roles at all: Manage Roles (or Administrator) and a highest
//! role above every managed role, which must all exist. Run at start by the bot, and by role
//! sync before every pass (it stays paused while this fails).

use std::collections::BTreeSet;

use serenity::{
    all::{GuildId, Permissions, Role, RoleId, UserId},
    http::Http,
};

use super::{
    Config,
    sync::{Refused, RoleSync, refused},
};
use crate::snowflake;

/// Why the start-up check did not pass.
#[derive(Debug)]
pub(super) enum CheckFailure {
    /// The bot cannot manage the roles: said in words, one problem per entry.
    Misconfigured(Vec<String>),
    /// Discord could not be asked.
    Unreachable(String),
}

/// What the start-up check found about role sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// What keeps the bot from managing the roles, one problem per entry.
    Misconfigured(Vec<String>),
    /// Discord could not be asked.
    Unreachable(String),
}

/// Role sync's permission check, as the bot runs it at start (role sync itself checks again
/// and stays paused while it fails).
pub async fn check_at_start(config: &Config, http: &Http, me: UserId) -> Readiness {
    let managed: BTreeSet<u64> = config
        .plan_roles
        .managed()
        .into_iter()
        .filter_map(snowflake)
        .collect();
    match check_permissions(http, config.guild_id, &managed, &mut Some(me)).await {
        Ok(()) => Readiness::Ready,
        Err(CheckFailure::Misconfigured(p)) => Readiness::Misconfigured(p),
        Err(CheckFailure::Unreachable(e)) => Readiness::Unreachable(e),
    }
}

impl RoleSync {
    /// Whether the bot can manage every managed role in the guild.
    pub(super) async fn check(&self, me: &mut Option<UserId>) -> Result<(), CheckFailure> {
        check_permissions(&self.http, self.guild, &self.managed, me).await
    }
}

/// Whether the bot (`me`, looked up once) can manage every role of `managed` in `guild`: Manage
/// Roles (or Administrator) and a highest role above each, which must exist.
async fn check_permissions(
    http: &Http,
    guild: GuildId,
    managed: &BTreeSet<u64>,
    me: &mut Option<UserId>,
) -> Result<(), CheckFailure> {
    let unreachable = |e: serenity::Error| CheckFailure::Unreachable(e.to_string());
    let bot = match me {
        Some(id) => *id,
        None => {
            let id = http.get_current_user().await.map_err(unreachable)?.id;
            *me = Some(id);
            id
        }
    };
    let roles = http.get_guild_roles(guild).await.map_err(unreachable)?;
    let member = match http.get_member(guild, bot).await {
        Ok(m) => m,
        Err(e) => {
            return Err(match refused(e) {
                Refused::NotInGuild => CheckFailure::Misconfigured(vec![format!(
                    "the bot is not a member of guild {guild}"
                )]),
                Refused::Failed(e) => CheckFailure::Unreachable(e),
            });
        }
    };
    let problems = problems(guild, &roles, &member.roles, managed);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CheckFailure::Misconfigured(problems))
    }
}

/// What keeps the bot (holding `bot_roles`) from managing `managed` in `guild`, in words.
fn problems(
    guild: GuildId,
    roles: &[Role],
    bot_roles: &[RoleId],
    managed: &BTreeSet<u64>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mine: Vec<&Role> = roles
        .iter()
        .filter(|r| r.id.get() == guild.get() || bot_roles.contains(&r.id))
        .collect();
    let perms = mine
        .iter()
        .fold(Permissions::empty(), |p, r| p | r.permissions);
    let names = || {
        mine.iter()
            .map(|r| format!("\"{}\"", r.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !perms.intersects(Permissions::MANAGE_ROLES | Permissions::ADMINISTRATOR) {
        out.push(format!(
            "the bot lacks the Manage Roles permission (its roles: {})",
            names()
        ));
    }
    let top = mine.iter().max_by_key(|r| (r.position, r.id));
    for &id in managed {
        match roles.iter().find(|r| r.id.get() == id) {
            None => out.push(format!(
                "managed role {id} does not exist in guild {guild} (check PLAN_ROLES)"
            )),
            Some(role) if role.managed => out.push(format!(
                "managed role \"{}\" ({id}) belongs to an integration and cannot be assigned",
                role.name
            )),
            Some(role) => {
                let top_position = top.map_or(0, |t| t.position);
                if role.position >= top_position {
                    let top_name = top.map_or("@everyone", |t| t.name.as_str());
                    out.push(format!(
                        "managed role \"{}\" ({id}, position {}) is not below the bot's highest role \"{top_name}\" (position {top_position}): move the bot's role above it in Server Settings > Roles",
                        role.name, role.position
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn role(id: u64, name: &str, position: u16, permissions: Permissions) -> Role {
        serde_json::from_value(json!({
            "id": id.to_string(),
            "name": name,
            "color": 0,
            "colors": { "primary_color": 0 },
            "hoist": false,
            "managed": false,
            "position": position,
            "permissions": permissions.bits().to_string(),
            "icon": null,
            "unicode_emoji": null,
        }))
        .expect("role JSON")
    }

    #[test]
    fn the_check_names_every_problem() {
        let guild = GuildId::new(1);
        let roles = vec![
            role(1, "@everyone", 0, Permissions::empty()),
            role(10, "g3-bot", 2, Permissions::MANAGE_ROLES),
            role(20, "VIP", 3, Permissions::empty()),
            role(21, "Basic", 1, Permissions::empty()),
        ];
        let managed: BTreeSet<u64> = [20, 21].into();
        let p = problems(guild, &roles, &[RoleId::new(10)], &managed);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("\"VIP\" (20, position 3)") && p[0].contains("\"g3-bot\" (position 2)"),
            "{p:?}"
        );
        let p = problems(guild, &roles, &[], &[21, 99].into());
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("Manage Roles"));
        assert!(p[2].contains("99 does not exist"));
        let mut admin = roles.clone();
        admin[1] = role(10, "g3-bot", 5, Permissions::ADMINISTRATOR);
        assert!(problems(guild, &admin, &[RoleId::new(10)], &managed).is_empty());
    }
}
