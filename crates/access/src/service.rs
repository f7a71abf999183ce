//! Service users: the accounts web and the bot sign in as for Realtime, which takes no API keys.

use g3_appwrite::Client;
use g3_store::schema::{TEAM_PAID, TEAM_STAFF};

/// The team role that marks a service user's memberships (never a plan key).
pub const SERVICE_ROLE: &str = "service";

/// Makes `user_id` a service user: a member of `staff` (to read every signal) and of `paid`,
/// with role [`SERVICE_ROLE`] in both. Appwrite delivers a team's membership events only to the
/// team's members, and web's access cache is used only while its service user hears both
/// teams' events. Idempotent.
pub async fn enlist_service_user(client: &Client, user_id: &str) -> Result<(), g3_appwrite::Error> {
    for team in [TEAM_STAFF, TEAM_PAID] {
        client
            .teams()
            .add_member_if_absent(team, user_id, &[SERVICE_ROLE])
            .await?;
    }
    Ok(())
}
