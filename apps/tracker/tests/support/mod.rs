//! A running tracker against the emulator and the fake exchange (Binance spot), with a manual
//! clock: tests publish trades stamped at chosen times, wait until the tracker received them,
//! then move the clock so their seconds close. No sleeps: every wait is on a condition.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use g3_appwrite::Document;
use g3_market::{Backoff, Endpoints, Venue};
use g3_outcomes::{Outcome, Rules};
use g3_store::{
    Collection,
    models::{Side, Signal, SignalOutcome},
    schema::TEAM_STAFF,
};
use testkit::backend::Backend;
use testkit::exchange::{FakeExchange, FakeVenue, RecordedTrade};
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracker::{Clock, LeaseSettings, MetricsAccess, Secret, Settings, Stats};

pub const STAFF_EMAIL: &str = "tracker-service@test.local";
pub const STAFF_PASSWORD: &str = "tracker service password";
pub const LIMIT: Duration = Duration::from_secs(20);
pub const SYMBOL: &str = "ETHUSDT";
pub const VENUE: FakeVenue = FakeVenue::BinanceSpot;

pub fn secs(s: f64) -> time::Duration {
    time::Duration::seconds_f64(s)
}

/// One tracker process.
pub struct Instance {
    pub addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Instance {
    async fn spawn(settings: Settings) -> Instance {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(tracker::run(settings, listener, async move {
            let _ = stopped.await;
        }));
        Instance {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// SIGTERM: the tracker stores what it judged, releases the lease and returns cleanly.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(LIMIT, task)
                .await
                .expect("tracker stops in time")
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

pub struct TestTracker {
    pub backend: Backend,
    pub fake: FakeExchange,
    pub clock: Clock,
    /// Shared by every instance (only the leader receives trades).
    pub stats: Arc<Stats>,
    pub addr: std::net::SocketAddr,
    /// A whole minute: every test's times are offsets from it.
    pub base: OffsetDateTime,
    trades: Mutex<Vec<RecordedTrade>>,
    settings: Settings,
    pub instances: Vec<Instance>,
}

impl TestTracker {
    pub async fn start() -> TestTracker {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("tracker=debug,g3_market=info")
            .try_init();
        let backend = testkit::backend::backend().await;
        let user = backend
            .client
            .users()
            .create(
                "tracker-service",
                STAFF_EMAIL,
                Some(STAFF_PASSWORD),
                Some("tracker"),
            )
            .await
            .unwrap();
        backend
            .client
            .teams()
            .add_member_if_absent(TEAM_STAFF, &user.id, &[] as &[&str])
            .await
            .unwrap();
        let fake = FakeExchange::spawn().await;
        let now = OffsetDateTime::now_utc();
        let base = tracker::tape::floor_min(now);
        let clock = Clock::manual(base + secs(2.0));
        let stats = Arc::new(Stats::default());
        let endpoints = BTreeMap::from([(
            Venue::BinanceSpot,
            Endpoints {
                ws: fake.ws_url(VENUE).parse().unwrap(),
                rest: fake.rest_url(VENUE).parse().unwrap(),
            },
        )]);
        let settings = Settings {
            appwrite: backend.client_config(),
            staff_email: STAFF_EMAIL.into(),
            staff_password: Secret::new(STAFF_PASSWORD),
            venues: vec![Venue::BinanceSpot],
            endpoints,
            feed_backoff: Backoff {
                first: Duration::from_millis(20),
                max: Duration::from_millis(200),
            },
            listings_ttl: Duration::from_secs(60),
            rules: Rules::default(),
            bar_grace: time::Duration::milliseconds(500),
            tick_every: Duration::from_millis(20),
            progress_every: Duration::from_secs(3600),
            lease: LeaseSettings {
                name: "tracker".into(),
                holder: tracker::default_holder(Some("test")),
                timing: g3_store::lease::Timing::new(
                    Duration::from_secs(2),
                    Duration::from_millis(300),
                )
                .unwrap(),
            },
            metrics: MetricsAccess::from_token(Some("metrics-token")),
            clock: clock.clone(),
            stats: stats.clone(),
        };
        let first = Instance::spawn(settings.clone()).await;
        TestTracker {
            backend,
            fake,
            clock,
            stats,
            addr: first.addr,
            base,
            trades: Mutex::new(Vec::new()),
            settings,
            instances: vec![first],
        }
    }

    /// Another tracker process on the same backend, exchange and clock; returns its index.
    pub async fn spawn_another(&mut self) -> usize {
        let mut settings = self.settings.clone();
        settings.lease.holder = tracker::default_holder(Some("test"));
        self.instances.push(Instance::spawn(settings).await);
        self.instances.len() - 1
    }

    /// Stops every instance still running.
    pub async fn shutdown(&mut self) {
        for instance in &mut self.instances {
            instance.shutdown().await;
        }
    }

    pub fn at(&self, offset: f64) -> OffsetDateTime {
        self.base + secs(offset)
    }

    /// Moves the clock to `base + offset` seconds.
    pub fn clock_to(&self, offset: f64) {
        self.clock.set(self.at(offset));
    }

    pub async fn post(&self, id: &str, signal: &Signal) {
        Collection::<Signal>::new(&self.backend.client)
            .upsert(id, signal, None)
            .await
            .unwrap();
    }

    pub fn signal(&self, pair: &str, entries: &[f64], targets: &[f64], stop: f64) -> Signal {
        Signal {
            content: Some(format!("{pair} long")),
            pair: Some(pair.into()),
            side: Some(Side::Long),
            entries: entries.to_vec(),
            targets: targets.to_vec(),
            stop: Some(stop),
            ..Signal::live(("100", "200", "1"), "main", self.at(1.0))
        }
    }

    fn add_trade(&self, offset: f64, price: f64) -> usize {
        let mut trades = self.trades.lock().unwrap();
        let id = 1_000 + trades.len() as u64;
        trades.push(RecordedTrade {
            id,
            time_ms: (self.at(offset).unix_timestamp_nanos() / 1_000_000) as i64,
            price: price.to_string(),
            qty: "1".into(),
            taker_buys: true,
            on_stream: true,
        });
        self.fake.load_trades(VENUE, SYMBOL, trades.clone());
        trades.len()
    }

    /// A trade at `base + offset` that happens without reaching the stream (REST has it).
    pub fn unseen_trade(&self, offset: f64, price: f64) {
        let n = self.add_trade(offset, price);
        self.fake.skip(VENUE, SYMBOL, n);
    }

    /// A trade at `base + offset` sent on the stream; returns once the tracker received it.
    pub async fn trade(&self, offset: f64, price: f64) {
        let before = Stats::get(&self.stats.ticks);
        let n = self.add_trade(offset, price);
        self.fake.skip(VENUE, SYMBOL, n - 1);
        assert_eq!(self.fake.publish(VENUE, SYMBOL, 1).len(), 1);
        testkit::wait::eventually("the tracker received the trade", LIMIT, || async {
            Stats::get(&self.stats.ticks) > before
        })
        .await;
    }

    pub async fn wait_subscribed(&self, subscribed: bool) {
        testkit::wait::eventually(
            &format!("{SYMBOL} subscribed: {subscribed}"),
            LIMIT,
            || async { self.fake.subscribed(VENUE, SYMBOL) == subscribed },
        )
        .await;
    }

    pub async fn document(&self, id: &str) -> Option<Document<SignalOutcome>> {
        Collection::<SignalOutcome>::new(&self.backend.client)
            .get_optional(id)
            .await
            .unwrap()
    }

    /// Waits until signal `id`'s stored outcome satisfies `check`, and returns it.
    pub async fn outcome_when(
        &self,
        id: &str,
        what: &str,
        check: impl Fn(&Outcome) -> bool,
    ) -> Outcome {
        let found = testkit::wait::wait_for(what, LIMIT, || async {
            let doc = self.document(id).await?;
            let outcome: Outcome = serde_json::from_str(&doc.data.outcome).unwrap();
            check(&outcome).then_some(outcome)
        })
        .await;
        match found {
            Ok(o) => o,
            Err(e) => {
                let doc = self.document(id).await;
                panic!("{e}; stored: {doc:#?}")
            }
        }
    }

    pub async fn status_is(&self, id: &str, status: &str) -> Outcome {
        self.outcome_when(id, &format!("{id} {status}"), |o| {
            o.status.as_str() == status
        })
        .await
    }

    /// Recomputing `id` from storage gives exactly the document the live tracker wrote. The
    /// tracker stores minutes behind its work loop, so this waits (bounded) until the minutes
    /// it handed over are written: until the recompute agrees, or the limit passes.
    pub async fn assert_recompute_equals_live(&self, id: &str) {
        let live = self.document(id).await.expect("live outcome");
        let recompute = || async {
            tracker::recompute::signal(&self.backend.client, id, false)
                .await
                .unwrap()
        };
        let _ = testkit::wait::wait_for("recompute agrees with live", LIMIT, || async {
            let again = recompute().await;
            (again.after == live.data).then_some(())
        })
        .await;
        let again = recompute().await;
        assert_eq!(again.before, live.data);
        assert_eq!(
            again.after, live.data,
            "recompute differs from live for {id}"
        );
    }
}

/// `GET path` over plain HTTP/1.1: status line, headers and body as text.
pub async fn http_get(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}
