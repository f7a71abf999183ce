//! One Discord REST call as the bot makes it, shared by mirrors ([`crate::mirror`]) and outcome
//! replies ([`crate::replies`]): gated on the lease's [`Fence`], 5xx, timeouts and connection
//! errors retried with backoff and jitter (serenity's own limiter paces requests and retries
//! 429s), and every other failure sorted by what the caller does about it ([`Failure`]).

use std::future::Future;

use g3_store::lease::Fence;
use serenity::{
    all::{ChannelId, UserId},
    http::{Http, HttpError},
};

use crate::mirror::RetryPolicy;

/// Discord error code of a message that no longer exists.
const UNKNOWN_MESSAGE: isize = 10008;
/// Discord error code of a channel that no longer exists.
const UNKNOWN_CHANNEL: isize = 10003;
/// Discord error code of a request body Discord refused field by field.
const INVALID_FORM_BODY: isize = 50035;
/// The field error of a reply whose `message_reference` names a message that does not exist.
const REPLIES_UNKNOWN_MESSAGE: &str = "REPLIES_UNKNOWN_MESSAGE";

/// A failed Discord call, sorted by what we do about it.
#[derive(Debug)]
pub(crate) enum Failure {
    UnknownMessage,
    /// The channel was deleted (its messages with it).
    UnknownChannel(String),
    /// Missing access or permission (403, or a 404 that is not a known object).
    Unavailable(String),
    /// A reply's `message_reference` names a message that is gone (deleted in Discord).
    ReplyTargetGone,
    Other(String),
    /// The lease no longer holds: the call was not made.
    Fenced(String),
}

/// `Err` (with the reason) when the failure is transient and worth retrying.
fn classify(e: &serenity::Error) -> Result<Failure, String> {
    match e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => {
            let status = r.status_code.as_u16();
            let detail = || format!("{status} {} (code {})", r.error.message, r.error.code);
            if r.error.code == UNKNOWN_MESSAGE {
                Ok(Failure::UnknownMessage)
            } else if r.error.code == UNKNOWN_CHANNEL {
                Ok(Failure::UnknownChannel(detail()))
            } else if r.error.code == INVALID_FORM_BODY
                && r.error
                    .errors
                    .iter()
                    .any(|f| f.code == REPLIES_UNKNOWN_MESSAGE)
            {
                Ok(Failure::ReplyTargetGone)
            } else if status == 403 || status == 404 {
                Ok(Failure::Unavailable(detail()))
            } else if status >= 500 || status == 429 {
                // 429 reaches us only with serenity's rate limiter off (`DISCORD_API_URL`).
                Err(format!("{status} {}", r.error.message))
            } else {
                Ok(Failure::Other(detail()))
            }
        }
        serenity::Error::Http(HttpError::Request(e)) => Err(e.to_string()),
        other => Ok(Failure::Other(other.to_string())),
    }
}

/// Why nothing may be done any more: `fence`'s lease no longer holds (no fence: never).
pub(crate) fn lapsed(fence: Option<&Fence>) -> Option<String> {
    fence
        .filter(|f| !f.is_valid())
        .map(|f| format!("lease generation {} no longer holds", f.generation()))
}

/// `Err` once `fence`'s lease no longer holds (no fence: always `Ok`).
pub(crate) fn guard(fence: Option<&Fence>) -> Result<(), Failure> {
    match lapsed(fence) {
        Some(why) => Err(Failure::Fenced(why)),
        None => Ok(()),
    }
}

/// One Discord call with transient failures retried, each try gated on the lease.
pub(crate) async fn call<T, F, Fut>(
    retry: &RetryPolicy,
    fence: Option<&Fence>,
    channel: ChannelId,
    mut f: F,
) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = serenity::Result<T>>,
{
    let mut attempt = 0;
    loop {
        guard(fence)?;
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => match classify(&e) {
                Ok(failure) => return Err(failure),
                Err(transient) if attempt + 1 < retry.attempts => {
                    let delay = retry.delay_for(attempt);
                    tracing::debug!(%channel, error = %transient, ?delay, "discord call failed, retrying");
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                }
                Err(transient) => {
                    return Err(Failure::Other(format!(
                        "{transient} (after {} attempts)",
                        attempt + 1
                    )));
                }
            },
        }
    }
}

/// The bot's own user id (asked once per caller, which keeps it in a `OnceCell`).
pub(crate) async fn current_user(
    http: &Http,
    retry: &RetryPolicy,
    fence: Option<&Fence>,
    channel: ChannelId,
) -> Result<UserId, Failure> {
    call(retry, fence, channel, || http.get_current_user())
        .await
        .map(|u| u.id)
}
