//! Following Realtime channels for the life of a service: sign in as a service user (API keys
//! cannot subscribe), subscribe, let the caller catch up on every (re)connect before the events
//! that follow, sign in again when the session is refused, and back off between attempts. What is
//! followed and what catching up means belong to the caller, through [`Follow`].

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tracing::warn;

use crate::channel::Channel;
use crate::client::Client;
use crate::config::RetryPolicy;
use crate::error::Error;
use crate::realtime::{Realtime, RealtimeEvent, RealtimeMessage, RealtimeOptions};

/// The service user a follower signs in as.
#[derive(Clone)]
pub struct Credentials {
    email: String,
    password: String,
}

impl Credentials {
    pub fn new(email: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            email: email.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("email", &self.email)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// Why the follower is not subscribed; events may be missed until the next
/// [`Follow::connected`].
#[derive(Debug)]
pub enum Interruption {
    /// The socket dropped; it reconnects by itself with the same session.
    Dropped { reason: String },
    /// Appwrite refused the session: the follower signs in again after `retry_in`.
    SessionRefused {
        message: String,
        /// Failed attempts since the last connect (1 = the first).
        attempt: u32,
        retry_in: Duration,
    },
    /// Signing in or subscribing failed: tried again after `retry_in`.
    SignInFailed {
        error: Error,
        /// Failed attempts since the last connect (1 = the first).
        attempt: u32,
        retry_in: Duration,
    },
}

/// What a follower does with what it hears. Calls are never concurrent: events wait while
/// [`Follow::connected`] catches up, then arrive in the order Appwrite sent them.
pub trait Follow: Send {
    /// Subscribed (again). Changes made while not subscribed were not sent: list what changed
    /// since the caller's cursor. `reconnected` is false only on the follower's first connect.
    fn connected(&mut self, reconnected: bool) -> impl Future<Output = ()> + Send;

    /// One change on a followed channel.
    fn event(&mut self, event: RealtimeEvent) -> impl Future<Output = ()> + Send;

    /// Not subscribed until the next [`Follow::connected`]. Nothing to do by default.
    fn disconnected(&mut self, why: &Interruption) -> impl Future<Output = ()> + Send {
        let _ = why;
        std::future::ready(())
    }
}

/// Follows channels as a service user. Build it, then [`Follower::run`] it in a task: dropping
/// the future (or aborting the task) closes the socket.
#[derive(Debug, Clone)]
pub struct Follower {
    client: Client,
    credentials: Credentials,
    options: RealtimeOptions,
    resubscribe: RetryPolicy,
}

impl Follower {
    /// A follower of `channels` with [`RealtimeOptions`]' defaults; signing in again backs off
    /// like reconnecting does unless [`Follower::resubscribe`] says otherwise.
    pub fn new(
        client: Client,
        credentials: Credentials,
        channels: impl IntoIterator<Item = Channel>,
    ) -> Self {
        let options = RealtimeOptions::new(channels);
        Self {
            client,
            credentials,
            resubscribe: options.reconnect,
            options,
        }
    }

    /// Backoff between reconnects of the socket while the session holds.
    pub fn reconnect(mut self, policy: RetryPolicy) -> Self {
        self.options.reconnect = policy;
        self
    }

    /// Backoff between sign-in attempts (after a refused session or a failed sign-in); it
    /// starts over after every connect.
    pub fn resubscribe(mut self, policy: RetryPolicy) -> Self {
        self.resubscribe = policy;
        self
    }

    /// Follows until the future is dropped.
    pub async fn run<F: Follow>(self, handler: &mut F) {
        self.run_until(handler, std::future::pending()).await;
    }

    /// Follows until `shutdown` resolves.
    pub async fn run_until<F: Follow>(self, handler: &mut F, shutdown: impl Future<Output = ()>) {
        tokio::select! {
            () = shutdown => {}
            () = self.follow(handler) => {}
        }
    }

    async fn follow<F: Follow>(&self, handler: &mut F) {
        let channels = self.options.channels.join(",");
        let mut connected_before = false;
        let mut failures: u32 = 0;
        loop {
            let stopped = match self.subscribe().await {
                Ok(mut realtime) => loop {
                    match realtime.recv().await {
                        Some(RealtimeMessage::Connected { .. }) => {
                            failures = 0;
                            handler.connected(connected_before).await;
                            connected_before = true;
                        }
                        Some(RealtimeMessage::Event(event)) => handler.event(event).await,
                        Some(RealtimeMessage::Disconnected { reason }) => {
                            handler
                                .disconnected(&Interruption::Dropped { reason })
                                .await;
                        }
                        Some(RealtimeMessage::AuthFailed { message }) => {
                            break Stopped::Refused(message);
                        }
                        // The task stops only after `AuthFailed`; a silent end is treated alike.
                        None => break Stopped::Refused("the subscription ended".to_owned()),
                    }
                },
                Err(error) => Stopped::Failed(error),
            };
            failures = failures.saturating_add(1);
            let retry_in = self.resubscribe.backoff(failures);
            let delay_ms = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX);
            let why = match stopped {
                Stopped::Refused(message) => {
                    warn!(%channels, %message, attempt = failures, delay_ms, "service session refused; signing in again");
                    Interruption::SessionRefused {
                        message,
                        attempt: failures,
                        retry_in,
                    }
                }
                Stopped::Failed(error) => {
                    warn!(%channels, %error, attempt = failures, delay_ms, "service user could not subscribe; trying again");
                    Interruption::SignInFailed {
                        error,
                        attempt: failures,
                        retry_in,
                    }
                }
            };
            handler.disconnected(&why).await;
            tokio::time::sleep(retry_in).await;
        }
    }

    /// Signs in and subscribes with the new session.
    async fn subscribe(&self) -> Result<Realtime, Error> {
        let session = self
            .client
            .account()
            .create_email_password_session(&self.credentials.email, &self.credentials.password)
            .await?;
        self.client.realtime(&session.secret, self.options.clone())
    }
}

/// Why one subscription ended.
enum Stopped {
    Refused(String),
    Failed(Error),
}
