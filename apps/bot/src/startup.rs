//! The start-up check, before any work: Discord must accept the token (`GET /users/@me`), and
//! with role sync on, the bot must be able to manage the plan roles. A refused token stops the
//! bot with that said; an unreachable Discord is retried with backoff, saying so each time.

use std::time::Duration;

use serenity::{
    all::CurrentUser,
    http::{Http, HttpError},
};

use crate::{Settings, roles};

/// Longest pause between attempts while Discord is unreachable.
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// The token was refused: retrying cannot help.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(
        "DISCORD_BOT_TOKEN was refused by Discord ({status}): use the bot token from the Developer Portal (Bot > Reset Token)"
    )]
    TokenRefused { status: u16 },
}

/// Runs the check; returns only when the token works (or with the reason it never will).
pub async fn check(settings: &Settings, http: &Http) -> Result<CurrentUser, StartupError> {
    let me = whoami(settings, http).await?;
    tracing::info!(user = %me.name, id = %me.id, "Discord accepted the bot token");
    if let Some(config) = roles::Config::from_settings(settings) {
        match roles::check_at_start(&config, http, me.id).await {
            roles::Readiness::Ready => {
                tracing::info!(guild = %config.guild_id, "the bot can manage the plan roles")
            }
            roles::Readiness::Misconfigured(problems) => tracing::error!(
                guild = %config.guild_id,
                "role sync cannot run until this is fixed (mirroring is not affected; checked again every {:?}): {}",
                config.timing.recheck_every,
                problems.join("; ")
            ),
            roles::Readiness::Unreachable(e) => tracing::warn!(
                error = %e,
                "role permissions could not be checked at start; role sync checks again"
            ),
        }
    }
    Ok(me)
}

/// `GET /users/@me` until it answers: 401/403 is final, anything else is retried.
async fn whoami(settings: &Settings, http: &Http) -> Result<CurrentUser, StartupError> {
    let mut attempt = 0u32;
    loop {
        match http.get_current_user().await {
            Ok(me) => return Ok(me),
            Err(serenity::Error::Http(HttpError::UnsuccessfulRequest(r)))
                if matches!(r.status_code.as_u16(), 401 | 403) =>
            {
                return Err(StartupError::TokenRefused {
                    status: r.status_code.as_u16(),
                });
            }
            Err(e) => {
                let pause = crate::exponential(
                    settings.retry.base.max(Duration::from_millis(100)),
                    MAX_PAUSE,
                    attempt,
                );
                attempt = attempt.saturating_add(1);
                tracing::warn!(
                    error = %e,
                    attempt,
                    retry_in = ?pause,
                    api = settings.discord_api_url.as_deref().unwrap_or(crate::DISCORD_API),
                    "Discord is unreachable: cannot check the bot token yet; retrying"
                );
                tokio::time::sleep(pause).await;
            }
        }
    }
}
