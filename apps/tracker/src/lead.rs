//! Leadership: stand by until this process holds the `tracker` lease, then follow signals and
//! prices until the lease is lost (stop at once, stand by again) or shutdown (store what was
//! judged, release the lease so a standby takes over at once). The loop is
//! [`g3_store::lease::lead`], shared with the bot.

use std::future::Future;
use std::time::Duration;

use g3_appwrite::{Client, Credentials, Follower};
use g3_store::lease::{self, Fence, Leading, Lease};
use g3_store::{Collection, models::Signal};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::follow::Signals;
use crate::work::{Msg, Work};
use crate::{Role, Settings};

/// How long shutdown waits for the work loop to store its unfinished minutes.
const DRAIN: Duration = Duration::from_secs(5);

pub(crate) async fn run(
    settings: &Settings,
    client: Client,
    role: &watch::Sender<Role>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let lease = Lease::new(
        &client,
        lease::Config {
            name: settings.lease.name.clone(),
            holder: settings.lease.holder.clone(),
            timing: settings.lease.timing,
            hold_renewals: None,
        },
    );
    let stands = |standing| {
        role.send_replace(standing);
    };
    let start = |fence| {
        let client = client.clone();
        async move {
            tracing::info!("tracking starts");
            Ok::<_, anyhow::Error>(Running::start(settings, client, fence).await)
        }
    };
    lease::lead(&lease, stands, start, shutdown).await
}

/// The leader's two tasks: the Realtime follower and the work loop.
struct Running {
    follower: JoinHandle<()>,
    work: JoinHandle<()>,
    inbox: mpsc::Sender<Msg>,
}

impl Running {
    async fn start(settings: &Settings, client: Client, fence: Fence) -> Running {
        let (inbox, messages) = mpsc::channel(8192);
        let work = Work::new(settings.clone(), client.clone(), fence, inbox.clone()).await;
        let work = tokio::spawn(work.run(messages));
        let mut handler = Signals {
            client: client.clone(),
            to_work: inbox.clone(),
            clock: settings.clock.clone(),
            time_limit: settings.rules.time_limit,
            cursor: None,
        };
        let follower = Follower::new(
            client,
            Credentials::new(
                settings.staff_email.clone(),
                settings.staff_password.expose().to_owned(),
            ),
            [Collection::<Signal>::channel()],
        );
        let follower = tokio::spawn(async move { follower.run(&mut handler).await });
        Running {
            follower,
            work,
            inbox,
        }
    }
}

impl Leading for Running {
    async fn drain(self) {
        self.follower.abort();
        let _ = self.follower.await;
        let (done, stored) = oneshot::channel();
        if self.inbox.send(Msg::Stop(done)).await.is_ok()
            && tokio::time::timeout(DRAIN, stored).await.is_err()
        {
            tracing::warn!(after = ?DRAIN, "unfinished minutes not stored in time");
        }
        self.work.abort();
        let _ = self.work.await;
    }

    async fn abort(self) {
        self.follower.abort();
        self.work.abort();
        let _ = self.follower.await;
        let _ = self.work.await;
    }
}
