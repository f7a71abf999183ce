//! The pure part of role sync: from one `role_state` document (desired vs applied), what
//! converging it takes. No I/O; the caller has already read the document.

use g3_store::models::RoleState;

/// What converging one document takes.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Plan<'a> {
    /// The account that holds the role by our hand but should not.
    pub(super) remove_from: Option<&'a str>,
    /// The account that should hold the role and does not yet (as far as we know).
    pub(super) add_to: Option<&'a str>,
    /// Nothing to do and nothing stale to clear.
    pub(super) settled: bool,
}

/// The account that should hold the role: desired and linked.
pub(super) fn target(s: &RoleState) -> Option<&str> {
    s.discord_user_id.as_deref().filter(|_| s.desired)
}

/// The account that holds the role by our hand (documents from before
/// `applied_discord_user_id` name only `discord_user_id`).
pub(super) fn holder(s: &RoleState) -> Option<&str> {
    if s.applied != Some(true) {
        return None;
    }
    s.applied_discord_user_id
        .as_deref()
        .or(s.discord_user_id.as_deref())
}

/// The `last_error` of a role that waits for its account to join the guild.
pub fn not_in_guild(discord_user_id: &str) -> String {
    format!("not in guild: Discord user {discord_user_id} has not joined the customer guild")
}

pub(super) fn plan(s: &RoleState) -> Plan<'_> {
    let target = target(s);
    let holder = holder(s);
    let waiting = target.map(not_in_guild);
    let remove_from = holder.filter(|h| Some(*h) != target);
    let add_to = target.filter(|t| holder != Some(*t) && s.last_error != waiting);
    let clean = s.last_error.is_none() || s.last_error == waiting;
    Plan {
        remove_from,
        add_to,
        settled: remove_from.is_none() && add_to.is_none() && clean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(desired: bool, discord: Option<&str>, applied: Option<bool>) -> RoleState {
        RoleState {
            user_id: "u1".into(),
            discord_user_id: discord.map(Into::into),
            applied_discord_user_id: applied.filter(|a| *a).and(discord.map(Into::into)),
            role_id: "111".into(),
            desired,
            applied,
            reason: None,
            last_error: None,
            attempts: None,
            applied_at: None,
            next_retry_at: None,
        }
    }

    #[test]
    fn plans_grant_move_take_back_and_wait_for_a_join() {
        // Desired, linked, not applied: grant.
        let s = state(true, Some("7"), None);
        assert_eq!(
            plan(&s),
            Plan {
                remove_from: None,
                add_to: Some("7"),
                settled: false
            }
        );
        // Applied to the account that should hold it: nothing to do.
        assert!(plan(&state(true, Some("7"), Some(true))).settled);
        // No longer desired: take it back from where it was applied.
        let s = state(false, Some("7"), Some(true));
        let p = plan(&s);
        assert_eq!((p.remove_from, p.add_to), (Some("7"), None));
        // Relinked to 8 after it was applied to 7: move it.
        let mut s = state(true, Some("8"), Some(true));
        s.applied_discord_user_id = Some("7".into());
        let p = plan(&s);
        assert_eq!((p.remove_from, p.add_to), (Some("7"), Some("8")));
        // Unlinked: no target, take it back from 7.
        let mut s = state(false, None, Some(true));
        s.applied_discord_user_id = Some("7".into());
        assert_eq!(plan(&s).remove_from, Some("7"));
        // Not in guild, recorded for this account: wait for the join, without spinning...
        let mut s = state(true, Some("7"), Some(false));
        s.last_error = Some(not_in_guild("7"));
        assert!(plan(&s).settled);
        // ...but a relink to another account tries that one.
        s.discord_user_id = Some("8".into());
        assert_eq!(plan(&s).add_to, Some("8"));
        // A stale error with nothing left to do is cleared.
        let mut s = state(false, Some("7"), Some(false));
        s.last_error = Some("500".into());
        let p = plan(&s);
        assert_eq!((p.remove_from, p.add_to, p.settled), (None, None, false));
    }
}
